//! Request counters and latency histograms in Prometheus text, and the request log line.
//!
//! The log names the route pattern and status, never the query string: a query can hold the
//! position of an outreach team or of the people it serves.

use std::sync::{Mutex, RwLock};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::AppState;
use crate::domain::Collection;
use crate::index::query::View;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CollectionLabels {
    collection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TileLabels {
    cache: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
}

fn encode_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

/// The process's metrics registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    records: Family<CollectionLabels, Gauge>,
    store_up: Gauge,
    tile_requests: Family<TileLabels, Counter>,
    tile_encode: Histogram,
    tile_cache_bytes: Family<CacheLabels, Gauge>,
    tile_cache_entries: Family<CacheLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("faro");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let records = Family::<CollectionLabels, Gauge>::default();
        let store_up = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            latency.clone(),
        );
        registry.register(
            "records",
            "Records per collection that the scraper may know of (anonymous: public ones)",
            records.clone(),
        );
        registry.register(
            "store_up",
            "1 if the store answered at its last use",
            store_up.clone(),
        );
        let tile_requests = Family::<TileLabels, Counter>::default();
        let tile_encode = encode_histogram();
        let tile_cache_bytes = Family::<CacheLabels, Gauge>::default();
        let tile_cache_entries = Family::<CacheLabels, Gauge>::default();
        registry.register(
            "tile_requests",
            "Tiles answered, by how: from the cache (hit), compressed from a cached tile (compressed), or encoded (miss)",
            tile_requests.clone(),
        );
        registry.register(
            "tile_encode_duration_seconds",
            "Time to encode (and compress) a tile not in the cache",
            tile_encode.clone(),
        );
        registry.register(
            "tile_cache_bytes",
            "Bytes of tiles in the cache (authorised scrapes only: restricted tiles count in it)",
            tile_cache_bytes.clone(),
        );
        registry.register(
            "tile_cache_entries",
            "Tiles in the cache (authorised scrapes only)",
            tile_cache_entries.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            records,
            store_up,
            tile_requests,
            tile_encode,
            tile_cache_bytes,
            tile_cache_entries,
        }
    }

    /// Counts one tile answer.
    pub fn observe_tile(
        &self,
        outcome: crate::tiles::Outcome,
        encode_time: Option<std::time::Duration>,
    ) {
        self.tile_requests
            .get_or_create(&TileLabels {
                cache: outcome.as_str(),
            })
            .inc();
        if let Some(t) = encode_time {
            self.tile_encode.observe(t.as_secs_f64());
        }
    }

    /// The Prometheus/OpenMetrics text. Record counts are those the `view`'s caller may know:
    /// an anonymous scrape gets public services and territories only (the number of
    /// confidential shelters or of settlements is not public), an authorised one every count.
    pub fn render(&self, view: &View, store_up: bool, tiles: &crate::tiles::TileCache) -> String {
        self.records.clear();
        for c in Collection::ALL {
            if let Some(n) = view.count(*c) {
                self.records
                    .get_or_create(&CollectionLabels {
                        collection: c.as_str().to_owned(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        self.store_up.set(i64::from(store_up));
        self.tile_cache_bytes.clear();
        self.tile_cache_entries.clear();
        if view.visibility().sees_everything() {
            let labels = CacheLabels { cache: "tiles" };
            self.tile_cache_bytes
                .get_or_create(&labels)
                .set(i64::try_from(tiles.bytes()).unwrap_or(i64::MAX));
            self.tile_cache_entries
                .get_or_create(&labels)
                .set(i64::try_from(tiles.len()).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = encode(&mut out, &registry);
        }
        out
    }
}

/// Middleware: counts, times and logs every request.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    // Bounded label values: an invented method must not make a new series.
    let method = match req.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let authorised = req
        .headers()
        .contains_key(actix_web::http::header::AUTHORIZATION);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let mut res = next.call(req).await?;
    caller_headers(res.headers_mut(), authorised);
    let route = route_label(res.request().match_pattern().as_deref());
    let status = res.status().as_u16();
    let elapsed = start.elapsed();
    if let Some(state) = state {
        state
            .metrics
            .requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
        state
            .metrics
            .latency
            .get_or_create(&RouteLabels { route })
            .observe(elapsed.as_secs_f64());
    }
    // One line per request only when asked for (`RUST_LOG=faro::http=debug`): at INFO a busy
    // server would write more log than anything else. Server errors are always logged.
    let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, %route, status, elapsed_ms, "request failed");
    } else {
        tracing::debug!(%method, %route, status, elapsed_ms, "request");
    }
    Ok(res)
}

/// The route label of a request: its route's pattern (`/collections/{collection}/items`, never
/// the path), or `unmatched`. Patterns come from the route table, so there are as many as
/// routes; each is kept for the life of the process, and a request allocates no label.
fn route_label(pattern: Option<&str>) -> &'static str {
    static ROUTES: RwLock<Vec<&'static str>> = RwLock::new(Vec::new());
    let Some(pattern) = pattern else {
        return "unmatched";
    };
    let find = |routes: &[&'static str]| routes.iter().copied().find(|r| *r == pattern);
    if let Some(route) = ROUTES.read().ok().and_then(|routes| find(&routes)) {
        return route;
    }
    let Ok(mut routes) = ROUTES.write() else {
        return "unmatched";
    };
    if let Some(route) = find(&routes) {
        return route;
    }
    let route: &'static str = Box::leak(pattern.to_owned().into_boxed_str());
    routes.push(route);
    route
}

/// Answers depend on who asks: caches must key on `Authorization`, and must not keep an
/// authorised answer at all (it can hold restricted positions).
fn caller_headers(headers: &mut actix_web::http::header::HeaderMap, authorised: bool) {
    use actix_web::http::header::{self, HeaderValue};
    headers.append(header::VARY, HeaderValue::from_static("Authorization"));
    if authorised {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_label_is_its_pattern_kept_once() {
        // Two requests, each with the pattern in a string of its own (as `match_pattern` gives).
        let first = String::from("/collections/{collection}");
        let second = String::from("/collections/{collection}");
        let a = route_label(Some(first.as_str()));
        let b = route_label(Some(second.as_str()));
        assert_eq!(a, "/collections/{collection}");
        assert!(
            std::ptr::eq(a, b),
            "the second request reuses the first label"
        );
        assert_eq!(route_label(Some("/nearest")), "/nearest");
        assert_eq!(route_label(None), "unmatched");
    }
}
