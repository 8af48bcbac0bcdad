//! The tile cache: encoded tiles kept in memory, bounded in bytes (least recently used out
//! first), keyed by everything that changes a tile's bytes: its layers, z/x/y, its encoding
//! and the caller's [`Visibility`] (never a role name, so territory scopes key correctly).
//!
//! Freshness without a TTL: every change to the index drops, before the write's response
//! returns, each cached tile whose bbox plus buffer touches the old or the new geometry of a
//! changed record, in a collection the tile shows ([`TileCache::invalidate`]). A tile encoded
//! from a snapshot that a change overtook while it was being encoded is not stored: each
//! collection has an epoch that every invalidation bumps, a request takes a [`Stamp`] of the
//! epochs *before* it reads the snapshot, and [`TileCache::insert`] refuses a tile whose
//! layers' epochs moved since. So a cached tile is never older than the last change that
//! touches it.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use lru::LruCache;

use super::encode::buffered_bounds;
use super::grid::TileId;
use super::layers::LayerSet;
use crate::domain::Collection;
use crate::index::query::Visibility;

/// Encoding of a cached body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Identity,
    Gzip,
}

/// What identifies one cached tile.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TileKey {
    pub layers: LayerSet,
    pub tile: TileId,
    pub encoding: Encoding,
    pub visibility: Visibility,
}

/// A tile as it is served.
#[derive(Debug)]
pub struct CachedTile {
    /// The body (empty: no feature, answered 204).
    pub body: Bytes,
    /// Strong entity tag of the body, quoted.
    pub etag: String,
    pub features: usize,
    /// Whether some layer was aggregated into clusters.
    pub clustered: bool,
}

/// The epochs of every collection at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp([u64; 4]);

/// Bytes an entry is counted for besides its body (key, entry, tag).
const ENTRY_OVERHEAD: usize = 160;

struct Inner {
    entries: LruCache<TileKey, Arc<CachedTile>>,
    bytes: usize,
    epochs: [u64; 4],
}

/// Encoded tiles in memory, bounded in bytes.
pub struct TileCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl TileCache {
    /// A cache of at most `capacity` bytes; 0 keeps nothing.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: LruCache::unbounded(),
                bytes: 0,
                epochs: [0; 4],
            }),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The cache holds no invariant a panic elsewhere could break half-way.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The epochs now: take it before reading the snapshot a tile is encoded from.
    pub fn stamp(&self) -> Stamp {
        Stamp(self.lock().epochs)
    }

    pub fn get(&self, key: &TileKey) -> Option<Arc<CachedTile>> {
        if self.capacity == 0 {
            return None;
        }
        self.lock().entries.get(key).cloned()
    }

    /// Stores a tile encoded from a snapshot read after `stamp` was taken, unless a change to
    /// one of its layers came since (then it may be stale: it is served once, not kept).
    /// Returns whether it was stored.
    pub fn insert(&self, key: TileKey, tile: Arc<CachedTile>, stamp: Stamp) -> bool {
        let weight = tile.body.len() + ENTRY_OVERHEAD;
        if weight > self.capacity {
            return false;
        }
        let mut inner = self.lock();
        let overtaken = key
            .layers
            .iter()
            .any(|c| inner.epochs[c.index()] != stamp.0[c.index()]);
        if overtaken {
            return false;
        }
        if let Some(old) = inner.entries.put(key, tile) {
            inner.bytes -= old.body.len() + ENTRY_OVERHEAD;
        }
        inner.bytes += weight;
        while inner.bytes > self.capacity {
            match inner.entries.pop_lru() {
                Some((_, old)) => inner.bytes -= old.body.len() + ENTRY_OVERHEAD,
                None => break,
            }
        }
        true
    }

    /// Drops every tile showing `collection` whose bbox plus buffer touches one of `areas`
    /// (lon/lat boxes: the old and new bounding boxes of the changed records). Returns how
    /// many were dropped.
    pub fn invalidate(&self, collection: Collection, areas: &[geo::Rect<f64>]) -> usize {
        let mut inner = self.lock();
        inner.epochs[collection.index()] += 1;
        if areas.is_empty() || inner.entries.is_empty() {
            return 0;
        }
        let stale: Vec<TileKey> = inner
            .entries
            .iter()
            .filter(|(key, _)| key.layers.contains(collection))
            .filter(|(key, _)| {
                let [w, s, e, n] = buffered_bounds(key.tile);
                areas
                    .iter()
                    .any(|a| a.min().x <= e && a.max().x >= w && a.min().y <= n && a.max().y >= s)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in &stale {
            if let Some(old) = inner.entries.pop(key) {
                inner.bytes -= old.body.len() + ENTRY_OVERHEAD;
            }
        }
        stale.len()
    }

    /// Drops everything (the index was rebuilt from the store).
    pub fn clear(&self) {
        let mut inner = self.lock();
        for e in &mut inner.epochs {
            *e += 1;
        }
        inner.entries.clear();
        inner.bytes = 0;
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Default for TileCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY_MB * 1024 * 1024)
    }
}

