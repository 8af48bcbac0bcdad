//! Benchmarks of the coverage analysis on the Treviso case: the real 94 comuni of the province
//! (`../shared/data/istat/boundaries_openpolis_2023/limits_P_26_municipalities.geojson`,
//! openpolis 2023) grouped into four territories (each comune to the demo territory its
//! representative point lies in, else the nearest), dissolved; 100 services of four kinds (5
//! confidential), 5,000 settlements and 5,000 worksites, seeded, uniform over the province's
//! box.
//!
//! - `coverage_treviso`: `analysis::coverage::coverage`, the computation behind `/coverage`
//!   (every territory, the four kinds, radius 15 km), as an authorised caller;
//! - `coverage_treviso_anonymous`: the same from public services, without demand;
//! - `gaps_treviso`, `hexes_treviso_r8`: `/coverage/gaps`, `/coverage/hexes?resolution=8`;
//! - `suggest_treviso_k3_r8`: `/coverage/suggest?k=3` over H3 resolution 8 candidates;
//! - `http_coverage_uncached`, `http_coverage_cached`: `GET /coverage` through the whole app
//!   (`startup::app`, no socket) over an embedded store holding the same records: a new radius
//!   each request (never in the cache), and the same request again (from the cache).
//!
//! - `coverage_italy` (only with `FARO_BENCH_ITALY=1`, and `ogr2ogr` to read the provinces'
//!   TopoJSON): all of Italy, the 107 provinces as territories, 1,000 services and 1,000,000
//!   settlements and worksites (half each) placed in the provinces in proportion to their
//!   geodesic area; `analysis::coverage::coverage` as an authorised caller, radius 15 km.
//!
//! Targets (issue 9): `/coverage` uncached under 100 ms, cached under 1 ms; suggest with k = 3
//! at resolution 8 under 1 s. Without the data file the bench says so and measures nothing.
//! `cargo bench --bench coverage` measures; without `--bench` each case runs once, as a smoke
//! test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::web;
use chrono::{TimeZone, Utc};
use criterion::Criterion;
use faro::analysis::coverage::{self, Candidates, CoverageQuery};
use faro::catalog::Catalog;
use faro::domain::{
    Attributes, Collection, FeatureInput, Meta, Record, RecordId, ServiceKind, ValidGeometry,
};
use faro::http::AppState;
use faro::index::Snapshot;
use faro::index::query::Visibility;
use faro::storage::WriteOp;
use geo::{BoundingRect, Distance, Euclidean, InteriorPoint, Intersects};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

const COMUNI: &str = "data/istat/boundaries_openpolis_2023/limits_P_26_municipalities.geojson";
const KINDS: [ServiceKind; 4] = [
    ServiceKind::FocalPoint,
    ServiceKind::Pas,
    ServiceKind::Shelter,
    ServiceKind::HelpDesk,
];

fn read_geojson(path: &Path) -> Vec<Value> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["features"].as_array().unwrap().clone()
}

fn geometry(f: &Value) -> geo::Geometry<f64> {
    let g: geojson::Geometry = serde_json::from_value(f["geometry"].clone()).unwrap();
    geo::Geometry::try_from(g).unwrap()
}

fn multi(g: geo::Geometry<f64>) -> geo::MultiPolygon<f64> {
    match g {
        geo::Geometry::Polygon(p) => geo::MultiPolygon::new(vec![p]),
        geo::Geometry::MultiPolygon(m) => m,
        other => panic!("not areal: {other:?}"),
    }
}

/// Records as (collection, id, geometry, properties).
type Raw = (Collection, String, geo::Geometry<f64>, Value);

