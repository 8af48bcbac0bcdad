//! The source of truth: the [`Store`] trait and its two backends.
//!
//! - [`sqlite::SqliteStore`]: one SQLite file in WAL mode, the embedded default.
//! - [`postgres::PostgresStore`]: PostgreSQL + PostGIS for servers, several instances in step.
//!
//! Every write is one transaction: a batch is applied whole or not at all, bumps `version`,
//! sets `updated_at`, and appends to the audit log.

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    Attributes, Collection, FieldError, Meta, Record, RecordId, Role, ValidGeometry,
};

/// One change requested of the store.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Create a record; fails if the id exists.
    Insert {
        id: RecordId,
        geometry: ValidGeometry,
        attributes: Attributes,
    },
    /// Replace a record's geometry and attributes; `expected` guards lost updates.
    Replace {
        id: RecordId,
        expected: Precondition,
        geometry: ValidGeometry,
        attributes: Attributes,
    },
    /// Delete a record.
    Delete {
        collection: Collection,
        id: RecordId,
        expected: Precondition,
    },
}

/// What a replace or delete requires of the stored record, checked in the write's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Nothing (`If-Match: *`, or an internal write that owns the record).
    Any,
    /// This version, whatever the incarnation (internal callers and store tests).
    Version(i64),
    /// One of these entity tags, compared strongly with [`Record::entity_tag`] (HTTP
    /// `If-Match`): the tag carries the incarnation, so a tag of a deleted and re-created
    /// record never matches the new one.
    EntityTags(Vec<String>),
}

impl Precondition {
    /// Whether `record` satisfies it.
    pub fn holds_for(&self, record: &Record) -> bool {
        match self {
            Precondition::Any => true,
            Precondition::Version(v) => record.meta().version == *v,
            Precondition::EntityTags(tags) => {
                let tag = record.entity_tag();
                tags.contains(&tag)
            }
        }
    }
}

impl std::fmt::Display for Precondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Precondition::Any => f.write_str("any version"),
            Precondition::Version(v) => write!(f, "version {v}"),
            Precondition::EntityTags(tags) => {
                let quoted: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
                write!(f, "ETag {}", quoted.join(", "))
            }
        }
    }
}

impl WriteOp {
    /// The insert of a parsed feature, under its own id or a fresh one.
    pub fn insert(collection: Collection, input: crate::domain::FeatureInput) -> Self {
        WriteOp::Insert {
            id: input.id.unwrap_or_else(|| RecordId::generate(collection)),
            geometry: input.geometry,
            attributes: input.attributes,
        }
    }

    /// The collection and id of the record written.
    pub fn key(&self) -> (Collection, &RecordId) {
        match self {
            WriteOp::Insert { id, attributes, .. } | WriteOp::Replace { id, attributes, .. } => {
                (attributes.collection(), id)
            }
            WriteOp::Delete { collection, id, .. } => (*collection, id),
        }
    }
}

/// What a committed write did, for the index.
#[derive(Debug, Clone)]
pub enum Change {
    Upsert(Arc<Record>),
    Delete {
        collection: Collection,
        id: RecordId,
    },
}

/// A notification from a store shared with other processes.
#[derive(Debug, Clone)]
pub enum StoreEvent {
    /// Another writer changed this record (or deleted it).
    Changed {
        collection: Collection,
        id: RecordId,
        /// The version written (`None` if the notifier did not say).
        version: Option<i64>,
        /// The record was deleted.
        deleted: bool,
    },
    /// Notifications may have been missed (reconnection): reload everything.
    Resync,
    /// A token was created or revoked by another process: verified tokens must be checked
    /// again.
    TokensChanged,
    /// The backend is reachable again after an outage, or not.
    Availability(bool),
}

/// A bearer token as stored: never the secret, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The territories (ids) the token is scoped to; empty: the whole network.
    pub territories: Vec<RecordId>,
    /// After this instant the token is refused; `None`: it does not expire.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the token was last presented (recorded at most once a minute per instance).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl TokenRecord {
    /// Whether the token is refused at `now`: revoked, or past its expiry.
    pub fn is_dead_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_some() || self.expires_at.is_some_and(|e| e <= now)
    }
}

/// A token to store: everything but what the store assigns.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub name: &'a str,
    pub role: Role,
    /// SHA-256 of the secret, hex ([`crate::tokens::hash_secret`]).
    pub secret_hash: &'a str,
    pub territories: &'a [RecordId],
    pub expires_at: Option<DateTime<Utc>>,
}

