//! What the R-trees hold: a record's lon/lat envelope, a point record's ECEF position, and the
//! kind bits that let a query filter entries without reading the records.

use std::sync::Arc;

use geo::BoundingRect;
use rstar::{AABB, PointDistance, RStarInsertionStrategy, RTree, RTreeObject, RTreeParams};

use crate::domain::{Record, ServiceKind};

use super::ecef::to_ecef;

/// Node sizes of the point tree: up to 10 children rather than rstar's default 6 makes a
/// shallower tree, which `nearest` walks faster, most of all with a selective `keep` (see
/// `docs/benchmarks.md`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PointParams;

impl RTreeParams for PointParams {
    const MIN_SIZE: usize = 4;
    const MAX_SIZE: usize = 10;
    const REINSERTION_COUNT: usize = 3;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

/// Lon/lat envelopes of records (degrees).
pub(super) type EnvelopeTree = RTree<EnvelopeEntry>;
/// ECEF positions of point records (metres).
pub(super) type PointTree = RTree<PointEntry, PointParams>;

/// A record's lon/lat envelope in the envelope tree.
#[derive(Debug, Clone)]
pub(super) struct EnvelopeEntry {
    pub(super) envelope: AABB<[f64; 2]>,
    pub(super) record: Arc<Record>,
    /// The record is a point: its envelope is the point itself. Kept here (the entry has room
    /// for it within the size of a tree node) so that a bbox query need not read the record.
    pub(super) is_point: bool,
    /// An anonymous caller may see the record (`domain::is_public`), so it shapes
    /// the anonymous extent. Fits in the same padding as `is_point`.
    pub(super) anonymous: bool,
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
pub(super) struct PointEntry {
    pub(super) xyz: [f64; 3],
    pub(super) lonlat: [f64; 2],
    pub(super) record: Arc<Record>,
    /// The service kind's bit (see [`KindSet`]), so that a kind filter reads no record.
    pub(super) kind_bit: u32,
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

pub(super) fn envelope_entry(record: &Arc<Record>) -> Option<EnvelopeEntry> {
    let r = record.geometry().bounding_rect()?;
    Some(EnvelopeEntry {
        envelope: AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
        record: Arc::clone(record),
        is_point: matches!(record.geometry(), geo::Geometry::Point(_)),
        anonymous: crate::domain::is_public(record),
    })
}

pub(super) fn point_entry(record: &Arc<Record>) -> Option<PointEntry> {
    let p = record.valid_geometry().as_point()?;
    Some(PointEntry {
        xyz: to_ecef(p),
        lonlat: [p.lon(), p.lat()],
        record: Arc::clone(record),
        kind_bit: record.as_service().map_or(NO_KIND, |s| kind_bit(s.kind)),
    })
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

    pub(super) fn admits(self, bit: u32) -> bool {
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
