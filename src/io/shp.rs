//! Shapefiles, plain (`.shp` with `.dbf`, `.prj`, `.cpg` beside it) or zipped, as ISTAT
//! publishes its boundaries.
//!
//! The coordinate system comes from the `.prj` (or `--crs`; without either the file is
//! refused); the DBF text encoding from `--encoding`, else the `.cpg`, else the DBF code page
//! mark.

use std::io::{Cursor, Read};
use std::path::Path;

use serde_json::{Map, Value};

use super::{Crs, Encoding, ImportError, Preparer, SourceGeometry, SourceRecord};

/// The parts of one Shapefile, in memory.
struct Parts {
    name: String,
    shp: Vec<u8>,
    dbf: Vec<u8>,
    prj: Option<String>,
    cpg: Option<String>,
}

/// Reads a Shapefile (or a zip holding one) into `preparer`.
pub fn read(
    path: &Path,
    preparer: &mut Preparer,
    progress: &indicatif::ProgressBar,
) -> Result<(), ImportError> {
    let is_zip = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    let parts = if is_zip {
        from_zip(path, preparer.options().layer.as_deref())?
    } else {
        from_dir(path)?
    };
    read_parts(&parts, path, preparer, progress)
}

fn sibling(path: &Path, ext: &str) -> Option<std::path::PathBuf> {
    [ext.to_owned(), ext.to_ascii_uppercase()]
        .iter()
        .map(|e| path.with_extension(e))
        .find(|p| p.exists())
}

fn from_dir(path: &Path) -> Result<Parts, ImportError> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| ImportError::io(p, e));
    let shp = read(path)?;
    let dbf_path = sibling(path, "dbf").ok_or_else(|| {
        ImportError::format(
            path,
            "no .dbf file beside it: a Shapefile needs its attributes",
        )
    })?;
    let dbf = read(&dbf_path)?;
    let text = |ext| -> Result<Option<String>, ImportError> {
        sibling(path, ext)
            .map(|p| read(&p).map(|b| String::from_utf8_lossy(&b).into_owned()))
            .transpose()
    };
    Ok(Parts {
        name: path.display().to_string(),
        shp,
        dbf,
        prj: text("prj")?,
        cpg: text("cpg")?,
    })
}

