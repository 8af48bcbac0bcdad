//! `GET /openapi.json`, generated from the handlers' annotations.
//!
//! The annotations name each operation's statuses; the bodies they refer to are the JSON
//! Schemas of [`super::schemas`]. Every 4xx and 5xx answer that an annotation gives no body of
//! its own is the error body, `{"error", "message", "details"?}` (see `ApiError`): [`document`]
//! adds it, and the `WWW-Authenticate` (401) and `Retry-After` (503) headers that come with it.

use actix_web::HttpResponse;
use serde_json::{Value, json};
use utoipa::OpenApi;

use super::{admin, audit, coverage, features, nearest, ops, reception, schemas, tiles};

#[derive(OpenApi)]
#[openapi(
    info(title = "faro", description = "Service map of the territorial network against labour exploitation. \
        Coordinates are WGS84 lon/lat; distances are metres on the WGS84 ellipsoid. \
        Operations that accept a bearer token serve anonymous callers too (public services and \
        territories only); writes need one of an editor or admin."),
    paths(
        features::landing, features::conformance, features::collections, features::collection,
        features::items, features::item, features::create, features::replace, features::patch,
        features::delete, nearest::nearest, coverage::coverage, coverage::gaps,
        coverage::uncovered, coverage::hexes, coverage::suggest, ops::healthz, ops::readyz,
        ops::metrics, serve, tiles::tile, tiles::tilejson_handler, tiles::style, audit::audit,
        admin::list, admin::create, admin::revoke, reception::vacancy, reception::reception,
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
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            // The rate limit applies everywhere but the probes (`http::limits`).
            let limited = !matches!(path.as_str(), "/healthz" | "/readyz");
            for op in item.values_mut() {
                if let Some(Value::Object(responses)) = op.get_mut("responses") {
                    if limited {
                        responses.entry("429").or_insert_with(|| {
                            json!({"description": "Over the client's rate limit (`--rate-limit`); `Retry-After` says when to retry"})
                        });
                    }
                    for (status, response) in responses.iter_mut() {
                        add_error_body(status, response);
                    }
                }
            }
            add_head_and_options(item);
        }
    }
    doc
}

