//! The demo dataset (`data/*.geojson`, built into the binary): the Province of Treviso and its
//! four territories (the health districts of ULSS 2, dissolved from ISTAT's comuni: see
//! `data/README.md`), services at real public offices and towns, and fictional settlements and
//! worksites. Loaded into an empty store on first start.

use crate::catalog::Catalog;
use crate::domain::{Collection, FeatureInput};
use crate::storage::{StoreError, WriteOp};

/// Each demo file with its collection.
pub const FILES: [(Collection, &str); 4] = [
    (
        Collection::Territories,
        include_str!("../data/territories.geojson"),
    ),
    (
        Collection::Services,
        include_str!("../data/services.geojson"),
    ),
    (
        Collection::Settlements,
        include_str!("../data/settlements.geojson"),
    ),
    (
        Collection::Worksites,
        include_str!("../data/worksites.geojson"),
    ),
];

/// Why the demo could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo file for {collection} is not JSON: {source}")]
    Json {
        collection: Collection,
        source: serde_json::Error,
    },
    #[error("demo file for {collection}: {problems}")]
    Invalid {
        collection: Collection,
        problems: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Every demo record as write operations.
pub fn operations() -> Result<Vec<WriteOp>, DemoError> {
    let mut ops = Vec::new();
    for (collection, text) in FILES {
        let doc: serde_json::Value =
            serde_json::from_str(text).map_err(|source| DemoError::Json { collection, source })?;
        let inputs =
            FeatureInput::parse_document(collection, doc).map_err(|errors| DemoError::Invalid {
                collection,
                problems: errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            })?;
        ops.extend(inputs.into_iter().map(|f| WriteOp::insert(collection, f)));
    }
    Ok(ops)
}

/// Loads the demo into the store if it holds no record; returns how many were loaded.
pub async fn load_if_empty(catalog: &std::sync::Arc<Catalog>) -> Result<usize, DemoError> {
    if catalog.store().count().await? > 0 {
        return Ok(0);
    }
    let ops = operations()?;
    let n = ops.len();
    catalog.write(ops, "faro demo loader").await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_data_is_valid_and_large_enough() {
        let ops = operations().unwrap();
        let count = |c: Collection| {
            ops.iter()
                .filter(|op| matches!(op, WriteOp::Insert { attributes, .. } if attributes.collection() == c))
                .count()
        };
        assert!(count(Collection::Services) >= 40);
        assert!(count(Collection::Settlements) >= 15);
        assert!(count(Collection::Worksites) >= 150);
        assert_eq!(count(Collection::Territories), 5);
    }

    #[test]
    fn every_settlement_and_worksite_says_it_is_fictional() {
        use crate::domain::Attributes;
        for op in operations().unwrap() {
            if let WriteOp::Insert { attributes, .. } = op {
                match attributes {
                    Attributes::Settlement(s) => {
                        assert!(s.fictional && s.notes.unwrap_or_default().contains("Fictional"));
                    }
                    Attributes::Worksite(w) => {
                        assert!(w.fictional && w.notes.unwrap_or_default().contains("Fictional"));
                    }
                    _ => {}
                }
            }
        }
    }
}
