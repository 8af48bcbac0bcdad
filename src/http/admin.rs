//! `/admin/tokens`: the tokens of the network for admins, the same as `faro token
//! create|list|revoke`. A secret is shown once, in the answer that creates it; only its hash is
//! stored. A revoke takes effect on the next request, on every instance sharing the database
//! (PostgreSQL NOTIFY, or the SQLite change poller).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::audit::check_admin;
use super::auth::Caller;
use super::error::ApiError;
use super::features::read_json_body;
use crate::domain::{RecordId, Role};
use crate::storage::TokenRecord;
use crate::tokens::{self, CreateError, TokenRequest};

/// A token's body is small: a name, a role, a few territory ids.
const MAX_TOKEN_BODY_BYTES: usize = 16 * 1024;

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    })
}

/// One token as JSON (never its secret nor its hash).
pub fn token_json(t: &TokenRecord) -> Value {
    let state = if t.revoked_at.is_some() {
        "revoked"
    } else if t.is_dead_at(chrono::Utc::now()) {
        "expired"
    } else {
        "live"
    };
    json!({
        "id": t.id,
        "name": t.name,
        "role": t.role.as_str(),
        "territories": t.territories.iter().map(RecordId::as_str).collect::<Vec<_>>(),
        "created_at": time(Some(t.created_at)),
        "last_used_at": time(t.last_used_at),
        "expires_at": time(t.expires_at),
        "revoked_at": time(t.revoked_at),
        "state": state,
    })
}

fn check(caller: &Caller) -> Result<(), ApiError> {
    Ok(check_admin(&caller.0, "the tokens", "manage tokens")?)
}

/// Every token, oldest first (admins only).
#[utoipa::path(get, path = "/admin/tokens", operation_id = "list_tokens", security(("bearer" = [])), responses(
    (status = 200, description = "The tokens, oldest first; never a secret",
        body = ref("#/components/schemas/TokenList"), content_type = "application/json"),
    (status = 401, description = "No valid bearer token"),
    (status = 403, description = "The token's role is not admin"),
    (status = 500, description = "Internal error; the cause is logged"),
    (status = 503, description = "The database is unreachable"),
))]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    check(&caller)?;
    let tokens = state.catalog.store().list_tokens().await?;
    Ok(HttpResponse::Ok().json(json!({
        "tokens": tokens.iter().map(token_json).collect::<Vec<_>>(),
    })))
}

/// The body of `POST /admin/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    name: String,
    role: String,
    #[serde(default)]
    territories: Vec<String>,
    expires: Option<String>,
}

/// Creates a token; the answer carries its secret, shown this once (admins only).
#[utoipa::path(post, path = "/admin/tokens", operation_id = "create_token", security(("bearer" = [])),
    request_body(description = "`name`, `role` (operator, editor or admin), optional `territories` (ids; none: the whole network; never for admins) and `expires` (a duration such as `90d`, a date, or an RFC 3339 time)",
        content((ref("#/components/schemas/NewToken") = "application/json",
            example = json!({"name": "Cooperativa (example)", "role": "editor", "expires": "90d"})))),
    responses(
        (status = 201, description = "Created: the token and its secret (shown once)",
            body = ref("#/components/schemas/CreatedToken"), content_type = "application/json"),
        (status = 400, description = "Malformed JSON or a bad field; the message names it"),
        (status = 401, description = "No valid bearer token"),
        (status = 403, description = "The token's role is not admin"),
        (status = 413, description = "The body is larger than 16 KiB"),
        (status = 415, description = "Content-Type is not application/json"),
        (status = 500, description = "Internal error; the cause is logged"),
        (status = 503, description = "The database is unreachable"),
    ))]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    check(&caller)?;
    let doc = read_json_body(&req, payload, &["application/json"], MAX_TOKEN_BODY_BYTES).await?;
    let body: NewTokenBody = serde_json::from_value(doc).map_err(|e| {
        ApiError::bad_body(format!(
            "a token is {{name, role, territories?, expires?}}: {e}"
        ))
    })?;
    let role: Role = body
        .role
        .parse()
        .map_err(|e: String| ApiError::bad_body(format!("field `role`: {e}")))?;
    let request = TokenRequest {
        name: body.name,
        role,
        territories: body.territories,
        expires: body.expires,
    };
    let (token, secret) = tokens::create(state.catalog.store().as_ref(), &request)
        .await
        .map_err(|e| match e {
            CreateError::Invalid { field, message } => {
                ApiError::bad_body(format!("field `{field}`: {message}"))
            }
            CreateError::Store(s) => s.into(),
            CreateError::Random(r) => ApiError::internal("generating a token", &r),
        })?;
    tracing::info!(token = token.id, actor = %caller.0.actor(), "token created");
    Ok(HttpResponse::build(StatusCode::CREATED).json(json!({
        "token": token_json(&token),
        "secret": secret,
    })))
}

/// Revokes a token: refused from the next request on, on every instance (admins only).
#[utoipa::path(delete, path = "/admin/tokens/{id}", operation_id = "revoke_token", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The token's id", minimum = 1)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "The id is not a positive integer"),
        (status = 401, description = "No valid bearer token"),
        (status = 403, description = "The token's role is not admin"),
        (status = 404, description = "No live token with this id"),
        (status = 500, description = "Internal error; the cause is logged"),
        (status = 503, description = "The database is unreachable"),
    ))]
pub async fn revoke(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    check(&caller)?;
    let id: i64 = path
        .trim()
        .parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid_parameter("id", "must be a positive integer"))?;
    if state.catalog.store().revoke_token(id).await? {
        // This instance's cached checks go at once; other instances hear of it from the store.
        state
            .catalog
            .token_epoch()
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        tracing::info!(token = id, actor = %caller.0.actor(), "token revoked");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found(format!("no live token with id {id}")))
    }
}
