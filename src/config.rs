//! Configuration of `faro serve` (and the store settings of every other command): defaults <
//! config file (TOML) < environment < flags, validated once here into typed values.
//!
//! clap reads the environment and the flags and reports where each value came from; this module
//! reads the file, layers the three, and checks every value. An error names where the bad value
//! came from: `faro.toml:3: key `listen`: ...`, `environment variable FARO_LISTEN: ...` or
//! `--listen: ...`. The database URL is never echoed in an error, and its password never reaches
//! a log ([`redact_url`]).
//!
//! Keys of the file (all optional): `listen`, `database_url`, `pool_size`, `demo`,
//! `public_url`, `trusted_proxies` (a list). Any other key is an error. A list from the
//! environment or the flags replaces the file's list; an empty `public_url` means none.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default store: the embedded SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://faro.db";
/// Default number of connections in the PostgreSQL pool.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// Config file read from the working directory when none is named and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "faro.toml";
/// Keys a config file may hold.
pub const FILE_KEYS: [&str; 11] = [
    "listen",
    "database_url",
    "pool_size",
    "demo",
    "public_url",
    "trusted_proxies",
    "max_vertices",
    "tile_cache_mb",
    "basemap_url",
    "rate_limit",
    "cors_origins",
];

/// Validated settings of `faro serve`.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    /// Load the demo dataset into an empty store at start.
    pub demo: bool,
    /// Connections in the PostgreSQL pool.
    pub pool_size: usize,
    /// How absolute links in responses are built.
    pub links: LinkConfig,
    /// Positions a written geometry may have at most (more is a 413 before validation).
    pub max_vertices: usize,
    /// Bytes of encoded tiles kept in memory, in MiB (0: no tile cache).
    pub tile_cache_mb: usize,
    /// A raster tile URL template (`https://host/{z}/{x}/{y}.png`) the viewer draws under faro's
    /// layers; its origin is the one host besides faro the viewer's CSP allows. `None`: no base map.
    pub basemap_url: Option<String>,
    /// Requests a second per client (a token, or an address); 0: no limit.
    pub rate_limit: u32,
    /// Origins allowed to read cross-origin (CORS); none by default.
    pub cors_origins: Vec<String>,
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
}

/// How faro builds absolute links (OGC `links`, tile URLs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkConfig {
    /// When set, every absolute link starts with it, whatever the request says.
    pub public_url: Option<PublicUrl>,
    /// Peers whose `Forwarded` / `X-Forwarded-Host` / `X-Forwarded-Proto` headers are believed.
    pub trusted_proxies: TrustedProxies,
}

/// The URL faro is reached at from outside, such as `https://faro.example.org/base`: http or
/// https, with a host, no credentials, query or fragment, and no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// Parses and normalises a public URL; the error says what is wrong with it.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let shown = redact_url(raw);
        let url =
            url::Url::parse(raw).map_err(|e| format!("`{shown}` is not an absolute URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{shown}` must start with http:// or https://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("`{shown}` has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password".to_owned());
        }
        if url.query().is_some() {
            return Err(format!("`{shown}` must not have a query (`?...`)"));
        }
        if url.fragment().is_some() {
            return Err(format!("`{shown}` must not have a fragment (`#...`)"));
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// The URL, without a trailing slash: links are `{public_url}/collections` and so on.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// IP addresses and CIDR blocks (IPv4 and IPv6) of reverse proxies faro may believe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses entries such as `10.0.0.7`, `10.0.0.0/8`, `::1`, `fd00::/8`. Empty entries are
    /// skipped; a block with host bits set (`10.0.0.1/8`) is refused as a likely typo.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            nets.push(parse_proxy(entry)?);
        }
        Ok(Self(nets))
    }

    /// Whether a peer address is one of the trusted proxies. An IPv4 peer seen through an
    /// IPv6 socket (`::ffff:10.0.0.7`) matches its IPv4 entry.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.0
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

