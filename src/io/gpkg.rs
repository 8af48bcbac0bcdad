//! GeoPackage (OGC 12-128r18, version 1.3) read and written with rusqlite.
//!
//! Geometries are GeoPackage binary: the `GP` header (version, flags, `srs_id`, envelope)
//! followed by OGC WKB. Reading takes the feature table named by `--layer` (or the only one),
//! its coordinate system from `gpkg_spatial_ref_sys`. Writing makes one feature table in
//! EPSG:4326 with an integer `fid`, the record id as `id`, every field, `created_at`,
//! `updated_at` and `version`.

use std::path::Path;

use rusqlite::types::ValueRef;
use serde_json::{Map, Value};

use super::{Crs, CrsError, ImportError, Preparer, SourceGeometry, SourceRecord};

/// Decodes a GeoPackage geometry blob.
pub fn decode_geometry(blob: &[u8]) -> Result<Option<geo::Geometry<f64>>, String> {
    use geozero::ToGeo;
    if blob.len() < 8 || &blob[..2] != b"GP" {
        return Err("not a GeoPackage geometry (no GP header)".to_owned());
    }
    let flags = blob[3];
    if flags & 0b0010_0000 != 0 {
        return Err("an extended GeoPackage geometry, which faro does not read".to_owned());
    }
    let envelope = match (flags >> 1) & 0b111 {
        0 => 0,
        1 => 32,
        2 | 3 => 48,
        4 => 64,
        other => return Err(format!("invalid envelope indicator {other}")),
    };
    if flags & 0b0001_0000 != 0 {
        return Ok(None);
    }
    let wkb = blob
        .get(8 + envelope..)
        .ok_or_else(|| "truncated GeoPackage geometry".to_owned())?;
    geozero::wkb::Wkb(wkb)
        .to_geo()
        .map(Some)
        .map_err(|e| format!("unreadable WKB: {e}"))
}

