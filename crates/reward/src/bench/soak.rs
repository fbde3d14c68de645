//! The soak: mixed load for minutes, a fifth of the endpoints failing, while the server's resident
//! memory is sampled. What it shows is whether memory stays flat once warmed up (no leak, no
//! queue growing in memory while failures pile up in the store).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::process::{peak_rss_bytes, rss_bytes};
use super::scenarios::{Bench, Report};
use super::stats::{memory_growth, percentiles, RssSample};

/// How often the server's memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Retries of the failing endpoints fall due within the run with this base.
const SOAK_RETRY_BASE: &str = "1s";

impl Bench {
    /// 10 webhooks, one answering 500 and one hanging past the timeout (20% failing), at
    /// `deliveries_per_second` offered (a tenth as many events) for `seconds`; the server retries
    /// the failing ones within the run. Reports the healthy deliveries and the memory curve.
    pub async fn soak(
        &mut self,
        deliveries_per_second: u32,
        seconds: u32,
    ) -> anyhow::Result<Report> {
        if let Some(server) = self.server.take() {
            let server = server.restart_with(true, SOAK_RETRY_BASE).await?;
            self.target = super::target::Target::new(&server.base_url, &server.api_key)?;
            self.server = Some(server);
        }
        let pid = self
            .server_pid()
            .context("the soak samples the server's memory: it needs a server the bench started")?;
        let per_second = (deliveries_per_second / 10).max(1);
        let healthy: Vec<String> = (0..8).map(|n| format!("/ok/soak-{n}")).collect();
        let mut paths = healthy.clone();
        paths.push("/fail/soak".into());
        paths.push("/hang/soak".into());
        let webhooks = self.webhooks(&paths, true).await?;

        let started = Instant::now();
        let stop = CancellationToken::new();
        let sampler = tokio::spawn(sample_memory(pid, started, stop.clone()));
        let sent = self.send_at_rate(per_second, seconds, "soak").await;
        let path_set: HashSet<String> = healthy.iter().cloned().collect();
        let collected = match &sent {
            Ok(sent) => Some(
                self.collect("soak", sent, &path_set, Duration::from_secs(300))
                    .await,
            ),
            Err(_) => None,
        };
        stop.cancel();
        let samples = sampler.await.context("the memory sampler stopped")?;
        // The peak while under load, before the clean-up below (deleting webhooks with many
        // deliveries is one large transaction of its own).
        let peak_under_load = peak_rss_bytes(pid).unwrap_or(0);
        self.remove(&webhooks).await?;
        let sent = sent?;
        let (arrivals, _, duplicates) = collected.context("collecting")??;

        let latency = percentiles(&mut Self::latencies(&sent, &arrivals));
        let growth = memory_growth(&samples);
        let mib = |bytes: u64| bytes as f64 / 1_048_576.0;
        let at = |second: u64| {
            samples
                .iter()
                .find(|sample| sample.second >= second)
                .map_or("n/a".to_owned(), |sample| format!("{:.1}", mib(sample.rss)))
        };
        let peak = samples.iter().map(|sample| sample.rss).max().unwrap_or(0);
        let last = samples.last().map_or(0, |sample| sample.rss);
        Ok(Report {
            name: "soak",
            rows: vec![
                ("offered".into(), format!("{per_second} events/s × 10 webhooks for {seconds} s (1 answers 500, 1 hangs; retries every few s)")),
                ("healthy deliveries".into(), format!("{} (+{duplicates} duplicates)", arrivals.len())),
                (
                    "healthy create→arrival p50 / p99 / max (ms)".into(),
                    format!("{:.1} / {:.1} / {:.1}", latency.p50_ms, latency.p99_ms, latency.max_ms),
                ),
                (
                    "server RSS at 1 min / 5 min / end / highest sample (MiB)".into(),
                    format!("{} / {} / {:.1} / {:.1}", at(60), at(300), mib(last), mib(peak)),
                ),
                (
                    "server peak RSS under load, before clean-up (MiB)".into(),
                    format!("{:.1}", mib(peak_under_load)),
                ),
                (
                    "RSS growth after warm-up (last minute ÷ second minute)".into(),
                    growth.map_or("n/a (run longer than 2 min)".into(), |growth| format!("{growth:.2}")),
                ),
            ],
            json: json!({
                "offered_events_per_second": per_second, "seconds": seconds,
                "healthy_deliveries": arrivals.len(), "duplicates": duplicates,
                "healthy_latency": latency, "rss_samples": samples, "rss_growth": growth,
                "peak_rss_under_load_bytes": peak_under_load,
            }),
        })
    }
}

/// Samples the server's resident memory until `stop`, printing one line a minute.
async fn sample_memory(pid: u32, started: Instant, stop: CancellationToken) -> Vec<RssSample> {
    let mut samples = Vec::new();
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.cancelled() => return samples,
        }
        let Some(rss) = rss_bytes(pid) else {
            return samples;
        };
        let second = started.elapsed().as_secs();
        if second % 60 < SAMPLE_EVERY.as_secs() {
            eprintln!(
                "  soak: {second} s, server RSS {:.1} MiB",
                rss as f64 / 1_048_576.0
            );
        }
        samples.push(RssSample { second, rss });
    }
}
