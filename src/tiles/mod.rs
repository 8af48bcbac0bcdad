//! Vector tiles straight from the index: tile math ([`grid`]), the layers a request asks for
//! ([`layers`]), Mapbox Vector Tile encoding with generalisation and clustering ([`encode`])
//! and the bounded, always-fresh tile cache ([`cache`]).
//!
//! [`Tiles`] ties them together for the HTTP layer: it answers a tile from the cache or
//! encodes it from a [`View`] (so a tile shows exactly what the caller may see), compresses
//! it once when gzip is asked for, and drops cached tiles when the index changes under them
//! (it is a [`crate::catalog::IndexListener`]).

pub mod cache;
pub mod encode;
pub mod grid;
pub mod layers;
pub mod style;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::catalog::{IndexChanges, IndexListener};
use crate::index::query::{QueryError, View};
pub use cache::{CachedTile, Encoding, Stamp, TileCache, TileKey};
pub use encode::{EncodedTile, encode};
pub use grid::{TileError, TileId};
pub use layers::{LayerError, LayerSet};

/// The attribution of faro's map layers (TileJSON and the style). The demo territories are
/// dissolved from ISTAT's comuni (CC BY 4.0, `data/README.md`), which asks for the credit.
pub const ATTRIBUTION: &str = "faro · comuni © ISTAT (CC BY 4.0)";

/// How a tile was answered, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// From the cache as it was.
    Hit,
    /// The cache had the identity body; compressed now and kept.
    Compressed,
    /// Encoded now.
    Miss,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Compressed => "compressed",
            Outcome::Miss => "miss",
        }
    }
}

/// A tile answer.
pub struct Served {
    pub tile: Arc<CachedTile>,
    pub outcome: Outcome,
    /// Time spent encoding (and compressing), when the tile was not in the cache.
    pub encode_time: Option<Duration>,
}

/// The tile service of one server.
pub struct Tiles {
    cache: TileCache,
}

impl Tiles {
    /// A service with a cache of `cache_bytes` (0: no cache).
    pub fn new(cache_bytes: usize) -> Self {
        Self {
            cache: TileCache::new(cache_bytes),
        }
    }

    pub fn cache(&self) -> &TileCache {
        &self.cache
    }

    /// Answers one tile, synchronously (call it off the async workers). `stamp` must have been
    /// taken from [`Tiles::cache`] before `view`'s snapshot was read.
    pub fn serve(
        &self,
        view: &View,
        stamp: Stamp,
        layers: LayerSet,
        tile: TileId,
        encoding: Encoding,
    ) -> Result<Served, QueryError> {
        let key = |encoding| TileKey {
            layers,
            tile,
            encoding,
            visibility: view.visibility().clone(),
        };
        if let Some(hit) = self.cache.get(&key(encoding)) {
            return Ok(Served {
                tile: hit,
                outcome: Outcome::Hit,
                encode_time: None,
            });
        }
        let started = Instant::now();
        let (identity, outcome) = if let Some(identity) = self.cache.get(&key(Encoding::Identity)) {
            (identity, Outcome::Compressed)
        } else {
            let encoded = encode(view, layers, tile)?;
            let identity = Arc::new(CachedTile {
                etag: etag_of(&encoded.bytes),
                body: Bytes::from(encoded.bytes),
                features: encoded.features,
                clustered: !encoded.clustered.is_empty(),
            });
            self.cache
                .insert(key(Encoding::Identity), Arc::clone(&identity), stamp);
            (identity, Outcome::Miss)
        };
        let tile = match encoding {
            Encoding::Identity => identity,
            Encoding::Gzip => {
                let body = if identity.body.is_empty() {
                    Bytes::new()
                } else {
                    Bytes::from(gzip(&identity.body))
                };
                let gzipped = Arc::new(CachedTile {
                    etag: etag_of(&body),
                    body,
                    features: identity.features,
                    clustered: identity.clustered,
                });
                self.cache
                    .insert(key(Encoding::Gzip), Arc::clone(&gzipped), stamp);
                gzipped
            }
        };
        Ok(Served {
            tile,
            outcome,
            encode_time: Some(started.elapsed()),
        })
    }
}

impl IndexListener for Tiles {
    fn changed(&self, changes: &IndexChanges<'_>) {
        match changes {
            IndexChanges::Records(areas) => {
                for (collection, rects) in *areas {
                    self.cache.invalidate(*collection, rects);
                }
            }
            IndexChanges::Everything => self.cache.clear(),
        }
    }
}

/// A strong entity tag of a body: the first 128 bits of its SHA-256, quoted.
pub fn etag_of(body: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(body);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// Gzip of a body (default level: tiles are compressed once and then served from the cache).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 2),
        flate2::Compression::default(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}
