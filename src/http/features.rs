//! OGC API – Features: landing page, conformance, collections, items (Part 1 Core) and
//! create/replace/update/delete (Part 4).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::ApiError;
use super::{AppState, params};
use crate::domain::feature::{FeatureView, to_feature};
use crate::domain::{
    Bbox, Collection, FeatureInput, Principal, Record, RecordId, ServiceKind, TerritoryLevel,
    WorksiteKind,
};
use crate::storage::WriteOp;

pub const GEOJSON: &str = "application/geo+json";
const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 10_000;

/// `scheme://host` of the request, for absolute links.
pub fn base_url(req: &HttpRequest) -> String {
    let ci = req.connection_info();
    format!("{}://{}", ci.scheme(), ci.host())
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
    /// `json` (default for non-browsers) or `html`.
    f: Option<String>,
}

/// Landing page: the map viewer for browsers, the OGC landing document for everyone else.
#[utoipa::path(get, path = "/", params(FormatParams), responses(
    (status = 200, description = "OGC API landing page (JSON), or the viewer for `Accept: text/html`")))]
pub async fn landing(req: HttpRequest) -> Result<HttpResponse, ApiError> {
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
        return Ok(HttpResponse::Ok()
            .content_type(ContentType::html())
            .body(crate::http::ops::LANDING_HTML));
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
#[utoipa::path(get, path = "/conformance", responses((status = 200, description = "Conformance classes")))]
pub async fn conformance() -> HttpResponse {
    HttpResponse::Ok().json(json!({"conformsTo": [
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
        "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
        "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    ]}))
}

fn collection_json(
    base: &str,
    collection: Collection,
    state: &AppState,
    principal: &Principal,
) -> Value {
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
    if principal.check_read(collection).is_err() {
        doc["restricted"] = json!(true);
        return doc;
    }
    let snapshot = state.catalog.snapshot();
    let layer = snapshot.unrestricted_layer(collection);
    let extent = if principal.is_authorised_reader() {
        layer.extent()
    } else {
        layer.anonymous_extent()
    };
    if let Some(e) = extent {
        doc["extent"] = json!({"spatial": {
            "bbox": [[e.min().x, e.min().y, e.max().x, e.max().y]],
            "crs": CRS84,
        }});
    }
    doc
}

/// The four collections.
#[utoipa::path(get, path = "/collections", params(FormatParams), responses((status = 200, description = "Collections")))]
pub async fn collections(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let p: FormatParams = params::raw(&req)?;
    params::check_format(p.f.as_deref(), false)?;
    let base = base_url(&req);
    let list: Vec<Value> = Collection::ALL
        .iter()
        .map(|c| collection_json(&base, *c, &state, &caller.0))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "collections": list,
        "links": [link(format!("{base}/collections"), "self", "application/json", "Collections")],
    })))
}

/// One collection's description.
#[utoipa::path(get, path = "/collections/{collection}", params(
    ("collection" = Collection, Path, description = "services, settlements, worksites or territories"), FormatParams),
    responses((status = 200, description = "Collection"), (status = 404, description = "Unknown collection")))]
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
        &state,
        &caller.0,
    )))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ItemsParams {
    /// `minLon,minLat,maxLon,maxLat` (WGS84); items whose geometry intersects it.
    bbox: Option<String>,
    /// Page size, 1 to 10000 (default 100).
    limit: Option<String>,
    /// Items to skip (default 0).
    offset: Option<String>,
    /// Comma list: service kinds, worksite kinds, or territory levels.
    kind: Option<String>,
    /// Id of a territory; items intersecting it.
    territory: Option<String>,
    /// Case-insensitive text in name, organization, description, address or notes.
    q: Option<String>,
    /// `json` only.
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

fn text_matches(record: &Record, needle: &str) -> bool {
    use crate::domain::Attributes as A;
    let hit = |s: &str| s.to_lowercase().contains(needle);
    let opt = |s: &Option<String>| s.as_deref().is_some_and(hit);
    match record.attributes() {
        A::Service(s) => {
            hit(&s.name) || opt(&s.organization) || opt(&s.description) || opt(&s.address)
        }
        A::Settlement(s) => hit(&s.name) || opt(&s.notes) || opt(&s.sector),
        A::Worksite(w) => hit(&w.name) || opt(&w.notes),
        A::Territory(t) => hit(&t.name) || opt(&t.code),
    }
}

/// The same query string with `offset` replaced.
fn with_offset(req: &HttpRequest, offset: i64) -> String {
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    pairs.retain(|(k, _)| k != "offset");
    pairs.push(("offset".to_owned(), offset.to_string()));
    serde_urlencoded::to_string(&pairs).unwrap_or_default()
}

/// Items of a collection, filtered and paged.
#[utoipa::path(get, path = "/collections/{collection}/items", params(
    ("collection" = Collection, Path, description = "services, settlements, worksites or territories"), ItemsParams),
    responses((status = 200, description = "GeoJSON FeatureCollection with numberMatched, numberReturned and links", content_type = "application/geo+json"),
        (status = 400, description = "Bad parameter"), (status = 401, description = "Restricted collection"), (status = 404, description = "Unknown collection")))]
