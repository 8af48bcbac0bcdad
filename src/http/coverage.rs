//! `GET /coverage`, `/coverage/gaps`, `/coverage/uncovered`, `/coverage/hexes`,
//! `/coverage/suggest`: the territorial coverage analysis (see [`crate::analysis::coverage`]
//! for the semantics).
//!
//! Access: anonymous callers get figures computed from public services only, with no
//! settlement or worksite figure (`settlements`, `worksites` and the demand of `capacity` are
//! `null`), gaps from public services, hexes without demand; `uncovered` and `suggest` are 401.
//! Authorised callers get everything.
//!
//! `/coverage/hexes` answers at most [`MAX_HEX_CELLS`] cells: a finer resolution over the
//! chosen territories is a 400 naming `resolution`, found before any distance is computed.
//!
//! Answers are cached per parameter set and visibility, for the snapshot they were computed
//! from: any write makes a new snapshot, and the cache empties at the first request after it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::ApiError;
use super::features::GEOJSON;
use super::{AppState, params};
use crate::analysis::coverage::{
    self as analysis, Candidates, CoverageError, CoverageQuery, DemandFigures, Figures,
    MAX_RADIUS_M, MAX_SUGGESTIONS, MIN_RADIUS_M,
};
use crate::domain::feature::{FeatureView, geometry_json};
use crate::domain::{Collection, Month, RecordId, ServiceKind};
use crate::index::Snapshot;
use crate::index::query::{QueryError, Visibility};

/// Answers kept at most before the cache starts again.
const MAX_CACHED: usize = 512;
/// Bytes of answers kept at most before the cache starts again (a hexagon surface at a fine
/// resolution runs to megabytes).
const MAX_CACHED_BYTES: usize = 64 * 1024 * 1024;
/// Most cells one `/coverage/hexes` answer may have: beyond, a 400 naming `resolution`. A cell
/// is about 550 bytes of GeoJSON for an authorised caller, so this keeps an answer under some
/// 6 MB (Treviso's 2,477 km² is 3,400 cells at resolution 8 and 23,500, 13 MB, at 9).
pub const MAX_HEX_CELLS: usize = 10_000;

/// Coverage answers by (endpoint, parameters, visibility), for one snapshot.
#[derive(Default)]
pub struct Cache {
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    /// The snapshot the entries were computed from. Weak, so the cache never keeps an old
    /// snapshot's records alive, and its address cannot be reused while held.
    snapshot: Weak<Snapshot>,
    entries: HashMap<(String, Visibility), web::Bytes>,
    /// Bytes of the answers in `entries`.
    bytes: usize,
}

impl Cache {
    fn get(&self, snapshot: &Arc<Snapshot>, key: &(String, Visibility)) -> Option<web::Bytes> {
        let mut inner = self.inner.lock().ok()?;
        if !std::ptr::eq(inner.snapshot.as_ptr(), Arc::as_ptr(snapshot)) {
            inner.snapshot = Arc::downgrade(snapshot);
            inner.entries.clear();
            inner.bytes = 0;
            return None;
        }
        inner.entries.get(key).cloned()
    }

    fn put(&self, snapshot: &Arc<Snapshot>, key: (String, Visibility), body: web::Bytes) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        // An answer of an older snapshot than the cache's is dropped.
        if !std::ptr::eq(inner.snapshot.as_ptr(), Arc::as_ptr(snapshot)) {
            return;
        }
        if body.len() > MAX_CACHED_BYTES / 4 {
            return;
        }
        if inner.entries.len() >= MAX_CACHED || inner.bytes + body.len() > MAX_CACHED_BYTES {
            inner.entries.clear();
            inner.bytes = 0;
        }
        inner.bytes += body.len();
        if let Some(old) = inner.entries.insert(key, body) {
            inner.bytes -= old.len();
        }
    }
}

