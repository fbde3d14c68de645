//! Choosing the storage backend once, from the database URL's scheme: `postgres://` (or
//! `postgresql://`) selects PostgreSQL, for several nodes on one database; `sqlite://` the
//! embedded default.

use std::sync::Arc;

use anyhow::Context;
use reward_store::secrets::SecretCipher;
use reward_store::Store;
use reward_store_postgres::PostgresStore;
use reward_store_sqlite::SqliteStore;

pub use reward_store_postgres::{
    ConnectOptions, Statements, MAX_POOL_SIZE, MIN_POOL_SIZE, POOL_SIZE,
};

/// Opens (creating or migrating as needed) the database the URL names, without a secret key: for
/// the tools that never touch webhook secrets (`reward accounts`, `reward migrate`).
pub async fn open(database_url: &str, options: &ConnectOptions) -> anyhow::Result<Arc<dyn Store>> {
    if reward_store_postgres::is_postgres_url(database_url) {
        check_listen_url(options)?;
        let store = PostgresStore::open_with(database_url, options)
            .await
            .with_context(|| format!("cannot open {}", redacted(database_url)))?;
        return Ok(Arc::new(store));
    }
    let path = sqlite_path(database_url, options)?;
    let store =
        SqliteStore::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Arc::new(store))
}

/// Opens the database for `reward serve`: webhook secrets are sealed with `secret_key`
/// (`REWARD_SECRET_KEY`, base64 of 32 bytes) or, on SQLite without one, with the key file beside
/// the database (created, mode 0600, when missing). PostgreSQL needs the key: every node must
/// seal with the same one, and a key file on one node's disk cannot be shared.
pub async fn open_for_serving(
    database_url: &str,
    options: &ConnectOptions,
    secret_key: Option<&str>,
) -> anyhow::Result<Arc<dyn Store>> {
    let cipher = secret_key
        .map(SecretCipher::from_base64)
        .transpose()
        .map_err(|error| anyhow::anyhow!(error))?;
    if reward_store_postgres::is_postgres_url(database_url) {
        let Some(cipher) = cipher else {
            anyhow::bail!(
                "REWARD_SECRET_KEY is required with PostgreSQL (base64 of 32 random bytes, the same on every node; e.g. `openssl rand -base64 32`)"
            );
        };
        check_listen_url(options)?;
        let store = PostgresStore::open_with(database_url, options)
            .await
            .with_context(|| format!("cannot open {}", redacted(database_url)))?
            .with_secret_cipher(cipher)
            .await
            .context("sealing webhook secrets stored before encryption")?;
        if options.listen_url.is_none() {
            warn_when_short_of_connections(&store).await;
        }
        return Ok(Arc::new(store));
    }
    let path = sqlite_path(database_url, options)?;
    let store = SqliteStore::open_sealed(&path, cipher)
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Arc::new(store))
}

/// Says so when the server could not give this node every connection it may keep. Only when it
/// reaches PostgreSQL directly: behind PgBouncer (a listening URL of its own) the server's limit
/// is PgBouncer's business. A warning, not a refusal: the others may be about to stop.
async fn warn_when_short_of_connections(store: &PostgresStore) {
    match store.connection_room().await {
        Ok(room) if room.is_short() => tracing::warn!(
            max_connections = room.max_connections,
            reserved = room.reserved,
            open_elsewhere = room.open_elsewhere,
            this_node = room.wanted,
            "the database server may run out of connections for this node: lower \
             REWARD_DATABASE_POOL_SIZE, raise max_connections, or put PgBouncer in front \
             (docs/scaling.md)"
        ),
        Ok(_) => {}
        Err(error) => tracing::debug!(%error, "could not count the server's connections"),
    }
}

/// The SQLite file a `sqlite://` URL names. A listening URL is PostgreSQL's alone: given with
/// SQLite it is a mistake worth stopping for.
fn sqlite_path(database_url: &str, options: &ConnectOptions) -> anyhow::Result<std::path::PathBuf> {
    let path = reward_store_sqlite::path_from_url(database_url).with_context(|| {
        format!(
            "REWARD_DATABASE_URL: '{}' is neither sqlite://PATH nor postgres://...",
            redacted(database_url)
        )
    })?;
    if options.listen_url.is_some() {
        anyhow::bail!(
            "REWARD_DATABASE_LISTEN_URL is for PostgreSQL only; REWARD_DATABASE_URL is SQLite ({})",
            redacted(database_url)
        );
    }
    Ok(path)
}

/// A listening URL must be PostgreSQL's too; said before anything connects.
fn check_listen_url(options: &ConnectOptions) -> anyhow::Result<()> {
    match &options.listen_url {
        Some(url) if !reward_store_postgres::is_postgres_url(url) => anyhow::bail!(
            "REWARD_DATABASE_LISTEN_URL: '{}' is not a postgres://... URL",
            redacted(url)
        ),
        _ => Ok(()),
    }
}

/// The URL without its password, fit for an error message or a log line.
pub fn redacted(url: &str) -> String {
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
