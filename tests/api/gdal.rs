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
