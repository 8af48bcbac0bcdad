//! Analyses over an index snapshot: pure, synchronous, no I/O.
//!
//! - [`nearest`]: the services nearest to a point, with kind, language and opening filters.
//! - [`coverage`]: catchments, covered area and demand per territory, gaps, uncovered records,
//!   the H3 surface and greedy site suggestions.

pub mod coverage;
pub mod nearest;
