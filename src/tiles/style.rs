//! The MapLibre style (`/style.json`) over faro's tiles: one colour and one symbol (a short
//! letter code on the marker) per service kind, territories as outlines with their names,
//! settlements and worksites drawn distinctly (for callers who may see them), and cluster
//! layers sized and labelled by their counts.
//!
//! The style asks only faro for everything: its one source is faro's TileJSON, and its labels
//! are drawn in the browser from Noto Sans files faro serves under `/fonts/` (the style's
//! `font-faces`; no `glyphs`, so no glyph set is ever requested, and a character neither file
//! covers is drawn with a local font).

use serde_json::{Value, json};

use super::layers::LayerSet;
use crate::domain::{Collection, ServiceKind};

/// Colour and symbol of each service kind on the map.
pub fn service_symbol(kind: ServiceKind) -> (&'static str, &'static str) {
    match kind {
        ServiceKind::FocalPoint => ("#d7191c", "F"),
        ServiceKind::Pas => ("#2c7bb6", "P"),
        ServiceKind::Shelter => ("#7b3294", "S"),
        ServiceKind::HelpDesk => ("#fdae61", "H"),
        ServiceKind::OutreachUnit => ("#1a9641", "U"),
        ServiceKind::JobCentre => ("#0571b0", "J"),
        ServiceKind::LabourInspectorate => ("#5e3c99", "I"),
        ServiceKind::Prefecture => ("#404040", "Pr"),
        ServiceKind::ReceptionCentre => ("#c2a5cf", "R"),
        ServiceKind::Health => ("#e66101", "+"),
        ServiceKind::LegalAid => ("#018571", "L"),
        ServiceKind::TradeUnion => ("#a6611a", "T"),
        ServiceKind::SocialServices => ("#92c5de", "So"),
        ServiceKind::Other => ("#878787", "?"),
    }
}

/// The font every label uses (served by faro).
pub const FONT: &str = "Noto Sans Regular";

/// The files of [`FONT`] under faro's `/fonts/`, with the characters each one draws.
pub const FONT_FILES: [(&str, &[&str]); 2] = [
    (
        "noto-sans-latin-400-normal.woff2",
        &[
            "U+0000-00FF",
            "U+0131",
            "U+0152-0153",
            "U+02C6",
            "U+2000-206F",
            "U+20AC",
            "U+2122",
            "U+2212",
        ],
    ),
    (
        "noto-sans-latin-ext-400-normal.woff2",
        &[
            "U+0100-0130",
            "U+0132-0151",
            "U+0154-024F",
            "U+1E00-1EFF",
            "U+20A0-20AB",
            "U+A720-A7FF",
        ],
    ),
];

/// The style's `font-faces`: [`FONT`] from faro's own files.
fn font_faces(base: &str) -> Value {
    let faces: Vec<Value> = FONT_FILES
        .iter()
        .map(|(file, ranges)| json!({ "url": format!("{base}/fonts/{file}"), "unicode-range": ranges }))
        .collect();
    json!({ FONT: faces })
}

/// A `match` expression over the service kind, giving each kind's colour or symbol.
fn by_kind(pick: fn((&'static str, &'static str)) -> &'static str) -> Value {
    let mut expression = vec![json!("match"), json!(["get", "kind"])];
    for kind in ServiceKind::ALL {
        expression.push(json!(kind.as_str()));
        expression.push(json!(pick(service_symbol(*kind))));
    }
    expression.push(json!(pick(service_symbol(ServiceKind::Other))));
    Value::Array(expression)
}

fn cluster_layers(collection: Collection, colour: &str) -> [Value; 2] {
    let layer = format!("{collection}_clusters");
    [
        json!({
            "id": format!("{layer}-circle"),
            "type": "circle",
            "source": "faro",
            "source-layer": layer,
            "paint": {
                "circle-color": colour,
                "circle-opacity": 0.75,
                "circle-stroke-color": "#ffffff",
                "circle-stroke-width": 1.5,
                "circle-radius": ["interpolate", ["linear"], ["get", "count"], 1, 8, 100, 16, 10000, 30],
            },
        }),
        json!({
            "id": format!("{layer}-count"),
            "type": "symbol",
            "source": "faro",
            "source-layer": layer,
            "layout": {
                "text-field": ["to-string", ["get", "count"]],
                "text-font": [FONT],
                "text-size": 12,
                "text-allow-overlap": true,
            },
            "paint": { "text-color": "#ffffff" },
        }),
    ]
}