/// Default size of the cache, in MiB (`--tile-cache-mb`).
pub const DEFAULT_CAPACITY_MB: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    fn key(z: u8, x: u32, y: u32, layers: &str) -> TileKey {
        TileKey {
            layers: LayerSet::parse(layers).unwrap(),
            tile: TileId::new(z, x, y).unwrap(),
            encoding: Encoding::Identity,
            visibility: Visibility::Anonymous,
        }
    }

    fn tile(len: usize) -> Arc<CachedTile> {
        Arc::new(CachedTile {
            body: Bytes::from(vec![1u8; len]),
            etag: "\"x\"".into(),
            features: 1,
            clustered: false,
        })
    }

    fn point(lon: f64, lat: f64) -> geo::Rect<f64> {
        geo::Rect::new(
            geo::coord! { x: lon, y: lat },
            geo::coord! { x: lon, y: lat },
        )
    }

    #[test]
    fn a_change_drops_the_tiles_it_touches_and_only_those() {
        let cache = TileCache::new(1 << 20);
        // 10/547/365 holds 12.4, 45.7; 10/548/365 is its east neighbour.
        let here = key(10, 547, 365, "services");
        let east = key(10, 548, 365, "services");
        let territories = key(10, 547, 365, "territories");
        let world = key(0, 0, 0, "services,territories");
        for k in [&here, &east, &territories, &world] {
            assert!(cache.insert(k.clone(), tile(10), cache.stamp()));
        }
        assert_eq!(
            cache.invalidate(Collection::Services, &[point(12.4, 45.7)]),
            2
        );
        assert!(cache.get(&here).is_none());
        assert!(cache.get(&world).is_none());
        assert!(
            cache.get(&east).is_some(),
            "a tile the change does not touch stays"
        );
        assert!(
            cache.get(&territories).is_some(),
            "a tile of another layer stays"
        );
        // A point in the east tile's buffer (64/4096 of a tile beyond its west edge).
        let [w, ..] = TileId::new(10, 548, 365).unwrap().lonlat_bounds();
        assert_eq!(
            cache.invalidate(Collection::Services, &[point(w - 0.003, 45.7)]),
            1
        );
    }

    #[test]
    fn a_tile_encoded_before_a_change_is_not_kept() {
        let cache = TileCache::new(1 << 20);
        let stamp = cache.stamp();
        cache.invalidate(Collection::Services, &[point(100.0, 0.0)]);
        assert!(!cache.insert(key(3, 1, 1, "services"), tile(10), stamp));
        assert!(
            cache.insert(key(3, 1, 1, "territories"), tile(10), stamp),
            "a change to another layer does not matter"
        );
        assert!(cache.insert(key(3, 1, 1, "services"), tile(10), cache.stamp()));
    }

    #[test]
    fn the_cache_stays_within_its_bytes_dropping_the_least_recently_used() {
        let cache = TileCache::new(3 * (1000 + ENTRY_OVERHEAD));
        for x in 0..3 {
            assert!(cache.insert(key(5, x, 0, "services"), tile(1000), cache.stamp()));
        }
        assert!(cache.get(&key(5, 0, 0, "services")).is_some());
        assert!(cache.insert(key(5, 3, 0, "services"), tile(1000), cache.stamp()));
        assert!(cache.bytes() <= cache.capacity());
        assert!(
            cache.get(&key(5, 1, 0, "services")).is_none(),
            "the least recently used left"
        );
        assert!(cache.get(&key(5, 0, 0, "services")).is_some());
        assert!(!TileCache::new(0).insert(
            key(5, 0, 0, "services"),
            tile(1),
            TileCache::new(0).stamp()
        ));
        cache.clear();
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
    }
}
