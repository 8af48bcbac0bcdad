//! HTTP: the actix-web router, handlers, errors and authentication.
//!
//! [`configure`] mounts every route; the server and the tests use the same function.

mod admin;
mod audit;
pub mod auth;
pub mod base_url;
mod coverage;
pub mod error;
mod features;
pub mod limits;
mod metrics;
mod nearest;
mod openapi;
mod ops;
mod params;
mod reception;
mod schemas;
mod tiles;
mod viewer;

use std::sync::Arc;

use actix_web::web;

use crate::catalog::Catalog;
use crate::config::LinkConfig;
use crate::tiles::Tiles;
use crate::tokens::TokenVerifier;

pub use error::ApiError;
pub use metrics::Metrics;
pub use openapi::openapi_json;

/// What time it is: the system clock, or a fixed one in tests (`open_at=now`).
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(chrono::Utc::now))
    }

    /// A clock that always says `at`.
    pub fn fixed(at: chrono::DateTime<chrono::Utc>) -> Self {
        Self(Arc::new(move || at))
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        (self.0)()
    }
}

/// Shared state of every handler.
pub struct AppState {
    pub catalog: Arc<Catalog>,
    pub tokens: TokenVerifier,
    pub metrics: Metrics,
    pub clock: Clock,
    /// How absolute links are built (public URL, trusted proxies).
    pub links: LinkConfig,
    /// Positions a written geometry may have at most (`--max-vertices`).
    pub max_vertices: usize,
    /// Tiles and their cache, which the catalog tells of every index change.
    pub tiles: Arc<Tiles>,
    /// The viewer's base map tile URL template (`--basemap-url`), if any.
    pub basemap_url: Option<String>,
    /// Requests a second per client (`--rate-limit`); `None`: no limit.
    pub rate_limit: Option<limits::RateLimit>,
    /// Origins allowed to read cross-origin (`--cors-origin`); none by default.
    pub cors_origins: Vec<String>,
    /// Coverage answers of the current snapshot.
    coverage: coverage::Cache,
}

impl AppState {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self::with_tile_cache(
            catalog,
            crate::tiles::cache::DEFAULT_CAPACITY_MB * 1024 * 1024,
        )
    }

    /// The state with a tile cache of `tile_cache_bytes` (0: none).
    pub fn with_tile_cache(catalog: Arc<Catalog>, tile_cache_bytes: usize) -> Self {
        let tokens = TokenVerifier::new(Arc::clone(catalog.store()), catalog.token_epoch());
        let tiles = Arc::new(Tiles::new(tile_cache_bytes));
        let listener: Arc<dyn crate::catalog::IndexListener> = tiles.clone();
        catalog.listen(Arc::downgrade(&listener));
        Self {
            catalog,
            tokens,
            metrics: Metrics::new(),
            clock: Clock::system(),
            links: LinkConfig::default(),
            max_vertices: crate::domain::DEFAULT_MAX_VERTICES,
            tiles,
            basemap_url: None,
            rate_limit: None,
            cors_origins: Vec::new(),
            coverage: coverage::Cache::default(),
        }
    }
}

