//! Vector tiles through HTTP: the tile holds what `/items?bbox=` finds, polygons come back
//! valid, an edit shows in the next tile, restricted records never reach an anonymous tile,
//! TileJSON and the style describe them, and the cache answers 304 and gzip correctly.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use faro::tiles::TileId;
use geozero::mvt::{Message, Tile, tile};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::helpers::{TestApp, ids, spawn_app};

/// One decoded feature: its properties as text, its geometry in tile units.
#[derive(Debug)]
pub struct Decoded {
    pub properties: BTreeMap<String, String>,
    pub geometry: geo::Geometry<f64>,
}

fn value_text(v: &tile::Value) -> String {
    if let Some(s) = &v.string_value {
        return s.clone();
    }
    v.uint_value
        .map(|n| n.to_string())
        .or(v.int_value.map(|n| n.to_string()))
        .or(v.sint_value.map(|n| n.to_string()))
        .or(v.double_value.map(|n| n.to_string()))
        .or(v.float_value.map(|n| n.to_string()))
        .or(v.bool_value.map(|b| b.to_string()))
        .unwrap_or_default()
}

/// Decodes a tile with geozero (the crate faro encodes with, used here only as a reader),
/// checking MVT 2.1 structure on the way: version 2, extent 4096, tags in pairs that index
/// the key and value tables, geometry that decodes (exterior rings with positive area).
pub fn decode(bytes: &[u8]) -> BTreeMap<String, Vec<Decoded>> {
    let tile = Tile::decode(bytes).expect("a protobuf tile");
    let mut out = BTreeMap::new();
    for layer in tile.layers {
        assert_eq!(layer.version, 2, "layer {}", layer.name);
        assert_eq!(layer.extent, Some(4096), "layer {}", layer.name);
        let mut features = Vec::new();
        for f in &layer.features {
            assert_eq!(f.tags.len() % 2, 0);
            let properties = f
                .tags
                .chunks(2)
                .map(|kv| {
                    (
                        layer.keys[kv[0] as usize].clone(),
                        value_text(&layer.values[kv[1] as usize]),
                    )
                })
                .collect();
            let mut writer = geozero::geo_types::GeoWriter::new();
            geozero::mvt::process_geom(f, &mut writer).expect("geometry decodes");
            let geometry = writer.take_geometry().expect("a geometry");
            features.push(Decoded {
                properties,
                geometry,
            });
        }
        assert!(
            out.insert(layer.name.clone(), features).is_none(),
            "layer {} twice",
            layer.name
        );
    }
    out
}

/// GETs a tile (optionally with a token); `None` for a 204.
pub async fn get_tile(app: &TestApp, token: Option<&str>, path: &str) -> Option<Vec<u8>> {
    let resp = match token {
        Some(t) => app.get_as(t, path).await,
        None => app.get(path).await,
    };
    let status = resp.status().as_u16();
    if status == 204 {
        return None;
    }
    assert_eq!(status, 200, "GET {path}");
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.mapbox-vector-tile"
    );
    Some(resp.bytes().await.unwrap().to_vec())
}

pub fn layer_ids(tile: &BTreeMap<String, Vec<Decoded>>, layer: &str) -> BTreeSet<String> {
    tile.get(layer)
        .map(|fs| fs.iter().map(|f| f.properties["id"].clone()).collect())
        .unwrap_or_default()
}

async fn tile_ids(
    app: &TestApp,
    token: Option<&str>,
    layers: &str,
    t: TileId,
    layer: &str,
) -> BTreeSet<String> {
    let path = format!("/tiles/{layers}/{}/{}/{}.mvt", t.z, t.x, t.y);
    get_tile(app, token, &path)
        .await
        .map(|b| layer_ids(&decode(&b), layer))
        .unwrap_or_default()
}

fn bbox_param([w, s, e, n]: [f64; 4]) -> String {
    format!("{w},{s},{e},{n}")
}

async fn items_ids(
    app: &TestApp,
    token: Option<&str>,
    collection: &str,
    bbox: [f64; 4],
) -> BTreeSet<String> {
    let path = format!(
        "/collections/{collection}/items?bbox={}&limit=10000",
        bbox_param(bbox)
    );
    let fc = app.json(token, &path, 200).await;
    ids(&fc).into_iter().collect()
}

