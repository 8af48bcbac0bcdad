//! Positions, bounding boxes and validated geometries, all WGS84 lon/lat (EPSG:4326).

use geo::{Geometry, Validation};

use super::FieldError;

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

/// A geometry that is finite, within lon/lat range, and valid (OGC simple features rules as
/// checked by `geo::Validation`: closed rings, no self-intersection, holes inside shells).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidGeometry(Geometry<f64>);

/// Which geometry types a collection accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometryRule {
    PointOnly,
    PointOrPolygon,
    Areal,
}

impl ValidGeometry {
    /// Validates `geometry` against the rule of a collection.
    pub fn new(geometry: Geometry<f64>, rule: GeometryRule) -> Result<Self, FieldError> {
        let kind = match &geometry {
            Geometry::Point(_) => "Point",
            Geometry::Polygon(_) => "Polygon",
            Geometry::MultiPolygon(_) => "MultiPolygon",
            Geometry::LineString(_) => "LineString",
            Geometry::MultiPoint(_) => "MultiPoint",
            Geometry::MultiLineString(_) => "MultiLineString",
            Geometry::GeometryCollection(_) => "GeometryCollection",
            _ => "unsupported",
        };
        let allowed = match rule {
            GeometryRule::PointOnly => matches!(geometry, Geometry::Point(_)),
            GeometryRule::PointOrPolygon => {
                matches!(geometry, Geometry::Point(_) | Geometry::Polygon(_))
            }
            GeometryRule::Areal => {
                matches!(geometry, Geometry::Polygon(_) | Geometry::MultiPolygon(_))
            }
        };
        if !allowed {
            let expected = match rule {
                GeometryRule::PointOnly => "Point",
                GeometryRule::PointOrPolygon => "Point or Polygon",
                GeometryRule::Areal => "Polygon or MultiPolygon",
            };
            return Err(FieldError::new(
                "geometry",
                format!("expected {expected}, got {kind}"),
            ));
        }
        for c in geo::CoordsIter::coords_iter(&geometry) {
            LonLat::new(c.x, c.y).map_err(|e| {
                FieldError::new(
                    "geometry",
                    format!("coordinate ({}, {}): {}", c.x, c.y, e.reason),
                )
            })?;
        }
        if let Err(problem) = geometry.check_validation() {
            return Err(FieldError::new(
                "geometry",
                format!("invalid {kind}: {problem}"),
            ));
        }
        if let Geometry::Polygon(p) = &geometry
            && p.exterior().0.len() < 4
        {
            return Err(FieldError::new(
                "geometry",
                "a polygon ring needs at least 4 positions",
            ));
        }
        Ok(Self(geometry))
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
