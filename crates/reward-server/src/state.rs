//! [`AppState`]: what every handler of the API and the dashboard shares. It lives beside both
//! front ends, not inside either, so neither has to import the other to reach it.

use std::sync::Arc;
use std::time::Duration;

use reward_core::names::TargetPolicy;
use reward_store::Store;

use crate::api::limits::RateLimiter;
use crate::config::PublicUrl;
use crate::metrics::Metrics;
use crate::operations::KeyUseThrottle;

/// What every handler shares. axum clones the state for every request it routes, so this is one
/// reference count: cloning and dropping the fields one by one showed in a profile of the
/// deliver bench (1.4% of the server's samples).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct Shared {
    pub store: Arc<dyn Store>,
    /// Whether webhook URLs must be public `https://` targets.
    pub target_policy: TargetPolicy,
    /// Keeps "last used" writes of API keys to one per key per minute.
    pub key_use: Arc<KeyUseThrottle>,
    /// Counters and histograms behind `GET /metrics`.
    pub metrics: Arc<Metrics>,
    /// The per-account request rate limit (`REWARD_RATE_LIMIT`).
    pub rate_limiter: Arc<RateLimiter>,
    /// How long a request's body may take to arrive, at most.
    pub body_read_timeout: Duration,
    /// `REWARD_PUBLIC_URL`: decides whether the dashboard's cookies are `Secure`.
    pub public_url: Option<PublicUrl>,
    /// OpenTelemetry spans (off unless configured): the events a request records join its trace.
    pub traces: crate::traces::Traces,
    /// Cancelled once the server was asked to stop: `/readyz` answers 503 from then on, while
    /// everything else goes on for `REWARD_SHUTDOWN_DELAY`.
    pub stopping: tokio_util::sync::CancellationToken,
}
