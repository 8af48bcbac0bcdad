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

use geo::Intersects;

use super::{KindSet, Layer, Neighbour, Snapshot};
use crate::domain::{AccessError, Bbox, Collection, LonLat, Principal, Record, RecordId};

/// What a caller may see, as a value a cache can key on (it is `Hash + Eq`): derived from the
/// principal, never from a role name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Public records only: no settlement, no worksite, no confidential service.
    Anonymous,
    /// Every record of the network.
    Everything,
}

impl Visibility {
    /// The visibility of a caller.
    pub fn of(principal: &Principal) -> Self {
        if principal.is_authorised_reader() {
            Visibility::Everything
        } else {
            Visibility::Anonymous
        }
    }

    /// Whether this visibility includes restricted records (settlements, worksites,
    /// confidential services).
    pub fn sees_restricted(&self) -> bool {
        matches!(self, Visibility::Everything)
    }

    /// May a caller with this visibility list or fetch from `collection` at all?
    pub fn check_collection(&self, collection: Collection) -> Result<(), AccessError> {
        if collection.is_restricted() && !self.sees_restricted() {
            return Err(AccessError::Unauthenticated(format!(
                "the collection `{collection}`"
            )));
        }
        Ok(())
    }

    /// May a caller with this visibility see `record`, and so its position?
    pub fn can_see(&self, record: &Record) -> bool {
        self.sees_restricted()
            || (!record.collection().is_restricted() && !record.is_confidential())
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
}

impl Snapshot {
    /// This snapshot as a caller with `visibility` may see it: the way every read goes.
    pub fn view(self: &Arc<Self>, visibility: Visibility) -> View {
        View {
            snapshot: Arc::clone(self),
            visibility,
        }
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

    /// One record by id, if the caller may see it. A record the caller may not see is
    /// answered exactly like one that does not exist.
    pub fn get(
        &self,
        collection: Collection,
        id: &RecordId,
    ) -> Result<Option<&Arc<Record>>, QueryError> {
        Ok(self
            .layer(collection)?
            .get(id)
            .filter(|r| self.visibility.can_see(r)))
    }

    /// How many records of `collection` the caller may see (`None`: the collection is
    /// restricted for this caller, so even its size is not theirs to know).
    pub fn count(&self, collection: Collection) -> Option<usize> {
        let layer = self.layer(collection).ok()?;
        Some(layer.count(self.visibility.sees_restricted(), None))
    }

    /// The lon/lat bounding box of what the caller may see of `collection`.
    pub fn extent(&self, collection: Collection) -> Option<geo::Rect<f64>> {
        let layer = self.layer(collection).ok()?;
        if self.visibility.sees_restricted() {
            layer.extent()
        } else {
            layer.anonymous_extent()
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
        let visible = |r: &Record| self.visibility.can_see(r);
        if !query.needs_scan() {
            // Counts come from the layer; the page walks the id map only as far as it needs.
            let sees = self.visibility.sees_restricted();
            let number_matched = if kinds.is_empty() {
                layer.count(sees, None)
            } else {
                kinds.iter().map(|k| layer.count(sees, Some(k))).sum()
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
        Ok(layer.touching(rect, !self.visibility.sees_restricted()))
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
        if self.visibility.sees_restricted() {
            layer.nearest_of_kinds(origin, k, max_distance_m, kinds, keep)
        } else {
            layer.nearest_of_kinds(origin, k, max_distance_m, kinds, |r| {
                self.visibility.can_see(r) && keep(r)
            })
        }
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
