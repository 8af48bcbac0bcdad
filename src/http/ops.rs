//! Operations: liveness, readiness, Prometheus metrics.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;

/// Page for browsers until the map viewer lands.
pub const LANDING_HTML: &str = include_str!("landing.html");

/// The process is up.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The process can serve: the index is loaded and the store answers.
#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "Ready"), (status = 503, description = "Store unreachable")))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = state.catalog.store();
    let ping = tokio::time::timeout(Duration::from_secs(2), store.ping()).await;
    let snapshot = state.catalog.snapshot();
    let counts: serde_json::Map<String, serde_json::Value> = snapshot
        .counts()
        .iter()
        .map(|(c, n)| (c.as_str().to_owned(), json!(n)))
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
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus metrics", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let snapshot = state.catalog.snapshot();
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(
            state
                .metrics
                .render(&snapshot, state.catalog.is_available()),
        )
}
