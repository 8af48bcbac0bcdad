//! Records out as GeoJSON, CSV, GeoPackage 1.3 or `FlatGeobuf`, for QGIS and spreadsheets.
//!
//! The records come from a [`crate::index::query::View`], so an export holds exactly what its
//! caller may see. Every format carries the same columns: `id`, every field of the collection
//! (lists joined with `;`), `created_at`, `updated_at`, `version`; geometry as WGS84 lon/lat
//! (EPSG:4326). In CSV, services (points) have `lon` and `lat` columns and the other
//! collections a `wkt` column. Everything written here reads back through `faro import`
//! into the same records.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::fields::{self, FieldType};
use crate::domain::{Collection, GeometryRule, Record};

/// The formats faro writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    GeoJson,
    Csv,
    GeoPackage,
    FlatGeobuf,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "geojson" | "json" => Ok(Self::GeoJson),
            "csv" => Ok(Self::Csv),
            "gpkg" | "geopackage" => Ok(Self::GeoPackage),
            "fgb" | "flatgeobuf" => Ok(Self::FlatGeobuf),
            other => Err(format!(
                "unknown export format `{other}`; expected geojson, csv, gpkg or fgb"
            )),
        }
    }
}

impl ExportFormat {
    /// Whether the format is written to a file only (not to a pipe).
    pub fn needs_file(self) -> bool {
        matches!(self, Self::GeoPackage)
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing CSV: {0}")]
    Csv(#[from] ::csv::Error),
    #[error("writing the GeoPackage {path}: {message}")]
    GeoPackage { path: String, message: String },
    #[error("writing FlatGeobuf: {0}")]
    FlatGeobuf(String),
    #[error("a GeoPackage is written to a file: pass --output FILE.gpkg")]
    NeedsFile,
}

/// The JSON value of a record's field (`Null` when unset).
fn field_value(record: &Record, field: &str, cache: &serde_json::Map<String, Value>) -> Value {
    let _ = record;
    cache.get(field).cloned().unwrap_or(Value::Null)
}

/// A field value as text for CSV (and for list columns in GeoPackage and `FlatGeobuf`).
fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Writes `records` of `collection` as a GeoJSON FeatureCollection, one Feature at a time.
pub fn write_geojson(records: &[Arc<Record>], mut out: impl Write) -> Result<(), ExportError> {
    out.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")?;
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut out, &crate::domain::feature::FeatureView::new(r))
            .map_err(std::io::Error::from)?;
    }
    out.write_all(b"]}\n")?;
    out.flush()?;
    Ok(())
}

/// Writes `records` of `collection` as CSV (see the module docs for the columns).
pub fn write_csv(
    collection: Collection,
    records: &[Arc<Record>],
    out: impl Write,
) -> Result<(), ExportError> {
    let points = collection.geometry_rule() == GeometryRule::PointOnly;
    let mut w = ::csv::Writer::from_writer(out);
    let mut header = vec!["id".to_owned()];
    if points {
        header.extend(["lon".to_owned(), "lat".to_owned()]);
    } else {
        header.push("wkt".to_owned());
    }
    header.extend(
        fields::fields(collection)
            .iter()
            .map(|(f, _)| (*f).to_owned()),
    );
    header.extend(["created_at", "updated_at", "version"].map(str::to_owned));
    w.write_record(&header)?;
    for r in records {
        let attrs = r.attributes().to_json();
        let mut row = vec![r.id().to_string()];
        if points {
            let (lon, lat) = match r.geometry() {
                geo::Geometry::Point(p) => (p.x(), p.y()),
                _ => (f64::NAN, f64::NAN),
            };
            row.extend([format!("{lon}"), format!("{lat}")]);
        } else {
            row.push(wkt_of(r.geometry()));
        }
        for (f, _) in fields::fields(collection) {
            row.push(text_of(&field_value(r, f, &attrs)));
        }
        let meta = r.meta();
        row.extend([
            timestamp(meta.created_at),
            timestamp(meta.updated_at),
            meta.version.to_string(),
        ]);
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// WKT of a geometry with every coordinate written in full (shortest round-trip form).
fn wkt_of(g: &geo::Geometry<f64>) -> String {
    use std::fmt::Write as _;
    fn ring(out: &mut String, ls: &geo::LineString<f64>) {
        out.push('(');
        for (i, c) in ls.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{} {}", c.x, c.y);
        }
        out.push(')');
    }
    fn polygon(out: &mut String, p: &geo::Polygon<f64>) {
        out.push('(');
        ring(out, p.exterior());
        for hole in p.interiors() {
            out.push(',');
            ring(out, hole);
        }
        out.push(')');
    }
    let mut out = String::new();
    match g {
        geo::Geometry::Point(p) => {
            let _ = write!(out, "POINT({} {})", p.x(), p.y());
        }
        geo::Geometry::Polygon(p) => {
            out.push_str("POLYGON");
            polygon(&mut out, p);
        }
        geo::Geometry::MultiPolygon(mp) => {
            out.push_str("MULTIPOLYGON(");
            for (i, p) in mp.0.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                polygon(&mut out, p);
            }
            out.push(')');
        }
        // No collection holds other types.
        _ => out.push_str("GEOMETRYCOLLECTION EMPTY"),
    }
    out
}

