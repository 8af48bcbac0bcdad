//! Tile encoding over large and real layers, without HTTP: a million points cluster within the
//! limits and count every record exactly; the real ISTAT comuni of Treviso come back as valid
//! polygons at every zoom.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::many_single_char_names,
    clippy::cast_possible_truncation,
    clippy::too_many_lines
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

/// The size of an unclustered `services` tile holding `ids`, every one a `Servizio` of kind
/// `pas` at tile position `at`: an independent encoder (geozero's `TagsBuilder` and `ToMvt`,
/// the tags `id`, `name`, `kind`). Every feature's tags take the same bytes whichever
/// record it is, so the order of the features does not change the size.
fn reference_size(ids: &[String], at: geo::Point<f64>) -> usize {
    use geozero::ToMvt;
    use geozero::mvt::{TagsBuilder, TileValue, tile};
    let mut tags = TagsBuilder::new();
    let mut features = Vec::new();
    for id in ids {
        let mut f = geo::Geometry::Point(at).to_mvt_unscaled().unwrap();
        for (k, v) in [("id", id.as_str()), ("name", "Servizio"), ("kind", "pas")] {
            let (k, v) = tags.insert_ref(k, TileValue::Str(v.to_owned()));
            f.tags.extend([k, v]);
        }
        features.push(f);
    }
    let (keys, values) = tags.into_tags();
    Tile {
        layers: vec![tile::Layer {
            version: 2,
            name: "services".into(),
            features,
            keys,
            values: values.into_iter().map(Into::into).collect(),
            extent: Some(4096),
        }],
    }
    .encoded_len()
}

