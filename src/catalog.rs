//! The catalog keeps the store (source of truth) and the index (what readers query) in step.
//!
//! Every write goes through [`Catalog::write`]: the store commits, then the index snapshot is
//! rebuilt from the old one with the committed changes and swapped in. Readers call
//! [`Catalog::snapshot`] and never wait. With a shared database, [`Catalog::follow`] applies
//! the changes other instances make.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::Mutex;

use crate::domain::{Collection, Record, RecordId};
use crate::index::{IndexChange, Snapshot};
use crate::storage::{Change, Store, StoreError, StoreEvent, WriteOp};

/// What changed in the index, for those that keep something derived from it (the tile cache).
#[derive(Debug)]
pub enum IndexChanges<'a> {
    /// Records changed: per collection, the lon/lat bounding boxes of their old and their new
    /// geometries.
    Records(&'a [(Collection, Vec<geo::Rect<f64>>)]),
    /// The whole index was rebuilt.
    Everything,
}

/// Told of every change to the index, after the new snapshot is in place and before the write
/// that made it returns.
pub trait IndexListener: Send + Sync {
    fn changed(&self, changes: &IndexChanges<'_>);
}

/// Store and index, kept in step.
pub struct Catalog {
    store: Arc<dyn Store>,
    snapshot: ArcSwap<Snapshot>,
    /// Serialises index updates (local writes and followed changes).
    writer: Mutex<()>,
    /// Whether the store answered the last time it was asked.
    available: AtomicBool,
    /// Changes by other instances, subscribed to before the first load so none falls between.
    events: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<StoreEvent>>>,
    /// Grows whenever another process may have created or revoked a token: token checks
    /// cached before are not to be trusted after.
    token_epoch: Arc<AtomicU64>,
    /// Per collection, whether a merge of its delta into a new base is under way.
    merging: [AtomicBool; 4],
    /// Told of every index change; held weakly, so a listener goes when its owner does.
    listeners: std::sync::RwLock<Vec<std::sync::Weak<dyn IndexListener>>>,
}

impl Catalog {
    /// Loads every record from the store and builds the index.
    pub async fn open(store: Arc<dyn Store>) -> Result<Arc<Self>, StoreError> {
        let events = store.subscribe();
        let snapshot = load_snapshot(store.as_ref()).await?;
        Ok(Arc::new(Self {
            store,
            snapshot: ArcSwap::from_pointee(snapshot),
            writer: Mutex::new(()),
            available: AtomicBool::new(true),
            events: std::sync::Mutex::new(events),
            token_epoch: Arc::new(AtomicU64::new(0)),
            merging: Default::default(),
            listeners: std::sync::RwLock::default(),
        }))
    }

    /// Registers a listener of index changes (see [`IndexListener`]).
    pub fn listen(&self, listener: std::sync::Weak<dyn IndexListener>) {
        if let Ok(mut listeners) = self.listeners.write() {
            listeners.retain(|l| l.strong_count() > 0);
            listeners.push(listener);
        }
    }

    fn tell(&self, changes: &IndexChanges<'_>) {
        let listeners: Vec<Arc<dyn IndexListener>> = match self.listeners.read() {
            Ok(l) => l.iter().filter_map(std::sync::Weak::upgrade).collect(),
            Err(_) => return,
        };
        for listener in listeners {
            listener.changed(changes);
        }
    }

    /// The current snapshot; cheap, never blocks.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// A counter that grows whenever tokens may have changed in the store (see
    /// [`crate::tokens::TokenVerifier`]).
    pub fn token_epoch(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.token_epoch)
    }

    /// Whether the store was reachable at the last attempt.
    pub fn is_available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    fn note(&self, result: &Result<impl Sized, StoreError>) {
        match result {
            Err(StoreError::Unavailable { .. }) => self.available.store(false, Ordering::Relaxed),
            Ok(_) => self.available.store(true, Ordering::Relaxed),
            Err(_) => {}
        }
    }

    /// Commits a batch to the store, then shows it to readers. All or nothing.
    ///
    /// The commit and the index update run in a task of their own, which finishes both even
    /// when the caller stops waiting (a client that disconnects, a timeout, a shutdown), so the
    /// index never stays behind a commit.
    pub async fn write(
        self: &Arc<Self>,
        ops: Vec<WriteOp>,
        actor: &str,
    ) -> Result<Vec<Change>, StoreError> {
        let this = Arc::clone(self);
        let actor = actor.to_owned();
        tokio::spawn(async move {
            let result = this.write_now(ops, &actor).await;
            this.schedule_merges();
            result
        })
        .await
        .map_err(|e| StoreError::backend("applying a write", e))?
    }

