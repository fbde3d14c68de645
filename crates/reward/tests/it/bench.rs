//! `reward bench` at a small size: every scenario completes and every delivery is counted
//! exactly. Figures are printed, never asserted: this machine is shared and noisy.

use serde_json::Value;

use crate::common::REWARD_BIN;

/// Runs `reward bench --json` with `args` on a fresh temporary database; returns its report.
async fn run_bench(args: &[&str]) -> Value {
    let output = tokio::process::Command::new(REWARD_BIN)
        .args(["bench", "--json"])
        .args(args)
        .env_remove("REWARD_DATABASE_URL")
        // The servers the bench starts inherit this: a load test must not meet the rate limit.
        .env("REWARD_RATE_LIMIT", "0")
        .output()
        .await
        .expect("run reward bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {stderr}");
    serde_json::from_slice(&output.stdout).expect("one JSON document")
}

#[tokio::test]
async fn bench_runs_every_scenario_and_counts_every_delivery() {
    let report = run_bench(&[
        "--events",
        "2000",
        "--concurrency",
        "16",
        "--fanout-webhooks",
        "4",
        "--rate",
        "200",
        "--seconds",
        "2",
        "--backlog",
        "4000",
    ])
    .await;
    eprintln!("{report:#}");
    let scenarios = &report["scenarios"];
    assert_eq!(scenarios["ingest"]["events"], 2000);
    assert_eq!(scenarios["deliver"]["deliveries"], 2000);
    // One webhook that orders per user: the same 2,000 deliveries, each user's one at a time.
    assert_eq!(scenarios["ordered"]["deliveries"], 2000);
    assert_eq!(scenarios["fanout"]["deliveries"], 2000);
    // 400 events, each kept by the filters of exactly five of the ten webhooks.
    assert_eq!(scenarios["filtered"]["events"], 400);
    assert_eq!(scenarios["filtered"]["deliveries"], 2000);
    assert_eq!(scenarios["latency"]["deliveries"], 400);
    assert_eq!(scenarios["mixed"]["healthy_deliveries"], 40 * 8);
    assert_eq!(scenarios["backlog"]["deliveries"], 4000);
    for (name, scenario) in scenarios.as_object().expect("scenarios") {
        if name != "ceiling" {
            assert!(
                scenario["server_peak_rss_bytes"]
                    .as_u64()
                    .is_some_and(|rss| rss > 0),
                "{name} reports memory"
            );
        }
    }
}

/// The soak, for a few seconds: every healthy delivery counted once, the memory sampled.
#[tokio::test]
async fn bench_soak_counts_every_healthy_delivery_and_samples_memory() {
    let report = run_bench(&[
        "--scenarios",
        "soak",
        "--soak-seconds",
        "3",
        "--rate",
        "200",
    ])
    .await;
    let soak = &report["scenarios"]["soak"];
    // 20 events/s for 3 s, each to 8 healthy webhooks (2 of the 10 fail).
    assert_eq!(soak["healthy_deliveries"], 20 * 3 * 8, "{soak:#}");
    assert_eq!(soak["duplicates"], 0);
    let samples = soak["rss_samples"].as_array().expect("samples");
    assert!(
        samples
            .iter()
            .all(|sample| sample["rss"].as_u64() > Some(0)),
        "{samples:?}"
    );
    assert!(!samples.is_empty());
    assert!(soak["peak_rss_under_load_bytes"].as_u64() > Some(0));
}

/// The purge scenario, small: every delivery is delivered, then purged by a restarted server with
/// a one-second retention, while acknowledgement latencies are measured before and during.
#[tokio::test]
async fn bench_purge_measures_writers_while_a_retention_purge_runs() {
    let report = run_bench(&[
        "--scenarios",
        "purge",
        "--backlog",
        "2000",
        "--rate",
        "100",
        "--seconds",
        "1",
    ])
    .await;
    let purge = &report["scenarios"]["purge"];
    assert_eq!(purge["deliveries"], 2000, "{purge:#}");
    assert_eq!(purge["events"], 200);
    assert!(purge["purge_seconds"].as_f64() > Some(0.0), "{purge:#}");
    for window in ["ack_before", "ack_during"] {
        assert!(
            purge[window]["max_ms"].as_f64() > Some(0.0),
            "{window}: {purge:#}"
        );
    }
}
