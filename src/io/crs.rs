//! The coordinate systems Italian data comes in, and their transformation to WGS84 lon/lat.
//!
//! A source names its system by EPSG code (`--crs EPSG:32632`, a GeoPackage's `srs_id`) or by
//! WKT (a Shapefile's `.prj`, ESRI or OGC flavour). Only the systems below are read; anything
//! else is an error naming it, never a guess. Projected coordinates are easting, northing in
//! metres (GIS axis order, also for RDN2008, whose EPSG definition is northing first).
//!
//! Transformations (checked against PROJ 9.5 in `tests/fixtures/crs_control_points.csv`):
//! - WGS 84 / UTM 32N, 33N (32632, 32633), Web Mercator (3857): no datum change.
//! - ETRS89 / UTM (25832, 25833) and RDN2008 / UTM (6707, 6708): the null transformation to
//!   WGS84, as PROJ's "ETRS89 to WGS 84 (1)" and "RDN2008 to WGS 84 (1)" (metre level).
//! - Monte Mario / Italy zones 1 and 2 (3003, 3004): "Monte Mario to WGS 84 (4)" (EPSG:1660,
//!   Italy mainland, a 7-parameter position-vector Helmert; a few metres in Sardinia and
//!   Sicily, where EPSG has other parameter sets).

use proj4rs::Proj;

/// A coordinate system faro reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Crs {
    /// WGS84 longitude/latitude in degrees (EPSG:4326), also ETRS89 (4258) and RDN2008
    /// (6706) geographic, taken as WGS84 (the same null transformation as their UTM forms).
    Wgs84,
    /// A projected system by EPSG code, one of [`Crs::PROJECTED`].
    Projected(u32),
}

/// Why a coordinate system could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrsError {
    #[error(
        "unsupported coordinate system {0}; faro reads EPSG 4326, 32632, 32633, 25832, 25833, \
         6707, 6708, 3003, 3004 and 3857 (give another file, or reproject it first)"
    )]
    Unsupported(String),
    #[error("`{0}` is not a coordinate system; write it as EPSG:CODE, like EPSG:32632")]
    Malformed(String),
    #[error("reprojecting from {crs}: {message}")]
    Transform { crs: Crs, message: String },
}

impl std::fmt::Display for Crs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EPSG:{}", self.epsg())
    }
}

impl Crs {
    /// The projected systems faro transforms from.
    pub const PROJECTED: [u32; 9] = [32632, 32633, 25832, 25833, 6707, 6708, 3003, 3004, 3857];

    /// The system of an EPSG code.
    pub fn from_epsg(code: u32) -> Result<Self, CrsError> {
        match code {
            4326 | 4258 | 6706 => Ok(Crs::Wgs84),
            c if Self::PROJECTED.contains(&c) => Ok(Crs::Projected(c)),
            c => Err(CrsError::Unsupported(format!("EPSG:{c}"))),
        }
    }

    /// Parses `EPSG:32632` (also `epsg:32632`, a bare `32632`, or `urn:ogc:def:crs:EPSG::32632`).
    pub fn parse(text: &str) -> Result<Self, CrsError> {
        let t = text.trim();
        let upper = t.to_ascii_uppercase();
        let code = upper
            .strip_prefix("URN:OGC:DEF:CRS:EPSG::")
            .or_else(|| upper.strip_prefix("EPSG:"))
            .unwrap_or(&upper);
        if upper == "CRS84" || upper == "URN:OGC:DEF:CRS:OGC:1.3:CRS84" {
            return Ok(Crs::Wgs84);
        }
        let code: u32 = code
            .parse()
            .map_err(|_| CrsError::Malformed(t.to_owned()))?;
        Self::from_epsg(code)
    }

