//! `faro report` on the demo data, run as a planner would: every file is written, the
//! GeoPackage opens in GDAL with the layers and counts a brute force over the demo files and
//! the coverage library give, the table holds the library's figures, the page needs no network
//! and parses, and an anonymous report holds nothing restricted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

#[path = "common/run.rs"]
mod run;
#[path = "common/skip.rs"]
mod skip;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use run::{faro, ok};
use std::sync::Arc;

use faro::analysis::coverage::{self, CoverageQuery};
use faro::domain::{Collection, Record, ServiceKind};
use faro::index::Snapshot;
use faro::index::query::Visibility;
use geo::{Distance, Geodesic, InteriorPoint, Intersects, Point};
use serde_json::Value;

const KINDS: &str = "focal_point,pas";

fn demo_file(collection: Collection) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("data/{collection}.geojson"))
}

/// The names of the files in `dir`, sorted.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

struct Demo {
    dir: tempfile::TempDir,
    db: String,
    operator: String,
}

/// The demo files imported into a fresh SQLite store, and an operator token.
fn demo() -> Demo {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("demo.db").display());
    for c in [
        Collection::Territories,
        Collection::Services,
        Collection::Settlements,
        Collection::Worksites,
    ] {
        ok(&faro(
            &["import", c.as_str(), demo_file(c).to_str().unwrap()],
            &db,
        ));
    }
    let operator = ok(&faro(
        &[
            "token",
            "create",
            "--role",
            "operator",
            "--name",
            "pianificazione",
        ],
        &db,
    ))
    .trim()
    .to_owned();
    Demo { dir, db, operator }
}

/// Runs `faro report` into a new directory under the fixture's.
fn report(demo: &Demo, name: &str, radius_m: &str, token: Option<&str>) -> PathBuf {
    report_with(
        demo,
        name,
        &["--kind", KINDS, "--radius-m", radius_m],
        token,
    )
}

fn report_with(demo: &Demo, name: &str, flags: &[&str], token: Option<&str>) -> PathBuf {
    let out = demo.dir.path().join(name);
    let mut args = vec!["report", "--out", out.to_str().unwrap()];
    args.extend(flags);
    if let Some(t) = token {
        args.extend(["--token", t]);
    }
    ok(&faro(&args, &demo.db));
    out
}

/// The demo's records as the library reads them, through a view of `visibility`.
async fn library_view(db: &str, visibility: Visibility) -> faro::index::query::View {
    let records = faro::storage::open(db, 1)
        .await
        .unwrap()
        .load_all()
        .await
        .unwrap();
    Arc::new(Snapshot::build(records)).view(visibility)
}

fn query(radius_m: f64) -> CoverageQuery {
    CoverageQuery::new(vec![ServiceKind::FocalPoint, ServiceKind::Pas], radius_m)
}

/// The features of a demo file.
fn demo_features(c: Collection) -> Vec<Value> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(demo_file(c)).unwrap()).unwrap();
    doc["features"].as_array().unwrap().clone()
}

fn geometry(f: &Value) -> geo::Geometry<f64> {
    let g: geojson::Geometry = serde_json::from_value(f["geometry"].clone()).unwrap();
    geo::Geometry::try_from(g).unwrap()
}

