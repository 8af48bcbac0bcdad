//! Benchmarks of faro's request path in process: what `/nearest` costs besides the index search.
//!
//! - `feature_json_k5`: five service features with `distance_m`, as `/nearest?k=5` returns
//!   them, serialised to JSON (`FeatureView`, the same records as `benches/postgis/run.sh`
//!   loads: a name, a kind, every other attribute unset);
//! - `http_healthz`: `GET /healthz` through `startup::app` (every middleware, the router, the
//!   handler), no socket: the fixed cost of any request;
//! - `http_nearest_k5`: `GET /nearest?lon=..&lat=..&k=5` from random points in Italy the same
//!   way, over a catalog of `SERVICES` services on an embedded store;
//! - `http_nearest_k5_fixed`: the same from one point, so the search stays in cache.
//!
//! `cargo bench --bench http` measures; without `--bench` (as under `cargo test
//! --all-targets`) each benchmark runs once over 2,000 services, as a smoke test. The
//! socket, the HTTP/1 codec and the load generator are not here: `benches/postgis/run.sh`
//! measures those over loopback.

// A bench may panic when its setup fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::web;
use chrono::{TimeZone, Utc};
use criterion::Criterion;
use faro::catalog::Catalog;
use faro::domain::feature::FeatureView;
use faro::domain::geometry::GeometryRule;
use faro::domain::{
    Attributes, Collection, FeatureInput, Meta, Record, RecordId, Service, ValidGeometry,
};
use faro::http::AppState;
use faro::storage::WriteOp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

const SERVICES: usize = 100_000;
const SMOKE_SERVICES: usize = 2_000;
const QUERIES: usize = 4096;
const KINDS: [&str; 8] = [
    "focal_point",
    "pas",
    "shelter",
    "help_desk",
    "job_centre",
    "health",
    "social_services",
    "other",
];

/// The attributes `benches/postgis/run.sh` gives its services.
fn service(i: usize) -> Service {
    let s: Service = serde_json::from_value(
        json!({"name": format!("Bench service {i}"), "kind": KINDS[i % KINDS.len()]}),
    )
    .unwrap();
    s.validate().unwrap()
}

fn point(lon: f64, lat: f64) -> ValidGeometry {
    ValidGeometry::new(
        geo::Geometry::Point(geo::Point::new(lon, lat)),
        GeometryRule::PointOnly,
    )
    .unwrap()
}

fn random_lon_lat(rng: &mut ChaCha8Rng) -> (f64, f64) {
    (
        rng.random_range(6.6..18.6_f64),
        rng.random_range(36.6..47.1_f64),
    )
}

fn bench_feature_json(c: &mut Criterion) {
    // Microsecond timestamps, as PostgreSQL's now() gives them.
    let at = Utc.timestamp_opt(1_764_000_000, 123_456_000).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let records: Vec<Record> = (0..5)
        .map(|i| {
            let (lon, lat) = random_lon_lat(&mut rng);
            Record::new(
                RecordId::parse(&format!("svc-bench-{:07}", 30_047 + i)).unwrap(),
                point(lon, lat),
                Attributes::Service(service(30_047 + i)),
                Meta {
                    version: 1,
                    created_at: at,
                    updated_at: at,
                },
            )
            .unwrap()
        })
        .collect();
    let extras: Vec<[(&'static str, Value); 1]> = (0..5)
        .map(|i| [("distance_m", json!(223.288 + 100.0 * f64::from(i)))])
        .collect();
    let features: Vec<FeatureView> = records
        .iter()
        .zip(&extras)
        .map(|(r, e)| FeatureView::with_extra(r, e))
        .collect();
    println!(
        "feature_json_k5: {} bytes of JSON",
        serde_json::to_vec(&features).unwrap().len()
    );
    c.bench_function("feature_json_k5", |b| {
        b.iter(|| serde_json::to_vec(black_box(&features)).unwrap());
    });
}

/// A catalog of `n` services uniform over Italy on a fresh embedded store.
async fn catalog(n: usize, dir: &tempfile::TempDir) -> Arc<Catalog> {
    let url = format!("sqlite://{}", dir.path().join("faro.db").display());
    let store = faro::storage::open(&url, 2).await.unwrap();
    let catalog = Catalog::open(store).await.unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(20_261_201);
    let ops: Vec<WriteOp> = (0..n)
        .map(|i| {
            let (lon, lat) = random_lon_lat(&mut rng);
            WriteOp::insert(
                Collection::Services,
                FeatureInput {
                    id: Some(RecordId::parse(&format!("svc-bench-{i:07}")).unwrap()),
                    geometry: point(lon, lat),
                    attributes: Attributes::Service(service(i)),
                },
            )
        })
        .collect();
    catalog.write(ops, "bench").await.unwrap();
    catalog
}

/// Times `iters` requests to `uris` (in turn) through the whole in-process app.
fn bench_requests(c: &mut Criterion, name: &str, state: &web::Data<AppState>, uris: &[String]) {
    let rt = actix_web::rt::System::new();
    let app = rt.block_on(init_service(faro::startup::app(state.clone())));
    // Each answer checked once, outside the timing.
    rt.block_on(async {
        let res = call_service(&app, TestRequest::get().uri(&uris[0]).to_request()).await;
        assert!(res.status().is_success(), "{name}: {}", res.status());
        let body = read_body(res).await;
        println!("{name}: {} bytes of body", body.len());
    });
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for (i, uri) in (0..iters).zip(uris.iter().cycle()) {
                    let res = call_service(&app, TestRequest::get().uri(uri).to_request()).await;
                    black_box(read_body(res).await);
                    black_box(i);
                }
                start.elapsed()
            })
        });
    });
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let n = if measuring { SERVICES } else { SMOKE_SERVICES };
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(8))
        .configure_from_args();

    bench_feature_json(&mut c);

    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let rt = actix_web::rt::System::new();
    let catalog = rt.block_on(catalog(n, &dir));
    println!(
        "catalog: {n} services in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let state = web::Data::new(AppState::new(catalog));
    bench_requests(&mut c, "http_healthz", &state, &["/healthz".to_owned()]);
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let uris: Vec<String> = (0..QUERIES)
        .map(|_| {
            let (lon, lat) = random_lon_lat(&mut rng);
            format!("/nearest?lon={lon:.6}&lat={lat:.6}&k=5")
        })
        .collect();
    bench_requests(&mut c, "http_nearest_k5", &state, &uris);
    bench_requests(
        &mut c,
        "http_nearest_k5_fixed",
        &state,
        &["/nearest?lon=12.24&lat=45.67&k=5".to_owned()],
    );
    c.final_summary();
}
