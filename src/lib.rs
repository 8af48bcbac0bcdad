//! faro: the service map of a territorial network against labour exploitation.
//!
//! Module map and data flow (request → `http` → `index`/`analysis` → `storage`):
//!
//! - [`domain`]: records of the four collections (services, settlements, worksites,
//!   territories), validated value types, access rules. No I/O.
//! - [`storage`]: the [`storage::Store`] trait, the source of truth; SQLite (embedded default)
//!   and PostgreSQL + PostGIS.
//! - [`index`]: in-memory R-trees over every collection, an immutable snapshot swapped
//!   atomically on every write; geodesic nearest neighbours.
//! - [`catalog`]: keeps store and index in step; every write goes through it.
//! - [`io`]: import (GeoJSON, CSV, Shapefile, GeoPackage; reprojection) and export (GeoJSON,
//!   CSV, GeoPackage, `FlatGeobuf`).
//! - [`analysis`]: nearest-service queries with filters (pure, synchronous).
//! - [`report`]: `faro report`, the coverage analysis as a table, layers and a printable
//!   HTML page.
//! - [`tiles`]: Mapbox Vector Tiles encoded from the index, and their always-fresh cache.
//! - [`http`]: actix-web router, handlers, errors, authentication.
//! - [`startup`], [`config`], [`cli`]: wiring for the `faro` binary.
//!
//! Coordinates are WGS84 lon/lat everywhere; distances are metres on the WGS84 ellipsoid.

pub mod analysis;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod index;
pub mod io;
mod par;
pub mod report;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod tiles;
pub mod tokens;
