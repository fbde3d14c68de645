//! `reward backup` (issue 18 §1): a consistent copy of a SQLite database taken while `reward
//! serve` records trigger events from 64 clients and delivers them. Served (with its key), the
//! copy holds every trigger event acknowledged before the backup began, and finishes delivering.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::common::{create_account, Api, ServerProcess, REWARD_BIN};
use crate::databases::query;
use crate::receiver::Receiver;

const CLIENTS: usize = 64;

const NODE_ENV: [(&str, &str); 2] = [
    ("REWARD_ALLOW_INSECURE_TARGETS", "true"),
    ("REWARD_RETRY_BASE", "100ms"),
];

/// Trigger event ids the API acknowledged (201), with when.
type Acknowledged = Arc<Mutex<Vec<(String, Instant)>>>;

fn record_until_stopped(
    api: &Api,
    stop: &CancellationToken,
    acknowledged: &Acknowledged,
) -> tokio::task::JoinSet<()> {
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let (api, stop, acknowledged) = (api.clone(), stop.clone(), acknowledged.clone());
        clients.spawn(async move {
            let mut n = 0;
            while !stop.is_cancelled() {
                let event = api
                    .trigger_event(&format!("u{client}"), "signup", json!(n))
                    .await;
                let id = event["id"].as_str().expect("id").to_owned();
                acknowledged
                    .lock()
                    .expect("lock")
                    .push((id, Instant::now()));
                n += 1;
            }
        });
    }
    clients
}

async fn backup(database_url: &str, to: &Path) -> (Value, String) {
    let output = tokio::process::Command::new(REWARD_BIN)
        .args(["backup", "--to", to.to_str().expect("path")])
        .env("REWARD_DATABASE_URL", database_url)
        .env_remove("REWARD_SECRET_KEY")
        .output()
        .await
        .expect("run reward backup");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "reward backup failed: {stderr}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    (serde_json::from_str(stdout.trim()).expect("JSON"), stderr)
}

async fn count(database_url: &str, sql: &str) -> u64 {
    let rows = query(database_url, sql).await;
    rows[0][0]
        .as_deref()
        .expect("a count")
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_holds_every_acknowledged_event_and_finishes_delivering() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let live = dir.path().join("reward.db");
    let live_url = format!("sqlite://{}", live.display());
    let receiver = Receiver::start().await;
    let node = ServerProcess::spawn(&live_url, &NODE_ENV).await;
    let account = create_account(&live_url, "Acme").await;
    let api = Api::new(&node.base_url, account["api_key"].as_str().expect("key"));
    api.create_webhook(&receiver.url).await;
    api.put_trigger("signup", json!({"fixed": 1})).await;

    let stop = CancellationToken::new();
    let acknowledged: Acknowledged = Arc::default();
    let mut clients = record_until_stopped(&api, &stop, &acknowledged);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let backup_began = Instant::now();
    let copy = dir.path().join("backups").join("copy.db");
    std::fs::create_dir_all(copy.parent().expect("folder")).expect("mkdir");
    let (report, stderr) = backup(&live_url, &copy).await;
    // Writes go on after the backup too; the copy simply does not have them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    while let Some(done) = clients.join_next().await {
        done.expect("a client");
    }

    assert_eq!(report["path"], copy.display().to_string());
    let bytes = report["bytes"].as_u64().expect("bytes");
    assert_eq!(bytes, std::fs::metadata(&copy).expect("copy").len());
    assert!(report["seconds"].as_f64().expect("seconds") >= 0.0);
    let key_file = dir.path().join("reward.db.key");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one reminder line: {stderr}"
    );
    assert!(
        stderr.contains(&key_file.display().to_string()),
        "the reminder says where the key is: {stderr}"
    );
    node.kill().await;

    let before: Vec<String> = acknowledged
        .lock()
        .expect("lock")
        .iter()
        .filter(|(_, at)| *at < backup_began)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        before.len() >= CLIENTS,
        "only {} acknowledged before",
        before.len()
    );
    eprintln!(
        "{} trigger events acknowledged before the backup began, {} in all; the backup: {report}",
        before.len(),
        acknowledged.lock().expect("lock").len()
    );

    // Restoring is serving the copy with its key beside it.
    std::fs::copy(&key_file, copy.with_file_name("copy.db.key")).expect("copy the key");
    let copy_url = format!("sqlite://{}", copy.display());
    let restored = ServerProcess::spawn(&copy_url, &NODE_ENV).await;
    let in_copy: HashSet<String> = query(&copy_url, "SELECT id FROM trigger_events")
        .await
        .into_iter()
        .map(|row| row[0].clone().expect("id"))
        .collect();
    let missing: Vec<&String> = before.iter().filter(|id| !in_copy.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged before the backup, not in it: {missing:?}"
    );

    // Every delivery in the copy completes, and each of its events reached the receiver (sent by
    // the first server before the backup, or by the restored one since).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let unfinished = count(
            &copy_url,
            "SELECT CAST(count(*) AS TEXT) FROM deliveries WHERE status <> 'succeeded'",
        )
        .await;
        if unfinished == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{unfinished} deliveries never completed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let delivered: HashSet<String> = receiver
        .received()
        .iter()
        .map(|request| request.header("webhook-id").to_owned())
        .collect();
    let events: Vec<String> = query(&copy_url, "SELECT id FROM events")
        .await
        .into_iter()
        .map(|row| row[0].clone().expect("id"))
        .collect();
    assert!(events.len() >= before.len());
    let never_received: Vec<&String> = events
        .iter()
        .filter(|id| !delivered.contains(*id))
        .collect();
    assert!(
        never_received.is_empty(),
        "never received: {never_received:?}"
    );
    restored.kill().await;
}
