//! Reward's server as a library: [`run`] serves the API and runs the delivery worker (and, as it
//! lands, the dashboard) on a listener it is given, until the shutdown token is cancelled.
//!
//! - [`config`]: the settings of SPEC §2.
//! - [`api`]: the HTTP API, one module per resource.
//! - [`store`]: picks and opens the storage backend from the database URL.
//! - [`worker`]: claims, signs, sends and schedules deliveries.
//! - [`upkeep`]: retention of events and idempotency keys.

pub mod api;
pub mod config;
pub mod store;
mod upkeep;
pub mod worker;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

pub use config::Config;

/// Serves until `shutdown` is cancelled, then lets in-flight requests finish.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = store::open(&config.database_url)?;
    let state = api::AppState {
        store: store.clone(),
        target_policy: config.target_policy,
    };
    let app = api::router(state).layer(TraceLayer::new_for_http());
    let upkeep = tokio::spawn(upkeep::run(store.clone(), shutdown.clone()));
    let worker = worker::Worker {
        store: store.clone(),
        sender: worker::sender::Sender::new(config.delivery_timeout, config.target_policy)
            .context("building the delivery HTTP client")?,
        retry: config.retry,
        lease: config.lease,
    };
    let delivering = tokio::spawn(worker.run(shutdown.clone()));
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    tracing::info!(%address, "reward is serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .context("serving HTTP")?;
    shutdown.cancel();
    let _ = delivering.await;
    let _ = upkeep.await;
    Ok(())
}
