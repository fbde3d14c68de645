//! Reaching the server: which URLs are ours, and the connection pool every node keeps.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::functions::StatementFunctions;
use crate::statements::{Conn, Db, Statements};
use crate::OpenError;

/// Connections each node keeps open at most, by default (`REWARD_DATABASE_POOL_SIZE`). A handful
/// serve a node well (every statement is short and the node's work queues for them), and it keeps
/// several nodes under the server's `max_connections` (100 by default); docs/scaling.md says when
/// to put PgBouncer in front.
pub const POOL_SIZE: usize = 16;
/// The fewest connections a node may be given: a trigger-event batch, a worker's batch of
/// attempts, a claim and an API read each hold one while they run.
pub const MIN_POOL_SIZE: usize = 4;
/// The most: far past what one node can keep busy, and past most servers' `max_connections`.
pub const MAX_POOL_SIZE: usize = 1000;

/// How long a call waits for a free connection, or for a new one to open, before the store
/// answers "unavailable" (503) instead of hanging.
const WAIT_FOR_CONNECTION: Duration = Duration::from_secs(5);

/// True for the URLs this backend serves: `postgres://...` and `postgresql://...`.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The connection settings a URL names, with Reward's defaults where it names none.
pub fn config_from_url(url: &str) -> Result<tokio_postgres::Config, OpenError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(OpenError::Url)?;
    if config.get_application_name().is_none() {
        // Shows which sessions are Reward's in pg_stat_activity.
        config.application_name("reward");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(WAIT_FOR_CONNECTION);
    }
    Ok(config)
}

/// Whether connecting failed because the database the URL names does not exist.
pub fn database_is_missing(error: &PoolError) -> bool {
    matches!(error, PoolError::Backend(error)
        if error.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME))
}

/// Creates the database `config` names (its user's name when it names none), from the server's
/// maintenance database `postgres`: `reward serve` creates its database on PostgreSQL as it does
/// its SQLite file (SPEC §2). Nodes starting together may both try; the one that finds it made
/// already, or `template1` busy with the other's copy, goes on (tries again a moment later for
/// the second). Returns the name.
pub async fn create_database(config: &tokio_postgres::Config) -> Result<String, OpenError> {
    use tokio_postgres::error::SqlState;
    let name = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres")
        .to_owned();
    let failed = |error: &tokio_postgres::Error| OpenError::Create {
        name: name.clone(),
        reason: crate::errors::describe(error),
    };
    let mut maintenance = config.clone();
    maintenance.dbname("postgres");
    let (client, connection) = maintenance
        .connect(NoTls)
        .await
        .map_err(|error| failed(&error))?;
    let driving = tokio::spawn(connection);
    let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
    let mut outcome = Ok(());
    for _ in 0..CREATE_TRIES {
        outcome = client.batch_execute(&statement).await;
        match &outcome {
            Err(error) if error.code() == Some(&SqlState::OBJECT_IN_USE) => {
                tokio::time::sleep(CREATE_RETRY_AFTER).await;
            }
            _ => break,
        }
    }
    drop(client);
    let _ = driving.await;
    match outcome {
        Ok(()) => Ok(name),
        Err(error) if error.code() == Some(&SqlState::DUPLICATE_DATABASE) => Ok(name),
        Err(error) => Err(failed(&error)),
    }
}

/// `CREATE DATABASE` tries at most, while another copies `template1` at the same moment.
const CREATE_TRIES: usize = 5;
const CREATE_RETRY_AFTER: Duration = Duration::from_millis(200);

/// How a node reaches its database, beside the URL: the settings PgBouncer needs.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// Where the node listens for work announced by the others (`REWARD_DATABASE_LISTEN_URL`):
    /// `LISTEN` lasts as long as its session, so this must reach PostgreSQL directly or through a
    /// session-mode pool. None: the database URL.
    pub listen_url: Option<String>,
    /// How statements are sent (`REWARD_DATABASE_PREPARED_STATEMENTS`).
    pub statements: Statements,
    /// Connections the node keeps open at most (`REWARD_DATABASE_POOL_SIZE`), besides the one
    /// listening; None: [`POOL_SIZE`]. Bounded to [`MIN_POOL_SIZE`]..=[`MAX_POOL_SIZE`].
    pub pool_size: Option<usize>,
}

