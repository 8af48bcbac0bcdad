//! `faro report`: the territorial coverage analysis as files a planner can put in a document.
//!
//! [`compute`] asks [`crate::analysis::coverage`] everything a report holds, through one
//! [`View`], so the report shows exactly what its reader may see; [`write`] puts it in a
//! directory:
//!
//! - `coverage.csv`: one row per territory and a `total` row, the figures of `/coverage`;
//! - `coverage.gpkg` (GeoPackage 1.3, EPSG:4326), with the layers `territories` (their
//!   figures), `gaps`, `uncovered`, `hexes`, `suggestions` and `services`, and the same layers
//!   as `<layer>.geojson`;
//! - `report.html`: one self-contained printable page (parameters, tables, maps drawn as inline
//!   SVG), which asks nothing of any network.
//!
//! Access: a reader who may not see settlements and worksites (the view's refusal, or no
//! demand in what [`Prepared`] placed) gets no settlement or worksite figure, and no
//! `uncovered` or `suggestions` layer; the page says so.
//!
//! Every file is written under a temporary name and renamed into place once all of them are
//! written, so a failure leaves no half-written report behind; the `uncovered` and
//! `suggestions` files of an earlier report in the same directory are removed when this one
//! leaves them out.

mod html;
mod svg;

pub use svg::escape;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use geo::Geometry;
use h3o::Resolution;
use rusqlite::types::Value as Sql;
use serde_json::{Value, json};

use crate::analysis::coverage::{
    self as analysis, Candidates, CoverageError, CoverageQuery, Figures, Gap, Hex, Prepared,
    Suggestions, Uncovered,
};
use crate::domain::feature::geometry_json;
use crate::domain::{Collection, Record};
use crate::index::query::{QueryError, View};
use crate::io::export;
use crate::io::gpkg::{self, Column};

/// What a report is asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub query: CoverageQuery,
    /// H3 resolution of the `hexes` layer and of the candidate sites of the suggestions.
    pub resolution: Resolution,
    /// Suggested new sites at most.
    pub k: usize,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Coverage(#[from] CoverageError),
    #[error(
        "there is no territory of level `territory` to report on; define them with `faro territories define` (or start `faro serve` once on an empty store for the demo data)"
    )]
    NoTerritory,
    #[error("writing {path}: {message}")]
    Write { path: PathBuf, message: String },
}

pub type Result<T> = std::result::Result<T, ReportError>;

/// Everything a report shows, as its reader may see it.
#[derive(Debug)]
pub struct Data {
    pub options: Options,
    /// The per-territory figures and their total.
    pub report: analysis::Report,
    /// The chosen services, in id order.
    pub services: Vec<Arc<Record>>,
    pub gaps: Vec<Gap>,
    pub hexes: Vec<Hex>,
    /// Uncovered settlements, then uncovered worksites, each farthest first; `None` when the
    /// reader may not see them.
    pub uncovered: Option<Vec<Uncovered>>,
    /// `None` when the reader may not see the records they are computed from.
    pub suggestions: Option<Suggestions>,
    /// When the report was made (Europe/Rome).
    pub made_at: chrono::DateTime<chrono_tz::Tz>,
}

impl Data {
    /// Whether the figures count settlements and worksites (the reader may see them).
    pub fn has_demand(&self) -> bool {
        self.report.total.settlements.is_some()
    }
}

/// `Ok(None)` for a refusal of the view (the reader may not see what is asked).
fn unless_refused<T>(r: std::result::Result<T, CoverageError>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(CoverageError::Query(QueryError::Access(_))) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Steps of [`compute`] and [`write`], for a progress bar.
pub const STEPS: u64 = 7;

/// Computes every part of the report through `view`, one step of `progress` each.
pub fn compute(view: &View, options: &Options, progress: &indicatif::ProgressBar) -> Result<Data> {
    let q = &options.query;
    let step = |what: &str| {
        progress.set_message(what.to_owned());
        progress.inc(1);
    };
    progress.set_message("coverage per territory");
    let prepared = Prepared::new(view, q)?;
    if prepared.territories.is_empty() {
        return Err(ReportError::NoTerritory);
    }
    let report = analysis::report(&prepared);
    step("gaps");
    let gaps = analysis::gaps(view, q)?;
    step("uncovered records");
    let uncovered = match (
        unless_refused(analysis::uncovered(view, q, Collection::Settlements))?,
        unless_refused(analysis::uncovered(view, q, Collection::Worksites))?,
    ) {
        (Some(mut s), Some(w)) => {
            s.extend(w);
            Some(s)
        }
        _ => None,
    };
    step("hexagons");
    let hexes = analysis::hexes(view, q, options.resolution)?;
    step("suggestions");
    let suggestions = unless_refused(analysis::suggest(
        view,
        q,
        Candidates::Hexes(options.resolution),
        options.k,
    ))?;
    step("writing");
    Ok(Data {
        options: options.clone(),
        report,
        services: prepared.services,
        gaps,
        hexes,
        uncovered,
        suggestions,
        made_at: chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome),
    })
}

