//! Validity of polygons and multipolygons (OGC simple features rules) in O(n log n).
//!
//! The check is planar on the coordinates as given (lon/lat degrees), as OGC validity is. A
//! [`Polygon`] is valid when
//!
//! - every ring is closed and has at least 4 positions once consecutive repeats are dropped
//!   (repeated consecutive positions are allowed), every position finite;
//! - no ring crosses, touches or runs back over itself: a proper crossing, two overlapping
//!   collinear segments (a spike) and a vertex on a non-adjacent segment are all invalid;
//! - rings touch one another only at single points, and never cross or share a segment;
//! - every interior ring lies inside the exterior ring, and none inside another.
//!
//! A [`MultiPolygon`] is valid when every polygon is, and their interiors are disjoint: they
//! may touch at points, but not cross, share a segment or lie one inside another.
//!
//! # How
//!
//! One R-tree over the envelopes of every segment of every ring (all polygons of a
//! multipolygon together) gives the candidate pairs; each pair is classified with
//! [`geo::line_intersection`] (exact orientation predicates). Where two rings meet at a vertex,
//! the order of the four directions around it (exact, by half-plane and orientation) tells a
//! crossing from a touch. Once no ring crosses another, one position of each interior ring
//! (and of each exterior ring, in a multipolygon) is located against the rings whose box holds
//! it: by the sector test when it lies on that ring, else by counting crossings of a ray cast to
//! the nearest side of the ring's box. Building the tree is O(n log n); the pair search costs
//! O(n log n + k), with k the number of segment pairs whose boxes overlap, which is O(n) for
//! boundaries made of short segments (administrative and surveyed boundaries); long diagonal
//! segments spanning many others' boxes raise it. The rays cost what they cross.
//!
//! # Agreement with `geo::Validation`
//!
//! The verdict is the one `geo::Validation` (geo 0.33) gives, whose self-intersection test
//! compares every pair of segments (a valid polygon of 100,001 positions took 143 s), with
//! these deliberate differences:
//!
//! - A ring whose positions all lie on one line with only three distinct ones (`A B C A`, no
//!   area) is invalid here (its segments run back over each other); geo accepts it, because it
//!   never compares two segments that share an end position.
//! - An empty ring, an empty polygon and a multipolygon without polygons are invalid here (a
//!   ring needs 4 positions; GeoJSON requires it); geo skips empty rings and accepts empty
//!   geometries.
//!
//! Like geo, the check does not ask for the interior to be connected (a hole touching the
//! exterior ring at two points, cutting the polygon in two, passes both).
//!
//! # Messages
//!
//! Errors name rings and positions by index, never by coordinate: the positions of restricted
//! records must not reach a log. Indices are those of the GeoJSON `coordinates` arrays, from 0:
//! ring 0 is the exterior ring, so interior ring 1 is the first hole; "polygon 2" is the third
//! polygon of a multipolygon.

use std::cmp::Ordering;
use std::fmt;

use geo::kernels::{Kernel, Orientation, RobustKernel};
use geo::line_intersection::{LineIntersection, line_intersection};
use geo::{Coord, Line, LineString, MultiPolygon, Polygon};
use rstar::{AABB, RTree, RTreeObject};

/// A ring of a polygon: which polygon of a multipolygon (`None` for a lone polygon) and its
/// index among the polygon's rings (0 is the exterior ring).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingRef {
    polygon: Option<usize>,
    ring: usize,
}

impl RingRef {
    /// The ring `ring` (0 = exterior) of polygon `polygon` of a multipolygon, or of a lone
    /// polygon when `polygon` is `None`.
    pub fn new(polygon: Option<usize>, ring: usize) -> Self {
        Self { polygon, ring }
    }

    /// Index of the polygon in its multipolygon; `None` for a lone polygon.
    pub fn polygon(self) -> Option<usize> {
        self.polygon
    }

    /// Index of the ring in its polygon; 0 is the exterior ring.
    pub fn ring(self) -> usize {
        self.ring
    }
}

impl fmt::Display for RingRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ring == 0 {
            f.write_str("exterior ring")?;
        } else {
            write!(f, "interior ring {}", self.ring)?;
        }
        if let Some(polygon) = self.polygon {
            write!(f, " of polygon {polygon}")?;
        }
        Ok(())
    }
}

