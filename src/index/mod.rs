//! The in-memory index: R-trees over every collection, in an immutable [`Snapshot`].
//!
//! Readers take an `Arc<Snapshot>` and never block; a write builds a new snapshot from the old
//! one (only the layers it touches are copied) and the catalog swaps it in atomically.
//!
//! Two trees per collection:
//! - an envelope tree in lon/lat degrees, for bbox and territory queries (candidates, then an
//!   exact geometry test);
//! - for point records, a tree of earth-centred (ECEF) coordinates in metres. The straight
//!   chord between two points on the ellipsoid is never longer than the geodesic between them,
//!   so ranking candidates by chord and stopping once the chord exceeds the k-th geodesic
//!   distance gives the exact geodesic k nearest neighbours.

mod ecef;

use std::collections::BTreeMap;
use std::sync::Arc;

use geo::{BoundingRect, Distance, Geodesic, Intersects};
use rstar::{AABB, PointDistance, RTree, RTreeObject};

use crate::domain::{Collection, LonLat, Record, RecordId};

pub use ecef::to_ecef;

/// A record's lon/lat envelope in the envelope tree.
#[derive(Debug, Clone)]
struct EnvelopeEntry {
    envelope: AABB<[f64; 2]>,
    record: Arc<Record>,
}

impl PartialEq for EnvelopeEntry {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.record, &other.record)
    }
}

impl RTreeObject for EnvelopeEntry {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.envelope
    }
}

/// A point record in the ECEF tree: position in metres, and its lon/lat for the geodesic.
#[derive(Debug, Clone)]
struct PointEntry {
    xyz: [f64; 3],
    lonlat: [f64; 2],
    record: Arc<Record>,
}

impl PartialEq for PointEntry {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.record, &other.record)
    }
}

impl RTreeObject for PointEntry {
    type Envelope = AABB<[f64; 3]>;
    fn envelope(&self) -> Self::Envelope {
        AABB::from_point(self.xyz)
    }
}

impl PointDistance for PointEntry {
    fn distance_2(&self, point: &[f64; 3]) -> f64 {
        let d = [
            self.xyz[0] - point[0],
            self.xyz[1] - point[1],
            self.xyz[2] - point[2],
        ];
        d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    }
}

fn envelope_entry(record: &Arc<Record>) -> Option<EnvelopeEntry> {
    let r = record.geometry().bounding_rect()?;
    Some(EnvelopeEntry {
        envelope: AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
        record: Arc::clone(record),
    })
}

fn point_entry(record: &Arc<Record>) -> Option<PointEntry> {
    let p = record.valid_geometry().as_point()?;
    Some(PointEntry {
        xyz: to_ecef(p),
        lonlat: [p.lon(), p.lat()],
        record: Arc::clone(record),
    })
}

/// How much a computed chord may exceed the computed geodesic between the same two points.
///
/// In exact arithmetic the chord is never longer than the geodesic. In `f64` each ECEF
/// coordinate (up to 6.4e6 m) carries a rounding error of a few 1e-9 m and the geodesic one of
/// about 1e-8 m, so for points a few metres apart, or the same pole or meridian written with
/// two longitudes (geodesic exactly 0, chord ~1e-9 m), the computed chord can be the longer.
/// Pruning on the bare chord then drops a point at exactly the k-th distance (a tie it should
/// win by id) or at exactly `max_distance_m`. A millimetre is five orders of magnitude above
/// those errors and costs at most a few extra geodesic evaluations.
const CHORD_SLACK_M: f64 = 1e-3;

/// A record and its geodesic distance from a query point, in metres.
#[derive(Debug, Clone)]
pub struct Neighbour {
    pub record: Arc<Record>,
    pub distance_m: f64,
}

/// The index of one collection.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    records: BTreeMap<RecordId, Arc<Record>>,
    envelopes: RTree<EnvelopeEntry>,
    points: RTree<PointEntry>,
}

