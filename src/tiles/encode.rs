//! Encoding one Mapbox Vector Tile (2.1) from the index, as one caller may see it.
//!
//! Rules, per tile (`z/x/y`, extent [`EXTENT`], [`BUFFER`] units of buffer on every side):
//!
//! - **Records**: those the caller's [`View`] lets through and whose geometry touches the tile
//!   plus its buffer. One source layer per collection, named after it.
//! - **Points are never dropped** while the tile stays under [`MAX_TILE_BYTES`] and
//!   [`MAX_TILE_FEATURES`]: every visible record whose position lies in the tile's bbox is in
//!   the tile (the buffer may add neighbours). Only when the whole tile would exceed either
//!   limit are the point records of a collection aggregated, biggest layer first, into cluster
//!   features of a `{collection}_clusters` layer: one per grid cell of [`CLUSTER_CELL`] units
//!   that holds records, at their mean position, with `count` and, for collections with kinds,
//!   one `count_{kind}` per kind present. A clustered layer counts the records whose position
//!   lies in the tile itself (west and north edges in, east and south edges out), so the
//!   clusters of neighbouring tiles never count a record twice and no record silently
//!   disappears. A polygon record of a clustered collection counts at its interior point.
//! - **Polygons** (territories at every zoom, and polygon settlements and worksites) are
//!   projected to tile units, simplified to the tile's resolution (`geo`'s Ramer-Douglas-
//!   Peucker, [`SIMPLIFY_UNITS`]), snapped to the integer grid, clipped to the tile plus buffer
//!   (`geo`'s boolean intersection, which also resolves any self-intersection snapping made),
//!   and written with MVT 2.1 winding (exterior rings of positive area in tile coordinates,
//!   holes negative); rings that collapse to no area are dropped, and a settlement or worksite
//!   whose whole outline collapses at a zoom is drawn as a point at its interior point
//!   instead, so it never vanishes from the map.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use geo::{
    BooleanOps, BoundingRect, Coord, Geometry, InteriorPoint, LineString, MapCoords, MultiPolygon,
    Point, Polygon, Rect, Simplify, Winding,
};
use geozero::ToMvt;
use geozero::mvt::{Message, TagsBuilder, Tile, TileValue, tile};

use super::grid::{TileId, TileTransform};
use super::layers::LayerSet;
use crate::domain::{Attributes, Collection, Record};
use crate::index::query::{QueryError, View};

/// Tile units a side.
pub const EXTENT: u32 = 4096;
/// Tile units of buffer around the tile, on every side.
pub const BUFFER: u32 = 64;
/// Largest tile, in bytes (identity encoding), before points are clustered.
pub const MAX_TILE_BYTES: usize = 500_000;
/// Most features a tile holds before points are clustered.
pub const MAX_TILE_FEATURES: usize = 50_000;
/// Width of a cluster cell, in tile units (a 64 x 64 grid over the tile).
pub const CLUSTER_CELL: u32 = 64;
/// Tolerance of polygon simplification, in tile units.
pub const SIMPLIFY_UNITS: f64 = 0.5;

/// An encoded tile.
#[derive(Debug, Clone, Default)]
pub struct EncodedTile {
    /// The protobuf bytes (empty when no layer has a feature: answered as 204).
    pub bytes: Vec<u8>,
    /// Features in the tile, clusters included.
    pub features: usize,
    /// Collections whose points were aggregated into clusters.
    pub clustered: Vec<Collection>,
}

impl EncodedTile {
    pub fn is_empty(&self) -> bool {
        self.features == 0
    }
}

/// One feature of a layer, before encoding.
struct Feature {
    geometry: Geometry<f64>,
    properties: Vec<(Cow<'static, str>, TileValue)>,
}

/// A point record of a layer, kept for clustering.
struct Located {
    /// Tile coordinates, not rounded.
    at: (f64, f64),
    kind: Option<&'static str>,
}

/// The records of one layer in a tile, before encoding.
struct Prepared<'a> {
    /// Polygons, generalised (and settlements or worksites too small to draw, as points).
    shapes: Vec<Feature>,
    /// Point records within the tile plus buffer, at their rounded tile position; their
    /// features are built only if the layer is not clustered.
    points: Vec<(Point<f64>, &'a Arc<Record>)>,
    /// Every record of the layer as a position (points, and polygons at an interior point),
    /// for clustering.
    located: Vec<Located>,
}

impl Prepared<'_> {
    /// Point features the layer would have unclustered.
    fn point_features(&self) -> usize {
        self.points.len()
            + self
                .shapes
                .iter()
                .filter(|f| matches!(f.geometry, Geometry::Point(_)))
                .count()
    }
}

