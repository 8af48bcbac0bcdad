//! The in-memory index: R-trees over every collection, in an immutable [`Snapshot`].
//!
//! Readers take an `Arc<Snapshot>` and never block; a write builds a new snapshot from the old
//! one (only the layers it touches are copied) and the catalog swaps it in atomically.
//!
//! Per collection, an id map (the records themselves, ordered by id) and two trees:
//! - an envelope tree in lon/lat degrees, for bbox and territory queries (candidates, then an
//!   exact geometry test);
//! - for point records, a tree of earth-centred (ECEF) coordinates in metres. The straight
//!   chord between two points on the ellipsoid is never longer than the geodesic between them,
//!   so ranking candidates by chord and stopping once the chord exceeds the k-th geodesic
//!   distance gives the exact geodesic k nearest neighbours.
//!
//! `benches/index.rs` measures them over a million points; `docs/benchmarks.md` has the figures.

mod ecef;
pub mod query;

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap};
use std::sync::{Arc, OnceLock};

use geo::{BoundingRect, Distance, Geodesic, Intersects};
use rstar::{
    AABB, ParentNode, PointDistance, RStarInsertionStrategy, RTree, RTreeNode, RTreeObject,
    RTreeParams,
};

use crate::domain::{Collection, LonLat, Principal, Record, RecordId, ServiceKind};

pub use ecef::to_ecef;

/// Node sizes of the point tree: up to 10 children rather than rstar's default 6 makes a
/// shallower tree, which `nearest` walks faster, most of all with a selective `keep` (see
/// `docs/benchmarks.md`).
#[derive(Debug, Clone, Copy, Default)]
struct PointParams;

impl RTreeParams for PointParams {
    const MIN_SIZE: usize = 4;
    const MAX_SIZE: usize = 10;
    const REINSERTION_COUNT: usize = 3;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

/// A record's lon/lat envelope in the envelope tree.
#[derive(Debug, Clone)]
struct EnvelopeEntry {
    envelope: AABB<[f64; 2]>,
    record: Arc<Record>,
    /// The record is a point: its envelope is the point itself. Kept here (the entry has room
    /// for it within the size of a tree node) so that a bbox query need not read the record.
    is_point: bool,
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
    /// The service kind's bit (see [`KindSet`]), so that a kind filter reads no record.
    kind_bit: u32,
}

/// A set of service kinds, tested against the tree's entries without reading the records.
///
/// ```
/// use faro::domain::ServiceKind;
/// use faro::index::KindSet;
/// let set = KindSet::of(&[ServiceKind::Shelter, ServiceKind::Pas]);
/// assert!(set.contains(ServiceKind::Pas) && !set.contains(ServiceKind::Health));
/// assert!(KindSet::of(&[]).contains(ServiceKind::Health), "no kinds means every kind");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSet(u32);

impl KindSet {
    /// Every record, services or not.
    pub const ANY: KindSet = KindSet(u32::MAX);

    /// These kinds; an empty list means every kind.
    pub fn of(kinds: &[ServiceKind]) -> Self {
        if kinds.is_empty() {
            return Self::ANY;
        }
        KindSet(kinds.iter().fold(0, |m, k| m | kind_bit(*k)))
    }

    pub fn contains(self, kind: ServiceKind) -> bool {
        self.0 & kind_bit(kind) != 0
    }

    fn admits(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
}

fn kind_bit(kind: ServiceKind) -> u32 {
    let i = ServiceKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(31);
    1 << i.min(30)
}

/// Records that are not services carry the bit only [`KindSet::ANY`] has.
const NO_KIND: u32 = 1 << 31;

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
        is_point: matches!(record.geometry(), geo::Geometry::Point(_)),
    })
}