/// How two segments meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact {
    /// They cross, at a point inside both or where the rings pass through each other.
    Cross,
    /// A position of one lies on the other (or they share a position) without crossing.
    Touch,
    /// They overlap along a stretch of positive length.
    Overlap,
}

/// The segment from position `position` to position `position + 1` of a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRef {
    /// The ring.
    pub ring: RingRef,
    /// Index of the segment's first position in the ring's coordinates.
    pub position: usize,
}

impl fmt::Display for SegmentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "positions {}-{} of {}",
            self.position,
            self.position + 1,
            self.ring
        )
    }
}

/// Why a polygon or multipolygon is not valid. Messages hold indices, never coordinates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidityError {
    #[error("a MultiPolygon needs at least one polygon")]
    NoPolygons,
    #[error("{ring} has {count} positions; a ring needs at least 4")]
    TooFewPositions { ring: RingRef, count: usize },
    #[error(
        "{ring} has fewer than 4 positions once repeated consecutive ones are dropped; a ring \
         needs at least 3 distinct corners"
    )]
    TooFewDistinctPositions { ring: RingRef },
    #[error("{ring} is not closed: its last position differs from its first")]
    NotClosed { ring: RingRef },
    #[error("position {position} of {ring} is not a finite number")]
    NonFinite { ring: RingRef, position: usize },
    #[error("{} between positions {} and {}", self_contact(*.ring, *.contact), segment(*.first), segment(*.second))]
    SelfIntersection {
        ring: RingRef,
        contact: Contact,
        /// First position of one segment.
        first: usize,
        /// First position of the other.
        second: usize,
    },
    #[error("{}", rings_meet(.first, .second, *.contact))]
    RingsIntersect {
        first: SegmentRef,
        second: SegmentRef,
        contact: Contact,
    },
    #[error("{ring} is outside the exterior ring{}", of_polygon(ring.polygon))]
    HoleOutsideShell { ring: RingRef },
    #[error("{inner} is inside {outer}")]
    HoleInsideHole { inner: RingRef, outer: RingRef },
    #[error("polygons {inner} and {outer} overlap: polygon {inner} lies inside polygon {outer}")]
    PolygonInsidePolygon { inner: usize, outer: usize },
}

fn of_polygon(polygon: Option<usize>) -> String {
    polygon
        .map(|p| format!(" of polygon {p}"))
        .unwrap_or_default()
}

fn segment(position: usize) -> String {
    format!("{position}-{}", position + 1)
}

fn self_contact(ring: RingRef, contact: Contact) -> String {
    match contact {
        Contact::Cross => format!("{ring} crosses itself"),
        Contact::Touch => format!("{ring} touches itself"),
        Contact::Overlap => format!("{ring} runs back over itself"),
    }
}

fn rings_meet(first: &SegmentRef, second: &SegmentRef, contact: Contact) -> String {
    let what = match contact {
        Contact::Overlap => format!("{} and {} share a segment", first.ring, second.ring),
        Contact::Cross | Contact::Touch => format!("{} crosses {}", first.ring, second.ring),
    };
    match (first.ring.polygon, second.ring.polygon) {
        (Some(a), Some(b)) if a != b => {
            format!("polygons {a} and {b} overlap: {what} ({first}, {second})")
        }
        _ => format!("{what} ({first}, {second})"),
    }
}

/// Checks a polygon. `Ok` when valid; otherwise the first problem found.
///
/// ```
/// use faro::domain::validity::check_polygon;
/// use geo::wkt;
///
/// assert!(check_polygon(&wkt!(POLYGON((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.)))).is_ok());
/// let bow_tie = wkt!(POLYGON((0. 0., 4. 4., 4. 0., 0. 4., 0. 0.)));
/// assert_eq!(
///     check_polygon(&bow_tie).unwrap_err().to_string(),
///     "exterior ring crosses itself between positions 0-1 and 2-3"
/// );
/// ```
pub fn check_polygon(polygon: &Polygon<f64>) -> Result<(), ValidityError> {
    let mut rings = Vec::with_capacity(1 + polygon.interiors().len());
    collect_rings(polygon, None, 0, &mut rings)?;
    check_rings(&rings, 1)
}

