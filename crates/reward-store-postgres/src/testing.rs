//! Databases of a test's own on the test server (feature `testing`, and this crate's own tests).
//!
//! The server is `REWARD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432`, the
//! machine's own, as `.ci/run` has it). A test that needs PostgreSQL gets a fresh database
//! there, dropped `WITH (FORCE)` when its guard is; when no server answers, the test is skipped
//! with one line on stderr, unless `REWARD_REQUIRE_POSTGRES=1` makes that a failure.

use std::io::Write;
use std::sync::Once;
use std::time::Duration;

use tokio_postgres::NoTls;

const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432";
/// Reaching the server, creating or dropping a database never takes this long unless the server
/// is in trouble: a test must fail rather than hang.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a server that may not be there at all.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The test server, as a URL without a database.
pub fn server_url() -> String {
    std::env::var("REWARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_SERVER.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// A database of the test's own, dropped with the guard.
#[derive(Debug)]
pub struct ScratchDatabase {
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// A fresh database named `<prefix>_<ulid>`, or `None` (said once per process) when no
    /// server answers and `REWARD_REQUIRE_POSTGRES=1` does not require one.
    pub async fn create(prefix: &str) -> Option<Self> {
        if server_answers().await {
            return Some(Self::create_on_server(prefix).await);
        }
        assert!(
            std::env::var("REWARD_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "REWARD_REQUIRE_POSTGRES=1, but no PostgreSQL server answers at {}",
            server_url()
        );
        static SAID: Once = Once::new();
        SAID.call_once(|| {
            // Straight to stderr: the test harness would swallow a passing test's eprintln!.
            let _ = writeln!(
                std::io::stderr(),
                "skipped: PostgreSQL tests (no server answers at {}; .ci/run provides one)",
                server_url()
            );
        });
        None
    }

    /// A fresh database named `<prefix>_<ulid>`; panics when no server answers.
    pub async fn create_required(prefix: &str) -> Self {
        assert!(
            server_answers().await,
            "no PostgreSQL server answers at {}",
            server_url()
        );
        Self::create_on_server(prefix).await
    }

    async fn create_on_server(prefix: &str) -> Self {
        // A ULID, lowercase like every id Reward makes: unique across tests and test processes.
        let unique = reward_core::ids::AccountId::generate();
        let name = format!(
            "{prefix}_{}",
            unique
                .as_str()
                .trim_start_matches(reward_core::ids::AccountId::PREFIX)
        );
        tokio::time::timeout(
            ADMIN_TIMEOUT,
            administer(&format!("CREATE DATABASE {name}")),
        )
        .await
        .expect("CREATE DATABASE timed out")
        .unwrap_or_else(|error| panic!("cannot create the test database {name}: {error}"));
        let url = format!("{}/{name}", server_url());
        Self { name, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDatabase {
    /// Drops the database, ending whatever sessions are left on it. Drop cannot await, and a
    /// test's runtime may be single-threaded, so this blocks on a runtime of its own in a thread
    /// of its own, with a timeout.
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

/// Whether something accepts connections at the server's address.
async fn server_answers() -> bool {
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
        tokio::time::timeout(PROBE_TIMEOUT, connecting).await,
        Ok(Ok(_))
    )
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
