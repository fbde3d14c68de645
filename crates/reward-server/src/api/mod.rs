//! The HTTP API of SPEC §4: one module per resource, each with its own `router()` of
//! documented routes, gathered by [`documented_routes`]. `crate::app` mounts them beside the
//! dashboard; what both front ends do is in `crate::operations`.

pub mod api_keys;
pub mod bodies;
mod deliveries;
pub mod error;
mod events;
pub mod extract;
mod filters;
mod idempotency;
pub mod input;
pub mod limits;
mod query_contract;
pub(crate) mod reference_headers;
pub mod schemas;
mod trigger_events;
mod triggers;
mod users;
pub mod views;
pub mod webhook_stats;
mod webhooks;

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

// Every resource module names the shared state `super::AppState`.
use crate::state::AppState;
use error::{ApiError, ApiResult};

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
        .routes(routes!(readyz))
        .merge(webhooks::router())
        .merge(webhook_stats::router())
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

#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "Health", summary = "Liveness",
    description = "Answers 200 while the server runs. Needs no API key: for load balancers and uptime checks.",
    responses((status = 200, description = "The server is up", body = schemas::Health)))]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// How long the readiness probe waits for the database before it answers 503.
const READY_WITHIN: Duration = Duration::from_secs(2);

#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "Health", summary = "Readiness",
    description = "Answers 200 once the database has answered a trivial read, within 2 s; otherwise 503 `store_unavailable`. Needs no API key: for load balancers and orchestrators, which should send requests only to ready nodes (with several nodes, a node that lost its database goes unready while the others serve). On SQLite a node whose disk refuses writes stays ready: reads still work, and each write answers 503 itself. A node asked to stop answers 503 `shutting_down` for `REWARD_SHUTDOWN_DELAY` while it goes on serving, then stops.",
    responses(
        (status = 200, description = "The database answers", body = schemas::Ready),
        (status = 503, description = "The database did not answer (`store_unavailable`), or the node is stopping (`shutting_down`)", body = schemas::ErrorBody,
            headers(("Retry-After" = u64, description = "Whole seconds to wait before asking again."))),
    ))]
async fn readyz(State(state): State<AppState>) -> ApiResult<Json<schemas::Ready>> {
    if state.stopping.is_cancelled() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "This node is stopping; send requests to another.",
        ));
    }
    let why = match tokio::time::timeout(READY_WITHIN, state.store.ping()).await {
        Ok(Ok(())) => {
            return Ok(Json(schemas::Ready {
                status: schemas::ReadyStatus::Ready,
            }))
        }
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no answer within {} s", READY_WITHIN.as_secs()),
    };
    // A load balancer asks every few seconds: the outage itself is logged by what it stops.
    tracing::debug!(%why, "not ready");
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "The database does not answer, so this node is not ready.",
    ))
}

/// An id in a path. One that cannot be valid names nothing: 404, like any unknown id.
pub fn parse_path_id<T, E>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, E>,
    resource: &str,
) -> ApiResult<T> {
    parse(text).map_err(|_| ApiError::not_found(resource))
}