/// Checks a multipolygon: every polygon, and that their interiors are disjoint.
///
/// ```
/// use faro::domain::validity::check_multi_polygon;
/// use geo::wkt;
///
/// // Two squares touching at a corner: valid.
/// let corner = wkt!(MULTIPOLYGON(((0. 0., 1. 0., 1. 1., 0. 1., 0. 0.)), ((1. 1., 2. 1., 2. 2., 1. 2., 1. 1.))));
/// assert!(check_multi_polygon(&corner).is_ok());
/// // Two squares sharing an edge: invalid.
/// let edge = wkt!(MULTIPOLYGON(((0. 0., 1. 0., 1. 1., 0. 1., 0. 0.)), ((1. 0., 2. 0., 2. 1., 1. 1., 1. 0.))));
/// assert!(check_multi_polygon(&edge).is_err());
/// ```
pub fn check_multi_polygon(multi: &MultiPolygon<f64>) -> Result<(), ValidityError> {
    if multi.0.is_empty() {
        return Err(ValidityError::NoPolygons);
    }
    let ring_count = multi.0.iter().map(|p| 1 + p.interiors().len()).sum();
    let mut rings = Vec::with_capacity(ring_count);
    for (i, polygon) in multi.0.iter().enumerate() {
        collect_rings(polygon, Some(i), i, &mut rings)?;
    }
    check_rings(&rings, multi.0.len())
}

/// A ring with consecutive repeated positions dropped.
struct Ring {
    id: RingRef,
    /// Index of the polygon among those checked together (0 for a lone polygon).
    part: usize,
    /// Distinct consecutive positions; the last equals the first. At least 4.
    coords: Vec<Coord<f64>>,
    /// For each of `coords`, the index of its last copy in the original ring.
    positions: Vec<usize>,
    envelope: AABB<[f64; 2]>,
}

impl Ring {
    fn is_exterior(&self) -> bool {
        self.id.ring == 0
    }

    /// Number of segments (and of distinct vertices).
    fn len(&self) -> usize {
        self.coords.len() - 1
    }

    fn line(&self, segment: usize) -> Line<f64> {
        Line::new(self.coords[segment], self.coords[segment + 1])
    }

    /// Vertex `v` (0..len) before and after, going round the ring.
    fn prev(&self, v: usize) -> Coord<f64> {
        self.coords[if v == 0 { self.len() - 1 } else { v - 1 }]
    }

    fn next(&self, v: usize) -> Coord<f64> {
        self.coords[v + 1]
    }

    fn adjacent(&self, a: usize, b: usize) -> bool {
        let n = self.len();
        (a + 1) % n == b || (b + 1) % n == a
    }

    fn segment_ref(&self, segment: usize) -> SegmentRef {
        SegmentRef {
            ring: self.id,
            position: self.positions[segment],
        }
    }

    /// The two neighbours of `p` along the ring, where `p` lies on segment `segment`: the ends
    /// of the segment, or the vertices either side when `p` is one of its ends.
    fn branch(&self, segment: usize, p: Coord<f64>) -> (Coord<f64>, Coord<f64>) {
        let (start, end) = (self.coords[segment], self.coords[segment + 1]);
        if p == start {
            (self.prev(segment), end)
        } else if p == end {
            (start, self.next((segment + 1) % self.len()))
        } else {
            (start, end)
        }
    }

    /// Whether the ring runs counter-clockwise, from the turn at its lowest (then leftmost)
    /// vertex, which is exact for a simple ring.
    fn is_counter_clockwise(&self) -> bool {
        let lowest = (0..self.len())
            .min_by(|&a, &b| {
                let (ca, cb) = (self.coords[a], self.coords[b]);
                ca.y.total_cmp(&cb.y).then(ca.x.total_cmp(&cb.x))
            })
            .unwrap_or(0);
        RobustKernel::orient2d(self.prev(lowest), self.coords[lowest], self.next(lowest))
            != Orientation::Clockwise
    }
}

fn collect_rings(
    polygon: &Polygon<f64>,
    id: Option<usize>,
    part: usize,
    rings: &mut Vec<Ring>,
) -> Result<(), ValidityError> {
    for (i, ring) in std::iter::once(polygon.exterior())
        .chain(polygon.interiors())
        .enumerate()
    {
        rings.push(prepare(ring, RingRef::new(id, i), part)?);
    }
    Ok(())
}

