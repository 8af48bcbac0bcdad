//! The `PostgreSQL` store over TLS against a real server: `sslmode` and `sslrootcert` as libpq
//! means them, for the pool, the `LISTEN` connection and `faro migrate`.
//!
//! Needs `FARO_TEST_DATABASE_URL` (an admin URL on 127.0.0.1: each test creates a fresh
//! `faro_tls_<random>` database and drops it at the end) and `FARO_TEST_PG_SSLROOTCERT` (the CA
//! that signed the server's certificate, which names `localhost` and `127.0.0.1`), both set by
//!
//! ```text
//! scripts/with-postgres.sh cargo test --test postgres_tls
//! ```
//!
//! Without them every test prints `SKIPPED: ...` and passes, unless `FARO_REQUIRE_POSTGRES` is
//! set, when they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faro::domain::{Collection, FeatureInput, RecordId};
use faro::storage::postgres::PostgresStore;
use faro::storage::{Change, Store, StoreError, StoreEvent, WriteOp};
use futures_util::FutureExt;
use serde_json::json;
use tokio_postgres::NoTls;

/// A CA that signed nothing the test server presents (made once with `openssl req -x509`, EC
/// P-256, valid until 2126; its key was thrown away).
const STRANGER_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBwzCCAWmgAwIBAgIUAc+tJXCN8HguO8aUn6W+zpgP22IwCgYIKoZIzj0EAwIw
LjEsMCoGA1UEAwwjZmFybyB0ZXN0OiBhIENBIHRoYXQgc2lnbmVkIG5vdGhpbmcw
IBcNMjYxMjAxMDg0MzU1WhgPMjEyNjExMDcwODQzNTVaMC4xLDAqBgNVBAMMI2Zh
cm8gdGVzdDogYSBDQSB0aGF0IHNpZ25lZCBub3RoaW5nMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEpx2ZZxqJJ3S0wnkHfPHMGVUtOogff8059z+UbLVvSp6Kqd4K
IYOtjigeLTzCJ4BtulMfI5DAGVq6lX/jh6ZOUqNjMGEwHQYDVR0OBBYEFHY9DJw5
yoXsDOaMSVyrdJbmbJGXMB8GA1UdIwQYMBaAFHY9DJw5yoXsDOaMSVyrdJbmbJGX
MA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMAoGCCqGSM49BAMCA0gA
MEUCICZ3k5eeOb31xM2hmoL5VBCkwxh2THLhvhK1Jq1psYJJAiEAheYKwdeMbn85
b21a5R9jVV67QiCFy9uQFtApWg9ElJ8=
-----END CERTIFICATE-----
";

/// A password the URLs carry (the test server trusts everyone, so it is never checked): no
/// error may contain it.
const PASSWORD: &str = "n0t-in-any-log";

/// The server: where it listens and the CA that signed its certificate.
struct Server {
    admin: String,
    port: u16,
    ca: PathBuf,
}

fn server() -> Option<Server> {
    let url = std::env::var("FARO_TEST_DATABASE_URL")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let ca = std::env::var("FARO_TEST_PG_SSLROOTCERT")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (Some(admin), Some(ca)) = (url, ca) else {
        let why = "FARO_TEST_DATABASE_URL and FARO_TEST_PG_SSLROOTCERT must both be set \
                   (scripts/with-postgres.sh sets them when it starts its own server)";
        assert!(
            std::env::var_os("FARO_REQUIRE_POSTGRES").is_none(),
            "FARO_REQUIRE_POSTGRES is set but {why}"
        );
        eprintln!("SKIPPED: PostgreSQL TLS test: {why}");
        return None;
    };
    let config: tokio_postgres::Config = admin.parse().expect("FARO_TEST_DATABASE_URL parses");
    let port = config.get_ports().first().copied().unwrap_or(5432);
    Some(Server {
        admin,
        port,
        ca: PathBuf::from(ca),
    })
}

impl Server {
    /// A URL for database `db` on `host`, with extra query parameters.
    fn url(&self, host: &str, db: &str, params: &str) -> String {
        format!(
            "postgresql://postgres:{PASSWORD}@{host}:{}/{db}?{params}",
            self.port
        )
    }

    fn ca(&self) -> String {
        percent(&self.ca)
    }
}