impl Layer {
    /// Bulk-loads a layer (both trees built in parallel).
    pub fn build(records: Vec<Arc<Record>>) -> Self {
        let (envelopes, points) = std::thread::scope(|s| {
            let env =
                s.spawn(|| RTree::bulk_load(records.iter().filter_map(envelope_entry).collect()));
            let points = RTree::bulk_load(records.iter().filter_map(point_entry).collect());
            (env.join().unwrap_or_default(), points)
        });
        let records = records.into_iter().map(|r| (r.id().clone(), r)).collect();
        Self {
            records,
            envelopes,
            points,
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn get(&self, id: &RecordId) -> Option<&Arc<Record>> {
        self.records.get(id)
    }

    /// Every record, ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Record>> {
        self.records.values()
    }

    /// Records whose geometry intersects `area` (lon/lat), ordered by id.
    pub fn intersecting(&self, area: &geo::Geometry<f64>) -> Vec<&Arc<Record>> {
        let Some(r) = area.bounding_rect() else {
            return Vec::new();
        };
        let envelope = AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]);
        let area_is_rect = matches!(area, geo::Geometry::Rect(_));
        let mut out: Vec<&Arc<Record>> = self
            .envelopes
            .locate_in_envelope_intersecting(&envelope)
            .filter(|e| {
                // A point's envelope inside a rectangle is the point itself: no exact test needed.
                (area_is_rect && matches!(e.record.geometry(), geo::Geometry::Point(_)))
                    || e.record.geometry().intersects(area)
            })
            .map(|e| &e.record)
            .collect();
        out.sort_unstable_by(|a, b| a.id().cmp(b.id()));
        out
    }

    /// The `k` point records nearest to `origin` that pass `keep`, by geodesic distance on
    /// WGS84 (metres), ties broken by id; none farther than `max_distance_m`.
    pub fn nearest(
        &self,
        origin: LonLat,
        k: usize,
        max_distance_m: Option<f64>,
        keep: impl Fn(&Record) -> bool,
    ) -> Vec<Neighbour> {
        if k == 0 {
            return Vec::new();
        }
        let query = to_ecef(origin);
        let origin_point = origin.to_point();
        let mut best: Vec<Neighbour> = Vec::with_capacity(k + 1);
        for (entry, chord_2) in self.points.nearest_neighbor_iter_with_distance_2(&query) {
            // Every later candidate has a chord (so a geodesic) at least this long. The slack
            // keeps the bound sound in floating point: see `CHORD_SLACK_M`.
            let bound = chord_2.sqrt() - CHORD_SLACK_M;
            if max_distance_m.is_some_and(|max| bound > max) {
                break;
            }
            if best.len() == k && bound > best[k - 1].distance_m {
                break;
            }
            if !keep(&entry.record) {
                continue;
            }
            let distance_m = Geodesic.distance(
                origin_point,
                geo::Point::new(entry.lonlat[0], entry.lonlat[1]),
            );
            if max_distance_m.is_some_and(|max| distance_m > max) {
                continue;
            }
            let candidate = Neighbour {
                record: Arc::clone(&entry.record),
                distance_m,
            };
            let at = best.partition_point(|n| {
                (n.distance_m, n.record.id()) < (candidate.distance_m, candidate.record.id())
            });
            if at < k {
                best.insert(at, candidate);
                best.truncate(k);
            }
        }
        best
    }

    fn upsert(&mut self, record: &Arc<Record>) -> bool {
        if let Some(old) = self.records.get(record.id()) {
            // The same incarnation of a record (deleting and re-creating an id starts a new
            // one, at version 1 again) only moves forward.
            if old.meta().created_at == record.meta().created_at
                && old.meta().version >= record.meta().version
            {
                return false;
            }
            let old = Arc::clone(old);
            self.remove_entries(&old);
        }
        if let Some(e) = envelope_entry(record) {
            self.envelopes.insert(e);
        }
        if let Some(p) = point_entry(record) {
            self.points.insert(p);
        }
        self.records.insert(record.id().clone(), Arc::clone(record));
        true
    }

    fn remove(&mut self, id: &RecordId) -> bool {
        match self.records.remove(id) {
            Some(old) => {
                self.remove_entries(&old);
                true
            }
            None => false,
        }
    }

    fn remove_entries(&mut self, old: &Arc<Record>) {
        if let Some(e) = envelope_entry(old) {
            self.envelopes.remove(&e);
        }
        if let Some(p) = point_entry(old) {
            self.points.remove(&p);
        }
    }
}

/// An immutable view of every collection at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    layers: [Arc<Layer>; 4],
}

impl Snapshot {
    /// Builds every layer from a full load of the store.
    pub fn build(records: Vec<Record>) -> Self {
        let mut by_collection: [Vec<Arc<Record>>; 4] = Default::default();
        for r in records {
            by_collection[r.collection().index()].push(Arc::new(r));
        }
        let layers = by_collection.map(|rs| Arc::new(Layer::build(rs)));
        Self { layers }
    }

    pub fn layer(&self, collection: Collection) -> &Layer {
        &self.layers[collection.index()]
    }

    /// A new snapshot with these upserts and deletions applied. An upsert older than or equal
    /// to the indexed version of the same record (same `created_at`) is ignored, so replaying a
    /// change is harmless; a re-created record replaces the old one whatever its version.
    #[must_use]
    pub fn with_changes(
        &self,
        upserts: &[Arc<Record>],
        deletes: &[(Collection, RecordId)],
    ) -> Snapshot {
        let mut layers = self.layers.clone();
        for r in upserts {
            Arc::make_mut(&mut layers[r.collection().index()]).upsert(r);
        }
        for (c, id) in deletes {
            if layers[c.index()].get(id).is_some() {
                Arc::make_mut(&mut layers[c.index()]).remove(id);
            }
        }
        Snapshot { layers }
    }

    /// Number of records per collection.
    pub fn counts(&self) -> [(Collection, usize); 4] {
        Collection::ALL
            .iter()
            .map(|c| (*c, self.layer(*c).len()))
            .collect::<Vec<_>>()
            .try_into()
            .unwrap_or([
                (Collection::Services, 0),
                (Collection::Settlements, 0),
                (Collection::Worksites, 0),
                (Collection::Territories, 0),
            ])
    }
}