/// Checks count, closure and finiteness of one ring and drops repeated consecutive positions.
fn prepare(ring: &LineString<f64>, id: RingRef, part: usize) -> Result<Ring, ValidityError> {
    let raw = &ring.0;
    if let Some(position) = raw
        .iter()
        .position(|c| !(c.x.is_finite() && c.y.is_finite()))
    {
        return Err(ValidityError::NonFinite { ring: id, position });
    }
    if raw.len() < 4 {
        return Err(ValidityError::TooFewPositions {
            ring: id,
            count: raw.len(),
        });
    }
    if raw.first() != raw.last() {
        return Err(ValidityError::NotClosed { ring: id });
    }
    let mut coords: Vec<Coord<f64>> = Vec::with_capacity(raw.len());
    let mut positions = Vec::with_capacity(raw.len());
    let (mut min, mut max) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for (i, &c) in raw.iter().enumerate() {
        min = [min[0].min(c.x), min[1].min(c.y)];
        max = [max[0].max(c.x), max[1].max(c.y)];
        if coords.last() == Some(&c) {
            if let Some(last) = positions.last_mut() {
                *last = i;
            }
        } else {
            coords.push(c);
            positions.push(i);
        }
    }
    if coords.len() < 4 {
        return Err(ValidityError::TooFewDistinctPositions { ring: id });
    }
    Ok(Ring {
        id,
        part,
        coords,
        positions,
        envelope: AABB::from_corners(min, max),
    })
}

/// A segment in the R-tree: its envelope, ring and index in the ring.
struct SegmentBox {
    envelope: AABB<[f64; 2]>,
    ring: usize,
    segment: usize,
}

impl RTreeObject for SegmentBox {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.envelope
    }
}

/// A ring's envelope in the R-tree of rings.
struct RingBox {
    envelope: AABB<[f64; 2]>,
    ring: usize,
}

impl RTreeObject for RingBox {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.envelope
    }
}

fn point(c: Coord<f64>) -> [f64; 2] {
    [c.x, c.y]
}

fn check_rings(rings: &[Ring], parts: usize) -> Result<(), ValidityError> {
    let boxes: Vec<SegmentBox> = rings
        .iter()
        .enumerate()
        .flat_map(|(r, ring)| {
            (0..ring.len()).map(move |s| SegmentBox {
                envelope: AABB::from_corners(point(ring.coords[s]), point(ring.coords[s + 1])),
                ring: r,
                segment: s,
            })
        })
        .collect();
    let segments = RTree::bulk_load(boxes);
    for (a, b) in segments.intersection_candidates_with_other_tree(&segments) {
        if (a.ring, a.segment) < (b.ring, b.segment)
            && let Some(problem) = classify(rings, a, b)
        {
            return Err(problem);
        }
    }
    if rings.len() > 1 {
        check_nesting(rings, parts, &segments)?;
    }
    Ok(())
}

/// The problem, if any, where two segments meet.
fn classify(rings: &[Ring], a: &SegmentBox, b: &SegmentBox) -> Option<ValidityError> {
    let (ra, rb) = (&rings[a.ring], &rings[b.ring]);
    let hit = line_intersection(ra.line(a.segment), rb.line(b.segment))?;
    let contact = match hit {
        LineIntersection::Collinear { .. } => Contact::Overlap,
        LineIntersection::SinglePoint {
            is_proper: true, ..
        } => Contact::Cross,
        LineIntersection::SinglePoint {
            intersection,
            is_proper: false,
        } => {
            if a.ring == b.ring {
                if ra.adjacent(a.segment, b.segment) {
                    return None;
                }
                Contact::Touch
            } else {
                let (a0, a1) = ra.branch(a.segment, intersection);
                let (b0, b1) = rb.branch(b.segment, intersection);
                if !crosses_at(intersection, (a0, a1), (b0, b1)) {
                    return None;
                }
                Contact::Cross
            }
        }
    };
    Some(if a.ring == b.ring {
        ValidityError::SelfIntersection {
            ring: ra.id,
            contact,
            first: ra.positions[a.segment],
            second: ra.positions[b.segment],
        }
    } else {
        ValidityError::RingsIntersect {
            first: ra.segment_ref(a.segment),
            second: rb.segment_ref(b.segment),
            contact,
        }
    })
}