/// Brute force over the demo files: the settlements and worksites in a territory of level
/// `territory` whose geodesic distance to every chosen service exceeds the radius.
fn brute_force_uncovered(radius_m: f64) -> Vec<String> {
    let kinds = ["focal_point", "pas"];
    let services: Vec<Point<f64>> = demo_features(Collection::Services)
        .iter()
        .filter(|f| kinds.contains(&f["properties"]["kind"].as_str().unwrap()))
        .map(|f| match geometry(f) {
            geo::Geometry::Point(p) => p,
            other => panic!("a service is a point: {other:?}"),
        })
        .collect();
    let territories: Vec<geo::Geometry<f64>> = demo_features(Collection::Territories)
        .iter()
        .filter(|f| f["properties"]["level"] == "territory")
        .map(geometry)
        .collect();
    let mut out = Vec::new();
    for c in [Collection::Settlements, Collection::Worksites] {
        for f in demo_features(c) {
            let g = geometry(&f);
            let p = match &g {
                geo::Geometry::Point(p) => *p,
                other => other.interior_point().unwrap(),
            };
            if !territories.iter().any(|t| t.intersects(&p)) {
                continue;
            }
            let nearest = services
                .iter()
                .map(|s| Geodesic.distance(*s, p))
                .fold(f64::INFINITY, f64::min);
            if nearest > radius_m {
                out.push(f["id"].as_str().unwrap().to_owned());
            }
        }
    }
    out.sort();
    out
}

/// Feature count per layer, as `ogrinfo -so -al` lists them.
fn ogrinfo_layers(path: &Path) -> BTreeMap<String, usize> {
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
    let mut layers = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("Layer name: ") {
            current = Some(name.trim().to_owned());
        }
        if let Some(n) = line.strip_prefix("Feature Count: ") {
            layers.insert(current.take().unwrap(), n.trim().parse().unwrap());
        }
    }
    layers
}

/// Features of a GeoJSON file of the report.
fn geojson_features(dir: &Path, layer: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{layer}.geojson"))).unwrap(),
    )
    .unwrap();
    assert_eq!(doc["type"], "FeatureCollection", "{layer}");
    doc["features"].as_array().unwrap().clone()
}

