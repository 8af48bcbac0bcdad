//! One store-level suite that both stores pass: every test runs on a fresh SQLite file and,
//! when `FARO_TEST_DATABASE_URL` names a PostgreSQL server (`scripts/with-postgres.sh`), on a
//! fresh PostgreSQL database too (a visible skip otherwise; a failure with
//! `FARO_REQUIRE_POSTGRES`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

#[path = "common/skip.rs"]
mod skip;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faro::domain::{Collection, FeatureInput, RecordId, Role};
use faro::storage::{self, Change, Precondition, Store, StoreError, StoreEvent, WriteOp};
use serde_json::{Value, json};

/// A fresh database of each available backend: `(url, keep-alive guard)`.
async fn backends(test: &str) -> Vec<(String, Box<dyn std::any::Any>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("faro.db").display());
    let mut out: Vec<(String, Box<dyn std::any::Any>)> = vec![(sqlite, Box::new(dir))];
    if skip::have_postgres(test) {
        let admin = std::env::var("FARO_TEST_DATABASE_URL").unwrap();
        let name = format!("faro_store_{:016x}", rand::random::<u64>());
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let (server, _) = admin.rsplit_once('/').unwrap();
        out.push((format!("{server}/{name}"), Box::new(DropDb { admin, name })));
    }
    out
}

struct DropDb {
    admin: String,
    name: String,
}

impl Drop for DropDb {
    fn drop(&mut self) {
        skip::drop_database(&self.admin, &self.name);
    }
}

/// Runs `test` on each backend with an open store.
async fn each<F, Fut>(name: &str, test: F)
where
    F: Fn(Arc<dyn Store>, String) -> Fut,
    Fut: Future<Output = ()>,
{
    for (url, _guard) in backends(name).await {
        let store = storage::open(&url, 4).await.unwrap();
        eprintln!("{name} on {}", store.backend());
        test(store, url).await;
    }
}

fn service(id: &str, lon: f64, name: &str) -> WriteOp {
    let f = FeatureInput::parse(
        Collection::Services,
        json!({"type": "Feature", "id": id, "geometry": {"type": "Point", "coordinates": [lon, 45.7]},
            "properties": {"name": name, "kind": "pas"}}),
    )
    .unwrap();
    WriteOp::insert(Collection::Services, f)
}

fn replace(id: &str, expected: Precondition, name: &str) -> WriteOp {
    let f = FeatureInput::parse(
        Collection::Services,
        json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [12.0, 45.7]},
            "properties": {"name": name, "kind": "pas"}}),
    )
    .unwrap();
    WriteOp::Replace {
        id: RecordId::parse(id).unwrap(),
        expected,
        geometry: f.geometry,
        attributes: f.attributes,
    }
}

fn delete(id: &str, expected: Precondition) -> WriteOp {
    WriteOp::Delete {
        collection: Collection::Services,
        id: RecordId::parse(id).unwrap(),
        expected,
    }
}

fn rid(id: &str) -> RecordId {
    RecordId::parse(id).unwrap()
}

