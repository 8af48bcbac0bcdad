//! GeoJSON (RFC 7946) features in and out of records.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::{Attributes, Collection, FieldError, Meta, Record, RecordId, ValidGeometry};

/// Properties the server manages; ignored when a client sends them back.
const SERVER_FIELDS: &[&str] = &["created_at", "updated_at", "version"];

/// A feature sent by a client, parsed and validated, not yet stored.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureInput {
    pub id: Option<RecordId>,
    pub geometry: ValidGeometry,
    pub attributes: Attributes,
}

/// A problem with one feature of a document: its 1-based number, its id if it had one, and
/// the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {error}", .feature.map_or_else(|| "document".to_owned(), |n| format!("feature {n}")), .id.as_ref().map(|i| format!(" (id {i})")).unwrap_or_default())]
pub struct FeatureError {
    pub feature: Option<usize>,
    pub id: Option<String>,
    pub error: FieldError,
}

impl FeatureInput {
    /// Parses one GeoJSON Feature object for `collection`.
    pub fn parse(collection: Collection, value: Value) -> Result<Self, FieldError> {
        let Value::Object(mut obj) = value else {
            return Err(FieldError::new(
                "feature",
                "expected a GeoJSON Feature object",
            ));
        };
        match obj.get("type").and_then(Value::as_str) {
            Some("Feature") => {}
            Some(other) => {
                return Err(FieldError::new(
                    "type",
                    format!("expected \"Feature\", got \"{other}\""),
                ));
            }
            None => return Err(FieldError::new("type", "missing; expected \"Feature\"")),
        }
        let id = match obj.remove("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(RecordId::parse(&s)?),
            Some(Value::Number(n)) => Some(RecordId::parse(&n.to_string())?),
            Some(_) => return Err(FieldError::new("id", "must be a string or a number")),
        };
        let geometry = match obj.remove("geometry") {
            None | Some(Value::Null) => {
                return Err(FieldError::new(
                    "geometry",
                    "missing; every record has a geometry",
                ));
            }
            Some(g) => parse_geometry(g, collection)?,
        };
        let mut properties = match obj.remove("properties") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(FieldError::new("properties", "must be an object")),
        };
        for f in SERVER_FIELDS {
            properties.remove(*f);
        }
        let attributes = Attributes::from_json(collection, Value::Object(properties))?;
        Ok(Self {
            id,
            geometry,
            attributes,
        })
    }

    /// Parses a FeatureCollection (or a single Feature) for `collection`, reporting every bad
    /// feature with its number; duplicate ids in the document are an error too.
    pub fn parse_document(
        collection: Collection,
        value: Value,
    ) -> Result<Vec<FeatureInput>, Vec<FeatureError>> {
        let features = match value {
            Value::Object(mut obj) => match obj.get("type").and_then(Value::as_str) {
                Some("FeatureCollection") => match obj.remove("features") {
                    Some(Value::Array(a)) => a,
                    _ => {
                        return Err(vec![FeatureError {
                            feature: None,
                            id: None,
                            error: FieldError::new("features", "must be an array of Features"),
                        }]);
                    }
                },
                Some("Feature") => vec![Value::Object(obj)],
                _ => {
                    return Err(vec![FeatureError {
                        feature: None,
                        id: None,
                        error: FieldError::new(
                            "type",
                            "expected a GeoJSON Feature or FeatureCollection",
                        ),
                    }]);
                }
            },
            _ => {
                return Err(vec![FeatureError {
                    feature: None,
                    id: None,
                    error: FieldError::new("document", "expected a JSON object"),
                }]);
            }
        };
        let mut ok = Vec::with_capacity(features.len());
        let mut errors = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, f) in features.into_iter().enumerate() {
            let raw_id = f.get("id").map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            match FeatureInput::parse(collection, f) {
                Ok(input) => {
                    if let Some(id) = &input.id
                        && !seen.insert(id.clone())
                    {
                        errors.push(FeatureError {
                            feature: Some(i + 1),
                            id: raw_id,
                            error: FieldError::new("id", "appears more than once in the document"),
                        });
                        continue;
                    }
                    ok.push(input);
                }
                Err(error) => errors.push(FeatureError {
                    feature: Some(i + 1),
                    id: raw_id,
                    error,
                }),
            }
        }
        if errors.is_empty() {
            Ok(ok)
        } else {
            Err(errors)
        }
    }
}

