//! The one way to read records: a query over a snapshot that returns only what the caller may
//! see.
//!
//! Every read path (items, item by id, nearest, collection extents and counts, and every later
//! one: tiles, coverage, exports) takes a [`View`]: a snapshot seen with a [`Visibility`]. The
//! view applies the access rules itself, so a handler cannot forget them; the raw layers are
//! reachable only through [`Snapshot::unrestricted_layer`], a name meant to stand out in review.
//!
//! ```
//! use std::sync::Arc;
//! use faro::domain::{Collection, Principal};
//! use faro::index::{Snapshot, query::{ItemsQuery, Visibility}};
//! let view = Arc::new(Snapshot::default()).view(Visibility::of(&Principal::Anonymous));
//! assert!(view.items(Collection::Settlements, &ItemsQuery::default()).is_err(), "restricted");
//! let page = view.items(Collection::Services, &ItemsQuery::default()).unwrap();
//! assert_eq!(page.number_matched, 0);
//! ```

use std::sync::Arc;

use geo::{BoundingRect, Intersects};

use super::{KindSet, Layer, Neighbour, Snapshot};
use crate::analysis::coverage::{AreaIndex, representative_point};
use crate::domain::{
    AccessError, Bbox, Collection, Language, LonLat, Principal, Record, RecordId, ServiceKind,
    is_public,
};

/// What a caller may see, as a value a cache can key on (it is `Hash + Eq`): derived from the
/// principal, never from a role name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Public records only: no settlement, no worksite, no confidential service.
    Anonymous,
    /// Public records everywhere, and the restricted records (settlements, worksites,
    /// confidential services) in these territories (ids, sorted, without repeats): a record is
    /// in a territory when its representative point (a point itself; a polygon's interior
    /// point) lies in the territory's geometry, its boundary included. An id that names no
    /// territory (deleted since the token was made) contributes nothing.
    Scoped(Arc<[RecordId]>),
    /// Every record of the network.
    Everything,
}

impl Visibility {
    /// The visibility of a caller.
    pub fn of(principal: &Principal) -> Self {
        if !principal.is_authorised_reader() {
            return Visibility::Anonymous;
        }
        match principal.scope() {
            None => Visibility::Everything,
            Some(territories) => {
                let mut ids = territories.to_vec();
                ids.sort();
                ids.dedup();
                Visibility::Scoped(ids.into())
            }
        }
    }

    /// Whether this caller may read restricted collections at all (all of them, or those in
    /// its territories).
    pub fn may_read_restricted(&self) -> bool {
        !matches!(self, Visibility::Anonymous)
    }

    /// Whether this caller sees every record of the network.
    pub fn sees_everything(&self) -> bool {
        matches!(self, Visibility::Everything)
    }

    /// The territories of a scoped caller.
    pub fn scope(&self) -> Option<&[RecordId]> {
        match self {
            Visibility::Scoped(ids) => Some(ids),
            _ => None,
        }
    }

    /// May a caller with this visibility list or fetch from `collection` at all?
    pub fn check_collection(&self, collection: Collection) -> Result<(), AccessError> {
        if collection.is_restricted() && !self.may_read_restricted() {
            return Err(AccessError::Unauthenticated(format!(
                "the collection `{collection}`"
            )));
        }
        Ok(())
    }
}

/// The territories of a scoped view, ready for point-in-area tests.
pub struct ScopeAreas {
    areas: Vec<AreaIndex>,
}

impl std::fmt::Debug for ScopeAreas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScopeAreas({} territories)", self.areas.len())
    }
}

impl ScopeAreas {
    fn new(snapshot: &Snapshot, ids: &[RecordId]) -> Self {
        let territories = snapshot.unrestricted_layer(Collection::Territories);
        Self {
            areas: ids
                .iter()
                .filter_map(|id| territories.get(id))
                .map(|t| AreaIndex::new(t.geometry()))
                .collect(),
        }
    }

    /// Whether the representative point of `geometry` lies in one of the territories.
    pub fn contains(&self, geometry: &geo::Geometry<f64>) -> bool {
        representative_point(geometry).is_some_and(|p| self.areas.iter().any(|a| a.covers(p)))
    }
}

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("no territory with id `{0}`")]
    UnknownTerritory(RecordId),
}