/// Rounded to 1e-6 (km²: a square metre), as `/coverage` answers.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Rounded to the millimetre.
fn round_m(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A layer of the GeoPackage and of its GeoJSON file.
struct Layer {
    name: &'static str,
    /// GeoPackage geometry type.
    geometry_type: &'static str,
    columns: Vec<Column>,
    features: Vec<(Geometry<f64>, Vec<Value>)>,
}

fn column(name: &str, sql_type: &'static str) -> Column {
    Column {
        name: name.to_owned(),
        sql_type,
    }
}

/// The columns of the per-territory table (CSV and the `territories` layer) and one row.
fn figure_cells(f: &Figures, data: &Data) -> Vec<(&'static str, &'static str, Value)> {
    let mut cells = vec![
        (
            "territory",
            "TEXT",
            f.territory
                .as_ref()
                .map_or(json!("total"), |t| json!(t.id())),
        ),
        (
            "name",
            "TEXT",
            f.territory
                .as_ref()
                .map_or(json!("Total"), |t| json!(t.attributes().name())),
        ),
        ("area_km2", "REAL", json!(round6(f.area_km2))),
        (
            "covered_area_km2",
            "REAL",
            json!(round6(f.covered_area_km2)),
        ),
        ("covered_share", "REAL", json!(round6(f.covered_share()))),
        ("services", "INTEGER", json!(f.services)),
    ];
    if data.has_demand() {
        for (names, figures) in [
            (
                [
                    "settlements_total",
                    "settlements_covered",
                    "people_total",
                    "people_covered",
                ],
                f.settlements,
            ),
            (
                [
                    "worksites_total",
                    "worksites_covered",
                    "workers_total",
                    "workers_covered",
                ],
                f.worksites,
            ),
        ] {
            let d = figures.unwrap_or_default();
            let values = [d.total, d.covered, d.size_total, d.size_covered];
            cells.extend(
                names
                    .into_iter()
                    .zip(values)
                    .map(|(n, v)| (n, "INTEGER", json!(v))),
            );
        }
    }
    if data.options.query.capacity {
        let c = f.capacity.unwrap_or_default();
        cells.push(("beds", "INTEGER", json!(c.beds)));
        if data.has_demand() {
            cells.push(("demand_in_reach", "INTEGER", json!(c.demand_in_reach)));
            cells.push(("without_bed", "INTEGER", json!(c.without_bed)));
        }
    }
    cells
}

fn multi(g: &Geometry<f64>) -> Geometry<f64> {
    match g {
        Geometry::Polygon(p) => Geometry::MultiPolygon(geo::MultiPolygon::new(vec![p.clone()])),
        other => other.clone(),
    }
}

fn territories_layer(data: &Data) -> Layer {
    let mut columns = Vec::new();
    let mut features = Vec::new();
    for f in &data.report.territories {
        let cells = figure_cells(f, data);
        if columns.is_empty() {
            columns = cells.iter().map(|(n, t, _)| column(n, t)).collect();
        }
        let geometry = f.territory.as_ref().map_or(
            Geometry::MultiPolygon(geo::MultiPolygon::new(Vec::new())),
            |t| multi(t.geometry()),
        );
        features.push((geometry, cells.into_iter().map(|(_, _, v)| v).collect()));
    }
    Layer {
        name: "territories",
        geometry_type: "MULTIPOLYGON",
        columns,
        features,
    }
}

fn gaps_layer(data: &Data) -> Layer {
    Layer {
        name: "gaps",
        geometry_type: "MULTIPOLYGON",
        columns: vec![
            column("territory", "TEXT"),
            column("name", "TEXT"),
            column("area_km2", "REAL"),
        ],
        features: data
            .gaps
            .iter()
            .map(|g| {
                (
                    Geometry::MultiPolygon(g.geometry.clone()),
                    vec![
                        json!(g.territory.id()),
                        json!(g.territory.attributes().name()),
                        json!(round6(g.area_km2)),
                    ],
                )
            })
            .collect(),
    }
}

fn uncovered_layer(found: &[Uncovered]) -> Layer {
    Layer {
        name: "uncovered",
        geometry_type: "POINT",
        columns: vec![
            column("id", "TEXT"),
            column("collection", "TEXT"),
            column("name", "TEXT"),
            column("people", "INTEGER"),
            column("workers", "INTEGER"),
            column("uncovered", "INTEGER"),
            column("distance_m", "REAL"),
            column("nearest_service", "TEXT"),
            column("nearest_service_name", "TEXT"),
            column("nearest_service_kind", "TEXT"),
            column("territories", "TEXT"),
        ],
        features: found
            .iter()
            .map(|u| {
                let d = &u.demand;
                let nearest = d.nearest.as_ref();
                let territories: Vec<&str> =
                    u.territories.iter().map(|t| t.id().as_str()).collect();
                (
                    Geometry::Point(d.point),
                    vec![
                        json!(d.record.id()),
                        json!(d.record.collection().as_str()),
                        json!(d.record.attributes().name()),
                        d.is_settlement
                            .then_some(d.size)
                            .map_or(Value::Null, Value::from),
                        (!d.is_settlement)
                            .then_some(d.size)
                            .map_or(Value::Null, Value::from),
                        json!(d.uncovered),
                        json!(nearest.map(|n| round_m(n.1))),
                        json!(nearest.map(|n| n.0.id())),
                        json!(nearest.map(|n| n.0.attributes().name())),
                        json!(nearest.and_then(|n| n.0.attributes().kind_str())),
                        json!(territories.join(";")),
                    ],
                )
            })
            .collect(),
    }
}

fn hexes_layer(data: &Data) -> Layer {
    let demand = data.has_demand();
    let mut columns = vec![
        column("h3", "TEXT"),
        column("territory", "TEXT"),
        column("distance_m", "REAL"),
        column("covered", "BOOLEAN"),
    ];
    if demand {
        for name in [
            "settlements",
            "worksites",
            "people",
            "workers",
            "people_uncovered",
            "workers_uncovered",
        ] {
            columns.push(column(name, "INTEGER"));
        }
    }
    let radius = data.options.query.radius_m;
    let features = data
        .hexes
        .iter()
        .map(|h| {
            let mut values = vec![
                json!(h.cell.to_string()),
                json!(h.territory.id()),
                json!(h.distance_m.map(round_m)),
                json!(h.distance_m.is_some_and(|d| d <= radius)),
            ];
            if demand {
                let d = h.demand.unwrap_or_default();
                values.extend(
                    [
                        d.settlements,
                        d.worksites,
                        d.people,
                        d.workers,
                        d.people_uncovered,
                        d.workers_uncovered,
                    ]
                    .map(Value::from),
                );
            }
            (Geometry::Polygon(analysis::cell_polygon(h.cell)), values)
        })
        .collect();
    Layer {
        name: "hexes",
        geometry_type: "POLYGON",
        columns,
        features,
    }
}

fn suggestions_layer(s: &Suggestions) -> Layer {
    Layer {
        name: "suggestions",
        geometry_type: "POINT",
        columns: vec![
            column("rank", "INTEGER"),
            column("h3", "TEXT"),
            column("territory", "TEXT"),
            column("people", "INTEGER"),
            column("workers", "INTEGER"),
            column("settlements", "INTEGER"),
            column("worksites", "INTEGER"),
        ],
        features: s
            .suggestions
            .iter()
            .map(|g| {
                (
                    Geometry::Point(g.position),
                    vec![
                        json!(g.rank),
                        json!(g.cell.map(|c| c.to_string())),
                        json!(g.territory.id()),
                        json!(g.people),
                        json!(g.workers),
                        json!(g.settlements),
                        json!(g.worksites),
                    ],
                )
            })
            .collect(),
    }
}

/// The layers of the report but `services` (written by [`crate::io::export`]), in order.
fn layers(data: &Data) -> Vec<Layer> {
    let mut out = vec![territories_layer(data), gaps_layer(data)];
    if let Some(found) = &data.uncovered {
        out.push(uncovered_layer(found));
    }
    out.push(hexes_layer(data));
    if let Some(s) = &data.suggestions {
        out.push(suggestions_layer(s));
    }
    out
}

fn sql(v: &Value) -> Sql {
    match v {
        Value::Null => Sql::Null,
        Value::Bool(b) => Sql::Integer(i64::from(*b)),
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            Sql::Integer(n.as_i64().unwrap_or(i64::MAX))
        }
        Value::Number(n) => Sql::Real(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Sql::Text(s.clone()),
        other => Sql::Text(other.to_string()),
    }
}

fn geojson_of(layer: &Layer) -> Value {
    let features: Vec<Value> = layer
        .features
        .iter()
        .map(|(g, values)| {
            let properties: serde_json::Map<String, Value> = layer
                .columns
                .iter()
                .zip(values)
                .map(|(c, v)| (c.name.clone(), v.clone()))
                .collect();
            json!({"type": "Feature", "geometry": geometry_json(g), "properties": properties})
        })
        .collect();
    json!({"type": "FeatureCollection", "name": layer.name, "features": features})
}

fn csv_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The files of a report, written under temporary names and renamed into place together.
struct Staging {
    dir: PathBuf,
    files: Vec<(PathBuf, PathBuf)>,
}

impl Staging {
    /// The temporary path of `name`, to be renamed to `name` by [`Staging::commit`].
    fn path(&mut self, name: &str) -> PathBuf {
        let tmp = self
            .dir
            .join(format!(".{name}.part-{}", std::process::id()));
        self.files.push((tmp.clone(), self.dir.join(name)));
        tmp
    }

    fn commit(mut self) -> Result<Vec<PathBuf>> {
        let mut done = Vec::new();
        for (tmp, path) in std::mem::take(&mut self.files) {
            std::fs::rename(&tmp, &path).map_err(|e| ReportError::Write {
                path: path.clone(),
                message: e.to_string(),
            })?;
            done.push(path);
        }
        Ok(done)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        for (tmp, _) in &self.files {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

fn write_err(path: &Path) -> impl Fn(String) -> ReportError + '_ {
    move |message| ReportError::Write {
        path: path.to_owned(),
        message,
    }
}

/// The name of the report's GeoPackage.
pub const GPKG: &str = "coverage.gpkg";
/// The name of the report's table.
pub const CSV: &str = "coverage.csv";
/// The name of the report's page.
pub const HTML: &str = "report.html";

/// Writes the report's files into `dir` (which must exist); returns their paths.
pub fn write(data: &Data, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut staging = Staging {
        dir: dir.to_owned(),
        files: Vec::new(),
    };
    let layers = layers(data);
    // The table.
    let path = staging.path(CSV);
    let err = write_err(&path);
    let mut csv = ::csv::Writer::from_path(&path).map_err(|e| err(e.to_string()))?;
    let rows = data
        .report
        .territories
        .iter()
        .chain(std::iter::once(&data.report.total));
    for (i, f) in rows.enumerate() {
        let cells = figure_cells(f, data);
        if i == 0 {
            csv.write_record(cells.iter().map(|(n, _, _)| *n))
                .map_err(|e| err(e.to_string()))?;
        }
        csv.write_record(cells.iter().map(|(_, _, v)| csv_text(v)))
            .map_err(|e| err(e.to_string()))?;
    }
    csv.flush().map_err(|e| err(e.to_string()))?;
    drop(csv);
    // The GeoPackage.
    let path = staging.path(GPKG);
    let err = write_err(&path);
    let mut conn = gpkg::create(&path).map_err(&err)?;
    for layer in &layers {
        let rows = layer
            .features
            .iter()
            .map(|(g, values)| (g.clone(), values.iter().map(sql).collect()));
        gpkg::add_table(
            &mut conn,
            layer.name,
            layer.geometry_type,
            &layer.columns,
            rows,
        )
        .map_err(&err)?;
    }
    export::add_gpkg_table(&mut conn, "services", Collection::Services, &data.services)
        .map_err(&err)?;
    conn.close().map_err(|(_, e)| err(e.to_string()))?;
    // The GeoJSON files.
    for layer in &layers {
        let path = staging.path(&format!("{}.geojson", layer.name));
        let text =
            serde_json::to_vec(&geojson_of(layer)).map_err(|e| write_err(&path)(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| write_err(&path)(e.to_string()))?;
    }
    let path = staging.path("services.geojson");
    let file = std::fs::File::create(&path).map_err(|e| write_err(&path)(e.to_string()))?;
    export::write_geojson(&data.services, std::io::BufWriter::new(file))
        .map_err(|e| write_err(&path)(e.to_string()))?;
    // The page.
    let path = staging.path(HTML);
    std::fs::write(&path, html::page(data)).map_err(|e| write_err(&path)(e.to_string()))?;
    let written = staging.commit()?;
    // A layer left out must not be read from an earlier report in the same directory.
    for name in ["uncovered.geojson", "suggestions.geojson"] {
        let path = dir.join(name);
        if !written.contains(&path) && path.exists() {
            std::fs::remove_file(&path).map_err(|e| write_err(&path)(e.to_string()))?;
        }
    }
    Ok(written)
}