fn parse_proxy(entry: &str) -> Result<IpNet, String> {
    if entry.contains('/') {
        let net: IpNet = entry
            .parse()
            .map_err(|_| format!("`{entry}` is not an IP address or CIDR block"))?;
        if net.addr() != net.network() {
            return Err(format!(
                "`{entry}` has host bits set; did you mean `{}`?",
                net.trunc()
            ));
        }
        Ok(net)
    } else {
        entry
            .parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| format!("`{entry}` is not an IP address or CIDR block"))
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// faro's built-in default.
    Default,
    /// A key of the config file, at a line (1-based).
    File { path: PathBuf, line: usize },
    /// An environment variable.
    Env(&'static str),
    /// A command-line flag, such as `--listen`.
    Flag(&'static str),
}

impl Origin {
    /// Where the value of `key` came from, as an error message starts.
    fn locate(&self, key: &str) -> String {
        match self {
            Origin::Default => format!("default `{key}`"),
            Origin::File { path, line } => format!("{}:{line}: key `{key}`", path.display()),
            Origin::Env(var) => format!("environment variable {var}"),
            Origin::Flag(flag) => (*flag).to_owned(),
        }
    }
}

/// A raw value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Given<T> {
    pub fn new(value: T, origin: Origin) -> Self {
        Self { value, origin }
    }
}

/// Values from the environment or the command line (clap tells which); `None` where neither
/// gave one. They beat the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<Given<String>>,
    pub database_url: Option<Given<String>>,
    pub pool_size: Option<Given<i64>>,
    pub demo: Option<Given<bool>>,
    pub public_url: Option<Given<String>>,
    pub trusted_proxies: Option<Given<Vec<String>>>,
    pub max_vertices: Option<Given<i64>>,
    pub tile_cache_mb: Option<Given<i64>>,
    pub basemap_url: Option<Given<String>>,
    pub rate_limit: Option<Given<i64>>,
    pub cors_origins: Option<Given<Vec<String>>>,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not validate; `at` says where it came from and which key it is.
    #[error("{at}: {reason}")]
    Invalid { at: String, reason: String },
    #[error("reading config file {}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: TOML syntax error: {message}", .path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}:{line}: unknown key `{key}` (known keys: {})", .path.display(), FILE_KEYS.join(", "))]
    UnknownKey {
        path: PathBuf,
        line: usize,
        key: String,
    },
    /// A value of the wrong type in the file (a string for `pool_size`, say).
    #[error("{}:{line}: key `{key}`: {message}", .path.display())]
    Type {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

impl ConfigError {
    fn invalid(origin: &Origin, key: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            at: origin.locate(key),
            reason: reason.into(),
        }
    }
}

/// The keys of a config file, each with its position.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<Spanned<String>>,
    database_url: Option<Spanned<String>>,
    pool_size: Option<Spanned<i64>>,
    demo: Option<Spanned<bool>>,
    public_url: Option<Spanned<String>>,
    trusted_proxies: Option<Spanned<Vec<String>>>,
    max_vertices: Option<Spanned<i64>>,
    tile_cache_mb: Option<Spanned<i64>>,
    basemap_url: Option<Spanned<String>>,
    rate_limit: Option<Spanned<i64>>,
    cors_origins: Option<Spanned<Vec<String>>>,
}

/// A file value with the place it came from; `None` when the file has no such key.
fn from_file<T>(file: Option<(&Path, &str)>, value: Option<Spanned<T>>) -> Option<Given<T>> {
    let (path, text) = file?;
    let value = value?;
    let line = line_of(text, value.span().start);
    Some(Given::new(
        value.into_inner(),
        Origin::File {
            path: path.to_owned(),
            line,
        },
    ))
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.get(..end).map_or(0, |s| s.matches('\n').count()) + 1
}

/// The 1-based column (in characters) of a byte offset.
fn column_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    let start = text.as_bytes()[..end]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    text.get(start..end)
        .map_or(end - start, |s| s.chars().count())
        + 1
}

/// Parses the text of a config file. The messages never quote the file's lines (a line could
/// hold a database password).
fn parse_file(path: &Path, text: &str) -> Result<FileSettings, ConfigError> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        ConfigError::Syntax {
            path: path.to_owned(),
            line: line_of(text, offset),
            column: column_of(text, offset),
            message: e.message().to_owned(),
        }
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        // The top-level key; deeper segments are `Spanned`'s own or an index into a list.
        let key = match e.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => key.clone(),
            _ => e.path().to_string(),
        };
        let inner = e.into_inner();
        let line = line_of(text, inner.span().map_or(0, |s| s.start));
        let message = inner.message();
        if message.starts_with("unknown field") {
            ConfigError::UnknownKey {
                path: path.to_owned(),
                line,
                key,
            }
        } else {
            ConfigError::Type {
                path: path.to_owned(),
                line,
                key,
                message: message.to_owned(),
            }
        }
    })
}

