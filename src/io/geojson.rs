//! GeoJSON (RFC 7946) read as a stream: one Feature in memory at a time, never the whole
//! document.
//!
//! A FeatureCollection's `features` array is walked by a serde visitor that hands each Feature
//! to the [`Preparer`] as it is parsed; a single Feature document works too. A legacy `crs`
//! member (as GDAL writes for projected data) is honoured when it comes before `features`.

use std::fmt;
use std::io::{BufReader, Read};
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{Crs, ImportError, Preparer, SourceGeometry, SourceRecord};

/// Reads a GeoJSON file into `preparer`.
pub fn read(
    path: &Path,
    preparer: &mut Preparer,
    progress: &indicatif::ProgressBar,
) -> Result<(), ImportError> {
    let mut file = std::fs::File::open(path).map_err(|e| ImportError::io(path, e))?;
    let mut head = [0_u8; 4096];
    let n = read_head(&mut file, &mut head).map_err(|e| ImportError::io(path, e))?;
    if head[..n].contains(&0) {
        return Err(ImportError::Binary {
            path: path.to_owned(),
            expected: "GeoJSON",
        });
    }
    if head[..n].iter().all(u8::is_ascii_whitespace) {
        return Err(ImportError::NoRecords {
            path: path.to_owned(),
        });
    }
    let file = std::fs::File::open(path).map_err(|e| ImportError::io(path, e))?;
    let reader = BufReader::with_capacity(1 << 16, progress.wrap_read(file));
    read_from(reader, path, preparer)
}

fn read_head(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = file.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

/// Reads GeoJSON from any reader (`path` only names it in messages).
pub fn read_from(
    reader: impl Read,
    path: &Path,
    preparer: &mut Preparer,
) -> Result<(), ImportError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut state = State {
        preparer,
        began: false,
        crs_error: None,
        count: 0,
    };
    let outcome = DocSeed { state: &mut state }.deserialize(&mut de);
    let json_error = |e: serde_json::Error| ImportError::Json {
        path: path.to_owned(),
        message: e.to_string(),
    };
    if let Some(e) = state.crs_error.take() {
        return Err(ImportError::Crs {
            path: path.to_owned(),
            source: e,
        });
    }
    match outcome.map_err(json_error)? {
        Doc::Collection => {}
        Doc::Feature(f) => {
            state.begin(None);
            if let Some(e) = state.crs_error.take() {
                return Err(ImportError::Crs {
                    path: path.to_owned(),
                    source: e,
                });
            }
            state.feature(Value::Object(f));
        }
        Doc::Other(what) => {
            return Err(ImportError::format(
                path,
                format!("expected a GeoJSON Feature or FeatureCollection, got {what}"),
            ));
        }
    }
    de.end().map_err(json_error)?;
    if !state.began {
        state.begin(None);
    }
    if let Some(e) = state.crs_error.take() {
        return Err(ImportError::Crs {
            path: path.to_owned(),
            source: e,
        });
    }
    Ok(())
}

struct State<'p> {
    preparer: &'p mut Preparer,
    began: bool,
    crs_error: Option<super::CrsError>,
    count: usize,
}

impl State<'_> {
    fn begin(&mut self, crs: Option<Crs>) {
        if !self.began {
            self.began = true;
            if let Err(e) = self.preparer.begin(crs) {
                self.crs_error = Some(e);
            }
        }
    }

    fn feature(&mut self, value: Value) {
        self.count += 1;
        let number = self.count;
        let Value::Object(mut obj) = value else {
            self.preparer
                .record_problem(number, "feature", "expected a GeoJSON Feature object");
            return;
        };
        match obj.get("type").and_then(Value::as_str) {
            Some("Feature") => {}
            Some(other) => {
                let other = other.to_owned();
                self.preparer.record_problem(
                    number,
                    "type",
                    format!("expected \"Feature\", got \"{other}\""),
                );
                return;
            }
            None => {
                self.preparer
                    .record_problem(number, "type", "missing; expected \"Feature\"");
                return;
            }
        }
        let feature_id = match obj.remove("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => {
                self.preparer
                    .record_problem(number, "id", "must be a string or a number");
                return;
            }
        };
        let geometry = match obj.remove("geometry") {
            None | Some(Value::Null) => SourceGeometry::Missing,
            Some(g) => SourceGeometry::GeoJson(g),
        };
        let properties = match obj.remove("properties") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => {
                self.preparer
                    .record_problem(number, "properties", "must be an object");
                return;
            }
        };
        self.preparer.record(SourceRecord {
            number,
            feature_id,
            properties,
            geometry,
        });
    }
}

enum Doc {
    Collection,
    Feature(Map<String, Value>),
    Other(String),
}

struct DocSeed<'a, 'p> {
    state: &'a mut State<'p>,
}

impl<'de> DeserializeSeed<'de> for DocSeed<'_, '_> {
    type Value = Doc;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Doc, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocSeed<'_, '_> {
    type Value = Doc;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a GeoJSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc, A::Error> {
        let mut rest = Map::new();
        let mut saw_features = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "features" {
                saw_features = true;
                match legacy_crs(&rest) {
                    Ok(c) => self.state.begin(c),
                    Err(e) => {
                        self.state.began = true;
                        self.state.crs_error = Some(e);
                    }
                }
                if self.state.crs_error.is_some() {
                    map.next_value::<IgnoredAny>()?;
                } else {
                    map.next_value_seed(FeaturesSeed {
                        state: &mut *self.state,
                    })?;
                }
            } else {
                let v: Value = map.next_value()?;
                rest.insert(key, v);
            }
        }
        let ty = rest.get("type").and_then(Value::as_str).map(str::to_owned);
        match ty.as_deref() {
            Some("FeatureCollection") if saw_features => Ok(Doc::Collection),
            Some("FeatureCollection") => Ok(Doc::Other(
                "a FeatureCollection without a `features` array".to_owned(),
            )),
            Some("Feature") => Ok(Doc::Feature(rest)),
            Some(other) => Ok(Doc::Other(format!("an object of type \"{other}\""))),
            None => Ok(Doc::Other("an object without a `type`".to_owned())),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Doc, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Doc::Other(
            "an array (for HSDS 3.0 JSON, pass --format hsds)".to_owned(),
        ))
    }

    fn visit_str<E>(self, _: &str) -> Result<Doc, E> {
        Ok(Doc::Other("a string".to_owned()))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Doc, E> {
        Ok(Doc::Other("a boolean".to_owned()))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Doc, E> {
        Ok(Doc::Other("a number".to_owned()))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Doc, E> {
        Ok(Doc::Other("a number".to_owned()))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Doc, E> {
        Ok(Doc::Other("a number".to_owned()))
    }
    fn visit_unit<E>(self) -> Result<Doc, E> {
        Ok(Doc::Other("null".to_owned()))
    }
}

/// The system a legacy `"crs": {"type": "name", "properties": {"name": "…"}}` names.
fn legacy_crs(members: &Map<String, Value>) -> Result<Option<Crs>, super::CrsError> {
    match members
        .get("crs")
        .and_then(|c| c.pointer("/properties/name"))
        .and_then(Value::as_str)
    {
        Some(name) => Crs::parse(name).map(Some),
        None => Ok(None),
    }
}

struct FeaturesSeed<'a, 'p> {
    state: &'a mut State<'p>,
}

impl<'de> DeserializeSeed<'de> for FeaturesSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for FeaturesSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of GeoJSON Features (`features`)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(feature) = seq.next_element::<Value>()? {
            self.state.feature(feature);
        }
        Ok(())
    }
}