/// The positions of the geometry of each Feature in a GeoJSON Feature or FeatureCollection
/// (1-based feature number, count), read from the raw JSON before any parsing: what a vertex
/// cap is checked on.
pub fn positions_per_feature(doc: &Value) -> Vec<(usize, usize)> {
    fn count(v: &Value) -> usize {
        match v {
            Value::Array(items) if items.first().is_some_and(Value::is_number) => 1,
            Value::Array(items) => items.iter().map(count).sum(),
            _ => 0,
        }
    }
    fn geometry(g: &Value) -> usize {
        g.get("coordinates").map_or(0, count)
            + g.get("geometries")
                .and_then(Value::as_array)
                .map_or(0, |gs| gs.iter().map(geometry).sum())
    }
    let features: Vec<&Value> = match doc.get("features").and_then(Value::as_array) {
        Some(fs) => fs.iter().collect(),
        None => vec![doc],
    };
    features
        .iter()
        .enumerate()
        .map(|(i, f)| (i + 1, f.get("geometry").map_or(0, geometry)))
        .collect()
}

/// Parses a GeoJSON geometry object and validates it for `collection`.
pub fn parse_geometry(value: Value, collection: Collection) -> Result<ValidGeometry, FieldError> {
    let gj: geojson::Geometry = serde_json::from_value(value)
        .map_err(|e| FieldError::new("geometry", format!("not a GeoJSON geometry: {e}")))?;
    check_positions(&gj.value)?;
    check_rings_closed(&gj.value)?;
    let g: geo::Geometry<f64> = gj
        .try_into()
        .map_err(|e: geojson::Error| FieldError::new("geometry", e.to_string()))?;
    ValidGeometry::new(g, collection.geometry_rule())
}

/// RFC 7946 §3.1.1: a position is longitude, latitude and at most an altitude. More numbers
/// (a measure, a time) are refused rather than silently dropped; fewer cannot be a position.
fn check_positions(value: &geojson::GeometryValue) -> Result<(), FieldError> {
    use geojson::GeometryValue as G;
    let check = |positions: &mut dyn Iterator<Item = &geojson::Position>| {
        for (i, p) in positions.enumerate() {
            if !(2..=3).contains(&p.len()) {
                return Err(FieldError::new(
                    "geometry",
                    format!(
                        "position {i} has {} numbers; a position is [longitude, latitude] or \
                         [longitude, latitude, altitude]",
                        p.len()
                    ),
                ));
            }
        }
        Ok(())
    };
    match value {
        G::Point { coordinates } => check(&mut std::iter::once(coordinates)),
        G::MultiPoint { coordinates } | G::LineString { coordinates } => {
            check(&mut coordinates.iter())
        }
        G::MultiLineString { coordinates } | G::Polygon { coordinates } => {
            check(&mut coordinates.iter().flatten())
        }
        G::MultiPolygon { coordinates } => check(&mut coordinates.iter().flatten().flatten()),
        G::GeometryCollection { geometries } => geometries
            .iter()
            .try_for_each(|g| check_positions(&g.value)),
    }
}

/// RFC 7946 §3.1.6: a linear ring's first and last positions are equal, with at least four.
/// geo closes rings silently, so this is checked on the GeoJSON itself.
fn check_rings_closed(value: &geojson::GeometryValue) -> Result<(), FieldError> {
    use geojson::GeometryValue as G;
    let check = |rings: &[Vec<geojson::Position>]| -> Result<(), FieldError> {
        for (i, ring) in rings.iter().enumerate() {
            if ring.len() < 4 {
                return Err(FieldError::new(
                    "geometry",
                    format!(
                        "ring {i} has {} positions; a linear ring needs at least 4",
                        ring.len()
                    ),
                ));
            }
            if ring.first() != ring.last() {
                return Err(FieldError::new(
                    "geometry",
                    format!("ring {i} is not closed: its first and last positions differ"),
                ));
            }
        }
        Ok(())
    };
    match value {
        G::Polygon { coordinates } => check(coordinates),
        G::MultiPolygon { coordinates } => coordinates.iter().try_for_each(|p| check(p)),
        _ => Ok(()),
    }
}

