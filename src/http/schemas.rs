//! JSON Schemas (2020-12, as OpenAPI 3.1 reads them) of what faro's handlers send and accept,
//! for `/openapi.json`. The handlers build their bodies with `serde_json` and hand-written
//! serialisers, so these are written out here as the documents they describe; the
//! `#[utoipa::path]` annotations refer to them by name (`body = ref("#/components/schemas/…")`).
//!
//! Property objects describe every field faro writes (with `null` for an unset one) without
//! forbidding others, so a new attribute does not make old clients' validators fail. Positions
//! are WGS84 `[longitude, latitude]` in degrees.

use serde_json::{Map, Value, json};

/// `#/components/schemas/{name}`.
pub fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn nullable_string(max_length: u32) -> Value {
    json!({ "type": ["string", "null"], "maxLength": max_length })
}

fn date_time(description: &str) -> Value {
    json!({ "type": "string", "format": "date-time", "description": description })
}

fn months(description: &str) -> Value {
    json!({
        "type": "array", "description": description, "uniqueItems": true,
        "items": { "type": "integer", "minimum": 1, "maximum": 12 }
    })
}

fn enum_of(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}

/// Properties every stored record carries besides its own attributes.
fn record_meta() -> Map<String, Value> {
    let Value::Object(meta) = json!({
        "created_at": date_time("When the record was created (RFC 3339)."),
        "updated_at": date_time("When the record was last changed (RFC 3339)."),
        "version": {
            "type": "integer", "minimum": 1,
            "description": "Increases by one at every change; part of the item's ETag."
        }
    }) else {
        return Map::new();
    };
    meta
}

/// One collection's attributes as faro writes them: every attribute (`null` where unset), then
/// the record's metadata.
fn output_properties(
    description: &str,
    required: &[&str],
    attributes: &Map<String, Value>,
) -> Value {
    let mut props = attributes.clone();
    props.extend(record_meta());
    let mut required: Vec<&str> = required.to_vec();
    required.extend(["created_at", "updated_at", "version"]);
    json!({
        "type": "object", "description": description,
        "required": required, "properties": props
    })
}

/// One collection's attributes as a client sends them: unknown names are refused; the
/// metadata, if sent back, is ignored.
fn input_properties(
    description: &str,
    required: &[&str],
    attributes: &Map<String, Value>,
) -> Value {
    let mut props = attributes.clone();
    for name in record_meta().keys() {
        props.insert(
            name.clone(),
            json!({ "description": "Set by the server; ignored." }),
        );
    }
    json!({
        "type": "object", "description": description, "additionalProperties": false,
        "required": required, "properties": props
    })
}

fn geometry_schemas(s: &mut Map<String, Value>) {
    s.insert(
        "Position".into(),
        json!({
            "description": "[longitude, latitude] in WGS84 degrees (an altitude may be sent; it is not stored).",
            "type": "array", "minItems": 2, "maxItems": 3,
            "prefixItems": [
                { "type": "number", "minimum": -180, "maximum": 180 },
                { "type": "number", "minimum": -90, "maximum": 90 }
            ],
            "items": { "type": "number" }
        }),
    );
    s.insert(
        "LinearRing".into(),
        json!({
            "description": "A closed ring: at least four positions, the last equal to the first.",
            "type": "array", "minItems": 4, "items": schema_ref("Position")
        }),
    );
    s.insert(
        "Point".into(),
        json!({
            "type": "object", "required": ["type", "coordinates"],
            "properties": {
                "type": { "const": "Point" },
                "coordinates": schema_ref("Position")
            }
        }),
    );
    s.insert(
        "Polygon".into(),
        json!({
            "type": "object", "required": ["type", "coordinates"],
            "properties": {
                "type": { "const": "Polygon" },
                "coordinates": {
                    "description": "The exterior ring, then any holes.",
                    "type": "array", "minItems": 1, "items": schema_ref("LinearRing")
                }
            }
        }),
    );
    s.insert(
        "MultiPolygon".into(),
        json!({
            "type": "object", "required": ["type", "coordinates"],
            "properties": {
                "type": { "const": "MultiPolygon" },
                "coordinates": {
                    "type": "array",
                    "items": { "type": "array", "minItems": 1, "items": schema_ref("LinearRing") }
                }
            }
        }),
    );
    s.insert(
        "Geometry".into(),
        json!({
            "description": "A GeoJSON geometry (RFC 7946). Services are Points; settlements and \
                worksites Points or Polygons; territories Polygons or MultiPolygons.",
            "oneOf": [schema_ref("Point"), schema_ref("Polygon"), schema_ref("MultiPolygon")]
        }),
    );
}

