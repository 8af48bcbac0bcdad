//! OGC API – Features: landing page, conformance, collections, items (Part 1 Core) and
//! create/replace/update/delete (Part 4).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, Header as _};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::ApiError;
use super::{AppState, params};
use crate::domain::feature::{FeatureView, to_feature};
use crate::domain::{
    AccessError, Bbox, Collection, FeatureInput, Principal, Record, RecordId, ServiceKind,
    TerritoryLevel, WorksiteKind,
};
use crate::index::query::{ItemsQuery, Page, QueryError, View};
use crate::storage::{Precondition, WriteOp};

pub const GEOJSON: &str = "application/geo+json";
const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 10_000;

/// `scheme://host` of the request, for absolute links.
pub fn base_url(req: &HttpRequest) -> String {
    super::base_url::base_url(req)
}

fn link(href: String, rel: &str, kind: &str, title: &str) -> Value {
    json!({"href": Value::String(href), "rel": rel, "type": kind, "title": title})
}

fn parse_collection(name: &str) -> Result<Collection, ApiError> {
    name.parse().map_err(ApiError::not_found)
}

fn parse_id(id: &str) -> Result<RecordId, ApiError> {
    RecordId::parse(id).map_err(|e| ApiError::not_found(e.reason))
}

/// A GeoJSON FeatureCollection as OGC API Features writes it, serialised without building a
/// `Value` tree (responses of thousands of features stay cheap).
#[derive(serde::Serialize)]
pub struct FeatureCollectionView<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    features: Vec<FeatureView<'a>>,
    #[serde(rename = "numberMatched", skip_serializing_if = "Option::is_none")]
    number_matched: Option<usize>,
    #[serde(rename = "numberReturned")]
    number_returned: usize,
    #[serde(rename = "timeStamp", skip_serializing_if = "Option::is_none")]
    time_stamp: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<Value>,
}

impl<'a> FeatureCollectionView<'a> {
    pub fn new(features: Vec<FeatureView<'a>>) -> Self {
        Self {
            kind: "FeatureCollection",
            number_returned: features.len(),
            features,
            number_matched: None,
            time_stamp: None,
            links: Vec::new(),
        }
    }

    /// The response, `application/geo+json`.
    pub fn respond(&self, status: StatusCode) -> HttpResponse {
        match serde_json::to_vec(self) {
            Ok(body) => HttpResponse::build(status).content_type(GEOJSON).body(body),
            Err(e) => actix_web::ResponseError::error_response(&ApiError::internal(
                "serialising features",
                &e,
            )),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FormatParams {
    /// `json` (the default for non-browsers); `html` (the viewer) on the landing page only.
    #[param(schema_with = super::schemas::params::format_json_or_html)]
    f: Option<String>,
}

/// Landing page: the map viewer for browsers, the OGC landing document for everyone else.
#[utoipa::path(get, path = "/", params(FormatParams), responses(
    (status = 200, description = "OGC API landing page; the map viewer (HTML) for `f=html`, or for `Accept: text/html` without `f`",
        content(
            (ref("#/components/schemas/LandingPage") = "application/json"),
            (String = "text/html"))),
    (status = 400, description = "Unknown query parameter, or `f` other than json or html"),
))]
pub async fn landing(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let p: FormatParams = params::raw(&req)?;
    let wants_html = params::check_format(p.f.as_deref(), true)?
        || (p.f.is_none()
            && req
                .headers()
                .get(header::ACCEPT)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|a| a.contains("text/html")));
    let base = base_url(&req);
    if wants_html {
        return Ok(super::viewer::page(&state));
    }
    Ok(HttpResponse::Ok().json(json!({
        "title": "faro",
        "description": "Service map of the territorial network against labour exploitation: \
                        services, informal settlements, worksites and territories.",
        "links": [
            link(format!("{base}/?f=json"), "self", "application/json", "This document"),
            link(format!("{base}/openapi.json"), "service-desc", "application/vnd.oai.openapi+json;version=3.0", "The API definition"),
            link(format!("{base}/conformance"), "conformance", "application/json", "Conformance classes"),
            link(format!("{base}/collections"), "data", "application/json", "Collections"),
        ]
    })))
}