    /// Starts, off the async workers, the merge of every layer whose delta has grown past its
    /// threshold into a new base (one merge per collection at a time). Writes go on
    /// meanwhile; the merged base is applied to whatever snapshot is current when it is done,
    /// keeping the changes made since.
    fn schedule_merges(self: &Arc<Self>) {
        let snapshot = self.snapshot();
        for collection in snapshot.layers_to_merge() {
            let flag = &self.merging[collection.index()];
            if flag.swap(true, Ordering::AcqRel) {
                continue;
            }
            let job = snapshot.unrestricted_layer(collection).merge_job();
            let this = Arc::clone(self);
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                match tokio::task::spawn_blocking(move || job.run()).await {
                    Ok(merged) => {
                        let _guard = this.writer.lock().await;
                        let next = this.snapshot().with_merged(merged);
                        this.snapshot.store(Arc::new(next));
                        tracing::debug!(%collection, ms = started.elapsed().as_millis(), "merged a layer's delta into a new base");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, %collection, "merging a layer failed; its delta stays as it is");
                    }
                }
                this.merging[collection.index()].store(false, Ordering::Release);
                // Writes made during the merge may have filled the delta again.
                this.schedule_merges();
            });
        }
    }

    async fn write_now(&self, ops: Vec<WriteOp>, actor: &str) -> Result<Vec<Change>, StoreError> {
        let _guard = self.writer.lock().await;
        let result = self.store.apply(ops, actor).await;
        self.note(&result);
        let changes = result?;
        self.apply_to_index(changes.clone()).await;
        Ok(changes)
    }

    /// Shows committed changes to readers, in the order they were made. Should that fail, the
    /// index is rebuilt from the store, so it never stays behind. The caller holds `writer`.
    async fn apply_to_index(&self, changes: Vec<Change>) {
        let changes: Vec<IndexChange> = changes
            .into_iter()
            .map(|c| match c {
                Change::Upsert(r) => IndexChange::Upsert(r),
                Change::Delete { collection, id } => IndexChange::Delete(collection, id),
            })
            .collect();
        let current = self.snapshot();
        let touched = touched_areas(&current, &changes);
        // A batch as large as a layer rebuilds it: keep that off the async workers.
        let next = tokio::task::spawn_blocking(move || current.with_changes(&changes)).await;
        match next {
            Ok(next) => {
                self.snapshot.store(Arc::new(next));
                self.tell(&IndexChanges::Records(&touched));
            }
            Err(e) => {
                tracing::error!(error = %e, "index update failed; rebuilding the index from the store");
                if let Err(e) = self.reload_locked().await {
                    tracing::error!(error = %e, "rebuilding the index failed; it stays behind the store until the next reload");
                }
            }
        }
    }

    /// Rebuilds the whole index from the store.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let _guard = self.writer.lock().await;
        self.reload_locked().await
    }

    async fn reload_locked(&self) -> Result<(), StoreError> {
        let result = load_snapshot(self.store.as_ref()).await;
        self.note(&result);
        self.snapshot.store(Arc::new(result?));
        self.tell(&IndexChanges::Everything);
        Ok(())
    }

    /// Brings these records of the index in line with the store, in one index update.
    async fn refresh(&self, records: Vec<(Collection, RecordId)>) -> Result<(), StoreError> {
        let _guard = self.writer.lock().await;
        let result = self.store.get_many(&records).await;
        self.note(&result);
        let mut found: std::collections::HashMap<(Collection, RecordId), Record> = result?
            .into_iter()
            .map(|r| ((r.collection(), r.id().clone()), r))
            .collect();
        let changes = records
            .into_iter()
            .map(|key| match found.remove(&key) {
                Some(record) => Change::Upsert(Arc::new(record)),
                None => Change::Delete {
                    collection: key.0,
                    id: key.1,
                },
            })
            .collect();
        self.apply_to_index(changes).await;
        Ok(())
    }

    /// Follows changes made by other instances on a shared database, until the store's event
    /// stream ends. Returns at once for stores that have no events.
    pub fn follow(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let mut events = self.events.lock().ok()?.take()?;
        let catalog = Arc::clone(self);
        Some(tokio::spawn(async move {
            while let Some(first) = events.recv().await {
                // Take what else is already queued: a bulk change elsewhere arrives as a burst,
                // better answered by one reload than by thousands of single-record reads.
                let mut batch = vec![first];
                while batch.len() < FOLLOW_TAKE {
                    match events.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
                let result = catalog.apply_events(batch).await;
                catalog.schedule_merges();
                if let Err(e) = result {
                    tracing::warn!(error = %e, "could not apply changes from the database; will resync");
                    if let Err(e) = catalog.reload().await {
                        tracing::warn!(error = %e, "resync failed; waiting for the next event");
                    }
                }
            }
        }))
    }

    /// Whether the index already shows this change (typically this instance's own write).
    fn is_current(
        &self,
        collection: Collection,
        id: &RecordId,
        version: Option<i64>,
        deleted: bool,
    ) -> bool {
        let snapshot = self.snapshot();
        let indexed = snapshot.unrestricted_layer(collection).get(id);
        match (deleted, version, indexed) {
            (true, _, None) => true,
            (false, Some(v), Some(r)) => r.meta().version >= v,
            _ => false,
        }
    }

    async fn apply_events(&self, batch: Vec<StoreEvent>) -> Result<(), StoreError> {
        let mut changed = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut resync = false;
        for event in batch {
            match event {
                StoreEvent::Changed {
                    collection,
                    id,
                    version,
                    deleted,
                } => {
                    // This instance's own writes come back too: already shown, dropped here.
                    if !self.is_current(collection, &id, version, deleted)
                        && seen.insert((collection, id.clone()))
                    {
                        changed.push((collection, id));
                    }
                }
                StoreEvent::Resync => {
                    resync = true;
                    self.token_epoch.fetch_add(1, Ordering::Relaxed);
                }
                StoreEvent::TokensChanged => {
                    self.token_epoch.fetch_add(1, Ordering::Relaxed);
                }
                StoreEvent::Availability(up) => self.available.store(up, Ordering::Relaxed),
            }
        }
        // Only what others changed counts: many of them are better read by one full reload
        // than in batches.
        if resync || changed.len() >= FOLLOW_RELOAD {
            self.reload().await
        } else if changed.is_empty() {
            Ok(())
        } else {
            self.refresh(changed).await
        }
    }
}

