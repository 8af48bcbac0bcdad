//! `/coverage*` over HTTP on the demo data: figures against a brute force over the demo files
//! themselves, access rules, parameter checks, the cache and its invalidation.

use std::collections::HashSet;

use geo::{Distance, Geodesic, InteriorPoint, Intersects};
use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app};

const Q: &str = "kind=focal_point,pas&radius_m=5000";

fn demo(collection: &str) -> Vec<Value> {
    let path = format!("{}/data/{collection}.geojson", env!("CARGO_MANIFEST_DIR"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["features"].as_array().unwrap().clone()
}

fn geometry(f: &Value) -> geo::Geometry<f64> {
    let g: geojson::Geometry = serde_json::from_value(f["geometry"].clone()).unwrap();
    geo::Geometry::try_from(g).unwrap()
}

fn point(f: &Value) -> geo::Point<f64> {
    match geometry(f) {
        geo::Geometry::Point(p) => p,
        other => other.interior_point().unwrap(),
    }
}

/// Per territory id, (records, covered, size, size covered) by brute force over the demo
/// files: the geodesic distance from each record's representative point to every chosen
/// service.
fn brute_force(
    collection: &str,
    size: &str,
    kinds: &[&str],
    radius_m: f64,
) -> Vec<(String, [u64; 4])> {
    let services: Vec<geo::Point<f64>> = demo("services")
        .iter()
        .filter(|s| kinds.contains(&s["properties"]["kind"].as_str().unwrap()))
        .map(point)
        .collect();
    let records = demo(collection);
    demo("territories")
        .iter()
        .filter(|t| t["properties"]["level"] == "territory")
        .map(|t| {
            let area = geometry(t);
            let mut out = [0_u64; 4];
            for r in &records {
                let p = point(r);
                if !area.intersects(&p) {
                    continue;
                }
                let n = r["properties"][size].as_u64().unwrap_or(0);
                let covered = services
                    .iter()
                    .any(|s| Geodesic.distance(*s, p) <= radius_m);
                out[0] += 1;
                out[1] += u64::from(covered);
                out[2] += n;
                out[3] += if covered { n } else { 0 };
            }
            (t["id"].as_str().unwrap().to_owned(), out)
        })
        .collect()
}

#[tokio::test]
async fn per_territory_counts_equal_a_brute_force_over_the_demo_files() {
    let app = spawn_app().await;
    let body = app
        .json(Some(&app.operator), &format!("/coverage?{Q}"), 200)
        .await;
    assert_eq!(body["radius_m"], 5000.0);
    assert_eq!(body["kind"], json!(["focal_point", "pas"]));
    let territories = body["territories"].as_array().unwrap();
    assert_eq!(territories.len(), 4);
    for (collection, size, key) in [
        ("settlements", "population_estimate", "people"),
        ("worksites", "workers_estimate", "workers"),
    ] {
        let expected = brute_force(collection, size, &["focal_point", "pas"], 5_000.0);
        assert_eq!(expected.len(), 4);
        let mut totals = [0_u64; 4];
        for (id, want) in expected {
            let got = territories.iter().find(|t| t["id"] == id.as_str()).unwrap();
            let f = &got[collection];
            let got = [
                f["total"].as_u64().unwrap(),
                f["covered"].as_u64().unwrap(),
                f[format!("{key}_total")].as_u64().unwrap(),
                f[format!("{key}_covered")].as_u64().unwrap(),
            ];
            assert_eq!(got, want, "{collection} in {id}");
            for (t, w) in totals.iter_mut().zip(want) {
                *t += w;
            }
        }
        // The demo territories do not overlap: the total is the sum.
        assert_eq!(
            body["total"][collection]["total"].as_u64().unwrap(),
            totals[0]
        );
        assert_eq!(
            body["total"][collection]["covered"].as_u64().unwrap(),
            totals[1]
        );
        assert!(
            totals[1] > 0 && totals[1] < totals[0],
            "{collection}: a real mix"
        );
    }
    for t in territories {
        let share = t["covered_share"].as_f64().unwrap();
        let ratio = t["covered_area_km2"].as_f64().unwrap() / t["area_km2"].as_f64().unwrap();
        assert!((share - ratio).abs() < 1e-5, "{t}");
        assert!(share > 0.0 && share <= 1.0);
    }
}

#[tokio::test]
async fn a_radius_covering_the_province_covers_every_territory_wholly() {
    let app = spawn_app().await;
    let body = app
        .json(Some(&app.admin), "/coverage?radius_m=100000", 200)
        .await;
    for t in body["territories"].as_array().unwrap() {
        assert!(
            (t["covered_share"].as_f64().unwrap() - 1.0).abs() < 1e-9,
            "{t}"
        );
        assert_eq!(t["settlements"]["covered"], t["settlements"]["total"]);
    }
    assert!((body["total"]["covered_share"].as_f64().unwrap() - 1.0).abs() < 1e-9);
}

/// Every id, name and coordinate of a restricted record or a confidential service in the demo
/// files, as the text a JSON body would carry.
fn secrets() -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |f: &Value| {
        out.push(format!("\"{}\"", f["id"].as_str().unwrap()));
        out.push(format!("\"{}\"", f["properties"]["name"].as_str().unwrap()));
        let mut coords = Vec::new();
        collect_numbers(&f["geometry"]["coordinates"], &mut coords);
        // Every position as JSON writes it: `[lon,lat]`.
        out.extend(coords.chunks(2).map(|c| format!("[{},{}]", c[0], c[1])));
    };
    for c in ["settlements", "worksites"] {
        demo(c).iter().for_each(&mut add);
    }
    demo("services")
        .iter()
        .filter(|s| s["properties"]["confidential"] == true)
        .for_each(add);
    out
}

fn collect_numbers(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Number(n) => out.push(n.as_f64().unwrap()),
        Value::Array(a) => a.iter().for_each(|v| collect_numbers(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn anonymous_answers_carry_no_restricted_coordinate_id_or_name() {
    let app = spawn_app().await;
    let secrets = secrets();
    assert!(secrets.len() > 500);
    for path in [
        format!("/coverage?{Q}"),
        "/coverage?kind=shelter&radius_m=20000&capacity=true".to_owned(),
        format!("/coverage/gaps?{Q}"),
        "/coverage/gaps?kind=shelter&radius_m=20000".to_owned(),
        format!("/coverage/hexes?{Q}&resolution=7"),
        "/coverage/hexes?kind=shelter&radius_m=5000&resolution=6".to_owned(),
    ] {
        let resp = app.get(&path).await;
        assert_eq!(resp.status(), 200, "{path}");
        let text = resp.text().await.unwrap();
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{path} carries {s}");
        }
        let body: Value = serde_json::from_str(&text).unwrap();
        if path.starts_with("/coverage?") {
            for t in body["territories"].as_array().unwrap() {
                assert_eq!(t["settlements"], Value::Null, "{path}");
                assert_eq!(t["worksites"], Value::Null, "{path}");
                if let Some(c) = t.get("capacity") {
                    assert_eq!(c["demand_in_reach"], Value::Null);
                    assert_eq!(c["without_bed"], Value::Null);
                }
            }
        }
        if path.contains("hexes") {
            for f in body["features"].as_array().unwrap() {
                for key in ["people", "workers", "settlements", "worksites"] {
                    assert!(f["properties"].get(key).is_none(), "{path} {key}");
                }
            }
        }
    }
    for path in [
        format!("/coverage/uncovered?{Q}"),
        format!("/coverage/uncovered?{Q}&collection=worksites"),
        format!("/coverage/suggest?{Q}&k=2"),
    ] {
        let body = app.json(None, &path, 401).await;
        assert_error(&body, "unauthorized", "restricted");
    }
}

#[tokio::test]
async fn anonymous_figures_ignore_confidential_services_and_authorised_ones_count_them() {
    let app = spawn_app().await;
    let confidential: Vec<Value> = demo("services")
        .into_iter()
        .filter(|s| s["properties"]["confidential"] == true)
        .collect();
    assert!(!confidential.is_empty());
    let path = "/coverage/gaps?kind=shelter&radius_m=20000";
    let anonymous = app.get(path).await.text().await.unwrap();
    let authorised = app.get_as(&app.operator, path).await.text().await.unwrap();
    assert_ne!(anonymous, authorised, "confidential shelters close gaps");
    // Delete the confidential shelters: the anonymous answer must not move, and the
    // authorised one (recomputed after the write, not cached) becomes the anonymous one.
    for s in &confidential {
        let item = format!("/collections/services/items/{}", s["id"].as_str().unwrap());
        let resp = app
            .client
            .delete(app.url(&item))
            .bearer_auth(&app.admin)
            .header("If-Match", app.etag(&item).await)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
    }
    assert_eq!(app.get(path).await.text().await.unwrap(), anonymous);
    let after = app.get_as(&app.operator, path).await.text().await.unwrap();
    assert_eq!(after, anonymous);
}

#[tokio::test]
async fn answers_are_cached_until_a_write() {
    let app = spawn_app().await;
    let path = format!("/coverage?{Q}");
    let first = app.json(Some(&app.operator), &path, 200).await;
    assert_eq!(app.json(Some(&app.operator), &path, 200).await, first);
    // A new PAS in the middle of the emptiest territory changes the answer at once.
    let gaps = app
        .json(
            Some(&app.operator),
            &format!("/coverage/uncovered?{Q}"),
            200,
        )
        .await;
    let far = &gaps["features"][0];
    assert!(far["properties"]["distance_m"].as_f64().unwrap() > 5_000.0);
    let c = &far["geometry"]["coordinates"];
    let at = if far["geometry"]["type"] == "Point" {
        c.clone()
    } else {
        c[0][0].clone()
    };
    let feature = json!({
        "type": "Feature", "id": "svc-test-coverage",
        "geometry": {"type": "Point", "coordinates": at},
        "properties": {"name": "PAS di prova", "kind": "pas"}
    });
    let resp = app
        .client
        .post(app.url("/collections/services/items"))
        .bearer_auth(&app.editor)
        .json(&feature)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let second = app.json(Some(&app.operator), &path, 200).await;
    assert_ne!(second, first);
    let covered = |b: &Value| {
        b["total"]["settlements"]["covered"].as_u64().unwrap()
            + b["total"]["worksites"]["covered"].as_u64().unwrap()
    };
    assert!(covered(&second) > covered(&first));
}

#[tokio::test]
async fn uncovered_records_come_farthest_first_with_their_nearest_service() {
    let app = spawn_app().await;
    for collection in ["settlements", "worksites"] {
        let body = app
            .json(
                Some(&app.operator),
                &format!("/coverage/uncovered?{Q}&collection={collection}"),
                200,
            )
            .await;
        let features = body["features"].as_array().unwrap();
        assert!(!features.is_empty(), "{collection}");
        let d: Vec<f64> = features
            .iter()
            .map(|f| f["properties"]["distance_m"].as_f64().unwrap())
            .collect();
        assert!(d.windows(2).all(|w| w[0] >= w[1]), "{d:?}");
        assert!(d.iter().all(|d| *d > 5_000.0));
        let coverage = app
            .json(Some(&app.operator), &format!("/coverage?{Q}"), 200)
            .await;
        let t = &coverage["total"][collection];
        let uncovered = t["total"].as_u64().unwrap() - t["covered"].as_u64().unwrap();
        assert_eq!(features.len() as u64, uncovered);
        for f in features {
            let kind = f["properties"]["nearest_service"]["kind"].as_str().unwrap();
            assert!(kind == "focal_point" || kind == "pas");
        }
    }
}

#[tokio::test]
async fn hexes_and_suggestions_answer_authorised_callers() {
    let app = spawn_app().await;
    let hexes = app
        .json(
            Some(&app.operator),
            &format!("/coverage/hexes?{Q}&resolution=6"),
            200,
        )
        .await;
    let cells = hexes["features"].as_array().unwrap();
    assert!(cells.len() > 50, "{}", cells.len());
    let people: u64 = cells
        .iter()
        .map(|c| c["properties"]["people"].as_u64().unwrap())
        .sum();
    let coverage = app
        .json(Some(&app.operator), &format!("/coverage?{Q}"), 200)
        .await;
    assert_eq!(
        people,
        coverage["total"]["settlements"]["people_total"]
            .as_u64()
            .unwrap()
    );
    for c in cells {
        let covered = c["properties"]["covered"].as_bool().unwrap();
        let d = c["properties"]["distance_m"].as_f64().unwrap();
        assert_eq!(covered, d <= 5_000.0);
    }
    let ids: HashSet<&str> = cells.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), cells.len(), "each cell once");

    let s = app
        .json(
            Some(&app.operator),
            &format!("/coverage/suggest?{Q}&k=2&resolution=7"),
            200,
        )
        .await;
    let features = s["features"].as_array().unwrap();
    assert_eq!(features.len(), 2);
    let gain = |f: &Value| {
        f["properties"]["people"].as_u64().unwrap() + f["properties"]["workers"].as_u64().unwrap()
    };
    assert!(gain(&features[0]) >= gain(&features[1]) && gain(&features[1]) > 0);
    let uncovered =
        s["uncovered"]["people"].as_u64().unwrap() + s["uncovered"]["workers"].as_u64().unwrap();
    assert!(gain(&features[0]) + gain(&features[1]) <= uncovered);
}

#[tokio::test]
async fn bad_parameters_are_400s_naming_the_parameter() {
    let app = spawn_app().await;
    for (path, names) in [
        ("/coverage?kind=pas", "radius_m"),
        ("/coverage?radius_m=0", "radius_m"),
        ("/coverage?radius_m=100001", "radius_m"),
        ("/coverage?radius_m=abc", "radius_m"),
        ("/coverage?radius_m=1000&kind=bakery", "kind"),
        ("/coverage?radius_m=1000&month=13", "month"),
        ("/coverage?radius_m=1000&open_at=tuesday", "open_at"),
        (
            "/coverage?radius_m=1000&territory=terr-nowhere",
            "territory",
        ),
        ("/coverage?radius_m=1000&territory=a/b", "territory"),
        ("/coverage?radius_m=1000&capacity=maybe", "capacity"),
        ("/coverage/hexes?radius_m=1000&resolution=10", "resolution"),
        ("/coverage/gaps?radius_m=1000&resolution=7", "resolution"),
    ] {
        let body = app.json(None, path, 400).await;
        assert!(
            body["message"].as_str().unwrap().contains(names),
            "{path}: {body}"
        );
    }
    for (path, names) in [
        ("/coverage/suggest?radius_m=1000&k=0", "k"),
        ("/coverage/suggest?radius_m=1000&k=21", "k"),
        (
            "/coverage/suggest?radius_m=1000&candidates=towns",
            "candidates",
        ),
        (
            "/coverage/uncovered?radius_m=1000&collection=services",
            "collection",
        ),
    ] {
        let body = app.json(Some(&app.operator), path, 400).await;
        assert!(
            body["message"].as_str().unwrap().contains(names),
            "{path}: {body}"
        );
    }
}

/// The cells of `resolution` whose centre lies in a territory of level `territory`, by h3o's
/// own tiler over the demo file (each cell once).
fn demo_cells(resolution: h3o::Resolution) -> usize {
    let mut cells = HashSet::new();
    for t in demo("territories")
        .iter()
        .filter(|t| t["properties"]["level"] == "territory")
    {
        let polygons = match geometry(t) {
            geo::Geometry::Polygon(p) => vec![p],
            geo::Geometry::MultiPolygon(m) => m.0,
            other => panic!("{}: not areal: {other:?}", t["id"]),
        };
        let mut tiler = h3o::geom::TilerBuilder::new(resolution)
            .containment_mode(h3o::geom::ContainmentMode::ContainsCentroid)
            .build();
        tiler.add_batch(polygons).unwrap();
        cells.extend(tiler.into_coverage());
    }
    cells.len()
}

/// The cap on cells per `/coverage/hexes` answer (the docs and `MAX_HEX_CELLS` say 10,000).
const HEX_CAP: usize = 10_000;

#[tokio::test]
async fn hexes_answer_at_most_the_cap_of_cells_and_name_resolution_beyond() {
    let app = spawn_app().await;
    let mut refused = 0;
    for r in 5..=9_u8 {
        let expected = demo_cells(h3o::Resolution::try_from(r).unwrap());
        let path = format!("/coverage/hexes?{Q}&resolution={r}");
        // A new connection each time: a debug build may take longer than the server's
        // keep-alive over the finer resolutions.
        if expected <= HEX_CAP {
            // Anonymous: no demand, so no cell beyond those whose centre is in a territory.
            let resp = reqwest::get(app.url(&path)).await.unwrap();
            assert_eq!(resp.status(), 200, "{path}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(
                body["numberReturned"].as_u64().unwrap(),
                expected as u64,
                "{path}"
            );
        } else {
            refused += 1;
            let resp = reqwest::Client::new()
                .get(app.url(&path))
                .bearer_auth(&app.operator)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 400, "{path}");
            let body: Value = resp.json().await.unwrap();
            let message = body["message"].as_str().unwrap();
            assert!(message.contains("resolution"), "{path}: {body}");
            assert!(
                message.contains("10000"),
                "{path}: the cap is named: {body}"
            );
            // The count named: the cells of the territories, and those of the demand outside.
            let named: usize = message
                .split("about ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{path}: no count in {body}"));
            assert!(
                named >= expected && named > HEX_CAP,
                "{path}: {named} vs {expected}"
            );
        }
    }
    // The demo territories give more cells than the cap at resolution 9, or this test checks
    // the refusal nowhere.
    assert!(refused > 0, "no resolution over the cap");
}

