//! Services from HSDS 3.0 JSON (Open Referral's Human Services Data Specification).
//!
//! Accepted shapes (`--format hsds`): an array of HSDS `service` objects with their nested
//! `organization`, `service_at_locations[].location`, `schedules`, `languages` and `phones`
//! (the API's compiled form); a single such object; or an object of tables, `{"services":
//! [...], "organizations": [...], "locations": [...], "service_at_locations": [...],
//! "schedules": [...], "languages": [...], "phones": [...]}`, joined by their `*_id` fields.
//!
//! One faro service per service at a location (a service with three locations is three faro
//! records, as faro's records are points). The mapping:
//!
//! | faro | HSDS |
//! | --- | --- |
//! | id | `service_at_location.id`; else `service.id` (one location) or `service.id-N` |
//! | name, description | `service.name`, `service.description` |
//! | organization | `organization.name` |
//! | kind | none in HSDS: `--set kind=…` (default `other`) |
//! | address | the location's first address: `address_1, postal_code city` |
//! | phone | the first `phones[].number` of the service, else the location, else the organization |
//! | email, website | `service.email`, `service.url`, else the organization's `email`, `website` |
//! | languages | `languages[].code` of the service, else of the location (ISO 639-1) |
//! | opening_hours | weekly `schedules` (`byday`, `opens_at`, `closes_at`) as OpenStreetMap `opening_hours` |
//! | eligibility | `service.eligibility_description` |
//! | geometry | `location.longitude`, `location.latitude` (WGS84) |

use std::path::Path;

use serde_json::{Map, Value};

use super::{ImportError, Preparer, SourceGeometry, SourceRecord};

