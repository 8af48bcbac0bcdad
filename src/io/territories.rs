//! Territories defined as groups of comuni: each the dissolved union of its comuni, the
//! province the union of the territories (`faro territories define`).
//!
//! The comuni come from any file `faro import` reads (the ISTAT boundaries, a zipped
//! Shapefile in UTM 32N); a groups CSV (`code`, `territory`, and optionally `id`) says which
//! territory each comune belongs to; an optional population CSV (ISTAT's, with a comune code
//! column and a total) gives each territory its population.

use std::collections::HashMap;
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
    /// The province's id, name and ISTAT code, for groups without a `province` column
    /// (default `prov`, `Provincia`, none).
    pub province_id: Option<String>,
    pub province_name: Option<String>,
    pub province_code: Option<String>,
}

/// A 6-digit ISTAT comune code from `26001`, `026001` or `26001.0`.
pub fn comune_code(text: &str) -> Option<String> {
    let t = text.trim();
    let t = t.strip_suffix(".0").unwrap_or(t);
    (!t.is_empty() && t.len() <= 6 && t.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{t:0>6}"))
}

/// An id from a name: `prefix` and the name's letters and digits, lower case, unaccented,
/// the rest as single dashes.
fn slug(prefix: &str, name: &str) -> String {
    let mut out = String::from(prefix);
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

/// A row of a small CSV: its line in the file and its cells.
type Line = (usize, Vec<String>);

/// Reads a small CSV (groups, population) into its header and rows. The delimiter is the
/// one of the first line that has any (ISTAT's tables open with a title line).
fn read_table(path: &Path) -> Result<(Vec<String>, Vec<Line>), ImportError> {
    let bytes = std::fs::read(path).map_err(|e| ImportError::io(path, e))?;
    let text = super::csv::decode(&bytes, None);
    let first = text
        .lines()
        .find(|l| l.contains([',', ';', '\t']))
        .unwrap_or_default();
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(super::csv::detect_delimiter(first))
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
    // Lines counted from the record's byte offset: blank lines included, as an editor shows.
    let (mut counted_to, mut line) = (0_usize, 1_usize);
    for row in reader.records() {
        let row = row.map_err(|e| ImportError::format(path, e.to_string()))?;
        let mut at = row
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(counted_to)
            .clamp(counted_to, text.len());
        // A record's position is where its reading began: before the blank lines it skipped.
        while text
            .as_bytes()
            .get(at)
            .is_some_and(|b| matches!(b, b'\n' | b'\r'))
        {
            at += 1;
        }
        line += text
            .get(counted_to..at)
            .map_or(0, |t| t.matches('\n').count());
        counted_to = at;
        rows.push((line, row.iter().map(str::to_owned).collect()));
    }
    Ok((header, rows))
}

fn column(header: &[String], names: &[&str]) -> Option<usize> {
    names.iter().find_map(|n| {
        let n = n.to_lowercase();
        header.iter().position(|h| h.to_lowercase() == n)
    })
}

/// A territory of the groups file.
struct Group {
    id: String,
    name: String,
    /// Its province, an index into [`Groups::provinces`].
    province: usize,
    codes: Vec<String>,
}

/// A province of the groups file (its `province` column), or the one the options name.
struct Province {
    id: String,
    name: String,
    code: Option<String>,
}

/// What the groups file says: the provinces and their territories in order of first
/// appearance, and the territory each grouped comune is in.
struct Groups {
    provinces: Vec<Province>,
    territories: Vec<Group>,
    assigned: HashMap<String, usize>,
}

/// The province of a network of one province: the options' id, name and code.
fn single_province(options: &DefineOptions) -> Province {
    Province {
        id: options
            .province_id
            .clone()
            .unwrap_or_else(|| "prov".to_owned()),
        name: options
            .province_name
            .clone()
            .unwrap_or_else(|| "Provincia".to_owned()),
        code: options.province_code.clone(),
    }
}

/// Reads the groups CSV; problems go to `report`.
///
/// With a `province` column (a network of several provinces, as Mantova and Cremona in one),
/// each row also names its comune's province: every province is stored as the union of its
/// own territories, with the id of a `province_id` column or `prov-` and its name, and the
/// code of a `province_code` column.
fn read_groups(
    path: &Path,
    by_code: &ByCode,
    comuni: &str,
    options: &DefineOptions,
    report: &mut Report,
) -> Result<Groups, ImportError> {
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
    let province_col = column(&header, &["province", "provincia"]);
    let province_id_col = column(&header, &["province_id"]);
    let province_code_col = column(&header, &["province_code"]);
    if province_col.is_some()
        && (options.province_id.is_some()
            || options.province_name.is_some()
            || options.province_code.is_some())
    {
        return Err(ImportError::format(
            path,
            "the groups name their provinces (column `province`): --province-id, \
             --province-name and --province-code are for groups of one province",
        ));
    }
    if province_col.is_none() && (province_id_col.is_some() || province_code_col.is_some()) {
        return Err(ImportError::format(
            path,
            "a `province_id` or `province_code` column needs a `province` column (its name)",
        ));
    }
    let mut provinces: Vec<Province> = Vec::new();
    if province_col.is_none() {
        provinces.push(single_province(options));
    }
    let mut territories: Vec<Group> = Vec::new();
    // (province, territory name) -> index into `territories`.
    let mut order: HashMap<(usize, String), usize> = HashMap::new();
    let mut assigned: HashMap<String, usize> = HashMap::new();
    for (i, (_, row)) in rows.iter().enumerate() {
        let cell = |c: usize| row.get(c).map_or("", String::as_str);
        let problem = |column: usize, reason: String| Problem {
            record: Some(i + 1),
            id: None,
            field: header[column].clone(),
            reason,
        };
        let Some(code) = comune_code(cell(code_col)) else {
            report.problems.push(problem(
                code_col,
                format!("`{}` is not an ISTAT comune code", cell(code_col)),
            ));
            continue;
        };
        if !by_code.contains_key(&code) {
            report.problems.push(problem(
                code_col,
                format!("comune {code} is not in {comuni}"),
            ));
            continue;
        }
        let name = cell(terr_col).to_owned();
        if name.is_empty() {
            report
                .problems
                .push(problem(terr_col, format!("comune {code} has no territory")));
            continue;
        }
        let province = match province_col {
            None => 0,
            Some(c) if cell(c).is_empty() => {
                report
                    .problems
                    .push(problem(c, format!("comune {code} has no province")));
                continue;
            }
            Some(c) => {
                let id = province_id_col.map(&cell);
                let code = province_code_col.map(&cell);
                match province_index(&mut provinces, cell(c), id, code) {
                    Ok(k) => k,
                    Err(reason) => {
                        report.problems.push(problem(c, reason));
                        continue;
                    }
                }
            }
        };
        let next = territories.len();
        let g = *order.entry((province, name.clone())).or_insert(next);
        if g == next {
            let id = id_col.map(|c| cell(c).to_owned()).filter(|s| !s.is_empty());
            territories.push(Group {
                id: id.unwrap_or_else(|| slug("terr-", &name)),
                name: name.clone(),
                province,
                codes: Vec::new(),
            });
        }
        if let Some(other) = assigned.insert(code.clone(), g)
            && other != g
        {
            report.problems.push(problem(
                code_col,
                format!("comune {code} is in two territories"),
            ));
            continue;
        }
        let entry = &mut territories[g];
        if !entry.codes.contains(&code) {
            entry.codes.push(code);
        }
    }
    distinct_ids(&provinces, &territories, report);
    Ok(Groups {
        provinces,
        territories,
        assigned,
    })
}

/// The index of the province named `name` in `provinces`, added with its `id` (else `prov-`
/// and its name) and `code` if it is new; an error if an earlier row gave it another id or
/// code.
fn province_index(
    provinces: &mut Vec<Province>,
    name: &str,
    id: Option<&str>,
    code: Option<&str>,
) -> Result<usize, String> {
    let id = id
        .filter(|s| !s.is_empty())
        .map_or_else(|| slug("prov-", name), str::to_owned);
    let code = code.filter(|s| !s.is_empty()).map(str::to_owned);
    if let Some(k) = provinces.iter().position(|p| p.name == name) {
        let p = &provinces[k];
        if p.id != id || (code.is_some() && p.code != code) {
            return Err(format!(
                "province {name} has another id or code than on an earlier row"
            ));
        }
        return Ok(k);
    }
    provinces.push(Province {
        id,
        name: name.to_owned(),
        code,
    });
    Ok(provinces.len() - 1)
}

/// Ids are the records': two territories, or a territory and a province, may not share one.
fn distinct_ids(provinces: &[Province], territories: &[Group], report: &mut Report) {
    let mut ids: HashMap<&str, String> = HashMap::new();
    for (id, what) in provinces
        .iter()
        .map(|p| (p.id.as_str(), format!("province {}", p.name)))
        .chain(territories.iter().map(|t| {
            (
                t.id.as_str(),
                format!("territory {} of {}", t.name, provinces[t.province].name),
            )
        }))
    {
        if let Some(before) = ids.insert(id, what.clone()) {
            report.problems.push(Problem {
                record: None,
                id: Some(id.to_owned()),
                field: "id".to_owned(),
                reason: format!(
                    "{before} and {what} would both be stored as {id}: give the groups an `id` \
                     column (or a `province_id` column) to tell them apart"
                ),
            });
        }
    }
}

/// Comuni by ISTAT code: the file each came from (an index into the comuni files) and the
/// polygons of its features there.
type ByCode = HashMap<String, (usize, Vec<Polygon<f64>>)>;

/// The comuni of `comuni` by ISTAT code, with the problems of codes missing or in two files;
/// or the report of the first file with problems.
fn read_comuni(
    comuni: &[std::path::PathBuf],
    read: &ReadOptions,
    code_field: &str,
    progress: &indicatif::ProgressBar,
) -> Result<Result<(ByCode, Report), Report>, ImportError> {
    let mut report = Report::default();
    let mut by_code = ByCode::new();
    for (k, path) in comuni.iter().enumerate() {
        let (inputs, mut file_report) =
            super::prepare(path, Collection::Territories, read.clone(), progress)?;
        if !file_report.is_empty() {
            if comuni.len() > 1 {
                file_report
                    .notes
                    .push(format!("the problems are in {}", path.display()));
            }
            return Ok(Err(file_report));
        }
        if k == 0 {
            report.noun = file_report.noun;
        }
        report.notes.extend(file_report.notes);
        for f in inputs {
            let Attributes::Territory(t) = &f.attributes else {
                continue;
            };
            let Some(code) = t.code.as_deref().and_then(comune_code) else {
                report.problems.push(Problem {
                    record: None,
                    id: None,
                    field: code_field.to_owned(),
                    reason: format!(
                        "comune `{}` of {} has no ISTAT code",
                        t.name,
                        path.display()
                    ),
                });
                continue;
            };
            let (file, parts) = by_code.entry(code.clone()).or_insert((k, Vec::new()));
            if *file != k {
                report.problems.push(Problem {
                    record: None,
                    id: None,
                    field: code_field.to_owned(),
                    reason: format!(
                        "comune {code} is in {} and in {}",
                        comuni[*file].display(),
                        path.display()
                    ),
                });
                continue;
            }
            // A comune in several parts (features) of one file is their union.
            match f.geometry.into_inner() {
                geo::Geometry::Polygon(p) => parts.push(p),
                geo::Geometry::MultiPolygon(mp) => parts.extend(mp.0),
                _ => {}
            }
        }
    }
    Ok(Ok((by_code, report)))
}

/// The territories and the provinces, validated, or the report of what is wrong. `comuni` is
/// one layer or several (one per province, say), each comune in one of them only.
pub fn define(
    comuni: &[std::path::PathBuf],
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
    let names = comuni
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (by_code, mut report) = match read_comuni(comuni, &read, &options.code_field, progress)? {
        Ok(read) => read,
        Err(file_report) => return Ok((Vec::new(), file_report)),
    };
    let Groups {
        provinces,
        territories,
        assigned,
    } = read_groups(&options.groups, &by_code, &names, options, &mut report)?;
    let ungrouped = by_code
        .keys()
        .filter(|c| !assigned.contains_key(*c))
        .count();
    if ungrouped > 0 {
        report.notes.push(format!(
            "{ungrouped} comuni of {names} are in no territory and left out"
        ));
    }
    let population = match &options.population {
        None => None,
        Some(p) => Some((p, read_population(p)?)),
    };
    if let Some((path, table)) = &population {
        // A territory's population is that of all its comuni, or it would be wrong.
        for t in &territories {
            for c in t.codes.iter().filter(|c| !table.contains_key(*c)) {
                report.problems.push(Problem {
                    record: None,
                    id: Some(t.id.clone()),
                    field: "population".to_owned(),
                    reason: format!(
                        "comune {c} of territory {} is not in {}",
                        t.name,
                        path.display()
                    ),
                });
            }
        }
    }
    if !report.is_empty() {
        return Ok((Vec::new(), report));
    }
    let table = population.map(|(_, t)| t);
    let mut slivers = 0;
    // Per province: the parts of its territories' outlines, and its population.
    let mut parts: Vec<Vec<Polygon<f64>>> = vec![Vec::new(); provinces.len()];
    let mut totals: Vec<Option<u64>> = vec![table.as_ref().map(|_| 0); provinces.len()];
    let mut out = Vec::new();
    for mut t in territories {
        t.codes.sort();
        let polygons: Vec<Polygon<f64>> = t
            .codes
            .iter()
            .flat_map(|c| {
                by_code
                    .get(c)
                    .map(|(_, parts)| parts.clone())
                    .unwrap_or_default()
            })
            .collect();
        let (union, dropped) = drop_slivers(geo::unary_union(&polygons));
        slivers += dropped;
        parts[t.province].extend(union.0.iter().cloned());
        let pop = table
            .as_ref()
            .map(|p| t.codes.iter().filter_map(|c| p.get(c)).sum::<u64>());
        if let (Some(total), Some(p)) = (&mut totals[t.province], pop) {
            *total += p;
        }
        out.push((t, union, pop));
    }
    let mut outlines = Vec::new();
    for polygons in parts {
        let (outline, dropped) = drop_slivers(geo::unary_union(&polygons));
        slivers += dropped;
        outlines.push(outline);
    }
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
    for ((p, outline), total) in provinces.iter().zip(outlines).zip(totals) {
        push(
            &p.id,
            json!({"name": p.name, "level": "province", "code": p.code, "population": total}),
            outline,
            &mut report,
        );
    }
    for (t, union, pop) in out {
        push(
            &t.id,
            json!({"name": t.name, "level": "territory", "parent": provinces[t.province].id,
                   "comuni": t.codes, "population": pop}),
            union,
            &mut report,
        );
    }
    Ok((features, report))
}

/// The columns a population table's comune code is looked for in, in order.
const POPULATION_CODES: &[&str] = &[
    "pro_com_t",
    "codice comune",
    "codice istat",
    "codice",
    "code",
    "municipality_code",
    "pro_com",
];
/// The columns its total is looked for in.
const POPULATION_TOTALS: &[&str] = &["tot", "totale", "popolazione", "population", "total"];
/// An age column: the table has a row per age, which are added up (ISTAT's own age total,
/// 999 or `Totale`, is left out).
const POPULATION_AGES: &[&str] = &["età", "eta", "age", "classe di età"];

/// Population by comune code from an ISTAT-style CSV: one row per comune, or one per comune
/// and age (as ISTAT publishes it), after any title lines.
fn read_population(path: &Path) -> Result<HashMap<String, u64>, ImportError> {
    let (first, mut rows) = read_table(path)?;
    let mut header = first.clone();
    // ISTAT's downloads open with a title line or two before the header.
    let mut skipped = 0;
    while column(&header, POPULATION_CODES).is_none() && skipped < 5 && !rows.is_empty() {
        header = rows.remove(0).1;
        skipped += 1;
    }
    let (Some(code), Some(total)) = (
        column(&header, POPULATION_CODES),
        column(&header, POPULATION_TOTALS),
    ) else {
        return Err(ImportError::format(
            path,
            format!(
                "expected a comune code column ({}) and a total ({}); the header has: {}",
                POPULATION_CODES.join(", "),
                POPULATION_TOTALS.join(", "),
                first.join(", ")
            ),
        ));
    };
    let age = column(&header, POPULATION_AGES);
    let mut out: HashMap<String, u64> = HashMap::new();
    for (line, row) in &rows {
        let cell = |c: usize| row.get(c).map_or("", |s| s.trim());
        // Blank lines, and a closing total or note without a comune code.
        if row.iter().all(|c| c.trim().is_empty())
            || cell(code).is_empty()
            || ["totale", "total"].contains(&cell(code).to_lowercase().as_str())
        {
            continue;
        }
        let Some(c) = comune_code(cell(code)) else {
            return Err(ImportError::format(
                path,
                format!(
                    "line {line}: field `{}`: `{}` is not an ISTAT comune code",
                    header[code],
                    cell(code)
                ),
            ));
        };
        if let Some(a) = age
            && (cell(a) == "999" || cell(a).eq_ignore_ascii_case("totale"))
        {
            continue;
        }
        let Ok(n) = cell(total).parse::<u64>() else {
            return Err(ImportError::format(
                path,
                format!(
                    "line {line}: field `{}`: `{}` is not a whole number",
                    header[total],
                    cell(total)
                ),
            ));
        };
        match out.entry(c) {
            std::collections::hash_map::Entry::Occupied(e) if age.is_none() => {
                return Err(ImportError::format(
                    path,
                    format!(
                        "line {line}: comune {} appears twice (a table with a row per age \
                         needs an age column: {})",
                        e.key(),
                        POPULATION_AGES.join(", ")
                    ),
                ));
            }
            e => *e.or_insert(0) += n,
        }
    }
    Ok(out)
}

/// What a definition would overwrite that is not its own: a stored record with the id of one
/// of `inputs` that is another province (another name or ISTAT code, or an outline that hardly
/// overlaps the new one: two networks that both left the default id `prov`), a territory of
/// another province (another parent, or comuni of other provinces only), or not a province or
/// territory at all. One message each; empty when none.
pub fn taken_ids(stored: &[crate::domain::Record], inputs: &[FeatureInput]) -> Vec<String> {
    use crate::domain::territory::TerritoryLevel;
    let mut out = Vec::new();
    for input in inputs {
        let (Some(id), Attributes::Territory(new)) = (&input.id, &input.attributes) else {
            continue;
        };
        let Some(record) = stored
            .iter()
            .find(|r| r.collection() == Collection::Territories && r.id() == id)
        else {
            continue;
        };
        let Attributes::Territory(old) = record.attributes() else {
            continue;
        };
        let clash = match (old.level, new.level) {
            (TerritoryLevel::Province, TerritoryLevel::Province) if old.name != new.name => {
                Some(format!(
                    "{id} is stored as the province {}, not {}: give this one its own id \
                     (--province-id, or a `province_id` column)",
                    old.name, new.name
                ))
            }
            (TerritoryLevel::Province, TerritoryLevel::Province)
                if old.code.is_some() && new.code.is_some() && old.code != new.code =>
            {
                Some(format!(
                    "{id} is stored as the province of ISTAT code {}, not {}: give this one its \
                     own id (--province-id, or a `province_id` column)",
                    old.code.as_deref().unwrap_or_default(),
                    new.code.as_deref().unwrap_or_default()
                ))
            }
            (TerritoryLevel::Province, TerritoryLevel::Province)
                if overlap(record.geometry(), input.geometry.geometry()) < 0.5 =>
            {
                Some(format!(
                    "{id} is stored as another province {} (its outline and this one's hardly \
                     overlap): give this one its own id (--province-id, or a `province_id` \
                     column)",
                    old.name
                ))
            }
            (TerritoryLevel::Territory, TerritoryLevel::Territory) if old.parent != new.parent => {
                Some(format!(
                    "{id} is stored as a territory of {}, not of {}: give this one its own id \
                     (an `id` column in the groups)",
                    old.parent.as_deref().unwrap_or("no province"),
                    new.parent.as_deref().unwrap_or("no province"),
                ))
            }
            (TerritoryLevel::Territory, TerritoryLevel::Territory)
                if !old.comuni.is_empty()
                    && !new.comuni.is_empty()
                    && !old
                        .comuni
                        .iter()
                        .any(|c| new.comuni.iter().any(|n| n.get(..3) == c.get(..3))) =>
            {
                Some(format!(
                    "{id} is stored as a territory of other provinces' comuni ({}…, this one \
                     {}…): give this one its own id (an `id` column in the groups)",
                    old.comuni[0], new.comuni[0]
                ))
            }
            (a, b) if a != b => Some(format!(
                "{id} is stored as a {a}, and would become a {b}: give this one its own id"
            )),
            _ => None,
        };
        out.extend(clash);
    }
    out
}

/// How much two outlines overlap: the area of their intersection over the smaller one's
/// (planar in degrees, a ratio only); 1 for anything not areal.
fn overlap(a: &geo::Geometry<f64>, b: &geo::Geometry<f64>) -> f64 {
    use geo::{Area, BooleanOps};
    let areal = |g: &geo::Geometry<f64>| match g {
        geo::Geometry::Polygon(p) => Some(MultiPolygon(vec![p.clone()])),
        geo::Geometry::MultiPolygon(mp) => Some(mp.clone()),
        _ => None,
    };
    let (Some(a), Some(b)) = (areal(a), areal(b)) else {
        return 1.0;
    };
    let smaller = a.unsigned_area().min(b.unsigned_area());
    if smaller <= 0.0 {
        return 1.0;
    }
    a.intersection(&b).unsigned_area() / smaller
}
