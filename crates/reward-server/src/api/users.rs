//! `/v1/users/{user_id}`: a user's balance, and points issued by hand.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use reward_core::names::UserId;
use reward_store::records::IssueCredits;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::extract::Authenticated;
use super::input::JsonObject;
use super::views::{credits_view, user_view};
use super::AppState;

/// Most points one manual issuance may add.
const MAX_POINTS: i64 = 1_000_000_000_000;
/// Longest reason accepted, in characters.
const MAX_REASON: usize = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/users/{user_id}", get(show))
        .route("/v1/users/{user_id}/credits", post(issue_credits))
}

async fn show(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = UserId::parse(&user_id).map_err(|_| ApiError::not_found("user"))?;
    let user = state
        .store
        .get_user(&account, &id)
        .await
        .map_err(ApiError::from_store("user"))?;
    Ok(Json(user_view(&user)))
}

async fn issue_credits(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(user_id): Path<String>,
    mut body: JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = UserId::parse(&user_id).map_err(|error| ApiError::invalid("user_id", error.0))?;
    body.only(&["points", "reason"])?;
    let points = body.integer("points")?;
    if !(1..=MAX_POINTS).contains(&points) {
        return Err(ApiError::invalid(
            "points",
            "points must be a whole number from 1 to 10^12.",
        ));
    }
    let reason = body.optional_string("reason")?;
    if reason
        .as_ref()
        .is_some_and(|reason| reason.chars().count() > MAX_REASON)
    {
        return Err(ApiError::invalid(
            "reason",
            "reason may be at most 500 characters long.",
        ));
    }
    let issued = state
        .store
        .issue_credits(
            &account,
            IssueCredits {
                user,
                points,
                reason,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(credits_view(&issued))))
}
