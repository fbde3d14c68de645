//! Choosing the storage backend once, from the database URL's scheme: `postgres://` (or
//! `postgresql://`) selects PostgreSQL, for several nodes on one database; `sqlite://` the
//! embedded default.

use std::sync::Arc;

use anyhow::Context;
use reward_store::Store;
use reward_store_postgres::PostgresStore;
use reward_store_sqlite::SqliteStore;

/// Opens (creating or migrating as needed) the database the URL names.
pub async fn open(database_url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if reward_store_postgres::is_postgres_url(database_url) {
        let store = PostgresStore::open(database_url)
            .await
            .with_context(|| format!("cannot open {}", redacted(database_url)))?;
        return Ok(Arc::new(store));
    }
    let path = reward_store_sqlite::path_from_url(database_url).with_context(|| {
        format!("REWARD_DATABASE_URL: '{database_url}' is neither sqlite://PATH nor postgres://...")
    })?;
    let store =
        SqliteStore::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Arc::new(store))
}

/// The URL without its password, fit for an error message or a log line.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redacted("postgres://reward:s3cret@db:5432/reward"),
            "postgres://reward:***@db:5432/reward"
        );
        assert_eq!(
            redacted("postgres://postgres@127.0.0.1/reward"),
            "postgres://postgres@127.0.0.1/reward"
        );
    }
}
