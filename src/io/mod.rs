//! Import and export in the formats the network uses.
//!
//! Import: a reader ([`geojson`], [`csv`], [`shp`], [`gpkg`]) turns a file into
//! [`SourceRecord`]s (the file's own columns, geometry in the file's coordinate system); a
//! [`Preparer`] maps columns to faro's fields (`--map`), converts cell values to the types the
//! API takes ([`fields`]), reprojects to WGS84 ([`crs`]) and validates every record exactly as
//! the API does, collecting every problem in one [`Report`]. [`classify`] then compares
//! the records with the [`stored`] ones by id, so that a re-import updates instead of duplicating.
//!
//! Export ([`export`]): the records a [`crate::index::query::View`] lets the caller see, as
//! GeoJSON, CSV, GeoPackage 1.3 or `FlatGeobuf`.
//!
//! Positions are sensitive: no message of this module holds a coordinate value.

pub mod crs;
pub mod csv;
pub mod export;
pub mod fields;
pub mod geojson;
pub mod gpkg;
pub mod hsds;
pub mod shp;
pub mod territories;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::domain::{Attributes, Collection, FeatureInput, FieldError, RecordId, ValidGeometry};
use crate::storage::{Precondition, Store, StoreError, WriteOp};
pub use crs::{Crs, CrsError};

/// A file-level problem: the file cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is empty (0 bytes)")]
    ZeroBytes { path: PathBuf },
    #[error("{path} has no records to import")]
    NoRecords { path: PathBuf },
    #[error("{path} is a binary file, not {expected}")]
    Binary {
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{path} is not valid JSON: {message}")]
    Json { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Crs {
        path: PathBuf,
        #[source]
        source: CrsError,
    },
    #[error(
        "{path}: the coordinate system is unknown (no .prj file); pass --crs EPSG:CODE, like \
         --crs EPSG:32632 for ISTAT boundaries"
    )]
    MissingPrj { path: PathBuf },
    #[error(
        "cannot tell the format of {path} from its name; pass --format \
         geojson|csv|shp|gpkg|hsds"
    )]
    UnknownFormat { path: PathBuf },
    #[error("{0}")]
    Usage(String),
}

impl ImportError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ImportError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn format(path: &Path, message: impl Into<String>) -> Self {
        ImportError::Format {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// The formats faro reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    GeoJson,
    Csv,
    /// A Shapefile, or a zip holding one.
    Shapefile,
    GeoPackage,
    /// HSDS 3.0 JSON (services only; never guessed from the file name).
    Hsds,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "geojson" | "json" => Ok(Format::GeoJson),
            "csv" | "tsv" => Ok(Format::Csv),
            "shp" | "shapefile" | "zip" => Ok(Format::Shapefile),
            "gpkg" | "geopackage" => Ok(Format::GeoPackage),
            "hsds" => Ok(Format::Hsds),
            other => Err(format!(
                "unknown format `{other}`; expected geojson, csv, shp, gpkg or hsds"
            )),
        }
    }
}

impl Format {
    /// The format a file's name says.
    pub fn of_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "geojson" | "json" => Some(Format::GeoJson),
            "csv" | "tsv" | "txt" => Some(Format::Csv),
            "shp" | "zip" => Some(Format::Shapefile),
            "gpkg" => Some(Format::GeoPackage),
            _ => None,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Format::GeoJson => "feature",
            Format::Csv => "row",
            Format::Shapefile | Format::GeoPackage => "record",
            Format::Hsds => "service location",
        }
    }
}

/// How to read text files: delimiter, decimal separator and encoding, each detected unless
/// set.
#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    /// `,`, `;` or tab; detected from the header line when `None`.
    pub delimiter: Option<u8>,
    /// `Some(true)`: `45,67` is a number; `Some(false)`: never; `None`: accepted when the
    /// cell has a comma and no point.
    pub decimal_comma: Option<bool>,
}