/// Conformance classes implemented.
#[utoipa::path(get, path = "/conformance", responses(
    (status = 200, description = "Conformance classes",
        body = ref("#/components/schemas/Conformance"), content_type = "application/json"),
))]
pub async fn conformance() -> HttpResponse {
    HttpResponse::Ok().json(json!({"conformsTo": [
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
        "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
        "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    ]}))
}

fn collection_json(base: &str, collection: Collection, view: &View) -> Value {
    let mut doc = json!({
        "id": collection.as_str(),
        "title": collection.title(),
        "description": collection.description(),
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            link(format!("{base}/collections/{collection}"), "self", "application/json", collection.title()),
            link(format!("{base}/collections/{collection}/items"), "items", GEOJSON, "Items"),
        ],
    });
    if view.visibility().check_collection(collection).is_err() {
        doc["restricted"] = json!(true);
        return doc;
    }
    if let Some(e) = view.extent(collection) {
        doc["extent"] = json!({"spatial": {
            "bbox": [[e.min().x, e.min().y, e.max().x, e.max().y]],
            "crs": CRS84,
        }});
    }
    doc
}

/// The four collections.
#[utoipa::path(get, path = "/collections", params(FormatParams), security((), ("bearer" = [])), responses(
    (status = 200, description = "The four collections; those the caller may not read say `restricted: true`",
        body = ref("#/components/schemas/Collections"), content_type = "application/json"),
    (status = 400, description = "Unknown query parameter, or `f` other than json"),
    (status = 401, description = "`Authorization` is not a valid, live bearer token"),
    (status = 500, description = "Internal error; the cause is logged"),
    (status = 503, description = "The bearer token could not be checked: the database is unreachable"),
))]
pub async fn collections(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let p: FormatParams = params::raw(&req)?;
    params::check_format(p.f.as_deref(), false)?;
    let base = base_url(&req);
    let view = caller.view(&state);
    let list: Vec<Value> = Collection::ALL
        .iter()
        .map(|c| collection_json(&base, *c, &view))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "collections": list,
        "links": [link(format!("{base}/collections"), "self", "application/json", "Collections")],
    })))
}

/// One collection's description.
#[utoipa::path(get, path = "/collections/{collection}", security((), ("bearer" = [])),
    params(
        ("collection" = Collection, Path, description = "services, settlements, worksites or territories", example = "services"),
        FormatParams,
    ),
    responses(
        (status = 200, description = "The collection",
            body = ref("#/components/schemas/CollectionInfo"), content_type = "application/json"),
        (status = 400, description = "Unknown query parameter, or `f` other than json"),
        (status = 401, description = "`Authorization` is not a valid, live bearer token"),
        (status = 404, description = "Unknown collection"),
        (status = 500, description = "Internal error; the cause is logged"),
        (status = 503, description = "The bearer token could not be checked: the database is unreachable"),
    ))]
pub async fn collection(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let collection = parse_collection(&path)?;
    let p: FormatParams = params::raw(&req)?;
    params::check_format(p.f.as_deref(), false)?;
    Ok(HttpResponse::Ok().json(collection_json(
        &base_url(&req),
        collection,
        &caller.view(&state),
    )))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ItemsParams {
    /// `minLon,minLat,maxLon,maxLat` (WGS84); items whose geometry intersects it.
    #[param(schema_with = super::schemas::params::bbox)]
    bbox: Option<String>,
    /// Page size, 1 to 10000 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 10000)]
    limit: Option<String>,
    /// Items to skip (default 0).
    #[param(value_type = Option<i64>, minimum = 0)]
    offset: Option<String>,
    /// Comma list: service kinds, worksite kinds, or territory levels, as the collection has
    /// (settlements have none).
    #[param(schema_with = super::schemas::params::any_kinds)]
    kind: Option<String>,
    /// Id of a territory; items intersecting it.
    territory: Option<String>,
    /// Case-insensitive text in name, organization, description, address or notes.
    q: Option<String>,
    /// `json` (GeoJSON, the default), `csv`, `gpkg` (GeoPackage) or `fgb` (FlatGeobuf): the
    /// same page in that format, as an attachment.
    #[param(schema_with = super::schemas::params::format_items)]
    f: Option<String>,
}

/// Which kinds a `kind=` filter accepts, per collection.
fn kind_filter(collection: Collection, value: Option<&str>) -> Result<Vec<&'static str>, ApiError> {
    Ok(match collection {
        Collection::Services => params::list::<ServiceKind>("kind", value)?
            .into_iter()
            .map(ServiceKind::as_str)
            .collect(),
        Collection::Worksites => params::list::<WorksiteKind>("kind", value)?
            .into_iter()
            .map(WorksiteKind::as_str)
            .collect(),
        Collection::Territories => params::list::<TerritoryLevel>("kind", value)?
            .into_iter()
            .map(TerritoryLevel::as_str)
            .collect(),
        Collection::Settlements => {
            if value.is_some() {
                return Err(ApiError::invalid_parameter(
                    "kind",
                    "settlements have no kind to filter on",
                ));
            }
            Vec::new()
        }
    })
}

/// The same query string with `offset` replaced.
fn with_offset(query_string: &str, offset: i64) -> String {
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query_string).unwrap_or_default();
    pairs.retain(|(k, _)| k != "offset");
    pairs.push(("offset".to_owned(), offset.to_string()));
    serde_urlencoded::to_string(&pairs).unwrap_or_default()
}

