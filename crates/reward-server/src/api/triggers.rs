//! `/v1/triggers`: the account's triggers and the credit rule of each.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use reward_core::names::TriggerId;
use reward_store::records::TriggerSpec;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::bodies::TriggerBody;
use super::error::{ApiError, ApiResult};
use super::extract::{Authenticated, ListBody, QueryParams};
use super::input::JsonObject;
use super::schemas::{ByIdErrors, ListErrors, ListParams, TriggerIdPath, TriggerList};
use super::views::TriggerView;
use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, put, remove))
}

/// A trigger id in a path: one that cannot be valid cannot exist either.
pub fn trigger_id(id: &str) -> ApiResult<TriggerId> {
    TriggerId::parse(id).map_err(|_| ApiError::not_found("trigger"))
}

#[utoipa::path(put, path = "/v1/triggers/{id}", operation_id = "put_trigger", tag = "Triggers", summary = "Create or replace a trigger",
    description = "Creates the trigger with this id, or replaces its name and rule. `credit_points` is `{\"per_unit\": n}` (floor(value × n) points per trigger event), `{\"fixed\": n}`, or null (no points).",
    params(TriggerIdPath), request_body = TriggerBody, security(("api_key" = [])),
    responses((status = 201, description = "Created", body = TriggerView), (status = 200, description = "Replaced", body = TriggerView), ByIdErrors))]
async fn put(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
    body: JsonObject,
) -> ApiResult<(StatusCode, Json<TriggerView>)> {
    let id = TriggerId::parse(&id).map_err(|error| ApiError::invalid("id", error.0))?;
    let TriggerBody {
        name,
        credit_points,
    } = TriggerBody::read(body)?;
    let (trigger, created) = state
        .store
        .put_trigger(
            &account,
            TriggerSpec {
                id,
                name,
                credit_points,
            },
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(trigger.into())))
}

#[utoipa::path(get, path = "/v1/triggers", operation_id = "list_triggers", tag = "Triggers", summary = "List triggers",
    description = "The account's triggers, newest first, a page at a time (`limit`, then `cursor`).",
    params(ListParams), security(("api_key" = [])),
    responses((status = 200, description = "A page of triggers, newest first", body = TriggerList), ListErrors))]
async fn list(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    query: QueryParams,
) -> ApiResult<Json<ListBody<TriggerView>>> {
    let page = state.store.list_triggers(&account, query.page()?).await?;
    Ok(Json(ListBody::from_page(page, TriggerView::from)))
}

#[utoipa::path(get, path = "/v1/triggers/{id}", operation_id = "get_trigger", tag = "Triggers", summary = "Get a trigger",
    description = "One trigger of this account, with its credit rule.",
    params(TriggerIdPath), security(("api_key" = [])),
    responses((status = 200, description = "The trigger", body = TriggerView), ByIdErrors))]
async fn show(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<TriggerView>> {
    let trigger = state
        .store
        .get_trigger(&account, &trigger_id(&id)?)
        .await
        .map_err(ApiError::from_store("trigger"))?;
    Ok(Json(trigger.into()))
}

#[utoipa::path(delete, path = "/v1/triggers/{id}", operation_id = "delete_trigger", tag = "Triggers", summary = "Delete a trigger",
    description = "Deletes the trigger: trigger events naming it are refused from then on (422 `unknown_trigger`).",
    params(TriggerIdPath), security(("api_key" = [])),
    responses((status = 204, description = "Deleted"), ByIdErrors))]
async fn remove(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_trigger(&account, &trigger_id(&id)?)
        .await
        .map_err(ApiError::from_store("trigger"))?;
    Ok(StatusCode::NO_CONTENT)
}
