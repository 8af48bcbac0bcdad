//! Territories defined as groups of comuni: each the dissolved union of its comuni, the
//! province the union of the territories (`faro territories define`).
//!
//! The comuni come from any file `faro import` reads (the ISTAT boundaries, a zipped
//! Shapefile in UTM 32N); a groups CSV (`code`, `territory`, and optionally `id`) says which
//! territory each comune belongs to; an optional population CSV (ISTAT's, with a comune code
//! column and a total) gives each territory its population.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use geo::{MultiPolygon, Polygon};
use serde_json::json;

use super::{ImportError, Problem, ReadOptions, Report};
use crate::domain::{
    Attributes, Collection, FeatureInput, RecordId, ValidGeometry, geometry::GeometryRule,
};

/// The columns tried, in order, for a comune's ISTAT code.
pub const CODE_FIELDS: &str = "PRO_COM_T|PRO_COM|com_istat_code";
/// The columns tried, in order, for a comune's name.
pub const NAME_FIELDS: &str = "COMUNE|DEN_COM|DENOMINAZIONE|COMUNE_A|name|NOME";

/// What to define.
#[derive(Debug, Clone)]
pub struct DefineOptions {
    /// How to read the comuni file (`--crs`, `--layer`, `--encoding`).
    pub read: ReadOptions,
    /// The code column(s) of the comuni, `A|B` for the first that exists.
    pub code_field: String,
    pub groups: std::path::PathBuf,
    pub population: Option<std::path::PathBuf>,
    pub province_id: String,
    pub province_name: String,
    /// The province's ISTAT code, if known.
    pub province_code: Option<String>,
}

/// A 6-digit ISTAT comune code from `26001`, `026001` or `26001.0`.
pub fn comune_code(text: &str) -> Option<String> {
    let t = text.trim();
    let t = t.strip_suffix(".0").unwrap_or(t);
    (!t.is_empty() && t.len() <= 6 && t.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{t:0>6}"))
}

fn slug(name: &str) -> String {
    let mut out = String::from("terr-");
    let mut dash = false;
    for c in name.to_lowercase().chars() {
        let c = match c {
            'à' | 'á' => 'a',
            'è' | 'é' => 'e',
            'ì' | 'í' => 'i',
            'ò' | 'ó' => 'o',
            'ù' | 'ú' => 'u',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            out.push(c);
            dash = false;
        } else if !dash {
            out.push('-');
            dash = true;
        }
    }
    out.trim_end_matches('-').chars().take(64).collect()
}

/// Holes and parts smaller than this are gaps and overlaps between neighbouring comuni's
/// boundaries (slivers of a few square centimetres in the ISTAT data), not places.
pub const SLIVER_M2: f64 = 1.0;

/// The area of a ring in m², approximately (planar in degrees, scaled at its latitude): only
/// to tell slivers from places.
fn approx_area_m2(ring: &geo::LineString<f64>) -> f64 {
    use geo::Area;
    let polygon = Polygon::new(ring.clone(), vec![]);
    let lat = ring.0.first().map_or(0.0, |c| c.y).to_radians();
    let m_per_deg = 111_320.0;
    polygon.unsigned_area() * m_per_deg * m_per_deg * lat.cos()
}

/// A union without its slivers; how many were dropped.
fn drop_slivers(mp: MultiPolygon<f64>) -> (MultiPolygon<f64>, usize) {
    let mut dropped = 0;
    let polygons =
        mp.0.into_iter()
            .filter_map(|p| {
                if approx_area_m2(p.exterior()) < SLIVER_M2 {
                    dropped += 1;
                    return None;
                }
                let (exterior, interiors) = p.into_inner();
                let before = interiors.len();
                let interiors: Vec<_> = interiors
                    .into_iter()
                    .filter(|r| approx_area_m2(r) >= SLIVER_M2)
                    .collect();
                dropped += before - interiors.len();
                Some(Polygon::new(exterior, interiors))
            })
            .collect();
    (MultiPolygon(polygons), dropped)
}

/// Reads a small CSV (groups, population) into its header and rows.
fn read_table(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>), ImportError> {
    let bytes = std::fs::read(path).map_err(|e| ImportError::io(path, e))?;
    let text = super::csv::decode(&bytes, None);
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(super::csv::detect_delimiter(&text))
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ImportError::format(path, e.to_string()))?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut rows = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| ImportError::format(path, e.to_string()))?;
        rows.push(row.iter().map(str::to_owned).collect());
    }
    Ok((header, rows))
}

