//! A layer's delta: what changed since its base was built, small and copied by every write.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::iter::Peekable;
use std::sync::Arc;

use rstar::RTree;

use crate::domain::{Record, RecordId};

use super::tree::{EnvelopeTree, PointTree, envelope_entry, point_entry};

/// The latest state of one id changed since the base was built: a record, or a tombstone.
///
/// Ordered by the id of its record (a tombstone keeps the record it deleted, for the id), so
/// the delta holds no copy of the ids and copying it allocates no strings.
#[derive(Debug, Clone)]
pub(super) struct DeltaEntry {
    pub(super) record: Arc<Record>,
    pub(super) deleted: bool,
    /// When the layer took this state (see `Layer::next_seq`): a merge keeps, on top of the
    /// new base, the entries newer than its job.
    pub(super) seq: u64,
}

impl DeltaEntry {
    pub(super) fn live(&self) -> Option<&Arc<Record>> {
        (!self.deleted).then_some(&self.record)
    }
}

impl PartialEq for DeltaEntry {
    fn eq(&self, other: &Self) -> bool {
        self.record.id() == other.record.id()
    }
}

impl Eq for DeltaEntry {}

impl PartialOrd for DeltaEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DeltaEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.record.id().cmp(other.record.id())
    }
}

impl Borrow<RecordId> for DeltaEntry {
    fn borrow(&self) -> &RecordId {
        self.record.id()
    }
}

/// The base records that delta entries replace, by address (the base holds them, so an
/// address names one record for as long as the base lives): a tree entry of the base is
/// tested against it without reading the record.
///
/// An open-addressing set of addresses, at most half full: a test is a multiply and one or two
/// probes of a table the size of a few delta entries (a sorted list cost a `nearest` over a
/// non-empty delta a few microseconds in mispredicted branches), and a copy is one `memcpy`.
#[derive(Debug, Clone, Default)]
pub(super) struct Shadowed {
    /// Addresses, 0 for a free slot; the length is 0 or a power of two.
    slots: Vec<usize>,
    len: usize,
}

/// Nothing shadowed: what the walk of a delta tree skips.
pub(super) static NOTHING: Shadowed = Shadowed {
    slots: Vec::new(),
    len: 0,
};

fn address(record: &Arc<Record>) -> usize {
    Arc::as_ptr(record).addr()
}