/// The Treviso case: territories, comuni, services, settlements and worksites.
fn treviso(comuni_path: &Path) -> Vec<Raw> {
    let demo =
        read_geojson(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/territories.geojson"));
    let demo: Vec<(String, String, geo::Geometry<f64>)> = demo
        .iter()
        .filter(|t| t["properties"]["level"] == "territory")
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["properties"]["name"].as_str().unwrap().to_owned(),
                geometry(t),
            )
        })
        .collect();
    let mut groups: Vec<Vec<geo::MultiPolygon<f64>>> = vec![Vec::new(); demo.len()];
    let mut raw = Vec::new();
    for c in read_geojson(comuni_path) {
        let g = geometry(&c);
        let p = g.interior_point().unwrap();
        let group = demo
            .iter()
            .position(|(_, _, t)| t.intersects(&p))
            .unwrap_or_else(|| {
                (0..demo.len())
                    .min_by(|&a, &b| {
                        Euclidean
                            .distance(&p, &demo[a].2)
                            .total_cmp(&Euclidean.distance(&p, &demo[b].2))
                    })
                    .unwrap()
            });
        groups[group].push(multi(g.clone()));
        let code = c["properties"]["com_istat_code"].as_str().unwrap();
        raw.push((
            Collection::Territories,
            format!("com-{code}"),
            g,
            json!({"name": c["properties"]["name"], "level": "comune", "code": code, "parent": demo[group].0}),
        ));
    }
    for ((id, name, _), parts) in demo.iter().zip(&groups) {
        let dissolved = geo::unary_union(parts);
        raw.push((
            Collection::Territories,
            id.clone(),
            geo::Geometry::MultiPolygon(dissolved),
            json!({"name": name, "level": "territory"}),
        ));
    }
    let all: Vec<geo::MultiPolygon<f64>> = groups.into_iter().flatten().collect();
    let bbox = geo::MultiPolygon::new(all.into_iter().flat_map(|m| m.0).collect())
        .bounding_rect()
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(20_261_201);
    let mut at = || {
        geo::Point::new(
            rng.random_range(bbox.min().x..bbox.max().x),
            rng.random_range(bbox.min().y..bbox.max().y),
        )
    };
    for i in 0..100 {
        raw.push((
            Collection::Services,
            format!("svc-{i:03}"),
            at().into(),
            json!({"name": format!("Servizio {i}"), "kind": KINDS[i % 4].as_str(),
                   "confidential": i % 20 == 7, "capacity": 10}),
        ));
    }
    for i in 0..5_000 {
        raw.push((
            Collection::Settlements,
            format!("set-{i:05}"),
            at().into(),
            json!({"name": format!("Insediamento {i}"), "population_estimate": 1 + i % 200}),
        ));
        raw.push((
            Collection::Worksites,
            format!("ws-{i:05}"),
            at().into(),
            json!({"name": format!("Azienda {i}"), "kind": "farm", "workers_estimate": 1 + i % 100}),
        ));
    }
    raw
}

/// The Italy case: the provinces as territories, `services` services and `demand` settlements
/// and worksites (half each) in the provinces in proportion to their area, seeded.
fn italy(provinces: &Path, services: usize, demand: usize) -> Vec<Raw> {
    use geo::GeodesicArea;
    use geo::orient::{Direction, Orient};
    let mut raw = Vec::new();
    let mut areas = Vec::new();
    for p in read_geojson(provinces) {
        let g = multi(geometry(&p));
        let code = p["properties"]["prov_istat_code"]
            .as_str()
            .unwrap()
            .to_owned();
        areas.push((
            g.orient(Direction::Default).geodesic_area_unsigned(),
            coverage::AreaIndex::new(&geo::Geometry::MultiPolygon(g.clone())),
            g.bounding_rect().unwrap(),
        ));
        raw.push((
            Collection::Territories,
            format!("prov-{code}"),
            geo::Geometry::MultiPolygon(g),
            json!({"name": p["properties"]["prov_name"], "level": "territory", "code": code}),
        ));
    }
    let total: f64 = areas.iter().map(|a| a.0).sum();
    let mut rng = ChaCha8Rng::seed_from_u64(20_261_201);
    // `n` points in the provinces in proportion to their area, each by rejection in its box.
    let mut points = |n: usize| -> Vec<geo::Point<f64>> {
        let mut out = Vec::with_capacity(n);
        for (area, index, rect) in &areas {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let k = (n as f64 * area / total).round() as usize;
            let mut placed = 0;
            while placed < k {
                let p = geo::Point::new(
                    rng.random_range(rect.min().x..rect.max().x),
                    rng.random_range(rect.min().y..rect.max().y),
                );
                if index.covers(p) {
                    out.push(p);
                    placed += 1;
                }
            }
        }
        out
    };
    for (i, at) in points(services).into_iter().enumerate() {
        raw.push((
            Collection::Services,
            format!("svc-{i:04}"),
            at.into(),
            json!({"name": format!("Servizio {i}"), "kind": KINDS[i % 4].as_str(),
                   "confidential": i % 20 == 7, "capacity": 10}),
        ));
    }
    for (i, at) in points(demand).into_iter().enumerate() {
        raw.push(if i % 2 == 0 {
            (
                Collection::Settlements,
                format!("set-{i:07}"),
                at.into(),
                json!({"name": format!("Insediamento {i}"), "population_estimate": 1 + (i / 2) % 200}),
            )
        } else {
            (
                Collection::Worksites,
                format!("ws-{i:07}"),
                at.into(),
                json!({"name": format!("Azienda {i}"), "kind": "farm", "workers_estimate": 1 + (i / 2) % 100}),
            )
        });
    }
    raw
}

