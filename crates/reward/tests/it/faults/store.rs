//! The store stops taking writes: SQLite locked by another connection, a full disk, a disk that
//! refuses writes, PostgreSQL unreachable. One scenario ([`survive`]) runs against each: writes
//! answer 503 `store_unavailable` during the fault and leave nothing half-written, the same
//! requests succeed once it is lifted (no restart), and every acknowledged event is delivered.
//!
//! The SQLite faults run on SQLite whatever `REWARD_TEST_BACKEND` says; the PostgreSQL one runs
//! when a server answers. The disk faults need root (a tmpfs mount, the immutable flag); where that
//! is not possible they are skipped with one line, unless `REWARD_REQUIRE_FAULTS=1` makes that a
//! failure.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{
    assert_all_delivered, millis_of, record, record_acknowledged, subscribe, Acknowledged, WAIT,
};
use crate::common::{create_account, fresh_postgres_database, Api, TestServer};
use crate::receiver::{Answer, Receiver};

/// Says why a fault cannot be staged here: a failure with `REWARD_REQUIRE_FAULTS=1`, otherwise
/// one "skipped" line.
fn cannot_stage(test: &str, why: &str) {
    if std::env::var("REWARD_REQUIRE_FAULTS").as_deref() == Ok("1") {
        panic!("REWARD_REQUIRE_FAULTS=1, but {test} cannot run: {why}");
    }
    let _ = writeln!(std::io::stderr(), "skipped: {test} ({why})");
}

/// A way to make the store refuse writes for a while, and then take them again.
enum Fault {
    /// Another connection holds SQLite's write lock until told to let go.
    Locked {
        database: PathBuf,
        release: Option<oneshot::Sender<()>>,
        holder: Option<std::thread::JoinHandle<()>>,
    },
    /// A file fills the rest of a small tmpfs.
    FullDisk { filler: PathBuf },
    /// The database's files are immutable: every write through the open files fails, as on a
    /// filesystem gone read-only.
    ReadOnly { files: Vec<PathBuf> },
    /// The proxy between Reward and PostgreSQL drops every connection and refuses new ones.
    Unreachable { proxy: Proxy },
}

impl Fault {
    fn name(&self) -> &'static str {
        match self {
            Fault::Locked { .. } => "locked database",
            Fault::FullDisk { .. } => "full disk",
            Fault::ReadOnly { .. } => "read-only disk",
            Fault::Unreachable { .. } => "unreachable database",
        }
    }

    /// Whether reads still work during the fault (they do on SQLite: only the writer is stuck).
    fn reads_work(&self) -> bool {
        !matches!(self, Fault::Unreachable { .. })
    }

    async fn apply(&mut self) {
        match self {
            Fault::Locked {
                database,
                release,
                holder,
            } => {
                let (locked, is_locked) = oneshot::channel();
                let (let_go, wait_for_release) = oneshot::channel::<()>();
                let path = database.clone();
                *holder = Some(std::thread::spawn(move || {
                    let connection = rusqlite::Connection::open(&path).expect("open");
                    connection
                        .busy_timeout(Duration::from_secs(10))
                        .expect("busy timeout");
                    connection
                        .execute_batch("BEGIN EXCLUSIVE")
                        .expect("take the write lock");
                    let _ = locked.send(());
                    let _ = wait_for_release.blocking_recv();
                    connection.execute_batch("ROLLBACK").expect("let go");
                }));
                *release = Some(let_go);
                is_locked.await.expect("the lock was taken");
            }
            Fault::FullDisk { filler } => {
                let filler = filler.clone();
                tokio::task::spawn_blocking(move || fill(&filler))
                    .await
                    .expect("fill");
            }
            Fault::ReadOnly { files } => {
                for file in files.iter() {
                    chattr("+i", file).await;
                }
            }
            Fault::Unreachable { proxy } => proxy.cut(),
        }
    }

    async fn lift(&mut self) {
        match self {
            Fault::Locked {
                release, holder, ..
            } => {
                if let Some(release) = release.take() {
                    let _ = release.send(());
                }
                if let Some(holder) = holder.take() {
                    tokio::task::spawn_blocking(move || holder.join())
                        .await
                        .expect("join")
                        .expect("the lock holder");
                }
            }
            Fault::FullDisk { filler } => {
                std::fs::remove_file(&*filler).expect("remove the filler");
            }
            Fault::ReadOnly { files } => {
                for file in files.iter() {
                    chattr("-i", file).await;
                }
            }
            Fault::Unreachable { proxy } => proxy.restore(),
        }
    }
}