impl Shadowed {
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn contains(&self, record: &Arc<Record>) -> bool {
        if self.len == 0 {
            return false;
        }
        let a = address(record);
        let mask = self.slots.len() - 1;
        let mut i = self.home(a);
        loop {
            match self.slots[i] {
                s if s == a => return true,
                0 => return false,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Adds `record`; false when it was there already.
    pub(super) fn insert(&mut self, record: &Arc<Record>) -> bool {
        if 2 * (self.len + 1) > self.slots.len() {
            let size = (2 * self.slots.len()).max(64);
            let old = std::mem::replace(&mut self.slots, vec![0; size]);
            for a in old.into_iter().filter(|a| *a != 0) {
                self.place(a);
            }
        }
        let added = self.place(address(record));
        self.len += usize::from(added);
        added
    }

    /// Puts `a` in its slot; false when it is there already.
    fn place(&mut self, a: usize) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = self.home(a);
        loop {
            match self.slots[i] {
                s if s == a => return false,
                0 => {
                    self.slots[i] = a;
                    return true;
                }
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// The first slot to probe for `a`: Fibonacci hashing, the product's top bits.
    fn home(&self, a: usize) -> usize {
        let bits = self.slots.len().trailing_zeros();
        let h = u64::try_from(a)
            .unwrap_or_default()
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        usize::try_from(h >> (64 - bits)).unwrap_or_default()
    }
}

/// Records upserted or deleted since the base was built. Any id here shadows the base's entry.
#[derive(Debug, Clone, Default)]
pub(super) struct Delta {
    pub(super) entries: BTreeSet<DeltaEntry>,
    pub(super) shadowed: Shadowed,
    /// How many of the shadowed base records an anonymous caller may see.
    pub(super) shadowed_anonymous: usize,
    /// The live records' envelopes and points.
    pub(super) envelopes: EnvelopeTree,
    pub(super) points: PointTree,
}

impl Delta {
    /// A delta of these entries (ordered by id, one per id) over a base where `in_base`
    /// finds an id's record. Tombstones of ids the base lacks are dropped.
    pub(super) fn of<'a>(
        entries: impl IntoIterator<Item = &'a DeltaEntry>,
        in_base: impl Fn(&RecordId) -> Option<&'a Arc<Record>>,
    ) -> Self {
        let mut delta = Delta::default();
        let mut envelopes = Vec::new();
        let mut points = Vec::new();
        for e in entries {
            let base = in_base(e.record.id());
            if e.deleted && base.is_none() {
                continue;
            }
            if let Some(b) = base {
                delta.shadow(b);
            }
            if let Some(r) = e.live() {
                envelopes.extend(envelope_entry(r));
                points.extend(point_entry(r));
            }
            delta.entries.insert(e.clone());
        }
        delta.envelopes = RTree::bulk_load(envelopes);
        delta.points = RTree::bulk_load_with_params(points);
        delta
    }

    pub(super) fn get(&self, id: &RecordId) -> Option<&DeltaEntry> {
        if self.entries.is_empty() {
            None
        } else {
            self.entries.get(id)
        }
    }

    /// Marks a base record as replaced by an entry of this delta.
    pub(super) fn shadow(&mut self, base: &Arc<Record>) {
        if self.shadowed.insert(base) {
            self.shadowed_anonymous += usize::from(crate::domain::is_public(base));
        }
    }

    /// Makes `entry` the state of its id, replacing the delta's entry for it, if any.
    pub(super) fn put(&mut self, entry: DeltaEntry) {
        if let Some(old) = self.entries.take(entry.record.id())
            && let Some(r) = old.live()
        {
            if let Some(e) = envelope_entry(r) {
                self.envelopes.remove(&e);
            }
            if let Some(p) = point_entry(r) {
                self.points.remove(&p);
            }
        }
        if let Some(r) = entry.live() {
            if let Some(e) = envelope_entry(r) {
                self.envelopes.insert(e);
            }
            if let Some(p) = point_entry(r) {
                self.points.insert(p);
            }
        }
        self.entries.insert(entry);
    }
}

/// The records of a base (ordered by id) with a delta's entries (ordered by id) laid over
/// them: ordered by id, a base record replaced by an entry's state, tombstones left out.
pub(super) struct Merged<B: Iterator, D: Iterator> {
    base: Peekable<B>,
    delta: Peekable<D>,
}

impl<'a, B, D> Merged<B, D>
where
    B: Iterator<Item = &'a Arc<Record>>,
    D: Iterator<Item = &'a DeltaEntry>,
{
    pub(super) fn new(base: B, delta: D) -> Self {
        Self {
            base: base.peekable(),
            delta: delta.peekable(),
        }
    }
}

impl<'a, B, D> Iterator for Merged<B, D>
where
    B: Iterator<Item = &'a Arc<Record>>,
    D: Iterator<Item = &'a DeltaEntry>,
{
    type Item = &'a Arc<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.base.peek(), self.delta.peek()) {
                (_, None) => return self.base.next(),
                (None, Some(_)) => Ordering::Greater,
                (Some(b), Some(d)) => b.id().cmp(d.record.id()),
            };
            match order {
                Ordering::Less => return self.base.next(),
                Ordering::Equal => {
                    // Shadowed by the delta's entry, taken next.
                    self.base.next();
                }
                Ordering::Greater => {}
            }
            if let Some(r) = self.delta.next().and_then(DeltaEntry::live) {
                return Some(r);
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (_, base) = self.base.size_hint();
        let (_, delta) = self.delta.size_hint();
        (0, base.zip(delta).map(|(b, d)| b + d))
    }
}
