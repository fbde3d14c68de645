//! Choosing the storage backend once, from the database URL's scheme.

use std::sync::Arc;

use anyhow::{bail, Context};
use reward_store::Store;
use reward_store_sqlite::SqliteStore;

pub fn open(database_url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        bail!("REWARD_DATABASE_URL: PostgreSQL support is not built yet; use a sqlite:// URL");
    }
    let path = reward_store_sqlite::path_from_url(database_url).with_context(|| {
        format!("REWARD_DATABASE_URL: '{database_url}' is neither sqlite://PATH nor postgres://...")
    })?;
    let store =
        SqliteStore::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Arc::new(store))
}
