//! Coverage of the territories by services: catchments, covered area and demand, gaps, the
//! uncovered records, an H3 hexagon surface and greedy site suggestions. Pure and synchronous.
//!
//! # Semantics
//!
//! - A chosen service (one of `kinds`, every kind when empty, and open at `open_at` when that
//!   is set) covers what lies within `radius_m` of it, measured geodesically on WGS84. A service
//!   **without opening hours counts as always open**, so `open_at` never drops it (unlike
//!   `/nearest`, which cannot promise such a service is open): an itinerant stop with weekly
//!   hours covers only on its days.
//! - Its **catchment** is the geodesic disc of that radius: [`DISC_VERTICES`] points at
//!   `radius_m` along geodesics from the service (`geo`'s `Geodesic` destination), whose area
//!   is within 0.03 % of the ellipsoidal disc (never `geo`'s planar `Buffer`).
//! - **Covered area** of a territory = geodesic area (`GeodesicArea`) of the territory
//!   intersected with the union of the catchments of every chosen service near it, wherever the
//!   service is (one across a border covers too). The **gap** is the territory minus that union.
//! - A settlement or worksite **is covered** when its geodesic distance to the nearest chosen
//!   service is at most `radius_m` (a point exactly at the radius is covered). A Polygon record is
//!   placed at its **representative point**: `geo`'s `InteriorPoint`, a point always inside the
//!   polygon (like PostGIS `ST_PointOnSurface`), never a centroid that may fall outside. It
//!   belongs to every chosen territory that point lies in (boundary included).
//! - People = `population_estimate`, workers = `workers_estimate` (unknown counts as 0).
//! - `month`: only settlements inhabited in that month (`season`) and worksites at peak
//!   (`peak_months`) count; a record with no months on record counts in every month.
//! - `capacity`: people are assigned to the nearest chosen service within reach that has beds
//!   left (`vacancy`, or `capacity` when vacancy is unknown; a service with neither offers no
//!   beds). Settlements are served nearest first (by the distance to their nearest service with
//!   beds, ties by id), each filling the beds nearest to it first. People left without a bed
//!   count as uncovered, and a settlement is covered only if none of its people is left over.
//!   Worksites are covered by distance as without `capacity` (workers need no bed).
//!
//! # Access
//!
//! Everything is read through a [`View`]: an anonymous caller's answers are computed from
//! public services only (areas, gaps, hexes), and carry no settlement or worksite figure at all,
//! since counts that vary with the radius would let a caller trilaterate restricted records.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDateTime;
use geo::{
    BooleanOps, BoundingRect, Destination, Distance, Geodesic, GeodesicArea, Geometry,
    InteriorPoint, Intersects, MultiPolygon, Point, Polygon,
};
use h3o::{CellIndex, LatLng, Resolution};
use rstar::RTree;
use rstar::primitives::GeomWithData;

use crate::domain::{Collection, LonLat, Month, Record, RecordId, Service, ServiceKind};
use crate::index::query::{ItemsQuery, QueryError, View};
use crate::index::{KindSet, chord_certainly_within, to_ecef};

/// Smallest `radius_m` accepted, metres.
pub const MIN_RADIUS_M: f64 = 1.0;
/// Largest `radius_m` accepted, metres.
pub const MAX_RADIUS_M: f64 = 100_000.0;
/// Vertices of a catchment disc. An inscribed polygon of n vertices has
/// `n sin(2π/n) / 2π` of the disc's area: 99.974 % at 160 (the 0.1 % bound needs n ≥ 82).
/// Fewer is quicker (the overlays' time grows with the vertices: at 256 the Treviso question
/// took 1.4 times as long), but every edge cuts a sliver off the rim, and a territory the rim
/// barely enters is judged on such slivers: at 128 one comune of Treviso differs from the
/// 1,440-point oracle of `tests/coverage.rs` by 0.51 %, past the 0.5 % it allows.
pub const DISC_VERTICES: usize = 160;
/// Most hexagons one answer may have (`TooManyCells` beyond).
pub const MAX_CELLS: usize = 50_000;
/// Largest `k` of a suggestion.
pub const MAX_SUGGESTIONS: usize = 20;

/// Why a coverage question could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoverageError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("no territory with id `{0}`")]
    UnknownTerritory(RecordId),
    #[error(
        "resolution {resolution} gives about {cells} hexagons, more than {max}; choose a coarser one"
    )]
    TooManyCells {
        resolution: u8,
        cells: usize,
        max: usize,
    },
}

pub type Result<T> = std::result::Result<T, CoverageError>;

/// A validated coverage question; every endpoint takes one.
#[derive(Debug, Clone, PartialEq)]
pub struct CoverageQuery {
    /// Service kinds; empty means every kind.
    pub kinds: Vec<ServiceKind>,
    /// Catchment radius, metres ([`MIN_RADIUS_M`]..=[`MAX_RADIUS_M`]; the caller checks).
    pub radius_m: f64,
    /// One territory, or `None` for every territory of level `territory`.
    pub territory: Option<RecordId>,
    pub month: Option<Month>,
    /// Europe/Rome wall-clock time services must be open at.
    pub open_at: Option<NaiveDateTime>,
    /// Assign people to beds (see the module doc).
    pub capacity: bool,
}

impl CoverageQuery {
    /// A query for `kinds` within `radius_m`, every territory, no other filter.
    pub fn new(kinds: Vec<ServiceKind>, radius_m: f64) -> Self {
        Self {
            kinds,
            radius_m,
            territory: None,
            month: None,
            open_at: None,
            capacity: false,
        }
    }

    /// Whether a service is chosen by this query (kind and opening hours).
    pub fn chooses(&self, service: &Service) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&service.kind))
            && match (self.open_at, &service.opening_hours) {
                (Some(at), Some(hours)) => hours.is_open(at),
                _ => true,
            }
    }
}

/// `open_at` as given (`now`, or an RFC 3339 time) as the Europe/Rome wall-clock time it is
/// evaluated in. `now` is taken to the minute: opening hours have minutes at the finest, and
/// the minute keys cached answers.
///
/// ```
/// use faro::analysis::coverage::parse_open_at;
/// let now = chrono::Utc::now();
/// // 08:30 UTC on a September day is 10:30 in Rome (summer time).
/// let at = parse_open_at("2026-09-01T08:30:00Z", now).unwrap();
/// assert_eq!(at.format("%Y-%m-%d %H:%M").to_string(), "2026-09-01 10:30");
/// assert!(parse_open_at("tuesday", now).unwrap_err().contains("RFC 3339"));
/// ```
pub fn parse_open_at(
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> std::result::Result<NaiveDateTime, String> {
    use chrono::Timelike;
    let at = match text.trim() {
        "now" => now
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(now),
        t => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| format!("`{t}` is neither `now` nor an RFC 3339 time ({e})"))?
            .with_timezone(&chrono::Utc),
    };
    Ok(at.with_timezone(&chrono_tz::Europe::Rome).naive_local())
}