/// The text encoding of a file: UTF-8, or Windows-1252 (as Italian spreadsheets are often
/// saved); detected when not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Windows1252,
}

impl std::str::FromStr for Encoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" => Ok(Encoding::Utf8),
            "windows-1252" | "cp1252" | "1252" | "latin1" | "latin-1" | "iso-8859-1" => {
                Ok(Encoding::Windows1252)
            }
            other => Err(format!(
                "unknown encoding `{other}`; expected utf-8 or windows-1252"
            )),
        }
    }
}

impl Encoding {
    pub(crate) fn encoding_rs(self) -> &'static encoding_rs::Encoding {
        match self {
            Encoding::Utf8 => encoding_rs::UTF_8,
            Encoding::Windows1252 => encoding_rs::WINDOWS_1252,
        }
    }
}

/// What the command line says about reading a file.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// `None`: from the file name.
    pub format: Option<Format>,
    /// faro field (or `lon`, `lat`, `wkt`) → column of the file; `A|B` takes the first of
    /// the columns that a record has.
    pub map: HashMap<String, String>,
    /// Fields set to one value on every record (`--set level=comune`).
    pub set: Vec<(String, String)>,
    /// The column holding the external id (a record's id in faro); `None`: the GeoJSON
    /// Feature id, or a column named `id`.
    pub id_field: Option<String>,
    /// Overrides the file's own coordinate system (or gives one where the file has none).
    pub crs: Option<Crs>,
    pub csv: CsvOptions,
    /// `None`: detected (CSV) or from the `.cpg`/DBF code page (Shapefile).
    pub encoding: Option<Encoding>,
    /// The layer of a GeoPackage, or the Shapefile in a zip, when there are several.
    pub layer: Option<String>,
    /// The most positions a geometry may have (the server's `max_vertices`).
    pub max_vertices: usize,
    /// Skip the heuristic that refuses positions that are in Italy only with latitude and
    /// longitude swapped.
    pub no_swap_check: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            format: None,
            map: HashMap::new(),
            set: Vec::new(),
            id_field: None,
            crs: None,
            csv: CsvOptions::default(),
            encoding: None,
            layer: None,
            max_vertices: crate::domain::DEFAULT_MAX_VERTICES,
            no_swap_check: false,
        }
    }
}

/// A record as a reader found it.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    /// 1-based position in the file (feature, data row or record).
    pub number: usize,
    /// The GeoJSON Feature `id`, if any.
    pub feature_id: Option<String>,
    /// The file's columns (or properties) by their own names.
    pub properties: Map<String, Value>,
    pub geometry: SourceGeometry,
}

/// The geometry of a source record, in the file's coordinate system.
#[derive(Debug, Clone)]
pub enum SourceGeometry {
    /// A GeoJSON geometry object, parsed as the API parses it.
    GeoJson(Value),
    Geo(geo::Geometry<f64>),
    /// No geometry (an empty cell, a null shape).
    Missing,
    /// A geometry that could not be read, and why.
    Invalid {
        field: String,
        reason: String,
    },
}

/// One problem with one record (or the whole file when `record` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub record: Option<usize>,
    pub id: Option<String>,
    pub field: String,
    pub reason: String,
}

/// Every problem found in a file, in file order, with the noun for its records.
#[derive(Debug, Clone, Default)]
pub struct Report {
    noun: &'static str,
    pub problems: Vec<Problem>,
    /// Facts worth saying that are not problems (columns ignored, the system reprojected
    /// from).
    pub notes: Vec<String>,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line per problem: `row 3 (id svc-9): field `capacity`: …`.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.problems.iter().map(|p| {
            let what = p
                .record
                .map_or_else(|| "file".to_owned(), |n| format!("{} {n}", self.noun));
            let id =
                p.id.as_ref()
                    .map(|i| format!(" (id {i})"))
                    .unwrap_or_default();
            format!("{what}{id}: field `{}`: {}", p.field, p.reason)
        })
    }

    /// The report as CSV: `record,id,field,reason`.
    pub fn write_csv(&self, out: impl std::io::Write) -> Result<(), ::csv::Error> {
        let mut w = ::csv::Writer::from_writer(out);
        w.write_record(["record", "id", "field", "reason"])?;
        for p in &self.problems {
            w.write_record([
                p.record.map(|n| n.to_string()).unwrap_or_default(),
                p.id.clone().unwrap_or_default(),
                p.field.clone(),
                p.reason.clone(),
            ])?;
        }
        w.flush()?;
        Ok(())
    }
}

