//! The `PostgreSQL` + `PostGIS` store, for servers: several faro instances share one database.
//!
//! - Schema: `migrations/*.sql`, embedded in the binary and applied in order at
//!   [`PostgresStore::connect`] (and by `faro migrate` through [`PostgresStore::migrate`]). Each
//!   migration runs in its own transaction under an advisory lock and is recorded in
//!   `faro_migrations`, so instances starting together don't race and re-running is a no-op.
//! - Records: geometry in a `PostGIS` `geometry(Geometry, 4326)` column, sent as WKB
//!   (`ST_GeomFromWKB`) and read back as WKB (`ST_AsBinary`), so coordinates round-trip
//!   bit for bit; attributes in `jsonb`. Same semantics as the `SQLite` store: versions start at 1
//!   and grow by one per change, `created_at` survives a replace, one batch is one transaction
//!   with its audit rows. A batch first locks (`FOR UPDATE`, in key order, so concurrent
//!   batches don't deadlock) and reads every record it replaces or deletes, checks versions
//!   against that, then sends its writes pipelined; deadlocks and serialization failures are
//!   retried.
//! - Changes: a trigger on `records` sends `pg_notify('faro_changes', {"collection", "id",
//!   "version", "op"})` for every row written, delivered at commit. One dedicated connection per
//!   store `LISTEN`s from [`PostgresStore::connect`] on, so a subscriber that subscribes before
//!   loading the records misses nothing; see [`Store::subscribe`] for the events.
//! - Outages: connection failures become [`StoreError::Unavailable`]; the pool gives up after
//!   [`TIMEOUT`] rather than hanging.
//! - TLS: `sslmode` (`disable`, `prefer` by default, `require`, `verify-ca`, `verify-full`) and
//!   `sslrootcert` in the URL, as libpq means them, for the pool, the `LISTEN` connection and
//!   `faro migrate` alike; rustls on the `ring` provider. See the `tls` module for the details.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{
    Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime, Transaction,
};
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Notification, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{
    AuditEntry, AuditQuery, BulkCommand, BulkHandle, BulkOp, Change, KnownAbsent, NewToken, Ready,
    Result, Store, StoreError, StoreEvent, TokenRecord, WriteOp, assemble, audit_document,
    audit_text, check_version, now_micros, record_from_parts, wkb_decode, wkb_encode,
};
use crate::domain::{Collection, FieldError, Meta, Record, RecordId, Role};

mod tls;

/// The versions of every migration this faro applies, in order.
pub fn migration_versions() -> Vec<i32> {
    MIGRATIONS.iter().map(|(v, _)| *v).collect()
}

/// The migrations, in order: `(version, SQL)`. Add new files here.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/0001_init.sql")),
    (2, include_str!("../../migrations/0002_token_notify.sql")),
    (3, include_str!("../../migrations/0003_token_scope.sql")),
    (4, include_str!("../../migrations/0004_bulk_notify.sql")),
    (5, include_str!("../../migrations/0005_cheaper_writes.sql")),
];

/// Key of the advisory lock held while migrating ("faro" "migr").
const MIGRATION_LOCK: i64 = 0x6661_726f_6d69_6772;

/// The channel the `records` trigger notifies.
pub const CHANNEL: &str = "faro_changes";

/// How long to wait for a connection (or a ping) before calling the database unavailable.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// How often the listening connection checks that the server still answers.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// Reconnection backoff of the listening connection.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Transactions that failed on a deadlock or serialization conflict are retried this often.
const RETRIES: u32 = 3;

/// A `PostgreSQL` + `PostGIS` database holding records, tokens and the audit log.
pub struct PostgresStore {
    pool: Pool,
    subscribers: Arc<Mutex<Subscribers>>,
    listener: JoinHandle<()>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// A `PostgreSQL` error with the server's message (tokio-postgres alone says only "db error").
#[derive(Debug)]
struct PgFailure {
    message: String,
    source: tokio_postgres::Error,
}

impl fmt::Display for PgFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PgFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl PgFailure {
    /// A deadlock or serialization failure: the transaction may succeed if run again.
    fn is_retryable(&self) -> bool {
        self.source.code().is_some_and(|c| {
            *c == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                || *c == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
        })
    }
}

/// The error in words, with the server's message, SQLSTATE and detail when there is one.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(text) = tls::describe_failure(e) {
        return text;
    }
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(": ");
            text.push_str(detail);
        }
        return text;
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Whether an error means the server can't be reached (rather than that the request was bad).
fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let code = code.code();
        // 08: connection exception; 57P01-03: admin/crash shutdown, cannot connect now;
        // 53300: too many connections.
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300");
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        if inner.is::<std::io::Error>() {
            return true;
        }
        source = inner.source();
    }
    // tokio-postgres keeps its error kinds private; these have no io source.
    let text = e.to_string();
    text.starts_with("error connecting to server")
        || text.starts_with("timeout waiting for server")
        || text.starts_with("error communicating with the server")
}

fn store_error(context: &'static str, e: tokio_postgres::Error) -> StoreError {
    if is_unavailable(&e) {
        StoreError::Unavailable {
            context,
            message: describe(&e),
        }
    } else {
        StoreError::Backend {
            context,
            source: Box::new(PgFailure {
                message: describe(&e),
                source: e,
            }),
        }
    }
}

fn pg_err(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |e| store_error(context, e)
}

fn pool_err(context: &'static str) -> impl FnOnce(PoolError) -> StoreError {
    move |e| match e {
        PoolError::Backend(e) => store_error(context, e),
        PoolError::Timeout(_) => StoreError::Unavailable {
            context,
            message: format!("no database connection within {} s", TIMEOUT.as_secs()),
        },
        PoolError::Closed => StoreError::Unavailable {
            context,
            message: "the connection pool is closed".to_owned(),
        },
        other => StoreError::backend(context, std::io::Error::other(other.to_string())),
    }
}

fn is_retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Backend { source, .. } => source
            .downcast_ref::<PgFailure>()
            .is_some_and(PgFailure::is_retryable),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Connecting and migrating

/// Parses a `postgres://` URL (or key=value string), sets faro's timeouts where it has none,
/// and makes the TLS connector its `sslmode` and `sslrootcert` call for.
fn pg_config(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect)> {
    // Never echo the URL: it may hold a password.
    let settings =
        tls::TlsSettings::take_from(url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
    let mut config: tokio_postgres::Config = settings
        .rest
        .parse()
        .map_err(|e: tokio_postgres::Error| StoreError::BadUrl(describe(&e)))?;
    settings.apply(&mut config);
    let connector = settings
        .connector()
        .map_err(|e| StoreError::BadUrl(e.to_string()))?;
    tracing::debug!(sslmode = %settings.mode, "PostgreSQL connection settings");
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("faro");
    }
    config
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    Ok((config, connector))
}