/// One entry of the audit log.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Position in the log: it only grows.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub collection: Collection,
    pub record_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// Which audit entries to read, newest first. Every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub collection: Option<Collection>,
    pub record_id: Option<String>,
    /// Text the actor (token name, role and id) contains, case-insensitively.
    pub actor: Option<String>,
    /// Entries at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Entries before this time.
    pub to: Option<DateTime<Utc>>,
    /// Entries older than this one (its `seq`): the next page.
    pub before_seq: Option<i64>,
    /// Entries to return at most.
    pub limit: u32,
}

/// What went wrong in a store, with what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{collection} record `{id}` not found")]
    NotFound {
        collection: Collection,
        id: RecordId,
    },
    #[error("{collection} record `{id}` already exists")]
    AlreadyExists {
        collection: Collection,
        id: RecordId,
    },
    #[error(
        "{collection} record `{id}` is at version {actual} (ETag \"{actual_tag}\"), not {expected}"
    )]
    VersionMismatch {
        collection: Collection,
        id: RecordId,
        expected: Precondition,
        actual: i64,
        actual_tag: String,
    },
    #[error("the database is unavailable while {context}: {message}")]
    Unavailable {
        context: &'static str,
        message: String,
    },
    #[error("stored {collection} record `{id}` is invalid: {error}")]
    Corrupt {
        collection: Collection,
        id: String,
        error: FieldError,
    },
    #[error("bad database url: {0}")]
    BadUrl(String),
    #[error("{context}: {source}")]
    Backend {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    pub fn backend(
        context: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Backend {
            context,
            source: Box::new(source),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The source of truth for records, tokens and the audit log.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;

    /// Every record of every collection, to build the index.
    async fn load_all(&self) -> Result<Vec<Record>>;

    /// One record, or `None`.
    async fn get(&self, collection: Collection, id: &RecordId) -> Result<Option<Record>>;

    /// The records that exist among `keys`, in one query (in no particular order).
    async fn get_many(&self, keys: &[(Collection, RecordId)]) -> Result<Vec<Record>>;

    /// Number of records in all collections.
    async fn count(&self) -> Result<u64>;

    /// Applies a batch in one transaction, recording `actor` in the audit log; all or nothing.
    async fn apply(&self, ops: Vec<WriteOp>, actor: &str) -> Result<Vec<Change>>;

    /// A transaction fed in chunks, for imports too large to hold whole: reads see its own
    /// writes, nothing is visible to others until [`Bulk::commit`], and dropping it uncommitted
    /// (or the process dying) leaves the store as it was. The default holds the operations
    /// and applies them in one [`Store::apply`] at the commit.
    async fn bulk<'s>(&'s self, actor: &str) -> Result<Box<dyn Bulk + 's>> {
        Ok(Box::new(Buffered {
            store: self,
            actor: actor.to_owned(),
            ops: Vec::new(),
        }))
    }

    /// The audit entries `query` selects, newest first.
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;

    /// The newest `limit` audit entries, newest first.
    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        self.audit(&AuditQuery {
            limit,
            ..AuditQuery::default()
        })
        .await
    }

    /// Stores a new token by the hash of its secret.
    async fn create_scoped_token(&self, token: &NewToken<'_>) -> Result<TokenRecord>;

    /// Stores a new token for the whole network that does not expire.
    async fn create_token(&self, name: &str, role: Role, secret_hash: &str) -> Result<TokenRecord> {
        self.create_scoped_token(&NewToken {
            name,
            role,
            secret_hash,
            territories: &[],
            expires_at: None,
        })
        .await
    }

    /// Records that the token `id` was presented at `at`.
    async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> Result<()>;

    /// The token with this secret hash that is not revoked (it may have expired: the caller
    /// compares `expires_at` with its clock).
    async fn find_token(&self, secret_hash: &str) -> Result<Option<TokenRecord>>;

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>>;

    /// Revokes a token by id; `false` if there was no live token with that id.
    async fn revoke_token(&self, id: i64) -> Result<bool>;

    /// Changes made by other processes sharing the database, if the backend can tell.
    fn subscribe(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<StoreEvent>> {
        None
    }
}

/// One transaction written in chunks: see [`Store::bulk`].
#[async_trait]
pub trait Bulk: Send {
    /// The records that exist among `keys`, as this transaction sees them.
    async fn get_many(&mut self, keys: &[(Collection, RecordId)]) -> Result<Vec<Record>>;

    /// Applies `ops` inside the transaction, auditing each. A backend may return before they
    /// are written (the caller prepares the next chunk meanwhile): their failure is then the
    /// error of the next call, or of the commit. After an error the transaction can only be
    /// dropped.
    async fn apply(&mut self, ops: Vec<WriteOp>) -> Result<()>;

    /// Waits until what was applied so far is written (or failed: its error).
    async fn flush(&mut self) -> Result<()>;

    /// Makes every chunk visible at once.
    async fn commit(self: Box<Self>) -> Result<()>;
}

/// The keys a bulk transaction knows to name no record without looking: those of a
/// collection that was empty when the transaction began and that the transaction has not
/// written. A first import into a collection then looks nothing up. A record another writer
/// adds meanwhile under such a key is not missed: the transaction's insert of it is refused
/// (the primary key; on SQLite, the write of a stale snapshot), and the import fails whole.
#[derive(Default)]
pub(crate) struct KnownAbsent {
    empty: Vec<Collection>,
    /// Hashes of the keys written: a collision only costs a lookup.
    written: std::collections::HashSet<u64, foldhash::fast::FixedState>,
}

impl KnownAbsent {
    pub(crate) fn new(empty: Vec<Collection>) -> Self {
        Self {
            empty,
            written: std::collections::HashSet::default(),
        }
    }

    /// Not keyed against collisions made on purpose: they would only cost lookups.
    fn hash(collection: Collection, id: &RecordId) -> u64 {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::default().hash_one((collection, id.as_str()))
    }

    /// Notes the keys `ops` write.
    pub(crate) fn wrote(&mut self, ops: &[WriteOp]) {
        for op in ops {
            let (collection, id) = op.key();
            self.written.insert(Self::hash(collection, id));
        }
    }

    /// The keys among `keys` that must be looked up.
    pub(crate) fn to_look_up(
        &self,
        keys: &[(Collection, RecordId)],
    ) -> Vec<(Collection, RecordId)> {
        keys.iter()
            .filter(|(c, id)| !self.empty.contains(c) || self.written.contains(&Self::hash(*c, id)))
            .cloned()
            .collect()
    }
}

/// What the worker of a [`BulkHandle`] is asked to do.
pub(crate) enum BulkCommand {
    Get(
        Vec<(Collection, RecordId)>,
        tokio::sync::oneshot::Sender<Result<Vec<Record>>>,
    ),
    Apply(Vec<BulkOp>, tokio::sync::oneshot::Sender<Result<()>>),
    Commit(tokio::sync::oneshot::Sender<Result<()>>),
}

/// An operation of a bulk write as its worker receives it: an insert made ready beforehand,
/// or any other operation as it was asked.
pub(crate) enum BulkOp {
    Insert(Ready),
    Other(WriteOp),
}

/// A new record of a bulk write, assembled and encoded by [`BulkHandle::apply`] on the
/// caller's side, while the worker is still writing the chunk before: the worker only
/// sends it. What both stores keep of it: the record, its stored properties
/// ([`crate::domain::Attributes::to_json_text`]) and its audit document ([`audit_text`]).
pub(crate) struct Ready {
    pub(crate) record: Record,
    pub(crate) properties: String,
    pub(crate) audit: String,
}

/// The time a bulk write stamps on what it writes, with the members it leaves in every
/// audit document of a record it creates, formatted once.
pub(crate) struct BulkTime {
    now: DateTime<Utc>,
    created: String,
}

impl BulkTime {
    pub(crate) fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            created: crate::domain::feature::meta_members(&Self::created_meta(now)),
        }
    }

    fn created_meta(now: DateTime<Utc>) -> Meta {
        Meta {
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// `ops` as the worker takes them, every insert made [`Ready`].
    fn prepare(&self, ops: Vec<WriteOp>) -> Result<Vec<BulkOp>> {
        ops.into_iter()
            .map(|op| match op {
                WriteOp::Insert {
                    id,
                    geometry,
                    attributes,
                } => {
                    let record = assemble(id, geometry, attributes, Self::created_meta(self.now))?;
                    let properties = record.attributes().to_json_text();
                    let audit = crate::domain::feature::stored_feature_text(
                        &record,
                        &properties,
                        &self.created,
                    );
                    Ok(BulkOp::Insert(Ready {
                        record,
                        properties,
                        audit,
                    }))
                }
                other => Ok(BulkOp::Other(other)),
            })
            .collect()
    }
}

/// A [`Bulk`] whose transaction is held open across chunks by a worker of the backend's own
/// (a thread for SQLite, a task for PostgreSQL), which owns the connection meanwhile and
/// answers [`BulkCommand`]s in order. Dropping the handle closes the channel: the worker drops
/// the transaction, which rolls it back.
///
/// Writes are pipelined: [`Bulk::apply`] hands its operations to the worker and returns, so
/// that the caller reads and compares the next chunk while the database writes this one; it
/// waits for the write before it at most, and a failed write is the error of the next call
/// (or of the commit). Keys known to name no record ([`KnownAbsent`]) are answered here,
/// without waiting for the worker.
pub(crate) struct BulkHandle {
    commands: tokio::sync::mpsc::Sender<BulkCommand>,
    absent: KnownAbsent,
    time: BulkTime,
    /// The answer of the write handed on last, until it is awaited.
    pending: Option<tokio::sync::oneshot::Receiver<Result<()>>>,
}

fn bulk_writer_gone() -> StoreError {
    StoreError::backend(
        "writing in bulk",
        std::io::Error::other("the bulk writer stopped"),
    )
}

impl BulkHandle {
    /// The handle of a worker that stamps its writes with `now`.
    pub(crate) fn new(
        commands: tokio::sync::mpsc::Sender<BulkCommand>,
        absent: KnownAbsent,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            commands,
            absent,
            time: BulkTime::new(now),
            pending: None,
        }
    }

    /// Waits for the write handed on last, if any, and returns its error.
    async fn settle(&mut self) -> Result<()> {
        match self.pending.take() {
            Some(answer) => answer.await.map_err(|_| bulk_writer_gone())?,
            None => Ok(()),
        }
    }

    /// Sends `command` after the write before it, and returns the receiver of its answer.
    async fn send<T>(
        &mut self,
        command: impl FnOnce(tokio::sync::oneshot::Sender<Result<T>>) -> BulkCommand,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<T>>> {
        self.settle().await?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| bulk_writer_gone())?;
        Ok(answer)
    }

    async fn ask<T>(
        &mut self,
        command: impl FnOnce(tokio::sync::oneshot::Sender<Result<T>>) -> BulkCommand,
    ) -> Result<T> {
        let answer = self.send(command).await?;
        answer.await.map_err(|_| bulk_writer_gone())?
    }
}

