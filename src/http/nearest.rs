//! `GET /nearest`: the services nearest to where an outreach team stands.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Europe::Rome;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::ApiError;
use super::features::{FeatureCollectionView, GEOJSON};
use super::{AppState, params};
use crate::analysis::nearest::{MAX_K, NearestQuery, nearest_services};
use crate::domain::feature::FeatureView;
use crate::domain::{Language, LonLat, ServiceKind};
use crate::index::Neighbour;
use crate::index::query::FrontDoor;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NearestParams {
    /// Longitude of the caller, WGS84 degrees.
    #[param(value_type = f64, required = true, minimum = -180, maximum = 180, example = 12.2431)]
    lon: Option<String>,
    /// Latitude of the caller, WGS84 degrees.
    #[param(value_type = f64, required = true, minimum = -90, maximum = 90, example = 45.6669)]
    lat: Option<String>,
    /// Comma list of service kinds (default: all).
    #[param(schema_with = crate::http::schemas::params::service_kinds)]
    kind: Option<String>,
    /// How many services, 1 to 100 (default 5).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    k: Option<String>,
    /// Only services within this geodesic distance, metres.
    #[param(value_type = Option<f64>, exclusive_minimum = 0)]
    max_distance_m: Option<String>,
    /// `now` or an RFC 3339 time: only services open then (Europe/Rome local time).
    #[param(example = "now")]
    open_at: Option<String>,
    /// ISO 639-1 code: only services that speak it.
    #[param(schema_with = crate::http::schemas::params::language)]
    language: Option<String>,
    /// `json` only.
    #[param(schema_with = crate::http::schemas::params::format_json)]
    f: Option<String>,
}

fn parse_query(p: &NearestParams, now: DateTime<Utc>) -> Result<NearestQuery, ApiError> {
    let lon = params::number("lon", p.lon.as_deref())?;
    let lat = params::number("lat", p.lat.as_deref())?;
    let origin =
        LonLat::new(lon, lat).map_err(|e| ApiError::invalid_parameter(&e.field, e.reason))?;
    let max_k = i64::try_from(MAX_K).unwrap_or(100);
    let k = params::int_in("k", p.k.as_deref(), 1, max_k)?.unwrap_or(5);
    let kinds = params::list::<ServiceKind>("kind", p.kind.as_deref())?;
    let max_distance_m = match p.max_distance_m.as_deref() {
        None => None,
        Some(v) => {
            let d = params::number("max_distance_m", Some(v))?;
            if d <= 0.0 {
                return Err(ApiError::invalid_parameter(
                    "max_distance_m",
                    "must be greater than 0",
                ));
            }
            Some(d)
        }
    };
    let open_at = match p.open_at.as_deref().map(str::trim) {
        None => None,
        Some("now") => Some(now),
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|e| {
                    ApiError::invalid_parameter(
                        "open_at",
                        format!("`{t}` is neither `now` nor an RFC 3339 time ({e})"),
                    )
                })?
                .with_timezone(&Utc),
        ),
    }
    .map(|t| t.with_timezone(&Rome).naive_local());
    let language = p
        .language
        .as_deref()
        .map(Language::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_parameter("language", e))?;
    Ok(NearestQuery {
        origin,
        k: usize::try_from(k).unwrap_or(5),
        kinds,
        max_distance_m,
        open_at,
        language,
    })
}

/// Services nearest to a point by geodesic distance, nearest first (ties by id).
#[utoipa::path(get, path = "/nearest", params(NearestParams), security((), ("bearer" = [])), responses(
    (status = 200, description = "GeoJSON FeatureCollection of services nearest first, with `properties.distance_m` (metres, WGS84 geodesic) and, with `open_at`, `properties.open`",
        body = ref("#/components/schemas/NearestFeatureCollection"), content_type = "application/geo+json"),
    (status = 400, description = "Missing or bad parameter; the message names it"),
    (status = 401, description = "`Authorization` is not a valid, live bearer token"),
    (status = 500, description = "Internal error; the cause is logged"),
    (status = 503, description = "The bearer token could not be checked: the database is unreachable"),
))]
pub async fn nearest(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let p: NearestParams = params::raw(&req)?;
    params::check_format(p.f.as_deref(), false)?;
    let query = parse_query(&p, state.clock.now())?;
    let view = caller.view(&state);
    let found = nearest_services(&view, &query);
    let doors = view.front_doors(&query.kinds, query.origin, query.k);
    let body = feature_collection(&found, query.open_at, &doors)
        .map_err(|e| ApiError::internal("serialising features", &e))?;
    Ok(HttpResponse::build(StatusCode::OK)
        .content_type(GEOJSON)
        .body(body))
}

