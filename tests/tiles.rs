//! Tile encoding over large and real layers, without HTTP: a million points cluster within the
//! limits and count every record exactly; the real ISTAT comuni of Treviso come back as valid
//! polygons at every zoom.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::many_single_char_names,
    clippy::cast_possible_truncation
)]

#[path = "common/skip.rs"]
mod skip;

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use faro::domain::{
    Attributes, GeometryRule, Meta, Record, RecordId, Service, Territory, ValidGeometry,
};
use faro::index::Snapshot;
use faro::index::query::Visibility;
use faro::tiles::encode::{MAX_TILE_BYTES, MAX_TILE_FEATURES, encode};
use faro::tiles::{LayerSet, TileId};
use geozero::mvt::{Message, Tile};
use rand::{Rng, SeedableRng};

fn meta() -> Meta {
    let at = Utc.timestamp_opt(1_764_000_000, 0).unwrap();
    Meta {
        version: 1,
        created_at: at,
        updated_at: at,
    }
}

fn service(id: &str, lon: f64, lat: f64, kind: &str, confidential: bool) -> Record {
    let s: Service = serde_json::from_value(
        serde_json::json!({"name": "Servizio", "kind": kind, "confidential": confidential}),
    )
    .unwrap();
    Record::new(
        RecordId::parse(id).unwrap(),
        ValidGeometry::new(
            geo::Geometry::Point(geo::Point::new(lon, lat)),
            GeometryRule::PointOnly,
        )
        .unwrap(),
        Attributes::Service(s.validate().unwrap()),
        meta(),
    )
    .unwrap()
}

/// Sums `count` over the features of a layer.
fn cluster_total(tile: &Tile, layer: &str) -> (u64, std::collections::BTreeMap<String, u64>) {
    let mut total = 0;
    let mut kinds = std::collections::BTreeMap::new();
    for l in tile.layers.iter().filter(|l| l.name == layer) {
        for f in &l.features {
            for kv in f.tags.chunks(2) {
                let key = &l.keys[kv[0] as usize];
                let n = l.values[kv[1] as usize].uint_value.unwrap();
                if key == "count" {
                    total += n;
                } else {
                    *kinds.entry(key.clone()).or_default() += n;
                }
            }
        }
    }
    (total, kinds)
}

#[test]
fn a_million_points_cluster_within_the_limits_and_count_every_record_in_the_tile() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let kinds = ["pas", "focal_point", "shelter"];
    let positions: Vec<(f64, f64, usize, bool)> = (0..1_000_000)
        .map(|_| {
            (
                rng.random_range(6.6..18.5),
                rng.random_range(36.6..47.1),
                rng.random_range(0..kinds.len()),
                rng.random_bool(0.05),
            )
        })
        .collect();
    let records: Vec<Record> = positions
        .iter()
        .enumerate()
        .map(|(i, (lon, lat, k, c))| service(&format!("svc-{i:07}"), *lon, *lat, kinds[*k], *c))
        .collect();
    let snapshot = Arc::new(Snapshot::build(records));
    let everything = snapshot.view(Visibility::Everything);
    let anonymous = snapshot.view(Visibility::Anonymous);
    let mut tiles = 0;
    for z in 5u8..=7 {
        for (lon, lat) in [(12.5, 42.0), (9.2, 45.5), (15.0, 40.0)] {
            let t = TileId::containing(z, lon, lat);
            let [w, s, e, n] = t.lonlat_bounds();
            // Brute force: records whose position is in the tile (west and north edges in).
            let inside = |p: &&(f64, f64, usize, bool)| w <= p.0 && p.0 < e && s < p.1 && p.1 <= n;
            let expected: Vec<_> = positions.iter().filter(inside).collect();
            assert!(
                expected.len() > MAX_TILE_FEATURES / 10,
                "{t}: {} records",
                expected.len()
            );
            for (view, anonymous_only) in [(&everything, false), (&anonymous, true)] {
                let encoded = encode(view, LayerSet::parse("services").unwrap(), t).unwrap();
                assert!(
                    encoded.bytes.len() <= MAX_TILE_BYTES,
                    "{t}: {} bytes",
                    encoded.bytes.len()
                );
                assert!(
                    encoded.features <= MAX_TILE_FEATURES,
                    "{t}: {} features",
                    encoded.features
                );
                let tile = Tile::decode(&encoded.bytes[..]).unwrap();
                assert!(
                    tile.layers.iter().all(|l| l.name == "services_clusters"),
                    "{t}: only clusters"
                );
                let (total, by_kind) = cluster_total(&tile, "services_clusters");
                let want: Vec<_> = expected
                    .iter()
                    .filter(|p| !anonymous_only || !p.3)
                    .collect();
                assert_eq!(total as usize, want.len(), "{t} anonymous={anonymous_only}");
                for (k, kind) in kinds.iter().enumerate() {
                    let n = want.iter().filter(|p| p.2 == k).count();
                    assert_eq!(
                        by_kind.get(&format!("count_{kind}")).copied().unwrap_or(0) as usize,
                        n,
                        "{t} {kind}"
                    );
                }
                tiles += 1;
            }
        }
    }
    assert_eq!(tiles, 18);

    // Where a tile stays within the limits, nothing is clustered: z 12 holds each point.
    let t = TileId::containing(12, 12.5, 42.0);
    let encoded = encode(&everything, LayerSet::parse("services").unwrap(), t).unwrap();
    assert!(encoded.clustered.is_empty() && encoded.features > 0, "{t}");
}

