//! The purge scenario (issue 18 §4): what a large retention purge costs the API while it runs.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::scenarios::{Bench, Report};
use super::stats::{percentiles, Percentiles};
use super::target::Target;

/// Webhooks the purged deliveries went to.
const WEBHOOKS: usize = 10;
/// Longest the purge may take before the scenario gives up.
const PURGE_TIMEOUT: Duration = Duration::from_secs(1800);

impl Bench {
    /// `deliveries` delivered (to 10 webhooks, each with its attempt), then the server restarted
    /// with a one-second `REWARD_EVENT_RETENTION` and `REWARD_ATTEMPT_BODY_RETENTION`: its upkeep
    /// purges them all at start. Meanwhile trigger events are recorded at `per_second`: their
    /// acknowledgement latency during the purge (the largest pause writers saw) against the same
    /// load for `seconds` before it, and how long the purge took.
    pub async fn purge(
        &mut self,
        deliveries: usize,
        per_second: u32,
        seconds: u32,
    ) -> anyhow::Result<Report> {
        if self.server.is_none() {
            bail!("purge needs a server the bench started (it restarts it with a short retention)");
        }
        let events = deliveries.div_ceil(WEBHOOKS);
        let paths: Vec<String> = (0..WEBHOOKS).map(|n| format!("/ok/purge-{n}")).collect();
        let webhooks = self.webhooks(&paths, true).await?;
        let (sent, _, _) = self.send_burst(events, "purge").await?;
        let path_set: HashSet<String> = paths.iter().cloned().collect();
        let timeout = Duration::from_secs(600) + Duration::from_millis(events as u64 * 10);
        self.collect("purge", &sent, &path_set, timeout).await?;
        // Arrived is not yet recorded (PostgreSQL's recorder may lag by many thousands): wait
        // until none is pending, or the restart below would leave them pending to disabled
        // webhooks, keeping their events.
        let started = Instant::now();
        while !self
            .target
            .get("/v1/deliveries?status=pending&limit=1")
            .await?["data"]
            .as_array()
            .is_some_and(Vec::is_empty)
        {
            if started.elapsed() > timeout {
                bail!("purge: deliveries still pending {timeout:?} after they all arrived");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Stop delivering to them: what is recorded from here on is the writers' load only.
        // (Deleting them would purge their deliveries by another path.)
        for webhook in &webhooks {
            self.target.disable_webhook(webhook).await?;
        }
        let seeded_before = SystemTime::now();
        eprintln!(
            "  purge: {} deliveries delivered; writers' load before the purge",
            events * WEBHOOKS
        );
        let before = self
            .acknowledgements(per_second, Duration::from_secs(u64::from(seconds)))
            .await?;

        let server = self.server.take().context("the server")?;
        let server = server
            .restart_with_settings(
                true,
                vec![
                    ("REWARD_EVENT_RETENTION", "1s".to_owned()),
                    ("REWARD_ATTEMPT_BODY_RETENTION", "1s".to_owned()),
                ],
            )
            .await?;
        let purge_started = Instant::now();
        self.target = Target::new(&server.base_url, &server.api_key)?;
        self.server = Some(server);
        let cutoff = humantime::format_rfc3339_millis(seeded_before).to_string();
        let still_listed = format!("/v1/events?created_before={cutoff}&limit=1");
        let mut during = Vec::new();
        let purge_took = loop {
            let window = self
                .acknowledgements(per_second, Duration::from_secs(1))
                .await?;
            during.extend(window);
            let left = self.target.get(&still_listed).await?;
            if left["data"].as_array().is_some_and(Vec::is_empty) {
                break purge_started.elapsed();
            }
            if purge_started.elapsed() > PURGE_TIMEOUT {
                bail!("purge: events from before the restart still listed after {PURGE_TIMEOUT:?}");
            }
        };
        self.remove(&webhooks).await?;
        let (before, during) = (percentiles(&mut before.clone()), percentiles(&mut during));
        let row = |p: &Percentiles| format!("{:.1} / {:.1} / {:.1}", p.p50_ms, p.p99_ms, p.max_ms);
        Ok(Report {
            name: "purge",
            rows: vec![
                (
                    "purged: deliveries (with attempts) / events".into(),
                    format!("{} / {events}", events * WEBHOOKS),
                ),
                (
                    "purge took (restart → none listed)".into(),
                    format!("{:.1} s", purge_took.as_secs_f64()),
                ),
                (
                    format!("ack p50 / p99 / max (ms) at {per_second}/s, before"),
                    row(&before),
                ),
                (
                    "ack p50 / p99 / max (ms) during the purge".into(),
                    row(&during),
                ),
            ],
            json: json!({
                "deliveries": events * WEBHOOKS, "events": events,
                "purge_seconds": purge_took.as_secs_f64(), "offered_per_second": per_second,
                "ack_before": before, "ack_during": during,
            }),
        })
    }

    /// Records trigger events at `per_second` for `span`; returns each acknowledgement's latency.
    async fn acknowledgements(
        &self,
        per_second: u32,
        span: Duration,
    ) -> anyhow::Result<Vec<Duration>> {
        let total = (f64::from(per_second) * span.as_secs_f64()).ceil() as usize;
        let mut ticker =
            tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_second.max(1))));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut requests = tokio::task::JoinSet::new();
        for n in 0..total {
            ticker.tick().await;
            let target = self.target.clone();
            requests.spawn(async move {
                let (_, started, acknowledged) = target
                    .record(&format!("purge-load-{}", n % 64), Value::Null)
                    .await?;
                anyhow::Ok(acknowledged.saturating_duration_since(started))
            });
        }
        let mut latencies = Vec::with_capacity(total);
        while let Some(done) = requests.join_next().await {
            latencies.push(done.context("a request task stopped")??);
        }
        Ok(latencies)
    }
}
