//! The in-memory index: R-trees over every collection, in an immutable [`Snapshot`].
//!
//! Readers take an `Arc<Snapshot>` and never block; a write builds a new snapshot from the old
//! one and the catalog swaps it in atomically.
//!
//! Per collection a [`Layer`] of two parts:
//! - a **base**: the records ordered by id and two trees, bulk-loaded, never changed after and
//!   shared by every snapshot until the next merge:
//!   - an envelope tree in lon/lat degrees, for bbox and territory queries (candidates, then
//!     an exact geometry test);
//!   - for point records, a tree of earth-centred (ECEF) coordinates in metres. The straight
//!     chord between two points on the ellipsoid is never longer than the geodesic between
//!     them, so ranking candidates by chord and stopping once the chord exceeds the k-th
//!     geodesic distance gives the exact geodesic k nearest neighbours;
//! - a small **delta**: the latest state (record or tombstone) of every id changed since the
//!   base was built, with trees of its own. An id in the delta shadows the base's record.
//!   A write copies the delta, never the base, so it costs O(delta), whatever the layer's size.
//!
//! Every answer merges the two and is exact. When a delta grows past [`merge_threshold`], the
//! catalog rebuilds the base off the writer's path ([`Layer::merge_job`], [`MergeJob::run`])
//! and swaps it in with [`Snapshot::with_merged`], keeping the writes made meanwhile.
//!
//! This API knows nothing of access control: it is read through `index::query`.
//!
//! `benches/index.rs` measures it over a million points; `docs/benchmarks.md` has the figures.

mod base;
mod counts;
mod delta;
mod ecef;
pub mod query;
mod search;
mod tree;

use std::collections::{BTreeMap, BinaryHeap};
use std::sync::{Arc, OnceLock, Weak};

use geo::{BoundingRect, Intersects};
use rstar::AABB;

use crate::domain::{Collection, LonLat, Record, RecordId};

use base::Base;
use counts::Counts;
use delta::{Delta, DeltaEntry, Merged, NOTHING};
#[cfg(test)]
pub(crate) use search::MIN_RADIUS_OF_CURVATURE_M;
pub(crate) use search::chord_certainly_within;
use search::{Search, bounds, root_bounds, union};
use tree::EnvelopeEntry;

pub use ecef::to_ecef;
pub use tree::KindSet;

/// The smallest delta worth merging into the base.
pub const MERGE_MIN_DELTA: usize = 1024;

/// The delta size past which a layer of `base_len` records should be merged:
/// `max(MERGE_MIN_DELTA, base_len / 512)` (1,953 at a million records).
///
/// A write copies the delta (about 0.16 µs an entry, `patch/*` in `benches/index.rs`), so
/// this bounds its cost: about 0.3 ms at the threshold for a million records. A merge is a
/// bulk load of the whole layer (a second or two at a million, `merge/merge_run_1m`), so a
/// larger layer waits for a larger delta: at a million, one merge per ~2,000 writes.
pub fn merge_threshold(base_len: usize) -> usize {
    MERGE_MIN_DELTA.max(base_len / 512)
}

/// A record and its geodesic distance from a query point, in metres.
#[derive(Debug, Clone)]
pub struct Neighbour {
    pub record: Arc<Record>,
    pub distance_m: f64,
}

/// One change to the index, applied in the order given to [`Snapshot::with_changes`].
#[derive(Debug, Clone)]
pub enum IndexChange {
    /// Insert or replace a record (in the layer of its collection).
    Upsert(Arc<Record>),
    /// Remove the record with this id, if indexed.
    Delete(Collection, RecordId),
}

impl IndexChange {
    pub fn collection(&self) -> Collection {
        match self {
            IndexChange::Upsert(r) => r.collection(),
            IndexChange::Delete(c, _) => *c,
        }
    }
}

/// Whether `new` replaces `old`, a record with the same id: a newer version of the same
/// incarnation (same `created_at`), or a re-created record whatever its version.
fn supersedes(new: &Record, old: &Record) -> bool {
    old.meta().created_at != new.meta().created_at || old.meta().version < new.meta().version
}

fn to_rect(e: AABB<[f64; 2]>) -> geo::Rect<f64> {
    geo::Rect::new(
        geo::coord! { x: e.lower()[0], y: e.lower()[1] },
        geo::coord! { x: e.upper()[0], y: e.upper()[1] },
    )
}

