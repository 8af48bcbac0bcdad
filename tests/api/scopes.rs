//! Tokens confined to territories, editors' write scope, token expiry and revoke, the front
//! doors of confidential services, shelter vacancy over time, and concurrent writes.
//!
//! Which records lie in a territory is computed here independently of faro's own
//! point-in-area index: `geo`'s `InteriorPoint` and `Intersects` on the GeoJSON the operator of
//! the whole network reads.

#![allow(
    clippy::many_single_char_names,
    reason = "territories a and b, points p and q"
)]

use std::collections::BTreeSet;
use std::time::Duration;

use faro::domain::Role;
use faro::tiles::TileId;
use geo::{InteriorPoint, Intersects};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, ids, spawn_app};
use crate::tiles::{decode, get_tile, layer_ids};

fn geometry(feature: &Value) -> geo::Geometry<f64> {
    let g: geojson::Geometry = serde_json::from_value(feature["geometry"].clone()).unwrap();
    g.try_into().unwrap()
}

/// The position a record is placed at: a point itself, a polygon's interior point.
fn placed_at(feature: &Value) -> geo::Point<f64> {
    match geometry(feature) {
        geo::Geometry::Point(p) => p,
        other => other.interior_point().unwrap(),
    }
}

struct Territory {
    id: String,
    geometry: geo::Geometry<f64>,
}

impl Territory {
    fn holds(&self, feature: &Value) -> bool {
        self.geometry.intersects(&placed_at(feature))
    }
}

async fn territories(app: &TestApp) -> Vec<Territory> {
    let fc = app
        .json(None, "/collections/territories/items?kind=territory", 200)
        .await;
    let out: Vec<Territory> = fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| Territory {
            id: f["id"].as_str().unwrap().to_owned(),
            geometry: geometry(f),
        })
        .collect();
    assert!(out.len() >= 2, "the demo has territories");
    out
}

async fn all(app: &TestApp, token: &str, collection: &str) -> Vec<Value> {
    app.json(
        Some(token),
        &format!("/collections/{collection}/items?limit=10000"),
        200,
    )
    .await["features"]
        .as_array()
        .unwrap()
        .clone()
}

