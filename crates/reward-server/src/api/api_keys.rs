//! `/v1/api_keys`: an account's API keys. A key's text is shown once, in the answer that creates
//! it; afterwards only its prefix is known (the store keeps a hash).

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use reward_core::ids::ApiKeyId;
use reward_core::time::Timestamp;
use reward_store::records::ApiKey;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::bodies::ApiKeyCreateBody;
use super::error::{ApiError, ApiResult};
use super::extract::{Authenticated, ListBody};
use super::idempotency::{self, IdempotencyKeyHeader, IdempotentRequest};
use super::input::JsonObject;
use super::limits::ensure_room_for_api_key;
use super::schemas::{ApiKeyList, ByIdErrors, ErrorBody, ListErrors};
use super::{parse_path_id, AppState};
use crate::operations::issue_key;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    #[schema(example = "key_01jf2wkmvcfw6ts1qmgzya291c")]
    pub id: String,
    pub name: String,
    /// The key's first characters, to recognise it.
    #[schema(example = "rwd_8ZsHASTx")]
    pub prefix: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Updated at most once a minute.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
    /// Only in the answer to create: the key itself, never retrievable again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id.to_string(),
            name: key.name.to_string(),
            prefix: key.display_prefix,
            created_at: key.created_at,
            last_used_at: key.last_used_at,
            key: None,
        }
    }
}

#[utoipa::path(post, path = "/v1/api_keys", operation_id = "create_api_key", tag = "API keys", summary = "Create an API key",
    description = "An account has at most 100 live keys: one more answers 422 `limit_exceeded` (revoke one first). The key itself is in this answer only; afterwards only its prefix is shown (a replay of this answer for the same Idempotency-Key, kept sealed for 24 h, shows it again). With an Idempotency-Key (kept 24 h) the same key and body answer the first response again and create nothing; the same key with another body or route answers 409.",
    params(IdempotencyKeyHeader),
    request_body = ApiKeyCreateBody, security(("api_key" = [])),
    responses((status = 201, description = "The key, with its text (or, on a replay, the first answer again)", body = ApiKeyView,
            headers(("Idempotent-Replayed" = String, description = "`true` when this answer replays the first one for the same Idempotency-Key and body (nothing new was created); absent otherwise."))),
        (status = 409, description = "The Idempotency-Key was used with another request (`idempotency_conflict`), or one with it is still in progress (`idempotency_in_progress`, with Retry-After)", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: JsonObject,
) -> ApiResult<Response> {
    let request = IdempotentRequest::read(&headers, uri.path(), &body)?;
    let ApiKeyCreateBody { name } = ApiKeyCreateBody::read(body)?;
    let work = {
        let (state, account) = (state.clone(), account.clone());
        async move {
            ensure_room_for_api_key(state.store.as_ref(), &account).await?;
            let (key, plaintext) = issue_key(&state, &account, name).await?;
            let mut view = ApiKeyView::from(key);
            view.key = Some(plaintext);
            Ok((StatusCode::CREATED, Json(view)))
        }
    };
    idempotency::respond(&state, &account, request, work).await
}

/// Every live key of the account, newest first. An account holds few keys, so the list is one
/// page; it keeps the list shape (`next_cursor` is always null) so clients page as elsewhere.
#[utoipa::path(get, path = "/v1/api_keys", operation_id = "list_api_keys", tag = "API keys", summary = "List API keys",
    description = "Every live key of the account, newest first, on one page (`next_cursor` is always null). Only each key's prefix is shown.",
    security(("api_key" = [])),
    responses((status = 200, description = "The account's live keys, newest first", body = ApiKeyList), ListErrors))]
async fn list(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
) -> ApiResult<Json<ListBody<ApiKeyView>>> {
    let keys = state.store.list_api_keys(&account).await?;
    Ok(Json(ListBody {
        data: keys.into_iter().map(ApiKeyView::from).collect(),
        next_cursor: None,
    }))
}

/// Revoking the key that signs this very request is allowed: it is how a leaked key is retired.
#[utoipa::path(delete, path = "/v1/api_keys/{id}", operation_id = "revoke_api_key", tag = "API keys", summary = "Revoke an API key",
    description = "The key stops working at once. Revoking the key that signs this very request is allowed.",
    params(("id" = String, Path, description = "The key's id (key_...)")), security(("api_key" = [])),
    responses((status = 204, description = "Revoked"), ByIdErrors))]
async fn revoke(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_path_id(&id, ApiKeyId::parse, "API key")?;
    state
        .store
        .revoke_api_key(&account, &id)
        .await
        .map_err(ApiError::from_store("API key"))?;
    Ok(StatusCode::NO_CONTENT)
}