pub async fn items(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let collection = parse_collection(&path)?;
    caller.0.check_read(collection)?;
    let p: ItemsParams = params::raw(&req)?;
    params::check_format(p.f.as_deref(), false)?;
    let limit = params::int_in("limit", p.limit.as_deref(), 1, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let offset = params::int_in("offset", p.offset.as_deref(), 0, i64::MAX)?.unwrap_or(0);
    let bbox = p
        .bbox
        .as_deref()
        .map(Bbox::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_parameter("bbox", e.reason))?;
    let kinds = kind_filter(collection, p.kind.as_deref())?;
    let needle =
        p.q.as_deref()
            .map(|q| q.trim().to_lowercase())
            .filter(|q| !q.is_empty());

    let snapshot = state.catalog.snapshot();
    let territory = match p.territory.as_deref() {
        None => None,
        Some(t) => {
            let id = RecordId::parse(t)
                .map_err(|e| ApiError::invalid_parameter("territory", e.reason))?;
            let rec = snapshot
                .unrestricted_layer(Collection::Territories)
                .get(&id)
                .ok_or_else(|| {
                    ApiError::invalid_parameter("territory", format!("no territory with id `{t}`"))
                })?;
            Some(Arc::clone(rec))
        }
    };
    let layer = snapshot.unrestricted_layer(collection);
    let candidates: Vec<&Arc<Record>> = match (&bbox, &territory) {
        (Some(b), _) => layer.intersecting(&geo::Geometry::Rect(b.to_rect())),
        (None, Some(t)) => layer.intersecting(t.geometry()),
        (None, None) => layer.iter().collect(),
    };
    let matched: Vec<&Arc<Record>> = candidates
        .into_iter()
        .filter(|r| caller.0.can_see(r))
        .filter(|r| {
            kinds.is_empty()
                || r.attributes()
                    .kind_str()
                    .is_some_and(|k| kinds.contains(&k))
        })
        .filter(|r| needle.as_deref().is_none_or(|n| text_matches(r, n)))
        .filter(|r| {
            bbox.is_none()
                || territory
                    .as_ref()
                    .is_none_or(|t| geo::Intersects::intersects(t.geometry(), r.geometry()))
        })
        .collect();
    let number_matched = matched.len();
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(number_matched);
    let page: Vec<FeatureView<'_>> = matched
        .iter()
        .skip(start)
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|r| FeatureView::new(r))
        .collect();
    let returned = page.len();
    let base = base_url(&req);
    let self_href = if req.query_string().is_empty() {
        format!("{base}{}", req.path())
    } else {
        format!("{base}{}?{}", req.path(), req.query_string())
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
            format!("{base}{}?{}", req.path(), with_offset(&req, next)),
            "next",
            GEOJSON,
            "Next page",
        ));
    }
    if start > 0 {
        let prev = (offset - limit).max(0);
        links.push(link(
            format!("{base}{}?{}", req.path(), with_offset(&req, prev)),
            "prev",
            GEOJSON,
            "Previous page",
        ));
    }
    let mut body = FeatureCollectionView::new(page);
    body.number_matched = Some(number_matched);
    body.time_stamp = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    body.links = links;
    Ok(body.respond(StatusCode::OK))
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
#[utoipa::path(get, path = "/collections/{collection}/items/{id}", params(
    ("collection" = Collection, Path, description = "Collection"), ("id" = String, Path, description = "Record id"), FormatParams),
    responses((status = 200, description = "GeoJSON Feature with ETag", content_type = "application/geo+json"),
        (status = 304, description = "Not modified (If-None-Match)"), (status = 401, description = "Restricted collection"),
        (status = 404, description = "No such item")))]
pub async fn item(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let collection = parse_collection(&c)?;
    caller.0.check_read(collection)?;
    let p: FormatParams = params::raw(&req)?;
    params::check_format(p.f.as_deref(), false)?;
    let id = parse_id(&id)?;
    let snapshot = state.catalog.snapshot();
    let record = snapshot
        .unrestricted_layer(collection)
        .get(&id)
        .filter(|r| caller.0.can_see(r))
        .ok_or_else(|| ApiError::not_found(format!("{collection} record `{id}` not found")))?;
    if let Some(inm) = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        && inm
            .split(',')
            .any(|t| t.trim().trim_start_matches("W/") == record.etag())
    {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, record.etag()))
            .finish());
    }
    Ok(item_response(StatusCode::OK, &base_url(&req), record))
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

