//! The defects the hardening issue found, each pinned by a test: what leaks through 304s,
//! extents and counts; caches and methods; preconditions and ETags across re-creation;
//! concurrent writes; bodies read only after authentication; writes that finish whole; other
//! processes' writes to the same SQLite file.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, backend, spawn_app};

const SHELTERS: &str = "/nearest?lon=12.24&lat=45.67&kind=shelter&k=100";

/// The ids and ETags of the confidential services, as an operator sees them.
async fn confidential(app: &TestApp) -> Vec<(String, String)> {
    let fc = app.json(Some(&app.operator), SHELTERS, 200).await;
    let mut out = Vec::new();
    for f in fc["features"].as_array().unwrap() {
        if f["properties"]["confidential"] == true {
            let id = f["id"].as_str().unwrap().to_owned();
            let etag = app.etag(&format!("/collections/services/items/{id}")).await;
            out.push((id, etag));
        }
    }
    assert!(out.len() >= 2, "the demo has confidential shelters");
    out
}

#[tokio::test]
async fn a_confidential_item_is_a_404_for_anonymous_callers_even_with_its_etag() {
    let app = spawn_app().await;
    for (id, etag) in confidential(&app).await {
        let path = format!("/collections/services/items/{id}");
        for inm in [etag.as_str(), "*"] {
            let resp = app
                .client
                .get(app.url(&path))
                .header("If-None-Match", inm)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 404, "If-None-Match {inm} on {id}");
            let body: Value = resp.json().await.unwrap();
            assert_error(&body, "not_found", &id);
        }
        // The operator gets the 304.
        let resp = app
            .client
            .get(app.url(&path))
            .bearer_auth(&app.operator)
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 304);
    }
}

fn bbox_of(features: &[Value]) -> [f64; 4] {
    let mut b = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    for f in features {
        let c = &f["geometry"]["coordinates"];
        let (x, y) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
        b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
    }
    b
}