/// Beds a service offers: `vacancy`, else `capacity`, else none.
pub fn beds(service: &Service) -> u64 {
    u64::from(service.vacancy.or(service.capacity).unwrap_or(0))
}

/// The geodesic disc of `radius_m` metres around `centre` (WGS84), as a counter-clockwise
/// polygon of `vertices` points on its edge.
///
/// ```
/// use faro::analysis::coverage::geodesic_disc;
/// use geo::{GeodesicArea, Point};
/// let disc = geodesic_disc(Point::new(12.24, 45.67), 10_000.0, 256);
/// let area = disc.geodesic_area_unsigned();
/// let ideal = std::f64::consts::PI * 1e8;
/// assert!((area / ideal - 1.0).abs() < 1e-3);
/// ```
pub fn geodesic_disc(centre: Point<f64>, radius_m: f64, vertices: usize) -> Polygon<f64> {
    let n = vertices.max(3);
    let step = 360.0 / f64::from(u32::try_from(n).unwrap_or(u32::MAX));
    let ring: Vec<geo::Coord<f64>> = (0..n)
        .map(|i| {
            // Bearings decreasing from north: counter-clockwise in lon/lat.
            let bearing = -step * f64::from(u32::try_from(i).unwrap_or(0));
            Geodesic.destination(centre, bearing, radius_m).0
        })
        .collect();
    Polygon::new(geo::LineString::new(ring), Vec::new())
}

/// A polygon or multipolygon as a multipolygon (other geometries: none).
fn areal(geometry: &Geometry<f64>) -> Option<MultiPolygon<f64>> {
    match geometry {
        Geometry::Polygon(p) => Some(MultiPolygon::new(vec![p.clone()])),
        Geometry::MultiPolygon(m) => Some(m.clone()),
        _ => None,
    }
}

/// The point a record is placed at: a Point itself, a polygon's interior point.
pub fn representative_point(geometry: &Geometry<f64>) -> Option<Point<f64>> {
    match geometry {
        Geometry::Point(p) => Some(*p),
        other => other.interior_point(),
    }
}

/// Whether two points whose ECEF chord is `chord_m` are within `radius_m` geodesically,
/// computing the geodesic only when the chord cannot tell (see
/// [`crate::index::chord_certainly_within`]; a millimetre covers the rounding).
fn within(chord_m: f64, radius_m: f64, a: Point<f64>, b: Point<f64>) -> bool {
    const SLACK_M: f64 = 1e-3;
    if chord_m - SLACK_M > radius_m {
        return false;
    }
    if chord_certainly_within(chord_m, radius_m) {
        return true;
    }
    Geodesic.distance(a, b) <= radius_m
}