#[tokio::test]
async fn an_itinerant_stop_covers_only_when_open() {
    let app = spawn_app().await;
    // The Valdobbiadene stop is open on Monday mornings only (Europe/Rome).
    let stop = demo("services")
        .into_iter()
        .find(|s| s["id"] == "svc-punto-focale-itinerante-valdobbiadene")
        .unwrap();
    assert_eq!(stop["properties"]["opening_hours"], "Mo 09:00-12:00");
    let c = &stop["geometry"]["coordinates"];
    let (lon, lat) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
    // The hexes of a 1 km radius: the cell holding the stop (resolution 8: its centre is
    // within some 530 m of the stop) is covered on Monday at 10:00 (09:00Z in winter) and not
    // on Tuesday, unless another focal point is within reach.
    let hexes = |at: &str| {
        format!("/coverage/hexes?kind=focal_point&radius_m=1000&resolution=8&open_at={at}")
    };
    let cell = h3o::LatLng::new(lat, lon)
        .unwrap()
        .to_cell(h3o::Resolution::Eight)
        .to_string();
    let covered_at = |body: &Value| {
        body["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == cell.as_str())
            .map(|f| f["properties"]["covered"].as_bool().unwrap())
    };
    let monday = app.json(None, &hexes("2026-11-30T09:30:00Z"), 200).await;
    let tuesday = app.json(None, &hexes("2026-12-01T09:30:00Z"), 200).await;
    assert_eq!(covered_at(&monday), Some(true));
    assert_eq!(covered_at(&tuesday), Some(false));
}