/// The query parameters of a coverage endpoint: the common ones, and the endpoint's own.
macro_rules! coverage_params {
    ($name:ident { $($(#[$meta:meta])* $field:ident,)* }) => {
        #[derive(Debug, Deserialize, IntoParams)]
        #[serde(deny_unknown_fields)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            /// Comma list of service kinds whose services cover (default: every kind).
            #[param(schema_with = crate::http::schemas::params::service_kinds)]
            kind: Option<String>,
            /// Catchment radius, metres on the WGS84 ellipsoid, 1 to 100000.
            #[param(value_type = f64, required = true, minimum = 1, maximum = 100000, example = 15000)]
            radius_m: Option<String>,
            /// One territory id (default: every territory of level `territory`).
            #[param(schema_with = crate::http::schemas::params::record_id)]
            territory: Option<String>,
            /// 1-12: only settlements inhabited and worksites at peak in that month (those with
            /// no months on record count in every month).
            #[param(value_type = Option<i64>, minimum = 1, maximum = 12)]
            month: Option<String>,
            /// `now` or an RFC 3339 time: only services open then (Europe/Rome local time) cover;
            /// a service without opening hours counts as always open.
            #[param(example = "now")]
            open_at: Option<String>,
            /// `true`: people are assigned to the nearest service within reach with beds left
            /// (`vacancy`, else `capacity`); those left over are uncovered.
            #[param(schema_with = crate::http::schemas::params::boolean)]
            capacity: Option<String>,
            /// `json` only.
            #[param(schema_with = crate::http::schemas::params::format_json)]
            f: Option<String>,
            $($(#[$meta])* $field: Option<String>,)*
        }

        impl $name {
            fn common(&self) -> Common<'_> {
                Common {
                    kind: self.kind.as_deref(),
                    radius_m: self.radius_m.as_deref(),
                    territory: self.territory.as_deref(),
                    month: self.month.as_deref(),
                    open_at: self.open_at.as_deref(),
                    capacity: self.capacity.as_deref(),
                    f: self.f.as_deref(),
                }
            }
        }
    };
}

coverage_params!(CoverageParams {});
coverage_params!(GapsParams {});
coverage_params!(UncoveredParams {
    /// `settlements` (default) or `worksites`.
    #[param(schema_with = crate::http::schemas::params::demand_collection)]
    collection,
});
coverage_params!(HexesParams {
    /// H3 resolution, 4 to 9 (default 7).
    #[param(value_type = Option<i64>, minimum = 4, maximum = 9)]
    resolution,
});
coverage_params!(SuggestParams {
    /// How many new sites at most, 1 to 20 (default 3).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 20)]
    k,
    /// `h3` (default: centres of H3 cells of `resolution`) or `comuni` (representative points
    /// of the comuni in the territories).
    #[param(schema_with = crate::http::schemas::params::candidates)]
    candidates,
    /// H3 resolution of the `h3` candidates, 5 to 9 (default 8).
    #[param(value_type = Option<i64>, minimum = 5, maximum = 9)]
    resolution,
});

struct Common<'a> {
    kind: Option<&'a str>,
    radius_m: Option<&'a str>,
    territory: Option<&'a str>,
    month: Option<&'a str>,
    open_at: Option<&'a str>,
    capacity: Option<&'a str>,
    f: Option<&'a str>,
}

fn parse_common(p: &Common<'_>, now: DateTime<Utc>) -> Result<CoverageQuery, ApiError> {
    params::check_format(p.f, false)?;
    let mut kinds = params::list::<ServiceKind>("kind", p.kind)?;
    kinds.sort_unstable_by_key(|k| k.as_str());
    kinds.dedup();
    let radius_m = params::number("radius_m", p.radius_m)?;
    if !(MIN_RADIUS_M..=MAX_RADIUS_M).contains(&radius_m) {
        return Err(ApiError::invalid_parameter(
            "radius_m",
            format!("{radius_m} is out of range; expected {MIN_RADIUS_M} to {MAX_RADIUS_M} metres"),
        ));
    }
    let territory = p
        .territory
        .map(|t| RecordId::parse(t.trim()))
        .transpose()
        .map_err(|e| ApiError::invalid_parameter("territory", e.reason))?;
    let month = params::int_in("month", p.month, 1, 12)?
        .map(Month::new)
        .transpose()
        .map_err(|e| ApiError::invalid_parameter("month", e))?;
    let open_at = p
        .open_at
        .map(|t| analysis::parse_open_at(t, now))
        .transpose()
        .map_err(|e| ApiError::invalid_parameter("open_at", e))?;
    let capacity = match p.capacity.map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::invalid_parameter(
                "capacity",
                format!("`{other}` is neither `true` nor `false`"),
            ));
        }
    };
    Ok(CoverageQuery {
        kinds,
        radius_m,
        territory,
        month,
        open_at,
        capacity,
    })
}

