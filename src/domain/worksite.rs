//! Rural and other worksites: restricted records, never shown to anonymous callers.

use serde::{Deserialize, Serialize};

use super::FieldError;
use super::value::{Month, normalise_months, optional_text, required_text, string_enum};

string_enum! {
    /// What is produced or done at a worksite.
    WorksiteKind, "worksite kind" {
        Farm => "farm",
        Vineyard => "vineyard",
        Orchard => "orchard",
        Greenhouse => "greenhouse",
        Livestock => "livestock",
        Textile => "textile",
        Logistics => "logistics",
        Construction => "construction",
        Other => "other",
    }
}

/// The properties of a worksite. Geometry (Point or Polygon) lives on the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Worksite {
    pub name: String,
    pub kind: WorksiteKind,
    /// Workers at the peak of activity.
    #[serde(default)]
    pub workers_estimate: Option<u32>,
    #[serde(default)]
    pub peak_months: Vec<Month>,
    #[serde(default)]
    pub notes: Option<String>,
    /// A demo record that describes no real place.
    #[serde(default)]
    pub fictional: bool,
}

impl Worksite {
    pub fn validate(mut self) -> Result<Self, FieldError> {
        self.name = required_text("name", &self.name, 200)?;
        self.notes = optional_text("notes", self.notes.as_deref(), 4000)?;
        normalise_months(&mut self.peak_months);
        Ok(self)
    }
}