/// The index of one collection: a shared base and a small delta over it (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct Layer {
    base: Arc<Base>,
    delta: Delta,
    counts: Counts,
    /// The sequence number of the next change to this layer; it only grows, merges included.
    next_seq: u64,
    /// The bounding box of the base records no delta entry shadows, when some are shadowed;
    /// computed on first use in this snapshot.
    base_extent: OnceLock<Option<AABB<[f64; 2]>>>,
    /// The extent of what an anonymous caller may see, computed on first use in this snapshot.
    anonymous_extent: OnceLock<Option<AABB<[f64; 2]>>>,
}

impl Layer {
    /// Bulk-loads a layer (both trees built in parallel). Of records with the same id, the
    /// last one is kept.
    pub fn build(records: Vec<Arc<Record>>) -> Self {
        Self::on(Arc::new(Base::build(records)), 0)
    }

    /// A layer that is exactly `base`.
    fn on(base: Arc<Base>, next_seq: u64) -> Self {
        Self {
            counts: base.counts.clone(),
            base,
            delta: Delta::default(),
            next_seq,
            base_extent: OnceLock::new(),
            anonymous_extent: OnceLock::new(),
        }
    }

    /// The lon/lat bounding box of every record, if any.
    pub fn extent(&self) -> Option<geo::Rect<f64>> {
        let shadowed = &self.delta.shadowed;
        let base = if shadowed.is_empty() {
            root_bounds(&self.base.envelopes)
        } else {
            // Only a shadowed record on the edge of the base's box changes it; the walk
            // finds the edges of what is left without a scan.
            *self
                .base_extent
                .get_or_init(|| bounds(&self.base.envelopes, |e| !shadowed.contains(&e.record)))
        };
        union(base, root_bounds(&self.delta.envelopes)).map(to_rect)
    }

    /// The bounding box of the records an anonymous caller may see (so no confidential
    /// position shapes it). Computed once per snapshot, on first use.
    pub fn anonymous_extent(&self) -> Option<geo::Rect<f64>> {
        if self.counts.anonymous() == 0 {
            return None;
        }
        let anonymous = *self.anonymous_extent.get_or_init(|| {
            let shadowed = &self.delta.shadowed;
            let base = if shadowed.is_empty() {
                self.base.anonymous_bounds
            } else if self.base.counts.anonymous() == self.delta.shadowed_anonymous {
                None
            } else {
                bounds(&self.base.envelopes, |e| {
                    e.anonymous && !shadowed.contains(&e.record)
                })
            };
            union(base, bounds(&self.delta.envelopes, |e| e.anonymous))
        });
        anonymous.map(to_rect)
    }

