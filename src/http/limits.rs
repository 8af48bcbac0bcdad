//! Limits and headers every answer gets: a per-token and per-address rate limit (429 with
//! `Retry-After`), CORS for the configured origins only (none by default), and security
//! headers.
//!
//! The rate limit is a token bucket per client (`governor`): a bearer token is a client of
//! its own (keyed by the SHA-256 of its secret, never the secret), anyone else is keyed by
//! address: the peer's, or, behind a trusted proxy, the address the proxy says it forwarded
//! for. `/healthz` and `/readyz` are not limited, so a load balancer's probes never see 429.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{ApiError, AppState};

/// Who a request counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// SHA-256 of the bearer secret.
    Token([u8; 32]),
    Address(IpAddr),
}

/// A rate limit per client.
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<ClientKey>,
    per_second: u32,
    checks: AtomicU64,
}

/// Clients remembered before idle ones are forgotten.
const FORGET_PAST: usize = 100_000;

impl RateLimit {
    /// `per_second` requests a second per client, with bursts of `burst`; `None` when
    /// `per_second` is 0 (no limit).
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
        Some(Self {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            per_second,
            checks: AtomicU64::new(0),
        })
    }

    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// Counts one request of `key`; `Err` with the seconds to wait when over the budget.
    pub fn check(&self, key: &ClientKey) -> Result<(), u64> {
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(4096)
            && self.limiter.len() > FORGET_PAST
        {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// The client a request counts against.
fn client_key(req: &ServiceRequest, state: &AppState) -> Option<ClientKey> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(super::auth::bearer_secret)
        .filter(|t| !t.is_empty());
    if let Some(secret) = bearer {
        use sha2::Digest;
        return Some(ClientKey::Token(
            sha2::Sha256::digest(secret.as_bytes()).into(),
        ));
    }
    super::base_url::client_ip(req.request(), &state.links).map(ClientKey::Address)
}

/// Middleware: refuses a request over its client's budget with 429 and `Retry-After`.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let exempt = matches!(req.path(), "/healthz" | "/readyz");
    let verdict = match req.app_data::<web::Data<AppState>>() {
        Some(state) if !exempt => match (&state.rate_limit, client_key(&req, state)) {
            (Some(limit), Some(key)) => {
                limit.check(&key).map_err(|wait| (wait, limit.per_second()))
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    };
    match verdict {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err((wait, per_second)) => {
            let mut resp = ApiError::new(
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!(
                    "more than {per_second} requests a second from this client; retry in {wait} s"
                ),
            )
            .error_response();
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&wait.max(1).to_string())
                    .unwrap_or(HeaderValue::from_static("1")),
            );
            Ok(req.into_response(resp).map_into_right_body())
        }
    }
}

/// Security headers, added to every answer that has not set its own (the viewer sets its own
/// Content-Security-Policy): nothing is sniffed, framed or referred, and an API answer loads
/// nothing.
pub fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ))
}

/// Whether `origin` is the request's own (`scheme://host[:port]` naming the `Host` it was sent
/// to): the viewer's own requests, which carry an `Origin` too.
fn same_origin(origin: &HeaderValue, req: &actix_web::dev::RequestHead) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let origin = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://").map(|(_, rest)| rest));
    matches!((origin, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// CORS for `origins` (used only when some are configured: without, faro sends no CORS
/// headers and browsers refuse cross-origin reads), and the server's own origin.
pub fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::ACCEPT,
        ])
        .expose_headers([header::ETAG, header::LOCATION, header::RETRY_AFTER])
        .max_age(3600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors.allowed_origin_fn(same_origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_over_its_burst_waits_and_others_do_not() {
        let limit = RateLimit::new(1, 3).unwrap();
        let a = ClientKey::Address("192.0.2.1".parse().unwrap());
        let b = ClientKey::Token([7; 32]);
        for _ in 0..3 {
            assert!(limit.check(&a).is_ok());
        }
        let wait = limit.check(&a).unwrap_err();
        assert!((1..=1).contains(&wait), "{wait}");
        assert!(limit.check(&b).is_ok(), "another client has its own budget");
        assert!(RateLimit::new(0, 10).is_none(), "0 is no limit");
    }
}