fn chord(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

fn lonlat(p: Point<f64>) -> Option<LonLat> {
    LonLat::new(p.x(), p.y()).ok()
}

/// Point-in-area tests against a polygon or multipolygon in O(edges of one strip): its edges
/// bucketed into horizontal strips; a point is inside by the even-odd count of the edges of
/// its strip crossed by a ray to the east, and a point on an edge is inside (as `Intersects`
/// says).
pub struct AreaIndex {
    rect: Option<geo::Rect<f64>>,
    min_y: f64,
    strip_height: f64,
    strips: Vec<Vec<(geo::Coord<f64>, geo::Coord<f64>)>>,
}

impl AreaIndex {
    pub fn new(geometry: &Geometry<f64>) -> Self {
        let rect = geometry.bounding_rect();
        let edges: Vec<(geo::Coord<f64>, geo::Coord<f64>)> = areal(geometry)
            .iter()
            .flat_map(|m| m.0.iter())
            .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
            .flat_map(|ring| ring.lines().map(|l| (l.start, l.end)))
            .collect();
        let (min_y, max_y) = rect.map_or((0.0, 0.0), |r| (r.min().y, r.max().y));
        let count = (edges.len() / 4).clamp(1, 4096);
        let strips_f = f64::from(u32::try_from(count).unwrap_or(4096));
        let strip_height = ((max_y - min_y) / strips_f).max(f64::MIN_POSITIVE);
        let mut strips = vec![Vec::new(); count];
        let strip = |y: f64| -> usize {
            // Truncation is the point: the strip's number.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let i = ((y - min_y) / strip_height).floor().max(0.0) as usize;
            i.min(count - 1)
        };
        for (a, b) in edges {
            for slot in &mut strips[strip(a.y.min(b.y))..=strip(a.y.max(b.y))] {
                slot.push((a, b));
            }
        }
        Self {
            rect,
            min_y,
            strip_height,
            strips,
        }
    }

    pub fn covers(&self, p: Point<f64>) -> bool {
        let Some(rect) = self.rect else { return false };
        if !rect.intersects(&p) || self.strips.is_empty() {
            return false;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let i = (((p.y() - self.min_y) / self.strip_height).floor().max(0.0) as usize)
            .min(self.strips.len() - 1);
        let (x, y) = (p.x(), p.y());
        let mut inside = false;
        for &(a, b) in &self.strips[i] {
            let cross = (b.x - a.x) * (y - a.y) - (b.y - a.y) * (x - a.x);
            if cross == 0.0
                && x >= a.x.min(b.x)
                && x <= a.x.max(b.x)
                && y >= a.y.min(b.y)
                && y <= a.y.max(b.y)
            {
                return true;
            }
            if (a.y > y) != (b.y > y) {
                let at = a.x + (y - a.y) / (b.y - a.y) * (b.x - a.x);
                if at > x {
                    inside = !inside;
                }
            }
        }
        inside
    }
}

/// The part of the simple ring `ring` inside `window`, by Sutherland-Hodgman against its four
/// sides (exact for a convex ring, as a catchment disc is; orientation kept), or `None` when
/// nothing of it is inside.
fn clip_to_rect(ring: &geo::LineString<f64>, window: geo::Rect<f64>) -> Option<Polygon<f64>> {
    use geo::Coord;
    let (min, max) = (window.min(), window.max());
    let mut points: Vec<Coord<f64>> = ring.0.clone();
    if points.len() > 1 && points.first() == points.last() {
        points.pop();
    }
    if points.iter().all(|&c| window.intersects(&c)) {
        return Some(Polygon::new(ring.clone(), Vec::new()));
    }
    // The four sides: (on x or y, where, inside is above it).
    for side in 0..4 {
        if points.is_empty() {
            break;
        }
        let (on_x, bound, keep_above) = match side {
            0 => (true, min.x, true),
            1 => (true, max.x, false),
            2 => (false, min.y, true),
            _ => (false, max.y, false),
        };
        let value = |c: Coord<f64>| if on_x { c.x } else { c.y };
        let inside = |c: Coord<f64>| {
            if keep_above {
                value(c) >= bound
            } else {
                value(c) <= bound
            }
        };
        let cross = |a: Coord<f64>, b: Coord<f64>| {
            let t = (bound - value(a)) / (value(b) - value(a));
            if on_x {
                geo::coord! { x: bound, y: a.y + t * (b.y - a.y) }
            } else {
                geo::coord! { x: a.x + t * (b.x - a.x), y: bound }
            }
        };
        let mut out = Vec::with_capacity(points.len() + 4);
        let mut prev = points[points.len() - 1];
        for &cur in &points {
            match (inside(prev), inside(cur)) {
                (true, true) => out.push(cur),
                (true, false) => out.push(cross(prev, cur)),
                (false, true) => {
                    out.push(cross(prev, cur));
                    out.push(cur);
                }
                (false, false) => {}
            }
            prev = cur;
        }
        points = out;
    }
    (points.len() >= 3).then(|| Polygon::new(geo::LineString::new(points), Vec::new()))
}

/// A settlement or a worksite, as demand.
#[derive(Debug, Clone)]
pub struct Demand {
    pub record: Arc<Record>,
    /// Representative point (lon/lat).
    pub point: Point<f64>,
    pub is_settlement: bool,
    /// People (settlement) or workers (worksite).
    pub size: u64,
    /// Indices into [`Prepared::territories`] of the chosen territories it lies in.
    pub territories: Vec<usize>,
    /// For a record not covered, the nearest chosen service and its geodesic distance,
    /// metres (`None`: no chosen service at all, or the record is covered).
    pub nearest: Option<(Arc<Record>, f64)>,
    /// Within `radius_m` of a chosen service.
    pub in_reach: bool,
    /// Of `size`, how many are not covered: all or none by distance; with `capacity`, the
    /// people of a settlement left without a bed.
    pub uncovered: u64,
}

impl Demand {
    pub fn is_covered(&self) -> bool {
        self.in_reach && self.uncovered == 0
    }
}

/// The records a coverage question reads, chosen and placed once.
#[derive(Debug)]
pub struct Prepared {
    pub query: CoverageQuery,
    /// The chosen territories, in id order (one when the query names one).
    pub territories: Vec<Arc<Record>>,
    /// The chosen services the caller may see, in id order.
    pub services: Vec<Arc<Record>>,
    /// Settlements and worksites in a chosen territory, in the month asked for; `None` when
    /// the caller may not see them.
    pub demand: Option<Vec<Demand>>,
    /// Per chosen territory, whether its demand figures are the caller's to know: every one
    /// for a caller of the whole network, none for an anonymous caller, and for a token scoped
    /// to territories only those of its scope (elsewhere it knows what an anonymous caller
    /// knows: no count).
    pub figures_known: Vec<bool>,
    /// Per chosen territory, the indices into `demand` of the records in it.
    demand_of: Vec<Vec<u32>>,
    /// With `capacity`: per chosen service, the beds it offers, and how many it has left.
    pub beds: HashMap<RecordId, (u64, u64)>,
    /// The catchment disc of each chosen service (in `services` order; `None` for one with no
    /// point), computed on first use.
    discs: std::sync::OnceLock<Vec<Option<Polygon<f64>>>>,
}

fn in_month(record: &Record, month: Option<Month>) -> bool {
    let Some(month) = month else { return true };
    let months = match record.attributes() {
        crate::domain::Attributes::Settlement(s) => &s.season,
        crate::domain::Attributes::Worksite(w) => &w.peak_months,
        _ => return false,
    };
    months.is_empty() || months.contains(&month)
}

impl Prepared {
    /// Reads and places everything `query` needs, as `view` may see it.
    pub fn new(view: &View, query: &CoverageQuery) -> Result<Self> {
        Self::build(view, query, true)
    }

    /// Territories and services only: what areas and gaps need.
    pub fn without_demand(view: &View, query: &CoverageQuery) -> Result<Self> {
        Self::build(view, query, false)
    }

    fn build(view: &View, query: &CoverageQuery, with_demand: bool) -> Result<Self> {
        let territories = match &query.territory {
            Some(id) => vec![Arc::clone(
                view.get(Collection::Territories, id)?
                    .ok_or_else(|| CoverageError::UnknownTerritory(id.clone()))?,
            )],
            None => {
                view.items(
                    Collection::Territories,
                    &ItemsQuery {
                        kinds: vec!["territory"],
                        ..ItemsQuery::default()
                    },
                )?
                .records
            }
        };
        let kinds: Vec<&'static str> = query.kinds.iter().map(|k| k.as_str()).collect();
        let services: Vec<Arc<Record>> = view
            .items(
                Collection::Services,
                &ItemsQuery {
                    kinds,
                    ..ItemsQuery::default()
                },
            )?
            .records
            .into_iter()
            .filter(|r| r.as_service().is_some_and(|s| query.chooses(s)))
            .collect();
        let figures_known = territories
            .iter()
            .map(|t| match view.visibility().scope() {
                Some(scope) => scope.contains(t.id()),
                None => view.visibility().may_read_restricted(),
            })
            .collect();
        let mut prepared = Self {
            query: query.clone(),
            territories,
            services,
            figures_known,
            demand: None,
            demand_of: Vec::new(),
            beds: HashMap::new(),
            discs: std::sync::OnceLock::new(),
        };
        if with_demand && view.visibility().may_read_restricted() {
            let demand = prepared.place_demand(view)?;
            // Per territory, its demand: one pass instead of one over all of it per territory
            // (107 passes over a million records for Italy's provinces).
            let mut of = vec![Vec::new(); prepared.territories.len()];
            for (i, d) in demand.iter().enumerate() {
                for &t in &d.territories {
                    of[t].push(u32::try_from(i).unwrap_or(u32::MAX));
                }
            }
            prepared.demand_of = of;
            prepared.demand = Some(demand);
        }
        Ok(prepared)
    }

    fn place_demand(&mut self, view: &View) -> Result<Vec<Demand>> {
        let query = &self.query.clone();
        let areas: Vec<AreaIndex> = self
            .territories
            .iter()
            .map(|t| AreaIndex::new(t.geometry()))
            .collect();
        // The territories' boxes, so a point is tested against the few whose box holds it
        // rather than all of them (Italy's 107 provinces).
        let boxes: RTree<GeomWithData<rstar::primitives::Rectangle<[f64; 2]>, usize>> =
            RTree::bulk_load(
                self.territories
                    .iter()
                    .enumerate()
                    .filter_map(|(i, t)| {
                        let r = t.geometry().bounding_rect()?;
                        Some(GeomWithData::new(
                            rstar::primitives::Rectangle::from_corners(
                                [r.min().x, r.min().y],
                                [r.max().x, r.max().y],
                            ),
                            i,
                        ))
                    })
                    .collect(),
            );
        let mut records = Vec::new();
        for collection in [Collection::Settlements, Collection::Worksites] {
            let is_settlement = collection == Collection::Settlements;
            records.extend(
                view.items(collection, &ItemsQuery::default())?
                    .records
                    .into_iter()
                    .filter(|r| in_month(r, query.month))
                    .map(|r| (is_settlement, r)),
            );
        }
        let kinds = KindSet::of(&query.kinds);
        let keep = |r: &Record| r.as_service().is_some_and(|s| query.chooses(s));
        // The chosen services the caller may see, by their ECEF position: whether one is
        // within reach is a range query, without the queue of a nearest search.
        let chosen: RTree<GeomWithData<[f64; 3], Point<f64>>> = RTree::bulk_load(
            self.services
                .iter()
                .filter_map(|r| {
                    let p = representative_point(r.geometry())?;
                    Some(GeomWithData::new(to_ecef(lonlat(p)?), p))
                })
                .collect(),
        );
        let reach = query.radius_m + 1e-3;
        let place = |(is_settlement, record): &(bool, Arc<Record>)| -> Option<Demand> {
            let point = representative_point(record.geometry())?;
            let mut territories: Vec<usize> = boxes
                .locate_all_at_point(&[point.x(), point.y()])
                .map(|b| b.data)
                .filter(|&i| areas[i].covers(point))
                .collect();
            if territories.is_empty() && !query.capacity {
                return None;
            }
            territories.sort_unstable();
            let size = match record.attributes() {
                crate::domain::Attributes::Settlement(s) => s.population_estimate,
                crate::domain::Attributes::Worksite(w) => w.workers_estimate,
                _ => None,
            };
            let size = u64::from(size.unwrap_or(0));
            let in_reach = lonlat(point).is_some_and(|o| {
                let xyz = to_ecef(o);
                chosen
                    .locate_within_distance(xyz, reach * reach)
                    .any(|s| within(chord(xyz, *s.geom()), query.radius_m, point, s.data))
            });
            Some(Demand {
                is_settlement: *is_settlement,
                size,
                record: Arc::clone(record),
                point,
                territories,
                nearest: None,
                in_reach,
                uncovered: if in_reach { 0 } else { size },
            })
        };
        let mut demand = crate::par::filter_map(&records, 4096, place);
        if query.capacity {
            self.assign_beds(view, &mut demand);
            // Settlements outside every chosen territory took part only to take their beds.
            demand.retain(|d| !d.territories.is_empty());
        }
        // The nearest service of each record left uncovered, which the answers that list
        // such records show (the covered ones need none: most of a million, spared a search).
        let uncovered: Vec<usize> = (0..demand.len())
            .filter(|&i| !demand[i].is_covered())
            .collect();
        let nearest = crate::par::filter_map(&uncovered, 4096, |&i| {
            let origin = lonlat(demand[i].point)?;
            let n = view
                .nearest_services(origin, 1, None, kinds, keep)
                .into_iter()
                .next()?;
            Some((i, (n.record, n.distance_m)))
        });
        for (i, n) in nearest {
            demand[i].nearest = Some(n);
        }
        Ok(demand)
    }

    /// Assigns the people of every settlement to beds (see the module doc).
    fn assign_beds(&mut self, view: &View, demand: &mut [Demand]) {
        let query = &self.query;
        self.beds = self
            .services
            .iter()
            .filter_map(|r| Some((r.id().clone(), r.as_service().map(beds)?)))
            .map(|(id, b)| (id, (b, b)))
            .collect();
        let bedded = self.beds.values().filter(|(b, _)| *b > 0).count();
        let kinds = KindSet::of(&query.kinds);
        let keep = |r: &Record| {
            r.as_service()
                .is_some_and(|s| query.chooses(s) && beds(s) > 0)
        };
        // Per settlement, the services with beds within reach, nearest first.
        let mut reach: Vec<(usize, Vec<crate::index::Neighbour>)> = demand
            .iter()
            .enumerate()
            .filter(|(_, d)| d.is_settlement)
            .map(|(i, d)| {
                let near = lonlat(d.point).map_or_else(Vec::new, |o| {
                    view.nearest_services(o, bedded, Some(query.radius_m), kinds, keep)
                });
                (i, near)
            })
            .collect();
        reach.sort_by(|(a, na), (b, nb)| {
            let first =
                |n: &[crate::index::Neighbour]| n.first().map_or(f64::INFINITY, |n| n.distance_m);
            first(na)
                .total_cmp(&first(nb))
                .then_with(|| demand[*a].record.id().cmp(demand[*b].record.id()))
        });
        for (i, near) in reach {
            let d = &mut demand[i];
            d.in_reach = !near.is_empty();
            let mut left = d.size;
            for n in &near {
                if left == 0 {
                    break;
                }
                if let Some((_, free)) = self.beds.get_mut(n.record.id()) {
                    let taken = left.min(*free);
                    *free -= taken;
                    left -= taken;
                }
            }
            d.uncovered = if d.in_reach { left } else { d.size };
        }
    }

    /// The indices (into `services`) of the chosen services whose catchment may reach `rect`.
    fn services_near(&self, rect: Option<geo::Rect<f64>>) -> Vec<usize> {
        let Some(rect) = rect else { return Vec::new() };
        // Degrees of latitude per metre are at least 1/111,700; of longitude, that over
        // cos(latitude) at the box's edge nearest a pole.
        let dlat = self.query.radius_m / 110_000.0 * 1.01;
        let lat = rect.min().y.abs().max(rect.max().y.abs()) + dlat;
        let dlon = if lat >= 89.0 {
            360.0
        } else {
            dlat / lat.to_radians().cos()
        };
        self.services
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                representative_point(r.geometry()).is_some_and(|p| {
                    p.x() >= rect.min().x - dlon
                        && p.x() <= rect.max().x + dlon
                        && p.y() >= rect.min().y - dlat
                        && p.y() <= rect.max().y + dlat
                })
            })
            .map(|(i, _)| i)
            .collect()
    }

    fn discs(&self) -> &[Option<Polygon<f64>>] {
        self.discs.get_or_init(|| {
            self.services
                .iter()
                .map(|r| {
                    representative_point(r.geometry())
                        .map(|p| geodesic_disc(p, self.query.radius_m, DISC_VERTICES))
                })
                .collect()
        })
    }

    /// The catchment discs that may reach `rect`, each clipped to it (widened by a centimetre),
    /// as one (overlapping) multipolygon. A territory within `rect` meets their union where it
    /// meets the union of the whole discs; the overlay's time grows with the vertices it is
    /// given, and over a territory about as wide as the radius most of each disc lies outside.
    fn discs_near(&self, rect: Option<geo::Rect<f64>>) -> MultiPolygon<f64> {
        const MARGIN_DEG: f64 = 1e-7;
        let Some(rect) = rect else {
            return MultiPolygon::new(Vec::new());
        };
        let window = geo::Rect::new(
            geo::coord! { x: rect.min().x - MARGIN_DEG, y: rect.min().y - MARGIN_DEG },
            geo::coord! { x: rect.max().x + MARGIN_DEG, y: rect.max().y + MARGIN_DEG },
        );
        let discs = self.discs();
        MultiPolygon::new(
            self.services_near(Some(rect))
                .into_iter()
                .filter_map(|i| discs[i].as_ref())
                .filter_map(|d| clip_to_rect(d.exterior(), window))
                .collect(),
        )
    }

    /// Territory `t` (rings oriented: exterior counter-clockwise, holes clockwise) and `op`
    /// with the union of the catchments that may reach it, in one overlay: the discs are
    /// passed as they are (clipped to the territory's box), overlapping, and the non-zero fill
    /// rule makes their union, every disc winding counter-clockwise.
    fn with_catchments(&self, t: usize, op: geo::algorithm::bool_ops::OpType) -> MultiPolygon<f64> {
        use geo::algorithm::bool_ops::{FillRule, OpType};
        use geo::orient::{Direction, Orient};
        let Some(area) = areal(self.territories[t].geometry()) else {
            return MultiPolygon::new(Vec::new());
        };
        let discs = self.discs_near(area.bounding_rect());
        if discs.0.is_empty() {
            return match op {
                OpType::Difference => area,
                _ => MultiPolygon::new(Vec::new()),
            };
        }
        area.orient(Direction::Default)
            .boolean_op_with_fill_rule(&discs, op, FillRule::NonZero)
    }

    /// The covered part of territory `t`: it within the union of the catchments of every
    /// chosen service near it.
    pub fn covered_part(&self, t: usize) -> MultiPolygon<f64> {
        self.with_catchments(t, geo::algorithm::bool_ops::OpType::Intersection)
    }

    /// The gap of territory `t`: it minus the union of the catchments.
    pub fn gap(&self, t: usize) -> MultiPolygon<f64> {
        self.with_catchments(t, geo::algorithm::bool_ops::OpType::Difference)
    }

    /// The demand in chosen territory `t`, or in any when `None`.
    fn demand_in(&self, t: Option<usize>) -> Box<dyn Iterator<Item = &Demand> + '_> {
        let demand = self.demand.as_deref().unwrap_or_default();
        match t {
            None => Box::new(demand.iter()),
            Some(t) => Box::new(
                self.demand_of
                    .get(t)
                    .into_iter()
                    .flatten()
                    .map(move |&i| &demand[i as usize]),
            ),
        }
    }
}