/// Encodes a geometry as a GeoPackage blob in EPSG:4326, with its xy envelope (none for a
/// point, as the standard recommends).
pub fn encode_geometry(g: &geo::Geometry<f64>) -> Result<Vec<u8>, String> {
    use geo::BoundingRect;
    use geozero::{CoordDimensions, ToWkb};
    let wkb = g
        .to_wkb(CoordDimensions::xy())
        .map_err(|e| format!("encoding WKB: {e}"))?;
    let rect = match g {
        geo::Geometry::Point(_) => None,
        other => other.bounding_rect(),
    };
    let mut out = Vec::with_capacity(8 + 32 + wkb.len());
    out.extend_from_slice(b"GP");
    out.push(0); // version 1
    out.push(if rect.is_some() {
        0b0000_0011
    } else {
        0b0000_0001
    }); // little endian
    out.extend_from_slice(&4326_i32.to_le_bytes());
    if let Some(r) = rect {
        for v in [r.min().x, r.max().x, r.min().y, r.max().y] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out.extend_from_slice(&wkb);
    Ok(out)
}

fn sql_err(path: &Path, doing: &str) -> impl Fn(rusqlite::Error) -> ImportError {
    let path = path.to_owned();
    let doing = doing.to_owned();
    move |e| ImportError::format(&path, format!("{doing}: {e}"))
}

/// Reads a feature table of a GeoPackage into `preparer`.
#[allow(
    clippy::too_many_lines,
    reason = "one pass: choose the table, its system, its rows"
)]
pub fn read(
    path: &Path,
    preparer: &mut Preparer,
    progress: &indicatif::ProgressBar,
) -> Result<(), ImportError> {
    let mut head = [0_u8; 16];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| ImportError::io(path, e))?;
        let n = f.read(&mut head).map_err(|e| ImportError::io(path, e))?;
        if n < 16 || &head != b"SQLite format 3\0" {
            return Err(ImportError::format(
                path,
                "not a GeoPackage (not an SQLite database)",
            ));
        }
    }
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err(path, "opening the GeoPackage"))?;
    let mut layers: Vec<(String, String, i64)> = conn
        .prepare(
            "SELECT c.table_name, g.column_name, g.srs_id FROM gpkg_contents c \
             JOIN gpkg_geometry_columns g ON g.table_name = c.table_name \
             WHERE c.data_type = 'features' ORDER BY c.table_name",
        )
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(sql_err(
            path,
            "listing the feature tables (is it a GeoPackage?)",
        ))?;
    let names = || {
        layers
            .iter()
            .map(|l| l.0.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (table, geom_col, srs_id) = match (preparer.options().layer.clone(), layers.len()) {
        (_, 0) => {
            return Err(ImportError::format(
                path,
                "the GeoPackage has no feature table",
            ));
        }
        (None, 1) => layers.remove(0),
        (None, _) => {
            return Err(ImportError::format(
                path,
                format!(
                    "the GeoPackage has several feature tables; choose one with --layer: {}",
                    names()
                ),
            ));
        }
        (Some(l), _) => match layers.iter().position(|t| t.0 == l) {
            Some(i) => layers.remove(i),
            None => {
                return Err(ImportError::format(
                    path,
                    format!(
                        "--layer {l}: no such feature table; the GeoPackage has: {}",
                        names()
                    ),
                ));
            }
        },
    };
    let crs = layer_crs(&conn, srs_id).map_err(|source| ImportError::Crs {
        path: path.to_owned(),
        source,
    });
    let crs = match crs {
        Ok(c) => Some(c),
        Err(_) if preparer.options().crs.is_some() => None,
        Err(e) => return Err(e),
    };
    preparer.begin(crs).map_err(|source| ImportError::Crs {
        path: path.to_owned(),
        source,
    })?;
    let quoted = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
    let total: i64 = conn
        .query_row(
            &format!("SELECT count(*) FROM {}", quoted(&table)),
            [],
            |r| r.get(0),
        )
        .map_err(sql_err(path, "counting the features"))?;
    super::count_records(progress, usize::try_from(total).unwrap_or(0));
    // The integer primary key (fid) is the GeoPackage's row id, not a field.
    let pk: Option<String> = conn
        .prepare(&format!("PRAGMA table_info({})", quoted(&table)))
        .and_then(|mut s| {
            let rows = s.query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, i64>(5)?)))?;
            let mut pk = None;
            for row in rows {
                let (name, is_pk) = row?;
                if is_pk == 1 {
                    pk = Some(name);
                }
            }
            Ok(pk)
        })
        .map_err(sql_err(path, "reading the table's columns"))?;
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM {}", quoted(&table)))
        .map_err(sql_err(path, "reading the features"))?;
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let mut rows = stmt
        .query([])
        .map_err(sql_err(path, "reading the features"))?;
    let mut number = 0;
    while let Some(row) = rows.next().map_err(sql_err(path, "reading the features"))? {
        number += 1;
        progress.inc(1);
        let mut properties = Map::new();
        let mut geometry = SourceGeometry::Missing;
        for (i, name) in columns.iter().enumerate() {
            let Ok(value) = row.get_ref(i) else { continue };
            if name == &geom_col {
                geometry = match value {
                    ValueRef::Blob(b) => match decode_geometry(b) {
                        Ok(Some(g)) => SourceGeometry::Geo(g),
                        Ok(None) => SourceGeometry::Missing,
                        Err(reason) => SourceGeometry::Invalid {
                            field: name.clone(),
                            reason,
                        },
                    },
                    _ => SourceGeometry::Missing,
                };
                continue;
            }
            if pk.as_deref() == Some(name.as_str()) {
                continue;
            }
            let v = match value {
                ValueRef::Null | ValueRef::Blob(_) => Value::Null,
                ValueRef::Integer(i) => Value::from(i),
                ValueRef::Real(f) => {
                    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
                }
                ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
            };
            properties.insert(name.clone(), v);
        }
        preparer.record(SourceRecord {
            number,
            feature_id: None,
            properties,
            geometry,
        });
    }
    Ok(())
}

/// The coordinate system of a GeoPackage `srs_id`: its EPSG code, or its WKT definition.
fn layer_crs(conn: &rusqlite::Connection, srs_id: i64) -> Result<Crs, CrsError> {
    let row: Option<(String, i64, String)> = conn
        .query_row(
            "SELECT organization, organization_coordsys_id, definition FROM gpkg_spatial_ref_sys \
             WHERE srs_id = ?1",
            [srs_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .ok();
    match row {
        Some((org, code, _)) if org.eq_ignore_ascii_case("EPSG") => {
            Crs::from_epsg(u32::try_from(code).unwrap_or(0))
        }
        Some((_, _, wkt)) if wkt != "undefined" => Crs::from_wkt(&wkt),
        _ => Err(CrsError::Unsupported(format!(
            "srs_id {srs_id} of the GeoPackage"
        ))),
    }
}

/// A column of an exported feature table.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// GeoPackage column type: TEXT, INTEGER, REAL, BOOLEAN, DATE, DATETIME.
    pub sql_type: &'static str,
}

/// Writes one feature table `table` (EPSG:4326) to a new GeoPackage at `path`: rows of
/// `(geometry, values)` in `columns` order.
pub fn write(
    path: &Path,
    table: &str,
    geometry_type: &str,
    columns: &[Column],
    rows: impl Iterator<Item = (geo::Geometry<f64>, Vec<rusqlite::types::Value>)>,
) -> Result<usize, String> {
    let mut conn = create(path)?;
    add_table(&mut conn, table, geometry_type, columns, rows)
}

/// A new GeoPackage at `path` (replacing any file there) with its metadata tables and no
/// feature table yet: add them with [`add_table`].
pub fn create(path: &Path) -> Result<rusqlite::Connection, String> {
    if path.exists() {
        std::fs::remove_file(path).map_err(|e| format!("replacing {}: {e}", path.display()))?;
    }
    let conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
    conn.execute_batch(
        "PRAGMA application_id = 1196444487; PRAGMA user_version = 10300;
         CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY,
           organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL,
           definition TEXT NOT NULL, description TEXT);
         INSERT INTO gpkg_spatial_ref_sys VALUES
           ('Undefined cartesian SRS', -1, 'NONE', -1, 'undefined', 'undefined cartesian coordinate reference system'),
           ('Undefined geographic SRS', 0, 'NONE', 0, 'undefined', 'undefined geographic coordinate reference system'),
           ('WGS 84 geodetic', 4326, 'EPSG', 4326, 'GEOGCS[\"WGS 84\",DATUM[\"WGS_1984\",SPHEROID[\"WGS 84\",6378137,298.257223563,AUTHORITY[\"EPSG\",\"7030\"]],AUTHORITY[\"EPSG\",\"6326\"]],PRIMEM[\"Greenwich\",0,AUTHORITY[\"EPSG\",\"8901\"]],UNIT[\"degree\",0.0174532925199433,AUTHORITY[\"EPSG\",\"9122\"]],AXIS[\"Latitude\",NORTH],AXIS[\"Longitude\",EAST],AUTHORITY[\"EPSG\",\"4326\"]]', 'longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid');
         CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL,
           identifier TEXT UNIQUE, description TEXT DEFAULT '',
           last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
           min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE,
           srs_id INTEGER, CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
         CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL,
           geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
           CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
           CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
           CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));",
    )
    .map_err(|e| format!("creating the GeoPackage tables: {e}"))?;
    Ok(conn)
}