/// Which half of the turn around `p` the direction towards `d` falls in: 0 for angles in
/// [0, pi), 1 for [pi, 2 pi). Exact, so the comparisons are exact on purpose.
#[allow(clippy::float_cmp)]
fn half(p: Coord<f64>, d: Coord<f64>) -> u8 {
    u8::from(!(d.y > p.y || (d.y == p.y && d.x > p.x)))
}

/// Orders the directions from `p` towards `a` and `b` by angle, counter-clockwise from east.
/// Exact; `Equal` only for the same direction.
fn angle_cmp(p: Coord<f64>, a: Coord<f64>, b: Coord<f64>) -> Ordering {
    half(p, a)
        .cmp(&half(p, b))
        .then_with(|| match RobustKernel::orient2d(p, a, b) {
            Orientation::CounterClockwise => Ordering::Less,
            Orientation::Clockwise => Ordering::Greater,
            Orientation::Collinear => Ordering::Equal,
        })
}

/// Whether the direction towards `d` lies strictly inside the sector swept counter-clockwise
/// around `p` from the direction towards `from` to the one towards `to`. `None` when `d` has
/// the direction of `from` or `to`.
fn in_sector(p: Coord<f64>, from: Coord<f64>, to: Coord<f64>, d: Coord<f64>) -> Option<bool> {
    let after_from = angle_cmp(p, from, d);
    let before_to = angle_cmp(p, d, to);
    if after_from == Ordering::Equal || before_to == Ordering::Equal {
        return None;
    }
    let (after_from, before_to) = (after_from == Ordering::Less, before_to == Ordering::Less);
    Some(if angle_cmp(p, from, to) == Ordering::Less {
        after_from && before_to
    } else {
        after_from || before_to
    })
}

/// Whether ring B passes from one side of ring A to the other at `p`, where A runs between
/// `a.0` and `a.1` and B between `b.0` and `b.1`. A shared direction is an overlap, reported
/// by the pair of segments that overlap, so it is not a crossing here.
fn crosses_at(p: Coord<f64>, a: (Coord<f64>, Coord<f64>), b: (Coord<f64>, Coord<f64>)) -> bool {
    match (in_sector(p, a.0, a.1, b.0), in_sector(p, a.0, a.1, b.1)) {
        (Some(first), Some(second)) => first != second,
        _ => false,
    }
}

/// Interior rings inside their exterior ring and not inside one another; in a multipolygon,
/// no polygon inside another. Called once no rings cross or overlap, so one position of a ring
/// tells on which side of another ring all of it lies.
fn check_nesting(
    rings: &[Ring],
    parts: usize,
    segments: &RTree<SegmentBox>,
) -> Result<(), ValidityError> {
    let ring_boxes = RTree::bulk_load(
        rings
            .iter()
            .enumerate()
            .map(|(ring, r)| RingBox {
                envelope: r.envelope,
                ring,
            })
            .collect(),
    );
    let locator = Locator {
        rings,
        segments,
        orientation: rings.iter().map(Ring::is_counter_clockwise).collect(),
    };
    let mut inside_parts = vec![false; parts];
    for (q, ring) in rings.iter().enumerate() {
        if ring.is_exterior() && parts < 2 {
            continue;
        }
        let v = ring.coords[0];
        let mut inside_shell = false;
        inside_parts.fill(false);
        let mut holed_parts = Vec::new();
        for candidate in ring_boxes.locate_in_envelope_intersecting(&AABB::from_point(point(v))) {
            let other = &rings[candidate.ring];
            if candidate.ring == q || (!ring.is_exterior() && other.part != ring.part) {
                continue;
            }
            if ring.is_exterior() && other.part == ring.part {
                continue;
            }
            let inside = locator.inside(q, candidate.ring);
            match (ring.is_exterior(), other.is_exterior()) {
                // An interior ring against its own polygon's rings.
                (false, true) => inside_shell = inside,
                (false, false) if inside => {
                    return Err(ValidityError::HoleInsideHole {
                        inner: ring.id,
                        outer: other.id,
                    });
                }
                // An exterior ring against another polygon's rings.
                (true, true) => inside_parts[other.part] |= inside,
                (true, false) if inside => holed_parts.push(other.part),
                _ => {}
            }
        }
        if !ring.is_exterior() && !inside_shell {
            return Err(ValidityError::HoleOutsideShell { ring: ring.id });
        }
        for part in holed_parts {
            inside_parts[part] = false;
        }
        if let Some(outer) = inside_parts.iter().position(|&inside| inside) {
            return Err(ValidityError::PolygonInsidePolygon {
                inner: ring.part,
                outer,
            });
        }
    }
    Ok(())
}

