//! The `faro` command line: serve | import | export | report | token | migrate.
//!
//! Settings come from defaults < config file < environment < flags. clap reads the environment
//! and the flags and says, through [`ArgMatches::value_source`], which of the two gave a value;
//! [`crate::config`] reads the file and layers the rest on it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{
    Config, DEFAULT_DATABASE_URL, DEFAULT_LISTEN, DEFAULT_POOL_SIZE, Given, Origin, Overrides,
    redact_url,
};
use crate::domain::{Collection, Role};
use crate::startup::Application;
use crate::storage;
use crate::tokens;

/// The parsed command line, with clap's matches kept so that a value from a flag or the
/// environment (which beats the config file) can be told from a default (which does not).
#[derive(Debug)]
pub struct Cli {
    args: CliArgs,
    matches: ArgMatches,
}

impl CommandFactory for Cli {
    fn command() -> clap::Command {
        CliArgs::command()
    }

    fn command_for_update() -> clap::Command {
        CliArgs::command_for_update()
    }
}

impl FromArgMatches for Cli {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self {
            args: CliArgs::from_arg_matches(matches)?,
            matches: matches.clone(),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.args.update_from_arg_matches(matches)?;
        self.matches = matches.clone();
        Ok(())
    }
}

impl Parser for Cli {}

#[derive(Debug, Parser)]
#[command(
    name = "faro",
    version,
    about = "Service map of the territorial network against labour exploitation"
)]
struct CliArgs {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Args, Clone)]
struct DatabaseArgs {
    /// A TOML file of settings (keys `listen`, `database_url`, `pool_size`, `demo`,
    /// `public_url`, `trusted_proxies`, `max_vertices`, `tile_cache_mb`, `basemap_url`, `rate_limit`, `cors_origins`); without it, `./faro.toml` is read if it exists.
    #[arg(long, env = ENV_CONFIG, value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    /// `sqlite://PATH` (embedded, the default) or `postgres://USER@HOST:PORT/DB`
    #[arg(long, env = ENV_DATABASE_URL, default_value = DEFAULT_DATABASE_URL, global = true)]
    database_url: String,
    /// Connections in the PostgreSQL pool.
    #[arg(long, env = ENV_POOL_SIZE, default_value_t = DEFAULT_POOL_SIZE, global = true)]
    pool_size: usize,
}

#[derive(Debug, Args, Clone)]
struct ServeArgs {
    /// Address and port to listen on; port 0 picks a free one.
    #[arg(long, env = ENV_LISTEN, default_value = DEFAULT_LISTEN)]
    listen: String,
    /// Start with an empty store instead of loading the demo data (the variable takes
    /// true/false).
    #[arg(long, env = ENV_NO_DEMO, value_parser = clap::builder::BoolishValueParser::new())]
    no_demo: bool,
    /// The URL faro is reached at from outside (like `https://faro.example.org/base`); every
    /// absolute link starts with it, whatever the request says (empty: none).
    #[arg(long, env = ENV_PUBLIC_URL, value_name = "URL")]
    public_url: Option<String>,
    /// A reverse proxy (IP address or CIDR block) whose Forwarded / X-Forwarded-Host /
    /// X-Forwarded-Proto headers are believed; repeatable (the variable takes a comma list).
    #[arg(
        long = "trusted-proxy",
        env = ENV_TRUSTED_PROXIES,
        value_name = "ADDR",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,
    /// Positions a written geometry may have at most; more is refused with 413 before any
    /// validation work.
    #[arg(long, env = ENV_MAX_VERTICES, default_value_t = crate::domain::DEFAULT_MAX_VERTICES)]
    max_vertices: usize,
    /// Memory for encoded tiles, in MiB (least recently used out first; 0: no cache).
    #[arg(long, env = ENV_TILE_CACHE_MB, default_value_t = crate::tiles::cache::DEFAULT_CAPACITY_MB)]
    tile_cache_mb: usize,
    /// A raster tile URL template (`https://host/{z}/{x}/{y}.png`) the map viewer draws under
    /// faro's layers; its host is then allowed by the viewer's CSP (default and empty: none).
    #[arg(long, env = ENV_BASEMAP_URL, value_name = "URL")]
    basemap_url: Option<String>,
    /// Requests a second per client (a bearer token, or an address), in bursts of five times
    /// that; over it, 429 with Retry-After. 0: no limit.
    #[arg(long, env = ENV_RATE_LIMIT, default_value_t = crate::config::DEFAULT_RATE_LIMIT)]
    rate_limit: u32,
    /// An origin (`https://map.example.org`) whose pages may read faro's answers (CORS);
    /// repeatable (the variable takes a comma list). None by default.
    #[arg(long = "cors-origin", env = ENV_CORS_ORIGINS, value_name = "ORIGIN", value_delimiter = ',')]
    cors_origins: Vec<String>,
    #[command(flatten)]
    db: DatabaseArgs,
}