/// A tile's lon/lat bounds grown by its buffer: what it may draw from.
pub(crate) fn buffered_bounds(tile: TileId) -> [f64; 4] {
    let buffer_m = tile.size_m() * f64::from(BUFFER) / f64::from(EXTENT);
    tile.mercator_bounds().grown(buffer_m).to_lonlat()
}

/// Encodes `layers` of `tile` as `view` lets its caller see them.
pub fn encode(view: &View, layers: LayerSet, tile: TileId) -> Result<EncodedTile, QueryError> {
    let transform = TileTransform::new(tile, EXTENT);
    let [west, south, east, north] = buffered_bounds(tile);
    let query = Rect::new(
        Coord {
            x: west.max(-180.0),
            y: south,
        },
        Coord {
            x: east.min(180.0),
            y: north,
        },
    );
    let mut prepared: Vec<(Collection, Prepared<'_>)> = Vec::new();
    for collection in layers.iter() {
        let records = view.touching(collection, query)?;
        prepared.push((collection, prepare(records, &transform)));
    }
    let mut clustered: Vec<Collection> = Vec::new();
    // A layer whose points alone pass the feature limit is clustered before anything is
    // encoded: a million features are not worth building to be thrown away.
    for (collection, p) in &prepared {
        if p.point_features() > MAX_TILE_FEATURES {
            clustered.push(*collection);
        }
    }
    loop {
        let tile_out = build(&prepared, &clustered);
        let within =
            tile_out.features <= MAX_TILE_FEATURES && tile_out.bytes.len() <= MAX_TILE_BYTES;
        if within {
            return Ok(tile_out);
        }
        // Cluster the largest point layer not yet clustered, and try again.
        let next = prepared
            .iter()
            .filter(|(c, p)| p.point_features() > 0 && !clustered.contains(c))
            .max_by_key(|(_, p)| p.point_features())
            .map(|(c, _)| *c);
        match next {
            Some(c) => clustered.push(c),
            // Nothing left to cluster (polygons only): the tile is as small as the rules let
            // it be.
            None => return Ok(tile_out),
        }
    }
}

fn prepare<'a>(
    records: impl Iterator<Item = &'a Arc<Record>>,
    transform: &TileTransform,
) -> Prepared<'a> {
    let range = -f64::from(BUFFER)..=f64::from(EXTENT + BUFFER);
    let mut out = Prepared {
        shapes: Vec::new(),
        points: Vec::new(),
        located: Vec::new(),
    };
    for record in records {
        // The kind a cluster counts (territories, the one other collection with kinds, are never
        // clustered).
        let kind = record.attributes().kind_str();
        match record.geometry() {
            Geometry::Point(p) => {
                let (x, y) = transform.lonlat(p.x(), p.y());
                let (rx, ry) = (x.round(), y.round());
                if !range.contains(&rx) || !range.contains(&ry) {
                    continue;
                }
                out.located.push(Located { at: (x, y), kind });
                out.points.push((Point::new(rx, ry), record));
            }
            Geometry::Polygon(p) => {
                let mp = MultiPolygon::new(vec![p.clone()]);
                push_polygons(&mut out, record, &mp, transform, kind);
            }
            Geometry::MultiPolygon(mp) => push_polygons(&mut out, record, mp, transform, kind),
            // The collections' geometry rules admit nothing else; a record that somehow holds
            // another type is left out of tiles rather than drawn wrong.
            _ => {}
        }
    }
    out
}

fn push_polygons(
    out: &mut Prepared<'_>,
    record: &Record,
    lonlat: &MultiPolygon<f64>,
    transform: &TileTransform,
    kind: Option<&'static str>,
) {
    let projected = lonlat.map_coords(|c| {
        let (x, y) = transform.lonlat(c.x, c.y);
        Coord { x, y }
    });
    if let Some(geometry) = generalise(&projected) {
        out.shapes.push(Feature {
            geometry,
            properties: properties(record),
        });
    } else if record.collection() != Collection::Territories
        && let Some(p) = projected.interior_point()
    {
        // A settlement or worksite too small to draw at this zoom is drawn as a point, so
        // that it does not vanish from the map.
        let (rx, ry) = (p.x().round(), p.y().round());
        let range = -f64::from(BUFFER)..=f64::from(EXTENT + BUFFER);
        if range.contains(&rx) && range.contains(&ry) {
            out.shapes.push(Feature {
                geometry: Geometry::Point(Point::new(rx, ry)),
                properties: properties(record),
            });
        }
    }
    // Settlements and worksites can be polygons: clustered, they count at an interior point.
    if record.collection() != Collection::Territories
        && let Some(p) = projected.interior_point()
    {
        out.located.push(Located {
            at: (p.x(), p.y()),
            kind,
        });
    }
}

