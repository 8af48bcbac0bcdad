//! Records of the four collections and the value types they are made of.
//!
//! Everything here parses and validates; nothing does I/O. A value of a type in this module is
//! valid by construction: a handler, a store or the index never re-checks it.
//!
//! Coordinates are WGS84 longitude/latitude (EPSG:4326) everywhere, distances are metres on the
//! WGS84 ellipsoid.

pub mod access;
pub mod feature;
pub mod geometry;
pub mod record;
pub mod service;
pub mod settlement;
pub mod territory;
pub mod validity;
pub mod value;
pub mod worksite;

pub use access::{AccessError, Principal, Role, is_public};
pub use feature::{FeatureError, FeatureInput};
pub use geometry::{
    Bbox, DEFAULT_MAX_VERTICES, GeometryError, GeometryRule, LonLat, ValidGeometry,
};
pub use record::{Attributes, Collection, Meta, Record, RecordId};
pub use service::{Language, OpeningHoursSpec, Service, ServiceKind};
pub use settlement::Settlement;
pub use territory::{Territory, TerritoryLevel};
pub use value::Month;
pub use worksite::{Worksite, WorksiteKind};

/// A field of a record that failed validation: which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct FieldError {
    /// The offending field, as named in the GeoJSON properties (or `geometry`, `id`).
    pub field: String,
    /// What is wrong with it, for a human.
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
