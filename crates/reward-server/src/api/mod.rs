//! The HTTP API of SPEC §4: one module per resource, each with its own `router()`.

mod deliveries;
pub mod error;
mod events;
pub mod extract;
pub mod input;
mod trigger_events;
mod triggers;
mod users;
pub mod views;
mod webhooks;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use reward_core::names::TargetPolicy;
use reward_store::Store;
use serde_json::{json, Value};

use error::{ApiError, ApiResult};

/// Largest request body accepted (SPEC §4: 413 above).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Whether webhook URLs must be public `https://` targets.
    pub target_policy: TargetPolicy,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(webhooks::router())
        .merge(deliveries::router())
        .merge(events::router())
        .merge(triggers::router())
        .merge(trigger_events::router())
        .merge(users::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such route.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This route does not accept that method.",
    )
}

/// An id in a path. One that cannot be valid names nothing: 404, like any unknown id.
pub fn parse_path_id<T, E>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, E>,
    resource: &str,
) -> ApiResult<T> {
    parse(text).map_err(|_| ApiError::not_found(resource))
}