impl Config {
    /// Reads the config file and layers the overrides on it. `file` is the path given with
    /// `--config` or `FARO_CONFIG` and must exist; without one, `./faro.toml` is read if it
    /// exists.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let path = if let Some(path) = file {
            path.to_owned()
        } else {
            let default = PathBuf::from(DEFAULT_CONFIG_FILE);
            if !default.exists() {
                return Self::from_overrides(overrides);
            }
            default
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Self::from_toml(&path, &text, overrides)
    }

    /// The settings of a config file's text (read from `path`) with the overrides on top.
    pub fn from_toml(path: &Path, text: &str, overrides: Overrides) -> Result<Self, ConfigError> {
        let settings = parse_file(path, text)?;
        Self::resolve(Some((path, text)), settings, overrides)
    }

    /// Defaults with the overrides on top, no file.
    pub fn from_overrides(overrides: Overrides) -> Result<Self, ConfigError> {
        Self::resolve(None, FileSettings::default(), overrides)
    }

    /// Layers defaults < file < overrides, then validates every value.
    fn resolve(
        file: Option<(&Path, &str)>,
        s: FileSettings,
        o: Overrides,
    ) -> Result<Self, ConfigError> {
        let listen = o
            .listen
            .or_else(|| from_file(file, s.listen))
            .unwrap_or_else(|| Given::new(DEFAULT_LISTEN.to_owned(), Origin::Default));
        let database_url = o
            .database_url
            .or_else(|| from_file(file, s.database_url))
            .unwrap_or_else(|| Given::new(DEFAULT_DATABASE_URL.to_owned(), Origin::Default));
        let pool_size = o
            .pool_size
            .or_else(|| from_file(file, s.pool_size))
            .unwrap_or_else(|| {
                let n = i64::try_from(DEFAULT_POOL_SIZE).unwrap_or(i64::MAX);
                Given::new(n, Origin::Default)
            });
        let demo = o
            .demo
            .or_else(|| from_file(file, s.demo))
            .is_none_or(|d| d.value);
        let max_vertices = o
            .max_vertices
            .or_else(|| from_file(file, s.max_vertices))
            .unwrap_or_else(|| {
                let n = i64::try_from(crate::domain::DEFAULT_MAX_VERTICES).unwrap_or(i64::MAX);
                Given::new(n, Origin::Default)
            });
        let tile_cache_mb = o
            .tile_cache_mb
            .or_else(|| from_file(file, s.tile_cache_mb))
            .unwrap_or_else(|| {
                let n = i64::try_from(crate::tiles::cache::DEFAULT_CAPACITY_MB).unwrap_or(0);
                Given::new(n, Origin::Default)
            });
        let public_url = o.public_url.or_else(|| from_file(file, s.public_url));
        // An empty base map URL (`FARO_BASEMAP_URL=`) means none, even over the file's.
        let basemap_url = o
            .basemap_url
            .or_else(|| from_file(file, s.basemap_url))
            .filter(|u| !u.value.trim().is_empty())
            .map(|u| check_basemap_url(&u))
            .transpose()?;
        let rate_limit = o
            .rate_limit
            .or_else(|| from_file(file, s.rate_limit))
            .unwrap_or_else(|| Given::new(i64::from(DEFAULT_RATE_LIMIT), Origin::Default));
        let cors_origins = o.cors_origins.or_else(|| from_file(file, s.cors_origins));
        let cors_origins = match cors_origins {
            Some(c) => check_cors_origins(&c)?,
            None => Vec::new(),
        };
        let trusted_proxies = o
            .trusted_proxies
            .or_else(|| from_file(file, s.trusted_proxies));

        // An empty public URL (`FARO_PUBLIC_URL=`) means none, even over the file's.
        let public_url = match public_url.filter(|u| !u.value.trim().is_empty()) {
            Some(u) => Some(
                PublicUrl::parse(&u.value)
                    .map_err(|r| ConfigError::invalid(&u.origin, "public_url", r))?,
            ),
            None => None,
        };
        let trusted_proxies = match trusted_proxies {
            Some(t) => TrustedProxies::parse(&t.value)
                .map_err(|r| ConfigError::invalid(&t.origin, "trusted_proxies", r))?,
            None => TrustedProxies::default(),
        };
        Ok(Self {
            listen: check_listen(&listen)?,
            database_url: check_database_url(&database_url)?,
            demo,
            pool_size: check_pool_size(&pool_size)?,
            links: LinkConfig {
                public_url,
                trusted_proxies,
            },
            max_vertices: check_max_vertices(&max_vertices)?,
            tile_cache_mb: check_tile_cache_mb(&tile_cache_mb)?,
            basemap_url,
            rate_limit: check_rate_limit(&rate_limit)?,
            cors_origins,
            file: file.map(|(path, _)| path.to_owned()),
        })
    }
}

