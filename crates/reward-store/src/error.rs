use thiserror::Error;

/// What a store operation can fail with. The first group is the caller's doing and maps to a
/// 4xx; the last two are the store's trouble and map to 503 / 500.
#[derive(Debug, Clone, Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("trigger {0} does not exist")]
    UnknownTrigger(String),
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyConflict,
    #[error("the user's balance would exceed the largest number Reward can hold")]
    BalanceOverflow,
    #[error("the pagination cursor is not valid")]
    InvalidCursor,
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Internal(String),
}