const TREVISO_COMUNI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/istat/boundaries_openpolis_2023/limits_P_26_municipalities.geojson"
);

#[test]
fn the_real_comuni_of_treviso_come_back_as_valid_polygons_at_every_zoom() {
    use geo::Validation;
    let Ok(text) = std::fs::read_to_string(TREVISO_COMUNI) else {
        skip::skip(
            "treviso comuni tiles",
            &format!("{TREVISO_COMUNI} is not there (../shared/data)"),
            "FARO_REQUIRE_SHARED_DATA",
        );
        return;
    };
    let fc: geojson::FeatureCollection = text.parse().unwrap();
    let mut records = Vec::new();
    for (i, f) in fc.features.iter().enumerate() {
        let geometry: geo::Geometry<f64> = f.geometry.clone().unwrap().try_into().unwrap();
        let props = f.properties.as_ref().unwrap();
        let t: Territory = serde_json::from_value(serde_json::json!({
            "name": props["name"], "level": "comune", "code": props["com_istat_code"],
        }))
        .unwrap();
        records.push(
            Record::new(
                RecordId::parse(&format!("terr-{i}")).unwrap(),
                ValidGeometry::new(geometry, GeometryRule::Areal).unwrap(),
                Attributes::Territory(t.validate().unwrap()),
                meta(),
            )
            .unwrap(),
        );
    }
    assert_eq!(records.len(), 94);
    let view = Arc::new(Snapshot::build(records)).view(Visibility::Anonymous);
    let layers = LayerSet::parse("territories").unwrap();
    let mut polygons = 0;
    let mut codes = std::collections::BTreeSet::new();
    for z in 6u8..=13 {
        let (x0, y0, x1, y1) = TileId::range(z, 11.75, 45.55, 12.7, 46.08);
        let step = 1 << z.saturating_sub(9);
        for x in (x0..=x1).step_by(step) {
            for y in (y0..=y1).step_by(step) {
                let t = TileId::new(z, x, y).unwrap();
                let encoded = encode(&view, layers, t).unwrap();
                if encoded.is_empty() {
                    continue;
                }
                let tile = Tile::decode(&encoded.bytes[..]).unwrap();
                for layer in &tile.layers {
                    for f in &layer.features {
                        let mut w = geozero::geo_types::GeoWriter::new();
                        geozero::mvt::process_geom(f, &mut w).unwrap();
                        let g = w.take_geometry().unwrap();
                        assert!(g.is_valid(), "{t}: {:?}", g.validation_errors());
                        polygons += 1;
                        if z == 6 {
                            let code = f
                                .tags
                                .chunks(2)
                                .find(|kv| layer.keys[kv[0] as usize] == "code")
                                .unwrap();
                            codes.insert(
                                layer.values[code[1] as usize].string_value.clone().unwrap(),
                            );
                        }
                    }
                }
            }
        }
    }
    assert_eq!(codes.len(), 94, "every comune is drawn at z 6");
    assert!(polygons > 300, "{polygons}");
}
