//! The base of every absolute link faro prints (OGC `links`, tile URLs): `scheme://host[/path]`,
//! without a trailing slash.
//!
//! The rules, in order:
//! 1. With a public URL configured, it is the base, whatever the request says.
//! 2. When the TCP peer is a trusted proxy, its `Forwarded` header (RFC 7239) gives the host
//!    and scheme; without a usable `Forwarded`, `X-Forwarded-Host` and `X-Forwarded-Proto` do.
//! 3. Otherwise (and for whatever a proxy left out) the request's `Host` header (or, in
//!    HTTP/2, its authority) and the connection's scheme. From any other peer, forwarded
//!    headers are ignored: a client cannot make faro print links to another host.
//!
//! Every host taken from a header must look like a host (`name`, `1.2.3.4` or `[v6]`, with an
//! optional port); anything else is ignored.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::uri::Authority;
use actix_web::{HttpRequest, web};

use super::AppState;
use crate::config::{LinkConfig, TrustedProxies};

const X_FORWARDED_HOST: &str = "x-forwarded-host";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";

/// The base URL for absolute links in the answer to `req`, by the settings in the app state
/// (without an app state: from the request alone, trusting no proxy).
pub fn base_url(req: &HttpRequest) -> String {
    match req.app_data::<web::Data<AppState>>() {
        Some(state) => base_url_with(req, &state.links),
        None => base_url_with(req, &LinkConfig::default()),
    }
}

/// The base URL for absolute links in the answer to `req`, by the settings given.
pub fn base_url_with(req: &HttpRequest, links: &LinkConfig) -> String {
    if let Some(public) = &links.public_url {
        return public.as_str().to_owned();
    }
    let trusted = req
        .peer_addr()
        .is_some_and(|peer| links.trusted_proxies.contains(peer.ip()));
    let told = if trusted {
        from_proxy(req.headers(), &links.trusted_proxies)
    } else {
        Told::default()
    };
    let scheme = told.scheme.unwrap_or_else(|| {
        if req.app_config().secure() {
            "https"
        } else {
            "http"
        }
    });
    let host = told.host.unwrap_or_else(|| direct_host(req));
    format!("{scheme}://{host}")
}

/// The address of the client a request came from: the peer's, or, when the peer is a trusted
/// proxy, the address it says it forwarded for (`Forwarded: for=`, else the last
/// `X-Forwarded-For` entry that is not itself a trusted proxy).
pub fn client_ip(req: &HttpRequest, links: &LinkConfig) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !links.trusted_proxies.contains(peer) {
        return Some(peer);
    }
    let headers = req.headers();
    if headers.contains_key(header::FORWARDED) {
        let forwarded = parse_forwarded_headers(headers).and_then(|elements| {
            original_element(&elements, &links.trusted_proxies)
                .and_then(|e| e.for_.as_deref().and_then(node_ip))
        });
        return Some(forwarded.unwrap_or(peer));
    }
    let forwarded_for = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter_map(|v| v.parse::<IpAddr>().ok())
        .rfind(|ip| !links.trusted_proxies.contains(*ip));
    Some(forwarded_for.unwrap_or(peer))
}

/// What a trusted proxy said about the original request.
#[derive(Debug, Default, PartialEq, Eq)]
struct Told {
    scheme: Option<&'static str>,
    host: Option<String>,
}

/// The host the client addressed, as this connection carries it.
fn direct_host(req: &HttpRequest) -> String {
    let header = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| is_host(h));
    if let Some(host) = header {
        return host.to_owned();
    }
    if let Some(authority) = req.uri().authority().map(Authority::as_str)
        && is_host(authority)
    {
        return authority.to_owned();
    }
    // No usable Host header (an HTTP/1.0 client, say): the address the client connected to.
    req.app_config().local_addr().to_string()
}