/// Simplifies, snaps, clips and orients a polygon in (unrounded) tile coordinates; `None` when
/// nothing of it is left in the tile plus buffer.
pub(crate) fn generalise(projected: &MultiPolygon<f64>) -> Option<Geometry<f64>> {
    let lo = -f64::from(BUFFER);
    let hi = f64::from(EXTENT + BUFFER);
    let bounds = projected.bounding_rect()?;
    if bounds.max().x < lo || bounds.min().x > hi || bounds.max().y < lo || bounds.min().y > hi {
        return None;
    }
    let snapped = projected.simplify(SIMPLIFY_UNITS).map_coords(|c| Coord {
        x: c.x.round(),
        y: c.y.round(),
    });
    let clip = Rect::new(Coord { x: lo, y: lo }, Coord { x: hi, y: hi }).to_polygon();
    let clipped = snapped.intersection(&clip);
    let mut polygons: Vec<Polygon<f64>> = Vec::new();
    for polygon in clipped {
        let (exterior, interiors) = polygon.into_inner();
        let Some(mut exterior) = clean_ring(exterior) else {
            continue;
        };
        exterior.make_ccw_winding();
        let interiors = interiors
            .into_iter()
            .filter_map(clean_ring)
            .map(|mut r| {
                r.make_cw_winding();
                r
            })
            .collect();
        polygons.push(Polygon::new(exterior, interiors));
    }
    match polygons.len() {
        0 => None,
        1 => polygons.pop().map(Geometry::Polygon),
        _ => Some(Geometry::MultiPolygon(MultiPolygon::new(polygons))),
    }
}

/// A ring on the integer grid without repeated positions, or `None` if it has no area left.
///
/// Winding in `geo` is the sign of the shoelace sum over the coordinates as given; MVT 2.1
/// defines an exterior ring by the same sum over tile coordinates (y down) being positive, so
/// `make_ccw_winding` (positive sum) is right for exteriors here even though such a ring looks
/// clockwise on screen.
fn clean_ring(ring: LineString<f64>) -> Option<LineString<f64>> {
    let mut coords: Vec<Coord<f64>> = Vec::with_capacity(ring.0.len());
    for c in ring.0 {
        let c = Coord {
            x: c.x.round(),
            y: c.y.round(),
        };
        if coords.last() != Some(&c) {
            coords.push(c);
        }
    }
    if coords.len() > 1 && coords.first() == coords.last() {
        coords.pop();
    }
    if coords.len() < 3 {
        return None;
    }
    let first = coords[0];
    coords.push(first);
    let ring = LineString::new(coords);
    let twice_area: f64 = ring
        .lines()
        .map(|l| l.start.x * l.end.y - l.end.x * l.start.y)
        .sum();
    (twice_area.abs() >= 1.0).then_some(ring)
}

