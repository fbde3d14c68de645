//! The HTTP API of SPEC §4: one module per resource, each with its own `router()`.

pub mod api_keys;
pub mod bodies;
mod deliveries;
pub mod error;
mod events;
pub mod extract;
pub mod input;
pub mod limits;
mod reference_headers;
pub mod schemas;
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
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use error::{ApiError, ApiResult};

/// Largest request body accepted (SPEC §4: 413 above).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Whether webhook URLs must be public `https://` targets.
    pub target_policy: TargetPolicy,
    /// Keeps "last used" writes of API keys to one per key per minute.
    pub key_use: Arc<extract::KeyUseThrottle>,
    /// Counters and histograms behind `GET /metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The per-account request rate limit (`REWARD_RATE_LIMIT`).
    pub rate_limiter: Arc<limits::RateLimiter>,
    /// How long a request's body may take to arrive, at most.
    pub body_read_timeout: std::time::Duration,
    /// `REWARD_PUBLIC_URL`: decides whether the dashboard's cookies are `Secure`.
    pub public_url: Option<crate::config::PublicUrl>,
}

/// The API's own description; each resource module adds its paths and schemas.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Reward API",
        description = "Record trigger events, turn them into credit points, and receive every change as a signed webhook.",
    ),
    tags(
        (name = "Webhooks", description = "Endpoints that receive events, and their signing secrets."),
        (name = "Deliveries", description = "Each event on its way to each webhook, with its attempts."),
        (name = "Events", description = "What was emitted, and what can be."),
        (name = "Triggers", description = "What turns trigger events into credit points."),
        (name = "Trigger events", description = "What your users did."),
        (name = "Users", description = "Balances, and points issued by hand."),
        (name = "API keys", description = "The account's keys: create (shown once), list, revoke."),
        (name = "Health", description = "Liveness."),
    )
)]
struct ApiDoc;

/// The API's routes, each registered with its OpenAPI description: a route cannot exist
/// without being documented.
pub fn documented_routes() -> OpenApiRouter<AppState> {
    let mut description = ApiDoc::openapi();
    description.info.version = env!("CARGO_PKG_VERSION").to_owned();
    OpenApiRouter::with_openapi(description)
        .routes(routes!(healthz))
        .merge(webhooks::router())
        .merge(deliveries::router())
        .merge(events::router())
        .merge(triggers::router())
        .merge(trigger_events::router())
        .merge(users::router())
        .merge(api_keys::router())
}

/// The OpenAPI document as served at `/openapi.json`.
pub fn openapi_document() -> Value {
    let (_, document) = documented_routes().split_for_parts();
    crate::reference::openapi::finish(document)
}

/// Every route, and the layers around them (outermost last):
///
/// - API routes, `/metrics` and the reference answer every error in the API's JSON shape, also
///   the ones axum's extractors give before a handler runs ([`error::errors_as_json`]); the
///   reference pages get the dashboard's security headers ([`reference_headers`]).
/// - Every request: bodies over 256 KiB are refused while reading them, every body has a
///   deadline, a request whose head or declared body is too large is refused before anything
///   else ([`limits::check_request_head`]), and every request is counted.
pub fn router(state: AppState) -> Router {
    let metrics = Arc::clone(&state.metrics);
    let (api, document) = documented_routes().split_for_parts();
    let document = crate::reference::openapi::finish(document);
    let reference = crate::reference::router(document);
    let reference = reference_headers::add(reference);
    Router::new()
        .merge(api)
        .route("/metrics", get(crate::metrics::serve_metrics))
        .merge(reference)
        .layer(axum::middleware::from_fn(error::errors_as_json))
        .merge(crate::dashboard::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.body_read_timeout,
            limits::with_body_deadline,
        ))
        .layer(axum::middleware::from_fn(limits::check_request_head))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::count_requests,
        ))
        .with_state(state)
}

#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "Health", summary = "Liveness",
    description = "Answers 200 while the server runs. Needs no API key: for load balancers and uptime checks.",
    responses((status = 200, description = "The server is up", body = schemas::Health)))]
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
