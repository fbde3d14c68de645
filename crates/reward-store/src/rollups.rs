//! Roll-ups: a webhook's attempts counted per hour (UTC) and latency bucket, written in the
//! transaction that records them, so its statistics never scan the attempts table.
//!
//! A recorded batch becomes one row per (account, webhook, hour, latency bucket) it touched,
//! counted here, and one failure-run change per webhook ([`FailureRun`]); each backend upserts them
//! in one statement (`ON CONFLICT DO UPDATE SET n = n + excluded.n`), rows sorted by key so two
//! nodes' batches lock them in the same order. Reading back is [`assemble`]: the backends only
//! fetch the period's rows. Roll-ups older than [`RETENTION_MS`] are deleted by upkeep.
//!
//! `failing_since` follows the order attempts are recorded in: within a batch by start time,
//! across batches by commit. Two nodes recording the same webhook's attempts at the same moment
//! may settle it on either's view; the next batch corrects it.

use std::collections::BTreeMap;

use reward_core::ids::{AccountId, WebhookId};
use reward_core::stats::{hour_start, latency_bucket, percentile_ms, FailureRun, StatsPeriod};
use reward_core::time::Timestamp;

use crate::records::{AttemptRecord, StatsBucket, WebhookStats};

/// Roll-ups are kept 8 days: the longest period (7 daily buckets, the first starting up to 7
/// days ago) and a day to spare.
pub const RETENTION_MS: i64 = 8 * 24 * 3_600_000;

/// A 2xx answer: what counts as succeeded, as everywhere else.
fn succeeded(record: &AttemptRecord) -> bool {
    matches!(record.attempt.status_code, Some(200..=299))
}

/// One roll-up row's increments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupIncrement<'a> {
    pub account: &'a AccountId,
    pub webhook: &'a WebhookId,
    pub hour_start: Timestamp,
    pub latency_bucket: u8,
    pub succeeded: i64,
    pub failed: i64,
}

/// A batch's attempts counted per roll-up row, sorted by key.
pub fn increments(records: &[AttemptRecord]) -> Vec<RollupIncrement<'_>> {
    let mut counted: BTreeMap<(&str, &str, i64, u8), RollupIncrement> = BTreeMap::new();
    for record in records {
        let hour = hour_start(record.attempt.started_at);
        let bucket = latency_bucket(record.attempt.duration_ms);
        let key = (
            record.account_id.as_str(),
            record.webhook_id.as_str(),
            hour.as_millis(),
            bucket,
        );
        let row = counted.entry(key).or_insert_with(|| RollupIncrement {
            account: &record.account_id,
            webhook: &record.webhook_id,
            hour_start: hour,
            latency_bucket: bucket,
            succeeded: 0,
            failed: 0,
        });
        if succeeded(record) {
            row.succeeded += 1;
        } else {
            row.failed += 1;
        }
    }
    counted.into_values().collect()
}

/// What a batch does to one webhook's run of failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRunChange<'a> {
    pub account: &'a AccountId,
    pub webhook: &'a WebhookId,
    pub run: FailureRun,
}

impl FailureRunChange<'_> {
    /// Replaces whatever run was stored (else keeps a stored run going).
    pub fn restarts(&self) -> bool {
        matches!(self.run, FailureRun::Restart(_))
    }

    /// The value a webhook without a stored run gets, and a restart stores.
    pub fn failing_since(&self) -> Option<Timestamp> {
        self.run.apply(None)
    }
}

/// Attempts as (started at, succeeded).
type Outcomes = Vec<(Timestamp, bool)>;

/// A batch's changes to failure runs, one per webhook, sorted by key.
pub fn failure_runs(records: &[AttemptRecord]) -> Vec<FailureRunChange<'_>> {
    // Per (account, webhook): a record naming it, and each attempt's (start, succeeded).
    let mut attempts: BTreeMap<(&str, &str), (&AttemptRecord, Outcomes)> = BTreeMap::new();
    for record in records {
        attempts
            .entry((record.account_id.as_str(), record.webhook_id.as_str()))
            .or_insert_with(|| (record, Vec::new()))
            .1
            .push((record.attempt.started_at, succeeded(record)));
    }
    attempts
        .into_values()
        .filter_map(|(record, outcomes)| {
            Some(FailureRunChange {
                account: &record.account_id,
                webhook: &record.webhook_id,
                run: FailureRun::of_batch(&outcomes)?,
            })
        })
        .collect()
}

/// One roll-up row as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolledUp {
    pub hour_start: Timestamp,
    pub latency_bucket: u8,
    pub succeeded: u64,
    pub failed: u64,
}

