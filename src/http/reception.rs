//! The reception system's monitoring: a shelter's capacity and vacancy over time
//! (`/collections/services/items/{id}/vacancy`) and the beds per territory (`/reception`).
//!
//! Every value an editor writes is kept with its time in the audit log (never lost on
//! restart), so the series is read from there: one point per write that changed `capacity` or
//! `vacancy`. Both are for operators, editors and admins in whose territories the service lies;
//! anonymous callers get 401.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use super::audit::time;
use super::auth::Caller;
use super::error::ApiError;
use super::{AppState, params};
use crate::domain::{AccessError, Collection, Record, RecordId, ServiceKind};
use crate::index::query::{ItemsQuery, View};
use crate::storage::{AuditQuery, Store};

/// Audit entries read per round trip while building a series.
const PAGE: u32 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VacancyParams {
    /// Reports at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Reports before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
}

/// One report: capacity and vacancy as written at `at`.
#[derive(Debug, Clone, PartialEq)]
struct Report {
    at: DateTime<Utc>,
    capacity: Option<u64>,
    vacancy: Option<u64>,
}

fn beds_of(feature: Option<&Value>) -> (Option<u64>, Option<u64>) {
    let props = feature.and_then(|f| f.get("properties"));
    let get = |k: &str| props.and_then(|p| p.get(k)).and_then(Value::as_u64);
    (get("capacity"), get("vacancy"))
}

/// The writes of service `id` in `[from, to)` that changed its capacity or vacancy, oldest
/// first; with `latest`, only the newest of them (read page by page from the newest, so the
/// walk stops at the first).
async fn series(
    store: &dyn Store,
    id: &RecordId,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    latest: bool,
) -> Result<Vec<Report>, ApiError> {
    let mut query = AuditQuery {
        collection: Some(Collection::Services),
        record_id: Some(id.as_str().to_owned()),
        from,
        to,
        limit: if latest { 50 } else { PAGE },
        ..AuditQuery::default()
    };
    let mut out = Vec::new();
    loop {
        let entries = store.audit(&query).await?;
        for e in &entries {
            let before = beds_of(e.before.as_ref());
            let after = beds_of(e.after.as_ref());
            if e.after.is_some() && (e.before.is_none() || before != after) {
                out.push(Report {
                    at: e.at,
                    capacity: after.0,
                    vacancy: after.1,
                });
                if latest {
                    return Ok(out);
                }
            }
        }
        match entries.last() {
            Some(last) if entries.len() == query.limit as usize => {
                query.before_seq = Some(last.seq);
            }
            _ => break,
        }
    }
    out.reverse();
    Ok(out)
}

/// An authorised caller whose territories hold the service; others are refused (401
/// anonymous, 404 a service it may not see, 403 a public service outside its territories).
fn service_in_scope(view: &View, id: &RecordId) -> Result<Arc<Record>, ApiError> {
    if !view.visibility().may_read_restricted() {
        return Err(AccessError::Unauthenticated("vacancy reports".to_owned()).into());
    }
    let record = view
        .get(Collection::Services, id)
        .map_err(|e| ApiError::not_found(e.to_string()))?
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("services record `{id}` not found")))?;
    if !view.in_scope(record.geometry()) {
        return Err(AccessError::OutOfScope(format!("services record `{id}`")).into());
    }
    Ok(record)
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A shelter's capacity and vacancy over time.
#[utoipa::path(get, path = "/collections/services/items/{id}/vacancy", params(
        ("id" = String, Path, description = "Service id", example = "svc-centro-accoglienza-casier"),
        VacancyParams,
    ), security(("bearer" = [])), responses(
    (status = 200, description = "The reports oldest first: one per write that changed `capacity` or `vacancy`",
        body = ref("#/components/schemas/VacancySeries"), content_type = "application/json"),
    (status = 400, description = "Bad parameter; the message names it"),
    (status = 401, description = "No valid bearer token"),
    (status = 403, description = "The service lies outside the token's territories"),
    (status = 404, description = "No such service (or one the caller may not see)"),
    (status = 500, description = "Internal error; the cause is logged"),
    (status = 503, description = "The database is unreachable"),
))]
pub async fn vacancy(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let p: VacancyParams = params::raw(&req)?;
    let id =
        RecordId::parse(path.trim()).map_err(|e| ApiError::invalid_parameter("id", e.reason))?;
    let view = caller.view(&state);
    let record = service_in_scope(&view, &id)?;
    let (from, to) = (
        time("from", p.from.as_deref())?,
        time("to", p.to.as_deref())?,
    );
    let reports = series(state.catalog.store().as_ref(), &id, from, to, false).await?;
    let service = record.as_service();
    Ok(HttpResponse::Ok().json(json!({
        "id": id.as_str(),
        "name": service.map(|s| s.name.clone()),
        "capacity": service.and_then(|s| s.capacity),
        "vacancy": service.and_then(|s| s.vacancy),
        "reports": reports.iter().map(|r| json!({
            "at": stamp(r.at),
            "capacity": r.capacity,
            "vacancy": r.vacancy,
        })).collect::<Vec<_>>(),
    })))
}