#[async_trait]
impl Bulk for BulkHandle {
    async fn get_many(&mut self, keys: &[(Collection, RecordId)]) -> Result<Vec<Record>> {
        let keys = self.absent.to_look_up(keys);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.ask(|reply| BulkCommand::Get(keys, reply)).await
    }

    async fn apply(&mut self, ops: Vec<WriteOp>) -> Result<()> {
        self.absent.wrote(&ops);
        // Encoded here, before waiting for the worker to finish the chunk before.
        let ops = self.time.prepare(ops)?;
        self.pending = Some(self.send(|reply| BulkCommand::Apply(ops, reply)).await?);
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.settle().await
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        self.ask(BulkCommand::Commit).await
    }
}

/// [`Store::bulk`] for a backend without a streamed write: the operations, applied at the end.
struct Buffered<'s, S: Store + ?Sized> {
    store: &'s S,
    actor: String,
    ops: Vec<WriteOp>,
}

#[async_trait]
impl<S: Store + ?Sized> Bulk for Buffered<'_, S> {
    async fn get_many(&mut self, keys: &[(Collection, RecordId)]) -> Result<Vec<Record>> {
        // Nothing is written before the commit: what the store holds is what this sees.
        self.store.get_many(keys).await
    }

    async fn apply(&mut self, ops: Vec<WriteOp>) -> Result<()> {
        self.ops.extend(ops);
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        // Written at the commit.
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        if !self.ops.is_empty() {
            self.store.apply(self.ops, &self.actor).await?;
        }
        Ok(())
    }
}

