//! The settings `reward serve` runs with (SPEC §2). The CLI fills them from flags and environment
//! variables; tests build them directly.

use std::time::Duration;

use reward_core::names::TargetPolicy;
use reward_core::retry::RetryPolicy;

#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://...` (default) or `postgres://...`.
    pub database_url: String,
    pub retry: RetryPolicy,
    /// One attempt's timeout.
    pub delivery_timeout: Duration,
    pub target_policy: TargetPolicy,
    /// How long a claimed delivery is reserved for the worker that claimed it.
    pub lease: Duration,
    /// Whether this process delivers (false: an API-only node).
    pub run_worker: bool,
}

impl Config {
    pub const DEFAULT_DATABASE_URL: &'static str = "sqlite://reward-data/reward.db";

    /// The defaults of SPEC §2 with another database.
    pub fn with_database_url(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            retry: RetryPolicy {
                max_retries: 5,
                base: Duration::from_secs(30),
                factor: 6.0,
            },
            delivery_timeout: Duration::from_secs(15),
            target_policy: TargetPolicy::SecureOnly,
            lease: Duration::from_secs(30),
            run_worker: true,
        }
    }
}
