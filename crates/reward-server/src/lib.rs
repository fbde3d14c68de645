//! Reward's server as a library: [`run`] serves the API and the dashboard and runs the delivery
//! worker on a listener it is given, until the shutdown token is cancelled.
//!
//! - [`config`]: the settings of SPEC §2.
//! - [`app`]: the whole application as one router (API, dashboard, metrics, reference) and the
//!   layers every request goes through.
//! - [`state`]: [`AppState`](state::AppState), what every handler shares.
//! - [`api`]: the HTTP API, one module per resource.
//! - [`dashboard`]: the server-rendered dashboard (SPEC §7), one module per page.
//! - [`operations`]: what both front ends do (issue a key, record a key's use, the webhook
//!   limit, test events, trigger events and credits with their count of emitted events), so
//!   `api` and `dashboard` never import each other.
//! - [`metrics`]: Prometheus metrics (`GET /metrics`).
//! - [`reference`]: `/openapi.json` and `/docs`, generated from the handlers.
//! - [`store`]: picks and opens the storage backend from the database URL.
//! - [`worker`]: claims, signs, sends and schedules deliveries.
//! - [`telemetry`]: request ids and one log line per request.
//! - [`traces`]: OpenTelemetry spans of requests, recorded events and delivery attempts.
//! - [`upkeep`]: retention of events and idempotency keys; disabling webhooks that only fail.

pub mod api;
pub mod app;
pub mod config;
pub mod dashboard;
mod http;
pub mod metrics;
pub mod operations;
mod outgoing;
pub mod reference;
pub mod state;
pub mod store;
mod telemetry;
pub mod traces;
pub mod upkeep;
pub mod worker;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// How long stopping waits for the last spans to be exported, at most.
const TRACE_FLUSH_ON_STOP: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves until `asked_to_stop` is cancelled and then `config.shutdown_delay` more (`/readyz`
/// answering 503 meanwhile), then lets in-flight requests finish.
pub async fn run(
    config: Config,
    listener: TcpListener,
    asked_to_stop: CancellationToken,
) -> anyhow::Result<()> {
    // What every part below stops on: `asked_to_stop`, once the delay has passed.
    let shutdown = CancellationToken::new();
    let store = store::open_for_serving(
        &config.database_url,
        &config.database_options,
        config.secret_key.as_deref(),
    )
    .await?;
    let metrics = std::sync::Arc::new(metrics::Metrics::new());
    upkeep::show_schema_versions(store.as_ref(), &metrics).await;
    let traces = match &config.traces {
        Some(settings) => traces::Traces::start(settings, metrics.trace_spans_dropped())
            .context("starting the OpenTelemetry trace export")?,
        None => traces::Traces::off(),
    };
    let state = state::AppState::new(state::Shared {
        store: store.clone(),
        target_policy: config.target_policy,
        key_use: Default::default(),
        metrics: metrics.clone(),
        rate_limiter: std::sync::Arc::new(api::limits::RateLimiter::new(config.rate_limit)),
        body_read_timeout: config.body_read_timeout,
        public_url: config.public_url.clone(),
        traces: traces.clone(),
        stopping: asked_to_stop.clone(),
    });
    let app = traces::request::with_request_spans(
        telemetry::with_request_logging(app::router(state)),
        traces.clone(),
    );
    let upkeep_settings = upkeep::Upkeep {
        every: config.upkeep_every,
        disable_after: config.disable_after,
        event_retention: config.event_retention,
        attempt_body_retention: config.attempt_body_retention,
    };
    let upkeep = tokio::spawn(upkeep::run(
        store.clone(),
        upkeep_settings,
        shutdown.clone(),
    ));
    let disabling = tokio::spawn(upkeep::run_disabling(
        store.clone(),
        upkeep_settings,
        shutdown.clone(),
    ));
    let statistics = tokio::spawn(upkeep::run_frequent_checks(
        store.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    let worker = worker::Worker {
        store: store.clone(),
        sender: worker::sender::Sender::new(config.delivery_timeout, config.target_policy)
            .context("building the delivery HTTP client")?
            .with_per_host_limit(config.per_host_connections),
        retry: config.retry,
        lease: config.lease,
        metrics,
        traces: traces.clone(),
    };
    let delivering = if config.run_worker {
        tokio::spawn(worker.run(shutdown.clone()))
    } else {
        tracing::info!("REWARD_WORKER=false: this node serves the API only");
        tokio::spawn(async {})
    };
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    tracing::info!(%address, "reward is serving");
    // Started once serving can start: a request to stop made before is seen all the same.
    tokio::spawn(stop_after_delay(
        asked_to_stop,
        config.shutdown_delay,
        shutdown.clone(),
    ));
    http::serve(listener, app, config.header_read_timeout, shutdown.clone()).await;
    shutdown.cancel();
    let _ = delivering.await;
    let _ = upkeep.await;
    let _ = disabling.await;
    let _ = statistics.await;
    // The last spans (of requests and attempts that finished while stopping) go out, or are
    // given up after a moment: a dead collector must not hold the stop.
    let _ = tokio::task::spawn_blocking(move || traces.shutdown(TRACE_FLUSH_ON_STOP)).await;
    Ok(())
}

/// Cancels `shutdown` once `stopping` was cancelled and `delay` has passed since.
async fn stop_after_delay(
    stopping: CancellationToken,
    delay: std::time::Duration,
    shutdown: CancellationToken,
) {
    stopping.cancelled().await;
    if !delay.is_zero() {
        tracing::info!(
            delay = ?delay,
            "stopping: /readyz answers 503; serving on until the delay has passed"
        );
        tokio::time::sleep(delay).await;
    }
    shutdown.cancel();
}