fn coverage_error(e: CoverageError) -> ApiError {
    match e {
        CoverageError::Query(QueryError::Access(a)) => a.into(),
        CoverageError::Query(QueryError::UnknownTerritory(id))
        | CoverageError::UnknownTerritory(id) => {
            ApiError::invalid_parameter("territory", format!("no territory with id `{id}`"))
        }
        e @ CoverageError::TooManyCells { .. } => ApiError::invalid_parameter("resolution", e),
    }
}

/// Runs `compute` on a blocking thread over the current snapshot as `caller` sees it, or
/// answers from the cache.
async fn answer(
    state: &web::Data<AppState>,
    caller: &Caller,
    key: String,
    compute: impl FnOnce(&crate::index::query::View) -> Result<Vec<u8>, ApiError> + Send + 'static,
    content_type: &'static str,
) -> Result<HttpResponse, ApiError> {
    let snapshot = state.catalog.snapshot();
    let visibility = Visibility::of(&caller.0);
    let key = (key, visibility.clone());
    if let Some(body) = state.coverage.get(&snapshot, &key) {
        return Ok(respond(content_type, &body));
    }
    let view = snapshot.view(visibility);
    let body = web::block(move || compute(&view))
        .await
        .map_err(|e| ApiError::internal("coverage", &e))??;
    let body = web::Bytes::from(body);
    state.coverage.put(&snapshot, key, body.clone());
    Ok(respond(content_type, &body))
}

fn respond(content_type: &'static str, body: &web::Bytes) -> HttpResponse {
    HttpResponse::build(StatusCode::OK)
        .content_type(content_type)
        .body(body.clone())
}

fn to_json(value: &impl serde::Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| ApiError::internal("serialising coverage", &e))
}

/// Rounded to 1e-6 (km²: a square metre).
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Rounded to the millimetre.
fn round_m(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn kinds_json(q: &CoverageQuery) -> Value {
    if q.kinds.is_empty() {
        json!(
            ServiceKind::ALL
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
        )
    } else {
        json!(q.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>())
    }
}

/// The parameters as answered: kinds, radius and filters.
fn query_members(q: &CoverageQuery) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("kind".into(), kinds_json(q));
    m.insert("radius_m".into(), json!(q.radius_m));
    m.insert("month".into(), json!(q.month.map(Month::number)));
    m.insert(
        "open_at".into(),
        json!(q.open_at.map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())),
    );
    m.insert("capacity".into(), json!(q.capacity));
    m
}

fn demand_json(f: Option<DemandFigures>, size: &str) -> Value {
    match f {
        None => Value::Null,
        Some(f) => json!({
            "total": f.total,
            "covered": f.covered,
            format!("{size}_total"): f.size_total,
            format!("{size}_covered"): f.size_covered,
        }),
    }
}

fn figures_json(f: &Figures, capacity: bool) -> Value {
    let mut m = Map::new();
    if let Some(t) = &f.territory {
        m.insert("id".into(), json!(t.id()));
        m.insert("name".into(), json!(t.attributes().name()));
    }
    m.insert("area_km2".into(), json!(round6(f.area_km2)));
    m.insert("covered_area_km2".into(), json!(round6(f.covered_area_km2)));
    m.insert("covered_share".into(), json!(round6(f.covered_share())));
    m.insert("services".into(), json!(f.services));
    m.insert("settlements".into(), demand_json(f.settlements, "people"));
    m.insert("worksites".into(), demand_json(f.worksites, "workers"));
    if capacity && let Some(c) = f.capacity {
        m.insert(
            "capacity".into(),
            json!({"beds": c.beds, "demand_in_reach": c.demand_in_reach, "without_bed": c.without_bed}),
        );
    }
    Value::Object(m)
}

fn now_of(state: &AppState) -> DateTime<Utc> {
    state.clock.now()
}

