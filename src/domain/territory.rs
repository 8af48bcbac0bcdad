//! Territories: the province, its territories and comuni.

use serde::{Deserialize, Serialize};

use super::FieldError;
use super::value::{optional_text, required_text, string_enum};

string_enum! {
    /// Where a territory sits in the hierarchy.
    TerritoryLevel, "territory level" {
        Province => "province",
        Territory => "territory",
        Comune => "comune",
    }
}

/// The properties of a territory. Geometry (`Polygon` or `MultiPolygon`) lives on the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Territory {
    pub name: String,
    pub level: TerritoryLevel,
    /// ISTAT code, where one exists.
    #[serde(default)]
    pub code: Option<String>,
    /// Id of the enclosing territory.
    #[serde(default)]
    pub parent: Option<String>,
    /// Resident population.
    #[serde(default)]
    pub population: Option<u64>,
    /// ISTAT codes of the comuni that make up a territory defined as a group of comuni.
    #[serde(default)]
    pub comuni: Vec<String>,
    /// The outline is a coarse approximation, not an official boundary.
    #[serde(default)]
    pub approximate: bool,
    #[serde(default)]
    pub note: Option<String>,
}

impl Territory {
    pub fn validate(mut self) -> Result<Self, FieldError> {
        self.name = required_text("name", &self.name, 200)?;
        self.code = optional_text("code", self.code.as_deref(), 20)?;
        self.parent = optional_text("parent", self.parent.as_deref(), 64)?;
        self.note = optional_text("note", self.note.as_deref(), 2000)?;
        for c in &self.comuni {
            if c.len() != 6 || !c.bytes().all(|b| b.is_ascii_digit()) {
                return Err(FieldError::new(
                    "comuni",
                    format!("`{c}` is not a 6-digit ISTAT comune code"),
                ));
            }
        }
        Ok(self)
    }
}