/// A path as a URL query value.
fn percent(path: &Path) -> String {
    percent_encoding::utf8_percent_encode(
        &path.to_string_lossy(),
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string()
}

async fn admin_exec(admin: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(admin, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to the admin database: {e}"));
    let driver = tokio::spawn(conn);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    drop(client);
    let _ = driver.await;
}

/// Runs `test` with a fresh database, dropped afterwards even if the test panics.
async fn with_db<F, Fut>(test: F)
where
    F: FnOnce(Server, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(server) = server() else { return };
    let admin = server.admin.clone();
    let name = format!("faro_tls_{:016x}", rand::random::<u64>());
    admin_exec(&admin, &format!("CREATE DATABASE {name}")).await;
    let outcome = AssertUnwindSafe(test(server, name.clone()))
        .catch_unwind()
        .await;
    admin_exec(&admin, &format!("DROP DATABASE {name} WITH (FORCE)")).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Whether the pool's session and the store's `LISTEN` session are encrypted, as the server
/// sees them (`pg_stat_ssl`), with the TLS version of the pool's session.
async fn encryption(store: &PostgresStore) -> (bool, Option<String>, bool) {
    let client = store.pool().get().await.unwrap();
    let own = client
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    let listen = client
        .query_one(
            "SELECT bool_and(s.ssl), count(*) FROM pg_stat_ssl s
             JOIN pg_stat_activity a USING (pid)
             WHERE a.datname = current_database() AND a.application_name = 'faro listen'",
            &[],
        )
        .await
        .unwrap();
    let listeners: i64 = listen.get(1);
    assert_eq!(listeners, 1, "one LISTEN connection per store");
    (own.get(0), own.get(1), listen.get(0))
}

fn connect_error(result: Result<PostgresStore, StoreError>) -> String {
    match result {
        Ok(_) => panic!("the store connected"),
        Err(e) => e.to_string(),
    }
}

fn assert_did_not_verify(text: &str, reason: &str) {
    assert!(
        text.contains("TLS certificate did not verify"),
        "the error should say the certificate did not verify: {text}"
    );
    assert!(
        text.contains(reason),
        "the error should give the reason `{reason}`: {text}"
    );
    assert!(!text.contains(PASSWORD), "the password leaked: {text}");
}

fn service(id: &str, name: &str) -> WriteOp {
    let input = FeatureInput::parse(
        Collection::Services,
        json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [12.25, 45.5]},
            "properties": {"name": name, "kind": "pas", "languages": ["it"],
                "comune": "026086", "last_verified": "2026-10-01", "confidential": true}}),
    )
    .unwrap();
    WriteOp::Insert {
        id: RecordId::parse(id).unwrap(),
        geometry: input.geometry,
        attributes: input.attributes,
    }
}

/// Waits up to `within` for the store to report a change to service `id`.
async fn heard(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<StoreEvent>,
    id: &str,
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(StoreEvent::Changed {
                collection: Collection::Services,
                id: got,
                ..
            })) if got.as_str() == id => return true,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return false,
        }
    }
}

// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn require_encrypts_without_checking_the_certificate() {
    with_db(|server, db| async move {
        // No sslrootcert: the test CA is in no trust store, and require does not care.
        let store = PostgresStore::connect(&server.url("127.0.0.1", &db, "sslmode=require"), 2)
            .await
            .unwrap();
        let (pool, version, listen) = encryption(&store).await;
        assert!(pool, "the pool's session is not encrypted");
        assert!(listen, "the LISTEN session is not encrypted");
        let version = version.unwrap_or_default();
        assert!(version.starts_with("TLSv1."), "{version}");
    })
    .await;
}

#[tokio::test]
async fn prefer_is_the_default_and_uses_tls_when_the_server_offers_it() {
    with_db(|server, db| async move {
        let store = PostgresStore::connect(&server.url("127.0.0.1", &db, ""), 2)
            .await
            .unwrap();
        let (pool, _, listen) = encryption(&store).await;
        assert!(
            pool && listen,
            "prefer did not use the TLS the server offers"
        );
    })
    .await;
}

#[tokio::test]
async fn disable_gives_plain_sessions() {
    with_db(|server, db| async move {
        let store = PostgresStore::connect(&server.url("127.0.0.1", &db, "sslmode=disable"), 2)
            .await
            .unwrap();
        let (pool, version, listen) = encryption(&store).await;
        assert!(!pool, "the pool's session is encrypted");
        assert_eq!(version, None);
        assert!(!listen, "the LISTEN session is encrypted");
    })
    .await;
}

