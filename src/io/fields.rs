//! faro's fields per collection, and how a value read from a file becomes the JSON value the
//! API takes for that field.
//!
//! The conversion only changes representation, never meaning: `"3"` from a CSV cell or `3.0`
//! from a DBF numeric becomes the whole number `3`, `"it;en"` the list `["it", "en"]`,
//! `"sì"` `true`, `05/03/2026` `2026-03-05` (day first, as written in Italy). Whatever it
//! cannot convert is left for the API's own validation to refuse with its message.

use serde_json::Value;

use crate::domain::{Collection, FieldError};

/// The type of a field, as far as reading it from a file needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    /// An ISTAT comune code: a number read from a numeric column gets its leading zeros back.
    Comune,
    Int,
    Bool,
    /// A date, ISO `YYYY-MM-DD` on the wire.
    Date,
    TextList,
    ComuneList,
    IntList,
}

/// Every field of a collection's records, in the order the API writes them.
pub fn fields(collection: Collection) -> &'static [(&'static str, FieldType)] {
    use FieldType as T;
    match collection {
        Collection::Services => &[
            ("name", T::Text),
            ("kind", T::Text),
            ("organization", T::Text),
            ("description", T::Text),
            ("address", T::Text),
            ("comune", T::Comune),
            ("phone", T::Text),
            ("email", T::Text),
            ("website", T::Text),
            ("languages", T::TextList),
            ("opening_hours", T::Text),
            ("referral_required", T::Bool),
            ("eligibility", T::Text),
            ("capacity", T::Int),
            ("vacancy", T::Int),
            ("confidential", T::Bool),
            ("mobile", T::Bool),
            ("last_verified", T::Date),
            ("fictional", T::Bool),
        ],
        Collection::Settlements => &[
            ("name", T::Text),
            ("population_estimate", T::Int),
            ("season", T::IntList),
            ("sector", T::Text),
            ("last_surveyed", T::Date),
            ("notes", T::Text),
            ("fictional", T::Bool),
        ],
        Collection::Worksites => &[
            ("name", T::Text),
            ("kind", T::Text),
            ("workers_estimate", T::Int),
            ("peak_months", T::IntList),
            ("notes", T::Text),
            ("fictional", T::Bool),
        ],
        Collection::Territories => &[
            ("name", T::Text),
            ("level", T::Text),
            ("code", T::Text),
            ("parent", T::Text),
            ("population", T::Int),
            ("comuni", T::ComuneList),
            ("approximate", T::Bool),
            ("note", T::Text),
        ],
    }
}

/// The type of `field` in `collection`, if it is one of its fields.
pub fn field_type(collection: Collection, field: &str) -> Option<FieldType> {
    fields(collection)
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, t)| *t)
}

/// A value read from a file as the JSON value of a field of type `ty`; `None` for an empty
/// cell (the field is then unset).
pub fn coerce(field: &str, value: Value, ty: FieldType) -> Result<Option<Value>, FieldError> {
    let value = match value {
        Value::Null => return Ok(None),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => Value::String(s.trim().to_owned()),
        v => v,
    };
    let bad = |why: String| FieldError::new(field, why);
    Ok(Some(match ty {
        FieldType::Text => text(value),
        FieldType::Comune => comune(text(value)),
        FieldType::Int => int(value).map_err(bad)?,
        FieldType::Bool => boolean(value).map_err(bad)?,
        FieldType::Date => date(value),
        FieldType::TextList | FieldType::ComuneList | FieldType::IntList => {
            let items: Vec<Value> = match value {
                Value::Array(items) => items,
                Value::String(s) => s
                    .split([';', ',', '|'])
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.to_owned()))
                    .collect(),
                other => vec![other],
            };
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(match ty {
                    FieldType::IntList => int(item).map_err(bad)?,
                    FieldType::ComuneList => comune(text(item)),
                    _ => text(item),
                });
            }
            Value::Array(out)
        }
    }))
}

/// Numbers and booleans as text; a whole number without a fraction (`26001`, not `26001.0`).
fn text(value: Value) -> Value {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => {
                Value::String(format!("{f:.0}"))
            }
            _ => Value::String(n.to_string()),
        },
        Value::Bool(b) => Value::String(b.to_string()),
        other => other,
    }
}

