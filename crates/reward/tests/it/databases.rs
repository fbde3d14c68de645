//! A fresh database per test, on the backend the run selects, removed when the test ends.
//!
//! `REWARD_TEST_BACKEND=postgres` runs the whole suite on PostgreSQL (default: SQLite): each test
//! then gets its own database `reward_test_<ulid>` on the server at `REWARD_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432`), dropped with `WITH (FORCE)` when the test is
//! done. The tests of several nodes need PostgreSQL whatever the backend: they run when a server
//! answers and are skipped with one line when none does, unless `REWARD_REQUIRE_POSTGRES=1`
//! (as in `.ci/run`) makes that a failure.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use reward_store_postgres::testing::ScratchDatabase;
use tempfile::TempDir;
use tokio_postgres::NoTls;

/// Test databases are `reward_test_<ulid>`.
const DATABASE_PREFIX: &str = "reward_test";

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

/// A test's database: a temporary folder (the SQLite file lives there; tests may put other files
/// beside it) and, on PostgreSQL, the database itself.
pub struct TestDatabase {
    postgres: Option<ScratchDatabase>,
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
            let database = ScratchDatabase::create_required(DATABASE_PREFIX).await;
            with_folder(database)
        }
    }
}

/// A fresh PostgreSQL database whatever the selected backend, or `None` (after saying so once)
/// when no server answers and none is required.
pub async fn fresh_postgres_database() -> Option<(TestDatabase, String)> {
    ScratchDatabase::create(DATABASE_PREFIX)
        .await
        .map(with_folder)
}

/// A PostgreSQL database with a folder of the test's own beside it, and its URL.
fn with_folder(database: ScratchDatabase) -> (TestDatabase, String) {
    let url = database.url().to_owned();
    let database = TestDatabase {
        postgres: Some(database),
        dir: TempDir::new().expect("temp dir"),
    };
    (database, url)
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
