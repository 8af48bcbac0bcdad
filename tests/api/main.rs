//! Black-box tests of faro through HTTP. One binary; each test spawns its own server over a
//! fresh database (SQLite by default, PostGIS with `FARO_TEST_BACKEND=postgres`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod access;
mod audit;
mod coverage;
mod features;
mod gdal;
mod hardening;
mod helpers;
mod instances;
mod leaks;
mod limits;
mod nearest;
mod ops;
mod scopes;
#[path = "../common/skip.rs"]
mod skip;
mod style_validate;
pub mod tiles;
mod writes;