/// Turns source records into validated features, collecting every problem.
#[derive(Debug)]
pub struct Preparer {
    collection: Collection,
    options: ReadOptions,
    /// The file's coordinate system, once the reader knows it.
    reprojector: Option<crs::Reprojector>,
    /// GeoJSON without `--map`/`--set`/`--id-field`: unknown properties are errors, as in
    /// the API. Tabular files, or any mapping: other columns are ignored and named in a note.
    strict: bool,
    inputs: Vec<FeatureInput>,
    report: Report,
    seen_ids: HashSet<RecordId>,
    ignored: Vec<String>,
    records: usize,
    /// Where validated features go in chunks, when streamed ([`Preparer::stream_to`]).
    sink: Option<tokio::sync::mpsc::Sender<Vec<FeatureInput>>>,
}

/// Features a streamed import hands on at a time.
pub const CHUNK: usize = 10_000;

/// The bounding box of Italy, loosely (lon 6..19, lat 35..48), for the swap heuristic.
fn in_italy(lon: f64, lat: f64) -> bool {
    (6.0..=19.0).contains(&lon) && (35.0..=48.0).contains(&lat)
}

impl Preparer {
    pub fn new(collection: Collection, format: Format, options: ReadOptions) -> Self {
        // With a mapping, the file's other columns are not faro's: ignored (and named).
        let strict = format == Format::GeoJson
            && options.map.is_empty()
            && options.set.is_empty()
            && options.id_field.is_none();
        Self {
            collection,
            options,
            reprojector: None,
            strict,
            inputs: Vec::new(),
            report: Report {
                noun: format.noun(),
                ..Report::default()
            },
            seen_ids: HashSet::new(),
            ignored: Vec::new(),
            records: 0,
            sink: None,
        }
    }

    /// Hands validated features to `sink` in chunks of [`CHUNK`] as they are read, instead of
    /// keeping them, for as long as the file has no problem (after the first problem nothing
    /// more is sent or kept: the receiver must then write nothing, which the report tells it).
    /// The last chunk goes at [`Preparer::finish`], which closes the channel. Call from a
    /// blocking thread.
    pub fn stream_to(&mut self, sink: tokio::sync::mpsc::Sender<Vec<FeatureInput>>) {
        self.sink = Some(sink);
    }

    fn flush(&mut self) {
        if !self.report.problems.is_empty() {
            self.inputs.clear();
            return;
        }
        if let Some(sink) = &self.sink
            && sink
                .blocking_send(std::mem::take(&mut self.inputs))
                .is_err()
        {
            // The writer stopped (its error is the one to report): read on for the report.
            self.sink = None;
        }
    }

    pub fn collection(&self) -> Collection {
        self.collection
    }

    pub fn options(&self) -> &ReadOptions {
        &self.options
    }

    /// Called by a reader before the first record: the file's own coordinate system
    /// (`None`: WGS84 unless `--crs` says otherwise).
    pub fn begin(&mut self, file_crs: Option<Crs>) -> Result<(), CrsError> {
        let crs = self.options.crs.or(file_crs).unwrap_or(Crs::Wgs84);
        if let (Some(flag), Some(file)) = (self.options.crs, file_crs)
            && flag != file
        {
            self.report.notes.push(format!(
                "--crs {flag} used instead of the file's own {file}"
            ));
        }
        if crs != Crs::Wgs84 {
            self.report
                .notes
                .push(format!("reprojected from {crs} to WGS84"));
        }
        self.reprojector = Some(crs::Reprojector::new(crs)?);
        Ok(())
    }

