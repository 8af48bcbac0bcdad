//! Property tests of the index against brute force.
//!
//! - `Layer::nearest` is the exact geodesic k nearest neighbours: the same ids, in the same
//!   order, with the same distances as a scan computing `geo::Geodesic.distance` to every point,
//!   sorted by (distance, id), for spread, clustered (coincident points, exact ties) and global
//!   data, queries in Italy, at data points, on the other side of the earth, at the poles and on
//!   the antimeridian, with and without a kind filter and a maximum distance.
//! - `Layer::intersecting` equals brute force over points and small polygons.
//! - `Snapshot::with_changes` ends where a snapshot built from scratch on the final records
//!   does, and never alters the snapshot it started from.

// Helpers outside #[test] functions unwrap too; and distances are compared exactly on purpose:
// the index must return the very numbers the brute force computes.
#![allow(clippy::unwrap_used, clippy::float_cmp)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use faro::domain::geometry::GeometryRule;
use faro::domain::{
    Attributes, Collection, LonLat, Meta, Record, RecordId, Service, ServiceKind, Settlement,
    ValidGeometry,
};
use faro::index::{IndexChange, KindSet, Layer, MergeJob, Neighbour, Snapshot};
use geo::{BoundingRect, Distance, Geodesic, Intersects};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;
use serde_json::json;

/// 64 cases from a fixed seed, so CI runs the same cases every time in a few seconds.
/// `PROPTEST_CASES` and `PROPTEST_RNG_SEED` still explore further.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig {
        // Integration tests have no lib.rs beside them for the regression files; a failure
        // prints its minimal input instead.
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 64;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(20_261_125);
    }
    config
}

// ---------------------------------------------------------------------------------------------
// Records through the public API.

fn meta(version: i64) -> Meta {
    incarnation(version, 0)
}

/// Deleting and re-creating a record starts a new incarnation: another `created_at`.
fn incarnation(version: i64, incarnation: i64) -> Meta {
    let at = Utc.timestamp_opt(1_764_000_000 + incarnation, 0).unwrap();
    Meta {
        version,
        created_at: at,
        updated_at: at,
    }
}

fn service(name: &str, kind: ServiceKind) -> Service {
    let s: Service = serde_json::from_value(json!({"name": name, "kind": kind.as_str()})).unwrap();
    s.validate().unwrap()
}

fn service_record(id: &str, lon: f64, lat: f64, kind: ServiceKind, version: i64) -> Arc<Record> {
    service_record_meta(id, lon, lat, kind, meta(version))
}

fn service_record_meta(id: &str, lon: f64, lat: f64, kind: ServiceKind, meta: Meta) -> Arc<Record> {
    let geometry = ValidGeometry::new(
        geo::Geometry::Point(geo::Point::new(lon, lat)),
        GeometryRule::PointOnly,
    )
    .unwrap();
    let record = Record::new(
        RecordId::parse(id).unwrap(),
        geometry,
        Attributes::Service(service(&format!("service {id}"), kind)),
        meta,
    )
    .unwrap();
    Arc::new(record)
}

fn settlement_record(id: &str, geometry: geo::Geometry<f64>, version: i64) -> Arc<Record> {
    settlement_record_meta(id, geometry, meta(version))
}

fn settlement_record_meta(id: &str, geometry: geo::Geometry<f64>, meta: Meta) -> Arc<Record> {
    let s: Settlement =
        serde_json::from_value(json!({"name": format!("settlement {id}")})).unwrap();
    let record = Record::new(
        RecordId::parse(id).unwrap(),
        ValidGeometry::new(geometry, GeometryRule::PointOrPolygon).unwrap(),
        Attributes::Settlement(s.validate().unwrap()),
        meta,
    )
    .unwrap();
    Arc::new(record)
}

/// Ids whose order is not the order of generation, so that ties are broken by something else
/// than insertion order.
fn service_id(i: usize) -> String {
    format!("svc-{:05}", (i * 7919) % 100_000)
}

fn kind(i: usize) -> ServiceKind {
    ServiceKind::ALL[i % ServiceKind::ALL.len()]
}

// ---------------------------------------------------------------------------------------------
// Generators.

/// A generated point: lon, lat, kind index.
type Pt = (f64, f64, usize);

/// Clustered points are on a grid of 2^-17 degrees (about 0.85 m of latitude) around a centre
/// that is a multiple of 2^-10 degrees, so every coordinate is exact: points mirrored across
/// the centre's meridian are at exactly the same geodesic distance from it, and many points
/// coincide.
const GRID: f64 = 1.0 / 131_072.0;

fn italy() -> impl Strategy<Value = (f64, f64)> {
    (6.6_f64..18.6, 35.5_f64..47.1)
}

fn snap(x: f64) -> f64 {
    (x * 1024.0).round() / 1024.0
}

fn spread(max: usize, kinds: usize) -> impl Strategy<Value = Vec<Pt>> {
    prop::collection::vec(
        (italy(), 0..kinds).prop_map(|((lon, lat), k)| (lon, lat, k)),
        0..max,
    )
}

fn cluster(max: usize, kinds: usize) -> impl Strategy<Value = Vec<Pt>> {
    (
        italy(),
        prop::collection::vec((-6_i32..=6, -6_i32..=6, 0..kinds), 1..max),
    )
        .prop_map(|((lon, lat), offsets)| {
            let (lon, lat) = (snap(lon), snap(lat));
            offsets
                .into_iter()
                .map(|(i, j, k)| (lon + f64::from(i) * GRID, lat + f64::from(j) * GRID, k))
                .collect()
        })
}

/// Hard places: the poles, the antimeridian from both sides, the antipode of Italy.
const SPECIAL: [(f64, f64); 10] = [
    (0.0, 90.0),
    (123.0, 90.0),
    (-45.0, -90.0),
    (180.0, 42.0),
    (-180.0, 42.0),
    (179.999_9, -41.9),
    (-179.999_9, 0.0),
    (-167.8, -42.0),
    (0.0, 0.0),
    (12.2, 42.0),
];