/// The tile's bbox grown by its buffer (64 of 4096 units a side).
fn buffered(t: TileId) -> [f64; 4] {
    let b = t.mercator_bounds();
    b.grown((b.max_x - b.min_x) * 64.0 / 4096.0).to_lonlat()
}

async fn post(app: &TestApp, collection: &str, body: &Value) -> Value {
    let resp = app
        .client
        .post(app.url(&format!("/collections/{collection}/items")))
        .bearer_auth(&app.admin)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test]
async fn a_tile_holds_every_record_that_items_finds_in_its_bbox() {
    let app = spawn_app().await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    // 400 services scattered over 0.3 x 0.2 degrees around Treviso, a tenth confidential, and
    // 100 settlements and worksites.
    let features: Vec<Value> = (0..400)
        .map(|i| {
            json!({"type": "Feature", "id": format!("svc-rand-{i}"),
                "geometry": {"type": "Point", "coordinates": [12.1 + rng.random::<f64>() * 0.3, 45.6 + rng.random::<f64>() * 0.2]},
                "properties": {"name": format!("Servizio {i}"), "kind": "pas", "confidential": i % 10 == 0}})
        })
        .collect();
    post(
        &app,
        "services",
        &json!({"type": "FeatureCollection", "features": features}),
    )
    .await;
    let settlements: Vec<Value> = (0..100)
        .map(|i| {
            json!({"type": "Feature", "id": format!("set-rand-{i}"),
                "geometry": {"type": "Point", "coordinates": [12.1 + rng.random::<f64>() * 0.3, 45.6 + rng.random::<f64>() * 0.2]},
                "properties": {"name": format!("Insediamento {i} (fittizio)"), "fictional": true}})
        })
        .collect();
    post(
        &app,
        "settlements",
        &json!({"type": "FeatureCollection", "features": settlements}),
    )
    .await;

    let mut checked = 0;
    for z in [10u8, 12, 14] {
        for _ in 0..6 {
            let t = TileId::containing(
                z,
                12.1 + rng.random::<f64>() * 0.3,
                45.6 + rng.random::<f64>() * 0.2,
            );
            for (token, layers, layer) in [
                (None, "services", "services"),
                (Some(app.operator.as_str()), "services", "services"),
                (
                    Some(app.operator.as_str()),
                    "services,settlements",
                    "settlements",
                ),
            ] {
                let in_tile = tile_ids(&app, token, layers, t, layer).await;
                let in_bbox = items_ids(&app, token, layer, t.lonlat_bounds()).await;
                let in_buffer = items_ids(&app, token, layer, buffered(t)).await;
                let missing: Vec<_> = in_bbox.difference(&in_tile).collect();
                assert!(
                    missing.is_empty(),
                    "tile {t} {layer} ({token:?}) lacks {missing:?}"
                );
                let extra: Vec<_> = in_tile.difference(&in_buffer).collect();
                assert!(
                    extra.is_empty(),
                    "tile {t} {layer} has {extra:?} beyond its buffer"
                );
                checked += in_bbox.len();
            }
        }
    }
    assert!(
        checked > 100,
        "the tiles held records to compare ({checked})"
    );
}

#[tokio::test]
async fn territory_polygons_come_back_valid_at_every_zoom() {
    use geo::Validation;
    let app = spawn_app().await;
    let mut polygons = 0;
    for z in 0u8..=13 {
        let (x0, y0, x1, y1) = TileId::range(z, 11.7, 45.5, 12.7, 46.1);
        // At high zooms, a band of tiles across the province is enough.
        let step = if z > 10 { 4 } else { 1 };
        for x in (x0..=x1).step_by(step) {
            for y in (y0..=y1).step_by(step) {
                let Some(bytes) =
                    get_tile(&app, None, &format!("/tiles/territories/{z}/{x}/{y}.mvt")).await
                else {
                    continue;
                };
                for f in decode(&bytes).remove("territories").unwrap_or_default() {
                    assert!(
                        matches!(
                            f.geometry,
                            geo::Geometry::Polygon(_) | geo::Geometry::MultiPolygon(_)
                        ),
                        "{z}/{x}/{y}: {:?}",
                        f.geometry
                    );
                    assert!(
                        f.geometry.is_valid(),
                        "{z}/{x}/{y} {}: {:?}",
                        f.properties["id"],
                        f.geometry.validation_errors()
                    );
                    assert!(
                        f.properties.contains_key("level") && f.properties.contains_key("name")
                    );
                    polygons += 1;
                }
            }
        }
    }
    assert!(polygons > 50, "{polygons} polygons checked");
}