/// Settlement figures of a territory (or of all chosen ones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemandFigures {
    pub total: u64,
    pub covered: u64,
    /// People (settlements) or workers (worksites).
    pub size_total: u64,
    pub size_covered: u64,
}

/// With `capacity`: beds, people within reach of a service with beds, people without a bed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapacityFigures {
    /// Beds of the chosen services located in the territory.
    pub beds: u64,
    /// `None` for a caller who may not see settlements.
    pub demand_in_reach: Option<u64>,
    pub without_bed: Option<u64>,
}

/// The figures of one territory, or the total.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// `None` for the total.
    pub territory: Option<Arc<Record>>,
    pub area_km2: f64,
    pub covered_area_km2: f64,
    /// Chosen services located in the territory.
    pub services: usize,
    /// `None` for a caller who may not see settlements and worksites.
    pub settlements: Option<DemandFigures>,
    pub worksites: Option<DemandFigures>,
    pub capacity: Option<CapacityFigures>,
}

impl Figures {
    /// Covered area over area (0 for an empty territory).
    pub fn covered_share(&self) -> f64 {
        if self.area_km2 > 0.0 {
            (self.covered_area_km2 / self.area_km2).min(1.0)
        } else {
            0.0
        }
    }
}

/// The answer of `/coverage`: per territory, and over all of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub territories: Vec<Figures>,
    pub total: Figures,
}