/// Items of a collection, filtered and paged.
#[utoipa::path(get, path = "/collections/{collection}/items", security((), ("bearer" = [])),
    params(
        ("collection" = Collection, Path, description = "services, settlements, worksites or territories", example = "services"),
        ItemsParams,
    ),
    responses(
        (status = 200, description = "A page of items: a GeoJSON FeatureCollection with numberMatched, numberReturned, timeStamp and links; with `f=csv`, `f=gpkg` or `f=fgb` the same page as a CSV, GeoPackage or FlatGeobuf file (`Content-Disposition: attachment`)",
            content(
                (ref("#/components/schemas/ItemsPage") = "application/geo+json"),
                (ref("#/components/schemas/ItemsCsv") = "text/csv"),
                (ref("#/components/schemas/ItemsGeoPackage") = "application/geopackage+sqlite3"),
                (ref("#/components/schemas/ItemsFlatGeobuf") = "application/flatgeobuf"))),
        (status = 400, description = "Bad query parameter (`f` other than json, csv, gpkg or fgb among them); the message names it"),
        (status = 401, description = "The collection is restricted to authorised roles (settlements, worksites), or `Authorization` is not a valid, live bearer token"),
        (status = 404, description = "Unknown collection"),
        (status = 500, description = "Internal error; the cause is logged"),
        (status = 503, description = "The bearer token could not be checked: the database is unreachable"),
    ))]
pub async fn items(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let collection = parse_collection(&path)?;
    let view = caller.view(&state);
    view.visibility().check_collection(collection)?;
    let p: ItemsParams = params::raw(&req)?;
    // f=csv|gpkg|fgb: the same page in that format (src/io/export.rs).
    let export = match p.f.as_deref() {
        None | Some("json" | "geojson") => None,
        Some(f @ ("csv" | "gpkg" | "fgb")) => f.parse::<crate::io::export::ExportFormat>().ok(),
        Some(other) => {
            return Err(ApiError::invalid_parameter(
                "f",
                format!("unsupported format `{other}`; use f=json, csv, gpkg or fgb"),
            ));
        }
    };
    let limit = params::int_in("limit", p.limit.as_deref(), 1, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let offset = params::int_in("offset", p.offset.as_deref(), 0, i64::MAX)?.unwrap_or(0);
    let bbox = p
        .bbox
        .as_deref()
        .map(Bbox::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_parameter("bbox", e.reason))?;
    let territory = p
        .territory
        .as_deref()
        .map(RecordId::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_parameter("territory", e.reason))?;
    let query = ItemsQuery {
        bbox,
        territory,
        kinds: kind_filter(collection, p.kind.as_deref())?,
        text: p
            .q
            .as_deref()
            .map(|q| q.trim().to_lowercase())
            .filter(|q| !q.is_empty()),
        offset: usize::try_from(offset).unwrap_or(usize::MAX),
        limit: Some(usize::try_from(limit).unwrap_or(usize::MAX)),
    };
    let base = base_url(&req);
    let path = req.path().to_owned();
    let query_string = req.query_string().to_owned();
    let answer = move || -> Result<Vec<u8>, ApiError> {
        let page = view.items(collection, &query).map_err(|e| match e {
            QueryError::UnknownTerritory(_) => ApiError::invalid_parameter("territory", &e),
            QueryError::Access(a) => a.into(),
        })?;
        if let Some(format) = export {
            return crate::io::export::to_bytes(format, collection, &page.records)
                .map_err(|e| ApiError::internal("writing the export", &e));
        }
        items_response(
            &base,
            &path,
            &query_string,
            collection,
            &page,
            offset,
            limit,
        )
    };
    // Scans, and pages of thousands of features to serialise, stay off the async workers.
    let body = if export.is_none()
        && p.bbox.is_none()
        && p.territory.is_none()
        && p.q.is_none()
        && limit <= DEFAULT_LIMIT
    {
        answer()?
    } else {
        web::block(answer)
            .await
            .map_err(|e| ApiError::internal("listing items", &e))??
    };
    if let Some(format) = export {
        return Ok(HttpResponse::Ok()
            .content_type(format.media_type())
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{collection}.{}\"",
                    format.extension()
                ),
            ))
            .body(body));
    }
    Ok(HttpResponse::Ok().content_type(GEOJSON).body(body))
}