/// Host and scheme from the forwarding headers of a trusted peer. `Forwarded` wins when it is
/// present and well formed; a malformed one is ignored as a whole.
fn from_proxy(headers: &HeaderMap, trusted: &TrustedProxies) -> Told {
    if headers.contains_key(header::FORWARDED) {
        if let Some(elements) = parse_forwarded_headers(headers) {
            if let Some(element) = original_element(&elements, trusted) {
                return Told {
                    scheme: element.proto.as_deref().and_then(scheme),
                    host: element.host.clone().filter(|h| is_host(h)),
                };
            }
        } else {
            tracing::debug!("ignoring a malformed Forwarded header");
        }
    }
    Told {
        scheme: last_value(headers, X_FORWARDED_PROTO).and_then(scheme),
        host: last_value(headers, X_FORWARDED_HOST)
            .filter(|h| is_host(h))
            .map(str::to_owned),
    }
}

/// The last non-empty value of a comma-list header over all its lines: the one the nearest
/// (trusted) proxy wrote, when proxies append instead of replacing.
fn last_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty())
}

fn scheme(proto: &str) -> Option<&'static str> {
    if proto.eq_ignore_ascii_case("https") {
        Some("https")
    } else if proto.eq_ignore_ascii_case("http") {
        Some("http")
    } else {
        None
    }
}

/// Whether a header value is a plain `host[:port]`: a DNS-style name, an IPv4 address or a
/// bracketed IPv6 address. Anything that could change a URL's shape (`/`, `@`, `?`, spaces)
/// is refused.
fn is_host(value: &str) -> bool {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match value.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(value), None),
        }
    };
    let host_ok = host.is_none_or(|h| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    });
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    host_ok && port_ok
}

/// One element of a `Forwarded` header (RFC 7239 section 4): the parameters one proxy added.
#[derive(Debug, Default, PartialEq, Eq)]
struct Element {
    by: Option<String>,
    for_: Option<String>,
    host: Option<String>,
    proto: Option<String>,
}

/// The elements of every `Forwarded` line, in order; `None` when any line is malformed.
fn parse_forwarded_headers(headers: &HeaderMap) -> Option<Vec<Element>> {
    let mut elements = Vec::new();
    for line in headers.get_all(header::FORWARDED) {
        elements.extend(parse_forwarded(line.to_str().ok()?)?);
    }
    Some(elements)
}

/// The element that describes the request as the client made it: walking from the last
/// element (written by our peer, a trusted proxy) towards the first, step over every element
/// whose `for` (the node the proxy got the request from) is itself a trusted proxy. An element
/// written by a client or an untrusted node is never reached.
fn original_element<'a>(elements: &'a [Element], trusted: &TrustedProxies) -> Option<&'a Element> {
    let mut index = elements.len().checked_sub(1)?;
    while index > 0
        && elements[index]
            .for_
            .as_deref()
            .and_then(node_ip)
            .is_some_and(|ip| trusted.contains(ip))
    {
        index -= 1;
    }
    elements.get(index)
}

