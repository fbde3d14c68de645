//! The whole application as one router: the API, the dashboard, `/metrics` and the reference,
//! with the layers every request goes through. The one place the parts meet, so none of them
//! needs to know the others.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::api::error::{errors_as_json, ApiError};
use crate::api::{limits, reference_headers};
use crate::state::AppState;

/// Every route, and the layers around them (outermost last):
///
/// - API routes, `/metrics` and the reference answer every error in the API's JSON shape, also
///   the ones axum's extractors give before a handler runs ([`errors_as_json`]); the
///   reference pages get the dashboard's security headers ([`reference_headers`]).
/// - Every request: bodies over 256 KiB are refused while reading them, every body has a
///   deadline, a request whose head or declared body is too large is refused before anything
///   else ([`limits::check_request_head`]), and every request is counted.
pub fn router(state: AppState) -> Router {
    let metrics = Arc::clone(&state.metrics);
    let (api, document) = crate::api::documented_routes().split_for_parts();
    let document = crate::reference::openapi::finish(document);
    let reference = crate::reference::router(document);
    let reference = reference_headers::add(reference);
    Router::new()
        .merge(api)
        .route("/metrics", get(crate::metrics::serve_metrics))
        .merge(reference)
        .layer(axum::middleware::from_fn(errors_as_json))
        .merge(crate::dashboard::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits::MAX_BODY_BYTES))
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

async fn not_found(uri: Uri) -> Response {
    if crate::dashboard::is_dashboard_path(uri.path()) {
        return crate::dashboard::page_not_found().await;
    }
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such route.").into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This route does not accept that method.",
    )
}