/// Locates the first vertex of one ring against another ring.
struct Locator<'a> {
    rings: &'a [Ring],
    segments: &'a RTree<SegmentBox>,
    orientation: Vec<bool>,
}

impl Locator<'_> {
    /// Whether the first vertex of ring `q` (or, when it lies on ring `r`, ring `q` near it) is
    /// inside ring `r`.
    fn inside(&self, q: usize, r: usize) -> bool {
        let ring = &self.rings[r];
        let v = self.rings[q].coords[0];
        let on = self
            .segments
            .locate_in_envelope_intersecting(&AABB::from_point(point(v)))
            .find(|s| {
                s.ring == r
                    && RobustKernel::orient2d(ring.coords[s.segment], ring.coords[s.segment + 1], v)
                        == Orientation::Collinear
            });
        match on {
            Some(s) => {
                // Ring q leaves v towards its next vertex: inside r if that direction is in the
                // sector on r's inner side (left of r's course when r runs counter-clockwise).
                let (before, after) = ring.branch(s.segment, v);
                let towards = self.rings[q].coords[1];
                let sector = if self.orientation[r] {
                    in_sector(v, after, before, towards)
                } else {
                    in_sector(v, before, after, towards)
                };
                sector.unwrap_or(false)
            }
            None => self.ray_parity(v, r),
        }
    }

    /// Whether `v` (not on ring `r`) is inside ring `r`: the parity of the crossings of a ray
    /// from `v` to the nearest side of the ring's box.
    fn ray_parity(&self, v: Coord<f64>, r: usize) -> bool {
        let ring = &self.rings[r];
        let (lo, hi) = (ring.envelope.lower(), ring.envelope.upper());
        let reach = [hi[0] - v.x, v.x - lo[0], hi[1] - v.y, v.y - lo[1]];
        let direction = (0..4)
            .min_by(|&a, &b| reach[a].total_cmp(&reach[b]))
            .unwrap_or(0);
        let end = match direction {
            0 => [hi[0], v.y],
            1 => [lo[0], v.y],
            2 => [v.x, hi[1]],
            _ => [v.x, lo[1]],
        };
        let ray = AABB::from_corners(point(v), end);
        let turn = |c: Coord<f64>| match direction {
            0 => c,
            1 => Coord { x: -c.x, y: -c.y },
            2 => Coord { x: c.y, y: -c.x },
            _ => Coord { x: -c.y, y: c.x },
        };
        let origin = turn(v);
        let crossings = self
            .segments
            .locate_in_envelope_intersecting(&ray)
            .filter(|s| s.ring == r)
            .filter(|s| {
                crosses_east_ray(
                    origin,
                    turn(ring.coords[s.segment]),
                    turn(ring.coords[s.segment + 1]),
                )
            })
            .count();
        crossings % 2 == 1
    }
}

