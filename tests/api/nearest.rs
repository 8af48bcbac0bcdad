use geo::{Distance, Geodesic};
use serde_json::Value;

use crate::helpers::{assert_error, ids, spawn_app};

fn distances(fc: &Value) -> Vec<f64> {
    fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["distance_m"].as_f64().unwrap())
        .collect()
}

/// The demo services as the test data itself has them (`data/services.geojson`, what
/// `spawn_app` loads), independent of anything the server answers.
fn demo_services() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/services.geojson");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["features"].as_array().unwrap().clone()
}

/// Brute force over every demo service the caller may see (anonymous: not confidential):
/// geodesic distance, ties by id.
fn brute_force(
    authorised: bool,
    lon: f64,
    lat: f64,
    kinds: &[&str],
    k: usize,
) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = demo_services()
        .iter()
        .filter(|f| authorised || f["properties"]["confidential"] != true)
        .filter(|f| kinds.is_empty() || kinds.contains(&f["properties"]["kind"].as_str().unwrap()))
        .map(|f| {
            let c = &f["geometry"]["coordinates"];
            let d = Geodesic.distance(
                geo::Point::new(lon, lat),
                geo::Point::new(c[0].as_f64().unwrap(), c[1].as_f64().unwrap()),
            );
            (f["id"].as_str().unwrap().to_owned(), d)
        })
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(k);
    v
}

#[tokio::test]
async fn the_readme_query_returns_three_focal_points_or_pas_nearest_first() {
    let app = spawn_app().await;
    let fc = app
        .json(
            None,
            "/nearest?lon=12.24&lat=45.67&kind=focal_point,pas&k=3",
            200,
        )
        .await;
    assert_eq!(fc["type"], "FeatureCollection");
    assert_eq!(fc["features"].as_array().unwrap().len(), 3);
    let d = distances(&fc);
    assert!(d.windows(2).all(|w| w[0] <= w[1]), "sorted: {d:?}");
    for f in fc["features"].as_array().unwrap() {
        let kind = f["properties"]["kind"].as_str().unwrap();
        assert!(kind == "focal_point" || kind == "pas");
    }
    let expected = brute_force(false, 12.24, 45.67, &["focal_point", "pas"], 3);
    assert_eq!(
        ids(&fc),
        expected.iter().map(|e| e.0.clone()).collect::<Vec<_>>()
    );
    for (got, (_, want)) in d.iter().zip(&expected) {
        assert!((got - want).abs() < 0.001, "{got} vs {want}");
    }
}

#[tokio::test]
async fn nearest_matches_brute_force_from_many_places() {
    let app = spawn_app().await;
    for (lon, lat) in [
        (12.0, 45.6),
        (12.6, 46.05),
        (11.8, 45.9),
        (12.3, 45.75),
        (13.5, 44.0),
    ] {
        for kinds in [vec![], vec!["shelter"], vec!["job_centre", "health"]] {
            let path = format!(
                "/nearest?lon={lon}&lat={lat}&k=7{}",
                if kinds.is_empty() {
                    String::new()
                } else {
                    format!("&kind={}", kinds.join(","))
                }
            );
            let fc = app.json(Some(&app.operator), &path, 200).await;
            let expected = brute_force(true, lon, lat, &kinds, 7);
            assert_eq!(
                ids(&fc),
                expected.iter().map(|e| e.0.clone()).collect::<Vec<_>>(),
                "{path}"
            );
        }
    }
}

#[tokio::test]
async fn k_defaults_to_five_and_max_distance_cuts_the_list() {
    let app = spawn_app().await;
    let fc = app.json(None, "/nearest?lon=12.24&lat=45.67", 200).await;
    assert_eq!(fc["features"].as_array().unwrap().len(), 5);
    let near = app
        .json(
            None,
            "/nearest?lon=12.24&lat=45.67&k=100&max_distance_m=5000",
            200,
        )
        .await;
    let d = distances(&near);
    assert!(!d.is_empty() && d.iter().all(|x| *x <= 5000.0), "{d:?}");
    let all = app
        .json(None, "/nearest?lon=12.24&lat=45.67&k=100", 200)
        .await;
    let within = distances(&all).into_iter().filter(|x| *x <= 5000.0).count();
    assert_eq!(d.len(), within);
}

