//! A stored record: identifier, geometry, typed attributes and bookkeeping.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::geometry::{GeometryRule, ValidGeometry};
use super::value::string_enum;
use super::{FieldError, Service, Settlement, Territory, Worksite};

string_enum! {
    /// The four collections faro serves.
    Collection, "collection" {
        Services => "services",
        Settlements => "settlements",
        Worksites => "worksites",
        Territories => "territories",
    }
}

impl Collection {
    /// Position in [`Collection::ALL`], for arrays indexed by collection.
    pub fn index(self) -> usize {
        match self {
            Collection::Services => 0,
            Collection::Settlements => 1,
            Collection::Worksites => 2,
            Collection::Territories => 3,
        }
    }

    /// Settlements and worksites are never shown to anonymous callers.
    pub fn is_restricted(self) -> bool {
        matches!(self, Collection::Settlements | Collection::Worksites)
    }

    pub fn geometry_rule(self) -> GeometryRule {
        match self {
            Collection::Services => GeometryRule::PointOnly,
            Collection::Settlements | Collection::Worksites => GeometryRule::PointOrPolygon,
            Collection::Territories => GeometryRule::Areal,
        }
    }

    /// Prefix of generated identifiers.
    pub fn id_prefix(self) -> &'static str {
        match self {
            Collection::Services => "svc",
            Collection::Settlements => "set",
            Collection::Worksites => "ws",
            Collection::Territories => "terr",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Collection::Services => "Services",
            Collection::Settlements => "Informal settlements",
            Collection::Worksites => "Worksites",
            Collection::Territories => "Territories",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Collection::Services => {
                "Services of the network: focal points, PAS, shelters, help desks, job centres, \
                 inspectorate and more. Confidential ones only for authorised roles."
            }
            Collection::Settlements => "Informal settlements. Restricted to authorised roles.",
            Collection::Worksites => "Rural and other worksites. Restricted to authorised roles.",
            Collection::Territories => "The province, its territories and comuni.",
        }
    }
}

/// A record identifier: 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
///
/// ```
/// use faro::domain::RecordId;
/// assert!(RecordId::parse("svc-prefettura-treviso").is_ok());
/// assert!(RecordId::parse("a/b").is_err());
/// assert!(RecordId::parse("").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RecordId(String);

