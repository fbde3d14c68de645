//! A name server that never answers slows no other account (issue 14 §1).
//!
//! The scenario runs in its own user, mount and network namespaces (`unshare`), where
//! `/etc/resolv.conf` names a server on 127.0.0.1:53 that reads every query and never answers:
//! Reward resolves with the system's configuration, as in production, and nothing outside the
//! namespace is asked. One account's 100 webhooks on 100 names of that server get thousands of
//! deliveries; meanwhile another account's API reads and deliveries must go on as usual.
//!
//! Where namespaces cannot be made, the test is skipped with one line, unless
//! `REWARD_REQUIRE_FAULTS=1` (as in `.ci/run`).

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Api, TestServer};
use crate::receiver::Receiver;

/// Set in the child that runs the scenario inside the namespaces.
const INSIDE: &str = "REWARD_DNS_SCENARIO_INSIDE";

#[tokio::test]
async fn a_name_server_that_never_answers_slows_no_other_account() {
    if let Some(why) = namespaces_unavailable() {
        if std::env::var("REWARD_REQUIRE_FAULTS").as_deref() == Ok("1") {
            panic!("REWARD_REQUIRE_FAULTS=1, but the DNS scenario cannot run: {why}");
        }
        let _ = writeln!(
            std::io::stderr(),
            "skipped: dns::a_name_server_that_never_answers_slows_no_other_account ({why})"
        );
        return;
    }
    let folder = tempfile::tempdir().expect("tempdir");
    let resolv_conf = folder.path().join("resolv.conf");
    std::fs::write(
        &resolv_conf,
        "nameserver 127.0.0.1\noptions timeout:5 attempts:2\n",
    )
    .expect("resolv.conf");
    let test_binary = std::env::current_exe().expect("test binary");
    let output = tokio::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "--net", "sh", "-c"])
        .arg(r#"ip link set lo up && mount --bind "$0" /etc/resolv.conf && exec "$@""#)
        .arg(&resolv_conf)
        .arg(&test_binary)
        .args([
            "dns::scenario_inside_namespaces",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INSIDE, "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("the scenario ends within 2 minutes")
        .expect("unshare runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The harness prints the test's name on the line its first output continues.
    for line in stdout
        .lines()
        .filter_map(|line| line.find("dns: ").map(|at| &line[at..]))
    {
        println!("{line}");
    }
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the scenario failed:\n{stdout}\n{stderr}"
    );
}

/// Why `unshare` cannot give this test its namespaces, if it cannot.
fn namespaces_unavailable() -> Option<String> {
    let probe = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "--net", "sh", "-c"])
        .arg("ip link set lo up")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match probe {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "unshare --user --mount --net with `ip link` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Some(format!("unshare cannot run: {error}")),
    }
}

/// The scenario itself; only meaningful inside the namespaces the test above makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_name_server_that_never_answers_slows_no_other_account, inside namespaces"]
async fn scenario_inside_namespaces() {
    if std::env::var(INSIDE).is_err() {
        return;
    }
    let _silent_server = SilentNameServer::start().await;
    // SQLite on purpose: its readers are the ones a blocked thread pool used to starve (and
    // PostgreSQL is outside this network namespace).
    let folder = tempfile::tempdir().expect("tempdir");
    let database_url = format!("sqlite://{}/reward.db", folder.path().display());
    let server = TestServer::start_on(&database_url, |_| {}).await;
    let stuck = server.account("Stuck").await;
    let healthy = server.account("Healthy").await;

    // 100 webhooks on 100 names nobody answers for, and 6,400 deliveries to them.
    for n in 0..100 {
        let url = format!("http://hook-{n}.no-answer.example.com/events");
        stuck.create_webhook(&url).await;
    }
    stuck.put_trigger("signup", json!({"fixed": 1})).await;
    for n in 0..32 {
        stuck
            .trigger_event(&format!("user-{n}"), "signup", json!(null))
            .await;
    }

    // The other account: one webhook on a healthy receiver.
    let receiver = Receiver::start().await;
    let webhook = healthy.create_webhook(&receiver.url).await;
    let webhook_id = webhook["id"].as_str().expect("id").to_owned();
    healthy.put_trigger("order", json!({"fixed": 5})).await;

    // Let the stuck lookups pile up, then read the other account's resources for 6 s.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut latencies = Vec::new();
    let reads_until = Instant::now() + Duration::from_secs(6);
    let mut round: usize = 0;
    while Instant::now() < reads_until {
        for path in [
            "/v1/webhooks".to_owned(),
            format!("/v1/webhooks/{webhook_id}"),
            format!("/v1/webhooks/{webhook_id}/deliveries"),
        ] {
            latencies.push(timed_read(&healthy, &path).await);
        }
        if round.is_multiple_of(20) {
            healthy
                .trigger_event(&format!("buyer-{round}"), "order", json!(null))
                .await;
        }
        round += 1;
    }
    latencies.sort();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "dns: {} API reads of another account during the DNS stall: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        percentile(0.5),
        percentile(0.99),
        percentile(1.0)
    );
    assert!(
        percentile(1.0) < Duration::from_secs(1),
        "a read took {:?}",
        percentile(1.0)
    );

    // The other account's events were all delivered meanwhile (two per trigger event).
    let expected = 2 * round.div_ceil(20);
    let delivered_by = Instant::now() + Duration::from_secs(5);
    while receiver.count() < expected && Instant::now() < delivered_by {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        receiver.count(),
        expected,
        "the healthy webhook's deliveries"
    );

    // A stuck delivery's attempt ended within the attempt's timeout (2 s in tests), said why,
    // and is scheduled for its retry.
    let stuck_webhooks = stuck.get("/v1/webhooks?limit=1").await;
    let stuck_webhook = stuck_webhooks.body["data"][0]["id"]
        .as_str()
        .expect("a webhook")
        .to_owned();
    let deliveries = stuck.deliveries(&stuck_webhook).await;
    let delivery_id = deliveries[0]["id"].as_str().expect("id").to_owned();
    let attempted = stuck
        .wait_delivery(&delivery_id, Duration::from_secs(10), |delivery| {
            delivery["attempt_count"].as_u64() >= Some(1)
        })
        .await;
    let attempt = &attempted["attempts"][0];
    let error = attempt["error"].as_str().unwrap_or_default();
    assert!(error.contains("did not resolve in time"), "{attempt}");
    let duration_ms = attempt["duration_ms"].as_u64().expect("duration_ms");
    assert!(duration_ms <= 2_100, "{attempt}");
    assert!(attempted["status"] == "pending" || attempted["status"] == "failed");
    println!("dns: a stuck attempt ended after {duration_ms} ms: {error}");
    server.stop().await;
}

async fn timed_read(api: &Api, path: &str) -> Duration {
    let started = Instant::now();
    let reply = api.get(path).await;
    let took = started.elapsed();
    assert!(reply.status.is_success(), "{path}: {:?}", reply.body);
    took
}

/// A name server on 127.0.0.1:53 that reads every query, over UDP and TCP, and never answers.
struct SilentNameServer {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SilentNameServer {
    async fn start() -> Self {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:53")
            .await
            .expect("bind udp 53");
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:53")
            .await
            .expect("bind tcp 53");
        let swallow_udp = tokio::spawn(async move {
            let mut buffer = [0_u8; 4096];
            while udp.recv_from(&mut buffer).await.is_ok() {}
        });
        let swallow_tcp = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((connection, _)) = tcp.accept().await {
                held.push(connection); // open, read by nobody, never answered
            }
        });
        Self {
            tasks: vec![swallow_udp, swallow_tcp],
        }
    }
}

impl Drop for SilentNameServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