fn point_entry(record: &Arc<Record>) -> Option<PointEntry> {
    let p = record.valid_geometry().as_point()?;
    Some(PointEntry {
        xyz: to_ecef(p),
        lonlat: [p.lon(), p.lat()],
        record: Arc::clone(record),
        kind_bit: record.as_service().map_or(NO_KIND, |s| kind_bit(s.kind)),
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

/// A record in a layer's id map, ordered by the id it carries (so the map holds no copy of it).
#[derive(Debug, Clone)]
struct ById(Arc<Record>);

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.id() == other.0.id()
    }
}

impl Eq for ById {}

impl PartialOrd for ById {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ById {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.id().cmp(other.0.id())
    }
}

impl Borrow<RecordId> for ById {
    fn borrow(&self) -> &RecordId {
        self.0.id()
    }
}

/// Positions of `records` in id order; of records with the same id, only the last.
///
/// Sorting a million `ById` directly chases two pointers (record, then id) for each side of
/// every comparison; sorting (first 16 bytes of the id, position) pairs reads each id once.
fn id_order(records: &[Arc<Record>]) -> Vec<usize> {
    let prefix = |id: &RecordId| {
        let mut bytes = [0_u8; 16];
        for (b, c) in bytes.iter_mut().zip(id.as_str().bytes()) {
            *b = c;
        }
        // Ids are ASCII without NUL, so the zero padding sorts a shorter id first, as
        // comparing the strings does.
        u128::from_be_bytes(bytes)
    };
    let mut order: Vec<(u128, usize)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (prefix(r.id()), i))
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| records[a.1].id().cmp(records[b.1].id()))
            .then(a.1.cmp(&b.1))
    });
    order.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0 && records[later.1].id() == records[earlier.1].id();
        if same {
            earlier.1 = later.1;
        }
        same
    });
    order.into_iter().map(|(_, i)| i).collect()
}

/// Whether `new` replaces `old`, a record with the same id: a newer version of the same
/// incarnation (same `created_at`), or a re-created record whatever its version.
fn supersedes(new: &Record, old: &Record) -> bool {
    old.meta().created_at != new.meta().created_at || old.meta().version < new.meta().version
}

/// One `Layer::nearest` query: a best-first walk of the point tree by chord.
///
/// The queue holds subtrees and points keyed by their chord from the query less
/// `CHORD_SLACK_M`, a lower bound of the geodesic to anything in them. Popped in that order,
/// a point is ranked by its geodesic; the walk stops when the next key exceeds the limit,
/// `max_distance_m` and, once `k` points are held, the k-th distance: every point left is at
/// least that far, so the answer is exact. Nothing beyond the limit of the moment is queued,
/// and a point is asked to `keep` when queued (the points of a node back to back, so that
/// their records load in parallel), so the queue holds only what may still matter.
struct Search<'a, F> {
    query: [f64; 3],
    origin: geo::Point<f64>,
    k: usize,
    max_distance_m: f64,
    kinds: KindSet,
    keep: &'a F,
    /// The best so far by (distance, id), at most `k`.
    best: Vec<(f64, &'a PointEntry)>,
    queue: BinaryHeap<Queued<'a>>,
}

/// A subtree or a point in the queue of `Search`, least bound first.
struct Queued<'a> {
    /// The bound's bits: for a non-negative `f64` they order as the number does.
    key: u64,
    node: &'a RTreeNode<PointEntry>,
}

impl PartialEq for Queued<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Queued<'_> {}

