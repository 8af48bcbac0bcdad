//! The web map tile grid: z/x/y tiles over spherical Web Mercator (EPSG:3857), the scheme of
//! every slippy map (XYZ: x grows east, y grows south, tile 0/0/0 is the world).
//!
//! Positions stay lon/lat WGS84 everywhere else in faro; this module is the one place that
//! maps them to Mercator metres and to tile coordinates. Latitudes beyond ±85.0511° (where the
//! square world ends) are clamped to that edge.

use std::f64::consts::PI;
use std::fmt;

/// Radius of the Web Mercator sphere (the WGS84 semi-major axis), in metres.
pub const EARTH_RADIUS_M: f64 = 6_378_137.0;

/// Half the width of the Web Mercator square, in metres (π R).
pub const HALF_WORLD_M: f64 = PI * EARTH_RADIUS_M;

/// The latitude where the Web Mercator square ends: atan(sinh π), in degrees.
pub const MAX_LATITUDE: f64 = 85.051_128_779_806_59;

/// Highest zoom served.
pub const MAX_ZOOM: u8 = 22;

/// A tile of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    pub z: u8,
    pub x: u32,
    pub y: u32,
}

/// Why a tile address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    #[error("{name} must be a whole number, not `{value}`")]
    NotAnInteger { name: &'static str, value: String },
    #[error("z must be between 0 and {MAX_ZOOM}, not {0}")]
    Zoom(u64),
    #[error("{name} must be between 0 and {max} at zoom {z}, not {value}")]
    OutOfRange {
        name: &'static str,
        value: u64,
        max: u32,
        z: u8,
    },
}

impl TileError {
    /// The path parameter at fault.
    pub fn parameter(&self) -> &'static str {
        match self {
            TileError::NotAnInteger { name, .. } | TileError::OutOfRange { name, .. } => name,
            TileError::Zoom(_) => "z",
        }
    }
}

impl TileId {
    /// A tile, checked against its zoom.
    pub fn new(z: u8, x: u32, y: u32) -> Result<Self, TileError> {
        if z > MAX_ZOOM {
            return Err(TileError::Zoom(u64::from(z)));
        }
        let max = (1u32 << z) - 1;
        for (name, value) in [("x", x), ("y", y)] {
            if value > max {
                return Err(TileError::OutOfRange {
                    name,
                    value: u64::from(value),
                    max,
                    z,
                });
            }
        }
        Ok(Self { z, x, y })
    }

    /// Parses the three parts of a `{z}/{x}/{y}` path (decimal digits only: no sign, no
    /// fraction, no exponent).
    pub fn parse(z: &str, x: &str, y: &str) -> Result<Self, TileError> {
        let number = |name: &'static str, value: &str| -> Result<u64, TileError> {
            let bad = || TileError::NotAnInteger {
                name,
                value: value.chars().take(32).collect(),
            };
            if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            value.parse().map_err(|_| bad())
        };
        let (zn, xn, yn) = (number("z", z)?, number("x", x)?, number("y", y)?);
        let z = u8::try_from(zn)
            .ok()
            .filter(|z| *z <= MAX_ZOOM)
            .ok_or(TileError::Zoom(zn))?;
        let max = (1u32 << z) - 1;
        let coordinate = |name: &'static str, value: u64| {
            u32::try_from(value)
                .ok()
                .filter(|v| *v <= max)
                .ok_or(TileError::OutOfRange {
                    name,
                    value,
                    max,
                    z,
                })
        };
        Ok(Self {
            z,
            x: coordinate("x", xn)?,
            y: coordinate("y", yn)?,
        })
    }

    /// Width (and height) of this tile in Mercator metres.
    pub fn size_m(self) -> f64 {
        2.0 * HALF_WORLD_M / f64::from(1u32 << self.z)
    }

    /// The tile's bounds in Mercator metres.
    pub fn mercator_bounds(self) -> MercatorRect {
        let size = self.size_m();
        let min_x = -HALF_WORLD_M + f64::from(self.x) * size;
        let max_y = HALF_WORLD_M - f64::from(self.y) * size;
        MercatorRect {
            min_x,
            min_y: max_y - size,
            max_x: min_x + size,
            max_y,
        }
    }

    /// The tile's bounds in lon/lat degrees: `[west, south, east, north]`.
    pub fn lonlat_bounds(self) -> [f64; 4] {
        self.mercator_bounds().to_lonlat()
    }

    /// The tile at zoom `z` that holds a lon/lat position (latitude clamped to the grid).
    pub fn containing(z: u8, lon: f64, lat: f64) -> Self {
        let z = z.min(MAX_ZOOM);
        let n = f64::from(1u32 << z);
        let (mx, my) = to_mercator(lon, lat);
        let max = (1u32 << z) - 1;
        // Truncation of a value clamped to [0, n - 1] is the intent here.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let cell = |v: f64| ((v * n).floor().clamp(0.0, f64::from(max))) as u32;
        Self {
            z,
            x: cell((mx + HALF_WORLD_M) / (2.0 * HALF_WORLD_M)),
            y: cell((HALF_WORLD_M - my) / (2.0 * HALF_WORLD_M)),
        }
    }

    /// The range of tiles at zoom `z` that a lon/lat box touches, inclusive:
    /// `(min_x, min_y, max_x, max_y)`.
    pub fn range(z: u8, west: f64, south: f64, east: f64, north: f64) -> (u32, u32, u32, u32) {
        let nw = Self::containing(z, west, north);
        let se = Self::containing(z, east, south);
        (nw.x, nw.y, se.x, se.y)
    }
}

