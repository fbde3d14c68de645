//! The settings `reward serve` runs with (SPEC §2). The CLI fills them from flags and environment
//! variables; tests build them directly.

use std::time::Duration;

use reward_core::names::TargetPolicy;
use reward_core::retry::RetryPolicy;

#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://...` (default) or `postgres://...`.
    pub database_url: String,
    /// PostgreSQL only: where to `LISTEN`, and whether statements are prepared (PgBouncer).
    pub database_options: crate::store::ConnectOptions,
    pub retry: RetryPolicy,
    /// One attempt's timeout.
    pub delivery_timeout: Duration,
    pub target_policy: TargetPolicy,
    /// How long a claimed delivery is reserved for the worker that claimed it.
    pub lease: Duration,
    /// Whether this process delivers (false: an API-only node).
    pub run_worker: bool,
    /// API requests per second per account, bursts of twice that; 0 turns the limit off.
    pub rate_limit: u32,
    /// Connections a worker opens to one target host at once, at most.
    pub per_host_connections: usize,
    /// Longest wait for a request's headers (slow-client protection).
    pub header_read_timeout: Duration,
    /// Longest wait for a request's whole body (slow-client protection).
    pub body_read_timeout: Duration,
    /// A webhook whose every delivery attempt failed for this long is disabled.
    pub disable_after: Duration,
    /// `REWARD_SHUTDOWN_DELAY`: once asked to stop, how long to go on serving with `/readyz`
    /// answering 503 (a load balancer's time to stop sending requests).
    pub shutdown_delay: Duration,
    /// How often upkeep (retention, disabling failing webhooks) runs; short in tests.
    pub upkeep_every: Duration,
    /// `REWARD_EVENT_RETENTION`: events (with their finished deliveries and attempts) older
    /// than this are purged.
    pub event_retention: Duration,
    /// `REWARD_ATTEMPT_BODY_RETENTION`: attempts older than this lose their response bodies.
    pub attempt_body_retention: Duration,
    /// `REWARD_SECRET_KEY`: base64 of the 32-byte key sealing webhook secrets at rest. None: a
    /// key file beside the SQLite database (PostgreSQL refuses to start without it).
    pub secret_key: Option<String>,
    /// `REWARD_PUBLIC_URL`: the address people reach this server at, e.g.
    /// `https://rewards.example.com`. https:// marks the dashboard's cookies `Secure` whatever a
    /// request says; None falls back to a rule for local development (see
    /// `dashboard::session::CookieSecurity`).
    pub public_url: Option<PublicUrl>,
    /// Where OpenTelemetry traces go (the `OTEL_*` variables); None: tracing is off.
    pub traces: Option<crate::traces::TraceSettings>,
}

/// `REWARD_PUBLIC_URL`: an absolute `http://` or `https://` URL naming the root this server is
/// reached at (Reward serves at the root, so its path is `/`), without credentials, query or
/// fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(url::Url);

impl PublicUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text.trim())
            .map_err(|error| format!("not an absolute URL ({error})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must start with https:// (or http://)".to_owned());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must name a host".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("may not carry a user name or password".to_owned());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("may not carry a query or a fragment".to_owned());
        }
        if url.path() != "/" {
            return Err("must be the server's root: Reward serves at / (no path)".to_owned());
        }
        Ok(Self(url))
    }

    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Config {
    pub const DEFAULT_DATABASE_URL: &'static str = "sqlite://reward-data/reward.db";

    /// The defaults of SPEC §2 with another database.
    pub fn with_database_url(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            database_options: crate::store::ConnectOptions::default(),
            retry: RetryPolicy {
                max_retries: 5,
                base: Duration::from_secs(30),
                factor: 6.0,
            },
            delivery_timeout: Duration::from_secs(15),
            target_policy: TargetPolicy::SecureOnly,
            lease: Duration::from_secs(30),
            run_worker: true,
            rate_limit: 100,
            per_host_connections: crate::worker::sender::DEFAULT_PER_HOST_CONNECTIONS,
            header_read_timeout: crate::api::limits::HEADER_READ_TIMEOUT,
            body_read_timeout: crate::api::limits::BODY_READ_TIMEOUT,
            disable_after: crate::upkeep::DEFAULT_DISABLE_AFTER,
            shutdown_delay: Duration::ZERO,
            upkeep_every: crate::upkeep::DEFAULT_EVERY,
            event_retention: crate::upkeep::DEFAULT_EVENT_RETENTION,
            attempt_body_retention: crate::upkeep::DEFAULT_ATTEMPT_BODY_RETENTION,
            secret_key: None,
            public_url: None,
            traces: None,
        }
    }
}
