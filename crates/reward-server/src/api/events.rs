//! `/v1/events` (what was emitted, kept 30 days) and `/v1/event_types` (what can be).

use axum::extract::{Path, State};
use axum::Json;
use reward_core::event::EventType;
use reward_core::ids::EventId;
use serde_json::value::RawValue;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult};
use super::extract::{Authenticated, ListBody, QueryParams};
use super::filters;
use super::schemas::{
    ByIdErrors, CreatedFilter, ErrorBody, EventFilter, EventList, EventTypeList, EventView,
    ListErrors, ListParams,
};
use super::views::{event_view, EventTypeView};
use super::{parse_path_id, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
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
