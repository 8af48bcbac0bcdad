//! The `faro` binary: import, token and serve, run as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::json;

fn faro(args: &[&str], db: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faro"))
        .args(args)
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run faro")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn service(id: &str, lon: f64, lat: f64) -> serde_json::Value {
    json!({"type": "Feature", "id": id, "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"name": format!("Servizio {id}"), "kind": "pas"}})
}

async fn count(db: &str) -> u64 {
    faro::storage::open(db, 1)
        .await
        .unwrap()
        .count()
        .await
        .unwrap()
}

#[tokio::test]
async fn import_writes_every_feature_of_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("f.db").display());
    let file = dir.path().join("ok.geojson");
    let doc = json!({"type": "FeatureCollection", "features": [service("svc-a", 12.1, 45.6), service("svc-b", 12.2, 45.7)]});
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = faro(&["import", "services", file.to_str().unwrap()], &db);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("imported 2 services"), "{stdout}");
    assert_eq!(count(&db).await, 2);
    // Importing the same ids again updates by id: nothing changed, nothing duplicated.
    let again = faro(&["import", "services", file.to_str().unwrap()], &db);
    assert!(again.status.success());
    assert!(
        text(&again).0.contains("0 created, 0 updated, 2 unchanged"),
        "{}",
        text(&again).0
    );
    assert_eq!(count(&db).await, 2);
}

#[tokio::test]
async fn a_malformed_import_names_the_feature_and_field_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("f.db").display());
    let file = dir.path().join("bad.geojson");
    let mut bad = service("svc-bad", 12.2, 45.7);
    bad["properties"]["languages"] = json!(["it", "klingon"]);
    let mut far = service("svc-far", 12.2, 145.7);
    far["properties"]["kind"] = json!("pas");
    let doc =
        json!({"type": "FeatureCollection", "features": [service("svc-ok", 12.1, 45.6), bad, far]});
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = faro(&["import", "services", file.to_str().unwrap()], &db);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("feature 2 (id svc-bad): field `languages"),
        "{stderr}"
    );
    assert!(
        stderr.contains("feature 3 (id svc-far): field `geometry`"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert_eq!(count(&db).await, 0);
    // Not JSON at all.
    std::fs::write(&file, "{\"type\": ").unwrap();
    let out = faro(&["import", "services", file.to_str().unwrap()], &db);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("not valid JSON"));
    // Unknown collection.
    let out = faro(&["import", "bakeries", file.to_str().unwrap()], &db);
    assert!(text(&out).1.contains("unknown collection `bakeries`"));
}

#[tokio::test]
async fn tokens_are_printed_once_stored_hashed_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    let db = format!("sqlite://{}", path.display());
    let out = faro(
        &[
            "token",
            "create",
            "--role",
            "operator",
            "--name",
            "Unità di strada Treviso",
        ],
        &db,
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let secret = stdout.trim().to_owned();
    assert!(
        secret.starts_with("faro_") && secret.len() == 69,
        "{secret}"
    );
    // Only the hash is in the file.
    let bytes = std::fs::read(&path).unwrap();
    let wal = std::fs::read(dir.path().join("f.db-wal")).unwrap_or_default();
    let needle = secret.as_bytes();
    assert!(
        !bytes.windows(needle.len()).any(|w| w == needle)
            && !wal.windows(needle.len()).any(|w| w == needle)
    );
    let list = faro(&["token", "list"], &db);
    let (listing, _) = text(&list);
    assert!(listing.contains("operator") && listing.contains("Unità di strada Treviso"));
    assert!(!listing.contains(&secret));
    let bad_role = faro(&["token", "create", "--role", "boss", "--name", "x"], &db);
    assert!(text(&bad_role).1.contains("unknown role `boss`"));
    let revoke = faro(&["token", "revoke", "1"], &db);
    assert!(revoke.status.success());
    let again = faro(&["token", "revoke", "1"], &db);
    assert!(!again.status.success());
    let store = faro::storage::open(&db, 1).await.unwrap();
    assert!(
        store
            .find_token(&faro::tokens::hash_secret(&secret))
            .await
            .unwrap()
            .is_none()
    );
}

