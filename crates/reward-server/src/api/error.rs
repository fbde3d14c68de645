//! `ApiError`: every failure a handler can answer with, as a status and
//! `{"error": {"code", "message", "field"?}}`. Internal details are logged, never shown.

use axum::http::StatusCode;
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
            StoreError::TooManyPoints => ApiError::invalid(
                "value",
                "The trigger's rule would issue more than 10^12 points for this value; a trigger event issues at most 10^12 points. Nothing was recorded.",
            ),
            StoreError::BalanceOverflow => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "balance_overflow",
                "The user's balance would pass 9007199254740991 (2^53 - 1), the largest whole number every JSON receiver reads exactly. Nothing was changed.",
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