/// Required text: not blank once trimmed.
fn name() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S" })
}

fn property_schemas(s: &mut Map<String, Value>) {
    let service_kinds: Vec<&str> = crate::domain::ServiceKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    let worksite_kinds: Vec<&str> = crate::domain::WorksiteKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    let levels: Vec<&str> = crate::domain::TerritoryLevel::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    let collections = [
        (
            "Service",
            "A service of an organisation at a place.",
            vec!["name", "kind"],
            json!({
                "name": name(),
                "kind": enum_of(&service_kinds),
                "organization": nullable_string(200),
                "description": nullable_string(4000),
                "address": nullable_string(300),
                "comune": {
                    "type": ["string", "null"], "pattern": "^\\s*[0-9]{6}\\s*$",
                    "description": "ISTAT code of the comune (6 digits)."
                },
                "phone": {
                    "type": ["string", "null"], "maxLength": 40,
                    "pattern": "^[0-9 +()/.-]*$"
                },
                "email": {
                    "type": ["string", "null"], "maxLength": 200,
                    "pattern": "^\\s*[^@\\s]+@\\S*\\.\\S*\\s*$"
                },
                "website": {
                    "type": ["string", "null"], "maxLength": 500, "pattern": "^\\s*https?://"
                },
                "languages": {
                    "type": "array", "description": "ISO 639-1 codes.",
                    "items": { "type": "string", "pattern": "^\\s*[a-zA-Z]{2}\\s*$" }
                },
                "opening_hours": {
                    "type": ["string", "null"],
                    "description": "OpenStreetMap opening_hours, Europe/Rome local time, Italian holidays as PH."
                },
                "referral_required": { "type": "boolean" },
                "eligibility": nullable_string(2000),
                "capacity": { "type": ["integer", "null"], "minimum": 0, "description": "Beds." },
                "vacancy": {
                    "type": ["integer", "null"], "minimum": 0,
                    "description": "Free beds now; at most capacity."
                },
                "confidential": {
                    "type": "boolean",
                    "description": "Its position is shown only to authorised roles."
                },
                "mobile": { "type": "boolean" },
                "last_verified": { "type": ["string", "null"], "format": "date" },
                "fictional": { "type": "boolean", "description": "A demo record." }
            }),
        ),
        (
            "Settlement",
            "An informal settlement (restricted to authorised roles).",
            vec!["name"],
            json!({
                "name": name(),
                "population_estimate": { "type": ["integer", "null"], "minimum": 0 },
                "season": months("Months in which it is inhabited."),
                "sector": nullable_string(100),
                "last_surveyed": { "type": ["string", "null"], "format": "date" },
                "notes": nullable_string(4000),
                "fictional": { "type": "boolean" }
            }),
        ),
        (
            "Worksite",
            "A worksite (restricted to authorised roles).",
            vec!["name", "kind"],
            json!({
                "name": name(),
                "kind": enum_of(&worksite_kinds),
                "workers_estimate": { "type": ["integer", "null"], "minimum": 0 },
                "peak_months": months("Months of peak labour demand."),
                "notes": nullable_string(4000),
                "fictional": { "type": "boolean" }
            }),
        ),
        (
            "Territory",
            "A province, a network's territory or a comune.",
            vec!["name", "level"],
            json!({
                "name": name(),
                "level": enum_of(&levels),
                "code": nullable_string(20),
                "parent": nullable_string(64),
                "population": { "type": ["integer", "null"], "minimum": 0 },
                "comuni": {
                    "type": "array", "description": "ISTAT codes of its comuni.",
                    "items": { "type": "string", "pattern": "^[0-9]{6}$" }
                },
                "approximate": { "type": "boolean" },
                "note": nullable_string(2000)
            }),
        ),
    ];
    let mut outputs = Vec::new();
    let mut inputs = Vec::new();
    for (kind, description, required, attributes) in &collections {
        let attributes = attributes.as_object().cloned().unwrap_or_default();
        let output = format!("{kind}Properties");
        let input = format!("{kind}PropertiesInput");
        s.insert(
            output.clone(),
            output_properties(description, required, &attributes),
        );
        s.insert(
            input.clone(),
            input_properties(description, required, &attributes),
        );
        outputs.push(schema_ref(&output));
        inputs.push(schema_ref(&input));
    }
    s.insert(
        "Properties".into(),
        json!({
            "description": "The record's attributes, which depend on its collection, then \
                `created_at`, `updated_at` and `version`.",
            "anyOf": outputs
        }),
    );
    s.insert(
        "PropertiesInput".into(),
        json!({
            "description": "The attributes of a record of the path's collection.",
            "anyOf": inputs
        }),
    );
}