    pub fn len(&self) -> usize {
        self.counts.total()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many records there are of `kind` (a `kind_str()`: service kind, worksite kind or
    /// territory level), or of every kind when `None`; O(1), kept by every write.
    ///
    /// With `restricted_visible`, every record counts; without, only those an anonymous caller
    /// may see (`domain::is_public`: none of a restricted collection, and no
    /// confidential service).
    pub fn count(&self, restricted_visible: bool, kind: Option<&str>) -> usize {
        self.counts.get(restricted_visible, kind)
    }

    pub fn get(&self, id: &RecordId) -> Option<&Arc<Record>> {
        match self.delta.get(id) {
            Some(e) => e.live(),
            None => self.base.get(id),
        }
    }

    /// Every record, ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Record>> {
        Merged::new(self.base.records.iter(), self.delta.entries.iter())
    }

    /// Records whose geometry intersects `area` (lon/lat), ordered by id.
    pub fn intersecting(&self, area: &geo::Geometry<f64>) -> Vec<&Arc<Record>> {
        let Some(r) = area.bounding_rect() else {
            return Vec::new();
        };
        let envelope = AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]);
        let area_is_rect = matches!(area, geo::Geometry::Rect(_));
        // A point's envelope inside a rectangle is the point itself: no exact test needed.
        let hit = |e: &&EnvelopeEntry| {
            (area_is_rect && e.is_point) || e.record.geometry().intersects(area)
        };
        let shadowed = &self.delta.shadowed;
        let mut out: Vec<&Arc<Record>> = self
            .base
            .envelopes
            .locate_in_envelope_intersecting(&envelope)
            .filter(|e| !shadowed.contains(&e.record))
            .filter(hit)
            .map(|e| &e.record)
            .collect();
        out.extend(
            self.delta
                .envelopes
                .locate_in_envelope_intersecting(&envelope)
                .filter(hit)
                .map(|e| &e.record),
        );
        out.sort_unstable_by(|a, b| a.id().cmp(b.id()));
        out
    }

    /// Records whose bounding box touches the lon/lat box `rect`, in no particular order:
    /// the candidates of a map tile, which tests the geometry itself after projecting it.
    /// With `anonymous`, only records an anonymous caller may see (read from the tree entry,
    /// without touching the record).
    pub fn touching(
        &self,
        rect: geo::Rect<f64>,
        anonymous: bool,
    ) -> impl Iterator<Item = &Arc<Record>> {
        let envelope =
            AABB::from_corners([rect.min().x, rect.min().y], [rect.max().x, rect.max().y]);
        let shadowed = &self.delta.shadowed;
        self.base
            .envelopes
            .locate_in_envelope_intersecting(&envelope)
            .filter(move |e| !shadowed.contains(&e.record))
            .chain(
                self.delta
                    .envelopes
                    .locate_in_envelope_intersecting(&envelope),
            )
            .filter(move |e| !anonymous || e.anonymous)
            .map(|e| &e.record)
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
        let (base, delta) = (&self.base.points, &self.delta.points);
        if k == 0 || base.size() + delta.size() == 0 {
            return Vec::new();
        }
        let mut search = Search {
            query: to_ecef(origin),
            origin: origin.to_point(),
            k,
            max_distance_m: max_distance_m.unwrap_or(f64::INFINITY),
            kinds,
            keep: &keep,
            skip: &NOTHING,
            best: Vec::with_capacity(k + 1),
            queue: BinaryHeap::with_capacity(64),
        };
        // The denser tree first (the base, but for a small layer): its best are the nearer,
        // so their limit prunes the walk of the other at once. Walking the sparse delta first
        // ranks (geodesics) points that the base's then beat.
        let base_walk = (base, &self.delta.shadowed);
        let delta_walk = (delta, &NOTHING);
        let walks = if delta.size() > base.size() {
            [delta_walk, base_walk]
        } else {
            [base_walk, delta_walk]
        };
        for (tree, skip) in walks {
            if tree.size() > 0 {
                search.run(tree.root(), skip);
            }
        }
        search
            .best
            .into_iter()
            .map(|(distance_m, entry)| Neighbour {
                record: Arc::clone(&entry.record),
                distance_m,
            })
            .collect()
    }

    /// How many ids the delta holds (records and tombstones).
    pub fn delta_len(&self) -> usize {
        self.delta.entries.len()
    }

    /// Whether the delta has passed [`merge_threshold`]: time for a [`Layer::merge_job`].
    pub fn needs_merge(&self) -> bool {
        self.delta_len() >= merge_threshold(self.base.records.len())
    }

    /// What rebuilding the base from this layer's records takes: cheap (a copy of the delta);
    /// [`MergeJob::run`] does the work.
    pub fn merge_job(&self) -> MergeJob {
        MergeJob {
            base: Arc::clone(&self.base),
            delta: self.delta.entries.iter().cloned().collect(),
            upto: self.next_seq,
        }
    }

    /// This layer with `changes` (all of its collection) applied in order, or `None` when
    /// they change nothing.
    fn with_changes<'c>(&self, changes: impl Iterator<Item = &'c IndexChange>) -> Option<Layer> {
        // The state each changed id ends in, so that a batch touching an id twice writes it
        // once.
        let mut pending: BTreeMap<&RecordId, Option<&Arc<Record>>> = BTreeMap::new();
        for change in changes {
            let (id, new) = match change {
                IndexChange::Upsert(r) => (r.id(), Some(r)),
                IndexChange::Delete(_, id) => (id, None),
            };
            let current = match pending.get(id) {
                Some(state) => *state,
                None => self.get(id),
            };
            let accepted = match (new, current) {
                // The same incarnation of a record (deleting and re-creating an id starts a
                // new one, at version 1 again) only moves forward.
                (Some(new), Some(old)) => supersedes(new, old),
                (Some(_), None) => true,
                (None, current) => current.is_some(),
            };
            if accepted {
                pending.insert(id, new);
            }
        }
        // Inserted and deleted again in this batch: no change.
        pending.retain(|id, state| state.is_some() || self.get(id).is_some());
        if pending.is_empty() {
            return None;
        }
        if pending.len() > merge_threshold(self.base.records.len()) && pending.len() >= self.len() {
            // A batch as large as the layer (an import): one bulk load costs less than
            // growing the delta by as much.
            return Some(self.rebuilt(&pending));
        }
        let mut next = Layer {
            base: Arc::clone(&self.base),
            delta: self.delta.clone(),
            counts: self.counts.clone(),
            next_seq: self.next_seq,
            base_extent: OnceLock::new(),
            anonymous_extent: OnceLock::new(),
        };
        for (id, state) in pending {
            next.set(id, state);
        }
        Some(next)
    }

    /// Makes `state` the state of `id` (a record with that id, or none).
    fn set(&mut self, id: &RecordId, state: Option<&Arc<Record>>) {
        let (current, in_delta) = match self.delta.get(id) {
            Some(e) => (e.live().cloned(), true),
            None => (self.base.get(id).cloned(), false),
        };
        let seq = self.next_seq;
        let entry = match (state, &current) {
            (Some(r), _) => DeltaEntry {
                record: Arc::clone(r),
                deleted: false,
                seq,
            },
            (None, Some(old)) => DeltaEntry {
                record: Arc::clone(old),
                deleted: true,
                seq,
            },
            (None, None) => return,
        };
        self.next_seq += 1;
        if !in_delta && let Some(b) = self.base.get(id) {
            self.delta.shadow(b);
        }
        if let Some(old) = &current {
            self.counts.remove(old);
        }
        if let Some(r) = entry.live() {
            self.counts.add(r);
        }
        self.delta.put(entry);
    }

    /// A layer of a new base: this one's records with `pending` laid over them.
    fn rebuilt(&self, pending: &BTreeMap<&RecordId, Option<&Arc<Record>>>) -> Layer {
        let entries: Vec<DeltaEntry> = pending
            .iter()
            .filter_map(|(id, state)| {
                let (record, deleted) = match state {
                    Some(r) => (*r, false),
                    None => (self.get(id)?, true),
                };
                Some(DeltaEntry {
                    record: Arc::clone(record),
                    deleted,
                    seq: 0,
                })
            })
            .collect();
        let records: Vec<Arc<Record>> = Merged::new(self.iter(), entries.iter()).cloned().collect();
        Self::on(Arc::new(Base::from_sorted(records)), self.next_seq + 1)
    }

    /// Whether `merged` was taken from this layer's base at this layer's state or an earlier
    /// one; not when another merge or a reload came first.
    fn takes(&self, merged: &MergedBase) -> bool {
        std::ptr::eq(Arc::as_ptr(&self.base), merged.from.as_ptr()) && self.next_seq >= merged.upto
    }

    /// This layer on `merged`'s base (see [`Layer::takes`]), keeping the changes made since its
    /// job was taken.
    fn rebased(&self, merged: MergedBase) -> Layer {
        let delta = Delta::of(
            self.delta.entries.iter().filter(|e| e.seq >= merged.upto),
            |id| merged.base.get(id),
        );
        Layer {
            base: merged.base,
            delta,
            counts: self.counts.clone(),
            next_seq: self.next_seq,
            base_extent: OnceLock::new(),
            anonymous_extent: OnceLock::new(),
        }
    }
}

