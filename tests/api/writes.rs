use serde_json::{Value, json};

use crate::helpers::{assert_error, assert_etag_version, ids, spawn_app};

fn pas(name: &str, lon: f64, lat: f64) -> Value {
    json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"name": name, "kind": "pas", "languages": ["it", "ro"], "opening_hours": "Mo-Fr 09:00-13:00"}})
}

#[tokio::test]
async fn a_created_service_is_visible_to_the_next_read_and_to_nearest() {
    let app = spawn_app().await;
    let mut f = pas("PAS nuovo di Istrana", 12.1, 45.68);
    f["id"] = json!("svc-test-new");
    let resp = app
        .client
        .post(app.url("/collections/services/items"))
        .bearer_auth(&app.editor)
        .json(&f)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.ends_with("/collections/services/items/svc-test-new"));
    assert_etag_version(resp.headers()["etag"].to_str().unwrap(), 1);
    let got = app
        .json(None, "/collections/services/items/svc-test-new", 200)
        .await;
    assert_eq!(got["properties"]["name"], "PAS nuovo di Istrana");
    assert_eq!(got["properties"]["version"], 1);
    let near = app.json(None, "/nearest?lon=12.1&lat=45.68&k=1", 200).await;
    assert_eq!(ids(&near), vec!["svc-test-new"]);
    assert!(
        near["features"][0]["properties"]["distance_m"]
            .as_f64()
            .unwrap()
            < 0.001
    );
}

#[tokio::test]
async fn a_feature_collection_with_one_bad_feature_writes_nothing() {
    let app = spawn_app().await;
    let before = app.json(None, "/collections/services/items", 200).await["numberMatched"].clone();
    let mut bad = pas("Rotto", 12.2, 45.7);
    bad["properties"]["kind"] = json!("bakery");
    let doc = json!({"type": "FeatureCollection", "features": [pas("Buono", 12.2, 45.7), bad, pas("Anche buono", 12.3, 45.7)]});
    let resp = app
        .client
        .post(app.url("/collections/services/items"))
        .bearer_auth(&app.editor)
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_error(&body, "invalid_body", "feature 2");
    assert!(body["message"].as_str().unwrap().contains("kind"));
    let after = app.json(None, "/collections/services/items", 200).await["numberMatched"].clone();
    assert_eq!(before, after);
    // A store-level failure part-way (an id that exists) also leaves nothing behind.
    let mut dup = pas("Doppione", 12.2, 45.7);
    dup["id"] = json!("svc-prefettura-treviso");
    let mut fresh = pas("Nuovo", 12.2, 45.7);
    fresh["id"] = json!("svc-brand-new");
    let doc = json!({"type": "FeatureCollection", "features": [fresh, dup]});
    let resp = app
        .client
        .post(app.url("/collections/services/items"))
        .bearer_auth(&app.editor)
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    app.json(None, "/collections/services/items/svc-brand-new", 404)
        .await;
}

#[tokio::test]
async fn bad_bodies_are_400s_naming_the_field() {
    let app = spawn_app().await;
    let post = |body: String| {
        app.client
            .post(app.url("/collections/services/items"))
            .bearer_auth(&app.editor)
            .header("content-type", "application/geo+json")
            .body(body)
            .send()
    };
    let resp = post("{not json".to_owned()).await.unwrap();
    assert_eq!(resp.status(), 400);
    let cases = [
        (
            json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [12.0, 95.0]}, "properties": {"name": "x", "kind": "pas"}}),
            "geometry",
        ),
        (
            json!({"type": "Feature", "geometry": null, "properties": {"name": "x", "kind": "pas"}}),
            "geometry",
        ),
        (
            json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [12.0, 45.0]}, "properties": {"kind": "pas"}}),
            "name",
        ),
        (
            json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [12.0, 45.0]}, "properties": {"name": "x", "kind": "pas", "languages": ["xx"]}}),
            "languages",
        ),
        (
            json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [12.0, 45.0]}, "properties": {"name": "x", "kind": "pas", "opening_hours": "sometimes"}}),
            "opening_hours",
        ),
        (
            json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [12.0, 45.0]}, "properties": {"name": "x", "kind": "shelter", "capacity": 2, "vacancy": 3}}),
            "vacancy",
        ),
        (
            json!({"type": "Point", "coordinates": [12.0, 45.0]}),
            "type",
        ),
    ];
    for (body, field) in cases {
        let resp = post(body.to_string()).await.unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert_error(&err, "invalid_body", field);
    }
}