impl PartialOrd for Queued<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` pops its greatest.
        other.key.cmp(&self.key)
    }
}

impl<'a, F: Fn(&Record) -> bool> Search<'a, F> {
    fn limit(&self) -> f64 {
        if self.best.len() == self.k {
            self.best[self.k - 1].0
        } else {
            self.max_distance_m
        }
    }

    fn run(&mut self, root: &'a ParentNode<PointEntry>) {
        self.expand(root);
        while let Some(Queued { key, node }) = self.queue.pop() {
            if f64::from_bits(key) > self.limit() {
                break;
            }
            match node {
                RTreeNode::Leaf(entry) => self.rank(entry),
                RTreeNode::Parent(parent) => self.expand(parent),
            }
        }
    }

    /// Queues the children of `parent` that may still matter.
    fn expand(&mut self, parent: &'a ParentNode<PointEntry>) {
        let limit = self.limit();
        for node in parent.children() {
            let chord_2 = match node {
                RTreeNode::Leaf(entry) => entry.distance_2(&self.query),
                RTreeNode::Parent(p) => p.envelope().distance_2(&self.query),
            };
            // Never below zero, so that the bits order as the bound does.
            let bound = (chord_2.sqrt() - CHORD_SLACK_M).max(0.0);
            if bound > limit {
                continue;
            }
            if let RTreeNode::Leaf(entry) = node
                && (!self.kinds.admits(entry.kind_bit) || !(self.keep)(&entry.record))
            {
                continue;
            }
            self.queue.push(Queued {
                key: bound.to_bits(),
                node,
            });
        }
    }

    fn rank(&mut self, entry: &'a PointEntry) {
        let distance_m = Geodesic.distance(
            self.origin,
            geo::Point::new(entry.lonlat[0], entry.lonlat[1]),
        );
        if distance_m > self.max_distance_m {
            return;
        }
        let at = self.best.partition_point(|&(d, e)| {
            d.total_cmp(&distance_m)
                .then_with(|| e.record.id().cmp(entry.record.id()))
                .is_lt()
        });
        if at < self.k {
            self.best.insert(at, (distance_m, entry));
            self.best.truncate(self.k);
        }
    }
}

/// A record and its geodesic distance from a query point, in metres.
#[derive(Debug, Clone)]
pub struct Neighbour {
    pub record: Arc<Record>,
    pub distance_m: f64,
}

/// The index of one collection.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    records: BTreeSet<ById>,
    envelopes: RTree<EnvelopeEntry>,
    points: RTree<PointEntry, PointParams>,
    /// The extent of what an anonymous caller may see, computed on first use in this snapshot.
    anonymous_extent: OnceLock<Option<geo::Rect<f64>>>,
}

impl Layer {
    /// Bulk-loads a layer (both trees built in parallel). Of records with the same id, the
    /// last one is kept.
    pub fn build(records: Vec<Arc<Record>>) -> Self {
        let count = records.len();
        // Two threads: the envelope tree then the id order, and the point tree.
        let (envelopes, order, points) = std::thread::scope(|s| {
            let other = s.spawn(|| {
                let envelopes =
                    RTree::bulk_load(records.iter().filter_map(envelope_entry).collect());
                (envelopes, id_order(&records))
            });
            let points =
                RTree::bulk_load_with_params(records.iter().filter_map(point_entry).collect());
            let (envelopes, order) = other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (envelopes, order, points)
        });
        let mut slots: Vec<Option<Arc<Record>>> = records.into_iter().map(Some).collect();
        let records: BTreeSet<ById> = order
            .into_iter()
            .filter_map(|i| slots[i].take().map(ById))
            .collect();
        if records.len() < count {
            // Duplicate ids (no store hands them out): the trees hold every copy, so build
            // them again from the records that won.
            return Self::build(records.into_iter().map(|r| r.0).collect());
        }
        Self {
            records,
            envelopes,
            points,
            anonymous_extent: OnceLock::new(),
        }
    }

    /// The lon/lat bounding box of every record (the root of the envelope tree), if any.
    pub fn extent(&self) -> Option<geo::Rect<f64>> {
        (self.envelopes.size() > 0).then(|| {
            let e = self.envelopes.root().envelope();
            geo::Rect::new(
                geo::coord! { x: e.lower()[0], y: e.lower()[1] },
                geo::coord! { x: e.upper()[0], y: e.upper()[1] },
            )
        })
    }

    /// The bounding box of the records an anonymous caller may see (so no confidential
    /// position shapes it). Computed once per snapshot, on first use.
    pub fn anonymous_extent(&self) -> Option<geo::Rect<f64>> {
        *self.anonymous_extent.get_or_init(|| {
            self.iter()
                .filter(|r| Principal::Anonymous.can_see(r))
                .filter_map(|r| r.geometry().bounding_rect())
                .reduce(|a, b| {
                    geo::Rect::new(
                        geo::coord! { x: a.min().x.min(b.min().x), y: a.min().y.min(b.min().y) },
                        geo::coord! { x: a.max().x.max(b.max().x), y: a.max().y.max(b.max().y) },
                    )
                })
        })
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Records an anonymous caller may see (`restricted_visible` false) or all of them, of one
    /// `kind` (`Attributes::kind_str`) or of every kind.
    pub fn count(&self, restricted_visible: bool, kind: Option<&str>) -> usize {
        self.iter()
            .filter(|r| restricted_visible || Principal::Anonymous.can_see(r))
            .filter(|r| kind.is_none_or(|k| r.attributes().kind_str() == Some(k)))
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn get(&self, id: &RecordId) -> Option<&Arc<Record>> {
        self.records.get(id).map(|r| &r.0)
    }

    /// Every record, ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Record>> {
        self.records.iter().map(|r| &r.0)
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
                (area_is_rect && e.is_point) || e.record.geometry().intersects(area)
            })
            .map(|e| &e.record)
            .collect();
        out.sort_unstable_by(|a, b| a.id().cmp(b.id()));
        out
    }

    /// The `k` point records nearest to `origin` that pass `keep`, by geodesic distance on
    /// WGS84 (metres), ties broken by id; none farther than `max_distance_m`.
    ///
    /// `keep` may be called on a few candidates that turn out not to matter.
    pub fn nearest(
        &self,
        origin: LonLat,
        k: usize,
        max_distance_m: Option<f64>,
        keep: impl Fn(&Record) -> bool,
    ) -> Vec<Neighbour> {
        self.nearest_of_kinds(origin, k, max_distance_m, KindSet::ANY, keep)
    }

    /// Like [`Layer::nearest`], first keeping only services of `kinds`: that test reads the
    /// tree entry, not the record, so a selective kind filter costs no cache miss per candidate.
    pub fn nearest_of_kinds(
        &self,
        origin: LonLat,
        k: usize,
        max_distance_m: Option<f64>,
        kinds: KindSet,
        keep: impl Fn(&Record) -> bool,
    ) -> Vec<Neighbour> {
        if k == 0 || self.points.size() == 0 {
            return Vec::new();
        }
        let mut search = Search {
            query: to_ecef(origin),
            origin: origin.to_point(),
            k,
            max_distance_m: max_distance_m.unwrap_or(f64::INFINITY),
            kinds,
            keep: &keep,
            best: Vec::with_capacity(k + 1),
            queue: BinaryHeap::with_capacity(64),
        };
        search.run(self.points.root());
        search
            .best
            .into_iter()
            .map(|(distance_m, entry)| Neighbour {
                record: Arc::clone(&entry.record),
                distance_m,
            })
            .collect()
    }

    /// Whether `upsert` would change this layer.
    fn accepts(&self, record: &Record) -> bool {
        self.get(record.id())
            .is_none_or(|old| supersedes(record, old))
    }

    fn upsert(&mut self, record: &Arc<Record>) -> bool {
        // The same incarnation of a record (deleting and re-creating an id starts a new one,
        // at version 1 again) only moves forward.
        if !self.accepts(record) {
            return false;
        }
        self.anonymous_extent = OnceLock::new();
        if let Some(old) = self.records.replace(ById(Arc::clone(record))) {
            self.remove_entries(&old.0);
        }
        if let Some(e) = envelope_entry(record) {
            self.envelopes.insert(e);
        }
        if let Some(p) = point_entry(record) {
            self.points.insert(p);
        }
        true
    }

    fn remove(&mut self, id: &RecordId) -> bool {
        match self.records.take(id) {
            Some(old) => {
                self.anonymous_extent = OnceLock::new();
                self.remove_entries(&old.0);
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

    /// One collection's layer, every record in it: this bypasses access control. Read
    /// through [`Snapshot::view`] (the [`query`] module) instead.
    pub fn unrestricted_layer(&self, collection: Collection) -> &Layer {
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
            // Only a layer that changes is copied: replaying changes costs no copy.
            let layer = &mut layers[r.collection().index()];
            if layer.accepts(r) {
                Arc::make_mut(layer).upsert(r);
            }
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
            .map(|c| (*c, self.unrestricted_layer(*c).len()))
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
