//! Request logging: every request gets an id (`x-request-id`, kept when the caller sent one),
//! echoed in the answer and carried by one log line per request with its method, route, status
//! and latency. Bodies, query strings and headers are never logged: they can hold keys.

use std::time::Duration;

use axum::http::{HeaderValue, Request, Response};
use axum::Router;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Span;

const REQUEST_ID: &str = "x-request-id";

/// Request ids like `req_01jf2wkmvcfw6ts1qmgzya291c`: sortable, unique, recognisable.
#[derive(Clone, Copy, Default)]
struct MakeRequestUlid;

impl MakeRequestId for MakeRequestUlid {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let id = format!("req_{}", ulid::Ulid::new().to_string().to_lowercase());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Wraps the app with request ids and one log line per request.
pub fn with_request_logging(app: Router) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request<_>| {
            // The whole app is wrapped, so routing has not happened yet: log the path.
            let path = request.uri().path().to_owned();
            let request_id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("-")
                .to_owned();
            tracing::info_span!("request", method = %request.method(), path, request_id)
        })
        .on_request(())
        .on_response(|response: &Response<_>, latency: Duration, _span: &Span| {
            tracing::info!(
                status = response.status().as_u16(),
                latency_ms = latency.as_millis() as u64,
                "answered"
            );
        });
    app.layer(PropagateRequestIdLayer::x_request_id())
        .layer(trace)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUlid))
}
