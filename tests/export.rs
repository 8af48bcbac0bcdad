//! `faro export`: round trips through every format, the token's visibility, and GDAL as an
//! independent reader of faro's GeoPackage and `FlatGeobuf`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

#[path = "common/run.rs"]
mod run;
#[path = "common/skip.rs"]
mod skip;

use std::path::Path;
use std::process::{Command, Output};

use run::{faro, ok};

use faro::domain::{Collection, Record};
use geo::CoordsIter;
use serde_json::json;

/// Every collection, with every field of a service set, a confidential shelter, a polygon
/// settlement, a polygon worksite and a multipolygon territory.
fn dataset() -> Vec<(Collection, serde_json::Value)> {
    let services = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "svc-full", "geometry": {"type": "Point", "coordinates": [12.243_123_456_7, 45.666_987_654_3]},
         "properties": {"name": "Casa \"rifugio\", Treviso", "kind": "shelter", "organization": "Cooperativa Esempio",
            "description": "Prima riga\nseconda; con punto e virgola", "address": "Via Roma 1, Treviso", "comune": "026086",
            "phone": "+39 0422 000000", "email": "info@example.org", "website": "https://example.org",
            "languages": ["it", "en", "ar"], "opening_hours": "Mo-Fr 09:00-13:00", "referral_required": true,
            "eligibility": "adulti", "capacity": 12, "vacancy": 3, "confidential": true, "mobile": false,
            "last_verified": "2026-03-05", "fictional": true}},
        {"type": "Feature", "id": "svc-pas", "geometry": {"type": "Point", "coordinates": [12.1, 45.5]},
         "properties": {"name": "PAS Città", "kind": "pas", "mobile": true, "languages": ["ro"]}},
        {"type": "Feature", "id": "svc-far", "geometry": {"type": "Point", "coordinates": [11.9, 45.9]},
         "properties": {"name": "Sportello", "kind": "help_desk"}}
    ]});
    let settlements = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "set-1", "geometry": {"type": "Polygon", "coordinates": [[[12.2, 45.6], [12.21, 45.6], [12.21, 45.61], [12.2, 45.61], [12.2, 45.6]]]},
         "properties": {"name": "Insediamento", "population_estimate": 40, "season": [6, 7, 8], "sector": "agricoltura",
            "last_surveyed": "2026-07-01", "notes": "n", "fictional": true}},
        {"type": "Feature", "id": "set-2", "geometry": {"type": "Point", "coordinates": [12.123_456_789, 45.987_654_321]},
         "properties": {"name": "Casolare"}}
    ]});
    let worksites = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "ws-vigna", "geometry": {"type": "Polygon", "coordinates": [[[12.25, 45.62], [12.27, 45.62], [12.27, 45.635], [12.25, 45.62]]]},
         "properties": {"name": "Vigneto, \"collina\"", "kind": "vineyard", "workers_estimate": 25,
            "peak_months": [9, 10], "notes": "vendemmia;\nturni", "fictional": true}},
        {"type": "Feature", "id": "ws-serra", "geometry": {"type": "Point", "coordinates": [12.345_678_9, 45.456_789_1]},
         "properties": {"name": "Serra", "kind": "greenhouse"}}
    ]});
    let territories = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "terr-sud", "geometry": {"type": "MultiPolygon", "coordinates": [
            [[[12.0, 45.4], [12.4, 45.4], [12.4, 45.7], [12.0, 45.7], [12.0, 45.4]], [[12.3, 45.45], [12.35, 45.45], [12.35, 45.5], [12.3, 45.45]]],
            [[[12.5, 45.4], [12.6, 45.4], [12.6, 45.5], [12.5, 45.4]]]]},
         "properties": {"name": "Territorio Sud", "level": "territory", "code": "T1", "parent": "terr-tv",
            "population": 123_456, "comuni": ["026001", "026002"], "approximate": true, "note": "prova"}}
    ]});
    vec![
        (Collection::Services, services),
        (Collection::Settlements, settlements),
        (Collection::Worksites, worksites),
        (Collection::Territories, territories),
    ]
}

struct Fixture {
    dir: tempfile::TempDir,
    db: String,
    operator: String,
}

fn load() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("src.db").display());
    for (c, doc) in dataset() {
        let path = dir.path().join(format!("{c}.geojson"));
        std::fs::write(&path, doc.to_string()).unwrap();
        ok(&faro(&["import", c.as_str(), path.to_str().unwrap()], &db));
    }
    let operator = ok(&faro(
        &[
            "token", "create", "--role", "operator", "--name", "analista",
        ],
        &db,
    ))
    .trim()
    .to_owned();
    Fixture { dir, db, operator }
}