    /// A file-level problem (the reader goes on where it can).
    pub fn file_problem(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.report.problems.push(Problem {
            record: None,
            id: None,
            field: field.into(),
            reason: reason.into(),
        });
    }

    /// A problem with record `number` found by the reader (a short CSV row).
    pub fn record_problem(
        &mut self,
        number: usize,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.record_problem_of(number, None, field, reason);
    }

    /// [`Self::record_problem`] for a record whose external id could still be read.
    pub fn record_problem_of(
        &mut self,
        number: usize,
        id: Option<String>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.records += 1;
        self.report.problems.push(Problem {
            record: Some(number),
            id,
            field: field.into(),
            reason: reason.into(),
        });
    }

    /// The column that holds the external id: `--id-field`, else `id`.
    pub fn id_column(&self) -> &str {
        self.options.id_field.as_deref().unwrap_or("id")
    }

    /// The external id of a record: the `--id-field` column, else a column `id`, else the
    /// GeoJSON Feature id.
    fn external_id(
        &self,
        props: &Map<String, Value>,
        feature_id: Option<String>,
    ) -> Option<String> {
        let text = |col: &str| {
            props
                .get(col)
                .cloned()
                .and_then(|v| {
                    fields::coerce("id", v, fields::FieldType::Text)
                        .ok()
                        .flatten()
                })
                .and_then(|v| v.as_str().map(str::to_owned))
        };
        match &self.options.id_field {
            Some(col) => text(col),
            None => text("id").or(feature_id),
        }
    }

    /// The column of the file that holds faro's `field`: the `--map` one (`A|B`: the first
    /// the record has), else the field's own name in any case.
    fn column_of(&self, field: &str, props: &Map<String, Value>) -> Option<String> {
        let find = |name: &str| {
            props
                .keys()
                .find(|k| k.as_str() == name)
                .or_else(|| props.keys().find(|k| k.eq_ignore_ascii_case(name)))
                .cloned()
        };
        match self.options.map.get(field) {
            Some(m) => Some(m.split('|').find_map(find).unwrap_or_else(|| m.clone())),
            None => find(field),
        }
    }