/// A base map URL: an http(s) raster tile template with `{z}`, `{x}` and `{y}`, and nothing that
/// could end a Content-Security-Policy source (white space, `;`, `,`, quotes).
/// Requests a second per client when no setting says otherwise (bursts of five times that).
pub const DEFAULT_RATE_LIMIT: u32 = 200;

fn check_rate_limit(rate: &Given<i64>) -> Result<u32, ConfigError> {
    u32::try_from(rate.value)
        .ok()
        .filter(|n| *n <= 1_000_000)
        .ok_or_else(|| {
            ConfigError::invalid(
                &rate.origin,
                "rate_limit",
                format!(
                    "must be 0 (no limit) to 1000000 requests a second, got {}",
                    rate.value
                ),
            )
        })
}

/// Origins as browsers send them: `scheme://host[:port]`, nothing after.
fn check_cors_origins(origins: &Given<Vec<String>>) -> Result<Vec<String>, ConfigError> {
    origins
        .value
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .map(|o| {
            let parsed = url::Url::parse(o).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.path() == "/"
                    && u.query().is_none()
                    && u.fragment().is_none()
                    && u.username().is_empty()
                    && !o.ends_with('/')
            });
            parsed.map(|_| o.to_owned()).ok_or_else(|| {
                ConfigError::invalid(
                    &origins.origin,
                    "cors_origins",
                    format!("`{o}` is not an origin such as https://map.example.org"),
                )
            })
        })
        .collect()
}

fn check_basemap_url(url: &Given<String>) -> Result<String, ConfigError> {
    let raw = url.value.trim();
    let invalid = |reason: String| ConfigError::invalid(&url.origin, "basemap_url", reason);
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
        .ok_or_else(|| invalid(format!("`{raw}` is not an http:// or https:// URL")))?;
    match rest.split('/').next() {
        None | Some("") => return Err(invalid(format!("`{raw}` has no host"))),
        Some(host) if host.contains('{') => {
            return Err(invalid(format!(
                "`{raw}`: the host may not be a template (the viewer's CSP names it)"
            )));
        }
        Some(_) => {}
    }
    if let Some(c) = raw.chars().find(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, ';' | ',' | '\'' | '"' | '<' | '>')
    }) {
        return Err(invalid(format!(
            "`{raw}` holds {c:?}, which a URL here may not"
        )));
    }
    for part in ["{z}", "{x}", "{y}"] {
        if !raw.contains(part) {
            return Err(invalid(format!(
                "`{raw}` has no `{part}`: give a raster tile template like https://tiles.example.org/{{z}}/{{x}}/{{y}}.png"
            )));
        }
    }
    Ok(raw.to_owned())
}

fn check_listen(listen: &Given<String>) -> Result<SocketAddr, ConfigError> {
    let raw = listen.value.trim();
    raw.parse().map_err(|_| {
        ConfigError::invalid(
            &listen.origin,
            "listen",
            format!("`{raw}` is not an ADDRESS:PORT (like 127.0.0.1:8080)"),
        )
    })
}

/// The largest vertex cap accepted: validation stays near-linear, but a geometry this large is
/// already some 400 MB of GeoJSON.
pub const MAX_MAX_VERTICES: usize = 10_000_000;

fn check_max_vertices(max: &Given<i64>) -> Result<usize, ConfigError> {
    usize::try_from(max.value)
        .ok()
        .filter(|n| (4..=MAX_MAX_VERTICES).contains(n))
        .ok_or_else(|| {
            ConfigError::invalid(
                &max.origin,
                "max_vertices",
                format!("must be 4 to {MAX_MAX_VERTICES}, got {}", max.value),
            )
        })
}

/// The largest tile cache accepted, in MiB.
pub const MAX_TILE_CACHE_MB: usize = 1 << 20;