/// Adds the feature table `table` (EPSG:4326) to a GeoPackage made by [`create`]: rows of
/// `(geometry, values)` in `columns` order. Returns the number of features written.
pub fn add_table(
    conn: &mut rusqlite::Connection,
    table: &str,
    geometry_type: &str,
    columns: &[Column],
    rows: impl Iterator<Item = (geo::Geometry<f64>, Vec<rusqlite::types::Value>)>,
) -> Result<usize, String> {
    let q = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
    let cols: String = columns.iter().fold(String::new(), |mut out, c| {
        use std::fmt::Write as _;
        let _ = write!(out, ", {} {}", q(&c.name), c.sql_type);
        out
    });
    conn.execute_batch(&format!(
        "CREATE TABLE {t} (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, geom {gt}{cols});",
        t = q(table),
        gt = geometry_type,
    ))
    .map_err(|e| format!("creating the feature table {table}: {e}"))?;
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    let mut n = 0;
    let (mut min_x, mut min_y, mut max_x, mut max_y) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    {
        let placeholders: String = (0..=columns.len())
            .map(|i| format!("?{}", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let names: String = columns.iter().fold(String::new(), |mut out, c| {
            out.push_str(", ");
            out.push_str(&q(&c.name));
            out
        });
        let mut stmt = tx
            .prepare(&format!(
                "INSERT INTO {} (geom{names}) VALUES ({placeholders})",
                q(table)
            ))
            .map_err(|e| e.to_string())?;
        for (g, mut values) in rows {
            use geo::BoundingRect;
            if let Some(r) = g.bounding_rect() {
                min_x = min_x.min(r.min().x);
                min_y = min_y.min(r.min().y);
                max_x = max_x.max(r.max().x);
                max_y = max_y.max(r.max().y);
            }
            let blob = encode_geometry(&g)?;
            values.insert(0, rusqlite::types::Value::Blob(blob));
            stmt.execute(rusqlite::params_from_iter(values))
                .map_err(|e| format!("writing feature {}: {e}", n + 1))?;
            n += 1;
        }
    }
    let extent = |v: f64| if n == 0 { None } else { Some(v) };
    tx.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, min_x, min_y, max_x, max_y, srs_id)
         VALUES (?1, 'features', ?1, ?2, ?3, ?4, ?5, ?6, 4326)",
        rusqlite::params![table, format!("faro {table}"), extent(min_x), extent(min_y), extent(max_x), extent(max_y)],
    )
    .map_err(|e| e.to_string())?;
    tx.execute(
        "INSERT INTO gpkg_geometry_columns VALUES (?1, 'geom', ?2, 4326, 0, 0)",
        rusqlite::params![table, geometry_type],
    )
    .map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_blobs_round_trip() {
        let square: geo::Geometry<f64> =
            geo::wkt!(POLYGON((12.1 45.6, 12.2 45.6, 12.2 45.7, 12.1 45.7, 12.1 45.6))).into();
        let point: geo::Geometry<f64> = geo::Point::new(12.25, 45.67).into();
        for g in [square, point] {
            let blob = encode_geometry(&g).unwrap();
            assert_eq!(decode_geometry(&blob).unwrap(), Some(g));
        }
        assert!(decode_geometry(b"XX").is_err());
    }
}
