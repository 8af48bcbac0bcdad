//! Operations: liveness, readiness, Prometheus metrics.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;
use super::auth::Caller;
use crate::domain::Collection;

/// Page for browsers until the map viewer lands.
pub const LANDING_HTML: &str = include_str!("landing.html");

/// The process is up.
#[utoipa::path(get, path = "/healthz", responses(
    (status = 200, description = "Alive", body = ref("#/components/schemas/Health"), content_type = "application/json"),
))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The process can serve: the index is loaded and the store answers.
#[utoipa::path(get, path = "/readyz", security((), ("bearer" = [])), responses(
    (status = 200, description = "Ready; `records` counts what the caller may know of (public services and territories for an anonymous probe)",
        body = ref("#/components/schemas/Ready"), content_type = "application/json"),
    (status = 401, description = "`Authorization` is not a valid, live bearer token"),
    (status = 500, description = "Internal error; the cause is logged"),
    (status = 503, description = "Not ready: the database does not answer (within 2 s), or the bearer token could not be checked",
        body = ref("#/components/schemas/NotReady"), content_type = "application/json"),
))]
pub async fn readyz(state: web::Data<AppState>, caller: Caller) -> HttpResponse {
    let store = state.catalog.store();
    let ping = tokio::time::timeout(Duration::from_secs(2), store.ping()).await;
    // Counts the caller may know: for an anonymous probe, public services and territories.
    let view = caller.view(&state);
    let counts: serde_json::Map<String, serde_json::Value> = Collection::ALL
        .iter()
        .filter_map(|c| view.count(*c).map(|n| (c.as_str().to_owned(), json!(n))))
        .collect();
    match ping {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({
            "status": "ready", "store": store.backend(), "records": counts,
        })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(json!({
                "error": "not_ready", "message": "the database does not answer",
                "store": store.backend(),
            }))
        }
        Err(_) => HttpResponse::ServiceUnavailable().json(json!({
            "error": "not_ready", "message": "the database did not answer within 2 s",
            "store": store.backend(),
        })),
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", security((), ("bearer" = [])), responses(
    (status = 200, description = "Prometheus metrics (OpenMetrics text); record counts are those the caller may know of",
        body = String, content_type = "application/openmetrics-text"),
    (status = 401, description = "`Authorization` is not a valid, live bearer token"),
    (status = 500, description = "Internal error; the cause is logged"),
    (status = 503, description = "The bearer token could not be checked: the database is unreachable"),
))]
pub async fn metrics(state: web::Data<AppState>, caller: Caller) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render(
            &caller.view(&state),
            state.catalog.is_available(),
            state.tiles.cache(),
        ))
}