#[tokio::test]
async fn verify_full_with_the_ca_serves_writes_reads_and_notifications() {
    with_db(|server, db| async move {
        let url = server.url(
            "localhost",
            &db,
            &format!("sslmode=verify-full&sslrootcert={}", server.ca()),
        );
        // faro migrate goes through the same settings.
        assert_eq!(
            PostgresStore::migrate(&url).await.unwrap(),
            faro::storage::postgres::migration_versions()
        );
        let store = PostgresStore::connect(&url, 2).await.unwrap();
        let (pool, _, listen) = encryption(&store).await;
        assert!(pool && listen, "verify-full sessions must be encrypted");

        let mut events = store.subscribe().expect("postgres has events");
        let changes = store
            .apply(vec![service("svc-tls", "Sportello")], "tls-test")
            .await
            .unwrap();
        let [Change::Upsert(written)] = changes.as_slice() else {
            panic!("one insert gives one upsert: {changes:?}")
        };
        let got = store
            .get(Collection::Services, &RecordId::parse("svc-tls").unwrap())
            .await
            .unwrap()
            .expect("the record just written");
        assert_eq!(&got, &**written);
        assert_eq!(got.meta().version, 1);
        assert_eq!(
            got.geometry(),
            &geo::Geometry::Point(geo::Point::new(12.25, 45.5))
        );
        assert!(
            heard(&mut events, "svc-tls", Duration::from_secs(5)).await,
            "the LISTEN connection delivered no NOTIFY within 5 s"
        );

        // A second instance over TLS hears the first one's writes.
        let other = PostgresStore::connect(&url, 1).await.unwrap();
        let mut other_events = other.subscribe().unwrap();
        store
            .apply(vec![service("svc-tls-2", "Sportello 2")], "tls-test")
            .await
            .unwrap();
        assert!(
            heard(&mut other_events, "svc-tls-2", Duration::from_secs(5)).await,
            "another instance heard nothing within 5 s"
        );
    })
    .await;
}

#[tokio::test]
async fn verify_full_checks_an_ip_address_against_the_certificates_ip_names() {
    with_db(|server, db| async move {
        let url = server.url(
            "127.0.0.1",
            &db,
            &format!("sslmode=verify-full&sslrootcert={}", server.ca()),
        );
        let store = PostgresStore::connect(&url, 1).await.unwrap();
        assert!(encryption(&store).await.0);
    })
    .await;
}

#[tokio::test]
async fn verify_full_refuses_a_host_name_the_certificate_does_not_name() {
    with_db(|server, db| async move {
        // The connection goes to 127.0.0.1 (hostaddr), but the name checked is `host`.
        let params = |mode: &str| {
            format!(
                "hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={}",
                server.ca()
            )
        };
        let url = server.url("db.faro-test.invalid", &db, &params("verify-full"));
        let text = connect_error(PostgresStore::connect(&url, 1).await);
        assert_did_not_verify(&text, "not valid for name");
        assert!(text.contains("db.faro-test.invalid"), "{text}");
        let migrated = PostgresStore::migrate(&url).await;
        let Err(e) = migrated else {
            panic!("faro migrate connected with verify-full to a wrong name")
        };
        assert_did_not_verify(&e.to_string(), "not valid for name");

        // verify-ca checks the same chain but not the name.
        let url = server.url("db.faro-test.invalid", &db, &params("verify-ca"));
        let store = PostgresStore::connect(&url, 1).await.unwrap();
        assert!(encryption(&store).await.0);
    })
    .await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    with_db(|server, db| async move {
        let dir = tempfile::tempdir().unwrap();
        let stranger = dir.path().join("stranger-ca.crt");
        std::fs::write(&stranger, STRANGER_CA).unwrap();
        let stranger = percent(&stranger);

        for params in [
            format!("sslmode=verify-full&sslrootcert={stranger}"),
            format!("sslmode=verify-ca&sslrootcert={stranger}"),
            // As in libpq, a root file makes require check the chain.
            format!("sslmode=require&sslrootcert={stranger}"),
        ] {
            let url = server.url("localhost", &db, &params);
            let text = connect_error(PostgresStore::connect(&url, 1).await);
            assert_did_not_verify(&text, "UnknownIssuer");
        }
        // Without sslrootcert, verify-full trusts the system's store, which lacks the test CA.
        let url = server.url("localhost", &db, "sslmode=verify-full");
        match PostgresStore::connect(&url, 1).await {
            Ok(_) => panic!("verify-full trusted a CA outside the system store"),
            Err(StoreError::BadUrl(text)) => {
                // A machine with no system store at all says so instead.
                assert!(text.contains("needs trusted CA certificates"), "{text}");
            }
            Err(e) => assert_did_not_verify(&e.to_string(), "UnknownIssuer"),
        }
    })
    .await;
}

#[tokio::test]
async fn bad_tls_settings_are_named_without_the_password() {
    let Some(server) = server() else { return };
    let url = server.url("localhost", "postgres", "sslmode=verify_full");
    let text = connect_error(PostgresStore::connect(&url, 1).await);
    assert!(text.contains("unknown sslmode `verify_full`"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");

    let url = server.url(
        "localhost",
        "postgres",
        "sslmode=verify-full&sslrootcert=%2Fnonexistent%2Fca.crt",
    );
    let Err(e) = PostgresStore::migrate(&url).await else {
        panic!("faro migrate ran without its root certificate file")
    };
    let text = e.to_string();
    assert!(text.contains("sslrootcert `/nonexistent/ca.crt`"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}