/// The answer's FeatureCollection, each feature with `distance_m`, and `open` when the query
/// asked about opening times (`open_at`), serialised into one buffer sized for it.
fn feature_collection(
    found: &[Neighbour],
    open_at: Option<NaiveDateTime>,
    doors: &[FrontDoor],
) -> Result<Vec<u8>, serde_json::Error> {
    if !doors.is_empty() {
        return with_front_doors(found, open_at, doors);
    }
    warm(found);
    let extras: Vec<[(&'static str, Value); 2]> =
        found.iter().map(|n| extra_properties(n, open_at)).collect();
    let n = if open_at.is_some() { 2 } else { 1 };
    let features = found
        .iter()
        .zip(&extras)
        .map(|(f, extra)| FeatureView::with_extra(&f.record, &extra[..n]))
        .collect();
    let mut body = Vec::with_capacity(128 + 768 * found.len());
    serde_json::to_writer(&mut body, &FeatureCollectionView::new(features))?;
    Ok(body)
}

/// The answer with front doors after the located services: each a Feature without geometry or
/// id, `contact_only: true`, and only the ways to reach the service (see
/// `index::query::FrontDoor`).
fn with_front_doors(
    found: &[Neighbour],
    open_at: Option<NaiveDateTime>,
    doors: &[FrontDoor],
) -> Result<Vec<u8>, serde_json::Error> {
    let mut doc: Value = serde_json::from_slice(&feature_collection(found, open_at, &[])?)?;
    if let Some(features) = doc.get_mut("features").and_then(Value::as_array_mut) {
        features.extend(doors.iter().map(|d| {
            json!({
                "type": "Feature",
                "geometry": null,
                "properties": {
                    "contact_only": true,
                    "name": d.name,
                    "kind": d.kind.as_str(),
                    "organization": d.organization,
                    "phone": d.phone,
                    "email": d.email,
                    "languages": d.languages.iter().map(|l| l.code()).collect::<Vec<_>>(),
                    "opening_hours": d.opening_hours,
                    "referral_required": d.referral_required,
                    "province": d.province,
                }
            })
        }));
        let n = features.len();
        doc["numberReturned"] = json!(n);
    }
    serde_json::to_vec(&doc)
}

/// Reads a little of every answer's record before any is written: the records lie anywhere in
/// a large index, and loads that do not wait on each other let their cache misses overlap,
/// where writing one feature after the other would take them one at a time.
fn warm(found: &[Neighbour]) {
    let mut sum = 0usize;
    for n in found {
        let r = &n.record;
        let first = |s: &str| s.as_bytes().first().map_or(0, |b| usize::from(*b));
        sum = sum.wrapping_add(first(r.id().as_str()));
        sum = sum.wrapping_add(usize::from(r.meta().version > 0));
        if let Some(s) = r.as_service() {
            sum = sum
                .wrapping_add(first(&s.name))
                .wrapping_add(usize::from(s.organization.is_some()))
                .wrapping_add(usize::from(s.website.is_some()))
                .wrapping_add(usize::from(s.eligibility.is_some()))
                .wrapping_add(usize::from(s.fictional))
                .wrapping_add(s.languages.len());
        }
    }
    std::hint::black_box(sum);
}

/// `distance_m` rounded to the millimetre, and whether the service is open at `open_at`.
fn extra_properties(n: &Neighbour, open_at: Option<NaiveDateTime>) -> [(&'static str, Value); 2] {
    let open = match (open_at, n.record.as_service()) {
        (Some(at), Some(s)) => json!(s.opening_hours.as_ref().map(|oh| oh.is_open(at))),
        _ => Value::Null,
    };
    [
        (
            "distance_m",
            json!((n.distance_m * 1000.0).round() / 1000.0),
        ),
        ("open", open),
    ]
}