    /// Identifies the system of a WKT text (a `.prj`): by its EPSG authority when it has one,
    /// otherwise by the name of its PROJCS/GEOGCS (ESRI `.prj` files carry no authority).
    pub fn from_wkt(wkt: &str) -> Result<Self, CrsError> {
        let wkt = wkt.trim().trim_start_matches('\u{feff}');
        if wkt.is_empty() {
            return Err(CrsError::Unsupported("in an empty .prj".to_owned()));
        }
        if let Some(code) = top_level_authority(wkt) {
            return Self::from_epsg(code);
        }
        let head = wkt
            .split_once('[')
            .map_or("", |(k, _)| k)
            .trim()
            .to_ascii_uppercase();
        let name = first_quoted(wkt).unwrap_or_default();
        let key: String = name
            .to_ascii_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let code = match key.as_str() {
            "wgs1984utmzone32n" | "wgs84utmzone32n" => Some(32632),
            "wgs1984utmzone33n" | "wgs84utmzone33n" => Some(32633),
            "etrs1989utmzone32n" | "etrs89utmzone32n" => Some(25832),
            "etrs1989utmzone33n" | "etrs89utmzone33n" => Some(25833),
            "rdn2008utmzone32n" | "rdn2008utmzone32nne" => Some(6707),
            "rdn2008utmzone33n" | "rdn2008utmzone33nne" => Some(6708),
            "montemarioitaly1" | "montemarioitalyzone1" => Some(3003),
            "montemarioitaly2" | "montemarioitalyzone2" => Some(3004),
            "wgs1984webmercatorauxiliarysphere" | "wgs84pseudomercator" => Some(3857),
            "gcswgs1984" | "wgs84" | "wgs1984" => Some(4326),
            "gcsetrs1989" | "etrs89" => Some(4258),
            "gcsrdn2008" | "rdn2008" => Some(6706),
            _ => None,
        };
        // A geographic name is only WGS84 when the whole text is a GEOGCS.
        match code {
            Some(4326 | 4258 | 6706) if head != "GEOGCS" && head != "GEOGCRS" => Err(
                CrsError::Unsupported(format!("`{name}` ({})", head.to_lowercase())),
            ),
            Some(c) => Self::from_epsg(c),
            None => Err(CrsError::Unsupported(format!("`{name}` in the .prj"))),
        }
    }

    /// The EPSG code.
    pub fn epsg(self) -> u32 {
        match self {
            Crs::Wgs84 => 4326,
            Crs::Projected(c) => c,
        }
    }

    fn proj_string(self) -> Option<&'static str> {
        Some(match self.epsg() {
            32632 => "+proj=utm +zone=32 +datum=WGS84 +units=m +no_defs",
            32633 => "+proj=utm +zone=33 +datum=WGS84 +units=m +no_defs",
            25832 | 6707 => "+proj=utm +zone=32 +ellps=GRS80 +towgs84=0,0,0 +units=m +no_defs",
            25833 | 6708 => "+proj=utm +zone=33 +ellps=GRS80 +towgs84=0,0,0 +units=m +no_defs",
            3003 => {
                "+proj=tmerc +lat_0=0 +lon_0=9 +k=0.9996 +x_0=1500000 +y_0=0 +ellps=intl \
                 +towgs84=-104.1,-49.1,-9.9,0.971,-2.917,0.714,-11.68 +units=m +no_defs"
            }
            3004 => {
                "+proj=tmerc +lat_0=0 +lon_0=15 +k=0.9996 +x_0=2520000 +y_0=0 +ellps=intl \
                 +towgs84=-104.1,-49.1,-9.9,0.971,-2.917,0.714,-11.68 +units=m +no_defs"
            }
            3857 => {
                "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 \
                 +units=m +nadgrids=@null +no_defs"
            }
            _ => return None,
        })
    }
}

/// The EPSG code of the outermost `AUTHORITY["EPSG","…"]` (WKT1) or `ID["EPSG",…]` (WKT2): the
/// one at nesting depth 1, which names the whole system rather than a part of it.
fn top_level_authority(wkt: &str) -> Option<u32> {
    let mut depth = 0_i32;
    let mut in_quote = false;
    let bytes = wkt.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => in_quote = !in_quote,
            b'[' | b'(' if !in_quote => {
                if depth == 1 {
                    let before = wkt[..i].trim_end();
                    let keyword = before
                        .rsplit(|c: char| !c.is_ascii_alphabetic())
                        .next()
                        .unwrap_or_default()
                        .to_ascii_uppercase();
                    if keyword == "AUTHORITY" || keyword == "ID" {
                        let rest = &wkt[i + 1..];
                        let mut parts = rest.splitn(3, ',');
                        let auth = parts.next()?.trim().trim_matches('"');
                        let code = parts.next()?;
                        let code = code.split(']').next()?.trim().trim_matches('"').trim();
                        if auth.eq_ignore_ascii_case("EPSG") {
                            return code.parse().ok();
                        }
                    }
                }
                depth += 1;
            }
            b']' | b')' if !in_quote => depth -= 1,
            _ => {}
        }
    }
    None
}