/// Applies the migrations not yet applied, each in its own transaction under the advisory
/// lock; returns the versions it applied (none when the schema was up to date).
async fn run_migrations(client: &mut tokio_postgres::Client) -> Result<Vec<i32>> {
    const CONTEXT: &str = "migrating the database";
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    let mut applied = Vec::new();
    for &(version, sql) in MIGRATIONS {
        let tx = client.transaction().await.map_err(pg_err(CONTEXT))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_err(CONTEXT))?;
        // No "already exists, skipping" notices in the log at every start.
        tx.batch_execute("SET LOCAL client_min_messages = warning")
            .await
            .map_err(pg_err(CONTEXT))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS faro_migrations (
                 version    integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(pg_err(CONTEXT))?;
        let newest: Option<i32> = tx
            .query_one("SELECT max(version) FROM faro_migrations", &[])
            .await
            .map_err(pg_err(CONTEXT))?
            .try_get(0)
            .map_err(pg_err(CONTEXT))?;
        if let Some(newest) = newest
            && newest > known
        {
            return Err(StoreError::BadUrl(format!(
                "the database has schema version {newest}, newer than this faro knows ({known})"
            )));
        }
        let done = tx
            .query_opt(
                "SELECT 1 FROM faro_migrations WHERE version = $1",
                &[&version],
            )
            .await
            .map_err(pg_err(CONTEXT))?
            .is_some();
        if done {
            tx.commit().await.map_err(pg_err(CONTEXT))?;
            continue;
        }
        if let Err(e) = tx.batch_execute(sql).await {
            let message = format!("migration {version:04}: {}", describe(&e));
            return Err(match store_error(CONTEXT, e) {
                StoreError::Backend { context, source } => StoreError::Backend {
                    context,
                    source: Box::new(std::io::Error::other(format!("{message} ({source})"))),
                },
                other => other,
            });
        }
        tx.execute(
            "INSERT INTO faro_migrations (version, applied_at) VALUES ($1, now())",
            &[&version],
        )
        .await
        .map_err(pg_err(CONTEXT))?;
        tx.commit().await.map_err(pg_err(CONTEXT))?;
        tracing::info!(version, "applied PostgreSQL migration");
        applied.push(version);
    }
    Ok(applied)
}

/// Connects one client outside the pool, with its connection driven on a task.
async fn connect_one(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    context: &'static str,
) -> Result<(tokio_postgres::Client, JoinHandle<()>)> {
    let (client, connection) = tokio::time::timeout(TIMEOUT, config.connect(tls.clone()))
        .await
        .map_err(|_| StoreError::Unavailable {
            context,
            message: format!("no connection within {} s", TIMEOUT.as_secs()),
        })?
        .map_err(pg_err(context))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %describe(&e), "PostgreSQL connection ended");
        }
    });
    Ok((client, driver))
}

impl PostgresStore {
    /// Connects a pool of `pool_size` connections to the database at `url`, brings its schema
    /// up to date and starts listening for changes.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self> {
        let (config, tls) = pg_config(url)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                // One empty round trip per checkout: a connection that died with the server
                // is replaced instead of failing the request.
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .wait_timeout(Some(TIMEOUT))
            .create_timeout(Some(TIMEOUT))
            .recycle_timeout(Some(TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::backend("creating the connection pool", e))?;
        {
            let mut client = pool
                .get()
                .await
                .map_err(pool_err("connecting to PostgreSQL"))?;
            run_migrations(&mut client).await?;
        }
        let subscribers = Arc::new(Mutex::new(Subscribers {
            senders: Vec::new(),
            available: true,
        }));
        let session = tokio::time::timeout(TIMEOUT, ListenSession::open(&config, &tls))
            .await
            .map_err(|_| StoreError::Unavailable {
                context: "listening for changes",
                message: format!("no connection within {} s", TIMEOUT.as_secs()),
            })?
            .map_err(pg_err("listening for changes"))?;
        let listener = tokio::spawn(run_listener(config, tls, Arc::clone(&subscribers), session));
        Ok(Self {
            pool,
            subscribers,
            listener,
        })
    }

    /// Brings the schema of the database at `url` up to date (`faro migrate`); returns the
    /// versions applied, empty when there was nothing to do.
    pub async fn migrate(url: &str) -> Result<Vec<i32>> {
        let (config, tls) = pg_config(url)?;
        let (mut client, driver) = connect_one(&config, &tls, "connecting to PostgreSQL").await?;
        let applied = run_migrations(&mut client).await;
        drop(client);
        let _ = driver.await;
        applied
    }

    /// Every migration this faro knows: `(version, SQL)`.
    pub fn migrations() -> &'static [(i32, &'static str)] {
        MIGRATIONS
    }

    /// The connection pool, for queries outside the [`Store`] trait (e.g. tiles by `PostGIS`).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn client(&self, context: &'static str) -> Result<deadpool_postgres::Client> {
        self.pool.get().await.map_err(pool_err(context))
    }
}

// ---------------------------------------------------------------------------------------------
// Rows

/// The columns of a record, in the order [`to_record`] reads them.
macro_rules! select_record {
    () => {
        "SELECT collection, id, ST_AsBinary(geom), properties, version, created_at, updated_at \
         FROM records"
    };
}

const LOAD_ALL: &str = concat!(select_record!(), " ORDER BY collection, id");
const GET: &str = concat!(select_record!(), " WHERE collection = $1 AND id = $2");
/// Reads a batch of records by key in one query: one probe of the primary key per key. (The
/// `LIMIT 1` keeps the subquery from being flattened into a join the planner may reorder: with
/// a table it believes small, as in a bulk import's transaction, it would scan every record
/// against the list of keys.)
const GET_MANY: &str = concat!(
    "SELECT r.* FROM unnest($1::text[], $2::text[]) AS k(c, i) CROSS JOIN LATERAL (",
    select_record!(),
    " WHERE collection = k.c AND id = k.i LIMIT 1) AS r"
);
/// Locks and reads the records a batch replaces or deletes, probing the primary key in the
/// order of the keys given (sorted by the caller, so that batches lock in one order).
const LOCK_MANY: &str = concat!(
    "SELECT r.* FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(c, i, n) ",
    "CROSS JOIN LATERAL (",
    select_record!(),
    " WHERE collection = k.c AND id = k.i LIMIT 1 FOR UPDATE) AS r ORDER BY k.n"
);
const INSERT: &str = "INSERT INTO records
    (collection, id, geom, properties, version, created_at, updated_at)
    VALUES ($1, $2, ST_GeomFromWKB($3, 4326), $4, $5, $6, $7)
    ON CONFLICT (collection, id) DO NOTHING";
const UPDATE: &str = "UPDATE records
    SET geom = ST_GeomFromWKB($3, 4326), properties = $4, version = $5, created_at = $6,
        updated_at = $7
    WHERE collection = $1 AND id = $2";
const DELETE: &str = "DELETE FROM records WHERE collection = $1 AND id = $2";
const AUDIT: &str = "INSERT INTO audit_log
    (at, actor, action, collection, record_id, before, after)
    VALUES ($1, $2, $3, $4, $5, $6, $7)";
const TOKEN_COLUMNS: &str =
    "id, name, role, created_at, revoked_at, territories, expires_at, last_used_at";

fn to_record(row: &Row, context: &'static str) -> Result<Record> {
    let collection: &str = row.try_get(0).map_err(pg_err(context))?;
    let id: &str = row.try_get(1).map_err(pg_err(context))?;
    let wkb: &[u8] = row.try_get(2).map_err(pg_err(context))?;
    let properties: serde_json::Value = row.try_get(3).map_err(pg_err(context))?;
    let meta = Meta {
        version: row.try_get(4).map_err(pg_err(context))?,
        created_at: row.try_get(5).map_err(pg_err(context))?,
        updated_at: row.try_get(6).map_err(pg_err(context))?,
    };
    let collection: Collection = collection
        .parse()
        .map_err(|e: String| StoreError::Corrupt {
            collection: Collection::Services,
            id: id.to_owned(),
            error: FieldError::new("collection", e),
        })?;
    record_from_parts(
        collection,
        id,
        wkb_decode(wkb)?,
        crate::domain::Attributes::from_json(collection, properties),
        meta,
    )
}