const ENV_CONFIG: &str = "FARO_CONFIG";
const ENV_DATABASE_URL: &str = "DATABASE_URL";
const ENV_POOL_SIZE: &str = "FARO_POOL_SIZE";
const ENV_LISTEN: &str = "FARO_LISTEN";
const ENV_NO_DEMO: &str = "FARO_NO_DEMO";
const ENV_PUBLIC_URL: &str = "FARO_PUBLIC_URL";
const ENV_TRUSTED_PROXIES: &str = "FARO_TRUSTED_PROXIES";
const ENV_MAX_VERTICES: &str = "FARO_MAX_VERTICES";
const ENV_TILE_CACHE_MB: &str = "FARO_TILE_CACHE_MB";
const ENV_RATE_LIMIT: &str = "FARO_RATE_LIMIT";
const ENV_CORS_ORIGINS: &str = "FARO_CORS_ORIGINS";
const ENV_BASEMAP_URL: &str = "FARO_BASEMAP_URL";

/// A value clap found on the command line or in the environment, with where; `None` for a
/// default or an absent value (the config file may then give one).
fn given<T>(
    matches: &ArgMatches,
    id: &str,
    value: T,
    flag: &'static str,
    env: &'static str,
) -> Option<Given<T>> {
    match matches.value_source(id) {
        Some(ValueSource::CommandLine) => Some(Given::new(value, Origin::Flag(flag))),
        Some(ValueSource::EnvVariable) => Some(Given::new(value, Origin::Env(env))),
        _ => None,
    }
}

impl DatabaseArgs {
    fn overrides(&self, matches: &ArgMatches) -> Overrides {
        Overrides {
            database_url: given(
                matches,
                "database_url",
                self.database_url.clone(),
                "--database-url",
                ENV_DATABASE_URL,
            ),
            pool_size: given(
                matches,
                "pool_size",
                i64::try_from(self.pool_size).unwrap_or(i64::MAX),
                "--pool-size",
                ENV_POOL_SIZE,
            ),
            ..Overrides::default()
        }
    }

    /// The store settings of import, token and migrate: the same layers as serve.
    fn config(&self, matches: &ArgMatches) -> Result<Config, crate::config::ConfigError> {
        Config::load(self.config.as_deref(), self.overrides(matches))
    }
}

impl ServeArgs {
    fn overrides(&self, matches: &ArgMatches) -> Overrides {
        Overrides {
            listen: given(
                matches,
                "listen",
                self.listen.clone(),
                "--listen",
                ENV_LISTEN,
            ),
            demo: given(matches, "no_demo", !self.no_demo, "--no-demo", ENV_NO_DEMO),
            public_url: self.public_url.as_ref().and_then(|u| {
                given(
                    matches,
                    "public_url",
                    u.clone(),
                    "--public-url",
                    ENV_PUBLIC_URL,
                )
            }),
            trusted_proxies: given(
                matches,
                "trusted_proxies",
                self.trusted_proxies.clone(),
                "--trusted-proxy",
                ENV_TRUSTED_PROXIES,
            ),
            max_vertices: given(
                matches,
                "max_vertices",
                i64::try_from(self.max_vertices).unwrap_or(i64::MAX),
                "--max-vertices",
                ENV_MAX_VERTICES,
            ),
            tile_cache_mb: given(
                matches,
                "tile_cache_mb",
                i64::try_from(self.tile_cache_mb).unwrap_or(i64::MAX),
                "--tile-cache-mb",
                ENV_TILE_CACHE_MB,
            ),
            basemap_url: self.basemap_url.as_ref().and_then(|u| {
                given(
                    matches,
                    "basemap_url",
                    u.clone(),
                    "--basemap-url",
                    ENV_BASEMAP_URL,
                )
            }),
            rate_limit: given(
                matches,
                "rate_limit",
                i64::from(self.rate_limit),
                "--rate-limit",
                ENV_RATE_LIMIT,
            ),
            cors_origins: given(
                matches,
                "cors_origins",
                self.cors_origins.clone(),
                "--cors-origin",
                ENV_CORS_ORIGINS,
            ),
            ..self.db.overrides(matches)
        }
    }

