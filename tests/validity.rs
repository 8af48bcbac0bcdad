//! Polygon validity (`faro::domain::validity`, `ValidGeometry`) against `geo::Validation`.
//!
//! - Hand-made cases: each verdict is asserted, and geo's verdict must be the same except for
//!   the two differences the module documents (zero-area three-corner rings, empty rings).
//! - Random small polygons and multipolygons (integer grids for touches and shared edges,
//!   jittered regular polygons for the general case): the verdict equals geo's.
//! - A valid star-shaped ring of 100,001 positions, and the same with one crossing.
//! - No error message holds a coordinate of its input.
//! - Real comune boundaries (ISTAT, openpolis 2023) when `../shared/data` has them.

// Test helpers unwrap; coordinates are compared exactly on purpose; corner counts (far below
// 2^52) become angles.
#![allow(clippy::unwrap_used, clippy::float_cmp, clippy::cast_precision_loss)]

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use faro::domain::validity::{Contact, RingRef, ValidityError, check_multi_polygon, check_polygon};
use faro::domain::{
    Attributes, Collection, DEFAULT_MAX_VERTICES, GeometryError, GeometryRule, Meta, Record,
    RecordId, Service, ValidGeometry,
};
use geo::Kernel;
use geo::{
    Coord, CoordsIter, Geometry, LineString, MapCoords, MultiPolygon, Polygon, Validation, wkt,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

fn check(g: &Geometry<f64>) -> Result<(), ValidityError> {
    match g {
        Geometry::Polygon(p) => check_polygon(p),
        Geometry::MultiPolygon(mp) => check_multi_polygon(mp),
        other => panic!("not areal: {other:?}"),
    }
}

fn geo_valid(g: &Geometry<f64>) -> bool {
    g.is_valid()
}

/// geo's verdict, or `None` when geo panics (its relate does on some invalid inputs).
fn geo_verdict(g: &Geometry<f64>) -> Option<bool> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.is_valid())).ok()
}

/// The rings of a polygon or multipolygon.
fn rings(g: &Geometry<f64>) -> Vec<&LineString<f64>> {
    let polygons: Vec<&Polygon<f64>> = match g {
        Geometry::Polygon(p) => vec![p],
        Geometry::MultiPolygon(mp) => mp.0.iter().collect(),
        _ => vec![],
    };
    polygons
        .into_iter()
        .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
        .collect()
}

/// The first documented difference, checked independently: a ring with three distinct
/// corners (after dropping consecutive repeats) all on one line.
fn has_zero_area_triangle(g: &Geometry<f64>) -> bool {
    rings(g).into_iter().any(|ring| {
        let mut c = ring.0.clone();
        c.dedup();
        c.len() == 4
            && geo::kernels::RobustKernel::orient2d(c[0], c[1], c[2])
                == geo::kernels::Orientation::Collinear
    })
}

/// An exact affine map onto lon/lat with non-integral coordinates (x / 8 and y / 16 plus an
/// offset whose fraction is 1/16 and 1/32): verdicts are unchanged, and no coordinate formats
/// like an index.
fn to_lonlat(g: &Geometry<f64>) -> Geometry<f64> {
    g.map_coords(|c| Coord {
        x: 12.0625 + c.x / 8.0,
        y: 45.03125 + c.y / 16.0,
    })
}