fn items_response(
    base: &str,
    path: &str,
    query_string: &str,
    collection: Collection,
    page: &Page,
    offset: i64,
    limit: i64,
) -> Result<Vec<u8>, ApiError> {
    let number_matched = page.number_matched;
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(number_matched);
    let features: Vec<FeatureView<'_>> = page.records.iter().map(|r| FeatureView::new(r)).collect();
    let returned = features.len();
    let self_href = if query_string.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}{path}?{query_string}")
    };
    let mut links = vec![
        link(self_href, "self", GEOJSON, "This page"),
        link(
            format!("{base}/collections/{collection}"),
            "collection",
            "application/json",
            collection.title(),
        ),
    ];
    let next = start + returned;
    if next < number_matched {
        let next = i64::try_from(next).unwrap_or(i64::MAX);
        links.push(link(
            format!("{base}{path}?{}", with_offset(query_string, next)),
            "next",
            GEOJSON,
            "Next page",
        ));
    }
    if start > 0 {
        let prev = (offset - limit).max(0);
        links.push(link(
            format!("{base}{path}?{}", with_offset(query_string, prev)),
            "prev",
            GEOJSON,
            "Previous page",
        ));
    }
    let mut body = FeatureCollectionView::new(features);
    body.number_matched = Some(number_matched);
    body.time_stamp = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    body.links = links;
    serde_json::to_vec(&body).map_err(|e| ApiError::internal("serialising features", &e))
}

fn item_response(status: StatusCode, base: &str, record: &Record) -> HttpResponse {
    let mut feature = to_feature(record);
    let c = record.collection();
    feature["links"] = json!([
        link(
            format!("{base}/collections/{c}/items/{}", record.id()),
            "self",
            GEOJSON,
            "This item"
        ),
        link(
            format!("{base}/collections/{c}"),
            "collection",
            "application/json",
            c.title()
        ),
    ]);
    HttpResponse::build(status)
        .content_type(GEOJSON)
        .insert_header((header::ETAG, record.etag()))
        .body(feature.to_string())
}

/// One item, with its version as `ETag`.
#[utoipa::path(get, path = "/collections/{collection}/items/{id}", security((), ("bearer" = [])),
    params(
        ("collection" = Collection, Path, description = "services, settlements, worksites or territories", example = "services"),
        ("id" = String, Path, description = "Record id", example = "svc-centro-accoglienza-casier"),
        ("If-None-Match" = Option<String>, Header, pattern = r#"^(\*|(W/)?"[!#-~]*"( *, *(W/)?"[!#-~]*")*)$"#,
            description = "Entity tags of copies the client holds, or `*`; a match answers 304"),
        FormatParams,
    ),
    responses(
        (status = 200, description = "The item as a GeoJSON Feature with links (self, collection)",
            body = ref("#/components/schemas/Feature"), content_type = "application/geo+json", headers(("ETag" = String, description = "Strong entity tag of this version; send it back as `If-Match` to change the item"))),
        (status = 304, description = "Not modified: `If-None-Match` matches the current version", headers(("ETag" = String, description = "Strong entity tag of this version; send it back as `If-Match` to change the item"))),
        (status = 400, description = "Unknown query parameter, `f` other than json, or an `If-None-Match` that is not a list of entity tags"),
        (status = 401, description = "The collection is restricted to authorised roles (settlements, worksites), or `Authorization` is not a valid, live bearer token"),
        (status = 404, description = "Unknown collection, or no such item the caller may see"),
        (status = 500, description = "Internal error; the cause is logged"),
        (status = 503, description = "The bearer token could not be checked: the database is unreachable"),
    ))]
pub async fn item(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let collection = parse_collection(&c)?;
    let view = caller.view(&state);
    view.visibility().check_collection(collection)?;
    let p: FormatParams = params::raw(&req)?;
    params::check_format(p.f.as_deref(), false)?;
    let id = parse_id(&id)?;
    // A record the caller may not see answers exactly as a missing one: 404, never a 304.
    let record = view
        .get(collection, &id)
        .map_err(|e| ApiError::not_found(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("{collection} record `{id}` not found")))?;
    let not_modified = match header::IfNoneMatch::parse(&req) {
        Ok(header::IfNoneMatch::Any) => true,
        Ok(header::IfNoneMatch::Items(tags))
            if tags.is_empty() && req.headers().contains_key(header::IF_NONE_MATCH) =>
        {
            return Err(invalid_header("If-None-Match"));
        }
        Ok(header::IfNoneMatch::Items(tags)) => {
            let current = header::EntityTag::new_strong(record.entity_tag());
            tags.iter().any(|t| t.weak_eq(&current))
        }
        Err(_) if req.headers().contains_key(header::IF_NONE_MATCH) => {
            return Err(invalid_header("If-None-Match"));
        }
        Err(_) => false,
    };
    if not_modified {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, record.etag()))
            .finish());
    }
    Ok(item_response(StatusCode::OK, &base_url(&req), record))
}

fn invalid_header(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_header",
        format!("{name} is not a list of entity tags (like \"3-5f1e2a\") or `*`"),
    )
}

/// The item a write addresses, once the caller may write to its collection.
fn writable_item(
    path: web::Path<(String, String)>,
    principal: &Principal,
) -> Result<(Collection, RecordId), ApiError> {
    let (c, id) = path.into_inner();
    let collection = parse_collection(&c)?;
    principal.check_write(collection)?;
    Ok((collection, parse_id(&id)?))
}

