//! The embedded default store: one SQLite file in WAL mode.
//!
//! rusqlite is synchronous; every call runs on tokio's blocking pool behind one connection.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{
    AuditEntry, AuditQuery, Bulk, BulkCommand, BulkHandle, BulkOp, Change, KnownAbsent, NewToken,
    Result, Store, StoreError, StoreEvent, TokenRecord, WriteOp, assemble, audit_document,
    audit_text, check_version, now_micros, record_from_parts, wkb_decode, wkb_encode,
};
use crate::domain::{Collection, Meta, Record, RecordId, Role};

const SCHEMA: &str = include_str!("sqlite_schema.sql");
const SCHEMA_VERSION: i64 = 2;

/// What brings a file of an older schema version up to date, before [`SCHEMA`] runs: `(the
/// version it makes, SQL)`.
const UPGRADES: &[(i64, &str)] = &[(
    2,
    "ALTER TABLE tokens ADD COLUMN territories TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE tokens ADD COLUMN expires_at TEXT;
     ALTER TABLE tokens ADD COLUMN last_used_at TEXT;",
)];

/// A SQLite file holding records, tokens and the audit log.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: String,
}

fn db_err(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| {
        // Another process holding the file's lock past the busy timeout is a passing state,
        // answered 503 with Retry-After, never an internal error.
        if let rusqlite::Error::SqliteFailure(f, _) = &e
            && matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            )
        {
            return StoreError::Unavailable {
                context,
                message: "the SQLite file is locked by another process".to_owned(),
            };
        }
        StoreError::backend(context, e)
    }
}

/// Rows decoded together (on every core) when loading the whole store.
const LOAD_CHUNK: usize = 16_384;

/// How often a store looks for commits made by other processes on the same file.
pub const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// How long a statement waits for another process's lock before giving up (then: 503).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl SqliteStore {
    /// Opens (creating if needed) the file at `path` and brings its schema up to date.
    pub async fn open(path: &str) -> Result<Self> {
        let file = path.to_owned();
        let path = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection> {
            if let Some(parent) = Path::new(&path).parent()
                && !parent.as_os_str().is_empty()
                && !parent.exists()
            {
                return Err(StoreError::BadUrl(format!(
                    "the folder `{}` of the SQLite file does not exist",
                    parent.display()
                )));
            }
            let conn = Connection::open(&path).map_err(db_err("opening the SQLite file"))?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(db_err("setting WAL mode"))?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(db_err("setting synchronous mode"))?;
            // 64 MiB of page cache (the default is 2 MiB): an import's one large transaction
            // keeps its B-tree pages in memory instead of spilling them to the WAL early.
            conn.pragma_update(None, "cache_size", -65_536)
                .map_err(db_err("setting the cache size"))?;
            conn.pragma_update(None, "foreign_keys", "ON")
                .map_err(db_err("enabling foreign keys"))?;
            conn.busy_timeout(BUSY_TIMEOUT)
                .map_err(db_err("setting busy timeout"))?;
            let version: i64 = conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(db_err("reading schema version"))?;
            if version > SCHEMA_VERSION {
                return Err(StoreError::BadUrl(format!(
                    "the SQLite file has schema version {version}, newer than this faro knows ({SCHEMA_VERSION})"
                )));
            }
            if version > 0 {
                for (to, sql) in UPGRADES.iter().filter(|(to, _)| *to > version) {
                    conn.execute_batch(sql)
                        .map_err(db_err("upgrading the schema"))?;
                    conn.pragma_update(None, "user_version", to)
                        .map_err(db_err("writing schema version"))?;
                }
            }
            conn.execute_batch(SCHEMA).map_err(db_err("creating the schema"))?;
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(db_err("writing schema version"))?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::backend("opening the SQLite file", e))??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: file,
        })
    }

    async fn with_conn<T: Send + 'static>(
        &self,
        context: &'static str,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::Unavailable {
                context,
                message: "the SQLite connection was poisoned by an earlier panic".to_owned(),
            })?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::backend(context, e))?
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