fn demand_figures<'a>(
    demand: impl Iterator<Item = &'a Demand>,
    settlements: bool,
) -> DemandFigures {
    let mut f = DemandFigures::default();
    for d in demand.filter(|d| d.is_settlement == settlements) {
        f.total += 1;
        f.size_total += d.size;
        f.covered += u64::from(d.is_covered());
        f.size_covered += d.size - d.uncovered.min(d.size);
    }
    f
}

/// Geodesic area, km². Rings are oriented first (exterior counter-clockwise, holes
/// clockwise): `GeodesicArea` reads a hole of the other orientation as the rest of the
/// Earth, and territories may come either way.
fn area_km2(m: &MultiPolygon<f64>) -> f64 {
    use geo::orient::{Direction, Orient};
    m.orient(Direction::Default).geodesic_area_unsigned() / 1e6
}

/// The figures of every chosen territory and their total.
pub fn coverage(view: &View, query: &CoverageQuery) -> Result<Report> {
    let prepared = Prepared::new(view, query)?;
    Ok(report(&prepared))
}

/// [`coverage`] over records already prepared.
pub fn report(p: &Prepared) -> Report {
    let sees = p.demand.is_some();
    let services_in = |t: &Record| {
        p.services
            .iter()
            .filter(|s| t.geometry().intersects(s.geometry()))
            .collect::<Vec<_>>()
    };
    let capacity_of = |t: Option<usize>, services: &[&Arc<Record>]| {
        let sees = sees && t.is_none_or(|i| p.figures_known[i]);
        p.query.capacity.then(|| {
            let people_in_reach = |d: &&Demand| d.is_settlement && d.in_reach;
            CapacityFigures {
                beds: services
                    .iter()
                    .filter_map(|s| s.as_service())
                    .map(beds)
                    .sum(),
                demand_in_reach: sees
                    .then(|| p.demand_in(t).filter(people_in_reach).map(|d| d.size).sum()),
                without_bed: sees.then(|| {
                    p.demand_in(t)
                        .filter(people_in_reach)
                        .map(|d| d.uncovered)
                        .sum()
                }),
            }
        })
    };
    // The overlays, one territory per thread at a time.
    p.discs();
    let order: Vec<usize> = (0..p.territories.len()).collect();
    let overlays: Vec<(f64, Vec<&Arc<Record>>)> = crate::par::filter_map(&order, 1, |&i| {
        Some((area_km2(&p.covered_part(i)), services_in(&p.territories[i])))
    });
    let mut all_services: HashSet<&RecordId> = HashSet::new();
    let mut territories = Vec::with_capacity(p.territories.len());
    for ((i, t), (covered_area_km2, services)) in p.territories.iter().enumerate().zip(overlays) {
        let sees = sees && p.figures_known[i];
        all_services.extend(services.iter().map(|s| s.id()));
        territories.push(Figures {
            territory: Some(Arc::clone(t)),
            area_km2: areal(t.geometry()).map_or(0.0, |a| area_km2(&a)),
            covered_area_km2,
            services: services.len(),
            settlements: sees.then(|| demand_figures(p.demand_in(Some(i)), true)),
            worksites: sees.then(|| demand_figures(p.demand_in(Some(i)), false)),
            capacity: capacity_of(Some(i), &services),
        });
    }
    let total_services: Vec<&Arc<Record>> = p
        .services
        .iter()
        .filter(|s| all_services.contains(s.id()))
        .collect();
    let total = Figures {
        territory: None,
        area_km2: territories.iter().map(|f| f.area_km2).sum(),
        covered_area_km2: territories.iter().map(|f| f.covered_area_km2).sum(),
        services: total_services.len(),
        // Each record once, even on a border between two territories.
        settlements: sees.then(|| demand_figures(p.demand_in(None), true)),
        worksites: sees.then(|| demand_figures(p.demand_in(None), false)),
        capacity: capacity_of(None, &total_services),
    };
    Report { territories, total }
}