/// The GeoJSON geometry object of a geo geometry.
pub fn geometry_json(g: &geo::Geometry<f64>) -> Value {
    serde_json::to_value(geojson::Geometry::from(g)).unwrap_or(Value::Null)
}

/// A record as a GeoJSON Feature, serialised straight to JSON (no intermediate `Value`):
/// `type`, `id`, `geometry`, and `properties` holding every attribute (`null` where unset), then
/// `created_at`, `updated_at`, `version`, then any extra properties (such as `distance_m`).
pub struct FeatureView<'a> {
    record: &'a Record,
    extra: &'a [(&'static str, Value)],
}

impl<'a> FeatureView<'a> {
    pub fn new(record: &'a Record) -> Self {
        Self { record, extra: &[] }
    }

    /// With extra properties appended after the record's own.
    pub fn with_extra(record: &'a Record, extra: &'a [(&'static str, Value)]) -> Self {
        Self { record, extra }
    }
}

impl Serialize for FeatureView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("type", "Feature")?;
        m.serialize_entry("id", self.record.id().as_str())?;
        m.serialize_entry("geometry", &GeometryView(self.record.geometry()))?;
        let meta = self.record.meta();
        m.serialize_entry(
            "properties",
            &PropertiesView {
                attributes: AttributesView(self.record.attributes()),
                created_at: meta.created_at.to_rfc3339(),
                updated_at: meta.updated_at.to_rfc3339(),
                version: meta.version,
                extra: ExtraView(self.extra),
            },
        )?;
        m.end()
    }
}

#[derive(Serialize)]
struct PropertiesView<'a> {
    #[serde(flatten)]
    attributes: AttributesView<'a>,
    created_at: String,
    updated_at: String,
    version: i64,
    #[serde(flatten)]
    extra: ExtraView<'a>,
}

/// The typed attributes, whose fields `#[serde(flatten)]` writes into the properties.
struct AttributesView<'a>(&'a crate::domain::Attributes);

impl Serialize for AttributesView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use crate::domain::Attributes as A;
        match self.0 {
            A::Service(a) => a.serialize(s),
            A::Settlement(a) => a.serialize(s),
            A::Worksite(a) => a.serialize(s),
            A::Territory(a) => a.serialize(s),
        }
    }
}

struct ExtraView<'a>(&'a [(&'static str, Value)]);

impl Serialize for ExtraView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A geometry as a GeoJSON geometry object; points are written without allocating.
struct GeometryView<'a>(&'a geo::Geometry<f64>);

impl Serialize for GeometryView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let geo::Geometry::Point(p) = self.0 {
            let mut m = s.serialize_map(Some(2))?;
            m.serialize_entry("type", "Point")?;
            m.serialize_entry("coordinates", &[p.x(), p.y()])?;
            m.end()
        } else {
            geojson::Geometry::from(self.0).serialize(s)
        }
    }
}

/// A record as a GeoJSON Feature value (see [`FeatureView`]).
pub fn to_feature(record: &Record) -> Value {
    serde_json::to_value(FeatureView::new(record)).unwrap_or(Value::Null)
}

/// The members the properties of a stored feature end with, as [`FeatureView`] writes them:
/// `"created_at":…,"updated_at":…,"version":…`. The same for every record one bulk write
/// creates, which formats them once.
pub fn meta_members(meta: &Meta) -> String {
    format!(
        "\"created_at\":\"{}\",\"updated_at\":\"{}\",\"version\":{}",
        meta.created_at.to_rfc3339(),
        meta.updated_at.to_rfc3339(),
        meta.version
    )
}

