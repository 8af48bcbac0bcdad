//! Benchmarks of reading and validating import files (`faro::io::prepare`) and of writing a
//! GeoPackage export (`faro::io::export::write_gpkg`), on seeded points over the Province of
//! Treviso:
//!
//! - `prepare/geojson_100k`, `prepare/csv_100k`: 100,000 services read, mapped, validated
//!   (GeoJSON streamed);
//! - `export/gpkg_100k`: the same 100,000 records written as a GeoPackage.
//!
//! The 1M-point figures with the store write, and against `ogr2ogr`, come from
//! `scripts/bench_import.sh`. `cargo bench --bench import` measures; without `--bench` each
//! benchmark runs once, as a smoke test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;

use criterion::Criterion;
use faro::domain::{Collection, Meta, Record};
use faro::io::ReadOptions;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N: usize = 100_000;

fn points(n: usize) -> Vec<(f64, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(20_261_201);
    (0..n)
        .map(|_| {
            (
                rng.random_range(11.74..12.69),
                rng.random_range(45.53..46.08),
            )
        })
        .collect()
}

fn write_files(dir: &std::path::Path, pts: &[(f64, f64)]) {
    let mut gj = std::io::BufWriter::new(std::fs::File::create(dir.join("p.geojson")).unwrap());
    let mut csv = std::io::BufWriter::new(std::fs::File::create(dir.join("p.csv")).unwrap());
    gj.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[\n")
        .unwrap();
    writeln!(csv, "id,name,kind,lon,lat").unwrap();
    for (i, (lon, lat)) in pts.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        writeln!(gj, "{sep}{{\"type\":\"Feature\",\"id\":\"svc-{i}\",\"geometry\":{{\"type\":\"Point\",\"coordinates\":[{lon},{lat}]}},\"properties\":{{\"name\":\"Servizio {i}\",\"kind\":\"pas\"}}}}").unwrap();
        writeln!(csv, "svc-{i},Servizio {i},pas,{lon},{lat}").unwrap();
    }
    gj.write_all(b"]}\n").unwrap();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &points(N));
    let bar = indicatif::ProgressBar::hidden();
    let mut group = c.benchmark_group("prepare");
    group.sample_size(10);
    for (name, file) in [("geojson_100k", "p.geojson"), ("csv_100k", "p.csv")] {
        let path = dir.path().join(file);
        group.bench_function(name, |b| {
            b.iter(|| {
                let (inputs, report) = faro::io::prepare(
                    black_box(&path),
                    Collection::Services,
                    ReadOptions::default(),
                    &bar,
                )
                .unwrap();
                assert!(report.is_empty() && inputs.len() == N);
                inputs
            });
        });
    }
    group.finish();
    let (inputs, _) = faro::io::prepare(
        &dir.path().join("p.csv"),
        Collection::Services,
        ReadOptions::default(),
        &bar,
    )
    .unwrap();
    let now = chrono::Utc::now();
    let meta = Meta {
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let records: Vec<Arc<Record>> = inputs
        .into_iter()
        .map(|f| {
            Arc::new(Record::new(f.id.unwrap(), f.geometry, f.attributes, meta.clone()).unwrap())
        })
        .collect();
    let mut group = c.benchmark_group("export");
    group.sample_size(10);
    let out = dir.path().join("out.gpkg");
    group.bench_function("gpkg_100k", |b| {
        b.iter(|| {
            faro::io::export::write_gpkg(Collection::Services, black_box(&records), &out).unwrap()
        });
    });
    group.finish();
    c.final_summary();
}
