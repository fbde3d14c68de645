//! `/v1/webhooks`: endpoints, their secrets, test events, and their deliveries.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use reward_core::event::NewEvent;
use reward_core::ids::WebhookId;
use reward_core::signing::WebhookSecret;
use reward_core::time::Timestamp;
use reward_store::records::NewWebhook;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::bodies::{
    RecoverBody, RotateSecretBody, TestEventBody, WebhookCreateBody, WebhookPatchBody,
};
use super::error::{ApiError, ApiResult};
use super::extract::{Authenticated, ListBody, QueryParams};
use super::filters;
use super::idempotency::{self, IdempotencyKeyHeader, IdempotentRequest};
use super::input::{JsonObject, OptionalJsonObject};
use super::limits::ensure_room_for_webhook;
use super::schemas::{
    ByIdErrors, CreatedFilter, DeliveryFilter, DeliveryList, ErrorBody, ListErrors, ListParams,
    RecoveredView, RotatedSecretView, SecretView, WebhookList,
};
use super::views::{DeliveryView, WebhookView};
use super::{parse_path_id, AppState};
use crate::operations;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, update, remove))
        .routes(routes!(secret))
        .routes(routes!(rotate_secret))
        .routes(routes!(send_test))
        .routes(routes!(deliveries))
        .routes(routes!(recover))
}

#[utoipa::path(post, path = "/v1/webhooks", operation_id = "create_webhook", tag = "Webhooks", summary = "Create a webhook",
    description = "Creates an endpoint that receives every event of the types it subscribes to, signed with its own secret. The answer holds that secret (`whsec_...`); `GET /v1/webhooks/{id}/secret` reads it again. With an Idempotency-Key (kept 24 h) the same key and body answer the first response again and create nothing; the same key with another body or route answers 409.",
    params(IdempotencyKeyHeader),
    request_body = WebhookCreateBody, security(("api_key" = [])),
    responses((status = 201, description = "The webhook, with its signing secret (or, on a replay, the first answer again)", body = WebhookView,
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
    let WebhookCreateBody {
        name,
        url,
        events,
        enabled,
        settings,
        secret,
    } = WebhookCreateBody::read(body, state.target_policy)?;
    let work = {
        let (state, account) = (state.clone(), account.clone());
        async move {
            ensure_room_for_webhook(state.store.as_ref(), &account).await?;
            let secret = secret.unwrap_or_else(WebhookSecret::generate);
            let exposed = secret.expose().to_owned();
            let webhook = state
                .store
                .create_webhook(
                    &account,
                    NewWebhook {
                        name,
                        url,
                        events,
                        enabled,
                        secret,
                        settings,
                    },
                )
                .await?;
            let mut view = WebhookView::from(webhook);
            view.secret = Some(exposed);
            Ok((StatusCode::CREATED, Json(view)))
        }
    };
    idempotency::respond(&state, &account, request, work).await
}

#[utoipa::path(get, path = "/v1/webhooks", operation_id = "list_webhooks", tag = "Webhooks", summary = "List webhooks",
    description = "The account's webhooks, newest first, a page at a time (`limit`, then `cursor`). Secrets are not shown.",
    params(ListParams), security(("api_key" = [])),
    responses((status = 200, description = "A page of webhooks, newest first", body = WebhookList), ListErrors))]
async fn list(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    query: QueryParams,
) -> ApiResult<Json<ListBody<WebhookView>>> {
    let page = state.store.list_webhooks(&account, query.page()?).await?;
    Ok(Json(ListBody::from_page(page, WebhookView::from)))
}

fn webhook_id(id: &str) -> ApiResult<WebhookId> {
    parse_path_id(id, WebhookId::parse, "webhook")
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", operation_id = "get_webhook", tag = "Webhooks", summary = "Get a webhook",
    description = "One webhook of this account, without its secret.",
    params(("id" = String, Path, description = "The webhook id (wh_...)")), security(("api_key" = [])),
    responses((status = 200, description = "The webhook", body = WebhookView), ByIdErrors))]