fn extent(collections: &Value, id: &str) -> Option<[f64; 4]> {
    let c = collections["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap();
    let b = c["extent"]["spatial"]["bbox"][0].as_array()?;
    Some([0, 1, 2, 3].map(|i| b[i].as_f64().unwrap()))
}

#[tokio::test]
async fn the_anonymous_extent_is_that_of_public_services_only() {
    let app = spawn_app().await;
    // A confidential shelter far outside the public services' box.
    let secret = json!({"type": "Feature", "id": "svc-secret-far", "geometry": {"type": "Point", "coordinates": [13.9, 46.6]},
        "properties": {"name": "Casa rifugio", "kind": "shelter", "confidential": true}});
    let resp = app
        .client
        .post(app.url("/collections/services/items"))
        .bearer_auth(&app.editor)
        .json(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let all = app
        .json(
            Some(&app.operator),
            "/collections/services/items?limit=10000",
            200,
        )
        .await;
    let features = all["features"].as_array().unwrap();
    let public: Vec<Value> = features
        .iter()
        .filter(|f| f["properties"]["confidential"] != true)
        .cloned()
        .collect();
    let anonymous = app.json(None, "/collections", 200).await;
    assert_eq!(
        extent(&anonymous, "services"),
        Some(bbox_of(&public)),
        "the anonymous extent is the box of the public services"
    );
    let authorised = app.json(Some(&app.operator), "/collections", 200).await;
    assert_eq!(extent(&authorised, "services"), Some(bbox_of(features)));
    assert!((extent(&authorised, "services").unwrap()[2] - 13.9).abs() < 1e-12);
    let one = app.json(None, "/collections/services", 200).await;
    assert_eq!(one["extent"]["spatial"]["bbox"][0][2], bbox_of(&public)[2]);
}

/// The value of a Prometheus gauge line `name{collection="c"} v`, if present.
fn gauge(text: &str, collection: &str) -> Option<i64> {
    let prefix = format!("faro_records{{collection=\"{collection}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn readiness_and_metrics_publish_only_counts_the_caller_may_know() {
    let app = spawn_app().await;
    let public = app.json(None, "/collections/services/items", 200).await["numberMatched"]
        .as_i64()
        .unwrap();
    let all = app
        .json(Some(&app.operator), "/collections/services/items", 200)
        .await["numberMatched"]
        .as_i64()
        .unwrap();
    assert!(all > public, "the demo has confidential services");
    let settlements = app
        .json(Some(&app.operator), "/collections/settlements/items", 200)
        .await["numberMatched"]
        .as_i64()
        .unwrap();

    let ready = app.json(None, "/readyz", 200).await;
    assert_eq!(ready["records"]["services"], public);
    assert!(ready["records"].get("settlements").is_none(), "{ready}");
    assert!(ready["records"].get("worksites").is_none(), "{ready}");
    let ready = app.json(Some(&app.admin), "/readyz", 200).await;
    assert_eq!(ready["records"]["services"], all);
    assert_eq!(ready["records"]["settlements"], settlements);

    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(gauge(&text, "services"), Some(public), "{text}");
    assert_eq!(gauge(&text, "settlements"), None);
    assert_eq!(gauge(&text, "worksites"), None);
    let text = app
        .get_as(&app.admin, "/metrics")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(gauge(&text, "services"), Some(all));
    assert_eq!(gauge(&text, "settlements"), Some(settlements));
    // And the anonymous view again: an authorised scrape left nothing behind.
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(gauge(&text, "settlements"), None);
}

#[tokio::test]
async fn answers_vary_on_authorization_and_authorised_ones_are_not_stored() {
    let app = spawn_app().await;
    for path in [
        "/collections/services/items",
        "/collections",
        "/nearest?lon=12.2&lat=45.7",
        "/readyz",
    ] {
        let anon = app.get(path).await;
        assert_eq!(anon.headers()["vary"], "Authorization", "{path}");
        assert!(anon.headers().get("cache-control").is_none(), "{path}");
        let auth = app.get_as(&app.operator, path).await;
        assert_eq!(auth.headers()["vary"], "Authorization", "{path}");
        assert_eq!(
            auth.headers()["cache-control"],
            "private, no-store",
            "{path}"
        );
    }
    // Also on errors an authorised caller gets.
    let resp = app
        .get_as(&app.operator, "/collections/nothing/items")
        .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["cache-control"], "private, no-store");
}

#[tokio::test]
async fn head_answers_like_get_without_a_body_and_options_lists_the_methods() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/conformance",
        "/collections",
        "/collections/services",
        "/collections/services/items?limit=3",
        "/collections/services/items/svc-prefettura-treviso",
        "/nearest?lon=12.2&lat=45.7",
        "/openapi.json",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        let get = app.get(path).await;
        let head = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "HEAD {path}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "HEAD {path}");
    }
    // A restricted collection is a 401 for HEAD as for GET.
    let head = app
        .client
        .head(app.url("/collections/settlements/items"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 401);
    for (path, allow) in [
        ("/collections", "GET, HEAD, OPTIONS"),
        ("/collections/services/items", "GET, HEAD, POST, OPTIONS"),
        (
            "/collections/services/items/svc-x",
            "GET, HEAD, PUT, PATCH, DELETE, OPTIONS",
        ),
    ] {
        let resp = app
            .client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204, "OPTIONS {path}");
        assert_eq!(resp.headers()["allow"], allow, "OPTIONS {path}");
        let resp = app.client.put(app.url(path)).send().await.unwrap();
        if !allow.contains("PUT") {
            assert_eq!(resp.status(), 405, "PUT {path}");
            assert_eq!(resp.headers()["allow"], allow);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "method_not_allowed");
        }
    }
}