/// Every resource answers `HEAD` like `GET` without the body, and `OPTIONS` with 204 and
/// `Allow` (see `super::configure`).
fn add_head_and_options(item: &mut serde_json::Map<String, Value>) {
    let mut allow: Vec<String> = ["get", "head", "post", "put", "patch", "delete"]
        .iter()
        .filter(|m| item.contains_key(**m) || (**m == "head" && item.contains_key("get")))
        .map(|m| m.to_uppercase())
        .collect();
    allow.push("OPTIONS".to_owned());
    let allow = allow.join(", ");
    if let Some(get) = item.get("get").cloned() {
        let mut head = get;
        if let Value::Object(head) = &mut head {
            let id = head
                .get("operationId")
                .and_then(Value::as_str)
                .unwrap_or("get")
                .to_owned();
            head.insert("operationId".to_owned(), json!(format!("{id}_head")));
            let summary = head
                .get("summary")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            head.insert(
                "summary".to_owned(),
                json!(format!("{summary} Headers only (HEAD).")),
            );
            head.remove("description");
            if let Some(Value::Object(responses)) = head.get_mut("responses") {
                for response in responses.values_mut().filter_map(Value::as_object_mut) {
                    response.remove("content");
                }
            }
        }
        item.insert("head".to_owned(), head);
    }
    let first = ["get", "post", "put", "patch", "delete"]
        .iter()
        .find_map(|m| item.get(*m))
        .cloned()
        .unwrap_or_default();
    let id = first["operationId"].as_str().unwrap_or("resource");
    let path_params: Vec<&Value> = first["parameters"]
        .as_array()
        .map(|ps| ps.iter().filter(|p| p["in"] == "path").collect())
        .unwrap_or_default();
    item.insert(
        "options".to_owned(),
        json!({
            "tags": first["tags"],
            "operationId": format!("{id}_options"),
            "parameters": path_params,
            "summary": "The methods this resource answers.",
            "responses": {
                "204": {
                    "description": "No body; `Allow` lists the methods",
                    "headers": {"Allow": {
                        "required": true, "schema": {"type": "string", "const": allow}, "example": allow
                    }}
                },
                "429": {
                    "description": "Over the client's rate limit (`--rate-limit`); `Retry-After` says when to retry",
                    "content": {"application/json": {"schema": schemas::schema_ref("Error")}},
                    "headers": {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}}
                }
            }
        }),
    );
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
        "503" | "429" => Some(("Retry-After", "Seconds to wait before retrying")),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((method.clone(), path.clone(), op));
            }
        }
        out
    }

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 50, "{found:?}");
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(schemas.contains_key(name), "dangling {r}");
        }
    }

    #[test]
    fn every_answer_but_204_and_304_has_a_body_schema() {
        let doc = document();
        let ops = operations(&doc);
        // 29 annotated operations; HEAD on each of the 23 paths with a GET, and OPTIONS on
        // each of the 24 paths.
        assert_eq!(ops.len(), 29 + 23 + 24);
        for (method, path, op) in ops {
            for (status, response) in op["responses"].as_object().unwrap() {
                let content = response.get("content");
                if status == "204" || status == "304" || method == "head" {
                    assert!(content.is_none(), "{method} {path} {status}");
                    continue;
                }
                let content = content
                    .and_then(Value::as_object)
                    .unwrap_or_else(|| panic!("{method} {path} {status} has no body"));
                for (media_type, body) in content {
                    assert!(
                        body.get("schema").is_some(),
                        "{method} {path} {status} {media_type}"
                    );
                }
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &content["application/json"]["schema"]["$ref"];
                    assert!(
                        schema == "#/components/schemas/Error"
                            || schema == "#/components/schemas/NotReady",
                        "{method} {path} {status}: {schema}"
                    );
                }
            }
        }
    }

    #[test]
    fn head_is_get_without_bodies_and_options_lists_the_methods() {
        let doc = document();
        let item = &doc["paths"]["/collections/{collection}/items/{id}"];
        assert_eq!(item["head"]["parameters"], item["get"]["parameters"]);
        let statuses = |m: &str| -> Vec<String> {
            item[m]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        assert_eq!(statuses("head"), statuses("get"));
        assert_eq!(
            item["options"]["responses"]["204"]["headers"]["Allow"]["example"],
            "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"
        );
        assert_eq!(
            doc["paths"]["/collections/{collection}/items"]["options"]["responses"]["204"]["headers"]
                ["Allow"]["example"],
            "GET, HEAD, POST, OPTIONS"
        );
        // A resource without GET or POST still names its path parameters.
        let revoke = &doc["paths"]["/admin/tokens/{id}"]["options"];
        assert_eq!(revoke["parameters"][0]["name"], "id", "{revoke}");
        let ids: std::collections::HashSet<&str> = operations(&doc)
            .iter()
            .map(|(_, _, op)| op["operationId"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 76, "operation ids are unique");
    }

    #[test]
    fn items_document_f_and_the_media_type_of_each_export() {
        let doc = document();
        let get = &doc["paths"]["/collections/{collection}/items"]["get"];
        let f = get["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "f")
            .unwrap();
        assert_eq!(f["in"], "query");
        let formats: Vec<&str> = f["schema"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut media: Vec<&str> = get["responses"]["200"]["content"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        media.sort_unstable();
        // Each `f` names a format whose media type the 200 answer lists.
        for f in formats {
            let format: crate::io::export::ExportFormat = f.parse().unwrap();
            let media_type = format.media_type().split(';').next().unwrap();
            assert!(
                media.contains(&media_type),
                "f={f}: {media_type} in {media:?}"
            );
        }
        assert_eq!(
            media,
            [
                "application/flatgeobuf",
                "application/geo+json",
                "application/geopackage+sqlite3",
                "text/csv"
            ]
        );
    }

    #[test]
    fn writes_need_a_token_and_an_if_match() {
        let doc = document();
        for (method, path, op) in operations(&doc) {
            let any_write = ["post", "put", "patch", "delete"].contains(&method.as_str());
            // Writes of records; the other writes (`/admin/tokens`) need a token too.
            let writes = any_write && path.starts_with("/collections");
            let security = op["security"].as_array();
            if any_write {
                assert_eq!(op["security"], json!([{"bearer": []}]), "{method} {path}");
            }
            if writes {
                assert_eq!(
                    op["security"],
                    json!([{"bearer": []}]),
                    "{method} {path} must require a token"
                );
                for status in ["401", "403", "404", "503"] {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path} {status}"
                    );
                }
            }
            if method != "post" && writes {
                let if_match = op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == "If-Match")
                    .unwrap_or_else(|| panic!("{method} {path} lacks If-Match"));
                assert_eq!(if_match["in"], "header");
                assert_eq!(if_match["required"], true);
                for status in ["412", "428"] {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path} {status}"
                    );
                }
            }
            // An operation that reads a token can refuse it.
            if security.is_some() {
                assert!(op["responses"].get("401").is_some(), "{method} {path}");
            }
        }
    }
}