struct Row {
    collection: String,
    id: String,
    geometry: Vec<u8>,
    properties: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

macro_rules! select_record {
    () => {
        "SELECT collection, id, geometry, properties, version, created_at, updated_at FROM records"
    };
}
const SELECT_RECORD: &str = select_record!();
const SELECT_ONE: &str = concat!(select_record!(), " WHERE collection = ?1 AND id = ?2");
const INSERT_RECORD: &str = "INSERT INTO records (collection, id, geometry, properties, min_lon, min_lat, max_lon, max_lat, version, created_at, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (collection, id) DO NOTHING";
const UPDATE_RECORD: &str = "UPDATE records SET geometry = ?3, properties = ?4, min_lon = ?5, min_lat = ?6, max_lon = ?7,
     max_lat = ?8, version = ?9, created_at = ?10, updated_at = ?11 WHERE collection = ?1 AND id = ?2";
const INSERT_AUDIT: &str = "INSERT INTO audit_log (at, actor, action, collection, record_id, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        collection: r.get(0)?,
        id: r.get(1)?,
        geometry: r.get(2)?,
        properties: r.get(3)?,
        version: r.get(4)?,
        created_at: parse_ts(&r.get::<_, String>(5)?)?,
        updated_at: parse_ts(&r.get::<_, String>(6)?)?,
    })
}

fn to_record(row: &Row) -> Result<Record> {
    let collection: Collection =
        row.collection
            .parse()
            .map_err(|e: String| StoreError::Corrupt {
                collection: Collection::Services,
                id: row.id.clone(),
                error: crate::domain::FieldError::new("collection", e),
            })?;
    let geometry = wkb_decode(&row.geometry)?;
    record_from_parts(
        collection,
        &row.id,
        geometry,
        crate::domain::Attributes::from_json_text(collection, &row.properties),
        Meta {
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        },
    )
}

fn current(tx: &Transaction<'_>, collection: Collection, id: &RecordId) -> Result<Option<Record>> {
    let row = tx
        .prepare_cached(SELECT_ONE)
        .and_then(|mut stmt| {
            stmt.query_row(params![collection.as_str(), id.as_str()], read_row)
                .optional()
        })
        .map_err(db_err("reading a record"))?;
    row.as_ref().map(to_record).transpose()
}

/// Writes `record`, inserting or updating it; whether a row was written (an insert writes
/// none when the id is taken). The statements are prepared once per connection: an import of
/// a million records runs the same three statements a million times.
fn write_record(tx: &Transaction<'_>, record: &Record, insert: bool, now: &Now) -> Result<bool> {
    write_record_with(tx, record, &record.attributes().to_json_text(), insert, now)
}

/// [`write_record`], given the record's stored properties (`Attributes::to_json_text`).
fn write_record_with(
    tx: &Transaction<'_>,
    record: &Record,
    props: &str,
    insert: bool,
    now: &Now,
) -> Result<bool> {
    let wkb = wkb_encode(record.geometry())?;
    let rect = geo::BoundingRect::bounding_rect(record.geometry());
    let (min_lon, min_lat, max_lon, max_lat) = rect.map_or((0.0, 0.0, 0.0, 0.0), |r| {
        (r.min().x, r.min().y, r.max().x, r.max().y)
    });
    let meta = record.meta();
    let sql = if insert { INSERT_RECORD } else { UPDATE_RECORD };
    let written = tx
        .prepare_cached(sql)
        .and_then(|mut stmt| {
            stmt.execute(params![
                record.collection().as_str(),
                record.id().as_str(),
                wkb,
                props,
                min_lon,
                min_lat,
                max_lon,
                max_lat,
                meta.version,
                now.text_of(meta.created_at),
                now.text_of(meta.updated_at)
            ])
        })
        .map_err(db_err("writing a record"))?;
    Ok(written > 0)
}

fn audit(
    tx: &Transaction<'_>,
    at: &Now,
    actor: &str,
    action: &str,
    before: Option<&Record>,
    after: Option<&Record>,
) -> Result<()> {
    let Some(subject) = after.or(before) else {
        return Ok(());
    };
    audit_texts(
        tx,
        at,
        actor,
        action,
        (subject.collection(), subject.id()),
        before.map(audit_text).as_deref(),
        after.map(audit_text).as_deref(),
    )
}