fn anywhere() -> impl Strategy<Value = (f64, f64)> {
    prop_oneof![
        3 => (-180.0_f64..=180.0, -90.0_f64..=90.0),
        1 => prop::sample::select(SPECIAL.to_vec()),
        1 => (prop_oneof![179.0_f64..=180.0, -180.0_f64..=-179.0], -90.0_f64..=90.0),
        1 => (-180.0_f64..=180.0, prop_oneof![89.0_f64..=90.0, -90.0_f64..=-89.0]),
    ]
}

fn global(max: usize, kinds: usize) -> impl Strategy<Value = Vec<Pt>> {
    prop::collection::vec(
        (anywhere(), 0..kinds).prop_map(|((lon, lat), k)| (lon, lat, k)),
        0..max,
    )
}

fn dataset() -> impl Strategy<Value = Vec<Pt>> {
    prop_oneof![
        spread(160, 14),
        cluster(120, 3),
        (
            spread(60, 14),
            cluster(60, 3),
            cluster(30, 14),
            global(20, 14)
        )
            .prop_map(|(mut a, b, c, d)| {
                a.extend(b);
                a.extend(c);
                a.extend(d);
                a
            }),
    ]
}

#[derive(Debug, Clone)]
enum Query {
    Free(f64, f64),
    /// Exactly at a data point.
    AtData(Index),
    /// A data point moved by a few grid steps: a centre of mirrored ties in a cluster.
    NearData(Index, i32, i32),
}

fn query() -> impl Strategy<Value = Query> {
    prop_oneof![
        2 => italy().prop_map(|(lon, lat)| Query::Free(lon, lat)),
        2 => anywhere().prop_map(|(lon, lat)| Query::Free(lon, lat)),
        2 => any::<Index>().prop_map(Query::AtData),
        2 => (any::<Index>(), -3_i32..=3, -3_i32..=3).prop_map(|(i, a, b)| Query::NearData(i, a, b)),
    ]
}

/// The data point an `Index` picks, or a point in Italy when there is no data.
fn pick(index: Index, points: &[Pt]) -> (f64, f64) {
    if points.is_empty() {
        (12.0, 42.0)
    } else {
        let p = points[index.index(points.len())];
        (p.0, p.1)
    }
}

fn resolve(query: &Query, points: &[Pt]) -> LonLat {
    let (lon, lat) = match query {
        Query::Free(lon, lat) => (*lon, *lat),
        Query::AtData(index) => pick(*index, points),
        Query::NearData(index, steps_lon, steps_lat) => {
            let (lon, lat) = pick(*index, points);
            (
                (lon + f64::from(*steps_lon) * GRID).clamp(-180.0, 180.0),
                (lat + f64::from(*steps_lat) * GRID).clamp(-90.0, 90.0),
            )
        }
    };
    LonLat::new(lon, lat).unwrap()
}

#[derive(Debug, Clone)]
enum MaxDistance {
    None,
    Zero,
    Metres(f64),
    /// Exactly the geodesic distance from the query to a data point: the boundary is inclusive.
    ToData(Index),
}

fn max_distance() -> impl Strategy<Value = MaxDistance> {
    prop_oneof![
        3 => Just(MaxDistance::None),
        1 => Just(MaxDistance::Zero),
        2 => prop_oneof![0.0_f64..50.0, 0.0_f64..200_000.0, 0.0_f64..20_000_000.0]
            .prop_map(MaxDistance::Metres),
        2 => any::<Index>().prop_map(MaxDistance::ToData),
    ]
}