/// What rebuilding a layer's base needs: that base and a copy of its delta at one moment.
/// `Send`: run it on a blocking thread.
#[derive(Debug)]
pub struct MergeJob {
    base: Arc<Base>,
    delta: Vec<DeltaEntry>,
    /// The layer's sequence number when the job was taken: later changes are not in it.
    upto: u64,
}

impl MergeJob {
    /// Builds the new base: the layer's records when the job was taken, bulk-loaded
    /// (O(n log n); about a second for a million points, see `benches/index.rs`).
    pub fn run(self) -> MergedBase {
        let from = Arc::downgrade(&self.base);
        // Already in id order: no sort, only the trees to build.
        let records: Vec<Arc<Record>> = Merged::new(self.base.records.iter(), self.delta.iter())
            .cloned()
            .collect();
        let upto = self.upto;
        drop(self);
        MergedBase {
            from,
            base: Arc::new(Base::from_sorted(records)),
            upto,
        }
    }
}

/// A rebuilt base, to swap in with [`Snapshot::with_merged`].
#[derive(Debug)]
pub struct MergedBase {
    /// The base the job was taken from (weak: a reload meanwhile frees it).
    from: Weak<Base>,
    base: Arc<Base>,
    upto: u64,
}

/// An immutable view of every collection at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    layers: [Arc<Layer>; 4],
    /// The prepared territories of each scope seen so far (see `query::View`), shared by the
    /// snapshots that have the same territories.
    scopes: ScopeCache,
    /// The confidential services, listed on first use; shared by the snapshots that have the
    /// same services.
    confidential: Arc<OnceLock<Vec<Arc<Record>>>>,
}