/// [`audit`], given the documents as stored ([`audit_text`]).
fn audit_texts(
    tx: &Transaction<'_>,
    at: &Now,
    actor: &str,
    action: &str,
    (collection, id): (Collection, &RecordId),
    before: Option<&str>,
    after: Option<&str>,
) -> Result<()> {
    tx.prepare_cached(INSERT_AUDIT)
        .and_then(|mut stmt| {
            stmt.execute(params![
                at.text,
                actor,
                action,
                collection.as_str(),
                id.as_str(),
                before,
                after,
            ])
        })
        .map_err(db_err("writing the audit log"))?;
    Ok(())
}

/// The records among `keys` that `conn` (or a transaction on it) sees.
fn get_many_in(conn: &Connection, keys: &[(Collection, RecordId)]) -> Result<Vec<Record>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let json = serde_json::Value::Array(
        keys.iter()
            .map(|(c, id)| serde_json::json!([c.as_str(), id.as_str()]))
            .collect(),
    )
    .to_string();
    let mut stmt = conn
        .prepare_cached(&format!(
            "{SELECT_RECORD} WHERE (collection, id) IN \
             (SELECT value ->> 0, value ->> 1 FROM json_each(?1))"
        ))
        .map_err(db_err("reading records"))?;
    let rows = stmt
        .query_map([json], read_row)
        .map_err(db_err("reading records"))?;
    let mut out = Vec::with_capacity(keys.len());
    for row in rows {
        out.push(to_record(&row.map_err(db_err("reading records"))?)?);
    }
    Ok(out)
}

/// The collections without any record, as `conn` sees them (a read that also begins the
/// snapshot of a deferred transaction).
fn empty_collections(conn: &Connection) -> Result<Vec<Collection>> {
    const CONTEXT: &str = "starting a bulk write";
    let mut stmt = conn
        .prepare_cached("SELECT NOT EXISTS (SELECT 1 FROM records WHERE collection = ?1)")
        .map_err(db_err(CONTEXT))?;
    let mut empty = Vec::new();
    for &c in Collection::ALL {
        if stmt
            .query_row([c.as_str()], |r| r.get::<_, bool>(0))
            .map_err(db_err(CONTEXT))?
        {
            empty.push(c);
        }
    }
    Ok(empty)
}

/// Starts the worker of a [`BulkHandle`] on SQLite: a thread holding the connection and the
/// transaction (rusqlite's transaction borrows the connection).
fn begin_bulk(conn: Arc<Mutex<Connection>>, actor: &str) -> Result<BulkHandle> {
    let (commands, mut inbox) = tokio::sync::mpsc::channel::<BulkCommand>(1);
    let (started, start) =
        std::sync::mpsc::sync_channel::<Result<(Vec<Collection>, DateTime<Utc>)>>(1);
    let actor = actor.to_owned();
    std::thread::Builder::new()
        .name("faro-sqlite-bulk".to_owned())
        .spawn(move || {
            let Ok(mut guard) = conn.lock() else {
                let _ = started.send(Err(StoreError::Unavailable {
                    context: "starting a bulk write",
                    message: "the SQLite connection was poisoned by an earlier panic".to_owned(),
                }));
                return;
            };
            let tx = match guard.transaction() {
                Ok(tx) => tx,
                Err(e) => {
                    let _ = started.send(Err(db_err("starting a transaction")(e)));
                    return;
                }
            };
            let now = now_micros();
            let _ = started.send(empty_collections(&tx).map(|empty| (empty, now)));
            while let Some(command) = inbox.blocking_recv() {
                match command {
                    BulkCommand::Get(keys, reply) => {
                        let _ = reply.send(get_many_in(&tx, &keys));
                    }
                    BulkCommand::Apply(ops, reply) => {
                        let _ = reply.send(apply_bulk_in(&tx, ops, &actor, now));
                    }
                    BulkCommand::Commit(reply) => {
                        let _ = reply.send(tx.commit().map_err(db_err("committing a transaction")));
                        return;
                    }
                }
            }
            // The handle went away uncommitted: `tx` rolls back as it drops.
        })
        .map_err(|e| StoreError::backend("starting a bulk write", e))?;
    let (empty, now) = start
        .recv()
        .map_err(|e| StoreError::backend("starting a bulk write", e))??;
    Ok(BulkHandle::new(commands, KnownAbsent::new(empty), now))
}