fn from_zip(path: &Path, layer: Option<&str>) -> Result<Parts, ImportError> {
    let file = std::fs::File::open(path).map_err(|e| ImportError::io(path, e))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| ImportError::format(path, format!("not a readable zip file: {e}")))?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(Result::ok)
        .map(std::borrow::Cow::into_owned)
        .collect();
    let shps: Vec<&String> = names
        .iter()
        .filter(|n| n.to_ascii_lowercase().ends_with(".shp") && !n.starts_with("__MACOSX"))
        .collect();
    let stem_of = |n: &str| n[..n.len() - 4].to_owned();
    let chosen = match (layer, shps.as_slice()) {
        (_, []) => return Err(ImportError::format(path, "the zip holds no .shp file")),
        (None, [one]) => stem_of(one),
        (Some(l), _) => shps
            .iter()
            .map(|n| stem_of(n))
            .find(|s| {
                s.eq_ignore_ascii_case(l)
                    || s.rsplit('/')
                        .next()
                        .is_some_and(|b| b.eq_ignore_ascii_case(l))
            })
            .ok_or_else(|| {
                ImportError::format(
                    path,
                    format!(
                        "--layer {l}: no such Shapefile in the zip; it holds: {}",
                        shps.iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?,
        (None, many) => {
            return Err(ImportError::format(
                path,
                format!(
                    "the zip holds several Shapefiles; choose one with --layer: {}",
                    many.iter()
                        .map(|s| stem_of(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    };
    let mut part = |ext: &str| -> Result<Option<Vec<u8>>, ImportError> {
        let Some(name) = names.iter().find(|n| {
            n.len() == chosen.len() + 4
                && n.to_ascii_lowercase() == format!("{}.{ext}", chosen.to_ascii_lowercase())
        }) else {
            return Ok(None);
        };
        let mut entry = zip
            .by_name(name)
            .map_err(|e| ImportError::format(path, format!("reading {name} in the zip: {e}")))?;
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| ImportError::format(path, format!("reading {name} in the zip: {e}")))?;
        Ok(Some(bytes))
    };
    let shp = part("shp")?.unwrap_or_default();
    let dbf = part("dbf")?.ok_or_else(|| {
        ImportError::format(path, format!("{chosen}.dbf is missing from the zip"))
    })?;
    let text = |b: Option<Vec<u8>>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
    let prj = text(part("prj")?);
    let cpg = text(part("cpg")?);
    Ok(Parts {
        name: format!("{}:{chosen}.shp", path.display()),
        shp,
        dbf,
        prj,
        cpg,
    })
}

fn dbf_encoding(
    forced: Option<Encoding>,
    cpg: Option<&str>,
) -> Option<dbase::encoding::DynEncoding> {
    if let Some(e) = forced {
        return Some(dbase::encoding::DynEncoding::from(
            dbase::encoding::EncodingRs::from(e.encoding_rs()),
        ));
    }
    cpg.and_then(dbase::encoding::DynEncoding::from_name)
}

fn read_parts(
    parts: &Parts,
    path: &Path,
    preparer: &mut Preparer,
    progress: &indicatif::ProgressBar,
) -> Result<(), ImportError> {
    let shp_err =
        |e: shapefile::Error| ImportError::format(path, format!("reading {}: {e}", parts.name));
    let crs = match (&parts.prj, preparer.options().crs) {
        (Some(prj), _) => match Crs::from_wkt(prj) {
            Ok(c) => Some(c),
            // The flag decides when the .prj is not understood.
            Err(_) if preparer.options().crs.is_some() => None,
            Err(source) => {
                return Err(ImportError::Crs {
                    path: path.to_owned(),
                    source,
                });
            }
        },
        (None, Some(_)) => None,
        (None, None) => {
            return Err(ImportError::MissingPrj {
                path: path.to_owned(),
            });
        }
    };
    preparer.begin(crs).map_err(|source| ImportError::Crs {
        path: path.to_owned(),
        source,
    })?;
    let shapes = shapefile::ShapeReader::new(Cursor::new(parts.shp.as_slice())).map_err(shp_err)?;
    let mut builder = dbase::ReaderBuilder::new();
    if let Some(e) = dbf_encoding(preparer.options().encoding, parts.cpg.as_deref()) {
        builder = builder.with_encoding(e);
    }
    let dbf = builder
        .build(Cursor::new(parts.dbf.as_slice()))
        .map_err(|e| {
            ImportError::format(path, format!("reading the .dbf of {}: {e}", parts.name))
        })?;
    let mut reader = shapefile::Reader::new(shapes, dbf);
    let total = reader.shape_count().unwrap_or(0);
    super::count_records(progress, total);
    for (i, item) in reader.iter_shapes_and_records().enumerate() {
        let number = i + 1;
        progress.inc(1);
        let (shape, record) = match item {
            Ok(x) => x,
            Err(e) => {
                preparer.record_problem(number, "record", format!("unreadable: {e}"));
                continue;
            }
        };
        let geometry = match shape {
            shapefile::Shape::NullShape => SourceGeometry::Missing,
            shape => match geo::Geometry::<f64>::try_from(shape) {
                Ok(g) => SourceGeometry::Geo(g),
                Err(e) => SourceGeometry::Invalid {
                    field: "geometry".to_owned(),
                    reason: format!("unreadable shape: {e}"),
                },
            },
        };
        let mut properties = Map::new();
        for (name, value) in record {
            properties.insert(name, field_value(value));
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

fn field_value(v: dbase::FieldValue) -> Value {
    use dbase::FieldValue as F;
    let num = |f: f64| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    match v {
        F::Character(s) => s.map_or(Value::Null, Value::String),
        F::Memo(s) => Value::String(s),
        F::Numeric(n) => n.map_or(Value::Null, num),
        F::Float(n) => n.map_or(Value::Null, |f| num(f64::from(f))),
        F::Logical(b) => b.map_or(Value::Null, Value::Bool),
        F::Date(d) => d.map_or(Value::Null, |d| {
            Value::String(format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()))
        }),
        F::Integer(i) => Value::from(i),
        F::Currency(f) | F::Double(f) => num(f),
        F::DateTime(dt) => {
            let d = dt.date();
            Value::String(format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()))
        }
    }
}