fn column(header: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| header.iter().position(|h| h.eq_ignore_ascii_case(n)))
}

/// A territory of the groups file: id, name, comuni codes.
type Group = (String, String, Vec<String>);

/// Reads the groups CSV: the territories in order of first appearance, and which comuni are
/// grouped; problems go to `report`.
fn read_groups(
    path: &Path,
    by_code: &HashMap<String, Vec<Polygon<f64>>>,
    comuni: &Path,
    report: &mut Report,
) -> Result<(Vec<Group>, HashMap<String, usize>), ImportError> {
    let (header, rows) = read_table(path)?;
    let (Some(code_col), Some(terr_col)) = (
        column(&header, &["code", "codice", "pro_com_t"]),
        column(&header, &["territory", "territorio"]),
    ) else {
        return Err(ImportError::format(
            path,
            format!(
                "expected the columns `code` and `territory`; the header has: {}",
                header.join(", ")
            ),
        ));
    };
    let id_col = column(&header, &["id"]);
    let mut groups: BTreeMap<usize, (String, String, Vec<String>)> = BTreeMap::new();
    let mut order: HashMap<String, usize> = HashMap::new();
    let mut assigned: HashMap<String, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let cell = |c: usize| row.get(c).map_or("", String::as_str);
        let problem = |reason: String| Problem {
            record: Some(i + 1),
            id: None,
            field: header[code_col].clone(),
            reason,
        };
        let Some(code) = comune_code(cell(code_col)) else {
            report.problems.push(problem(format!(
                "`{}` is not an ISTAT comune code",
                cell(code_col)
            )));
            continue;
        };
        if !by_code.contains_key(&code) {
            report.problems.push(problem(format!(
                "comune {code} is not in {}",
                comuni.display()
            )));
            continue;
        }
        let name = cell(terr_col).to_owned();
        let next = order.len();
        let g = *order.entry(name.clone()).or_insert(next);
        if let Some(other) = assigned.insert(code.clone(), g)
            && other != g
        {
            report
                .problems
                .push(problem(format!("comune {code} is in two territories")));
            continue;
        }
        let id = id_col.map(|c| cell(c).to_owned()).filter(|s| !s.is_empty());
        let entry = groups
            .entry(g)
            .or_insert_with(|| (id.clone().unwrap_or_else(|| slug(&name)), name, Vec::new()));
        if !entry.2.contains(&code) {
            entry.2.push(code);
        }
    }
    Ok((groups.into_values().collect(), assigned))
}