#[tokio::test]
async fn invented_methods_do_not_make_new_metric_series() {
    let app = spawn_app().await;
    for method in ["FROB", "XYZZY", "BREW"] {
        let resp = app
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                app.url("/healthz"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405);
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    for method in ["FROB", "XYZZY", "BREW"] {
        assert!(!text.contains(method), "{method} became a label");
    }
    assert!(text.contains("method=\"other\""), "{text}");
}

#[tokio::test]
async fn updates_and_deletes_need_if_match() {
    let app = spawn_app().await;
    let url = app.url("/collections/services/items/svc-prefettura-treviso");
    let current = app
        .json(
            None,
            "/collections/services/items/svc-prefettura-treviso",
            200,
        )
        .await;
    let mut put = current.clone();
    put.as_object_mut().unwrap().remove("links");
    let patch = json!({"properties": {"phone": "+39 0422 000000"}});
    let requests = [
        app.client.put(&url).json(&put),
        app.client.patch(&url).json(&patch),
        app.client.delete(&url),
    ];
    for request in requests {
        let resp = request.bearer_auth(&app.editor).send().await.unwrap();
        assert_eq!(resp.status(), 428);
        let body: Value = resp.json().await.unwrap();
        assert_error(&body, "precondition_required", "If-Match");
    }
    // Nothing changed.
    let after = app
        .json(
            None,
            "/collections/services/items/svc-prefettura-treviso",
            200,
        )
        .await;
    assert_eq!(
        after["properties"]["version"],
        current["properties"]["version"]
    );
    // A malformed If-Match is a 400; a list with the right tag in it is accepted; a weak
    // tag never matches (If-Match compares strongly).
    let etag = app
        .etag("/collections/services/items/svc-prefettura-treviso")
        .await;
    let resp = app
        .client
        .patch(&url)
        .bearer_auth(&app.editor)
        .header("If-Match", "not a tag")
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = app
        .client
        .patch(&url)
        .bearer_auth(&app.editor)
        .header("If-Match", format!("W/{etag}"))
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 412);
    let resp = app
        .client
        .patch(&url)
        .bearer_auth(&app.editor)
        .header("If-Match", format!("\"0-0\", {etag}"))
        .json(&patch)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(status, 200, "{}", resp.text().await.unwrap());
}

