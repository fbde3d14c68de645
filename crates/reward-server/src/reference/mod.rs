//! The API reference: `/openapi.json` (OpenAPI 3.1, generated from the handlers' own types) and
//! `/docs` (the same document as HTML, plus a page per event type).

pub mod docs;
mod html;
pub mod openapi;

use std::sync::Arc;

use axum::extract::Path;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use reward_core::event::EventType;
use serde_json::Value;

/// Routes serving a finished document (see [`openapi::finish`]).
pub fn router<S: Clone + Send + Sync + 'static>(document: Value) -> Router<S> {
    // Both are rendered once: the document cannot change while the server runs.
    let index_html: Arc<str> = docs::index(&document).into();
    let json_text: Arc<str> = serde_json::to_string(&document).unwrap_or_default().into();
    Router::new()
        .route(
            "/openapi.json",
            get(move || async move { ([(CONTENT_TYPE, "application/json")], json_text.to_string()) }),
        )
        .route("/docs", get(move || async move { Html(index_html.to_string()) }))
        .route("/docs/events", get(|| async { Html(docs::events_index()) }))
        .route("/docs/events/{event_type}", get(event_page))
}

async fn event_page(Path(event_type): Path<String>) -> Response {
    match EventType::parse(&event_type) {
        Some(kind) => Html(docs::event_page(kind)).into_response(),
        None => (StatusCode::NOT_FOUND, Html(docs::events_index())).into_response(),
    }
}
