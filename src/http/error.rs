//! The one error type of the HTTP layer: `{"error": code, "message": text}`.
//!
//! 4xx bodies say what was wrong and where; 5xx bodies are generic and the cause goes to the log.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::domain::{AccessError, FeatureError, FieldError};
use crate::storage::StoreError;
use crate::tokens::TokenError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Vec<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// A query or path parameter that cannot be used; the message names it.
    pub fn invalid_parameter(name: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("parameter `{name}`: {reason}"),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_body", message)
    }

    /// A server-side failure: logged in full, answered generically.
    pub fn internal(context: &str, error: &dyn std::error::Error) -> Self {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(context, error = %chain, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it has been logged",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({"error": self.code, "message": self.message});
        if !self.details.is_empty() {
            body["details"] = json!(self.details);
        }
        let mut resp = HttpResponse::build(self.status);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"faro\""),
            ));
        }
        resp.json(body)
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Unauthenticated(_) => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
            }
            AccessError::Forbidden { .. } | AccessError::OutOfScope(_) => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
            }
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Malformed | TokenError::Unknown | TokenError::Expired => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                format!("Authorization: {e}"),
            ),
            TokenError::Store(s) => s.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotFound { .. } => Self::not_found(e.to_string()),
            StoreError::AlreadyExists { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            StoreError::VersionMismatch { .. } => Self::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                format!("{e}; fetch it again and retry with the new ETag"),
            ),
            StoreError::Unavailable { .. } => {
                tracing::warn!(error = %e, "store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unreachable or busy; retry shortly (writes are refused until it answers; reads are served from memory)",
                )
            }
            _ => Self::internal("store", &e),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::bad_body(e.to_string())
    }
}

impl From<Vec<FeatureError>> for ApiError {
    fn from(errors: Vec<FeatureError>) -> Self {
        let first = errors.first().map(ToString::to_string).unwrap_or_default();
        let message = if errors.len() > 1 {
            format!(
                "{first} (and {} more problems; see details)",
                errors.len() - 1
            )
        } else {
            first
        };
        let mut e = Self::bad_body(message);
        e.details = errors.iter().take(200).map(ToString::to_string).collect();
        e
    }
}
