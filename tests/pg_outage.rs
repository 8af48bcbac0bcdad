//! PostgreSQL goes away during a run of reads and writes, then comes back.
//!
//! Needs the server started by `scripts/with-postgres.sh` (which exports how to stop and start
//! it); returns at once otherwise. It stops the whole server, so it lives in its own test
//! binary: cargo runs test binaries one after another.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use faro::catalog::Catalog;
use faro::domain::{Collection, RecordId, Role};
use faro::startup::Application;
use serde_json::{Value, json};

#[path = "common/skip.rs"]
mod skip;

struct Server {
    pg_ctl: String,
    pgdata: String,
    user: String,
    log: String,
}

impl Server {
    fn from_env() -> Option<Self> {
        Some(Self {
            pg_ctl: std::env::var("FARO_TEST_PG_CTL").ok()?,
            pgdata: std::env::var("FARO_TEST_PGDATA").ok()?,
            user: std::env::var("FARO_TEST_PG_USER").ok()?,
            log: std::env::var("FARO_TEST_PGLOG").ok()?,
        })
    }

    fn ctl(&self, args: &[&str]) {
        let status = Command::new("runuser")
            .args(["-u", &self.user, "--", &self.pg_ctl, "-D", &self.pgdata])
            .args(args)
            .status()
            .expect("run pg_ctl");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    fn stop(&self) {
        self.ctl(&["-m", "fast", "-w", "stop"]);
    }

    fn start(&self) {
        self.ctl(&["-l", &self.log, "-w", "start"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_survive_an_outage_and_writes_resume_after_it() {
    let (Some(server), Ok(admin_url)) =
        (Server::from_env(), std::env::var("FARO_TEST_DATABASE_URL"))
    else {
        skip::skip(
            "pg_outage",
            "no PostgreSQL server to stop and start (run it through scripts/with-postgres.sh)",
            "FARO_REQUIRE_POSTGRES",
        );
        return;
    };
    // A fresh database.
    let name = format!("faro_outage_{}", hex::encode(rand::random::<[u8; 4]>()));
    let (admin, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn_task = tokio::spawn(conn);
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);

    let store = faro::storage::open(&url, 4).await.unwrap();
    let catalog = Catalog::open(Arc::clone(&store)).await.unwrap();
    faro::demo::load_if_empty(&catalog).await.unwrap();
    let secret = faro::tokens::generate_secret().unwrap();
    store
        .create_token(
            "outage editor",
            Role::Editor,
            &faro::tokens::hash_secret(&secret),
        )
        .await
        .unwrap();
    let app = Application::with_listener(
        Arc::clone(&catalog),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // Readers: anonymous /nearest and item reads, all the time.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (client, base, stop, reads) = (
            client.clone(),
            base.clone(),
            Arc::clone(&stop),
            Arc::clone(&reads),
        );
        tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for path in [
                    "/nearest?lon=12.24&lat=45.67&k=5",
                    "/collections/services/items/svc-prefettura-treviso",
                ] {
                    match client.get(format!("{base}{path}")).send().await {
                        Ok(r) if r.status() == 200 => {
                            reads.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => failures.push(format!("{path}: {}", r.status())),
                        Err(e) => failures.push(format!("{path}: {e}")),
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            failures
        })
    };

    // The writer: one new service at a time, noting what was acknowledged.
    let mut acked = BTreeSet::new();
    let mut refused = BTreeSet::new();
    let mut n = 0_u32;
    let write = |n: u32| {
        let (client, base, secret) = (client.clone(), base.clone(), secret.clone());
        async move {
            let id = format!("svc-outage-{n:04}");
            let f = json!({"type": "Feature", "id": id, "geometry": {"type": "Point", "coordinates": [12.0 + f64::from(n) * 0.001, 45.5]},
                "properties": {"name": format!("Servizio {n}"), "kind": "pas"}});
            let resp = client
                .post(format!("{base}/collections/services/items"))
                .bearer_auth(&secret)
                .json(&f)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (id, status, body)
        }
    };
    for _ in 0..10 {
        let (id, status, body) = write(n).await;
        assert_eq!(status, 201, "{body}");
        acked.insert(id);
        n += 1;
    }

    server.stop();
    let down_at = Instant::now();
    // Writes during the outage: refused with 503 and a clear message, never a 500.
    for _ in 0..5 {
        let (id, status, body) = write(n).await;
        assert_eq!(status, 503, "write during the outage: {body}");
        assert_eq!(body["error"], "unavailable");
        assert!(body["message"].as_str().unwrap().contains("database"));
        refused.insert(id);
        n += 1;
    }
    let readiness = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(
        readiness.status(),
        503,
        "/readyz says not ready while the database is down"
    );
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("faro_store_up 0"), "{metrics}");
    // A token verified before the outage keeps working during it, even once its cached
    // check is no longer fresh (the epoch moved: the verifier must ask the store, which does
    // not answer, and falls back to the last good answer).
    catalog.token_epoch().fetch_add(1, Ordering::Relaxed);
    let authed = client
        .get(format!("{base}/collections/settlements/items?limit=1"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(authed.status(), 200, "the last good token answer stands");
    // A token never seen before cannot be checked: 503, never a 401 nor an anonymous answer.
    let unknown = client
        .get(format!("{base}/collections/settlements/items?limit=1"))
        .bearer_auth(faro::tokens::generate_secret().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.status(),
        503,
        "a token that cannot be checked is a 503"
    );
    let reads_during = reads.load(Ordering::Relaxed);
    // Stay down a while: the listener retries with backoff meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        reads.load(Ordering::Relaxed) > reads_during,
        "reads go on during the outage"
    );
    eprintln!("outage lasted {:?} before restart", down_at.elapsed());

    server.start();
    // faro reconnects by itself: readiness and writes come back.
    let back = Instant::now();
    loop {
        let r = client.get(format!("{base}/readyz")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "faro did not reconnect within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut first_after = None;
    while first_after.is_none() {
        let (id, status, body) = write(n).await;
        n += 1;
        match status {
            201 => first_after = Some(id),
            503 => {
                refused.insert(id);
            }
            other => panic!("write after the outage: {other} {body}"),
        }
        assert!(back.elapsed() < Duration::from_secs(30));
    }
    acked.insert(first_after.unwrap());
    for _ in 0..10 {
        let (id, status, body) = write(n).await;
        assert_eq!(status, 201, "{body}");
        acked.insert(id);
        n += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let failures = reader.await.unwrap();
    assert!(failures.is_empty(), "reads failed: {failures:?}");

    // Nothing lost, nothing applied twice, nothing refused slipped in.
    let fresh = faro::storage::open(&url, 1).await.unwrap();
    for id in &acked {
        let r = fresh
            .get(Collection::Services, &RecordId::parse(id).unwrap())
            .await
            .unwrap();
        let r = r.unwrap_or_else(|| panic!("acknowledged {id} is missing"));
        assert_eq!(r.meta().version, 1, "{id} applied once");
        assert!(
            catalog
                .snapshot()
                .unrestricted_layer(Collection::Services)
                .get(r.id())
                .is_some(),
            "{id} in the index"
        );
    }
    for id in &refused {
        assert!(
            fresh
                .get(Collection::Services, &RecordId::parse(id).unwrap())
                .await
                .unwrap()
                .is_none(),
            "refused {id} was written"
        );
    }
    let audit = fresh.audit_log(1000).await.unwrap();
    let creates = audit
        .iter()
        .filter(|e| e.record_id.starts_with("svc-outage-") && e.action == "create")
        .count();
    assert_eq!(
        creates,
        acked.len(),
        "one audit entry per acknowledged write"
    );

    drop(fresh);
    drop(catalog);
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
    conn_task.abort();
}