    fn config(&self, matches: &ArgMatches) -> Result<Config, crate::config::ConfigError> {
        Config::load(self.db.config.as_deref(), self.overrides(matches))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default when no command is given).
    Serve(ServeArgs),
    /// Import a file into a collection: GeoJSON, CSV, Shapefile (plain or zipped), GeoPackage,
    /// or HSDS 3.0 JSON for services. Every record is validated as the API does; all or nothing. Re-importing
    /// updates records by their id instead of duplicating them.
    Import {
        /// services, settlements, worksites or territories
        collection: String,
        /// The file: .geojson/.json, .csv/.tsv/.txt, .shp or .zip (a zipped Shapefile), .gpkg
        file: PathBuf,
        #[command(flatten)]
        read: ImportArgs,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Export what a token may see of a collection as GeoJSON, CSV, GeoPackage or `FlatGeobuf`.
    Export {
        /// services, settlements, worksites or territories
        collection: String,
        /// geojson, csv, gpkg or fgb
        #[arg(long)]
        format: String,
        /// Only records that intersect this territory (its id).
        #[arg(long)]
        territory: Option<String>,
        /// A bearer token: the export holds what its holder may see (without one, what an
        /// anonymous caller sees).
        #[arg(long, env = "FARO_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Where to write (standard output when absent, except for gpkg).
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The coverage analysis as files for a territorial analysis document: the table per
    /// territory (CSV), the layers (GeoPackage and GeoJSON) and one printable HTML page.
    Report(ReportArgs),
    /// Territories as dissolved unions of comuni.
    Territories {
        #[command(subcommand)]
        action: TerritoriesAction,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Bearer tokens: create, list, revoke.
    Token {
        #[command(subcommand)]
        action: TokenAction,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The audit log: who changed what, when, before and after.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Apply the database schema (also done at every start).
    Migrate {
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// What `faro report` is asked for.
#[derive(Debug, Args, Clone)]
struct ReportArgs {
    /// Comma list of the service kinds that cover (`focal_point,pas`).
    #[arg(long, value_name = "KINDS")]
    kind: String,
    /// Catchment radius, metres on the WGS84 ellipsoid, 1 to 100000.
    #[arg(long, value_name = "METRES", allow_negative_numbers = true)]
    radius_m: f64,
    /// 1-12: only settlements inhabited and worksites at peak in that month.
    #[arg(long, allow_negative_numbers = true)]
    month: Option<i64>,
    /// `now` or an RFC 3339 time: only services open then (Europe/Rome time) cover.
    #[arg(long, value_name = "TIME")]
    open_at: Option<String>,
    /// One territory id (default: every territory of level `territory`).
    #[arg(long, value_name = "ID")]
    territory: Option<String>,
    /// Assign people to the beds of the services within reach (vacancy, else capacity).
    #[arg(long)]
    capacity: bool,
    /// H3 resolution of the hexagons and of the candidate sites, 5 to 9.
    #[arg(long, default_value_t = 7, allow_negative_numbers = true)]
    resolution: i64,
    /// Suggested new sites at most, 1 to 20.
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    k: i64,
    /// A bearer token (operator or admin): the report holds what its holder may see; without
    /// one, what an anonymous reader sees (no settlement, worksite or confidential service).
    #[arg(long, env = "FARO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The directory to write into (created if missing; files of an earlier report there are
    /// replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    db: DatabaseArgs,
}

impl ReportArgs {
    /// The flags checked, each error naming its flag.
    fn options(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<crate::report::Options> {
        use crate::analysis::coverage::{self as coverage, CoverageQuery};
        let mut kinds = self
            .kind
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::parse::<crate::domain::ServiceKind>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
        if kinds.is_empty() {
            bail!("--kind: name at least one service kind");
        }
        kinds.sort_unstable_by_key(|k| k.as_str());
        kinds.dedup();
        let radius_m = self.radius_m;
        if !(coverage::MIN_RADIUS_M..=coverage::MAX_RADIUS_M).contains(&radius_m) {
            bail!(
                "--radius-m: {radius_m} is out of range; expected {} to {} metres",
                coverage::MIN_RADIUS_M,
                coverage::MAX_RADIUS_M
            );
        }
        let month = self
            .month
            .map(crate::domain::Month::new)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--month: {e}"))?;
        let open_at = self
            .open_at
            .as_deref()
            .map(|t| coverage::parse_open_at(t, now))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--open-at: {e}"))?;
        let territory = self
            .territory
            .as_deref()
            .map(|t| crate::domain::RecordId::parse(t.trim()))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--territory: {}", e.reason))?;
        let resolution = u8::try_from(self.resolution)
            .ok()
            .filter(|r| (5..=9).contains(r))
            .and_then(|r| h3o::Resolution::try_from(r).ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--resolution: {} is out of range; expected 5 to 9",
                    self.resolution
                )
            })?;
        let max_k = coverage::MAX_SUGGESTIONS;
        let k = usize::try_from(self.k)
            .ok()
            .filter(|k| (1..=max_k).contains(k))
            .ok_or_else(|| {
                anyhow::anyhow!("--k: {} is out of range; expected 1 to {max_k}", self.k)
            })?;
        Ok(crate::report::Options {
            query: CoverageQuery {
                kinds,
                radius_m,
                territory,
                month,
                open_at,
                capacity: self.capacity,
            },
            resolution,
            k,
        })
    }
}

/// How `faro import` reads its file.
#[derive(Debug, Args, Clone)]
struct ImportArgs {
    /// geojson, csv, shp, gpkg or hsds (HSDS 3.0 JSON, services only; default: from the file
    /// name)
    #[arg(long)]
    format: Option<String>,
    /// FIELD=COLUMN: faro's field from the file's column (repeatable; `A|B` takes the first
    /// column a record has); also lon=, lat=, wkt= for the coordinate columns of a CSV. With a
    /// mapping, the file's other columns are ignored (and named).
    #[arg(long = "map", value_name = "FIELD=COLUMN")]
    map: Vec<String>,
    /// FIELD=VALUE: a field set to one value on every record (repeatable), such as
    /// `--set level=comune`.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    set: Vec<String>,
    /// The column holding each record's external id (its id in faro); default: the GeoJSON
    /// Feature id, or a column named `id`.
    #[arg(long, value_name = "COLUMN")]
    id_field: Option<String>,
    /// The file's coordinate system, as EPSG:CODE (overrides a .prj or a GeoPackage's own;
    /// default for CSV and GeoJSON: WGS84).
    #[arg(long, value_name = "EPSG:CODE")]
    crs: Option<String>,
    /// CSV delimiter: `,`, `;` or `tab` (default: detected).
    #[arg(long)]
    delimiter: Option<String>,
    /// CSV decimal separator: `comma` or `point` (default: a comma is accepted where a cell has
    /// no point).
    #[arg(long)]
    decimal: Option<String>,
    /// Text encoding of a CSV or DBF: utf-8 or windows-1252 (default: detected; the .cpg or
    /// DBF code page for a Shapefile).
    #[arg(long)]
    encoding: Option<String>,
    /// The feature table of a GeoPackage, or the Shapefile in a zip, when there are several.
    #[arg(long)]
    layer: Option<String>,
    /// Validate and say what would change, without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// Write every problem found to this CSV file (record, id, field, reason).
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    /// Accept positions that are in Italy only with latitude and longitude swapped.
    #[arg(long)]
    no_swap_check: bool,
}

impl ImportArgs {
    fn options(&self, max_vertices: usize) -> anyhow::Result<crate::io::ReadOptions> {
        use crate::io::{Crs, Encoding, Format, ReadOptions};
        let pair = |flag: &str, text: &str| -> anyhow::Result<(String, String)> {
            match text.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
                _ => bail!("--{flag} {text}: expected FIELD=VALUE"),
            }
        };
        let mut map = std::collections::HashMap::new();
        for m in &self.map {
            let (field, column) = pair("map", m)?;
            map.insert(field, column);
        }
        let set = self
            .set
            .iter()
            .map(|s| pair("set", s))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let format = self
            .format
            .as_deref()
            .map(str::parse::<Format>)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
        let crs = self
            .crs
            .as_deref()
            .map(Crs::parse)
            .transpose()
            .context("--crs")?;
        let delimiter = match self.delimiter.as_deref() {
            None => None,
            Some("," | "comma") => Some(b','),
            Some(";" | "semicolon") => Some(b';'),
            Some("tab" | "\\t" | "\t") => Some(b'\t'),
            Some(other) => bail!("--delimiter {other}: expected `,`, `;` or `tab`"),
        };
        let decimal_comma = match self.decimal.as_deref() {
            None => None,
            Some("comma" | ",") => Some(true),
            Some("point" | "dot" | ".") => Some(false),
            Some(other) => bail!("--decimal {other}: expected `comma` or `point`"),
        };
        let encoding = self
            .encoding
            .as_deref()
            .map(str::parse::<Encoding>)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--encoding: {e}"))?;
        Ok(ReadOptions {
            format,
            map,
            set,
            id_field: self.id_field.clone(),
            crs,
            csv: crate::io::CsvOptions {
                delimiter,
                decimal_comma,
            },
            encoding,
            layer: self.layer.clone(),
            max_vertices,
            no_swap_check: self.no_swap_check,
        })
    }
}

#[derive(Debug, Subcommand)]
enum TerritoriesAction {
    /// Store each territory of a groups CSV as the dissolved union of its comuni, and the
    /// province as their union; re-running updates them.
    Define {
        /// The comuni: any file `faro import` reads (the ISTAT boundaries, a zipped Shapefile);
        /// repeat it for several files (one per province), each comune in one of them.
        #[arg(long, required = true)]
        comuni: Vec<PathBuf>,
        /// The comune code column (default: the first of `PRO_COM_T`, `PRO_COM`, `com_istat_code`).
        #[arg(long)]
        code_field: Option<String>,
        /// A CSV with the columns `code` (ISTAT comune code) and `territory` (its name), and
        /// optionally `id` (the territory's id; default: from its name).
        #[arg(long)]
        groups: PathBuf,
        /// ISTAT's population CSV (a comune code column and a total), for each territory's
        /// population.
        #[arg(long)]
        population: Option<PathBuf>,
        /// The province's id (default `prov`), for groups of one province. Groups of several
        /// provinces name each row's province in a `province` column instead (and optionally
        /// `province_id`, `province_code`).
        #[arg(long)]
        province_id: Option<String>,
        /// The province's name (default `Provincia`).
        #[arg(long)]
        province_name: Option<String>,
        /// The province's ISTAT code.
        #[arg(long)]
        province_code: Option<String>,
        /// The comuni file's coordinate system, as EPSG:CODE.
        #[arg(long, value_name = "EPSG:CODE")]
        crs: Option<String>,
        /// The layer of a GeoPackage, or the Shapefile in a zip, when there are several.
        #[arg(long)]
        layer: Option<String>,
        /// Validate and say what would change, without writing anything.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Create a token and print its secret once.
    Create {
        /// operator (reads), editor (reads and writes), admin (everything, tokens included)
        #[arg(long)]
        role: String,
        /// Who holds it, for the audit log.
        #[arg(long)]
        name: String,
        /// A territory id the token is confined to (repeat for several); none: the whole
        /// network. Outside its territories a token sees what an anonymous caller sees.
        #[arg(long = "territory", value_name = "ID")]
        territories: Vec<String>,
        /// When it stops working: a duration (90d, 12h, 2w), a date (2027-03-31, through that
        /// day in Europe/Rome) or an RFC 3339 time; none: it does not expire.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Write the audit log (newest first) as CSV: seq, at, actor, action, collection, id,
    /// before and after (the records as GeoJSON text).
    Export {
        /// csv (the only format so far)
        #[arg(long, default_value = "csv")]
        format: String,
        /// Only this collection.
        #[arg(long)]
        collection: Option<String>,
        /// Only this record.
        #[arg(long)]
        id: Option<String>,
        /// Only entries whose actor contains this text.
        #[arg(long)]
        actor: Option<String>,
        /// Only entries at or after this time (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Only entries before this time (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli { args, matches } = cli;
    // The arguments of a subcommand are in its own matches (global ones are copied there,
    // with their source).
    let sub = matches.subcommand().map_or(&matches, |(_, m)| m);
    match args.command {
        None => serve(&args.serve, &matches).await,
        Some(Command::Serve(serve_args)) => serve(&serve_args, sub).await,
        Some(Command::Import {
            collection,
            file,
            read,
            db,
        }) => import(&collection, &file, &read, &db.config(sub)?).await,
        Some(Command::Export {
            collection,
            format,
            territory,
            token,
            output,
            db,
        }) => {
            let request = ExportRequest {
                collection,
                format,
                territory,
                token,
                output,
            };
            export(request, &db.config(sub)?).await
        }
        Some(Command::Report(report_args)) => {
            let config = report_args.db.config(sub)?;
            report(&report_args, &config).await
        }
        Some(Command::Territories { action, db }) => territories(action, &db.config(sub)?).await,
        Some(Command::Token { action, db }) => token(action, &db.config(sub)?).await,
        Some(Command::Audit { action, db }) => audit(action, &db.config(sub)?).await,
        Some(Command::Migrate { db }) => migrate(&db.config(sub)?).await,
    }
}

async fn audit(action: AuditAction, config: &Config) -> anyhow::Result<()> {
    let AuditAction::Export {
        format,
        collection,
        id,
        actor,
        from,
        to,
        out,
    } = action;
    anyhow::ensure!(
        format == "csv",
        "--format: `{format}` is not supported; use csv"
    );
    let time =
        |name: &str, v: Option<String>| -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
            v.map(|v| {
                chrono::DateTime::parse_from_rfc3339(&v)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|e| anyhow::anyhow!("--{name}: `{v}` is not an RFC 3339 time: {e}"))
            })
            .transpose()
        };
    let collection = collection
        .map(|c| c.parse::<crate::domain::Collection>())
        .transpose()
        .map_err(|e| anyhow::anyhow!("--collection: {e}"))?;
    let mut query = storage::AuditQuery {
        collection,
        record_id: id,
        actor,
        from: time("from", from)?,
        to: time("to", to)?,
        before_seq: None,
        limit: 1000,
    };
    let store = open_store(config).await?;
    let sink: Box<dyn std::io::Write> = match &out {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .map_err(|e| anyhow::anyhow!("--out {}: {e}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut writer = csv::Writer::from_writer(sink);
    writer.write_record([
        "seq",
        "at",
        "actor",
        "action",
        "collection",
        "id",
        "before",
        "after",
    ])?;
    let mut written = 0usize;
    loop {
        let page = store.audit(&query).await?;
        for e in &page {
            let json = |v: &Option<serde_json::Value>| {
                v.as_ref().map(ToString::to_string).unwrap_or_default()
            };
            writer.write_record([
                e.seq.to_string(),
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                e.actor.clone(),
                e.action.clone(),
                e.collection.as_str().to_owned(),
                e.record_id.clone(),
                json(&e.before),
                json(&e.after),
            ])?;
        }
        written += page.len();
        match page.last() {
            Some(last) if page.len() == query.limit as usize => query.before_seq = Some(last.seq),
            _ => break,
        }
    }
    writer.flush()?;
    if out.is_some() {
        eprintln!("wrote {written} audit entries");
    }
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let url = &config.database_url;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let applied = storage::postgres::PostgresStore::migrate(url)
            .await
            .with_context(|| format!("migrating {}", redact_url(url)))?;
        if applied.is_empty() {
            println!("schema of {} is up to date", redact_url(url));
        } else {
            println!("applied migrations {applied:?} to {}", redact_url(url));
        }
    } else {
        let store = open_store(config).await?;
        println!(
            "schema of the {} store at {} is up to date",
            store.backend(),
            redact_url(url)
        );
    }
    Ok(())
}

async fn open_store(config: &Config) -> anyhow::Result<std::sync::Arc<dyn storage::Store>> {
    storage::open(&config.database_url, config.pool_size)
        .await
        .with_context(|| format!("opening {}", redact_url(&config.database_url)))
}

async fn serve(args: &ServeArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let config = args.config(matches)?;
    if let Some(file) = &config.file {
        tracing::info!(file = %file.display(), "read the configuration file");
    }
    let links = &config.links;
    tracing::info!(
        public_url = links.public_url.as_ref().map(ToString::to_string),
        trusted_proxies = links.trusted_proxies.len(),
        "absolute links from {}",
        if links.public_url.is_some() {
            "the public URL"
        } else if links.trusted_proxies.is_empty() {
            "the Host header (forwarded headers are ignored)"
        } else {
            "the Host header, or forwarded headers from trusted proxies"
        }
    );
    let app = Application::build(&config).await?;
    app.run_until_stopped().await?;
    Ok(())
}

/// A progress bar over `len` units that draws only on a terminal.
fn progress_bar(style: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let bar = indicatif::ProgressBar::new(0);
    if std::io::stderr().is_terminal() {
        if let Ok(style) = indicatif::ProgressStyle::with_template(style) {
            bar.set_style(style);
        }
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

async fn import(
    collection: &str,
    file: &Path,
    args: &ImportArgs,
    config: &Config,
) -> anyhow::Result<()> {
    let collection: Collection = collection.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let options = args.options(config.max_vertices)?;
    let bar = progress_bar(
        "{spinner} reading {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
    );
    bar.set_message(file.display().to_string());
    let path = file.to_owned();
    let reading = bar.clone();
    // Read, validate, compare and write as a stream: the reader hands on chunks of validated
    // records while this task compares each with the store and writes it inside one
    // transaction, so that a million records are never held at once. A problem anywhere in
    // the file, or any failure, drops the transaction uncommitted: nothing is written.
    let (sink, mut chunks) = tokio::sync::mpsc::channel(2);
    let reader = tokio::task::spawn_blocking(move || {
        crate::io::prepare_streamed(&path, collection, options, &reading, sink)
    });
    let outcome = Outcome {
        collection,
        file,
        dry_run: args.dry_run,
        report_path: args.report.as_deref(),
    };
    let actor = outcome.actor();
    let mut plan = crate::io::Plan::default();
    let mut failed: Option<anyhow::Error> = None;
    // Opened at the first chunk: a file whose problems show within it never opens the store.
    let first = chunks.recv().await;
    let store = match first {
        Some(_) => match open_store(config).await {
            Ok(s) => Some(s),
            Err(e) => {
                failed = Some(e);
                None
            }
        },
        None => None,
    };
    {
        let mut bulk: Option<Box<dyn storage::Bulk + '_>> = None;
        if let Some(opened) = store.as_deref() {
            let mut next = first;
            while let Some(chunk) = next {
                let step = import_chunk(
                    opened,
                    &mut bulk,
                    (&actor, outcome.dry_run),
                    collection,
                    chunk,
                    &mut plan,
                );
                if let Err(e) = step.await {
                    failed = Some(e.into());
                    break;
                }
                next = chunks.recv().await;
            }
        }
        // Stops the reader's sends, if it is still reading.
        drop(chunks);
        let report = reader.await.context("reading the file")??;
        bar.finish_and_clear();
        report_problems(&outcome, &report)?;
        if let Some(e) = failed {
            return Err(e.context(outcome.nothing_imported()));
        }
        if let Some(bulk) = bulk {
            bulk.commit()
                .await
                .with_context(|| outcome.nothing_imported())?;
        }
    }
    say_counts(&outcome, &plan);
    Ok(())
}

/// Compares one chunk with the store (inside the bulk transaction, once it is open) and
/// writes what differs, adding to `plan`'s counts; a dry run only counts.
async fn import_chunk<'s>(
    store: &'s dyn storage::Store,
    bulk: &mut Option<Box<dyn storage::Bulk + 's>>,
    (actor, dry_run): (&str, bool),
    collection: Collection,
    chunk: Vec<crate::domain::FeatureInput>,
    plan: &mut crate::io::Plan,
) -> Result<(), storage::StoreError> {
    let keys = crate::io::keys_of(collection, &chunk);
    if bulk.is_none() && !dry_run {
        *bulk = Some(store.bulk(actor).await?);
    }
    let stored = match bulk {
        Some(b) => b.get_many(&keys).await?,
        None => store.get_many(&keys).await?,
    };
    let part = crate::io::classify(collection, chunk, stored);
    plan.created += part.created;
    plan.updated += part.updated;
    plan.unchanged += part.unchanged;
    plan.without_id += part.without_id;
    if let Some(b) = bulk
        && !part.ops.is_empty()
    {
        b.apply(part.ops).await?;
    }
    Ok(())
}

/// Where validated records go, and how to say it.
struct Outcome<'a> {
    collection: Collection,
    file: &'a Path,
    dry_run: bool,
    report_path: Option<&'a Path>,
}

impl Outcome<'_> {
    /// Who the audit log says wrote the records.
    fn actor(&self) -> String {
        format!("faro import {}", self.file.display())
    }

    /// The context of a failed write.
    fn nothing_imported(&self) -> String {
        format!("importing {}; nothing was imported", self.file.display())
    }
}

/// Reports problems (and writes nothing if there are any), else writes the records by id:
/// created, updated or unchanged. For records read whole (`territories define`); `faro
/// import` streams instead.
async fn write_validated(
    outcome: &Outcome<'_>,
    inputs: Vec<crate::domain::FeatureInput>,
    report: &crate::io::Report,
    config: &Config,
) -> anyhow::Result<()> {
    report_problems(outcome, report)?;
    let store = open_store(config).await?;
    let stored = crate::io::stored(store.as_ref(), outcome.collection, &inputs)
        .await
        .context("comparing with the stored records")?;
    // A definition never takes over the records of another province.
    let taken = crate::io::territories::taken_ids(&stored, &inputs);
    if !taken.is_empty() {
        anyhow::bail!("{}; nothing was written", taken.join("; "));
    }
    let mut plan = crate::io::classify(outcome.collection, inputs, stored);
    let ops = std::mem::take(&mut plan.ops);
    if !outcome.dry_run && !ops.is_empty() {
        store
            .apply(ops, &outcome.actor())
            .await
            .with_context(|| outcome.nothing_imported())?;
    }
    say_counts(outcome, &plan);
    Ok(())
}

/// Prints the report's notes, writes it where asked, and fails if it lists any problem.
fn report_problems(outcome: &Outcome<'_>, report: &crate::io::Report) -> anyhow::Result<()> {
    let file = outcome.file;
    for note in &report.notes {
        eprintln!("{}: {note}", file.display());
    }
    if let Some(out) = outcome.report_path {
        let f = std::fs::File::create(out)
            .with_context(|| format!("creating the report {}", out.display()))?;
        report
            .write_csv(std::io::BufWriter::new(f))
            .with_context(|| format!("writing the report {}", out.display()))?;
    }
    if !report.is_empty() {
        let n = report.problems.len();
        for line in report.lines().take(100) {
            eprintln!("{}: {line}", file.display());
        }
        if n > 100 {
            eprintln!("... and {} more problems", n - 100);
        }
        bail!("{n} problem(s) in {}; nothing was imported", file.display());
    }
    Ok(())
}

/// What an import did (or, dry, would do).
fn say_counts(outcome: &Outcome<'_>, plan: &crate::io::Plan) {
    let counts = format!(
        "{} created, {} updated, {} unchanged",
        plan.created, plan.updated, plan.unchanged
    );
    let total = plan.created + plan.updated + plan.unchanged;
    let (collection, file) = (outcome.collection, outcome.file.display());
    if outcome.dry_run {
        println!(
            "dry run: {total} {collection} in {file} are valid; an import would leave {counts}; nothing was written"
        );
    } else {
        println!("imported {total} {collection} from {file}: {counts}");
    }
    if plan.without_id > 0 {
        eprintln!(
            "{file}: warning: {} of the {collection} have no id (no `id` column, --id-field or \
             Feature id); they {} created with new ids, and importing the file again would \
             create them again",
            plan.without_id,
            if outcome.dry_run { "would be" } else { "were" },
        );
    }
}

/// What `faro export` was asked for.
struct ExportRequest {
    collection: String,
    format: String,
    territory: Option<String>,
    token: Option<String>,
    output: Option<PathBuf>,
}

async fn export(request: ExportRequest, config: &Config) -> anyhow::Result<()> {
    use crate::index::query::{ItemsQuery, Visibility};
    use crate::io::export::{self as ex, ExportFormat};
    let collection: Collection = request
        .collection
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let format: ExportFormat = request
        .format
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--format: {e}"))?;
    if format.needs_file() && request.output.is_none() {
        return Err(ex::ExportError::NeedsFile.into());
    }
    let territory = request
        .territory
        .as_deref()
        .map(crate::domain::RecordId::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--territory: {}", e.reason))?;
    let store = open_store(config).await?;
    let principal = principal_of(&store, request.token.as_deref()).await?;
    let records = store.load_all().await.context("reading the store")?;
    let path = request.output.clone();
    let written = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let snapshot = std::sync::Arc::new(crate::index::Snapshot::build(records));
        let view = snapshot.view(Visibility::of(&principal));
        let query = ItemsQuery {
            territory,
            ..ItemsQuery::default()
        };
        let page = view
            .items(collection, &query)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let records = page.records;
        let open = |p: &Path| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
            Ok(std::io::BufWriter::new(
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
            ))
        };
        match (format, &path) {
            (ExportFormat::GeoPackage, Some(p)) => {
                ex::write_gpkg(collection, &records, p)?;
            }
            (ExportFormat::GeoPackage, None) => return Err(ex::ExportError::NeedsFile.into()),
            (ExportFormat::GeoJson, Some(p)) => ex::write_geojson(&records, open(p)?)?,
            (ExportFormat::GeoJson, None) => ex::write_geojson(&records, std::io::stdout().lock())?,
            (ExportFormat::Csv, Some(p)) => ex::write_csv(collection, &records, open(p)?)?,
            (ExportFormat::Csv, None) => {
                ex::write_csv(collection, &records, std::io::stdout().lock())?;
            }
            (ExportFormat::FlatGeobuf, Some(p)) => ex::write_fgb(collection, &records, open(p)?)?,
            (ExportFormat::FlatGeobuf, None) => {
                ex::write_fgb(collection, &records, std::io::stdout().lock())?;
            }
        }
        let written = records.len();
        // The process ends with the export: its memory goes back to the system at once at
        // the exit, instead of every record and its index being freed one by one first (0.8 s
        // of CPU for an export of 1M services).
        drop(view);
        std::mem::forget(records);
        std::mem::forget(snapshot);
        Ok(written)
    })
    .await
    .context("writing the export")??;
    if let Some(p) = &request.output {
        eprintln!("exported {written} {collection} to {}", p.display());
    }
    Ok(())
}

/// Who holds `token` (read from the store); anonymous without one. A wrong token is an error,
/// never taken for anonymous.
async fn principal_of(
    store: &std::sync::Arc<dyn storage::Store>,
    token: Option<&str>,
) -> anyhow::Result<crate::domain::Principal> {
    Ok(match token {
        None => crate::domain::Principal::Anonymous,
        Some(secret) => tokens::TokenVerifier::new(
            std::sync::Arc::clone(store),
            std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
        )
        .verify(secret.trim())
        .await
        .context("--token")?,
    })
}

async fn report(args: &ReportArgs, config: &Config) -> anyhow::Result<()> {
    use crate::index::query::Visibility;
    let options = args.options(chrono::Utc::now())?;
    let dir = args.out.clone();
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("--out {}: cannot create the directory", dir.display()))?;
    let probe = dir.join(format!(".faro-report-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .with_context(|| format!("--out {}: the directory is not writable", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    let store = open_store(config).await?;
    let principal = principal_of(&store, args.token.as_deref()).await?;
    let bar = progress_bar("{spinner} {msg} [{bar:30}] {pos}/{len}");
    bar.set_length(crate::report::STEPS);
    bar.set_message("reading the store");
    let records = store.load_all().await.context("reading the store")?;
    bar.inc(1);
    let working = bar.clone();
    let written = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<PathBuf>> {
        let snapshot = std::sync::Arc::new(crate::index::Snapshot::build(records));
        let view = snapshot.view(Visibility::of(&principal));
        let data = crate::report::compute(&view, &options, &working).map_err(|e| {
            use crate::analysis::coverage::CoverageError as E;
            use crate::index::query::QueryError as Q;
            match e {
                crate::report::ReportError::Coverage(
                    e @ (E::UnknownTerritory(_) | E::Query(Q::UnknownTerritory(_))),
                ) => anyhow::anyhow!("--territory: {e}"),
                crate::report::ReportError::Coverage(e @ E::TooManyCells { .. }) => {
                    anyhow::anyhow!("--resolution: {e}")
                }
                other => other.into(),
            }
        })?;
        let written = crate::report::write(&data, &dir)?;
        working.inc(1);
        Ok(written)
    })
    .await
    .context("making the report")??;
    bar.finish_and_clear();
    eprintln!(
        "wrote {} files to {}: {}",
        written.len(),
        args.out.display(),
        written
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

async fn territories(action: TerritoriesAction, config: &Config) -> anyhow::Result<()> {
    let TerritoriesAction::Define {
        comuni,
        code_field,
        groups,
        population,
        province_id,
        province_name,
        province_code,
        crs,
        layer,
        dry_run,
    } = action;
    let read = crate::io::ReadOptions {
        crs: crs
            .as_deref()
            .map(crate::io::Crs::parse)
            .transpose()
            .context("--crs")?,
        layer,
        max_vertices: config.max_vertices,
        ..crate::io::ReadOptions::default()
    };
    let options = crate::io::territories::DefineOptions {
        read,
        code_field: code_field.unwrap_or_else(|| crate::io::territories::CODE_FIELDS.to_owned()),
        groups,
        population,
        province_id,
        province_name,
        province_code,
    };
    let bar = progress_bar("{spinner} reading {msg} [{bar:30}] {bytes}/{total_bytes} ({eta} left)");
    bar.set_message(
        comuni
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
    let paths = comuni.clone();
    let reading = bar.clone();
    let (inputs, report) = tokio::task::spawn_blocking(move || {
        crate::io::territories::define(&paths, &options, &reading)
    })
    .await
    .context("defining the territories")??;
    bar.finish_and_clear();
    let outcome = Outcome {
        collection: Collection::Territories,
        // Messages name the first file (`required` makes sure there is one).
        file: &comuni[0],
        dry_run,
        report_path: None,
    };
    write_validated(&outcome, inputs, &report, config).await
}

/// `, territories a,b, expires …` for a token's creation message.
fn scope_text(t: &crate::storage::TokenRecord) -> String {
    let mut out = String::new();
    if !t.territories.is_empty() {
        let ids: Vec<&str> = t
            .territories
            .iter()
            .map(crate::domain::RecordId::as_str)
            .collect();
        out += ", territories ";
        out += &ids.join(",");
    }
    if let Some(e) = t.expires_at {
        out += ", expires ";
        out += &e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    }
    out
}

async fn token(action: TokenAction, config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    match action {
        TokenAction::Create {
            role,
            name,
            territories,
            expires,
        } => {
            let role: Role = role
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--role: {e}"))?;
            let request = tokens::TokenRequest {
                name,
                role,
                territories,
                expires,
            };
            let (t, secret) =
                tokens::create(store.as_ref(), &request)
                    .await
                    .map_err(|e| match e {
                        tokens::CreateError::Invalid { field, message } => {
                            anyhow::anyhow!("--{field}: {message}")
                        }
                        other => anyhow::anyhow!(other),
                    })?;
            eprintln!(
                "token {} for {} ({}{}) created; it is shown only once:",
                t.id,
                t.name,
                t.role,
                scope_text(&t)
            );
            println!("{secret}");
        }
        TokenAction::List => {
            let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map_or_else(
                    || "-".to_owned(),
                    |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                )
            };
            println!(
                "{:>5}  {:<8}  {:<20}  {:<20}  {:<20}  {:<20}  {:<20}  {:<24}  name",
                "id", "role", "created", "last used", "expires", "revoked", "state", "scope"
            );
            let now = chrono::Utc::now();
            for t in store.list_tokens().await? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.is_dead_at(now) {
                    "expired"
                } else {
                    "live"
                };
                let scope = if t.territories.is_empty() {
                    "network".to_owned()
                } else {
                    t.territories
                        .iter()
                        .map(crate::domain::RecordId::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                };
                println!(
                    "{:>5}  {:<8}  {:<20}  {:<20}  {:<20}  {:<20}  {:<20}  {:<24}  {}",
                    t.id,
                    t.role.as_str(),
                    time(Some(t.created_at)),
                    time(t.last_used_at),
                    time(t.expires_at),
                    time(t.revoked_at),
                    state,
                    scope,
                    t.name
                );
            }
        }
        TokenAction::Revoke { id } => {
            if store.revoke_token(id).await? {
                println!("token {id} revoked");
            } else {
                bail!("no live token with id {id}");
            }
        }
    }
    Ok(())
}
