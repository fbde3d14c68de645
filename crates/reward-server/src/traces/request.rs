//! A span per API request, around the whole app. Its context rides in the request's extensions
//! ([`RequestTrace`]) so the handlers that record events can give those events the request's
//! trace, and the authentication extractor can name the account.

use std::sync::{Arc, OnceLock};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use opentelemetry::trace::{Span as _, Status};
use opentelemetry::KeyValue;
use reward_core::ids::AccountId;
use reward_core::trace::TraceParent;

use super::{trace_parent_of, Traces};

/// The request's span, as handlers see it.
#[derive(Clone, Debug)]
pub struct RequestTrace {
    parent: TraceParent,
    /// Set once authenticated; read when the span ends.
    account: Arc<OnceLock<AccountId>>,
}

impl RequestTrace {
    /// The request span's context: what the events it records are caused by.
    pub fn parent(&self) -> &TraceParent {
        &self.parent
    }

    /// The account the request was authenticated as.
    pub fn set_account(&self, account: &AccountId) {
        let _ = self.account.set(account.clone());
    }
}

/// Wraps the app with request spans when tracing is on; returns it untouched otherwise.
pub fn with_request_spans(app: Router, traces: Traces) -> Router {
    if !traces.is_on() {
        return app;
    }
    app.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let traces = traces.clone();
            async move { traced(&traces, request, next).await }
        },
    ))
}

async fn traced(traces: &Traces, mut request: Request, next: Next) -> Response {
    let caller = request
        .headers()
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| TraceParent::parse(text).ok());
    let Some(mut span) = traces.request_span(request.method().as_str(), caller.as_ref()) else {
        return next.run(request).await;
    };
    let Some(parent) = trace_parent_of(opentelemetry::trace::Span::span_context(&span)) else {
        return next.run(request).await;
    };
    let trace = RequestTrace {
        parent,
        account: Arc::default(),
    };
    request.extensions_mut().insert(trace.clone());
    let response = next.run(request).await;
    let status = response.status();
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    if let Some(account) = trace.account.get() {
        span.set_attribute(KeyValue::new(
            "reward.account_id",
            account.as_str().to_owned(),
        ));
    }
    if status.is_server_error() {
        span.set_status(Status::error(""));
    }
    span.end();
    response
}