fn sql_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Int => "INTEGER",
        FieldType::Bool => "BOOLEAN",
        FieldType::Date => "DATE",
        _ => "TEXT",
    }
}

/// Writes `records` of `collection` as a GeoPackage 1.3 at `path` (one feature table named
/// after the collection). Returns the number of features written.
pub fn write_gpkg(
    collection: Collection,
    records: &[Arc<Record>],
    path: &Path,
) -> Result<usize, ExportError> {
    let error = |message| ExportError::GeoPackage {
        path: path.display().to_string(),
        message,
    };
    let mut conn = super::gpkg::create(path).map_err(error)?;
    add_gpkg_table(&mut conn, collection.as_str(), collection, records).map_err(error)
}

/// Adds `records` of `collection` as the feature table `table` to a GeoPackage made by
/// [`super::gpkg::create`], with the columns of [`write_gpkg`].
pub fn add_gpkg_table(
    conn: &mut rusqlite::Connection,
    table: &str,
    collection: Collection,
    records: &[Arc<Record>],
) -> Result<usize, String> {
    use rusqlite::types::Value as Sql;
    let mut columns = vec![super::gpkg::Column {
        name: "id".to_owned(),
        sql_type: "TEXT",
    }];
    for (f, ty) in fields::fields(collection) {
        columns.push(super::gpkg::Column {
            name: (*f).to_owned(),
            sql_type: sql_type(*ty),
        });
    }
    for (name, sql_type) in [
        ("created_at", "DATETIME"),
        ("updated_at", "DATETIME"),
        ("version", "INTEGER"),
    ] {
        columns.push(super::gpkg::Column {
            name: name.to_owned(),
            sql_type,
        });
    }
    let geometry_type = match collection.geometry_rule() {
        GeometryRule::PointOnly => "POINT",
        _ => "GEOMETRY",
    };
    // The values of a chunk of records are made on every core, then written in order.
    let values = |r: &Arc<Record>| {
        let attrs = r.attributes().to_json();
        let mut values = vec![Sql::Text(r.id().to_string())];
        for (f, ty) in fields::fields(collection) {
            let v = field_value(r, f, &attrs);
            values.push(match (&v, ty) {
                (Value::Null, _) => Sql::Null,
                (Value::Array(items), _) if items.is_empty() => Sql::Null,
                (Value::Bool(b), _) => Sql::Integer(i64::from(*b)),
                (Value::Number(n), _) if n.is_i64() || n.is_u64() => {
                    Sql::Integer(n.as_i64().unwrap_or(i64::MAX))
                }
                (Value::Number(n), _) => Sql::Real(n.as_f64().unwrap_or(f64::NAN)),
                (other, _) => Sql::Text(text_of(other)),
            });
        }
        let meta = r.meta();
        // GeoPackage DATETIME is ISO 8601 with milliseconds (Requirement 5).
        let millis = |t: chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        values.push(Sql::Text(millis(meta.created_at)));
        values.push(Sql::Text(millis(meta.updated_at)));
        values.push(Sql::Integer(meta.version));
        Some((r.geometry().clone(), values))
    };
    let rows = records
        .chunks(16_384)
        .flat_map(|chunk| crate::par::filter_map(chunk, 2048, values));
    super::gpkg::add_table(conn, table, geometry_type, &columns, rows)
}

