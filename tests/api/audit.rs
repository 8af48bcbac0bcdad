//! `GET /audit`: the audit log for admins, filtered and paged, on both stores.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app};

async fn send(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> u16 {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if path.contains("/items/") {
        req = req.header("If-Match", "*");
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap().status().as_u16()
}

fn point(id: &str, lon: f64) -> Value {
    json!({"type": "Feature", "id": id, "geometry": {"type": "Point", "coordinates": [lon, 45.7]},
        "properties": {"name": format!("Servizio {id}"), "kind": "pas"}})
}

async fn entries(app: &TestApp, query: &str) -> Vec<Value> {
    let page = app
        .json(Some(&app.admin), &format!("/audit{query}"), 200)
        .await;
    page["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn admins_read_the_audit_log_filtered_and_paged() {
    let app = spawn_app().await;
    let post = reqwest::Method::POST;
    for (i, id) in ["svc-a1", "svc-a2", "svc-a3"].iter().enumerate() {
        let lon = 12.2 + 0.01 * f64::from(u8::try_from(i).unwrap());
        assert_eq!(
            send(
                &app,
                &app.editor,
                post.clone(),
                "/collections/services/items",
                Some(point(id, lon))
            )
            .await,
            201
        );
    }
    assert_eq!(
        send(
            &app,
            &app.editor,
            reqwest::Method::PATCH,
            "/collections/services/items/svc-a2",
            Some(json!({"properties": {"name": "Rinominato"}}))
        )
        .await,
        200
    );
    assert_eq!(
        send(
            &app,
            &app.admin,
            reqwest::Method::DELETE,
            "/collections/services/items/svc-a3",
            None
        )
        .await,
        204
    );
    let ws = json!({"type": "Feature", "id": "ws-a1", "geometry": {"type": "Point", "coordinates": [12.1, 45.8]},
        "properties": {"name": "Vigneto (fittizio)", "kind": "vineyard", "fictional": true}});
    assert_eq!(
        send(
            &app,
            &app.admin,
            post,
            "/collections/worksites/items",
            Some(ws)
        )
        .await,
        201
    );

    // Newest first, the demo load included; the last six are ours.
    let all = entries(&app, "?limit=1000").await;
    let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first");
    let ours: Vec<(&str, &str)> = all[..6]
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ours,
        [
            ("create", "ws-a1"),
            ("delete", "svc-a3"),
            ("update", "svc-a2"),
            ("create", "svc-a3"),
            ("create", "svc-a2"),
            ("create", "svc-a1")
        ]
    );
    assert_eq!(all[2]["before"]["properties"]["name"], "Servizio svc-a2");
    assert_eq!(all[2]["after"]["properties"]["name"], "Rinominato");
    assert!(all[1]["after"].is_null() && all[1]["before"]["id"] == "svc-a3");

    // Filters.
    let ws = entries(&app, "?collection=worksites&limit=1000").await;
    assert!(ws.iter().all(|e| e["collection"] == "worksites"));
    assert_eq!(ws[0]["id"], "ws-a1");
    let one = entries(&app, "?collection=services&id=svc-a2").await;
    let actions: Vec<&str> = one.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["update", "create"]);
    let by_editor = entries(&app, "?actor=TEST%20EDITOR&limit=1000").await;
    let ids: Vec<&str> = by_editor
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["svc-a2", "svc-a3", "svc-a2", "svc-a1"],
        "the editor's four changes"
    );
    // from is inclusive, to exclusive.
    let at = |e: &Value| e["at"].as_str().unwrap().replace('+', "%2B");
    let since = entries(&app, &format!("?from={}&limit=1000", at(&all[2]))).await;
    assert_eq!(since.len(), 3);
    let until = entries(&app, &format!("?to={}&from={}", at(&all[2]), at(&all[5]))).await;
    let ids: Vec<&str> = until.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["svc-a3", "svc-a2", "svc-a1"]);

    // Paging through `next` gives every entry once, in order.
    let mut url = "/audit?limit=7".to_owned();
    let mut paged = Vec::new();
    loop {
        let page = app.json(Some(&app.admin), &url, 200).await;
        paged.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap()),
        );
        let next = page["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["rel"] == "next");
        match next {
            Some(l) => {
                url = l["href"]
                    .as_str()
                    .unwrap()
                    .strip_prefix(&app.address)
                    .unwrap()
                    .to_owned();
            }
            None => break,
        }
    }
    assert_eq!(paged, seqs);
}

#[tokio::test]
async fn the_audit_log_is_for_admins_only_and_bad_filters_are_named() {
    let app = spawn_app().await;
    assert_eq!(app.get("/audit").await.status(), 401);
    for token in [&app.operator, &app.editor] {
        let body = app.json(Some(token), "/audit", 403).await;
        assert_error(&body, "forbidden", "audit");
    }
    for (query, names) in [
        ("collection=roads", "collection"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("before=x", "before"),
        ("since=1", "since"),
    ] {
        let body = app
            .json(Some(&app.admin), &format!("/audit?{query}"), 400)
            .await;
        assert!(
            body["message"].as_str().unwrap().contains(names),
            "{query}: {body}"
        );
    }
}