/// A record as a store keeps it in its audit log: the GeoJSON Feature of [`FeatureView`]
/// without the attributes that are unset (`null`), which [`with_unset_attributes`] puts back
/// when the log is read. `attributes` is the record's `Attributes::to_json_text` (the text its
/// row holds: written once, used twice) and `meta` its [`meta_members`]. A service with a name
/// and a kind takes two thirds of the text with every null, and the database checks every
/// byte of it.
pub fn stored_feature_text(record: &Record, attributes: &str, meta: &str) -> String {
    let mut out = Vec::with_capacity(96 + attributes.len() + meta.len());
    out.extend_from_slice(b"{\"type\":\"Feature\",\"id\":");
    // Neither can fail: a string and a geometry of finite coordinates.
    let _ = serde_json::to_writer(&mut out, record.id().as_str());
    out.extend_from_slice(b",\"geometry\":");
    let _ = serde_json::to_writer(&mut out, &GeometryView(record.geometry()));
    out.extend_from_slice(b",\"properties\":");
    let members = attributes
        .strip_prefix('{')
        .and_then(|a| a.strip_suffix('}'))
        .unwrap_or_default();
    out.push(b'{');
    out.extend_from_slice(members.as_bytes());
    if !members.is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(meta.as_bytes());
    out.extend_from_slice(b"}}");
    String::from_utf8(out).unwrap_or_default()
}

