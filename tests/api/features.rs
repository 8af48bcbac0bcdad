use std::collections::HashSet;

use geo::{Contains, Intersects};
use serde_json::Value;

use crate::helpers::{assert_error, ids, spawn_app};

fn geometry(f: &Value) -> geo::Geometry<f64> {
    let g: geojson::Geometry = serde_json::from_value(f["geometry"].clone()).unwrap();
    g.try_into().unwrap()
}

#[tokio::test]
async fn landing_page_is_json_for_clients_and_html_for_browsers() {
    let app = spawn_app().await;
    let body = app.json(None, "/", 200).await;
    let rels: Vec<&str> = body["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rel"].as_str().unwrap())
        .collect();
    for rel in ["self", "service-desc", "conformance", "data"] {
        assert!(rels.contains(&rel), "missing {rel} in {rels:?}");
    }
    let html = app
        .client
        .get(app.url("/"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 200);
    assert!(
        html.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let json = app
        .client
        .get(app.url("/?f=json"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(
        json.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

#[tokio::test]
async fn conformance_declares_core_and_geojson() {
    let app = spawn_app().await;
    let body = app.json(None, "/conformance", 200).await;
    let classes: Vec<&str> = body["conformsTo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(classes.contains(&"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"));
    assert!(classes.contains(&"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"));
}

#[tokio::test]
async fn collections_lists_the_four_with_items_links() {
    let app = spawn_app().await;
    let body = app.json(None, "/collections", 200).await;
    let names: HashSet<&str> = body["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        HashSet::from(["services", "settlements", "worksites", "territories"])
    );
    let services = app.json(None, "/collections/services", 200).await;
    let bbox = &services["extent"]["spatial"]["bbox"][0];
    // The demo services lie in the Province of Treviso.
    assert!(
        bbox[0].as_f64().unwrap() > 11.7 && bbox[2].as_f64().unwrap() < 12.7,
        "{bbox}"
    );
    let items_link = services["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "items")
        .unwrap();
    assert!(
        items_link["href"]
            .as_str()
            .unwrap()
            .ends_with("/collections/services/items")
    );
}

#[tokio::test]
async fn unknown_collection_is_404_with_a_json_error() {
    let app = spawn_app().await;
    let body = app.json(None, "/collections/bakeries/items", 404).await;
    assert_error(&body, "not_found", "bakeries");
    let body = app.json(None, "/no/such/route", 404).await;
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn items_are_paged_with_next_links_until_every_item_is_seen() {
    let app = spawn_app().await;
    let first = app
        .json(
            Some(&app.operator),
            "/collections/worksites/items?limit=50",
            200,
        )
        .await;
    let total = first["numberMatched"].as_u64().unwrap();
    assert!(total >= 150, "demo has at least 150 worksites, got {total}");
    assert_eq!(first["numberReturned"], 50);
    let mut seen = ids(&first);
    let mut page = first;
    loop {
        let next = page["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["rel"] == "next")
            .cloned();
        let Some(next) = next else { break };
        let href = next["href"].as_str().unwrap();
        let path = href
            .strip_prefix(&app.address)
            .expect("absolute link to this server");
        page = app.json(Some(&app.operator), path, 200).await;
        seen.extend(ids(&page));
    }
    assert_eq!(seen.len() as u64, total);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no item twice across pages");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen, "items come in id order");
}

#[tokio::test]
async fn limit_defaults_to_100_and_offset_past_the_end_is_empty() {
    let app = spawn_app().await;
    let page = app
        .json(Some(&app.operator), "/collections/worksites/items", 200)
        .await;
    assert_eq!(page["numberReturned"], 100);
    let past = app
        .json(
            Some(&app.operator),
            "/collections/worksites/items?offset=100000",
            200,
        )
        .await;
    assert_eq!(past["numberReturned"], 0);
    assert!(past["numberMatched"].as_u64().unwrap() >= 150);
}

#[tokio::test]
async fn bbox_returns_exactly_the_items_intersecting_it() {
    let app = spawn_app().await;
    let all = app
        .json(
            Some(&app.operator),
            "/collections/worksites/items?limit=10000",
            200,
        )
        .await;
    let rect = geo::Rect::new(
        geo::coord! {x: 12.0, y: 45.8},
        geo::coord! {x: 12.35, y: 46.0},
    );
    let mut expected: Vec<String> = all["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| geometry(f).intersects(&rect))
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    assert!(!expected.is_empty());
    let got = app
        .json(
            Some(&app.operator),
            "/collections/worksites/items?limit=10000&bbox=12.0,45.8,12.35,46.0",
            200,
        )
        .await;
    assert_eq!(ids(&got), expected);
    assert_eq!(
        usize::try_from(got["numberMatched"].as_u64().unwrap()).unwrap(),
        expected.len()
    );
}

#[tokio::test]
async fn malformed_bbox_is_a_400_naming_bbox() {
    let app = spawn_app().await;
    for bad in [
        "12.5,45,12.0,46",
        "12,46,12.5,45",
        "12,45,12.5",
        "12,45,200,46",
        "NaN,45,12,46",
        "a,b,c,d",
        "12,-95,13,46",
    ] {
        let body = app
            .json(
                None,
                &format!("/collections/services/items?bbox={bad}"),
                400,
            )
            .await;
        assert_error(&body, "invalid_parameter", "bbox");
    }
}

#[tokio::test]
async fn kind_filter_keeps_only_those_kinds_and_rejects_unknown_ones() {
    let app = spawn_app().await;
    let page = app
        .json(
            None,
            "/collections/services/items?kind=job_centre,prefecture",
            200,
        )
        .await;
    let kinds: HashSet<&str> = page["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, HashSet::from(["job_centre", "prefecture"]));
    let body = app
        .json(None, "/collections/services/items?kind=bakery", 400)
        .await;
    assert_error(&body, "invalid_parameter", "kind");
    let vineyards = app
        .json(
            Some(&app.operator),
            "/collections/worksites/items?kind=vineyard&limit=1000",
            200,
        )
        .await;
    assert!(
        vineyards["features"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["properties"]["kind"] == "vineyard")
    );
    assert!(vineyards["numberMatched"].as_u64().unwrap() > 10);
}

#[tokio::test]
async fn territory_filter_keeps_items_inside_that_territory() {
    let app = spawn_app().await;
    let territory = app
        .json(None, "/collections/territories/items/terr-pieve", 200)
        .await;
    let area = geometry(&territory);
    let page = app
        .json(
            Some(&app.operator),
            "/collections/worksites/items?territory=terr-pieve&limit=10000",
            200,
        )
        .await;
    let all = app
        .json(
            Some(&app.operator),
            "/collections/worksites/items?limit=10000",
            200,
        )
        .await;
    let mut expected: Vec<String> = all["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| area.intersects(&geometry(f)))
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(ids(&page), expected);
    // Services' points lie inside.
    let services = app
        .json(
            None,
            "/collections/services/items?territory=terr-pieve",
            200,
        )
        .await;
    for f in services["features"].as_array().unwrap() {
        let geo::Geometry::Point(p) = geometry(f) else {
            panic!("services are points")
        };
        assert!(area.contains(&p) || area.intersects(&p));
    }
    let body = app
        .json(
            None,
            "/collections/services/items?territory=terr-nowhere",
            400,
        )
        .await;
    assert_error(&body, "invalid_parameter", "territory");
}

#[tokio::test]
async fn q_searches_names_case_insensitively() {
    let app = spawn_app().await;
    let page = app
        .json(None, "/collections/services/items?q=PREFETTURA", 200)
        .await;
    assert!(page["numberMatched"].as_u64().unwrap() >= 1);
    for f in page["features"].as_array().unwrap() {
        let text = f["properties"].to_string().to_lowercase();
        assert!(text.contains("prefettura"));
    }
}

#[tokio::test]
async fn bad_paging_and_unknown_parameters_are_400s() {
    let app = spawn_app().await;
    for (query, name) in [
        ("limit=0", "limit"),
        ("limit=10001", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
    ] {
        let body = app
            .json(None, &format!("/collections/services/items?{query}"), 400)
            .await;
        assert_error(&body, "invalid_parameter", name);
    }
    let body = app
        .json(None, "/collections/services/items?kinds=pas", 400)
        .await;
    assert_error(&body, "invalid_parameter", "kinds");
    let body = app
        .json(None, "/collections/services/items?limit=1&limit=2", 400)
        .await;
    assert_error(&body, "invalid_parameter", "limit");
    let body = app
        .json(None, "/collections/services/items?f=xml", 400)
        .await;
    assert_error(&body, "invalid_parameter", "f");
}

#[tokio::test]
async fn an_item_has_an_etag_and_honours_if_none_match() {
    let app = spawn_app().await;
    let resp = app
        .get("/collections/services/items/svc-prefettura-treviso")
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/geo+json");
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "Feature");
    assert_eq!(body["properties"]["kind"], "prefecture");
    crate::helpers::assert_etag_version(&etag, body["properties"]["version"].as_i64().unwrap());
    let again = app
        .client
        .get(app.url("/collections/services/items/svc-prefettura-treviso"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let body = app
        .json(None, "/collections/services/items/svc-does-not-exist", 404)
        .await;
    assert_error(&body, "not_found", "svc-does-not-exist");
}