#[test]
fn points_are_kept_up_to_the_byte_limit_exactly_and_clustered_one_byte_past_it() {
    let t = TileId::containing(14, 12.5, 42.0);
    let [w, s, e, n] = t.lonlat_bounds();
    let (lon, lat) = (f64::midpoint(w, e), f64::midpoint(s, n));
    let layers = LayerSet::parse("services").unwrap();
    let encode_ids = |ids: &[String]| {
        let records: Vec<Record> = ids
            .iter()
            .map(|id| service(id, lon, lat, "pas", false))
            .collect();
        let snapshot = Arc::new(Snapshot::build(records));
        encode(&snapshot.view(Visibility::Everything), layers, t).unwrap()
    };
    // Where the records land in the tile: from a tile of one.
    let one = Tile::decode(&encode_ids(&["svc-0".to_owned()]).bytes[..]).unwrap();
    let mut w = geozero::geo_types::GeoWriter::new();
    geozero::mvt::process_geom(&one.layers[0].features[0], &mut w).unwrap();
    let geo::Geometry::Point(at) = w.take_geometry().unwrap() else {
        panic!("a point");
    };
    let ids = |n: usize| -> Vec<String> { (0..n).map(|i| format!("svc-{i:07}")).collect() };
    // The most records of ids of one length that fit (binary search on the reference).
    let (mut lo, mut hi) = (1, 40_000);
    assert!(reference_size(&ids(hi), at) > MAX_TILE_BYTES);
    while hi - lo > 1 {
        let mid = usize::midpoint(lo, hi);
        if reference_size(&ids(mid), at) <= MAX_TILE_BYTES {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    // Lengthen the last id until the tile is exactly at the limit, then one byte past it.
    let mut at_limit = ids(lo);
    let slack = MAX_TILE_BYTES - reference_size(&at_limit, at);
    at_limit.last_mut().unwrap().push_str(&"x".repeat(slack));
    assert_eq!(reference_size(&at_limit, at), MAX_TILE_BYTES);
    let mut past = at_limit.clone();
    past.last_mut().unwrap().push('x');
    assert_eq!(reference_size(&past, at), MAX_TILE_BYTES + 1);

    let kept = encode_ids(&at_limit);
    assert!(kept.clustered.is_empty(), "{lo} records, at the limit");
    assert_eq!(kept.bytes.len(), MAX_TILE_BYTES);
    assert_eq!(kept.features, lo);
    let tile = Tile::decode(&kept.bytes[..]).unwrap();
    let layer = &tile.layers[0];
    let id_key = layer.keys.iter().position(|k| k == "id").unwrap();
    let mut found: Vec<String> = layer
        .features
        .iter()
        .map(|f| {
            let kv = f
                .tags
                .chunks(2)
                .find(|kv| kv[0] as usize == id_key)
                .unwrap();
            layer.values[kv[1] as usize].string_value.clone().unwrap()
        })
        .collect();
    found.sort();
    let mut want = at_limit.clone();
    want.sort();
    assert_eq!(found, want, "every record is in the tile");

    let clustered = encode_ids(&past);
    assert_eq!(
        clustered.clustered,
        vec![faro::domain::Collection::Services]
    );
    let tile = Tile::decode(&clustered.bytes[..]).unwrap();
    assert_eq!(cluster_total(&tile, "services_clusters").0 as usize, lo);
}

#[test]
fn features_carry_the_display_fields_of_their_records_each_value_once_per_layer() {
    use faro::domain::{Settlement, Worksite};
    use std::collections::{BTreeMap, BTreeSet};
    let (lon, lat) = (12.5, 42.0);
    let point = |dx: f64| {
        ValidGeometry::new(
            geo::Geometry::Point(geo::Point::new(lon + dx, lat)),
            GeometryRule::PointOrPolygon,
        )
        .unwrap()
    };
    let record = |id: &str, dx: f64, attributes: Attributes| {
        Record::new(RecordId::parse(id).unwrap(), point(dx), attributes, meta()).unwrap()
    };
    let service = |v: serde_json::Value| {
        Attributes::Service(
            serde_json::from_value::<Service>(v)
                .unwrap()
                .validate()
                .unwrap(),
        )
    };
    let full = serde_json::json!({
        "name": "Sportello", "kind": "pas", "organization": "Cooperativa", "address": "Via Roma 1",
        "phone": "+39 06 000000", "languages": ["it", "en"], "opening_hours": "Mo-Fr 09:00-13:00",
        "description": "never in a tile", "email": "a@example.org",
    });
    let records = vec![
        record("svc-a", 0.0, service(full)),
        record(
            "svc-b",
            0.0001,
            service(serde_json::json!({"name": "Sportello", "kind": "shelter", "languages": ["it", "en"]})),
        ),
        record(
            "set-a",
            0.0002,
            Attributes::Settlement(
                serde_json::from_value::<Settlement>(serde_json::json!({
                    "name": "Borgo", "population_estimate": 40, "season": [6, 7, 8], "notes": "no",
                }))
                .unwrap()
                .validate()
                .unwrap(),
            ),
        ),
        record(
            "set-b",
            0.0003,
            Attributes::Settlement(
                serde_json::from_value::<Settlement>(
                    serde_json::json!({"name": "Casale", "population_estimate": 40}),
                )
                .unwrap()
                .validate()
                .unwrap(),
            ),
        ),
        record(
            "wrk-a",
            0.0004,
            Attributes::Worksite(
                serde_json::from_value::<Worksite>(serde_json::json!({
                    "name": "Serra", "kind": "greenhouse", "workers_estimate": 40, "peak_months": [7, 8],
                }))
                .unwrap()
                .validate()
                .unwrap(),
            ),
        ),
        Record::new(
            RecordId::parse("terr-a").unwrap(),
            ValidGeometry::new(
                geo::Geometry::Polygon(geo::Polygon::new(
                    geo::LineString::from(vec![
                        (lon - 0.01, lat - 0.01),
                        (lon + 0.01, lat - 0.01),
                        (lon + 0.01, lat + 0.01),
                        (lon - 0.01, lat + 0.01),
                        (lon - 0.01, lat - 0.01),
                    ]),
                    vec![],
                )),
                GeometryRule::Areal,
            )
            .unwrap(),
            Attributes::Territory(
                serde_json::from_value::<Territory>(
                    serde_json::json!({"name": "Roma", "level": "comune", "code": "058091"}),
                )
                .unwrap()
                .validate()
                .unwrap(),
            ),
            meta(),
        )
        .unwrap(),
    ];
    let view = Arc::new(Snapshot::build(records)).view(Visibility::Everything);
    let t = TileId::containing(14, lon, lat);
    let tile = Tile::decode(&encode(&view, LayerSet::ALL, t).unwrap().bytes[..]).unwrap();
    let mut got: BTreeMap<String, (String, BTreeMap<String, String>)> = BTreeMap::new();
    for layer in &tile.layers {
        let keys: BTreeSet<&String> = layer.keys.iter().collect();
        assert_eq!(keys.len(), layer.keys.len(), "{}: keys once", layer.name);
        let values: BTreeSet<String> = layer.values.iter().map(|v| format!("{v:?}")).collect();
        assert_eq!(
            values.len(),
            layer.values.len(),
            "{}: values once",
            layer.name
        );
        for f in &layer.features {
            let props: BTreeMap<String, String> = f
                .tags
                .chunks(2)
                .map(|kv| {
                    let v = &layer.values[kv[1] as usize];
                    let text = v
                        .string_value
                        .clone()
                        .or_else(|| v.uint_value.map(|n| format!("#{n}")))
                        .unwrap();
                    (layer.keys[kv[0] as usize].clone(), text)
                })
                .collect();
            got.insert(props["id"].clone(), (layer.name.clone(), props));
        }
    }
    // Validation keeps a service's languages in code order: `en,it`.
    let want = |layer: &str, pairs: &[(&str, &str)]| {
        (
            layer.to_owned(),
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    let expected: BTreeMap<String, (String, BTreeMap<String, String>)> = [
        (
            "svc-a",
            want(
                "services",
                &[
                    ("id", "svc-a"),
                    ("name", "Sportello"),
                    ("kind", "pas"),
                    ("organization", "Cooperativa"),
                    ("address", "Via Roma 1"),
                    ("phone", "+39 06 000000"),
                    ("languages", "en,it"),
                    ("opening_hours", "Mo-Fr 09:00-13:00"),
                ],
            ),
        ),
        (
            "svc-b",
            want(
                "services",
                &[
                    ("id", "svc-b"),
                    ("name", "Sportello"),
                    ("kind", "shelter"),
                    ("languages", "en,it"),
                ],
            ),
        ),
        (
            "set-a",
            want(
                "settlements",
                &[
                    ("id", "set-a"),
                    ("name", "Borgo"),
                    ("population_estimate", "#40"),
                    ("season", "6,7,8"),
                ],
            ),
        ),
        (
            "set-b",
            want(
                "settlements",
                &[
                    ("id", "set-b"),
                    ("name", "Casale"),
                    ("population_estimate", "#40"),
                ],
            ),
        ),
        (
            "wrk-a",
            want(
                "worksites",
                &[
                    ("id", "wrk-a"),
                    ("name", "Serra"),
                    ("kind", "greenhouse"),
                    ("workers_estimate", "#40"),
                    ("peak_months", "7,8"),
                ],
            ),
        ),
        (
            "terr-a",
            want(
                "territories",
                &[
                    ("id", "terr-a"),
                    ("name", "Roma"),
                    ("level", "comune"),
                    ("code", "058091"),
                ],
            ),
        ),
    ]
    .into_iter()
    .map(|(id, v)| (id.to_owned(), v))
    .collect();
    assert_eq!(got, expected);
}
