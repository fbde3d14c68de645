//! `/v1/deliveries/{id}`: one delivery with its attempts, and a manual retry.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use reward_core::ids::DeliveryId;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult};
use super::extract::Authenticated;
use super::schemas::ByIdErrors;
use super::views::DeliveryView;
use super::{parse_path_id, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(retry))
}

fn delivery_id(id: &str) -> ApiResult<DeliveryId> {
    parse_path_id(id, DeliveryId::parse, "delivery")
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
    description = "One attempt now, whatever the status. A failed delivery whose manual attempt fails stays failed; a pending one keeps its schedule.",
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