async fn show(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookView>> {
    let webhook = state
        .store
        .get_webhook(&account, &webhook_id(&id)?)
        .await
        .map_err(ApiError::from_store("webhook"))?;
    Ok(Json(webhook.into()))
}

#[utoipa::path(patch, path = "/v1/webhooks/{id}", operation_id = "update_webhook", tag = "Webhooks", summary = "Update a webhook",
    description = "Changes only the fields given, each validated as on create. A disabled webhook gets no new deliveries.",
    params(("id" = String, Path, description = "The webhook id (wh_...)")), request_body = WebhookPatchBody, security(("api_key" = [])),
    responses((status = 200, description = "The updated webhook", body = WebhookView), ByIdErrors))]
async fn update(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
    body: JsonObject,
) -> ApiResult<Json<WebhookView>> {
    let id = webhook_id(&id)?;
    let WebhookPatchBody(patch) = WebhookPatchBody::read(body, state.target_policy)?;
    let webhook = state
        .store
        .update_webhook(&account, &id, patch)
        .await
        .map_err(ApiError::from_store("webhook"))?;
    Ok(Json(webhook.into()))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", operation_id = "delete_webhook", tag = "Webhooks", summary = "Delete a webhook",
    description = "Deletes the webhook and cancels its pending deliveries.",
    params(("id" = String, Path, description = "The webhook id (wh_...)")), security(("api_key" = [])),
    responses((status = 204, description = "Deleted"), ByIdErrors))]
async fn remove(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_webhook(&account, &webhook_id(&id)?)
        .await
        .map_err(ApiError::from_store("webhook"))?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/secret", operation_id = "get_webhook_secret", tag = "Webhooks", summary = "Get a webhook's signing secret",
    description = "The secret that signs this webhook's deliveries now (`whsec_...`): receivers verify the `webhook-signature` header with it.",
    params(("id" = String, Path, description = "The webhook id (wh_...)")), security(("api_key" = [])),
    responses((status = 200, description = "The current secret", body = SecretView), ByIdErrors))]
async fn secret(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let secrets = state
        .store
        .webhook_secrets(&account, &webhook_id(&id)?)
        .await
        .map_err(ApiError::from_store("webhook"))?;
    Ok(Json(json!({"secret": secrets.current.expose()})))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/secret/rotate", operation_id = "rotate_webhook_secret", tag = "Webhooks", summary = "Rotate a webhook's signing secret",
    description = "Makes a new secret current: a random one, or your own given as `{\"secret\": \"whsec_...\"}` (base64 of 24–64 bytes). Each secret rotated out keeps signing beside it for its own 24 hours, at most 5 at a time (a sixth rotation within 24 hours drops the oldest).",
    params(("id" = String, Path, description = "The webhook id (wh_...)")),
    request_body(content = Option<RotateSecretBody>, description = "Optional: no body for a random secret."),
    security(("api_key" = [])),
    responses((status = 200, description = "The new secret", body = RotatedSecretView), ByIdErrors))]