/// A token scoped to territories writes only records whose position (representative point)
/// is in its territories, both before and after the write; it never writes territories, which
/// draw its own scope. A record it may not see is answered 404, like one that does not exist.
///
/// Answers the precondition to write with: for a scoped token, the very version checked, so
/// that a concurrent move cannot slip in between the check and the write (412 then).
fn scoped_write(
    caller: &Caller,
    state: &AppState,
    collection: Collection,
    id: &RecordId,
    expected: Precondition,
    new_geometry: Option<&geo::Geometry<f64>>,
) -> Result<Precondition, ApiError> {
    if caller.0.scope().is_none() {
        return Ok(expected);
    }
    check_scoped_collection(&caller.0, collection)?;
    let view = caller.view(state);
    let current = view
        .get(collection, id)
        .map_err(|e| ApiError::not_found(e.to_string()))?
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("{collection} record `{id}` not found")))?;
    if !view.in_scope(current.geometry()) {
        return Err(AccessError::OutOfScope(format!("{collection} record `{id}`")).into());
    }
    if let Some(g) = new_geometry
        && !view.in_scope(g)
    {
        return Err(AccessError::OutOfScope(format!(
            "the new position of {collection} record `{id}`"
        ))
        .into());
    }
    if !expected.holds_for(&current) {
        return Err(crate::storage::StoreError::VersionMismatch {
            collection,
            id: id.clone(),
            expected,
            actual: current.meta().version,
            actual_tag: current.entity_tag(),
        }
        .into());
    }
    Ok(Precondition::EntityTags(vec![current.entity_tag()]))
}

/// A scoped token may not write territories: they draw its own scope.
fn check_scoped_collection(principal: &Principal, collection: Collection) -> Result<(), ApiError> {
    match principal.role() {
        Some(role) if principal.scope().is_some() && collection == Collection::Territories => {
            Err(AccessError::Forbidden {
                role,
                action: "write territories with a token scoped to territories".to_owned(),
            }
            .into())
        }
        _ => Ok(()),
    }
}

/// What an update or delete demands of the stored record, from `If-Match` (required: without
/// it, two clients could overwrite each other's changes unknowingly).
fn precondition(req: &HttpRequest) -> Result<Precondition, ApiError> {
    if !req.headers().contains_key(header::IF_MATCH) {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition_required",
            "this write needs `If-Match` with the item's ETag (GET the item first), \
             or `If-Match: *` to apply it whatever the current version",
        ));
    }
    // actix drops list members it cannot parse: count them, so that a malformed header is a
    // 400 rather than a silent mismatch.
    let members = req
        .headers()
        .get_all(header::IF_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|m| !m.trim().is_empty())
        .count();
    match header::IfMatch::parse(req) {
        Ok(header::IfMatch::Any) => Ok(Precondition::Any),
        Ok(header::IfMatch::Items(tags)) if tags.len() != members => {
            Err(invalid_header("If-Match"))
        }
        // If-Match compares strongly: a weak tag never matches (RFC 9110, 13.1.1).
        Ok(header::IfMatch::Items(tags)) => Ok(Precondition::EntityTags(
            tags.into_iter()
                .filter(|t| !t.weak)
                .map(|t| t.tag().to_owned())
                .collect(),
        )),
        Err(_) => Err(invalid_header("If-Match")),
    }
}

/// Media types a write body may have.
const JSON_TYPES: &[&str] = &["application/json", "application/geo+json"];
const PATCH_TYPES: &[&str] = &[
    "application/json",
    "application/geo+json",
    "application/merge-patch+json",
];

/// Largest body of a single-item write (`PUT`, `PATCH`), in bytes: a feature of a million
/// vertices fits.
pub const MAX_ITEM_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Reads a write's body once the caller is known to be allowed to write: a wrong media type is
/// a 415, a body over `cap` a 413 as soon as it is seen (from `Content-Length`, or while
/// reading), and an empty or malformed body a 400.
pub(super) async fn read_json_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    allowed: &[&str],
    cap: usize,
) -> Result<Value, ApiError> {
    use futures_util::StreamExt;
    let media_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match media_type.as_deref() {
        Some(t) if allowed.contains(&t) => {}
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "Content-Type `{}` is not accepted here; send {}",
                    other.unwrap_or("(none)"),
                    allowed.join(" or ")
                ),
            ));
        }
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {cap} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(cap));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_body(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    parse_json_body(&body)
}

fn parse_json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_body(
            "the request body is empty; send GeoJSON",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_body(format!("the body is not valid JSON: {e}")))
}