/// Writes `records` of `collection` as `FlatGeobuf` (EPSG:4326, with a spatial index).
pub fn write_fgb(
    collection: Collection,
    records: &[Arc<Record>],
    mut out: impl Write,
) -> Result<(), ExportError> {
    use flatgeobuf::{ColumnType, FgbCrs, FgbWriter, FgbWriterOptions, GeometryType};
    use geozero::{ColumnValue, PropertyProcessor};
    let err = |e: flatgeobuf::Error| ExportError::FlatGeobuf(e.to_string());
    let feature_err = |e: geozero::error::GeozeroError| ExportError::FlatGeobuf(e.to_string());
    let geometry_type = match collection.geometry_rule() {
        GeometryRule::PointOnly => GeometryType::Point,
        _ => GeometryType::Unknown,
    };
    let mut fgb = FgbWriter::create_with_options(
        collection.as_str(),
        geometry_type,
        FgbWriterOptions {
            write_index: true,
            detect_type: false,
            promote_to_multi: false,
            crs: FgbCrs {
                code: 4326,
                ..FgbCrs::default()
            },
            ..FgbWriterOptions::default()
        },
    )
    .map_err(err)?;
    let column_type = |ty: FieldType| match ty {
        FieldType::Int => ColumnType::Long,
        FieldType::Bool => ColumnType::Bool,
        _ => ColumnType::String,
    };
    fgb.add_column("id", ColumnType::String, |_, c| c.nullable = false);
    for (f, ty) in fields::fields(collection) {
        fgb.add_column(f, column_type(*ty), |_, c| c.nullable = true);
    }
    fgb.add_column("created_at", ColumnType::DateTime, |_, _| {});
    fgb.add_column("updated_at", ColumnType::DateTime, |_, _| {});
    fgb.add_column("version", ColumnType::Long, |_, _| {});
    for r in records {
        let attrs = r.attributes().to_json();
        let meta = r.meta();
        let (created, updated) = (timestamp(meta.created_at), timestamp(meta.updated_at));
        let id = r.id().to_string();
        let mut failure = None;
        fgb.add_feature_geom(r.geometry().clone(), |feat| {
            let mut put = |i: usize, name: &str, v: &ColumnValue| {
                if let Err(e) = feat.property(i, name, v) {
                    failure.get_or_insert(e.to_string());
                }
            };
            put(0, "id", &ColumnValue::String(&id));
            let mut i = 1;
            for (f, _) in fields::fields(collection) {
                let v = field_value(r, f, &attrs);
                match &v {
                    Value::Null => {}
                    Value::Array(items) if items.is_empty() => {}
                    Value::Bool(b) => put(i, f, &ColumnValue::Bool(*b)),
                    Value::Number(n) if n.is_i64() || n.is_u64() => {
                        put(i, f, &ColumnValue::Long(n.as_i64().unwrap_or(i64::MAX)));
                    }
                    other => put(i, f, &ColumnValue::String(&text_of(other))),
                }
                i += 1;
            }
            put(i, "created_at", &ColumnValue::DateTime(&created));
            put(i + 1, "updated_at", &ColumnValue::DateTime(&updated));
            put(i + 2, "version", &ColumnValue::Long(meta.version));
        })
        .map_err(feature_err)?;
        if let Some(message) = failure {
            return Err(ExportError::FlatGeobuf(message));
        }
    }
    fgb.write(&mut out).map_err(err)?;
    // A buffered file's last bytes: a failure here is the export's, not lost in a drop.
    out.flush()?;
    Ok(())
}

impl ExportFormat {
    /// The media type of the format.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::GeoJson => "application/geo+json",
            Self::Csv => "text/csv; charset=utf-8",
            Self::GeoPackage => "application/geopackage+sqlite3",
            Self::FlatGeobuf => "application/flatgeobuf",
        }
    }

    /// The file name extension of the format.
    pub fn extension(self) -> &'static str {
        match self {
            Self::GeoJson => "geojson",
            Self::Csv => "csv",
            Self::GeoPackage => "gpkg",
            Self::FlatGeobuf => "fgb",
        }
    }
}

/// `records` of `collection` in `format`, in memory (an HTTP response body). A GeoPackage is
/// an SQLite file: it is written to a private temporary file, read back and removed.
pub fn to_bytes(
    format: ExportFormat,
    collection: Collection,
    records: &[Arc<Record>],
) -> Result<Vec<u8>, ExportError> {
    let mut out = Vec::new();
    match format {
        ExportFormat::GeoJson => write_geojson(records, &mut out)?,
        ExportFormat::Csv => write_csv(collection, records, &mut out)?,
        ExportFormat::FlatGeobuf => write_fgb(collection, records, &mut out)?,
        ExportFormat::GeoPackage => {
            let mut nonce = [0_u8; 16];
            getrandom::fill(&mut nonce)
                .map_err(|e| ExportError::Io(std::io::Error::other(e.to_string())))?;
            let path = std::env::temp_dir().join(format!(
                "faro-export-{}-{}.gpkg",
                std::process::id(),
                hex::encode(nonce)
            ));
            let written = write_gpkg(collection, records, &path)
                .and_then(|_| std::fs::read(&path).map_err(ExportError::Io));
            let _ = std::fs::remove_file(&path);
            out = written?;
        }
    }
    Ok(out)
}
