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
use std::collections::HashMap;
use std::sync::Arc;

use geo::{
    BooleanOps, BoundingRect, Coord, Geometry, InteriorPoint, LineString, MapCoords, MultiPolygon,
    Point, Polygon, Rect, Simplify, Winding,
};
use geozero::ToMvt;
use geozero::mvt::tile::GeomType;
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

/// One cluster feature, before encoding.
struct Feature {
    geometry: Geometry<f64>,
    properties: Vec<(Cow<'static, str>, TileValue)>,
}

/// A record drawn as a generalised shape (or as a point where its outline collapsed), in
/// tile units on the integer grid.
struct Shape<'a> {
    geometry: Geometry<f64>,
    record: &'a Record,
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
    shapes: Vec<Shape<'a>>,
    /// Point records within the tile plus buffer, at their rounded tile position; their
    /// features are built only if the layer is not clustered.
    points: Vec<([i32; 2], &'a Record)>,
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
        // The layer to cluster if this tile passes a limit: the largest point layer not yet
        // clustered.
        let next = prepared
            .iter()
            .filter(|(c, p)| p.point_features() > 0 && !clustered.contains(c))
            .max_by_key(|(_, p)| p.point_features())
            .map(|(c, _)| *c);
        match build(&prepared, &clustered, next.is_some()) {
            Built::Tile(tile_out)
                if tile_out.features <= MAX_TILE_FEATURES
                    && tile_out.bytes.len() <= MAX_TILE_BYTES =>
            {
                return Ok(tile_out);
            }
            Built::Tile(tile_out) => match next {
                Some(c) => clustered.push(c),
                // Nothing left to cluster (polygons only): the tile is as small as the rules
                // let it be.
                None => return Ok(tile_out),
            },
            // Only with something left to cluster.
            Built::Over => clustered.extend(next),
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
                // Within the buffer's range, checked above.
                #[allow(clippy::cast_possible_truncation)]
                out.points.push(([rx as i32, ry as i32], &**record));
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

fn push_polygons<'a>(
    out: &mut Prepared<'a>,
    record: &'a Record,
    lonlat: &MultiPolygon<f64>,
    transform: &TileTransform,
    kind: Option<&'static str>,
) {
    let projected = lonlat.map_coords(|c| {
        let (x, y) = transform.lonlat(c.x, c.y);
        Coord { x, y }
    });
    if let Some(geometry) = generalise(&projected) {
        out.shapes.push(Shape { geometry, record });
    } else if record.collection() != Collection::Territories
        && let Some(p) = projected.interior_point()
    {
        // A settlement or worksite too small to draw at this zoom is drawn as a point, so
        // that it does not vanish from the map.
        let (rx, ry) = (p.x().round(), p.y().round());
        let range = -f64::from(BUFFER)..=f64::from(EXTENT + BUFFER);
        if range.contains(&rx) && range.contains(&ry) {
            out.shapes.push(Shape {
                geometry: Geometry::Point(Point::new(rx, ry)),
                record,
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

/// What [`build`] made of a tile.
enum Built {
    Tile(EncodedTile),
    /// The tile as asked for passes a limit: building stopped as soon as the bytes (or the
    /// features) already made passed it.
    Over,
}

/// Builds the tile with the given collections clustered; with `stop_over`, stops as soon as
/// what is built passes a limit (what is built is a lower bound of the whole tile: a layer
/// only grows as features are added).
fn build(
    prepared: &[(Collection, Prepared<'_>)],
    clustered: &[Collection],
    stop_over: bool,
) -> Built {
    let mut layers: Vec<tile::Layer> = Vec::new();
    let mut features = 0;
    // Bytes of the layers done.
    let mut done = 0;
    for (collection, p) in prepared {
        if clustered.contains(collection) {
            // The polygons of a clustered collection are counted in its clusters too.
            let clusters = clusters(&p.located);
            features += clusters.len();
            if let Some(layer) = layer(&format!("{collection}_clusters"), clusters.iter()) {
                done += layer.encoded_len();
                layers.push(layer);
            }
        } else {
            let budget = MAX_TILE_BYTES.saturating_sub(done);
            // A layer of many points is sized before it is built (its tags looked up, nothing
            // copied): one that passes the limit is known without building a feature.
            if stop_over && p.points.len() * SIZE_FIRST_BYTES > budget {
                let mut sizer = LayerBuilder::new(p.points.len());
                if sizer.passes(p, budget) {
                    return Built::Over;
                }
            }
            let mut builder = LayerBuilder::new(p.shapes.len() + p.points.len());
            for shape in &p.shapes {
                // Geometry on the integer grid, in tile units: encoded as it is.
                let Ok(mut feature) = shape.geometry.to_mvt_unscaled() else {
                    continue;
                };
                builder.tag_record(&mut feature.tags, shape.record);
                builder.push(feature);
            }
            for (at, record) in &p.points {
                let mut feature = tile::Feature::default();
                builder.point_feature(&mut feature, *at, record);
                builder.push(feature);
                if stop_over
                    && (builder.bytes > budget
                        || features + builder.features.len() > MAX_TILE_FEATURES)
                {
                    return Built::Over;
                }
            }
            features += builder.features.len();
            if let Some(layer) = builder.finish(collection.as_str()) {
                done += layer.encoded_len();
                layers.push(layer);
            }
        }
        if stop_over && (done > MAX_TILE_BYTES || features > MAX_TILE_FEATURES) {
            return Built::Over;
        }
    }
    if features == 0 {
        return Built::Tile(EncodedTile::default());
    }
    Built::Tile(EncodedTile {
        bytes: Tile { layers }.encode_to_vec(),
        features,
        clustered: clustered.to_vec(),
    })
}

/// Bytes a point feature takes in the layers seen (40 to 70 with an id, a name and a kind; 60-65
/// for the services of `benches/tiles/run.sh`): a layer whose points would pass the byte limit
/// at this size is sized before it is built, so a z 8 tile of some 12,000 points goes to
/// clusters without building 7,800 features first. Speed only: the size decides, not this
/// guess.
const SIZE_FIRST_BYTES: usize = 64;

/// The command integer of a `MoveTo` of one position (MVT 2.1, 4.3.1).
const MOVE_TO_ONE: u32 = (1 << 3) | 1;

/// A parameter integer (MVT 2.1, 4.3.2): zigzag, as a point's position relative to the origin.
#[allow(clippy::cast_sign_loss)]
fn zigzag(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

/// Bytes of a varint.
fn varint_len(v: u64) -> usize {
    // At most 10: the conversion is exact.
    #[allow(clippy::cast_possible_truncation)]
    let bits = (64 - (v | 1).leading_zeros()) as usize;
    bits.div_ceil(7)
}

/// Bytes of a length-delimited field of `len` bytes with a one-byte tag.
fn framed(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// A source layer of records being built: each record's tags straight from the record (keys
/// and values each once, in first-use order, as geozero's `TagsBuilder` orders them; a value
/// is copied only the first time it is met), and a running count of the bytes its features
/// and values take once encoded.
struct LayerBuilder<'a> {
    keys: Vec<&'static str>,
    /// String values, borrowed from the records until the layer is finished (foldhash: a
    /// z 8 tile looks up some 20,000 names, and `SipHash` was a tenth of its time).
    strings: HashMap<Cow<'a, str>, u32, foldhash::fast::RandomState>,
    /// Values that are the program's own words (kinds, levels): a handful, found by a scan.
    words: Vec<(&'static str, u32)>,
    /// Record ids, each its own value without a lookup: a layer holds one collection, where
    /// ids are unique. (Should a name equal an id, the value is written twice: valid MVT.)
    ids: Vec<(&'a str, u32)>,
    uints: HashMap<u64, u32, foldhash::fast::RandomState>,
    /// The values table; string values are filled in from `strings` at the end.
    values: Vec<tile::Value>,
    features: Vec<tile::Feature>,
    /// Encoded bytes of the features and values so far, framed as in the layer: a lower
    /// bound of the layer's size.
    bytes: usize,
    /// For values made of lists (languages, months).
    scratch: String,
}

impl<'a> LayerBuilder<'a> {
    fn new(capacity: usize) -> Self {
        Self {
            keys: Vec::new(),
            strings: HashMap::with_capacity_and_hasher(
                capacity,
                foldhash::fast::RandomState::default(),
            ),
            words: Vec::new(),
            ids: Vec::with_capacity(capacity),
            uints: HashMap::default(),
            values: Vec::with_capacity(capacity),
            features: Vec::with_capacity(capacity),
            bytes: 0,
            scratch: String::new(),
        }
    }

    fn key(&mut self, key: &'static str) -> u32 {
        let i = self.keys.iter().position(|k| *k == key).unwrap_or_else(|| {
            self.keys.push(key);
            self.keys.len() - 1
        });
        index(i)
    }

    /// A new value of `encoded` bytes (its text, if a string, filled in at the end): its index.
    fn new_value(&mut self, value: tile::Value, encoded: usize) -> u32 {
        let v = index(self.values.len());
        self.values.push(value);
        self.bytes += framed(encoded);
        v
    }

    /// A new string value.
    fn insert_string(&mut self, value: Cow<'a, str>) -> u32 {
        let v = self.new_value(tile::Value::default(), framed(value.len()));
        self.strings.insert(value, v);
        v
    }

    /// A record's id: a new value, no lookup (ids are unique in a collection).
    fn id(&mut self, tags: &mut Vec<u32>, id: &'a str) {
        let k = self.key("id");
        let v = self.new_value(tile::Value::default(), framed(id.len()));
        self.ids.push((id, v));
        tags.extend([k, v]);
    }

    /// A value among the program's own words (a kind, a level).
    fn word(&mut self, tags: &mut Vec<u32>, key: &'static str, value: &'static str) {
        let k = self.key(key);
        let v = if let Some((_, v)) = self.words.iter().find(|(w, _)| *w == value) {
            *v
        } else {
            let v = self.new_value(tile::Value::default(), framed(value.len()));
            self.words.push((value, v));
            v
        };
        tags.extend([k, v]);
    }

    fn text(&mut self, tags: &mut Vec<u32>, key: &'static str, value: &'a str) {
        let k = self.key(key);
        let v = match self.strings.get(value) {
            Some(v) => *v,
            None => self.insert_string(Cow::Borrowed(value)),
        };
        tags.extend([k, v]);
    }

    fn uint(&mut self, tags: &mut Vec<u32>, key: &'static str, value: u64) {
        let k = self.key(key);
        let v = if let Some(v) = self.uints.get(&value) {
            *v
        } else {
            let v = self.new_value(
                tile::Value {
                    uint_value: Some(value),
                    ..tile::Value::default()
                },
                1 + varint_len(value),
            );
            self.uints.insert(value, v);
            v
        };
        tags.extend([k, v]);
    }

    /// A value made of a list, joined by commas.
    fn joined<T>(
        &mut self,
        tags: &mut Vec<u32>,
        key: &'static str,
        items: &[T],
        item: impl Fn(&T, &mut String),
    ) {
        let mut text = std::mem::take(&mut self.scratch);
        text.clear();
        for (i, t) in items.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            item(t, &mut text);
        }
        let k = self.key(key);
        let v = match self.strings.get(text.as_str()) {
            Some(v) => *v,
            None => self.insert_string(Cow::Owned(text.clone())),
        };
        tags.extend([k, v]);
        self.scratch = text;
    }

    /// The tags of a record in a tile: what the map shows, nothing more (no descriptions, no
    /// audit fields, no `open_now`, which changes by the minute): the fields of [`fields`].
    fn tag_record(&mut self, tags: &mut Vec<u32>, record: &'a Record) {
        use std::fmt::Write;
        let month = |m: &crate::domain::Month, out: &mut String| {
            let _ = write!(out, "{}", m.number());
        };
        tags.reserve(16);
        self.id(tags, record.id().as_str());
        match record.attributes() {
            Attributes::Service(s) => {
                self.text(tags, "name", &s.name);
                self.word(tags, "kind", s.kind.as_str());
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
                for (key, value) in optional {
                    if let Some(value) = value {
                        self.text(tags, key, value);
                    }
                }
                if !s.languages.is_empty() {
                    self.joined(tags, "languages", &s.languages, |l, out| {
                        out.push_str(l.code());
                    });
                }
            }
            Attributes::Settlement(s) => {
                self.text(tags, "name", &s.name);
                if let Some(n) = s.population_estimate {
                    self.uint(tags, "population_estimate", u64::from(n));
                }
                if !s.season.is_empty() {
                    self.joined(tags, "season", &s.season, month);
                }
            }
            Attributes::Worksite(w) => {
                self.text(tags, "name", &w.name);
                self.word(tags, "kind", w.kind.as_str());
                if let Some(n) = w.workers_estimate {
                    self.uint(tags, "workers_estimate", u64::from(n));
                }
                if !w.peak_months.is_empty() {
                    self.joined(tags, "peak_months", &w.peak_months, month);
                }
            }
            Attributes::Territory(t) => {
                self.text(tags, "name", &t.name);
                self.word(tags, "level", t.level.as_str());
                if let Some(code) = &t.code {
                    self.text(tags, "code", code);
                }
            }
        }
    }

    /// Fills `feature` (empty) with a point record at `at`.
    fn point_feature(&mut self, feature: &mut tile::Feature, [x, y]: [i32; 2], record: &'a Record) {
        feature.geometry.extend([MOVE_TO_ONE, zigzag(x), zigzag(y)]);
        feature.set_type(GeomType::Point);
        self.tag_record(&mut feature.tags, record);
    }

    /// Whether the layer of `p` takes more than `budget` bytes once encoded, counting its
    /// features and values only (a lower bound of its size); nothing is kept.
    fn passes(&mut self, p: &Prepared<'a>, budget: usize) -> bool {
        for shape in &p.shapes {
            let Ok(mut feature) = shape.geometry.to_mvt_unscaled() else {
                continue;
            };
            self.tag_record(&mut feature.tags, shape.record);
            self.bytes += framed(feature.encoded_len());
        }
        let mut feature = tile::Feature::default();
        for (at, record) in &p.points {
            feature.tags.clear();
            feature.geometry.clear();
            self.point_feature(&mut feature, *at, record);
            self.bytes += framed(feature.encoded_len());
            if self.bytes > budget {
                return true;
            }
        }
        self.bytes > budget
    }

    fn push(&mut self, feature: tile::Feature) {
        self.bytes += framed(feature.encoded_len());
        self.features.push(feature);
    }

    fn finish(mut self, name: &str) -> Option<tile::Layer> {
        if self.features.is_empty() {
            return None;
        }
        for (text, i) in self.strings {
            self.values[i as usize].string_value = Some(text.into_owned());
        }
        for (text, i) in self.ids.into_iter().chain(self.words) {
            self.values[i as usize].string_value = Some(text.to_owned());
        }
        Some(tile::Layer {
            version: 2,
            name: name.to_owned(),
            features: self.features,
            keys: self.keys.into_iter().map(str::to_owned).collect(),
            values: self.values,
            extent: Some(EXTENT),
        })
    }
}

/// An index into a layer's keys or values (a tile holds far fewer than 2^32).
fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn layer<'f>(name: &str, features: impl Iterator<Item = &'f Feature>) -> Option<tile::Layer> {
    let mut tags = TagsBuilder::new();
    let mut out = Vec::new();
    for f in features {
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
    #[derive(Default, Clone)]
    struct Cell {
        count: u64,
        sum_x: f64,
        sum_y: f64,
        /// Records by kind (a handful of kinds: a list beats a map).
        kinds: Vec<(&'static str, u64)>,
    }
    let extent = f64::from(EXTENT);
    let cell_size = f64::from(CLUSTER_CELL);
    let side = (EXTENT / CLUSTER_CELL) as usize;
    // Column-major, so that the cells come out in (column, row) order.
    let mut cells: Vec<Cell> = vec![Cell::default(); side * side];
    for p in points {
        let (x, y) = p.at;
        if !(0.0..extent).contains(&x) || !(0.0..extent).contains(&y) {
            continue;
        }
        // In [0, EXTENT / CLUSTER_CELL): truncation is the intent.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (column, row) = ((x / cell_size) as usize, (y / cell_size) as usize);
        let cell = &mut cells[column * side + row];
        cell.count += 1;
        cell.sum_x += x;
        cell.sum_y += y;
        if let Some(k) = p.kind {
            match cell.kinds.iter_mut().find(|(kind, _)| *kind == k) {
                Some((_, n)) => *n += 1,
                None => cell.kinds.push((k, 1)),
            }
        }
    }
    cells
        .into_iter()
        .filter(|c| c.count > 0)
        .map(|mut c| {
            // Counts of records in one tile fit an f64 exactly.
            #[allow(clippy::cast_precision_loss)]
            let n = c.count as f64;
            let at = Point::new((c.sum_x / n).floor(), (c.sum_y / n).floor());
            c.kinds.sort_unstable_by_key(|(k, _)| *k);
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