/// The CSV as rows of column -> cell.
fn csv_rows(path: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

/// The tags of an HTML page nest: every element opened is closed, in order (void elements
/// and `/>` self-closed ones aside). Text and attribute values are escaped, so every `<`
/// starts a tag.
fn assert_tags_balance(html: &str) {
    const VOID: [&str; 6] = ["meta", "br", "hr", "img", "input", "link"];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let end = rest.find('>').expect("a tag ends");
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        assert!(!name.is_empty(), "a tag without a name: <{tag}>");
        if tag.starts_with('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "<{open}> closed by </{name}>");
        } else if !tag.ends_with('/') && !VOID.contains(&name.as_str()) {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "left open: {stack:?}");
}

/// No URL other than fragment references (`url(#pattern)`): nothing to fetch.
fn assert_no_external_url(html: &str) {
    for scheme in ["http://", "https://", "//", "ftp:", "data:", "file:"] {
        assert!(!html.contains(scheme), "the page has `{scheme}`");
    }
    for attribute in [" src=", " href=", "@import", "@font-face"] {
        assert!(!html.contains(attribute), "the page has `{attribute}`");
    }
    for (i, _) in html.match_indices("url(") {
        assert!(html[i..].starts_with("url(#"), "{}", &html[i..i + 40]);
    }
}

#[tokio::test]
async fn the_demo_report_writes_the_table_layers_and_page_with_the_library_figures() {
    let demo = demo();
    let view = library_view(&demo.db, Visibility::Everything).await;
    // The radius of the issue, and a smaller one that leaves records uncovered.
    for radius_m in [15_000.0, 4_000.0] {
        let dir = report(
            &demo,
            &format!("report-{radius_m}"),
            &radius_m.to_string(),
            Some(&demo.operator),
        );
        let q = query(radius_m);
        let figures = coverage::coverage(&view, &q).unwrap();
        let territories = figures.territories.len();
        assert!(territories > 0);
        let names = file_names(&dir);
        assert_eq!(
            names,
            [
                "coverage.csv",
                "coverage.gpkg",
                "gaps.geojson",
                "hexes.geojson",
                "report.html",
                "services.geojson",
                "suggestions.geojson",
                "territories.geojson",
                "uncovered.geojson",
            ],
            "every file, and no temporary one left"
        );

        // The table: one row per territory and the total, the library's figures.
        let rows = csv_rows(&dir.join("coverage.csv"));
        assert_eq!(rows.len(), territories + 1);
        let expected = figures
            .territories
            .iter()
            .chain(std::iter::once(&figures.total));
        for (row, f) in rows.iter().zip(expected) {
            let id = f
                .territory
                .as_ref()
                .map_or("total".to_owned(), |t| t.id().to_string());
            assert_eq!(row["territory"], id);
            let num = |k: &str| row[k].parse::<f64>().unwrap();
            let int = |k: &str| row[k].parse::<u64>().unwrap();
            assert!((num("area_km2") - f.area_km2).abs() <= 1e-6, "{id}");
            assert!(
                (num("covered_area_km2") - f.covered_area_km2).abs() <= 1e-6,
                "{id}"
            );
            assert!(
                (num("covered_share") - f.covered_share()).abs() <= 1e-6,
                "{id}"
            );
            assert_eq!(int("services"), f.services as u64, "{id}");
            let (s, w) = (f.settlements.unwrap(), f.worksites.unwrap());
            assert_eq!(
                [
                    int("settlements_total"),
                    int("settlements_covered"),
                    int("people_total"),
                    int("people_covered"),
                    int("worksites_total"),
                    int("worksites_covered"),
                    int("workers_total"),
                    int("workers_covered"),
                ],
                [
                    s.total,
                    s.covered,
                    s.size_total,
                    s.size_covered,
                    w.total,
                    w.covered,
                    w.size_total,
                    w.size_covered,
                ],
                "{id}"
            );
        }

        // The layers: counts from the library and from a brute force over the demo files.
        let uncovered = brute_force_uncovered(radius_m);
        let hexes = coverage::hexes(&view, &q, h3o::Resolution::Seven)
            .unwrap()
            .len();
        let suggestions = coverage::suggest(
            &view,
            &q,
            coverage::Candidates::Hexes(h3o::Resolution::Seven),
            3,
        )
        .unwrap()
        .suggestions
        .len();
        let services = coverage::Prepared::without_demand(&view, &q)
            .unwrap()
            .services
            .len();
        let expected: BTreeMap<String, usize> = [
            ("territories", territories),
            ("gaps", territories),
            ("uncovered", uncovered.len()),
            ("hexes", hexes),
            ("suggestions", suggestions),
            ("services", services),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (layer, count) in &expected {
            assert_eq!(
                geojson_features(&dir, layer).len(),
                *count,
                "{layer}.geojson"
            );
        }
        let mut found: Vec<String> = geojson_features(&dir, "uncovered")
            .iter()
            .map(|f| f["properties"]["id"].as_str().unwrap().to_owned())
            .collect();
        found.sort();
        assert_eq!(found, uncovered, "uncovered at {radius_m} m");
        if radius_m < 10_000.0 {
            assert!(
                !uncovered.is_empty() && suggestions > 0,
                "the small radius leaves gaps"
            );
        }
        // A suggestion covers what the library says it newly covers.
        let gpkg = dir.join("coverage.gpkg");
        let conn = rusqlite::Connection::open(&gpkg).unwrap();
        let tables: Vec<String> = conn
            .prepare("SELECT table_name FROM gpkg_contents ORDER BY table_name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(tables, expected.keys().cloned().collect::<Vec<_>>());
        for (layer, count) in &expected {
            let n: i64 = conn
                .query_row(&format!("SELECT count(*) FROM \"{layer}\""), [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(
                usize::try_from(n).unwrap(),
                *count,
                "{layer} in the GeoPackage"
            );
        }

        // The page: no URL, tags that nest, one map of all territories, one of the hexagons
        // and one per territory, every territory named.
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert_no_external_url(&html);
        assert_tags_balance(&html);
        assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
        assert_eq!(html.matches("<svg class=\"map\"").count(), territories + 2);
        for f in &figures.territories {
            let name = f.territory.as_ref().unwrap().attributes().name();
            assert!(html.contains(&faro::report::escape(name)), "{name}");
        }
        assert!(html.contains("Restricted."));
    }
}

#[tokio::test]
async fn gdal_lists_the_layers_and_counts_of_the_geopackage() {
    let found = Command::new("ogrinfo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found
        && !skip::skip(
            "gdal_lists_the_layers_and_counts_of_the_geopackage",
            "GDAL's ogrinfo is not installed (apt-get install gdal-bin)",
            "FARO_REQUIRE_GDAL",
        )
    {
        return;
    }
    let demo = demo();
    let radius_m = 4_000.0;
    let view = library_view(&demo.db, Visibility::Everything).await;
    let q = query(radius_m);
    let territories = coverage::coverage(&view, &q).unwrap().territories.len();
    let operator = report(&demo, "operator", "4000", Some(&demo.operator));
    let layers = ogrinfo_layers(&operator.join("coverage.gpkg"));
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    expected.insert("territories".into(), territories);
    expected.insert("gaps".into(), territories);
    expected.insert("uncovered".into(), brute_force_uncovered(radius_m).len());
    expected.insert(
        "hexes".into(),
        coverage::hexes(&view, &q, h3o::Resolution::Seven)
            .unwrap()
            .len(),
    );
    expected.insert(
        "suggestions".into(),
        coverage::suggest(
            &view,
            &q,
            coverage::Candidates::Hexes(h3o::Resolution::Seven),
            3,
        )
        .unwrap()
        .suggestions
        .len(),
    );
    expected.insert(
        "services".into(),
        coverage::Prepared::without_demand(&view, &q)
            .unwrap()
            .services
            .len(),
    );
    assert_eq!(layers, expected);
    // GDAL's own GeoPackage validator, where python3-gdal ships it: an extra check, the
    // counts above stand without it.
    let validator =
        Path::new("/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py");
    if validator.exists() {
        let o = Command::new("python3")
            .arg(validator)
            .arg(operator.join("coverage.gpkg"))
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.success() && said.trim().is_empty(),
            "validate_gpkg.py: {said}"
        );
    }
    // Anonymous: the public layers only, and GDAL agrees with the anonymous library.
    let anonymous = report(&demo, "anonymous", "4000", None);
    let public = library_view(&demo.db, Visibility::Anonymous).await;
    let layers = ogrinfo_layers(&anonymous.join("coverage.gpkg"));
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    expected.insert("territories".into(), territories);
    expected.insert("gaps".into(), territories);
    expected.insert(
        "hexes".into(),
        coverage::hexes(&public, &q, h3o::Resolution::Seven)
            .unwrap()
            .len(),
    );
    expected.insert(
        "services".into(),
        coverage::Prepared::without_demand(&public, &q)
            .unwrap()
            .services
            .len(),
    );
    assert_eq!(layers, expected);
}

/// Every restricted thing of the demo: ids, names and the text and bytes of every position
/// of settlements, worksites and confidential services.
fn restricted(records: &[Record]) -> (Vec<String>, Vec<String>, Vec<[u8; 16]>) {
    use geo::CoordsIter;
    let (mut words, mut coordinates, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    for r in records {
        if !(r.collection().is_restricted() || r.is_confidential()) {
            continue;
        }
        words.push(r.id().to_string());
        words.push(r.attributes().name().to_owned());
        for c in r.geometry().coords_iter() {
            coordinates.push(format!("[{},{}]", c.x, c.y));
            let mut pair = [0_u8; 16];
            pair[..8].copy_from_slice(&c.x.to_le_bytes());
            pair[8..].copy_from_slice(&c.y.to_le_bytes());
            bytes.push(pair);
        }
    }
    (words, coordinates, bytes)
}

#[tokio::test]
async fn an_anonymous_report_holds_no_restricted_name_id_or_coordinate() {
    let demo = demo();
    let records = faro::storage::open(&demo.db, 1)
        .await
        .unwrap()
        .load_all()
        .await
        .unwrap();
    let (words, coordinates, bytes) = restricted(&records);
    assert!(!words.is_empty(), "the demo has restricted records");
    // Over an operator's report in the same directory: nothing of it may stay.
    let dir = report(&demo, "public", "4000", Some(&demo.operator));
    assert!(dir.join("uncovered.geojson").exists());
    let dir = report(&demo, "public", "4000", None);
    let names = file_names(&dir);
    assert_eq!(
        names,
        [
            "coverage.csv",
            "coverage.gpkg",
            "gaps.geojson",
            "hexes.geojson",
            "report.html",
            "services.geojson",
            "territories.geojson",
        ]
    );
    for name in &names {
        let raw = std::fs::read(dir.join(name)).unwrap();
        let text = String::from_utf8_lossy(&raw);
        for w in &words {
            assert!(!text.contains(w.as_str()), "{name} holds `{w}`");
        }
        if Path::new(name).extension().is_some_and(|e| e == "geojson") {
            for c in &coordinates {
                assert!(!text.contains(c.as_str()), "{name} holds {c}");
            }
        }
        if Path::new(name).extension().is_some_and(|e| e == "gpkg") {
            for b in &bytes {
                assert!(
                    !raw.windows(16).any(|w| w == b),
                    "{name} holds a restricted position"
                );
            }
        }
    }
    // No settlement or worksite figure anywhere.
    let rows = csv_rows(&dir.join("coverage.csv"));
    for column in [
        "settlements_total",
        "people_total",
        "worksites_total",
        "workers_covered",
    ] {
        assert!(!rows[0].contains_key(column), "{column}");
    }
    for f in geojson_features(&dir, "hexes") {
        let p = f["properties"].as_object().unwrap();
        assert!(
            !p.contains_key("people") && !p.contains_key("settlements"),
            "{p:?}"
        );
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("Public report."),
        "the page says what is left out"
    );
    assert!(!html.contains("Restricted."));
    assert_no_external_url(&html);
    assert_tags_balance(&html);
    // The public figures equal the anonymous library's.
    let public = library_view(&demo.db, Visibility::Anonymous).await;
    let figures = coverage::coverage(&public, &query(4_000.0)).unwrap();
    for (row, f) in rows.iter().zip(&figures.territories) {
        assert!(
            (row["covered_area_km2"].parse::<f64>().unwrap() - f.covered_area_km2).abs() <= 1e-6
        );
        assert_eq!(row["services"].parse::<usize>().unwrap(), f.services);
    }
}

#[test]
fn bad_flags_are_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("empty.db").display());
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap().to_owned();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("report");
    for (args, flag, says) in [
        (
            vec!["--kind", "bakery", "--radius-m", "15000", "--out", &out_s],
            "--kind",
            "unknown service kind `bakery`",
        ),
        (
            vec!["--kind", "pas", "--radius-m", "0", "--out", &out_s],
            "--radius-m",
            "out of range",
        ),
        (
            vec!["--kind", "pas", "--radius-m", "100001", "--out", &out_s],
            "--radius-m",
            "out of range",
        ),
        (
            vec!["--kind", "pas", "--radius-m", "-5", "--out", &out_s],
            "--radius-m",
            "out of range",
        ),
        (
            vec!["--kind", "pas", "--radius-m", "far", "--out", &out_s],
            "--radius-m",
            "invalid value",
        ),
        (
            vec![
                "--kind",
                "pas",
                "--radius-m",
                "1000",
                "--month",
                "13",
                "--out",
                &out_s,
            ],
            "--month",
            "1 to 12",
        ),
        (
            vec![
                "--kind",
                "pas",
                "--radius-m",
                "1000",
                "--open-at",
                "tuesday",
                "--out",
                &out_s,
            ],
            "--open-at",
            "RFC 3339",
        ),
        (
            vec![
                "--kind",
                "pas",
                "--radius-m",
                "1000",
                "--resolution",
                "12",
                "--out",
                &out_s,
            ],
            "--resolution",
            "5 to 9",
        ),
        (
            vec![
                "--kind",
                "pas",
                "--radius-m",
                "1000",
                "--k",
                "0",
                "--out",
                &out_s,
            ],
            "--k",
            "1 to 20",
        ),
        (
            vec![
                "--kind",
                "pas",
                "--radius-m",
                "1000",
                "--out",
                under_file.to_str().unwrap(),
            ],
            "--out",
            "cannot create",
        ),
        (
            vec![
                "--kind",
                "pas",
                "--radius-m",
                "1000",
                "--token",
                "faro_0000",
                "--out",
                &out_s,
            ],
            "--token",
            "",
        ),
    ] {
        let mut all = vec!["report"];
        all.extend(args.iter().copied());
        let o = faro(&all, &db);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert!(
            stderr.contains(flag) && stderr.contains(says),
            "{args:?}: {stderr}"
        );
        assert!(
            !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
            "{args:?} wrote something"
        );
    }
    // A store without territories: said, and nothing written.
    let o = faro(
        &[
            "report",
            "--kind",
            "pas",
            "--radius-m",
            "1000",
            "--out",
            &out_s,
        ],
        &db,
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no territory"),
        "{o:?}"
    );
    assert!(std::fs::read_dir(&out).unwrap().next().is_none());
}

#[tokio::test]
async fn capacity_month_and_one_territory_are_the_library_figures() {
    let demo = demo();
    let view = library_view(&demo.db, Visibility::Everything).await;
    // The first territory of the data, whatever it is.
    let all = coverage::coverage(&view, &query(10_000.0)).unwrap();
    let territory = all.territories[0]
        .territory
        .as_ref()
        .unwrap()
        .id()
        .to_string();
    let dir = report_with(
        &demo,
        "shelters",
        &[
            "--kind",
            "shelter,reception_centre",
            "--radius-m",
            "20000",
            "--capacity",
            "--month",
            "9",
            "--territory",
            &territory,
        ],
        Some(&demo.operator),
    );
    let q = CoverageQuery {
        territory: Some(faro::domain::RecordId::parse(&territory).unwrap()),
        month: Some(faro::domain::Month::new(9).unwrap()),
        capacity: true,
        ..CoverageQuery::new(
            vec![ServiceKind::ReceptionCentre, ServiceKind::Shelter],
            20_000.0,
        )
    };
    let figures = coverage::coverage(&view, &q).unwrap();
    let rows = csv_rows(&dir.join("coverage.csv"));
    assert_eq!(rows.len(), 2, "the territory and the total");
    assert_eq!(rows[0]["territory"], territory);
    for (row, f) in rows.iter().zip([&figures.territories[0], &figures.total]) {
        let c = f.capacity.unwrap();
        let int = |k: &str| row[k].parse::<u64>().unwrap();
        assert_eq!(int("beds"), c.beds);
        assert_eq!(int("demand_in_reach"), c.demand_in_reach.unwrap());
        assert_eq!(int("without_bed"), c.without_bed.unwrap());
        assert_eq!(int("people_covered"), f.settlements.unwrap().size_covered);
        assert_eq!(int("workers_total"), f.worksites.unwrap().size_total);
    }
    assert_eq!(geojson_features(&dir, "territories").len(), 1);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("September") && html.contains("people assigned to beds"));
    assert_eq!(html.matches("<svg class=\"map\"").count(), 3);
    assert_tags_balance(&html);
    // An unknown territory is named as the flag's problem.
    let o = faro(
        &[
            "report",
            "--kind",
            KINDS,
            "--radius-m",
            "1000",
            "--territory",
            "no-such-territory",
            "--out",
            demo.dir.path().join("none").to_str().unwrap(),
        ],
        &demo.db,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && stderr.contains("--territory"),
        "{stderr}"
    );
}
