//! `GET /tiles/{layers}/{z}/{x}/{y}.mvt`, `GET /tiles/{layers}.json` (TileJSON 3.0.0) and
//! `GET /style.json` (a MapLibre style over them).
//!
//! Tiles go through the same access rule as `/items`: asking for a restricted layer
//! anonymously is 401, and every tile is encoded from the caller's [`View`], so an anonymous
//! tile never holds a settlement, a worksite or a confidential service, not even in a cluster
//! count. Answers carry a strong `ETag` (from the bytes) and `Cache-Control: no-cache`, so a
//! browser revalidates each time and gets a 304 while the tile is unchanged; authorised
//! answers are `private, no-store` like every authorised answer.

use actix_web::http::StatusCode;
use actix_web::http::header::{
    self, AcceptEncoding, ContentEncoding, Encoding as HeaderEncoding, EntityTag, Header,
    IfNoneMatch,
};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::auth::Caller;
use super::base_url::base_url;
use super::{ApiError, AppState};
use crate::domain::Collection;
use crate::index::query::{QueryError, View};
use crate::tiles::encode::fields;
use crate::tiles::grid::{MAX_ZOOM, TileId};
use crate::tiles::{Encoding, LayerSet};

/// The media type of a Mapbox Vector Tile.
pub const MVT: &str = "application/vnd.mapbox-vector-tile";

fn parse_layers(raw: &str) -> Result<LayerSet, ApiError> {
    LayerSet::parse(raw).map_err(|e| ApiError::invalid_parameter("layers", e))
}

/// 401 when the caller may not see one of the layers.
fn check_layers(view: &View, layers: LayerSet) -> Result<(), ApiError> {
    for collection in layers.iter() {
        view.visibility().check_collection(collection)?;
    }
    Ok(())
}

/// Gzip when the client takes it, else identity (never another coding: tiles are compressed
/// once, into the cache).
fn negotiate(req: &HttpRequest) -> Encoding {
    let Ok(accept) = AcceptEncoding::parse(req) else {
        return Encoding::Identity;
    };
    let supported = [HeaderEncoding::gzip(), HeaderEncoding::identity()];
    match accept.negotiate(supported.iter()) {
        Some(e) if e == HeaderEncoding::gzip() => Encoding::Gzip,
        _ => Encoding::Identity,
    }
}

fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    let Some(tag) = etag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .map(|t| EntityTag::new_strong(t.to_owned()))
    else {
        return false;
    };
    match IfNoneMatch::parse(req) {
        Ok(IfNoneMatch::Any) => true,
        Ok(IfNoneMatch::Items(items)) => items.iter().any(|t| t.weak_eq(&tag)),
        Err(_) => false,
    }
}

/// A Mapbox Vector Tile of one or more collections, as the caller may see them.
#[utoipa::path(get, path = "/tiles/{layers}/{z}/{x}/{y}.mvt", security((), ("bearer" = [])),
    params(
        ("layers" = String, Path, description = "A collection, or a comma list of them (`services,territories`)", pattern = "^(services|settlements|worksites|territories)(,(services|settlements|worksites|territories))*$"),
        ("z" = u8, Path, description = "Zoom, 0 to 22", minimum = 0, maximum = 22),
        ("x" = u32, Path, description = "Column, 0 to 2^z - 1 (west to east)"),
        ("y" = u32, Path, description = "Row, 0 to 2^z - 1 (north to south)"),
    ),
    responses(
        (status = 200, description = "The tile (gzip when the client accepts it); a strong `ETag`", body = ref("#/components/schemas/VectorTile"), content_type = "application/vnd.mapbox-vector-tile"),
        (status = 204, description = "Nothing the caller may see lies in the tile"),
        (status = 304, description = "The tile matches `If-None-Match`"),
        (status = 400, description = "Unknown layer, or z/x/y out of range or not an integer; the message names it"),
        (status = 401, description = "A restricted layer asked for without a valid token, or a token that is not valid"),
        (status = 500, description = "Internal error; the cause is logged"),
        (status = 503, description = "The bearer token could not be checked: the database is unreachable"),
))]
pub async fn tile(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (layers, z, x, y) = path.into_inner();
    let layers = parse_layers(&layers)?;
    let tile =
        TileId::parse(&z, &x, &y).map_err(|e| ApiError::invalid_parameter(e.parameter(), &e))?;
    // The stamp comes before the snapshot: see `tiles::cache`.
    let stamp = state.tiles.cache().stamp();
    let view = caller.view(&state);
    check_layers(&view, layers)?;
    let encoding = negotiate(&req);
    let tiles = std::sync::Arc::clone(&state.tiles);
    let served = web::block(move || tiles.serve(&view, stamp, layers, tile, encoding))
        .await
        .map_err(|e| ApiError::internal("encoding a tile", &e))?
        .map_err(|e| match e {
            QueryError::Access(a) => ApiError::from(a),
            QueryError::UnknownTerritory(_) => ApiError::invalid_parameter("layers", &e),
        })?;
    state
        .metrics
        .observe_tile(served.outcome, served.encode_time);
    let tile = served.tile;
    let status = if not_modified(&req, &tile.etag) {
        StatusCode::NOT_MODIFIED
    } else if tile.body.is_empty() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = HttpResponse::build(status);
    response
        .insert_header((header::ETAG, tile.etag.clone()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::VARY, "Accept-Encoding"));
    if status != StatusCode::OK {
        return Ok(response.finish());
    }
    response.content_type(MVT);
    response.insert_header(match encoding {
        Encoding::Gzip => ContentEncoding::Gzip,
        // Named, so that the compression middleware leaves the body as it is whatever else
        // the client accepts.
        Encoding::Identity => ContentEncoding::Identity,
    });
    Ok(response.body(tile.body.clone()))
}

