//! The `PostgreSQL` + `PostGIS` store against a real server.
//!
//! Runs only when `FARO_TEST_DATABASE_URL` names a server (an admin URL: each test creates a
//! fresh `faro_test_<random>` database and drops it at the end), e.g.
//!
//! ```text
//! scripts/with-postgres.sh cargo test --test postgres_store
//! ```
//!
//! The outage test also needs `FARO_TEST_PG_CTL` and `FARO_TEST_PGDATA` (set by the script) to
//! stop and start the server; it runs alone, the other tests wait for it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faro::domain::{Collection, FeatureInput, Record, RecordId, Role};
use faro::storage::postgres::PostgresStore;
use faro::storage::{Change, Precondition, Store, StoreError, StoreEvent, WriteOp};
use futures_util::FutureExt;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_postgres::NoTls;

/// Normal tests share the server; the outage test stops it, so it takes this exclusively.
static SERVER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

#[path = "common/skip.rs"]
mod skip;

fn admin_url() -> Option<String> {
    if !skip::have_postgres("postgres_store") {
        return None;
    }
    std::env::var("FARO_TEST_DATABASE_URL").ok()
}

/// The admin URL with another database name.
fn with_dbname(url: &str, db: &str) -> String {
    let (scheme, rest) = url
        .split_once("://")
        .expect("FARO_TEST_DATABASE_URL is a postgres:// URL");
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let authority = path.split('/').next().unwrap_or_default();
    let mut out = format!("{scheme}://{authority}/{db}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn admin_exec(admin: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(admin, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to {admin}: {e}"));
    let driver = tokio::spawn(conn);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    drop(client);
    let _ = driver.await;
}

/// A plain client on a test database, to look at what the store wrote.
async fn raw_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// Runs `test` with the URL of a fresh database, dropped afterwards even if the test panics.
async fn with_db<F, Fut>(exclusive: bool, test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(admin) = admin_url() else { return };
    let (_shared, _exclusive) = if exclusive {
        (None, Some(SERVER.write().await))
    } else {
        (Some(SERVER.read().await), None)
    };
    let name = format!("faro_test_{:016x}", rand::random::<u64>());
    admin_exec(&admin, &format!("CREATE DATABASE {name}")).await;
    let outcome = AssertUnwindSafe(test(with_dbname(&admin, &name)))
        .catch_unwind()
        .await;
    if exclusive {
        // Whatever happened, leave the server running for the next test.
        if !pg_ctl(&["status"]).await {
            pg_ctl_start().await;
        }
    }
    admin_exec(&admin, &format!("DROP DATABASE {name} WITH (FORCE)")).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn feature(collection: Collection, value: Value) -> FeatureInput {
    FeatureInput::parse(collection, value).unwrap()
}

fn insert(collection: Collection, id: &str, value: Value) -> WriteOp {
    let f = feature(collection, value);
    WriteOp::Insert {
        id: RecordId::parse(id).unwrap(),
        geometry: f.geometry,
        attributes: f.attributes,
    }
}

fn replace(collection: Collection, id: &str, expected: Option<i64>, value: Value) -> WriteOp {
    let f = feature(collection, value);
    WriteOp::Replace {
        id: RecordId::parse(id).unwrap(),
        expected: expected.map_or(Precondition::Any, Precondition::Version),
        geometry: f.geometry,
        attributes: f.attributes,
    }
}

fn delete(collection: Collection, id: &str, expected: Option<i64>) -> WriteOp {
    WriteOp::Delete {
        collection,
        id: RecordId::parse(id).unwrap(),
        expected: expected.map_or(Precondition::Any, Precondition::Version),
    }
}

fn service(lon: f64, lat: f64, name: &str) -> Value {
    json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"name": name, "kind": "pas", "languages": ["it", "en", "ar"],
            "opening_hours": "Mo-Fr 08:00-18:00", "capacity": 12, "vacancy": 3,
            "comune": "026086", "last_verified": "2026-10-01", "confidential": false}})
}

fn territory() -> Value {
    // A multipolygon with a hole, at awkward coordinates.
    json!({"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [
        [[[12.0, 45.0], [12.987_654_321_012_3, 45.0], [12.987_654_321_012_3, 45.912_345_678_901_2],
          [12.0, 45.912_345_678_901_2], [12.0, 45.0]],
         [[12.2, 45.2], [12.4, 45.2], [12.4, 45.4], [12.2, 45.2]]],
        [[[13.1, 45.1], [13.2, 45.1], [13.2, 45.2], [13.1, 45.1]]]]},
        "properties": {"name": "Sinistra Piave", "level": "territory", "population": 123_456,
            "comuni": ["026001", "026002"], "approximate": true}})
}

fn worksite() -> Value {
    json!({"type": "Feature", "geometry": {"type": "Polygon", "coordinates":
        [[[12.5, 45.5], [12.6, 45.5], [12.6, 45.6], [12.5, 45.6], [12.5, 45.5]]]},
        "properties": {"name": "Vigneto", "kind": "farm"}})
}

fn upserted(changes: &[Change]) -> Vec<Record> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Upsert(r) => Some(Record::clone(r)),
            Change::Delete { .. } => None,
        })
        .collect()
}

fn rid(id: &str) -> RecordId {
    RecordId::parse(id).unwrap()
}

/// The next event, or `None` after `within`.
async fn next_event(
    rx: &mut UnboundedReceiver<StoreEvent>,
    within: Duration,
) -> Option<StoreEvent> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

