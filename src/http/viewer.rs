//! The map viewer (`web/`): its page at `/` for browsers, its content-hashed script, style and
//! worker under `/assets/`, and the label font under `/fonts/`. `build.rs` builds the viewer
//! and embeds every file in the binary; a build without node serves the plain landing page.
//!
//! Every viewer answer carries a Content-Security-Policy that lets the page reach faro's own
//! origin only (plus the configured base map's), `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: no-referrer`.

use actix_web::http::header::{self, AcceptEncoding, Encoding, Header as _, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};

use super::{ApiError, AppState};

include!(concat!(env!("OUT_DIR"), "/viewer_assets.rs"));

/// How long a browser keeps a content-hashed file: a year, never revalidated.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Fonts keep their package's file names, so a day.
const FONT_CACHE: &str = "public, max-age=86400";
/// Where the page's template takes the base map URL.
const BASEMAP_SLOT: &str = "%FARO_BASEMAP%";

fn embedded(path: &str) -> Option<&'static [u8]> {
    ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, bytes)| *bytes)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("woff2") => "font/woff2",
        Some("html") => "text/html; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    }
}

/// `scheme://host[:port]` of a URL (the whole text when it has no path).
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    url[after_scheme..]
        .find('/')
        .map_or(url, |i| &url[..after_scheme + i])
}

/// The viewer's Content-Security-Policy: faro's origin only, plus the base map's for images.
/// MapLibre draws sprites and decodes images through `data:` and `blob:` URLs, and may start
/// its worker from a `blob:` URL.
pub fn content_security_policy(basemap_url: Option<&str>) -> String {
    let extra = basemap_url
        .map(|u| format!(" {}", origin_of(u)))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; \
         img-src 'self' data: blob:{extra}; connect-src 'self'{extra}; font-src 'self'; \
         worker-src 'self' blob:; child-src 'self' blob:; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

fn secure(builder: &mut HttpResponseBuilder, basemap_url: Option<&str>) {
    let csp = content_security_policy(basemap_url);
    if let Ok(value) = HeaderValue::from_str(&csp) {
        builder.insert_header((header::CONTENT_SECURITY_POLICY, value));
    }
    builder
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
}

/// Text safe inside a double-quoted HTML attribute.
fn attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The viewer's page (or the plain landing page when the viewer was not built), never cached
/// without revalidation, so a new build's hashed assets are picked up at once.
pub fn page(state: &AppState) -> HttpResponse {
    let basemap = state.basemap_url.as_deref();
    let body = match embedded("index.html") {
        Some(bytes) => String::from_utf8_lossy(bytes)
            .replace(BASEMAP_SLOT, &attribute(basemap.unwrap_or_default())),
        None => super::ops::LANDING_HTML.to_owned(),
    };
    let mut builder = HttpResponse::Ok();
    secure(&mut builder, basemap);
    builder
        .content_type(content_type("index.html"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::VARY, "Accept"))
        .body(body)
}

/// Whether the client takes gzip (the build gzipped the scripts and styles beforehand).
fn takes_gzip(req: &HttpRequest) -> bool {
    let Ok(accept) = AcceptEncoding::parse(req) else {
        return false;
    };
    let supported = [Encoding::gzip(), Encoding::identity()];
    accept
        .negotiate(supported.iter())
        .is_some_and(|e| e == Encoding::gzip())
}

fn file(
    req: &HttpRequest,
    state: &AppState,
    folder: &str,
    name: &str,
    cache: &'static str,
) -> Result<HttpResponse, ApiError> {
    let path = format!("{folder}/{name}");
    let missing = || ApiError::not_found(format!("the viewer has no file `{path}`"));
    let is_gzip = std::path::Path::new(&path)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    if is_gzip {
        return Err(missing());
    }
    let bytes = embedded(&path).ok_or_else(missing)?;
    let mut builder = HttpResponse::Ok();
    secure(&mut builder, state.basemap_url.as_deref());
    builder
        .content_type(content_type(&path))
        .insert_header((header::CACHE_CONTROL, cache));
    let Some(gzipped) = embedded(&format!("{path}.gz")) else {
        return Ok(builder.body(bytes));
    };
    builder.insert_header((header::VARY, "Accept-Encoding"));
    if takes_gzip(req) {
        // With Content-Encoding set, the compression middleware leaves the body alone.
        builder.insert_header((header::CONTENT_ENCODING, "gzip"));
        return Ok(builder.body(gzipped));
    }
    Ok(builder.body(bytes))
}

/// A content-hashed file of the viewer (script, style, MapLibre's worker).
pub async fn asset(
    req: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    file(&req, &state, "assets", &name, IMMUTABLE)
}

/// A font file of the map's labels (the style's `font-faces`).
pub async fn font(
    req: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    file(&req, &state, "fonts", &name, FONT_CACHE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_faro_and_the_base_map_origin_only() {
        let none = content_security_policy(None);
        assert!(none.contains("connect-src 'self';"), "{none}");
        assert!(!none.contains("http"), "{none}");
        let with =
            content_security_policy(Some("https://tiles.example.org:8443/osm/{z}/{x}/{y}.png"));
        assert!(
            with.contains("img-src 'self' data: blob: https://tiles.example.org:8443;"),
            "{with}"
        );
        assert!(
            with.contains("connect-src 'self' https://tiles.example.org:8443;"),
            "{with}"
        );
        assert!(!with.contains("{z}"), "{with}");
    }

    #[test]
    fn gzip_is_chosen_only_when_the_client_takes_it() {
        let with = |value: &str| {
            actix_web::test::TestRequest::default()
                .insert_header((header::ACCEPT_ENCODING, value))
                .to_http_request()
        };
        assert!(takes_gzip(&with("gzip, deflate, br")));
        assert!(takes_gzip(&with("br;q=1, gzip;q=0.5")));
        assert!(!takes_gzip(&with("br")));
        assert!(!takes_gzip(&with("gzip;q=0")));
        assert!(!takes_gzip(
            &actix_web::test::TestRequest::default().to_http_request()
        ));
    }

    #[test]
    fn attributes_are_escaped() {
        assert_eq!(attribute("a\"><script>&"), "a&quot;&gt;&lt;script&gt;&amp;");
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(
            content_type("assets/main-X.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("assets/w-1.mjs"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("fonts/a.woff2"), "font/woff2");
        assert_eq!(content_type("assets/main-X.css"), "text/css; charset=utf-8");
    }
}