    /// Maps, converts, reprojects and validates one record.
    pub fn record(&mut self, rec: SourceRecord) {
        self.records += 1;
        let number = rec.number;
        let props = rec.properties;
        let raw_id = self.external_id(&props, rec.feature_id);
        let mut problems: Vec<FieldError> = Vec::new();
        if self
            .options
            .id_field
            .as_ref()
            .is_some_and(|c| !props.contains_key(c))
        {
            problems.push(FieldError::new(
                self.options.id_field.clone().unwrap_or_default(),
                "missing: this is the --id-field column",
            ));
        }
        let id = match raw_id.as_deref().map(RecordId::parse) {
            None => None,
            Some(Ok(id)) => Some(id),
            Some(Err(e)) => {
                problems.push(e);
                None
            }
        };
        // Fields.
        let mut attributes = Map::new();
        let mut used: HashSet<String> = HashSet::new();
        used.insert("id".to_owned());
        if let Some(c) = &self.options.id_field {
            used.insert(c.clone());
        }
        for key in ["lon", "lat", "wkt"] {
            if let Some(c) = self.options.map.get(key) {
                used.insert(c.clone());
            }
        }
        for &(field, ty) in fields::fields(self.collection) {
            let column = self.column_of(field, &props);
            let Some(column) = column else { continue };
            used.insert(column.clone());
            let Some(value) = props.get(&column).cloned() else {
                continue;
            };
            match fields::coerce(field, value, ty) {
                Ok(Some(v)) => {
                    attributes.insert(field.to_owned(), v);
                }
                Ok(None) => {}
                Err(e) => problems.push(e),
            }
        }
        for (field, value) in &self.options.set {
            let ty = fields::field_type(self.collection, field).unwrap_or(fields::FieldType::Text);
            match fields::coerce(field, Value::String(value.clone()), ty) {
                Ok(Some(v)) => {
                    attributes.insert(field.clone(), v);
                }
                Ok(None) => {}
                Err(e) => problems.push(e),
            }
        }
        for (key, value) in props {
            if used.contains(&key)
                || ["created_at", "updated_at", "version"].contains(&key.as_str())
            {
                continue;
            }
            if self.strict {
                // Left for the API's validation to name as an unknown field.
                attributes.insert(key, value);
            } else if !self.ignored.contains(&key) {
                self.ignored.push(key);
            }
        }
        let geometry = self.geometry(rec.geometry);
        let geometry = match geometry {
            Ok(g) => Some(g),
            Err(e) => {
                problems.push(e);
                None
            }
        };
        let attributes = match Attributes::from_json(self.collection, Value::Object(attributes)) {
            Ok(a) => Some(a),
            Err(mut e) => {
                // serde names a missing field in its reason; the report names it as the field.
                let missing = e
                    .reason
                    .strip_prefix("missing field `")
                    .and_then(|r| r.strip_suffix('`'))
                    .map(str::to_owned);
                if e.field == "properties"
                    && let Some(name) = missing
                {
                    e.field = name;
                }
                problems.push(e);
                None
            }
        };
        if let Some(id) = &id
            && !self.seen_ids.insert(id.clone())
        {
            problems.push(FieldError::new("id", "appears more than once in the file"));
        }
        match (geometry, attributes) {
            (Some(geometry), Some(attributes)) if problems.is_empty() => {
                self.inputs.push(FeatureInput {
                    id,
                    geometry,
                    attributes,
                });
                if self.sink.is_some() && self.inputs.len() >= CHUNK {
                    self.flush();
                }
            }
            _ => {
                for e in problems {
                    self.report.problems.push(Problem {
                        record: Some(number),
                        id: raw_id.clone(),
                        field: e.field,
                        reason: e.reason,
                    });
                }
            }
        }
    }

    fn geometry(&self, source: SourceGeometry) -> Result<ValidGeometry, FieldError> {
        let rule = self.collection.geometry_rule();
        let reprojector = self.reprojector.as_ref();
        let identity = reprojector.is_none_or(crs::Reprojector::is_identity);
        let mut g = match source {
            SourceGeometry::Missing => {
                return Err(FieldError::new(
                    "geometry",
                    "missing; every record has a geometry",
                ));
            }
            SourceGeometry::Invalid { field, reason } => {
                return Err(FieldError::new(field, reason));
            }
            SourceGeometry::GeoJson(value) if identity => {
                let count = geojson_positions(&value);
                if count > self.options.max_vertices {
                    return Err(FieldError::new(
                        "geometry",
                        format!(
                            "{count} positions; faro accepts at most {} per geometry (max_vertices)",
                            self.options.max_vertices
                        ),
                    ));
                }
                let g = crate::domain::feature::parse_geometry(value, self.collection)?;
                self.check_swapped(g.geometry())?;
                return Ok(g);
            }
            SourceGeometry::GeoJson(value) => {
                let gj: ::geojson::Geometry = serde_json::from_value(value).map_err(|e| {
                    FieldError::new("geometry", format!("not a GeoJSON geometry: {e}"))
                })?;
                geo::Geometry::<f64>::try_from(gj)
                    .map_err(|e| FieldError::new("geometry", e.to_string()))?
            }
            SourceGeometry::Geo(g) => g,
        };
        g = simplify_multi(g, rule);
        if let Some(r) = reprojector {
            r.geometry(&mut g)
                .map_err(|e| FieldError::new("geometry", e.to_string()))?;
        }
        self.check_swapped(&g)?;
        ValidGeometry::new_capped(g, rule, self.options.max_vertices).map_err(FieldError::from)
    }

