//! A fresh database per test, on the backend the run selects, removed when the test ends.
//!
//! `REWARD_TEST_BACKEND=postgres` runs the whole suite on PostgreSQL (default: SQLite): each test
//! then gets its own database `reward_test_<ulid>` on the server at `REWARD_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432`), dropped with `WITH (FORCE)` when the test is
//! done. The tests of several nodes need PostgreSQL whatever the backend: they run when a server
//! answers and are skipped with one line when none does, unless `REWARD_REQUIRE_POSTGRES=1`
//! (as in `.ci/run`) makes that a failure.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use tempfile::TempDir;
use tokio_postgres::NoTls;

const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432";
/// Creating or dropping a database never takes this long unless the server is in trouble; a test
/// must fail rather than hang.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Which backend the integration suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backend() -> Backend {
    match std::env::var("REWARD_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("REWARD_TEST_BACKEND must be sqlite or postgres, not {other:?}"),
    }
}

/// The PostgreSQL server tests use, as a URL without a database.
pub fn server_url() -> String {
    std::env::var("REWARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_SERVER.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// A test's database: a temporary folder (the SQLite file lives there; tests may put other files
/// beside it) and, on PostgreSQL, the database itself.
pub struct TestDatabase {
    postgres: Option<PostgresDatabase>,
    dir: TempDir,
}

impl TestDatabase {
    /// A folder of the test's own, removed with the database.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A fresh database on the selected backend, and its URL.
pub async fn fresh_database() -> (TestDatabase, String) {
    match backend() {
        Backend::Sqlite => {
            let dir = TempDir::new().expect("temp dir");
            let url = format!("sqlite://{}/reward.db", dir.path().display());
            (
                TestDatabase {
                    postgres: None,
                    dir,
                },
                url,
            )
        }
        Backend::Postgres => {
            assert!(
                postgres_reachable().await,
                "REWARD_TEST_BACKEND=postgres, but no PostgreSQL server answers at {}",
                server_url()
            );
            create_postgres_database().await
        }
    }
}

/// A fresh PostgreSQL database whatever the selected backend, or `None` (after saying so once)
/// when no server answers and none is required.
pub async fn fresh_postgres_database() -> Option<(TestDatabase, String)> {
    if postgres_reachable().await {
        return Some(create_postgres_database().await);
    }
    if std::env::var("REWARD_REQUIRE_POSTGRES").as_deref() == Ok("1") {
        panic!(
            "REWARD_REQUIRE_POSTGRES=1, but no PostgreSQL server answers at {}",
            server_url()
        );
    }
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        // Straight to stderr: the test harness would swallow a passing test's eprintln!.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: PostgreSQL tests (no server on 127.0.0.1:5432; .ci/run provides one)"
        );
    });
    None
}

/// Whether something accepts connections at the server's address.
async fn postgres_reachable() -> bool {
    let config: tokio_postgres::Config = format!("{}/postgres", server_url())
        .parse()
        .expect("REWARD_TEST_POSTGRES_URL is a postgres:// URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let connecting = tokio::net::TcpStream::connect((host.as_str(), port));
    matches!(
        tokio::time::timeout(Duration::from_secs(2), connecting).await,
        Ok(Ok(_))
    )
}

/// A database of the test's own on the server, dropped when the guard is.
struct PostgresDatabase {
    name: String,
}

async fn create_postgres_database() -> (TestDatabase, String) {
    // A ULID, lowercase like every id Reward makes: unique across tests and test processes.
    let unique = reward_core::ids::AccountId::generate();
    let name = format!(
        "reward_test_{}",
        unique
            .as_str()
            .trim_start_matches(reward_core::ids::AccountId::PREFIX)
    );
    let sql = format!("CREATE DATABASE {name}");
    tokio::time::timeout(ADMIN_TIMEOUT, administer(&sql))
        .await
        .expect("CREATE DATABASE timed out")
        .unwrap_or_else(|error| panic!("cannot create the test database {name}: {error}"));
    let url = format!("{}/{name}", server_url());
    let database = TestDatabase {
        postgres: Some(PostgresDatabase { name }),
        dir: TempDir::new().expect("temp dir"),
    };
    (database, url)
}

/// Runs one statement on the server's `postgres` database.
async fn administer(sql: &str) -> Result<(), tokio_postgres::Error> {
    let (client, connection) =
        tokio_postgres::connect(&format!("{}/postgres", server_url()), NoTls).await?;
    let driving = tokio::spawn(connection);
    let result = client.batch_execute(sql).await;
    drop(client);
    let _ = driving.await;
    result
}

impl Drop for PostgresDatabase {
    /// Drops the database, ending whatever sessions a server left open on it. Drop cannot await,
    /// and a test's runtime may be single-threaded, so this blocks on a runtime of its own in a
    /// thread of its own, with a timeout.
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async {
                match tokio::time::timeout(ADMIN_TIMEOUT, administer(&sql)).await {
                    Ok(result) => result.map_err(|error| error.to_string()),
                    Err(_) => Err("timed out".to_owned()),
                }
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop test database {}: {error}", self.name),
            Err(_) => eprintln!(
                "could not drop test database {}: the thread panicked",
                self.name
            ),
        }
    }
}

/// One text column of one webhook as stored, read straight from the database (to check what is
/// at rest: sealed secrets and headers).
pub async fn stored_webhook_column(database_url: &str, column: &str, id: &str) -> String {
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let connection = rusqlite::Connection::open(path).expect("open");
        connection
            .query_row(
                &format!("SELECT {column} FROM webhooks WHERE id = ?1"),
                [id],
                |row| row.get(0),
            )
            .expect("the column")
    } else {
        let (client, connection) = tokio_postgres::connect(database_url, NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .query_one(
                &format!("SELECT {column} FROM webhooks WHERE id = $1"),
                &[&id],
            )
            .await
            .expect("the column")
            .get(0)
    }
}

/// Rows of `sql` (every column selected as text or NULL), on either backend: for tests that
/// look at what the API does not show.
pub async fn query(database_url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let connection = rusqlite::Connection::open(path).expect("open");
        connection
            .busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        let mut statement = connection.prepare(sql).expect("prepare");
        let columns = statement.column_count();
        statement
            .query_map([], |row| (0..columns).map(|index| row.get(index)).collect())
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    } else {
        let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .query(sql, &[])
            .await
            .expect("query")
            .iter()
            .map(|row| (0..row.len()).map(|index| row.get(index)).collect())
            .collect()
    }
}

/// Runs one statement, on either backend; returns the rows it changed.
pub async fn execute(database_url: &str, sql: &str) -> u64 {
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let connection = rusqlite::Connection::open(path).expect("open");
        connection
            .busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        connection.execute(sql, []).expect("execute") as u64
    } else {
        let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client.execute(sql, &[]).await.expect("execute")
    }
}