/// Builds the tile with the given collections clustered.
fn build(prepared: &[(Collection, Prepared<'_>)], clustered: &[Collection]) -> EncodedTile {
    let mut layers: Vec<tile::Layer> = Vec::new();
    let mut features = 0;
    for (collection, p) in prepared {
        if clustered.contains(collection) {
            // The polygons of a clustered collection are counted in its clusters too.
            let clusters = clusters(&p.located);
            features += clusters.len();
            if let Some(layer) = layer(&format!("{collection}_clusters"), clusters.iter()) {
                layers.push(layer);
            }
        } else {
            let points: Vec<Feature> = p
                .points
                .iter()
                .map(|(at, record)| Feature {
                    geometry: Geometry::Point(*at),
                    properties: properties(record),
                })
                .collect();
            features += p.shapes.len() + points.len();
            if let Some(layer) = layer(collection.as_str(), p.shapes.iter().chain(&points)) {
                layers.push(layer);
            }
        }
    }
    if features == 0 {
        return EncodedTile::default();
    }
    EncodedTile {
        bytes: Tile { layers }.encode_to_vec(),
        features,
        clustered: clustered.to_vec(),
    }
}

fn layer<'f>(name: &str, features: impl Iterator<Item = &'f Feature>) -> Option<tile::Layer> {
    let mut tags = TagsBuilder::new();
    let mut out = Vec::new();
    for f in features {
        // Geometry on the integer grid, in tile units: encoded as it is.
        let Ok(mut feature) = f.geometry.to_mvt_unscaled() else {
            continue;
        };
        for (key, value) in &f.properties {
            let (k, v) = tags.insert_ref(key, value.clone());
            feature.tags.push(k);
            feature.tags.push(v);
        }
        out.push(feature);
    }
    if out.is_empty() {
        return None;
    }
    let (keys, values) = tags.into_tags();
    Some(tile::Layer {
        version: 2,
        name: name.to_owned(),
        features: out,
        keys,
        values: values.into_iter().map(Into::into).collect(),
        extent: Some(EXTENT),
    })
}

/// Aggregates positions into one feature per cluster cell of the tile (positions outside
/// the tile itself belong to a neighbour's clusters).
fn clusters(points: &[Located]) -> Vec<Feature> {
    #[derive(Default)]
    struct Cell {
        count: u64,
        sum_x: f64,
        sum_y: f64,
        kinds: BTreeMap<&'static str, u64>,
    }
    let extent = f64::from(EXTENT);
    let cell_size = f64::from(CLUSTER_CELL);
    let mut cells: BTreeMap<(u32, u32), Cell> = BTreeMap::new();
    for p in points {
        let (x, y) = p.at;
        if !(0.0..extent).contains(&x) || !(0.0..extent).contains(&y) {
            continue;
        }
        // In [0, EXTENT / CLUSTER_CELL): truncation is the intent.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let key = ((x / cell_size) as u32, (y / cell_size) as u32);
        let cell = cells.entry(key).or_default();
        cell.count += 1;
        cell.sum_x += x;
        cell.sum_y += y;
        if let Some(k) = p.kind {
            *cell.kinds.entry(k).or_default() += 1;
        }
    }
    cells
        .into_values()
        .map(|c| {
            // Counts of records in one tile fit an f64 exactly.
            #[allow(clippy::cast_precision_loss)]
            let n = c.count as f64;
            let at = Point::new((c.sum_x / n).floor(), (c.sum_y / n).floor());
            let mut properties = vec![(Cow::Borrowed("count"), TileValue::Uint(c.count))];
            properties.extend(
                c.kinds
                    .into_iter()
                    .map(|(k, n)| (Cow::Owned(format!("count_{k}")), TileValue::Uint(n))),
            );
            Feature {
                geometry: Geometry::Point(at),
                properties,
            }
        })
        .collect()
}

/// The properties of a record in a tile: what the map shows, nothing more (no descriptions,
/// no audit fields, no `open_now`, which changes by the minute).
fn properties(record: &Record) -> Vec<(Cow<'static, str>, TileValue)> {
    let text = |s: &str| TileValue::Str(s.to_owned());
    let mut out = vec![("id", text(record.id().as_str()))];
    let months = |m: &[crate::domain::Month]| {
        m.iter()
            .map(|m| m.number().to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    match record.attributes() {
        Attributes::Service(s) => {
            out.push(("name", text(&s.name)));
            out.push(("kind", text(s.kind.as_str())));
            let optional = [
                ("organization", s.organization.as_deref()),
                ("address", s.address.as_deref()),
                ("phone", s.phone.as_deref()),
                (
                    "opening_hours",
                    s.opening_hours
                        .as_ref()
                        .map(crate::domain::OpeningHoursSpec::as_str),
                ),
            ];
            out.extend(
                optional
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k, text(v)))),
            );
            if !s.languages.is_empty() {
                let languages: Vec<&str> = s.languages.iter().map(|l| l.code()).collect();
                out.push(("languages", text(&languages.join(","))));
            }
        }
        Attributes::Settlement(s) => {
            out.push(("name", text(&s.name)));
            if let Some(n) = s.population_estimate {
                out.push(("population_estimate", TileValue::Uint(u64::from(n))));
            }
            if !s.season.is_empty() {
                out.push(("season", text(&months(&s.season))));
            }
        }
        Attributes::Worksite(w) => {
            out.push(("name", text(&w.name)));
            out.push(("kind", text(w.kind.as_str())));
            if let Some(n) = w.workers_estimate {
                out.push(("workers_estimate", TileValue::Uint(u64::from(n))));
            }
            if !w.peak_months.is_empty() {
                out.push(("peak_months", text(&months(&w.peak_months))));
            }
        }
        Attributes::Territory(t) => {
            out.push(("name", text(&t.name)));
            out.push(("level", text(t.level.as_str())));
            if let Some(code) = &t.code {
                out.push(("code", text(code)));
            }
        }
    }
    out.into_iter()
        .map(|(k, v)| (Cow::Borrowed(k), v))
        .collect()
}

/// The fields of a collection's source layer, with their TileJSON types, for `vector_layers`.
pub fn fields(collection: Collection) -> &'static [(&'static str, &'static str)] {
    match collection {
        Collection::Services => &[
            ("id", "String"),
            ("name", "String"),
            ("kind", "String"),
            ("organization", "String"),
            ("address", "String"),
            ("phone", "String"),
            ("languages", "String"),
            ("opening_hours", "String"),
        ],
        Collection::Settlements => &[
            ("id", "String"),
            ("name", "String"),
            ("population_estimate", "Number"),
            ("season", "String"),
        ],
        Collection::Worksites => &[
            ("id", "String"),
            ("name", "String"),
            ("kind", "String"),
            ("workers_estimate", "Number"),
            ("peak_months", "String"),
        ],
        Collection::Territories => &[
            ("id", "String"),
            ("name", "String"),
            ("level", "String"),
            ("code", "String"),
        ],
    }
}