/// Waits for an event matching `want`, skipping others, for at most `within`.
async fn wait_for(
    rx: &mut UnboundedReceiver<StoreEvent>,
    within: Duration,
    want: impl Fn(&StoreEvent) -> bool,
) -> Option<StoreEvent> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = next_event(rx, left).await?;
        if want(&event) {
            return Some(event);
        }
    }
}

fn is_changed(event: &StoreEvent, collection: Collection, id: &str) -> bool {
    matches!(event, StoreEvent::Changed { collection: c, id: i, .. } if *c == collection && i.as_str() == id)
}

// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn migrations_apply_once_from_empty_and_then_are_a_no_op() {
    with_db(false, |url| async move {
        assert_eq!(PostgresStore::migrate(&url).await.unwrap(), faro::storage::postgres::migration_versions());
        assert_eq!(PostgresStore::migrate(&url).await.unwrap(), Vec::<i32>::new());
        // connect() migrates too, and finds nothing to do.
        let store = PostgresStore::connect(&url, 2).await.unwrap();
        assert_eq!(store.count().await.unwrap(), 0);

        let c = raw_client(&url).await;
        let versions: Vec<i32> = c
            .query("SELECT version FROM faro_migrations ORDER BY version", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, faro::storage::postgres::migration_versions());
        let postgis: Option<String> = c
            .query_one("SELECT extversion FROM pg_extension WHERE extname = 'postgis'", &[])
            .await
            .unwrap()
            .get(0);
        assert!(postgis.is_some());
        let gist: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_indexes WHERE tablename = 'records' AND indexdef LIKE '%USING gist (geom)%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(gist >= 1, "a GiST index on records.geom");

        // A database migrated by a newer faro is refused, not damaged.
        c.execute("INSERT INTO faro_migrations (version) VALUES (999)", &[])
            .await
            .unwrap();
        drop(store);
        match PostgresStore::connect(&url, 2).await {
            Err(StoreError::BadUrl(message)) => assert!(message.contains("999"), "{message}"),
            other => panic!("expected BadUrl, got {:?}", other.map(|_| ())),
        }
    })
    .await;
}