/// Refuses, before any validation work, a feature whose geometry has more positions than the
/// server's cap (`--max-vertices`): 413.
fn check_vertex_cap(doc: &Value, max_vertices: usize) -> Result<(), ApiError> {
    let over = crate::domain::feature::positions_per_feature(doc)
        .into_iter()
        .find(|(_, n)| *n > max_vertices);
    match over {
        Some((feature, n)) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_vertices",
            format!(
                "feature {feature}: field `geometry`: {n} positions; this server accepts at most {max_vertices} per geometry (max_vertices)"
            ),
        )),
        None => Ok(()),
    }
}

/// Runs validation (polygons of many vertices are CPU work) on a blocking thread.
async fn off_worker<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(|e| ApiError::internal("validating the body", &e))?
}

/// Creates one Feature or every Feature of a FeatureCollection; all or nothing.
#[utoipa::path(post, path = "/collections/{collection}/items", security(("bearer" = [])),
    params(
        ("collection" = Collection, Path, description = "services, settlements, worksites or territories", example = "services"),
    ),
    request_body(description = "A GeoJSON Feature, or a FeatureCollection (stored all or nothing)", content(
        (ref("#/components/schemas/FeatureDocument") = "application/geo+json", example = json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [12.2431, 45.6669]},
                "properties": {"name": "Sportello lavoro (example)", "kind": "help_desk",
                    "languages": ["it", "en"], "opening_hours": "Mo-Fr 09:00-13:00", "fictional": true}
            })),
        (ref("#/components/schemas/FeatureDocument") = "application/json"),
    )),
    responses(
        (status = 201, description = "Created: the stored Feature (with `Location` and `ETag`) for a Feature sent, a FeatureCollection for a FeatureCollection",
            body = ref("#/components/schemas/Created"), content_type = "application/geo+json",
            headers(("Location" = String, description = "URL of the created item, for a single Feature"), ("ETag" = String, description = "Strong entity tag of this version; send it back as `If-Match` to change the item"))),
        (status = 400, description = "Empty or malformed JSON, or invalid features: the message names the feature number and field, `details` lists every problem"),
        (status = 401, description = "No bearer token, or not a valid, live one"),
        (status = 403, description = "The token's role may not write (operators read only)"),
        (status = 404, description = "Unknown collection"),
        (status = 409, description = "A record with a given id exists"),
        (status = 413, description = "The body is larger than 64 MiB"),
        (status = 415, description = "Content-Type is neither application/geo+json nor application/json"),
        (status = 500, description = "Internal error; the cause is logged"),
        (status = 503, description = "The database is unreachable or busy; retry after `Retry-After` seconds"),
    ))]
pub async fn create(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let collection = parse_collection(&path)?;
    caller.0.check_write(collection)?;
    let doc = read_json_body(&req, payload, JSON_TYPES, super::MAX_BODY_BYTES).await?;
    check_vertex_cap(&doc, state.max_vertices)?;
    let single = doc.get("type").and_then(Value::as_str) == Some("Feature");
    let inputs = off_worker(move || Ok(FeatureInput::parse_document(collection, doc)?)).await?;
    if inputs.is_empty() {
        return Err(ApiError::bad_body("the FeatureCollection has no features"));
    }
    if caller.0.scope().is_some() {
        check_scoped_collection(&caller.0, collection)?;
        let view = caller.view(&state);
        if let Some((n, _)) = inputs
            .iter()
            .enumerate()
            .find(|(_, f)| !view.in_scope(f.geometry.geometry()))
        {
            return Err(AccessError::OutOfScope(format!(
                "the position of feature {} of the body",
                n + 1
            ))
            .into());
        }
    }
    let ops = inputs
        .into_iter()
        .map(|f| WriteOp::insert(collection, f))
        .collect();
    let changes = state.catalog.write(ops, &caller.0.actor()).await?;
    let records: Vec<Arc<Record>> = changes
        .into_iter()
        .filter_map(|c| match c {
            crate::storage::Change::Upsert(r) => Some(r),
            crate::storage::Change::Delete { .. } => None,
        })
        .collect();
    let base = base_url(&req);
    if single && let Some(r) = records.first() {
        let mut resp = item_response(StatusCode::CREATED, &base, r);
        if let Ok(v) = header::HeaderValue::from_str(&format!(
            "{base}/collections/{collection}/items/{}",
            r.id()
        )) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(resp);
    }
    let features = records.iter().map(|r| FeatureView::new(r)).collect();
    Ok(FeatureCollectionView::new(features).respond(StatusCode::CREATED))
}

