//! PostgreSQL + PostGIS store (being written).

use super::{Result, StoreError};

pub struct PostgresStore;

impl PostgresStore {
    pub async fn connect(_url: &str, _pool_size: usize) -> Result<Self> {
        Err(StoreError::BadUrl("postgres store not built yet".into()))
    }
}