/// The uncovered part of one territory.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub territory: Arc<Record>,
    pub geometry: MultiPolygon<f64>,
    pub area_km2: f64,
}

/// The gap of every chosen territory, in territory id order.
pub fn gaps(view: &View, query: &CoverageQuery) -> Result<Vec<Gap>> {
    let p = Prepared::without_demand(view, query)?;
    p.discs();
    let order: Vec<usize> = (0..p.territories.len()).collect();
    Ok(crate::par::filter_map(&order, 1, |&i| {
        let gap = p.gap(i);
        Some(Gap {
            territory: Arc::clone(&p.territories[i]),
            area_km2: area_km2(&gap),
            geometry: gap,
        })
    }))
}

/// An uncovered settlement or worksite.
#[derive(Debug, Clone)]
pub struct Uncovered {
    pub demand: Demand,
    /// The chosen territories it lies in.
    pub territories: Vec<Arc<Record>>,
}

/// The uncovered records of `collection` (settlements or worksites) in the chosen
/// territories, farthest from a chosen service first (those with none at all first of all),
/// ties by id. A caller who may not see the collection gets the view's refusal.
pub fn uncovered(
    view: &View,
    query: &CoverageQuery,
    collection: Collection,
) -> Result<Vec<Uncovered>> {
    view.visibility()
        .check_collection(collection)
        .map_err(QueryError::from)?;
    let p = Prepared::new(view, query)?;
    let settlements = collection == Collection::Settlements;
    let mut out: Vec<Uncovered> = p
        .demand
        .iter()
        .flatten()
        .filter(|d| d.is_settlement == settlements && !d.is_covered())
        .map(|d| Uncovered {
            territories: d
                .territories
                .iter()
                .map(|&t| Arc::clone(&p.territories[t]))
                .collect(),
            demand: d.clone(),
        })
        .collect();
    let far = |x: &Uncovered| x.demand.nearest.as_ref().map_or(f64::INFINITY, |n| n.1);
    out.sort_by(|a, b| {
        far(b)
            .total_cmp(&far(a))
            .then_with(|| a.demand.record.id().cmp(b.demand.record.id()))
    });
    Ok(out)
}

/// One H3 cell of the surface.
#[derive(Debug, Clone, PartialEq)]
pub struct Hex {
    pub cell: CellIndex,
    /// The chosen territory its centre lies in (or, for a cell added for the demand in it,
    /// the territory of that demand).
    pub territory: Arc<Record>,
    /// Geodesic distance from the cell's centre to the nearest chosen service, metres.
    pub distance_m: Option<f64>,
    /// Demand inside the cell; `None` for a caller who may not see it.
    pub demand: Option<HexDemand>,
}

/// Settlements, worksites, people and workers whose representative point lies in a cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HexDemand {
    pub settlements: u64,
    pub worksites: u64,
    pub people: u64,
    pub workers: u64,
    /// Of those people and workers, how many are not covered.
    pub people_uncovered: u64,
    pub workers_uncovered: u64,
}

/// The cells of `resolution` whose centre lies in one of the territories (in order; a
/// centre on a shared border goes to one of them only).
fn cells_of(
    territories: &[Arc<Record>],
    resolution: Resolution,
    max: usize,
) -> Result<Vec<(CellIndex, usize)>> {
    let mut seen: HashSet<CellIndex> = HashSet::new();
    let mut out = Vec::new();
    let mut estimate = 0;
    for (i, t) in territories.iter().enumerate() {
        let Some(area) = areal(t.geometry()) else {
            continue;
        };
        let mut tiler = h3o::geom::TilerBuilder::new(resolution)
            .containment_mode(h3o::geom::ContainmentMode::ContainsCentroid)
            .build();
        if tiler.add_batch(area.0).is_err() {
            continue;
        }
        estimate += tiler.coverage_size_hint();
        // The hint is an upper bound, some four times the count: a guard against absurd
        // work only; the count itself is checked below (and named in the error).
        if estimate > MAX_CELLS * 8 {
            return Err(CoverageError::TooManyCells {
                resolution: u8::from(resolution),
                cells: estimate,
                max,
            });
        }
        for cell in tiler.into_coverage() {
            if seen.insert(cell) {
                out.push((cell, i));
            }
        }
    }
    too_many(out.len(), resolution, max)?;
    Ok(out)
}

fn cell_of(point: Point<f64>, resolution: Resolution) -> Option<CellIndex> {
    LatLng::new(point.y(), point.x())
        .ok()
        .map(|ll| ll.to_cell(resolution))
}

/// A cell's centre, lon/lat.
pub fn cell_centre(cell: CellIndex) -> Point<f64> {
    let ll = LatLng::from(cell);
    Point::new(ll.lng(), ll.lat())
}

/// A cell's outline, lon/lat.
pub fn cell_polygon(cell: CellIndex) -> Polygon<f64> {
    let mut ring: Vec<geo::Coord<f64>> = cell
        .boundary()
        .iter()
        .map(|ll| geo::coord! { x: ll.lng(), y: ll.lat() })
        .collect();
    if let Some(first) = ring.first().copied() {
        ring.push(first);
    }
    Polygon::new(geo::LineString::new(ring), Vec::new())
}

/// The H3 surface of the chosen territories at `resolution`: per cell, the distance to the
/// nearest chosen service and (for callers who may see it) the demand inside. Cells are in
/// territory order, then H3 order.
pub fn hexes(view: &View, query: &CoverageQuery, resolution: Resolution) -> Result<Vec<Hex>> {
    hexes_at_most(view, query, resolution, MAX_CELLS)
}

fn too_many(cells: usize, resolution: Resolution, max: usize) -> Result<()> {
    if cells > max {
        return Err(CoverageError::TooManyCells {
            resolution: u8::from(resolution),
            cells,
            max,
        });
    }
    Ok(())
}

/// [`hexes`] with at most `max_cells` cells (at most [`MAX_CELLS`]): beyond,
/// [`CoverageError::TooManyCells`], found before any distance is computed.
pub fn hexes_at_most(
    view: &View,
    query: &CoverageQuery,
    resolution: Resolution,
    max_cells: usize,
) -> Result<Vec<Hex>> {
    let max_cells = max_cells.min(MAX_CELLS);
    let p = Prepared::new(view, query)?;
    let mut cells = cells_of(&p.territories, resolution, max_cells)?;
    let mut listed: HashSet<CellIndex> = cells.iter().map(|(c, _)| *c).collect();
    let mut demand: HashMap<CellIndex, HexDemand> = HashMap::new();
    for d in p.demand_in(None) {
        let Some(cell) = cell_of(d.point, resolution) else {
            continue;
        };
        // A cell whose centre is outside every territory but which holds demand of one.
        if let Some(&t) = d.territories.first()
            && listed.insert(cell)
        {
            cells.push((cell, t));
        }
        let entry = demand.entry(cell).or_default();
        if d.is_settlement {
            entry.settlements += 1;
            entry.people += d.size;
            entry.people_uncovered += d.uncovered;
        } else {
            entry.worksites += 1;
            entry.workers += d.size;
            entry.workers_uncovered += d.uncovered;
        }
    }
    too_many(cells.len(), resolution, max_cells)?;
    cells.sort_by_key(|(c, t)| (*t, *c));
    let kinds = KindSet::of(&query.kinds);
    let keep = |r: &Record| r.as_service().is_some_and(|s| query.chooses(s));
    let sees = p.demand.is_some();
    Ok(cells
        .into_iter()
        .map(|(cell, t)| {
            let distance_m = lonlat(cell_centre(cell)).and_then(|o| {
                view.nearest_services(o, 1, None, kinds, keep)
                    .first()
                    .map(|n| n.distance_m)
            });
            Hex {
                cell,
                territory: Arc::clone(&p.territories[t]),
                distance_m,
                demand: (sees && p.figures_known[t])
                    .then(|| demand.get(&cell).copied().unwrap_or_default()),
            }
        })
        .collect())
}

