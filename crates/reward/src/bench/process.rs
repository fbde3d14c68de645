//! The server under test: a `reward serve` child on a fresh temporary database (or one the user
//! names), and what the kernel says it used (peak RSS, CPU seconds).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tempfile::TempDir;
use tokio::process::{Child, Command};

pub struct ServerChild {
    pub base_url: String,
    pub api_key: String,
    database_url: String,
    delivery_timeout: String,
    /// Settings beyond the bench's fixed ones, kept across restarts: `REWARD_RETRY_BASE` (1 h
    /// unless a scenario asks for retries within its run), the purge scenario's retention.
    settings: Vec<(&'static str, String)>,
    child: Child,
    /// Keeps the temporary database alive for the run.
    _dir: Option<TempDir>,
}

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl ServerChild {
    pub async fn start(database_url: Option<&str>, delivery_timeout: &str) -> anyhow::Result<Self> {
        let exe: PathBuf = std::env::current_exe().context("locating the reward binary")?;
        let (dir, database_url) = match database_url {
            Some(url) => (None, url.to_owned()),
            None => {
                let dir = TempDir::new().context("creating a temporary database folder")?;
                let url = format!("sqlite://{}/bench.db", dir.path().display());
                (Some(dir), url)
            }
        };
        let created = Command::new(&exe)
            .args([
                "accounts",
                "create",
                "--name",
                "bench",
                "--database-url",
                &database_url,
            ])
            .output()
            .await
            .context("running reward accounts create")?;
        if !created.status.success() {
            bail!(
                "reward accounts create failed: {}",
                String::from_utf8_lossy(&created.stderr)
            );
        }
        let account: serde_json::Value =
            serde_json::from_slice(&created.stdout).context("reading the new account")?;
        let api_key = account["api_key"]
            .as_str()
            .context("no api_key")?
            .to_owned();
        Self::spawn(
            exe,
            dir,
            database_url,
            api_key,
            delivery_timeout.to_owned(),
            true,
            vec![("REWARD_RETRY_BASE", "1h".to_owned())],
        )
        .await
    }

    /// Stops this server and starts another on the same database, with or without its worker.
    pub async fn restart(self, worker: bool) -> anyhow::Result<Self> {
        self.restart_with_settings(worker, Vec::new()).await
    }

    /// Like [`Self::restart`], with another `REWARD_RETRY_BASE`.
    pub async fn restart_with(self, worker: bool, retry_base: &str) -> anyhow::Result<Self> {
        self.restart_with_settings(worker, vec![("REWARD_RETRY_BASE", retry_base.to_owned())])
            .await
    }

    /// Like [`Self::restart`], with these settings added or replaced (kept across later restarts).
    pub async fn restart_with_settings(
        mut self,
        worker: bool,
        settings: Vec<(&'static str, String)>,
    ) -> anyhow::Result<Self> {
        for (name, value) in settings {
            self.settings.retain(|(kept, _)| *kept != name);
            self.settings.push((name, value));
        }
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        let exe: PathBuf = std::env::current_exe().context("locating the reward binary")?;
        let dir = self._dir.take();
        Self::spawn(
            exe,
            dir,
            self.database_url.clone(),
            self.api_key.clone(),
            self.delivery_timeout.clone(),
            worker,
            std::mem::take(&mut self.settings),
        )
        .await
    }

    async fn spawn(
        exe: PathBuf,
        dir: Option<TempDir>,
        database_url: String,
        api_key: String,
        delivery_timeout: String,
        worker: bool,
        settings: Vec<(&'static str, String)>,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let child = Command::new(&exe)
            .arg("serve")
            .env("REWARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("REWARD_DATABASE_URL", &database_url)
            .env("REWARD_ALLOW_INSECURE_TARGETS", "true")
            .env("REWARD_DELIVERY_TIMEOUT", &delivery_timeout)
            .env("REWARD_WORKER", worker.to_string())
            // The bench is the account's only client and means to saturate the server.
            .env("REWARD_RATE_LIMIT", "0")
            .env("RUST_LOG", "warn")
            .envs(settings.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting reward serve")?;
        let base_url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(reply) = client.get(format!("{base_url}/healthz")).send().await {
                if reply.status().is_success() {
                    return Ok(Self {
                        base_url,
                        api_key,
                        database_url,
                        delivery_timeout,
                        settings,
                        child,
                        _dir: dir,
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("reward serve did not answer on {base_url}")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Peak resident memory of a process, in bytes (Linux `VmHWM`).
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:").map(|kib| kib * 1024)
}

/// One `kB` line of `/proc/PID/status`.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resident memory of a process now, in bytes (Linux `VmRSS`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:").map(|kib| kib * 1024)
}

/// CPU time a process used so far (user + system), in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Linux reports clock ticks; USER_HZ is 100 on every mainstream configuration.
    Some((utime + stime) / 100.0)
}