fn feature_schemas(s: &mut Map<String, Value>) {
    s.insert(
        "Link".into(),
        json!({
            "type": "object", "required": ["href", "rel"],
            "properties": {
                "href": { "type": "string", "format": "uri" },
                "rel": { "type": "string" },
                "type": { "type": "string", "description": "Media type of the target." },
                "title": { "type": "string" }
            }
        }),
    );
    s.insert(
        "Feature".into(),
        json!({
            "description": "A record as a GeoJSON Feature. `links` (self, collection) come with \
                single-item responses.",
            "type": "object", "required": ["type", "id", "geometry", "properties"],
            "properties": {
                "type": { "const": "Feature" },
                "id": { "type": "string", "minLength": 1 },
                "geometry": schema_ref("Geometry"),
                "properties": schema_ref("Properties"),
                "links": { "type": "array", "items": schema_ref("Link") }
            }
        }),
    );
    s.insert(
        "FeatureCollection".into(),
        json!({
            "description": "GeoJSON FeatureCollection.",
            "type": "object", "required": ["type", "features", "numberReturned"],
            "properties": {
                "type": { "const": "FeatureCollection" },
                "features": { "type": "array", "items": schema_ref("Feature") },
                "numberMatched": { "type": "integer", "minimum": 0 },
                "numberReturned": { "type": "integer", "minimum": 0 },
                "timeStamp": { "type": "string", "format": "date-time" },
                "links": { "type": "array", "items": schema_ref("Link") }
            }
        }),
    );
    s.insert(
        "ItemsPage".into(),
        json!({
            "description": "A page of a collection's items: `numberMatched` items match, \
                `numberReturned` are here; `links` has self, collection, and next/prev when \
                there are more.",
            "allOf": [
                schema_ref("FeatureCollection"),
                { "required": ["numberMatched", "timeStamp", "links"] }
            ]
        }),
    );
    s.insert(
        "NearestFeatureCollection".into(),
        json!({
            "description": "Services nearest first (ties by id).",
            "type": "object", "required": ["type", "features", "numberReturned"],
            "properties": {
                "type": { "const": "FeatureCollection" },
                "numberReturned": { "type": "integer", "minimum": 0, "maximum": 100 },
                "features": {
                    "type": "array", "maxItems": 100,
                    "items": {
                        "allOf": [schema_ref("Feature"), {
                            "properties": {
                                "properties": {
                                    "allOf": [schema_ref("ServiceProperties"), {
                                        "required": ["distance_m"],
                                        "properties": {
                                            "distance_m": {
                                                "type": "number", "minimum": 0,
                                                "description": "Geodesic distance on the WGS84 ellipsoid, metres (to the millimetre)."
                                            },
                                            "open": {
                                                "type": ["boolean", "null"],
                                                "description": "With `open_at` only: whether the service is open then; null when its hours are unknown."
                                            }
                                        }
                                    }]
                                }
                            }
                        }]
                    }
                }
            }
        }),
    );
    s.insert(
        "FeatureInput".into(),
        json!({
            "description": "A GeoJSON Feature to store. `id` is optional on create (one is \
                generated) and must equal the path's on replace. `created_at`, `updated_at` and \
                `version` in `properties` are ignored.",
            "type": "object", "required": ["type", "geometry", "properties"],
            "properties": {
                "type": { "const": "Feature" },
                "id": { "type": ["string", "integer"] },
                "geometry": schema_ref("Geometry"),
                "properties": schema_ref("PropertiesInput")
            }
        }),
    );
    s.insert(
        "FeatureCollectionInput".into(),
        json!({
            "type": "object", "required": ["type", "features"],
            "properties": {
                "type": { "const": "FeatureCollection" },
                "features": { "type": "array", "minItems": 1, "items": schema_ref("FeatureInput") }
            }
        }),
    );
    s.insert(
        "FeatureDocument".into(),
        json!({
            "description": "One Feature, or a FeatureCollection stored all or nothing.",
            "oneOf": [schema_ref("FeatureInput"), schema_ref("FeatureCollectionInput")]
        }),
    );
    s.insert(
        "Created".into(),
        json!({
            "description": "The stored Feature (with its links) for a Feature sent, or a \
                FeatureCollection of the stored features for a FeatureCollection sent.",
            "oneOf": [schema_ref("Feature"), schema_ref("FeatureCollection")]
        }),
    );
    s.insert(
        "FeaturePatch".into(),
        json!({
            "description": "JSON merge patch (RFC 7396) of the properties: a null removes a \
                property. A geometry, if given, replaces the stored one.",
            "type": "object", "additionalProperties": false,
            "properties": {
                "type": { "const": "Feature" },
                "id": { "type": ["string", "integer"] },
                "properties": { "type": ["object", "null"] },
                "geometry": { "oneOf": [schema_ref("Geometry"), { "type": "null" }] }
            }
        }),
    );
}