/// A feature of `collection` kept by [`stored_feature_text`] with every attribute back: each
/// one missing takes the value a record read from the store has when unset (`null`, or an
/// empty list, or `false`), so the audit log reads as the features the API shows. Members
/// present are kept as they are; a document whose properties do not read as the
/// collection's (none is written so) is returned as it is.
pub fn with_unset_attributes(collection: Collection, mut document: Value) -> Value {
    let Some(Value::Object(properties)) = document.get_mut("properties") else {
        return document;
    };
    let attributes: Map<String, Value> = properties
        .iter()
        .filter(|(k, _)| !SERVER_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Ok(read) = Attributes::from_json(collection, Value::Object(attributes)) {
        for (name, value) in read.to_json() {
            properties.entry(name).or_insert(value);
        }
    }
    document
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_service_feature_round_trips() {
        let v = json!({"type": "Feature", "id": "svc-1",
            "geometry": {"type": "Point", "coordinates": [12.24, 45.67]},
            "properties": {"name": "PAS", "kind": "pas", "languages": ["it", "en"]}});
        let f = FeatureInput::parse(Collection::Services, v).unwrap();
        assert_eq!(f.id.unwrap().as_str(), "svc-1");
        assert!((f.geometry.as_point().unwrap().lon() - 12.24).abs() < 1e-12);
    }

    #[test]
    fn services_must_be_points() {
        let v = json!({"type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[12,45],[13,45],[13,46],[12,45]]]},
            "properties": {"name": "PAS", "kind": "pas"}});
        let e = FeatureInput::parse(Collection::Services, v).unwrap_err();
        assert_eq!(e.field, "geometry");
    }

    #[test]
    fn out_of_range_coordinates_are_rejected() {
        let v = json!({"type": "Feature",
            "geometry": {"type": "Point", "coordinates": [200.0, 45.0]},
            "properties": {"name": "PAS", "kind": "pas"}});
        let e = FeatureInput::parse(Collection::Services, v).unwrap_err();
        assert_eq!(e.field, "geometry");
    }

    #[test]
    fn self_intersecting_polygons_are_rejected() {
        let bowtie = json!({"type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[12,45],[13,46],[13,45],[12,46],[12,45]]]},
            "properties": {"name": "x", "kind": "farm"}});
        let e = FeatureInput::parse(Collection::Worksites, bowtie).unwrap_err();
        assert_eq!(e.field, "geometry", "{e}");
    }

    #[test]
    fn unclosed_rings_are_rejected() {
        let open = json!({"type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[12,45],[13,45],[13,46]]]},
            "properties": {"name": "x", "kind": "farm"}});
        assert!(FeatureInput::parse(Collection::Worksites, open).is_err());
    }

    #[test]
    fn document_errors_name_the_feature_number_and_field() {
        let doc = json!({"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [12, 45]},
             "properties": {"name": "ok", "kind": "pas"}},
            {"type": "Feature", "id": "bad", "geometry": {"type": "Point", "coordinates": [12, 45]},
             "properties": {"name": "x", "kind": "bakery"}}]});
        let errs = FeatureInput::parse_document(Collection::Services, doc).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].feature, Some(2));
        assert_eq!(errs[0].error.field, "kind");
        let text = errs[0].to_string();
        assert!(
            text.starts_with("feature 2 (id bad): field `kind`"),
            "{text}"
        );
    }

    #[test]
    fn nested_type_errors_name_the_path() {
        let v = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [12, 45]},
            "properties": {"name": "x", "kind": "pas", "languages": ["it", "zz"]}});
        let e = FeatureInput::parse(Collection::Services, v).unwrap_err();
        assert!(e.field.starts_with("languages"), "{e}");
    }

    #[test]
    fn duplicate_ids_in_a_document_are_rejected() {
        let f = json!({"type": "Feature", "id": "a", "geometry": {"type": "Point", "coordinates": [12, 45]},
            "properties": {"name": "x", "kind": "pas"}});
        let doc = json!({"type": "FeatureCollection", "features": [f.clone(), f]});
        let errs = FeatureInput::parse_document(Collection::Services, doc).unwrap_err();
        assert_eq!(errs[0].feature, Some(2));
    }

    #[test]
    fn server_fields_sent_back_are_ignored() {
        let v = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [12, 45]},
            "properties": {"name": "x", "kind": "pas", "version": 3, "updated_at": "2026-01-01T00:00:00Z"}});
        assert!(FeatureInput::parse(Collection::Services, v).is_ok());
    }

    fn stored(collection: Collection, feature: Value) -> Record {
        let f = FeatureInput::parse(collection, feature).unwrap();
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-02T10:00:00.123456+00:00")
            .unwrap()
            .to_utc();
        let meta = Meta {
            version: 3,
            created_at: at,
            updated_at: at + chrono::Duration::seconds(5),
        };
        Record::new(
            RecordId::parse("x-1").unwrap(),
            f.geometry,
            f.attributes,
            meta,
        )
        .unwrap()
    }

    #[test]
    fn a_stored_feature_leaves_out_unset_attributes_and_reads_back_as_the_api_shows_it() {
        let service = stored(
            Collection::Services,
            json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [12.241_234_5, 45.665_432_1]},
                "properties": {"name": "PAS \"Ovest\"", "kind": "pas", "languages": ["it", "ar"], "capacity": 4}}),
        );
        let worksite = stored(
            Collection::Worksites,
            json!({"type": "Feature", "geometry": {"type": "Polygon",
                "coordinates": [[[12.0, 45.0], [12.1, 45.0], [12.1, 45.1], [12.0, 45.0]]]},
                "properties": {"name": "Vigneto", "kind": "farm"}}),
        );
        for record in [service, worksite] {
            let attributes = record.attributes().to_json_text();
            let text = stored_feature_text(&record, &attributes, &meta_members(record.meta()));
            let kept: Value = serde_json::from_str(&text).unwrap();
            let props = kept["properties"].as_object().unwrap();
            assert!(props.values().all(|v| !v.is_null()), "{text}");
            assert!(props.len() < to_feature(&record)["properties"].as_object().unwrap().len());
            assert_eq!(
                with_unset_attributes(record.collection(), kept),
                to_feature(&record),
                "{text}"
            );
            // Entries written with every attribute read the same.
            assert_eq!(
                with_unset_attributes(record.collection(), to_feature(&record)),
                to_feature(&record)
            );
        }
    }

    #[test]
    fn an_audit_document_that_is_not_the_collections_is_shown_as_it_is() {
        let odd = json!({"type": "Feature", "properties": {"name": "x", "kind": "bakery"}});
        assert_eq!(
            with_unset_attributes(Collection::Services, odd.clone()),
            odd
        );
        assert_eq!(
            with_unset_attributes(Collection::Services, json!(null)),
            json!(null)
        );
    }
}