/// A filtered, paged listing of one collection. Every filter is optional; an empty `kinds`
/// means every kind.
#[derive(Debug, Clone, Default)]
pub struct ItemsQuery {
    /// Records whose geometry intersects this lon/lat box.
    pub bbox: Option<Bbox>,
    /// Records whose geometry intersects this territory.
    pub territory: Option<RecordId>,
    /// Service kinds, worksite kinds or territory levels (`Attributes::kind_str`).
    pub kinds: Vec<&'static str>,
    /// Case-insensitive text in name, organisation, description, address or notes.
    pub text: Option<String>,
    /// Records to skip, in id order.
    pub offset: usize,
    /// Records to return at most; `None` means all.
    pub limit: Option<usize>,
}

impl ItemsQuery {
    /// Whether the answer needs more than the counts and one page of the id map (so a caller
    /// on an async worker should run it on a blocking thread).
    pub fn needs_scan(&self) -> bool {
        self.bbox.is_some() || self.territory.is_some() || self.text.is_some()
    }
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    /// The page, in id order.
    pub records: Vec<Arc<Record>>,
    /// How many records match the query, over all pages.
    pub number_matched: usize,
}

/// A snapshot seen by one caller. Cheap to make and to clone; `Send`, so it can move to a
/// blocking thread.
#[derive(Debug, Clone)]
pub struct View {
    snapshot: Arc<Snapshot>,
    visibility: Visibility,
    /// The territories of a scoped caller (shared by the views of one snapshot).
    scope: Option<Arc<ScopeAreas>>,
}

impl Snapshot {
    /// This snapshot as a caller with `visibility` may see it: the way every read goes.
    pub fn view(self: &Arc<Self>, visibility: Visibility) -> View {
        let scope = visibility.scope().map(|ids| self.scope_areas(ids));
        View {
            snapshot: Arc::clone(self),
            visibility,
            scope,
        }
    }

    /// The prepared territories of a scope, built once per snapshot and scope.
    fn scope_areas(&self, ids: &[RecordId]) -> Arc<ScopeAreas> {
        let mut cache = self
            .scopes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(areas) = cache.get(ids) {
            return Arc::clone(areas);
        }
        let areas = Arc::new(ScopeAreas::new(self, ids));
        // A handful of scopes per network: a bound only against a pathological number.
        if cache.len() >= 1024 {
            cache.clear();
        }
        cache.insert(ids.into(), Arc::clone(&areas));
        areas
    }
}

impl View {
    pub fn visibility(&self) -> &Visibility {
        &self.visibility
    }

    fn layer(&self, collection: Collection) -> Result<&Layer, QueryError> {
        self.visibility.check_collection(collection)?;
        Ok(self.snapshot.unrestricted_layer(collection))
    }

    /// May this caller see `record`, and so its position?
    pub fn can_see(&self, record: &Record) -> bool {
        match &self.visibility {
            Visibility::Everything => true,
            Visibility::Anonymous => is_public(record),
            Visibility::Scoped(_) => is_public(record) || self.in_scope(record.geometry()),
        }
    }

    /// Whether a position (a geometry's representative point) is in the caller's
    /// territories: always for a caller of the whole network, never for an anonymous one.
    pub fn in_scope(&self, geometry: &geo::Geometry<f64>) -> bool {
        match &self.visibility {
            Visibility::Everything => true,
            Visibility::Anonymous => false,
            Visibility::Scoped(_) => self.scope.as_ref().is_some_and(|s| s.contains(geometry)),
        }
    }

    /// One record by id, if the caller may see it. A record the caller may not see is
    /// answered exactly like one that does not exist.
    pub fn get(
        &self,
        collection: Collection,
        id: &RecordId,
    ) -> Result<Option<&Arc<Record>>, QueryError> {
        Ok(self.layer(collection)?.get(id).filter(|r| self.can_see(r)))
    }

    /// How many records of `collection` the caller may see (`None`: the collection is
    /// restricted for this caller, so even its size is not theirs to know).
    pub fn count(&self, collection: Collection) -> Option<usize> {
        let layer = self.layer(collection).ok()?;
        Some(self.count_of(layer, None))
    }

