//! `/v1/deliveries/{id}`: one delivery with its attempts, and a manual retry.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use reward_core::ids::DeliveryId;

use super::error::{ApiError, ApiResult};
use super::extract::Authenticated;
use super::views::DeliveryView;
use super::{parse_path_id, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/deliveries/{id}", get(show))
        .route("/v1/deliveries/{id}/retry", post(retry))
}

fn delivery_id(id: &str) -> ApiResult<DeliveryId> {
    parse_path_id(id, DeliveryId::parse, "delivery")
}

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
