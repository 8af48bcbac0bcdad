//! Walks over the trees: the exact geodesic k nearest neighbours, and the bounding box of the
//! entries that pass a test.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use geo::{Distance, Geodesic};
use rstar::{AABB, Envelope, ParentNode, PointDistance, RTreeNode, RTreeObject};

use crate::domain::Record;

use super::delta::Shadowed;
use super::tree::{EnvelopeEntry, EnvelopeTree, KindSet, PointEntry};

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

/// The mean radius of curvature can be no smaller than `a (1 - e²)`, the meridional radius at
/// the equator: the largest curvature a WGS84 geodesic has, metres.
pub(crate) const MIN_RADIUS_OF_CURVATURE_M: f64 = 6_335_439.327;

/// Whether two points whose computed ECEF chord is `chord_m` are certainly within `radius_m`
/// of each other along the geodesic, without computing it (`false`: they may not be).
///
/// The chord never exceeds the geodesic; and a curve of length L whose curvature is at most κ
/// spans a chord of at least `2 sin(κL/2)/κ` (Schur), so the geodesic is at most
/// `(2/κ) asin(κc/2) = c (1 + (κc)²/24 + …)`, bounded here by `c (1 + (κc)²/20)`, which
/// holds while κc is below 1 (some 6,000 km); beyond [`CERTAIN_CHORD_M`] the geodesic decides.
/// [`CHORD_SLACK_M`] covers the rounding of both.
pub(crate) fn chord_certainly_within(chord_m: f64, radius_m: f64) -> bool {
    if chord_m > CERTAIN_CHORD_M {
        return false;
    }
    let kc = chord_m / MIN_RADIUS_OF_CURVATURE_M;
    chord_m * (1.0 + kc * kc / 20.0) + CHORD_SLACK_M < radius_m
}

/// The longest chord [`chord_certainly_within`] judges by itself, metres: well inside the
/// range of its bound, and far beyond any catchment.
const CERTAIN_CHORD_M: f64 = 1_000_000.0;

/// One nearest query: a best-first walk of a point tree by chord, over one or more trees
/// (a layer's base and its delta) with one list of the best so far.
///
/// The queue holds subtrees and points keyed by their chord from the query less
/// `CHORD_SLACK_M`, a lower bound of the geodesic to anything in them. Popped in that order,
/// a point is ranked by its geodesic; the walk stops when the next key exceeds the limit,
/// `max_distance_m` and, once `k` points are held, the k-th distance: every point left is at
/// least that far, so the answer is exact. Nothing beyond the limit of the moment is queued,
/// and a point is asked to `keep` when queued (the points of a node back to back, so that
/// their records load in parallel), so the queue holds only what may still matter.
///
/// Walking a second tree starts with the best of the first: its limit prunes the second walk
/// from the start, and ranking both into one list by (distance, id) merges them exactly.
pub(super) struct Search<'a, F> {
    pub(super) query: [f64; 3],
    pub(super) origin: geo::Point<f64>,
    pub(super) k: usize,
    pub(super) max_distance_m: f64,
    pub(super) kinds: KindSet,
    pub(super) keep: &'a F,
    /// Records of the tree being walked that something else replaced: never ranked.
    pub(super) skip: &'a Shadowed,
    /// The best so far by (distance, id), at most `k`.
    pub(super) best: Vec<(f64, &'a PointEntry)>,
    pub(super) queue: BinaryHeap<Queued<'a>>,
}

/// A subtree or a point in the queue of `Search`, least bound first.
pub(super) struct Queued<'a> {
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

    /// Walks one tree, skipping the records of `skip`, ranking into the best so far.
    pub(super) fn run(&mut self, root: &'a ParentNode<PointEntry>, skip: &'a Shadowed) {
        self.skip = skip;
        self.queue.clear();
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
                && (!self.kinds.admits(entry.kind_bit)
                    || self.skip.contains(&entry.record)
                    || !(self.keep)(&entry.record))
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

/// The bounding box of the entries of `tree` that pass `keep`, if any does.
///
/// Each side is a best-first walk by that side of the node envelopes (a node's lower x is at
/// most that of anything inside it), which stops at the first entry kept: exact, and it reads
/// little more than one path of the tree when few entries near the edges fail `keep`.
pub(super) fn bounds(
    tree: &EnvelopeTree,
    keep: impl Fn(&EnvelopeEntry) -> bool,
) -> Option<AABB<[f64; 2]>> {
    if tree.size() == 0 {
        return None;
    }
    let min_x = side(tree, &keep, |e| e.lower()[0])?;
    let min_y = side(tree, &keep, |e| e.lower()[1])?;
    let max_x = -side(tree, &keep, |e| -e.upper()[0])?;
    let max_y = -side(tree, &keep, |e| -e.upper()[1])?;
    Some(AABB::from_corners([min_x, min_y], [max_x, max_y]))
}

/// The root envelope of `tree`: the bounding box of all of it.
pub(super) fn root_bounds(tree: &EnvelopeTree) -> Option<AABB<[f64; 2]>> {
    (tree.size() > 0).then(|| tree.root().envelope())
}

/// Both boxes' bounding box.
pub(super) fn union(
    a: Option<AABB<[f64; 2]>>,
    b: Option<AABB<[f64; 2]>>,
) -> Option<AABB<[f64; 2]>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.merged(&b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A node of the envelope tree in the queue of `side`, least key first.
struct SideQueued<'a> {
    key: f64,
    node: &'a RTreeNode<EnvelopeEntry>,
}

impl PartialEq for SideQueued<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SideQueued<'_> {}

impl PartialOrd for SideQueued<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SideQueued<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` pops its greatest.
        other.key.total_cmp(&self.key)
    }
}

/// The least `key` of the envelopes of the entries kept. `key` must be monotone: a node's key
/// is at most that of anything inside it (a lower side, or a negated upper side).
fn side(
    tree: &EnvelopeTree,
    keep: &impl Fn(&EnvelopeEntry) -> bool,
    key: impl Fn(&AABB<[f64; 2]>) -> f64,
) -> Option<f64> {
    let mut queue: BinaryHeap<SideQueued<'_>> = tree
        .root()
        .children()
        .iter()
        .map(|node| SideQueued {
            key: key(&node.envelope()),
            node,
        })
        .collect();
    while let Some(SideQueued { key: at, node }) = queue.pop() {
        match node {
            RTreeNode::Leaf(entry) => {
                if keep(entry) {
                    return Some(at);
                }
            }
            RTreeNode::Parent(parent) => {
                queue.extend(parent.children().iter().map(|node| SideQueued {
                    key: key(&node.envelope()),
                    node,
                }));
            }
        }
    }
    None
}
