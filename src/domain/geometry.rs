//! Positions, bounding boxes and validated geometries, all WGS84 lon/lat (EPSG:4326).

use geo::{CoordsIter, Geometry};

use super::FieldError;
use super::validity::{self, RingRef};

/// A WGS84 position: longitude in [-180, 180], latitude in [-90, 90], both finite.
///
/// ```
/// use faro::domain::LonLat;
/// assert!(LonLat::new(12.24, 45.67).is_ok());
/// assert!(LonLat::new(f64::NAN, 45.0).is_err());
/// assert!(LonLat::new(12.0, 91.0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LonLat {
    lon: f64,
    lat: f64,
}

impl LonLat {
    pub fn new(lon: f64, lat: f64) -> Result<Self, FieldError> {
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(FieldError::new(
                "lon",
                format!("longitude must be a finite number in [-180, 180], got {lon}"),
            ));
        }
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(FieldError::new(
                "lat",
                format!("latitude must be a finite number in [-90, 90], got {lat}"),
            ));
        }
        Ok(Self { lon, lat })
    }

    /// Longitude in degrees.
    pub fn lon(self) -> f64 {
        self.lon
    }

    /// Latitude in degrees.
    pub fn lat(self) -> f64 {
        self.lat
    }

    pub fn to_point(self) -> geo::Point<f64> {
        geo::Point::new(self.lon, self.lat)
    }
}

/// A lon/lat bounding box with `min <= max` on both axes (no antimeridian wrap).
///
/// ```
/// use faro::domain::Bbox;
/// let b = Bbox::parse("12.0,45.5,12.5,46.0").unwrap();
/// assert_eq!(b.min_lon(), 12.0);
/// assert!(Bbox::parse("12.5,45.5,12.0,46.0").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bbox {
    min: LonLat,
    max: LonLat,
}

impl Bbox {
    pub fn new(min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64) -> Result<Self, FieldError> {
        let min = LonLat::new(min_lon, min_lat).map_err(|e| FieldError::new("bbox", e.reason))?;
        let max = LonLat::new(max_lon, max_lat).map_err(|e| FieldError::new("bbox", e.reason))?;
        if min_lon > max_lon {
            return Err(FieldError::new(
                "bbox",
                format!("minimum longitude {min_lon} is greater than maximum longitude {max_lon}"),
            ));
        }
        if min_lat > max_lat {
            return Err(FieldError::new(
                "bbox",
                format!("minimum latitude {min_lat} is greater than maximum latitude {max_lat}"),
            ));
        }
        Ok(Self { min, max })
    }

    /// Parses `minLon,minLat,maxLon,maxLat` (OGC API bbox without height).
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        if parts.len() != 4 {
            return Err(FieldError::new(
                "bbox",
                format!(
                    "expected 4 comma-separated numbers minLon,minLat,maxLon,maxLat, got {}",
                    parts.len()
                ),
            ));
        }
        let mut v = [0.0_f64; 4];
        for (slot, part) in v.iter_mut().zip(&parts) {
            *slot = part
                .parse::<f64>()
                .map_err(|_| FieldError::new("bbox", format!("`{part}` is not a number")))?;
        }
        Self::new(v[0], v[1], v[2], v[3])
    }

    pub fn min_lon(&self) -> f64 {
        self.min.lon
    }
    pub fn min_lat(&self) -> f64 {
        self.min.lat
    }
    pub fn max_lon(&self) -> f64 {
        self.max.lon
    }
    pub fn max_lat(&self) -> f64 {
        self.max.lat
    }

    pub fn to_rect(&self) -> geo::Rect<f64> {
        geo::Rect::new(
            geo::coord! { x: self.min.lon, y: self.min.lat },
            geo::coord! { x: self.max.lon, y: self.max.lat },
        )
    }
}