fn check_tile_cache_mb(mb: &Given<i64>) -> Result<usize, ConfigError> {
    usize::try_from(mb.value)
        .ok()
        .filter(|n| *n <= MAX_TILE_CACHE_MB)
        .ok_or_else(|| {
            ConfigError::invalid(
                &mb.origin,
                "tile_cache_mb",
                format!(
                    "must be 0 (no cache) to {MAX_TILE_CACHE_MB}, got {}",
                    mb.value
                ),
            )
        })
}

fn check_pool_size(pool_size: &Given<i64>) -> Result<usize, ConfigError> {
    usize::try_from(pool_size.value)
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| {
            ConfigError::invalid(
                &pool_size.origin,
                "pool_size",
                format!("must be 1 to 1000, got {}", pool_size.value),
            )
        })
}

/// Checks the form of a database URL; the URL itself is never quoted back.
fn check_database_url(url: &Given<String>) -> Result<String, ConfigError> {
    const USE: &str = "use sqlite://PATH or postgres://USER@HOST:PORT/DB";
    let raw = url.value.trim();
    if raw.is_empty() {
        return Err(ConfigError::invalid(
            &url.origin,
            "database_url",
            format!("is empty; {USE}"),
        ));
    }
    if let Some((scheme, rest)) = raw.split_once("://") {
        if !matches!(scheme, "sqlite" | "postgres" | "postgresql") {
            let scheme: String = scheme.chars().take(20).collect();
            return Err(ConfigError::invalid(
                &url.origin,
                "database_url",
                format!("unsupported scheme `{scheme}`; {USE}"),
            ));
        }
        if rest.is_empty() {
            return Err(ConfigError::invalid(
                &url.origin,
                "database_url",
                format!("`{scheme}://` needs a path or host; {USE}"),
            ));
        }
    }
    Ok(raw.to_owned())
}