fn to_token(row: &Row) -> Result<TokenRecord> {
    const CONTEXT: &str = "reading a token";
    let role: &str = row.try_get(2).map_err(pg_err(CONTEXT))?;
    let role: Role = role
        .parse()
        .map_err(|e: String| StoreError::backend(CONTEXT, std::io::Error::other(e)))?;
    Ok(TokenRecord {
        id: row.try_get(0).map_err(pg_err(CONTEXT))?,
        name: row.try_get(1).map_err(pg_err(CONTEXT))?,
        role,
        created_at: row.try_get(3).map_err(pg_err(CONTEXT))?,
        revoked_at: row.try_get(4).map_err(pg_err(CONTEXT))?,
        territories: row
            .try_get::<_, Vec<String>>(5)
            .map_err(pg_err(CONTEXT))?
            .iter()
            .map(|t| {
                RecordId::parse(t)
                    .map_err(|e| StoreError::backend(CONTEXT, std::io::Error::other(e.to_string())))
            })
            .collect::<Result<Vec<_>>>()?,
        expires_at: row.try_get(6).map_err(pg_err(CONTEXT))?,
        last_used_at: row.try_get(7).map_err(pg_err(CONTEXT))?,
    })
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Writes sent per round trip (each is a record statement and an audit statement).
const PIPELINE: usize = 256;

type Key = (Collection, RecordId);

/// A write of a batch, checked and assembled, not yet sent.
enum Planned {
    Insert(Arc<Record>),
    Update {
        before: Arc<Record>,
        after: Arc<Record>,
    },
    Delete(Arc<Record>),
}

impl Planned {
    fn change(&self) -> Change {
        match self {
            Planned::Insert(r) | Planned::Update { after: r, .. } => Change::Upsert(Arc::clone(r)),
            Planned::Delete(r) => Change::Delete {
                collection: r.collection(),
                id: r.id().clone(),
            },
        }
    }
}

/// How a lookup by key is planned: once per connection (a batch of [`Store::apply`]), or at
/// every chunk of a bulk write, whose transaction sets the planner to keep to the primary key.
#[derive(Clone, Copy)]
enum Plan {
    Cached,
    Fresh,
}

impl Plan {
    async fn prepare(
        self,
        client: &impl deadpool_postgres::GenericClient,
        sql: &str,
    ) -> std::result::Result<tokio_postgres::Statement, tokio_postgres::Error> {
        match self {
            Plan::Cached => client.prepare_cached(sql).await,
            Plan::Fresh => client.prepare(sql).await,
        }
    }
}

/// Locks the records the batch replaces or deletes, all at once and in key order (so that two
/// batches never wait for each other in a cycle), and reads them: `None` for those missing.
async fn lock_targets(
    tx: &Transaction<'_>,
    ops: &[WriteOp],
    plan: Plan,
) -> Result<HashMap<Key, Option<Arc<Record>>>> {
    const CONTEXT: &str = "reading records to change";
    let mut keys: Vec<(Collection, &RecordId)> = ops
        .iter()
        .filter_map(|op| match op {
            WriteOp::Insert { .. } => None,
            WriteOp::Replace { id, attributes, .. } => Some((attributes.collection(), id)),
            WriteOp::Delete { collection, id, .. } => Some((*collection, id)),
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut state: HashMap<Key, Option<Arc<Record>>> = keys
        .iter()
        .map(|(c, id)| ((*c, RecordId::clone(id)), None))
        .collect();
    if keys.is_empty() {
        return Ok(state);
    }
    let collections: Vec<&str> = keys.iter().map(|(c, _)| c.as_str()).collect();
    let ids: Vec<&str> = keys.iter().map(|(_, id)| id.as_str()).collect();
    let stmt = plan.prepare(tx, LOCK_MANY).await.map_err(pg_err(CONTEXT))?;
    for row in tx
        .query(&stmt, &[&collections, &ids])
        .await
        .map_err(pg_err(CONTEXT))?
    {
        let record = to_record(&row, CONTEXT)?;
        state.insert(
            (record.collection(), record.id().clone()),
            Some(Arc::new(record)),
        );
    }
    Ok(state)
}

/// Checks one operation against the batch's view of the records (`state`, updated as the
/// batch goes) and assembles what to write. Inserts of ids the batch has not locked are
/// checked by the database (`ON CONFLICT DO NOTHING`).
fn plan(
    op: &WriteOp,
    state: &mut HashMap<Key, Option<Arc<Record>>>,
    now: DateTime<Utc>,
) -> Result<Planned> {
    match op {
        WriteOp::Insert {
            id,
            geometry,
            attributes,
        } => {
            let collection = attributes.collection();
            let key = (collection, id.clone());
            if let Some(Some(_)) = state.get(&key) {
                return Err(StoreError::AlreadyExists {
                    collection,
                    id: id.clone(),
                });
            }
            let meta = Meta {
                version: 1,
                created_at: now,
                updated_at: now,
            };
            let record =
                assemble(id.clone(), geometry.clone(), attributes.clone(), meta).map(Arc::new)?;
            state.insert(key, Some(Arc::clone(&record)));
            Ok(Planned::Insert(record))
        }
        WriteOp::Replace {
            id,
            expected,
            geometry,
            attributes,
        } => {
            let collection = attributes.collection();
            let key = (collection, id.clone());
            let current = state.get(&key).and_then(Option::as_ref).cloned();
            let before = check_version(current, collection, id, expected)?;
            let meta = Meta {
                version: before.meta().version + 1,
                created_at: before.meta().created_at,
                updated_at: now,
            };
            let after =
                assemble(id.clone(), geometry.clone(), attributes.clone(), meta).map(Arc::new)?;
            state.insert(key, Some(Arc::clone(&after)));
            Ok(Planned::Update { before, after })
        }
        WriteOp::Delete {
            collection,
            id,
            expected,
        } => {
            let key = (*collection, id.clone());
            let current = state.get(&key).and_then(Option::as_ref).cloned();
            let before = check_version(current, *collection, id, expected)?;
            state.insert(key, None);
            Ok(Planned::Delete(before))
        }
    }
}

/// The parameters of one planned write and of its audit row.
struct Encoded<'a> {
    planned: &'a Planned,
    /// The record written, or deleted.
    record: &'a Record,
    collection: &'static str,
    id: &'a str,
    action: &'static str,
    /// WKB and properties of the record written (none for a delete).
    columns: Option<(Vec<u8>, Binary)>,
    before: Option<Binary>,
    after: Option<Binary>,
}

impl<'a> Encoded<'a> {
    fn of(planned: &'a Planned) -> Result<Self> {
        let (record, action, before, after) = match planned {
            Planned::Insert(r) => (r, "create", None, Some(r)),
            Planned::Update { before, after } => (after, "update", Some(before), Some(after)),
            Planned::Delete(r) => (r, "delete", Some(r), None),
        };
        let columns = match planned {
            Planned::Delete(_) => None,
            _ => Some((
                wkb_encode(record.geometry())?,
                Binary::jsonb(&record.attributes().to_json_text()),
            )),
        };
        Ok(Self {
            planned,
            record,
            collection: record.collection().as_str(),
            id: record.id().as_str(),
            action,
            columns,
            before: before.map(|r| Binary::json(audit_text(r))),
            after: after.map(|r| Binary::json(audit_text(r))),
        })
    }

    /// The error of an insert that found its id taken.
    fn already_exists(&self) -> StoreError {
        StoreError::AlreadyExists {
            collection: self.record.collection(),
            id: self.record.id().clone(),
        }
    }
}

/// Polls `futures` in order, so that their requests go out on the connection in order (and
/// are executed in order), and returns their outputs in order.
async fn in_order<F: Future + Unpin>(mut futures: Vec<F>) -> Vec<F::Output> {
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut sent = false;
    let mut next = 0;
    futures_util::future::poll_fn(|cx| {
        if !sent {
            // The first poll of each sends its request.
            for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
                if let Poll::Ready(o) = Pin::new(future).poll(cx) {
                    *output = Some(o);
                }
            }
            sent = true;
        }
        // Answers come back in order: wait for each in turn.
        while let Some(future) = futures.get_mut(next) {
            if outputs[next].is_none() {
                match Pin::new(future).poll(cx) {
                    Poll::Ready(o) => outputs[next] = Some(o),
                    Poll::Pending => return Poll::Pending,
                }
            }
            next += 1;
        }
        Poll::Ready(())
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Sends the planned writes with their audit rows, pipelined, [`PIPELINE`] at a time; the
/// first failure in batch order is the one reported, as if they had run one by one.
async fn execute_plan(
    tx: &Transaction<'_>,
    planned: &[Planned],
    at: DateTime<Utc>,
    actor: &str,
) -> Result<()> {
    const CONTEXT: &str = "writing records";
    let insert = tx.prepare_cached(INSERT).await.map_err(pg_err(CONTEXT))?;
    let update = tx.prepare_cached(UPDATE).await.map_err(pg_err(CONTEXT))?;
    let delete = tx.prepare_cached(DELETE).await.map_err(pg_err(CONTEXT))?;
    let audit = tx.prepare_cached(AUDIT).await.map_err(pg_err(CONTEXT))?;
    for chunk in planned.chunks(PIPELINE) {
        let encoded = chunk.iter().map(Encoded::of).collect::<Result<Vec<_>>>()?;
        let mut futures = Vec::with_capacity(2 * encoded.len());
        for e in &encoded {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&e.collection, &e.id];
            let statement = match (e.planned, &e.columns) {
                (Planned::Insert(r) | Planned::Update { after: r, .. }, Some((wkb, props))) => {
                    let meta = r.meta();
                    params.extend([
                        wkb as &(dyn ToSql + Sync),
                        props,
                        &meta.version,
                        &meta.created_at,
                        &meta.updated_at,
                    ]);
                    if matches!(e.planned, Planned::Insert(_)) {
                        &insert
                    } else {
                        &update
                    }
                }
                _ => &delete,
            };
            futures.push(Box::pin(tx.execute_raw(statement, params)));
            let audit_params: Vec<&(dyn ToSql + Sync)> = vec![
                &at,
                &actor,
                &e.action,
                &e.collection,
                &e.id,
                &e.before,
                &e.after,
            ];
            futures.push(Box::pin(tx.execute_raw(&audit, audit_params)));
        }
        let mut outputs = in_order(futures).await.into_iter();
        for e in &encoded {
            let (Some(written), Some(audited)) = (outputs.next(), outputs.next()) else {
                return Err(StoreError::backend(
                    CONTEXT,
                    std::io::Error::other("a pipelined write lost its answer"),
                ));
            };
            if written.map_err(pg_err(CONTEXT))? == 0 && matches!(e.planned, Planned::Insert(_)) {
                return Err(e.already_exists());
            }
            audited.map_err(pg_err("writing the audit log"))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bulk writes

/// Starts the worker of a [`BulkHandle`] on PostgreSQL: a task holding a pooled connection
/// and the transaction. Inserts go in with `COPY … (FORMAT binary)`, the records and then
/// their audit rows; replaces and deletes as [`Store::apply`] writes them. The transaction
/// sets `faro.bulk`, so the row trigger stays quiet (migration 0004), and at the commit one
/// `{"resync": true}` tells every instance to reload. A connection lost or a process killed
/// rolls it back too.
async fn begin_bulk(pool: Pool, actor: &str) -> Result<BulkHandle> {
    const CONTEXT: &str = "starting a bulk write";
    let (commands, mut inbox) = tokio::sync::mpsc::channel::<BulkCommand>(1);
    let (started, start) =
        tokio::sync::oneshot::channel::<Result<(Vec<Collection>, DateTime<Utc>)>>();
    let actor = actor.to_owned();
    tokio::spawn(async move {
        let mut client = match pool.get().await {
            Ok(c) => c,
            Err(e) => {
                let _ = started.send(Err(pool_err(CONTEXT)(e)));
                return;
            }
        };
        let tx = match client.transaction().await {
            Ok(tx) => tx,
            Err(e) => {
                let _ = started.send(Err(pg_err(CONTEXT)(e)));
                return;
            }
        };
        // The row trigger stays quiet (migration 0004). And the table grows inside this
        // transaction, where no statistics see it: a plan made for the table as it was
        // (empty, say) would scan all of it for every key looked up, so the lookups here
        // are planned afresh, on the primary key's index.
        let settings = "SET LOCAL faro.bulk = 'on'; SET LOCAL enable_seqscan = off";
        if let Err(e) = tx.batch_execute(settings).await {
            let _ = started.send(Err(pg_err(CONTEXT)(e)));
            return;
        }
        let mut state = BulkState::default();
        let empty = match empty_collections(&tx).await {
            Ok(empty) => empty,
            Err(e) => {
                let _ = started.send(Err(e));
                return;
            }
        };
        for rebuild in &mut state.tables {
            match estimated_rows(&tx, rebuild.table).await {
                Ok(n) => rebuild.existing = n,
                Err(e) => {
                    let _ = started.send(Err(e));
                    return;
                }
            }
        }
        let now = now_micros();
        let _ = started.send(Ok((empty, now)));
        while let Some(command) = inbox.recv().await {
            match command {
                BulkCommand::Get(keys, reply) => {
                    // By the primary key, which a lookup needs back first; planned afresh,
                    // under this transaction's settings.
                    let found = match restore_key(&tx, &mut state).await {
                        Ok(()) => get_many_in(&tx, &keys, Plan::Fresh).await,
                        Err(e) => Err(e),
                    };
                    let _ = reply.send(found);
                }
                BulkCommand::Apply(ops, reply) => {
                    let _ = reply.send(bulk_apply(&tx, ops, &actor, now, &mut state).await);
                }
                BulkCommand::Commit(reply) => {
                    let _ = reply.send(bulk_commit(tx, state).await);
                    return;
                }
            }
        }
        // The handle went away uncommitted: `tx` rolls back as it drops.
    });
    let (empty, now) = start.await.map_err(|e| StoreError::backend(CONTEXT, e))??;
    Ok(BulkHandle::new(commands, KnownAbsent::new(empty), now))
}

/// The records among `keys` that `client` (a connection, or a transaction on it) sees.
async fn get_many_in(
    client: &impl deadpool_postgres::GenericClient,
    keys: &[(Collection, RecordId)],
    plan: Plan,
) -> Result<Vec<Record>> {
    const CONTEXT: &str = "reading records";
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = plan
        .prepare(client, GET_MANY)
        .await
        .map_err(pg_err(CONTEXT))?;
    let collections: Vec<&str> = keys.iter().map(|(c, _)| c.as_str()).collect();
    let ids: Vec<&str> = keys.iter().map(|(_, id)| id.as_str()).collect();
    let rows = client
        .query(&stmt, &[&collections, &ids])
        .await
        .map_err(pg_err(CONTEXT))?;
    rows.iter().map(|r| to_record(r, CONTEXT)).collect()
}

/// New records a bulk write copies with every index kept up to date row by row; past this
/// many, the secondary indexes of a table it fills may be dropped inside the transaction and
/// built again at its commit ([`defer_indexes`], [`worth_rebuilding`]).
const DEFER_INDEXES_AFTER: usize = 50_000;

/// A table a bulk write fills, whose secondary indexes it may build again.
struct Rebuild {
    table: &'static str,
    /// Its rows when the transaction began (the planner's estimate).
    existing: u64,
    /// Whether dropping its secondary indexes was tried.
    tried: bool,
}

/// Whether building a table's secondary indexes again, over its `existing` rows and the
/// `inserted` ones, costs less than keeping them up to date for each row inserted from here:
/// a sorted build takes about a third of the time of row-by-row upkeep per row (GiST: 2 s
/// against 6.5 s a million; the audit history btree, 0.85 s against 3 s), so it pays once
/// the import has added at least half as many rows as the table held, and the rows still to
/// come (at least as many as so far, by the time it is decided) tip it further.
fn worth_rebuilding(existing: u64, inserted: usize) -> bool {
    inserted > DEFER_INDEXES_AFTER && existing <= 2 * inserted as u64
}

/// What a bulk transaction has done so far.
struct BulkState {
    wrote: bool,
    /// Records inserted.
    inserted: usize,
    /// `records` and `audit_log`.
    tables: [Rebuild; 2],
    /// The definitions of the secondary indexes dropped, to build again at the commit.
    deferred: Vec<String>,
    /// While the records' primary key is dropped, the statement that adds it back.
    key: Option<String>,
}

impl Default for BulkState {
    fn default() -> Self {
        let rebuild = |table| Rebuild {
            table,
            existing: 0,
            tried: false,
        };
        Self {
            wrote: false,
            inserted: 0,
            tables: [rebuild("records"), rebuild("audit_log")],
            deferred: Vec::new(),
            key: None,
        }
    }
}

/// The collections without any record, as `tx` sees them.
async fn empty_collections(tx: &Transaction<'_>) -> Result<Vec<Collection>> {
    const CONTEXT: &str = "starting a bulk write";
    let names: Vec<&str> = Collection::ALL.iter().map(|c| c.as_str()).collect();
    let rows = tx
        .query(
            "SELECT c FROM unnest($1::text[]) AS c
             WHERE NOT EXISTS (SELECT 1 FROM records WHERE collection = c)",
            &[&names],
        )
        .await
        .map_err(pg_err(CONTEXT))?;
    Ok(Collection::ALL
        .iter()
        .copied()
        .filter(|c| rows.iter().any(|r| r.get::<_, &str>(0) == c.as_str()))
        .collect())
}

/// Applies `ops` in order inside the bulk transaction: each run of inserts by `COPY`, each
/// run of other operations locked, checked and written as [`Store::apply`] does.
async fn bulk_apply(
    tx: &Transaction<'_>,
    ops: Vec<BulkOp>,
    actor: &str,
    now: DateTime<Utc>,
    state: &mut BulkState,
) -> Result<()> {
    state.wrote |= !ops.is_empty();
    let mut ops = ops.into_iter().peekable();
    while ops.peek().is_some() {
        let mut inserts = Vec::new();
        while let Some(BulkOp::Insert(ready)) = ops.next_if(|op| matches!(op, BulkOp::Insert(_))) {
            inserts.push(ready);
        }
        if !inserts.is_empty() {
            state.inserted += inserts.len();
            for rebuild in &mut state.tables {
                if !rebuild.tried && worth_rebuilding(rebuild.existing, state.inserted) {
                    rebuild.tried = true;
                    let dropped = defer_indexes(tx, rebuild.table).await?;
                    state.deferred.extend(dropped.indexes);
                    state.key = state.key.take().or(dropped.key);
                }
            }
            copy_inserts(tx, inserts, actor, now).await?;
        }
        let mut run = Vec::new();
        while let Some(BulkOp::Other(op)) = ops.next_if(|op| matches!(op, BulkOp::Other(_))) {
            run.push(op);
        }
        if !run.is_empty() {
            // Found and written by their key (`ON CONFLICT` needs it too).
            restore_key(tx, state).await?;
            let mut state = lock_targets(tx, &run, Plan::Fresh).await?;
            let planned = run
                .iter()
                .map(|op| plan(op, &mut state, now))
                .collect::<Result<Vec<_>>>()?;
            execute_plan(tx, &planned, now, actor).await?;
        }
    }
    Ok(())
}

/// A value already in PostgreSQL's binary form, for `COPY … (FORMAT binary)`: a geometry as
/// EWKB with its SRID, a `jsonb` as its version byte and text, or a `json` as its text (no
/// `serde_json::Value` built to be printed again).
#[derive(Debug)]
struct Binary(Vec<u8>);

impl Binary {
    fn jsonb(text: &str) -> Self {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.push(1);
        bytes.extend_from_slice(text.as_bytes());
        Self(bytes)
    }

    fn json(text: String) -> Self {
        Self(text.into_bytes())
    }
}

impl ToSql for Binary {
    fn to_sql(
        &self,
        _: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        out.extend_from_slice(&self.0);
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        use tokio_postgres::types::Type;
        ty.name() == "geometry" || *ty == Type::JSONB || *ty == Type::JSON
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A binary `COPY` into `target` (a table and its columns) of rows of `types`.
async fn copy_writer(
    tx: &Transaction<'_>,
    target: &str,
    types: &[tokio_postgres::types::Type],
    context: &'static str,
) -> Result<Pin<Box<tokio_postgres::binary_copy::BinaryCopyInWriter>>> {
    let sink = tx
        .copy_in(&format!("COPY {target} FROM STDIN (FORMAT binary)"))
        .await
        .map_err(pg_err(context))?;
    Ok(Box::pin(
        tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink, types),
    ))
}

/// Writes new records, made [`Ready`] by the caller, and their audit rows with two binary
/// `COPY`s: what is left to do here is sending, so that the server is kept busy. The import compared
/// every id with the store inside this transaction, so an id taken meanwhile is a concurrent
/// writer's, and the primary key refuses it (the whole import fails).
async fn copy_inserts(
    tx: &Transaction<'_>,
    inserts: Vec<Ready>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    use geozero::{CoordDimensions, ToWkb};
    use tokio_postgres::types::Type;
    const CONTEXT: &str = "writing records in bulk";
    let geometry = tx
        .prepare_cached("SELECT geom FROM records LIMIT 0")
        .await
        .map_err(pg_err(CONTEXT))?
        .columns()[0]
        .type_()
        .clone();
    let mut writer = copy_writer(
        tx,
        "records (collection, id, geom, properties, version, created_at, updated_at)",
        &[
            Type::TEXT,
            Type::TEXT,
            geometry,
            Type::JSONB,
            Type::INT8,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
        ],
        CONTEXT,
    )
    .await?;
    for ready in &inserts {
        let r = &ready.record;
        let ewkb = r
            .geometry()
            .to_ewkb(CoordDimensions::xy(), Some(4326))
            .map_err(|e| StoreError::backend("encoding geometry as EWKB", e))?;
        let meta = r.meta();
        writer
            .as_mut()
            .write(&[
                &r.collection().as_str(),
                &r.id().as_str(),
                &Binary(ewkb),
                &Binary::jsonb(&ready.properties),
                &meta.version,
                &meta.created_at,
                &meta.updated_at,
            ])
            .await
            .map_err(pg_err(CONTEXT))?;
    }
    writer.as_mut().finish().await.map_err(pg_err(CONTEXT))?;
    let mut writer = copy_writer(
        tx,
        "audit_log (at, actor, action, collection, record_id, after)",
        &[
            Type::TIMESTAMPTZ,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::JSON,
        ],
        "writing the audit log",
    )
    .await?;
    for Ready { record, audit, .. } in inserts {
        writer
            .as_mut()
            .write(&[
                &now,
                &actor,
                &"create",
                &record.collection().as_str(),
                &record.id().as_str(),
                &Binary::json(audit),
            ])
            .await
            .map_err(pg_err("writing the audit log"))?;
    }
    writer
        .as_mut()
        .finish()
        .await
        .map_err(pg_err("writing the audit log"))?;
    Ok(())
}

/// Drops the secondary indexes of `table` (`records` or `audit_log`: every index but the
/// primary key and unique ones) inside the bulk transaction and returns their definitions,
/// for [`bulk_commit`] to build them again; of `records`, the primary key too (0.8 s to build
/// for a million records, 1.6 s kept up row by row; the audit log's, a growing integer, costs
/// little to keep), which [`restore_key`] adds back at the commit or as soon as a record must
/// be found by its key. A large import then pays for one sorted build of each index instead
/// of an insertion per row: a GiST index built from a million points takes about two
/// seconds, kept up to date row by row over six (docs/benchmarks.md), as `pg_restore` and
/// `ogr2ogr` into a new table do. Transactional DDL keeps it safe: a failed or killed import
/// rolls the drops back with everything else, and no other transaction ever sees the table
/// without them (it waits for the lock).
///
/// The price: from here to the commit the transaction holds `table` exclusively, so other
/// writers, and readers of it in SQL, wait for the import (faro's instances serve reads from
/// their own index meanwhile). If the lock is not granted within five seconds (another
/// transaction is using the table), or waiting for it would deadlock, the import keeps the
/// indexes and goes on row by row.
async fn defer_indexes(tx: &Transaction<'_>, table: &str) -> Result<Dropped> {
    use tokio_postgres::error::SqlState;
    const CONTEXT: &str = "dropping secondary indexes for a bulk write";
    const INDEXES: &str = "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid = $1::text::regclass
          AND NOT i.indisprimary AND NOT i.indisunique AND NOT i.indisexclusion AND i.indisvalid
        ORDER BY i.indexrelid";
    let lock_timeout: String = tx
        .query_one("SELECT current_setting('lock_timeout')", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(pg_err(CONTEXT))?;
    tx.batch_execute("SAVEPOINT faro_defer_indexes; SET LOCAL lock_timeout = '5s'")
        .await
        .map_err(pg_err(CONTEXT))?;
    let locked = tx
        .batch_execute(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        .await;
    if let Err(e) = locked {
        let busy = [
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::T_R_DEADLOCK_DETECTED,
        ];
        if !e.code().is_some_and(|code| busy.contains(code)) {
            return Err(pg_err(CONTEXT)(e));
        }
        // Undoes the timeout too.
        tx.batch_execute(
            "ROLLBACK TO SAVEPOINT faro_defer_indexes; RELEASE SAVEPOINT faro_defer_indexes",
        )
        .await
        .map_err(pg_err(CONTEXT))?;
        tracing::warn!(
            table,
            "busy: this import keeps its indexes up to date row by row"
        );
        return Ok(Dropped::default());
    }
    let indexes = tx
        .query(INDEXES, &[&table])
        .await
        .map_err(pg_err(CONTEXT))?;
    let mut definitions = Vec::with_capacity(indexes.len());
    for row in &indexes {
        let name: &str = row.try_get(0).map_err(pg_err(CONTEXT))?;
        tx.batch_execute(&format!("DROP INDEX {name}"))
            .await
            .map_err(pg_err(CONTEXT))?;
        definitions.push(row.try_get(1).map_err(pg_err(CONTEXT))?);
    }
    let key = if table == "records" {
        let key = tx
            .query_opt(
                "SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint
                 WHERE conrelid = $1::text::regclass AND contype = 'p'",
                &[&table],
            )
            .await
            .map_err(pg_err(CONTEXT))?;
        match key {
            Some(row) => {
                let name: &str = row.try_get(0).map_err(pg_err(CONTEXT))?;
                let definition: &str = row.try_get(1).map_err(pg_err(CONTEXT))?;
                tx.batch_execute(&format!("ALTER TABLE {table} DROP CONSTRAINT {name}"))
                    .await
                    .map_err(pg_err(CONTEXT))?;
                Some(format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
                ))
            }
            None => None,
        }
    } else {
        None
    };
    tx.execute(
        "SELECT set_config('lock_timeout', $1, true)",
        &[&lock_timeout],
    )
    .await
    .map_err(pg_err(CONTEXT))?;
    tx.batch_execute("RELEASE SAVEPOINT faro_defer_indexes")
        .await
        .map_err(pg_err(CONTEXT))?;
    tracing::debug!(?definitions, ?key, "indexes dropped until the commit");
    Ok(Dropped {
        indexes: definitions,
        key,
    })
}

/// What [`defer_indexes`] dropped, to be built again.
#[derive(Default)]
struct Dropped {
    /// The definitions of the secondary indexes.
    indexes: Vec<String>,
    /// The statement that adds the primary key of `records` back.
    key: Option<String>,
}

/// Adds back the records' primary key, if [`defer_indexes`] dropped it: at the commit, or
/// as soon as the transaction must find records by their key. A key another writer took
/// before the table was locked (a collection empty when the import began is not looked up)
/// and that the import wrote too fails here as it would have in the `COPY`: the whole import
/// fails, with the key named.
async fn restore_key(tx: &Transaction<'_>, state: &mut BulkState) -> Result<()> {
    const CONTEXT: &str = "building the primary key of the records again";
    let Some(statement) = state.key.take() else {
        return Ok(());
    };
    tx.batch_execute("SAVEPOINT faro_restore_key")
        .await
        .map_err(pg_err(CONTEXT))?;
    let Err(e) = tx.batch_execute(&statement).await else {
        return tx
            .batch_execute("RELEASE SAVEPOINT faro_restore_key")
            .await
            .map_err(pg_err(CONTEXT));
    };
    if e.code() != Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        return Err(pg_err(CONTEXT)(e));
    }
    tx.batch_execute("ROLLBACK TO SAVEPOINT faro_restore_key")
        .await
        .map_err(pg_err(CONTEXT))?;
    let twice = tx
        .query_opt(
            "SELECT collection, id FROM records GROUP BY collection, id HAVING count(*) > 1 LIMIT 1",
            &[],
        )
        .await
        .map_err(pg_err(CONTEXT))?;
    let named = twice.and_then(|row| {
        let collection: Collection = row.get::<_, &str>(0).parse().ok()?;
        let id = RecordId::parse(row.get::<_, &str>(1)).ok()?;
        Some(StoreError::AlreadyExists { collection, id })
    });
    Err(named.unwrap_or_else(|| pg_err(CONTEXT)(e)))
}

/// The rows of `table` by the planner's estimate (`reltuples`: kept by autovacuum and
/// ANALYZE, 0 after a TRUNCATE), or counted if the table was never analysed.
async fn estimated_rows(tx: &Transaction<'_>, table: &str) -> Result<u64> {
    const CONTEXT: &str = "starting a bulk write";
    let estimate: f32 = tx
        .query_one(
            "SELECT reltuples FROM pg_class WHERE oid = $1::text::regclass",
            &[&table],
        )
        .await
        .and_then(|row| row.try_get(0))
        .map_err(pg_err(CONTEXT))?;
    if estimate >= 0.0 {
        // Row counts are far below f32's exact range for the decision made with them.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return Ok(estimate as u64);
    }
    let counted: i64 = tx
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(pg_err(CONTEXT))?;
    Ok(u64::try_from(counted).unwrap_or(0))
}

/// Commits a bulk transaction, after building again the indexes it dropped; when it wrote,
/// every instance is told to reload, once.
async fn bulk_commit(tx: Transaction<'_>, mut state: BulkState) -> Result<()> {
    restore_key(&tx, &mut state).await?;
    for definition in &state.deferred {
        tx.batch_execute(definition)
            .await
            .map_err(pg_err("building the secondary indexes again"))?;
    }
    if state.wrote {
        tx.execute("SELECT pg_notify($1, '{\"resync\": true}')", &[&CHANNEL])
            .await
            .map_err(pg_err("notifying the instances"))?;
    }
    tx.commit()
        .await
        .map_err(pg_err("committing a transaction"))
}

/// One attempt at a batch: one transaction, committed only if every operation succeeds.
async fn apply_once(
    client: &mut deadpool_postgres::Client,
    ops: &[WriteOp],
    actor: &str,
) -> Result<Vec<Change>> {
    let tx = client
        .transaction()
        .await
        .map_err(pg_err("starting a transaction"))?;
    let now = now_micros();
    let mut state = lock_targets(&tx, ops, Plan::Cached).await?;
    let mut planned = Vec::with_capacity(ops.len());
    let mut refused = None;
    for op in ops {
        match plan(op, &mut state, now) {
            Ok(p) => planned.push(p),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    // The writes before a refused operation go out too: one of them may fail first.
    execute_plan(&tx, &planned, now, actor).await?;
    if let Some(e) = refused {
        return Err(e);
    }
    tx.commit()
        .await
        .map_err(pg_err("committing a transaction"))?;
    Ok(planned.iter().map(Planned::change).collect())
}

// ---------------------------------------------------------------------------------------------
// Listening

/// Who wants [`StoreEvent`]s, and whether the listening connection is up.
struct Subscribers {
    senders: Vec<UnboundedSender<StoreEvent>>,
    available: bool,
}

fn lock(subscribers: &Mutex<Subscribers>) -> std::sync::MutexGuard<'_, Subscribers> {
    subscribers.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends to every live subscriber, forgetting those that went away.
fn broadcast(subscribers: &Mutex<Subscribers>, event: &StoreEvent) {
    lock(subscribers)
        .senders
        .retain(|s| s.send(event.clone()).is_ok());
}

fn set_available(subscribers: &Mutex<Subscribers>, available: bool) {
    let mut guard = lock(subscribers);
    guard.available = available;
    guard
        .senders
        .retain(|s| s.send(StoreEvent::Availability(available)).is_ok());
}

/// One dedicated connection that has run `LISTEN faro_changes`.
struct ListenSession {
    client: tokio_postgres::Client,
    notifications: UnboundedReceiver<Notification>,
    driver: JoinHandle<()>,
}

impl Drop for ListenSession {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl ListenSession {
    async fn open(
        config: &tokio_postgres::Config,
        tls: &MakeRustlsConnect,
    ) -> Result<Self, tokio_postgres::Error> {
        // Named apart from the pool's connections, for pg_stat_activity.
        let mut config = config.clone();
        let name = format!("{} listen", config.get_application_name().unwrap_or("faro"));
        config.application_name(name);
        let (client, mut connection) = config.connect(tls.clone()).await?;
        let (tx, notifications) = unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if tx.send(n).is_err() {
                            return;
                        }
                    }
                    Ok(AsyncMessage::Notice(notice)) => {
                        tracing::debug!(notice = %notice, "PostgreSQL notice");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %describe(&e), "the PostgreSQL LISTEN connection failed");
                        return;
                    }
                }
            }
        });
        let session = Self {
            client,
            notifications,
            driver,
        };
        session
            .client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await?;
        Ok(session)
    }

    /// Forwards notifications until the connection fails.
    async fn serve(&mut self, subscribers: &Mutex<Subscribers>) {
        let mut health = tokio::time::interval(HEALTH_INTERVAL);
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        health.tick().await;
        loop {
            tokio::select! {
                n = self.notifications.recv() => {
                    let Some(n) = n else { return };
                    if let Some(event) = parse_notification(&n) {
                        broadcast(subscribers, &event);
                    }
                }
                _ = health.tick() => {
                    let ping = tokio::time::timeout(TIMEOUT, self.client.simple_query("SELECT 1"));
                    match ping.await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(error = %describe(&e), "the PostgreSQL LISTEN connection stopped answering");
                            return;
                        }
                        Err(_) => {
                            tracing::warn!("the PostgreSQL LISTEN connection stopped answering");
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// What the triggers send: `{"collection", "id", "version", "op"}` for a record, and
/// `{"tokens": true}` for a change to the tokens; a bulk import sends `{"resync": true}` once.
#[derive(serde::Deserialize)]
struct Payload {
    #[serde(default)]
    tokens: bool,
    #[serde(default)]
    resync: bool,
    #[serde(default)]
    collection: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    version: Option<i64>,
    #[serde(default)]
    op: Option<String>,
}

fn parse_notification(n: &Notification) -> Option<StoreEvent> {
    if n.channel() != CHANNEL {
        return None;
    }
    let parsed = serde_json::from_str::<Payload>(n.payload())
        .map_err(|e| e.to_string())
        .and_then(|p| {
            if p.tokens {
                return Ok(StoreEvent::TokensChanged);
            }
            if p.resync {
                return Ok(StoreEvent::Resync);
            }
            let collection: Collection = p.collection.parse()?;
            let id = RecordId::parse(&p.id).map_err(|e| e.to_string())?;
            Ok(StoreEvent::Changed {
                collection,
                id,
                version: p.version,
                deleted: p.op.as_deref() == Some("delete"),
            })
        });
    match parsed {
        Ok(event) => Some(event),
        Err(e) => {
            tracing::warn!(payload = n.payload(), error = %e, "ignoring a malformed {CHANNEL} notification");
            None
        }
    }
}

/// Runs for the life of the store: forwards notifications, and across a lost connection says
/// `Availability(false)`, reconnects with backoff, then says `Availability(true)` and `Resync`.
async fn run_listener(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    subscribers: Arc<Mutex<Subscribers>>,
    mut session: ListenSession,
) {
    loop {
        session.serve(&subscribers).await;
        drop(session);
        tracing::warn!("lost the PostgreSQL LISTEN connection; reconnecting");
        set_available(&subscribers, false);
        let mut delay = BACKOFF_MIN;
        session = loop {
            tokio::time::sleep(delay).await;
            match tokio::time::timeout(TIMEOUT, ListenSession::open(&config, &tls)).await {
                Ok(Ok(session)) => break session,
                Ok(Err(e)) => {
                    tracing::debug!(error = %describe(&e), "PostgreSQL still unreachable");
                }
                Err(_) => tracing::debug!("PostgreSQL still unreachable (timeout)"),
            }
            delay = (delay * 2).min(BACKOFF_MAX);
        };
        tracing::info!("PostgreSQL LISTEN connection restored; asking for a resync");
        set_available(&subscribers, true);
        broadcast(&subscribers, &StoreEvent::Resync);
    }
}

// ---------------------------------------------------------------------------------------------
// The trait

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        const CONTEXT: &str = "pinging PostgreSQL";
        let ping = async {
            let client = self.client(CONTEXT).await?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(pg_err(CONTEXT))?;
            Ok(())
        };
        tokio::time::timeout(TIMEOUT, ping)
            .await
            .map_err(|_| StoreError::Unavailable {
                context: CONTEXT,
                message: format!("no answer within {} s", TIMEOUT.as_secs()),
            })?
    }

    async fn load_all(&self) -> Result<Vec<Record>> {
        const CONTEXT: &str = "loading all records";
        let client = self.client(CONTEXT).await?;
        let stmt = client
            .prepare_cached(LOAD_ALL)
            .await
            .map_err(pg_err(CONTEXT))?;
        let rows = client
            .query_raw(&stmt, std::iter::empty::<&(dyn ToSql + Sync)>())
            .await
            .map_err(pg_err(CONTEXT))?;
        futures_util::pin_mut!(rows);
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(pg_err(CONTEXT))? {
            out.push(to_record(&row, CONTEXT)?);
        }
        Ok(out)
    }

    async fn get(&self, collection: Collection, id: &RecordId) -> Result<Option<Record>> {
        const CONTEXT: &str = "reading a record";
        let client = self.client(CONTEXT).await?;
        let stmt = client.prepare_cached(GET).await.map_err(pg_err(CONTEXT))?;
        let row = client
            .query_opt(&stmt, &[&collection.as_str(), &id.as_str()])
            .await
            .map_err(pg_err(CONTEXT))?;
        row.map(|r| to_record(&r, CONTEXT)).transpose()
    }

    async fn get_many(&self, keys: &[(Collection, RecordId)]) -> Result<Vec<Record>> {
        let client = self.client("reading records").await?;
        get_many_in(&client, keys, Plan::Cached).await
    }

    async fn count(&self) -> Result<u64> {
        const CONTEXT: &str = "counting records";
        let client = self.client(CONTEXT).await?;
        let stmt = client
            .prepare_cached("SELECT count(*) FROM records")
            .await
            .map_err(pg_err(CONTEXT))?;
        let n: i64 = client
            .query_one(&stmt, &[])
            .await
            .map_err(pg_err(CONTEXT))?
            .try_get(0)
            .map_err(pg_err(CONTEXT))?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    async fn bulk<'s>(&'s self, actor: &str) -> Result<Box<dyn super::Bulk + 's>> {
        Ok(Box::new(begin_bulk(self.pool.clone(), actor).await?))
    }

    async fn apply(&self, ops: Vec<WriteOp>, actor: &str) -> Result<Vec<Change>> {
        let mut attempt = 0;
        loop {
            let mut client = self.client("writing records").await?;
            match apply_once(&mut client, &ops, actor).await {
                Err(e) if attempt < RETRIES && is_retryable(&e) => {
                    attempt += 1;
                    tracing::debug!(attempt, error = %e, "retrying a conflicting write");
                }
                result => return result,
            }
        }
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        const CONTEXT: &str = "reading the audit log";
        let client = self.client(CONTEXT).await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, at, actor, action, collection, record_id, before, after
                 FROM audit_log
                 WHERE ($1::text IS NULL OR collection = $1) AND ($2::text IS NULL OR record_id = $2)
                   AND ($3::text IS NULL OR strpos(lower(actor), lower($3)) > 0)
                   AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at < $5)
                   AND ($6::bigint IS NULL OR id < $6)
                 ORDER BY id DESC LIMIT $7",
            )
            .await
            .map_err(pg_err(CONTEXT))?;
        let rows = client
            .query(
                &stmt,
                &[
                    &query.collection.map(Collection::as_str),
                    &query.record_id,
                    &query.actor,
                    &query.from,
                    &query.to,
                    &query.before_seq,
                    &i64::from(query.limit),
                ],
            )
            .await
            .map_err(pg_err(CONTEXT))?;
        rows.iter()
            .map(|r| {
                let collection: &str = r.try_get(4).map_err(pg_err(CONTEXT))?;
                let collection = collection.parse().unwrap_or(Collection::Services);
                Ok(AuditEntry {
                    seq: r.try_get(0).map_err(pg_err(CONTEXT))?,
                    at: r.try_get(1).map_err(pg_err(CONTEXT))?,
                    actor: r.try_get(2).map_err(pg_err(CONTEXT))?,
                    action: r.try_get(3).map_err(pg_err(CONTEXT))?,
                    collection,
                    record_id: r.try_get(5).map_err(pg_err(CONTEXT))?,
                    before: r
                        .try_get::<_, Option<serde_json::Value>>(6)
                        .map_err(pg_err(CONTEXT))?
                        .map(|d| audit_document(collection, d)),
                    after: r
                        .try_get::<_, Option<serde_json::Value>>(7)
                        .map_err(pg_err(CONTEXT))?
                        .map(|d| audit_document(collection, d)),
                })
            })
            .collect()
    }

    async fn create_scoped_token(&self, token: &NewToken<'_>) -> Result<TokenRecord> {
        const CONTEXT: &str = "creating a token";
        let client = self.client(CONTEXT).await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO tokens (name, role, secret_hash, created_at, territories, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .await
            .map_err(pg_err(CONTEXT))?;
        let now = now_micros();
        let territories: Vec<&str> = token.territories.iter().map(RecordId::as_str).collect();
        let id: i64 = client
            .query_one(
                &stmt,
                &[
                    &token.name,
                    &token.role.as_str(),
                    &token.secret_hash,
                    &now,
                    &territories,
                    &token.expires_at,
                ],
            )
            .await
            .map_err(pg_err(CONTEXT))?
            .try_get(0)
            .map_err(pg_err(CONTEXT))?;
        Ok(TokenRecord {
            id,
            name: token.name.to_owned(),
            role: token.role,
            created_at: now,
            revoked_at: None,
            territories: token.territories.to_vec(),
            expires_at: token.expires_at,
            last_used_at: None,
        })
    }

    async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        const CONTEXT: &str = "recording a token's use";
        let client = self.client(CONTEXT).await?;
        let stmt = client
            .prepare_cached("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
            .await
            .map_err(pg_err(CONTEXT))?;
        client
            .execute(&stmt, &[&at, &id])
            .await
            .map_err(pg_err(CONTEXT))?;
        Ok(())
    }

    async fn find_token(&self, secret_hash: &str) -> Result<Option<TokenRecord>> {
        const CONTEXT: &str = "looking up a token";
        let client = self.client(CONTEXT).await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_hash = $1 AND revoked_at IS NULL"
            ))
            .await
            .map_err(pg_err(CONTEXT))?;
        client
            .query_opt(&stmt, &[&secret_hash])
            .await
            .map_err(pg_err(CONTEXT))?
            .as_ref()
            .map(to_token)
            .transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        const CONTEXT: &str = "listing tokens";
        let client = self.client(CONTEXT).await?;
        let stmt = client
            .prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id"))
            .await
            .map_err(pg_err(CONTEXT))?;
        client
            .query(&stmt, &[])
            .await
            .map_err(pg_err(CONTEXT))?
            .iter()
            .map(to_token)
            .collect()
    }

    async fn revoke_token(&self, id: i64) -> Result<bool> {
        const CONTEXT: &str = "revoking a token";
        let client = self.client(CONTEXT).await?;
        let stmt = client
            .prepare_cached(
                "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .await
            .map_err(pg_err(CONTEXT))?;
        let n = client
            .execute(&stmt, &[&now_micros(), &id])
            .await
            .map_err(pg_err(CONTEXT))?;
        Ok(n == 1)
    }

    /// Changes from every process writing to the database, this one included (the trigger
    /// notifies every committed row): `Changed` per record written or deleted. When the
    /// listening connection is lost: `Availability(false)`, then once it is back
    /// `Availability(true)` and `Resync`, as notifications may have been missed meanwhile.
    /// A subscriber that arrives during an outage gets `Availability(false)` first.
    ///
    /// Listening starts at [`PostgresStore::connect`]: subscribe before `load_all` and no
    /// change falls between the two.
    fn subscribe(&self) -> Option<UnboundedReceiver<StoreEvent>> {
        let (tx, rx) = unbounded_channel();
        let mut guard = lock(&self.subscribers);
        if !guard.available {
            let _ = tx.send(StoreEvent::Availability(false));
        }
        guard.senders.push(tx);
        Some(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::worth_rebuilding;

    #[test]
    fn indexes_are_built_again_only_for_an_import_large_beside_its_table() {
        // A first import, or into a table emptied by TRUNCATE: once past the threshold.
        assert!(!worth_rebuilding(0, 50_000));
        assert!(worth_rebuilding(0, 50_001));
        // A table of 5 million rows: not for 60,000 more, only past 2.5 million.
        assert!(!worth_rebuilding(5_000_000, 60_000));
        assert!(!worth_rebuilding(5_000_000, 2_499_999));
        assert!(worth_rebuilding(5_000_000, 2_500_000));
        // A big audit log beside a small table: decided per table.
        assert!(worth_rebuilding(100_000, 60_000));
        assert!(!worth_rebuilding(30_000_000, 60_000));
    }
}