/// Covered area, services and demand per territory, and their total.
#[utoipa::path(get, path = "/coverage", params(CoverageParams), security((), ("bearer" = [])), responses(
    (status = 200, description = "Per territory (every territory of level `territory`, or the one asked for) and in total: area and covered area (geodesic, km²), covered share, chosen services located there, and for authorised callers the settlements and worksites covered (geodesic distance to the nearest chosen service at most `radius_m`; polygons from their representative point). Anonymous callers: computed from public services only, `settlements` and `worksites` null.",
        body = ref("#/components/schemas/CoverageReport")),
    (status = 400, description = "Missing or bad parameter; the message names it"),
    (status = 401, description = "`Authorization` is not a valid, live bearer token"),
    (status = 500, description = "Internal error; the cause is logged"),
    (status = 503, description = "The bearer token could not be checked: the database is unreachable"),
))]
pub async fn coverage(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let p: CoverageParams = params::raw(&req)?;
    let query = parse_common(&p.common(), now_of(&state))?;
    let key = format!("coverage {query:?}");
    answer(
        &state,
        &caller,
        key,
        move |view| {
            let report = analysis::coverage(view, &query).map_err(coverage_error)?;
            let mut body = query_members(&query);
            body.insert(
                "territories".into(),
                json!(
                    report
                        .territories
                        .iter()
                        .map(|f| figures_json(f, query.capacity))
                        .collect::<Vec<_>>()
                ),
            );
            body.insert("total".into(), figures_json(&report.total, query.capacity));
            to_json(&body)
        },
        "application/json",
    )
    .await
}

/// The uncovered part of each territory.
#[utoipa::path(get, path = "/coverage/gaps", params(GapsParams), security((), ("bearer" = [])), responses(
    (status = 200, description = "GeoJSON FeatureCollection, one MultiPolygon feature per territory (id: the territory's): the territory minus the union of the geodesic catchment discs, with `territory`, `name` and its geodesic `area_km2`. Anonymous callers: from public services only.",
        body = ref("#/components/schemas/GapCollection"), content_type = "application/geo+json"),
    (status = 400, description = "Missing or bad parameter; the message names it"),
    (status = 401, description = "`Authorization` is not a valid, live bearer token"),
    (status = 500, description = "Internal error; the cause is logged"),
    (status = 503, description = "The bearer token could not be checked: the database is unreachable"),
))]
pub async fn gaps(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let p: GapsParams = params::raw(&req)?;
    let query = parse_common(&p.common(), now_of(&state))?;
    let key = format!("gaps {query:?}");
    answer(
        &state,
        &caller,
        key,
        move |view| {
            let gaps = analysis::gaps(view, &query).map_err(coverage_error)?;
            let features: Vec<Value> = gaps
                .iter()
                .map(|g| {
                    json!({
                        "type": "Feature",
                        "id": g.territory.id(),
                        "geometry": geometry_json(&geo::Geometry::MultiPolygon(g.geometry.clone())),
                        "properties": {
                            "territory": g.territory.id(),
                            "name": g.territory.attributes().name(),
                            "area_km2": round6(g.area_km2),
                        }
                    })
                })
                .collect();
            let mut body = query_members(&query);
            body.insert("type".into(), json!("FeatureCollection"));
            body.insert("numberReturned".into(), json!(features.len()));
            body.insert("features".into(), json!(features));
            to_json(&body)
        },
        GEOJSON,
    )
    .await
}