#[tokio::test]
async fn records_round_trip_and_batches_read_in_one_call() {
    each("store_round_trip", |store, _| async move {
        let changes = store
            .apply(
                vec![service("svc-a", 12.0, "A"), service("svc-b", 12.1, "B")],
                "t",
            )
            .await
            .unwrap();
        assert_eq!(changes.len(), 2);
        let a = store
            .get(Collection::Services, &rid("svc-a"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.attributes().name(), "A");
        assert_eq!(a.meta().version, 1);
        let Change::Upsert(written) = &changes[0] else {
            panic!("an insert is an upsert")
        };
        assert_eq!(**written, a, "what apply returns is what get reads");
        let mut many = store
            .get_many(&[
                (Collection::Services, rid("svc-b")),
                (Collection::Services, rid("svc-missing")),
                (Collection::Settlements, rid("svc-a")),
                (Collection::Services, rid("svc-a")),
            ])
            .await
            .unwrap();
        many.sort_by(|x, y| x.id().cmp(y.id()));
        let ids: Vec<&str> = many.iter().map(|r| r.id().as_str()).collect();
        assert_eq!(ids, ["svc-a", "svc-b"]);
        assert!(store.get_many(&[]).await.unwrap().is_empty());
        assert_eq!(store.load_all().await.unwrap().len(), 2);
        assert_eq!(store.count().await.unwrap(), 2);
    })
    .await;
}

#[tokio::test]
async fn preconditions_guard_replace_and_delete() {
    each("store_preconditions", |store, _| async move {
        store
            .apply(vec![service("svc-a", 12.0, "A")], "t")
            .await
            .unwrap();
        let first = store
            .get(Collection::Services, &rid("svc-a"))
            .await
            .unwrap()
            .unwrap();
        let tag = first.entity_tag();
        match store
            .apply(vec![replace("svc-a", Precondition::Version(7), "X")], "t")
            .await
        {
            Err(StoreError::VersionMismatch {
                expected, actual, ..
            }) => {
                assert_eq!(expected, Precondition::Version(7));
                assert_eq!(actual, 1);
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
        store
            .apply(
                vec![replace(
                    "svc-a",
                    Precondition::EntityTags(vec!["0-0".into(), tag.clone()]),
                    "B",
                )],
                "t",
            )
            .await
            .unwrap();
        // The old tag is stale now.
        let stale = store
            .apply(
                vec![delete("svc-a", Precondition::EntityTags(vec![tag]))],
                "t",
            )
            .await;
        assert!(
            matches!(stale, Err(StoreError::VersionMismatch { .. })),
            "{stale:?}"
        );
        // Deleted and re-created: version 1 again, but not the same tag.
        let second = store
            .get(Collection::Services, &rid("svc-a"))
            .await
            .unwrap()
            .unwrap();
        store
            .apply(vec![delete("svc-a", Precondition::Any)], "t")
            .await
            .unwrap();
        store
            .apply(vec![service("svc-a", 12.0, "C")], "t")
            .await
            .unwrap();
        let third = store
            .get(Collection::Services, &rid("svc-a"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(third.meta().version, 1);
        assert_ne!(third.entity_tag(), first.entity_tag());
        let wrong_incarnation = store
            .apply(
                vec![replace(
                    "svc-a",
                    Precondition::EntityTags(vec![first.entity_tag()]),
                    "D",
                )],
                "t",
            )
            .await;
        assert!(
            matches!(wrong_incarnation, Err(StoreError::VersionMismatch { .. })),
            "{wrong_incarnation:?}"
        );
        assert_eq!(second.meta().version, 2);
        let missing = store
            .apply(vec![delete("svc-none", Precondition::Any)], "t")
            .await;
        assert!(
            matches!(missing, Err(StoreError::NotFound { .. })),
            "{missing:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_batch_is_all_or_nothing_and_audited_in_order() {
    each("store_batches", |store, _| async move {
        store
            .apply(vec![service("svc-a", 12.0, "A")], "alice")
            .await
            .unwrap();
        let failed = store
            .apply(
                vec![
                    service("svc-b", 12.1, "B"),
                    replace("svc-a", Precondition::Version(1), "A2"),
                    service("svc-a", 12.2, "duplicate"),
                ],
                "bob",
            )
            .await;
        assert!(
            matches!(failed, Err(StoreError::AlreadyExists { .. })),
            "{failed:?}"
        );
        assert!(
            store
                .get(Collection::Services, &rid("svc-b"))
                .await
                .unwrap()
                .is_none()
        );
        let a = store
            .get(Collection::Services, &rid("svc-a"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.attributes().name(), "A", "the replace was rolled back");
        // Delete then re-create in one batch: both applied, in order.
        let changes = store
            .apply(
                vec![
                    delete("svc-a", Precondition::Any),
                    service("svc-a", 12.3, "A3"),
                ],
                "carol",
            )
            .await
            .unwrap();
        assert!(matches!(&changes[0], Change::Delete { .. }));
        assert!(matches!(&changes[1], Change::Upsert(r) if r.attributes().name() == "A3"));
        let log = store.audit_log(10).await.unwrap();
        let actions: Vec<(&str, &str)> = log
            .iter()
            .map(|e| (e.action.as_str(), e.actor.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("create", "carol"),
                ("delete", "carol"),
                ("create", "alice")
            ],
            "newest first; nothing of the failed batch"
        );
        assert!(log[1].before.is_some() && log[1].after.is_none());
    })
    .await;
}

#[tokio::test]
async fn tokens_are_stored_by_hash_and_revoked() {
    each("store_tokens", |store, _| async move {
        let t = store
            .create_token("unità", Role::Operator, "h1")
            .await
            .unwrap();
        assert_eq!(store.find_token("h1").await.unwrap(), Some(t.clone()));
        assert_eq!(store.find_token("h2").await.unwrap(), None);
        assert!(store.revoke_token(t.id).await.unwrap());
        assert!(!store.revoke_token(t.id).await.unwrap(), "once");
        assert_eq!(store.find_token("h1").await.unwrap(), None);
        let listed = store.list_tokens().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].revoked_at.is_some());
    })
    .await;
}

#[tokio::test]
async fn another_store_on_the_same_database_hears_of_changes_within_a_second() {
    each("store_follow", |store, url| async move {
        let other = storage::open(&url, 2).await.unwrap();
        let mut events = other.subscribe().expect("both stores can follow");
        store
            .apply(vec![service("svc-a", 12.0, "A")], "t")
            .await
            .unwrap();
        store
            .apply(vec![delete("svc-a", Precondition::Any)], "t")
            .await
            .unwrap();
        store.create_token("x", Role::Editor, "hx").await.unwrap();
        let start = Instant::now();
        let mut seen: Vec<Value> = Vec::new();
        while seen.len() < 3 {
            let left = Duration::from_secs(1).saturating_sub(start.elapsed());
            let Ok(Some(e)) = tokio::time::timeout(left, events.recv()).await else {
                panic!("only {seen:?} within 1 s on {}", store.backend());
            };
            match e {
                StoreEvent::Changed { id, deleted, .. } => {
                    assert_eq!(id.as_str(), "svc-a");
                    seen.push(json!({"deleted": deleted}));
                }
                StoreEvent::TokensChanged => seen.push(json!("tokens")),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(seen.contains(&json!("tokens")), "{seen:?}");
        assert!(seen.contains(&json!({"deleted": true})), "{seen:?}");
    })
    .await;
}

#[tokio::test]
async fn a_bulk_write_into_an_empty_collection_sees_its_own_writes_and_refuses_a_key_taken_meanwhile()
 {
    each("store_bulk_empty", |store, url| async move {
        let keys = |ids: &[&str]| -> Vec<(Collection, RecordId)> {
            ids.iter()
                .map(|id| (Collection::Services, rid(id)))
                .collect()
        };
        // No service yet: what the bulk write has not written is not there, what it has is.
        let mut bulk = store.bulk("importer").await.unwrap();
        assert!(bulk.get_many(&keys(&["svc-a", "svc-b"])).await.unwrap().is_empty());
        bulk.apply(vec![service("svc-a", 12.0, "A"), service("svc-b", 12.1, "B")])
            .await
            .unwrap();
        bulk.apply(vec![replace("svc-a", Precondition::Version(1), "A2")])
            .await
            .unwrap();
        let mut seen: Vec<(String, i64)> = bulk
            .get_many(&keys(&["svc-a", "svc-b", "svc-c"]))
            .await
            .unwrap()
            .iter()
            .map(|r| (r.attributes().name().to_owned(), r.meta().version))
            .collect();
        seen.sort();
        assert_eq!(seen, [("A2".to_owned(), 2), ("B".to_owned(), 1)]);
        bulk.commit().await.unwrap();

        // Another writer takes a key of a collection that was empty when the bulk write
        // began: the bulk write's insert of it fails, and nothing of it is written.
        let other = storage::open(&url, 2).await.unwrap();
        let mut bulk = store.bulk("importer").await.unwrap();
        assert!(bulk.get_many(&keys(&["wks-x"])).await.unwrap().is_empty());
        let worksite = |name: &str| {
            let f = FeatureInput::parse(
                Collection::Worksites,
                json!({"type": "Feature", "id": "wks-x", "geometry": {"type": "Polygon", "coordinates":
                    [[[12.5, 45.5], [12.6, 45.5], [12.6, 45.6], [12.5, 45.6], [12.5, 45.5]]]},
                    "properties": {"name": name, "kind": "farm"}}),
            )
            .unwrap();
            WriteOp::insert(Collection::Worksites, f)
        };
        other.apply(vec![worksite("theirs")], "alice").await.unwrap();
        assert!(
            bulk.get_many(&[(Collection::Worksites, rid("wks-x"))])
                .await
                .unwrap()
                .is_empty(),
            "the bulk write does not see the other's write"
        );
        let written = bulk.apply(vec![worksite("mine"), service("svc-c", 12.2, "C")]).await;
        let committed = match written {
            Ok(()) => bulk.commit().await,
            Err(e) => Err(e),
        };
        assert!(committed.is_err(), "{committed:?}");
        let x = other
            .get(Collection::Worksites, &rid("wks-x"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(x.attributes().name(), "theirs");
        assert!(other.get(Collection::Services, &rid("svc-c")).await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn a_bulk_write_is_one_transaction_across_chunks_and_heard_by_others() {
    each("store_bulk", |store, url| async move {
        store
            .apply(vec![service("svc-a", 12.0, "A")], "alice")
            .await
            .unwrap();
        let other = storage::open(&url, 2).await.unwrap();
        let mut events = other.subscribe().expect("both stores can follow");
        let mut bulk = store.bulk("importer").await.unwrap();
        let seen = bulk
            .get_many(&[
                (Collection::Services, rid("svc-a")),
                (Collection::Services, rid("svc-b")),
            ])
            .await
            .unwrap();
        assert_eq!(seen.len(), 1);
        bulk.apply(vec![
            service("svc-b", 12.1, "B"),
            service("svc-c", 12.2, "C"),
        ])
        .await
        .unwrap();
        bulk.apply(vec![
            replace("svc-a", Precondition::Version(1), "A2"),
            service("svc-d", 12.3, "D"),
        ])
        .await
        .unwrap();
        let inside = bulk
            .get_many(&[(Collection::Services, rid("svc-b"))])
            .await
            .unwrap();
        assert_eq!(inside.len(), 1, "the transaction reads its own writes");
        assert!(
            other
                .get(Collection::Services, &rid("svc-b"))
                .await
                .unwrap()
                .is_none(),
            "nothing is visible before the commit"
        );
        bulk.commit().await.unwrap();

        let a = other
            .get(Collection::Services, &rid("svc-a"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((a.attributes().name(), a.meta().version), ("A2", 2));
        for (id, lon) in [("svc-b", 12.1), ("svc-c", 12.2), ("svc-d", 12.3)] {
            let r = other
                .get(Collection::Services, &rid(id))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{id} committed"));
            assert_eq!(r.meta().version, 1);
            assert_eq!(
                r.geometry(),
                &geo::Geometry::Point(geo::Point::new(lon, 45.7)),
                "{id}"
            );
        }
        let log = other.audit_log(10).await.unwrap();
        let actions: Vec<(&str, &str, &str)> = log
            .iter()
            .map(|e| (e.action.as_str(), e.record_id.as_str(), e.actor.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("create", "svc-d", "importer"),
                ("update", "svc-a", "importer"),
                ("create", "svc-c", "importer"),
                ("create", "svc-b", "importer"),
                ("create", "svc-a", "alice"),
            ],
            "newest first, in the order applied"
        );
        let created = log[0].after.as_ref().expect("a create keeps what it wrote");
        assert_eq!(created["properties"]["name"], "D");

        // The other store hears of it within a second: per record on SQLite (it reads the
        // audit log), once on PostgreSQL (one resync instead of a notification a row).
        let start = Instant::now();
        let mut heard = Vec::new();
        while start.elapsed() < Duration::from_millis(1200) {
            let left = Duration::from_millis(1200).saturating_sub(start.elapsed());
            match tokio::time::timeout(left, events.recv()).await {
                Ok(Some(StoreEvent::Changed { id, .. })) => heard.push(id.to_string()),
                Ok(Some(StoreEvent::Resync)) => heard.push("resync".to_owned()),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        if store.backend() == "postgres" {
            assert_eq!(
                heard,
                ["resync"],
                "one notification for the whole bulk write"
            );
        } else {
            heard.sort();
            assert_eq!(heard, ["svc-a", "svc-b", "svc-c", "svc-d"]);
        }

        // Dropped uncommitted: nothing written, and the store takes writes again.
        let mut dropped = store.bulk("importer").await.unwrap();
        dropped
            .apply(vec![service("svc-e", 12.4, "E")])
            .await
            .unwrap();
        drop(dropped);
        assert!(
            store
                .get(Collection::Services, &rid("svc-e"))
                .await
                .unwrap()
                .is_none()
        );
        store
            .apply(vec![service("svc-e", 12.4, "E")], "alice")
            .await
            .unwrap();
        assert_eq!(store.count().await.unwrap(), 5);
    })
    .await;
}
