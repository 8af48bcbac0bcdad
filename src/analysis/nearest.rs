//! "Nearest shelter / PAS / focal point from here": geodesic k-nearest services with filters.

use chrono::NaiveDateTime;

use crate::domain::{Collection, Language, LonLat, Principal, Record, ServiceKind};
use crate::index::{KindSet, Neighbour, Snapshot};

/// Largest `k` a caller may ask for.
pub const MAX_K: usize = 100;

/// A validated nearest-service query.
#[derive(Debug, Clone)]
pub struct NearestQuery {
    pub origin: LonLat,
    pub k: usize,
    /// Empty means every kind.
    pub kinds: Vec<ServiceKind>,
    pub max_distance_m: Option<f64>,
    /// Local Europe/Rome wall-clock time the service must be open at. Services with no
    /// opening hours on record are left out when this is set: faro cannot say they are open.
    pub open_at: Option<NaiveDateTime>,
    pub language: Option<Language>,
}

/// Whether a service passes the query's filters and the caller may see it.
pub fn matches(query: &NearestQuery, principal: &Principal, record: &Record) -> bool {
    let Some(service) = record.as_service() else {
        return false;
    };
    if !principal.can_see(record) {
        return false;
    }
    if !query.kinds.is_empty() && !query.kinds.contains(&service.kind) {
        return false;
    }
    if let Some(lang) = query.language
        && !service.speaks(lang)
    {
        return false;
    }
    if let Some(at) = query.open_at {
        match &service.opening_hours {
            Some(oh) if oh.is_open(at) => {}
            _ => return false,
        }
    }
    true
}

/// The `k` nearest services the caller may see, by geodesic distance (metres), ties by id.
pub fn nearest_services(
    snapshot: &Snapshot,
    query: &NearestQuery,
    principal: &Principal,
) -> Vec<Neighbour> {
    snapshot
        .unrestricted_layer(Collection::Services)
        .nearest_of_kinds(
            query.origin,
            query.k.min(MAX_K),
            query.max_distance_m,
            KindSet::of(&query.kinds),
            |r| matches(query, principal, r),
        )
}
