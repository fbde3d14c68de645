//! Reward's server as a library: [`run`] serves the API (and, as they land, the dashboard and the
//! delivery workers) on a listener it is given, until the shutdown token is cancelled.
//!
//! - [`config`]: the settings of SPEC §2.
//! - [`api`]: the HTTP API, one module per resource.
//! - [`store`]: picks and opens the storage backend from the database URL.
//! - [`upkeep`]: retention of events and idempotency keys.

pub mod api;
pub mod config;
pub mod store;
mod upkeep;

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
    let opened = store::open(&config.database_url)?;
    let state = api::AppState {
        store: opened.store.clone(),
        target_policy: config.target_policy,
    };
    let app = api::router(state).layer(TraceLayer::new_for_http());
    let upkeep = tokio::spawn(upkeep::run(opened.store.clone(), shutdown.clone()));
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    tracing::info!(%address, "reward is serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .context("serving HTTP")?;
    shutdown.cancel();
    let _ = upkeep.await;
    Ok(())
}