impl Drop for Fault {
    /// A test that fails mid-fault still leaves files its temporary folder can remove.
    fn drop(&mut self) {
        if let Fault::ReadOnly { files } = self {
            for file in files.iter().filter(|file| file.exists()) {
                let _ = std::process::Command::new("chattr")
                    .arg("-i")
                    .arg(file)
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}

/// Writes to `path` until the filesystem is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("create the filler");
    let block = vec![0_u8; 64 * 1024];
    loop {
        match file.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) if error.raw_os_error() == Some(28) => break, // ENOSPC
            Err(error) => panic!("filling the disk: {error}"),
        }
    }
    // A last partial block may still fit.
    while file.write(&[0_u8; 512]).is_ok_and(|n| n > 0) {}
}

async fn chattr(flag: &str, file: &Path) {
    let status = tokio::process::Command::new("chattr")
        .arg(flag)
        .arg(file)
        .status()
        .await
        .expect("run chattr");
    assert!(status.success(), "chattr {flag} {}", file.display());
}

/// Drives one store fault: events acknowledged before it (two of their deliveries due for a retry
/// while it lasts), writes refused with 503 during it while nothing half-written remains, the same
/// requests accepted once it is lifted, without a restart, and every acknowledged event delivered.
async fn survive(fault: &mut Fault, api: &Api, receiver: &Receiver) {
    let started = Instant::now();
    // The first two deliveries fail once; their retries fall due while the store is down.
    receiver.script(vec![Answer::Status(500); 2]);
    let webhook_id = subscribe(api, &receiver.url).await;
    let mut acknowledged = Vec::new();
    for n in 0..3 {
        acknowledged.push(record_acknowledged(api, &format!("before-{n}")).await);
    }
    let deadline = Instant::now() + WAIT;
    while !api
        .deliveries(&webhook_id)
        .await
        .iter()
        .all(|d| d["attempt_count"].as_u64() >= Some(1))
    {
        assert!(Instant::now() < deadline, "first attempts never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    fault.apply().await;
    let applied = Instant::now();
    // Writes answer 503 with a clear error and Retry-After, within a bounded time. A write or two
    // may still fit (e.g. in space SQLite already holds); those are acknowledged, so durable.
    let mut refused = None;
    for n in 0..30 {
        let user = format!("during-{n}");
        let key = format!("key-{n}");
        let sent = Instant::now();
        let reply = record(api, &user, Some(&key)).await;
        assert!(
            sent.elapsed() < Duration::from_secs(12),
            "a write took {:?} to answer",
            sent.elapsed()
        );
        match reply.status {
            StatusCode::CREATED => acknowledged.push(Acknowledged {
                id: reply.body["id"].as_str().expect("id").to_owned(),
                user,
            }),
            StatusCode::SERVICE_UNAVAILABLE => {
                refused = Some((user, key, reply));
                break;
            }
            other => panic!("a write answered {other}: {:?}", reply.body),
        }
    }
    let (user, key, reply) = refused.expect("no write was refused during the fault");
    eprintln!(
        "{}: 503 after {:?}, {} writes acknowledged during the fault: {}",
        fault.name(),
        applied.elapsed(),
        acknowledged.len() - 3,
        reply.body
    );
    reply.assert_error(503, "store_unavailable", None);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("database")),
        "{:?}",
        reply.body
    );
    assert_eq!(reply.headers["retry-after"], "1");
    // Alive throughout; ready while the database answers reads (SQLite's faults stop only the
    // writer), not while it is out of reach.
    assert_eq!(api.get("/healthz").await.status, StatusCode::OK);
    let ready = api.get("/readyz").await;
    if fault.reads_work() {
        assert_eq!(ready.status, StatusCode::OK, "{:?}", ready.body);
    } else {
        ready.assert_error(503, "store_unavailable", None);
        assert_eq!(ready.headers["retry-after"], "1");
    }
    let webhook_create = api
        .post(
            "/v1/webhooks",
            json!({"name": "Late", "url": receiver.url, "events": ["trigger_event.created"]}),
        )
        .await;
    webhook_create.assert_error(503, "store_unavailable", None);
    if fault.reads_work() {
        // Reads are still served, and the refused write left nothing behind.
        let user_reply = api.get(&format!("/v1/users/{user}")).await;
        assert_eq!(
            user_reply.status,
            StatusCode::NOT_FOUND,
            "{:?}",
            user_reply.body
        );
        let webhooks = api.get("/v1/webhooks").await;
        assert_eq!(webhooks.status, StatusCode::OK);
        assert_eq!(webhooks.body["data"].as_array().expect("data").len(), 1);
    } else {
        api.get("/v1/webhooks")
            .await
            .assert_error(503, "store_unavailable", None);
    }
    // Keep the store down past the retries' due time (1 s after the first attempts): the worker
    // cannot claim them meanwhile.
    let held = Duration::from_millis(1500).saturating_sub(applied.elapsed());
    tokio::time::sleep(held).await;
    if fault.reads_work() {
        let waiting = api
            .deliveries(&webhook_id)
            .await
            .into_iter()
            .filter(|d| d["last_status_code"] == 500)
            .collect::<Vec<_>>();
        assert_eq!(waiting.len(), 2, "{waiting:?}");
        for delivery in &waiting {
            assert_eq!(delivery["status"], "pending", "{delivery}");
            assert_eq!(delivery["attempt_count"], 1, "{delivery}");
            assert!(
                millis_of(&delivery["next_attempt_at"])
                    < reward_core::time::Timestamp::now().as_millis()
            );
        }
    }
    fault.lift().await;

    // The same request succeeds without a restart (a moment's grace for the first write after).
    let deadline = Instant::now() + Duration::from_secs(10);
    let accepted = loop {
        let reply = record(api, &user, Some(&key)).await;
        if reply.status == StatusCode::CREATED {
            break reply;
        }
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{:?}",
            reply.body
        );
        assert!(
            Instant::now() < deadline,
            "writes never came back: {:?}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(accepted.body["credit_points_issued"], 1);
    let ready = api.get("/readyz").await;
    assert_eq!(
        ready.status,
        StatusCode::OK,
        "ready again: {:?}",
        ready.body
    );
    acknowledged.push(Acknowledged {
        id: accepted.body["id"].as_str().expect("id").to_owned(),
        user: user.clone(),
    });
    // One point: the refused attempt wrote nothing, not even half of it.
    let balance = api.get(&format!("/v1/users/{user}")).await;
    assert_eq!(balance.body["balance"], 1, "{:?}", balance.body);
    for n in 0..3 {
        acknowledged.push(record_acknowledged(api, &format!("after-{n}")).await);
    }

    // Every acknowledged event is delivered, the retries included; and exactly those events exist.
    assert_all_delivered(receiver, &acknowledged, WAIT).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let deliveries = api.deliveries(&webhook_id).await;
        if deliveries.iter().all(|d| d["status"] == "succeeded") {
            assert_eq!(deliveries.len(), acknowledged.len() * 2);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all delivered: {deliveries:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = api.get("/v1/events?limit=100").await.body["data"]
        .as_array()
        .expect("data")
        .len();
    assert_eq!(
        events,
        acknowledged.len() * 2,
        "one event of each type per acknowledgement"
    );
    eprintln!(
        "{}: {} events acknowledged, all delivered, in {:?}",
        fault.name(),
        acknowledged.len(),
        started.elapsed()
    );
}

/// Settings for the store-fault tests: retries 1 s apart, and a lease that runs out soon after
/// an attempt whose outcome could not be stored.
fn fault_config(config: &mut reward_server::Config) {
    config.retry.base = Duration::from_secs(1);
    config.lease = Duration::from_secs(3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_answers_503_and_recovers_without_a_restart() {
    // A SQLite fault: on SQLite whatever the backend.
    let dir = TempDir::new().expect("temp dir");
    let database = dir.path().join("reward.db");
    let url = format!("sqlite://{}", database.display());
    let server = TestServer::start_on(&url, fault_config).await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let mut fault = Fault::Locked {
        database,
        release: None,
        holder: None,
    };
    survive(&mut fault, &api, &receiver).await;
    server.stop().await;
}

/// A tmpfs of `size` mounted on `dir`, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    async fn mount(dir: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|error| error.to_string())?;
        let output = tokio::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .await
            .map_err(|error| error.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: the server's files may still be open while the test unwinds.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_work_resumes_when_space_returns() {
    let dir = TempDir::new().expect("temp dir");
    let mount_point = dir.path().join("disk");
    // Room for the database and its WAL, then filled up to the last byte.
    let tmpfs = match Tmpfs::mount(&mount_point, "32m").await {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            return cannot_stage(
                "the full-disk test",
                &format!("cannot mount a tmpfs: {why}"),
            )
        }
    };
    let url = format!("sqlite://{}/reward.db", mount_point.display());
    let server = TestServer::start_on(&url, fault_config).await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let mut fault = Fault::FullDisk {
        filler: mount_point.join("filler"),
    };
    survive(&mut fault, &api, &receiver).await;
    server.stop().await;
    drop(tmpfs);
}

/// Whether the immutable flag stops writes through a file already open on this filesystem (it
/// does on ext4 as root; tmpfs ignores it for open files).
async fn immutable_stops_open_writers(dir: &Path) -> Result<(), String> {
    let probe = dir.join("probe");
    let mut file = std::fs::File::create(&probe).map_err(|error| error.to_string())?;
    let output = tokio::process::Command::new("chattr")
        .arg("+i")
        .arg(&probe)
        .output()
        .await
        .map_err(|error| format!("chattr: {error}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
    }
    let written = file.write_all(b"x");
    chattr("-i", &probe).await;
    match written {
        Err(_) => Ok(()),
        Ok(()) => Err("this filesystem lets open files write past the immutable flag".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_disk_answers_503_and_work_resumes_when_writable_again() {
    // Linux refuses to remount a filesystem read-only while files on it are open for writing, so
    // the files themselves refuse writes: the immutable flag fails every write through the
    // server's open files, as a disk gone read-only fails them.
    let dir = TempDir::new().expect("temp dir");
    if let Err(why) = immutable_stops_open_writers(dir.path()).await {
        return cannot_stage("the read-only-disk test", &why);
    }
    let database = dir.path().join("reward.db");
    let url = format!("sqlite://{}", database.display());
    let server = TestServer::start_on(&url, fault_config).await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let mut fault = Fault::ReadOnly {
        files: vec![database.clone(), dir.path().join("reward.db-wal")],
    };
    survive(&mut fault, &api, &receiver).await;
    server.stop().await;
}

/// A TCP proxy on loopback in front of PostgreSQL that can be cut and restored.
struct Proxy {
    address: SocketAddr,
    /// While up, the token every forwarded connection ends with; `None` while cut.
    up: Arc<Mutex<Option<CancellationToken>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("address");
        let up = Arc::new(Mutex::new(Some(CancellationToken::new())));
        let state = Arc::clone(&up);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                // Cut: the connection is closed as soon as it is accepted.
                let Some(cut) = state.lock().expect("lock").clone() else {
                    continue;
                };
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.cancelled() => {}
                    }
                });
            }
        });
        Self { address, up }
    }

    fn cut(&self) {
        if let Some(token) = self.up.lock().expect("lock").take() {
            token.cancel();
        }
    }

    fn restore(&self) {
        *self.up.lock().expect("lock") = Some(CancellationToken::new());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_answers_503_and_work_resumes_when_it_returns() {
    let Some((_database, database_url)) = fresh_postgres_database().await else {
        return;
    };
    let mut direct = reqwest::Url::parse(&database_url).expect("database URL");
    let upstream = format!(
        "{}:{}",
        direct.host_str().expect("host"),
        direct.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(upstream).await;
    direct
        .set_port(Some(proxy.address.port()))
        .expect("set port");
    let through_proxy = direct.to_string();
    let server = TestServer::start_on(&through_proxy, fault_config).await;
    let account = create_account(&database_url, "Acme").await;
    let api = Api::new(&server.base_url, account["api_key"].as_str().expect("key"));
    let receiver = Receiver::start().await;
    let mut fault = Fault::Unreachable { proxy };
    survive(&mut fault, &api, &receiver).await;
    server.stop().await;
}