    /// How many records of `layer` (of kind `kind`, if given) the caller may see: from the
    /// layer's counts, or, for a scoped caller, the public ones counted and the rest tested.
    fn count_of(&self, layer: &Layer, kind: Option<&str>) -> usize {
        match &self.visibility {
            Visibility::Everything => layer.count(true, kind),
            Visibility::Anonymous => layer.count(false, kind),
            Visibility::Scoped(_) => {
                layer.count(false, kind)
                    + layer
                        .iter()
                        .filter(|r| {
                            !is_public(r)
                                && kind.is_none_or(|k| r.attributes().kind_str() == Some(k))
                                && self.in_scope(r.geometry())
                        })
                        .count()
            }
        }
    }

    /// The lon/lat bounding box of what the caller may see of `collection`.
    pub fn extent(&self, collection: Collection) -> Option<geo::Rect<f64>> {
        let layer = self.layer(collection).ok()?;
        match &self.visibility {
            Visibility::Everything => layer.extent(),
            Visibility::Anonymous => layer.anonymous_extent(),
            Visibility::Scoped(_) => layer
                .iter()
                .filter(|r| !is_public(r) && self.in_scope(r.geometry()))
                .filter_map(|r| r.geometry().bounding_rect())
                .chain(layer.anonymous_extent())
                .reduce(|a, b| {
                    geo::Rect::new(
                        geo::coord! { x: a.min().x.min(b.min().x), y: a.min().y.min(b.min().y) },
                        geo::coord! { x: a.max().x.max(b.max().x), y: a.max().y.max(b.max().y) },
                    )
                }),
        }
    }

    /// A filtered page of `collection`, in id order, with the number of matches.
    pub fn items(&self, collection: Collection, query: &ItemsQuery) -> Result<Page, QueryError> {
        let layer = self.layer(collection)?;
        let territory = match &query.territory {
            None => None,
            Some(id) => Some(
                self.get(Collection::Territories, id)?
                    .ok_or_else(|| QueryError::UnknownTerritory(id.clone()))?,
            ),
        };
        let limit = query.limit.unwrap_or(usize::MAX);
        let kinds = &query.kinds;
        let kind_ok = |r: &Record| {
            kinds.is_empty()
                || r.attributes()
                    .kind_str()
                    .is_some_and(|k| kinds.contains(&k))
        };
        let visible = |r: &Record| self.can_see(r);
        if !query.needs_scan() {
            // Counts come from the layer; the page walks the id map only as far as it needs.
            let number_matched = if kinds.is_empty() {
                self.count_of(layer, None)
            } else {
                kinds.iter().map(|k| self.count_of(layer, Some(k))).sum()
            };
            let records = layer
                .iter()
                .filter(|r| visible(r) && kind_ok(r))
                .skip(query.offset)
                .take(limit)
                .cloned()
                .collect();
            return Ok(Page {
                records,
                number_matched,
            });
        }
        let candidates: Vec<&Arc<Record>> = match (&query.bbox, territory) {
            (Some(b), _) => layer.intersecting(&geo::Geometry::Rect(b.to_rect())),
            (None, Some(t)) => layer.intersecting(t.geometry()),
            (None, None) => layer.iter().collect(),
        };
        let needle = query.text.as_deref().map(str::to_lowercase);
        let matched: Vec<&Arc<Record>> = candidates
            .into_iter()
            .filter(|r| visible(r) && kind_ok(r))
            .filter(|r| needle.as_deref().is_none_or(|n| text_matches(r, n)))
            .filter(|r| {
                // With a bbox the candidates came from the box: test the territory exactly.
                query.bbox.is_none()
                    || territory.is_none_or(|t| t.geometry().intersects(r.geometry()))
            })
            .collect();
        let number_matched = matched.len();
        let records = matched
            .into_iter()
            .skip(query.offset)
            .take(limit)
            .cloned()
            .collect();
        Ok(Page {
            records,
            number_matched,
        })
    }

