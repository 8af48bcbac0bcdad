//! `GET /openapi.json`, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::OpenApi;

use super::{features, nearest, ops};

#[derive(OpenApi)]
#[openapi(
    info(title = "faro", description = "Service map of the territorial network against labour exploitation. \
        Coordinates are WGS84 lon/lat; distances are metres on the WGS84 ellipsoid."),
    paths(
        features::landing, features::conformance, features::collections, features::collection,
        features::items, features::item, features::create, features::replace, features::patch,
        features::delete, nearest::nearest, ops::healthz, ops::readyz, ops::metrics, serve,
    ),
    components(schemas(crate::domain::Collection)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document as JSON text.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_json()
        .unwrap_or_else(|_| "{}".to_owned())
}

/// This API's OpenAPI 3 definition.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "OpenAPI 3 document")))]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/vnd.oai.openapi+json;version=3.0")
        .body(openapi_json())
}
