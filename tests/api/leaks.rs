//! The leak test, driven by `/openapi.json`: every GET operation, called anonymously and as an
//! operator of another territory with parameters aimed at each restricted record (its id, a
//! bbox around it, a position on top of it, its name as the search text, the tiles that cover
//! it at several zooms), must answer without the record's id, name or position (longitude and
//! latitude to 4 decimals, side by side). A confidential service's name is its front door (it
//! is meant to be found, through `/nearest`, with a phone and no position), so for those the
//! tells are the id, the address and the position. New endpoints are covered without editing
//! this test: it reads the operations from the OpenAPI document.
//!
//! A positive control keeps the probe honest: the same requests made with an operator token
//! must reveal each record somewhere, or the parameters were not aimed at it.

use std::collections::BTreeMap;

use faro::tiles::TileId;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

/// A restricted record of the demo, and what would give it away.
struct Secret {
    id: String,
    collection: String,
    name: String,
    address: Option<String>,
    lon: f64,
    lat: f64,
    kind: Option<String>,
    /// A territory (id) the record is not in: a token confined to it must not see the record.
    elsewhere: String,
}

impl Secret {
    /// The strings whose presence in an answer leaks the record: its id, its name (but for a
    /// confidential service, whose name is its front door) and its address.
    fn tells(&self) -> Vec<String> {
        let mut tells = vec![self.id.clone()];
        if self.collection != "services" {
            tells.push(self.name.clone());
        }
        tells.extend(self.address.clone());
        tells
    }

    /// Its position as text, longitude and latitude each cut to 4 decimals (as JSON prints
    /// them: no trailing zeros): a leak when both appear close together.
    fn position_texts(&self) -> (String, String) {
        let cut = |v: f64| {
            let text = format!("{v}");
            match text.split_once('.') {
                Some((int, frac)) if frac.len() > 4 => format!("{int}.{}", &frac[..4]),
                _ => text,
            }
        };
        (cut(self.lon), cut(self.lat))
    }
}

/// Whether `a` and `b` both occur in `haystack` within `window` bytes of each other (a
/// coordinate pair, whatever the order and separator).
fn near(haystack: &[u8], a: &str, b: &str, window: usize) -> bool {
    let starts = |needle: &str| -> Vec<usize> {
        haystack
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle.as_bytes())
            .map(|(i, _)| i)
            .collect()
    };
    let bs = starts(b);
    starts(a)
        .iter()
        .any(|i| bs.iter().any(|j| i.abs_diff(*j) <= window))
}

async fn secrets(app: &TestApp) -> Vec<Secret> {
    // Which records each territory holds, as the network's operator lists them.
    let territories = app
        .json(None, "/collections/territories/items?kind=territory", 200)
        .await;
    let mut held: Vec<(String, String)> = Vec::new();
    for t in territories["features"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap().to_owned();
        for collection in ["services", "settlements", "worksites"] {
            let listed = app
                .json(
                    Some(&app.operator),
                    &format!("/collections/{collection}/items?territory={id}&limit=10000"),
                    200,
                )
                .await;
            let body = listed.to_string();
            held.push((id.clone(), body));
        }
    }
    let elsewhere = |record: &str| -> String {
        let ids: Vec<&String> = held.iter().map(|(t, _)| t).collect();
        ids.into_iter()
            .find(|t| {
                !held
                    .iter()
                    .any(|(u, body)| u == *t && body.contains(&format!("\"{record}\"")))
            })
            .cloned()
            .expect("a territory without the record")
    };
    let mut out = Vec::new();
    for collection in ["services", "settlements", "worksites"] {
        let fc = app
            .json(
                Some(&app.operator),
                &format!("/collections/{collection}/items?limit=10000"),
                200,
            )
            .await;
        let features = fc["features"].as_array().unwrap();
        let restricted: Vec<&Value> = features
            .iter()
            .filter(|f| collection != "services" || f["properties"]["confidential"] == true)
            .collect();
        // Every confidential service; a sample of the rest, points and polygons alike.
        let step = if collection == "services" {
            1
        } else {
            1 + restricted.len() / 8
        };
        for f in restricted.into_iter().step_by(step) {
            let g = &f["geometry"];
            let first = match g["type"].as_str().unwrap() {
                "Point" => &g["coordinates"],
                "Polygon" => &g["coordinates"][0][0],
                _ => &g["coordinates"][0][0][0],
            };
            let id = f["id"].as_str().unwrap().to_owned();
            out.push(Secret {
                elsewhere: elsewhere(&id),
                id,
                collection: collection.to_owned(),
                name: f["properties"]["name"].as_str().unwrap().to_owned(),
                address: f["properties"]["address"].as_str().map(str::to_owned),
                lon: first[0].as_f64().unwrap(),
                lat: first[1].as_f64().unwrap(),
                kind: f["properties"]["kind"].as_str().map(str::to_owned),
            });
        }
    }
    out
}