#[tokio::test]
async fn instances_starting_together_migrate_once() {
    with_db(false, |url| async move {
        let runs =
            futures_util::future::join_all((0..4).map(|_| PostgresStore::migrate(&url))).await;
        let mut applied: Vec<i32> = Vec::new();
        for run in runs {
            applied.extend(run.unwrap());
        }
        // Each migration is its own transaction: which instance applies which may vary, but
        // each is applied exactly once.
        applied.sort_unstable();
        assert_eq!(
            applied,
            faro::storage::postgres::migration_versions(),
            "exactly one instance applied each migration"
        );
        let stores =
            futures_util::future::join_all((0..3).map(|_| PostgresStore::connect(&url, 1))).await;
        for s in stores {
            s.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn open_selects_postgres_by_scheme() {
    with_db(false, |url| async move {
        let store = faro::storage::open(&url, 2).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        store.ping().await.unwrap();
        let alt = url.replacen("postgresql://", "postgres://", 1);
        assert_eq!(
            faro::storage::open(&alt, 1).await.unwrap().backend(),
            "postgres"
        );
    })
    .await;
}

#[tokio::test]
async fn insert_replace_delete_round_trip() {
    with_db(false, |url| async move {
        let store = PostgresStore::connect(&url, 4).await.unwrap();
        let changes = store
            .apply(
                vec![
                    insert(Collection::Services, "svc-a", service(12.123_456_789_012_345, 45.678_901_234_567_89, "PAS Treviso")),
                    insert(Collection::Territories, "terr-1", territory()),
                    insert(Collection::Worksites, "ws-1", worksite()),
                ],
                "tester",
            )
            .await
            .unwrap();
        let written = upserted(&changes);
        assert_eq!(written.len(), 3);
        for r in &written {
            assert_eq!(r.meta().version, 1);
            assert_eq!(r.meta().created_at, r.meta().updated_at);
            let stored = store.get(r.collection(), r.id()).await.unwrap().unwrap();
            assert_eq!(&stored, r, "what was read back is what was written");
        }
        assert_eq!(store.count().await.unwrap(), 3);

        // load_all: every record, ordered by collection then id, equal to what was written.
        let mut expected = written.clone();
        expected.sort_by(|a, b| (a.collection().as_str(), a.id()).cmp(&(b.collection().as_str(), b.id())));
        assert_eq!(store.load_all().await.unwrap(), expected);

        // Another instance reads the same.
        let other = PostgresStore::connect(&url, 1).await.unwrap();
        assert_eq!(other.load_all().await.unwrap(), expected);

        // Replace: version +1, created_at kept, updated_at moves on.
        let before = store.get(Collection::Services, &rid("svc-a")).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let changes = store
            .apply(vec![replace(Collection::Services, "svc-a", Some(1), service(12.5, 45.5, "PAS Treviso nord"))], "tester")
            .await
            .unwrap();
        let after = upserted(&changes).remove(0);
        assert_eq!(after.meta().version, 2);
        assert_eq!(after.meta().created_at, before.meta().created_at);
        assert!(after.meta().updated_at > before.meta().updated_at);
        assert_eq!(after.attributes().name(), "PAS Treviso nord");
        assert_eq!(other.get(Collection::Services, &rid("svc-a")).await.unwrap().unwrap(), after);

        // Replace without a version check still bumps the version.
        let changes = store
            .apply(vec![replace(Collection::Services, "svc-a", None, service(12.6, 45.6, "PAS"))], "tester")
            .await
            .unwrap();
        assert_eq!(upserted(&changes)[0].meta().version, 3);

        // Delete.
        let changes = store
            .apply(vec![delete(Collection::Worksites, "ws-1", Some(1))], "tester")
            .await
            .unwrap();
        assert!(matches!(&changes[..], [Change::Delete { collection: Collection::Worksites, id }] if id.as_str() == "ws-1"));
        assert!(store.get(Collection::Worksites, &rid("ws-1")).await.unwrap().is_none());
        assert_eq!(store.count().await.unwrap(), 2);

        // The same id may live in two collections, and be created again after a delete.
        store
            .apply(
                vec![
                    insert(Collection::Worksites, "svc-a", worksite()),
                    insert(Collection::Worksites, "ws-1", worksite()),
                ],
                "tester",
            )
            .await
            .unwrap();
        let again = store.get(Collection::Worksites, &rid("ws-1")).await.unwrap().unwrap();
        assert_eq!(again.meta().version, 1);
        assert_eq!(store.count().await.unwrap(), 4);
    })
    .await;
}

#[tokio::test]
async fn write_errors_name_the_record_and_change_nothing() {
    with_db(false, |url| async move {
        let store = PostgresStore::connect(&url, 2).await.unwrap();
        store
            .apply(
                vec![insert(
                    Collection::Services,
                    "svc-a",
                    service(12.0, 45.0, "A"),
                )],
                "t",
            )
            .await
            .unwrap();
        let snapshot = store.load_all().await.unwrap();

        match store
            .apply(
                vec![insert(
                    Collection::Services,
                    "svc-a",
                    service(12.0, 45.0, "B"),
                )],
                "t",
            )
            .await
        {
            Err(StoreError::AlreadyExists {
                collection: Collection::Services,
                id,
            }) => assert_eq!(id.as_str(), "svc-a"),
            other => panic!("expected AlreadyExists, got {other:?}"),
        }
        match store
            .apply(
                vec![replace(
                    Collection::Services,
                    "svc-zz",
                    None,
                    service(12.0, 45.0, "B"),
                )],
                "t",
            )
            .await
        {
            Err(StoreError::NotFound {
                collection: Collection::Services,
                id,
            }) => assert_eq!(id.as_str(), "svc-zz"),
            other => panic!("expected NotFound, got {other:?}"),
        }
        match store
            .apply(
                vec![replace(
                    Collection::Services,
                    "svc-a",
                    Some(7),
                    service(12.0, 45.0, "B"),
                )],
                "t",
            )
            .await
        {
            Err(StoreError::VersionMismatch {
                collection: Collection::Services,
                id,
                expected: Precondition::Version(7),
                actual: 1,
                ..
            }) => {
                assert_eq!(id.as_str(), "svc-a");
            }
            other => panic!("expected VersionMismatch, got {other:?}"),
        }
        match store
            .apply(vec![delete(Collection::Services, "svc-a", Some(2))], "t")
            .await
        {
            Err(StoreError::VersionMismatch {
                expected: Precondition::Version(2),
                actual: 1,
                ..
            }) => {}
            other => panic!("expected VersionMismatch, got {other:?}"),
        }
        match store
            .apply(vec![delete(Collection::Territories, "svc-a", None)], "t")
            .await
        {
            Err(StoreError::NotFound {
                collection: Collection::Territories,
                ..
            }) => {}
            other => panic!("expected NotFound, got {other:?}"),
        }
        assert_eq!(store.load_all().await.unwrap(), snapshot);
        assert_eq!(
            store.audit_log(100).await.unwrap().len(),
            1,
            "only the first insert is audited"
        );
    })
    .await;
}

#[tokio::test]
async fn a_batch_is_all_or_nothing() {
    with_db(false, |url| async move {
        let store = PostgresStore::connect(&url, 2).await.unwrap();
        store
            .apply(
                vec![insert(
                    Collection::Services,
                    "svc-b",
                    service(12.0, 45.0, "B"),
                )],
                "t",
            )
            .await
            .unwrap();

        // Second op fails on a duplicate: the first is not there.
        let err = store
            .apply(
                vec![
                    insert(Collection::Services, "svc-new", service(12.1, 45.1, "new")),
                    insert(Collection::Services, "svc-b", service(12.2, 45.2, "dup")),
                ],
                "t",
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
        assert!(
            store
                .get(Collection::Services, &rid("svc-new"))
                .await
                .unwrap()
                .is_none()
        );

        // Second op fails a version check: the first (a replace) is rolled back too.
        let err = store
            .apply(
                vec![
                    replace(
                        Collection::Services,
                        "svc-b",
                        Some(1),
                        service(13.0, 46.0, "moved"),
                    ),
                    delete(Collection::Services, "svc-b", Some(1)),
                ],
                "t",
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::VersionMismatch {
                    expected: Precondition::Version(1),
                    actual: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        let b = store
            .get(Collection::Services, &rid("svc-b"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.meta().version, 1);
        assert_eq!(b.attributes().name(), "B");

        // Duplicate ids within one batch.
        let err = store
            .apply(
                vec![
                    insert(Collection::Services, "svc-twice", service(12.1, 45.1, "1")),
                    insert(Collection::Services, "svc-twice", service(12.1, 45.1, "2")),
                ],
                "t",
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
        assert_eq!(store.count().await.unwrap(), 1);
        assert_eq!(store.audit_log(100).await.unwrap().len(), 1);

        // Several changes to one record in one batch chain their versions.
        let changes = store
            .apply(
                vec![
                    replace(
                        Collection::Services,
                        "svc-b",
                        Some(1),
                        service(12.0, 45.0, "B2"),
                    ),
                    replace(
                        Collection::Services,
                        "svc-b",
                        Some(2),
                        service(12.0, 45.0, "B3"),
                    ),
                ],
                "t",
            )
            .await
            .unwrap();
        assert_eq!(upserted(&changes)[1].meta().version, 3);
    })
    .await;
}

#[tokio::test]
async fn concurrent_replaces_with_the_same_version_let_one_win() {
    with_db(false, |url| async move {
        let a = PostgresStore::connect(&url, 2).await.unwrap();
        let b = PostgresStore::connect(&url, 2).await.unwrap();
        a.apply(vec![insert(Collection::Services, "svc-c", service(12.0, 45.0, "C"))], "t")
            .await
            .unwrap();
        for round in 1..=5_i64 {
            let (ra, rb) = tokio::join!(
                a.apply(vec![replace(Collection::Services, "svc-c", Some(round), service(12.0, 45.0, "by a"))], "a"),
                b.apply(vec![replace(Collection::Services, "svc-c", Some(round), service(12.0, 45.0, "by b"))], "b"),
            );
            let wins = usize::from(ra.is_ok()) + usize::from(rb.is_ok());
            assert_eq!(wins, 1, "round {round}: {ra:?} / {rb:?}");
            let loser = if ra.is_ok() { rb } else { ra };
            assert!(
                matches!(&loser, Err(StoreError::VersionMismatch { expected, actual, .. }) if *expected == Precondition::Version(round) && *actual == round + 1),
                "{loser:?}"
            );
        }
        let c = a.get(Collection::Services, &rid("svc-c")).await.unwrap().unwrap();
        assert_eq!(c.meta().version, 6);
    })
    .await;
}

#[tokio::test]
async fn batches_locking_in_opposite_orders_both_succeed() {
    with_db(false, |url| async move {
        let a = PostgresStore::connect(&url, 2).await.unwrap();
        let b = PostgresStore::connect(&url, 2).await.unwrap();
        a.apply(
            vec![
                insert(Collection::Services, "svc-x", service(12.0, 45.0, "X")),
                insert(Collection::Services, "svc-y", service(12.0, 45.0, "Y")),
            ],
            "t",
        )
        .await
        .unwrap();
        let xy = || {
            vec![
                replace(
                    Collection::Services,
                    "svc-x",
                    None,
                    service(12.0, 45.0, "X"),
                ),
                replace(
                    Collection::Services,
                    "svc-y",
                    None,
                    service(12.0, 45.0, "Y"),
                ),
            ]
        };
        let rounds = 4;
        for _ in 0..rounds {
            let mut yx = xy();
            yx.reverse();
            // A deadlock, should one happen, is retried rather than reported.
            let (ra, rb) = tokio::join!(a.apply(xy(), "a"), b.apply(yx, "b"));
            ra.unwrap();
            rb.unwrap();
        }
        for id in ["svc-x", "svc-y"] {
            let r = a
                .get(Collection::Services, &rid(id))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.meta().version, 1 + 2 * rounds);
        }
    })
    .await;
}

#[tokio::test]
async fn tokens_create_find_list_revoke() {
    with_db(false, |url| async move {
        let store = PostgresStore::connect(&url, 2).await.unwrap();
        assert!(store.list_tokens().await.unwrap().is_empty());
        let t1 = store
            .create_token("alice", Role::Editor, "hash-1")
            .await
            .unwrap();
        let t2 = store
            .create_token("bob", Role::Admin, "hash-2")
            .await
            .unwrap();
        assert_eq!(
            (t1.name.as_str(), t1.role, t1.revoked_at),
            ("alice", Role::Editor, None)
        );
        assert!(t2.id > t1.id);

        assert_eq!(
            store.find_token("hash-1").await.unwrap().as_ref(),
            Some(&t1)
        );
        assert_eq!(
            store.find_token("hash-2").await.unwrap().as_ref(),
            Some(&t2)
        );
        assert!(store.find_token("nope").await.unwrap().is_none());
        assert_eq!(
            store.list_tokens().await.unwrap(),
            vec![t1.clone(), t2.clone()]
        );

        // The same secret hash twice is refused.
        assert!(
            store
                .create_token("eve", Role::Operator, "hash-1")
                .await
                .is_err()
        );

        assert!(store.revoke_token(t1.id).await.unwrap());
        assert!(!store.revoke_token(t1.id).await.unwrap(), "already revoked");
        assert!(!store.revoke_token(9_999).await.unwrap(), "no such token");
        assert!(store.find_token("hash-1").await.unwrap().is_none());
        let list = store.list_tokens().await.unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].revoked_at.is_some_and(|r| r >= t1.created_at));
        assert_eq!(list[1], t2);
    })
    .await;
}

#[tokio::test]
async fn the_audit_log_records_each_change_newest_first() {
    with_db(false, |url| async move {
        let store = PostgresStore::connect(&url, 2).await.unwrap();
        let created = upserted(
            &store
                .apply(
                    vec![insert(
                        Collection::Services,
                        "svc-a",
                        service(12.0, 45.0, "A"),
                    )],
                    "alice (editor, token 1)",
                )
                .await
                .unwrap(),
        )
        .remove(0);
        let updated = upserted(
            &store
                .apply(
                    vec![replace(
                        Collection::Services,
                        "svc-a",
                        Some(1),
                        service(12.1, 45.1, "A2"),
                    )],
                    "bob",
                )
                .await
                .unwrap(),
        )
        .remove(0);
        store
            .apply(
                vec![delete(Collection::Services, "svc-a", Some(2))],
                "carol",
            )
            .await
            .unwrap();

        let log = store.audit_log(10).await.unwrap();
        let summary: Vec<(&str, &str, Collection, &str)> = log
            .iter()
            .map(|e| {
                (
                    e.action.as_str(),
                    e.actor.as_str(),
                    e.collection,
                    e.record_id.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("delete", "carol", Collection::Services, "svc-a"),
                ("update", "bob", Collection::Services, "svc-a"),
                (
                    "create",
                    "alice (editor, token 1)",
                    Collection::Services,
                    "svc-a"
                ),
            ]
        );
        let feature = faro::domain::feature::to_feature;
        assert_eq!(log[2].before, None);
        assert_eq!(log[2].after, Some(feature(&created)));
        assert_eq!(log[1].before, Some(feature(&created)));
        assert_eq!(log[1].after, Some(feature(&updated)));
        assert_eq!(log[0].before, Some(feature(&updated)));
        assert_eq!(log[0].after, None);
        assert_eq!(log[2].at, created.meta().created_at);
        assert_eq!(log[1].at, updated.meta().updated_at);
        assert!(log[0].at >= log[1].at);
        assert_eq!(store.audit_log(1).await.unwrap().len(), 1);

        // before/after are json in the table (migration 0005: kept as written).
        let c = raw_client(&url).await;
        let kinds: Vec<Option<String>> = c
            .query("SELECT json_typeof(after) FROM audit_log ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            kinds,
            vec![Some("object".to_owned()), Some("object".to_owned()), None]
        );
    })
    .await;
}

#[tokio::test]
async fn a_write_by_one_instance_reaches_the_others_within_a_second() {
    with_db(false, |url| async move {
        let writer = PostgresStore::connect(&url, 2).await.unwrap();
        let reader = PostgresStore::connect(&url, 2).await.unwrap();
        let mut events = reader.subscribe().expect("postgres has events");
        let mut own = writer.subscribe().expect("postgres has events");

        let start = Instant::now();
        writer
            .apply(
                vec![insert(
                    Collection::Services,
                    "svc-n",
                    service(12.0, 45.0, "N"),
                )],
                "t",
            )
            .await
            .unwrap();
        let got = wait_for(&mut events, Duration::from_secs(1), |e| {
            is_changed(e, Collection::Services, "svc-n")
        })
        .await;
        assert!(got.is_some(), "no notification within 1 s");
        println!("notification after {:?}", start.elapsed());
        assert!(
            wait_for(&mut own, Duration::from_secs(1), |e| is_changed(
                e,
                Collection::Services,
                "svc-n"
            ))
            .await
            .is_some(),
            "the writer hears its own change too"
        );

        // A rolled-back batch notifies nobody.
        let _ = writer
            .apply(
                vec![
                    insert(Collection::Services, "svc-ghost", service(12.0, 45.0, "G")),
                    insert(Collection::Services, "svc-n", service(12.0, 45.0, "dup")),
                ],
                "t",
            )
            .await
            .unwrap_err();

        // Replace and delete notify as well; one batch gives one event per row.
        writer
            .apply(
                vec![
                    replace(
                        Collection::Services,
                        "svc-n",
                        Some(1),
                        service(12.5, 45.5, "N2"),
                    ),
                    insert(Collection::Territories, "terr-n", territory()),
                ],
                "t",
            )
            .await
            .unwrap();
        writer
            .apply(vec![delete(Collection::Territories, "terr-n", None)], "t")
            .await
            .unwrap();
        let mut seen = Vec::new();
        while let Some(event) = next_event(&mut events, Duration::from_millis(500)).await {
            match event {
                StoreEvent::Changed { collection, id, .. } => {
                    seen.push((collection, id.as_str().to_owned()));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            seen,
            vec![
                (Collection::Services, "svc-n".to_owned()),
                (Collection::Territories, "terr-n".to_owned()),
                (Collection::Territories, "terr-n".to_owned()),
            ]
        );

        // A change made with plain SQL reaches faro too (the trigger, not faro, notifies).
        let c = raw_client(&url).await;
        c.execute(
            "UPDATE records SET version = version + 1 WHERE id = 'svc-n'",
            &[],
        )
        .await
        .unwrap();
        assert!(
            wait_for(&mut events, Duration::from_secs(1), |e| is_changed(
                e,
                Collection::Services,
                "svc-n"
            ))
            .await
            .is_some()
        );

        // Dropping a receiver does not disturb the others.
        drop(own);
        writer
            .apply(vec![delete(Collection::Services, "svc-n", None)], "t")
            .await
            .unwrap();
        assert!(
            wait_for(&mut events, Duration::from_secs(1), |e| is_changed(
                e,
                Collection::Services,
                "svc-n"
            ))
            .await
            .is_some()
        );
    })
    .await;
}

#[tokio::test]
async fn a_lost_listener_connection_reconnects_and_asks_for_a_resync() {
    with_db(false, |url| async move {
        let store = PostgresStore::connect(&url, 2).await.unwrap();
        let mut events = store.subscribe().unwrap();
        // Kill the listening backend (not the server): the store reconnects.
        let c = raw_client(&url).await;
        let killed: i64 = c
            .query_one(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                 AND application_name = 'faro listen') t",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(killed, 1, "one listening connection per store");
        assert!(matches!(
            next_event(&mut events, Duration::from_secs(3)).await,
            Some(StoreEvent::Availability(false))
        ));
        assert!(matches!(
            next_event(&mut events, Duration::from_secs(5)).await,
            Some(StoreEvent::Availability(true))
        ));
        assert!(matches!(
            next_event(&mut events, Duration::from_secs(1)).await,
            Some(StoreEvent::Resync)
        ));
        // And listens again.
        store
            .apply(
                vec![insert(
                    Collection::Services,
                    "svc-r",
                    service(12.0, 45.0, "R"),
                )],
                "t",
            )
            .await
            .unwrap();
        assert!(
            wait_for(&mut events, Duration::from_secs(1), |e| is_changed(
                e,
                Collection::Services,
                "svc-r"
            ))
            .await
            .is_some()
        );

        // Dropping the store closes its listening connection and ends the stream.
        let listening = || async {
            let n: i64 = c
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND application_name = 'faro listen'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            n
        };
        assert_eq!(listening().await, 1);
        drop(store);
        let deadline = Instant::now() + Duration::from_secs(3);
        while listening().await != 0 {
            assert!(
                Instant::now() < deadline,
                "the listening connection outlived its store"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            next_event(&mut events, Duration::from_millis(100))
                .await
                .is_none()
        );
    })
    .await;
}

// -------------------------------------------------------------------------------------------
// Outages

fn pg_ctl_env() -> Option<(String, String, Option<String>)> {
    let ctl = std::env::var("FARO_TEST_PG_CTL").ok()?;
    let data = std::env::var("FARO_TEST_PGDATA").ok()?;
    Some((ctl, data, std::env::var("FARO_TEST_PG_USER").ok()))
}

/// Runs `pg_ctl -D $FARO_TEST_PGDATA ARGS` (as `FARO_TEST_PG_USER` if set); true on success.
async fn pg_ctl(args: &[&str]) -> bool {
    let Some((ctl, data, user)) = pg_ctl_env() else {
        return true;
    };
    let mut cmd = match &user {
        Some(user) => {
            let mut c = tokio::process::Command::new("runuser");
            c.args(["-u", user, "--", &ctl]);
            c
        }
        None => tokio::process::Command::new(&ctl),
    };
    cmd.args(["-D", &data]).args(args);
    cmd.stdout(std::process::Stdio::null());
    cmd.status().await.is_ok_and(|s| s.success())
}

async fn pg_ctl_start() {
    let log = std::env::var("FARO_TEST_PGLOG").unwrap_or_else(|_| {
        format!(
            "{}/restart.log",
            std::env::var("FARO_TEST_PGDATA").unwrap_or_default()
        )
    });
    assert!(
        pg_ctl(&["-l", &log, "-w", "-t", "60", "start"]).await,
        "pg_ctl start failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_reported_fast_and_recovered_from() {
    if std::env::var_os("FARO_TEST_DATABASE_URL").is_some() && pg_ctl_env().is_none() {
        skip::skip(
            "an_outage_is_reported_fast_and_recovered_from",
            "FARO_TEST_PG_CTL / FARO_TEST_PGDATA not set (use scripts/with-postgres.sh)",
            "FARO_REQUIRE_POSTGRES",
        );
        return;
    }
    with_db(true, |url| async move {
        let store = Arc::new(PostgresStore::connect(&url, 2).await.unwrap());
        let mut events = store.subscribe().unwrap();
        store
            .apply(
                vec![insert(
                    Collection::Services,
                    "svc-o",
                    service(12.0, 45.0, "O"),
                )],
                "t",
            )
            .await
            .unwrap();
        assert!(
            wait_for(&mut events, Duration::from_secs(1), |e| is_changed(
                e,
                Collection::Services,
                "svc-o"
            ))
            .await
            .is_some()
        );

        assert!(
            pg_ctl(&["-m", "fast", "-w", "stop"]).await,
            "pg_ctl stop failed"
        );
        assert!(
            wait_for(&mut events, Duration::from_secs(8), |e| matches!(
                e,
                StoreEvent::Availability(false)
            ))
            .await
            .is_some(),
            "the listener noticed the outage"
        );
        // A subscriber arriving now learns it at once.
        let mut late = store.subscribe().unwrap();
        assert!(matches!(
            next_event(&mut late, Duration::from_millis(100)).await,
            Some(StoreEvent::Availability(false))
        ));

        // Every call fails fast with Unavailable (the HTTP layer's 503).
        let start = Instant::now();
        for result in [
            store.ping().await,
            store
                .get(Collection::Services, &rid("svc-o"))
                .await
                .map(|_| ()),
            store.count().await.map(|_| ()),
            store
                .apply(vec![delete(Collection::Services, "svc-o", None)], "t")
                .await
                .map(|_| ()),
            store.find_token("x").await.map(|_| ()),
        ] {
            assert!(
                matches!(result, Err(StoreError::Unavailable { .. })),
                "{result:?}"
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(12),
            "took {:?}",
            start.elapsed()
        );
        match PostgresStore::connect(&url, 1).await {
            Err(StoreError::Unavailable { .. }) => {}
            other => panic!("expected Unavailable, got {:?}", other.map(|_| ())),
        }

        pg_ctl_start().await;
        assert!(
            wait_for(&mut events, Duration::from_secs(10), |e| matches!(
                e,
                StoreEvent::Availability(true)
            ))
            .await
            .is_some(),
            "the listener noticed the recovery"
        );
        assert!(matches!(
            next_event(&mut events, Duration::from_secs(1)).await,
            Some(StoreEvent::Resync)
        ));

        // The pool recovers: nothing was lost, writes work and notify again.
        let o = store
            .get(Collection::Services, &rid("svc-o"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(o.meta().version, 1);
        store
            .apply(vec![delete(Collection::Services, "svc-o", Some(1))], "t")
            .await
            .unwrap();
        assert!(
            wait_for(&mut events, Duration::from_secs(1), |e| is_changed(
                e,
                Collection::Services,
                "svc-o"
            ))
            .await
            .is_some()
        );
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_quickly() {
    // Needs no server: nothing listens on port 1.
    let start = Instant::now();
    match PostgresStore::connect("postgresql://postgres@127.0.0.1:1/faro", 2).await {
        Err(StoreError::Unavailable { message, .. }) => assert!(!message.is_empty()),
        other => panic!("expected Unavailable, got {:?}", other.map(|_| ())),
    }
    match PostgresStore::migrate("postgresql://postgres@127.0.0.1:1/faro").await {
        Err(StoreError::Unavailable { .. }) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert!(matches!(
        PostgresStore::connect("postgresql://host:notaport/db", 1).await,
        Err(StoreError::BadUrl(_))
    ));
}

/// The secondary indexes of the two tables a bulk write fills, as `(name, definition,
/// valid)`, in name order.
async fn secondary_indexes(c: &tokio_postgres::Client) -> Vec<(String, String, bool)> {
    c.query(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), i.indisvalid
         FROM pg_index i
         WHERE i.indrelid IN ('records'::regclass, 'audit_log'::regclass) AND NOT i.indisprimary
         ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// The primary keys of `records` and `audit_log` as faro's schema makes them.
const PRIMARY_KEYS: [&str; 2] = [
    "audit_log_pkey PRIMARY KEY (id)",
    "records_pkey PRIMARY KEY (collection, id)",
];

/// The valid primary keys of `records` and `audit_log`: name and definition.
async fn primary_keys(c: &tokio_postgres::Client) -> Vec<String> {
    c.query(
        "SELECT k.conname || ' ' || pg_get_constraintdef(k.oid)
         FROM pg_constraint k JOIN pg_index i ON i.indexrelid = k.conindid
         WHERE k.conrelid IN ('records'::regclass, 'audit_log'::regclass) AND k.contype = 'p'
           AND i.indisvalid AND i.indisunique
         ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// The tables among `records` and `audit_log` held exclusively (what a bulk write deferring
/// their indexes holds until its end), in name order.
async fn held_exclusively(c: &tokio_postgres::Client) -> Vec<String> {
    c.query(
        "SELECT relation::regclass::text FROM pg_locks
         WHERE relation IN ('records'::regclass, 'audit_log'::regclass)
           AND mode = 'AccessExclusiveLock' AND granted
         ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// `n` new services in a grid over the province, in chunks as `faro import` sends them.
fn many_services(n: usize) -> Vec<Vec<WriteOp>> {
    let ops: Vec<WriteOp> = (0..n)
        .map(|i| {
            #[allow(clippy::cast_precision_loss)]
            let (x, y) = ((i % 500) as f64 / 500.0, (i / 500) as f64 / 500.0);
            insert(
                Collection::Services,
                &format!("bulk-{i}"),
                service(11.8 + x, 45.5 + y, &format!("Servizio {i}")),
            )
        })
        .collect();
    let mut chunks = Vec::new();
    let mut ops = ops.into_iter().peekable();
    while ops.peek().is_some() {
        chunks.push(ops.by_ref().take(10_000).collect());
    }
    chunks
}

#[tokio::test]
async fn a_large_bulk_write_builds_its_secondary_indexes_again_at_the_commit() {
    with_db(false, |url| async move {
        let store = PostgresStore::connect(&url, 2).await.unwrap();
        let c = raw_client(&url).await;
        let before = secondary_indexes(&c).await;
        let names: Vec<&str> = before.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "audit_log_record",
                "records_geom_gist",
                "records_public_services_geom_gist",
                "records_updated_at"
            ]
        );

        // Past 50,000 inserts the indexes are dropped inside the transaction: dropping it
        // uncommitted brings them back with everything else.
        let rows = |sql: &'static str| {
            let c = &c;
            async move { c.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
        };
        let mut bulk = store.bulk("importer").await.unwrap();
        for chunk in many_services(60_000) {
            bulk.apply(chunk).await.unwrap();
        }
        bulk.flush().await.unwrap();
        assert_eq!(
            held_exclusively(&c).await,
            ["audit_log", "records"],
            "held to drop their indexes"
        );
        drop(bulk);
        // The worker rolls back as the handle's channel closes.
        let deadline = Instant::now() + Duration::from_secs(10);
        while rows("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND datname = current_database()").await > 0 {
            assert!(Instant::now() < deadline, "the dropped bulk write rolls back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(rows("SELECT count(*) FROM records").await, 0);
        assert_eq!(secondary_indexes(&c).await, before);
        assert_eq!(primary_keys(&c).await, PRIMARY_KEYS);

        let mut bulk = store.bulk("importer").await.unwrap();
        for chunk in many_services(60_000) {
            bulk.apply(chunk).await.unwrap();
        }
        bulk.flush().await.unwrap();
        assert_eq!(held_exclusively(&c).await, ["audit_log", "records"]);
        bulk.commit().await.unwrap();
        assert!(held_exclusively(&c).await.is_empty());
        assert_eq!(rows("SELECT count(*) FROM records").await, 60_000);
        assert_eq!(rows("SELECT count(*) FROM audit_log").await, 60_000);
        assert_eq!(secondary_indexes(&c).await, before, "the same indexes, valid");
        assert_eq!(primary_keys(&c).await, PRIMARY_KEYS, "and the same keys");
        let again = store
            .apply(vec![insert(Collection::Services, "bulk-7", service(12.0, 45.6, "Again"))], "alice")
            .await;
        assert!(
            matches!(&again, Err(StoreError::AlreadyExists { id, .. }) if id.as_str() == "bulk-7"),
            "the key holds again: {again:?}"
        );
        // And they hold every row: a bounding-box query through the GiST index finds what a
        // scan finds.
        c.batch_execute("SET enable_seqscan = off").await.unwrap();
        let plan: Vec<String> = c
            .query(
                "EXPLAIN SELECT count(*) FROM records
                 WHERE geom && ST_MakeEnvelope(12.0, 45.6, 12.2, 45.62, 4326)",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(
            plan.iter().any(|l| l.contains("records_geom_gist")),
            "{plan:?}"
        );
        let by_index = rows(
            "SELECT count(*) FROM records WHERE geom && ST_MakeEnvelope(12.0, 45.6, 12.2, 45.62, 4326)",
        )
        .await;
        c.batch_execute("SET enable_seqscan = on; SET enable_indexscan = off; SET enable_bitmapscan = off")
            .await
            .unwrap();
        let by_scan = rows(
            "SELECT count(*) FROM records WHERE geom && ST_MakeEnvelope(12.0, 45.6, 12.2, 45.62, 4326)",
        )
        .await;
        assert_eq!(by_index, by_scan);
        assert!(by_index > 1000, "{by_index}");
        let history = store
            .audit(&faro::storage::AuditQuery {
                record_id: Some("bulk-59999".to_owned()),
                limit: 10,
                ..faro::storage::AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(history.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_large_bulk_write_keeps_the_indexes_of_a_busy_table() {
    with_db(false, |url| async move {
        let store = PostgresStore::connect(&url, 2).await.unwrap();
        let c = raw_client(&url).await;
        let before = secondary_indexes(&c).await;
        // Another session reads the audit log in an open transaction: its lock would make a
        // drop wait for it, so the import gives up deferring the audit log's index after five
        // seconds (the records' indexes it still builds again at the commit).
        let mut reader = raw_client(&url).await;
        let open = reader.transaction().await.unwrap();
        open.query("SELECT count(*) FROM audit_log", &[])
            .await
            .unwrap();
        let mut bulk = store.bulk("importer").await.unwrap();
        let started = Instant::now();
        for chunk in many_services(60_000) {
            bulk.apply(chunk).await.unwrap();
        }
        bulk.flush().await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_secs(5),
            "it waited for the lock"
        );
        let held = held_exclusively(&c).await;
        assert_eq!(held, ["records"], "it went on without the audit log's");
        bulk.commit().await.unwrap();
        open.commit().await.unwrap();
        assert_eq!(secondary_indexes(&c).await, before);
        let n: i64 = c
            .query_one("SELECT count(*) FROM records", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 60_000);
    })
    .await;
}

#[tokio::test]
async fn a_large_bulk_write_refuses_at_its_commit_a_key_taken_before_it_held_the_table() {
    with_db(false, |url| async move {
        let store = PostgresStore::connect(&url, 2).await.unwrap();
        let c = raw_client(&url).await;
        // No service when the import begins: it looks none of its keys up. Another writer
        // then takes one of them, before the import holds the table to build its indexes and
        // key again (past 50,000 records): the copy takes the row in, the key refuses it at
        // the commit, and the import writes nothing.
        let mut bulk = store.bulk("importer").await.unwrap();
        store
            .apply(
                vec![insert(Collection::Services, "bulk-59999", service(12.0, 45.6, "Theirs"))],
                "alice",
            )
            .await
            .unwrap();
        for chunk in many_services(60_000) {
            bulk.apply(chunk).await.unwrap();
        }
        bulk.flush().await.unwrap();
        assert_eq!(held_exclusively(&c).await, ["audit_log", "records"]);
        let committed = bulk.commit().await;
        assert!(
            matches!(&committed, Err(StoreError::AlreadyExists { collection: Collection::Services, id })
                if id.as_str() == "bulk-59999"),
            "{committed:?}"
        );
        let n: i64 = c
            .query_one("SELECT count(*) FROM records", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "only the other writer's record");
        let theirs = store
            .get(Collection::Services, &RecordId::parse("bulk-59999").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(theirs.attributes().name(), "Theirs");
        assert_eq!(primary_keys(&c).await, PRIMARY_KEYS);
    })
    .await;
}

#[tokio::test]
async fn the_table_checks_ids_by_faros_rule() {
    with_db(false, |url| async move {
        PostgresStore::connect(&url, 1).await.unwrap();
        let c = raw_client(&url).await;
        let long_ok = "a".repeat(64);
        let too_long = "a".repeat(65);
        for (id, ok) in [
            ("svc-1", true),
            ("A.b_c-9", true),
            (long_ok.as_str(), true),
            ("", false),
            (too_long.as_str(), false),
            ("a b", false),
            ("caffè", false),
            ("a/b", false),
            ("a\nb", false),
        ] {
            let written = c
                .execute(
                    "INSERT INTO records (collection, id, geom, properties, version, created_at, updated_at)
                     VALUES ('services', $1, ST_SetSRID(ST_MakePoint(12, 45.7), 4326),
                             '{\"name\": \"x\", \"kind\": \"pas\"}', 1, now(), now())",
                    &[&id],
                )
                .await;
            match written {
                Ok(_) => assert!(ok, "{id:?} is refused"),
                Err(e) => {
                    assert!(!ok, "{id:?} is accepted: {e}");
                    assert!(format!("{e:?}").contains("records_id_check"), "{e:?}");
                }
            }
            // The same rule as faro's own parser.
            assert_eq!(RecordId::parse(id).is_ok(), ok, "{id:?}");
        }
    })
    .await;
}
