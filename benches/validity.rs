//! Benchmarks of polygon validation (`faro::domain::validity`) against `geo::Validation`.
//!
//! - `faro/10k`, `faro/100k`, `faro/1m`: `check_polygon` on a valid star-shaped ring of that
//!   many corners (a circle of radius 0.1 degrees around Treviso, radii jittered by up to two
//!   corner spacings, like a surveyed boundary);
//! - `faro/valid_geometry_100k`: the same 100k ring through `ValidGeometry::new_capped` (type,
//!   cap, lon/lat range, validity; the clone it takes is outside the timing);
//! - `geo/10k`: `geo::Validation::is_valid` on the 10k ring, for the ratio;
//! - `crowded/10k`, `crowded/20k`: a comb of radial spikes (radii jittered by 30 %, thousands
//!   of times the corner spacing), the shape where many segment boxes overlap and the
//!   candidate search is no longer near linear;
//! - `real/veneto_union`: the dissolved union of every comune of Veneto (ISTAT, openpolis
//!   2023) when `../shared/data/istat/boundaries_openpolis_2023` is there.
//!
//! Before the timings, the growth of the peak resident set during one validation of the 1M
//! ring (Linux `VmHWM`), as the memory a validation needs.
//!
//! `cargo bench --bench validity` measures; without `--bench` (as under `cargo test
//! --all-targets`) each benchmark runs once, as a smoke test.

// A bench may panic when its setup fails, and prints counts as floating-point figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use faro::domain::validity::{check_multi_polygon, check_polygon};
use faro::domain::{GeometryRule, ValidGeometry};
use geo::{Coord, CoordsIter, LineString, MultiPolygon, Polygon, Validation};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A star-shaped ring of `n` corners around Treviso, radius 0.1 degrees, radii jittered by
/// up to `jitter` (a fraction of the radius): each segment stays in its own angular wedge, so
/// the ring is simple.
fn star(n: usize, jitter: f64, seed: u64) -> Polygon<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let coords: Vec<Coord<f64>> = (0..n)
        .map(|i| {
            let angle = std::f64::consts::TAU * i as f64 / n as f64;
            let r = 0.1 * (1.0 + jitter * rng.random::<f64>());
            Coord {
                x: 12.2 + r * angle.cos(),
                y: 45.7 + r * angle.sin(),
            }
        })
        .collect();
    Polygon::new(LineString::new(coords), vec![])
}

/// Jittered by up to two corner spacings.
fn boundary(n: usize) -> Polygon<f64> {
    star(n, 2.0 * std::f64::consts::TAU / n as f64, n as u64)
}

fn peak_resident_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn memory_report(polygon: &Polygon<f64>) {
    let Some(before) = peak_resident_kb() else {
        println!("memory: /proc/self/status has no VmHWM here");
        return;
    };
    let started = Instant::now();
    assert!(check_polygon(polygon).is_ok());
    let elapsed = started.elapsed();
    let after = peak_resident_kb().unwrap_or(before);
    let positions = polygon.exterior().0.len();
    println!(
        "memory: one validation of {positions} positions took {:.2} s and raised the peak \
         resident set by {:.1} MB ({:.0} bytes/position; the polygon itself is 16)",
        elapsed.as_secs_f64(),
        (after - before) as f64 / 1024.0,
        (after - before) as f64 * 1024.0 / positions as f64,
    );
}

fn bench_faro(c: &mut Criterion, rings: &[(&str, Polygon<f64>)]) {
    let mut group = c.benchmark_group("faro");
    group.sample_size(10);
    for (name, polygon) in rings {
        group.bench_function(*name, |b| {
            b.iter(|| check_polygon(black_box(polygon)).is_ok());
        });
    }
    let (_, p100k) = &rings[1];
    group.bench_function("valid_geometry_100k", |b| {
        b.iter_batched(
            || geo::Geometry::Polygon(p100k.clone()),
            |g| ValidGeometry::new_capped(g, GeometryRule::Areal, usize::MAX).is_ok(),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn bench_geo(c: &mut Criterion, polygon: &Polygon<f64>) {
    let mut group = c.benchmark_group("geo");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("10k", |b| b.iter(|| black_box(polygon).is_valid()));
    group.finish();
}

fn bench_crowded(c: &mut Criterion) {
    let mut group = c.benchmark_group("crowded");
    group.sample_size(10);
    for (name, n) in [("10k", 10_000), ("20k", 20_000)] {
        let comb = star(n, 0.3, 3);
        assert!(check_polygon(&comb).is_ok());
        group.bench_function(name, |b| b.iter(|| check_polygon(black_box(&comb)).is_ok()));
    }
    group.finish();
}

fn veneto_union() -> Option<MultiPolygon<f64>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let file = ["../shared", "../../shared"]
        .iter()
        .map(|up| {
            root.join(up)
                .join("data/istat/boundaries_openpolis_2023/limits_R_5_municipalities.geojson")
        })
        .find(|f| f.is_file())?;
    let collection: geojson::FeatureCollection =
        std::fs::read_to_string(file).ok()?.parse().ok()?;
    let mut parts: Vec<Polygon<f64>> = Vec::new();
    for feature in collection.features {
        match geo::Geometry::<f64>::try_from(feature.geometry?).ok()? {
            geo::Geometry::Polygon(p) => parts.push(p),
            geo::Geometry::MultiPolygon(mp) => parts.extend(mp.0),
            _ => {}
        }
    }
    Some(geo::unary_union(parts.iter()))
}

fn bench_real(c: &mut Criterion) {
    let Some(union) = veneto_union() else {
        println!("real/veneto_union: skipped, no ../shared/data/istat boundaries");
        return;
    };
    let verdict = check_multi_polygon(&union);
    println!(
        "real/veneto_union: {} polygons, {} positions, faro says {verdict:?}, geo says valid: {}",
        union.0.len(),
        union.coords_count(),
        union.is_valid()
    );
    let mut group = c.benchmark_group("real");
    group.sample_size(10);
    group.bench_function("veneto_union", |b| {
        b.iter(|| check_multi_polygon(black_box(&union)).is_ok());
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let rings = [
        ("10k", boundary(10_000)),
        ("100k", boundary(100_000)),
        ("1m", boundary(1_000_000)),
    ];
    memory_report(&rings[2].1);
    for (name, polygon) in &rings {
        assert!(check_polygon(polygon).is_ok(), "{name} ring is not valid");
    }
    bench_faro(&mut c, &rings);
    bench_geo(&mut c, &rings[0].1);
    bench_crowded(&mut c);
    bench_real(&mut c);
    c.final_summary();
}