/// The territories and the province, validated, or the report of what is wrong.
pub fn define(
    comuni: &Path,
    options: &DefineOptions,
    progress: &indicatif::ProgressBar,
) -> Result<(Vec<FeatureInput>, Report), ImportError> {
    let mut read = options.read.clone();
    read.map
        .insert("code".to_owned(), options.code_field.clone());
    read.map.insert(
        "name".to_owned(),
        format!("{NAME_FIELDS}|{}", options.code_field),
    );
    read.id_field = None;
    read.set = vec![("level".to_owned(), "comune".to_owned())];
    let (inputs, mut report) = super::prepare(comuni, Collection::Territories, read, progress)?;
    if !report.is_empty() {
        return Ok((Vec::new(), report));
    }
    let mut by_code: HashMap<String, Vec<Polygon<f64>>> = HashMap::new();
    for f in inputs {
        let Attributes::Territory(t) = &f.attributes else {
            continue;
        };
        let Some(code) = t.code.as_deref().and_then(comune_code) else {
            report.problems.push(Problem {
                record: None,
                id: None,
                field: options.code_field.clone(),
                reason: format!("comune `{}` has no ISTAT code", t.name),
            });
            continue;
        };
        let parts = by_code.entry(code).or_default();
        match f.geometry.into_inner() {
            geo::Geometry::Polygon(p) => parts.push(p),
            geo::Geometry::MultiPolygon(mp) => parts.extend(mp.0),
            _ => {}
        }
    }
    let (groups, assigned) = read_groups(&options.groups, &by_code, comuni, &mut report)?;
    let ungrouped = by_code
        .keys()
        .filter(|c| !assigned.contains_key(*c))
        .count();
    if ungrouped > 0 {
        report.notes.push(format!(
            "{ungrouped} comuni of {} are in no territory and left out",
            comuni.display()
        ));
    }
    let population = match &options.population {
        None => None,
        Some(p) => Some(read_population(p)?),
    };
    if !report.is_empty() {
        return Ok((Vec::new(), report));
    }
    let mut out = Vec::new();
    let mut slivers = 0;
    let mut all: Vec<Polygon<f64>> = Vec::new();
    let mut total_population: Option<u64> = population.as_ref().map(|_| 0);
    for (id, name, mut codes) in groups {
        codes.sort();
        let polygons: Vec<Polygon<f64>> = codes
            .iter()
            .flat_map(|c| by_code.get(c).cloned().unwrap_or_default())
            .collect();
        let (union, dropped) = drop_slivers(geo::unary_union(&polygons));
        slivers += dropped;
        all.extend(union.0.iter().cloned());
        let pop = population.as_ref().map(|p| {
            codes
                .iter()
                .map(|c| p.get(c).copied().unwrap_or(0))
                .sum::<u64>()
        });
        if let (Some(t), Some(p)) = (&mut total_population, pop) {
            *t += p;
        }
        out.push((id, name, codes, union, pop));
    }
    let (province, dropped) = drop_slivers(geo::unary_union(&all));
    slivers += dropped;
    if slivers > 0 {
        report.notes.push(format!(
            "dropped {slivers} slivers under {SLIVER_M2} m² (gaps and overlaps between the \
             comuni's boundaries)"
        ));
    }
    let mut features = Vec::new();
    let mut push =
        |id: &str, props: serde_json::Value, geometry: MultiPolygon<f64>, report: &mut Report| {
            let valid = ValidGeometry::new(geometry.into(), GeometryRule::Areal);
            let attributes = Attributes::from_json(Collection::Territories, props);
            let rid = RecordId::parse(id);
            match (rid, valid, attributes) {
                (Ok(id), Ok(geometry), Ok(attributes)) => features.push(FeatureInput {
                    id: Some(id),
                    geometry,
                    attributes,
                }),
                (a, b, c) => {
                    for e in [a.err(), b.err(), c.err()].into_iter().flatten() {
                        report.problems.push(Problem {
                            record: None,
                            id: Some(id.to_owned()),
                            field: e.field,
                            reason: e.reason,
                        });
                    }
                }
            }
        };
    push(
        &options.province_id,
        json!({"name": options.province_name, "level": "province", "code": options.province_code,
               "population": total_population}),
        province,
        &mut report,
    );
    for (id, name, codes, union, pop) in out {
        push(
            &id,
            json!({"name": name, "level": "territory", "parent": options.province_id,
                   "comuni": codes, "population": pop}),
            union,
            &mut report,
        );
    }
    Ok((features, report))
}

/// Population by comune code from an ISTAT-style CSV.
fn read_population(path: &Path) -> Result<HashMap<String, u64>, ImportError> {
    let (header, rows) = read_table(path)?;
    let (Some(code), Some(total)) = (
        column(
            &header,
            &[
                "pro_com_t",
                "codice",
                "code",
                "municipality_code",
                "pro_com",
            ],
        ),
        column(
            &header,
            &["tot", "totale", "popolazione", "population", "total"],
        ),
    ) else {
        return Err(ImportError::format(
            path,
            format!(
                "expected a comune code column (pro_com_t, codice, code) and a total \
                 (tot, totale, popolazione, population); the header has: {}",
                header.join(", ")
            ),
        ));
    };
    let mut out = HashMap::new();
    for row in rows {
        if let (Some(c), Some(n)) = (
            row.get(code).and_then(|c| comune_code(c)),
            row.get(total).and_then(|t| t.trim().parse::<u64>().ok()),
        ) {
            out.insert(c, n);
        }
    }
    Ok(out)
}
