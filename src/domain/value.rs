//! Small validated values shared by the records: identifiers of kinds, months, text checks.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::FieldError;

/// Declares a closed set of `snake_case` names with `as_str`, `ALL`, `FromStr` (whose error lists
/// the accepted names) and serde in both directions.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} `{}`; expected one of: {}",
                        $what,
                        other,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use string_enum;

/// A month of the year, 1 (January) to 12 (December).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(u8);

impl Month {
    pub fn new(n: i64) -> Result<Self, String> {
        if (1..=12).contains(&n) {
            Ok(Self(u8::try_from(n).map_err(|e| e.to_string())?))
        } else {
            Err(format!("month must be 1 to 12, got {n}"))
        }
    }

    pub fn number(self) -> u8 {
        self.0
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        Month::new(n).map_err(serde::de::Error::custom)
    }
}

/// Sorts and de-duplicates a list of months.
pub fn normalise_months(months: &mut Vec<Month>) {
    months.sort_unstable();
    months.dedup();
}

/// A required text field: trimmed, not empty, at most `max` characters.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let t = value.trim();
    if t.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    check_len(field, t, max)?;
    Ok(t.to_owned())
}

/// An optional text field: trimmed; empty becomes `None`.
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => {
            check_len(field, t, max)?;
            Ok(Some(t.to_owned()))
        }
    }
}

fn check_len(field: &str, t: &str, max: usize) -> Result<(), FieldError> {
    let n = t.chars().count();
    if n > max {
        return Err(FieldError::new(
            field,
            format!("is {n} characters long, at most {max} allowed"),
        ));
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(FieldError::new(field, "contains control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_accepts_one_to_twelve_only() {
        assert!(Month::new(1).is_ok());
        assert!(Month::new(12).is_ok());
        assert!(Month::new(0).is_err());
        assert!(Month::new(13).is_err());
        assert!(Month::new(-1).is_err());
    }

    #[test]
    fn required_text_is_trimmed_and_not_empty() {
        assert_eq!(
            required_text("name", "  a b ", 10).ok(),
            Some("a b".to_owned())
        );
        assert!(required_text("name", "   ", 10).is_err());
        assert!(required_text("name", "abcdef", 3).is_err());
        assert!(required_text("name", "a\u{0}b", 10).is_err());
    }

    #[test]
    fn optional_text_maps_blank_to_none() {
        assert_eq!(optional_text("x", Some("  "), 5).ok(), Some(None));
        assert_eq!(optional_text("x", None, 5).ok(), Some(None));
    }
}
