//! `Idempotency-Key`: how long a key is remembered, in one place for both stores and upkeep.

use crate::time::Timestamp;

/// How long an `Idempotency-Key` is remembered (24 h): a replay within it answers the first
/// response; after it the key may be used again, and upkeep deletes it.
pub const WINDOW_MS: i64 = 24 * 3600 * 1000;

/// The latest creation time of a key that is forgotten at `now`: a key created then or earlier
/// has lived its whole window, so a request with it is recorded anew (and takes the key over).
pub fn forgotten_at_or_before(now: Timestamp) -> Timestamp {
    now.plus_millis(-WINDOW_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_forgotten_exactly_one_window_after_it_was_made() {
        let made = Timestamp::from_millis(1_734_190_158_821);
        let remembered = |now: Timestamp| made > forgotten_at_or_before(now);
        assert!(remembered(made));
        assert!(remembered(made.plus_millis(WINDOW_MS - 1)));
        assert!(!remembered(made.plus_millis(WINDOW_MS)));
    }
}