/// Where suggested sites may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidates {
    /// Centres of the H3 cells of this resolution in the chosen territories.
    Hexes(Resolution),
    /// Representative points of the territories of level `comune` that lie in the chosen
    /// territories.
    Comuni,
}

/// A suggested new site.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// 1 for the first chosen.
    pub rank: usize,
    pub position: Point<f64>,
    /// The H3 cell (hex candidates).
    pub cell: Option<CellIndex>,
    /// The comune (comune candidates).
    pub comune: Option<Arc<Record>>,
    /// The chosen territory the site lies in.
    pub territory: Arc<Record>,
    /// What it newly covers, given the existing services and the sites suggested before it.
    pub people: u64,
    pub workers: u64,
    pub settlements: u64,
    pub worksites: u64,
}

/// The answer of `/coverage/suggest`.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestions {
    /// Uncovered people, workers, settlements and worksites before any new site.
    pub uncovered_people: u64,
    pub uncovered_workers: u64,
    pub uncovered_settlements: u64,
    pub uncovered_worksites: u64,
    /// Candidate sites considered.
    pub candidates: usize,
    pub suggestions: Vec<Suggestion>,
}

/// Greedy maximal covering: up to `k` candidates, each time the one that covers the most
/// weight not yet covered (ties: more demand points, then the lower index); stops early when
/// no candidate adds anything. `covers[c]` lists the demand points candidate `c` covers.
/// Returns the chosen candidates with the weight each added. The greedy choice reaches at
/// least `1 - 1/e` of the optimum.
///
/// ```
/// use faro::analysis::coverage::greedy_max_cover;
/// let weights = [5, 1, 1, 4];
/// let covers = vec![vec![0, 1], vec![1, 2, 3], vec![3]];
/// // Candidates 0 and 1 both add 6 at first; 1 covers more points and goes first.
/// assert_eq!(greedy_max_cover(&weights, &covers, 2), vec![(1, 6), (0, 5)]);
/// ```
pub fn greedy_max_cover(weights: &[u64], covers: &[Vec<u32>], k: usize) -> Vec<(usize, u64)> {
    let mut covered = vec![false; weights.len()];
    let mut chosen = Vec::new();
    let mut used = vec![false; covers.len()];
    for _ in 0..k {
        let mut best: Option<(u64, usize, usize)> = None;
        for (c, list) in covers.iter().enumerate() {
            if used[c] {
                continue;
            }
            let (mut gain, mut points) = (0_u64, 0_usize);
            for &d in list {
                let d = d as usize;
                if !covered[d] {
                    gain += weights[d];
                    points += 1;
                }
            }
            let better = match best {
                None => true,
                Some((g, n, _)) => gain > g || (gain == g && points > n),
            };
            if better && points > 0 {
                best = Some((gain, points, c));
            }
        }
        let Some((gain, _, c)) = best else { break };
        used[c] = true;
        for &d in &covers[c] {
            covered[d as usize] = true;
        }
        chosen.push((c, gain));
    }
    chosen
}

/// A candidate site: where, which cell or comune, and the index of its chosen territory.
struct Site {
    position: Point<f64>,
    cell: Option<CellIndex>,
    comune: Option<Arc<Record>>,
    territory: usize,
}

