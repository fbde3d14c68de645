//! `reward bench` at a small size: every scenario completes and every delivery is counted
//! exactly. Figures are printed, never asserted: this machine is shared and noisy.

use serde_json::Value;

use crate::common::REWARD_BIN;

#[tokio::test]
async fn bench_runs_every_scenario_and_counts_every_delivery() {
    let output = tokio::process::Command::new(REWARD_BIN)
        .args([
            "bench",
            "--json",
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
        .env_remove("REWARD_DATABASE_URL")
        // The servers the bench starts inherit this: a load test must not meet the rate limit.
        .env("REWARD_RATE_LIMIT", "0")
        .output()
        .await
        .expect("run reward bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    eprintln!("{report:#}");
    let scenarios = &report["scenarios"];
    assert_eq!(scenarios["ingest"]["events"], 2000);
    assert_eq!(scenarios["deliver"]["deliveries"], 2000);
    assert_eq!(scenarios["fanout"]["deliveries"], 2000);
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
