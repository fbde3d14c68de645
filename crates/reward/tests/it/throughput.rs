//! How many trigger events per second `reward serve` nodes on one PostgreSQL database sustain, and
//! where the CPU goes meanwhile: the measurement behind docs/scaling.md. Ignored by default (it
//! loads the machine for a while); `scripts/measure-throughput.sh` runs it in a release build:
//!
//! ```sh
//! REWARD_THROUGHPUT_NODES=3 cargo test --release -p reward --test it -- --ignored throughput --nocapture
//! ```
//!
//! Settings: `REWARD_THROUGHPUT_NODES` (default 3), `REWARD_THROUGHPUT_CLIENTS` (concurrent
//! clients spread over the nodes, default 32), `REWARD_THROUGHPUT_SECONDS` (default 10),
//! `REWARD_THROUGHPUT_ROUTE` (`direct`, the default, or `pgbouncer`: the nodes through PgBouncer
//! in transaction mode, statements unnamed, as `many_nodes.rs` runs them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio_postgres::NoTls;

use crate::common::{create_account, Api, ServerProcess};
use crate::many_nodes::{Route, SharedDatabase};
use crate::receiver::Receiver;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds a process has used (user + system), from /proc.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime, in clock ticks of 1/100 s.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds used by every process whose command is `name`.
fn cpu_seconds_of_all(name: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|pid| pid.chars().all(|c| c.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == name)
        })
        .map(|pid| cpu_seconds(&pid))
        .sum()
}

/// Where the CPU went: PostgreSQL's processes, the Reward nodes, and this test (the load
/// generator and the receiver).
#[derive(Clone, Copy)]
struct CpuUse {
    postgres: f64,
    nodes: f64,
    load: f64,
}

fn cpu_use(node_pids: &[String]) -> CpuUse {
    CpuUse {
        postgres: cpu_seconds_of_all("postgres"),
        nodes: node_pids.iter().map(|pid| cpu_seconds(pid)).sum(),
        load: cpu_seconds("self"),
    }
}

/// The server's commit and WAL counters for one database.
async fn commits_and_wal(database_url: &str) -> (i64, i64) {
    let (client, connection) = tokio_postgres::connect(database_url, NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
                    (SELECT wal_bytes::bigint FROM pg_stat_wal)",
            &[],
        )
        .await
        .expect("stats");
    (row.get(0), row.get(1))
}

