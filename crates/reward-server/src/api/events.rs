//! `/v1/events` (what was emitted, kept 30 days, and resent on request) and `/v1/event_types`
//! (what can be).

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use reward_core::event::EventType;
use reward_core::ids::EventId;
use serde_json::value::RawValue;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::bodies::ResendBody;
use super::error::{ApiError, ApiResult};
use super::extract::{Authenticated, ListBody, QueryParams};
use super::filters;
use super::idempotency::{self, IdempotencyKeyHeader, IdempotentRequest};
use super::input::JsonObject;
use super::schemas::{
    ByIdErrors, CreatedFilter, ErrorBody, EventFilter, EventList, EventTypeList, EventView,
    ListErrors, ListParams,
};
use super::views::{event_view, DeliveryView, EventTypeView};
use super::{parse_path_id, AppState};
use crate::operations;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(resend))
        .routes(routes!(event_types))
}

#[utoipa::path(get, path = "/v1/events", operation_id = "list_events", tag = "Events", summary = "List events",
    description = "The events emitted to this account, kept 30 days; `type` keeps one type, `created_after` and `created_before` a time range (both exclusive).",
    params(ListParams, EventFilter, CreatedFilter), security(("api_key" = [])),
    responses((status = 200, description = "A page of events, newest first", body = EventList), ListErrors))]
async fn list(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    query: QueryParams,
) -> ApiResult<Json<ListBody<Box<RawValue>>>> {
    let page = query.page()?;
    let filters = filters::events(&query)?;
    let found = state.store.list_events(&account, &filters, page).await?;
    Ok(Json(ListBody::from_page(found, event_view)))
}

#[utoipa::path(get, path = "/v1/events/{id}", operation_id = "get_event", tag = "Events", summary = "Get an event",
    description = "The event exactly as its webhooks received it.",
    params(("id" = String, Path, description = "The event id (we_...)")), security(("api_key" = [])),
    responses((status = 200, description = "The event payload", body = EventView), ByIdErrors))]
async fn show(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<Box<RawValue>>> {
    let id = parse_path_id(&id, EventId::parse, "event")?;
    let event = state
        .store
        .get_event(&account, &id)
        .await
        .map_err(ApiError::from_store("event"))?;
    Ok(Json(event_view(event)))
}

/// Decisions: an unknown (or another account's) event is 404, as any id in a path; a webhook
/// that is not the account's is 422 `unknown_webhook` on `webhook_id`, as a trigger named in a
/// trigger event's body is (`unknown_trigger`); a disabled webhook is 409 `webhook_disabled`:
/// the request is valid, the webhook's state refuses it until it is enabled again.
#[utoipa::path(post, path = "/v1/events/{id}/resend", operation_id = "resend_event", tag = "Events", summary = "Resend an event",
    description = "Queues a new delivery of this stored event to one enabled webhook of the account, whatever the webhook subscribes to: the same event id (`webhook-id`) and exactly the stored payload bytes, signed with the webhook's secret. With an Idempotency-Key (kept 24 h) the same key and body answer the first response again and queue nothing; the same key with another body or route answers 409. Explicit, so it goes out of order: on a `per_user` webhook it waits for none of the user's other deliveries.",
    params(("id" = String, Path, description = "The event id (we_...)"), IdempotencyKeyHeader),
    request_body = ResendBody, security(("api_key" = [])),
    responses((status = 202, description = "The new delivery (or, on a replay, the first answer again, with Idempotent-Replayed: true)", body = DeliveryView,
            headers(("Idempotent-Replayed" = String, description = "`true` when this answer replays the first one for the same Idempotency-Key and body (nothing new was queued); absent otherwise."))),
        (status = 404, description = "No such event in this account", body = ErrorBody),
        (status = 409, description = "The webhook is disabled (`webhook_disabled`); or the Idempotency-Key was used with another request (`idempotency_conflict`) or one with it is still in progress (`idempotency_in_progress`)", body = ErrorBody),
        (status = 422, description = "`webhook_id` is missing, not a webhook id, or names no webhook of this account (`unknown_webhook`); or the Idempotency-Key is not valid. `field` names which.", body = ErrorBody)))]
async fn resend(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: JsonObject,
) -> ApiResult<Response> {
    let event = parse_path_id(&id, EventId::parse, "event")?;
    let request = IdempotentRequest::read(&headers, uri.path(), &body)?;
    let ResendBody {
        webhook_id: webhook,
    } = ResendBody::read(body)?;
    let work = {
        let (state, account) = (state.clone(), account.clone());
        async move {
            let delivery = operations::resend_event(&state, &account, &event, &webhook)
                .await
                .map_err(ApiError::from_store("event"))?;
            Ok((StatusCode::ACCEPTED, Json(DeliveryView::from(delivery))))
        }
    };
    idempotency::respond(&state, &account, request, work).await
}

#[utoipa::path(get, path = "/v1/event_types", operation_id = "list_event_types", tag = "Events", summary = "List event types",
    description = "Each type with its description, the JSON Schema of its data and an example payload.", security(("api_key" = [])),
    responses((status = 200, description = "Every event type", body = EventTypeList),
        (status = 401, description = "No or wrong API key", body = ErrorBody)))]
async fn event_types(Authenticated(_account): Authenticated) -> Json<ListBody<EventTypeView>> {
    Json(ListBody {
        data: EventType::ALL
            .into_iter()
            .map(EventTypeView::from)
            .collect(),
        next_cursor: None,
    })
}
