//! Which collections a tile request asks for: `services`, or a comma list such as
//! `services,settlements,worksites,territories`.

use crate::domain::Collection;

/// A set of collections, in a fixed order (territories first, drawn under the rest; then
/// settlements, worksites, services), whatever order the request named them in: the same
/// set is the same tile and the same cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LayerSet(u8);

/// The order of source layers in a tile.
const ORDER: [Collection; 4] = [
    Collection::Territories,
    Collection::Settlements,
    Collection::Worksites,
    Collection::Services,
];

/// Why a layer list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayerError {
    #[error("no layer named")]
    Empty,
    #[error("{0}")]
    Unknown(String),
    #[error("`{0}` is named twice")]
    Repeated(String),
}

impl LayerSet {
    /// Every collection.
    pub const ALL: LayerSet = LayerSet(0b1111);

    /// Parses `a,b,c` (collection names, each at most once).
    pub fn parse(text: &str) -> Result<Self, LayerError> {
        if text.is_empty() {
            return Err(LayerError::Empty);
        }
        let mut set = LayerSet::default();
        for name in text.split(',') {
            let collection: Collection = name
                .parse()
                .map_err(|e: String| LayerError::Unknown(e.chars().take(200).collect()))?;
            if set.contains(collection) {
                return Err(LayerError::Repeated(name.to_owned()));
            }
            set = set.with(collection);
        }
        Ok(set)
    }

    pub fn of(collections: impl IntoIterator<Item = Collection>) -> Self {
        collections.into_iter().fold(Self::default(), Self::with)
    }

    #[must_use]
    pub fn with(self, collection: Collection) -> Self {
        Self(self.0 | (1 << collection.index()))
    }

    pub fn contains(self, collection: Collection) -> bool {
        self.0 & (1 << collection.index()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The collections, in tile order.
    pub fn iter(self) -> impl Iterator<Item = Collection> {
        ORDER.into_iter().filter(move |c| self.contains(*c))
    }

    /// The canonical name of the set, as used in URLs: `territories,services`.
    pub fn name(self) -> String {
        self.iter()
            .map(Collection::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_in_any_order_to_one_set() {
        let a = LayerSet::parse("services,territories").unwrap();
        let b = LayerSet::parse("territories,services").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.name(), "territories,services");
        assert_eq!(
            LayerSet::parse("services,settlements,worksites,territories").unwrap(),
            LayerSet::ALL
        );
        assert!(matches!(LayerSet::parse(""), Err(LayerError::Empty)));
        assert!(matches!(
            LayerSet::parse("services,"),
            Err(LayerError::Unknown(_))
        ));
        assert!(matches!(
            LayerSet::parse("roads"),
            Err(LayerError::Unknown(_))
        ));
        assert!(matches!(
            LayerSet::parse("services,services"),
            Err(LayerError::Repeated(_))
        ));
    }
}