    /// Refuses a geometry all of whose positions are outside Italy but inside it once
    /// latitude and longitude are swapped: a column mix-up, not a place.
    fn check_swapped(&self, g: &geo::Geometry<f64>) -> Result<(), FieldError> {
        use geo::CoordsIter;
        if self.options.no_swap_check || g.coords_count() == 0 {
            return Ok(());
        }
        let mut outside = true;
        let mut swapped_inside = true;
        for c in g.coords_iter() {
            outside &= !in_italy(c.x, c.y);
            swapped_inside &= in_italy(c.y, c.x);
            if !outside || !swapped_inside {
                return Ok(());
            }
        }
        Err(FieldError::new(
            "geometry",
            "latitude and longitude look swapped: the position is outside Italy, and inside \
             it with the two exchanged (map the columns with --map lon=… --map lat=…, or pass \
             --no-swap-check if the data really lies there)",
        ))
    }

    /// The validated features and the report; an empty file is a problem of its own.
    pub fn finish(mut self) -> (Vec<FeatureInput>, Report) {
        if !self.ignored.is_empty() {
            self.report.notes.push(format!(
                "columns that are not {} fields were ignored: {}",
                self.collection,
                self.ignored.join(", ")
            ));
        }
        if self.records == 0 && self.report.problems.is_empty() {
            self.file_problem("file", "no records to import");
        }
        if self.sink.is_some() {
            self.flush();
            self.sink = None;
        }
        (self.inputs, self.report)
    }
}

/// The positions of a GeoJSON geometry object, counted on the raw JSON before any parsing
/// (what the vertex cap is checked on, as in the API).
fn geojson_positions(g: &Value) -> usize {
    fn count(v: &Value) -> usize {
        match v {
            Value::Array(items) if items.first().is_some_and(Value::is_number) => 1,
            Value::Array(items) => items.iter().map(count).sum(),
            _ => 0,
        }
    }
    g.get("coordinates").map_or(0, count)
        + g.get("geometries")
            .and_then(Value::as_array)
            .map_or(0, |gs| gs.iter().map(geojson_positions).sum())
}

/// A single-part multi-geometry as its part, where the collection takes only the part's type
/// (a Shapefile stores every polygon as a multipolygon).
fn simplify_multi(g: geo::Geometry<f64>, rule: crate::domain::GeometryRule) -> geo::Geometry<f64> {
    match g {
        geo::Geometry::MultiPolygon(mut mp)
            if mp.0.len() == 1
                && !rule.admits(&geo::Geometry::MultiPolygon(geo::MultiPolygon(vec![]))) =>
        {
            geo::Geometry::Polygon(mp.0.remove(0))
        }
        geo::Geometry::MultiPoint(mut mp) if mp.0.len() == 1 => {
            geo::Geometry::Point(mp.0.remove(0))
        }
        other => other,
    }
}

/// Counts records instead of bytes on `progress` (for formats read record by record).
pub(crate) fn count_records(progress: &indicatif::ProgressBar, total: usize) {
    if !progress.is_hidden()
        && let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} reading {msg} [{bar:30}] {human_pos}/{human_len} records ({per_sec}, {eta} left)",
        )
    {
        progress.set_style(style);
    }
    progress.set_length(u64::try_from(total).unwrap_or(u64::MAX));
}

/// Reads `path` into `preparer`.
pub fn read(
    path: &Path,
    format: Format,
    preparer: &mut Preparer,
    progress: &indicatif::ProgressBar,
) -> Result<(), ImportError> {
    let meta = std::fs::metadata(path).map_err(|e| ImportError::io(path, e))?;
    if meta.len() == 0 {
        return Err(ImportError::ZeroBytes {
            path: path.to_owned(),
        });
    }
    progress.set_length(meta.len());
    match format {
        Format::GeoJson => geojson::read(path, preparer, progress),
        Format::Csv => csv::read(path, preparer, progress),
        Format::Shapefile => shp::read(path, preparer, progress),
        Format::GeoPackage => gpkg::read(path, preparer, progress),
        Format::Hsds => hsds::read(path, preparer, progress),
    }
}

