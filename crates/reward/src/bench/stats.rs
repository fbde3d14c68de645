//! Percentiles and rates, as pure functions.

use std::time::Duration;

/// Latency percentiles of a sample.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The nearest-rank percentiles of `samples` (sorted in place).
pub fn percentiles(samples: &mut [Duration]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    samples.sort_unstable();
    let at = |p: f64| {
        let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1].as_secs_f64() * 1000.0
    };
    Percentiles {
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    }
}

/// Items per second over a span (0 for an empty span).
pub fn rate(items: usize, span: Duration) -> f64 {
    if span.is_zero() {
        return 0.0;
    }
    items as f64 / span.as_secs_f64()
}

/// The server's resident memory at one moment of a run.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct RssSample {
    pub second: u64,
    pub rss: u64,
}

/// Mean memory over the run's last minute ÷ mean over its second minute (the first is warm-up:
/// pools, caches and buffers filling). About 1 means flat; `None` when the run is shorter than
/// two minutes and a bit.
pub fn memory_growth(samples: &[RssSample]) -> Option<f64> {
    let end = samples.last()?.second;
    if end < 150 {
        return None;
    }
    let mean = |from: u64, to: u64| {
        let window: Vec<u64> = samples
            .iter()
            .filter(|sample| (from..to).contains(&sample.second))
            .map(|sample| sample.rss)
            .collect();
        (!window.is_empty()).then(|| window.iter().sum::<u64>() as f64 / window.len() as f64)
    };
    let second_minute = mean(60, 120)?;
    let last_minute = mean(end.saturating_sub(60), end + 1)?;
    Some(last_minute / second_minute)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = percentiles(&mut samples);
        assert_eq!(p.p50_ms, 50.0);
        assert_eq!(p.p90_ms, 90.0);
        assert_eq!(p.p99_ms, 99.0);
        assert_eq!(p.max_ms, 100.0);
        assert_eq!(percentiles(&mut []).max_ms, 0.0);
        assert_eq!(rate(10, Duration::from_secs(2)), 5.0);
    }

    #[test]
    fn memory_growth_compares_the_last_minute_with_the_second() {
        let flat: Vec<RssSample> = (0..=60)
            .map(|n| RssSample {
                second: n * 5,
                rss: if n < 12 { 10 } else { 40 },
            })
            .collect();
        assert_eq!(memory_growth(&flat), Some(1.0));
        let growing: Vec<RssSample> = (0..=60)
            .map(|n| RssSample {
                second: n * 5,
                rss: 100 + n,
            })
            .collect();
        let growth = memory_growth(&growing).expect("long enough");
        assert!(growth > 1.3, "{growth}");
        assert_eq!(memory_growth(&growing[..20]), None);
    }
}