/// Up to `k` new sites among `candidates` that cover the most uncovered people and workers
/// (weight: people plus workers not yet covered; a record of unknown size weighs nothing but
/// breaks ties), keeping the existing services.
pub fn suggest(
    view: &View,
    query: &CoverageQuery,
    candidates: Candidates,
    k: usize,
) -> Result<Suggestions> {
    view.visibility()
        .check_collection(Collection::Settlements)
        .map_err(QueryError::from)?;
    let p = Prepared::new(view, query)?;
    let uncovered: Vec<&Demand> = p.demand_in(None).filter(|d| !d.is_covered()).collect();
    let sites: Vec<Site> = match candidates {
        Candidates::Hexes(resolution) => cells_of(&p.territories, resolution, MAX_CELLS)?
            .into_iter()
            .map(|(cell, territory)| Site {
                position: cell_centre(cell),
                cell: Some(cell),
                comune: None,
                territory,
            })
            .collect(),
        Candidates::Comuni => view
            .items(
                Collection::Territories,
                &ItemsQuery {
                    kinds: vec!["comune"],
                    ..ItemsQuery::default()
                },
            )?
            .records
            .into_iter()
            .filter_map(|comune| {
                let position = representative_point(comune.geometry())?;
                let territory = p
                    .territories
                    .iter()
                    .position(|t| t.geometry().intersects(&position))?;
                Some(Site {
                    position,
                    cell: None,
                    comune: Some(comune),
                    territory,
                })
            })
            .collect(),
    };
    let tree: RTree<GeomWithData<[f64; 3], u32>> = RTree::bulk_load(
        uncovered
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                Some(GeomWithData::new(
                    to_ecef(lonlat(d.point)?),
                    u32::try_from(i).ok()?,
                ))
            })
            .collect(),
    );
    let radius = query.radius_m;
    let covers: Vec<Vec<u32>> = sites
        .iter()
        .map(|site| {
            let site = site.position;
            let Some(at) = lonlat(site) else {
                return Vec::new();
            };
            let xyz = to_ecef(at);
            let reach = radius + 1e-3;
            let mut list: Vec<u32> = tree
                .locate_within_distance(xyz, reach * reach)
                .filter(|e| {
                    let d = uncovered[e.data as usize];
                    within(chord(xyz, *e.geom()), radius, site, d.point)
                })
                .map(|e| e.data)
                .collect();
            list.sort_unstable();
            list
        })
        .collect();
    let weights: Vec<u64> = uncovered.iter().map(|d| d.uncovered).collect();
    let chosen = greedy_max_cover(&weights, &covers, k.min(MAX_SUGGESTIONS));
    let mut taken = vec![false; uncovered.len()];
    let suggestions = chosen
        .iter()
        .enumerate()
        .map(|(rank, &(c, _))| {
            let site = &sites[c];
            let mut suggestion = Suggestion {
                rank: rank + 1,
                position: site.position,
                cell: site.cell,
                comune: site.comune.clone(),
                territory: Arc::clone(&p.territories[site.territory]),
                people: 0,
                workers: 0,
                settlements: 0,
                worksites: 0,
            };
            for &d in &covers[c] {
                let d = d as usize;
                if std::mem::replace(&mut taken[d], true) {
                    continue;
                }
                let demand = uncovered[d];
                if demand.is_settlement {
                    suggestion.settlements += 1;
                    suggestion.people += demand.uncovered;
                } else {
                    suggestion.worksites += 1;
                    suggestion.workers += demand.uncovered;
                }
            }
            suggestion
        })
        .collect();
    let sum = |settlements: bool| -> u64 {
        uncovered
            .iter()
            .filter(|d| d.is_settlement == settlements)
            .map(|d| d.uncovered)
            .sum()
    };
    let count = |settlements: bool| -> u64 {
        uncovered
            .iter()
            .filter(|d| d.is_settlement == settlements)
            .count() as u64
    };
    Ok(Suggestions {
        uncovered_people: sum(true),
        uncovered_workers: sum(false),
        uncovered_settlements: count(true),
        uncovered_worksites: count(false),
        candidates: sites.len(),
        suggestions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chord_bound_never_claims_a_point_beyond_the_radius_at_any_distance() {
        // Chords from metres to the antipode: where the bound's series stops holding (past
        // some 6,000 km) the chord must leave it to the geodesic.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for _ in 0..20_000 {
            let from = Point::new(
                rng.random_range(-180.0..180.0),
                rng.random_range(-89.9..89.9),
            );
            let metres: f64 = 10f64.powf(rng.random_range(0.0..7.3));
            let to = Geodesic.destination(from, rng.random_range(0.0..360.0), metres);
            let (Some(ll_from), Some(ll_to)) = (lonlat(from), lonlat(to)) else {
                continue;
            };
            let chord_m = chord(to_ecef(ll_from), to_ecef(ll_to));
            let geodesic_m = Geodesic.distance(from, to);
            // Just below the geodesic: never certainly within.
            assert!(
                !chord_certainly_within(chord_m, geodesic_m * (1.0 - 1e-9)),
                "{from:?} {to:?} {chord_m} {geodesic_m}"
            );
        }
    }

    #[test]
    fn the_chord_test_agrees_with_the_geodesic_everywhere_near_the_radius() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for _ in 0..20_000 {
            let a = Point::new(
                rng.random_range(-180.0..180.0),
                rng.random_range(-89.0..89.0),
            );
            let radius: f64 = rng.random_range(1.0..100_000.0);
            let d = radius * rng.random_range(0.98..1.02);
            let b = Geodesic.destination(a, rng.random_range(0.0..360.0), d);
            let (Some(la), Some(lb)) = (lonlat(a), lonlat(b)) else {
                continue;
            };
            let c = chord(to_ecef(la), to_ecef(lb));
            assert_eq!(
                within(c, radius, a, b),
                Geodesic.distance(a, b) <= radius,
                "{a:?} {b:?} {radius}"
            );
            assert!(c <= Geodesic.distance(a, b) + 1e-6);
            let kc = c / crate::index::MIN_RADIUS_OF_CURVATURE_M;
            assert!(Geodesic.distance(a, b) <= c * (1.0 + kc * kc / 20.0) + 1e-6);
        }
    }

    #[test]
    fn clipping_a_disc_to_a_box_gives_what_the_overlay_gives() {
        use geo::Area;
        let disc = geodesic_disc(Point::new(12.24, 45.67), 15_000.0, DISC_VERTICES);
        let boxes = [
            ((12.0, 45.5), (12.5, 45.9)),         // the whole disc inside
            ((12.30, 45.60), (12.60, 45.90)),     // a corner of it
            ((12.20, 45.00), (12.26, 46.00)),     // a strip across it
            ((12.10, 45.55), (12.35, 45.62)),     // a slab through the lower half
            ((13.0, 46.0), (13.1, 46.1)),         // nothing of it
            ((12.24, 45.67), (12.2401, 45.6701)), // a tiny box at the centre
        ];
        for ((x0, y0), (x1, y1)) in boxes {
            let window = geo::Rect::new(geo::coord! { x: x0, y: y0 }, geo::coord! { x: x1, y: y1 });
            let ours = clip_to_rect(disc.exterior(), window).map_or(0.0, |p| p.signed_area());
            let overlay = disc.intersection(&window.to_polygon()).signed_area();
            assert!(
                (ours - overlay).abs() <= 1e-12 + 1e-7 * overlay.abs(),
                "{window:?}: {ours} vs {overlay}"
            );
            // (The overlay snaps to a grid: a few parts in a billion.) Counter-clockwise still, as the non-zero rule of the overlays needs.
            assert!(ours >= 0.0);
        }
    }

    #[test]
    fn a_disc_has_the_ellipsoidal_area_within_a_tenth_of_a_percent() {
        for (lat, r) in [
            (45.67, 15_000.0),
            (0.0, 100_000.0),
            (70.0, 1.0),
            (-33.0, 50_000.0),
        ] {
            let c = Point::new(12.0, lat);
            let fine = geodesic_disc(c, r, 16_384).geodesic_area_unsigned();
            let ours = geodesic_disc(c, r, DISC_VERTICES).geodesic_area_unsigned();
            // The inscribed 160-gon is 0.026 % short, under the 0.03 % the docs say.
            assert!(
                (ours / fine - 1.0).abs() < 3e-4,
                "{lat} {r}: {ours} vs {fine}"
            );
        }
    }

    #[test]
    fn the_strip_index_places_points_as_intersects_does() {
        use rand::{Rng, SeedableRng};
        let shape: Geometry<f64> = geo::wkt!(MULTIPOLYGON(
            ((12.10 45.55, 12.55 45.55, 12.55 45.95, 12.35 45.95, 12.35 45.70, 12.20 45.70,
              12.20 45.95, 12.10 45.95, 12.10 45.55),
             (12.40 45.60, 12.40 45.66, 12.50 45.66, 12.50 45.60, 12.40 45.60)),
            ((11.80 45.80, 12.05 45.80, 12.00 46.05, 11.85 46.02, 11.80 45.80))
        ))
        .into();
        let index = AreaIndex::new(&shape);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..20_000 {
            let p = Point::new(rng.random_range(11.7..12.6), rng.random_range(45.5..46.1));
            assert_eq!(index.covers(p), shape.intersects(&p), "{p:?}");
        }
        // Vertices and points on edges are inside.
        for p in [
            Point::new(12.10, 45.55),
            Point::new(12.30, 45.55),
            Point::new(12.45, 45.60),
        ] {
            assert!(index.covers(p) && shape.intersects(&p), "{p:?}");
        }
    }

    #[test]
    fn greedy_never_picks_a_candidate_that_adds_nothing() {
        let chosen = greedy_max_cover(&[3, 2], &[vec![0, 1], vec![0], vec![1]], 3);
        assert_eq!(chosen, vec![(0, 5)]);
    }
}