/// Reads and validates a whole file: the features to write and the report.
pub fn prepare(
    path: &Path,
    collection: Collection,
    options: ReadOptions,
    progress: &indicatif::ProgressBar,
) -> Result<(Vec<FeatureInput>, Report), ImportError> {
    let (format, mut preparer) = preparer_for(path, collection, options)?;
    read(path, format, &mut preparer, progress)?;
    Ok(preparer.finish())
}

/// The format of `path` (as told or by its name) and a preparer for it.
fn preparer_for(
    path: &Path,
    collection: Collection,
    options: ReadOptions,
) -> Result<(Format, Preparer), ImportError> {
    let format = match options.format {
        Some(f) => f,
        None => Format::of_path(path).ok_or_else(|| ImportError::UnknownFormat {
            path: path.to_owned(),
        })?,
    };
    Ok((format, Preparer::new(collection, format, options)))
}

/// [`prepare`], streamed: the validated features go to `sink` in chunks as they are read
/// (see [`Preparer::stream_to`]); what is returned is the report. Call from a blocking thread.
pub fn prepare_streamed(
    path: &Path,
    collection: Collection,
    options: ReadOptions,
    progress: &indicatif::ProgressBar,
    sink: tokio::sync::mpsc::Sender<Vec<FeatureInput>>,
) -> Result<Report, ImportError> {
    let (format, mut preparer) = preparer_for(path, collection, options)?;
    preparer.stream_to(sink);
    read(path, format, &mut preparer, progress)?;
    Ok(preparer.finish().1)
}

/// What an import will do, record by record.
#[derive(Debug, Default)]
pub struct Plan {
    pub ops: Vec<WriteOp>,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Of those created, how many had no id: another import of the file creates them again.
    pub without_id: usize,
}

/// The store keys of the features that carry an id.
pub fn keys_of(collection: Collection, inputs: &[FeatureInput]) -> Vec<(Collection, RecordId)> {
    inputs
        .iter()
        .filter_map(|f| f.id.clone().map(|id| (collection, id)))
        .collect()
}

/// The stored records among the features' ids (what [`classify`] compares them with).
pub async fn stored(
    store: &dyn Store,
    collection: Collection,
    inputs: &[FeatureInput],
) -> Result<Vec<crate::domain::Record>, StoreError> {
    let keys = keys_of(collection, inputs);
    let mut existing = Vec::new();
    for chunk in keys.chunks(CHUNK) {
        existing.extend(store.get_many(chunk).await?);
    }
    Ok(existing)
}