/// Largest request body accepted (a FeatureCollection upload), in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Mounts every route of the contract.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .app_data(
            web::PathConfig::default()
                .error_handler(|e, _| ApiError::not_found(format!("path: {e}")).into()),
        )
        // Fixed paths first: the router tries resources in order, and each `{...}` pattern
        // costs a regex match.
        .service(get("/nearest", nearest::nearest))
        .service(get("/coverage", coverage::coverage))
        .service(get("/coverage/gaps", coverage::gaps))
        .service(get("/coverage/uncovered", coverage::uncovered))
        .service(get("/coverage/hexes", coverage::hexes))
        .service(get("/coverage/suggest", coverage::suggest))
        .service(get("/healthz", ops::healthz))
        .service(get("/readyz", ops::readyz))
        .service(get("/metrics", ops::metrics))
        .service(get("/openapi.json", openapi::serve))
        .service(get("/audit", audit::audit))
        .service(get("/reception", reception::reception))
        .service(get(
            "/collections/services/items/{id}/vacancy",
            reception::vacancy,
        ))
        .service(
            web::resource("/admin/tokens")
                .route(web::get().to(admin::list))
                .route(web::head().to(admin::list))
                .route(web::post().to(admin::create))
                .default_service(web::to(allow("GET, HEAD, POST, OPTIONS"))),
        )
        .service(
            web::resource("/admin/tokens/{id}")
                .route(web::delete().to(admin::revoke))
                .default_service(web::to(allow("DELETE, OPTIONS"))),
        )
        .service(get("/style.json", tiles::style))
        .service(get("/tiles/{layers}/{z}/{x}/{y}.mvt", tiles::tile))
        .service(get("/tiles/{layers}.json", tiles::tilejson_handler))
        .service(get("/assets/{file}", viewer::asset))
        .service(get("/fonts/{file}", viewer::font))
        .service(get("/", features::landing))
        .service(get("/conformance", features::conformance))
        .service(get("/collections", features::collections))
        .service(get("/collections/{collection}", features::collection))
        .service(
            web::resource("/collections/{collection}/items")
                .route(web::get().to(features::items))
                .route(web::head().to(features::items))
                .route(web::post().to(features::create))
                .default_service(web::to(allow("GET, HEAD, POST, OPTIONS"))),
        )
        .service(
            web::resource("/collections/{collection}/items/{id}")
                .route(web::get().to(features::item))
                .route(web::head().to(features::item))
                .route(web::put().to(features::replace))
                .route(web::patch().to(features::patch))
                .route(web::delete().to(features::delete))
                .default_service(web::to(allow("GET, HEAD, PUT, PATCH, DELETE, OPTIONS"))),
        );
}

/// A read-only resource: GET and HEAD (the same answer without its body), OPTIONS, and 405
/// for anything else.
fn get<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args> + Clone,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .default_service(web::to(allow("GET, HEAD, OPTIONS")))
}

/// The answer for a method a resource has no route for: `OPTIONS` gets 204 with `Allow`,
/// anything else 405 with `Allow` and the JSON error body.
fn allow(
    methods: &'static str,
) -> impl Fn(actix_web::HttpRequest) -> std::future::Ready<Result<actix_web::HttpResponse, ApiError>>
+ Clone
+ 'static {
    move |req: actix_web::HttpRequest| {
        use actix_web::ResponseError;
        use actix_web::http::header::{ALLOW, HeaderValue};
        let allow = HeaderValue::from_static(methods);
        if req.method() == actix_web::http::Method::OPTIONS {
            return std::future::ready(Ok(actix_web::HttpResponse::NoContent()
                .insert_header((ALLOW, allow))
                .finish()));
        }
        let mut resp = ApiError::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{} is not supported on {}; use {methods}",
                req.method(),
                req.path()
            ),
        )
        .error_response();
        resp.headers_mut().insert(ALLOW, allow);
        std::future::ready(Ok(resp))
    }
}

/// Answer for routes that do not exist.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

pub use metrics::observe;

/// Middleware hook: any error response not already in faro's JSON shape (such as actix's own
/// 413 for an oversized body) is rewritten as `{"error", "message"}`.
pub fn json_errors<B: 'static>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::ResponseError;
    use actix_web::middleware::ErrorHandlerResponse;
    let is_json = res
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (code, message) = match status.as_u16() {
        413 => (
            "payload_too_large",
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        ),
        405 => ("method_not_allowed", "method not allowed here".to_owned()),
        s if s >= 500 => (
            "internal",
            "an internal error occurred; it has been logged".to_owned(),
        ),
        _ => (
            "bad_request",
            status
                .canonical_reason()
                .unwrap_or("bad request")
                .to_lowercase(),
        ),
    };
    let (req, _) = res.into_parts();
    let response = ApiError::new(status, code, message).error_response();
    Ok(ErrorHandlerResponse::Response(
        actix_web::dev::ServiceResponse::new(req, response).map_into_right_body(),
    ))
}
