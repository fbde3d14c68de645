//! `Idempotency-Key` on the API's creating `POST`s (webhooks, API keys, credits, resends, test
//! events): the answer to the first request is kept and given again to the same request.
//! (`POST /v1/trigger_events` keeps its own keys, written in the same transaction as the trigger
//! event: see `RecordTriggerEvent::idempotency`.)
//!
//! Decisions:
//!
//! - One row per account and key (`idempotent_responses`): the request's fingerprint (method,
//!   path and body), then its answer's status and body. The row is written as a *reservation*
//!   (no answer yet) before the work starts, so of two requests with one key only one does the
//!   work; the other is told the first is in progress ([`Reservation::InProgress`]: the API
//!   waits a moment for the first answer, then answers 409 `idempotency_in_progress`).
//! - Only a 2xx answer is kept. Any other outcome releases the reservation: nothing was
//!   created, and the same key may be tried again (as with trigger events).
//! - The work and the kept answer are two transactions: a crash between them leaves a
//!   reservation, which the same request takes over after [`RESERVATION_TIMEOUT_MS`] (and may
//!   then create again). Writing the answer inside every operation's own transaction would close
//!   that gap at the price of an idempotency parameter on every store method.
//! - Answers can hold secrets (a webhook's signing secret, a new API key's text): the store
//!   seals them with its `SecretCipher`, bound to the account and key ([`sealing_context`]).
//! - Rows live [`reward_core::idempotency::WINDOW_MS`] like trigger events' keys, and upkeep's
//!   `purge_expired` removes them with those.

use reward_core::idempotency;
use reward_core::ids::AccountId;
use reward_core::names::IdempotencyKey;
use reward_core::time::Timestamp;

/// How long a reservation without an answer holds its key: longer than any request takes, so
/// only a reservation left by a crash is ever taken over.
pub const RESERVATION_TIMEOUT_MS: i64 = 60_000;

/// A 2xx answer kept for its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    /// The JSON body, as sent.
    pub body: String,
}

/// What reserving a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The key is this request's: do the work, then complete or release the reservation made at
    /// this time (its token).
    Reserved(Timestamp),
    /// The same request was answered before: this is that answer.
    Replay(StoredResponse),
    /// The same request is being worked on right now.
    InProgress,
}

/// What the store holds for a key, as [`verdict`] weighs it.
#[derive(Debug, Clone)]
pub struct KeptRequest {
    pub fingerprint: String,
    pub answered: bool,
    pub created_at: Timestamp,
}

/// What a new request with a kept key gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The key is free again (its window passed, or its reservation was left by a crash).
    TakeOver,
    Replay,
    InProgress,
    /// Another request used this key: 409 `idempotency_conflict`.
    Conflict,
}

/// The one rule both backends follow for a key already kept.
pub fn verdict(kept: &KeptRequest, fingerprint: &str, now: Timestamp) -> Verdict {
    if kept.created_at <= idempotency::forgotten_at_or_before(now) {
        Verdict::TakeOver
    } else if kept.fingerprint != fingerprint {
        Verdict::Conflict
    } else if kept.answered {
        Verdict::Replay
    } else if kept.created_at <= reservation_abandoned_at_or_before(now) {
        Verdict::TakeOver
    } else {
        Verdict::InProgress
    }
}

/// The latest reservation time that counts as abandoned at `now`.
pub fn reservation_abandoned_at_or_before(now: Timestamp) -> Timestamp {
    now.plus_millis(-RESERVATION_TIMEOUT_MS)
}

/// What a kept answer is sealed to: it opens only in its own row.
pub fn sealing_context(account: &AccountId, key: &IdempotencyKey) -> String {
    sealing_context_of(account.as_str(), key.as_str())
}

/// [`sealing_context`] from a row's stored `account_id` and `key` (copying rows as they are).
pub(crate) fn sealing_context_of(account: &str, key: &str) -> String {
    format!("idempotent:{account}/{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(answered: bool, created_at: i64) -> KeptRequest {
        KeptRequest {
            fingerprint: "f".into(),
            answered,
            created_at: Timestamp::from_millis(created_at),
        }
    }

    #[test]
    fn a_kept_key_replays_conflicts_waits_or_is_taken_over() {
        let now = Timestamp::from_millis(1_000_000_000);
        let at = |ago: i64| 1_000_000_000 - ago;
        assert_eq!(verdict(&kept(true, at(5)), "f", now), Verdict::Replay);
        assert_eq!(verdict(&kept(true, at(5)), "g", now), Verdict::Conflict);
        assert_eq!(verdict(&kept(false, at(5)), "f", now), Verdict::InProgress);
        assert_eq!(verdict(&kept(false, at(5)), "g", now), Verdict::Conflict);
        let abandoned = at(RESERVATION_TIMEOUT_MS);
        assert_eq!(
            verdict(&kept(false, abandoned), "f", now),
            Verdict::TakeOver
        );
        assert_eq!(
            verdict(&kept(false, abandoned), "g", now),
            Verdict::Conflict
        );
        let expired = at(idempotency::WINDOW_MS);
        assert_eq!(verdict(&kept(true, expired), "g", now), Verdict::TakeOver);
    }
}