/// A database URL with any password replaced by `***`, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The authority ends at the first `/`, `?` or `#`; a password is the part of its userinfo
    // after the first `:`, and the userinfo ends at the authority's last `@`.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag<T>(value: T, name: &'static str) -> Given<T> {
        Given::new(value, Origin::Flag(name))
    }

    fn env<T>(value: T, name: &'static str) -> Given<T> {
        Given::new(value, Origin::Env(name))
    }

    fn toml(text: &str, overrides: Overrides) -> Result<Config, ConfigError> {
        Config::from_toml(Path::new("faro.toml"), text, overrides)
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://faro:s3cret@db:5432/faro"),
            "postgres://faro:***@db:5432/faro"
        );
        assert_eq!(redact_url("sqlite://faro.db"), "sqlite://faro.db");
        // An `@` inside the password does not leave part of it in the log.
        assert_eq!(
            redact_url("postgres://faro:p@ss@db/faro"),
            "postgres://faro:***@db/faro"
        );
        // An `@` after the authority is not userinfo.
        assert_eq!(
            redact_url("postgres://db/faro?x=a:b@c"),
            "postgres://db/faro?x=a:b@c"
        );
    }

    #[test]
    fn defaults_apply_without_file_or_overrides() {
        let c = Config::from_overrides(Overrides::default()).unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN.parse::<SocketAddr>().unwrap());
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.pool_size, DEFAULT_POOL_SIZE);
        assert!(c.demo);
        assert_eq!(c.links, LinkConfig::default());
        assert_eq!(c.tile_cache_mb, crate::tiles::cache::DEFAULT_CAPACITY_MB);
        assert_eq!(c.rate_limit, DEFAULT_RATE_LIMIT);
        assert!(c.cors_origins.is_empty(), "no CORS by default");
        assert_eq!(c.file, None);
    }

    #[test]
    fn the_file_beats_defaults_and_the_environment_and_flags_beat_the_file() {
        let text = r#"
listen = "127.0.0.2:0"
database_url = "sqlite://from-file.db"
pool_size = 4
demo = false
public_url = "https://file.example/faro/"
trusted_proxies = ["10.0.0.0/8", "::1"]
tile_cache_mb = 64
"#;
        let c = toml(text, Overrides::default()).unwrap();
        assert_eq!(c.tile_cache_mb, 64);
        assert_eq!(c.listen, "127.0.0.2:0".parse::<SocketAddr>().unwrap());
        assert_eq!(c.database_url, "sqlite://from-file.db");
        assert_eq!(c.pool_size, 4);
        assert!(!c.demo);
        assert_eq!(
            c.links.public_url.as_ref().map(PublicUrl::as_str),
            Some("https://file.example/faro")
        );
        assert!(
            c.links
                .trusted_proxies
                .contains("10.1.2.3".parse().unwrap())
        );
        assert!(c.links.trusted_proxies.contains("::1".parse().unwrap()));
        assert_eq!(c.file.as_deref(), Some(Path::new("faro.toml")));

        // Whatever clap reports (environment or flag) beats every file key.
        let o = Overrides {
            listen: Some(env("127.0.0.3:0".to_owned(), "FARO_LISTEN")),
            database_url: Some(flag("sqlite://flag.db".to_owned(), "--database-url")),
            pool_size: Some(env(9, "FARO_POOL_SIZE")),
            demo: Some(flag(true, "--no-demo")),
            public_url: Some(flag("http://flag.example".to_owned(), "--public-url")),
            trusted_proxies: Some(env(vec!["192.0.2.1".to_owned()], "FARO_TRUSTED_PROXIES")),
            max_vertices: Some(flag(5000, "--max-vertices")),
            tile_cache_mb: Some(env(0, "FARO_TILE_CACHE_MB")),
            rate_limit: Some(flag(0, "--rate-limit")),
            cors_origins: Some(env(
                vec!["https://map.example.org".to_owned()],
                "FARO_CORS_ORIGINS",
            )),
            basemap_url: None,
        };
        let c = toml(text, o).unwrap();
        assert_eq!(c.max_vertices, 5000);
        assert_eq!(c.tile_cache_mb, 0, "0 turns the cache off");
        assert_eq!(c.rate_limit, 0, "0 turns the rate limit off");
        assert_eq!(c.cors_origins, ["https://map.example.org"]);
        assert_eq!(c.listen, "127.0.0.3:0".parse::<SocketAddr>().unwrap());
        assert_eq!(c.database_url, "sqlite://flag.db");
        assert_eq!(c.pool_size, 9);
        assert!(c.demo);
        assert_eq!(
            c.links.public_url.as_ref().map(PublicUrl::as_str),
            Some("http://flag.example")
        );
        // The override replaces the file's list; it does not extend it.
        assert!(
            !c.links
                .trusted_proxies
                .contains("10.1.2.3".parse().unwrap())
        );
        assert!(
            c.links
                .trusted_proxies
                .contains("192.0.2.1".parse().unwrap())
        );
    }

    #[test]
    fn a_bad_file_value_names_the_file_line_and_key() {
        let e = toml("\nlisten = \"localhost\"\n", Overrides::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "faro.toml:2: key `listen`: `localhost` is not an ADDRESS:PORT (like 127.0.0.1:8080)"
        );
        let e = toml("pool_size = 0", Overrides::default())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "faro.toml:1: key `pool_size`: must be 1 to 1000, got 0");
        let e = toml("pool_size = -3", Overrides::default())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "faro.toml:1: key `pool_size`: must be 1 to 1000, got -3");
        let e = toml("trusted_proxies = [\"10.0.0.1/8\"]", Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("faro.toml:1: key `trusted_proxies`: `10.0.0.1/8` has host bits set"),
            "{e}"
        );
        let e = toml("public_url = \"ftp://x.example\"", Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("faro.toml:1: key `public_url`: "), "{e}");
    }

    #[test]
    fn a_bad_override_names_the_variable_or_flag() {
        let o = Overrides {
            listen: Some(env("x".to_owned(), "FARO_LISTEN")),
            ..Overrides::default()
        };
        let e = Config::from_overrides(o).unwrap_err().to_string();
        assert_eq!(
            e,
            "environment variable FARO_LISTEN: `x` is not an ADDRESS:PORT (like 127.0.0.1:8080)"
        );
        let o = Overrides {
            pool_size: Some(flag(0, "--pool-size")),
            ..Overrides::default()
        };
        let e = Config::from_overrides(o).unwrap_err().to_string();
        assert_eq!(e, "--pool-size: must be 1 to 1000, got 0");
    }

    #[test]
    fn unknown_keys_wrong_types_and_syntax_errors_name_key_and_line() {
        let e = toml(
            "listen = \"127.0.0.1:0\"\nlisen = \"x\"\n",
            Overrides::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&e, ConfigError::UnknownKey { line: 2, key, .. } if key == "lisen"),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("faro.toml:2: unknown key `lisen`")
        );
        // A table is a key like any other.
        let e = toml("[limits]\nmax = 3\n", Overrides::default()).unwrap_err();
        assert!(
            matches!(&e, ConfigError::UnknownKey { key, .. } if key == "limits"),
            "{e:?}"
        );
        let e = toml("demo = true\npool_size = \"many\"\n", Overrides::default()).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Type { line: 2, key, .. } if key == "pool_size"),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with("faro.toml:2: key `pool_size`: "),
            "{e}"
        );
        let e = toml("trusted_proxies = [\"10.0.0.1\", 2]", Overrides::default()).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Type { key, .. } if key == "trusted_proxies"),
            "{e:?}"
        );
        let e = toml(
            "demo = true\n\nlisten = \"127.0.0.1:0\n",
            Overrides::default(),
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { line: 3, .. }), "{e:?}");
    }

    #[test]
    fn no_error_quotes_a_database_password() {
        for text in [
            "database_url = \"postgres://faro:hunter2@db/faro\n",
            "database_url = \"mysql://faro:hunter2@db/faro\"\n",
            "database_url = \"postgres://faro:hunter2@db/faro\"\npool_size = 0\n",
            "database_url = \"postgres://faro:hunter2@db/faro\" x\n",
        ] {
            let e = toml(text, Overrides::default()).unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        let e = toml("database_url = \"  \"", Overrides::default()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("faro.toml:1: key `database_url`: is empty")
        );
    }

    #[test]
    fn public_urls_are_validated_and_normalised() {
        let ok = |s: &str| PublicUrl::parse(s).map(|u| u.as_str().to_owned());
        assert_eq!(
            ok("https://faro.example.org/base/").as_deref(),
            Ok("https://faro.example.org/base")
        );
        assert_eq!(
            ok(" https://Faro.Example.org ").as_deref(),
            Ok("https://faro.example.org")
        );
        assert_eq!(ok("http://[::1]:8080/").as_deref(), Ok("http://[::1]:8080"));
        assert!(ok("faro.example.org").is_err());
        assert!(ok("ftp://faro.example.org").is_err());
        assert!(ok("https://faro.example.org/?a=1").is_err());
        assert!(ok("https://faro.example.org/?").is_err());
        assert!(ok("https://faro.example.org/#top").is_err());
        let e = ok("https://u:hunter2@faro.example.org").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn trusted_proxies_match_addresses_and_blocks_of_both_families() {
        let t =
            TrustedProxies::parse(&["192.0.2.7", " 10.0.0.0/8 ", "", "fd00::/8", "::1"]).unwrap();
        assert_eq!(t.len(), 4);
        for yes in [
            "192.0.2.7",
            "10.255.0.1",
            "fd12::1",
            "::1",
            "::ffff:10.0.0.9",
        ] {
            assert!(t.contains(yes.parse().unwrap()), "{yes}");
        }
        for no in ["192.0.2.8", "11.0.0.1", "fe80::1", "::2", "127.0.0.1"] {
            assert!(!t.contains(no.parse().unwrap()), "{no}");
        }
        assert!(TrustedProxies::parse(&["localhost"]).is_err());
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(&["fd00::1/8"]).is_err());
        assert!(TrustedProxies::default().is_empty());
    }

    #[test]
    fn a_basemap_url_is_off_by_default_and_checked() {
        let c = toml("", Overrides::default()).unwrap();
        assert_eq!(c.basemap_url, None);
        let c = toml(
            "basemap_url = \"https://tiles.example.org/osm/{z}/{x}/{y}.png\"",
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            c.basemap_url.as_deref(),
            Some("https://tiles.example.org/osm/{z}/{x}/{y}.png")
        );
        // The flag beats the file; an empty value turns the base map off.
        let o = Overrides {
            basemap_url: Some(flag(String::new(), "--basemap-url")),
            ..Overrides::default()
        };
        let c = toml("basemap_url = \"https://a.example/{z}/{x}/{y}.png\"", o).unwrap();
        assert_eq!(c.basemap_url, None);
        for (bad, why) in [
            ("ftp://a.example/{z}/{x}/{y}.png", "not an http"),
            ("https://a.example/tiles.png", "has no `{z}`"),
            (
                "https://{s}.a.example/{z}/{x}/{y}.png",
                "may not be a template",
            ),
            ("https://a.example/{z}/{x}/{y}.png; script-src *", "holds"),
        ] {
            let o = Overrides {
                basemap_url: Some(flag(bad.to_owned(), "--basemap-url")),
                ..Overrides::default()
            };
            let e = toml("", o).unwrap_err().to_string();
            assert!(e.starts_with("--basemap-url: "), "{e}");
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