#[tokio::test]
async fn an_edit_shows_in_the_next_tile() {
    let app = spawn_app().await;
    let here = TileId::containing(14, 12.3, 45.7);
    let there = TileId::containing(14, 12.5, 45.8);
    let path = |t: TileId| format!("/tiles/services/{}/{}/{}.mvt", t.z, t.x, t.y);
    // Warm the cache for both tiles, in both encodings.
    for t in [here, there] {
        let _ = get_tile(&app, None, &path(t)).await;
        let _ = gzip_tile(&app, &path(t)).await;
    }
    assert!(
        !tile_ids(&app, None, "services", here, "services")
            .await
            .contains("svc-fresh")
    );

    post(
        &app,
        "services",
        &json!({"type": "Feature", "id": "svc-fresh",
        "geometry": {"type": "Point", "coordinates": [12.3, 45.7]},
        "properties": {"name": "Sportello aperto stamattina", "kind": "help_desk"}}),
    )
    .await;
    assert!(
        tile_ids(&app, None, "services", here, "services")
            .await
            .contains("svc-fresh"),
        "created"
    );
    assert!(
        gzip_ids(&app, &path(here)).await.contains("svc-fresh"),
        "created (gzip)"
    );

    patch_fresh(
        &app,
        &json!({"geometry": {"type": "Point", "coordinates": [12.5, 45.8]}}),
    )
    .await;
    assert!(
        !tile_ids(&app, None, "services", here, "services")
            .await
            .contains("svc-fresh"),
        "moved away"
    );
    assert!(
        !gzip_ids(&app, &path(here)).await.contains("svc-fresh"),
        "moved away (gzip)"
    );
    assert!(
        tile_ids(&app, None, "services", there, "services")
            .await
            .contains("svc-fresh"),
        "moved here"
    );

    // Made confidential: gone from the anonymous tile, still in the authorised one.
    patch_fresh(&app, &json!({"properties": {"confidential": true}})).await;
    assert!(
        !tile_ids(&app, None, "services", there, "services")
            .await
            .contains("svc-fresh")
    );
    assert!(
        tile_ids(&app, Some(&app.operator), "services", there, "services")
            .await
            .contains("svc-fresh")
    );

    let etag = app.etag("/collections/services/items/svc-fresh").await;
    let resp = app
        .client
        .delete(app.url("/collections/services/items/svc-fresh"))
        .bearer_auth(&app.editor)
        .header("If-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(
        !tile_ids(&app, Some(&app.operator), "services", there, "services")
            .await
            .contains("svc-fresh"),
        "deleted"
    );
}

