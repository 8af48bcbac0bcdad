//! `GET /audit`: the audit log for admins: who changed what, when, before and after, newest
//! first, filtered and paged with a `next` link (keyset on the entry's `seq`, so a page never
//! skips or repeats an entry while writes go on).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use super::auth::Caller;
use super::base_url::base_url;
use super::error::ApiError;
use super::{AppState, params};
use crate::domain::{AccessError, Collection, Principal, Role};
use crate::storage::{AuditEntry, AuditQuery};

/// Entries a page holds by default, and at most.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only entries of this collection.
    #[param(schema_with = collection_schema)]
    collection: Option<String>,
    /// Only entries of the record with this id.
    id: Option<String>,
    /// Only entries whose actor (token name, role and id) contains this text.
    actor: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Only entries before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// Entries per page, 1 to 1000 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Entries older than this `seq` (the `next` link sets it).
    #[param(value_type = Option<i64>, minimum = 1)]
    before: Option<String>,
}

fn collection_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(Collection::ALL.iter().map(|c| c.as_str())))
        .into()
}

pub fn time(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    ApiError::invalid_parameter(name, format!("`{v}` is not an RFC 3339 time: {e}"))
                })
        })
        .transpose()
}

/// The filters of a request, checked.
pub fn parse_query(p: &AuditParams) -> Result<AuditQuery, ApiError> {
    let collection = p
        .collection
        .as_deref()
        .map(|c| {
            c.parse::<Collection>()
                .map_err(|e| ApiError::invalid_parameter("collection", e))
        })
        .transpose()?;
    let limit = params::int_in("limit", p.limit.as_deref(), 1, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    Ok(AuditQuery {
        collection,
        record_id: p.id.clone(),
        actor: p.actor.clone().filter(|a| !a.is_empty()),
        from: time("from", p.from.as_deref())?,
        to: time("to", p.to.as_deref())?,
        before_seq: params::int_in("before", p.before.as_deref(), 1, i64::MAX)?,
        limit: u32::try_from(limit).unwrap_or(100),
    })
}

/// Admins only: anonymous callers get 401, other roles 403. `what` names the resource ("the
/// audit log"), `action` what others may not do with it ("read the audit log").
pub fn check_admin(principal: &Principal, what: &str, action: &str) -> Result<(), AccessError> {
    match principal.role() {
        None => Err(AccessError::Unauthenticated(what.to_owned())),
        Some(Role::Admin) => Ok(()),
        Some(role) => Err(AccessError::Forbidden {
            role,
            action: action.to_owned(),
        }),
    }
}

/// One entry as JSON.
pub fn entry_json(e: &AuditEntry) -> Value {
    json!({
        "seq": e.seq,
        "at": e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "actor": e.actor,
        "action": e.action,
        "collection": e.collection.as_str(),
        "id": e.record_id,
        "before": e.before,
        "after": e.after,
    })
}

/// The audit log, newest first (admins only).
#[utoipa::path(get, path = "/audit", params(AuditParams), security(("bearer" = [])), responses(
    (status = 200, description = "Entries newest first, with a `next` link while more may follow",
        body = ref("#/components/schemas/AuditPage"), content_type = "application/json"),
    (status = 400, description = "Bad parameter; the message names it"),
    (status = 401, description = "No valid bearer token"),
    (status = 403, description = "The token's role is not admin"),
    (status = 500, description = "Internal error; the cause is logged"),
    (status = 503, description = "The database is unreachable"),
))]
pub async fn audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    check_admin(&caller.0, "the audit log", "read the audit log")?;
    let p: AuditParams = params::raw(&req)?;
    let query = parse_query(&p)?;
    let entries = state.catalog.store().audit(&query).await?;
    let mut links = vec![json!({
        "rel": "self", "type": "application/json",
        "href": format!("{}{}", base_url(&req), req.uri()),
    })];
    if entries.len() == query.limit as usize
        && let Some(last) = entries.last()
    {
        // The same filters, one page on.
        let mut pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
        pairs.retain(|(k, _)| k != "before");
        pairs.push(("before".to_owned(), last.seq.to_string()));
        let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        links.push(json!({
            "rel": "next", "type": "application/json",
            "href": format!("{}{}?{qs}", base_url(&req), req.path()),
        }));
    }
    Ok(HttpResponse::Ok().json(json!({
        "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
        "links": links,
    })))
}