fn first_quoted(wkt: &str) -> Option<String> {
    let start = wkt.find('"')? + 1;
    let len = wkt[start..].find('"')?;
    Some(wkt[start..start + len].to_owned())
}

/// Transforms positions of one system to WGS84 lon/lat degrees.
pub struct Reprojector {
    crs: Crs,
    projs: Option<(Proj, Proj)>,
}

impl std::fmt::Debug for Reprojector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reprojector({})", self.crs)
    }
}

impl Reprojector {
    pub fn new(crs: Crs) -> Result<Self, CrsError> {
        let projs = match crs.proj_string() {
            None => None,
            Some(def) => {
                let err = |e: proj4rs::errors::Error| CrsError::Transform {
                    crs,
                    message: e.to_string(),
                };
                let src = Proj::from_proj_string(def).map_err(err)?;
                let dst =
                    Proj::from_proj_string("+proj=longlat +datum=WGS84 +no_defs").map_err(err)?;
                Some((src, dst))
            }
        };
        Ok(Self { crs, projs })
    }

    pub fn crs(&self) -> Crs {
        self.crs
    }

    /// Whether positions pass through unchanged.
    pub fn is_identity(&self) -> bool {
        self.projs.is_none()
    }

    /// One position (easting, northing in metres; or lon, lat for WGS84) to lon/lat degrees.
    pub fn to_wgs84(&self, x: f64, y: f64) -> Result<(f64, f64), CrsError> {
        let Some((src, dst)) = &self.projs else {
            return Ok((x, y));
        };
        let mut p = (x, y, 0.0);
        proj4rs::transform::transform(src, dst, &mut p).map_err(|e| CrsError::Transform {
            crs: self.crs,
            message: e.to_string(),
        })?;
        Ok((p.0.to_degrees(), p.1.to_degrees()))
    }

    /// Every position of a geometry to lon/lat degrees.
    pub fn geometry(&self, g: &mut geo::Geometry<f64>) -> Result<(), CrsError> {
        use geo::MapCoordsInPlace;
        if self.is_identity() {
            return Ok(());
        }
        let failure = std::cell::Cell::new(None);
        let failure_ref = &failure;
        g.map_coords_in_place(|c| match self.to_wgs84(c.x, c.y) {
            Ok((x, y)) => geo::coord! { x: x, y: y },
            Err(e) => {
                failure_ref.set(Some(e));
                c
            }
        });
        failure.into_inner().map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esri_and_ogc_prj_names_are_recognised() {
        let esri = r#"PROJCS["WGS_1984_UTM_Zone_32N",GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["False_Easting",500000.0],UNIT["Meter",1.0]]"#;
        assert_eq!(Crs::from_wkt(esri).unwrap(), Crs::Projected(32632));
        let ogc = r#"PROJCS["ETRS89 / UTM zone 32N",GEOGCS["ETRS89",AUTHORITY["EPSG","4258"]],PROJECTION["Transverse_Mercator"],AUTHORITY["EPSG","25832"]]"#;
        assert_eq!(Crs::from_wkt(ogc).unwrap(), Crs::Projected(25832));
        let geog = r#"GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]]]"#;
        assert_eq!(Crs::from_wkt(geog).unwrap(), Crs::Wgs84);
    }

    #[test]
    fn an_unknown_system_is_named_in_the_error() {
        let lambert = r#"PROJCS["RGF93_Lambert_93",GEOGCS["GCS_RGF_1993"]]"#;
        let e = Crs::from_wkt(lambert).unwrap_err().to_string();
        assert!(e.contains("RGF93_Lambert_93"), "{e}");
        let e = Crs::parse("EPSG:2154").unwrap_err().to_string();
        assert!(e.contains("EPSG:2154"), "{e}");
        assert!(matches!(Crs::parse("utm"), Err(CrsError::Malformed(_))));
    }

    #[test]
    fn epsg_codes_parse_in_their_usual_spellings() {
        assert_eq!(Crs::parse("EPSG:3003").unwrap(), Crs::Projected(3003));
        assert_eq!(Crs::parse("epsg:4326").unwrap(), Crs::Wgs84);
        assert_eq!(
            Crs::parse("urn:ogc:def:crs:EPSG::6707").unwrap(),
            Crs::Projected(6707)
        );
    }
}