/// Per collection, the bounding boxes of the old (in `current`) and new geometries of the
/// changed records.
fn touched_areas(
    current: &Snapshot,
    changes: &[IndexChange],
) -> Vec<(Collection, Vec<geo::Rect<f64>>)> {
    use geo::BoundingRect;
    let mut out: Vec<(Collection, Vec<geo::Rect<f64>>)> =
        Collection::ALL.iter().map(|c| (*c, Vec::new())).collect();
    for change in changes {
        let collection = change.collection();
        let (id, new) = match change {
            IndexChange::Upsert(r) => (r.id(), r.geometry().bounding_rect()),
            IndexChange::Delete(_, id) => (id, None),
        };
        let old = current
            .unrestricted_layer(collection)
            .get(id)
            .and_then(|r| r.geometry().bounding_rect());
        out[collection.index()].1.extend(old.into_iter().chain(new));
    }
    out.retain(|(_, areas)| !areas.is_empty());
    out
}

/// Events taken from the queue at once by [`Catalog::follow`].
const FOLLOW_TAKE: usize = 65_536;

/// Records changed by other processes in one batch from which a full reload is cheaper than
/// reading them by key (one query for the whole batch).
const FOLLOW_RELOAD: usize = 20_000;

async fn load_snapshot(store: &dyn Store) -> Result<Snapshot, StoreError> {
    let started = std::time::Instant::now();
    let records: Vec<Record> = store.load_all().await?;
    let read = started.elapsed();
    let n = records.len();
    let snapshot = tokio::task::spawn_blocking(move || Snapshot::build(records))
        .await
        .map_err(|e| StoreError::backend("building the index", e))?;
    tracing::info!(
        records = n,
        store = store.backend(),
        read_ms = read.as_millis(),
        build_ms = started.elapsed().saturating_sub(read).as_millis(),
        "index loaded from the store"
    );
    Ok(snapshot)
}