/// The statistics of a period from its roll-up rows (rows outside the period are ignored).
pub fn assemble(
    period: StatsPeriod,
    now: Timestamp,
    rows: &[RolledUp],
    pending: u64,
    failing_since: Option<Timestamp>,
) -> WebhookStats {
    let starts = period.bucket_starts(now);
    let mut latencies: Vec<BTreeMap<u8, u64>> = vec![BTreeMap::new(); starts.len()];
    let mut buckets: Vec<StatsBucket> = starts
        .iter()
        .map(|start| StatsBucket {
            start: *start,
            attempts: 0,
            succeeded: 0,
            failed: 0,
            p50_ms: None,
            p99_ms: None,
        })
        .collect();
    for row in rows {
        let Some(index) = period.bucket_of(now, row.hour_start) else {
            continue;
        };
        let bucket = &mut buckets[index];
        bucket.succeeded += row.succeeded;
        bucket.failed += row.failed;
        bucket.attempts += row.succeeded + row.failed;
        *latencies[index].entry(row.latency_bucket).or_insert(0) += row.succeeded + row.failed;
    }
    for (bucket, counts) in buckets.iter_mut().zip(latencies) {
        let counts: Vec<(u8, u64)> = counts.into_iter().collect();
        bucket.p50_ms = percentile_ms(&counts, 0.50);
        bucket.p99_ms = percentile_ms(&counts, 0.99);
    }
    let attempts: u64 = buckets.iter().map(|bucket| bucket.attempts).sum();
    let succeeded: u64 = buckets.iter().map(|bucket| bucket.succeeded).sum();
    WebhookStats {
        period,
        buckets,
        success_rate: (attempts > 0).then(|| succeeded as f64 / attempts as f64),
        pending,
        failing_since,
    }
}

#[cfg(test)]
mod tests {
    use reward_core::stats::bucket_upper_ms;

    use super::*;
    use crate::testing::attempt_record as record;

    #[test]
    fn a_batch_is_counted_per_webhook_hour_and_latency_bucket() {
        let account = AccountId::generate();
        let (first, second) = (WebhookId::generate(), WebhookId::generate());
        let hour = 3_600_000;
        let records = vec![
            record(&account, &first, hour + 5, 10, 200),
            record(&account, &first, hour + 9, 10, 500),
            record(&account, &first, 2 * hour, 10, 204),
            record(&account, &second, hour + 1, 10, 410),
            record(&account, &first, hour + 7, 900, 200),
        ];
        let rows = increments(&records);
        assert_eq!(rows.len(), 4);
        let ten = rows
            .iter()
            .find(|row| {
                row.webhook == &first
                    && row.hour_start.as_millis() == hour
                    && row.latency_bucket == latency_bucket(10)
            })
            .expect("row");
        assert_eq!((ten.succeeded, ten.failed), (1, 1));
        let runs = failure_runs(&records);
        assert_eq!(runs.len(), 2);
        let second_run = runs.iter().find(|run| run.webhook == &second).expect("run");
        assert!(!second_run.restarts());
        assert_eq!(
            second_run.failing_since(),
            Some(Timestamp::from_millis(hour + 1))
        );
        let first_run = runs.iter().find(|run| run.webhook == &first).expect("run");
        assert_eq!(first_run.run, FailureRun::Restart(None));
    }

    #[test]
    fn every_bucket_is_present_and_percentiles_come_from_the_rows() {
        let now = Timestamp::parse_rfc3339("2026-12-03T10:15:00Z").expect("time");
        let current = hour_start(now);
        let rows = [
            RolledUp {
                hour_start: current,
                latency_bucket: latency_bucket(20),
                succeeded: 3,
                failed: 1,
            },
            // Older than the period: ignored.
            RolledUp {
                hour_start: current.plus_millis(-30 * 3_600_000),
                latency_bucket: 0,
                succeeded: 5,
                failed: 0,
            },
        ];
        let stats = assemble(StatsPeriod::Day, now, &rows, 2, None);
        assert_eq!(stats.buckets.len(), 24);
        let last = &stats.buckets[23];
        assert_eq!((last.attempts, last.succeeded, last.failed), (4, 3, 1));
        assert_eq!(last.p50_ms, Some(bucket_upper_ms(latency_bucket(20))));
        assert_eq!(stats.buckets[0].p99_ms, None);
        assert_eq!(stats.success_rate, Some(0.75));
        assert_eq!(stats.pending, 2);
        let empty = assemble(StatsPeriod::Week, now, &[], 0, None);
        assert_eq!(empty.buckets.len(), 7);
        assert_eq!(empty.success_rate, None);
    }
}