/// Replaces an item's geometry and properties. `If-Match` guards against lost updates.
#[utoipa::path(put, path = "/collections/{collection}/items/{id}", security(("bearer" = [])),
    params(
        ("collection" = Collection, Path, description = "services, settlements, worksites or territories", example = "services"),
        ("id" = String, Path, description = "Record id", example = "svc-centro-accoglienza-casier"),
        ("If-Match" = String, Header, example = "*", pattern = r#"^(\*|(W/)?"[!#-~]*"( *, *(W/)?"[!#-~]*")*)$"#,
            description = "The item's `ETag` (from a GET), or `*` to apply the write whatever the current version; without it the write is refused with 428"),
    ),
    request_body(description = "A GeoJSON Feature; an `id` must equal the path's", content(
        (ref("#/components/schemas/FeatureInput") = "application/geo+json", example = json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [12.2431, 45.6669]},
                "properties": {"name": "Sportello lavoro (example)", "kind": "help_desk",
                    "languages": ["it", "en"], "opening_hours": "Mo-Fr 09:00-13:00", "fictional": true}
            })),
        (ref("#/components/schemas/FeatureInput") = "application/json"),
    )),
    responses(
        (status = 200, description = "Replaced: the stored Feature",
            body = ref("#/components/schemas/Feature"), content_type = "application/geo+json", headers(("ETag" = String, description = "Strong entity tag of this version; send it back as `If-Match` to change the item"))),
        (status = 400, description = "Empty or malformed JSON, an invalid feature (the message names the field), an `id` other than the path's, or an `If-Match` that is not a list of entity tags"),
        (status = 401, description = "No bearer token, or not a valid, live one"),
        (status = 403, description = "The token's role may not write (operators read only)"),
        (status = 404, description = "Unknown collection, or no such item"),
        (status = 412, description = "`If-Match` does not match the current version; fetch the item again"),
        (status = 413, description = "The body is larger than 32 MiB"),
        (status = 415, description = "Content-Type is neither application/geo+json nor application/json"),
        (status = 428, description = "No `If-Match`"),
        (status = 500, description = "Internal error; the cause is logged"),
        (status = 503, description = "The database is unreachable or busy; retry after `Retry-After` seconds"),
    ))]
pub async fn replace(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (collection, id) = writable_item(path, &caller.0)?;
    let expected = precondition(&req)?;
    let doc = read_json_body(&req, payload, JSON_TYPES, MAX_ITEM_BODY_BYTES).await?;
    check_vertex_cap(&doc, state.max_vertices)?;
    let input = off_worker(move || Ok(FeatureInput::parse(collection, doc)?)).await?;
    if let Some(body_id) = &input.id
        && body_id != &id
    {
        return Err(ApiError::bad_body(format!(
            "field `id`: the body's id `{body_id}` differs from the path's `{id}`"
        )));
    }
    replace_in_scope(&req, &state, &caller, collection, id, expected, input).await
}

/// Replaces a record with `input`, within the caller's territories (PUT and PATCH).
async fn replace_in_scope(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    collection: Collection,
    id: RecordId,
    expected: Precondition,
    input: FeatureInput,
) -> Result<HttpResponse, ApiError> {
    let expected = scoped_write(
        caller,
        state,
        collection,
        &id,
        expected,
        Some(input.geometry.geometry()),
    )?;
    write_one(
        req,
        state,
        &caller.0,
        WriteOp::Replace {
            id,
            expected,
            geometry: input.geometry,
            attributes: input.attributes,
        },
    )
    .await
}

async fn write_one(
    req: &HttpRequest,
    state: &AppState,
    principal: &Principal,
    op: WriteOp,
) -> Result<HttpResponse, ApiError> {
    let changes = state.catalog.write(vec![op], &principal.actor()).await?;
    match changes.into_iter().next() {
        Some(crate::storage::Change::Upsert(r)) => {
            Ok(item_response(StatusCode::OK, &base_url(req), &r))
        }
        _ => Ok(HttpResponse::NoContent().finish()),
    }
}

/// JSON merge patch (RFC 7396) of an item's properties, and optionally a new geometry.
#[utoipa::path(patch, path = "/collections/{collection}/items/{id}", security(("bearer" = [])),
    params(
        ("collection" = Collection, Path, description = "services, settlements, worksites or territories", example = "services"),
        ("id" = String, Path, description = "Record id", example = "svc-centro-accoglienza-casier"),
        ("If-Match" = String, Header, example = "*", pattern = r#"^(\*|(W/)?"[!#-~]*"( *, *(W/)?"[!#-~]*")*)$"#,
            description = "The item's `ETag` (from a GET), or `*` to apply the write whatever the current version; without it the write is refused with 428"),
    ),
    request_body(description = "`{\"properties\": {...}, \"geometry\": {...}}`: properties merged (RFC 7396; a null removes one), the geometry replaced", content(
        (ref("#/components/schemas/FeaturePatch") = "application/merge-patch+json",
            example = json!({"properties": {"description": "Checked by phone (example)."}})),
        (ref("#/components/schemas/FeaturePatch") = "application/json"),
        (ref("#/components/schemas/FeaturePatch") = "application/geo+json"),
    )),
    responses(
        (status = 200, description = "Updated: the stored Feature",
            body = ref("#/components/schemas/Feature"), content_type = "application/geo+json", headers(("ETag" = String, description = "Strong entity tag of this version; send it back as `If-Match` to change the item"))),
        (status = 400, description = "Empty or malformed JSON, a patch that is not an object of `properties` and `geometry`, a result that is not a valid feature (the message names the field), or an `If-Match` that is not a list of entity tags"),
        (status = 401, description = "No bearer token, or not a valid, live one"),
        (status = 403, description = "The token's role may not write (operators read only)"),
        (status = 404, description = "Unknown collection, or no such item"),
        (status = 412, description = "`If-Match` does not match the current version; fetch the item again"),
        (status = 413, description = "The body is larger than 32 MiB"),
        (status = 415, description = "Content-Type is not application/merge-patch+json, application/json or application/geo+json"),
        (status = 428, description = "No `If-Match`"),
        (status = 500, description = "Internal error; the cause is logged"),
        (status = 503, description = "The database is unreachable or busy; retry after `Retry-After` seconds"),
    ))]
