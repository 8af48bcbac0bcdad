//! A layer's base: records and both trees, bulk-loaded once and never changed after.

use std::sync::Arc;

use rstar::{AABB, RTree};

use crate::domain::{Record, RecordId};

use super::counts::Counts;
use super::search::bounds;
use super::tree::{EnvelopeTree, PointTree, envelope_entry, point_entry};

/// The immutable part of a layer, shared by every snapshot until the next merge.
#[derive(Debug, Default)]
pub(super) struct Base {
    /// Every record, ordered by id, one per id.
    pub(super) records: Vec<Arc<Record>>,
    pub(super) envelopes: EnvelopeTree,
    pub(super) points: PointTree,
    pub(super) counts: Counts,
    /// The bounding box of the records an anonymous caller may see.
    pub(super) anonymous_bounds: Option<AABB<[f64; 2]>>,
}

impl Base {
    /// Bulk-loads records in any order; of records with the same id, the last one is kept.
    pub(super) fn build(records: Vec<Arc<Record>>) -> Self {
        let count = records.len();
        let (envelopes, points, counts, order) = trees(&records, id_order);
        let mut slots: Vec<Option<Arc<Record>>> = records.into_iter().map(Some).collect();
        let records: Vec<Arc<Record>> = order.into_iter().filter_map(|i| slots[i].take()).collect();
        if records.len() < count {
            // Duplicate ids (no store hands them out): the trees hold every copy, so build
            // them again from the records that won.
            return Self::from_sorted(records);
        }
        Self::assemble(records, envelopes, points, counts)
    }

    /// Bulk-loads records already ordered by id, one per id.
    pub(super) fn from_sorted(records: Vec<Arc<Record>>) -> Self {
        let (envelopes, points, counts, ()) = trees(&records, |_| ());
        Self::assemble(records, envelopes, points, counts)
    }

    fn assemble(
        records: Vec<Arc<Record>>,
        envelopes: EnvelopeTree,
        points: PointTree,
        counts: Counts,
    ) -> Self {
        let anonymous_bounds = if counts.anonymous() == 0 {
            None
        } else {
            bounds(&envelopes, |e| e.anonymous)
        };
        Self {
            records,
            envelopes,
            points,
            counts,
            anonymous_bounds,
        }
    }

    pub(super) fn get(&self, id: &RecordId) -> Option<&Arc<Record>> {
        self.records
            .binary_search_by(|r| r.id().cmp(id))
            .ok()
            .map(|i| &self.records[i])
    }
}

/// Both trees of `records`, built in parallel, their counts (in the same pass over the
/// records as the envelopes), and what `also` computes after the envelope tree, in its thread.
fn trees<T: Send>(
    records: &[Arc<Record>],
    also: impl FnOnce(&[Arc<Record>]) -> T + Send,
) -> (EnvelopeTree, PointTree, Counts, T) {
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            let mut counts = Counts::default();
            let mut entries = Vec::with_capacity(records.len());
            for r in records {
                counts.add(r);
                entries.extend(envelope_entry(r));
            }
            let envelopes = RTree::bulk_load(entries);
            (envelopes, counts, also(records))
        });
        let points = RTree::bulk_load_with_params(records.iter().filter_map(point_entry).collect());
        let (envelopes, counts, extra) = other
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (envelopes, points, counts, extra)
    })
}

/// Positions of `records` in id order; of records with the same id, only the last.
///
/// Sorting a million records directly chases two pointers (record, then id) for each side of
/// every comparison; sorting (first 16 bytes of the id, position) pairs reads each id once.
fn id_order(records: &[Arc<Record>]) -> Vec<usize> {
    let prefix = |id: &RecordId| {
        let mut bytes = [0_u8; 16];
        for (b, c) in bytes.iter_mut().zip(id.as_str().bytes()) {
            *b = c;
        }
        // Ids are ASCII without NUL, so the zero padding sorts a shorter id first, as
        // comparing the strings does.
        u128::from_be_bytes(bytes)
    };
    let mut order: Vec<(u128, usize)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (prefix(r.id()), i))
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| records[a.1].id().cmp(records[b.1].id()))
            .then(a.1.cmp(&b.1))
    });
    order.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0 && records[later.1].id() == records[earlier.1].id();
        if same {
            earlier.1 = later.1;
        }
        same
    });
    order.into_iter().map(|(_, i)| i).collect()
}