/// Every GET operation of the document: its path and its parameters (name, where).
fn get_operations(doc: &Value) -> Vec<(String, Vec<(String, String)>)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(path, item)| {
            let op = item.get("get")?;
            let params = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            (
                                p["name"].as_str().unwrap().to_owned(),
                                p["in"].as_str().unwrap().to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some((path.clone(), params))
        })
        .collect()
}

/// The requests aimed at `s` for one operation: every combination of the path parameters'
/// candidate values, with the query parameters set towards the record.
fn requests(path: &str, params: &[(String, String)], s: &Secret) -> Vec<String> {
    // Just off the record (about 30 m), so an echo of the request is not mistaken for a leak.
    let (lon, lat) = (s.lon + 0.000_31, s.lat + 0.000_27);
    let mut query: Vec<String> = Vec::new();
    for (name, place) in params {
        if place != "query" {
            continue;
        }
        let value = match name.as_str() {
            "bbox" => Some(format!(
                "{:.5},{:.5},{:.5},{:.5}",
                lon - 0.02,
                lat - 0.02,
                lon + 0.02,
                lat + 0.02
            )),
            "lon" => Some(format!("{lon:.5}")),
            "lat" => Some(format!("{lat:.5}")),
            "k" => Some("100".to_owned()),
            "limit" => Some("10000".to_owned()),
            "max_distance_m" => Some("50000".to_owned()),
            "radius_m" => Some("20000".to_owned()),
            "q" => Some(s.name.split_whitespace().next().unwrap_or("a").to_owned()),
            "kind" => s.kind.clone(),
            "collection" => Some(s.collection.clone()),
            _ => None,
        };
        if let Some(v) = value {
            query.push(format!("{name}={}", v.replace(' ', "%20")));
        }
    }
    let mut paths = vec![path.to_owned()];
    for (name, place) in params {
        if place != "path" {
            continue;
        }
        let candidates: Vec<String> = match name.as_str() {
            "collection" => ["services", "settlements", "worksites", "territories"]
                .map(str::to_owned)
                .to_vec(),
            "id" => vec![s.id.clone()],
            "layers" => vec![
                "services".to_owned(),
                "services,territories".to_owned(),
                format!("{},services", s.collection),
                "services,settlements,worksites,territories".to_owned(),
            ],
            // z, x and y are filled together below.
            "z" | "x" | "y" => vec![format!("{{{name}}}")],
            _ => vec!["x".to_owned()],
        };
        paths = paths
            .iter()
            .flat_map(|p| {
                candidates
                    .iter()
                    .map(move |c| p.replace(&format!("{{{name}}}"), c))
            })
            .collect();
    }
    if paths.iter().any(|p| p.contains("{z}")) {
        paths = paths
            .iter()
            .flat_map(|p| {
                [6u8, 9, 12, 15].map(|z| {
                    let t = TileId::containing(z, s.lon, s.lat);
                    p.replace("{z}", &t.z.to_string())
                        .replace("{x}", &t.x.to_string())
                        .replace("{y}", &t.y.to_string())
                })
            })
            .collect();
    }
    let query = query.join("&");
    paths
        .into_iter()
        .map(|p| {
            if query.is_empty() {
                p
            } else {
                format!("{p}?{query}")
            }
        })
        .collect()
}

