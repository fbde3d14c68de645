//! `/v1/users/{user_id}`: a user's balance, and points issued by hand.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use reward_core::names::UserId;
use reward_store::records::IssueCredits;
use reward_store::StoreError;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::bodies::CreditsBody;
use super::error::{ApiError, ApiResult};
use super::extract::Authenticated;
use super::idempotency::{self, IdempotencyKeyHeader, IdempotentRequest};
use super::input::JsonObject;
use super::schemas::{ByIdErrors, ErrorBody, UserIdPath};
use super::views::{CreditsView, UserView};
use super::AppState;
use crate::operations;
use crate::traces::RequestTrace;

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
    description = "Adds points to the user's balance and emits balance.credit_points_issued. A balance never passes 2^53 - 1 (9007199254740991): points that would take it past answer 422 balance_overflow and change nothing. With an Idempotency-Key (kept 24 h) the same key and body answer the first response again and issue and emit nothing; the same key with another body or route answers 409.",
    params(UserIdPath, IdempotencyKeyHeader),
    request_body = CreditsBody, security(("api_key" = [])),
    responses((status = 201, description = "The issuance and the new balance (or, on a replay, the first answer again)", body = CreditsView,
            headers(("Idempotent-Replayed" = String, description = "`true` when this answer replays the first one for the same Idempotency-Key and body (nothing new was created); absent otherwise."))),
        (status = 409, description = "The Idempotency-Key was used with another request (`idempotency_conflict`), or one with it is still in progress (`idempotency_in_progress`, with Retry-After)", body = ErrorBody)))]
async fn issue_credits(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(user_id): Path<String>,
    OriginalUri(uri): OriginalUri,
    trace: Option<Extension<RequestTrace>>,
    headers: HeaderMap,
    body: JsonObject,
) -> ApiResult<Response> {
    let user = UserId::parse(&user_id).map_err(|error| ApiError::invalid("user_id", error.0))?;
    let request = IdempotentRequest::read(&headers, uri.path(), &body)?;
    let CreditsBody { points, reason } = CreditsBody::read(body)?;
    let work = {
        let (state, account) = (state.clone(), account.clone());
        async move {
            let issued = operations::issue_credits(
                &state,
                &account,
                IssueCredits {
                    user,
                    points,
                    reason,
                    trace: None,
                },
                trace.as_ref().map(|Extension(trace)| trace),
            )
            .await
            .map_err(|error| match error {
                // Fewer points would fit: the field to change is this one.
                StoreError::BalanceOverflow => ApiError::from(error).with_field("points"),
                other => ApiError::from(other),
            })?;
            Ok((StatusCode::CREATED, Json(CreditsView::from(&issued))))
        }
    };
    idempotency::respond(&state, &account, request, work).await
}