/// The uncovered settlements or worksites, farthest from a chosen service first.
#[utoipa::path(get, path = "/coverage/uncovered", params(UncoveredParams), security(("bearer" = [])), responses(
    (status = 200, description = "GeoJSON FeatureCollection of the uncovered records of `collection` in the territories, ordered by `distance_m` to their nearest chosen service, farthest first (those with no chosen service at all first, `distance_m` null), ties by id; each with `nearest_service`, the `territories` it lies in and `uncovered` (people or workers not covered).",
        body = ref("#/components/schemas/UncoveredCollection"), content_type = "application/geo+json"),
    (status = 400, description = "Missing or bad parameter; the message names it"),
    (status = 401, description = "No valid bearer token: settlements and worksites are restricted"),
    (status = 500, description = "Internal error; the cause is logged"),
    (status = 503, description = "The bearer token could not be checked: the database is unreachable"),
))]
pub async fn uncovered(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let p: UncoveredParams = params::raw(&req)?;
    let collection = match p.collection.as_deref().map(str::trim) {
        None | Some("settlements") => Collection::Settlements,
        Some("worksites") => Collection::Worksites,
        Some(other) => {
            return Err(ApiError::invalid_parameter(
                "collection",
                format!("`{other}` is neither `settlements` nor `worksites`"),
            ));
        }
    };
    Visibility::of(&caller.0).check_collection(collection)?;
    let query = parse_common(&p.common(), now_of(&state))?;
    let key = format!("uncovered {collection} {query:?}");
    answer(
        &state,
        &caller,
        key,
        move |view| {
            let found = analysis::uncovered(view, &query, collection).map_err(coverage_error)?;
            let extras: Vec<[(&'static str, Value); 4]> = found
                .iter()
                .map(|u| {
                    let d = &u.demand;
                    let territories: Vec<&RecordId> =
                        u.territories.iter().map(|t| t.id()).collect();
                    [
                        (
                            "distance_m",
                            json!(d.nearest.as_ref().map(|n| round_m(n.1))),
                        ),
                        (
                            "nearest_service",
                            d.nearest.as_ref().map_or(Value::Null, |(s, _)| {
                                json!({
                                    "id": s.id(),
                                    "name": s.attributes().name(),
                                    "kind": s.attributes().kind_str(),
                                })
                            }),
                        ),
                        ("territories", json!(territories)),
                        ("uncovered", json!(d.uncovered)),
                    ]
                })
                .collect();
            let features: Vec<FeatureView<'_>> = found
                .iter()
                .zip(&extras)
                .map(|(u, extra)| FeatureView::with_extra(&u.demand.record, extra))
                .collect();
            let mut body = query_members(&query);
            body.insert("collection".into(), json!(collection.as_str()));
            body.insert("type".into(), json!("FeatureCollection"));
            body.insert("numberReturned".into(), json!(features.len()));
            let features = serde_json::to_value(&features)
                .map_err(|e| ApiError::internal("serialising coverage", &e))?;
            body.insert("features".into(), features);
            to_json(&body)
        },
        GEOJSON,
    )
    .await
}

/// The H3 hexagon surface: distance to the nearest chosen service and the demand per cell.
#[utoipa::path(get, path = "/coverage/hexes", params(HexesParams), security((), ("bearer" = [])), responses(
    (status = 200, description = "GeoJSON FeatureCollection of H3 cells (id: the H3 index) whose centre lies in a territory: `distance_m` from the centre to the nearest chosen service (geodesic; null when there is none), `covered` (within `radius_m`), and for authorised callers the settlements, worksites, people and workers inside. Anonymous callers: from public services only, no demand.",
        body = ref("#/components/schemas/HexCollection"), content_type = "application/geo+json"),
    (status = 400, description = "Missing or bad parameter; the message names it. Also a `resolution` that would give more than 10,000 cells over the chosen territories (choose a coarser one, or one territory)"),
    (status = 401, description = "`Authorization` is not a valid, live bearer token"),
    (status = 500, description = "Internal error; the cause is logged"),
    (status = 503, description = "The bearer token could not be checked: the database is unreachable"),
))]
pub async fn hexes(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let p: HexesParams = params::raw(&req)?;
    let resolution = resolution("resolution", p.resolution.as_deref(), 4, 9, 7)?;
    let query = parse_common(&p.common(), now_of(&state))?;
    let key = format!("hexes {resolution} {query:?}");
    answer(
        &state,
        &caller,
        key,
        move |view| {
            let hexes = analysis::hexes_at_most(view, &query, resolution, MAX_HEX_CELLS)
                .map_err(coverage_error)?;
            let features: Vec<Value> = hexes
                .iter()
                .map(|h| {
                    let mut props = Map::new();
                    props.insert("h3".into(), json!(h.cell.to_string()));
                    props.insert("territory".into(), json!(h.territory.id()));
                    props.insert("distance_m".into(), json!(h.distance_m.map(round_m)));
                    props.insert(
                        "covered".into(),
                        json!(h.distance_m.is_some_and(|d| d <= query.radius_m)),
                    );
                    if let Some(d) = h.demand {
                        props.insert("settlements".into(), json!(d.settlements));
                        props.insert("worksites".into(), json!(d.worksites));
                        props.insert("people".into(), json!(d.people));
                        props.insert("workers".into(), json!(d.workers));
                        props.insert("people_uncovered".into(), json!(d.people_uncovered));
                        props.insert("workers_uncovered".into(), json!(d.workers_uncovered));
                    }
                    json!({
                        "type": "Feature",
                        "id": h.cell.to_string(),
                        "geometry": geometry_json(&geo::Geometry::Polygon(analysis::cell_polygon(h.cell))),
                        "properties": props,
                    })
                })
                .collect();
            let mut body = query_members(&query);
            body.insert("resolution".into(), json!(u8::from(resolution)));
            body.insert("type".into(), json!("FeatureCollection"));
            body.insert("numberReturned".into(), json!(features.len()));
            body.insert("features".into(), json!(features));
            to_json(&body)
        },
        GEOJSON,
    )
    .await
}

