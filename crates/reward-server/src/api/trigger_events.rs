//! `POST /v1/trigger_events`: record what a user did; the trigger's rule may issue points.
//! Honours `Idempotency-Key` for 24 hours.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use reward_core::digest::sha256_hex;
use reward_core::names::{TriggerId, UserId};
use reward_store::records::{RecordTriggerEvent, TriggerEventOutcome};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::bodies::TriggerEventBody;
use super::error::ApiResult;
use super::extract::Authenticated;
use super::idempotency::{idempotency_key, IdempotencyKeyHeader, REPLAYED_HEADER};
use super::input::JsonObject;
use super::schemas::ErrorBody;
use super::views::TriggerEventView;
use super::AppState;
use crate::operations;
use crate::traces::RequestTrace;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(record))
}

/// What makes two requests "the same body": the validated fields, not their spelling.
fn fingerprint(user: &UserId, trigger: &TriggerId, value: Option<&serde_json::Number>) -> String {
    let value = value.map_or_else(|| "null".to_owned(), ToString::to_string);
    sha256_hex(format!("{}\0{}\0{}", user.as_str(), trigger.as_str(), value).as_bytes())
}

#[utoipa::path(post, path = "/v1/trigger_events", operation_id = "record_trigger_event", tag = "Trigger events", summary = "Record a trigger event",
    description = "Records what a user did. Emits trigger_event.created, and balance.credit_points_issued when the trigger's rule gives points. A trigger event issues at most 10^12 points (more answers 422 on value) and never takes a balance past 2^53 - 1 (422 balance_overflow); either records nothing. With an Idempotency-Key (kept 24 h) the same key and body answer the first response again and emit nothing; the same key with another body answers 409.",
    params(IdempotencyKeyHeader),
    request_body = TriggerEventBody, security(("api_key" = [])),
    responses((status = 201, description = "The trigger event (or, on a replay, the first answer again, with Idempotent-Replayed: true)", body = TriggerEventView,
            headers(("Idempotent-Replayed" = String, description = "`true` when this answer replays the first one for the same Idempotency-Key and body (nothing new was recorded or emitted); absent otherwise."))),
        (status = 409, description = "The Idempotency-Key was used with another body", body = ErrorBody)))]
async fn record(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    trace: Option<Extension<RequestTrace>>,
    headers: HeaderMap,
    body: JsonObject,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let TriggerEventBody {
        user_id: user,
        trigger_id: trigger,
        value,
    } = TriggerEventBody::read(body)?;
    let idempotency = key.map(|key| (key, fingerprint(&user, &trigger, value.as_ref())));
    let outcome = operations::record_trigger_event(
        &state,
        &account,
        RecordTriggerEvent {
            user,
            trigger,
            value,
            idempotency,
            trace: None,
        },
        trace.as_ref().map(|Extension(trace)| trace),
    )
    .await?;
    let (recorded, replayed) = match outcome {
        TriggerEventOutcome::Recorded(recorded) => (recorded, false),
        TriggerEventOutcome::Replayed(recorded) => (recorded, true),
    };
    let mut response =
        (StatusCode::CREATED, Json(TriggerEventView::from(&recorded))).into_response();
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    Ok(response)
}
