//! The `faro` command line: serve | import | token | migrate.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, DEFAULT_DATABASE_URL, DEFAULT_LISTEN, redact_url};
use crate::domain::{Collection, FeatureInput, Role};
use crate::startup::Application;
use crate::storage::{self, WriteOp};
use crate::tokens;

#[derive(Debug, Parser)]
#[command(
    name = "faro",
    version,
    about = "Service map of the territorial network against labour exploitation"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Args, Clone)]
struct DatabaseArgs {
    /// `sqlite://PATH` (embedded, the default) or `postgres://USER@HOST:PORT/DB`
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    database_url: String,
    /// Connections in the PostgreSQL pool.
    #[arg(long, env = "FARO_POOL_SIZE", default_value_t = 16, global = true)]
    pool_size: usize,
}

#[derive(Debug, Args, Clone)]
struct ServeArgs {
    /// Address and port to listen on; port 0 picks a free one.
    #[arg(long, env = "FARO_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: String,
    /// Start with an empty store instead of loading the demo data.
    #[arg(long)]
    no_demo: bool,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default when no command is given).
    Serve(ServeArgs),
    /// Import a GeoJSON file into a collection: every feature is validated, all or nothing.
    Import {
        /// services, settlements, worksites or territories
        collection: String,
        /// A GeoJSON FeatureCollection (or Feature) file.
        file: PathBuf,
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
    /// Apply the database schema (also done at every start).
    Migrate {
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Create a token and print its secret once.
    Create {
        /// operator (reads everything), editor (writes), admin (everything)
        #[arg(long)]
        role: String,
        /// Who holds it, for the audit log.
        #[arg(long)]
        name: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: i64 },
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Import {
            collection,
            file,
            db,
        }) => import(&collection, &file, &db).await,
        Some(Command::Token { action, db }) => token(action, &db).await,
        Some(Command::Migrate { db }) => {
            let url = &db.database_url;
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
                let store = storage::open(url, db.pool_size)
                    .await
                    .with_context(|| format!("opening {}", redact_url(url)))?;
                println!(
                    "schema of the {} store at {} is up to date",
                    store.backend(),
                    redact_url(url)
                );
            }
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::new(
        &args.listen,
        &args.db.database_url,
        !args.no_demo,
        args.db.pool_size,
    )?;
    let app = Application::build(&config).await?;
    app.run_until_stopped().await?;
    Ok(())
}

async fn import(collection: &str, file: &PathBuf, db: &DatabaseArgs) -> anyhow::Result<()> {
    let collection: Collection = collection.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", file.display()))?;
    let n = doc
        .get("features")
        .and_then(|f| f.as_array())
        .map_or(1, Vec::len);
    let bar = indicatif::ProgressBar::new_spinner();
    if n > 10_000 {
        bar.set_message(format!("validating {n} features"));
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
    }
    let inputs = match FeatureInput::parse_document(collection, doc) {
        Ok(inputs) => inputs,
        Err(errors) => {
            bar.finish_and_clear();
            for e in errors.iter().take(100) {
                eprintln!("{}: {e}", file.display());
            }
            if errors.len() > 100 {
                eprintln!("... and {} more problems", errors.len() - 100);
            }
            bail!(
                "{} problem(s) in {}; nothing was imported",
                errors.len(),
                file.display()
            );
        }
    };
    let ops: Vec<WriteOp> = inputs
        .into_iter()
        .map(|f| WriteOp::insert(collection, f))
        .collect();
    let count = ops.len();
    bar.set_message(format!("writing {count} records"));
    let store = storage::open(&db.database_url, db.pool_size)
        .await
        .with_context(|| format!("opening {}", redact_url(&db.database_url)))?;
    let actor = format!("faro import {}", file.display());
    store
        .apply(ops, &actor)
        .await
        .with_context(|| format!("importing {}; nothing was imported", file.display()))?;
    bar.finish_and_clear();
    println!("imported {count} {collection} from {}", file.display());
    Ok(())
}

async fn token(action: TokenAction, db: &DatabaseArgs) -> anyhow::Result<()> {
    let store = storage::open(&db.database_url, db.pool_size)
        .await
        .with_context(|| format!("opening {}", redact_url(&db.database_url)))?;
    match action {
        TokenAction::Create { role, name } => {
            let role: Role = role
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--role: {e}"))?;
            let name = name.trim();
            if name.is_empty() {
                bail!("--name must not be empty");
            }
            let secret = tokens::generate_secret().context("generating a token")?;
            let t = store
                .create_token(name, role, &tokens::hash_secret(&secret))
                .await?;
            eprintln!(
                "token {} for {} ({}) created; it is shown only once:",
                t.id, t.name, t.role
            );
            println!("{secret}");
        }
        TokenAction::List => {
            println!(
                "{:>5}  {:<8}  {:<25}  {:<25}  name",
                "id", "role", "created", "revoked"
            );
            for t in store.list_tokens().await? {
                println!(
                    "{:>5}  {:<8}  {:<25}  {:<25}  {}",
                    t.id,
                    t.role.as_str(),
                    t.created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    t.revoked_at
                        .map(|r| r.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default(),
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