async fn records(db: &str, collection: Collection) -> Vec<Record> {
    let mut all: Vec<Record> = faro::storage::open(db, 1)
        .await
        .unwrap()
        .load_all()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.collection() == collection)
        .collect();
    all.sort_by(|a, b| a.id().cmp(b.id()));
    all
}

/// Same ids, same fields, every coordinate within 1e-7 degrees.
fn assert_same(what: &str, want: &[Record], got: &[Record]) {
    assert_eq!(
        want.iter().map(Record::id).collect::<Vec<_>>(),
        got.iter().map(Record::id).collect::<Vec<_>>(),
        "{what}: ids"
    );
    for (w, g) in want.iter().zip(got) {
        assert_eq!(
            w.attributes(),
            g.attributes(),
            "{what}: fields of {}",
            w.id()
        );
        let (wc, gc): (Vec<_>, Vec<_>) = (
            w.geometry().coords_iter().collect(),
            g.geometry().coords_iter().collect(),
        );
        assert_eq!(wc.len(), gc.len(), "{what}: positions of {}", w.id());
        for (a, b) in wc.iter().zip(&gc) {
            assert!(
                (a.x - b.x).abs() <= 1e-7 && (a.y - b.y).abs() <= 1e-7,
                "{what}: {} moved",
                w.id()
            );
        }
    }
}

#[tokio::test]
async fn geojson_csv_and_geopackage_exports_round_trip_every_field_and_coordinate() {
    let fx = load();
    for (collection, _) in dataset() {
        let want = records(&fx.db, collection).await;
        assert!(!want.is_empty());
        for (format, ext) in [("geojson", "geojson"), ("csv", "csv"), ("gpkg", "gpkg")] {
            let out = fx.dir.path().join(format!("{collection}.out.{ext}"));
            ok(&faro(
                &[
                    "export",
                    collection.as_str(),
                    "--format",
                    format,
                    "--token",
                    &fx.operator,
                    "--output",
                    out.to_str().unwrap(),
                ],
                &fx.db,
            ));
            let db2 = format!(
                "sqlite://{}",
                fx.dir
                    .path()
                    .join(format!("{collection}-{format}.db"))
                    .display()
            );
            let imported = ok(&faro(
                &["import", collection.as_str(), out.to_str().unwrap()],
                &db2,
            ));
            assert!(
                imported.contains(&format!("{} created", want.len())),
                "{imported}"
            );
            assert_same(
                &format!("{collection} via {format}"),
                &want,
                &records(&db2, collection).await,
            );
            // And back into the original store: nothing changes.
            let again = ok(&faro(
                &["import", collection.as_str(), out.to_str().unwrap()],
                &fx.db,
            ));
            assert!(
                again.contains(&format!("0 created, 0 updated, {} unchanged", want.len())),
                "{collection} via {format}: {again}"
            );
        }
    }
}

#[tokio::test]
async fn an_export_holds_only_what_the_token_may_see() {
    let fx = load();
    let export = |collection: &str, token: Option<&str>, extra: &[&str]| {
        let mut args = vec!["export", collection, "--format", "geojson"];
        if let Some(t) = token {
            args.extend(["--token", t]);
        }
        args.extend(extra);
        faro(&args, &fx.db)
    };
    let ids = |o: &Output| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&ok(o)).unwrap();
        let mut ids: Vec<String> = v["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    // Anonymous: public services only, no confidential shelter, no settlements at all.
    assert_eq!(ids(&export("services", None, &[])), ["svc-far", "svc-pas"]);
    let refused = export("settlements", None, &[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("restricted"), "{stderr}");
    assert!(
        refused.stdout.is_empty(),
        "nothing of a restricted collection is written"
    );
    // An operator sees everything.
    assert_eq!(
        ids(&export("services", Some(&fx.operator), &[])),
        ["svc-far", "svc-full", "svc-pas"]
    );
    assert_eq!(
        ids(&export("settlements", Some(&fx.operator), &[])),
        ["set-1", "set-2"]
    );
    // --territory filters by intersection, still through the token's visibility.
    assert_eq!(
        ids(&export(
            "services",
            Some(&fx.operator),
            &["--territory", "terr-sud"]
        )),
        ["svc-full", "svc-pas"]
    );
    assert_eq!(
        ids(&export("services", None, &["--territory", "terr-sud"])),
        ["svc-pas"]
    );
    // A wrong token is refused, not taken for anonymous.
    let bad = export("services", Some("faro_0000"), &[]);
    assert!(!bad.status.success());
    // A token scoped to a territory exports the restricted records in it only (set-2 lies
    // outside terr-sud), and the public ones everywhere.
    let scoped = scoped_token(&fx);
    assert_eq!(ids(&export("settlements", Some(&scoped), &[])), ["set-1"]);
    assert_eq!(
        ids(&export("services", Some(&scoped), &[])),
        ["svc-far", "svc-full", "svc-pas"]
    );
    let csv = ok(&faro(
        &[
            "export",
            "settlements",
            "--format",
            "csv",
            "--token",
            &scoped,
        ],
        &fx.db,
    ));
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("set-1,"), "{csv}");
}