/// Whether segment a-b crosses the ray going east from `v` (half-open in y, so a vertex on
/// the ray counts once). Exact: rotations by quarter turns only negate and swap coordinates.
fn crosses_east_ray(v: Coord<f64>, a: Coord<f64>, b: Coord<f64>) -> bool {
    if (a.y > v.y) == (b.y > v.y) {
        return false;
    }
    let (low, high) = if a.y < b.y { (a, b) } else { (b, a) };
    RobustKernel::orient2d(low, high, v) == Orientation::CounterClockwise
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::wkt;

    fn c(x: f64, y: f64) -> Coord<f64> {
        Coord { x, y }
    }

    #[test]
    fn angles_are_ordered_counter_clockwise_from_east() {
        let p = c(0.0, 0.0);
        let around = [
            c(1.0, 0.0),
            c(1.0, 1.0),
            c(0.0, 1.0),
            c(-1.0, 0.0),
            c(-1.0, -1.0),
            c(0.0, -1.0),
            c(1.0, -1.0),
        ];
        for (i, a) in around.iter().enumerate() {
            for (j, b) in around.iter().enumerate() {
                assert_eq!(angle_cmp(p, *a, *b), i.cmp(&j), "{i} vs {j}");
            }
        }
        assert_eq!(angle_cmp(p, c(2.0, 2.0), c(1.0, 1.0)), Ordering::Equal);
    }

    #[test]
    fn a_sector_may_wrap_past_east() {
        let p = c(0.0, 0.0);
        // From south-east counter-clockwise to north-east: contains east, not west.
        assert_eq!(
            in_sector(p, c(1.0, -1.0), c(1.0, 1.0), c(1.0, 0.0)),
            Some(true)
        );
        assert_eq!(
            in_sector(p, c(1.0, -1.0), c(1.0, 1.0), c(-1.0, 0.0)),
            Some(false)
        );
        // The other way round: the complement.
        assert_eq!(
            in_sector(p, c(1.0, 1.0), c(1.0, -1.0), c(-1.0, 0.0)),
            Some(true)
        );
        assert_eq!(in_sector(p, c(1.0, 1.0), c(1.0, -1.0), c(2.0, 2.0)), None);
        // A straight line through p: the half-plane on its left.
        assert_eq!(
            in_sector(p, c(1.0, 0.0), c(-1.0, 0.0), c(0.0, 1.0)),
            Some(true)
        );
        assert_eq!(
            in_sector(p, c(1.0, 0.0), c(-1.0, 0.0), c(0.0, -1.0)),
            Some(false)
        );
    }

    #[test]
    fn rays_in_every_direction_count_the_same_crossings() {
        // A square with a V-shaped notch down from the top to (5, 20), and a straight vertex
        // at (20, 20) on the right side.
        let shell = wkt!(POLYGON((0. 0., 20. 0., 20. 20., 20. 40., 5. 20., 0. 40., 0. 0.)));
        let rings = vec![prepare(shell.exterior(), RingRef::new(None, 0), 0).unwrap()];
        let boxes: Vec<SegmentBox> = (0..rings[0].len())
            .map(|s| SegmentBox {
                envelope: AABB::from_corners(
                    point(rings[0].coords[s]),
                    point(rings[0].coords[s + 1]),
                ),
                ring: 0,
                segment: s,
            })
            .collect();
        let segments = RTree::bulk_load(boxes);
        let locator = Locator {
            rings: &rings,
            segments: &segments,
            orientation: vec![rings[0].is_counter_clockwise()],
        };
        // Each point's ray goes to the nearest side of the box: west through the notch's
        // vertex, east through the straight vertex, west across the notch, south, north, west.
        for (x, y, inside) in [
            (8.0, 20.0, true),
            (18.0, 20.0, true),
            (5.0, 30.0, false),
            (10.0, 2.0, true),
            (10.0, 38.0, false),
            (2.0, 37.0, false),
        ] {
            assert_eq!(locator.ray_parity(c(x, y), 0), inside, "({x}, {y})");
        }
    }

    #[test]
    fn ring_orientation_is_read_at_the_lowest_vertex() {
        let ccw = wkt!(POLYGON((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.)));
        let ring = prepare(ccw.exterior(), RingRef::new(None, 0), 0).unwrap();
        assert!(ring.is_counter_clockwise());
        let mut cw = ccw.exterior().clone();
        cw.0.reverse();
        let ring = prepare(&cw, RingRef::new(None, 0), 0).unwrap();
        assert!(!ring.is_counter_clockwise());
    }

    #[test]
    fn repeated_positions_keep_their_original_index() {
        let p = wkt!(POLYGON((0. 0., 0. 0., 4. 0., 4. 0., 4. 0., 4. 4., 0. 4., 0. 0.)));
        let ring = prepare(p.exterior(), RingRef::new(None, 0), 0).unwrap();
        assert_eq!(ring.len(), 4);
        assert_eq!(ring.positions, vec![1, 4, 5, 6, 7]);
    }
}