/// Patches `svc-fresh` with its current `ETag`.
async fn patch_fresh(app: &TestApp, body: &Value) {
    let etag = app.etag("/collections/services/items/svc-fresh").await;
    let resp = app
        .client
        .patch(app.url("/collections/services/items/svc-fresh"))
        .bearer_auth(&app.editor)
        .header("If-Match", etag)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn gzip_tile(app: &TestApp, path: &str) -> Option<Vec<u8>> {
    // reqwest here has no gzip feature: the body comes as sent.
    let resp = app
        .client
        .get(app.url(path))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    if resp.status() == 204 {
        return None;
    }
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let raw = resp.bytes().await.unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .expect("gzip");
    Some(out)
}

async fn gzip_ids(app: &TestApp, path: &str) -> BTreeSet<String> {
    gzip_tile(app, path)
        .await
        .map(|b| layer_ids(&decode(&b), "services"))
        .unwrap_or_default()
}

#[tokio::test]
async fn anonymous_tiles_carry_no_restricted_record_and_authorised_ones_do() {
    let app = spawn_app().await;
    // Every restricted record of the demo: settlements, worksites, confidential services.
    let mut restricted: Vec<(String, String, f64, f64)> = Vec::new();
    for collection in ["services", "settlements", "worksites"] {
        let fc = app
            .json(
                Some(&app.operator),
                &format!("/collections/{collection}/items?limit=10000"),
                200,
            )
            .await;
        for f in fc["features"].as_array().unwrap() {
            if collection == "services" && f["properties"]["confidential"] != true {
                continue;
            }
            let (lon, lat) = representative(&f["geometry"]);
            restricted.push((
                f["id"].as_str().unwrap().to_owned(),
                f["properties"]["name"].as_str().unwrap().to_owned(),
                lon,
                lat,
            ));
        }
    }
    assert!(
        restricted.iter().any(|r| r.0.starts_with("svc-")),
        "the demo has confidential services"
    );
    for layers in [
        "settlements",
        "worksites",
        "services,settlements",
        "services,worksites,territories",
    ] {
        let resp = app.get(&format!("/tiles/{layers}/10/547/365.mvt")).await;
        assert_eq!(resp.status(), 401, "{layers}");
    }
    let mut seen_authorised = 0;
    for (id, name, lon, lat) in &restricted {
        for z in [6u8, 9, 12, 15] {
            let t = TileId::containing(z, *lon, *lat);
            let path = format!("/tiles/services,territories/{}/{}/{}.mvt", t.z, t.x, t.y);
            if let Some(bytes) = get_tile(&app, None, &path).await {
                assert!(
                    !bytes.windows(id.len()).any(|w| w == id.as_bytes()),
                    "{id} in {path}"
                );
                assert!(
                    !bytes.windows(name.len()).any(|w| w == name.as_bytes()),
                    "{name} in {path}"
                );
            }
            let collection = id_collection(id);
            let all = format!(
                "/tiles/services,settlements,worksites,territories/{}/{}/{}.mvt",
                t.z, t.x, t.y
            );
            let bytes = get_tile(&app, Some(&app.operator), &all)
                .await
                .expect("not empty");
            let tile = decode(&bytes);
            let found = layer_ids(&tile, collection).contains(id)
                || tile
                    .get(&format!("{collection}_clusters"))
                    .is_some_and(|c| !c.is_empty());
            assert!(found, "{id} missing from the authorised tile {all}");
            seen_authorised += 1;
        }
    }
    assert!(seen_authorised > 100);
}

fn id_collection(id: &str) -> &'static str {
    if id.starts_with("svc-") {
        "services"
    } else if id.starts_with("set-") {
        "settlements"
    } else {
        "worksites"
    }
}

