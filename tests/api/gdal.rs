//! GDAL's OGC API – Features driver (OAPIF) as an independent client of faro.
//!
//! Needs `ogrinfo`/`ogr2ogr` (Debian `gdal-bin`): `scripts/test.sh` installs it and sets
//! `FARO_REQUIRE_GDAL=1`, so there a missing GDAL fails; elsewhere these tests are skipped.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{TestApp, ids, spawn_app};

fn gdal_available() -> bool {
    let found = std::process::Command::new("ogrinfo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    found
        || crate::skip::skip(
            "gdal",
            "ogrinfo (gdal-bin) not installed",
            "FARO_REQUIRE_GDAL",
        )
}

/// Runs ogr2ogr to GeoJSON on one layer, paging through faro with small pages.
async fn gdal_export(app: &TestApp, token: Option<&str>, layer: &str, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.geojson");
    let mut cmd = tokio::process::Command::new("ogr2ogr");
    cmd.args(["-f", "GeoJSON"])
        .arg(&out)
        .arg(format!("OAPIF:{}/", app.address))
        .arg(layer)
        .args(["-oo", "PAGE_SIZE=25"])
        .args(extra);
    if let Some(t) = token {
        cmd.env("GDAL_HTTP_HEADERS", format!("Authorization: Bearer {t}"));
    }
    let output = cmd.output().await.unwrap();
    assert!(
        output.status.success(),
        "ogr2ogr failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

fn gdal_ids(fc: &Value) -> BTreeSet<String> {
    fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn gdal_reads_every_public_service_through_the_paging_links() {
    if !gdal_available() {
        return;
    }
    let app = spawn_app().await;
    let ours = app
        .json(None, "/collections/services/items?limit=10000", 200)
        .await;
    let theirs = gdal_export(&app, None, "services", &[]).await;
    let expected: BTreeSet<String> = ids(&ours).into_iter().collect();
    assert_eq!(gdal_ids(&theirs), expected);
    for f in theirs["features"].as_array().unwrap() {
        assert_ne!(f["properties"]["confidential"], true);
    }
}

#[tokio::test]
async fn gdal_with_an_operator_token_reads_the_restricted_layers_and_filters_by_bbox() {
    if !gdal_available() {
        return;
    }
    let app = spawn_app().await;
    let ours = app
        .json(
            Some(&app.operator),
            "/collections/worksites/items?limit=10000",
            200,
        )
        .await;
    let theirs = gdal_export(&app, Some(&app.operator), "worksites", &[]).await;
    assert_eq!(
        gdal_ids(&theirs),
        ids(&ours).into_iter().collect::<BTreeSet<_>>()
    );
    let ours = app
        .json(
            Some(&app.operator),
            "/collections/worksites/items?bbox=12.0,45.8,12.35,46.0&limit=10000",
            200,
        )
        .await;
    let theirs = gdal_export(
        &app,
        Some(&app.operator),
        "worksites",
        &["-spat", "12.0", "45.8", "12.35", "46.0"],
    )
    .await;
    assert!(!ids(&ours).is_empty());
    assert_eq!(
        gdal_ids(&theirs),
        ids(&ours).into_iter().collect::<BTreeSet<_>>()
    );
}

/// `ogrinfo -al -so` on an MVT: each layer's name and feature count.
fn ogr_layer_counts(args: &[String]) -> std::collections::BTreeMap<String, usize> {
    let out = std::process::Command::new("ogrinfo")
        .args(["-ro", "-al", "-so"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ogrinfo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut counts = std::collections::BTreeMap::new();
    let mut layer = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("Layer name: ") {
            layer = Some(name.trim().to_owned());
        } else if let Some(n) = line.strip_prefix("Feature Count: ") {
            counts.insert(layer.take().unwrap(), n.trim().parse().unwrap());
        }
    }
    counts
}

#[tokio::test]
async fn gdal_reads_faro_tiles_with_the_same_layers_and_counts() {
    if !gdal_available() {
        return;
    }
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let mut compared = 0;
    for (token, layers, z, x, y) in [
        (None, "services,territories", 10, 547, 365),
        (None, "services,territories", 9, 273, 182),
        (
            Some(app.operator.clone()),
            "services,settlements,worksites,territories",
            10,
            547,
            365,
        ),
        (
            Some(app.operator.clone()),
            "services,settlements,worksites,territories",
            12,
            2190,
            1461,
        ),
    ] {
        let path = format!("/tiles/{layers}/{z}/{x}/{y}.mvt");
        let Some(bytes) = crate::tiles::get_tile(&app, token.as_deref(), &path).await else {
            continue;
        };
        let ours: std::collections::BTreeMap<String, usize> = crate::tiles::decode(&bytes)
            .into_iter()
            .map(|(name, features)| (name, features.len()))
            .collect();
        // A saved tile, as a file.
        let file = dir.path().join(format!("{z}-{x}-{y}.mvt"));
        std::fs::write(&file, &bytes).unwrap();
        let from_file = ogr_layer_counts(&[file.display().to_string()]);
        assert_eq!(from_file, ours, "{path}");
        compared += ours.values().sum::<usize>();
        if token.is_none() {
            // And straight from faro over HTTP, with z/x/y in the URL (EPSG:3857 extents).
            let from_url = ogr_layer_counts(&[format!("MVT:{}", app.url(&path))]);
            assert_eq!(from_url, ours, "{path} over HTTP");
        }
    }
    assert!(compared > 20, "{compared} features compared");
}
