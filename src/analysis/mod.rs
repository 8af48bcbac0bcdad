//! Analyses over an index snapshot: pure, synchronous, no I/O.
//!
//! - [`nearest`]: the services nearest to a point, with kind, language and opening filters.

pub mod nearest;
