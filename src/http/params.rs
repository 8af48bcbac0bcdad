//! Query strings: parsed strictly (unknown or repeated parameters are errors, as OGC API
//! Features asks), then validated into typed values naming the parameter on failure.

use actix_web::HttpRequest;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Parses the query string into a raw parameter struct (`Option<String>` fields,
/// `deny_unknown_fields`).
pub fn raw<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    serde_urlencoded::from_str(req.query_string()).map_err(|e| {
        ApiError::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("query string: {e}"),
        )
    })
}

/// An optional integer within `min..=max`.
pub fn int_in(
    name: &str,
    value: Option<&str>,
    min: i64,
    max: i64,
) -> Result<Option<i64>, ApiError> {
    let Some(v) = value else { return Ok(None) };
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid_parameter(name, format!("`{v}` is not an integer")))?;
    if n < min || n > max {
        return Err(ApiError::invalid_parameter(
            name,
            format!("{n} is out of range; expected {min} to {max}"),
        ));
    }
    Ok(Some(n))
}

/// A required finite number.
pub fn number(name: &str, value: Option<&str>) -> Result<f64, ApiError> {
    let v = value.ok_or_else(|| ApiError::invalid_parameter(name, "is required"))?;
    let n: f64 = v
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid_parameter(name, format!("`{v}` is not a number")))?;
    if !n.is_finite() {
        return Err(ApiError::invalid_parameter(name, "must be a finite number"));
    }
    Ok(n)
}

/// A comma-separated list of values of a closed set.
pub fn list<T: std::str::FromStr<Err = String>>(
    name: &str,
    value: Option<&str>,
) -> Result<Vec<T>, ApiError> {
    let Some(v) = value else {
        return Ok(Vec::new());
    };
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<T>()
                .map_err(|e| ApiError::invalid_parameter(name, e))
        })
        .collect()
}

/// `f=json` is the only output format besides the viewer's HTML.
pub fn check_format(value: Option<&str>, allow_html: bool) -> Result<bool, ApiError> {
    match value {
        None | Some("json" | "geojson") => Ok(false),
        Some("html") if allow_html => Ok(true),
        Some(other) => Err(ApiError::invalid_parameter(
            "f",
            format!("unsupported format `{other}`; use f=json"),
        )),
    }
}