fn service_schemas(s: &mut Map<String, Value>) {
    let collections: Vec<&str> = crate::domain::Collection::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    s.insert(
        "Error".into(),
        json!({
            "description": "Every 4xx and 5xx answer. 5xx messages are generic; the cause is logged.",
            "type": "object", "required": ["error", "message"],
            "properties": {
                "error": {
                    "type": "string", "pattern": "^[a-z_]+$",
                    "description": "A stable code such as `invalid_parameter`, `not_found`, `precondition_required`."
                },
                "message": { "type": "string", "description": "What was wrong, naming the parameter or field." },
                "details": {
                    "type": "array", "maxItems": 200, "items": { "type": "string" },
                    "description": "Every problem of a multi-feature upload, numbered by feature."
                }
            }
        }),
    );
    s.insert(
        "NotReady".into(),
        json!({
            "description": "`not_ready` with the `store` when the database does not answer; \
                `unavailable` when a bearer token could not be checked.",
            "allOf": [schema_ref("Error"), {
                "properties": {
                    "error": enum_of(&["not_ready", "unavailable"]),
                    "store": enum_of(&["sqlite", "postgres"])
                }
            }]
        }),
    );
    s.insert(
        "Health".into(),
        json!({
            "type": "object", "required": ["status"],
            "properties": { "status": { "const": "ok" } }
        }),
    );
    s.insert(
        "Ready".into(),
        json!({
            "type": "object", "required": ["status", "store", "records"],
            "properties": {
                "status": { "const": "ready" },
                "store": enum_of(&["sqlite", "postgres"]),
                "records": {
                    "description": "Records per collection that the caller may know of.",
                    "type": "object",
                    "propertyNames": enum_of(&collections),
                    "additionalProperties": { "type": "integer", "minimum": 0 }
                }
            }
        }),
    );
    s.insert(
        "LandingPage".into(),
        json!({
            "type": "object", "required": ["title", "links"],
            "properties": {
                "title": { "type": "string" },
                "description": { "type": "string" },
                "links": { "type": "array", "items": schema_ref("Link") }
            }
        }),
    );
    s.insert(
        "Conformance".into(),
        json!({
            "type": "object", "required": ["conformsTo"],
            "properties": {
                "conformsTo": { "type": "array", "minItems": 1, "items": { "type": "string", "format": "uri" } }
            }
        }),
    );
    s.insert(
        "CollectionInfo".into(),
        json!({
            "description": "A collection. A restricted collection the caller may not read says \
                `restricted: true` and has no extent.",
            "type": "object", "required": ["id", "title", "links"],
            "properties": {
                "id": schema_ref("Collection"),
                "title": { "type": "string" },
                "description": { "type": "string" },
                "itemType": { "const": "feature" },
                "crs": { "type": "array", "items": { "type": "string", "format": "uri" } },
                "links": { "type": "array", "items": schema_ref("Link") },
                "extent": {
                    "type": "object", "required": ["spatial"],
                    "properties": {
                        "spatial": {
                            "type": "object", "required": ["bbox"],
                            "properties": {
                                "bbox": {
                                    "description": "[minLon, minLat, maxLon, maxLat]",
                                    "type": "array", "minItems": 1,
                                    "items": {
                                        "type": "array", "minItems": 4, "maxItems": 4,
                                        "items": { "type": "number" }
                                    }
                                },
                                "crs": { "type": "string", "format": "uri" }
                            }
                        }
                    }
                },
                "restricted": { "const": true }
            }
        }),
    );
    s.insert(
        "Collections".into(),
        json!({
            "type": "object", "required": ["collections", "links"],
            "properties": {
                "collections": { "type": "array", "items": schema_ref("CollectionInfo") },
                "links": { "type": "array", "items": schema_ref("Link") }
            }
        }),
    );
}

