//! Store and index in step.
