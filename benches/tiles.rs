//! Tile encoding from the index (`cargo bench --bench tiles`).
//!
//! - `tile_points_z{6,10,14}`: one tile of a 1M-service layer spread uniformly over Italy's
//!   bbox, around Rome (z 6 clusters: some 75,000 records in the tile; z 10 holds about 700
//!   points, z 14 a handful), encoded from scratch each time, the cache bypassed.
//! - `tile_comuni_z{6,10,14}`: the 94 real comuni of Treviso (ISTAT boundaries from
//!   `../shared/data`; skipped with a message when absent): z 6 holds the whole province,
//!   z 10 tile 547/365, z 14 one tile inside the city of Treviso.
//! - `tile_cached_hit`: the same z 10 points tile answered from the cache (`Tiles::serve`).
//! - `tile_list_z8_14`: the uncached workload of `benches/tiles/run.sh` without HTTP: 1M
//!   services as that script loads them (a unique name each, 8 kinds, no other field) and a
//!   list of 140 random tiles over Italy, 20 at each zoom from 8 to 14, encoded one after the
//!   other (z 8 tiles hold some 12,000 points and pass 500 KB: they are clustered).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use faro::domain::{
    Attributes, GeometryRule, Meta, Record, RecordId, Service, ServiceKind, Territory,
    ValidGeometry,
};
use faro::index::Snapshot;
use faro::index::query::Visibility;
use faro::tiles::{Encoding, LayerSet, TileId, Tiles, encode};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const COMUNI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/istat/boundaries_openpolis_2023/limits_P_26_municipalities.geojson"
);

fn meta() -> Meta {
    let at = Utc.timestamp_opt(1_764_000_000, 0).unwrap();
    Meta {
        version: 1,
        created_at: at,
        updated_at: at,
    }
}

fn services(n: usize) -> Vec<Record> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let templates: Vec<Service> = ServiceKind::ALL
        .iter()
        .map(|k| {
            let s: Service = serde_json::from_value(serde_json::json!({
                "name": "Sportello informativo", "kind": k.as_str(),
                "organization": "Cooperativa sociale", "phone": "+39 0422 000000",
                "languages": ["it", "en", "fr"], "opening_hours": "Mo-Fr 09:00-13:00",
            }))
            .unwrap();
            s.validate().unwrap()
        })
        .collect();
    (0..n)
        .map(|i| {
            let point = geo::Point::new(rng.random_range(6.6..18.5), rng.random_range(36.6..47.1));
            Record::new(
                RecordId::parse(&format!("svc-{i:08x}")).unwrap(),
                ValidGeometry::new(geo::Geometry::Point(point), GeometryRule::PointOnly).unwrap(),
                Attributes::Service(templates[i % templates.len()].clone()),
                meta(),
            )
            .unwrap()
        })
        .collect()
}

/// 1M services as `benches/tiles/run.sh` loads them into PostGIS.
fn bench_points(n: usize) -> Vec<Record> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    (1..=n)
        .map(|i| {
            let point = geo::Point::new(rng.random_range(6.6..18.6), rng.random_range(36.6..47.1));
            let s: Service = serde_json::from_value(serde_json::json!({
                "name": format!("Bench service {i}"),
                "kind": ServiceKind::ALL[i % ServiceKind::ALL.len()].as_str(),
            }))
            .unwrap();
            Record::new(
                RecordId::parse(&format!("svc-bench-{i:07}")).unwrap(),
                ValidGeometry::new(geo::Geometry::Point(point), GeometryRule::PointOnly).unwrap(),
                Attributes::Service(s.validate().unwrap()),
                meta(),
            )
            .unwrap()
        })
        .collect()
}

fn comuni() -> Option<Vec<Record>> {
    let text = std::fs::read_to_string(COMUNI).ok()?;
    let fc: geojson::FeatureCollection = text.parse().ok()?;
    Some(
        fc.features
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let geometry: geo::Geometry<f64> = f.geometry.clone().unwrap().try_into().unwrap();
                let props = f.properties.as_ref().unwrap();
                let t: Territory = serde_json::from_value(serde_json::json!({
                    "name": props["name"], "level": "comune", "code": props["com_istat_code"],
                }))
                .unwrap();
                Record::new(
                    RecordId::parse(&format!("terr-{i}")).unwrap(),
                    ValidGeometry::new(geometry, GeometryRule::Areal).unwrap(),
                    Attributes::Territory(t.validate().unwrap()),
                    meta(),
                )
                .unwrap()
            })
            .collect(),
    )
}

fn bench_tile_list(c: &mut Criterion) {
    let snapshot = Arc::new(Snapshot::build(bench_points(1_000_000)));
    let view = snapshot.view(Visibility::Anonymous);
    let layers = LayerSet::parse("services").unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(20_261_201);
    let list: Vec<TileId> = (8u8..=14)
        .flat_map(|z| std::iter::repeat_n(z, 20))
        .map(|z| TileId::containing(z, rng.random_range(7.0..18.0), rng.random_range(37.5..46.5)))
        .collect();
    let (mut features, mut bytes, mut clustered) = (0, 0, 0);
    for t in &list {
        let e = encode(&view, layers, *t).unwrap();
        features += e.features;
        bytes += e.bytes.len();
        clustered += usize::from(!e.clustered.is_empty());
    }
    eprintln!(
        "tile_list_z8_14: {} tiles, {features} features, {bytes} bytes, {clustered} clustered",
        list.len()
    );
    c.bench_function("tile_list_z8_14", |b| {
        b.iter(|| {
            for t in &list {
                encode(&view, layers, *t).unwrap();
            }
        });
    });
}

fn bench_tiles(c: &mut Criterion) {
    let points = Arc::new(Snapshot::build(services(1_000_000)));
    let view = points.view(Visibility::Everything);
    let layers = LayerSet::parse("services").unwrap();
    for z in [6u8, 10, 14] {
        let t = TileId::containing(z, 12.5, 42.0);
        let encoded = encode(&view, layers, t).unwrap();
        eprintln!(
            "tile_points_z{z} {t}: {} features, {} bytes, clustered {:?}",
            encoded.features,
            encoded.bytes.len(),
            encoded.clustered
        );
        c.bench_function(&format!("tile_points_z{z}"), |b| {
            b.iter(|| encode(&view, layers, t).unwrap());
        });
    }
    let tiles = Tiles::new(64 << 20);
    let t = TileId::containing(10, 12.5, 42.0);
    let _ = tiles.serve(&view, tiles.cache().stamp(), layers, t, Encoding::Gzip);
    c.bench_function("tile_cached_hit", |b| {
        b.iter(|| {
            tiles
                .serve(&view, tiles.cache().stamp(), layers, t, Encoding::Gzip)
                .unwrap()
        });
    });

    let Some(comuni) = comuni() else {
        eprintln!("SKIPPED tile_comuni_*: {COMUNI} is not there");
        return;
    };
    let view = Arc::new(Snapshot::build(comuni)).view(Visibility::Anonymous);
    let layers = LayerSet::parse("territories").unwrap();
    for (z, lon, lat) in [(6u8, 12.2, 45.8), (10, 12.4, 45.7), (14, 12.245, 45.666)] {
        let t = TileId::containing(z, lon, lat);
        let encoded = encode(&view, layers, t).unwrap();
        eprintln!(
            "tile_comuni_z{z} {t}: {} features, {} bytes",
            encoded.features,
            encoded.bytes.len()
        );
        c.bench_function(&format!("tile_comuni_z{z}"), |b| {
            b.iter(|| encode(&view, layers, t).unwrap());
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_tile_list, bench_tiles
}
criterion_main!(benches);
