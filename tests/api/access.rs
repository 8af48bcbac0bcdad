use serde_json::Value;

use crate::helpers::{assert_error, ids, spawn_app};

const CONFIDENTIAL_PROBE: &str = "/nearest?lon=12.24&lat=45.67&kind=shelter&k=100";

fn confidential_ids(fc: &Value) -> Vec<String> {
    fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["properties"]["confidential"] == true)
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn anonymous_callers_get_no_settlement_or_worksite_anywhere() {
    let app = spawn_app().await;
    for path in [
        "/collections/settlements/items",
        "/collections/worksites/items",
        "/collections/worksites/items?bbox=11,45,13,47",
        "/collections/settlements/items/set-anything",
    ] {
        let body = app.json(None, path, 401).await;
        assert_error(&body, "unauthorized", "restricted");
    }
    let collections = app.json(None, "/collections", 200).await;
    for c in collections["collections"].as_array().unwrap() {
        if c["id"] == "settlements" || c["id"] == "worksites" {
            assert!(c.get("extent").is_none(), "no extent leaks for {}", c["id"]);
            assert_eq!(c["restricted"], true);
        }
    }
    let resp = app.get("/collections/worksites/items").await;
    assert!(resp.headers().get("www-authenticate").is_some());
}

#[tokio::test]
async fn anonymous_callers_never_see_a_confidential_service() {
    let app = spawn_app().await;
    let operator_view = app.json(Some(&app.operator), CONFIDENTIAL_PROBE, 200).await;
    let secret = confidential_ids(&operator_view);
    assert!(
        secret.len() >= 2,
        "the demo has confidential shelters: {secret:?}"
    );

    let near = app.json(None, CONFIDENTIAL_PROBE, 200).await;
    assert!(confidential_ids(&near).is_empty());
    let listed = app
        .json(None, "/collections/services/items?limit=10000", 200)
        .await;
    let listed_ids = ids(&listed);
    let filtered = app
        .json(
            None,
            "/collections/services/items?kind=shelter&bbox=11,45,13,47",
            200,
        )
        .await;
    for id in &secret {
        assert!(!listed_ids.contains(id));
        assert!(!ids(&filtered).contains(id));
        assert!(!ids(&near).contains(id));
        let body = app
            .json(None, &format!("/collections/services/items/{id}"), 404)
            .await;
        assert_eq!(body["error"], "not_found");
    }
    // The services extent shown to anonymous callers is computed without them.
    let all = app
        .json(
            Some(&app.operator),
            "/collections/services/items?limit=10000",
            200,
        )
        .await;
    assert_eq!(
        listed["numberMatched"].as_u64().unwrap() + secret.len() as u64,
        all["numberMatched"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn an_operator_sees_everything() {
    let app = spawn_app().await;
    let settlements = app
        .json(Some(&app.operator), "/collections/settlements/items", 200)
        .await;
    assert!(settlements["numberMatched"].as_u64().unwrap() >= 15);
    for f in settlements["features"].as_array().unwrap() {
        assert_eq!(
            f["properties"]["fictional"], true,
            "demo settlements are fictional"
        );
    }
    let id = &confidential_ids(&app.json(Some(&app.operator), CONFIDENTIAL_PROBE, 200).await)[0];
    let shelter = app
        .json(
            Some(&app.operator),
            &format!("/collections/services/items/{id}"),
            200,
        )
        .await;
    assert_eq!(shelter["geometry"]["type"], "Point");
    let collections = app.json(Some(&app.operator), "/collections", 200).await;
    let worksites = collections["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "worksites")
        .unwrap();
    assert!(worksites.get("extent").is_some());
}

#[tokio::test]
async fn a_wrong_malformed_or_revoked_token_is_401() {
    let app = spawn_app().await;
    let bogus = format!("faro_{}", "0".repeat(64));
    for header in [
        format!("Bearer {bogus}"),
        "Bearer nonsense".to_owned(),
        "Basic dXNlcjpwYXNz".to_owned(),
    ] {
        let resp = app
            .client
            .get(app.url("/collections/services/items"))
            .header("Authorization", header.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{header}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }
    // Revoke the operator's token in the store, as `faro token revoke` does from another
    // process: the server's cache of verified tokens hears of it (NOTIFY on PostgreSQL, the
    // change poller on SQLite) and the token is refused within a second.
    let store = app.catalog.store();
    let tokens = store.list_tokens().await.unwrap();
    let op = tokens
        .iter()
        .find(|t| t.role == faro::domain::Role::Operator)
        .unwrap();
    app.json(Some(&app.operator), "/collections/settlements/items", 200)
        .await;
    assert!(store.revoke_token(op.id).await.unwrap());
    let start = std::time::Instant::now();
    loop {
        let resp = app
            .get_as(&app.operator, "/collections/settlements/items")
            .await;
        if resp.status() == 401 {
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "invalid_token");
            break;
        }
        assert_eq!(resp.status(), 200);
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "a revoked token still worked after 1 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn only_editors_and_admins_may_write() {
    let app = spawn_app().await;
    let feature = serde_json::json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [12.2, 45.7]},
        "properties": {"name": "PAS di prova", "kind": "pas"}});
    let anon = app
        .client
        .post(app.url("/collections/services/items"))
        .json(&feature)
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let op = app
        .client
        .post(app.url("/collections/services/items"))
        .bearer_auth(&app.operator)
        .json(&feature)
        .send()
        .await
        .unwrap();
    assert_eq!(op.status(), 403);
    let body: Value = op.json().await.unwrap();
    assert_error(&body, "forbidden", "operator");
    for token in [&app.editor, &app.admin] {
        let ok = app
            .client
            .post(app.url("/collections/services/items"))
            .bearer_auth(token)
            .json(&feature)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 201);
    }
}
