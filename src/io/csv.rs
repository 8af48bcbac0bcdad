//! CSV with lon/lat columns or a WKT column, as partners' spreadsheets are saved.
//!
//! Detected unless set by flag: the encoding (a file that is not valid UTF-8 is read as
//! Windows-1252), the delimiter (`,`, `;` or tab, whichever the header line has most of,
//! outside quotes) and the decimal comma (`45,67` in a coordinate cell that has no point).
//! Coordinate columns are found by common names (`lon`, `lng`, `longitude`, `x`,
//! `longitudine`; `lat`, `latitude`, `y`, `latitudine`; `wkt`, `geom`, `geometry`,
//! `the_geom`) in any case, or named with `--map lon=… --map lat=…` / `--map wkt=…`.

use std::io::Read;
use std::path::Path;

use serde_json::{Map, Value};

use super::{Encoding, ImportError, Preparer, SourceGeometry, SourceRecord};

const LON_NAMES: &[&str] = &["lon", "lng", "long", "longitude", "longitudine", "x"];
const LAT_NAMES: &[&str] = &["lat", "latitude", "latitudine", "y"];
const WKT_NAMES: &[&str] = &["wkt", "geom", "geometry", "the_geom", "geometria"];

/// The text of a file: UTF-8 (a byte order mark dropped), or Windows-1252 when it is not
/// valid UTF-8 or `encoding` says so.
pub fn decode(bytes: &[u8], encoding: Option<Encoding>) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match encoding {
        Some(Encoding::Windows1252) => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
        Some(Encoding::Utf8) => String::from_utf8_lossy(bytes).into_owned(),
        None => match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
        },
    }
}

/// The delimiter the header line uses most, outside quotes (`,` when it has none).
pub fn detect_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or_default();
    let mut counts = [0_usize; 3];
    let mut quoted = false;
    for c in header.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let (best, _) = counts
        .iter()
        .enumerate()
        .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))
        .unwrap_or((0, &0));
    [b',', b';', b'\t'][best]
}

/// Parses a coordinate cell; with `decimal_comma` `None`, `45,67` is read as `45.67` when the
/// cell has a comma and no point.
pub fn parse_number(cell: &str, decimal_comma: Option<bool>) -> Option<f64> {
    let t = cell.trim();
    let comma = match decimal_comma {
        Some(c) => c,
        None => t.contains(',') && !t.contains('.'),
    };
    if comma {
        t.replace(',', ".").parse().ok()
    } else {
        t.parse().ok()
    }
}

enum Coords {
    LonLat(usize, usize),
    Wkt(usize),
}

fn find(header: &[String], mapped: Option<&String>, names: &[&str]) -> Option<usize> {
    match mapped {
        Some(m) => header.iter().position(|h| h == m),
        None => names
            .iter()
            .find_map(|n| header.iter().position(|h| h.trim().eq_ignore_ascii_case(n))),
    }
}

/// Reads a CSV file into `preparer`.
pub fn read(
    path: &Path,
    preparer: &mut Preparer,
    progress: &indicatif::ProgressBar,
) -> Result<(), ImportError> {
    let mut bytes = Vec::new();
    progress
        .wrap_read(std::fs::File::open(path).map_err(|e| ImportError::io(path, e))?)
        .read_to_end(&mut bytes)
        .map_err(|e| ImportError::io(path, e))?;
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return Err(ImportError::Binary {
            path: path.to_owned(),
            expected: "CSV text",
        });
    }
    let text = decode(&bytes, preparer.options().encoding);
    drop(bytes);
    read_text(&text, path, preparer)
}