impl RecordId {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(FieldError::new(
                "id",
                format!("`{text}` is not a valid id (1-64 characters of A-Z a-z 0-9 . _ -)"),
            ))
        }
    }

    /// A fresh random identifier for a record of `collection`.
    pub fn generate(collection: Collection) -> Self {
        let mut bytes = [0_u8; 8];
        // The OS generator only fails when the platform has none; fall back to the clock.
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
            bytes = nanos.to_le_bytes();
        }
        Self(format!("{}-{}", collection.id_prefix(), hex::encode(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RecordId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The typed properties of a record, one variant per collection.
#[derive(Debug, Clone, PartialEq)]
pub enum Attributes {
    Service(Service),
    Settlement(Settlement),
    Worksite(Worksite),
    Territory(Territory),
}

impl Attributes {
    pub fn collection(&self) -> Collection {
        match self {
            Attributes::Service(_) => Collection::Services,
            Attributes::Settlement(_) => Collection::Settlements,
            Attributes::Worksite(_) => Collection::Worksites,
            Attributes::Territory(_) => Collection::Territories,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Attributes::Service(s) => &s.name,
            Attributes::Settlement(s) => &s.name,
            Attributes::Worksite(w) => &w.name,
            Attributes::Territory(t) => &t.name,
        }
    }

    /// The kind filterable with `?kind=`: service kind, worksite kind or territory level.
    pub fn kind_str(&self) -> Option<&'static str> {
        match self {
            Attributes::Service(s) => Some(s.kind.as_str()),
            Attributes::Worksite(w) => Some(w.kind.as_str()),
            Attributes::Territory(t) => Some(t.level.as_str()),
            Attributes::Settlement(_) => None,
        }
    }

    /// Parses and validates properties for a collection from a JSON object.
    pub fn from_json(
        collection: Collection,
        properties: serde_json::Value,
    ) -> Result<Self, FieldError> {
        Self::deserialize_from(collection, properties)
    }

    /// As [`Self::from_json`], from the text of the object (no `serde_json::Value` built on
    /// the way): how a store reads back what it wrote.
    pub fn from_json_text(collection: Collection, text: &str) -> Result<Self, FieldError> {
        let mut d = serde_json::Deserializer::from_str(text);
        let attributes = Self::deserialize_from(collection, &mut d)?;
        d.end()
            .map_err(|e| FieldError::new("properties", e.to_string()))?;
        Ok(attributes)
    }

    fn deserialize_from<'de, D: serde::Deserializer<'de>>(
        collection: Collection,
        properties: D,
    ) -> Result<Self, FieldError> {
        fn de<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<T, FieldError> {
            serde_path_to_error::deserialize(d).map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." {
                    "properties".to_owned()
                } else {
                    path
                };
                let inner = e.into_inner().to_string();
                // serde names the unknown field itself; say it plainly.
                let reason = inner
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                FieldError::new(field, reason)
            })
        }
        match collection {
            Collection::Services => Ok(Attributes::Service(
                de::<Service, D>(properties)?.validate()?,
            )),
            Collection::Settlements => Ok(Attributes::Settlement(
                de::<Settlement, D>(properties)?.validate()?,
            )),
            Collection::Worksites => Ok(Attributes::Worksite(
                de::<Worksite, D>(properties)?.validate()?,
            )),
            Collection::Territories => Ok(Attributes::Territory(
                de::<Territory, D>(properties)?.validate()?,
            )),
        }
    }

    /// What a store writes: the object of [`Self::to_json`] without its unset fields (members
    /// that are `null`; reading fills them in again), serialised from the typed fields with
    /// no map of values built on the way, its members in the order of the fields. A service with a name
    /// and a kind is a third of its text with every null, and the database parses it for
    /// every record an import writes.
    pub fn to_json_text(&self) -> String {
        let text = match self {
            Attributes::Service(s) => serde_json::to_string(s),
            Attributes::Settlement(s) => serde_json::to_string(s),
            Attributes::Worksite(w) => serde_json::to_string(w),
            Attributes::Territory(t) => serde_json::to_string(t),
        };
        text.and_then(|t| without_nulls(&t))
            .unwrap_or_else(|_| "{}".to_owned())
    }

    /// The properties as a JSON object (every field, `null` where unset).
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let value = match self {
            Attributes::Service(s) => serde_json::to_value(s),
            Attributes::Settlement(s) => serde_json::to_value(s),
            Attributes::Worksite(w) => serde_json::to_value(w),
            Attributes::Territory(t) => serde_json::to_value(t),
        };
        match value {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        }
    }
}

/// The text of a JSON object without its members whose value is `null` (nested values are
/// kept as they are), the others in their order, copied as they are written: one pass of
/// `serde_json`'s reader over the text, no map built.
fn without_nulls(object: &str) -> Result<String, serde_json::Error> {
    use serde::de::{Deserializer as _, Error as _, MapAccess, Visitor};
    use serde_json::value::RawValue;

    /// A member's name, borrowed from the text unless it holds escapes.
    struct Name<'a>(std::borrow::Cow<'a, str>);

    impl<'de> serde::Deserialize<'de> for Name<'de> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Name<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a member name")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                    Ok(Name(std::borrow::Cow::Borrowed(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                    Ok(Name(std::borrow::Cow::Owned(v.to_owned())))
                }
            }
            d.deserialize_str(V)
        }
    }

    struct Members(Vec<u8>);

    impl<'de> Visitor<'de> for &mut Members {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some((name, value)) = map.next_entry::<Name<'de>, &'de RawValue>()? {
                if value.get() == "null" {
                    continue;
                }
                if self.0.len() > 1 {
                    self.0.push(b',');
                }
                serde_json::to_writer(&mut self.0, name.0.as_ref()).map_err(A::Error::custom)?;
                self.0.push(b':');
                self.0.extend_from_slice(value.get().as_bytes());
            }
            Ok(())
        }
    }

    let mut members = Members(Vec::with_capacity(object.len()));
    members.0.push(b'{');
    let mut reader = serde_json::Deserializer::from_str(object);
    reader.deserialize_map(&mut members)?;
    reader.end()?;
    members.0.push(b'}');
    // Made of a `str`'s pieces and serde_json's output: UTF-8.
    String::from_utf8(members.0).map_err(serde_json::Error::custom)
}