impl fmt::Display for TileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.z, self.x, self.y)
    }
}

/// A box in Mercator metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MercatorRect {
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

impl MercatorRect {
    /// Grown by `by` metres on every side.
    #[must_use]
    pub fn grown(self, by: f64) -> Self {
        Self {
            min_x: self.min_x - by,
            min_y: self.min_y - by,
            max_x: self.max_x + by,
            max_y: self.max_y + by,
        }
    }

    /// `[west, south, east, north]` in degrees (latitudes beyond the grid clamp to its edge).
    pub fn to_lonlat(self) -> [f64; 4] {
        let (west, south) = to_lonlat(self.min_x, self.min_y);
        let (east, north) = to_lonlat(self.max_x, self.max_y);
        [west, south, east, north]
    }
}

/// Lon/lat degrees to Mercator metres; latitude clamped to ±[`MAX_LATITUDE`].
pub fn to_mercator(lon: f64, lat: f64) -> (f64, f64) {
    let lat = lat.clamp(-MAX_LATITUDE, MAX_LATITUDE);
    let x = EARTH_RADIUS_M * lon.to_radians();
    let y = EARTH_RADIUS_M * (PI / 4.0 + lat.to_radians() / 2.0).tan().ln();
    (x, y)
}

/// Mercator metres to lon/lat degrees; `y` beyond the square clamps to its edge.
pub fn to_lonlat(x: f64, y: f64) -> (f64, f64) {
    let y = y.clamp(-HALF_WORLD_M, HALF_WORLD_M);
    let lon = (x / EARTH_RADIUS_M).to_degrees();
    let lat = (2.0 * (y / EARTH_RADIUS_M).exp().atan() - PI / 2.0).to_degrees();
    (lon, lat)
}

/// Maps Mercator metres to the integer-valued coordinates of one tile (origin top left, y
/// down, `extent` units a side), as MVT wants them.
#[derive(Debug, Clone, Copy)]
pub struct TileTransform {
    min_x: f64,
    max_y: f64,
    scale: f64,
}

impl TileTransform {
    pub fn new(tile: TileId, extent: u32) -> Self {
        let b = tile.mercator_bounds();
        Self {
            min_x: b.min_x,
            max_y: b.max_y,
            scale: f64::from(extent) / tile.size_m(),
        }
    }

    /// Tile coordinates of a Mercator position, not rounded.
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        ((x - self.min_x) * self.scale, (self.max_y - y) * self.scale)
    }

    /// Tile coordinates of a lon/lat position, not rounded.
    pub fn lonlat(&self, lon: f64, lat: f64) -> (f64, f64) {
        let (x, y) = to_mercator(lon, lat);
        self.apply(x, y)
    }

    /// Mercator metres per tile unit.
    pub fn unit_m(&self) -> f64 {
        1.0 / self.scale
    }
}