/// Whether a service is a place with beds: a shelter or reception centre, or any service
/// that states a capacity.
fn has_beds(record: &Record) -> bool {
    record.as_service().is_some_and(|s| {
        matches!(s.kind, ServiceKind::Shelter | ServiceKind::ReceptionCentre)
            || s.capacity.is_some()
    })
}

/// Beds and occupancy per territory.
#[utoipa::path(get, path = "/reception", security(("bearer" = [])), responses(
    (status = 200, description = "Per territory of level `territory` in the caller's scope: centres, beds, free beds, centres reporting, and the age of the last report",
        body = ref("#/components/schemas/Reception"), content_type = "application/json"),
    (status = 401, description = "No valid bearer token"),
    (status = 500, description = "Internal error; the cause is logged"),
    (status = 503, description = "The database is unreachable"),
))]
pub async fn reception(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let view = caller.view(&state);
    if !view.visibility().may_read_restricted() {
        return Err(AccessError::Unauthenticated("the reception summary".to_owned()).into());
    }
    let territories = view
        .items(
            Collection::Territories,
            &ItemsQuery {
                kinds: vec!["territory"],
                ..ItemsQuery::default()
            },
        )
        .map_err(|e| ApiError::not_found(e.to_string()))?
        .records;
    let centres: Vec<Arc<Record>> = view
        .items(Collection::Services, &ItemsQuery::default())
        .map_err(|e| ApiError::not_found(e.to_string()))?
        .records
        .into_iter()
        .filter(|r| has_beds(r))
        .collect();
    let now = state.clock.now();
    let store = state.catalog.store();
    let mut rows = Vec::new();
    for t in territories
        .iter()
        .filter(|t| view.visibility().scope().is_none_or(|s| s.contains(t.id())))
    {
        let area = crate::analysis::coverage::AreaIndex::new(t.geometry());
        let inside: Vec<&Arc<Record>> = centres
            .iter()
            .filter(|c| {
                crate::analysis::coverage::representative_point(c.geometry())
                    .is_some_and(|p| area.covers(p))
            })
            .collect();
        let (mut beds, mut free, mut reporting) = (0_u64, 0_u64, 0_u64);
        let mut last: Option<DateTime<Utc>> = None;
        for c in &inside {
            let Some(s) = c.as_service() else { continue };
            beds += u64::from(s.capacity.unwrap_or(0));
            if let Some(v) = s.vacancy {
                free += u64::from(v);
                reporting += 1;
            }
            let latest = series(store.as_ref(), c.id(), None, None, true).await?;
            if let Some(r) = latest.last() {
                last = last.max(Some(r.at));
            }
        }
        rows.push(json!({
            "id": t.id().as_str(),
            "name": t.attributes().name(),
            "centres": inside.len(),
            "beds": beds,
            "free_beds": free,
            "centres_reporting": reporting,
            "last_report": last.map(stamp),
            "last_report_age_s": last.map(|l| (now - l).num_seconds().max(0)),
        }));
    }
    Ok(HttpResponse::Ok().json(json!({ "territories": rows })))
}