pub async fn patch(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (collection, id) = writable_item(path, &caller.0)?;
    let demanded = precondition(&req)?;
    let Value::Object(mut doc) =
        read_json_body(&req, payload, PATCH_TYPES, MAX_ITEM_BODY_BYTES).await?
    else {
        return Err(ApiError::bad_body(
            "a patch is a JSON object with `properties` and/or `geometry`",
        ));
    };
    let current = caller
        .view(&state)
        .get(collection, &id)
        .map_err(|e| ApiError::not_found(e.to_string()))?
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("{collection} record `{id}` not found")))?;
    // The patch is merged into the indexed record: the store must still hold exactly that one,
    // and it must be the one the client asked for.
    if !demanded.holds_for(&current) {
        return Err(crate::storage::StoreError::VersionMismatch {
            collection,
            id,
            expected: demanded,
            actual: current.meta().version,
            actual_tag: current.entity_tag(),
        }
        .into());
    }
    let expected = Precondition::EntityTags(vec![current.entity_tag()]);
    let mut props: Map<String, Value> = current.attributes().to_json();
    match doc.remove("properties") {
        None | Some(Value::Null) => {}
        Some(Value::Object(changes)) => {
            for (k, v) in changes {
                if v.is_null() {
                    props.remove(&k);
                } else {
                    props.insert(k, v);
                }
            }
        }
        Some(_) => return Err(ApiError::bad_body("field `properties`: must be an object")),
    }
    let geometry = match doc.remove("geometry") {
        None | Some(Value::Null) => crate::domain::feature::geometry_json(current.geometry()),
        Some(g) => g,
    };
    for key in doc.keys() {
        if key != "type" && key != "id" {
            return Err(ApiError::bad_body(format!(
                "field `{key}`: a patch holds only `properties` and `geometry`"
            )));
        }
    }
    let feature = json!({"type": "Feature", "geometry": geometry, "properties": props});
    check_vertex_cap(&feature, state.max_vertices)?;
    let input = off_worker(move || Ok(FeatureInput::parse(collection, feature)?)).await?;
    replace_in_scope(&req, &state, &caller, collection, id, expected, input).await
}

/// Deletes an item.
// The id example differs from the other methods' so that a client trying the examples in any
// order still finds the item that GET, PUT and PATCH name.
#[utoipa::path(delete, path = "/collections/{collection}/items/{id}", security(("bearer" = [])),
    params(
        ("collection" = Collection, Path, description = "services, settlements, worksites or territories", example = "services"),
        ("id" = String, Path, description = "Record id", example = "svc-centro-accoglienza-vittorio-veneto"),
        ("If-Match" = String, Header, example = "*", pattern = r#"^(\*|(W/)?"[!#-~]*"( *, *(W/)?"[!#-~]*")*)$"#,
            description = "The item's `ETag` (from a GET), or `*` to apply the write whatever the current version; without it the write is refused with 428"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "An `If-Match` that is not a list of entity tags"),
        (status = 401, description = "No bearer token, or not a valid, live one"),
        (status = 403, description = "The token's role may not write (operators read only)"),
        (status = 404, description = "Unknown collection, or no such item"),
        (status = 412, description = "`If-Match` does not match the current version; fetch the item again"),
        (status = 428, description = "No `If-Match`"),
        (status = 500, description = "Internal error; the cause is logged"),
        (status = 503, description = "The database is unreachable or busy; retry after `Retry-After` seconds"),
    ))]
pub async fn delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (collection, id) = writable_item(path, &caller.0)?;
    let expected = precondition(&req)?;
    let expected = scoped_write(&caller, &state, collection, &id, expected, None)?;
    state
        .catalog
        .write(
            vec![WriteOp::Delete {
                collection,
                id,
                expected,
            }],
            &caller.0.actor(),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