/// The items of a collection as files (`f=csv|gpkg|fgb`, src/io/export.rs).
fn export_schemas(s: &mut Map<String, Value>) {
    s.insert(
        "ItemsCsv".into(),
        json!({ "type": "string",
            "description": "UTF-8 CSV with a header: `id`, then `lon` and `lat` for services (points) or `wkt` for the other collections, every field of the collection, `created_at`, `updated_at`, `version`" }),
    );
    s.insert(
        "ItemsGeoPackage".into(),
        json!({ "type": "string", "format": "binary",
            "description": "An OGC GeoPackage 1.3 (SQLite) with one feature table, EPSG:4326" }),
    );
    s.insert(
        "ItemsFlatGeobuf".into(),
        json!({ "type": "string", "format": "binary",
            "description": "A FlatGeobuf file with a spatial index, EPSG:4326" }),
    );
}

/// Tiles, TileJSON and the map style.
fn tile_schemas(s: &mut Map<String, Value>) {
    s.insert(
        "VectorTile".into(),
        json!({ "type": "string", "format": "binary",
            "description": "A Mapbox Vector Tile 2.1 (protobuf), extent 4096, one layer per collection" }),
    );
    s.insert(
        "TileJson".into(),
        json!({
            "type": "object",
            "required": ["tilejson", "tiles", "minzoom", "maxzoom", "bounds", "vector_layers"],
            "properties": {
                "tilejson": { "const": "3.0.0" },
                "name": { "type": "string" },
                "tiles": { "type": "array", "minItems": 1, "items": { "type": "string",
                    "description": "An absolute URL template with `{z}`, `{x}` and `{y}` (braces are not URI characters, so no `uri` format)" } },
                "minzoom": { "type": "integer", "minimum": 0, "maximum": 22 },
                "maxzoom": { "type": "integer", "minimum": 0, "maximum": 22 },
                "bounds": { "type": "array", "minItems": 4, "maxItems": 4, "items": { "type": "number" } },
                "center": { "type": "array", "minItems": 3, "maxItems": 3, "items": { "type": "number" } },
                "vector_layers": {
                    "type": "array",
                    "items": {
                        "type": "object", "required": ["id", "fields"],
                        "properties": {
                            "id": { "type": "string" },
                            "description": { "type": "string" },
                            "minzoom": { "type": "integer" },
                            "maxzoom": { "type": "integer" },
                            "fields": { "type": "object", "additionalProperties": { "type": "string" } }
                        }
                    }
                }
            }
        }),
    );
    s.insert(
        "MapStyle".into(),
        json!({
            "type": "object", "required": ["version", "sources", "layers"],
            "description": "A MapLibre style (version 8) over faro's tiles",
            "properties": {
                "version": { "const": 8 },
                "sources": { "type": "object" },
                "glyphs": { "type": "string" },
                "layers": { "type": "array", "items": { "type": "object", "required": ["id", "type"] } }
            }
        }),
    );
}