/// Opens the store a URL names: `sqlite://PATH` (or a bare path) or `postgres://…`.
pub async fn open(url: &str, pool_size: usize) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            postgres::PostgresStore::connect(url, pool_size).await?,
        ))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(StoreError::BadUrl("sqlite:// needs a file path".to_owned()));
        }
        Ok(Arc::new(sqlite::SqliteStore::open(path).await?))
    } else if url.contains("://") {
        Err(StoreError::BadUrl(format!(
            "unsupported scheme in `{}`; use sqlite://PATH or postgres://…",
            url.split("://").next().unwrap_or_default()
        )))
    } else {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?))
    }
}

/// Rebuilds a record from stored columns, reporting corruption instead of panicking.
pub(crate) fn record_from_parts(
    collection: Collection,
    id: &str,
    geometry: geo::Geometry<f64>,
    attributes: std::result::Result<Attributes, FieldError>,
    meta: crate::domain::Meta,
) -> Result<Record> {
    let corrupt = |error: FieldError| StoreError::Corrupt {
        collection,
        id: id.to_owned(),
        error,
    };
    let rid = RecordId::parse(id).map_err(corrupt)?;
    // What was stored was validated when written: no vertex cap on reading it back.
    let geometry = ValidGeometry::new_capped(geometry, collection.geometry_rule(), usize::MAX)
        .map_err(|e| corrupt(e.into()))?;
    let attributes = attributes.map_err(corrupt)?;
    Record::new(rid, geometry, attributes, meta).map_err(corrupt)
}