fn resolve_max(m: &MaxDistance, origin: LonLat, points: &[Pt]) -> Option<f64> {
    match m {
        MaxDistance::None => None,
        MaxDistance::Zero => Some(0.0),
        MaxDistance::Metres(d) => Some(*d),
        MaxDistance::ToData(_) if points.is_empty() => Some(0.0),
        MaxDistance::ToData(i) => {
            let p = points[i.index(points.len())];
            Some(Geodesic.distance(origin.to_point(), geo::Point::new(p.0, p.1)))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Brute force.

fn brute_nearest(
    records: &[Arc<Record>],
    origin: LonLat,
    k: usize,
    max_distance_m: Option<f64>,
    keep: impl Fn(&Record) -> bool,
) -> Vec<(RecordId, f64)> {
    let o = origin.to_point();
    let mut all: Vec<(f64, &RecordId)> = records
        .iter()
        .filter(|r| keep(r))
        .filter_map(|r| {
            let p = r.valid_geometry().as_point()?;
            Some((Geodesic.distance(o, p.to_point()), r.id()))
        })
        .filter(|(d, _)| max_distance_m.is_none_or(|max| *d <= max))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    all.truncate(k);
    all.into_iter().map(|(d, id)| (id.clone(), d)).collect()
}

fn ids_and_distances(found: &[Neighbour]) -> Vec<(RecordId, f64)> {
    found
        .iter()
        .map(|n| (n.record.id().clone(), n.distance_m))
        .collect()
}

fn brute_intersecting(records: &[Arc<Record>], area: &geo::Geometry<f64>) -> Vec<RecordId> {
    let mut out: Vec<RecordId> = records
        .iter()
        .filter(|r| match (r.geometry(), area) {
            // Points against a rectangle by plain comparisons, edges included.
            (geo::Geometry::Point(p), geo::Geometry::Rect(b)) => {
                b.min().x <= p.x() && p.x() <= b.max().x && b.min().y <= p.y() && p.y() <= b.max().y
            }
            (g, a) => g.intersects(a),
        })
        .map(|r| r.id().clone())
        .collect();
    out.sort();
    out
}

fn ids(found: &[&Arc<Record>]) -> Vec<RecordId> {
    found.iter().map(|r| r.id().clone()).collect()
}

fn services(points: &[Pt]) -> Vec<Arc<Record>> {
    points
        .iter()
        .enumerate()
        .map(|(i, &(lon, lat, k))| service_record(&service_id(i), lon, lat, kind(k), 1))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Nearest.

proptest! {
    #![proptest_config(config())]

    #[test]
    fn nearest_is_the_brute_force_geodesic_knn(
        points in dataset(),
        queries in prop::collection::vec(
            (query(), 1_usize..=20, max_distance(), prop::option::of(prop::collection::btree_set(0_usize..14, 1..4))),
            1..5,
        ),
    ) {
        let records = services(&points);
        let layer = Layer::build(records.clone());
        prop_assert_eq!(layer.len(), records.len());
        for (q, k, max, kinds) in &queries {
            let origin = resolve(q, &points);
            let max = resolve_max(max, origin, &points);
            let allowed: Option<BTreeSet<ServiceKind>> =
                kinds.as_ref().map(|ks| ks.iter().map(|&i| kind(i)).collect());
            let keep = |r: &Record| {
                allowed.as_ref().is_none_or(|a| r.as_service().is_some_and(|s| a.contains(&s.kind)))
            };
            let found = ids_and_distances(&layer.nearest(origin, *k, max, keep));
            let expected = brute_nearest(&records, origin, *k, max, keep);
            prop_assert_eq!(
                &found, &expected,
                "origin {:?} k {} max {:?} kinds {:?}", origin, k, max, allowed
            );
            // The same kinds as a prefilter on the tree entries.
            let set = allowed.as_ref().map_or(KindSet::ANY, |a| KindSet::of(&a.iter().copied().collect::<Vec<_>>()));
            let prefiltered = ids_and_distances(&layer.nearest_of_kinds(origin, *k, max, set, |_| true));
            prop_assert_eq!(&prefiltered, &expected, "prefilter, kinds {:?}", allowed);
        }
    }

    #[test]
    fn nearest_from_far_away_ranks_the_whole_of_italy(
        points in spread(120, 14),
        far in anywhere(),
        k in 1_usize..=20,
    ) {
        // From another hemisphere, the pole or the antimeridian the chord bound is loosest:
        // chords of thousands of kilometres against geodesics that follow the ellipsoid.
        let records = services(&points);
        let layer = Layer::build(records.clone());
        let origin = LonLat::new(far.0, far.1).unwrap();
        let found = ids_and_distances(&layer.nearest(origin, k, None, |_| true));
        prop_assert_eq!(found, brute_nearest(&records, origin, k, None, |_| true));
        // Every point, farthest included.
        let all = ids_and_distances(&layer.nearest(origin, records.len(), None, |_| true));
        prop_assert_eq!(all, brute_nearest(&records, origin, records.len(), None, |_| true));
    }
}

#[test]
fn nearest_with_k_zero_or_an_empty_layer_is_empty() {
    let origin = LonLat::new(12.0, 42.0).unwrap();
    assert!(
        Layer::default()
            .nearest(origin, 5, None, |_| true)
            .is_empty()
    );
    let layer = Layer::build(vec![service_record(
        "svc-a",
        12.0,
        42.0,
        ServiceKind::Pas,
        1,
    )]);
    assert!(layer.nearest(origin, 0, None, |_| true).is_empty());
    assert_eq!(layer.nearest(origin, 5, Some(0.0), |_| true).len(), 1);
}

#[test]
fn mirrored_ties_are_ordered_by_id() {
    // Two points mirrored across the query's meridian are at exactly the same geodesic
    // distance, but their computed chords differ in the last bits and are as often as not a
    // few 1e-9 m longer than that geodesic. Pruning on the bare chord returned the larger id
    // for about 4 in 10 of these pairs.
    for i in 0..60_u32 {
        let lon = snap(6.6 + (f64::from(i) * 0.37) % 12.0);
        let lat = snap(35.5 + (f64::from(i) * 0.713) % 11.6);
        let origin = LonLat::new(lon, lat).unwrap();
        for steps in [1.0, 2.0, 3.0, 7.0, 64.0, 128.0] {
            let d = steps * GRID;
            let layer = Layer::build(vec![
                service_record("svc-b", lon + d, lat, ServiceKind::Pas, 1),
                service_record("svc-a", lon - d, lat, ServiceKind::Pas, 1),
                service_record("svc-c", lon, lat + 2.0 * d, ServiceKind::Pas, 1),
            ]);
            let found = layer.nearest(origin, 1, None, |_| true);
            assert_eq!(found[0].record.id().as_str(), "svc-a", "{origin:?} {d}");
            let found = layer.nearest(origin, 2, None, |_| true);
            assert_eq!(found[0].distance_m, found[1].distance_m);
            assert_eq!(found[1].record.id().as_str(), "svc-b", "{origin:?} {d}");
        }
    }
}

#[test]
fn the_same_pole_at_two_longitudes_is_at_distance_zero() {
    let records = vec![
        service_record("svc-p1", 0.0, 90.0, ServiceKind::Pas, 1),
        service_record("svc-p2", 90.0, 90.0, ServiceKind::Pas, 1),
        service_record("svc-m1", 180.0, 10.0, ServiceKind::Pas, 1),
        service_record("svc-m2", -180.0, 10.0, ServiceKind::Pas, 1),
    ];
    let layer = Layer::build(records);
    let pole = layer.nearest(LonLat::new(-135.0, 90.0).unwrap(), 2, Some(0.0), |_| true);
    assert_eq!(pole.len(), 2, "{pole:?}");
    let meridian = layer.nearest(LonLat::new(180.0, 10.0).unwrap(), 2, Some(0.0), |_| true);
    assert_eq!(meridian.len(), 2, "{meridian:?}");
}

// ---------------------------------------------------------------------------------------------
// Bbox and areas.

/// A small rotated rectangle: centre, half sizes in degrees, angle.
fn small_polygon() -> impl Strategy<Value = geo::Polygon<f64>> {
    (
        italy(),
        1e-4_f64..0.3,
        1e-4_f64..0.3,
        0.0_f64..std::f64::consts::PI,
    )
        .prop_map(|((lon, lat), w, h, angle)| {
            let (s, c) = angle.sin_cos();
            let corner =
                |x: f64, y: f64| geo::coord! { x: lon + x * c - y * s, y: lat + x * s + y * c };
            geo::Polygon::new(
                geo::LineString::new(vec![
                    corner(-w, -h),
                    corner(w, -h),
                    corner(w, h),
                    corner(-w, h),
                    corner(-w, -h),
                ]),
                vec![],
            )
        })
}

#[derive(Debug, Clone)]
enum Area {
    Rect(f64, f64, f64, f64),
    /// A rectangle with a corner or an edge exactly on a data point.
    RectAtData(Index, f64, f64),
    /// A zero-area rectangle on a data point.
    PointRect(Index),
    Triangle((f64, f64), (f64, f64), (f64, f64)),
}

fn area() -> impl Strategy<Value = Area> {
    prop_oneof![
        3 => (italy(), 0.0_f64..3.0, 0.0_f64..3.0)
            .prop_map(|((lon, lat), w, h)| Area::Rect(lon, lat, (lon + w).min(180.0), (lat + h).min(90.0))),
        2 => (any::<Index>(), 0.0_f64..0.5, 0.0_f64..0.5).prop_map(|(i, w, h)| Area::RectAtData(i, w, h)),
        1 => any::<Index>().prop_map(Area::PointRect),
        1 => (italy(), italy(), italy()).prop_map(|(a, b, c)| Area::Triangle(a, b, c)),
    ]
}

fn resolve_area(area: &Area, points: &[Pt]) -> geo::Geometry<f64> {
    let rect = |x0: f64, y0: f64, x1: f64, y1: f64| {
        geo::Geometry::Rect(geo::Rect::new(
            geo::coord! { x: x0, y: y0 },
            geo::coord! { x: x1, y: y1 },
        ))
    };
    match area {
        Area::Rect(x0, y0, x1, y1) => rect(*x0, *y0, *x1, *y1),
        Area::RectAtData(index, width, height) => {
            let (lon, lat) = pick(*index, points);
            rect(lon, lat, (lon + width).min(180.0), (lat + height).min(90.0))
        }
        Area::PointRect(index) => {
            let (lon, lat) = pick(*index, points);
            rect(lon, lat, lon, lat)
        }
        Area::Triangle(a, b, c) => geo::Geometry::Polygon(geo::Polygon::new(
            geo::LineString::from(vec![*a, *b, *c, *a]),
            vec![],
        )),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn intersecting_is_the_brute_force_filter(
        points in prop_oneof![spread(200, 14), cluster(80, 3)],
        polygons in prop::collection::vec(small_polygon(), 0..40),
        areas in prop::collection::vec(area(), 1..6),
    ) {
        let mut records = services(&points);
        records.extend(
            polygons
                .iter()
                .enumerate()
                .map(|(i, p)| settlement_record(&format!("set-{i:04}"), geo::Geometry::Polygon(p.clone()), 1)),
        );
        let layer = Layer::build(records.clone());
        for a in &areas {
            let area = resolve_area(a, &points);
            let found = ids(&layer.intersecting(&area));
            prop_assert_eq!(found, brute_intersecting(&records, &area), "area {:?}", area);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Incremental changes.

/// Ids 0..POOL: services below SERVICES, settlements (points or polygons) from there on.
const POOL: usize = 40;
const SERVICES: usize = 28;

#[derive(Debug, Clone)]
enum Shape {
    Point(f64, f64),
    Polygon(geo::Polygon<f64>),
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        3 => italy().prop_map(|(lon, lat)| Shape::Point(lon, lat)),
        // Coincident with another record, often.
        1 => prop::sample::select(vec![(12.0, 42.0), (12.5, 45.5)]).prop_map(|(lon, lat)| Shape::Point(lon, lat)),
        1 => small_polygon().prop_map(Shape::Polygon),
    ]
}

/// Version and incarnation of a pool record.
type Stamp = (i64, i64);

fn pool_record(id: usize, (version, inc): Stamp, shape: &Shape, kind_index: usize) -> Arc<Record> {
    let meta = incarnation(version, inc);
    if id < SERVICES {
        let (lon, lat) = match shape {
            Shape::Point(lon, lat) => (*lon, *lat),
            Shape::Polygon(p) => {
                let c = p.exterior().0[0];
                (c.x, c.y)
            }
        };
        service_record_meta(&format!("svc-{id:03}"), lon, lat, kind(kind_index), meta)
    } else {
        let g = match shape {
            Shape::Point(lon, lat) => geo::Geometry::Point(geo::Point::new(*lon, *lat)),
            Shape::Polygon(p) => geo::Geometry::Polygon(p.clone()),
        };
        settlement_record_meta(&format!("set-{id:03}"), g, meta)
    }
}

fn collection_of(id: usize) -> Collection {
    if id < SERVICES {
        Collection::Services
    } else {
        Collection::Settlements
    }
}

fn record_id(id: usize) -> RecordId {
    let text = if id < SERVICES {
        format!("svc-{id:03}")
    } else {
        format!("set-{id:03}")
    };
    RecordId::parse(&text).unwrap()
}

#[derive(Debug, Clone)]
struct Batch {
    upserts: Vec<(usize, Stamp, Shape, usize)>,
    deletes: Vec<usize>,
}

/// Mostly the first incarnation, so that versions race; sometimes a re-created record.
fn stamp(versions: std::ops::Range<i64>) -> impl Strategy<Value = Stamp> {
    (versions, prop_oneof![4 => Just(0_i64), 1 => Just(1_i64)])
}

fn batch() -> impl Strategy<Value = Batch> {
    (
        prop::collection::vec((0..POOL, stamp(1..8), shape(), 0_usize..14), 0..12),
        prop::collection::vec(0..POOL, 0..5),
    )
        .prop_map(|(upserts, deletes)| Batch { upserts, deletes })
}

/// Everything observable about a snapshot, compared exactly.
#[derive(Debug, PartialEq)]
struct Observed {
    records: Vec<Vec<Record>>,
    present: Vec<bool>,
    nearest: Vec<Vec<(RecordId, f64)>>,
    intersecting: Vec<Vec<RecordId>>,
}

fn observe(snapshot: &Snapshot, probes: &[(f64, f64)]) -> Observed {
    let layers = [Collection::Services, Collection::Settlements];
    let records = layers
        .iter()
        .map(|c| {
            snapshot
                .unrestricted_layer(*c)
                .iter()
                .map(|r| (**r).clone())
                .collect()
        })
        .collect();
    let present = (0..POOL)
        .map(|i| {
            snapshot
                .unrestricted_layer(collection_of(i))
                .get(&record_id(i))
                .is_some()
        })
        .collect();
    let mut nearest = Vec::new();
    let mut intersecting = Vec::new();
    for c in layers {
        let layer = snapshot.unrestricted_layer(c);
        for &(lon, lat) in probes {
            let origin = LonLat::new(lon, lat).unwrap();
            // Every point record: a stale tree entry would show up here.
            nearest.push(ids_and_distances(&layer.nearest(
                origin,
                POOL + 5,
                None,
                |_| true,
            )));
            nearest.push(ids_and_distances(&layer.nearest(
                origin,
                3,
                Some(100_000.0),
                |_| true,
            )));
            let area = geo::Geometry::Rect(geo::Rect::new(
                geo::coord! { x: lon - 1.0, y: lat - 1.0 },
                geo::coord! { x: lon + 1.0, y: lat + 1.0 },
            ));
            intersecting.push(ids(&layer.intersecting(&area)));
        }
        let world = geo::Geometry::Rect(geo::Rect::new(
            geo::coord! { x: -180.0, y: -90.0 },
            geo::coord! { x: 180.0, y: 90.0 },
        ));
        intersecting.push(ids(&layer.intersecting(&world)));
    }
    Observed {
        records,
        present,
        nearest,
        intersecting,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn with_changes_ends_where_a_fresh_build_does(
        initial in prop::collection::btree_map(0..POOL, (stamp(1..4), shape(), 0_usize..14), 0..30),
        batches in prop::collection::vec(batch(), 1..5),
        probes in prop::collection::vec(italy(), 1..4),
    ) {
        let mut model: BTreeMap<usize, Arc<Record>> = initial
            .iter()
            .map(|(&id, (v, s, k))| (id, pool_record(id, *v, s, *k)))
            .collect();
        let mut snapshot = Snapshot::build(model.values().map(|r| (**r).clone()).collect());
        for b in &batches {
            let upserts: Vec<Arc<Record>> =
                b.upserts.iter().map(|(id, v, s, k)| pool_record(*id, *v, s, *k)).collect();
            let deletes: Vec<(Collection, RecordId)> =
                b.deletes.iter().map(|&id| (collection_of(id), record_id(id))).collect();
            for ((id, ..), r) in b.upserts.iter().zip(&upserts) {
                // An upsert older than or equal to the indexed version of the same incarnation
                // is ignored; a re-created record (another `created_at`) replaces the old one.
                let accepted = model.get(id).is_none_or(|old| {
                    old.meta().created_at != r.meta().created_at
                        || old.meta().version < r.meta().version
                });
                if accepted {
                    model.insert(*id, Arc::clone(r));
                }
            }
            for id in &b.deletes {
                model.remove(id);
            }
            let before = observe(&snapshot, &probes);
            let changes: Vec<IndexChange> = upserts
                .iter()
                .map(|r| IndexChange::Upsert(Arc::clone(r)))
                .chain(deletes.iter().map(|(c, id)| IndexChange::Delete(*c, id.clone())))
                .collect();
            let next = snapshot.with_changes(&changes);
            // The old snapshot is immutable.
            prop_assert_eq!(&observe(&snapshot, &probes), &before);
            snapshot = next;
        }
        let fresh = Snapshot::build(model.values().map(|r| (**r).clone()).collect());
        prop_assert_eq!(observe(&snapshot, &probes), observe(&fresh, &probes));
        prop_assert_eq!(snapshot.counts(), fresh.counts());
    }
}

#[test]
fn an_upsert_with_an_older_or_equal_version_is_ignored() {
    let v2 = service_record("svc-x", 12.0, 42.0, ServiceKind::Pas, 2);
    let s0 = Snapshot::build(vec![(*v2).clone()]);
    let layer = |s: &Snapshot| {
        s.unrestricted_layer(Collection::Services)
            .get(v2.id())
            .cloned()
            .unwrap()
    };
    let origin = LonLat::new(7.0, 45.0).unwrap();
    for version in [1, 2] {
        let moved = service_record("svc-x", 7.0, 45.0, ServiceKind::Shelter, version);
        let s1 = s0.with_changes(&[IndexChange::Upsert(moved)]);
        assert_eq!(*layer(&s1), *v2, "version {version}");
        let n = s1
            .unrestricted_layer(Collection::Services)
            .nearest(origin, 1, None, |_| true);
        assert_eq!(n[0].record.meta().version, 2);
        assert!(n[0].distance_m > 100_000.0);
    }
    let moved = service_record("svc-x", 7.0, 45.0, ServiceKind::Shelter, 3);
    let s3 = s0.with_changes(&[IndexChange::Upsert(moved)]);
    assert_eq!(layer(&s3).meta().version, 3);
    let n = s3
        .unrestricted_layer(Collection::Services)
        .nearest(origin, 5, None, |_| true);
    assert_eq!(n.len(), 1, "the old position is gone");
    assert_eq!(n[0].distance_m, 0.0);
    // The first snapshot still has version 2 where it was.
    assert_eq!(*layer(&s0), *v2);
}

#[test]
fn a_re_created_record_replaces_the_old_one_whatever_its_version() {
    let old = service_record_meta("svc-x", 12.0, 42.0, ServiceKind::Pas, incarnation(5, 0));
    let s0 = Snapshot::build(vec![(*old).clone()]);
    let new = service_record_meta("svc-x", 7.0, 45.0, ServiceKind::Pas, incarnation(1, 1));
    let s1 = s0.with_changes(&[IndexChange::Upsert(Arc::clone(&new))]);
    let services = s1.unrestricted_layer(Collection::Services);
    assert_eq!(**services.get(new.id()).unwrap(), *new);
    let n = services.nearest(LonLat::new(12.0, 42.0).unwrap(), 5, None, |_| true);
    assert_eq!(n.len(), 1, "the old position is gone");
    assert!(n[0].distance_m > 100_000.0);
}

#[test]
fn an_ignored_upsert_copies_nothing() {
    let v2 = service_record("svc-x", 12.0, 42.0, ServiceKind::Pas, 2);
    let s0 = Snapshot::build(vec![(*v2).clone()]);
    let replay = service_record("svc-x", 7.0, 45.0, ServiceKind::Pas, 2);
    let s1 = s0.with_changes(&[
        IndexChange::Upsert(replay),
        IndexChange::Delete(Collection::Services, RecordId::parse("svc-none").unwrap()),
    ]);
    assert!(std::ptr::eq(
        s0.unrestricted_layer(Collection::Services),
        s1.unrestricted_layer(Collection::Services)
    ));
}

#[test]
fn duplicate_ids_in_a_build_keep_the_last() {
    let a = service_record("svc-x", 12.0, 42.0, ServiceKind::Pas, 1);
    let b = service_record("svc-x", 7.0, 45.0, ServiceKind::Shelter, 1);
    let layer = Layer::build(vec![a, Arc::clone(&b)]);
    assert_eq!(layer.len(), 1);
    let n = layer.nearest(LonLat::new(12.0, 42.0).unwrap(), 5, None, |_| true);
    assert_eq!(n.len(), 1);
    assert!(Arc::ptr_eq(&n[0].record, &b));
    let world = geo::Geometry::Rect(geo::Rect::new(
        geo::coord! { x: -180.0, y: -90.0 },
        geo::coord! { x: 180.0, y: 90.0 },
    ));
    assert_eq!(layer.intersecting(&world).len(), 1);
}

#[test]
fn untouched_layers_are_shared_between_snapshots() {
    let s0 = Snapshot::build(vec![
        (*service_record("svc-a", 12.0, 42.0, ServiceKind::Pas, 1)).clone(),
        (*settlement_record(
            "set-a",
            geo::Geometry::Point(geo::Point::new(12.0, 42.0)),
            1,
        ))
        .clone(),
    ]);
    let s1 = s0.with_changes(&[
        IndexChange::Upsert(service_record("svc-b", 12.1, 42.0, ServiceKind::Pas, 1)),
        IndexChange::Delete(Collection::Worksites, RecordId::parse("ws-none").unwrap()),
    ]);
    assert!(!std::ptr::eq(
        s0.unrestricted_layer(Collection::Services),
        s1.unrestricted_layer(Collection::Services)
    ));
    for c in [
        Collection::Settlements,
        Collection::Worksites,
        Collection::Territories,
    ] {
        assert!(
            std::ptr::eq(s0.unrestricted_layer(c), s1.unrestricted_layer(c)),
            "{c:?}"
        );
    }
    assert_eq!(s1.unrestricted_layer(Collection::Services).len(), 2);
    assert_eq!(s0.unrestricted_layer(Collection::Services).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Ordered changes, merges and counts, step by step against a model.

/// A generated record of the pool: id, version and incarnation, shape, kind, confidential.
type Spec = (usize, Stamp, Shape, usize, bool);

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..POOL,
        stamp(1..8),
        shape(),
        0_usize..14,
        prop::bool::weighted(0.3),
    )
}

fn spec_record(&(id, stamp, ref shape, kind_index, confidential): &Spec) -> Arc<Record> {
    let r = pool_record(id, stamp, shape, kind_index);
    match r.attributes() {
        Attributes::Service(s) if confidential => {
            let mut s = s.clone();
            s.confidential = true;
            Arc::new(
                Record::new(
                    r.id().clone(),
                    r.valid_geometry().clone(),
                    Attributes::Service(s),
                    r.meta().clone(),
                )
                .unwrap(),
            )
        }
        _ => r,
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// An insert, a move (a newer version), a stale replay or a re-creation, by its stamp.
    Upsert(Spec),
    Delete(usize),
}

#[derive(Debug, Clone)]
enum Step {
    Batch(Vec<Op>),
    /// `[delete X, insert X]` in one batch: X is there after.
    DeleteThenInsert(Spec),
    /// `[insert X, delete X]` in one batch: X is not there after.
    InsertThenDelete(Spec),
    /// Takes a merge job of services (true) or settlements, to finish some steps later.
    TakeJob(bool),
    /// Runs one of the jobs taken (perhaps stale by now) and applies it.
    FinishJob(Index),
}

fn step() -> impl Strategy<Value = Step> {
    let op = prop_oneof![
        3 => spec().prop_map(Op::Upsert),
        1 => (0..POOL).prop_map(Op::Delete),
    ];
    prop_oneof![
        4 => prop::collection::vec(op, 1..8).prop_map(Step::Batch),
        1 => spec().prop_map(Step::DeleteThenInsert),
        1 => spec().prop_map(Step::InsertThenDelete),
        2 => any::<bool>().prop_map(Step::TakeJob),
        2 => any::<Index>().prop_map(Step::FinishJob),
    ]
}

/// The model: the pool's records, by pool index.
type Model = BTreeMap<usize, Arc<Record>>;

fn apply_to_model(model: &mut Model, changes: &[(usize, IndexChange)]) {
    for (pool, change) in changes {
        match change {
            IndexChange::Upsert(r) => {
                let accepted = model.get(pool).is_none_or(|old| {
                    old.meta().created_at != r.meta().created_at
                        || old.meta().version < r.meta().version
                });
                if accepted {
                    model.insert(*pool, Arc::clone(r));
                }
            }
            IndexChange::Delete(..) => {
                model.remove(pool);
            }
        }
    }
}

fn upsert(s: &Spec) -> (usize, IndexChange) {
    (s.0, IndexChange::Upsert(spec_record(s)))
}

fn delete(pool: usize) -> (usize, IndexChange) {
    (
        pool,
        IndexChange::Delete(collection_of(pool), record_id(pool)),
    )
}

/// A nearest query of the step test: where, k, maximum distance, kinds.
type NearestCase = (Query, usize, MaxDistance, Option<BTreeSet<usize>>);

fn bbox_of<'a>(records: impl Iterator<Item = &'a Arc<Record>>) -> Option<geo::Rect<f64>> {
    records
        .filter_map(|r| r.geometry().bounding_rect())
        .reduce(|a, b| {
            geo::Rect::new(
                geo::coord! { x: a.min().x.min(b.min().x), y: a.min().y.min(b.min().y) },
                geo::coord! { x: a.max().x.max(b.max().x), y: a.max().y.max(b.max().y) },
            )
        })
}

/// Every answer of `snapshot` against brute force over `model`.
fn check_against_model(
    snapshot: &Snapshot,
    model: &Model,
    areas: &[Area],
    polygons: &[geo::Polygon<f64>],
    queries: &[NearestCase],
) -> Result<(), TestCaseError> {
    for c in [Collection::Services, Collection::Settlements] {
        let layer = snapshot.unrestricted_layer(c);
        let mut records: Vec<Arc<Record>> = model
            .values()
            .filter(|r| r.collection() == c)
            .cloned()
            .collect();
        records.sort_by(|a, b| a.id().cmp(b.id()));

        // get, iter, len.
        let listed: Vec<&Arc<Record>> = layer.iter().collect();
        prop_assert_eq!(listed.len(), records.len(), "{:?}: iter", c);
        for (a, b) in listed.iter().zip(&records) {
            // By value: the initial records went through `Snapshot::build`, which owns them.
            prop_assert_eq!(&***a, &**b, "{:?}: iter", c);
        }
        prop_assert_eq!(layer.len(), records.len());
        prop_assert_eq!(layer.is_empty(), records.is_empty());
        for pool in (0..POOL).filter(|&p| collection_of(p) == c) {
            let found = layer.get(&record_id(pool));
            match model.get(&pool) {
                Some(r) => prop_assert!(found.is_some_and(|f| **f == **r), "get {}", pool),
                None => prop_assert!(found.is_none(), "get {} should be gone", pool),
            }
        }

        // Counts, all and per kind.
        let anonymous = |r: &&Arc<Record>| faro::domain::is_public(r);
        prop_assert_eq!(layer.count(true, None), records.len());
        prop_assert_eq!(
            layer.count(false, None),
            records.iter().filter(anonymous).count()
        );
        for kind in ServiceKind::ALL
            .iter()
            .map(|k| k.as_str())
            .chain(["no-such-kind"])
        {
            let of_kind = || {
                records
                    .iter()
                    .filter(|r| r.attributes().kind_str() == Some(kind))
            };
            prop_assert_eq!(
                layer.count(true, Some(kind)),
                of_kind().count(),
                "kind {}",
                kind
            );
            prop_assert_eq!(
                layer.count(false, Some(kind)),
                of_kind().filter(anonymous).count(),
                "anonymous, kind {}",
                kind
            );
        }

        // Extents.
        prop_assert_eq!(layer.extent(), bbox_of(records.iter()), "{:?}: extent", c);
        prop_assert_eq!(
            layer.anonymous_extent(),
            bbox_of(records.iter().filter(anonymous)),
            "{:?}: anonymous extent",
            c
        );

        // Boxes and polygons.
        let points: Vec<Pt> = records
            .iter()
            .filter_map(|r| {
                let p = r.valid_geometry().as_point()?;
                let k = r
                    .as_service()
                    .and_then(|s| ServiceKind::ALL.iter().position(|k| *k == s.kind))
                    .unwrap_or(0);
                Some((p.lon(), p.lat(), k))
            })
            .collect();
        let shapes = areas
            .iter()
            .map(|a| resolve_area(a, &points))
            .chain(polygons.iter().map(|p| geo::Geometry::Polygon(p.clone())));
        for area in shapes {
            prop_assert_eq!(
                ids(&layer.intersecting(&area)),
                brute_intersecting(&records, &area),
                "{:?}: area {:?}",
                c,
                area
            );
        }

        // Nearest, with kinds as a filter and as a prefilter.
        for (q, k, max, kinds) in queries {
            let origin = resolve(q, &points);
            let max = resolve_max(max, origin, &points);
            let allowed: Option<BTreeSet<ServiceKind>> = kinds
                .as_ref()
                .map(|ks| ks.iter().map(|&i| kind(i)).collect());
            let keep = |r: &Record| {
                allowed
                    .as_ref()
                    .is_none_or(|a| r.as_service().is_some_and(|s| a.contains(&s.kind)))
            };
            let expected = brute_nearest(&records, origin, *k, max, keep);
            let found = ids_and_distances(&layer.nearest(origin, *k, max, keep));
            prop_assert_eq!(
                &found,
                &expected,
                "{:?}: origin {:?} k {} max {:?}",
                c,
                origin,
                k,
                max
            );
            let set = allowed.as_ref().map_or(KindSet::ANY, |a| {
                KindSet::of(&a.iter().copied().collect::<Vec<_>>())
            });
            let prefiltered =
                ids_and_distances(&layer.nearest_of_kinds(origin, *k, max, set, |_| true));
            prop_assert_eq!(&prefiltered, &expected, "{:?}: prefilter {:?}", c, allowed);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ordered_changes_and_merges_match_a_model_at_every_step(
        initial in prop::collection::vec(spec(), 0..30),
        steps in prop::collection::vec(step(), 1..14),
        areas in prop::collection::vec(area(), 1..4),
        polygons in prop::collection::vec(small_polygon(), 0..2),
        queries in prop::collection::vec(
            (
                query(),
                1_usize..=12,
                max_distance(),
                prop::option::of(prop::collection::btree_set(0_usize..14, 1..4)),
            ),
            1..4,
        ),
    ) {
        let mut model = Model::new();
        for s in &initial {
            model.insert(s.0, spec_record(s));
        }
        let mut snapshot = Snapshot::build(model.values().map(|r| (**r).clone()).collect());
        let mut jobs: Vec<MergeJob> = Vec::new();
        check_against_model(&snapshot, &model, &areas, &polygons, &queries)?;
        for step in &steps {
            let previous = (snapshot.clone(), model.clone());
            match step {
                Step::Batch(ops) => {
                    let changes: Vec<(usize, IndexChange)> = ops
                        .iter()
                        .map(|op| match op {
                            Op::Upsert(s) => upsert(s),
                            Op::Delete(pool) => delete(*pool),
                        })
                        .collect();
                    apply_to_model(&mut model, &changes);
                    let changes: Vec<IndexChange> = changes.into_iter().map(|(_, c)| c).collect();
                    snapshot = snapshot.with_changes(&changes);
                }
                Step::DeleteThenInsert(s) | Step::InsertThenDelete(s) => {
                    let changes = if matches!(step, Step::DeleteThenInsert(_)) {
                        vec![delete(s.0), upsert(s)]
                    } else {
                        vec![upsert(s), delete(s.0)]
                    };
                    apply_to_model(&mut model, &changes);
                    let changes: Vec<IndexChange> = changes.into_iter().map(|(_, c)| c).collect();
                    snapshot = snapshot.with_changes(&changes);
                    let present = snapshot
                        .unrestricted_layer(collection_of(s.0))
                        .get(&record_id(s.0))
                        .is_some();
                    prop_assert_eq!(present, matches!(step, Step::DeleteThenInsert(_)));
                }
                Step::TakeJob(services) => {
                    let c = if *services { Collection::Services } else { Collection::Settlements };
                    jobs.push(snapshot.unrestricted_layer(c).merge_job());
                }
                Step::FinishJob(i) => {
                    if !jobs.is_empty() {
                        let job = jobs.remove(i.index(jobs.len()));
                        snapshot = snapshot.with_merged(job.run());
                    }
                }
            }
            check_against_model(&snapshot, &model, &areas, &polygons, &queries)?;
            // The snapshot it started from is unchanged.
            check_against_model(&previous.0, &previous.1, &areas, &polygons, &queries)?;
        }
        for job in jobs {
            snapshot = snapshot.with_merged(job.run());
            check_against_model(&snapshot, &model, &areas, &polygons, &queries)?;
        }
        let fresh = Snapshot::build(model.values().map(|r| (**r).clone()).collect());
        prop_assert_eq!(snapshot.counts(), fresh.counts());
    }
}

#[test]
fn a_batch_applies_its_changes_in_order() {
    let x = service_record("svc-x", 12.0, 42.0, ServiceKind::Pas, 1);
    let s0 = Snapshot::build(vec![(*x).clone()]);
    let gone = || IndexChange::Delete(Collection::Services, x.id().clone());
    // Deleted then re-created (a new incarnation): there after.
    let again = service_record_meta("svc-x", 7.0, 45.0, ServiceKind::Pas, incarnation(1, 1));
    let s1 = s0.with_changes(&[gone(), IndexChange::Upsert(Arc::clone(&again))]);
    let services = s1.unrestricted_layer(Collection::Services);
    assert!(Arc::ptr_eq(services.get(x.id()).unwrap(), &again));
    assert_eq!(services.len(), 1);
    // Inserted then deleted: not there after.
    let y = service_record("svc-y", 8.0, 44.0, ServiceKind::Pas, 1);
    let s2 = s1.with_changes(&[
        IndexChange::Upsert(Arc::clone(&y)),
        IndexChange::Delete(Collection::Services, y.id().clone()),
    ]);
    let services = s2.unrestricted_layer(Collection::Services);
    assert!(services.get(y.id()).is_none());
    assert_eq!(services.len(), 1);
    assert_eq!(
        services
            .nearest(LonLat::new(8.0, 44.0).unwrap(), 5, None, |_| true)
            .len(),
        1
    );
}

#[test]
fn a_batch_larger_than_the_layer_rebuilds_it_exactly() {
    let initial: Vec<Arc<Record>> = (0..10_u8)
        .map(|i| {
            let pool = usize::from(i);
            pool_record(pool, (1, 0), &Shape::Point(7.0 + f64::from(i), 40.0), pool)
        })
        .collect();
    let s0 = Snapshot::build(initial.iter().map(|r| (**r).clone()).collect());
    let mut expected: BTreeMap<RecordId, Arc<Record>> = initial
        .iter()
        .map(|r| (r.id().clone(), Arc::clone(r)))
        .collect();
    let mut changes = Vec::new();
    for i in 0..1500_u32 {
        let (lon, lat) = (
            6.6 + f64::from(i % 120) * 0.1,
            35.5 + f64::from(i / 120) * 0.9,
        );
        let r = service_record(
            &format!("svc-bulk-{i:04}"),
            lon,
            lat,
            kind(i.try_into().unwrap()),
            1,
        );
        expected.insert(r.id().clone(), Arc::clone(&r));
        changes.push(IndexChange::Upsert(r));
    }
    // Deleted then re-created, and moved then deleted, inside the same batch.
    let again = pool_record(1, (1, 1), &Shape::Point(12.0, 42.0), 3);
    changes.push(IndexChange::Delete(Collection::Services, record_id(1)));
    changes.push(IndexChange::Upsert(Arc::clone(&again)));
    expected.insert(record_id(1), again);
    changes.push(IndexChange::Upsert(pool_record(
        2,
        (2, 0),
        &Shape::Point(13.0, 43.0),
        3,
    )));
    changes.push(IndexChange::Delete(Collection::Services, record_id(2)));
    expected.remove(&record_id(2));
    let s1 = s0.with_changes(&changes);
    let services = s1.unrestricted_layer(Collection::Services);
    assert_eq!(services.delta_len(), 0, "rebuilt, not grown");
    assert!(s1.layers_to_merge().is_empty());
    let fresh = Snapshot::build(expected.values().map(|r| (**r).clone()).collect());
    let probes = [(12.0, 42.0), (7.0, 40.0), (18.0, 46.0)];
    assert_eq!(observe(&s1, &probes), observe(&fresh, &probes));
    let fresh_services = fresh.unrestricted_layer(Collection::Services);
    assert_eq!(services.extent(), fresh_services.extent());
    assert_eq!(
        services.anonymous_extent(),
        fresh_services.anonymous_extent()
    );
    for kind in [None, Some("pas"), Some("shelter")] {
        for visible in [false, true] {
            assert_eq!(
                services.count(visible, kind),
                fresh_services.count(visible, kind)
            );
        }
    }
    assert_eq!(services.len(), 1509);
}