/// The members every coverage answer repeats: the parameters as understood.
fn coverage_query_members() -> Map<String, Value> {
    let kinds: Vec<&str> = crate::domain::ServiceKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    let Value::Object(m) = json!({
        "kind": {
            "type": "array", "items": enum_of(&kinds),
            "description": "The service kinds that cover (every kind when none was asked for)."
        },
        "radius_m": { "type": "number", "minimum": 1, "maximum": 100_000 },
        "month": { "type": ["integer", "null"], "minimum": 1, "maximum": 12 },
        "open_at": {
            "type": ["string", "null"],
            "description": "Europe/Rome local time services had to be open at (`YYYY-MM-DDTHH:MM:SS`)."
        },
        "capacity": { "type": "boolean" }
    }) else {
        return Map::new();
    };
    m
}

fn count() -> Value {
    json!({ "type": "integer", "minimum": 0 })
}

fn with_query_members(required: &[&str], properties: Value) -> Value {
    let mut props = coverage_query_members();
    if let Value::Object(own) = properties {
        props.extend(own);
    }
    let mut required: Vec<&str> = required.to_vec();
    required.extend(["kind", "radius_m", "month", "open_at", "capacity"]);
    json!({ "type": "object", "required": required, "properties": props })
}

fn coverage_schemas(s: &mut Map<String, Value>) {
    let demand = |size: &str| {
        json!({
            "description": "Null for anonymous callers: counts of restricted records are not public.",
            "type": ["object", "null"],
            "required": ["total", "covered", format!("{size}_total"), format!("{size}_covered")],
            "properties": {
                "total": count(), "covered": count(),
                format!("{size}_total"): count(), format!("{size}_covered"): count()
            }
        })
    };
    let figures = json!({
        "area_km2": { "type": "number", "minimum": 0, "description": "Geodesic area, km²." },
        "covered_area_km2": {
            "type": "number", "minimum": 0,
            "description": "Geodesic area of the territory within the union of the catchments, km²."
        },
        "covered_share": { "type": "number", "minimum": 0, "maximum": 1 },
        "services": { "type": "integer", "minimum": 0, "description": "Chosen services located there." },
        "settlements": demand("people"),
        "worksites": demand("workers"),
        "capacity": {
            "description": "With `capacity=true`: beds of the chosen services located there, people within reach of a service with beds, and of those, people without a bed (null for anonymous callers).",
            "type": "object", "required": ["beds", "demand_in_reach", "without_bed"],
            "properties": {
                "beds": count(),
                "demand_in_reach": { "type": ["integer", "null"], "minimum": 0 },
                "without_bed": { "type": ["integer", "null"], "minimum": 0 }
            }
        }
    });
    let required_figures = [
        "area_km2",
        "covered_area_km2",
        "covered_share",
        "services",
        "settlements",
        "worksites",
    ];
    let mut territory = figures.as_object().cloned().unwrap_or_default();
    territory.insert("id".into(), json!({ "type": "string", "minLength": 1 }));
    territory.insert("name".into(), json!({ "type": "string" }));
    let mut territory_required = vec!["id", "name"];
    territory_required.extend(required_figures);
    s.insert(
        "CoverageFigures".into(),
        json!({ "type": "object", "required": required_figures, "properties": figures }),
    );
    s.insert(
        "CoverageTerritory".into(),
        json!({ "type": "object", "required": territory_required, "properties": territory }),
    );
    s.insert(
        "CoverageReport".into(),
        with_query_members(
            &["territories", "total"],
            json!({
                "territories": { "type": "array", "items": schema_ref("CoverageTerritory") },
                "total": schema_ref("CoverageFigures")
            }),
        ),
    );
    coverage_collection_schemas(s);
}