fn parse_json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_body(
            "the request body is empty; send GeoJSON",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_body(format!("the body is not valid JSON: {e}")))
}

/// The version an `If-Match` header demands, if any (`*` demands none).
fn if_match(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(h) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = h
        .to_str()
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_header",
                "If-Match is not text",
            )
        })?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    let tag = text.trim_start_matches("W/").trim_matches('"');
    tag.parse::<i64>().map(Some).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_header",
            format!("If-Match `{text}` is not an ETag this server issued (like \"3\")"),
        )
    })
}

/// Creates one Feature or every Feature of a FeatureCollection; all or nothing.
#[utoipa::path(post, path = "/collections/{collection}/items", params(("collection" = Collection, Path, description = "Collection")),
    request_body(content = Object, description = "GeoJSON Feature or FeatureCollection", content_type = "application/geo+json"),
    responses((status = 201, description = "Created; body holds the stored features"), (status = 400, description = "Invalid feature: the message names the feature number and field"),
        (status = 401, description = "Authentication required"), (status = 403, description = "Role may not write"), (status = 409, description = "Id exists"),
        (status = 503, description = "Database unreachable")))]
pub async fn create(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let collection = parse_collection(&path)?;
    caller.0.check_write(collection)?;
    let doc = parse_json_body(&body)?;
    let single = doc.get("type").and_then(Value::as_str) == Some("Feature");
    let inputs = FeatureInput::parse_document(collection, doc)?;
    if inputs.is_empty() {
        return Err(ApiError::bad_body("the FeatureCollection has no features"));
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
#[utoipa::path(put, path = "/collections/{collection}/items/{id}", params(("collection" = Collection, Path, description = "Collection"), ("id" = String, Path, description = "Record id")),
    request_body(content = Object, description = "GeoJSON Feature", content_type = "application/geo+json"),
    responses((status = 200, description = "Replaced"), (status = 400, description = "Invalid feature"), (status = 404, description = "No such item"),
        (status = 412, description = "Stale If-Match"), (status = 503, description = "Database unreachable")))]
pub async fn replace(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (collection, id) = writable_item(path, &caller.0)?;
    let expected = if_match(&req)?;
    let input = FeatureInput::parse(collection, parse_json_body(&body)?)?;
    if let Some(body_id) = &input.id
        && body_id != &id
    {
        return Err(ApiError::bad_body(format!(
            "field `id`: the body's id `{body_id}` differs from the path's `{id}`"
        )));
    }
    write_one(
        &req,
        &state,
        &caller.0,
        WriteOp::Replace {
            id,
            expected_version: expected,
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
#[utoipa::path(patch, path = "/collections/{collection}/items/{id}", params(("collection" = Collection, Path, description = "Collection"), ("id" = String, Path, description = "Record id")),
    request_body(content = Object, description = "`{\"properties\": {...}, \"geometry\": {...}}`; a null property removes it", content_type = "application/merge-patch+json"),
    responses((status = 200, description = "Updated"), (status = 400, description = "Invalid patch"), (status = 404, description = "No such item"),
        (status = 412, description = "Stale If-Match"), (status = 503, description = "Database unreachable")))]
pub async fn patch(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (collection, id) = writable_item(path, &caller.0)?;
    let Value::Object(mut doc) = parse_json_body(&body)? else {
        return Err(ApiError::bad_body(
            "a patch is a JSON object with `properties` and/or `geometry`",
        ));
    };
    let current = state
        .catalog
        .snapshot()
        .unrestricted_layer(collection)
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("{collection} record `{id}` not found")))?;
    let expected = if_match(&req)?.or(Some(current.meta().version));
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
    let input = FeatureInput::parse(collection, feature)?;
    write_one(
        &req,
        &state,
        &caller.0,
        WriteOp::Replace {
            id,
            expected_version: expected,
            geometry: input.geometry,
            attributes: input.attributes,
        },
    )
    .await
}

/// Deletes an item.
#[utoipa::path(delete, path = "/collections/{collection}/items/{id}", params(("collection" = Collection, Path, description = "Collection"), ("id" = String, Path, description = "Record id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such item"), (status = 412, description = "Stale If-Match"),
        (status = 503, description = "Database unreachable")))]
pub async fn delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (collection, id) = writable_item(path, &caller.0)?;
    let expected = if_match(&req)?;
    state
        .catalog
        .write(
            vec![WriteOp::Delete {
                collection,
                id,
                expected_version: expected,
            }],
            &caller.0.actor(),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
