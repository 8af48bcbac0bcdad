//! Record counts per layer, kept up to date by every write in O(1) (the items endpoint answers
//! `numberMatched` from them without a scan).

use std::collections::BTreeMap;

use crate::domain::Record;

/// How many records, and how many of them an anonymous caller may see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    total: usize,
    anonymous: usize,
}

impl Tally {
    fn get(self, restricted_visible: bool) -> usize {
        if restricted_visible {
            self.total
        } else {
            self.anonymous
        }
    }

    fn add(&mut self, anonymous: bool) {
        self.total += 1;
        self.anonymous += usize::from(anonymous);
    }

    fn remove(&mut self, anonymous: bool) {
        self.total = self.total.saturating_sub(1);
        self.anonymous = self.anonymous.saturating_sub(usize::from(anonymous));
    }
}

/// Counts of a layer: all records, and per `kind_str()` (service kind, worksite kind or
/// territory level; settlements have none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Counts {
    all: Tally,
    /// At most a few dozen kinds: copying this map is part of every write.
    by_kind: BTreeMap<&'static str, Tally>,
}

impl Counts {
    pub(super) fn add(&mut self, record: &Record) {
        let anonymous = crate::domain::is_public(record);
        self.all.add(anonymous);
        if let Some(kind) = record.attributes().kind_str() {
            self.by_kind.entry(kind).or_default().add(anonymous);
        }
    }

    pub(super) fn remove(&mut self, record: &Record) {
        let anonymous = crate::domain::is_public(record);
        self.all.remove(anonymous);
        if let Some(kind) = record.attributes().kind_str()
            && let Some(tally) = self.by_kind.get_mut(kind)
        {
            tally.remove(anonymous);
        }
    }

    pub(super) fn total(&self) -> usize {
        self.all.total
    }

    pub(super) fn anonymous(&self) -> usize {
        self.all.anonymous
    }

    /// Records of `kind` (every record when `None`): all of them when `restricted_visible`,
    /// else those an anonymous caller may see.
    pub(super) fn get(&self, restricted_visible: bool, kind: Option<&str>) -> usize {
        match kind {
            None => self.all.get(restricted_visible),
            Some(kind) => self
                .by_kind
                .get(kind)
                .map_or(0, |t| t.get(restricted_visible)),
        }
    }
}
