//! `ApiError`: every failure a handler can answer with, as a status and
//! `{"error": {"code", "message", "field"?}}`. Internal details are logged, never shown.
//! [`errors_as_json`] gives the same shape to the errors axum's own extractors answer before a
//! handler runs (a path segment that is not UTF-8, for one).

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use reward_store::StoreError;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds to send as `Retry-After` (429); a 503 always says 1.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn not_found(resource: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("No such {resource}."),
        )
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 422: a field holds a value that is not acceptable.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_value", message).with_field(field)
    }

    /// 422: a required field is absent.
    pub fn missing(field: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            format!("The field '{field}' is required."),
        )
        .with_field(field)
    }

    /// 422: a field holds a value of the wrong JSON type.
    pub fn wrong_type(field: &str, expected: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_type",
            format!("The field '{field}' must be {expected}."),
        )
        .with_field(field)
    }

    /// Maps a store failure, naming the resource a "not found" is about.
    pub fn from_store(resource: &'static str) -> impl Fn(StoreError) -> ApiError {
        move |error| match error {
            StoreError::NotFound => ApiError::not_found(resource),
            other => ApiError::from(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::not_found("resource"),
            StoreError::UnknownTrigger(trigger) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_trigger",
                format!("No trigger with id '{trigger}' exists; create it with PUT /v1/triggers/{{id}} first."),
            )
            .with_field("trigger_id"),
            StoreError::IdempotencyConflict => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "This Idempotency-Key was already used with a different request body.",
            ),
            StoreError::UnknownWebhook(webhook) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_webhook",
                format!("No webhook with id '{webhook}' exists in this account."),
            )
            .with_field("webhook_id"),
            StoreError::WebhookDisabled(webhook) => ApiError::new(
                StatusCode::CONFLICT,
                "webhook_disabled",
                format!("The webhook '{webhook}' is disabled; enable it (PATCH {{\"enabled\": true}}) first."),
            ),
            StoreError::TooManyPoints => ApiError::invalid(
                "value",
                "The trigger's rule would issue more than 10^12 points for this value; a trigger event issues at most 10^12 points. Nothing was recorded.",
            ),
            StoreError::BalanceOverflow => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "balance_overflow",
                "The user's balance would pass 9007199254740991 (2^53 - 1), the largest whole number every JSON receiver reads exactly. Nothing was changed.",
            ),
            // Only the dashboard's Rotate form names the secret it replaces; an API call would
            // meet it as a conflict.
            StoreError::SecretChanged => ApiError::new(
                StatusCode::CONFLICT,
                "secret_changed",
                "The webhook's secret was rotated by another request meanwhile; nothing was changed.",
            ),
            StoreError::InvalidCursor => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_cursor",
                "The cursor is not one this list returned.",
            )
            .with_field("cursor"),
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "The database is unavailable right now, so the request was not completed. Try again shortly (with the same Idempotency-Key, if you sent one).",
                )
            }
            StoreError::Internal(detail) => {
                tracing::error!(%detail, "store error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Something went wrong on our side.",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(seconds));
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The code of an error axum answered by itself, by its status.
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_value",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        status if status.is_server_error() => "internal_error",
        _ => "bad_request",
    }
}

/// Longest text of axum's own rejection kept as the message (they are one short line).
const REJECTION_TEXT_LIMIT: usize = 1024;

/// Middleware: an error response in plain text (what axum's extractors answer) becomes the API's
/// error shape, its text the message. A 5xx says nothing of its cause.
pub async fn errors_as_json(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    // Our own errors are JSON and the reference's 404 page is HTML: only plain text (or no body
    // type at all) comes from axum.
    let is_plain_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map_or(Some(true), |value| {
            value
                .to_str()
                .ok()
                .map(|value| value.starts_with("text/plain"))
        })
        .unwrap_or(false);
    if !(status.is_client_error() || status.is_server_error()) || !is_plain_text {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, REJECTION_TEXT_LIMIT)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if status.is_server_error() {
        tracing::error!(%status, detail = %text, "an extractor failed");
        "Something went wrong on our side.".to_owned()
    } else if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("The request was refused.")
            .to_owned()
    } else {
        format!("{}.", text.trim_end_matches('.'))
    };
    let mut shaped = ApiError::new(status, code_for(status), message).into_response();
    // Keep what the original said besides its body (Allow, Retry-After, ...).
    for name in parts.headers.keys() {
        if name == header::CONTENT_TYPE || name == header::CONTENT_LENGTH {
            continue;
        }
        shaped.headers_mut().remove(name);
        for value in parts.headers.get_all(name) {
            shaped.headers_mut().append(name, value.clone());
        }
    }
    shaped
}