/// `coverage_italy`, when `FARO_BENCH_ITALY=1` and `ogr2ogr` can read the provinces.
fn bench_italy(c: &mut Criterion, topojson: &Path) {
    if std::env::var("FARO_BENCH_ITALY").as_deref() != Ok("1") {
        println!("coverage_italy: not run (set FARO_BENCH_ITALY=1; it loads a million records)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let geojson = dir.path().join("provinces.geojson");
    let converted = std::process::Command::new("ogr2ogr")
        .args([
            "-f",
            "GeoJSON",
            "-a_srs",
            "EPSG:4326",
            "-nlt",
            "PROMOTE_TO_MULTI",
            "-makevalid",
        ])
        .arg(&geojson)
        .arg(topojson)
        .status();
    if !converted.is_ok_and(|s| s.success()) {
        println!(
            "SKIPPED coverage_italy: ogr2ogr could not convert {}",
            topojson.display()
        );
        return;
    }
    let start = Instant::now();
    let raw = italy(&geojson, 1_000, 1_000_000);
    let count = raw.len();
    let snapshot = Arc::new(Snapshot::build(records(&raw)));
    drop(raw);
    println!(
        "Italy: {count} records made and indexed in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let everything = snapshot.view(Visibility::Everything);
    let query = CoverageQuery::new(KINDS.to_vec(), 15_000.0);
    let start = Instant::now();
    let report = coverage::coverage(&everything, &query).unwrap();
    let (s, w) = (
        report.total.settlements.unwrap(),
        report.total.worksites.unwrap(),
    );
    println!(
        "Italy: {} territories, {:.0} km², {:.1} % covered, {} services, {}/{} settlements and {}/{} worksites covered, once in {:.2} s",
        report.territories.len(),
        report.total.area_km2,
        100.0 * report.total.covered_share(),
        report.total.services,
        s.covered,
        s.total,
        w.covered,
        w.total,
        start.elapsed().as_secs_f64()
    );
    let mut group = c.benchmark_group("italy");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));
    group.bench_function("coverage_italy", |b| {
        b.iter(|| coverage::coverage(black_box(&everything), black_box(&query)).unwrap());
    });
    group.finish();
}

fn parts(r: &Raw) -> (RecordId, ValidGeometry, Attributes) {
    let (collection, id, geometry, props) = r;
    (
        RecordId::parse(id).unwrap(),
        ValidGeometry::new(geometry.clone(), collection.geometry_rule()).unwrap(),
        Attributes::from_json(*collection, props.clone()).unwrap(),
    )
}

fn records(raw: &[Raw]) -> Vec<Record> {
    let at = Utc.timestamp_opt(1_764_000_000, 0).unwrap();
    raw.iter()
        .map(|r| {
            let (id, geometry, attributes) = parts(r);
            let meta = Meta {
                version: 1,
                created_at: at,
                updated_at: at,
            };
            Record::new(id, geometry, attributes, meta).unwrap()
        })
        .collect()
}

async fn catalog(raw: &[Raw], dir: &tempfile::TempDir) -> Arc<Catalog> {
    let url = format!("sqlite://{}", dir.path().join("faro.db").display());
    let store = faro::storage::open(&url, 2).await.unwrap();
    let catalog = Catalog::open(store).await.unwrap();
    let ops: Vec<WriteOp> = raw
        .iter()
        .map(|r| {
            let (id, geometry, attributes) = parts(r);
            WriteOp::insert(
                r.0,
                FeatureInput {
                    id: Some(id),
                    geometry,
                    attributes,
                },
            )
        })
        .collect();
    catalog.write(ops, "bench").await.unwrap();
    catalog
}

fn bench_analysis(c: &mut Criterion, snapshot: &Arc<Snapshot>) {
    let everything = snapshot.view(Visibility::Everything);
    let anonymous = snapshot.view(Visibility::Anonymous);
    let query = CoverageQuery::new(KINDS.to_vec(), 15_000.0);
    let report = coverage::coverage(&everything, &query).unwrap();
    for t in &report.territories {
        let s = t.settlements.unwrap();
        println!(
            "{}: {:.1} km², {:.1} % covered, {} services, {}/{} settlements covered",
            t.territory.as_ref().unwrap().id(),
            t.area_km2,
            100.0 * t.covered_share(),
            t.services,
            s.covered,
            s.total
        );
    }
    c.bench_function("coverage_treviso", |b| {
        b.iter(|| coverage::coverage(black_box(&everything), black_box(&query)).unwrap());
    });
    c.bench_function("coverage_treviso_anonymous", |b| {
        b.iter(|| coverage::coverage(black_box(&anonymous), black_box(&query)).unwrap());
    });
    c.bench_function("gaps_treviso", |b| {
        b.iter(|| coverage::gaps(black_box(&everything), black_box(&query)).unwrap());
    });
    let r8 = h3o::Resolution::Eight;
    println!(
        "hexes at resolution 8: {}",
        coverage::hexes(&everything, &query, r8).unwrap().len()
    );
    c.bench_function("hexes_treviso_r8", |b| {
        b.iter(|| coverage::hexes(black_box(&everything), black_box(&query), r8).unwrap());
    });
    // Suggestions where there is something to suggest: focal points only.
    let focal = CoverageQuery::new(vec![ServiceKind::FocalPoint], 15_000.0);
    let s = coverage::suggest(&everything, &focal, Candidates::Hexes(r8), 3).unwrap();
    println!(
        "suggest k=3 r8: {} candidates, {} uncovered people, gains {:?}",
        s.candidates,
        s.uncovered_people,
        s.suggestions
            .iter()
            .map(|g| g.people + g.workers)
            .collect::<Vec<_>>()
    );
    c.bench_function("suggest_treviso_k3_r8", |b| {
        b.iter(|| {
            coverage::suggest(
                black_box(&everything),
                black_box(&focal),
                Candidates::Hexes(r8),
                3,
            )
            .unwrap()
        });
    });
}

fn bench_http(c: &mut Criterion, catalog: Arc<Catalog>, admin: &str) {
    let state = web::Data::new(AppState::new(catalog));
    let rt = actix_web::rt::System::new();
    let app = rt.block_on(init_service(faro::startup::app(state.clone())));
    let uri =
        |radius: u32| format!("/coverage?kind=focal_point,pas,shelter,help_desk&radius_m={radius}");
    let get = |uri: String| {
        TestRequest::get()
            .uri(&uri)
            .insert_header(("Authorization", format!("Bearer {admin}")))
            .to_request()
    };
    rt.block_on(async {
        let res = call_service(&app, get(uri(15_000))).await;
        assert!(res.status().is_success(), "{}", res.status());
        println!("/coverage: {} bytes of body", read_body(res).await.len());
    });
    let mut radius = 15_000;
    c.bench_function("http_coverage_uncached", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    // A radius never asked before: never in the cache.
                    radius += 1;
                    let res = call_service(&app, get(uri(radius))).await;
                    black_box(read_body(res).await);
                }
                start.elapsed()
            })
        });
    });
    c.bench_function("http_coverage_cached", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let res = call_service(&app, get(uri(15_000))).await;
                    black_box(read_body(res).await);
                }
                start.elapsed()
            })
        });
    });
}

