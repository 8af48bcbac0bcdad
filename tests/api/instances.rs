//! Several faro instances on one database stay in step: through LISTEN/NOTIFY on PostgreSQL,
//! through the change poller (`PRAGMA data_version` and the audit log) on one SQLite file.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faro::catalog::Catalog;
use faro::startup::Application;
use serde_json::{Value, json};

use crate::helpers::{TestApp, backend, ids, spawn_app, spawn_sqlite_app};

/// A second server on the database of `app`.
async fn second_instance(app: &TestApp) -> (String, Arc<Catalog>) {
    let store = faro::storage::open(&app.database_url, 4).await.unwrap();
    let catalog = Catalog::open(store).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = Application::with_listener(Arc::clone(&catalog), listener).unwrap();
    let address = format!("http://127.0.0.1:{}", server.port());
    tokio::spawn(server.run_until_stopped());
    (address, catalog)
}

/// Polls `probe` every 20 ms until it holds; returns how long that took, failing after 5 s.
async fn within<F, Fut>(what: &str, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if probe().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{what}: not seen after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get_json(client: &reqwest::Client, url: &str, token: &str) -> (u16, Value) {
    let resp = client.get(url).bearer_auth(token).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_write_through_one_instance_reaches_the_other_within_a_second() {
    let a = spawn_app().await;
    let (b, b_catalog) = second_instance(&a).await;
    assert_eq!(
        b_catalog.snapshot().counts(),
        a.catalog.snapshot().counts(),
        "B loaded the same data at start"
    );
    let client = &a.client;

    // Create through A; B's /nearest and /items see it.
    let feature = json!({"type": "Feature", "id": "svc-sync", "geometry": {"type": "Point", "coordinates": [12.501, 45.901]},
        "properties": {"name": "PAS sincronizzato", "kind": "pas"}});
    let resp = client
        .post(a.url("/collections/services/items"))
        .bearer_auth(&a.editor)
        .json(&feature)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let seen = within("create at B", || async {
        let (_, fc) = get_json(
            client,
            &format!("{b}/nearest?lon=12.501&lat=45.901&k=1"),
            &a.operator,
        )
        .await;
        ids(&fc) == vec!["svc-sync"]
    })
    .await;
    assert!(
        seen < Duration::from_secs(1),
        "create took {seen:?} to reach B"
    );
    let (status, item) = get_json(
        client,
        &format!("{b}/collections/services/items/svc-sync"),
        &a.operator,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(item["properties"]["version"], 1);

    // Update through B; A sees the new version.
    let resp = client
        .patch(format!("{b}/collections/services/items/svc-sync"))
        .bearer_auth(&a.editor)
        .header(
            "If-Match",
            a.etag("/collections/services/items/svc-sync").await,
        )
        .json(&json!({"properties": {"name": "PAS rinominato"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = within("update at A", || async {
        let (_, f) = get_json(
            client,
            &a.url("/collections/services/items/svc-sync"),
            &a.operator,
        )
        .await;
        f["properties"]["name"] == "PAS rinominato"
    })
    .await;
    assert!(
        seen < Duration::from_secs(1),
        "update took {seen:?} to reach A"
    );

    // Delete through A; B forgets it.
    let resp = client
        .delete(a.url("/collections/services/items/svc-sync"))
        .bearer_auth(&a.editor)
        .header("If-Match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let seen = within("delete at B", || async {
        get_json(
            client,
            &format!("{b}/collections/services/items/svc-sync"),
            &a.operator,
        )
        .await
        .0 == 404
    })
    .await;
    assert!(
        seen < Duration::from_secs(1),
        "delete took {seen:?} to reach B"
    );
    let (_, fc) = get_json(
        client,
        &format!("{b}/nearest?lon=12.501&lat=45.901&k=1"),
        &a.operator,
    )
    .await;
    assert_ne!(ids(&fc), vec!["svc-sync"]);

    // Re-created under the same id (version 1 again): B shows the new record, not the old one.
    let mut again = feature.clone();
    again["properties"]["name"] = json!("PAS ricreato");
    let resp = client
        .post(a.url("/collections/services/items"))
        .bearer_auth(&a.editor)
        .json(&again)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    within("re-create at B", || async {
        let (_, f) = get_json(
            client,
            &format!("{b}/collections/services/items/svc-sync"),
            &a.operator,
        )
        .await;
        f["properties"]["name"] == "PAS ricreato"
    })
    .await;
}

#[tokio::test]
async fn a_bulk_write_elsewhere_is_picked_up_whole() {
    let a = spawn_app().await;
    let (b, b_catalog) = second_instance(&a).await;
    let features: Vec<Value> = (0..600)
        .map(|i| json!({"type": "Feature", "id": format!("ws-bulk-{i:04}"),
            "geometry": {"type": "Point", "coordinates": [12.0 + f64::from(i) * 0.0005, 45.7]},
            "properties": {"name": format!("Cantiere {i} (fictional)"), "kind": "vineyard", "fictional": true}}))
        .collect();
    let resp = a
        .client
        .post(a.url("/collections/worksites/items"))
        .bearer_auth(&a.editor)
        .json(&json!({"type": "FeatureCollection", "features": features}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let expected = a.catalog.snapshot().counts();
    within("bulk at B", || async {
        b_catalog.snapshot().counts() == expected
    })
    .await;
    let (status, page) = get_json(
        &a.client,
        &format!("{b}/collections/worksites/items?q=cantiere%20599"),
        &a.operator,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&page), vec!["ws-bulk-0599"]);
}

/// A response with what legitimately differs between two loads (timestamps, hosts) removed.
fn comparable(mut v: Value, address: &str) -> String {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for key in ["created_at", "updated_at", "timeStamp"] {
                    m.remove(key);
                }
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v.to_string().replace(address, "")
}

#[tokio::test]
async fn postgis_and_the_embedded_store_give_the_same_answers() {
    if backend() != "postgres" {
        crate::skip::skip(
            "postgis_and_the_embedded_store_give_the_same_answers",
            "compares PostGIS with SQLite: runs with FARO_TEST_BACKEND=postgres",
            "FARO_REQUIRE_POSTGRES",
        );
        return;
    }
    let pg = spawn_app().await;
    let lite = spawn_sqlite_app().await;
    for path in [
        "/collections",
        "/collections/services/items?limit=20&offset=10",
        "/collections/worksites/items?bbox=12.0,45.8,12.35,46.0&limit=1000",
        "/collections/settlements/items?territory=terr-pieve",
        "/collections/services/items?q=centro&kind=job_centre",
        "/collections/territories/items/terr-oderzo",
        "/nearest?lon=12.24&lat=45.67&kind=focal_point,pas&k=3",
        "/nearest?lon=12.0&lat=45.9&k=50&language=en",
        "/nearest?lon=12.3&lat=45.8&k=100&open_at=2026-11-25T10:00:00Z",
    ] {
        let (s1, a) = get_json(&pg.client, &pg.url(path), &pg.operator).await;
        let (s2, b) = get_json(&lite.client, &lite.url(path), &lite.operator).await;
        assert_eq!((s1, s2), (200, 200), "{path}");
        assert_eq!(
            comparable(a, &pg.address),
            comparable(b, &lite.address),
            "{path}"
        );
    }
}

#[tokio::test]
async fn an_edit_through_another_instance_shows_in_this_ones_cached_tile_within_a_second() {
    use faro::tiles::TileId;
    let a = spawn_app().await;
    let (b, _b_catalog) = second_instance(&a).await;
    let t = TileId::containing(13, 12.321, 45.654);
    let path = format!("/tiles/services/{}/{}/{}.mvt", t.z, t.x, t.y);
    let in_a_tile = || async {
        crate::tiles::get_tile(&a, None, &path)
            .await
            .is_some_and(|bytes| {
                crate::tiles::decode(&bytes)
                    .get("services")
                    .is_some_and(|fs| fs.iter().any(|f| f.properties["id"] == "svc-elsewhere"))
            })
    };
    // A's tile is cached before the edit.
    assert!(!in_a_tile().await);
    assert!(!in_a_tile().await);
    let resp = a
        .client
        .post(format!("{b}/collections/services/items"))
        .bearer_auth(&a.editor)
        .json(&json!({"type": "Feature", "id": "svc-elsewhere",
            "geometry": {"type": "Point", "coordinates": [12.321, 45.654]},
            "properties": {"name": "Sportello aperto altrove", "kind": "help_desk"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let seen = within("the tile at A", in_a_tile).await;
    assert!(seen < Duration::from_secs(1), "took {seen:?}");
}

#[tokio::test]
async fn a_token_revoked_through_one_instance_is_refused_by_the_other_within_a_second() {
    let app = spawn_app().await;
    let (other, _catalog) = second_instance(&app).await;
    let client = reqwest::Client::new();
    let url = format!("{other}/collections/settlements/items?limit=1");
    // The other instance has checked and cached the token.
    assert_eq!(get_json(&client, &url, &app.operator).await.0, 200);
    let list = app.json(Some(&app.admin), "/admin/tokens", 200).await;
    let id = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "test operator")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let resp = app
        .client
        .delete(app.url(&format!("/admin/tokens/{id}")))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let took = within("the revoke on the other instance", || async {
        get_json(&client, &url, &app.operator).await.0 == 401
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "{} revoke took {took:?}",
        backend()
    );
}
