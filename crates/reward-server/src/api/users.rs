//! `/v1/users/{user_id}`: a user's balance, and points issued by hand.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use reward_core::names::UserId;
use reward_store::records::IssueCredits;
use reward_store::StoreError;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::bodies::CreditsBody;
use super::error::{ApiError, ApiResult};
use super::extract::Authenticated;
use super::input::JsonObject;
use super::schemas::{ByIdErrors, UserIdPath};
use super::views::{CreditsView, UserView};
use super::AppState;
use crate::operations;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(issue_credits))
}

#[utoipa::path(get, path = "/v1/users/{user_id}", operation_id = "get_user", tag = "Users", summary = "Get a user's balance",
    description = "A user exists once a trigger event or credits referenced it.",
    params(UserIdPath), security(("api_key" = [])),
    responses((status = 200, description = "The user", body = UserView), ByIdErrors))]
async fn show(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(user_id): Path<String>,
) -> ApiResult<Json<UserView>> {
    let id = UserId::parse(&user_id).map_err(|_| ApiError::not_found("user"))?;
    let user = state
        .store
        .get_user(&account, &id)
        .await
        .map_err(ApiError::from_store("user"))?;
    Ok(Json(UserView::from(&user)))
}

#[utoipa::path(post, path = "/v1/users/{user_id}/credits", operation_id = "issue_credits", tag = "Users", summary = "Issue credit points by hand",
    description = "Adds points to the user's balance and emits balance.credit_points_issued. A balance never passes 2^53 - 1 (9007199254740991): points that would take it past answer 422 balance_overflow and change nothing.",
    params(UserIdPath), request_body = CreditsBody, security(("api_key" = [])),
    responses((status = 201, description = "The issuance and the new balance", body = CreditsView)))]
async fn issue_credits(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(user_id): Path<String>,
    body: JsonObject,
) -> ApiResult<(StatusCode, Json<CreditsView>)> {
    let user = UserId::parse(&user_id).map_err(|error| ApiError::invalid("user_id", error.0))?;
    let CreditsBody { points, reason } = CreditsBody::read(body)?;
    let issued = operations::issue_credits(
        &state,
        &account,
        IssueCredits {
            user,
            points,
            reason,
        },
    )
    .await
    .map_err(|error| match error {
        // Fewer points would fit: the field to change is this one.
        StoreError::BalanceOverflow => ApiError::from(error).with_field("points"),
        other => ApiError::from(other),
    })?;
    Ok((StatusCode::CREATED, Json(CreditsView::from(&issued))))
}
