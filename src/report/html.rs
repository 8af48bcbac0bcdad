//! `report.html`: one self-contained printable page. Everything is inline (the stylesheet,
//! the SVG maps); the page names no URL, so it opens and prints without a network.

use std::fmt::Write as _;

use geo::{BoundingRect, InteriorPoint, Rect};

use super::Data;
use super::svg::{self, Frame, Symbol, escape};
use crate::analysis::coverage::{Figures, representative_point};
use crate::domain::{Attributes, Record, ServiceKind};

const STYLE: &str = r"
body { font-family: system-ui, 'Segoe UI', 'Noto Sans', 'DejaVu Sans', sans-serif; color: #222;
  line-height: 1.4; max-width: 62rem; margin: 1.5rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; }
h2 { font-size: 1.25rem; margin: 1.6rem 0 .4rem; border-bottom: 2px solid #5b7042; }
h3 { font-size: 1.05rem; margin: 1rem 0 .3rem; }
.meta { color: #555; margin: 0 0 1rem; }
dl.params { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: .5rem 0; }
dl.params dt { font-weight: bold; }
dl.params dd { margin: 0; }
.note { background: #fff6d6; border-left: 4px solid #d9a400; padding: .4rem .8rem; margin: .8rem 0; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; margin: .4rem 0 1rem; }
th, td { border-bottom: 1px solid #ccc; padding: .2rem .35rem; text-align: right; vertical-align: top; }
th { background: #eef2e8; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
tr.total td { font-weight: bold; border-top: 2px solid #444; }
figure { margin: .6rem 0 1.2rem; break-inside: avoid; }
figcaption { font-size: .85rem; color: #444; }
svg.map { display: block; width: 100%; height: auto; }
footer { margin-top: 2rem; font-size: .8rem; color: #555; }
@media print {
  @page { size: A4; margin: 14mm; }
  body { max-width: none; margin: 0; padding: 0; font-size: 9.5pt; }
  section.page { break-before: page; }
  figure, table, tr { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
}
";

/// Uncovered records listed on the page at most (all of them are in the layers).
const MAX_LISTED: usize = 40;

const COVERED: &str = "#d4e8c4";
const GAP_STROKE: &str = "#b03a2e";
const OUTLINE: &str = "#3b4a2a";
const SETTLEMENT: &str = "#e7298a";
const WORKSITE: &str = "#8c6d31";
/// Distance classes of the hexagon map, as multiples of the radius, and their colours.
const CLASSES: [(f64, &str); 4] = [
    (0.5, "#1a9850"),
    (1.0, "#91cf60"),
    (1.5, "#fee08b"),
    (2.0, "#fc8d59"),
];
const BEYOND: &str = "#d73027";

fn metres(m: f64) -> String {
    if m >= 1000.0 {
        format!("{} km", trim(m / 1000.0, 1))
    } else {
        format!("{} m", trim(m, 1))
    }
}

/// `x` with at most `places` decimals, no trailing zeros.
fn trim(x: f64, places: usize) -> String {
    let s = format!("{x:.places$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

fn kind_label(kind: &str) -> String {
    kind.replace('_', " ")
}

fn kinds_text(data: &Data) -> String {
    let kinds = &data.options.query.kinds;
    if kinds.is_empty() {
        "services of every kind".to_owned()
    } else {
        kinds
            .iter()
            .map(|k| kind_label(k.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn territory_name(f: &Figures) -> String {
    f.territory
        .as_ref()
        .map_or_else(|| "Total".to_owned(), |t| t.attributes().name().to_owned())
}

fn attribution(data: &Data) -> String {
    let approximate = data.report.territories.iter().any(|f| {
        f.territory
            .as_ref()
            .is_some_and(|t| matches!(t.attributes(), Attributes::Territory(x) if x.approximate))
    });
    format!(
        "Data: the network's records in faro{} · H3 grid: h3o",
        if approximate {
            " · approximate territory outlines"
        } else {
            ""
        }
    )
}

/// The bounding box of some records' geometries.
fn extent<'a>(records: impl Iterator<Item = &'a Record>) -> Option<Rect<f64>> {
    records
        .filter_map(|r| r.geometry().bounding_rect())
        .reduce(|a, b| {
            Rect::new(
                geo::coord! { x: a.min().x.min(b.min().x), y: a.min().y.min(b.min().y) },
                geo::coord! { x: a.max().x.max(b.max().x), y: a.max().y.max(b.max().y) },
            )
        })
}

fn area_of(record: &Record) -> geo::MultiPolygon<f64> {
    match record.geometry() {
        geo::Geometry::Polygon(p) => geo::MultiPolygon::new(vec![p.clone()]),
        geo::Geometry::MultiPolygon(m) => m.clone(),
        _ => geo::MultiPolygon::new(Vec::new()),
    }
}

/// The service kinds present among the chosen services, in declaration order.
fn kinds_present(data: &Data) -> Vec<(ServiceKind, usize)> {
    ServiceKind::ALL
        .iter()
        .map(|k| {
            let n = data
                .services
                .iter()
                .filter(|s| s.as_service().is_some_and(|s| s.kind == *k))
                .count();
            (*k, n)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn services_layer(out: &mut String, data: &Data, frame: &Frame) {
    for s in &data.services {
        let (Some(p), Some(service)) = (representative_point(s.geometry()), s.as_service()) else {
            continue;
        };
        let (x, y) = frame.xy(p.0);
        let (colour, _) = crate::tiles::style::service_symbol(service.kind);
        let title = format!(
            "{} ({})",
            s.attributes().name(),
            kind_label(service.kind.as_str())
        );
        svg::symbol(out, &Symbol::Dot(colour), x, y, Some(&title));
    }
}

/// Territory outlines; with `focus`, the other territories are dimmed and its outline drawn
/// heavier.
fn outlines(out: &mut String, data: &Data, frame: &Frame, focus: Option<usize>) {
    for (i, f) in data.report.territories.iter().enumerate() {
        let Some(t) = &f.territory else { continue };
        let (fill, width) = match focus {
            Some(j) if j == i => ("none", 3.0),
            Some(_) => (r#"#ffffff" fill-opacity="0.6"#, 1.2),
            None => ("none", 1.6),
        };
        let _ = write!(
            out,
            r#"<path d="{}" fill="{fill}" stroke="{OUTLINE}" stroke-width="{width}" stroke-linejoin="round"/>"#,
            frame.path(&area_of(t))
        );
    }
}

fn labels(out: &mut String, data: &Data, frame: &Frame) {
    for f in &data.report.territories {
        let Some(t) = &f.territory else { continue };
        if let Some(p) = t.geometry().interior_point() {
            let (x, y) = frame.xy(p.0);
            svg::label(out, t.attributes().name(), x, y, 14.0);
        }
    }
}

fn service_legend(data: &Data) -> Vec<(Symbol, String)> {
    kinds_present(data)
        .into_iter()
        .map(|(k, n)| {
            let (colour, _) = crate::tiles::style::service_symbol(k);
            (
                Symbol::Dot(colour),
                format!("{} ({n})", kind_label(k.as_str())),
            )
        })
        .collect()
}

/// The coverage map of `frame`: covered area, gaps, outlines, services, uncovered records and
/// suggested sites.
fn coverage_map(data: &Data, frame: &Frame, id: &str, title: &str, focus: Option<usize>) -> String {
    let radius = metres(data.options.query.radius_m);
    let hatch = format!("hatch-{id}");
    let defs = format!(
        r##"<pattern id="{hatch}" patternUnits="userSpaceOnUse" width="7" height="7" patternTransform="rotate(45)"><rect width="7" height="7" fill="#f9e3df"/><line x1="0" y1="0" x2="0" y2="7" stroke="{GAP_STROKE}" stroke-width="1.2" stroke-opacity="0.7"/></pattern>"##
    );
    let mut body = String::new();
    for f in &data.report.territories {
        let Some(t) = &f.territory else { continue };
        let _ = write!(
            body,
            r#"<path d="{}" fill="{COVERED}" stroke="none"/>"#,
            frame.path(&area_of(t))
        );
    }
    for g in &data.gaps {
        let _ = write!(
            body,
            r#"<path d="{}" fill="url(#{hatch})" fill-rule="evenodd" stroke="{GAP_STROKE}" stroke-width="0.6"/>"#,
            frame.path(&g.geometry)
        );
    }
    outlines(&mut body, data, frame, focus);
    services_layer(&mut body, data, frame);
    let mut legend = vec![
        (
            Symbol::Area {
                fill: COVERED.to_owned(),
                stroke: OUTLINE.to_owned(),
            },
            format!("within {radius} of a service"),
        ),
        (
            Symbol::Area {
                fill: format!("url(#{hatch})"),
                stroke: GAP_STROKE.to_owned(),
            },
            format!("gap: beyond {radius}"),
        ),
    ];
    if let Some(found) = &data.uncovered {
        for u in found {
            let d = &u.demand;
            let (x, y) = frame.xy(d.point.0);
            let what = if d.is_settlement {
                format!("{}: {} people", d.record.attributes().name(), d.size)
            } else {
                format!("{}: {} workers", d.record.attributes().name(), d.size)
            };
            let s = if d.is_settlement {
                Symbol::Triangle(SETTLEMENT)
            } else {
                Symbol::Square(WORKSITE)
            };
            svg::symbol(&mut body, &s, x, y, Some(&what));
        }
        legend.push((
            Symbol::Triangle(SETTLEMENT),
            "uncovered settlement".to_owned(),
        ));
        legend.push((Symbol::Square(WORKSITE), "uncovered worksite".to_owned()));
    }
    labels(&mut body, data, frame);
    if let Some(s) = &data.suggestions {
        for g in &s.suggestions {
            let (x, y) = frame.xy(g.position.0);
            let title = format!(
                "suggested site {}: {} people, {} workers newly covered",
                g.rank, g.people, g.workers
            );
            svg::site(&mut body, g.rank, x, y, &title);
        }
        if !s.suggestions.is_empty() {
            legend.push((Symbol::Site, "suggested new site (rank)".to_owned()));
        }
    }
    legend.extend(service_legend(data));
    svg::map(frame, id, title, &defs, &body, &legend, &attribution(data))
}

/// The hexagon map: distance from each cell's centre to the nearest chosen service.
fn hex_map(data: &Data, frame: &Frame) -> String {
    let r = data.options.query.radius_m;
    let mut body = String::new();
    for h in &data.hexes {
        let colour = h
            .distance_m
            .and_then(|d| CLASSES.iter().find(|(m, _)| d <= m * r).map(|(_, c)| *c))
            .unwrap_or(BEYOND);
        let cell = geo::MultiPolygon::new(vec![crate::analysis::coverage::cell_polygon(h.cell)]);
        let _ = write!(
            body,
            r##"<path d="{}" fill="{colour}" stroke="#ffffff" stroke-width="0.4"/>"##,
            frame.path(&cell)
        );
    }
    outlines(&mut body, data, frame, None);
    services_layer(&mut body, data, frame);
    labels(&mut body, data, frame);
    let mut legend: Vec<(Symbol, String)> = Vec::new();
    let mut from = 0.0;
    for (m, colour) in CLASSES {
        legend.push((
            Symbol::Area {
                fill: colour.to_owned(),
                stroke: "#ffffff".to_owned(),
            },
            format!("{} to {}", metres(from * r), metres(m * r)),
        ));
        from = m;
    }
    legend.push((
        Symbol::Area {
            fill: BEYOND.to_owned(),
            stroke: "#ffffff".to_owned(),
        },
        format!("over {}", metres(2.0 * r)),
    ));
    legend.extend(service_legend(data));
    let resolution = u8::from(data.options.resolution);
    svg::map(
        frame,
        "hexes",
        &format!("Distance to the nearest service, H3 resolution {resolution}"),
        "",
        &body,
        &legend,
        &attribution(data),
    )
}

fn share(f: &Figures) -> String {
    format!("{:.1} %", f.covered_share() * 100.0)
}

fn figures_table(out: &mut String, data: &Data, rows: &[&Figures]) {
    let demand = data.has_demand();
    let capacity = data.options.query.capacity;
    out.push_str("<table><thead><tr><th>Territory</th><th>Area km²</th><th>Covered km²</th><th>Covered share</th><th>Services</th>");
    if demand {
        out.push_str("<th>Settlements covered</th><th>People covered</th><th>Worksites covered</th><th>Workers covered</th>");
    }
    if capacity {
        out.push_str("<th>Beds</th>");
        if demand {
            out.push_str("<th>People in reach of beds</th><th>Without a bed</th>");
        }
    }
    out.push_str("</tr></thead><tbody>");
    for f in rows {
        let class = if f.territory.is_none() {
            " class=\"total\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr{class}><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td>",
            escape(&territory_name(f)),
            f.area_km2,
            f.covered_area_km2,
            share(f),
            f.services
        );
        if demand {
            for d in [f.settlements, f.worksites] {
                let d = d.unwrap_or_default();
                let _ = write!(
                    out,
                    "<td>{} of {}</td><td>{} of {}</td>",
                    d.covered, d.total, d.size_covered, d.size_total
                );
            }
        }
        if capacity {
            let c = f.capacity.unwrap_or_default();
            let _ = write!(out, "<td>{}</td>", c.beds);
            if demand {
                let _ = write!(
                    out,
                    "<td>{}</td><td>{}</td>",
                    c.demand_in_reach.unwrap_or(0),
                    c.without_bed.unwrap_or(0)
                );
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn parameters(out: &mut String, data: &Data) {
    let q = &data.options.query;
    let mut rows: Vec<(&str, String)> = vec![
        ("Services", kinds_text(data)),
        (
            "Catchment",
            format!("{} along the WGS84 ellipsoid", metres(q.radius_m)),
        ),
        (
            "Territories",
            data.report
                .territories
                .iter()
                .map(territory_name)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "Month",
            q.month.map_or_else(
                || "every month".to_owned(),
                |m| MONTHS[usize::from(m.number()).saturating_sub(1) % 12].to_owned(),
            ),
        ),
        (
            "Open at",
            q.open_at.map_or_else(
                || "any time (opening hours not considered)".to_owned(),
                |t| format!("{} (Europe/Rome)", t.format("%Y-%m-%d %H:%M")),
            ),
        ),
        (
            "Shelter capacity",
            if q.capacity {
                "people assigned to beds (vacancy, else capacity)".to_owned()
            } else {
                "not considered".to_owned()
            },
        ),
        (
            "Hexagons and candidate sites",
            format!("H3 resolution {}", u8::from(data.options.resolution)),
        ),
    ];
    if data.suggestions.is_some() {
        rows.push(("Suggested sites", format!("at most {}", data.options.k)));
    }
    out.push_str("<dl class=\"params\">");
    for (k, v) in rows {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(&v));
    }
    out.push_str("</dl>");
}

fn summary(out: &mut String, data: &Data) {
    let t = &data.report.total;
    let _ = write!(
        out,
        "<p>Across {} territories, {:.1} of {:.1} km² ({}) lie within {} of one of {} chosen services.",
        data.report.territories.len(),
        t.covered_area_km2,
        t.area_km2,
        share(t),
        metres(data.options.query.radius_m),
        t.services
    );
    if let (Some(s), Some(w)) = (t.settlements, t.worksites) {
        let _ = write!(
            out,
            " {} of {} settlements ({} of {} people) and {} of {} worksites ({} of {} workers) are covered.",
            s.covered,
            s.total,
            s.size_covered,
            s.size_total,
            w.covered,
            w.total,
            w.size_covered,
            w.size_total
        );
    }
    out.push_str("</p>");
}

fn suggestions_section(out: &mut String, data: &Data) {
    let Some(s) = &data.suggestions else { return };
    out.push_str("<h2>Suggested new sites</h2>");
    let _ = write!(
        out,
        "<p>Greedy maximal covering over {} candidate sites (centres of H3 cells of resolution {}), keeping the existing services. Before any new site, {} people in {} settlements and {} workers at {} worksites are not covered.</p>",
        s.candidates,
        u8::from(data.options.resolution),
        s.uncovered_people,
        s.uncovered_settlements,
        s.uncovered_workers,
        s.uncovered_worksites
    );
    if s.suggestions.is_empty() {
        out.push_str("<p>No candidate site would cover anything more.</p>");
        return;
    }
    out.push_str("<table><thead><tr><th>Rank</th><th class=\"text\">Territory</th><th>Longitude</th><th>Latitude</th><th>People newly covered</th><th>Workers newly covered</th><th>Settlements</th><th>Worksites</th></tr></thead><tbody>");
    for g in &s.suggestions {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"text\">{}</td><td>{:.5}</td><td>{:.5}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            g.rank,
            escape(g.territory.attributes().name()),
            g.position.x(),
            g.position.y(),
            g.people,
            g.workers,
            g.settlements,
            g.worksites
        );
    }
    out.push_str("</tbody></table>");
}

fn uncovered_section(out: &mut String, data: &Data) {
    let Some(found) = &data.uncovered else { return };
    out.push_str("<h2>Uncovered settlements and worksites</h2>");
    if found.is_empty() {
        out.push_str("<p>None: every settlement and worksite is covered.</p>");
        return;
    }
    let _ = write!(
        out,
        "<p>{} records beyond reach, farthest first{}.</p>",
        found.len(),
        if found.len() > MAX_LISTED {
            format!(
                "; the first {MAX_LISTED} of each kind are listed, all of them are in the <code>uncovered</code> layer"
            )
        } else {
            String::new()
        }
    );
    for (settlements, heading, size) in [
        (true, "Settlements", "People"),
        (false, "Worksites", "Workers"),
    ] {
        let rows: Vec<_> = found
            .iter()
            .filter(|u| u.demand.is_settlement == settlements)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "<h3>{heading}</h3><table><thead><tr><th class=\"text\">Name</th><th class=\"text\">Territory</th><th>{size}</th><th>Not covered</th><th>Distance</th><th class=\"text\">Nearest service</th></tr></thead><tbody>"
        );
        for u in rows.iter().take(MAX_LISTED) {
            let d = &u.demand;
            let territories: Vec<&str> = u
                .territories
                .iter()
                .map(|t| t.attributes().name())
                .collect();
            let (distance, nearest) = d.nearest.as_ref().map_or_else(
                || ("none".to_owned(), "none".to_owned()),
                |(s, m)| (metres(m.round()), s.attributes().name().to_owned()),
            );
            let _ = write!(
                out,
                "<tr><td class=\"text\">{}</td><td class=\"text\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
                escape(d.record.attributes().name()),
                escape(&territories.join(", ")),
                d.size,
                d.uncovered,
                escape(&distance),
                escape(&nearest)
            );
        }
        out.push_str("</tbody></table>");
    }
}

/// The whole page.
pub fn page(data: &Data) -> String {
    let title = format!(
        "Coverage of {} within {}",
        kinds_text(data),
        metres(data.options.query.radius_m)
    );
    let mut out = String::with_capacity(1 << 20);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title><style>{STYLE}</style></head><body><header><h1>{t}</h1><p class=\"meta\">Territorial coverage analysis · made on {} by faro {}</p></header>",
        data.made_at.format("%Y-%m-%d %H:%M %Z"),
        env!("CARGO_PKG_VERSION"),
        t = escape(&title)
    );
    parameters(&mut out, data);
    if data.has_demand() {
        out.push_str("<p class=\"note\"><strong>Restricted.</strong> This report holds settlements, worksites and confidential services: for the network's operators only.</p>");
    } else {
        out.push_str("<p class=\"note\"><strong>Public report.</strong> Computed from public services only, as an anonymous reader sees them: settlements, worksites and their figures, the uncovered records and the suggested sites are left out.</p>");
    }
    out.push_str("<h2>Coverage per territory</h2>");
    summary(&mut out, data);
    let mut rows: Vec<&Figures> = data.report.territories.iter().collect();
    rows.push(&data.report.total);
    figures_table(&mut out, data, &rows);
    let all = extent(
        data.report
            .territories
            .iter()
            .filter_map(|f| f.territory.as_deref()),
    );
    if let Some(rect) = all {
        let frame = Frame::fit(rect, 1000.0, 1100.0);
        let caption = "Coverage of the territories: areas within reach, gaps, services and what lies beyond reach";
        let _ = write!(
            out,
            "<figure>{}<figcaption>{}</figcaption></figure>",
            coverage_map(data, &frame, "all", caption, None),
            escape(caption)
        );
        let _ = write!(
            out,
            "<section class=\"page\"><h2>Distance to the nearest service</h2><figure>{}<figcaption>Each H3 cell coloured by the geodesic distance from its centre to the nearest chosen service.</figcaption></figure></section>",
            hex_map(data, &frame)
        );
    }
    out.push_str("<section class=\"page\">");
    suggestions_section(&mut out, data);
    uncovered_section(&mut out, data);
    out.push_str("</section>");
    for (i, f) in data.report.territories.iter().enumerate() {
        let Some(t) = &f.territory else { continue };
        let Some(rect) = t.geometry().bounding_rect() else {
            continue;
        };
        let name = t.attributes().name();
        let _ = write!(
            out,
            "<section class=\"page territory\"><h2>{}</h2>",
            escape(name)
        );
        figures_table(&mut out, data, &[f]);
        let frame = Frame::fit(rect, 1000.0, 1000.0);
        let caption = format!("Coverage of {name}");
        let _ = write!(
            out,
            "<figure>{}<figcaption>{}</figcaption></figure></section>",
            coverage_map(data, &frame, &format!("t{i}"), &caption, Some(i)),
            escape(&caption)
        );
    }
    let _ = write!(
        out,
        "<section class=\"page\"><h2>Method</h2><p>A chosen service covers what lies within {} of it, measured on the WGS84 ellipsoid: its catchment is a geodesic disc. Covered area is the geodesic area of each territory within the union of the catchments (a service beyond a border covers too). A settlement or worksite is covered when its geodesic distance to the nearest chosen service is at most the radius; a polygon counts at a point inside it. People are the settlements' population estimates and workers the worksites' estimates. A service without opening hours counts as always open. Maps are drawn in an equirectangular projection scaled at the map's centre, north up; the scale bar holds at the centre.</p><p>{}</p><p>Files of this report: <code>coverage.csv</code> (the table), <code>coverage.gpkg</code> (layers territories, gaps, {}hexes, {}services; WGS84) and the same layers as GeoJSON.</p></section>",
        metres(data.options.query.radius_m),
        escape(&attribution(data)),
        if data.uncovered.is_some() {
            "uncovered, "
        } else {
            ""
        },
        if data.suggestions.is_some() {
            "suggestions, "
        } else {
            ""
        },
    );
    let _ = writeln!(
        out,
        "<footer>{} · made on {}</footer></body></html>",
        escape(&title),
        data.made_at.format("%Y-%m-%d %H:%M %Z")
    );
    out
}