fn resolution(
    name: &str,
    value: Option<&str>,
    min: i64,
    max: i64,
    default: u8,
) -> Result<h3o::Resolution, ApiError> {
    let n = params::int_in(name, value, min, max)?.unwrap_or(i64::from(default));
    u8::try_from(n)
        .ok()
        .and_then(|n| h3o::Resolution::try_from(n).ok())
        .ok_or_else(|| ApiError::invalid_parameter(name, format!("{n} is not an H3 resolution")))
}

/// Up to `k` new sites that would cover the most uncovered people and workers.
#[utoipa::path(get, path = "/coverage/suggest", params(SuggestParams), security(("bearer" = [])), responses(
    (status = 200, description = "GeoJSON FeatureCollection of up to `k` suggested sites (Points), in the order the greedy maximal covering chose them, keeping the existing services; each with `rank`, the candidate (`h3` cell or `comune` id), its `territory`, and the people, workers, settlements and worksites it newly covers. `uncovered` has the totals before any new site.",
        body = ref("#/components/schemas/SuggestionCollection"), content_type = "application/geo+json"),
    (status = 400, description = "Missing or bad parameter; the message names it"),
    (status = 401, description = "No valid bearer token: suggestions are computed from restricted records"),
    (status = 500, description = "Internal error; the cause is logged"),
    (status = 503, description = "The bearer token could not be checked: the database is unreachable"),
))]
pub async fn suggest(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let p: SuggestParams = params::raw(&req)?;
    Visibility::of(&caller.0).check_collection(Collection::Settlements)?;
    let max_k = i64::try_from(MAX_SUGGESTIONS).unwrap_or(20);
    let k = params::int_in("k", p.k.as_deref(), 1, max_k)?.unwrap_or(3);
    let k = usize::try_from(k).unwrap_or(3);
    let candidates = match p.candidates.as_deref().map(str::trim) {
        None | Some("h3") => {
            Candidates::Hexes(resolution("resolution", p.resolution.as_deref(), 5, 9, 8)?)
        }
        Some("comuni") => {
            if p.resolution.is_some() {
                return Err(ApiError::invalid_parameter(
                    "resolution",
                    "applies to `candidates=h3` only",
                ));
            }
            Candidates::Comuni
        }
        Some(other) => {
            return Err(ApiError::invalid_parameter(
                "candidates",
                format!("`{other}` is neither `h3` nor `comuni`"),
            ));
        }
    };
    let query = parse_common(&p.common(), now_of(&state))?;
    let key = format!("suggest {k} {candidates:?} {query:?}");
    answer(
        &state,
        &caller,
        key,
        move |view| {
            let s = analysis::suggest(view, &query, candidates, k).map_err(coverage_error)?;
            let features: Vec<Value> = s
                .suggestions
                .iter()
                .map(|g| {
                    json!({
                        "type": "Feature",
                        "id": format!("suggestion-{}", g.rank),
                        "geometry": {"type": "Point", "coordinates": [g.position.x(), g.position.y()]},
                        "properties": {
                            "rank": g.rank,
                            "h3": g.cell.map(|c| c.to_string()),
                            "comune": g.comune.as_ref().map(|c| c.id()),
                            "territory": g.territory.id(),
                            "people": g.people,
                            "workers": g.workers,
                            "settlements": g.settlements,
                            "worksites": g.worksites,
                        }
                    })
                })
                .collect();
            let mut body = query_members(&query);
            body.insert("k".into(), json!(k));
            body.insert(
                "candidates".into(),
                json!({
                    "kind": match candidates { Candidates::Hexes(_) => "h3", Candidates::Comuni => "comuni" },
                    "resolution": match candidates { Candidates::Hexes(r) => Some(u8::from(r)), Candidates::Comuni => None },
                    "count": s.candidates,
                }),
            );
            body.insert(
                "uncovered".into(),
                json!({
                    "people": s.uncovered_people,
                    "workers": s.uncovered_workers,
                    "settlements": s.uncovered_settlements,
                    "worksites": s.uncovered_worksites,
                }),
            );
            body.insert("type".into(), json!("FeatureCollection"));
            body.insert("numberReturned".into(), json!(features.len()));
            body.insert("features".into(), json!(features));
            to_json(&body)
        },
        GEOJSON,
    )
    .await
}