/// The most positions [`ValidGeometry::new`] accepts in one geometry, the closing repeat of
/// each ring included.
///
/// Real inputs are up to about 100,000 positions (a province dissolved from ISTAT comuni);
/// this leaves ten times that. Validating a million positions takes about a second and a few
/// hundred bytes a position (the R-tree of segments), and its GeoJSON is some 40 MB, so
/// anything larger is refused before any work is done.
pub const DEFAULT_MAX_VERTICES: usize = 1_000_000;

/// A geometry that is finite, within lon/lat range, and valid: OGC simple features rules,
/// checked in O(n log n) by [`super::validity`] (closed rings, no self-intersection, holes
/// inside shells, parts of a multipolygon with disjoint interiors).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidGeometry(Geometry<f64>);

/// Which geometry types a collection accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometryRule {
    PointOnly,
    PointOrPolygon,
    Areal,
}

impl GeometryRule {
    /// Whether a geometry of this type is accepted.
    pub fn admits(self, geometry: &Geometry<f64>) -> bool {
        match self {
            GeometryRule::PointOnly => matches!(geometry, Geometry::Point(_)),
            GeometryRule::PointOrPolygon => {
                matches!(geometry, Geometry::Point(_) | Geometry::Polygon(_))
            }
            GeometryRule::Areal => {
                matches!(geometry, Geometry::Polygon(_) | Geometry::MultiPolygon(_))
            }
        }
    }

    /// The accepted types, for a message.
    pub fn expected(self) -> &'static str {
        match self {
            GeometryRule::PointOnly => "Point",
            GeometryRule::PointOrPolygon => "Point or Polygon",
            GeometryRule::Areal => "Polygon or MultiPolygon",
        }
    }
}

/// Why [`ValidGeometry::new_capped`] refused a geometry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    /// More positions than the cap allows (an HTTP layer answers 413). Nothing was validated.
    #[error("geometry has {count} positions, more than the {max} accepted")]
    TooManyVertices { count: usize, max: usize },
    /// Wrong type for the collection, out of range or invalid (an HTTP layer answers 400).
    #[error(transparent)]
    Invalid(#[from] FieldError),
}

impl From<GeometryError> for FieldError {
    fn from(error: GeometryError) -> Self {
        match error {
            GeometryError::Invalid(e) => e,
            too_many @ GeometryError::TooManyVertices { .. } => {
                FieldError::new("geometry", too_many.to_string())
            }
        }
    }
}

fn kind_name(geometry: &Geometry<f64>) -> &'static str {
    match geometry {
        Geometry::Point(_) => "Point",
        Geometry::Polygon(_) => "Polygon",
        Geometry::MultiPolygon(_) => "MultiPolygon",
        Geometry::LineString(_) => "LineString",
        Geometry::MultiPoint(_) => "MultiPoint",
        Geometry::MultiLineString(_) => "MultiLineString",
        Geometry::GeometryCollection(_) => "GeometryCollection",
        _ => "unsupported",
    }
}

fn check_rule(geometry: &Geometry<f64>, rule: GeometryRule) -> Result<(), FieldError> {
    if rule.admits(geometry) {
        Ok(())
    } else {
        Err(FieldError::new(
            "geometry",
            format!("expected {}, got {}", rule.expected(), kind_name(geometry)),
        ))
    }
}

/// What is wrong with a position's range, without its value.
fn range_problem(c: geo::Coord<f64>) -> Option<&'static str> {
    if !c.x.is_finite() || !(-180.0..=180.0).contains(&c.x) {
        Some("longitude must be a finite number in [-180, 180]")
    } else if !c.y.is_finite() || !(-90.0..=90.0).contains(&c.y) {
        Some("latitude must be a finite number in [-90, 90]")
    } else {
        None
    }
}

fn check_polygon_range(
    polygon: &geo::Polygon<f64>,
    index: Option<usize>,
) -> Result<(), FieldError> {
    let rings = std::iter::once(polygon.exterior()).chain(polygon.interiors());
    for (ring, line) in rings.enumerate() {
        for (position, &c) in line.0.iter().enumerate() {
            if let Some(problem) = range_problem(c) {
                let ring = RingRef::new(index, ring);
                return Err(FieldError::new(
                    "geometry",
                    format!("position {position} of {ring}: {problem}"),
                ));
            }
        }
    }
    Ok(())
}