/// A restricted collection: polygons filled, points as markers with a dark ring.
fn restricted_layers(collection: Collection, colour: &str, outline: &str) -> [Value; 2] {
    [
        json!({
            "id": format!("{collection}-area"),
            "type": "fill",
            "source": "faro",
            "source-layer": collection.as_str(),
            "filter": ["==", ["geometry-type"], "Polygon"],
            "paint": { "fill-color": colour, "fill-opacity": 0.35, "fill-outline-color": outline },
        }),
        json!({
            "id": format!("{collection}-point"),
            "type": "circle",
            "source": "faro",
            "source-layer": collection.as_str(),
            "filter": ["==", ["geometry-type"], "Point"],
            "paint": {
                "circle-color": colour,
                "circle-radius": 6,
                "circle-stroke-color": outline,
                "circle-stroke-width": 1.5,
            },
        }),
    ]
}

/// The style for a caller who may see `layers`, with absolute URLs under `base`.
pub fn style(base: &str, layers: LayerSet) -> Value {
    let mut out: Vec<Value> = vec![json!({
        "id": "background",
        "type": "background",
        "paint": { "background-color": "#f6f4ef" },
    })];
    if layers.contains(Collection::Territories) {
        out.extend([
            json!({
                "id": "territories-fill",
                "type": "fill",
                "source": "faro",
                "source-layer": "territories",
                "filter": ["==", ["get", "level"], "territory"],
                "paint": { "fill-color": "#b8c9a3", "fill-opacity": 0.25 },
            }),
            json!({
                "id": "territories-outline",
                "type": "line",
                "source": "faro",
                "source-layer": "territories",
                "filter": ["==", ["get", "level"], "territory"],
                "paint": { "line-color": "#5b7042", "line-width": 1.5 },
            }),
            json!({
                "id": "province-outline",
                "type": "line",
                "source": "faro",
                "source-layer": "territories",
                "filter": ["==", ["get", "level"], "province"],
                "paint": { "line-color": "#333333", "line-width": 2.5, "line-dasharray": [3, 2] },
            }),
            json!({
                "id": "territories-label",
                "type": "symbol",
                "source": "faro",
                "source-layer": "territories",
                "filter": ["==", ["get", "level"], "territory"],
                "layout": {
                    "text-field": ["get", "name"],
                    "text-font": [FONT],
                    "text-size": 13,
                    "symbol-placement": "point",
                },
                "paint": {
                    "text-color": "#3b4a2a",
                    "text-halo-color": "#ffffff",
                    "text-halo-width": 1.5,
                },
            }),
        ]);
    }
    for (collection, colour, outline) in [
        (Collection::Worksites, "#8c6d31", "#5c4520"),
        (Collection::Settlements, "#e7298a", "#a01060"),
    ] {
        if layers.contains(collection) {
            out.extend(restricted_layers(collection, colour, outline));
            out.extend(cluster_layers(collection, colour));
        }
    }
    if layers.contains(Collection::Services) {
        out.extend([
            json!({
                "id": "services-marker",
                "type": "circle",
                "source": "faro",
                "source-layer": "services",
                "paint": {
                    "circle-color": by_kind(|(colour, _)| colour),
                    "circle-radius": 9,
                    "circle-stroke-color": "#ffffff",
                    "circle-stroke-width": 1.5,
                },
            }),
            json!({
                "id": "services-symbol",
                "type": "symbol",
                "source": "faro",
                "source-layer": "services",
                "layout": {
                    "text-field": by_kind(|(_, symbol)| symbol),
                    "text-font": [FONT],
                    "text-size": 11,
                    "text-allow-overlap": true,
                },
                "paint": { "text-color": "#ffffff" },
            }),
        ]);
        out.extend(cluster_layers(Collection::Services, "#2c7bb6"));
    }
    json!({
        "version": 8,
        "name": "faro",
        "metadata": {
            "faro:layers": layers.name(),
            "faro:service_kinds": ServiceKind::ALL.iter().map(|k| {
                let (colour, symbol) = service_symbol(*k);
                json!({ "kind": k.as_str(), "colour": colour, "symbol": symbol })
            }).collect::<Vec<_>>(),
        },
        "center": [12.24, 45.75],
        "zoom": 9,
        "sources": {
            "faro": {
                "type": "vector",
                "url": format!("{base}/tiles/{}.json", layers.name()),
                "attribution": crate::tiles::ATTRIBUTION,
            },
        },
        "font-faces": font_faces(base),
        "layers": out,
    })
}