    /// The records of `collection` the caller may see whose bounding box touches the lon/lat
    /// box `rect`, in no particular order (map tiles: they clip each geometry themselves).
    pub fn touching(
        &self,
        collection: Collection,
        rect: geo::Rect<f64>,
    ) -> Result<impl Iterator<Item = &Arc<Record>>, QueryError> {
        let layer = self.layer(collection)?;
        let anonymous = matches!(self.visibility, Visibility::Anonymous);
        let scoped = matches!(self.visibility, Visibility::Scoped(_));
        Ok(layer
            .touching(rect, anonymous)
            .filter(move |r| !scoped || self.can_see(r)))
    }

    /// The `k` services nearest to `origin` that the caller may see and that pass `keep`, by
    /// geodesic distance on WGS84 (metres), ties by id; none beyond `max_distance_m`.
    pub fn nearest_services(
        &self,
        origin: LonLat,
        k: usize,
        max_distance_m: Option<f64>,
        kinds: KindSet,
        keep: impl Fn(&Record) -> bool,
    ) -> Vec<Neighbour> {
        let layer = self.snapshot.unrestricted_layer(Collection::Services);
        if self.visibility.sees_everything() {
            layer.nearest_of_kinds(origin, k, max_distance_m, kinds, keep)
        } else {
            layer.nearest_of_kinds(origin, k, max_distance_m, kinds, |r| {
                self.can_see(r) && keep(r)
            })
        }
    }
}

/// A confidential service as a caller who may not locate it sees it: a way to reach it, and
/// nothing that places it finer than its province (no id, geometry, address, comune,
/// distance, description or website).
#[derive(Debug, Clone, PartialEq)]
pub struct FrontDoor {
    pub name: String,
    pub kind: ServiceKind,
    pub organization: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub languages: Vec<Language>,
    pub opening_hours: Option<String>,
    pub referral_required: bool,
    /// The name of the province (a territory of level `province`) it lies in, if any.
    pub province: Option<String>,
}

impl View {
    /// The front doors of the confidential services of `kinds` that this caller may not
    /// locate, for a caller standing at `origin`: those of the province it stands in (or, if
    /// it stands in none of the network's provinces, all of them), ordered by name and kind,
    /// at most `limit`. Never ordered or chosen by distance, which would place them.
    pub fn front_doors(
        &self,
        kinds: &[ServiceKind],
        origin: LonLat,
        limit: usize,
    ) -> Vec<FrontDoor> {
        if kinds.is_empty() || limit == 0 || self.visibility.sees_everything() {
            return Vec::new();
        }
        let hidden: Vec<&Arc<Record>> = self
            .snapshot
            .confidential_services()
            .iter()
            .filter(|r| r.as_service().is_some_and(|s| kinds.contains(&s.kind)) && !self.can_see(r))
            .collect();
        if hidden.is_empty() {
            return Vec::new();
        }
        let provinces: Vec<(&Arc<Record>, AreaIndex)> = self
            .snapshot
            .unrestricted_layer(Collection::Territories)
            .iter()
            .filter(|t| t.attributes().kind_str() == Some("province"))
            .map(|t| (t, AreaIndex::new(t.geometry())))
            .collect();
        let province_of = |g: &geo::Geometry<f64>| {
            let p = representative_point(g)?;
            provinces.iter().find(|(_, a)| a.covers(p)).map(|(t, _)| *t)
        };
        let here = province_of(&geo::Geometry::Point(geo::Point::new(
            origin.lon(),
            origin.lat(),
        )));
        let mut doors: Vec<FrontDoor> = hidden
            .into_iter()
            .filter_map(|r| {
                let s = r.as_service()?;
                let province = province_of(r.geometry());
                if here.is_some() && province.map(|p| p.id()) != here.map(|h| h.id()) {
                    return None;
                }
                Some(FrontDoor {
                    name: s.name.clone(),
                    kind: s.kind,
                    organization: s.organization.clone(),
                    phone: s.phone.clone(),
                    email: s.email.clone(),
                    languages: s.languages.clone(),
                    opening_hours: s.opening_hours.as_ref().map(|o| o.as_str().to_owned()),
                    referral_required: s.referral_required,
                    province: province.map(|p| p.attributes().name().to_owned()),
                })
            })
            .collect();
        doors.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| a.kind.as_str().cmp(b.kind.as_str()))
                .then_with(|| a.phone.cmp(&b.phone))
        });
        doors.truncate(limit);
        doors
    }
}

/// Whether `needle` (lowercase) is in a record's searchable text.
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