/// A record about to be written; a geometry that does not fit the collection is reported as
/// corrupt input naming the record.
pub(crate) fn assemble(
    id: RecordId,
    geometry: ValidGeometry,
    attributes: Attributes,
    meta: crate::domain::Meta,
) -> Result<Record> {
    let collection = attributes.collection();
    let name = id.to_string();
    Record::new(id, geometry, attributes, meta).map_err(|error| StoreError::Corrupt {
        collection,
        id: name,
        error,
    })
}

/// The record a replace or delete applies to, if it exists and is at the expected version.
pub(crate) fn check_version<R: std::borrow::Borrow<Record>>(
    existing: Option<R>,
    collection: Collection,
    id: &RecordId,
    expected: &Precondition,
) -> Result<R> {
    let Some(existing) = existing else {
        return Err(StoreError::NotFound {
            collection,
            id: id.clone(),
        });
    };
    let record: &Record = existing.borrow();
    if !expected.holds_for(record) {
        return Err(StoreError::VersionMismatch {
            collection,
            id: id.clone(),
            expected: expected.clone(),
            actual: record.meta().version,
            actual_tag: record.entity_tag(),
        });
    }
    Ok(existing)
}

/// Encodes a geometry as OGC WKB (2D), the form both backends store.
pub(crate) fn wkb_encode(geometry: &geo::Geometry<f64>) -> Result<Vec<u8>> {
    use geozero::{CoordDimensions, ToWkb};
    geometry
        .to_wkb(CoordDimensions::xy())
        .map_err(|e| StoreError::backend("encoding geometry as WKB", e))
}

/// Decodes OGC WKB (or PostGIS EWKB) into a geometry.
pub(crate) fn wkb_decode(bytes: &[u8]) -> Result<geo::Geometry<f64>> {
    use geozero::ToGeo;
    if bytes.len() > 4 && (bytes[1..5] != [0, 0, 0, 0]) && bytes[0] == 1 && bytes[4] & 0x20 != 0 {
        // EWKB with an SRID flag: geozero's Ewkb reader handles it.
        return geozero::wkb::Ewkb(bytes)
            .to_geo()
            .map_err(|e| StoreError::backend("decoding EWKB geometry", e));
    }
    geozero::wkb::Wkb(bytes)
        .to_geo()
        .map_err(|e| StoreError::backend("decoding WKB geometry", e))
}

/// The current time at the microsecond precision both backends keep.
pub(crate) fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// The JSON text a record leaves in the audit log: its feature without unset attributes
/// ([`crate::domain::feature::stored_feature_text`]); [`audit_document`] reads it back.
pub(crate) fn audit_text(record: &Record) -> String {
    use crate::domain::feature::{meta_members, stored_feature_text};
    stored_feature_text(
        record,
        &record.attributes().to_json_text(),
        &meta_members(record.meta()),
    )
}

/// An audit document of `collection` as the log shows it: the feature with every attribute,
/// as the API writes it, whether the entry was stored without its unset attributes
/// ([`audit_text`]) or, as older entries are, with them.
pub(crate) fn audit_document(
    collection: Collection,
    stored: serde_json::Value,
) -> serde_json::Value {
    crate::domain::feature::with_unset_attributes(collection, stored)
}