async fn rotate_secret(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
    OptionalJsonObject(body): OptionalJsonObject,
) -> ApiResult<Json<Value>> {
    let id = webhook_id(&id)?;
    let RotateSecretBody { secret } = RotateSecretBody::read(body)?;
    let previous_expires_at =
        Timestamp::now().plus_millis(reward_core::signing::ROTATION_OVERLAP_MS);
    let secrets = state
        .store
        .rotate_webhook_secret(
            &account,
            &id,
            secret.unwrap_or_else(WebhookSecret::generate),
            previous_expires_at,
            None,
        )
        .await
        .map_err(ApiError::from_store("webhook"))?;
    Ok(Json(json!({
        "secret": secrets.current.expose(),
        "previous_secret_expires_at": previous_expires_at,
    })))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/test", operation_id = "send_test_event", tag = "Webhooks", summary = "Send a test event",
    description = "Emits the type's example event, under a fresh id, to this webhook only; a disabled webhook gets nothing new, so it answers 409 `webhook_disabled` (enable it first). With an Idempotency-Key (kept 24 h) the same key and body answer the first response again and emit nothing; the same key with another body or route answers 409.",
    params(("id" = String, Path, description = "The webhook id (wh_...)"), IdempotencyKeyHeader),
    request_body = TestEventBody, security(("api_key" = [])),
    responses((status = 202, description = "The delivery of the test event (or, on a replay, the first answer again)", body = DeliveryView,
            headers(("Idempotent-Replayed" = String, description = "`true` when this answer replays the first one for the same Idempotency-Key and body (nothing new was created); absent otherwise."))),
        (status = 409, description = "The webhook is disabled (`webhook_disabled`); or the Idempotency-Key was used with another request (`idempotency_conflict`), or one with it is still in progress (`idempotency_in_progress`, with Retry-After)", body = ErrorBody), ByIdErrors))]
async fn send_test(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: JsonObject,
) -> ApiResult<Response> {
    let id = webhook_id(&id)?;
    let request = IdempotentRequest::read(&headers, uri.path(), &body)?;
    let TestEventBody { event_type: kind } = TestEventBody::read(body)?;
    let work = {
        let (state, account) = (state.clone(), account.clone());
        async move {
            let event = NewEvent::test_event(Timestamp::now(), kind);
            let delivery = operations::send_test_event(&state, &account, &id, event)
                .await
                .map_err(ApiError::from_store("webhook"))?;
            Ok((StatusCode::ACCEPTED, Json(DeliveryView::from(delivery))))
        }
    };
    idempotency::respond(&state, &account, request, work).await
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", operation_id = "list_deliveries", tag = "Deliveries", summary = "List a webhook's deliveries",
    description = "This webhook's deliveries, newest first, a page at a time; `status` keeps only those in one state, `created_after` and `created_before` a time range (both exclusive).",
    params(("id" = String, Path, description = "The webhook id (wh_...)"), ListParams, DeliveryFilter, CreatedFilter), security(("api_key" = [])),
    responses((status = 200, description = "A page of deliveries, newest first", body = DeliveryList),
        (status = 404, description = "No such webhook", body = ErrorBody), ListErrors))]
async fn deliveries(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
    query: QueryParams,
) -> ApiResult<Json<ListBody<DeliveryView>>> {
    let id = webhook_id(&id)?;
    let page = query.page()?;
    let filters = filters::webhook_deliveries(&query, id.clone())?;
    // Another account's webhook, or none, is a 404 rather than an empty list.
    state
        .store
        .get_webhook(&account, &id)
        .await
        .map_err(ApiError::from_store("webhook"))?;
    let found = state
        .store
        .search_deliveries(&account, &filters, page)
        .await?;
    Ok(Json(ListBody::from_page(found, DeliveryView::from)))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/recover", operation_id = "recover_deliveries", tag = "Deliveries", summary = "Recover failed deliveries",
    description = "Re-queues every failed delivery of this webhook created since the given time, with a fresh retry schedule. Explicit, so they go out of order: on a `per_user` webhook they wait for none of their users' other deliveries.",
    params(("id" = String, Path, description = "The webhook id (wh_...)")), request_body = RecoverBody, security(("api_key" = [])),
    responses((status = 202, description = "How many were re-queued", body = RecoveredView), ByIdErrors))]
async fn recover(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
    body: JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = webhook_id(&id)?;
    let RecoverBody { since } = RecoverBody::read(body)?;
    let recovered = state
        .store
        .recover_deliveries(&account, &id, since)
        .await
        .map_err(ApiError::from_store("webhook"))?;
    Ok((StatusCode::ACCEPTED, Json(json!({"recovered": recovered}))))
}
