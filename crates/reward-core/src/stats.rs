//! A webhook's delivery statistics as plain maths: the periods and their buckets, latencies in
//! log-spaced buckets and percentiles read from them, and the run of failures an endpoint is in.
//!
//! The store keeps roll-ups (attempts per webhook, hour and latency bucket) written when attempts
//! are recorded, so asking for statistics never scans the attempts themselves. Everything here
//! decides what those rows hold and how they are read back.
//!
//! Latency buckets: bucket `b` holds durations up to `2^(b/4)` ms (four buckets per doubling),
//! so a percentile read from them is the bucket's upper bound: never below the true value, and at
//! most 19% (2^(1/4)) above it, rounded down to whole milliseconds.

use crate::time::Timestamp;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Latency buckets; the last one also holds every longer duration (2^20 ms is over 17 minutes,
/// beyond any attempt's timeout).
pub const LATENCY_BUCKETS: u8 = 81;

/// The bucket a duration falls in: the first whose upper bound is at least `duration_ms`.
pub fn latency_bucket(duration_ms: u64) -> u8 {
    let last = LATENCY_BUCKETS - 1;
    if duration_ms > bucket_upper_ms(last) {
        return last;
    }
    // The logarithm lands on the bucket or next to it; the bounds themselves settle it.
    let estimate = (4.0 * (duration_ms.max(1) as f64).log2()).ceil();
    let mut bucket = estimate.clamp(0.0, f64::from(last)) as u8;
    while bucket > 0 && bucket_upper_ms(bucket - 1) >= duration_ms {
        bucket -= 1;
    }
    while bucket < last && bucket_upper_ms(bucket) < duration_ms {
        bucket += 1;
    }
    bucket
}

/// The longest duration, in whole milliseconds, that bucket `bucket` holds: `floor(2^(b/4))`.
pub fn bucket_upper_ms(bucket: u8) -> u64 {
    let exact = 2f64.powf(f64::from(bucket) / 4.0);
    // Exact powers of two come out exact in f64; the others are irrational and nowhere near an
    // integer, so the floor is stable.
    exact.floor() as u64
}

/// The `quantile` (0..1, nearest rank) of the durations counted per latency bucket, as the upper
/// bound of the bucket it falls in; `None` when nothing was counted.
pub fn percentile_ms(counts: &[(u8, u64)], quantile: f64) -> Option<u64> {
    let mut sorted: Vec<(u8, u64)> = counts.iter().copied().filter(|(_, n)| *n > 0).collect();
    sorted.sort_unstable();
    let total: u64 = sorted.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let rank = ((quantile * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (bucket, n) in sorted {
        seen += n;
        if seen >= rank {
            return Some(bucket_upper_ms(bucket));
        }
    }
    None
}

/// The hour (UTC) a time falls in: the key of its roll-up row.
pub fn hour_start(time: Timestamp) -> Timestamp {
    Timestamp::from_millis(time.as_millis().div_euclid(HOUR_MS) * HOUR_MS)
}

/// Which statistics are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsPeriod {
    /// 24 hourly buckets: the current hour (UTC) and the 23 before it.
    Day,
    /// 7 daily buckets: the current day (UTC) and the 6 before it.
    Week,
}

impl StatsPeriod {
    pub const ALL: [StatsPeriod; 2] = [StatsPeriod::Day, StatsPeriod::Week];

    pub fn as_str(self) -> &'static str {
        match self {
            StatsPeriod::Day => "24h",
            StatsPeriod::Week => "7d",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|period| period.as_str() == text)
    }

    /// How long one bucket is, in milliseconds.
    pub fn bucket_ms(self) -> i64 {
        match self {
            StatsPeriod::Day => HOUR_MS,
            StatsPeriod::Week => DAY_MS,
        }
    }

    pub fn bucket_count(self) -> usize {
        match self {
            StatsPeriod::Day => 24,
            StatsPeriod::Week => 7,
        }
    }

    /// Each bucket's start, oldest first; the last is the bucket `now` falls in.
    pub fn bucket_starts(self, now: Timestamp) -> Vec<Timestamp> {
        let size = self.bucket_ms();
        let current = now.as_millis().div_euclid(size) * size;
        (0..self.bucket_count())
            .rev()
            .map(|back| Timestamp::from_millis(current - back as i64 * size))
            .collect()
    }

    /// The start of the oldest bucket: roll-ups from then on are read.
    pub fn since(self, now: Timestamp) -> Timestamp {
        self.bucket_starts(now).first().copied().unwrap_or(now)
    }

    /// The index of the bucket `time` falls in, when it falls in one.
    pub fn bucket_of(self, now: Timestamp, time: Timestamp) -> Option<usize> {
        let since = self.since(now).as_millis();
        let offset = time.as_millis().checked_sub(since)?;
        if offset < 0 {
            return None;
        }
        let index = usize::try_from(offset / self.bucket_ms()).ok()?;
        (index < self.bucket_count()).then_some(index)
    }
}

/// What a batch of one webhook's attempts does to its current run of failures (`failing_since`:
/// when the failed attempts since its last success began).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureRun {
    /// The batch ended the run, or ended with a new one that began at this time (`None`: the
    /// batch's last attempt succeeded).
    Restart(Option<Timestamp>),
    /// Every attempt failed: a run under way goes on, else one begins at this time.
    Continue(Timestamp),
}

