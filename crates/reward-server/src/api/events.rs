//! `/v1/events` (what was emitted, kept 30 days) and `/v1/event_types` (what can be).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use reward_core::event::EventType;
use reward_core::ids::EventId;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::extract::{Authenticated, ListBody, QueryParams};
use super::views::{event_type_view, event_view};
use super::webhooks::parse_event_type;
use super::{parse_path_id, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(list))
        .route("/v1/events/{id}", get(show))
        .route("/v1/event_types", get(event_types))
}

async fn list(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    query: QueryParams,
) -> ApiResult<Json<ListBody<Box<RawValue>>>> {
    let page = query.page()?;
    let event_type = query
        .get("type")
        .map(|text| parse_event_type("type", text))
        .transpose()?;
    let found = state.store.list_events(&account, event_type, page).await?;
    Ok(Json(ListBody::from_page(found, event_view)))
}

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

async fn event_types(Authenticated(_account): Authenticated) -> Json<Value> {
    let data: Vec<Value> = EventType::ALL.into_iter().map(event_type_view).collect();
    Json(json!({"data": data, "next_cursor": null}))
}