fn apply_ops(conn: &mut Connection, ops: Vec<WriteOp>, actor: &str) -> Result<Vec<Change>> {
    let tx = conn
        .transaction()
        .map_err(db_err("starting a transaction"))?;
    let mut changes = Vec::with_capacity(ops.len());
    apply_in(&tx, ops, actor, now_micros(), Some(&mut changes))?;
    tx.commit().map_err(db_err("committing a transaction"))?;
    Ok(changes)
}

/// The time of a write, and its text as stored, formatted once for all its rows.
struct Now {
    at: DateTime<Utc>,
    text: String,
}

impl Now {
    fn new(at: DateTime<Utc>) -> Self {
        Self { at, text: ts(at) }
    }

    fn text_of(&self, t: DateTime<Utc>) -> std::borrow::Cow<'_, str> {
        if t == self.at {
            std::borrow::Cow::Borrowed(&self.text)
        } else {
            std::borrow::Cow::Owned(ts(t))
        }
    }
}

/// Applies `ops` inside `tx` at `now`, pushing what changed to `changes` when asked (a bulk
/// import does not keep its million records).
/// The operations of a bulk write, in order: inserts as they were made [`Ready`], the others
/// as [`apply_in`] writes them.
fn apply_bulk_in(
    tx: &Transaction<'_>,
    ops: Vec<BulkOp>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let stamp = Now::new(now);
    let mut others = Vec::new();
    for op in ops {
        match op {
            BulkOp::Other(op) => others.push(op),
            BulkOp::Insert(ready) => {
                if !others.is_empty() {
                    apply_in(tx, std::mem::take(&mut others), actor, now, None)?;
                }
                let record = &ready.record;
                // The primary key says whether the id is taken: no read before the write.
                if !write_record_with(tx, record, &ready.properties, true, &stamp)? {
                    return Err(StoreError::AlreadyExists {
                        collection: record.collection(),
                        id: record.id().clone(),
                    });
                }
                audit_texts(
                    tx,
                    &stamp,
                    actor,
                    "create",
                    (record.collection(), record.id()),
                    None,
                    Some(&ready.audit),
                )?;
            }
        }
    }
    apply_in(tx, others, actor, now, None)
}

fn apply_in(
    tx: &Transaction<'_>,
    ops: Vec<WriteOp>,
    actor: &str,
    now: DateTime<Utc>,
    mut kept: Option<&mut Vec<Change>>,
) -> Result<()> {
    let mut changed = |change: Change| {
        if let Some(changes) = kept.as_deref_mut() {
            changes.push(change);
        }
    };
    let stamp = Now::new(now);
    for op in ops {
        match op {
            WriteOp::Insert {
                id,
                geometry,
                attributes,
            } => {
                let meta = Meta {
                    version: 1,
                    created_at: now,
                    updated_at: now,
                };
                let record = assemble(id, geometry, attributes, meta)?;
                // The primary key says whether the id is taken: no read before the write.
                if !write_record(tx, &record, true, &stamp)? {
                    return Err(StoreError::AlreadyExists {
                        collection: record.collection(),
                        id: record.id().clone(),
                    });
                }
                audit(tx, &stamp, actor, "create", None, Some(&record))?;
                changed(Change::Upsert(Arc::new(record)));
            }
            WriteOp::Replace {
                id,
                expected,
                geometry,
                attributes,
            } => {
                let collection = attributes.collection();
                let before =
                    check_version(current(tx, collection, &id)?, collection, &id, &expected)?;
                let meta = Meta {
                    version: before.meta().version + 1,
                    created_at: before.meta().created_at,
                    updated_at: now,
                };
                let record = assemble(id, geometry, attributes, meta)?;
                write_record(tx, &record, false, &stamp)?;
                audit(tx, &stamp, actor, "update", Some(&before), Some(&record))?;
                changed(Change::Upsert(Arc::new(record)));
            }
            WriteOp::Delete {
                collection,
                id,
                expected,
            } => {
                let before =
                    check_version(current(tx, collection, &id)?, collection, &id, &expected)?;
                tx.execute(
                    "DELETE FROM records WHERE collection = ?1 AND id = ?2",
                    params![collection.as_str(), id.as_str()],
                )
                .map_err(db_err("deleting a record"))?;
                audit(tx, &stamp, actor, "delete", Some(&before), None)?;
                changed(Change::Delete { collection, id });
            }
        }
    }
    Ok(())
}

