//! Services: a service of an organisation at a place (HSDS-inspired).

use std::fmt;
use std::sync::Arc;

use chrono::NaiveDate;
use opening_hours::localization::Country;
use opening_hours::{Context, OpeningHours};
use serde::{Deserialize, Serialize};

use super::FieldError;
use super::value::{optional_text, required_text, string_enum};

string_enum! {
    /// What a service is, for planners and for `/nearest?kind=`.
    ServiceKind, "service kind" {
        FocalPoint => "focal_point",
        Pas => "pas",
        Shelter => "shelter",
        HelpDesk => "help_desk",
        OutreachUnit => "outreach_unit",
        JobCentre => "job_centre",
        LabourInspectorate => "labour_inspectorate",
        Prefecture => "prefecture",
        ReceptionCentre => "reception_centre",
        Health => "health",
        LegalAid => "legal_aid",
        TradeUnion => "trade_union",
        SocialServices => "social_services",
        Other => "other",
    }
}

/// An ISO 639-1 language code (two lowercase letters, a known language).
///
/// ```
/// use faro::domain::Language;
/// assert_eq!(Language::parse("ar").unwrap().code(), "ar");
/// assert!(Language::parse("xx").is_err());
/// assert!(Language::parse("ara").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Language(&'static str);

impl Language {
    pub fn parse(code: &str) -> Result<Self, String> {
        let lower = code.trim().to_ascii_lowercase();
        if lower.len() != 2 {
            return Err(format!("`{code}` is not a two-letter ISO 639-1 code"));
        }
        isolang::Language::from_639_1(&lower)
            .and_then(|l| l.to_639_1())
            .map(Language)
            .ok_or_else(|| format!("`{code}` is not an ISO 639-1 language code"))
    }

    pub fn code(self) -> &'static str {
        self.0
    }
}

impl Serialize for Language {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Language {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Language::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An OpenStreetMap `opening_hours` expression, parsed, evaluated with Italian public
/// holidays (`PH`) in local civil time (the caller converts to Europe/Rome).
#[derive(Clone)]
pub struct OpeningHoursSpec {
    raw: String,
    parsed: Arc<OpeningHours>,
}

impl OpeningHoursSpec {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("must not be empty".to_owned());
        }
        let parsed = raw
            .parse::<OpeningHours>()
            .map_err(|e| format!("`{raw}` is not valid OpenStreetMap opening_hours: {e}"))?
            .with_context(Context::default().with_holidays(Country::IT.holidays()));
        Ok(Self {
            raw: raw.to_owned(),
            parsed: Arc::new(parsed),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether the service is open at this local (Europe/Rome) wall-clock time.
    pub fn is_open(&self, local: chrono::NaiveDateTime) -> bool {
        self.parsed.is_open(local)
    }
}

impl fmt::Debug for OpeningHoursSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpeningHoursSpec({:?})", self.raw)
    }
}

impl PartialEq for OpeningHoursSpec {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Serialize for OpeningHoursSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for OpeningHoursSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        OpeningHoursSpec::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The properties of a service. Geometry (a Point) lives on the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent HSDS flags, not a state machine"
)]
pub struct Service {
    pub name: String,
    pub kind: ServiceKind,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    /// ISTAT code of the comune (6 digits).
    #[serde(default)]
    pub comune: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default)]
    pub languages: Vec<Language>,
    #[serde(default)]
    pub opening_hours: Option<OpeningHoursSpec>,
    #[serde(default)]
    pub referral_required: bool,
    #[serde(default)]
    pub eligibility: Option<String>,
    /// Beds, for shelters and reception centres.
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Free beds now; at most `capacity`.
    #[serde(default)]
    pub vacancy: Option<u32>,
    /// The exact position is shown only to authorised roles.
    #[serde(default)]
    pub confidential: bool,
    /// An itinerant service; each stop is a service record with its own weekly hours.
    #[serde(default)]
    pub mobile: bool,
    #[serde(default)]
    pub last_verified: Option<NaiveDate>,
    /// A demo record that describes no real service.
    #[serde(default)]
    pub fictional: bool,
}

