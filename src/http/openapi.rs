//! `GET /openapi.json`, generated from the handlers' annotations.
//!
//! The annotations name each operation's statuses; the bodies they refer to are the JSON
//! Schemas of [`super::schemas`]. Every 4xx and 5xx answer that an annotation gives no body of
//! its own is the error body, `{"error", "message", "details"?}` (see `ApiError`): [`document`]
//! adds it, and the `WWW-Authenticate` (401) and `Retry-After` (503) headers that come with it.

use actix_web::HttpResponse;
use serde_json::{Value, json};
use utoipa::OpenApi;

use super::{features, nearest, ops, schemas};

#[derive(OpenApi)]
#[openapi(
    info(title = "faro", description = "Service map of the territorial network against labour exploitation. \
        Coordinates are WGS84 lon/lat; distances are metres on the WGS84 ellipsoid. \
        Operations that accept a bearer token serve anonymous callers too (public services and \
        territories only); writes need one of an editor or admin."),
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
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `faro token create --role operator|editor|admin`",
                    ))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document: the annotations' paths, the schemas they refer to, and the error body
/// on every error status without one.
fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    if let Some(Value::Object(components)) = doc.get_mut("components") {
        let slot = components
            .entry("schemas")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(existing) = slot {
            existing.extend(schemas::components());
        }
    }
    if let Some(Value::Object(paths)) = doc.get_mut("paths") {
        for operation in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in operation.values_mut() {
                if let Some(Value::Object(responses)) = op.get_mut("responses") {
                    for (status, response) in responses.iter_mut() {
                        add_error_body(status, response);
                    }
                }
            }
        }
    }
    doc
}

/// The error body (and its headers) on a 4xx or 5xx response that has no content.
fn add_error_body(status: &str, response: &mut Value) {
    let is_error = status.starts_with('4') || status.starts_with('5');
    let Value::Object(response) = response else {
        return;
    };
    if !is_error || response.contains_key("content") {
        return;
    }
    response.insert(
        "content".to_owned(),
        json!({"application/json": {"schema": schemas::schema_ref("Error")}}),
    );
    let header = match status {
        "401" => Some((
            "WWW-Authenticate",
            "`Bearer realm=\"faro\"`: a bearer token is needed",
        )),
        "503" => Some(("Retry-After", "Seconds to wait before retrying")),
        _ => None,
    };
    if let Some((name, description)) = header {
        response.insert(
            "headers".to_owned(),
            json!({ name: {"description": description, "schema": {"type": "string"}} }),
        );
    }
}

/// The OpenAPI document as JSON text.
pub fn openapi_json() -> String {
    document().to_string()
}

/// This API's OpenAPI 3 definition.
#[utoipa::path(get, path = "/openapi.json", responses(
    (status = 200, description = "OpenAPI 3.1 document", body = Object, content_type = "application/vnd.oai.openapi+json")))]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/vnd.oai.openapi+json;version=3.0")
        .body(openapi_json())
}