fn main() {
    // `../shared` beside the main checkout; `../../shared` beside a worktree of it.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(path) = ["../shared", "../../shared"]
        .iter()
        .map(|up| root.join(up).join(COMUNI))
        .find(|p| p.is_file())
    else {
        println!("SKIPPED benches/coverage.rs: no ../shared/{COMUNI} (the shared ISTAT data)");
        return;
    };
    let path = path.as_path();
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(8))
        .sample_size(20)
        .configure_from_args();
    let raw = treviso(path);
    let snapshot = Arc::new(Snapshot::build(records(&raw)));
    bench_analysis(&mut c, &snapshot);
    let provinces = path.with_file_name("limits_IT_provinces.topo.json");
    if provinces.is_file() {
        bench_italy(&mut c, &provinces);
    } else {
        println!("SKIPPED coverage_italy: no {}", provinces.display());
    }

    let dir = tempfile::tempdir().unwrap();
    let rt = actix_web::rt::System::new();
    let (catalog, admin) = rt.block_on(async {
        let catalog = catalog(&raw, &dir).await;
        let secret = faro::tokens::generate_secret().unwrap();
        catalog
            .store()
            .create_token(
                "bench admin",
                faro::domain::Role::Admin,
                &faro::tokens::hash_secret(&secret),
            )
            .await
            .unwrap();
        (catalog, secret)
    });
    bench_http(&mut c, catalog, &admin);
    c.final_summary();
}