/// Scopes (territory ids) and their prepared geometry.
type ScopeCache =
    Arc<std::sync::Mutex<std::collections::HashMap<Box<[RecordId]>, Arc<query::ScopeAreas>>>>;

impl Snapshot {
    /// Builds every layer from a full load of the store.
    pub fn build(mut records: Vec<Record>) -> Self {
        let mut by_collection: [Vec<Arc<Record>>; 4] = Default::default();
        // Each record moves into its `Arc` from the back of the load, whose buffer is given
        // back as it empties (a large one shrinks in place), so that the records are not all
        // held twice, as a plain loop over the load would until its end (416 bytes each: an
        // export of 1M services peaked at 988 MiB that way, 856 MiB this way).
        while let Some(r) = records.pop() {
            by_collection[r.collection().index()].push(Arc::new(r));
            if records.capacity() > 4096
                && records.len() < records.capacity() - records.capacity() / 8
            {
                records.shrink_to_fit();
            }
        }
        for rs in &mut by_collection {
            rs.reverse();
        }
        let layers = by_collection.map(|rs| Arc::new(Layer::build(rs)));
        Self {
            layers,
            scopes: ScopeCache::default(),
            confidential: Arc::default(),
        }
    }

    /// Every confidential service (for the front doors of `query::View`; this bypasses access
    /// control like [`Snapshot::unrestricted_layer`]).
    pub(crate) fn confidential_services(&self) -> &[Arc<Record>] {
        self.confidential.get_or_init(|| {
            self.unrestricted_layer(Collection::Services)
                .iter()
                .filter(|r| r.is_confidential())
                .cloned()
                .collect()
        })
    }

    /// The raw index of one collection. This bypasses access control: read through
    /// `index::query` instead.
    pub fn unrestricted_layer(&self, collection: Collection) -> &Layer {
        &self.layers[collection.index()]
    }

    /// A new snapshot with these changes applied in order. An upsert older than or equal to
    /// the indexed version of the same record (same `created_at`) is ignored, so replaying a
    /// change is harmless; a re-created record replaces the old one whatever its version; a
    /// delete of an id not indexed does nothing.
    ///
    /// A changed layer copies its delta, never its base; an unchanged one is shared.
    #[must_use]
    pub fn with_changes(&self, changes: &[IndexChange]) -> Snapshot {
        let mut layers = self.layers.clone();
        for &c in Collection::ALL {
            let mut mine = changes.iter().filter(|ch| ch.collection() == c).peekable();
            if mine.peek().is_none() {
                continue;
            }
            if let Some(next) = self.layers[c.index()].with_changes(mine) {
                layers[c.index()] = Arc::new(next);
            }
        }
        let same = |c: Collection| Arc::ptr_eq(&layers[c.index()], &self.layers[c.index()]);
        let scopes = if same(Collection::Territories) {
            Arc::clone(&self.scopes)
        } else {
            ScopeCache::default()
        };
        let confidential = if same(Collection::Services) {
            Arc::clone(&self.confidential)
        } else {
            Arc::default()
        };
        Snapshot {
            layers,
            scopes,
            confidential,
        }
    }

    /// The collections whose delta has passed [`merge_threshold`].
    pub fn layers_to_merge(&self) -> Vec<Collection> {
        Collection::ALL
            .iter()
            .copied()
            .filter(|c| self.unrestricted_layer(*c).needs_merge())
            .collect()
    }

    /// This snapshot with `merged` as the base of the layer its job was taken from; that
    /// layer's delta keeps exactly the changes made after the job was taken. Unchanged (the
    /// result discarded) when that layer has another base by now, after another merge or a
    /// reload. Apply it to the catalog's current snapshot, under its writer lock. O(delta).
    #[must_use]
    pub fn with_merged(&self, merged: MergedBase) -> Snapshot {
        let mut layers = self.layers.clone();
        if let Some(layer) = layers.iter_mut().find(|l| l.takes(&merged)) {
            *layer = Arc::new(layer.rebased(merged));
        }
        // A merge changes no record, so the prepared scopes still hold.
        Snapshot {
            layers,
            scopes: Arc::clone(&self.scopes),
            confidential: Arc::clone(&self.confidential),
        }
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

#[cfg(test)]
mod tests;
