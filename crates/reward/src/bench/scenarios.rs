//! The scenarios. Each builds its webhooks, drives load through the public API, waits for every
//! delivery to arrive, checks the count exactly, and reports what it measured.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::process::{cpu_seconds, ServerChild};
use super::receiver::BenchReceiver;
use super::stats::{percentiles, rate};
use super::target::Target;

/// What a scenario measured: a title, rows for the table, and the same as JSON.
pub struct Report {
    pub name: &'static str,
    pub rows: Vec<(String, String)>,
    pub json: Value,
}

pub struct Bench {
    pub target: Target,
    pub receiver: BenchReceiver,
    pub concurrency: usize,
    /// The server when the bench started it: CPU and memory are then reported, and the backlog
    /// scenario can restart it.
    pub server: Option<ServerChild>,
}

/// When each trigger event was sent.
type SentAt = HashMap<String, Instant>;

impl Bench {
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().and_then(ServerChild::pid)
    }

    pub(super) fn cpu(&self) -> Option<f64> {
        self.server_pid().and_then(cpu_seconds)
    }

    pub(super) async fn webhooks(
        &self,
        paths: &[String],
        enabled: bool,
    ) -> anyhow::Result<Vec<String>> {
        let plain: Vec<(String, Value)> =
            paths.iter().map(|path| (path.clone(), json!({}))).collect();
        self.webhooks_with(&plain, enabled).await
    }

    /// Webhooks at these paths, each with its settings (an object: a filter, an ordering).
    async fn webhooks_with(
        &self,
        webhooks: &[(String, Value)],
        enabled: bool,
    ) -> anyhow::Result<Vec<String>> {
        let mut ids = Vec::with_capacity(webhooks.len());
        for (path, settings) in webhooks {
            let url = format!("{}{path}", self.receiver.base_url);
            ids.push(self.target.create_webhook(&url, enabled, settings).await?);
        }
        Ok(ids)
    }

    pub(super) async fn remove(&self, webhooks: &[String]) -> anyhow::Result<()> {
        for id in webhooks {
            self.target.delete_webhook(id).await?;
        }
        Ok(())
    }

    /// Sends `events` trigger events from `concurrency` clients as fast as they go, without values.
    pub(super) async fn send_burst(
        &self,
        events: usize,
        label: &str,
    ) -> anyhow::Result<(SentAt, Vec<Duration>, Instant)> {
        self.send_valued_burst(events, label, |_| Value::Null, None)
            .await
    }

    /// Like [`Self::send_burst`], the n-th event (from 0) carrying `value_of(n)` as its value and,
    /// with `users`, about user n modulo `users` (else each client's events are about one user).
    async fn send_valued_burst(
        &self,
        events: usize,
        label: &str,
        value_of: fn(usize) -> Value,
        users: Option<usize>,
    ) -> anyhow::Result<(SentAt, Vec<Duration>, Instant)> {
        let next = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(Mutex::new(HashMap::with_capacity(events)));
        let acks = Arc::new(Mutex::new(Vec::with_capacity(events)));
        let first = Instant::now();
        let mut clients = Vec::new();
        for client in 0..self.concurrency.max(1) {
            let (target, next, sent, acks) = (
                self.target.clone(),
                next.clone(),
                sent.clone(),
                acks.clone(),
            );
            let label = label.to_owned();
            clients.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= events {
                        break;
                    }
                    let user = format!("{label}-{}", users.map_or(client, |users| n % users));
                    let (id, started, acknowledged) = target.record(&user, value_of(n)).await?;
                    sent.lock().await.insert(id, started);
                    acks.lock().await.push(acknowledged - started);
                }
                anyhow::Ok(())
            }));
        }
        for client in clients {
            client.await.context("a load client stopped")??;
        }
        let sent = std::mem::take(&mut *sent.lock().await);
        let acks = std::mem::take(&mut *acks.lock().await);
        Ok((sent, acks, first))
    }

    /// Sends trigger events at a steady offered rate for `seconds`.
    pub(super) async fn send_at_rate(
        &self,
        per_second: u32,
        seconds: u32,
        label: &str,
    ) -> anyhow::Result<SentAt> {
        let total = (per_second * seconds) as usize;
        let mut ticker =
            tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_second.max(1))));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let sent = Arc::new(Mutex::new(HashMap::with_capacity(total)));
        let mut requests = tokio::task::JoinSet::new();
        for n in 0..total {
            ticker.tick().await;
            let (target, sent) = (self.target.clone(), sent.clone());
            let user = format!("{label}-{}", n % 64);
            requests.spawn(async move {
                let (id, started, _) = target.record(&user, Value::Null).await?;
                sent.lock().await.insert(id, started);
                anyhow::Ok(())
            });
        }
        while let Some(done) = requests.join_next().await {
            done.context("a request task stopped")??;
        }
        let sent = std::mem::take(&mut *sent.lock().await);
        Ok(sent)
    }

    /// Waits until `expected` deliveries arrived on the given paths; checks every one exactly
    /// once. Returns (arrival time of each (trigger event, path), last arrival, duplicates).
    pub(super) async fn collect(
        &self,
        name: &str,
        sent: &SentAt,
        paths: &HashSet<String>,
        timeout: Duration,
    ) -> anyhow::Result<(Vec<(String, Instant)>, Instant, usize)> {
        self.collect_expected(name, sent, paths, sent.len() * paths.len(), timeout)
            .await
    }

    /// Waits for `expected` distinct (event, path) arrivals; an arrival beyond them is a
    /// duplicate.
    async fn collect_expected(
        &self,
        name: &str,
        sent: &SentAt,
        paths: &HashSet<String>,
        expected: usize,
        timeout: Duration,
    ) -> anyhow::Result<(Vec<(String, Instant)>, Instant, usize)> {
        let deadline = Instant::now() + timeout;
        let mut arrivals = Vec::with_capacity(expected);
        let mut seen: HashSet<(String, String)> = HashSet::with_capacity(expected);
        let mut duplicates = 0;
        let mut last_progress = Instant::now();
        loop {
            for arrival in self.receiver.drain() {
                if !paths.contains(&arrival.path) || !sent.contains_key(&arrival.trigger_event) {
                    continue;
                }
                if seen.insert((arrival.trigger_event.clone(), arrival.path.clone())) {
                    arrivals.push((arrival.trigger_event, arrival.at));
                } else {
                    duplicates += 1;
                }
            }
            if seen.len() >= expected {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{name}: only {} of {expected} deliveries arrived within {timeout:?}",
                    seen.len()
                );
            }
            if last_progress.elapsed() > Duration::from_secs(2) {
                eprintln!("  {name}: {}/{expected} delivered", seen.len());
                last_progress = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let last = arrivals
            .iter()
            .map(|(_, at)| *at)
            .max()
            .unwrap_or_else(Instant::now);
        Ok((arrivals, last, duplicates))
    }

    pub(super) fn latencies(sent: &SentAt, arrivals: &[(String, Instant)]) -> Vec<Duration> {
        arrivals
            .iter()
            .filter_map(|(id, at)| {
                sent.get(id)
                    .map(|started| at.saturating_duration_since(*started))
            })
            .collect()
    }

    pub async fn ceiling(&self, requests: usize) -> anyhow::Result<Report> {
        let url = format!("{}/ok/ceiling", self.receiver.base_url);
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut clients = Vec::new();
        for _ in 0..self.concurrency.max(1) {
            let (target, next, url) = (self.target.clone(), next.clone(), url.clone());
            clients.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    target.raw_post(&url).await?;
                }
                anyhow::Ok(())
            }));
        }
        for client in clients {
            client.await.context("a ceiling client stopped")??;
        }
        let elapsed = started.elapsed();
        self.receiver.drain();
        let per_second = rate(requests, elapsed);
        Ok(Report {
            name: "ceiling",
            rows: vec![
                ("requests".into(), requests.to_string()),
                (
                    "POST/s (bench client → receiver)".into(),
                    format!("{per_second:.0}"),
                ),
            ],
            json: json!({"requests": requests, "per_second": per_second}),
        })
    }

    pub async fn ingest(&self, events: usize) -> anyhow::Result<Report> {
        let cpu_before = self.cpu();
        let (sent, mut acks, first) = self.send_burst(events, "ingest").await?;
        let elapsed = first.elapsed();
        let per_second = rate(sent.len(), elapsed);
        let ack = percentiles(&mut acks);
        let cpu = cpu_before
            .zip(self.cpu())
            .map(|(before, after)| after - before);
        Ok(Report {
            name: "ingest",
            rows: vec![
                (
                    "trigger events (durable before 201)".into(),
                    sent.len().to_string(),
                ),
                ("events/s".into(), format!("{per_second:.0}")),
                (
                    "201 latency p50 / p99 (ms)".into(),
                    format!("{:.1} / {:.1}", ack.p50_ms, ack.p99_ms),
                ),
                (
                    "server CPU s per 1,000 events".into(),
                    per_thousand(cpu, sent.len()),
                ),
            ],
            json: json!({"events": sent.len(), "per_second": per_second, "ack_latency": ack, "cpu_seconds": cpu}),
        })
    }

    /// N events to W webhooks, as fast as the clients go.
    pub async fn deliver(
        &self,
        name: &'static str,
        events: usize,
        webhook_count: usize,
    ) -> anyhow::Result<Report> {
        let webhooks: Vec<(String, Value)> = (0..webhook_count)
            .map(|n| (format!("/ok/{name}-{n}"), json!({})))
            .collect();
        self.deliver_to(
            name,
            events,
            &webhooks,
            |_| Value::Null,
            webhook_count,
            None,
        )
        .await
    }

    /// N events about 1,000 users to one webhook that orders per user: each user's deliveries go
    /// one at a time, in order. Beside `deliver` (the same events, unordered), it shows what
    /// ordering costs.
    pub async fn ordered(&self, events: usize) -> anyhow::Result<Report> {
        const USERS: usize = 1000;
        let webhooks = vec![("/ok/ordered".to_owned(), json!({"ordering": "per_user"}))];
        self.deliver_to(
            "ordered",
            events,
            &webhooks,
            |_| Value::Null,
            1,
            Some(USERS),
        )
        .await
    }

    /// N events to 10 webhooks whose filters each keep half of them: every event's value is its
    /// number modulo 10, and webhook k keeps the values k..k+4 (mod 10), so each event goes to
    /// exactly five. Beside `fanout` with the same deliveries, it shows what matching filters
    /// costs.
    pub async fn filtered(&self, events: usize) -> anyhow::Result<Report> {
        const WEBHOOKS: usize = 10;
        let webhooks: Vec<(String, Value)> = (0..WEBHOOKS)
            .map(|k| {
                let kept: Vec<usize> = (k..k + WEBHOOKS / 2).map(|v| v % WEBHOOKS).collect();
                let filter = json!({"type": "trigger_event.created", "data.value": {"$in": kept}});
                (format!("/ok/filtered-{k}"), json!({"filter": filter}))
            })
            .collect();
        let value_of = |n: usize| json!(n % WEBHOOKS);
        self.deliver_to("filtered", events, &webhooks, value_of, WEBHOOKS / 2, None)
            .await
    }

    /// Events to these webhooks, each event reaching `per_event` of them (about `users` users,
    /// when given; see [`Self::send_valued_burst`]).
    async fn deliver_to(
        &self,
        name: &'static str,
        events: usize,
        webhooks: &[(String, Value)],
        value_of: fn(usize) -> Value,
        per_event: usize,
        users: Option<usize>,
    ) -> anyhow::Result<Report> {
        let webhook_count = webhooks.len();
        let ids = self.webhooks_with(webhooks, true).await?;
        let cpu_before = self.cpu();
        let (sent, _, first) = self
            .send_valued_burst(events, name, value_of, users)
            .await?;
        let timeout = Duration::from_secs(120) + Duration::from_millis((events * per_event) as u64);
        let path_set: HashSet<String> = webhooks.iter().map(|(path, _)| path.clone()).collect();
        let expected = sent.len() * per_event;
        let (arrivals, last, duplicates) = self
            .collect_expected(name, &sent, &path_set, expected, timeout)
            .await?;
        let cpu = cpu_before
            .zip(self.cpu())
            .map(|(before, after)| after - before);
        self.remove(&ids).await?;
        let deliveries = arrivals.len();
        let per_second = rate(deliveries, last.saturating_duration_since(first));
        let latency = percentiles(&mut Self::latencies(&sent, &arrivals));
        Ok(Report {
            name,
            rows: vec![
                (
                    "events × webhooks (each event to)".into(),
                    format!("{} × {webhook_count} ({per_event})", sent.len()),
                ),
                (
                    "delivered (each exactly counted)".into(),
                    format!("{deliveries} (+{duplicates} duplicates)"),
                ),
                (
                    "deliveries/s (first request → last arrival)".into(),
                    format!("{per_second:.0}"),
                ),
                (
                    "create→arrival p50 / p90 / p99 / max (ms)".into(),
                    format!(
                        "{:.1} / {:.1} / {:.1} / {:.1}",
                        latency.p50_ms, latency.p90_ms, latency.p99_ms, latency.max_ms
                    ),
                ),
                (
                    "server CPU s per 1,000 deliveries".into(),
                    per_thousand(cpu, deliveries),
                ),
            ],
            json: json!({
                "events": sent.len(), "webhooks": webhook_count, "deliveries": deliveries,
                "duplicates": duplicates, "per_second": per_second, "latency": latency, "cpu_seconds": cpu,
            }),
        })
    }

    /// A steady offered rate to one healthy webhook: the latency an ordinary load sees.
    pub async fn latency(&self, per_second: u32, seconds: u32) -> anyhow::Result<Report> {
        let paths = vec!["/ok/latency".to_owned()];
        let webhooks = self.webhooks(&paths, true).await?;
        let sent = self.send_at_rate(per_second, seconds, "latency").await?;
        let path_set: HashSet<String> = paths.iter().cloned().collect();
        let (arrivals, _, duplicates) = self
            .collect("latency", &sent, &path_set, Duration::from_secs(120))
            .await?;
        self.remove(&webhooks).await?;
        let latency = percentiles(&mut Self::latencies(&sent, &arrivals));
        Ok(Report {
            name: "latency",
            rows: vec![
                (
                    "offered".into(),
                    format!("{per_second} events/s for {seconds} s"),
                ),
                (
                    "delivered".into(),
                    format!("{} (+{duplicates} duplicates)", arrivals.len()),
                ),
                (
                    "create→arrival p50 / p90 / p99 / max (ms)".into(),
                    format!(
                        "{:.1} / {:.1} / {:.1} / {:.1}",
                        latency.p50_ms, latency.p90_ms, latency.p99_ms, latency.max_ms
                    ),
                ),
            ],
            json: json!({"offered_per_second": per_second, "seconds": seconds, "deliveries": arrivals.len(), "latency": latency}),
        })
    }

    /// 10 webhooks, one answering 500 and one hanging past the timeout: the healthy eight's
    /// latency. `deliveries_per_second` is offered as a tenth as many events (each goes to all
    /// ten), so the load compares with the latency scenario's.
    pub async fn mixed(&self, deliveries_per_second: u32, seconds: u32) -> anyhow::Result<Report> {
        let per_second = (deliveries_per_second / 10).max(1);
        let healthy: Vec<String> = (0..8).map(|n| format!("/ok/mixed-{n}")).collect();
        let mut paths = healthy.clone();
        paths.push("/fail/mixed".into());
        paths.push("/hang/mixed".into());
        let webhooks = self.webhooks(&paths, true).await?;
        let sent = self.send_at_rate(per_second, seconds, "mixed").await?;
        let path_set: HashSet<String> = healthy.iter().cloned().collect();
        let (arrivals, _, duplicates) = self
            .collect("mixed", &sent, &path_set, Duration::from_secs(120))
            .await?;
        self.remove(&webhooks).await?;
        let latency = percentiles(&mut Self::latencies(&sent, &arrivals));
        Ok(Report {
            name: "mixed",
            rows: vec![
                ("offered".into(), format!("{per_second} events/s × 10 webhooks for {seconds} s (1 answers 500, 1 hangs)")),
                ("healthy deliveries".into(), format!("{} (+{duplicates} duplicates)", arrivals.len())),
                (
                    "healthy create→arrival p50 / p90 / p99 / max (ms)".into(),
                    format!("{:.1} / {:.1} / {:.1} / {:.1}", latency.p50_ms, latency.p90_ms, latency.p99_ms, latency.max_ms),
                ),
            ],
            json: json!({"offered_per_second": per_second, "seconds": seconds, "healthy_deliveries": arrivals.len(), "healthy_latency": latency}),
        })
    }

    /// `deliveries` queued to 100 webhooks while no worker runs (an API-only server: from the
    /// queue's point of view, every receiver is down), then a server with its worker drains them:
    /// the drain rate, and whether it holds as the backlog shrinks (last tenth's rate ÷ first's).
    pub async fn backlog(&mut self, deliveries: usize) -> anyhow::Result<Report> {
        const WEBHOOKS: usize = 100;
        let Some(server) = self.server.take() else {
            bail!("backlog needs a server the bench started (it restarts it without, then with, its worker)");
        };
        let server = server.restart(false).await?;
        self.target = Target::new(&server.base_url, &server.api_key)?;
        self.server = Some(server);
        let events = deliveries.div_ceil(WEBHOOKS);
        let paths: Vec<String> = (0..WEBHOOKS).map(|n| format!("/ok/backlog-{n}")).collect();
        let webhooks = self.webhooks(&paths, true).await?;
        let (sent, _, queue_started) = self.send_burst(events, "backlog").await?;
        let queued_in = queue_started.elapsed();
        eprintln!(
            "  backlog: {} deliveries queued in {queued_in:.1?}",
            events * WEBHOOKS
        );
        let server = self
            .server
            .take()
            .context("the server")?
            .restart(true)
            .await?;
        let drain_started = Instant::now();
        self.target = Target::new(&server.base_url, &server.api_key)?;
        self.server = Some(server);
        let cpu_before = self.cpu();
        let path_set: HashSet<String> = paths.iter().cloned().collect();
        let timeout =
            Duration::from_secs(600) + Duration::from_millis(events as u64 * WEBHOOKS as u64);
        let (mut arrivals, last, duplicates) =
            self.collect("backlog", &sent, &path_set, timeout).await?;
        let cpu = cpu_before
            .zip(self.cpu())
            .map(|(before, after)| after - before);
        self.remove(&webhooks).await?;
        let drained = arrivals.len();
        let per_second = rate(drained, last.saturating_duration_since(drain_started));
        arrivals.sort_by_key(|(_, at)| *at);
        let tenth = (drained / 10).max(1);
        let slice_rate = |slice: &[(String, Instant)]| match (slice.first(), slice.last()) {
            (Some(first), Some(last)) => {
                rate(slice.len(), last.1.saturating_duration_since(first.1))
            }
            _ => 0.0,
        };
        let first_rate = slice_rate(&arrivals[..tenth.min(drained)]);
        let last_rate = slice_rate(&arrivals[drained.saturating_sub(tenth)..]);
        let flatness = if first_rate > 0.0 {
            last_rate / first_rate
        } else {
            0.0
        };
        Ok(Report {
            name: "backlog",
            rows: vec![
                (
                    "deliveries queued (no worker running)".into(),
                    drained.to_string(),
                ),
                ("queueing took".into(), format!("{queued_in:.1?}")),
                (
                    "drain deliveries/s (restart → last arrival)".into(),
                    format!("{per_second:.0} (+{duplicates} duplicates)"),
                ),
                (
                    "first tenth / last tenth deliveries/s".into(),
                    format!("{first_rate:.0} / {last_rate:.0} (ratio {flatness:.2})"),
                ),
                (
                    "server CPU s per 1,000 deliveries".into(),
                    per_thousand(cpu, drained),
                ),
            ],
            json: json!({
                "deliveries": drained, "queue_seconds": queued_in.as_secs_f64(), "drain_per_second": per_second,
                "first_tenth_per_second": first_rate, "last_tenth_per_second": last_rate, "flatness": flatness,
                "duplicates": duplicates, "cpu_seconds": cpu,
            }),
        })
    }
}

fn per_thousand(cpu: Option<f64>, items: usize) -> String {
    match cpu {
        Some(seconds) if items > 0 => format!("{:.3}", seconds * 1000.0 / items as f64),
        _ => "n/a".into(),
    }
}