/// The GeoJSON answers of `/coverage/gaps`, `/uncovered`, `/hexes` and `/suggest`.
fn coverage_collection_schemas(s: &mut Map<String, Value>) {
    let collection = |description: &str, feature: Value, extra: Value| {
        let mut props = json!({
            "type": { "const": "FeatureCollection" },
            "numberReturned": count(),
            "features": { "type": "array", "items": feature }
        });
        if let (Value::Object(p), Value::Object(e)) = (&mut props, extra) {
            p.extend(e);
        }
        let mut schema = with_query_members(&["type", "features", "numberReturned"], props);
        schema["description"] = json!(description);
        schema
    };
    let feature = |geometry: Value, id: Value, properties: Value| {
        json!({
            "type": "object", "required": ["type", "id", "geometry", "properties"],
            "properties": {
                "type": { "const": "Feature" }, "id": id, "geometry": geometry,
                "properties": properties
            }
        })
    };
    let text = json!({ "type": "string", "minLength": 1 });
    s.insert(
        "GapCollection".into(),
        collection(
            "One feature per territory: what no catchment reaches.",
            feature(
                schema_ref("MultiPolygon"),
                text.clone(),
                json!({
                    "type": "object", "required": ["territory", "name", "area_km2"],
                    "properties": {
                        "territory": text.clone(), "name": { "type": "string" },
                        "area_km2": { "type": "number", "minimum": 0 }
                    }
                }),
            ),
            json!({}),
        ),
    );
    s.insert(
        "UncoveredCollection".into(),
        collection(
            "Uncovered records, farthest from a chosen service first.",
            {
                let mut f = feature(
                    schema_ref("Geometry"),
                    text.clone(),
                    json!({
                        "allOf": [
                            { "anyOf": [schema_ref("SettlementProperties"), schema_ref("WorksiteProperties")] },
                            {
                                "required": ["distance_m", "nearest_service", "territories", "uncovered"],
                                "properties": {
                                    "distance_m": {
                                        "type": ["number", "null"], "minimum": 0,
                                        "description": "Geodesic distance to the nearest chosen service, metres; null when there is none."
                                    },
                                    "nearest_service": {
                                        "type": ["object", "null"], "required": ["id", "name", "kind"],
                                        "properties": {
                                            "id": text.clone(), "name": { "type": "string" },
                                            "kind": { "type": "string" }
                                        }
                                    },
                                    "territories": { "type": "array", "items": { "type": "string" } },
                                    "uncovered": count()
                                }
                            }
                        ]
                    }),
                );
                f["description"] = json!("A settlement or worksite.");
                f
            },
            json!({ "collection": enum_of(&["settlements", "worksites"]) }),
        ),
    );
    s.insert(
        "HexCollection".into(),
        collection(
            "H3 cells whose centre lies in a territory (and, for authorised callers, cells holding demand of a territory).",
            feature(
                schema_ref("Polygon"),
                text.clone(),
                json!({
                    "type": "object", "required": ["h3", "territory", "distance_m", "covered"],
                    "properties": {
                        "h3": text.clone(), "territory": text.clone(),
                        "distance_m": { "type": ["number", "null"], "minimum": 0 },
                        "covered": { "type": "boolean" },
                        "settlements": count(), "worksites": count(),
                        "people": count(), "workers": count(),
                        "people_uncovered": count(), "workers_uncovered": count()
                    },
                    "description": "Demand members only for authorised callers."
                }),
            ),
            json!({ "resolution": { "type": "integer", "minimum": 0, "maximum": 15 } }),
        ),
    );
    s.insert(
        "SuggestionCollection".into(),
        collection(
            "Suggested sites in the order chosen.",
            feature(
                schema_ref("Point"),
                text.clone(),
                json!({
                    "type": "object",
                    "required": ["rank", "h3", "comune", "territory", "people", "workers", "settlements", "worksites"],
                    "properties": {
                        "rank": { "type": "integer", "minimum": 1 },
                        "h3": { "type": ["string", "null"] },
                        "comune": { "type": ["string", "null"] },
                        "territory": text.clone(),
                        "people": count(), "workers": count(),
                        "settlements": count(), "worksites": count()
                    }
                }),
            ),
            json!({
                "k": { "type": "integer", "minimum": 1 },
                "candidates": {
                    "type": "object", "required": ["kind", "resolution", "count"],
                    "properties": {
                        "kind": enum_of(&["h3", "comuni"]),
                        "resolution": { "type": ["integer", "null"] },
                        "count": count()
                    }
                },
                "uncovered": {
                    "type": "object", "required": ["people", "workers", "settlements", "worksites"],
                    "properties": {
                        "people": count(), "workers": count(),
                        "settlements": count(), "worksites": count()
                    }
                }
            }),
        ),
    );
}

