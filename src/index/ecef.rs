//! Earth-centred, earth-fixed coordinates on the WGS84 ellipsoid (height 0), in metres.
//!
//! Used only as an index space: the Euclidean distance between two ECEF points (the chord) is
//! a lower bound of the geodesic distance between them, which makes it a sound pruning key for
//! exact geodesic nearest-neighbour search.

use crate::domain::LonLat;

/// WGS84 semi-major axis, metres.
const A: f64 = 6_378_137.0;
/// WGS84 flattening.
const F: f64 = 1.0 / 298.257_223_563;

/// ECEF x, y, z in metres of a lon/lat position on the WGS84 ellipsoid surface.
///
/// ```
/// use faro::domain::LonLat;
/// use faro::index::to_ecef;
/// let [x, y, z] = to_ecef(LonLat::new(0.0, 0.0).unwrap());
/// assert!((x - 6_378_137.0).abs() < 1e-6 && y.abs() < 1e-6 && z.abs() < 1e-6);
/// ```
pub fn to_ecef(p: LonLat) -> [f64; 3] {
    let e2 = F * (2.0 - F);
    let (sin_lat, cos_lat) = p.lat().to_radians().sin_cos();
    let (sin_lon, cos_lon) = p.lon().to_radians().sin_cos();
    let n = A / (1.0 - e2 * sin_lat * sin_lat).sqrt();
    [
        n * cos_lat * cos_lon,
        n * cos_lat * sin_lon,
        n * (1.0 - e2) * sin_lat,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_north_pole_is_at_the_semi_minor_axis() {
        let [x, y, z] = to_ecef(LonLat::new(0.0, 90.0).unwrap());
        let b = A * (1.0 - F);
        assert!(x.abs() < 1e-6 && y.abs() < 1e-6);
        assert!((z - b).abs() < 1e-6, "{z} vs {b}");
    }
}
