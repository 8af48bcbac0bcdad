//! The catalog keeps the store (source of truth) and the index (what readers query) in step.
//!
//! Every write goes through [`Catalog::write`]: the store commits, then the index snapshot is
//! rebuilt from the old one with the committed changes and swapped in. Readers call
//! [`Catalog::snapshot`] and never wait. With a shared database, [`Catalog::follow`] applies
//! the changes other instances make.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::Mutex;

use crate::domain::{Collection, Record, RecordId};
use crate::index::{IndexChange, Snapshot};
use crate::storage::{Change, Store, StoreError, StoreEvent, WriteOp};

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
        }))
    }

    /// The current snapshot; cheap, never blocks.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
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
    pub async fn write(&self, ops: Vec<WriteOp>, actor: &str) -> Result<Vec<Change>, StoreError> {
        let _guard = self.writer.lock().await;
        let result = self.store.apply(ops, actor).await;
        self.note(&result);
        let changes = result?;
        self.apply_to_index(changes.clone()).await;
        Ok(changes)
    }

    async fn apply_to_index(&self, changes: Vec<Change>) {
        let changes: Vec<IndexChange> = changes
            .into_iter()
            .map(|c| match c {
                Change::Upsert(r) => IndexChange::Upsert(r),
                Change::Delete { collection, id } => IndexChange::Delete(collection, id),
            })
            .collect();
        let current = self.snapshot();
        // A batch as large as a layer rebuilds it: keep that off the async workers.
        let next = tokio::task::spawn_blocking(move || current.with_changes(&changes)).await;
        match next {
            Ok(next) => self.snapshot.store(Arc::new(next)),
            // Only a panic in the update gets here; the index keeps its previous snapshot.
            Err(e) => {
                tracing::error!(error = %e, "index update failed; the index is stale until the next reload");
            }
        }
    }

    /// Rebuilds the whole index from the store.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let _guard = self.writer.lock().await;
        let result = load_snapshot(self.store.as_ref()).await;
        self.note(&result);
        self.snapshot.store(Arc::new(result?));
        Ok(())
    }

    /// Brings these records of the index in line with the store, in one index update.
    async fn refresh(&self, records: Vec<(Collection, RecordId)>) -> Result<(), StoreError> {
        let _guard = self.writer.lock().await;
        let mut changes = Vec::with_capacity(records.len());
        for (collection, id) in records {
            let result = self.store.get(collection, &id).await;
            self.note(&result);
            changes.push(match result? {
                Some(record) => Change::Upsert(Arc::new(record)),
                None => Change::Delete { collection, id },
            });
        }
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
                while batch.len() < FOLLOW_BATCH {
                    match events.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
                if let Err(e) = catalog.apply_events(batch).await {
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
        let mut resync = batch.len() >= FOLLOW_BATCH;
        for event in batch {
            match event {
                StoreEvent::Changed {
                    collection,
                    id,
                    version,
                    deleted,
                } => {
                    if !self.is_current(collection, &id, version, deleted)
                        && !changed.contains(&(collection, id.clone()))
                    {
                        changed.push((collection, id));
                    }
                }
                StoreEvent::Resync => resync = true,
                StoreEvent::Availability(up) => self.available.store(up, Ordering::Relaxed),
            }
        }
        if resync {
            self.reload().await
        } else if changed.is_empty() {
            Ok(())
        } else {
            self.refresh(changed).await
        }
    }
}

/// Events taken at once by [`Catalog::follow`]; a fuller batch means a reload.
const FOLLOW_BATCH: usize = 256;

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