fn text<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn list<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn number_field(v: &Value, key: &str) -> Option<f64> {
    match v.get(key) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Weekly HSDS schedules as an OpenStreetMap `opening_hours` expression.
pub fn opening_hours(schedules: &[Value]) -> Option<String> {
    let day = |d: &str| match d.trim().to_ascii_uppercase().as_str() {
        "MO" => Some("Mo"),
        "TU" => Some("Tu"),
        "WE" => Some("We"),
        "TH" => Some("Th"),
        "FR" => Some("Fr"),
        "SA" => Some("Sa"),
        "SU" => Some("Su"),
        _ => None,
    };
    let hhmm = |t: &str| t.trim().get(..5).map(str::to_owned);
    let rules: Vec<String> = schedules
        .iter()
        .filter(|s| text(s, "freq").is_none_or(|f| f.eq_ignore_ascii_case("WEEKLY")))
        .filter_map(|s| {
            let days: Vec<&str> = text(s, "byday")?.split(',').filter_map(day).collect();
            let (open, close) = (hhmm(text(s, "opens_at")?)?, hhmm(text(s, "closes_at")?)?);
            (!days.is_empty()).then(|| format!("{} {open}-{close}", days.join(",")))
        })
        .collect();
    (!rules.is_empty()).then(|| rules.join("; "))
}

/// The compiled services of a document: tables joined into nested service objects.
fn compiled(doc: Value) -> Result<Vec<Value>, String> {
    match doc {
        Value::Array(services) => Ok(services),
        Value::Object(obj) if obj.contains_key("services") => {
            let table = |name: &str| -> Vec<Value> {
                obj.get(name)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            let (orgs, locations, sals, schedules, languages, phones) = (
                table("organizations"),
                table("locations"),
                table("service_at_locations"),
                table("schedules"),
                table("languages"),
                table("phones"),
            );
            let by = |rows: &[Value], key: &str, id: Option<&str>| -> Vec<Value> {
                rows.iter()
                    .filter(|r| id.is_some() && text(r, key) == id)
                    .cloned()
                    .collect()
            };
            let mut out = Vec::new();
            for mut s in table("services") {
                let id = text(&s, "id").map(str::to_owned);
                let org_id = text(&s, "organization_id").map(str::to_owned);
                let org = orgs
                    .iter()
                    .find(|o| org_id.is_some() && text(o, "id") == org_id.as_deref())
                    .cloned();
                let sal: Vec<Value> = by(&sals, "service_id", id.as_deref())
                    .into_iter()
                    .map(|mut sal| {
                        let loc_id = text(&sal, "location_id").map(str::to_owned);
                        if let Some(mut loc) = locations
                            .iter()
                            .find(|l| loc_id.is_some() && text(l, "id") == loc_id.as_deref())
                            .cloned()
                        {
                            loc["languages"] =
                                Value::Array(by(&languages, "location_id", loc_id.as_deref()));
                            loc["phones"] =
                                Value::Array(by(&phones, "location_id", loc_id.as_deref()));
                            sal["location"] = loc;
                        }
                        sal
                    })
                    .collect();
                s["service_at_locations"] = Value::Array(sal);
                s["schedules"] = Value::Array(by(&schedules, "service_id", id.as_deref()));
                s["languages"] = Value::Array(by(&languages, "service_id", id.as_deref()));
                s["phones"] = Value::Array(by(&phones, "service_id", id.as_deref()));
                if let Some(o) = org {
                    s["organization"] = o;
                }
                out.push(s);
            }
            Ok(out)
        }
        Value::Object(obj) if obj.contains_key("service_at_locations") => {
            Ok(vec![Value::Object(obj)])
        }
        _ => Err(
            "expected HSDS 3.0 JSON: an array of services, a service, or an object of tables \
             with `services`"
                .to_owned(),
        ),
    }
}

fn first_phone(places: &[&Value]) -> Option<String> {
    places
        .iter()
        .flat_map(|p| list(p, "phones"))
        .find_map(|p| text(p, "number").map(str::to_owned))
}

/// Reads an HSDS file into `preparer`.
pub fn read(
    path: &Path,
    preparer: &mut Preparer,
    progress: &indicatif::ProgressBar,
) -> Result<(), ImportError> {
    if preparer.collection() != crate::domain::Collection::Services {
        return Err(ImportError::Usage(format!(
            "HSDS describes services; import {} into `services`",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| ImportError::io(path, e))?;
    progress.inc(u64::try_from(bytes.len()).unwrap_or(0));
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return Err(ImportError::Binary {
            path: path.to_owned(),
            expected: "HSDS JSON",
        });
    }
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| ImportError::Json {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let services = compiled(doc).map_err(|m| ImportError::format(path, m))?;
    preparer.begin(None).map_err(|source| ImportError::Crs {
        path: path.to_owned(),
        source,
    })?;
    let mut number = 0;
    for s in &services {
        let org = s.get("organization").unwrap_or(&Value::Null);
        let sals = list(s, "service_at_locations");
        for (i, sal) in sals.iter().enumerate() {
            number += 1;
            let loc = sal.get("location").unwrap_or(&Value::Null);
            let id = text(sal, "id").map(str::to_owned).or_else(|| {
                text(s, "id").map(|sid| {
                    if sals.len() == 1 {
                        sid.to_owned()
                    } else {
                        format!("{sid}-{}", i + 1)
                    }
                })
            });
            let mut p = Map::new();
            let mut put = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    p.insert(k.to_owned(), Value::String(v));
                }
            };
            put("name", text(s, "name").map(str::to_owned));
            put("description", text(s, "description").map(str::to_owned));
            put("organization", text(org, "name").map(str::to_owned));
            put(
                "email",
                text(s, "email")
                    .or_else(|| text(org, "email"))
                    .map(str::to_owned),
            );
            put(
                "website",
                text(s, "url")
                    .or_else(|| text(org, "website"))
                    .map(str::to_owned),
            );
            put("phone", first_phone(&[s, loc, org]));
            put(
                "eligibility",
                text(s, "eligibility_description").map(str::to_owned),
            );
            put("opening_hours", opening_hours(list(s, "schedules")));
            put(
                "address",
                list(loc, "addresses").first().and_then(|a| {
                    let street = text(a, "address_1")?;
                    let place = [text(a, "postal_code"), text(a, "city")]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ");
                    Some(if place.is_empty() {
                        street.to_owned()
                    } else {
                        format!("{street}, {place}")
                    })
                }),
            );
            let languages: Vec<Value> = [s, loc]
                .iter()
                .map(|x| list(x, "languages"))
                .find(|l| !l.is_empty())
                .unwrap_or(&[])
                .iter()
                .filter_map(|l| text(l, "code").map(|c| Value::String(c.to_owned())))
                .collect();
            if !languages.is_empty() {
                p.insert("languages".to_owned(), Value::Array(languages));
            }
            // HSDS has no faro kind: `--set kind=…` overrides this.
            p.insert("kind".to_owned(), Value::String("other".to_owned()));
            let geometry = match (
                number_field(loc, "longitude"),
                number_field(loc, "latitude"),
            ) {
                (Some(x), Some(y)) => SourceGeometry::Geo(geo::Point::new(x, y).into()),
                _ => SourceGeometry::Missing,
            };
            preparer.record(SourceRecord {
                number,
                feature_id: id,
                properties: p,
                geometry,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn weekly_schedules_become_opening_hours() {
        let s = [
            json!({"freq": "WEEKLY", "byday": "MO,TU,WE", "opens_at": "09:00:00", "closes_at": "13:00:00"}),
            json!({"byday": "SA", "opens_at": "10:00", "closes_at": "12:00"}),
        ];
        assert_eq!(
            opening_hours(&s).as_deref(),
            Some("Mo,Tu,We 09:00-13:00; Sa 10:00-12:00")
        );
        assert_eq!(opening_hours(&[]), None);
    }
}