/// An operator's token confined to `terr-sud`.
fn scoped_token(fx: &Fixture) -> String {
    ok(&faro(
        &[
            "token",
            "create",
            "--role",
            "operator",
            "--territory",
            "terr-sud",
            "--name",
            "unità sud",
        ],
        &fx.db,
    ))
    .trim()
    .to_owned()
}

fn have_gdal(test: &str) -> bool {
    let found = Command::new("ogrinfo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    found
        || skip::skip(
            test,
            "GDAL's ogrinfo is not installed (apt-get install gdal-bin)",
            "FARO_REQUIRE_GDAL",
        )
}

/// Feature count and extent as `ogrinfo -so` reports them.
fn ogrinfo(path: &Path) -> (usize, [f64; 4]) {
    let out = Command::new("ogrinfo")
        .args(["-ro", "-so", "-al"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = text
        .lines()
        .find_map(|l| l.strip_prefix("Feature Count: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let extent = text
        .lines()
        .find_map(|l| l.strip_prefix("Extent: "))
        .unwrap();
    let nums: Vec<f64> = extent
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter(|p| !p.is_empty() && *p != "-")
        .map(|p| p.parse().unwrap())
        .collect();
    (count, [nums[0], nums[1], nums[2], nums[3]])
}

#[tokio::test]
async fn gdal_opens_the_geopackage_and_flatgeobuf_with_the_same_count_and_extent() {
    if !have_gdal("gdal_opens_the_geopackage_and_flatgeobuf_with_the_same_count_and_extent") {
        return;
    }
    let fx = load();
    for (collection, _) in dataset() {
        let want = records(&fx.db, collection).await;
        let rect = want
            .iter()
            .flat_map(|r| r.geometry().coords_iter())
            .fold([f64::MAX, f64::MAX, f64::MIN, f64::MIN], |e, c| {
                [e[0].min(c.x), e[1].min(c.y), e[2].max(c.x), e[3].max(c.y)]
            });
        for format in ["gpkg", "fgb"] {
            let out = fx.dir.path().join(format!("{collection}.{format}"));
            ok(&faro(
                &[
                    "export",
                    collection.as_str(),
                    "--format",
                    format,
                    "--token",
                    &fx.operator,
                    "-o",
                    out.to_str().unwrap(),
                ],
                &fx.db,
            ));
            let (count, extent) = ogrinfo(&out);
            assert_eq!(count, want.len(), "{collection}.{format}: count");
            for (a, b) in extent.iter().zip(rect) {
                // ogrinfo prints six decimals.
                assert!(
                    (a - b).abs() <= 5e-7,
                    "{collection}.{format}: extent {extent:?} vs {rect:?}"
                );
            }
            // GDAL's own reading of every field, back through faro: nothing changes.
            let back = fx.dir.path().join(format!("{collection}.{format}.geojson"));
            let conv = Command::new("ogr2ogr")
                .args(["-f", "GeoJSON"])
                .arg(&back)
                .arg(&out)
                .output()
                .unwrap();
            assert!(
                conv.status.success(),
                "{}",
                String::from_utf8_lossy(&conv.stderr)
            );
            let again = ok(&faro(
                &["import", collection.as_str(), back.to_str().unwrap()],
                &fx.db,
            ));
            assert!(
                again.contains(&format!("0 created, 0 updated, {} unchanged", want.len())),
                "{collection}: ogr2ogr {format} -> GeoJSON -> faro: {again}"
            );
        }
    }
}

/// A plain HTTP/1.0 GET: status line and body bytes.
fn http_get(addr: &str, path: &str) -> (String, Vec<u8>) {
    http_get_as(addr, path, None)
}

/// [`http_get`] with a bearer token.
fn http_get_as(addr: &str, path: &str, token: Option<&str>) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&response[..split]).into_owned(),
        response[split + 4..].to_vec(),
    )
}

#[tokio::test]
async fn items_are_served_as_csv_geopackage_and_flatgeobuf_with_the_same_filters() {
    use std::io::{BufRead, BufReader};
    let fx = load();
    let scoped = scoped_token(&fx);
    let mut child = Command::new(env!("CARGO_BIN_EXE_faro"))
        .args(["serve", "--listen", "127.0.0.1:0", "--no-demo"])
        .env("DATABASE_URL", &fx.db)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("faro listening on http://").nth(1) {
                let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("faro logs its address");
    let (csv_head, csv) = http_get(&addr, "/collections/services/items?f=csv&kind=pas,shelter");
    let (gpkg_head, gpkg) = http_get(&addr, "/collections/services/items?f=gpkg");
    let (fgb_head, fgb) = http_get(&addr, "/collections/services/items?f=fgb&limit=1");
    let (_, bbox_csv) = http_get(
        &addr,
        "/collections/services/items?f=csv&bbox=11.8,45.8,12.0,46.0",
    );
    let (bad_head, _) = http_get(&addr, "/collections/services/items?f=xls");
    let (anon_head, _) = http_get(&addr, "/collections/settlements/items?f=csv");
    let (scoped_head, scoped_csv) =
        http_get_as(&addr, "/collections/settlements/items?f=csv", Some(&scoped));
    let (scoped_gpkg_head, scoped_gpkg) = http_get_as(
        &addr,
        "/collections/settlements/items?f=gpkg",
        Some(&scoped),
    );
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        csv_head.contains(" 200 ") && csv_head.contains("text/csv"),
        "{csv_head}"
    );
    let csv = String::from_utf8(csv).unwrap();
    // Anonymous: the confidential shelter is not there; the kind filter applies.
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("svc-pas,"), "{csv}");
    assert!(
        gpkg_head.contains("application/geopackage+sqlite3"),
        "{gpkg_head}"
    );
    assert!(gpkg.starts_with(b"SQLite format 3\0"));
    let file = fx.dir.path().join("served.gpkg");
    std::fs::write(&file, &gpkg).unwrap();
    let db2 = format!("sqlite://{}", fx.dir.path().join("served.db").display());
    let imported = ok(&faro(&["import", "services", file.to_str().unwrap()], &db2));
    assert!(imported.contains("2 created"), "{imported}");
    assert!(fgb_head.contains("application/flatgeobuf"), "{fgb_head}");
    assert!(fgb.starts_with(b"fgb\x03"), "FlatGeobuf magic bytes");
    assert!(bad_head.contains(" 400 "), "{bad_head}");
    // The bbox filter too (svc-far alone lies in it).
    let bbox_csv = String::from_utf8(bbox_csv).unwrap();
    assert_eq!(bbox_csv.lines().count(), 2, "{bbox_csv}");
    assert!(
        bbox_csv.lines().nth(1).unwrap().starts_with("svc-far,"),
        "{bbox_csv}"
    );
    // Restricted collections: refused to anonymous callers, and only the token's territory
    // to a scoped one, in every format.
    assert!(anon_head.contains(" 401 "), "{anon_head}");
    assert!(scoped_head.contains(" 200 "), "{scoped_head}");
    let scoped_csv = String::from_utf8(scoped_csv).unwrap();
    assert_eq!(scoped_csv.lines().count(), 2, "{scoped_csv}");
    assert!(
        scoped_csv.lines().nth(1).unwrap().starts_with("set-1,"),
        "{scoped_csv}"
    );
    assert!(scoped_gpkg_head.contains(" 200 "), "{scoped_gpkg_head}");
    let file = fx.dir.path().join("scoped.gpkg");
    std::fs::write(&file, &scoped_gpkg).unwrap();
    let db3 = format!("sqlite://{}", fx.dir.path().join("scoped.db").display());
    let imported = ok(&faro(
        &["import", "settlements", file.to_str().unwrap()],
        &db3,
    ));
    assert!(imported.contains("1 created"), "{imported}");
    let ids: Vec<String> = records(&db3, Collection::Settlements)
        .await
        .iter()
        .map(|r| r.id().to_string())
        .collect();
    assert_eq!(ids, ["set-1"]);
    // `limit` applies to the FlatGeobuf as to the JSON, as GDAL reads it.
    if have_gdal("items_are_served_as_csv_geopackage_and_flatgeobuf_with_the_same_filters") {
        let file = fx.dir.path().join("served.fgb");
        std::fs::write(&file, &fgb).unwrap();
        assert_eq!(ogrinfo(&file).0, 1);
    }
}
