//! Nearest-service queries.