fn id_set(features: &[Value]) -> BTreeSet<String> {
    features
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_operator_of_one_territory_sees_its_restricted_records_and_no_others_on_any_path() {
    let app = spawn_app().await;
    let terrs = territories(&app).await;
    let (a, b) = (&terrs[0], &terrs[1]);
    let op_a = app.scoped_token(Role::Operator, &[&a.id]).await;
    for collection in ["settlements", "worksites"] {
        let every = all(&app, &app.operator, collection).await;
        let expected: Vec<Value> = every.iter().filter(|f| a.holds(f)).cloned().collect();
        let seen = app
            .json(
                Some(&op_a),
                &format!("/collections/{collection}/items?limit=10000"),
                200,
            )
            .await;
        assert!(!expected.is_empty(), "{collection} in {}", a.id);
        assert_eq!(
            ids(&seen).into_iter().collect::<BTreeSet<_>>(),
            id_set(&expected)
        );
        assert_eq!(seen["numberMatched"], expected.len());
        // A record of the other territory: invisible by id, by bbox, to nearest and in tiles.
        let other = every
            .iter()
            .find(|f| b.holds(f) && !a.holds(f))
            .unwrap_or_else(|| panic!("a {collection} record in {}", b.id));
        let id = other["id"].as_str().unwrap();
        app.json(
            Some(&op_a),
            &format!("/collections/{collection}/items/{id}"),
            404,
        )
        .await;
        let p = placed_at(other);
        let bbox = format!(
            "{},{},{},{}",
            p.x() - 0.01,
            p.y() - 0.01,
            p.x() + 0.01,
            p.y() + 0.01
        );
        let near = app
            .json(
                Some(&op_a),
                &format!("/collections/{collection}/items?bbox={bbox}"),
                200,
            )
            .await;
        assert!(!ids(&near).contains(&id.to_owned()), "bbox shows {id}");
        let full = app
            .json(
                Some(&app.operator),
                &format!("/collections/{collection}/items?bbox={bbox}"),
                200,
            )
            .await;
        assert!(ids(&full).contains(&id.to_owned()), "control: {id}");
        for z in [8_u8, 12, 15] {
            let t = TileId::containing(z, p.x(), p.y());
            let path = format!("/tiles/{collection}/{}/{}/{}.mvt", t.z, t.x, t.y);
            let scoped = get_tile(&app, Some(&op_a), &path)
                .await
                .map(|b| layer_ids(&decode(&b), collection))
                .unwrap_or_default();
            assert!(!scoped.contains(id), "tile {path} shows {id}");
            let control = get_tile(&app, Some(&app.operator), &path)
                .await
                .map(|b| layer_ids(&decode(&b), collection))
                .unwrap_or_default();
            assert!(control.contains(id), "control tile {path} lacks {id}");
        }
        // The collection's extent covers only what the caller may see.
        let c = app
            .json(Some(&op_a), &format!("/collections/{collection}"), 200)
            .await;
        let [w, s, e, n] =
            [0, 1, 2, 3].map(|i| c["extent"]["spatial"]["bbox"][0][i].as_f64().unwrap());
        for f in &expected {
            let q = placed_at(f);
            assert!(
                q.x() >= w - 1e-9 && q.x() <= e + 1e-9 && q.y() >= s - 1e-9 && q.y() <= n + 1e-9
            );
        }
    }
    // Coverage: figures for its territory, none elsewhere (as anonymous callers get).
    let cov = app
        .json(
            Some(&op_a),
            "/coverage?kind=focal_point,pas&radius_m=15000",
            200,
        )
        .await;
    for t in cov["territories"].as_array().unwrap() {
        let mine = t["id"] == a.id.as_str();
        assert_eq!(t["settlements"].is_object(), mine, "{t}");
    }
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("if-match", "*");
    if let Some(b) = body {
        req = req
            .header("content-type", "application/merge-patch+json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_editor_of_one_territory_writes_there_only_and_sees_the_change_in_the_next_tile() {
    let app = spawn_app().await;
    let terrs = territories(&app).await;
    let (a, b) = (&terrs[0], &terrs[1]);
    let ed_a = app.scoped_token(Role::Editor, &[&a.id]).await;
    let services = all(&app, &app.operator, "services").await;
    let public = |t: &Territory| {
        services
            .iter()
            .find(|f| f["properties"]["confidential"] != true && t.holds(f))
            .cloned()
            .unwrap()
    };
    let (mine, theirs) = (public(a), public(b));
    let mine_id = mine["id"].as_str().unwrap();
    let theirs_id = theirs["id"].as_str().unwrap();
    let p = placed_at(&mine);
    let t = TileId::containing(12, p.x(), p.y());
    let tile_path = format!("/tiles/services/{}/{}/{}.mvt", t.z, t.x, t.y);
    get_tile(&app, None, &tile_path)
        .await
        .expect("a tile before");
    let (status, body) = send(
        &app,
        reqwest::Method::PATCH,
        &ed_a,
        &format!("/collections/services/items/{mine_id}"),
        Some(json!({"properties": {"name": "Aggiornato dal territorio (test)"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let tile = decode(&get_tile(&app, None, &tile_path).await.unwrap());
    let names: Vec<&String> = tile["services"]
        .iter()
        .filter(|f| f.properties["id"] == mine_id)
        .map(|f| &f.properties["name"])
        .collect();
    assert_eq!(names, vec!["Aggiornato dal territorio (test)"]);

    // Another territory's record: 403, and nothing changes.
    let (status, body) = send(
        &app,
        reqwest::Method::PATCH,
        &ed_a,
        &format!("/collections/services/items/{theirs_id}"),
        Some(json!({"properties": {"name": "Intruso"}})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_error(&body, "forbidden", "outside the territories");
    let (status, _) = send(
        &app,
        reqwest::Method::DELETE,
        &ed_a,
        &format!("/collections/services/items/{theirs_id}"),
        None,
    )
    .await;
    assert_eq!(status, 403);
    // Moving its own record out: 403.
    let (status, body) = send(
        &app,
        reqwest::Method::PATCH,
        &ed_a,
        &format!("/collections/services/items/{mine_id}"),
        Some(json!({"geometry": theirs["geometry"]})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_error(&body, "forbidden", "new position");
    let now = app
        .json(None, &format!("/collections/services/items/{mine_id}"), 200)
        .await;
    assert_eq!(now["geometry"], mine["geometry"], "not moved");
    // Creating: inside its territory yes, outside no; territories never.
    let at = |f: &Value| {
        json!({"type": "Feature", "geometry": f["geometry"],
            "properties": {"name": "Nuovo sportello (test)", "kind": "help_desk"}})
    };
    let post = |body: Value, path: &'static str| {
        let req = app
            .client
            .post(app.url(path))
            .bearer_auth(&ed_a)
            .json(&body);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(at(&mine), "/collections/services/items").await, 201);
    assert_eq!(post(at(&theirs), "/collections/services/items").await, 403);
    let (status, _) = send(
        &app,
        reqwest::Method::PATCH,
        &ed_a,
        &format!("/collections/territories/items/{}", a.id),
        Some(json!({"properties": {"name": "Più grande"}})),
    )
    .await;
    assert_eq!(status, 403);
    // The unscoped editor still writes anywhere.
    let (status, _) = send(
        &app,
        reqwest::Method::PATCH,
        &app.editor,
        &format!("/collections/services/items/{theirs_id}"),
        Some(json!({"properties": {"name": "Dalla rete (test)"}})),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn admins_manage_tokens_over_http_and_expiry_and_revoke_take_effect_at_once() {
    let app = spawn_app().await;
    let terrs = territories(&app).await;
    let create = |token: Option<String>, body: Value| {
        let mut req = app.client.post(app.url("/admin/tokens")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let body = json!({"name": "Unità di strada (test)", "role": "operator",
        "territories": [terrs[0].id], "expires": "30d"});
    assert_eq!(create(None, body.clone()).await.0, 401);
    assert_eq!(
        create(Some(app.operator.clone()), body.clone()).await.0,
        403
    );
    let (status, bad) = create(
        Some(app.admin.clone()),
        json!({"name": "x", "role": "operator", "territories": ["terr-nowhere"]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_error(&bad, "invalid_body", "territory");
    let (status, bad) = create(
        Some(app.admin.clone()),
        json!({"name": "x", "role": "admin", "territories": [terrs[0].id]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_error(&bad, "invalid_body", "territory");
    let (status, made) = create(Some(app.admin.clone()), body).await;
    assert_eq!(status, 201, "{made}");
    let secret = made["secret"].as_str().unwrap().to_owned();
    let id = made["token"]["id"].as_i64().unwrap();
    assert_eq!(made["token"]["territories"], json!([terrs[0].id]));
    app.json(Some(&secret), "/collections/settlements/items", 200)
        .await;
    app.json(Some(&app.operator), "/admin/tokens", 403).await;
    // Listed, with its last use recorded (off the request's path: give it a moment).
    let mut listed = Value::Null;
    for _ in 0..50 {
        let list = app.json(Some(&app.admin), "/admin/tokens", 200).await;
        listed = list["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .unwrap();
        if !listed["last_used_at"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed["state"], "live");
    assert!(!listed["last_used_at"].is_null(), "{listed}");
    assert!(listed["expires_at"].as_str().unwrap() > listed["created_at"].as_str().unwrap());
    assert!(!listed.to_string().contains(&secret));
    // Revoked: refused at the next request.
    let resp = app
        .client
        .delete(app.url(&format!("/admin/tokens/{id}")))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    app.json(Some(&secret), "/collections/settlements/items", 401)
        .await;
    let again = app
        .client
        .delete(app.url(&format!("/admin/tokens/{id}")))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);

    // Expiry: a token that lives a second and a half.
    let secret = faro::tokens::generate_secret().unwrap();
    let expires_at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    app.catalog
        .store()
        .create_scoped_token(&faro::storage::NewToken {
            name: "short-lived (test)",
            role: Role::Operator,
            secret_hash: &faro::tokens::hash_secret(&secret),
            territories: &[],
            expires_at: Some(expires_at),
        })
        .await
        .unwrap();
    app.json(Some(&secret), "/collections/settlements/items", 200)
        .await;
    let wait = expires_at - chrono::Utc::now();
    tokio::time::sleep(wait.to_std().unwrap_or_default() + Duration::from_millis(50)).await;
    let body = app
        .json(Some(&secret), "/collections/settlements/items", 401)
        .await;
    assert_error(&body, "invalid_token", "expired");
}

#[tokio::test]
async fn the_public_finds_a_confidential_shelter_by_phone_through_nearest_never_its_position() {
    let app = spawn_app().await;
    let services = all(&app, &app.operator, "services").await;
    let shelter = services
        .iter()
        .find(|f| f["properties"]["confidential"] == true && f["properties"]["kind"] == "shelter")
        .expect("a confidential shelter in the demo");
    let p = placed_at(shelter);
    let (lon, lat) = (format!("{:.4}", p.x()), format!("{:.4}", p.y()));
    let url = format!(
        "/nearest?lon={}&lat={}&kind=shelter&k=5",
        p.x() + 0.001,
        p.y() + 0.001
    );
    let anonymous = app.json(None, &url, 200).await;
    let features = anonymous["features"].as_array().unwrap();
    let doors: Vec<&Value> = features
        .iter()
        .filter(|f| f["properties"]["contact_only"] == true)
        .collect();
    let door = doors
        .iter()
        .find(|f| f["properties"]["name"] == shelter["properties"]["name"])
        .unwrap_or_else(|| panic!("no front door for the shelter in {anonymous}"));
    assert_eq!(door["properties"]["phone"], shelter["properties"]["phone"]);
    assert!(shelter["properties"]["phone"].is_string());
    assert!(door["geometry"].is_null());
    assert!(door.get("id").is_none());
    for hidden in ["distance_m", "address", "comune", "description", "id"] {
        assert!(door["properties"].get(hidden).is_none(), "{hidden}");
    }
    // Located answers first, then the contact points.
    let first_door = features
        .iter()
        .position(|f| f["properties"]["contact_only"] == true)
        .unwrap();
    assert!(
        features[first_door..]
            .iter()
            .all(|f| f["properties"]["contact_only"] == true)
    );
    assert_eq!(anonymous["numberReturned"], features.len());
    let text = anonymous.to_string();
    assert!(!text.contains(shelter["id"].as_str().unwrap()));
    assert!(
        !(text.contains(&lon) && text.contains(&lat)),
        "position {lon},{lat} in {text}"
    );
    // Only when its kind was asked for.
    for other in ["", "&kind=pas"] {
        let url = format!("/nearest?lon={}&lat={}&k=5{other}", p.x(), p.y());
        let answer = app.json(None, &url, 200).await;
        assert!(!answer.to_string().contains("contact_only"), "{url}");
    }
    // An operator of the whole network gets the shelter located, and no front door.
    let located = app.json(Some(&app.operator), &url, 200).await;
    assert!(ids(&located).contains(&shelter["id"].as_str().unwrap().to_owned()));
    assert!(!located.to_string().contains("contact_only"));
}

#[tokio::test]
async fn vacancy_reports_are_kept_over_time_and_summed_per_territory() {
    let app = spawn_app().await;
    let terrs = territories(&app).await;
    let services = all(&app, &app.operator, "services").await;
    let centre = services
        .iter()
        .find(|f| f["properties"]["confidential"] != true && f["properties"]["capacity"].is_u64())
        .expect("a public centre with beds");
    let id = centre["id"].as_str().unwrap();
    let capacity = centre["properties"]["capacity"].as_u64().unwrap();
    let path = format!("/collections/services/items/{id}");
    for v in [capacity - 1, 0, 2] {
        let (status, body) = send(
            &app,
            reqwest::Method::PATCH,
            &app.editor,
            &path,
            Some(json!({"properties": {"vacancy": v}})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let series = app
        .json(Some(&app.operator), &format!("{path}/vacancy"), 200)
        .await;
    let reports = series["reports"].as_array().unwrap();
    let vacancies: Vec<u64> = reports
        .iter()
        .map(|r| r["vacancy"].as_u64().unwrap())
        .collect();
    assert!(vacancies.ends_with(&[capacity - 1, 0, 2]), "{series}");
    let times: Vec<&str> = reports.iter().map(|r| r["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    assert_eq!(series["vacancy"], 2);
    // From the second report on.
    let from = reports[reports.len() - 2]["at"].as_str().unwrap();
    let later = app
        .json(
            Some(&app.operator),
            &format!("{path}/vacancy?from={}", from.replace('+', "%2B")),
            200,
        )
        .await;
    assert_eq!(later["reports"].as_array().unwrap().len(), 2, "{later}");
    app.json(None, &format!("{path}/vacancy"), 401).await;
    let home = terrs.iter().find(|t| t.holds(centre)).unwrap();
    let elsewhere = terrs.iter().find(|t| !t.holds(centre)).unwrap();
    let op_home = app.scoped_token(Role::Operator, &[&home.id]).await;
    let op_else = app.scoped_token(Role::Operator, &[&elsewhere.id]).await;
    app.json(Some(&op_home), &format!("{path}/vacancy"), 200)
        .await;
    app.json(Some(&op_else), &format!("{path}/vacancy"), 403)
        .await;
    // The summary: beds and free beds of the centres each territory holds.
    app.json(None, "/reception", 401).await;
    let summary = app.json(Some(&app.operator), "/reception", 200).await;
    let services = all(&app, &app.operator, "services").await;
    for row in summary["territories"].as_array().unwrap() {
        let t = terrs.iter().find(|t| row["id"] == t.id.as_str()).unwrap();
        let held: Vec<&Value> = services
            .iter()
            .filter(|f| {
                t.holds(f)
                    && (["shelter", "reception_centre"]
                        .contains(&f["properties"]["kind"].as_str().unwrap())
                        || f["properties"]["capacity"].is_u64())
            })
            .collect();
        let sum = |k: &str| -> u64 {
            held.iter()
                .filter_map(|f| f["properties"][k].as_u64())
                .sum()
        };
        assert_eq!(row["centres"], held.len(), "{row}");
        assert_eq!(row["beds"], sum("capacity"), "{row}");
        assert_eq!(row["free_beds"], sum("vacancy"), "{row}");
        if t.id == home.id {
            assert!(row["last_report_age_s"].as_i64().unwrap() < 60, "{row}");
        }
    }
    let scoped = app.json(Some(&op_home), "/reception", 200).await;
    assert_eq!(
        scoped["territories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec![home.id.as_str()]
    );
}

#[tokio::test]
async fn two_editors_with_the_same_etag_fifty_times_one_wins_each_round() {
    let app = spawn_app().await;
    let second = app.scoped_token(Role::Editor, &[]).await;
    let item = "/collections/services/items/svc-prefettura-treviso";
    let patch = |token: String, etag: String, round: usize, who: &'static str| {
        let req = app
            .client
            .patch(app.url(item))
            .bearer_auth(token)
            .header("if-match", etag)
            .header("content-type", "application/merge-patch+json")
            .body(
                json!({"properties": {"description": format!("round {round} by {who}")}})
                    .to_string(),
            );
        async move { req.send().await.unwrap().status().as_u16() }
    };
    for round in 0..50 {
        let etag = app.etag(item).await;
        let (a, b) = tokio::join!(
            patch(app.editor.clone(), etag.clone(), round, "a"),
            patch(second.clone(), etag, round, "b")
        );
        let mut got = [a, b];
        got.sort_unstable();
        assert_eq!(got, [200, 412], "round {round}");
    }
    let audit = app
        .json(
            Some(&app.admin),
            "/audit?collection=services&id=svc-prefettura-treviso&limit=1000",
            200,
        )
        .await;
    let updates: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "update")
        .collect();
    assert_eq!(updates.len(), 50);
    let rounds: BTreeSet<String> = updates
        .iter()
        .map(|e| {
            let d = e["after"]["properties"]["description"].as_str().unwrap();
            d.split(" by ").next().unwrap().to_owned()
        })
        .collect();
    assert_eq!(rounds.len(), 50, "one change per round");
}