impl FailureRun {
    /// From one webhook's attempts in a batch, as (started at, succeeded); taken in start order.
    /// `None` for no attempts.
    pub fn of_batch(attempts: &[(Timestamp, bool)]) -> Option<Self> {
        let mut ordered = attempts.to_vec();
        ordered.sort_by_key(|(started_at, _)| *started_at);
        let first = ordered.first()?;
        let last_success = ordered.iter().rposition(|(_, succeeded)| *succeeded);
        Some(match last_success {
            None => FailureRun::Continue(first.0),
            Some(index) => FailureRun::Restart(ordered.get(index + 1).map(|(at, _)| *at)),
        })
    }

    /// The run after this batch, given the one before it.
    pub fn apply(self, before: Option<Timestamp>) -> Option<Timestamp> {
        match self {
            FailureRun::Restart(since) => since,
            FailureRun::Continue(first_failure) => Some(before.unwrap_or(first_failure)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log_spaced_and_hold_their_bound() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(1), 0);
        assert_eq!(latency_bucket(2), 4);
        assert_eq!(bucket_upper_ms(4), 2);
        assert_eq!(bucket_upper_ms(40), 1024);
        assert_eq!(latency_bucket(1024), 40);
        assert_eq!(latency_bucket(1025), 41);
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
        for duration in 1..20_000u64 {
            let bucket = latency_bucket(duration);
            let upper = bucket_upper_ms(bucket);
            assert!(upper >= duration, "{duration} ms within its bucket");
            // The resolution the docs promise: at most 2^(1/4) above, in whole milliseconds.
            assert!(
                (upper as f64) <= (duration as f64) * 2f64.powf(0.25) + 1.0,
                "{duration} ms reported as {upper}"
            );
            if bucket > 0 {
                assert!(bucket_upper_ms(bucket - 1) < duration);
            }
        }
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        assert_eq!(percentile_ms(&[], 0.5), None);
        assert_eq!(percentile_ms(&[(7, 0)], 0.5), None);
        let ten = latency_bucket(10);
        let thousand = latency_bucket(1000);
        // 98 fast attempts and 2 slow ones: p50 fast, p99 slow.
        let counts = [(thousand, 2), (ten, 98)];
        assert_eq!(percentile_ms(&counts, 0.5), Some(bucket_upper_ms(ten)));
        assert_eq!(percentile_ms(&counts, 0.98), Some(bucket_upper_ms(ten)));
        assert_eq!(
            percentile_ms(&counts, 0.99),
            Some(bucket_upper_ms(thousand))
        );
        assert_eq!(percentile_ms(&[(ten, 1)], 0.99), Some(bucket_upper_ms(ten)));
    }

    #[test]
    fn periods_cover_whole_utc_buckets_ending_with_the_current_one() {
        let now = Timestamp::parse_rfc3339("2026-12-03T10:15:00Z").expect("time");
        let hours = StatsPeriod::Day.bucket_starts(now);
        assert_eq!(hours.len(), 24);
        assert_eq!(hours[23].to_rfc3339(), "2026-12-03T10:00:00.000Z");
        assert_eq!(hours[0].to_rfc3339(), "2026-12-02T11:00:00.000Z");
        let days = StatsPeriod::Week.bucket_starts(now);
        assert_eq!(days.len(), 7);
        assert_eq!(days[6].to_rfc3339(), "2026-12-03T00:00:00.000Z");
        assert_eq!(days[0].to_rfc3339(), "2026-11-27T00:00:00.000Z");
        assert_eq!(StatsPeriod::Week.bucket_of(now, now), Some(6));
        assert_eq!(StatsPeriod::Week.bucket_of(now, days[0]), Some(0));
        assert_eq!(
            StatsPeriod::Week.bucket_of(now, days[0].plus_millis(-1)),
            None
        );
        assert_eq!(StatsPeriod::Day.bucket_of(now, hours[0]), Some(0));
        assert_eq!(hour_start(now).to_rfc3339(), "2026-12-03T10:00:00.000Z");
        assert_eq!(StatsPeriod::parse("24h"), Some(StatsPeriod::Day));
        assert_eq!(StatsPeriod::parse("7d"), Some(StatsPeriod::Week));
        assert_eq!(StatsPeriod::parse("1h"), None);
    }

    #[test]
    fn failure_runs_start_at_the_first_failure_after_the_last_success() {
        let t = Timestamp::from_millis;
        assert_eq!(FailureRun::of_batch(&[]), None);
        let failing = FailureRun::of_batch(&[(t(5), false), (t(3), false)]).expect("run");
        assert_eq!(failing, FailureRun::Continue(t(3)));
        assert_eq!(failing.apply(None), Some(t(3)));
        assert_eq!(failing.apply(Some(t(1))), Some(t(1)));
        let recovered = FailureRun::of_batch(&[(t(3), false), (t(4), true)]).expect("run");
        assert_eq!(recovered.apply(Some(t(1))), None);
        let relapsed =
            FailureRun::of_batch(&[(t(3), true), (t(4), false), (t(6), false)]).expect("run");
        assert_eq!(relapsed.apply(Some(t(1))), Some(t(4)));
    }
}