/// The collections a caller may see, of `layers`.
fn visible_layers(view: &View, layers: LayerSet) -> LayerSet {
    LayerSet::of(
        layers
            .iter()
            .filter(|c| view.visibility().check_collection(*c).is_ok()),
    )
}

/// The TileJSON document of a layer set.
fn tilejson(base: &str, view: &View, layers: LayerSet) -> Value {
    let mut bounds: Option<geo::Rect<f64>> = None;
    for collection in layers.iter() {
        if let Some(e) = view.extent(collection) {
            bounds = Some(match bounds {
                None => e,
                Some(b) => geo::Rect::new(
                    geo::coord! { x: b.min().x.min(e.min().x), y: b.min().y.min(e.min().y) },
                    geo::coord! { x: b.max().x.max(e.max().x), y: b.max().y.max(e.max().y) },
                ),
            });
        }
    }
    let bounds = bounds.map_or_else(
        || vec![-180.0, -85.051_128_779_806_59, 180.0, 85.051_128_779_806_59],
        |b| vec![b.min().x, b.min().y, b.max().x, b.max().y],
    );
    let center = vec![
        f64::midpoint(bounds[0], bounds[2]),
        f64::midpoint(bounds[1], bounds[3]),
        9.0,
    ];
    let name = layers.name();
    let mut vector_layers: Vec<Value> = layers
        .iter()
        .map(|c| {
            let fields: serde_json::Map<String, Value> = fields(c)
                .iter()
                .map(|(k, t)| ((*k).to_owned(), json!(t)))
                .collect();
            json!({
                "id": c.as_str(),
                "description": c.title(),
                "minzoom": 0,
                "maxzoom": MAX_ZOOM,
                "fields": fields,
            })
        })
        .collect();
    // Point layers become clusters where a tile would pass its limits.
    for c in layers.iter().filter(|c| *c != Collection::Territories) {
        let mut cluster_fields = serde_json::Map::new();
        cluster_fields.insert("count".into(), json!("Number"));
        vector_layers.push(json!({
            "id": format!("{c}_clusters"),
            "description": format!("{} aggregated where a tile would exceed 500 KB or 50,000 features: `count`, and `count_{{kind}}` per kind", c.title()),
            "minzoom": 0,
            "maxzoom": MAX_ZOOM,
            "fields": cluster_fields,
        }));
    }
    json!({
        "tilejson": "3.0.0",
        "name": format!("faro {name}"),
        "attribution": crate::tiles::ATTRIBUTION,
        "scheme": "xyz",
        "tiles": [format!("{base}/tiles/{name}/{{z}}/{{x}}/{{y}}.mvt")],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": bounds,
        "center": center,
        "vector_layers": vector_layers,
    })
}

/// TileJSON 3.0.0 of a layer set: absolute tile URLs, the bounds of what the caller may see,
/// zoom range and the fields of each source layer.
#[utoipa::path(get, path = "/tiles/{layers}.json", operation_id = "tilejson", security((), ("bearer" = [])),
    params(
        ("layers" = String, Path, description = "A collection, or a comma list of them", pattern = "^(services|settlements|worksites|territories)(,(services|settlements|worksites|territories))*$"),
    ),
    responses(
        (status = 200, description = "TileJSON 3.0.0", body = ref("#/components/schemas/TileJson"), content_type = "application/json"),
        (status = 400, description = "Unknown layer; the message names it"),
        (status = 401, description = "A restricted layer asked for without a valid token, or a token that is not valid"),
        (status = 500, description = "Internal error; the cause is logged"),
        (status = 503, description = "The bearer token could not be checked: the database is unreachable"),
))]
pub async fn tilejson_handler(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let layers = parse_layers(&path.into_inner())?;
    let view = caller.view(&state);
    check_layers(&view, layers)?;
    let doc = tilejson(&base_url(&req), &view, layers);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(doc))
}

/// The MapLibre style of the viewer over faro's tiles.
#[utoipa::path(get, path = "/style.json", security((), ("bearer" = [])), responses(
    (status = 200, description = "A MapLibre style (version 8): the layers the caller may see", body = ref("#/components/schemas/MapStyle"), content_type = "application/json"),
    (status = 401, description = "`Authorization` is not a valid, live bearer token"),
    (status = 500, description = "Internal error; the cause is logged"),
    (status = 503, description = "The bearer token could not be checked: the database is unreachable"),
))]
/// `GET /style.json`: the caller's layers (territories and services; settlements and
/// worksites too for an authorised caller) styled for the viewer.
pub async fn style(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let view = caller.view(&state);
    let layers = visible_layers(&view, LayerSet::ALL);
    let doc = crate::tiles::style::style(&base_url(&req), layers);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(doc))
}
