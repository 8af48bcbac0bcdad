//! Limits and headers on every answer: the per-client rate limit, CORS only for configured
//! origins, security headers.

use std::time::Duration;

use faro::startup::ServeOptions;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

async fn status(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.client.get(app.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_client_over_its_budget_gets_429_with_retry_after_and_others_go_on() {
    // 1 a second, bursts of 5: the six requests below must come within a second of each other
    // (at 5 a second, a loaded machine let a token refill before the 26th request).
    let app = spawn_app_with(ServeOptions {
        rate_limit: 1,
        ..ServeOptions::default()
    })
    .await;
    for i in 0..5 {
        assert_eq!(
            status(&app, "/collections", &[]).await.status(),
            200,
            "request {i}"
        );
    }
    let refused = status(&app, "/collections", &[]).await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");
    // A token holder is a client of its own; the probes are never limited.
    assert_eq!(
        app.get_as(&app.operator, "/collections").await.status(),
        200
    );
    for _ in 0..40 {
        assert_eq!(status(&app, "/healthz", &[]).await.status(), 200);
    }
    // The bucket refills: after a second, one more.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(status(&app, "/collections", &[]).await.status(), 200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_budget() {
    let trusted = faro::config::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    let app = spawn_app_with(ServeOptions {
        rate_limit: 1,
        links: faro::config::LinkConfig {
            public_url: None,
            trusted_proxies: trusted,
        },
        ..ServeOptions::default()
    })
    .await;
    for _ in 0..5 {
        assert_eq!(
            status(&app, "/conformance", &[("X-Forwarded-For", "198.51.100.1")])
                .await
                .status(),
            200
        );
    }
    assert_eq!(
        status(&app, "/conformance", &[("X-Forwarded-For", "198.51.100.1")])
            .await
            .status(),
        429
    );
    assert_eq!(
        status(&app, "/conformance", &[("X-Forwarded-For", "198.51.100.2")])
            .await
            .status(),
        200
    );

    // Without trust, the header is the client's own words: one budget for the connection.
    let app = spawn_app_with(ServeOptions {
        rate_limit: 1,
        ..ServeOptions::default()
    })
    .await;
    for i in 0..5 {
        let xff = format!("198.51.100.{i}");
        assert_eq!(
            status(&app, "/conformance", &[("X-Forwarded-For", &xff)])
                .await
                .status(),
            200
        );
    }
    assert_eq!(
        status(&app, "/conformance", &[("X-Forwarded-For", "203.0.113.9")])
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in [
        "/collections",
        "/collections/settlements/items",
        "/nowhere",
        "/tiles/services/10/547/365.mvt",
    ] {
        let resp = status(&app, path, &[]).await;
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            h["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
    }
    // The viewer keeps its own policy.
    let page = status(&app, "/", &[("Accept", "text/html")]).await;
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("'self'"), "{csp}");
}

#[tokio::test]
async fn cors_is_off_by_default_and_on_for_the_configured_origins_only() {
    let app = spawn_app().await;
    let resp = status(
        &app,
        "/collections",
        &[("Origin", "https://map.example.org")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    let app = spawn_app_with(ServeOptions {
        cors_origins: vec!["https://map.example.org".to_owned()],
        ..ServeOptions::default()
    })
    .await;
    let resp = status(
        &app,
        "/collections/services/items",
        &[("Origin", "https://map.example.org")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://map.example.org"
    );
    let exposed = resp.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("etag"), "{exposed}");
    // A preflight for a token-carrying request.
    let preflight = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            app.url("/collections/services/items"),
        )
        .header("Origin", "https://map.example.org")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    // Another origin gets no grant; faro's own pages still work.
    let other = status(&app, "/collections", &[("Origin", "https://evil.example")]).await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let own = app.address.clone();
    let same = status(&app, "/collections", &[("Origin", &own)]).await;
    assert_eq!(same.status(), 200);
}
