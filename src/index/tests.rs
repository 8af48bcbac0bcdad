//! Unit tests of what the public API cannot see: which parts of a layer a write copies.
//! `tests/index_properties.rs` checks every answer against brute force.

use std::sync::Arc;

use chrono::{TimeZone, Utc};

use super::delta::Shadowed;
use super::{IndexChange, Layer, MergeJob, MergedBase, Snapshot, merge_threshold};
use crate::domain::geometry::GeometryRule;
use crate::domain::{
    Attributes, Collection, Meta, Record, RecordId, Service, ServiceKind, ValidGeometry,
};

fn service(id: &str, lon: f64, lat: f64, version: i64) -> Arc<Record> {
    let s: Service = serde_json::from_value(
        serde_json::json!({"name": "Servizio", "kind": ServiceKind::Pas.as_str()}),
    )
    .unwrap();
    let at = Utc.timestamp_opt(1_764_000_000, 0).unwrap();
    Arc::new(
        Record::new(
            RecordId::parse(id).unwrap(),
            ValidGeometry::new(
                geo::Geometry::Point(geo::Point::new(lon, lat)),
                GeometryRule::PointOnly,
            )
            .unwrap(),
            Attributes::Service(s.validate().unwrap()),
            Meta {
                version,
                created_at: at,
                updated_at: at,
            },
        )
        .unwrap(),
    )
}

fn grid(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            #[allow(clippy::cast_precision_loss)]
            let (lon, lat) = (7.0 + (i % 100) as f64 * 0.1, 38.0 + (i / 100) as f64 * 0.01);
            (*service(&format!("svc-{i:06}"), lon, lat, 1)).clone()
        })
        .collect()
}

fn services(s: &Snapshot) -> &Layer {
    s.unrestricted_layer(Collection::Services)
}

#[test]
fn a_write_to_a_big_layer_shares_its_base() {
    let s0 = Snapshot::build(grid(20_000));
    let moved = service("svc-000042", 12.0, 42.0, 2);
    let s1 = s0.with_changes(&[IndexChange::Upsert(moved)]);
    assert!(Arc::ptr_eq(&services(&s0).base, &services(&s1).base));
    assert_eq!(services(&s0).delta_len(), 0);
    assert_eq!(services(&s1).delta_len(), 1);
    // A second write copies the delta of the first, still not the base.
    let gone = IndexChange::Delete(Collection::Services, RecordId::parse("svc-000043").unwrap());
    let s2 = s1.with_changes(&[gone]);
    assert!(Arc::ptr_eq(&services(&s1).base, &services(&s2).base));
    assert_eq!(services(&s2).delta_len(), 2);
    assert_eq!(services(&s2).len(), 19_999);
}

#[test]
fn a_merge_keeps_the_writes_made_while_it_ran() {
    let s0 = Snapshot::build(grid(3000));
    let batch: Vec<IndexChange> = (0..merge_threshold(3000))
        .map(|i| IndexChange::Upsert(service(&format!("svc-{i:06}"), 12.0, 42.0, 2)))
        .collect();
    let s1 = s0.with_changes(&batch);
    assert_eq!(s1.layers_to_merge(), vec![Collection::Services]);
    let job = services(&s1).merge_job();
    // Writes while the job runs: a move, a delete of a record the job has, a new record.
    let s2 = s1.with_changes(&[
        IndexChange::Upsert(service("svc-000001", 13.0, 43.0, 3)),
        IndexChange::Delete(Collection::Services, RecordId::parse("svc-002000").unwrap()),
        IndexChange::Upsert(service("svc-new", 14.0, 44.0, 1)),
    ]);
    let merged = job.run();
    let s3 = s2.with_merged(merged);
    let layer = services(&s3);
    assert!(!Arc::ptr_eq(&services(&s2).base, &layer.base));
    assert_eq!(layer.delta_len(), 3, "only the writes after the job");
    assert!(s3.layers_to_merge().is_empty());
    assert_eq!(
        layer
            .get(&RecordId::parse("svc-000001").unwrap())
            .unwrap()
            .meta()
            .version,
        3
    );
    assert!(layer.get(&RecordId::parse("svc-002000").unwrap()).is_none());
    assert!(layer.get(&RecordId::parse("svc-new").unwrap()).is_some());
    assert_eq!(layer.len(), 3000);
    let before: Vec<&Arc<Record>> = services(&s2).iter().collect();
    let after: Vec<&Arc<Record>> = layer.iter().collect();
    assert_eq!(before, after);
}

#[test]
fn a_merge_taken_before_a_reload_or_another_merge_is_discarded() {
    let s0 = Snapshot::build(grid(10));
    let s1 = s0.with_changes(&[IndexChange::Upsert(service("svc-a", 12.0, 42.0, 1))]);
    let first = services(&s1).merge_job();
    let second = services(&s1).merge_job();
    let s2 = s1.with_merged(first.run());
    assert_eq!(services(&s2).delta_len(), 0);
    let s3 = s2.with_merged(second.run());
    assert!(Arc::ptr_eq(&services(&s2).base, &services(&s3).base));
    let reloaded = Snapshot::build(grid(10));
    let stale = services(&s3).merge_job();
    let s4 = reloaded.with_merged(stale.run());
    assert_eq!(services(&s4).len(), 10);
    assert!(Arc::ptr_eq(&services(&reloaded).base, &services(&s4).base));
}

#[test]
fn the_shadowed_set_holds_exactly_what_was_put_in_it() {
    let records: Vec<Arc<Record>> = (0..5000)
        .map(|i| service(&format!("svc-{i}"), 12.0, 42.0, 1))
        .collect();
    let mut set = Shadowed::default();
    assert!(set.is_empty() && !set.contains(&records[0]));
    for (i, r) in records.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        assert!(set.insert(r), "{i}");
        assert!(!set.insert(r), "{i} twice");
    }
    for (i, r) in records.iter().enumerate() {
        assert_eq!(set.contains(r), i % 3 == 0, "{i}");
    }
    // A copy of the record is another record.
    assert!(!set.contains(&Arc::new((*records[0]).clone())));
}

#[test]
fn merge_jobs_can_run_on_another_thread() {
    fn send<T: Send + 'static>() {}
    send::<MergeJob>();
    send::<MergedBase>();
}