/// Every schema the annotations refer to by name, keyed by that name.
pub fn components() -> Map<String, Value> {
    let mut s = Map::new();
    geometry_schemas(&mut s);
    property_schemas(&mut s);
    feature_schemas(&mut s);
    service_schemas(&mut s);
    tile_schemas(&mut s);
    export_schemas(&mut s);
    s.insert(
        "AuditPage".into(),
        json!({
            "type": "object", "required": ["entries", "links"],
            "properties": {
                "entries": { "type": "array", "items": {
                    "type": "object",
                    "required": ["seq", "at", "actor", "action", "collection", "id"],
                    "properties": {
                        "seq": { "type": "integer", "description": "Position in the log (grows)" },
                        "at": date_time("When the change was committed (RFC 3339)."),
                        "actor": { "type": "string", "description": "Token name, role and id" },
                        "action": enum_of(&["create", "update", "delete"]),
                        "collection": enum_of(&["services", "settlements", "worksites", "territories"]),
                        "id": { "type": "string" },
                        "before": { "type": ["object", "null"], "description": "The record before (GeoJSON Feature)" },
                        "after": { "type": ["object", "null"], "description": "The record after (GeoJSON Feature)" }
                    }
                } },
                "links": { "type": "array", "items": schema_ref("Link") }
            }
        }),
    );
    coverage_schemas(&mut s);
    s
}

/// Schemas of query parameters that the handlers read as text and parse themselves, so that
/// generated requests (and readers) see which values are accepted (`#[param(schema_with = …)]`).
pub mod params {
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

    fn text() -> ObjectBuilder {
        ObjectBuilder::new().schema_type(Type::String)
    }

    /// A comma list of names, as `kind=` takes.
    fn comma_list_of(names: &[&str]) -> Schema {
        let one = names.join("|");
        text().pattern(Some(format!("^({one})(,({one}))*$"))).into()
    }

    /// `f=` of a JSON-only resource.
    pub fn format_json() -> Schema {
        text().enum_values(Some(["json", "geojson"])).into()
    }

    /// `f=` of items: GeoJSON, or the same page as a CSV, GeoPackage or `FlatGeobuf` file.
    pub fn format_items() -> Schema {
        text()
            .enum_values(Some(["json", "geojson", "csv", "gpkg", "fgb"]))
            .into()
    }

    /// `f=` of the landing page, which is also the viewer.
    pub fn format_json_or_html() -> Schema {
        text().enum_values(Some(["json", "geojson", "html"])).into()
    }

    /// `kind=` of `/nearest`: service kinds.
    pub fn service_kinds() -> Schema {
        let names: Vec<&str> = crate::domain::ServiceKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect();
        comma_list_of(&names)
    }

    /// `kind=` of items: service kinds, worksite kinds or territory levels, as the collection
    /// has (settlements have none).
    pub fn any_kinds() -> Schema {
        let mut names: Vec<&str> = crate::domain::ServiceKind::ALL
            .iter()
            .map(|k| k.as_str())
            .chain(crate::domain::WorksiteKind::ALL.iter().map(|k| k.as_str()))
            .chain(
                crate::domain::TerritoryLevel::ALL
                    .iter()
                    .map(|k| k.as_str()),
            )
            .collect();
        names.sort_unstable();
        names.dedup();
        comma_list_of(&names)
    }

    /// `bbox=minLon,minLat,maxLon,maxLat`.
    pub fn bbox() -> Schema {
        let n = r"\s*-?[0-9]+(\.[0-9]+)?\s*";
        text()
            .pattern(Some(format!("^{n},{n},{n},{n}$")))
            .description(Some(
                "`minLon,minLat,maxLon,maxLat`, WGS84 degrees, minimum not above maximum",
            ))
            .into()
    }

    /// A record id (1-64 characters of `A-Z a-z 0-9 . _ -`).
    pub fn record_id() -> Schema {
        text().pattern(Some("^[A-Za-z0-9._-]{1,64}$")).into()
    }

    /// `true` or `false`.
    pub fn boolean() -> Schema {
        text().enum_values(Some(["true", "false"])).into()
    }

    /// `collection=` of `/coverage/uncovered`.
    pub fn demand_collection() -> Schema {
        text()
            .enum_values(Some(["settlements", "worksites"]))
            .into()
    }

    /// `candidates=` of `/coverage/suggest`.
    pub fn candidates() -> Schema {
        text().enum_values(Some(["h3", "comuni"])).into()
    }

    /// `language=`: an ISO 639-1 code.
    pub fn language() -> Schema {
        text().pattern(Some("^[a-zA-Z]{2}$")).into()
    }
}
