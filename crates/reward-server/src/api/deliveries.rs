//! `/v1/deliveries`: the account's deliveries searched by filters; `/v1/deliveries/{id}`: one
//! delivery with its attempts, and a manual retry.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use reward_core::ids::DeliveryId;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult};
use super::extract::{Authenticated, ListBody, QueryParams};
use super::filters;
use super::schemas::{
    ByIdErrors, CreatedFilter, DeliveryList, DeliverySearchFilter, ListErrors, ListParams,
};
use super::views::DeliveryView;
use super::{parse_path_id, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(show))
        .routes(routes!(retry))
}

fn delivery_id(id: &str) -> ApiResult<DeliveryId> {
    parse_path_id(id, DeliveryId::parse, "delivery")
}

#[utoipa::path(get, path = "/v1/deliveries", operation_id = "search_deliveries", tag = "Deliveries", summary = "Search deliveries",
    description = "The account's deliveries to every webhook, newest first, a page at a time. Each filter given must hold: `webhook_id`, `event_id`, `event_type`, `status`, and `created_after` / `created_before` (both exclusive: strictly after, strictly before). An id the account does not have matches nothing (an empty page, not a 404).",
    params(ListParams, DeliverySearchFilter, CreatedFilter), security(("api_key" = [])),
    responses((status = 200, description = "A page of deliveries, newest first", body = DeliveryList), ListErrors))]
async fn search(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    query: QueryParams,
) -> ApiResult<Json<ListBody<DeliveryView>>> {
    let page = query.page()?;
    let filters = filters::delivery_search(&query)?;
    let found = state
        .store
        .search_deliveries(&account, &filters, page)
        .await?;
    Ok(Json(ListBody::from_page(found, DeliveryView::from)))
}

#[utoipa::path(get, path = "/v1/deliveries/{id}", operation_id = "get_delivery", tag = "Deliveries", summary = "Get a delivery with its attempts",
    description = "One delivery with every attempt made so far, oldest first: each with the receiver's status code, the start of its answer, or the error.",
    params(("id" = String, Path, description = "The delivery id (dl_...)")), security(("api_key" = [])),
    responses((status = 200, description = "The delivery and its attempts, oldest first", body = DeliveryView), ByIdErrors))]
async fn show(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<DeliveryView>> {
    let found = state
        .store
        .get_delivery(&account, &delivery_id(&id)?)
        .await
        .map_err(ApiError::from_store("delivery"))?;
    Ok(Json(found.into()))
}

#[utoipa::path(post, path = "/v1/deliveries/{id}/retry", operation_id = "retry_delivery", tag = "Deliveries", summary = "Retry a delivery now",
    description = "One attempt now, whatever the status. A failed delivery whose manual attempt fails stays failed; a pending one keeps its schedule. Explicit, so it goes out of order: on a `per_user` webhook it waits for none of the user's earlier deliveries.",
    params(("id" = String, Path, description = "The delivery id (dl_...)")), security(("api_key" = [])),
    responses((status = 202, description = "The delivery, queued for an attempt", body = DeliveryView), ByIdErrors))]
async fn retry(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<DeliveryView>)> {
    let delivery = state
        .store
        .request_retry(&account, &delivery_id(&id)?)
        .await
        .map_err(ApiError::from_store("delivery"))?;
    Ok((StatusCode::ACCEPTED, Json(delivery.into())))
}