/// Bookkeeping kept by the store on every record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Starts at 1 and grows by one on every change; the ETag of the record.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A record as stored and indexed.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    id: RecordId,
    geometry: ValidGeometry,
    attributes: Attributes,
    meta: Meta,
}

impl Record {
    /// Assembles a record; the geometry's type must fit the collection of the attributes (the
    /// geometry itself is valid already, so this is an O(1) check).
    pub fn new(
        id: RecordId,
        geometry: ValidGeometry,
        attributes: Attributes,
        meta: Meta,
    ) -> Result<Self, FieldError> {
        geometry.check_rule(attributes.collection().geometry_rule())?;
        Ok(Self {
            id,
            geometry,
            attributes,
            meta,
        })
    }

    pub fn id(&self) -> &RecordId {
        &self.id
    }
    pub fn collection(&self) -> Collection {
        self.attributes.collection()
    }
    pub fn geometry(&self) -> &geo::Geometry<f64> {
        self.geometry.geometry()
    }
    pub fn valid_geometry(&self) -> &ValidGeometry {
        &self.geometry
    }
    pub fn attributes(&self) -> &Attributes {
        &self.attributes
    }
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The service attributes, when this is a service.
    pub fn as_service(&self) -> Option<&Service> {
        match &self.attributes {
            Attributes::Service(s) => Some(s),
            _ => None,
        }
    }

    /// A confidential service: exact position only for authorised roles.
    pub fn is_confidential(&self) -> bool {
        self.as_service().is_some_and(|s| s.confidential)
    }

    /// The record's entity tag, unquoted: its version and its incarnation (creation time in
    /// microseconds, hex), so that a deleted and re-created record never repeats a tag.
    pub fn entity_tag(&self) -> String {
        format!(
            "{}-{:x}",
            self.meta.version,
            self.meta.created_at.timestamp_micros()
        )
    }

    /// The record's `ETag` header value (a strong validator): the quoted [`Record::entity_tag`].
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.entity_tag())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_leaves_out_top_level_nulls_only() {
        let text = r#"{"b":null,"a":"x \"null\", \\ {\"c\":null}","n":{"c":null},"l":[null],"z":0,"e":false,"q\"n":1}"#;
        let stripped = without_nulls(text).unwrap();
        assert_eq!(
            stripped,
            r#"{"a":"x \"null\", \\ {\"c\":null}","n":{"c":null},"l":[null],"z":0,"e":false,"q\"n":1}"#
        );
        let before: serde_json::Value = serde_json::from_str(text).unwrap();
        let after: serde_json::Value = serde_json::from_str(&stripped).unwrap();
        let mut expected = before.as_object().unwrap().clone();
        expected.remove("b");
        assert_eq!(after.as_object().unwrap(), &expected);
        assert_eq!(without_nulls(r#"{"a":null}"#).unwrap(), "{}");
        assert_eq!(without_nulls("{}").unwrap(), "{}");
    }

    #[test]
    fn stored_text_reads_back_as_the_same_attributes() {
        for (collection, properties) in [
            (
                Collection::Services,
                serde_json::json!({"name": "Sportello", "kind": "help_desk", "phone": "+39 0422 1",
                    "languages": ["it", "ar"], "capacity": 4}),
            ),
            (
                Collection::Services,
                serde_json::json!({"name": "PAS", "kind": "pas"}),
            ),
            (
                Collection::Settlements,
                serde_json::json!({"name": "Insediamento (fittizio)", "fictional": true}),
            ),
        ] {
            let attributes = Attributes::from_json(collection, properties).unwrap();
            let text = attributes.to_json_text();
            assert!(!text.contains("null"), "{text}");
            assert_eq!(
                Attributes::from_json_text(collection, &text).unwrap(),
                attributes
            );
        }
    }
}