#[cfg(test)]
#[allow(clippy::many_single_char_names)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    #[test]
    fn the_world_tile_spans_the_mercator_square() {
        let b = TileId::new(0, 0, 0).unwrap().mercator_bounds();
        assert_abs_diff_eq!(b.min_x, -20_037_508.342_789_244, epsilon = 1e-6);
        assert_abs_diff_eq!(b.max_y, 20_037_508.342_789_244, epsilon = 1e-6);
        let [w, s, e, n] = TileId::new(0, 0, 0).unwrap().lonlat_bounds();
        assert_abs_diff_eq!(w, -180.0, epsilon = 1e-9);
        assert_abs_diff_eq!(e, 180.0, epsilon = 1e-9);
        assert_abs_diff_eq!(n, MAX_LATITUDE, epsilon = 1e-9);
        assert_abs_diff_eq!(s, -MAX_LATITUDE, epsilon = 1e-9);
    }

    #[test]
    fn known_tiles_have_known_bounds() {
        // Computed independently with the OSM wiki's formulas (lat = atan(sinh(π (1 - 2y/2^z))),
        // x = -πR + x·2πR/2^z), in Python.
        let t = TileId::new(10, 547, 365).unwrap();
        let [w, s, e, n] = t.lonlat_bounds();
        assert_abs_diff_eq!(w, 12.304_687_5, epsilon = 1e-9);
        assert_abs_diff_eq!(e, 12.656_25, epsilon = 1e-9);
        assert_abs_diff_eq!(n, 45.828_799_251_921_34, epsilon = 1e-9);
        assert_abs_diff_eq!(s, 45.583_289_756_006_31, epsilon = 1e-9);
        let b = TileId::new(1, 1, 0).unwrap().mercator_bounds();
        assert_abs_diff_eq!(b.min_x, 0.0, epsilon = 1e-6);
        assert_abs_diff_eq!(b.min_y, 0.0, epsilon = 1e-6);
        let b = TileId::new(14, 8710, 5853).unwrap().mercator_bounds();
        assert_abs_diff_eq!(b.min_x, 1_267_020.180_855_080_5, epsilon = 1e-3);
        assert_abs_diff_eq!(b.max_y, 5_721_158.693_088_872, epsilon = 1e-3);
        assert_abs_diff_eq!(b.max_x - b.min_x, 2_445.984_905_125_64, epsilon = 1e-6);
    }

    #[test]
    fn the_containing_tile_round_trips_and_clamps_the_poles_and_the_antimeridian() {
        for z in [0u8, 3, 10, 14, 22] {
            for (lon, lat) in [(12.24, 45.67), (-179.99, 10.0), (179.99, -10.0), (0.0, 0.0)] {
                let t = TileId::containing(z, lon, lat);
                let [w, s, e, n] = t.lonlat_bounds();
                assert!(
                    w <= lon && lon < e && s <= lat && lat <= n,
                    "{t} {lon},{lat}"
                );
            }
            let max = (1u32 << z) - 1;
            assert_eq!(TileId::containing(z, 180.0, 0.0).x, max, "the east edge");
            assert_eq!(TileId::containing(z, -180.0, 0.0).x, 0);
            assert_eq!(TileId::containing(z, 0.0, 90.0).y, 0, "north pole clamps");
            assert_eq!(
                TileId::containing(z, 0.0, -90.0).y,
                max,
                "south pole clamps"
            );
        }
        assert_abs_diff_eq!(to_mercator(0.0, 90.0).1, HALF_WORLD_M, epsilon = 1e-6);
        assert_abs_diff_eq!(to_lonlat(0.0, 1e9).1, MAX_LATITUDE, epsilon = 1e-9);
    }

    #[test]
    fn addresses_are_checked() {
        assert!(TileId::parse("10", "547", "365").is_ok());
        assert_eq!(TileId::parse("23", "0", "0"), Err(TileError::Zoom(23)));
        assert!(matches!(
            TileId::parse("2", "4", "0"),
            Err(TileError::OutOfRange { name: "x", .. })
        ));
        for bad in [
            "-1",
            "1.5",
            "1e3",
            "",
            " 1",
            "+1",
            "0x1",
            "99999999999999999999",
        ] {
            assert!(
                matches!(
                    TileId::parse(bad, "0", "0"),
                    Err(TileError::NotAnInteger { name: "z", .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_transform_puts_the_tile_corners_at_0_and_extent() {
        let t = TileId::new(12, 2190, 1461).unwrap();
        let tr = TileTransform::new(t, 4096);
        let b = t.mercator_bounds();
        let (x0, y0) = tr.apply(b.min_x, b.max_y);
        let (x1, y1) = tr.apply(b.max_x, b.min_y);
        assert_abs_diff_eq!(x0, 0.0, epsilon = 1e-6);
        assert_abs_diff_eq!(y0, 0.0, epsilon = 1e-6);
        assert_abs_diff_eq!(x1, 4096.0, epsilon = 1e-6);
        assert_abs_diff_eq!(y1, 4096.0, epsilon = 1e-6);
    }
}