#[test]
fn serve_on_port_zero_logs_the_port_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("f.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_faro"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &db)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("faro listening on http://").nth(1) {
                let addr = rest.split('/').next().unwrap_or_default().to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("faro logs its address");
    let body = http_get(
        &addr,
        "/nearest?lon=12.24&lat=45.67&kind=focal_point,pas&k=3",
    );
    child.kill().unwrap();
    let _ = child.wait();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["features"].as_array().unwrap().len(), 3, "{v}");
}

/// A plain HTTP/1.0 GET, returning the body.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    response.split_once("\r\n\r\n").unwrap().1.to_owned()
}

#[tokio::test]
async fn tokens_take_territories_and_an_expiry_checked_before_they_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("f.db").display());
    let file = dir.path().join("t.geojson");
    let territory = json!({"type": "FeatureCollection", "features": [{"type": "Feature",
        "id": "terr-test", "geometry": {"type": "Polygon", "coordinates":
            [[[12.0, 45.6], [12.3, 45.6], [12.3, 45.9], [12.0, 45.9], [12.0, 45.6]]]},
        "properties": {"name": "Territorio di prova", "level": "territory"}}]});
    std::fs::write(&file, territory.to_string()).unwrap();
    let import = faro(&["import", "territories", file.to_str().unwrap()], &db);
    assert!(import.status.success(), "{}", text(&import).1);
    let create = |extra: &[&str]| {
        let mut args = vec!["token", "create", "--name", "Cooperativa (test)"];
        args.extend_from_slice(extra);
        faro(&args, &db)
    };
    let ok = create(&[
        "--role",
        "editor",
        "--territory",
        "terr-test",
        "--expires",
        "90d",
    ]);
    let (secret, stderr) = text(&ok);
    assert!(ok.status.success(), "{stderr}");
    assert!(
        stderr.contains("territories terr-test") && stderr.contains("expires"),
        "{stderr}"
    );
    for (args, says) in [
        (
            vec!["--role", "operator", "--territory", "terr-nowhere"],
            "--territory: no territory with id `terr-nowhere`",
        ),
        (
            vec!["--role", "admin", "--territory", "terr-test"],
            "--territory: an admin token is for the whole network",
        ),
        (
            vec!["--role", "operator", "--expires", "2020-01-01"],
            "--expires: `2020-01-01` is not in the future",
        ),
        (
            vec!["--role", "operator", "--expires", "soon"],
            "--expires: `soon` is neither",
        ),
    ] {
        let out = create(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(text(&out).1.contains(says), "{args:?}: {}", text(&out).1);
    }
    let listing = text(&faro(&["token", "list"], &db)).0;
    let row = listing
        .lines()
        .find(|l| l.contains("Cooperativa (test)"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        row.contains("editor") && row.contains("terr-test") && row.contains("live"),
        "{row}"
    );
    assert!(
        listing.lines().count() == 2,
        "the refused ones were not stored: {listing}"
    );
    let store = faro::storage::open(&db, 1).await.unwrap();
    let t = store
        .find_token(&faro::tokens::hash_secret(secret.trim()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.territories.len(), 1);
    // 90 days from the command's clock, read a moment before the store stamped the creation.
    let lives = (t.expires_at.unwrap() - t.created_at).num_seconds();
    assert!(
        (90 * 86_400 - 60..=90 * 86_400).contains(&lives),
        "{lives} s"
    );
}

#[tokio::test]
async fn a_sqlite_file_of_the_first_schema_gains_the_token_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let db = format!("sqlite://{}", path.display());
    let out = faro(
        &["token", "create", "--role", "operator", "--name", "old"],
        &db,
    );
    assert!(out.status.success());
    // Back to schema 1: the token table as it was before scopes and expiry.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for column in ["territories", "expires_at", "last_used_at"] {
            conn.execute_batch(&format!("ALTER TABLE tokens DROP COLUMN {column}"))
                .unwrap();
        }
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    let store = faro::storage::open(&db, 1).await.unwrap();
    let tokens = store.list_tokens().await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].territories.is_empty() && tokens[0].expires_at.is_none());
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
}
