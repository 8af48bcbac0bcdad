//! faro's geodesic distances against an independent oracle: `tests/fixtures/geodesic_reference.csv`,
//! computed by Karney's geographiclib 2.1 (see `tests/fixtures/README.md`).
//!
//! - `geo::Geodesic.distance`, the distance `Layer::nearest` ranks by, within 1 mm on every row;
//! - `Layer::nearest` itself (k = 1 over a one-point layer) on every row, so the distance it
//!   reports is checked end to end, in Italy and across the globe;
//! - the ECEF chord `Layer::nearest` prunes with is a lower bound of the geodesic on every row,
//!   up to floating-point rounding far below the index's 1 mm slack.

// Helpers outside #[test] functions unwrap too: a test panics on a broken fixture.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use faro::domain::geometry::GeometryRule;
use faro::domain::{Attributes, LonLat, Meta, Record, RecordId, Service, ValidGeometry};
use faro::index::{Layer, to_ecef};
use geo::{Distance, Geodesic};

const TOLERANCE_M: f64 = 1e-3;

/// How much a computed chord may exceed the reference geodesic: the rounding of ECEF
/// coordinates of ~6.4e6 m (a few 1e-9 m). The index allows 1 mm (`CHORD_SLACK_M`).
const CHORD_ROUNDING_M: f64 = 1e-7;

#[derive(Debug, Clone, Copy)]
struct Row {
    line: usize,
    lon1: f64,
    lat1: f64,
    lon2: f64,
    lat2: f64,
    distance_m: f64,
}

impl Row {
    fn in_italy(&self) -> bool {
        let inside =
            |lon: f64, lat: f64| (6.6..=18.6).contains(&lon) && (35.5..=47.1).contains(&lat);
        inside(self.lon1, self.lat1) && inside(self.lon2, self.lat2)
    }
}

fn rows() -> Vec<Row> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/geodesic_reference.csv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().unwrap();
    assert_eq!(header, "lon1,lat1,lon2,lat2,distance_m,azi1_deg");
    let rows: Vec<Row> = lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: Vec<f64> = l.split(',').map(|f| f.trim().parse().unwrap()).collect();
            assert_eq!(v.len(), 6, "line {}: {l}", i + 1);
            Row {
                line: i + 1,
                lon1: v[0],
                lat1: v[1],
                lon2: v[2],
                lat2: v[3],
                distance_m: v[4],
            }
        })
        .collect();
    assert_eq!(rows.len(), 300, "the fixture has 300 data rows");
    rows
}

fn service_at(lon: f64, lat: f64) -> Arc<Record> {
    let s: Service =
        serde_json::from_value(serde_json::json!({"name": "reference", "kind": "pas"})).unwrap();
    let at = Utc.timestamp_opt(1_764_000_000, 0).unwrap();
    let record = Record::new(
        RecordId::parse("svc-reference").unwrap(),
        ValidGeometry::new(
            geo::Geometry::Point(geo::Point::new(lon, lat)),
            GeometryRule::PointOnly,
        )
        .unwrap(),
        Attributes::Service(s.validate().unwrap()),
        Meta {
            version: 1,
            created_at: at,
            updated_at: at,
        },
    )
    .unwrap();
    Arc::new(record)
}

#[test]
fn geodesic_distance_matches_geographiclib_within_a_millimetre() {
    let mut worst = (0.0_f64, 0);
    for r in rows() {
        let d = Geodesic.distance(
            geo::Point::new(r.lon1, r.lat1),
            geo::Point::new(r.lon2, r.lat2),
        );
        let err = (d - r.distance_m).abs();
        assert!(
            err <= TOLERANCE_M,
            "line {}: faro {d} m, geographiclib {} m, off by {err} m",
            r.line,
            r.distance_m
        );
        if err > worst.0 {
            worst = (err, r.line);
        }
    }
    println!("largest difference: {:e} m (line {})", worst.0, worst.1);
}

#[test]
fn nearest_reports_the_reference_distance() {
    let rows = rows();
    assert!(rows.iter().filter(|r| r.in_italy()).count() >= 150);
    for r in &rows {
        let layer = Layer::build(vec![service_at(r.lon2, r.lat2)]);
        let origin = LonLat::new(r.lon1, r.lat1).unwrap();
        let found = layer.nearest(origin, 1, None, |_| true);
        assert_eq!(found.len(), 1, "line {}", r.line);
        let err = (found[0].distance_m - r.distance_m).abs();
        assert!(
            err <= TOLERANCE_M,
            "line {}: nearest says {} m, geographiclib {} m",
            r.line,
            found[0].distance_m,
            r.distance_m
        );
        // With the reference distance as the limit the point is still found (the limit is
        // inclusive, and the chord never prunes it).
        let limit = r.distance_m + TOLERANCE_M;
        assert_eq!(
            layer.nearest(origin, 1, Some(limit), |_| true).len(),
            1,
            "line {}",
            r.line
        );
    }
}

#[test]
fn the_ecef_chord_is_a_lower_bound_of_the_geodesic() {
    let mut tightest = (f64::INFINITY, 0);
    for r in rows() {
        let a = to_ecef(LonLat::new(r.lon1, r.lat1).unwrap());
        let b = to_ecef(LonLat::new(r.lon2, r.lat2).unwrap());
        let chord = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt();
        assert!(
            chord <= r.distance_m + CHORD_ROUNDING_M,
            "line {}: chord {chord} m exceeds the geodesic {} m",
            r.line,
            r.distance_m
        );
        if r.distance_m > 0.0 {
            let margin = r.distance_m - chord;
            if margin < tightest.0 {
                tightest = (margin, r.line);
            }
        }
    }
    println!(
        "tightest margin (geodesic - chord): {:e} m (line {})",
        tightest.0, tightest.1
    );
}