/// The IP address of a `for`/`by` node (`192.0.2.43`, `192.0.2.43:47011`, `[2001:db8::1]`,
/// `[2001:db8::1]:4711`); `None` for `unknown`, obfuscated names and anything else.
fn node_ip(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (v6, _) = rest.split_once(']')?;
        return v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let (v4, _) = node.split_once(':')?;
    v4.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// A `token` character of RFC 7230 section 3.2.6.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses one `Forwarded` header value:
///
/// ```text
/// Forwarded         = 1#forwarded-element
/// forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
/// forwarded-pair    = token "=" value
/// value             = token / quoted-string
/// ```
///
/// Empty list elements are allowed (`#` rule); whitespace is allowed around `,` and, leniently,
/// around `;`. Parameter names are case-insensitive; a parameter given twice in one element
/// makes the header malformed. Unknown parameters are skipped.
fn parse_forwarded(value: &str) -> Option<Vec<Element>> {
    let mut p = Scanner {
        bytes: value.as_bytes(),
        at: 0,
    };
    let mut elements = Vec::new();
    loop {
        p.skip_ows();
        match p.peek() {
            None => break,
            Some(b',') => {
                p.at += 1;
                continue;
            }
            Some(_) => {}
        }
        let mut element = Element::default();
        let mut any = false;
        loop {
            p.skip_ows();
            match p.peek() {
                None | Some(b',') => break,
                Some(b';') => {
                    p.at += 1;
                    continue;
                }
                Some(_) => {}
            }
            let name = p.token()?.to_ascii_lowercase();
            if p.peek() != Some(b'=') {
                return None;
            }
            p.at += 1;
            let value = if p.peek() == Some(b'"') {
                p.quoted()?
            } else {
                p.token()?.to_owned()
            };
            let slot = match name.as_str() {
                "by" => Some(&mut element.by),
                "for" => Some(&mut element.for_),
                "host" => Some(&mut element.host),
                "proto" => Some(&mut element.proto),
                _ => None,
            };
            if let Some(slot) = slot {
                if slot.is_some() {
                    return None;
                }
                *slot = Some(value);
            }
            any = true;
            p.skip_ows();
            match p.peek() {
                None | Some(b',' | b';') => {}
                Some(_) => return None,
            }
        }
        if any {
            elements.push(element);
        }
    }
    if elements.is_empty() {
        None
    } else {
        Some(elements)
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// One or more token characters.
    fn token(&mut self) -> Option<&'a str> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        if self.at == start {
            return None;
        }
        std::str::from_utf8(&self.bytes[start..self.at]).ok()
    }

    /// A quoted-string, unescaped: `"` *( qdtext / `\` char ) `"`.
    fn quoted(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.at += 1;
            match b {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let escaped = self.peek()?;
                    if !(escaped == b'\t' || escaped == b' ' || escaped.is_ascii_graphic()) {
                        return None;
                    }
                    out.push(escaped);
                    self.at += 1;
                }
                b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e => out.push(b),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;
    use crate::config::PublicUrl;

    fn links(public_url: Option<&str>, trusted: &[&str]) -> LinkConfig {
        LinkConfig {
            public_url: public_url.map(|u| PublicUrl::parse(u).unwrap()),
            trusted_proxies: TrustedProxies::parse(trusted).unwrap(),
        }
    }

    fn from_peer(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut req = TestRequest::default().peer_addr(peer.parse().unwrap());
        for &(name, value) in headers {
            req = req.append_header((name, value));
        }
        req.to_http_request()
    }

    fn element(for_: Option<&str>, host: Option<&str>, proto: Option<&str>) -> Element {
        Element {
            by: None,
            for_: for_.map(str::to_owned),
            host: host.map(str::to_owned),
            proto: proto.map(str::to_owned),
        }
    }

    const FORGED: [(&str, &str); 4] = [
        ("host", "faro.lan:8080"),
        ("forwarded", "for=192.0.2.60;proto=https;host=evil.example"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
    ];

    #[test]
    fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
        let req = from_peer("203.0.113.9:40000", &FORGED);
        assert_eq!(
            base_url_with(&req, &links(None, &[])),
            "http://faro.lan:8080"
        );
        // Trusting some other proxy changes nothing for this peer.
        let req = from_peer("203.0.113.9:40000", &FORGED);
        assert_eq!(
            base_url_with(&req, &links(None, &["10.0.0.0/8"])),
            "http://faro.lan:8080"
        );
    }

    #[test]
    fn forwarded_from_a_trusted_peer_gives_host_and_scheme() {
        let req = from_peer("10.1.2.3:40000", &FORGED);
        assert_eq!(
            base_url_with(&req, &links(None, &["10.0.0.0/8"])),
            "https://evil.example"
        );
        // An IPv6 proxy, and a quoted host with a port.
        let req = from_peer(
            "[fd00::7]:40000",
            &[
                ("host", "faro.lan"),
                (
                    "forwarded",
                    r#"for="[2001:db8::1]:4711";host="faro.example.org:8443";proto=https"#,
                ),
            ],
        );
        assert_eq!(
            base_url_with(&req, &links(None, &["fd00::/8"])),
            "https://faro.example.org:8443"
        );
    }

    #[test]
    fn x_forwarded_headers_are_used_when_a_trusted_peer_sends_no_forwarded() {
        let req = from_peer(
            "127.0.0.1:40000",
            &[
                ("host", "127.0.0.1:8080"),
                ("x-forwarded-host", "faro.example.org"),
                ("x-forwarded-proto", "HTTPS"),
            ],
        );
        assert_eq!(
            base_url_with(&req, &links(None, &["127.0.0.1"])),
            "https://faro.example.org"
        );
        // The last value is the one the nearest proxy wrote.
        let req = from_peer(
            "127.0.0.1:40000",
            &[
                ("host", "127.0.0.1:8080"),
                ("x-forwarded-host", "client.example, faro.example.org"),
                ("x-forwarded-proto", "http, https"),
            ],
        );
        assert_eq!(
            base_url_with(&req, &links(None, &["127.0.0.1"])),
            "https://faro.example.org"
        );
        // Only a scheme: the host stays the request's.
        let req = from_peer(
            "127.0.0.1:40000",
            &[("host", "faro.lan"), ("x-forwarded-proto", "https")],
        );
        assert_eq!(
            base_url_with(&req, &links(None, &["127.0.0.1"])),
            "https://faro.lan"
        );
    }

    #[test]
    fn a_well_formed_forwarded_header_beats_x_forwarded_headers() {
        let req = from_peer(
            "127.0.0.1:40000",
            &[
                ("host", "faro.lan"),
                ("forwarded", "for=192.0.2.1;host=a.example"),
                ("x-forwarded-host", "b.example"),
                ("x-forwarded-proto", "https"),
            ],
        );
        assert_eq!(
            base_url_with(&req, &links(None, &["127.0.0.1"])),
            "http://a.example"
        );
        // A malformed one is ignored as a whole.
        let req = from_peer(
            "127.0.0.1:40000",
            &[
                ("host", "faro.lan"),
                ("forwarded", "for=192.0.2.1;host=a.example;host=c.example"),
                ("x-forwarded-host", "b.example"),
            ],
        );
        assert_eq!(
            base_url_with(&req, &links(None, &["127.0.0.1"])),
            "http://b.example"
        );
    }

    #[test]
    fn the_public_url_wins_over_everything() {
        let req = from_peer("10.1.2.3:40000", &FORGED);
        assert_eq!(
            base_url_with(
                &req,
                &links(Some("https://faro.example.org/base/"), &["10.0.0.0/8"])
            ),
            "https://faro.example.org/base"
        );
        let req = from_peer("203.0.113.9:40000", &FORGED);
        assert_eq!(
            base_url_with(&req, &links(Some("http://faro.example.org"), &[])),
            "http://faro.example.org"
        );
    }

    #[test]
    fn a_host_that_is_not_a_host_is_not_used() {
        // A forwarded host that would reshape the URL falls back to the Host header.
        let req = from_peer(
            "127.0.0.1:40000",
            &[
                ("host", "faro.lan"),
                ("x-forwarded-host", "evil.example/path?"),
            ],
        );
        assert_eq!(
            base_url_with(&req, &links(None, &["127.0.0.1"])),
            "http://faro.lan"
        );
        // A bad Host header falls back to the address the client connected to.
        let req = from_peer("203.0.113.9:40000", &[("host", "a@b")]);
        let base = base_url_with(&req, &links(None, &[]));
        assert!(!base.contains('@'), "{base}");
        assert!(base.starts_with("http://"), "{base}");
        for good in [
            "faro.lan",
            "faro.lan:8080",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:80",
            "a_b-c.d",
        ] {
            assert!(is_host(good), "{good}");
        }
        for bad in [
            "",
            ":80",
            "faro.lan:",
            "faro.lan:99999",
            "faro.lan:8a",
            "a b",
            "a/b",
            "a@b",
            "[::1",
            "[nope]",
            "[::1]x",
            "::1",
            "a:1:2",
            "a?b",
            "a#b",
            "a\\b",
        ] {
            assert!(!is_host(bad), "{bad}");
        }
    }

    #[test]
    fn forwarded_parses_the_rfc_7239_examples() {
        // Section 4 and 7.1 of RFC 7239.
        assert_eq!(
            parse_forwarded(r#"for="_gazonk""#),
            Some(vec![element(Some("_gazonk"), None, None)])
        );
        assert_eq!(
            parse_forwarded(r#"For="[2001:db8:cafe::17]:4711""#),
            Some(vec![element(Some("[2001:db8:cafe::17]:4711"), None, None)])
        );
        assert_eq!(
            parse_forwarded("for=192.0.2.60;proto=http;by=203.0.113.43"),
            Some(vec![Element {
                by: Some("203.0.113.43".to_owned()),
                ..element(Some("192.0.2.60"), None, Some("http"))
            }])
        );
        assert_eq!(
            parse_forwarded("for=192.0.2.43, for=198.51.100.17"),
            Some(vec![
                element(Some("192.0.2.43"), None, None),
                element(Some("198.51.100.17"), None, None)
            ])
        );
        assert_eq!(
            parse_forwarded(r#"for=192.0.2.43,for="[2001:db8:cafe::17]",for=unknown"#),
            Some(vec![
                element(Some("192.0.2.43"), None, None),
                element(Some("[2001:db8:cafe::17]"), None, None),
                element(Some("unknown"), None, None)
            ])
        );
    }

    #[test]
    fn forwarded_handles_quoting_case_empty_parts_and_extensions() {
        assert_eq!(
            parse_forwarded(r#"HOST="a.example:8080" ; PROTO=HTTPS;ext="x, y; z""#),
            Some(vec![element(None, Some("a.example:8080"), Some("HTTPS"))])
        );
        assert_eq!(
            parse_forwarded(r#"host="a\"b""#),
            Some(vec![element(None, Some("a\"b"), None)])
        );
        assert_eq!(
            parse_forwarded(" , for=a;;host=b ,, for=c ,"),
            Some(vec![
                element(Some("a"), Some("b"), None),
                element(Some("c"), None, None)
            ])
        );
        for bad in [
            "",
            " , ",
            "for",
            "for=",
            "for =a",
            "for= a",
            "for=a b",
            "for=a;for=b",
            r#"for="a"#,
            r#"for="a"b"#,
            "for=[::1]",
            "=a",
            "for=a\u{0}",
            "for=\"a\u{7f}\"",
        ] {
            assert_eq!(parse_forwarded(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_walk_stops_at_the_first_node_that_is_not_a_trusted_proxy() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8", "fd00::/8"]).unwrap();
        // client -> proxy 10.0.0.1 -> proxy 10.0.0.2 -> faro; the client forged an element.
        let elements = vec![
            element(Some("192.0.2.1"), Some("forged.example"), Some("http")),
            element(Some("203.0.113.5"), Some("faro.example.org"), Some("https")),
            element(Some("10.0.0.1"), Some("internal.lan"), Some("http")),
        ];
        let chosen = original_element(&elements, &trusted).unwrap();
        assert_eq!(chosen.host.as_deref(), Some("faro.example.org"));
        // A `for` with a port, a bracketed IPv6 node and an unknown node.
        let elements = vec![
            element(Some("unknown"), Some("a.example"), None),
            element(Some("[fd00::9]:80"), Some("b.example"), None),
            element(Some("10.0.0.3:5000"), Some("c.example"), None),
        ];
        let chosen = original_element(&elements, &trusted).unwrap();
        assert_eq!(chosen.host.as_deref(), Some("a.example"));
        // An element without `for` stops the walk.
        let elements = vec![
            element(Some("192.0.2.1"), Some("forged.example"), None),
            element(None, Some("faro.example.org"), None),
        ];
        let chosen = original_element(&elements, &trusted).unwrap();
        assert_eq!(chosen.host.as_deref(), Some("faro.example.org"));
        assert!(original_element(&[], &trusted).is_none());
    }

    #[test]
    fn nodes_parse_to_addresses() {
        let ip = |s: &str| node_ip(s).map(|ip| ip.to_string());
        assert_eq!(ip("192.0.2.43").as_deref(), Some("192.0.2.43"));
        assert_eq!(ip("192.0.2.43:47011").as_deref(), Some("192.0.2.43"));
        assert_eq!(ip("[2001:db8::1]").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip("[2001:db8::1]:4711").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip("2001:db8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip("unknown"), None);
        assert_eq!(ip("_hidden"), None);
        assert_eq!(ip("[_hidden]"), None);
    }

    #[test]
    fn without_an_app_state_links_come_from_the_request_alone() {
        let req = from_peer("127.0.0.1:40000", &FORGED);
        assert_eq!(base_url(&req), "http://faro.lan:8080");
    }
}
