use reward_core::credit;
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
    /// A webhook named in a request body (not the path) is not one of the account's.
    #[error("webhook {0} does not exist")]
    UnknownWebhook(String),
    /// The webhook is disabled, and what was asked would deliver to it now.
    #[error("webhook {0} is disabled")]
    WebhookDisabled(String),
    #[error("the trigger's rule would issue more than 10^12 points for this value")]
    TooManyPoints,
    #[error("the user's balance would pass 2^53 - 1")]
    BalanceOverflow,
    #[error("the pagination cursor is not valid")]
    InvalidCursor,
    /// A rotation named the secret it replaces ([`reward_core::signing::WebhookSecret::version`]),
    /// and that secret is no longer current: nothing was rotated.
    #[error("the webhook's secret is no longer the one named")]
    SecretChanged,
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Internal(String),
}

impl From<credit::TooManyPoints> for StoreError {
    fn from(_: credit::TooManyPoints) -> Self {
        StoreError::TooManyPoints
    }
}

impl From<credit::BalanceOverflow> for StoreError {
    fn from(_: credit::BalanceOverflow) -> Self {
        StoreError::BalanceOverflow
    }
}
