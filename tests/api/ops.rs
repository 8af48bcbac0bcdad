use crate::helpers::spawn_app;

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    let h = app.json(None, "/healthz", 200).await;
    assert_eq!(h["status"], "ok");
    let r = app.json(None, "/readyz", 200).await;
    assert_eq!(r["status"], "ready");
    assert!(r["records"]["services"].as_u64().unwrap() >= 40);
    app.json(None, "/nearest?lon=12&lat=45", 200).await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(text.contains("faro_http_requests_total{"), "{text}");
    assert!(text.contains("route=\"/nearest\""));
    assert!(text.contains("faro_records{collection=\"services\"}"));
    assert!(
        !text.contains("lon=12"),
        "metrics never carry query strings"
    );
}

#[tokio::test]
async fn openapi_describes_every_route() {
    let app = spawn_app().await;
    let doc = app.json(None, "/openapi.json", 200).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/",
        "/conformance",
        "/collections",
        "/collections/{collection}",
        "/collections/{collection}/items",
        "/collections/{collection}/items/{id}",
        "/nearest",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(doc["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    let params: Vec<&str> = doc["paths"]["/nearest"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in [
        "lon",
        "lat",
        "kind",
        "k",
        "max_distance_m",
        "open_at",
        "language",
    ] {
        assert!(params.contains(&p), "{p} missing from {params:?}");
    }
}

#[tokio::test]
async fn unsupported_methods_are_405_with_a_json_error() {
    let app = spawn_app().await;
    let resp = app.client.post(app.url("/nearest")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    let resp = app
        .client
        .delete(app.url("/collections/services/items"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
}
