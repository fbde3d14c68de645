//! `Idempotency-Key`: how long a key is remembered, in one place for both stores and upkeep.

/// How long an `Idempotency-Key` is remembered (24 h): a replay within it answers the first
/// response; after it the key may be used again, and upkeep deletes it.
pub const WINDOW_MS: i64 = 24 * 3600 * 1000;
