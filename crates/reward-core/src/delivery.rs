//! What a delivery becomes after an attempt: a pure state machine over the retry policy.
//!
//! - 2xx: succeeded.
//! - A manual attempt (retry by hand) that fails leaves the delivery as it was: a failed delivery
//!   stays failed with no new schedule, a pending one keeps its schedule.
//! - A scheduled attempt that fails is retried per the policy, or fails for good.
//! - 410 Gone: the endpoint asked never to be called again; the delivery fails and the webhook is
//!   disabled.

use std::time::Duration;

use crate::retry::{AfterFailure, RetryPolicy};
use crate::time::Timestamp;

/// How an attempt ended, as far as the schedule cares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttemptResult {
    /// A 2xx answer within the timeout.
    Delivered,
    /// 410 Gone.
    Gone,
    /// Anything else: another status, a redirect, a timeout, a connection error, a refused target.
    Failed { retry_after: Option<Duration> },
}

/// The delivery's state when the attempt was claimed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttemptContext {
    /// A manual retry asked for this attempt.
    pub manual: bool,
    /// The delivery was `failed` when claimed (only manual attempts reach failed deliveries).
    pub was_failed: bool,
    /// Scheduled attempts made so far in this schedule, this one excluded.
    pub schedule_attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NextState {
    Succeeded,
    /// Pending, next attempt at this time; the attempt counted in the schedule.
    RetryAt(Timestamp),
    /// Failed for good (retries exhausted, or 410 Gone).
    Failed,
    /// A manual attempt failed: status and schedule stay as they were.
    Unchanged,
}

/// Decides the delivery's next state. `unit_random` in [0, 1) drives the jitter.
pub fn next_state(
    policy: &RetryPolicy,
    context: AttemptContext,
    result: AttemptResult,
    now: Timestamp,
    unit_random: f64,
) -> NextState {
    match result {
        AttemptResult::Delivered => NextState::Succeeded,
        AttemptResult::Gone => NextState::Failed,
        AttemptResult::Failed { .. } if context.manual => {
            if context.was_failed {
                NextState::Failed
            } else {
                NextState::Unchanged
            }
        }
        AttemptResult::Failed { retry_after } => {
            let attempts_made = context.schedule_attempts + 1;
            match policy.after_failure(attempts_made, unit_random, retry_after) {
                AfterFailure::RetryIn(delay) => {
                    let millis = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
                    NextState::RetryAt(now.plus_millis(millis))
                }
                AfterFailure::GiveUp => NextState::Failed,
            }
        }
    }
}

/// Whether the attempt counts toward the retry schedule.
pub fn counts_in_schedule(context: AttemptContext) -> bool {
    !context.manual
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 5,
            base: Duration::from_secs(30),
            factor: 6.0,
        }
    }

    fn scheduled(schedule_attempts: u32) -> AttemptContext {
        AttemptContext {
            manual: false,
            was_failed: false,
            schedule_attempts,
        }
    }

    const FAILED: AttemptResult = AttemptResult::Failed { retry_after: None };

    #[test]
    fn success_always_succeeds() {
        let now = Timestamp::from_millis(0);
        assert_eq!(
            next_state(&policy(), scheduled(3), AttemptResult::Delivered, now, 0.5),
            NextState::Succeeded
        );
    }

    #[test]
    fn scheduled_failures_walk_the_schedule_then_fail() {
        let now = Timestamp::from_millis(1_000_000);
        let expected_seconds = [30, 180, 1080, 6480, 38880];
        for (made, seconds) in (0..5).zip(expected_seconds) {
            let next = next_state(&policy(), scheduled(made), FAILED, now, 0.5);
            assert_eq!(next, NextState::RetryAt(now.plus_millis(seconds * 1000)));
        }
        assert_eq!(
            next_state(&policy(), scheduled(5), FAILED, now, 0.5),
            NextState::Failed
        );
    }

    #[test]
    fn manual_failures_change_nothing() {
        let now = Timestamp::from_millis(0);
        let on_pending = AttemptContext {
            manual: true,
            was_failed: false,
            schedule_attempts: 2,
        };
        let on_failed = AttemptContext {
            manual: true,
            was_failed: true,
            schedule_attempts: 6,
        };
        assert_eq!(
            next_state(&policy(), on_pending, FAILED, now, 0.5),
            NextState::Unchanged
        );
        assert_eq!(
            next_state(&policy(), on_failed, FAILED, now, 0.5),
            NextState::Failed
        );
        assert_eq!(
            next_state(&policy(), on_failed, AttemptResult::Delivered, now, 0.5),
            NextState::Succeeded
        );
        assert!(!counts_in_schedule(on_pending));
    }

    #[test]
    fn gone_fails_at_once() {
        let now = Timestamp::from_millis(0);
        assert_eq!(
            next_state(&policy(), scheduled(0), AttemptResult::Gone, now, 0.5),
            NextState::Failed
        );
    }

    #[test]
    fn retry_after_stretches_the_delay() {
        let now = Timestamp::from_millis(0);
        let asked = AttemptResult::Failed {
            retry_after: Some(Duration::from_secs(600)),
        };
        assert_eq!(
            next_state(&policy(), scheduled(0), asked, now, 0.5),
            NextState::RetryAt(now.plus_millis(600_000))
        );
    }
}
