//! Benchmarks of the visibility-aware query (`index::query::View::items`), what
//! `/collections/{c}/items` runs, over 1,000,000 synthetic services spread over Italy, 5 % of
//! them confidential:
//!
//! - `items_limit100_{anonymous,authorised}`: the first page of 100, no filter (the counts
//!   come from the layer, the page from the first ids);
//! - `items_kind_limit100_anonymous`: the first page of one kind that 1 service in 14 has;
//! - `items_offset10000_anonymous`: a deep page;
//! - `items_bbox_small_anonymous`: a 0.05° box (about 18 services), counted and listed.
//!
//! Targets (hardening issue): `items?limit=100` and a small `items?bbox=` under 1 ms each.
//! `cargo bench --bench query` measures; without `--bench` each case runs once over 20,000
//! services, as a smoke test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use criterion::Criterion;
use faro::domain::geometry::GeometryRule;
use faro::domain::{
    Attributes, Bbox, Collection, Meta, Record, RecordId, Service, ServiceKind, ValidGeometry,
};
use faro::index::Snapshot;
use faro::index::query::{ItemsQuery, Visibility};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SERVICES: usize = 1_000_000;
const SMOKE: usize = 20_000;

/// `n` services uniform over Italy's bounding box, of every kind in turn, one in twenty
/// confidential.
fn services(n: usize) -> Vec<Record> {
    let mut rng = ChaCha8Rng::seed_from_u64(20_261_201);
    let at = Utc.timestamp_opt(1_764_000_000, 0).unwrap();
    let template = |kind: ServiceKind, confidential: bool| -> Service {
        let s: Service = serde_json::from_value(serde_json::json!({
            "name": "Sportello", "kind": kind.as_str(), "confidential": confidential}))
        .unwrap();
        s.validate().unwrap()
    };
    let kinds = ServiceKind::ALL;
    (0..n)
        .map(|i| {
            let kind = kinds[i % kinds.len()];
            let point = geo::Point::new(rng.random_range(6.6..18.6), rng.random_range(35.5..47.1));
            Record::new(
                RecordId::parse(&format!("svc-{:016x}", rng.random::<u64>())).unwrap(),
                ValidGeometry::new(geo::Geometry::Point(point), GeometryRule::PointOnly).unwrap(),
                Attributes::Service(template(kind, rng.random_bool(0.05))),
                Meta {
                    version: 1,
                    created_at: at,
                    updated_at: at,
                },
            )
            .unwrap()
        })
        .collect()
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let n = if measuring { SERVICES } else { SMOKE };
    let mut c = Criterion::default().configure_from_args();
    let snapshot = Arc::new(Snapshot::build(services(n)));
    let anonymous = snapshot.view(Visibility::Anonymous);
    let authorised = snapshot.view(Visibility::Everything);
    let page = |offset: usize| ItemsQuery {
        offset,
        limit: Some(100),
        ..ItemsQuery::default()
    };
    let cases: Vec<(&str, &faro::index::query::View, ItemsQuery)> = vec![
        ("items_limit100_anonymous", &anonymous, page(0)),
        ("items_limit100_authorised", &authorised, page(0)),
        (
            "items_kind_limit100_anonymous",
            &anonymous,
            ItemsQuery {
                kinds: vec!["shelter"],
                ..page(0)
            },
        ),
        ("items_offset10000_anonymous", &anonymous, page(10_000)),
        (
            "items_bbox_small_anonymous",
            &anonymous,
            ItemsQuery {
                bbox: Some(Bbox::parse("12.20,45.60,12.25,45.65").unwrap()),
                ..page(0)
            },
        ),
    ];
    for (name, view, query) in &cases {
        let first = view.items(Collection::Services, query).unwrap();
        println!(
            "{name}: {} matched, {} returned",
            first.number_matched,
            first.records.len()
        );
        c.bench_function(name, |b| {
            b.iter(|| view.items(Collection::Services, black_box(query)).unwrap());
        });
    }
    c.final_summary();
}