#[tokio::test]
async fn replace_needs_the_current_etag_and_bumps_the_version() {
    let app = spawn_app().await;
    let url = app.url("/collections/services/items/svc-prefettura-treviso");
    let current = app
        .json(
            None,
            "/collections/services/items/svc-prefettura-treviso",
            200,
        )
        .await;
    let etag = app
        .etag("/collections/services/items/svc-prefettura-treviso")
        .await;
    let mut next = current.clone();
    next.as_object_mut().unwrap().remove("links");
    next["properties"]["phone"] = json!("+39 0422 592411");
    let stale = app
        .client
        .put(&url)
        .bearer_auth(&app.editor)
        .header("If-Match", "\"99-1\"")
        .json(&next)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let body: Value = stale.json().await.unwrap();
    assert_eq!(body["error"], "precondition_failed");
    let ok = app
        .client
        .put(&url)
        .bearer_auth(&app.editor)
        .header("If-Match", &etag)
        .json(&next)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_etag_version(ok.headers()["etag"].to_str().unwrap(), 2);
    let got = app
        .json(
            None,
            "/collections/services/items/svc-prefettura-treviso",
            200,
        )
        .await;
    assert_eq!(got["properties"]["phone"], "+39 0422 592411");
    assert_eq!(got["properties"]["version"], 2);
    assert_eq!(
        got["properties"]["created_at"],
        current["properties"]["created_at"]
    );
    // The old ETag is now stale.
    let again = app
        .client
        .put(&url)
        .bearer_auth(&app.editor)
        .header("If-Match", &etag)
        .json(&next)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 412);
    // A body whose id differs from the path is refused.
    next["id"] = json!("svc-other");
    let wrong = app
        .client
        .put(&url)
        .bearer_auth(&app.editor)
        .header("If-Match", "*")
        .json(&next)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
}

#[tokio::test]
async fn patch_merges_properties_and_null_removes_one() {
    let app = spawn_app().await;
    let url = app.url("/collections/services/items/svc-prefettura-treviso");
    let item = "/collections/services/items/svc-prefettura-treviso";
    let patch = json!({"properties": {"languages": ["it", "en", "fr"], "website": null}});
    let resp = app
        .client
        .patch(&url)
        .bearer_auth(&app.admin)
        .header("If-Match", app.etag(item).await)
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got = app
        .json(
            None,
            "/collections/services/items/svc-prefettura-treviso",
            200,
        )
        .await;
    assert_eq!(got["properties"]["languages"], json!(["en", "fr", "it"]));
    assert_eq!(got["properties"]["website"], Value::Null);
    assert_eq!(got["properties"]["kind"], "prefecture");
    let bad = app
        .client
        .patch(&url)
        .bearer_auth(&app.admin)
        .header("If-Match", app.etag(item).await)
        .json(&json!({"properties": {"kind": "castle"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let moved = app
        .client
        .patch(&url)
        .bearer_auth(&app.admin)
        .header("If-Match", app.etag(item).await)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"geometry": {"type": "Point", "coordinates": [12.25, 45.67]}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    let near = app
        .json(None, "/nearest?lon=12.25&lat=45.67&k=1", 200)
        .await;
    assert_eq!(ids(&near), vec!["svc-prefettura-treviso"]);
}

#[tokio::test]
async fn delete_removes_from_every_read_path() {
    let app = spawn_app().await;
    let url = app.url("/collections/services/items/svc-prefettura-treviso");
    let resp = app
        .client
        .delete(&url)
        .bearer_auth(&app.editor)
        .header(
            "If-Match",
            app.etag("/collections/services/items/svc-prefettura-treviso")
                .await,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    app.json(
        None,
        "/collections/services/items/svc-prefettura-treviso",
        404,
    )
    .await;
    let near = app
        .json(
            None,
            "/nearest?lon=12.24&lat=45.67&k=100&kind=prefecture",
            200,
        )
        .await;
    assert!(!ids(&near).contains(&"svc-prefettura-treviso".to_owned()));
    let again = app
        .client
        .delete(&url)
        .bearer_auth(&app.editor)
        .header("If-Match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn restricted_records_can_be_written_and_the_audit_log_records_who() {
    let app = spawn_app().await;
    let settlement = json!({"type": "Feature", "id": "set-test", "geometry": {"type": "Polygon", "coordinates": [[[12.30, 45.80], [12.31, 45.80], [12.31, 45.81], [12.30, 45.81], [12.30, 45.80]]]},
        "properties": {"name": "Insediamento di prova (fictional)", "population_estimate": 30, "season": [9, 8, 9, 10], "fictional": true}});
    let resp = app
        .client
        .post(app.url("/collections/settlements/items"))
        .bearer_auth(&app.editor)
        .json(&settlement)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let got = app
        .json(
            Some(&app.operator),
            "/collections/settlements/items/set-test",
            200,
        )
        .await;
    assert_eq!(got["properties"]["season"], json!([8, 9, 10]));
    app.json(None, "/collections/settlements/items/set-test", 401)
        .await;
    let log = app.catalog.store().audit_log(5).await.unwrap();
    let entry = log
        .iter()
        .find(|e| e.record_id == "set-test")
        .expect("audit entry");
    assert_eq!(entry.action, "create");
    assert!(entry.actor.contains("editor"), "{}", entry.actor);
    assert!(entry.before.is_none() && entry.after.is_some());
}

#[tokio::test]
async fn an_oversized_body_is_a_json_413() {
    let app = spawn_app().await;
    let big = vec![b' '; faro::http::MAX_BODY_BYTES + 1];
    let resp = app
        .client
        .post(app.url("/collections/services/items"))
        .bearer_auth(&app.editor)
        .header("content-type", "application/geo+json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large");
}