#[tokio::test]
async fn etags_never_repeat_across_deletion_and_re_creation() {
    let app = spawn_app().await;
    let path = "/collections/services/items/svc-phoenix";
    let feature = json!({"type": "Feature", "id": "svc-phoenix", "geometry": {"type": "Point", "coordinates": [12.2, 45.7]},
        "properties": {"name": "PAS fenice", "kind": "pas"}});
    let create = || async {
        let resp = app
            .client
            .post(app.url("/collections/services/items"))
            .bearer_auth(&app.editor)
            .json(&feature)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        resp.headers()["etag"].to_str().unwrap().to_owned()
    };
    let first = create().await;
    let resp = app
        .client
        .delete(app.url(path))
        .bearer_auth(&app.editor)
        .header("If-Match", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let second = create().await;
    assert_ne!(first, second, "a re-created record has a new ETag");
    crate::helpers::assert_etag_version(&second, 1);
    // The first incarnation's tag is not the second's: no 304, and a 412 on writes.
    let resp = app
        .client
        .get(app.url(path))
        .header("If-None-Match", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app
        .client
        .patch(app.url(path))
        .bearer_auth(&app.editor)
        .header("If-Match", &first)
        .json(&json!({"properties": {"name": "PAS sbagliato"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 412);
    let body: Value = resp.json().await.unwrap();
    assert_error(&body, "precondition_failed", &second.replace('"', ""));
}

#[tokio::test]
async fn of_two_writes_with_one_etag_exactly_one_wins_every_round() {
    let app = spawn_app().await;
    let path = "/collections/services/items/svc-prefettura-treviso";
    let url = app.url(path);
    for round in 0..50 {
        let etag = app.etag(path).await;
        let send = |name: String| {
            app.client
                .patch(&url)
                .bearer_auth(&app.editor)
                .header("If-Match", &etag)
                .json(&json!({"properties": {"phone": name}}))
                .send()
        };
        let (a, b) = tokio::join!(
            send(format!("+39 0422 {round:06}")),
            send(format!("+39 0423 {round:06}"))
        );
        let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 412], "round {round}");
    }
    let log = app.catalog.store().audit_log(1000).await.unwrap();
    let updates = log
        .iter()
        .filter(|e| e.record_id == "svc-prefettura-treviso" && e.action == "update")
        .count();
    assert_eq!(updates, 50, "one audited change per round");
    let item = app.json(None, path, 200).await;
    assert_eq!(item["properties"]["version"], 51);
}

/// Sends a raw request head (and no body) and reads the status line of the answer.
fn raw_status(address: &str, head: &str) -> (u16, String) {
    let addr = address.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut buf = vec![0_u8; 4096];
    let n = stream
        .read(&mut buf)
        .expect("an answer before the body is sent");
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    (status, text)
}

#[tokio::test]
async fn a_body_is_not_read_before_the_caller_may_write_nor_past_its_cap() {
    let app = spawn_app().await;
    let address = app.address.clone();
    let editor = app.editor.clone();
    tokio::task::spawn_blocking(move || {
        // 1 GB announced, nothing sent: the answer comes at once.
        let (status, text) = raw_status(
            &address,
            "POST /collections/services/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/geo+json\r\nContent-Length: 1000000000\r\n\r\n",
        );
        assert_eq!(status, 401, "{text}");
        assert!(text.contains("\"unauthorized\""), "{text}");
        let (status, text) = raw_status(
            &address,
            &format!("POST /collections/services/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {editor}\r\nContent-Type: application/geo+json\r\nContent-Length: 1000000000\r\n\r\n"),
        );
        assert_eq!(status, 413, "{text}");
        assert!(text.contains("payload_too_large"), "{text}");
        let (status, text) = raw_status(
            &address,
            &format!("PATCH /collections/services/items/svc-prefettura-treviso HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {editor}\r\nIf-Match: *\r\nContent-Type: application/merge-patch+json\r\nContent-Length: 40000000\r\n\r\n"),
        );
        assert_eq!(status, 413, "{text}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn bodies_of_other_media_types_and_positions_of_four_numbers_are_refused() {
    let app = spawn_app().await;
    let feature = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [12.2, 45.7]},
        "properties": {"name": "PAS", "kind": "pas"}});
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = app
            .client
            .post(app.url("/collections/services/items"))
            .bearer_auth(&app.editor)
            .body(feature.to_string());
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 415, "{content_type:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "unsupported_media_type");
    }
    let resp = app
        .client
        .post(app.url("/collections/services/items"))
        .bearer_auth(&app.editor)
        .header("content-type", "application/geo+json; charset=utf-8")
        .body(feature.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    for coordinates in [json!([12.2, 45.7, 10.0, 3.0]), json!([12.2])] {
        let mut f = feature.clone();
        f["geometry"]["coordinates"] = coordinates.clone();
        let resp = app
            .client
            .post(app.url("/collections/services/items"))
            .bearer_auth(&app.editor)
            .json(&f)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{coordinates}");
        let body: Value = resp.json().await.unwrap();
        assert_error(&body, "invalid_body", "position");
    }
    let polygon = json!({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[12.3, 45.8, 1.0, 9.0], [12.31, 45.8], [12.31, 45.81], [12.3, 45.8, 1.0, 9.0]]]},
        "properties": {"name": "Insediamento (fictional)", "fictional": true}});
    let resp = app
        .client
        .post(app.url("/collections/settlements/items"))
        .bearer_auth(&app.editor)
        .json(&polygon)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn a_write_whose_caller_goes_away_still_reaches_the_index() {
    let app = spawn_app().await;
    let id = faro::domain::RecordId::parse("svc-orphan").unwrap();
    let input = faro::domain::FeatureInput::parse(
        faro::domain::Collection::Services,
        json!({"type": "Feature", "id": "svc-orphan", "geometry": {"type": "Point", "coordinates": [12.2, 45.7]},
            "properties": {"name": "PAS orfano", "kind": "pas"}}),
    )
    .unwrap();
    let write = app.catalog.write(
        vec![faro::storage::WriteOp::insert(
            faro::domain::Collection::Services,
            input,
        )],
        "test",
    );
    // Polled once (the write starts), then dropped, as actix drops a handler whose client
    // disconnected.
    tokio::select! {
        biased;
        _ = write => panic!("the write should not finish within its first poll"),
        () = std::future::ready(()) => {}
    }
    let start = Instant::now();
    loop {
        let stored = app
            .catalog
            .store()
            .get(faro::domain::Collection::Services, &id)
            .await
            .unwrap();
        if stored.is_some() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "never committed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Committed: the index shows it at once or within the moment the swap takes.
    let start = Instant::now();
    while app
        .catalog
        .snapshot()
        .unrestricted_layer(faro::domain::Collection::Services)
        .get(&id)
        .is_none()
    {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "committed but never indexed"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn a_batch_that_deletes_then_re_creates_a_record_leaves_it_there() {
    use faro::domain::{Collection, FeatureInput, RecordId};
    use faro::storage::{Precondition, WriteOp};
    let app = spawn_app().await;
    let id = RecordId::parse("svc-prefettura-treviso").unwrap();
    let input = FeatureInput::parse(
        Collection::Services,
        json!({"type": "Feature", "id": "svc-prefettura-treviso", "geometry": {"type": "Point", "coordinates": [12.25, 45.66]},
            "properties": {"name": "Prefettura di Treviso (ricreata)", "kind": "prefecture"}}),
    )
    .unwrap();
    app.catalog
        .write(
            vec![
                WriteOp::Delete {
                    collection: Collection::Services,
                    id: id.clone(),
                    expected: Precondition::Any,
                },
                WriteOp::insert(Collection::Services, input),
            ],
            "test",
        )
        .await
        .unwrap();
    let got = app
        .json(
            None,
            "/collections/services/items/svc-prefettura-treviso",
            200,
        )
        .await;
    assert_eq!(
        got["properties"]["name"],
        "Prefettura di Treviso (ricreata)"
    );
    let near = app
        .json(None, "/nearest?lon=12.25&lat=45.66&k=1", 200)
        .await;
    assert_eq!(near["features"][0]["id"], "svc-prefettura-treviso");
}

/// On SQLite through the change detection of the file (`PRAGMA data_version` and the audit
/// log), on PostgreSQL through the import's one NOTIFY at its commit (its records go in by
/// binary `COPY`).
#[tokio::test]
async fn an_import_by_another_process_on_the_same_database_is_served_within_a_second() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("import.geojson");
    std::fs::write(
        &file,
        json!({"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": "svc-from-cli", "geometry": {"type": "Point", "coordinates": [12.11, 45.61]},
             "properties": {"name": "Sportello importato", "kind": "help_desk"}}]})
        .to_string(),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faro"))
        .args(["import", "services"])
        .arg(&file)
        .args(["--database-url", &app.database_url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "faro import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = Instant::now();
    loop {
        let resp = app.get("/collections/services/items/svc-from-cli").await;
        if resp.status() == 200 {
            break;
        }
        assert_eq!(resp.status(), 404);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the import was not seen within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("the import was served {:?} after it ended", start.elapsed());
    let near = app
        .json(None, "/nearest?lon=12.11&lat=45.61&k=1", 200)
        .await;
    assert_eq!(near["features"][0]["id"], "svc-from-cli");
}

#[tokio::test]
async fn a_locked_sqlite_file_makes_writes_503_with_retry_after_not_500() {
    if backend() != "sqlite" {
        crate::skip::skip(
            "a_locked_sqlite_file_makes_writes_503",
            "SQLite-only",
            "FARO_REQUIRE_SQLITE",
        );
        return;
    }
    let app = spawn_app().await;
    let path = app.database_url.trim_start_matches("sqlite://").to_owned();
    // Another process's long write transaction, holding the file's write lock.
    let locker = rusqlite::Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let resp = app
        .client
        .post(app.url("/collections/services/items"))
        .bearer_auth(&app.editor)
        .json(
            &json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [12.2, 45.7]},
            "properties": {"name": "PAS in attesa", "kind": "pas"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unavailable");
    locker.execute_batch("ROLLBACK").unwrap();
    // Reads never stopped, and writes work again once the lock is gone.
    app.json(None, "/collections/services/items?limit=1", 200)
        .await;
    let resp = app
        .client
        .post(app.url("/collections/services/items"))
        .bearer_auth(&app.editor)
        .json(
            &json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [12.2, 45.7]},
            "properties": {"name": "PAS dopo", "kind": "pas"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn the_catalog_merges_a_full_delta_in_the_background_and_loses_no_write() {
    use faro::domain::{Collection, FeatureInput, RecordId};
    use faro::storage::WriteOp;
    let app = spawn_app().await;
    let n = faro::index::MERGE_MIN_DELTA + 50;
    for i in 0..n {
        let input = FeatureInput::parse(
            Collection::Worksites,
            json!({"type": "Feature", "id": format!("ws-merge-{i:05}"),
                "geometry": {"type": "Point", "coordinates": [11.9 + f64::from(u32::try_from(i).unwrap()) * 0.0005, 45.55]},
                "properties": {"name": format!("Vigneto {i} (fictional)"), "kind": "vineyard", "fictional": true}}),
        )
        .unwrap();
        app.catalog
            .write(vec![WriteOp::insert(Collection::Worksites, input)], "test")
            .await
            .unwrap();
    }
    let start = Instant::now();
    loop {
        let snapshot = app.catalog.snapshot();
        if snapshot
            .unrestricted_layer(Collection::Worksites)
            .delta_len()
            < faro::index::MERGE_MIN_DELTA
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no merge happened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let snapshot = app.catalog.snapshot();
    let layer = snapshot.unrestricted_layer(Collection::Worksites);
    for i in 0..n {
        let id = RecordId::parse(&format!("ws-merge-{i:05}")).unwrap();
        assert!(layer.get(&id).is_some(), "{id} lost in the merge");
    }
    let stored = app.catalog.store().load_all().await.unwrap();
    let in_store = stored
        .iter()
        .filter(|r| r.collection() == Collection::Worksites)
        .count();
    assert_eq!(
        layer.len(),
        in_store,
        "index and store agree after the merge"
    );
    let fc = app
        .json(
            Some(&app.operator),
            "/collections/worksites/items?q=vigneto%201073",
            200,
        )
        .await;
    assert_eq!(fc["numberMatched"], 1);
}

#[tokio::test]
async fn a_geometry_over_the_vertex_cap_is_a_413_before_validation() {
    let app = crate::helpers::spawn_app_with(faro::startup::ServeOptions {
        max_vertices: 10,
        ..Default::default()
    })
    .await;
    let ring = |n: usize| -> Vec<[f64; 2]> {
        let mut r: Vec<[f64; 2]> = (0..n - 1)
            .map(|i| {
                let a = std::f64::consts::TAU * f64::from(u32::try_from(i).unwrap())
                    / f64::from(u32::try_from(n - 1).unwrap());
                [12.3 + 0.01 * a.cos(), 45.8 + 0.01 * a.sin()]
            })
            .collect();
        r.push(r[0]);
        r
    };
    let feature = |n: usize| {
        json!({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring(n)]},
            "properties": {"name": "Insediamento (fictional)", "fictional": true}})
    };
    let post = |doc: Value| {
        app.client
            .post(app.url("/collections/settlements/items"))
            .bearer_auth(&app.editor)
            .json(&doc)
            .send()
    };
    let resp = post(feature(10)).await.unwrap();
    assert_eq!(resp.status(), 201, "10 positions are within the cap");
    let resp = post(json!({"type": "FeatureCollection", "features": [feature(5), feature(11)]}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_error(&body, "too_many_vertices", "feature 2");
    assert!(
        body["message"].as_str().unwrap().contains("11 positions"),
        "{body}"
    );
}