/// Compares validated features with the stored records among their ids ([`stored`]): a new
/// id (or none) is created, a known one updated when its geometry or fields differ and left
/// alone when they do not.
pub fn classify(
    collection: Collection,
    inputs: Vec<FeatureInput>,
    stored: Vec<crate::domain::Record>,
) -> Plan {
    let existing: HashMap<RecordId, crate::domain::Record> = stored
        .into_iter()
        .filter(|r| r.collection() == collection)
        .map(|r| (r.id().clone(), r))
        .collect();
    let mut plan = Plan::default();
    for input in inputs {
        match input.id.as_ref().and_then(|id| existing.get(id)) {
            None => {
                plan.created += 1;
                plan.without_id += usize::from(input.id.is_none());
                plan.ops.push(WriteOp::insert(collection, input));
            }
            Some(r)
                if r.valid_geometry() == &input.geometry && r.attributes() == &input.attributes =>
            {
                plan.unchanged += 1;
            }
            Some(r) => {
                plan.updated += 1;
                plan.ops.push(WriteOp::Replace {
                    id: r.id().clone(),
                    expected: Precondition::Version(r.meta().version),
                    geometry: input.geometry,
                    attributes: input.attributes,
                });
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(preparer: &mut Preparer, properties: Value, geometry: Value) {
        let Value::Object(properties) = properties else {
            panic!("an object")
        };
        preparer.record(SourceRecord {
            number: 1,
            feature_id: Some("svc-1".to_owned()),
            properties,
            geometry: SourceGeometry::GeoJson(geometry),
        });
    }

    fn geojson_preparer(collection: Collection, options: ReadOptions) -> Preparer {
        let mut p = Preparer::new(collection, Format::GeoJson, options);
        p.begin(None).unwrap();
        p
    }

    #[test]
    fn a_column_two_fields_are_read_from_gives_both_its_value() {
        // As `territories define` reads comuni without a name column: the name falls back
        // to the code.
        let map: HashMap<String, String> = [("name", "COMUNE|PRO_COM_T"), ("code", "PRO_COM_T")]
            .into_iter()
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect();
        let mut p = geojson_preparer(
            Collection::Territories,
            ReadOptions {
                map,
                set: vec![("level".to_owned(), "comune".to_owned())],
                ..ReadOptions::default()
            },
        );
        one(
            &mut p,
            json!({"PRO_COM_T": "026001", "ALTRO": 1}),
            json!({"type": "Polygon", "coordinates": [[[12,45],[12.1,45],[12.1,45.1],[12,45.1],[12,45]]]}),
        );
        let (inputs, report) = p.finish();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let Attributes::Territory(t) = &inputs[0].attributes else {
            panic!("a territory")
        };
        assert_eq!(t.name, "026001");
        assert_eq!(t.code.as_deref(), Some("026001"));
        assert_eq!(
            report.notes,
            ["columns that are not territories fields were ignored: ALTRO"]
        );
    }

    #[test]
    fn a_geometry_over_the_vertex_cap_is_refused_before_validation() {
        let mut p = geojson_preparer(
            Collection::Worksites,
            ReadOptions {
                max_vertices: 4,
                ..ReadOptions::default()
            },
        );
        one(
            &mut p,
            json!({"name": "x", "kind": "farm"}),
            json!({"type": "Polygon", "coordinates": [[[12,45],[12.1,45],[12.1,45.1],[12,45.1],[12,45]]]}),
        );
        let (inputs, report) = p.finish();
        assert!(inputs.is_empty());
        assert!(
            report.problems[0].reason.contains("at most 4"),
            "{:?}",
            report.problems
        );
    }

    #[test]
    fn geojson_without_a_mapping_is_as_strict_as_the_api() {
        let mut p = geojson_preparer(Collection::Services, ReadOptions::default());
        one(
            &mut p,
            json!({"name": "x", "kind": "pas", "colour": "red"}),
            json!({"type": "Point", "coordinates": [12.2, 45.6]}),
        );
        let (_, report) = p.finish();
        assert!(
            report.problems[0].reason.contains("unknown field `colour`"),
            "{:?}",
            report.problems
        );
        // With a mapping, other columns are ignored and named.
        let mut p = geojson_preparer(
            Collection::Services,
            ReadOptions {
                map: [("name".to_owned(), "nome".to_owned())].into(),
                ..ReadOptions::default()
            },
        );
        one(
            &mut p,
            json!({"nome": "x", "kind": "pas", "colour": "red"}),
            json!({"type": "Point", "coordinates": [12.2, 45.6]}),
        );
        let (inputs, report) = p.finish();
        assert_eq!(inputs.len(), 1, "{:?}", report.problems);
        assert!(report.notes.iter().any(|n| n.contains("colour")));
    }

    #[test]
    fn swapped_coordinates_are_refused_unless_asked_not_to() {
        for (no_swap_check, refused) in [(false, true), (true, false)] {
            let mut p = geojson_preparer(
                Collection::Services,
                ReadOptions {
                    no_swap_check,
                    ..ReadOptions::default()
                },
            );
            one(
                &mut p,
                json!({"name": "x", "kind": "pas"}),
                json!({"type": "Point", "coordinates": [45.6, 12.2]}),
            );
            let (inputs, report) = p.finish();
            assert_eq!(inputs.is_empty(), refused, "{:?}", report.problems);
        }
    }
}