/// Reads CSV text into `preparer` (`path` only names it in messages).
pub fn read_text(text: &str, path: &Path, preparer: &mut Preparer) -> Result<(), ImportError> {
    if text.trim().is_empty() {
        return Err(ImportError::NoRecords {
            path: path.to_owned(),
        });
    }
    let options = preparer.options().clone();
    let delimiter = options
        .csv
        .delimiter
        .unwrap_or_else(|| detect_delimiter(text));
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(::csv::Trim::Headers)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ImportError::format(path, format!("reading the header line: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    let lon = find(&header, options.map.get("lon"), LON_NAMES);
    let lat = find(&header, options.map.get("lat"), LAT_NAMES);
    let wkt = find(&header, options.map.get("wkt"), WKT_NAMES);
    for key in ["lon", "lat", "wkt"] {
        if let Some(col) = options.map.get(key)
            && !header.contains(col)
        {
            return Err(ImportError::format(
                path,
                format!(
                    "--map {key}={col}: no such column; the header has: {}",
                    header.join(", ")
                ),
            ));
        }
    }
    let coords = match (lon, lat, wkt) {
        (Some(x), Some(y), _) if !options.map.contains_key("wkt") => Coords::LonLat(x, y),
        (_, _, Some(w)) => Coords::Wkt(w),
        _ => {
            return Err(ImportError::format(
                path,
                format!(
                    "no coordinate columns: expected longitude and latitude columns ({} / {}) or \
                     a WKT column ({}), or name them with --map lon=COLUMN --map lat=COLUMN or \
                     --map wkt=COLUMN; the header has: {}",
                    LON_NAMES.join(", "),
                    LAT_NAMES.join(", "),
                    WKT_NAMES.join(", "),
                    header.join(", ")
                ),
            ));
        }
    };
    preparer.begin(None).map_err(|source| ImportError::Crs {
        path: path.to_owned(),
        source,
    })?;
    let coordinate_columns: Vec<usize> = match coords {
        Coords::LonLat(x, y) => vec![x, y],
        Coords::Wkt(w) => vec![w],
    };
    for (i, row) in reader.records().enumerate() {
        let number = i + 1;
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                preparer.record_problem(number, "row", e.to_string());
                continue;
            }
        };
        if row.len() != header.len() {
            let line = row.position().map_or(0, ::csv::Position::line);
            // The row's external id, when it is the first column: a cell missing or one too
            // many (an unquoted separator) further on cannot have moved it.
            let id = (header.first().map(String::as_str) == Some(preparer.id_column()))
                .then(|| row.get(0))
                .flatten()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            preparer.record_problem_of(
                number,
                id,
                "row",
                format!(
                    "line {line} has {} columns, the header has {}",
                    row.len(),
                    header.len()
                ),
            );
            continue;
        }
        let mut properties = Map::new();
        for (c, (name, cell)) in header.iter().zip(row.iter()).enumerate() {
            if !coordinate_columns.contains(&c) {
                properties.insert(name.clone(), Value::String(cell.to_owned()));
            }
        }
        let geometry = match coords {
            Coords::LonLat(x, y) => {
                let (xs, ys) = (
                    row.get(x).unwrap_or_default(),
                    row.get(y).unwrap_or_default(),
                );
                if xs.trim().is_empty() && ys.trim().is_empty() {
                    SourceGeometry::Missing
                } else {
                    match (
                        parse_number(xs, options.csv.decimal_comma),
                        parse_number(ys, options.csv.decimal_comma),
                    ) {
                        (Some(x), Some(y)) => {
                            SourceGeometry::Geo(geo::Geometry::Point(geo::Point::new(x, y)))
                        }
                        (None, _) => SourceGeometry::Invalid {
                            field: header[x].clone(),
                            reason: "not a number".to_owned(),
                        },
                        (_, None) => SourceGeometry::Invalid {
                            field: header[y].clone(),
                            reason: "not a number".to_owned(),
                        },
                    }
                }
            }
            Coords::Wkt(w) => {
                let cell = row.get(w).unwrap_or_default().trim();
                if cell.is_empty() {
                    SourceGeometry::Missing
                } else {
                    parse_wkt(cell, &header[w])
                }
            }
        };
        preparer.record(SourceRecord {
            number,
            feature_id: None,
            properties,
            geometry,
        });
    }
    Ok(())
}

/// A WKT cell as a geometry (`SRID=…;` prefixes of EWKT are dropped).
pub fn parse_wkt(cell: &str, column: &str) -> SourceGeometry {
    use geozero::ToGeo;
    let text = match cell.split_once(';') {
        Some((srid, rest)) if srid.trim().to_ascii_uppercase().starts_with("SRID=") => rest,
        _ => cell,
    };
    match geozero::wkt::Wkt(text).to_geo() {
        Ok(g) => SourceGeometry::Geo(g),
        Err(e) => SourceGeometry::Invalid {
            field: column.to_owned(),
            reason: format!("not WKT: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_is_the_one_the_header_uses_most() {
        assert_eq!(detect_delimiter("a;b;c\n1,5;2;3"), b';');
        assert_eq!(detect_delimiter("a,b,c\n"), b',');
        assert_eq!(detect_delimiter("a\tb\n"), b'\t');
        assert_eq!(detect_delimiter("\"x;y\",b\n"), b',');
    }

    #[test]
    fn decimal_commas_are_read_only_where_unambiguous() {
        assert_eq!(parse_number("45,67", None), Some(45.67));
        assert_eq!(parse_number(" 12.5 ", None), Some(12.5));
        assert_eq!(parse_number("45,67", Some(false)), None);
        assert_eq!(parse_number("1.234,5", None), None);
    }

    #[test]
    fn text_that_is_not_utf8_is_read_as_windows_1252() {
        assert_eq!(decode(b"Citt\xe0", None), "Città");
        assert_eq!(decode("Città".as_bytes(), None), "Città");
        assert_eq!(decode(b"\xEF\xBB\xBFa", None), "a");
    }
}