const TOKEN_COLUMNS: &str =
    "id, name, role, created_at, revoked_at, territories, expires_at, last_used_at";

type TokenRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

fn read_token(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn to_token(t: TokenRow) -> Result<TokenRecord> {
    const CONTEXT: &str = "reading a token";
    let (id, name, role, created, revoked, territories, expires, last_used) = t;
    let corrupt = |e: String| StoreError::backend(CONTEXT, std::io::Error::other(e));
    let role: Role = role.parse().map_err(corrupt)?;
    let territories: Vec<String> =
        serde_json::from_str(&territories).map_err(|e| corrupt(e.to_string()))?;
    let territories = territories
        .iter()
        .map(|t| RecordId::parse(t).map_err(|e| corrupt(e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    let time = |t: Option<String>| t.map(|t| parse_ts(&t)).transpose().map_err(db_err(CONTEXT));
    Ok(TokenRecord {
        id,
        name,
        role,
        created_at: parse_ts(&created).map_err(db_err(CONTEXT))?,
        revoked_at: time(revoked)?,
        territories,
        expires_at: time(expires)?,
        last_used_at: time(last_used)?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        self.with_conn("pinging SQLite", |c| {
            c.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(db_err("pinging SQLite"))
        })
        .await
    }

    async fn load_all(&self) -> Result<Vec<Record>> {
        self.with_conn("loading all records", |c| {
            let mut stmt = c
                .prepare(&format!("{SELECT_RECORD} ORDER BY collection, id"))
                .map_err(db_err("loading all records"))?;
            let mut rows = stmt
                .query_map([], read_row)
                .map_err(db_err("loading all records"))?;
            // Rows are read in chunks and each chunk decoded on every core: decoding (WKB,
            // properties into typed attributes) is most of loading a large store.
            let mut out = Vec::new();
            let mut chunk = Vec::with_capacity(LOAD_CHUNK);
            loop {
                chunk.clear();
                for row in rows.by_ref().take(LOAD_CHUNK) {
                    chunk.push(row.map_err(db_err("loading all records"))?);
                }
                if chunk.is_empty() {
                    return Ok(out);
                }
                for record in crate::par::filter_map(&chunk, 2048, |row| Some(to_record(row))) {
                    out.push(record?);
                }
            }
        })
        .await
    }

    async fn get(&self, collection: Collection, id: &RecordId) -> Result<Option<Record>> {
        let id = id.clone();
        self.with_conn("reading a record", move |c| {
            let row = c
                .query_row(
                    &format!("{SELECT_RECORD} WHERE collection = ?1 AND id = ?2"),
                    params![collection.as_str(), id.as_str()],
                    read_row,
                )
                .optional()
                .map_err(db_err("reading a record"))?;
            row.as_ref().map(to_record).transpose()
        })
        .await
    }

    async fn get_many(&self, keys: &[(Collection, RecordId)]) -> Result<Vec<Record>> {
        let keys: Vec<(Collection, RecordId)> = keys.to_vec();
        self.with_conn("reading records", move |c| get_many_in(c, &keys))
            .await
    }

    async fn bulk<'s>(&'s self, actor: &str) -> Result<Box<dyn Bulk + 's>> {
        Ok(Box::new(begin_bulk(Arc::clone(&self.conn), actor)?))
    }

    async fn count(&self) -> Result<u64> {
        self.with_conn("counting records", |c| {
            let n: i64 = c
                .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
                .map_err(db_err("counting records"))?;
            Ok(u64::try_from(n).unwrap_or_default())
        })
        .await
    }

    async fn apply(&self, ops: Vec<WriteOp>, actor: &str) -> Result<Vec<Change>> {
        let actor = actor.to_owned();
        self.with_conn("writing records", move |c| apply_ops(c, ops, &actor))
            .await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let query = query.clone();
        self.with_conn("reading the audit log", move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT id, at, actor, action, collection, record_id, before, after FROM audit_log
                     WHERE (?1 IS NULL OR collection = ?1) AND (?2 IS NULL OR record_id = ?2)
                       AND (?3 IS NULL OR instr(lower(actor), lower(?3)) > 0)
                       AND (?4 IS NULL OR at >= ?4) AND (?5 IS NULL OR at < ?5)
                       AND (?6 IS NULL OR id < ?6)
                     ORDER BY id DESC LIMIT ?7",
                )
                .map_err(db_err("reading the audit log"))?;
            let rows = stmt
                .query_map(
                    rusqlite::params![
                        query.collection.map(Collection::as_str),
                        query.record_id,
                        query.actor,
                        query.from.map(ts),
                        query.to.map(ts),
                        query.before_seq,
                        query.limit,
                    ],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, Option<String>>(6)?,
                            r.get::<_, Option<String>>(7)?,
                        ))
                    },
                )
                .map_err(db_err("reading the audit log"))?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, at, actor, action, collection, record_id, before, after) =
                    row.map_err(db_err("reading the audit log"))?;
                let collection = collection.parse().unwrap_or(Collection::Services);
                let json = |s: Option<String>| {
                    s.and_then(|s| serde_json::from_str(&s).ok())
                        .map(|d| audit_document(collection, d))
                };
                out.push(AuditEntry {
                    seq,
                    at: parse_ts(&at).map_err(db_err("reading the audit log"))?,
                    actor,
                    action,
                    collection,
                    record_id,
                    before: json(before),
                    after: json(after),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn create_scoped_token(&self, token: &NewToken<'_>) -> Result<TokenRecord> {
        let mut record = TokenRecord {
            id: 0,
            name: token.name.to_owned(),
            role: token.role,
            created_at: now_micros(),
            revoked_at: None,
            territories: token.territories.to_vec(),
            expires_at: token.expires_at,
            last_used_at: None,
        };
        let hash = token.secret_hash.to_owned();
        self.with_conn("creating a token", move |c| {
            let territories = serde_json::to_string(
                &record
                    .territories
                    .iter()
                    .map(RecordId::as_str)
                    .collect::<Vec<_>>(),
            )
            .map_err(|e| StoreError::backend("creating a token", e))?;
            c.execute(
                "INSERT INTO tokens (name, role, secret_hash, created_at, territories, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    record.name,
                    record.role.as_str(),
                    hash,
                    ts(record.created_at),
                    territories,
                    record.expires_at.map(ts)
                ],
            )
            .map_err(db_err("creating a token"))?;
            record.id = c.last_insert_rowid();
            Ok(record)
        })
        .await
    }

    async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        self.with_conn("recording a token's use", move |c| {
            c.execute(
                "UPDATE tokens SET last_used_at = ?1 WHERE id = ?2",
                params![ts(at), id],
            )
            .map_err(db_err("recording a token's use"))?;
            Ok(())
        })
        .await
    }

    async fn find_token(&self, secret_hash: &str) -> Result<Option<TokenRecord>> {
        let hash = secret_hash.to_owned();
        self.with_conn("looking up a token", move |c| {
            c.query_row(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_hash = ?1 AND revoked_at IS NULL"),
                [hash],
                read_token,
            )
            .optional()
            .map_err(db_err("looking up a token"))?
            .map(to_token)
            .transpose()
        })
        .await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        self.with_conn("listing tokens", |c| {
            let mut stmt = c
                .prepare(&format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id"))
                .map_err(db_err("listing tokens"))?;
            let rows = stmt
                .query_map([], read_token)
                .map_err(db_err("listing tokens"))?;
            let mut out = Vec::new();
            for r in rows {
                out.push(to_token(r.map_err(db_err("listing tokens"))?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn revoke_token(&self, id: i64) -> Result<bool> {
        self.with_conn("revoking a token", move |c| {
            let n = c
                .execute(
                    "UPDATE tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                    params![ts(now_micros()), id],
                )
                .map_err(db_err("revoking a token"))?;
            Ok(n == 1)
        })
        .await
    }

    /// Changes other processes commit to the same file (`faro import` while `faro serve`
    /// runs, or a second `faro serve`): a thread polls `PRAGMA data_version` on a connection of
    /// its own every [`POLL_INTERVAL`] and reports each audit entry committed since the last
    /// look. This store's own commits come back too; the catalog drops those, already shown.
    fn subscribe(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<StoreEvent>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let conn = match Connection::open(&self.path) {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow other processes' changes to the SQLite file");
                return None;
            }
        };
        let _ = conn.busy_timeout(BUSY_TIMEOUT);
        let mut poller = match Poller::start(conn) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow other processes' changes to the SQLite file");
                return None;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("faro-sqlite-follow".to_owned())
            .spawn(move || {
                while !tx.is_closed() {
                    std::thread::sleep(POLL_INTERVAL);
                    match poller.poll() {
                        Ok(events) => {
                            for e in events {
                                if tx.send(e).is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "polling the SQLite file for changes failed; resyncing");
                            if tx.send(StoreEvent::Resync).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the SQLite change follower");
            return None;
        }
        Some(rx)
    }
}

/// Reads what other connections committed since the last look.
struct Poller {
    conn: Connection,
    data_version: i64,
    last_audit_id: i64,
    tokens: (i64, Option<String>),
}

impl Poller {
    fn start(conn: Connection) -> Result<Self> {
        let mut p = Self {
            data_version: 0,
            last_audit_id: 0,
            tokens: (0, None),
            conn,
        };
        p.data_version = p.read_data_version()?;
        p.last_audit_id = p
            .conn
            .query_row("SELECT coalesce(max(id), 0) FROM audit_log", [], |r| {
                r.get(0)
            })
            .map_err(db_err("reading the audit log"))?;
        p.tokens = p.read_tokens()?;
        Ok(p)
    }

    fn read_data_version(&self) -> Result<i64> {
        self.conn
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .map_err(db_err("reading data_version"))
    }

    fn read_tokens(&self) -> Result<(i64, Option<String>)> {
        self.conn
            .query_row("SELECT count(*), max(revoked_at) FROM tokens", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(db_err("reading tokens"))
    }

    fn poll(&mut self) -> Result<Vec<StoreEvent>> {
        let version = self.read_data_version()?;
        if version == self.data_version {
            return Ok(Vec::new());
        }
        self.data_version = version;
        let mut events = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT a.id, a.collection, a.record_id, a.action, r.version FROM audit_log a \
                     LEFT JOIN records r ON r.collection = a.collection AND r.id = a.record_id \
                     WHERE a.id > ?1 ORDER BY a.id",
                )
                .map_err(db_err("reading the audit log"))?;
            let rows = stmt
                .query_map([self.last_audit_id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                    ))
                })
                .map_err(db_err("reading the audit log"))?;
            for row in rows {
                let (audit_id, collection, id, action, version) =
                    row.map_err(db_err("reading the audit log"))?;
                self.last_audit_id = audit_id;
                let (Ok(collection), Ok(id)) =
                    (collection.parse::<Collection>(), RecordId::parse(&id))
                else {
                    continue;
                };
                events.push(StoreEvent::Changed {
                    collection,
                    id,
                    // The version the record has now (none once deleted).
                    version,
                    deleted: action == "delete" && version.is_none(),
                });
            }
        }
        let tokens = self.read_tokens()?;
        if tokens != self.tokens {
            self.tokens = tokens;
            events.push(StoreEvent::TokensChanged);
        }
        Ok(events)
    }
}