async fn body(app: &TestApp, token: Option<&str>, url: &str) -> (u16, Vec<u8>) {
    let mut req = app.client.get(app.url(url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

fn find(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Whether `answer` (to `url`, by `who`) gives `s` away.
fn assert_hidden(who: &str, url: &str, status: u16, answer: &[u8], s: &Secret) {
    for tell in s.tells() {
        assert!(
            !find(answer, &tell),
            "{who} GET {url} ({status}) reveals `{tell}` of {}",
            s.id
        );
    }
    let (lon, lat) = s.position_texts();
    assert!(
        !near(answer, &lon, &lat, 32),
        "{who} GET {url} ({status}) reveals the position {lon}, {lat} of {}",
        s.id
    );
}

#[tokio::test]
async fn no_get_operation_reveals_a_restricted_record_to_an_anonymous_caller_or_another_territory()
{
    let app = spawn_app().await;
    let doc = app.json(None, "/openapi.json", 200).await;
    let operations = get_operations(&doc);
    assert!(
        operations.len() >= 14,
        "{} GET operations",
        operations.len()
    );
    let secrets = secrets(&app).await;
    assert!(secrets.len() >= 10, "{} restricted records", secrets.len());
    let mut scoped: BTreeMap<String, String> = BTreeMap::new();
    for s in &secrets {
        if !scoped.contains_key(&s.elsewhere) {
            let token = app
                .scoped_token(faro::domain::Role::Operator, &[&s.elsewhere])
                .await;
            scoped.insert(s.elsewhere.clone(), token);
        }
    }
    let mut revealed_to_operator: BTreeMap<String, usize> = BTreeMap::new();
    let mut requests_made = 0;
    for s in &secrets {
        let other = scoped[&s.elsewhere].as_str();
        for (path, params) in &operations {
            for url in requests(path, params, s) {
                for (who, token) in [
                    ("anonymous", None),
                    ("an operator of another territory", Some(other)),
                ] {
                    let (status, answer) = body(&app, token, &url).await;
                    assert!(status < 500, "{who} GET {url}: {status}");
                    if url.contains(&s.id) {
                        // The id is the caller's own words: the answer must be the one for an
                        // id that does not exist, the id echoed where the other is.
                        let fake = format!("{}-none", s.id.split('-').next().unwrap());
                        let (fake_status, other_answer) =
                            body(&app, token, &url.replace(&s.id, &fake)).await;
                        let other_answer =
                            String::from_utf8_lossy(&other_answer).replace(&fake, &s.id);
                        assert_eq!(
                            (status, String::from_utf8_lossy(&answer).into_owned()),
                            (fake_status, other_answer),
                            "{who} GET {url} is not answered as for an id that does not exist"
                        );
                        continue;
                    }
                    assert_hidden(who, &url, status, &answer, s);
                }
                if url.contains(&s.id) {
                    continue;
                }
                let (_, authorised) = body(&app, Some(&app.operator), &url).await;
                if find(&authorised, &s.id) {
                    *revealed_to_operator.entry(s.id.clone()).or_default() += 1;
                }
                requests_made += 1;
            }
        }
    }
    for s in &secrets {
        assert!(
            revealed_to_operator.get(&s.id).copied().unwrap_or(0) >= 2,
            "the probe never reached {} even as an operator: {revealed_to_operator:?}",
            s.id
        );
    }
    assert!(requests_made > 500, "{requests_made} requests");
}