/// Asserts no coordinate of `g` appears in `message`, formatted either way.
fn assert_no_coordinates(g: &Geometry<f64>, message: &str) {
    for c in g.coords_iter() {
        for v in [c.x, c.y] {
            for text in [format!("{v}"), format!("{v:?}")] {
                assert!(
                    !message.contains(&text),
                    "message `{message}` holds coordinate {text}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-made cases.

/// `expected`: `None` for valid, or a piece of the error message.
struct Case {
    name: &'static str,
    geometry: Geometry<f64>,
    expected: Option<&'static str>,
    /// geo judges this one otherwise (a documented difference).
    geo_differs: bool,
}

fn case(
    name: &'static str,
    geometry: impl Into<Geometry<f64>>,
    expected: Option<&'static str>,
) -> Case {
    Case {
        name,
        geometry: geometry.into(),
        expected,
        geo_differs: false,
    }
}

#[allow(clippy::too_many_lines)]
fn hand_made() -> Vec<Case> {
    vec![
        // Valid.
        case(
            "square",
            wkt!(POLYGON((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.))),
            None,
        ),
        case(
            "clockwise square",
            wkt!(POLYGON((0. 0., 0. 4., 4. 4., 4. 0., 0. 0.))),
            None,
        ),
        case(
            "duplicate consecutive points",
            wkt!(POLYGON((0. 0., 0. 0., 4. 0., 4. 0., 4. 4., 0. 4., 0. 4., 0. 0., 0. 0.))),
            None,
        ),
        case(
            "straight vertex",
            wkt!(POLYGON((0. 0., 2. 0., 4. 0., 4. 4., 0. 4., 0. 0.))),
            None,
        ),
        case(
            "hole touching the shell at one point",
            wkt!(POLYGON((0. 0., 8. 0., 8. 8., 0. 8., 0. 0.), (0. 4., 4. 2., 6. 4., 4. 6., 0. 4.))),
            None,
        ),
        case(
            "hole touching a shell corner",
            wkt!(POLYGON((0. 0., 8. 0., 8. 8., 0. 8., 0. 0.), (0. 0., 4. 1., 1. 4., 0. 0.))),
            None,
        ),
        case(
            "two holes touching at one point",
            wkt!(POLYGON(
                (0. 0., 10. 0., 10. 10., 0. 10., 0. 0.),
                (2. 2., 5. 2., 5. 5., 2. 5., 2. 2.),
                (5. 5., 8. 5., 8. 8., 5. 8., 5. 5.)
            )),
            None,
        ),
        case(
            "a hole's vertex on another hole's edge",
            wkt!(POLYGON(
                (0. 0., 10. 0., 10. 10., 0. 10., 0. 0.),
                (2. 2., 6. 2., 6. 6., 2. 6., 2. 2.),
                (6. 4., 8. 3., 8. 5., 6. 4.)
            )),
            None,
        ),
        // Every vertex of the hole is on the shell: located by the turn at a touch. (The hole
        // cuts the interior in pieces; like geo, connectivity is not checked.)
        case(
            "hole with every vertex on the shell",
            wkt!(POLYGON((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.), (2. 0., 4. 2., 0. 2., 2. 0.))),
            None,
        ),
        case(
            "parts touching at a point",
            wkt!(MULTIPOLYGON(
                ((0. 0., 1. 0., 1. 1., 0. 1., 0. 0.)),
                ((1. 1., 2. 1., 2. 2., 1. 2., 1. 1.))
            )),
            None,
        ),
        case(
            "part inside another's hole",
            wkt!(MULTIPOLYGON(
                ((0. 0., 10. 0., 10. 10., 0. 10., 0. 0.), (2. 2., 8. 2., 8. 8., 2. 8., 2. 2.)),
                ((4. 4., 6. 4., 6. 6., 4. 6., 4. 4.))
            )),
            None,
        ),
        case(
            "part inside another's hole, touching it at a corner",
            wkt!(MULTIPOLYGON(
                ((0. 0., 10. 0., 10. 10., 0. 10., 0. 0.), (2. 2., 8. 2., 8. 8., 2. 8., 2. 2.)),
                ((2. 2., 4. 3., 3. 4., 2. 2.))
            )),
            None,
        ),
        // Invalid.
        case(
            "bow-tie",
            wkt!(POLYGON((0. 0., 4. 4., 4. 0., 0. 4., 0. 0.))),
            Some("exterior ring crosses itself between positions 0-1 and 2-3"),
        ),
        case(
            "spike out of an edge",
            wkt!(POLYGON((0. 0., 4. 0., 4. 4., 2. 4., 2. 6., 2. 4., 0. 4., 0. 0.))),
            // The spike's foot is visited twice, so it also touches itself there.
            Some("itself"),
        ),
        case(
            "spike back along an edge",
            wkt!(POLYGON((0. 0., 6. 0., 4. 0., 4. 4., 0. 4., 0. 0.))),
            // The turn back at (4, 0) also puts that corner on the first segment.
            Some("exterior ring touches itself between positions 0-1 and 2-3"),
        ),
        case(
            "repeated point (a figure eight)",
            wkt!(POLYGON((0. 0., 4. 0., 2. 2., 4. 4., 0. 4., 2. 2., 0. 0.))),
            Some("exterior ring touches itself"),
        ),
        case(
            "vertex on a non-adjacent segment",
            wkt!(POLYGON((0. 0., 4. 0., 4. 4., 2. 0., 0. 4., 0. 0.))),
            Some("exterior ring touches itself"),
        ),
        case(
            "collinear overlapping segments",
            wkt!(POLYGON((0. 0., 6. 0., 6. 4., 4. 4., 4. 0., 2. 0., 2. 4., 0. 4., 0. 0.))),
            Some("exterior ring"),
        ),
        case(
            "ring of 3 positions",
            Polygon::new(LineString::from(vec![(0., 0.), (1., 1.), (0., 0.)]), vec![]),
            Some("exterior ring has 3 positions; a ring needs at least 4"),
        ),
        case(
            "ring of 2 distinct corners",
            wkt!(POLYGON((0. 0., 1. 0., 1. 0., 0. 0.))),
            Some("exterior ring has fewer than 4 positions once repeated consecutive ones"),
        ),
        case(
            "hole outside the shell",
            wkt!(POLYGON((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.), (5. 5., 6. 5., 6. 6., 5. 6., 5. 5.))),
            Some("interior ring 1 is outside the exterior ring"),
        ),
        case(
            "hole outside the shell touching its corner",
            wkt!(POLYGON((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.), (4. 4., 6. 4., 6. 6., 4. 6., 4. 4.))),
            Some("interior ring 1 is outside the exterior ring"),
        ),
        case(
            "hole crossing the shell",
            wkt!(POLYGON((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.), (2. 2., 6. 2., 6. 3., 2. 3., 2. 2.))),
            Some("exterior ring crosses interior ring 1"),
        ),
        case(
            "hole crossing the shell at a shell vertex",
            wkt!(POLYGON((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.), (3. 3., 5. 5., 3. 5., 3. 3.))),
            Some("exterior ring crosses interior ring 1"),
        ),
        case(
            "hole sharing an edge with the shell",
            wkt!(POLYGON((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.), (0. 0., 2. 0., 2. 2., 0. 2., 0. 0.))),
            Some("exterior ring and interior ring 1 share a segment"),
        ),
        case(
            "nested holes",
            wkt!(POLYGON(
                (0. 0., 10. 0., 10. 10., 0. 10., 0. 0.),
                (1. 1., 9. 1., 9. 9., 1. 9., 1. 1.),
                (3. 3., 6. 3., 6. 6., 3. 6., 3. 3.)
            )),
            Some("interior ring 2 is inside interior ring 1"),
        ),
        case(
            "nested holes touching at a corner",
            wkt!(POLYGON(
                (0. 0., 10. 0., 10. 10., 0. 10., 0. 0.),
                (1. 1., 9. 1., 9. 9., 1. 9., 1. 1.),
                (1. 1., 6. 3., 3. 6., 1. 1.)
            )),
            Some("interior ring 2 is inside interior ring 1"),
        ),
        case(
            "holes crossing each other",
            wkt!(POLYGON(
                (0. 0., 10. 0., 10. 10., 0. 10., 0. 0.),
                (1. 1., 5. 1., 5. 5., 1. 5., 1. 1.),
                (3. 3., 7. 3., 7. 7., 3. 7., 3. 3.)
            )),
            Some("interior ring 1 crosses interior ring 2"),
        ),
        case(
            "holes sharing an edge",
            wkt!(POLYGON(
                (0. 0., 10. 0., 10. 10., 0. 10., 0. 0.),
                (2. 2., 5. 2., 5. 5., 2. 5., 2. 2.),
                (5. 2., 8. 2., 8. 5., 5. 5., 5. 2.)
            )),
            Some("interior ring 1 and interior ring 2 share a segment"),
        ),
        case(
            "shared edge between multipolygon parts",
            wkt!(MULTIPOLYGON(
                ((0. 0., 1. 0., 1. 1., 0. 1., 0. 0.)),
                ((1. 0., 2. 0., 2. 1., 1. 1., 1. 0.))
            )),
            Some(
                "polygons 0 and 1 overlap: exterior ring of polygon 0 and exterior ring of polygon 1 share a segment",
            ),
        ),
        case(
            "one part inside another",
            wkt!(MULTIPOLYGON(
                ((0. 0., 10. 0., 10. 10., 0. 10., 0. 0.)),
                ((2. 2., 4. 2., 4. 4., 2. 4., 2. 2.))
            )),
            Some("polygons 1 and 0 overlap: polygon 1 lies inside polygon 0"),
        ),
        case(
            "one part around another",
            wkt!(MULTIPOLYGON(
                ((2. 2., 4. 2., 4. 4., 2. 4., 2. 2.)),
                ((0. 0., 10. 0., 10. 10., 0. 10., 0. 0.))
            )),
            Some("polygon 0 lies inside polygon 1"),
        ),
        case(
            "one part inside another, touching at its corner",
            wkt!(MULTIPOLYGON(
                ((0. 0., 10. 0., 10. 10., 0. 10., 0. 0.)),
                ((0. 0., 4. 2., 2. 4., 0. 0.))
            )),
            Some("polygon 1 lies inside polygon 0"),
        ),
        case(
            "overlapping parts",
            wkt!(MULTIPOLYGON(
                ((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.)),
                ((2. 2., 6. 2., 6. 6., 2. 6., 2. 2.))
            )),
            Some(
                "polygons 0 and 1 overlap: exterior ring of polygon 0 crosses exterior ring of polygon 1",
            ),
        ),
        case(
            "self-crossing second part",
            wkt!(MULTIPOLYGON(
                ((0. 0., 1. 0., 1. 1., 0. 1., 0. 0.)),
                ((5. 5., 9. 9., 9. 5., 5. 9., 5. 5.))
            )),
            Some("exterior ring of polygon 1 crosses itself between positions 0-1 and 2-3"),
        ),
        case(
            "non-finite position",
            wkt!(POLYGON((0. 0., 4. 0., 4. 4., 0. 4., 0. 0.))).map_coords(|c| {
                if c.x == 4.0 && c.y == 4.0 {
                    Coord {
                        x: f64::NAN,
                        y: 4.0,
                    }
                } else {
                    c
                }
            }),
            Some("position 2 of exterior ring is not a finite number"),
        ),
        // The documented differences from geo.
        Case {
            name: "zero-area ring of three corners",
            geometry: wkt!(POLYGON((0. 0., 2. 0., 1. 0., 0. 0.))).into(),
            expected: Some("exterior ring runs back over itself"),
            geo_differs: true,
        },
        Case {
            name: "empty polygon",
            geometry: Polygon::new(LineString::new(vec![]), vec![]).into(),
            expected: Some("exterior ring has 0 positions"),
            geo_differs: true,
        },
        Case {
            name: "empty multipolygon",
            geometry: MultiPolygon::<f64>::new(vec![]).into(),
            expected: Some("a MultiPolygon needs at least one polygon"),
            geo_differs: true,
        },
    ]
}

#[test]
fn hand_made_cases_are_judged_as_expected_and_as_geo_judges_them() {
    for case in hand_made() {
        let verdict = check(&case.geometry);
        match (case.expected, &verdict) {
            (None, Ok(())) => {}
            (Some(text), Err(e)) => {
                assert!(
                    e.to_string().contains(text),
                    "{}: expected `{text}` in `{e}`",
                    case.name
                );
            }
            _ => panic!(
                "{}: expected {:?}, got {verdict:?}",
                case.name, case.expected
            ),
        }
        assert_eq!(
            geo_valid(&case.geometry) == verdict.is_ok(),
            !case.geo_differs,
            "{}: geo says {:?}",
            case.name,
            case.geometry.check_validation()
        );
    }
}

#[test]
fn errors_name_rings_and_positions() {
    let bow_tie = wkt!(POLYGON((0. 0., 4. 4., 4. 0., 0. 4., 0. 0.)));
    assert_eq!(
        check_polygon(&bow_tie),
        Err(ValidityError::SelfIntersection {
            ring: RingRef::new(None, 0),
            contact: Contact::Cross,
            first: 0,
            second: 2,
        })
    );
    // Positions count repeated ones: the crossing segments start at positions 0 and 4.
    let repeated = wkt!(POLYGON((0. 0., 4. 4., 4. 4., 4. 4., 4. 0., 0. 4., 0. 0.)));
    let Err(ValidityError::SelfIntersection { first, second, .. }) = check_polygon(&repeated)
    else {
        panic!("not a self-intersection");
    };
    assert_eq!((first, second), (0, 4));
}

#[test]
fn an_unclosed_ring_is_refused_at_the_geojson_edge() {
    // geo closes rings itself, so an open ring can only arrive as GeoJSON.
    let open = json!({"type": "Polygon", "coordinates": [[[12.1, 45.6], [12.2, 45.6], [12.2, 45.7], [12.1, 45.7]]]});
    let e = faro::domain::feature::parse_geometry(open, Collection::Territories).unwrap_err();
    assert_eq!(e.field, "geometry");
    assert!(e.reason.contains("not closed"), "{e}");
    let three =
        json!({"type": "Polygon", "coordinates": [[[12.1, 45.6], [12.2, 45.6], [12.1, 45.6]]]});
    let e = faro::domain::feature::parse_geometry(three, Collection::Territories).unwrap_err();
    assert!(e.reason.contains("at least 4"), "{e}");
}

#[test]
fn no_message_holds_a_coordinate_of_its_input() {
    let mut checked = 0;
    for case in hand_made() {
        if case.expected.is_none() || case.name == "non-finite position" {
            continue;
        }
        let g = to_lonlat(&case.geometry);
        // The map is exact: the verdict is the same.
        let verdict = check(&g);
        assert!(verdict.is_err(), "{}: {verdict:?}", case.name);
        assert_no_coordinates(&g, &verdict.unwrap_err().to_string());
        let rule = if matches!(g, Geometry::MultiPolygon(_)) {
            GeometryRule::Areal
        } else {
            GeometryRule::PointOrPolygon
        };
        let e = ValidGeometry::new(g.clone(), rule).unwrap_err();
        assert_eq!(e.field, "geometry");
        assert_no_coordinates(&g, &e.to_string());
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} invalid cases");

    // Out of range: the position is named by index, the value never.
    let far = wkt!(MULTIPOLYGON(
        ((12.0625 45.03125, 12.5625 45.03125, 12.5625 45.53125, 12.0625 45.53125, 12.0625 45.03125)),
        ((13.0625 45.03125, 13.5625 45.03125, 13.5625 91.53125, 13.0625 45.03125))
    ));
    let e = ValidGeometry::new(far.clone().into(), GeometryRule::Areal).unwrap_err();
    assert_eq!(
        e.reason,
        "position 2 of exterior ring of polygon 1: latitude must be a finite number in [-90, 90]"
    );
    assert_no_coordinates(&far.into(), &e.to_string());
    let point = Geometry::Point(geo::Point::new(200.0625, 45.03125));
    let e = ValidGeometry::new(point.clone(), GeometryRule::PointOnly).unwrap_err();
    assert_eq!(e.reason, "longitude must be a finite number in [-180, 180]");
    assert_no_coordinates(&point, &e.to_string());
}

// ---------------------------------------------------------------------------------------------
// Vertex cap and records.

fn square_ring(positions: usize) -> Polygon<f64> {
    // `positions - 1` corners along the edges of a square, then the closing repeat.
    let corners = positions - 1;
    let coords: Vec<(f64, f64)> = (0..corners)
        .map(|i| {
            let along = (4 * i % corners) as f64 / corners as f64;
            let (x, y) = match 4 * i / corners {
                0 => (along, 0.0),
                1 => (1.0, along),
                2 => (1.0 - along, 1.0),
                _ => (0.0, 1.0 - along),
            };
            (12.0 + x * 0.1, 45.0 + y * 0.1)
        })
        .collect();
    let polygon = Polygon::new(LineString::from(coords), vec![]);
    assert_eq!(polygon.exterior().0.len(), positions);
    polygon
}

#[test]
fn the_vertex_cap_refuses_before_validating() {
    let polygon = square_ring(101);
    let g: Geometry<f64> = polygon.into();
    assert!(ValidGeometry::new_capped(g.clone(), GeometryRule::Areal, 101).is_ok());
    assert_eq!(
        ValidGeometry::new_capped(g.clone(), GeometryRule::Areal, 100),
        Err(GeometryError::TooManyVertices {
            count: 101,
            max: 100
        })
    );
    // A wrong type is an invalid geometry, not a size problem, whatever the size.
    assert!(matches!(
        ValidGeometry::new_capped(g.clone(), GeometryRule::PointOnly, 10),
        Err(GeometryError::Invalid(_))
    ));
    // Through `new`, the default cap; past it a FieldError of the geometry.
    const { assert!(DEFAULT_MAX_VERTICES >= 1_000_000) };
    let too_many: Geometry<f64> = square_ring(DEFAULT_MAX_VERTICES + 1).into();
    let e = ValidGeometry::new(too_many, GeometryRule::Areal).unwrap_err();
    assert_eq!(e.field, "geometry");
    assert_eq!(
        e.reason,
        format!(
            "geometry has {} positions, more than the {DEFAULT_MAX_VERTICES} accepted",
            DEFAULT_MAX_VERTICES + 1
        )
    );
}

#[test]
fn a_record_checks_only_that_the_geometry_type_fits_its_collection() {
    let meta = Meta {
        version: 1,
        created_at: Utc.timestamp_opt(1_764_000_000, 0).unwrap(),
        updated_at: Utc.timestamp_opt(1_764_000_000, 0).unwrap(),
    };
    let service: Service =
        serde_json::from_value(json!({"name": "Sportello", "kind": "help_desk"})).unwrap();
    let attributes = Attributes::Service(service.validate().unwrap());
    let polygon = ValidGeometry::new(square_ring(9).into(), GeometryRule::Areal).unwrap();
    let e = Record::new(
        RecordId::parse("svc-a").unwrap(),
        polygon,
        attributes.clone(),
        meta.clone(),
    )
    .unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.reason.as_str()),
        ("geometry", "expected Point, got Polygon")
    );
    let point = ValidGeometry::new(
        Geometry::Point(geo::Point::new(12.2, 45.6)),
        GeometryRule::PointOnly,
    )
    .unwrap();
    let record = Record::new(RecordId::parse("svc-a").unwrap(), point, attributes, meta).unwrap();
    assert_eq!(record.collection(), Collection::Services);
}

// ---------------------------------------------------------------------------------------------
// A ring of 100,001 positions.

/// A star-shaped ring around (12.2, 45.7) of radius 0.1 degrees: `n` corners at evenly spaced
/// angles, radii jittered by up to two corner spacings (like a surveyed boundary), so each
/// segment stays in its own angular wedge: simple.
fn jittered_circle(n: usize, seed: u64) -> Vec<Coord<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let spacing = std::f64::consts::TAU * 0.1 / n as f64;
    (0..n)
        .map(|i| {
            let angle = std::f64::consts::TAU * i as f64 / n as f64;
            let r = 0.1 + 2.0 * spacing * rng.random::<f64>();
            Coord {
                x: 12.2 + r * angle.cos(),
                y: 45.7 + r * angle.sin(),
            }
        })
        .collect()
}

#[test]
fn a_valid_ring_of_100001_positions_and_the_same_with_one_crossing() {
    let n = 100_000;
    let mut coords = jittered_circle(n, 7);
    let valid = Polygon::new(LineString::new(coords.clone()), vec![]);
    assert_eq!(valid.exterior().0.len(), 100_001);
    assert_eq!(check_polygon(&valid), Ok(()));
    assert!(ValidGeometry::new(valid.into(), GeometryRule::Areal).is_ok());

    // Move one corner across the centre, beyond the far side: its two segments cross the ring
    // on the far side.
    let k = 31_337;
    let angle = std::f64::consts::TAU * k as f64 / n as f64 + std::f64::consts::PI;
    coords[k] = Coord {
        x: 12.2 + 0.2 * angle.cos(),
        y: 45.7 + 0.2 * angle.sin(),
    };
    let crossed = Polygon::new(LineString::new(coords), vec![]);
    match check_polygon(&crossed) {
        Err(ValidityError::SelfIntersection {
            contact: Contact::Cross,
            first,
            second,
            ..
        }) => {
            let moved = [k - 1, k];
            assert!(
                moved.contains(&first) || moved.contains(&second),
                "the crossing at {first} and {second} does not involve the moved corner"
            );
            let far = if moved.contains(&first) {
                second
            } else {
                first
            };
            let opposite = k + n / 2;
            assert!(
                far.abs_diff(opposite) < n / 8,
                "crossing at {far}, expected near {opposite}"
            );
        }
        other => panic!("expected a self-crossing, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Random polygons against geo.

/// A ring of 3 to 7 corners on the integer grid 0..=size (often self-crossing, often touching).
fn grid_ring(size: i32) -> impl Strategy<Value = Vec<(f64, f64)>> {
    prop::collection::vec((0..=size, 0..=size), 3..=7).prop_map(|v| {
        v.into_iter()
            .map(|(x, y)| (f64::from(x), f64::from(y)))
            .collect()
    })
}

/// 3 to 7 corners on the integer grid 0..=size sorted by angle around their mean: mostly
/// simple, with collinear runs, spikes and repeated corners now and then.
fn star_grid_ring(size: i32) -> impl Strategy<Value = Vec<(f64, f64)>> {
    grid_ring(size).prop_map(|mut v| {
        let n = v.len() as f64;
        let (cx, cy) = v
            .iter()
            .fold((0.0, 0.0), |(x, y), c| (x + c.0 / n, y + c.1 / n));
        v.sort_by(|a, b| {
            (a.1 - cy)
                .atan2(a.0 - cx)
                .total_cmp(&(b.1 - cy).atan2(b.0 - cx))
        });
        v
    })
}

/// An axis-aligned box on the integer grid, corners in either order.
fn grid_box(size: i32) -> impl Strategy<Value = Vec<(f64, f64)>> {
    (0..size, 0..size, 1..=size / 2, 1..=size / 2, any::<bool>()).prop_map(|(x, y, w, h, cw)| {
        let (x0, y0, x1, y1) = (
            f64::from(x),
            f64::from(y),
            f64::from(x + w),
            f64::from(y + h),
        );
        let mut v = vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)];
        if cw {
            v.reverse();
        }
        v
    })
}

/// A regular polygon of 3 to 12 corners around a centre, angles and radii jittered; with a
/// large angle jitter it may cross itself. `snap` rounds to the half-unit grid for touches.
fn jittered_ring() -> impl Strategy<Value = Vec<(f64, f64)>> {
    (
        (-4.0..4.0_f64, -4.0..4.0_f64),
        0.5..6.0_f64,
        3..=12_usize,
        prop_oneof![Just(0.0), 0.0..0.45_f64, 0.5..1.5_f64],
        0.0..0.6_f64,
        any::<bool>(),
        prop::collection::vec((0.0..1.0_f64, 0.0..1.0_f64), 12),
    )
        .prop_map(
            |((cx, cy), r, n, angle_jitter, radius_jitter, snap, noise)| {
                (0..n)
                    .map(|i| {
                        let (u, w) = noise[i];
                        let angle = std::f64::consts::TAU * (i as f64 + angle_jitter * (u - 0.5))
                            / n as f64;
                        let radius = r * (1.0 - radius_jitter * w);
                        let (x, y) = (cx + radius * angle.cos(), cy + radius * angle.sin());
                        if snap {
                            ((x * 2.0).round() / 2.0, (y * 2.0).round() / 2.0)
                        } else {
                            (x, y)
                        }
                    })
                    .collect()
            },
        )
}

fn polygon_of(shell: Vec<(f64, f64)>, holes: Vec<Vec<(f64, f64)>>) -> Polygon<f64> {
    Polygon::new(
        LineString::from(shell),
        holes.into_iter().map(LineString::from).collect(),
    )
}

fn random_polygon(
    ring: BoxedStrategy<Vec<(f64, f64)>>,
    hole: BoxedStrategy<Vec<(f64, f64)>>,
    holes: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Polygon<f64>> {
    (ring, prop::collection::vec(hole, holes)).prop_map(|(s, h)| polygon_of(s, h))
}

/// A multipolygon of `parts`, part i moved `step * i` east.
fn shifted(parts: Vec<Polygon<f64>>, step: f64) -> Geometry<f64> {
    let parts = parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let dx = step * i as f64;
            p.map_coords(|c| Coord {
                x: c.x + dx,
                y: c.y,
            })
        })
        .collect();
    Geometry::from(MultiPolygon::new(parts))
}

fn families() -> Vec<(&'static str, BoxedStrategy<Geometry<f64>>, bool)> {
    let grid = || grid_ring(6).boxed();
    let boxes = || grid_box(8).boxed();
    let jittered = || jittered_ring().boxed();
    let small_grid = || grid_ring(8).boxed();
    let star_grid = || star_grid_ring(6).boxed();
    vec![
        (
            "grid rings",
            random_polygon(grid(), small_grid(), 0..=3)
                .prop_map(Geometry::from)
                .boxed(),
            true,
        ),
        (
            "grid boxes with box holes",
            random_polygon(boxes(), boxes(), 0..=3)
                .prop_map(Geometry::from)
                .boxed(),
            true,
        ),
        (
            "jittered polygons with jittered holes",
            random_polygon(jittered(), jittered(), 0..=3)
                .prop_map(Geometry::from)
                .boxed(),
            false,
        ),
        (
            "multipolygons of grid boxes",
            prop::collection::vec(random_polygon(boxes(), boxes(), 0..=3), 1..=4)
                .prop_map(|p| Geometry::from(MultiPolygon::new(p)))
                .boxed(),
            true,
        ),
        (
            "multipolygons of star-shaped grid rings",
            // Part i moved 5 units east: neighbours overlap, touch or keep apart.
            prop::collection::vec(random_polygon(star_grid(), star_grid(), 0..=1), 2..=3)
                .prop_map(|parts| shifted(parts, 5.0))
                .boxed(),
            true,
        ),
        (
            "multipolygons of jittered polygons",
            // Part i moved 8 units east.
            prop::collection::vec(random_polygon(jittered(), jittered(), 0..=1), 2..=3)
                .prop_map(|parts| shifted(parts, 8.0))
                .boxed(),
            false,
        ),
    ]
}

/// Cases per family from a fixed seed; `PROPTEST_CASES` and `PROPTEST_RNG_SEED` explore further.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

#[test]
fn random_polygons_are_judged_as_geo_judges_them() {
    for (name, strategy, on_grid) in families() {
        let mut runner = TestRunner::new(Config {
            rng_seed: RngSeed::Fixed(
                std::env::var("PROPTEST_RNG_SEED")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(20_261_201),
            ),
            failure_persistence: None,
            ..Config::default()
        });
        let (mut valid, mut invalid, mut differences, mut geo_panics) = (0, 0, 0, 0);
        for _ in 0..cases() {
            let g = strategy.new_tree(&mut runner).unwrap().current();
            let verdict = check(&g);
            let Some(geo) = geo_verdict(&g) else {
                // geo decides nothing here; say what faro decided, to read in the log.
                eprintln!(
                    "{name}: geo panicked; faro says {verdict:?} for {}",
                    wkt_of(&g)
                );
                geo_panics += 1;
                continue;
            };
            if verdict.is_ok() != geo {
                // Only the documented difference: geo accepts a zero-area ring of three corners.
                assert!(
                    geo && has_zero_area_triangle(&g),
                    "{name}: faro says {verdict:?}, geo says {:?}, for {}",
                    g.check_validation(),
                    wkt_of(&g)
                );
                differences += 1;
            }
            if verdict.is_ok() {
                valid += 1;
            } else {
                invalid += 1;
            }
            // The same geometry in lon/lat through ValidGeometry: same verdict (the map is
            // exact on the grid), no coordinate in the message.
            if on_grid {
                let lonlat = to_lonlat(&g);
                match ValidGeometry::new(lonlat.clone(), GeometryRule::Areal) {
                    Ok(_) => assert!(verdict.is_ok(), "{name}: {}", wkt_of(&g)),
                    Err(e) => {
                        assert!(verdict.is_err(), "{name}: {e} for {}", wkt_of(&g));
                        assert_no_coordinates(&lonlat, &e.to_string());
                    }
                }
            }
        }
        eprintln!(
            "{name}: {valid} valid, {invalid} invalid, {differences} documented differences, \
             {geo_panics} where geo panicked"
        );
        let total = valid + invalid;
        assert!(valid * 20 >= total, "{name}: only {valid} of {total} valid");
        assert!(
            invalid * 20 >= total,
            "{name}: only {invalid} of {total} invalid"
        );
    }
}

fn wkt_of(g: &Geometry<f64>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for ring in rings(g) {
        let coords: Vec<String> = ring.0.iter().map(|c| format!("{} {}", c.x, c.y)).collect();
        let _ = write!(out, "({}) ", coords.join(", "));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Real boundaries.

fn boundaries_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // `../shared` beside the main checkout; `../../shared` beside a worktree of it.
    ["../shared", "../../shared"]
        .iter()
        .map(|up| root.join(up).join("data/istat/boundaries_openpolis_2023"))
        .find(|dir| dir.is_dir())
}

fn comuni(file: &std::path::Path) -> Vec<(String, Geometry<f64>)> {
    let text = std::fs::read_to_string(file).unwrap();
    let collection: geojson::FeatureCollection = text.parse().unwrap();
    collection
        .features
        .into_iter()
        .map(|f| {
            let name = f
                .property("name")
                .and_then(|v| v.as_str())
                .unwrap_or("?")
                .to_owned();
            let g: Geometry<f64> = f.geometry.unwrap().try_into().unwrap();
            (name, g)
        })
        .collect()
}

#[test]
fn treviso_comuni_are_judged_as_geo_judges_them() {
    let Some(dir) = boundaries_dir() else {
        eprintln!("SKIPPED: ../shared/data/istat/boundaries_openpolis_2023 is not there");
        return;
    };
    let file = dir.join("limits_P_26_municipalities.geojson");
    if !file.is_file() {
        eprintln!("SKIPPED: {} is not there", file.display());
        return;
    }
    let comuni = comuni(&file);
    assert_eq!(comuni.len(), 94);
    let mut parts = Vec::new();
    for (name, g) in &comuni {
        assert_eq!(check(g).is_ok(), geo_valid(g), "{name}: {:?}", check(g));
        assert!(
            ValidGeometry::new(g.clone(), GeometryRule::Areal).is_ok() == geo_valid(g),
            "{name}"
        );
        match g {
            Geometry::Polygon(p) => parts.push(p.clone()),
            Geometry::MultiPolygon(mp) => parts.extend(mp.0.iter().cloned()),
            _ => {}
        }
    }
    // All comuni as one multipolygon: neighbours share their borders, so it is invalid.
    let province = Geometry::from(MultiPolygon::new(parts.clone()));
    let verdict = check(&province);
    assert!(!geo_valid(&province));
    assert!(
        verdict
            .as_ref()
            .is_err_and(|e| e.to_string().contains("share a segment")),
        "{verdict:?}"
    );
    // Their dissolved union (the province) is judged as geo judges it.
    let union = geo::unary_union(parts.iter());
    let union = Geometry::from(union);
    assert_eq!(
        check(&union).is_ok(),
        geo_valid(&union),
        "{:?}",
        check(&union)
    );
    eprintln!(
        "Treviso: {} comuni; union of {} positions, valid: {}",
        comuni.len(),
        union.coords_count(),
        geo_valid(&union)
    );
}

#[test]
fn every_comune_on_file_is_judged_as_geo_judges_it() {
    let Some(dir) = boundaries_dir() else {
        eprintln!("SKIPPED: ../shared/data/istat/boundaries_openpolis_2023 is not there");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("_municipalities.geojson"))
        .collect();
    files.sort();
    let mut judged = 0;
    for file in &files {
        for (name, g) in comuni(file) {
            assert_eq!(
                check(&g).is_ok(),
                geo_valid(&g),
                "{name} in {}: {:?}",
                file.display(),
                check(&g)
            );
            judged += 1;
        }
    }
    eprintln!("{judged} comuni in {} files", files.len());
    assert!(judged > 0);
}
