//! The caller of a request, from its `Authorization: Bearer` header.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use super::AppState;
use super::error::ApiError;
use crate::domain::Principal;
use crate::index::query::{View, Visibility};

/// The authenticated (or anonymous) caller. A malformed, unknown or revoked token is a 401,
/// never a silent downgrade to anonymous.
pub struct Caller(pub Principal);

impl Caller {
    /// The current snapshot as this caller may see it: the way every handler reads records.
    pub fn view(&self, state: &AppState) -> View {
        state.catalog.snapshot().view(Visibility::of(&self.0))
    }
}

/// The secret of an `Authorization` value of the Bearer scheme (either case of the scheme's
/// first letter, surrounding blanks trimmed); `None` for any other value.
pub fn bearer_secret(value: &str) -> Option<&str> {
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req
            .headers()
            .get(AUTHORIZATION)
            .map(|h| h.to_str().map(str::to_owned));
        Box::pin(async move {
            let Some(header) = header else {
                return Ok(Caller(Principal::Anonymous));
            };
            let header = header.map_err(|_| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "Authorization header is not text",
                )
            })?;
            let secret = bearer_secret(&header).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "Authorization must be `Bearer <token>`",
                )
            })?;
            let state = state.ok_or_else(|| {
                ApiError::internal("auth", &std::io::Error::other("application state missing"))
            })?;
            let principal = state.tokens.verify(secret).await?;
            Ok(Caller(principal))
        })
    }
}