/// A position inside a GeoJSON Point or Polygon (the point, or the first ring's centroid,
/// which for the demo's small convex outlines lies inside).
fn representative(geometry: &Value) -> (f64, f64) {
    let c = &geometry["coordinates"];
    if geometry["type"] == "Point" {
        return (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
    }
    let ring = &c[0].as_array().unwrap()[1..];
    let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
    for p in ring {
        sx += p[0].as_f64().unwrap();
        sy += p[1].as_f64().unwrap();
        n += 1.0;
    }
    (sx / n, sy / n)
}

#[tokio::test]
async fn tiles_answer_304_gzip_and_the_usual_errors() {
    let app = spawn_app().await;
    let path = "/tiles/services,territories/10/547/365.mvt";
    let first = app.get(path).await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && etag.len() > 10,
        "a strong tag: {etag}"
    );
    assert_eq!(first.headers()["cache-control"], "no-cache");
    let vary: Vec<_> = first
        .headers()
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        vary.iter().any(|v| v.contains("Accept-Encoding"))
            && vary.iter().any(|v| v.contains("Authorization")),
        "{vary:?}"
    );
    let identity = first.bytes().await.unwrap().to_vec();
    let resp = app
        .client
        .get(app.url(path))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_eq!(
        gzip_tile(&app, path).await.unwrap(),
        identity,
        "gzip holds the same tile"
    );
    let authorised = app.get_as(&app.operator, path).await;
    assert_eq!(authorised.headers()["cache-control"], "private, no-store");

    // The second request of a tile came from the cache.
    let metrics = app
        .get_as(&app.admin, "/metrics")
        .await
        .text()
        .await
        .unwrap();
    let hits: f64 = metrics
        .lines()
        .find(|l| l.starts_with("faro_tile_requests_total{cache=\"hit\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    assert!(hits >= 1.0, "{metrics}");
    assert!(metrics.contains("faro_tile_cache_bytes{cache=\"tiles\"}"));
    assert!(
        !app.get("/metrics")
            .await
            .text()
            .await
            .unwrap()
            .contains("faro_tile_cache_bytes{"),
        "not for anonymous scrapes"
    );

    assert_eq!(
        app.get("/tiles/services/3/0/0.mvt").await.status(),
        204,
        "an empty tile"
    );
    for (bad, names) in [
        ("/tiles/roads/10/547/365.mvt", "layers"),
        ("/tiles/services,services/10/547/365.mvt", "layers"),
        ("/tiles/services/23/0/0.mvt", "`z`"),
        ("/tiles/services/10/1024/0.mvt", "`x`"),
        ("/tiles/services/10/0/1024.mvt", "`y`"),
        ("/tiles/services/-1/0/0.mvt", "`z`"),
        ("/tiles/services/10/5.5/0.mvt", "`x`"),
        ("/tiles/services/10/0/1e3.mvt", "`y`"),
    ] {
        let resp = app.get(bad).await;
        assert_eq!(resp.status(), 400, "{bad}");
        let body: Value = resp.json().await.unwrap();
        crate::helpers::assert_error(&body, "invalid_parameter", names);
    }
}

#[tokio::test]
async fn tilejson_describes_the_layers_with_absolute_urls_and_visible_bounds() {
    let app = spawn_app().await;
    let doc = app
        .json(None, "/tiles/services,territories.json", 200)
        .await;
    assert_eq!(doc["tilejson"], "3.0.0");
    let url = doc["tiles"][0].as_str().unwrap();
    assert_eq!(url, app.url("/tiles/territories,services/{z}/{x}/{y}.mvt"));
    assert_eq!(doc["minzoom"], 0);
    assert_eq!(doc["maxzoom"], 22);
    let names: Vec<&str> = doc["vector_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"services")
            && names.contains(&"territories")
            && names.contains(&"services_clusters"),
        "{names:?}"
    );
    let services = doc["vector_layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == "services")
        .unwrap();
    for field in ["id", "name", "kind", "phone", "languages", "opening_hours"] {
        assert!(services["fields"].get(field).is_some(), "{field}");
    }
    assert!(
        services["fields"].get("open_now").is_none()
            && services["fields"].get("description").is_none()
    );
    // Bounds are the union of what the caller may see: the collections' own extents.
    let mut expect = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    for c in ["services", "territories"] {
        let meta = app.json(None, &format!("/collections/{c}"), 200).await;
        let b = &meta["extent"]["spatial"]["bbox"][0];
        for i in 0..4 {
            let v = b[i].as_f64().unwrap();
            expect[i] = if i < 2 {
                expect[i].min(v)
            } else {
                expect[i].max(v)
            };
        }
    }
    let got: Vec<f64> = doc["bounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for i in 0..4 {
        assert!(
            (got[i] - expect[i]).abs() < 1e-9,
            "bounds {got:?} vs {expect:?}"
        );
    }
    assert_eq!(app.get("/tiles/settlements.json").await.status(), 401);
    let doc = app
        .json(Some(&app.operator), "/tiles/settlements.json", 200)
        .await;
    assert_eq!(doc["vector_layers"][0]["id"], "settlements");
}

#[tokio::test]
async fn the_style_uses_only_faro_and_only_the_callers_layers() {
    let app = spawn_app().await;
    let anonymous = app.json(None, "/style.json", 200).await;
    let operator = app.json(Some(&app.operator), "/style.json", 200).await;
    let source_layers = |style: &Value| -> BTreeSet<String> {
        style["layers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["source-layer"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        !source_layers(&anonymous)
            .iter()
            .any(|l| l.starts_with("settlements") || l.starts_with("worksites"))
    );
    assert!(
        source_layers(&operator).contains("settlements")
            && source_layers(&operator).contains("worksites")
    );
    for (style, token) in [(&anonymous, None), (&operator, Some(app.operator.as_str()))] {
        let text = style.to_string();
        for url in text.split('"').filter(|s| s.starts_with("http")) {
            assert!(url.starts_with(&app.address), "{url} is not faro");
        }
        // Every layer the style draws from is one the TileJSON lists.
        let source = style["sources"]["faro"]["url"].as_str().unwrap();
        let path = source.strip_prefix(&app.address).unwrap();
        let tilejson = app.json(token, path, 200).await;
        let listed: BTreeSet<String> = tilejson["vector_layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            source_layers(style).is_subset(&listed),
            "{:?} vs {listed:?}",
            source_layers(style)
        );
    }
    crate::style_validate::validate(&anonymous);
    crate::style_validate::validate(&operator);
}