#[tokio::test]
async fn language_filter_keeps_services_speaking_it() {
    let app = spawn_app().await;
    let fc = app
        .json(None, "/nearest?lon=12.24&lat=45.67&k=20&language=ar", 200)
        .await;
    assert!(!fc["features"].as_array().unwrap().is_empty());
    for f in fc["features"].as_array().unwrap() {
        let langs: Vec<&str> = f["properties"]["languages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert!(langs.contains(&"ar"), "{langs:?}");
    }
    let body = app
        .json(None, "/nearest?lon=12.24&lat=45.67&language=arabic", 400)
        .await;
    assert_error(&body, "invalid_parameter", "language");
}

#[tokio::test]
async fn open_at_keeps_services_open_then_in_rome_time() {
    let app = spawn_app().await;
    // Sunday 29 November 2026, 03:00 in Rome (02:00 UTC): only round-the-clock services.
    let fc = app
        .json(
            Some(&app.operator),
            "/nearest?lon=12.24&lat=45.67&k=100&open_at=2026-11-29T02:00:00Z",
            200,
        )
        .await;
    let features = fc["features"].as_array().unwrap();
    assert!(!features.is_empty());
    for f in features {
        assert_eq!(
            f["properties"]["opening_hours"], "24/7",
            "{}",
            f["properties"]["name"]
        );
        assert_eq!(f["properties"]["open"], true);
    }
    // The same instant written with an offset gives the same answer.
    let same = app
        .json(
            Some(&app.operator),
            "/nearest?lon=12.24&lat=45.67&k=100&open_at=2026-11-29T03:00:00%2B01:00",
            200,
        )
        .await;
    assert_eq!(ids(&fc), ids(&same));
    let body = app
        .json(None, "/nearest?lon=12.24&lat=45.67&open_at=tomorrow", 400)
        .await;
    assert_error(&body, "invalid_parameter", "open_at");
}

#[tokio::test]
async fn open_at_now_is_the_servers_clock_in_rome_time() {
    // Tuesday 1 December 2026, 10:30 in Rome (09:30 UTC), and the same Tuesday at 03:00.
    let morning = chrono::DateTime::parse_from_rfc3339("2026-12-01T09:30:00Z").unwrap();
    let night = chrono::DateTime::parse_from_rfc3339("2026-12-01T02:00:00Z").unwrap();
    // The oracle: the demo's own opening hours, evaluated with the opening-hours crate.
    let open_at = |at: chrono::NaiveDateTime| -> Vec<String> {
        let mut v: Vec<(String, f64)> = demo_services()
            .iter()
            .filter(|f| f["properties"]["confidential"] != true)
            .filter(|f| {
                f["properties"]["opening_hours"].as_str().is_some_and(|oh| {
                    faro::domain::OpeningHoursSpec::parse(oh)
                        .unwrap()
                        .is_open(at)
                })
            })
            .map(|f| {
                let c = &f["geometry"]["coordinates"];
                let d = Geodesic.distance(
                    geo::Point::new(12.24, 45.67),
                    geo::Point::new(c[0].as_f64().unwrap(), c[1].as_f64().unwrap()),
                );
                (f["id"].as_str().unwrap().to_owned(), d)
            })
            .collect();
        v.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        v.into_iter().map(|e| e.0).collect()
    };
    let day_open = open_at(
        chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(10, 30, 0)
            .unwrap(),
    );
    let night_open = open_at(
        chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(3, 0, 0)
            .unwrap(),
    );
    assert!(
        day_open.len() > night_open.len(),
        "the demo has day-time offices: {} open at 10:30, {} at 03:00",
        day_open.len(),
        night_open.len()
    );
    for (at, expected) in [(morning, &day_open), (night, &night_open)] {
        let app = crate::helpers::spawn_app_at(at.with_timezone(&chrono::Utc)).await;
        let fc = app
            .json(None, "/nearest?lon=12.24&lat=45.67&k=100&open_at=now", 200)
            .await;
        assert_eq!(&ids(&fc), expected, "open_at=now at {at}");
        assert!(
            fc["features"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["properties"]["open"] == true)
        );
    }
}

#[tokio::test]
async fn bad_nearest_parameters_are_400s_naming_them() {
    let app = spawn_app().await;
    for (query, name) in [
        ("lat=45.67", "lon"),
        ("lon=12.24", "lat"),
        ("lon=12.24&lat=95", "lat"),
        ("lon=190&lat=45", "lon"),
        ("lon=NaN&lat=45", "lon"),
        ("lon=inf&lat=45", "lon"),
        ("lon=abc&lat=45", "lon"),
        ("lon=12&lat=45&k=0", "k"),
        ("lon=12&lat=45&k=101", "k"),
        ("lon=12&lat=45&kind=bakery", "kind"),
        ("lon=12&lat=45&max_distance_m=-5", "max_distance_m"),
        ("lon=12&lat=45&radius=5", "radius"),
    ] {
        let body = app.json(None, &format!("/nearest?{query}"), 400).await;
        assert_error(&body, "invalid_parameter", name);
    }
}
