//! The dashboard (SPEC §7): server-rendered pages for people, beside the API for programs.
//!
//! - [`session`]: sign in with an API key, the session cookie, sign out, and the CSRF check
//!   every form goes through ([`session::SignedForm`]).
//! - [`webhooks`]: Account Settings → Webhooks, and the Create Webhook / edit form's handlers;
//!   [`webhook_form`]: that form's fields (filter, headers, notes, rate limit) and validation.
//! - [`webhook_page`]: one webhook: secret, test events, deliveries and attempts, retry,
//!   enable/disable, delete.
//! - [`deliveries`]: Account Settings → Deliveries: the account-wide search
//!   ([`delivery_search`]: its form) and Resend; [`delivery_rows`]: deliveries with their
//!   attempts as both pages list them.
//! - [`api_keys`]: Account Settings → API keys.
//! - [`assets`]: the stylesheet, script and icon, compiled in.
//! - [`health_chart`]: a webhook's health (attempts per bucket, p99 latency) as SVG.
//! - [`page`]: layout data, rendering and error pages; [`form`]: reading form bodies.
//!
//! Templates are in `crates/reward-server/templates/` (askama, escaped by default), assets in
//! `crates/reward-server/assets/`. Pages work without JavaScript; the script only adds
//! niceties (copy buttons, local times, a confirmation before revoking a key).

mod api_keys;
mod assets;
mod deliveries;
mod delivery_rows;
mod delivery_search;
mod form;
mod health_chart;
mod page;
mod session;
mod webhook_form;
mod webhook_page;
mod webhooks;

use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(session::router())
        .merge(webhooks::router())
        .merge(webhook_page::router())
        .merge(deliveries::router())
        .merge(api_keys::router())
        .layer(map_response(page_headers))
        .merge(assets::router())
}

/// Whether `path` is under the dashboard's own addresses (`/settings`...).
pub fn is_dashboard_path(path: &str) -> bool {
    path == "/settings" || path.starts_with("/settings/")
}

/// The answer to a dashboard address that names no page (a mistyped `/settings/...`): the
/// dashboard's own "Not found" page, with its headers, rather than the API's JSON.
pub async fn page_not_found() -> Response {
    page_headers(page::PageError::NotFound("page").into_response()).await
}

/// Headers on every page: nothing but our own assets may load or run, no other site may frame
/// a page, and no page (they show secrets) is kept in a cache.
async fn page_headers(mut response: Response) -> Response {
    const HEADERS: [(HeaderName, &str); 5] = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