/// What the database's busy sessions are doing, sampled every 20 ms until `until`: the share of
/// samples per wait event (`CPU` when a session waits on nothing), most common first. With
/// `REWARD_THROUGHPUT_STATEMENTS=1`, per statement (its first 70 characters) and wait event.
async fn sample_waits(database_url: String, until: Instant) -> Vec<(String, f64)> {
    let by_statement = std::env::var("REWARD_THROUGHPUT_STATEMENTS").is_ok_and(|v| v == "1");
    let sampled = if by_statement {
        "left(regexp_replace(query, '\\s+', ' ', 'g'), 70) || ' | ' || \
         coalesce(wait_event_type || ':' || wait_event, 'CPU')"
    } else {
        "coalesce(wait_event_type || ':' || wait_event, 'CPU')"
    };
    let (client, connection) = tokio_postgres::connect(&database_url, NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let mut counts = std::collections::HashMap::<String, u64>::new();
    let mut total = 0_u64;
    while Instant::now() < until {
        let rows = client
            .query(
                format!(
                    "SELECT {sampled} FROM pg_stat_activity
                     WHERE datname = current_database() AND state = 'active'
                       AND pid <> pg_backend_pid()"
                )
                .as_str(),
                &[],
            )
            .await
            .expect("sample");
        for row in rows {
            *counts.entry(row.get(0)).or_default() += 1;
            total += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut shares: Vec<(String, f64)> = counts
        .into_iter()
        .map(|(wait, count)| (wait, count as f64 / total.max(1) as f64 * 100.0))
        .collect();
    shares.sort_by(|a, b| b.1.total_cmp(&a.1));
    shares.truncate(if by_statement { 15 } else { 5 });
    shares
}

#[tokio::test]
#[ignore = "a measurement: loads the machine; run by scripts/measure-throughput.sh"]
async fn throughput() {
    let route = match std::env::var("REWARD_THROUGHPUT_ROUTE").as_deref() {
        Ok("direct") | Err(_) => Route::Direct,
        Ok("pgbouncer") => Route::ThroughPgBouncer,
        Ok(other) => panic!("REWARD_THROUGHPUT_ROUTE must be direct or pgbouncer, not {other:?}"),
    };
    let Some(database) = SharedDatabase::fresh(route).await else {
        return;
    };
    let database_url = database.url.clone();
    let node_count = setting("REWARD_THROUGHPUT_NODES", 3) as usize;
    let client_count = setting("REWARD_THROUGHPUT_CLIENTS", 32) as usize;
    let seconds = setting("REWARD_THROUGHPUT_SECONDS", 10);
    let receiver = Receiver::start().await;
    // Logs stay at the default level (info): what a real deployment pays for.
    let route_env = database.route_env();
    let mut env = vec![("REWARD_ALLOW_INSECURE_TARGETS", "true")];
    env.extend(
        route_env
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    let mut nodes = Vec::new();
    for _ in 0..node_count {
        nodes.push(ServerProcess::spawn(&database_url, &env).await);
    }
    let node_pids: Vec<String> = nodes
        .iter()
        .filter_map(|node| node.child.id())
        .map(|pid| pid.to_string())
        .collect();
    let account = create_account(&database_url, "Acme").await;
    let key = account["api_key"].as_str().expect("api_key");
    let apis: Vec<Api> = nodes
        .iter()
        .map(|node| Api::new(&node.base_url, key))
        .collect();
    apis[0].create_webhook(&receiver.url).await;
    apis[0].put_trigger("signup", json!({"fixed": 1})).await;

    let acknowledged = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_use(&node_pids);
    let (commits_before, wal_before) = commits_and_wal(&database_url).await;
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let waits = tokio::spawn(sample_waits(database_url.clone(), until));
    let mut clients = Vec::new();
    for client in 0..client_count {
        let api = apis[client % node_count].clone();
        let acknowledged = Arc::clone(&acknowledged);
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0_u64;
            while Instant::now() < until {
                let body = json!({"user_id": format!("c{client}-{n}"), "trigger_id": "signup"});
                let response = http
                    .post(format!("{}/v1/trigger_events", api.base_url))
                    .bearer_auth(&api.key)
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status(), StatusCode::CREATED);
                acknowledged.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }));
    }
    for client in clients {
        client.await.expect("client");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let delivered_in_window = receiver.count();
    let cpu_after = cpu_use(&node_pids);
    let (commits_after, wal_after) = commits_and_wal(&database_url).await;
    let events = acknowledged.load(Ordering::Relaxed);
    let waits = waits.await.expect("samples");
    // Each trigger event emits two events, one delivery each; wait for the backlog to drain.
    let expected = usize::try_from(events * 2).expect("count");
    receiver.wait_for(expected, Duration::from_secs(300)).await;
    let drained = started.elapsed().as_secs_f64();
    let busy = |before: f64, after: f64| (after - before) / elapsed * 100.0;
    let waits: Vec<String> = waits
        .iter()
        .map(|(wait, share)| format!("{wait} {share:.0}%"))
        .collect();
    eprintln!(
        "throughput: {node_count} node(s) {route:?}, {client_count} clients, {elapsed:.1} s: \
         {:.0} trigger events/s acknowledged, {:.0} deliveries/s during the load, \
         all {expected} delivered after {drained:.1} s; {:.0} commits/s, {:.1} MB/s of WAL; \
         CPU (of 200%): postgres {:.0}%, reward nodes {:.0}%, load generator and receiver {:.0}%; \
         busy sessions: {}",
        events as f64 / elapsed,
        delivered_in_window as f64 / elapsed,
        (commits_after - commits_before) as f64 / elapsed,
        (wal_after - wal_before) as f64 / elapsed / 1e6,
        busy(cpu_before.postgres, cpu_after.postgres),
        busy(cpu_before.nodes, cpu_after.nodes),
        busy(cpu_before.load, cpu_after.load),
        waits.join(", "),
    );
    for node in nodes {
        node.kill().await;
    }
}
