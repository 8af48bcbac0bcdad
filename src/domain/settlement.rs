//! Informal settlements: restricted records, never shown to anonymous callers.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::FieldError;
use super::value::{Month, normalise_months, optional_text, required_text};

/// The properties of an informal settlement. Geometry (Point or Polygon) lives on the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settlement {
    pub name: String,
    /// People living there at the peak of the season.
    #[serde(default)]
    pub population_estimate: Option<u32>,
    /// Months (1-12) in which it is inhabited; empty means unknown.
    #[serde(default)]
    pub season: Vec<Month>,
    #[serde(default)]
    pub sector: Option<String>,
    #[serde(default)]
    pub last_surveyed: Option<NaiveDate>,
    #[serde(default)]
    pub notes: Option<String>,
    /// A demo record that describes no real place.
    #[serde(default)]
    pub fictional: bool,
}

impl Settlement {
    pub fn validate(mut self) -> Result<Self, FieldError> {
        self.name = required_text("name", &self.name, 200)?;
        self.sector = optional_text("sector", self.sector.as_deref(), 100)?;
        self.notes = optional_text("notes", self.notes.as_deref(), 4000)?;
        normalise_months(&mut self.season);
        Ok(self)
    }
}