/// Every position within lon/lat range; messages name the position by index only.
fn check_range(geometry: &Geometry<f64>) -> Result<(), FieldError> {
    match geometry {
        Geometry::Point(p) => match range_problem(p.0) {
            Some(problem) => Err(FieldError::new("geometry", problem)),
            None => Ok(()),
        },
        Geometry::Polygon(p) => check_polygon_range(p, None),
        Geometry::MultiPolygon(mp) => {
            mp.0.iter()
                .enumerate()
                .try_for_each(|(i, p)| check_polygon_range(p, Some(i)))
        }
        // No rule admits other types.
        _ => Ok(()),
    }
}

impl ValidGeometry {
    /// Validates `geometry` against the rule of a collection, accepting up to
    /// [`DEFAULT_MAX_VERTICES`] positions (more is a `FieldError` too; see
    /// [`ValidGeometry::new_capped`] to tell it apart).
    ///
    /// No message holds a coordinate value: positions are named by index.
    ///
    /// ```
    /// use faro::domain::ValidGeometry;
    /// use faro::domain::geometry::GeometryRule;
    /// use geo::wkt;
    ///
    /// let square = wkt!(POLYGON((12.1 45.6, 12.2 45.6, 12.2 45.7, 12.1 45.7, 12.1 45.6)));
    /// assert!(ValidGeometry::new(square.into(), GeometryRule::Areal).is_ok());
    /// let far = wkt!(POLYGON((12.1 45.6, 12.2 95.6, 12.2 45.7, 12.1 45.6)));
    /// let error = ValidGeometry::new(far.into(), GeometryRule::Areal).unwrap_err();
    /// assert_eq!(error.reason, "position 1 of exterior ring: latitude must be a finite number in [-90, 90]");
    /// ```
    pub fn new(geometry: Geometry<f64>, rule: GeometryRule) -> Result<Self, FieldError> {
        Self::new_capped(geometry, rule, DEFAULT_MAX_VERTICES).map_err(FieldError::from)
    }

    /// Validates `geometry` against the rule of a collection, refusing more than
    /// `max_vertices` positions (the closing repeat of each ring counts) with
    /// [`GeometryError::TooManyVertices`] before any other work.
    pub fn new_capped(
        geometry: Geometry<f64>,
        rule: GeometryRule,
        max_vertices: usize,
    ) -> Result<Self, GeometryError> {
        check_rule(&geometry, rule)?;
        let count = geometry.coords_count();
        if count > max_vertices {
            return Err(GeometryError::TooManyVertices {
                count,
                max: max_vertices,
            });
        }
        check_range(&geometry)?;
        let verdict = match &geometry {
            Geometry::Polygon(p) => validity::check_polygon(p),
            Geometry::MultiPolygon(mp) => validity::check_multi_polygon(mp),
            _ => Ok(()),
        };
        verdict.map_err(|problem| {
            FieldError::new(
                "geometry",
                format!("invalid {}: {problem}", kind_name(&geometry)),
            )
        })?;
        Ok(Self(geometry))
    }

    /// Checks that the geometry's type fits `rule` (O(1): it is valid already).
    pub fn check_rule(&self, rule: GeometryRule) -> Result<(), FieldError> {
        check_rule(&self.0, rule)
    }

    pub fn geometry(&self) -> &Geometry<f64> {
        &self.0
    }

    pub fn into_inner(self) -> Geometry<f64> {
        self.0
    }

    /// The position when the geometry is a point.
    pub fn as_point(&self) -> Option<LonLat> {
        match &self.0 {
            Geometry::Point(p) => Some(LonLat {
                lon: p.x(),
                lat: p.y(),
            }),
            _ => None,
        }
    }
}
