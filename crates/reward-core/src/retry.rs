//! The retry schedule, as pure functions: the k-th retry waits base × factor^(k-1), ±10% jitter,
//! and a delivery gives up after `max_retries` retries.

use std::time::Duration;

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (`REWARD_MAX_RETRIES`).
    pub max_retries: u32,
    /// Delay before the first retry (`REWARD_RETRY_BASE`).
    pub base: Duration,
    /// Growth of each later delay (`REWARD_RETRY_FACTOR`).
    pub factor: f64,
}

/// Longest delay a schedule or a `Retry-After` may ask for.
pub const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// The jitter's half-width, as a fraction of the delay.
pub const JITTER: f64 = 0.10;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterFailure {
    RetryIn(Duration),
    GiveUp,
}

impl RetryPolicy {
    /// The nominal delay before retry number `k` (1-based), without jitter.
    pub fn nominal_delay(&self, k: u32) -> Duration {
        let exponent = k.saturating_sub(1) as i32;
        let seconds = self.base.as_secs_f64() * self.factor.powi(exponent);
        if !seconds.is_finite() || seconds >= MAX_DELAY.as_secs_f64() {
            return MAX_DELAY;
        }
        Duration::from_secs_f64(seconds.max(0.0))
    }

    /// The decision after `attempts_made` attempts (the one that just failed included).
    /// `unit_random` is a uniform sample in [0, 1) for the jitter; `retry_after` is the
    /// receiver's own request, honoured when longer than the schedule (capped at one hour).
    pub fn after_failure(
        &self,
        attempts_made: u32,
        unit_random: f64,
        retry_after: Option<Duration>,
    ) -> AfterFailure {
        let retry_number = attempts_made;
        if retry_number > self.max_retries {
            return AfterFailure::GiveUp;
        }
        let nominal = self.nominal_delay(retry_number);
        let jittered = apply_jitter(nominal, unit_random);
        let delay = match retry_after {
            Some(asked) if asked.min(MAX_RETRY_AFTER) > jittered => asked.min(MAX_RETRY_AFTER),
            _ => jittered,
        };
        AfterFailure::RetryIn(delay)
    }
}

/// Spreads `delay` uniformly over ±10%, so retries of many deliveries failed together do not
/// all come back at the same instant.
pub fn apply_jitter(delay: Duration, unit_random: f64) -> Duration {
    let unit = unit_random.clamp(0.0, 1.0);
    let scale = 1.0 - JITTER + 2.0 * JITTER * unit;
    Duration::from_secs_f64(delay.as_secs_f64() * scale)
}

/// Parses a `Retry-After` header: delay-seconds only (an HTTP date is ignored: clocks differ).
/// delay-seconds is `1*DIGIT` (RFC 9110): no sign, no fraction; a number too large to hold is
/// the longest delay, which the caller caps anyway.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let digits = value.trim_matches([' ', '\t']);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let seconds = digits.parse::<u64>().unwrap_or(u64::MAX);
    Some(Duration::from_secs(seconds))
}

/// Parses a duration setting such as `30s`, `250ms`, `2h` or `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|error| format!("'{text}' is not a duration like 30s, 250ms or 2h ({error})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 5,
            base: Duration::from_secs(30),
            factor: 6.0,
        }
    }

    #[test]
    fn default_schedule_matches_the_spec() {
        let policy = default_policy();
        let expected = [30, 180, 1080, 6480, 38880];
        for (k, seconds) in (1..=5).zip(expected) {
            assert_eq!(policy.nominal_delay(k), Duration::from_secs(seconds));
        }
    }

    #[test]
    fn gives_up_after_max_retries() {
        let policy = default_policy();
        for attempts in 1..=5 {
            assert!(matches!(
                policy.after_failure(attempts, 0.5, None),
                AfterFailure::RetryIn(_)
            ));
        }
        assert_eq!(policy.after_failure(6, 0.5, None), AfterFailure::GiveUp);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let base = Duration::from_secs(100);
        assert_eq!(apply_jitter(base, 0.0), Duration::from_secs(90));
        assert_eq!(apply_jitter(base, 0.5), Duration::from_secs(100));
        let high = apply_jitter(base, 0.999_999);
        assert!(high <= Duration::from_secs(110) && high > Duration::from_secs(109));
    }

    #[test]
    fn retry_after_is_honoured_when_longer_and_capped() {
        let policy = default_policy();
        let longer = policy.after_failure(1, 0.5, Some(Duration::from_secs(120)));
        assert_eq!(longer, AfterFailure::RetryIn(Duration::from_secs(120)));
        let shorter = policy.after_failure(1, 0.5, Some(Duration::from_secs(1)));
        assert_eq!(shorter, AfterFailure::RetryIn(Duration::from_secs(30)));
        let huge = policy.after_failure(1, 0.5, Some(Duration::from_secs(86_400)));
        assert_eq!(huge, AfterFailure::RetryIn(MAX_RETRY_AFTER));
    }

    #[test]
    fn huge_factors_saturate() {
        let policy = RetryPolicy {
            factor: 1e12,
            ..default_policy()
        };
        assert_eq!(policy.nominal_delay(5), MAX_DELAY);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("abc").is_err());
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