/// The node's connections, each sending statements as `statements` says.
#[derive(Clone)]
pub struct Pool {
    connections: deadpool_postgres::Pool,
    statements: Statements,
    /// Unnamed statements' functions (see [`crate::functions`]); none when statements are
    /// prepared, which keeps their plans already.
    functions: Option<Arc<StatementFunctions>>,
}

impl Pool {
    pub async fn get(&self) -> Result<Conn, PoolError> {
        Ok(Conn::new(
            self.connections.get().await?,
            self.statements,
            self.functions.clone(),
        ))
    }

    /// Connections it keeps open at most.
    pub fn max_size(&self) -> usize {
        self.connections.status().max_size
    }

    /// Connections it has open now, in use or idle.
    pub fn open(&self) -> usize {
        self.connections.status().size
    }

    #[cfg(test)]
    pub fn close(&self) {
        self.connections.close();
    }
}

/// The server's limit on connections beside what a node may keep, as seen when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionRoom {
    /// `max_connections`.
    pub max_connections: i64,
    /// Kept for superusers and roles with `pg_use_reserved_connections`.
    pub reserved: i64,
    /// Client connections open on the server, this node's excepted.
    pub open_elsewhere: i64,
    /// What this node may keep: its pool and its listening connection.
    pub wanted: i64,
}

impl ConnectionRoom {
    /// Whether this node, at its busiest, would find the server full.
    pub fn is_short(&self) -> bool {
        self.open_elsewhere + self.wanted > self.max_connections - self.reserved
    }

    /// Reads the server's settings and open connections from `db`, one of this node's `open_here`
    /// connections, for a node that may keep `wanted`.
    pub async fn read(
        db: &impl Db,
        open_here: usize,
        wanted: usize,
    ) -> Result<Self, tokio_postgres::Error> {
        // `reserved_connections` is new in PostgreSQL 16: unknown before, and then none.
        let row = db
            .query_one(
                "SELECT current_setting('max_connections')::bigint,
                        current_setting('superuser_reserved_connections')::bigint
                          + COALESCE(current_setting('reserved_connections', true), '0')::bigint,
                        (SELECT count(*) FROM pg_stat_activity
                         WHERE backend_type = 'client backend')",
                &[],
            )
            .await?;
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        Ok(Self {
            max_connections: row.get(0),
            reserved: row.get(1),
            open_elsewhere: row.get::<_, i64>(2).saturating_sub(count(open_here)),
            wanted: count(wanted),
        })
    }
}

/// The node's pool, as `options` size it.
pub fn pool(config: tokio_postgres::Config, options: &ConnectOptions) -> Result<Pool, OpenError> {
    let size = options
        .pool_size
        .unwrap_or(POOL_SIZE)
        .clamp(MIN_POOL_SIZE, MAX_POOL_SIZE);
    pool_of(config, options.statements, size)
}

/// A pool of at most `size` connections.
pub(crate) fn pool_of(
    config: tokio_postgres::Config,
    statements: Statements,
    size: usize,
) -> Result<Pool, OpenError> {
    let functions = match statements {
        Statements::Prepared => None,
        Statements::Unnamed => Some(Arc::new(StatementFunctions::new(config.clone()))),
    };
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            // A connection that broke is found out by the next statement on it, which answers
            // "unavailable"; checking each one before use would cost a round trip every time.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let connections = deadpool_postgres::Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(WAIT_FOR_CONNECTION))
        .create_timeout(Some(WAIT_FOR_CONNECTION))
        .build()
        .map_err(|error| OpenError::Pool(error.to_string()))?;
    Ok(Pool {
        connections,
        statements,
        functions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_postgres_urls_are_ours() {
        assert!(is_postgres_url("postgres://postgres@127.0.0.1:5432/reward"));
        assert!(is_postgres_url("postgresql://localhost/reward"));
        assert!(!is_postgres_url("sqlite://reward-data/reward.db"));
    }

    #[test]
    fn urls_get_reward_defaults() {
        let config = config_from_url("postgres://postgres@127.0.0.1:5432/reward").expect("url");
        assert_eq!(config.get_application_name(), Some("reward"));
        assert_eq!(config.get_dbname(), Some("reward"));
        assert!(config_from_url("postgres://host:notaport/db").is_err());
    }
}
