//! A real PgBouncer (Debian's `pgbouncer`, 1.18 on bookworm) in transaction pooling mode in front
//! of the test's PostgreSQL server, on a free loopback port, stopped when dropped.
//!
//! Shared by the store's tests (`tests/nodes.rs`) and the integration suite
//! (`crates/reward/tests/it`), which include this file. When `pgbouncer` is not installed, the
//! tests that need it are skipped with one line, unless `REWARD_REQUIRE_PGBOUNCER=1` (as in
//! `.ci/run`, which installs it) makes that a failure.

#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Once;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Where Debian installs it; `PATH` is searched too.
const DEBIAN_BINARY: &str = "/usr/sbin/pgbouncer";

/// Server connections PgBouncer keeps per database and user: fewer than three nodes' pools (16
/// each), so that transactions of different nodes do share server connections.
const SERVER_CONNECTIONS: u32 = 10;

/// [`SERVER_CONNECTIONS`], or `REWARD_TEST_PGBOUNCER_SERVER_CONNECTIONS` when set: for
/// measuring how the pool's size bears on throughput (`scripts/measure-throughput.sh`).
fn server_connections() -> u32 {
    match std::env::var("REWARD_TEST_PGBOUNCER_SERVER_CONNECTIONS") {
        Ok(value) => value
            .parse()
            .expect("REWARD_TEST_PGBOUNCER_SERVER_CONNECTIONS is a number of connections"),
        Err(_) => SERVER_CONNECTIONS,
    }
}

/// How long PgBouncer may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PgBouncer {
    port: u16,
    child: tokio::process::Child,
    /// Its configuration; removed after the process is stopped.
    _dir: TempDir,
}

impl PgBouncer {
    /// PgBouncer in front of the PostgreSQL server `server_url` names (`postgres://user@host:port`,
    /// trust authentication), or `None` (said once) when it is not installed and not required.
    pub async fn start(server_url: &str) -> Option<Self> {
        let Some(binary) = find_binary() else {
            if std::env::var("REWARD_REQUIRE_PGBOUNCER").as_deref() == Ok("1") {
                panic!("REWARD_REQUIRE_PGBOUNCER=1, but pgbouncer is not installed");
            }
            static SAID: Once = Once::new();
            SAID.call_once(|| {
                // Straight to stderr: the test harness would swallow a passing test's eprintln!.
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped: tests through PgBouncer (apt-get install pgbouncer, or run .ci/run)"
                );
            });
            return None;
        };
        let (user, host, port) = server_address(server_url);
        let dir = TempDir::new().expect("temp dir");
        // Started as root, PgBouncer must switch to a user of its own, who reads these files.
        let as_root = std::fs::metadata("/proc/self").is_ok_and(|me| me.uid() == 0);
        if as_root {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        let listen_port = free_port();
        let config = write_config(dir.path(), &user, &host, port, listen_port);
        let mut command = tokio::process::Command::new(binary);
        if as_root {
            command.args(["-u", "nobody"]);
        }
        let child = command
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start pgbouncer");
        let mut bouncer = Self {
            port: listen_port,
            child,
            _dir: dir,
        };
        bouncer.wait_until_accepting().await;
        Some(bouncer)
    }

    /// `database_url` (a database on the server given to [`PgBouncer::start`]) through PgBouncer.
    pub fn url_for(&self, database_url: &str) -> String {
        let database = database_url.rsplit('/').next().expect("a database name");
        let (user, _, _) = server_address(database_url);
        format!("postgres://{user}@127.0.0.1:{}/{database}", self.port)
    }

    async fn wait_until_accepting(&mut self) {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("pgbouncer exited at start ({status}); its port was taken?");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "pgbouncer did not listen on 127.0.0.1:{} within {START_TIMEOUT:?}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn find_binary() -> Option<PathBuf> {
    if Path::new(DEBIAN_BINARY).exists() {
        return Some(DEBIAN_BINARY.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("pgbouncer"))
        .find(|candidate| candidate.exists())
}

/// User, host and port of a `postgres://user@host:port[/database]` URL.
fn server_address(url: &str) -> (String, String, u16) {
    let config: tokio_postgres::Config = url.parse().expect("a postgres:// URL");
    let user = config.get_user().unwrap_or("postgres").to_owned();
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    (user, host, port)
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// `pgbouncer.ini` and its user list: every database of the server, transaction pooling, no
/// authentication (the test server trusts loopback).
fn write_config(dir: &Path, user: &str, host: &str, port: u16, listen_port: u16) -> PathBuf {
    let users = dir.join("userlist.txt");
    std::fs::write(&users, format!("\"{user}\" \"\"\n")).expect("write userlist");
    let config = dir.join("pgbouncer.ini");
    std::fs::write(
        &config,
        format!(
            "[databases]\n\
             * = host={host} port={port}\n\
             \n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {listen_port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {users}\n\
             pool_mode = transaction\n\
             default_pool_size = {server_connections}\n\
             max_client_conn = 500\n",
            users = users.display(),
            server_connections = server_connections(),
        ),
    )
    .expect("write pgbouncer.ini");
    for file in [&users, &config] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    config
}