impl Service {
    /// Normalises text fields and checks the rules that span fields.
    pub fn validate(mut self) -> Result<Self, FieldError> {
        self.name = required_text("name", &self.name, 200)?;
        self.organization = optional_text("organization", self.organization.as_deref(), 200)?;
        self.description = optional_text("description", self.description.as_deref(), 4000)?;
        self.address = optional_text("address", self.address.as_deref(), 300)?;
        self.eligibility = optional_text("eligibility", self.eligibility.as_deref(), 2000)?;
        self.comune = optional_text("comune", self.comune.as_deref(), 6)?;
        if let Some(c) = &self.comune
            && (c.len() != 6 || !c.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(FieldError::new(
                "comune",
                format!("`{c}` is not a 6-digit ISTAT comune code"),
            ));
        }
        self.phone = optional_text("phone", self.phone.as_deref(), 40)?;
        if let Some(p) = &self.phone
            && !p
                .chars()
                .all(|c| c.is_ascii_digit() || " +-()/.".contains(c))
        {
            return Err(FieldError::new(
                "phone",
                format!("`{p}` may hold only digits, spaces and + - ( ) / ."),
            ));
        }
        self.email = optional_text("email", self.email.as_deref(), 200)?;
        if let Some(e) = &self.email {
            let ok = e.split_once('@').is_some_and(|(user, host)| {
                !user.is_empty() && host.contains('.') && !e.contains(char::is_whitespace)
            });
            if !ok {
                return Err(FieldError::new(
                    "email",
                    format!("`{e}` is not an e-mail address"),
                ));
            }
        }
        self.website = optional_text("website", self.website.as_deref(), 500)?;
        if let Some(w) = &self.website
            && !(w.starts_with("https://") || w.starts_with("http://"))
        {
            return Err(FieldError::new(
                "website",
                format!("`{w}` must be an http:// or https:// address"),
            ));
        }
        self.languages.sort_unstable();
        self.languages.dedup();
        if let (Some(cap), Some(vac)) = (self.capacity, self.vacancy)
            && vac > cap
        {
            return Err(FieldError::new(
                "vacancy",
                format!("vacancy {vac} exceeds capacity {cap}"),
            ));
        }
        Ok(self)
    }

    pub fn speaks(&self, language: Language) -> bool {
        self.languages.contains(&language)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Service, String> {
        let s: Service = serde_json::from_value(v).map_err(|e| e.to_string())?;
        s.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn a_minimal_service_needs_only_name_and_kind() {
        let s = parse(json!({"name": " PAS Treviso ", "kind": "pas"})).unwrap();
        assert_eq!(s.name, "PAS Treviso");
        assert_eq!(s.kind, ServiceKind::Pas);
        assert!(!s.confidential);
    }

    #[test]
    fn unknown_kind_is_rejected_naming_the_choices() {
        let e = parse(json!({"name": "x", "kind": "bakery"})).unwrap_err();
        assert!(e.contains("bakery") && e.contains("focal_point"), "{e}");
    }

    #[test]
    fn unknown_property_is_rejected() {
        let e = parse(json!({"name": "x", "kind": "pas", "colour": "red"})).unwrap_err();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn languages_must_be_iso_639_1() {
        assert!(
            parse(json!({"name": "x", "kind": "pas", "languages": ["it", "ur", "wo"]})).is_ok()
        );
        assert!(parse(json!({"name": "x", "kind": "pas", "languages": ["ita"]})).is_err());
        assert!(parse(json!({"name": "x", "kind": "pas", "languages": ["qq"]})).is_err());
    }

    #[test]
    fn opening_hours_are_parsed_and_evaluated() {
        let s = parse(json!({"name": "x", "kind": "pas", "opening_hours": "Mo-Fr 09:00-13:00"}))
            .unwrap();
        let oh = s.opening_hours.unwrap();
        // 2026-11-25 is a Wednesday.
        let wed_10 = NaiveDate::from_ymd_opt(2026, 11, 25)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap();
        let wed_14 = NaiveDate::from_ymd_opt(2026, 11, 25)
            .unwrap()
            .and_hms_opt(14, 0, 0)
            .unwrap();
        let sat_10 = NaiveDate::from_ymd_opt(2026, 11, 28)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap();
        assert!(oh.is_open(wed_10));
        assert!(!oh.is_open(wed_14));
        assert!(!oh.is_open(sat_10));
    }

    #[test]
    fn public_holidays_are_italian() {
        let oh = OpeningHoursSpec::parse("Mo-Fr 09:00-13:00; PH off").unwrap();
        // 8 December (Immacolata) 2026 is a Tuesday and an Italian public holiday.
        let immacolata = NaiveDate::from_ymd_opt(2026, 12, 8)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap();
        let day_before = NaiveDate::from_ymd_opt(2026, 12, 7)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap();
        assert!(!oh.is_open(immacolata));
        assert!(oh.is_open(day_before));
    }

    #[test]
    fn malformed_opening_hours_are_rejected() {
        assert!(
            parse(json!({"name": "x", "kind": "pas", "opening_hours": "Mo-Fr 25:00-26:99"}))
                .is_err()
        );
        assert!(parse(json!({"name": "x", "kind": "pas", "opening_hours": "whenever"})).is_err());
    }

    #[test]
    fn vacancy_cannot_exceed_capacity() {
        let e = parse(json!({"name": "x", "kind": "shelter", "capacity": 4, "vacancy": 5}))
            .unwrap_err();
        assert!(e.contains("vacancy"), "{e}");
    }

    #[test]
    fn contact_fields_are_checked() {
        assert!(parse(json!({"name": "x", "kind": "pas", "email": "no-at-sign"})).is_err());
        assert!(parse(json!({"name": "x", "kind": "pas", "website": "ftp://x"})).is_err());
        assert!(parse(json!({"name": "x", "kind": "pas", "phone": "call me"})).is_err());
        assert!(parse(json!({"name": "x", "kind": "pas", "comune": "26086"})).is_err());
        assert!(
            parse(
                json!({"name": "x", "kind": "pas", "comune": "026086", "phone": "+39 0422 657111"})
            )
            .is_ok()
        );
    }
}