fn comune(value: Value) -> Value {
    match value {
        Value::String(s)
            if !s.is_empty() && s.len() < 6 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Value::String(format!("{s:0>6}"))
        }
        other => other,
    }
}

fn int(value: Value) -> Result<Value, String> {
    let whole = |f: f64| -> Result<Value, String> {
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            #[allow(
                clippy::cast_possible_truncation,
                reason = "checked whole and in range"
            )]
            Ok(Value::from(f as i64))
        } else {
            Err(format!("`{f}` is not a whole number"))
        }
    };
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Value::Number(n)),
        Value::Number(n) => whole(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => {
            if let Ok(i) = s.parse::<i64>() {
                return Ok(Value::from(i));
            }
            match s.replace(',', ".").parse::<f64>() {
                Ok(f) => whole(f),
                Err(_) => Err(format!("`{s}` is not a whole number")),
            }
        }
        other => Ok(other),
    }
}

fn boolean(value: Value) -> Result<Value, String> {
    match value {
        Value::String(s) => match s.to_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "si" | "sì" | "s" | "vero" | "x" => {
                Ok(Value::Bool(true))
            }
            "false" | "f" | "no" | "n" | "0" | "falso" => Ok(Value::Bool(false)),
            _ => Err(format!(
                "`{s}` is not a yes/no value (true/false, sì/no, 1/0)"
            )),
        },
        Value::Number(n) => match n.as_i64() {
            Some(1) => Ok(Value::Bool(true)),
            Some(0) => Ok(Value::Bool(false)),
            _ if n.as_f64().is_some_and(|f| (f - 1.0).abs() < f64::EPSILON) => {
                Ok(Value::Bool(true))
            }
            _ if n.as_f64().is_some_and(|f| f.abs() < f64::EPSILON) => Ok(Value::Bool(false)),
            _ => Err(format!("`{n}` is not a yes/no value (1 or 0)")),
        },
        other => Ok(other),
    }
}

/// `DD/MM/YYYY`, `DD-MM-YYYY`, `DD.MM.YYYY` and `YYYY/MM/DD` as ISO dates; anything else
/// (ISO already, or wrong) unchanged, for the API to judge.
fn date(value: Value) -> Value {
    let Value::String(s) = value else {
        return value;
    };
    let parts: Vec<&str> = s.split(['/', '-', '.']).collect();
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if parts.len() == 3 && parts.iter().all(|p| digits(p)) {
        let (y, m, d) = if parts[0].len() == 4 {
            (parts[0], parts[1], parts[2])
        } else if parts[2].len() == 4 {
            (parts[2], parts[1], parts[0])
        } else {
            return Value::String(s);
        };
        if m.len() <= 2 && d.len() <= 2 {
            return Value::String(format!("{y}-{m:0>2}-{d:0>2}"));
        }
    }
    // A timestamp's date (`2026-03-05T10:00:00Z`, as spreadsheets export dates).
    if s.len() > 10
        && s.as_bytes()
            .get(10)
            .is_some_and(|b| *b == b'T' || *b == b' ')
    {
        let head = &s[..10];
        if head.bytes().filter(|b| *b == b'-').count() == 2 {
            return Value::String(head.to_owned());
        }
    }
    Value::String(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_become_the_types_the_api_takes() {
        let c = |v: Value, t| coerce("f", v, t).unwrap();
        assert_eq!(c(json!("3"), FieldType::Int), Some(json!(3)));
        assert_eq!(c(json!(3.0), FieldType::Int), Some(json!(3)));
        assert_eq!(
            c(json!("it; en"), FieldType::TextList),
            Some(json!(["it", "en"]))
        );
        assert_eq!(
            c(json!("6,7,8"), FieldType::IntList),
            Some(json!([6, 7, 8]))
        );
        assert_eq!(c(json!("Sì"), FieldType::Bool), Some(json!(true)));
        assert_eq!(
            c(json!("05/03/2026"), FieldType::Date),
            Some(json!("2026-03-05"))
        );
        assert_eq!(c(json!(26001.0), FieldType::Comune), Some(json!("026001")));
        assert_eq!(c(json!("  "), FieldType::Text), None);
        assert!(coerce("capacity", json!("tre"), FieldType::Int).is_err());
        assert!(coerce("mobile", json!("forse"), FieldType::Bool).is_err());
    }
}
