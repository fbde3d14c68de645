//! `/v1/webhooks`: endpoints, their secrets, test events, and their deliveries.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use reward_core::event::{EventType, NewEvent};
use reward_core::ids::WebhookId;
use reward_core::names::{Name, WebhookUrl};
use reward_core::signing::WebhookSecret;
use reward_core::time::Timestamp;
use reward_store::records::{DeliveryStatus, NewWebhook, WebhookPatch};
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::extract::{Authenticated, ListBody, QueryParams};
use super::input::JsonObject;
use super::views::{DeliveryView, WebhookView};
use super::{parse_path_id, AppState};

/// How long a rotated-out secret keeps signing beside the new one.
const ROTATION_OVERLAP_MS: i64 = 24 * 3600 * 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks", post(create).get(list))
        .route("/v1/webhooks/{id}", get(show).patch(update).delete(remove))
        .route("/v1/webhooks/{id}/secret", get(secret))
        .route("/v1/webhooks/{id}/secret/rotate", post(rotate_secret))
        .route("/v1/webhooks/{id}/test", post(send_test))
        .route("/v1/webhooks/{id}/deliveries", get(deliveries))
        .route("/v1/webhooks/{id}/recover", post(recover))
}

const FIELDS: [&str; 4] = ["name", "url", "events", "enabled"];

fn parse_name(text: &str) -> ApiResult<Name> {
    Name::parse(text).map_err(|error| ApiError::invalid("name", error.0))
}

fn parse_url(state: &AppState, text: &str) -> ApiResult<WebhookUrl> {
    WebhookUrl::parse(text, state.target_policy).map_err(|error| ApiError::invalid("url", error.0))
}

pub fn parse_event_type(field: &str, text: &str) -> ApiResult<EventType> {
    EventType::parse(text).ok_or_else(|| {
        let known: Vec<&str> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
        ApiError::invalid(
            field,
            format!(
                "Unknown event type '{text}'. Known types: {}.",
                known.join(", ")
            ),
        )
    })
}

fn parse_events(names: Vec<String>) -> ApiResult<Vec<EventType>> {
    if names.is_empty() {
        return Err(ApiError::invalid(
            "events",
            "Subscribe to at least one event type.",
        ));
    }
    let mut events = Vec::with_capacity(names.len());
    for name in &names {
        let kind = parse_event_type("events", name)?;
        if !events.contains(&kind) {
            events.push(kind);
        }
    }
    Ok(events)
}

async fn create(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    mut body: JsonObject,
) -> ApiResult<(StatusCode, Json<WebhookView>)> {
    body.only(&FIELDS)?;
    let name = parse_name(&body.string("name")?)?;
    let url = parse_url(&state, &body.string("url")?)?;
    let events = parse_events(body.string_list("events")?)?;
    let enabled = body.bool_if_present("enabled")?.unwrap_or(true);
    let secret = WebhookSecret::generate();
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
            },
        )
        .await?;
    let mut view = WebhookView::from(webhook);
    view.secret = Some(exposed);
    Ok((StatusCode::CREATED, Json(view)))
}

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

async fn update(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
    mut body: JsonObject,
) -> ApiResult<Json<WebhookView>> {
    let id = webhook_id(&id)?;
    body.only(&FIELDS)?;
    let patch = WebhookPatch {
        name: body
            .string_if_present("name")?
            .as_deref()
            .map(parse_name)
            .transpose()?,
        url: body
            .string_if_present("url")?
            .map(|url| parse_url(&state, &url))
            .transpose()?,
        events: body
            .string_list_if_present("events")?
            .map(parse_events)
            .transpose()?,
        enabled: body.bool_if_present("enabled")?,
    };
    let webhook = state
        .store
        .update_webhook(&account, &id, patch)
        .await
        .map_err(ApiError::from_store("webhook"))?;
    Ok(Json(webhook.into()))
}

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

async fn rotate_secret(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let previous_expires_at = Timestamp::now().plus_millis(ROTATION_OVERLAP_MS);
    let secrets = state
        .store
        .rotate_webhook_secret(
            &account,
            &webhook_id(&id)?,
            WebhookSecret::generate(),
            previous_expires_at,
        )
        .await
        .map_err(ApiError::from_store("webhook"))?;
    Ok(Json(json!({
        "secret": secrets.current.expose(),
        "previous_secret_expires_at": previous_expires_at,
    })))
}

async fn send_test(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
    mut body: JsonObject,
) -> ApiResult<(StatusCode, Json<DeliveryView>)> {
    let id = webhook_id(&id)?;
    body.only(&["type"])?;
    let kind = parse_event_type("type", &body.string("type")?)?;
    let event = NewEvent::test_event(Timestamp::now(), kind);
    let delivery = state
        .store
        .send_test_event(&account, &id, event)
        .await
        .map_err(ApiError::from_store("webhook"))?;
    Ok((StatusCode::ACCEPTED, Json(delivery.into())))
}

async fn deliveries(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
    query: QueryParams,
) -> ApiResult<Json<ListBody<DeliveryView>>> {
    let id = webhook_id(&id)?;
    let page = query.page()?;
    let status = match query.get("status") {
        None => None,
        Some(text) => Some(DeliveryStatus::parse(text).ok_or_else(|| {
            ApiError::invalid(
                "status",
                "status must be one of pending, succeeded, failed.",
            )
        })?),
    };
    let found = state
        .store
        .list_deliveries(&account, &id, status, page)
        .await
        .map_err(ApiError::from_store("webhook"))?;
    Ok(Json(ListBody::from_page(found, DeliveryView::from)))
}

async fn recover(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
    mut body: JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = webhook_id(&id)?;
    body.only(&["since"])?;
    let since_text = body.string("since")?;
    let since = Timestamp::parse_rfc3339(&since_text).ok_or_else(|| {
        ApiError::invalid(
            "since",
            "since must be an RFC 3339 time, e.g. 2024-12-14T15:29:18.821Z.",
        )
    })?;
    let recovered = state
        .store
        .recover_deliveries(&account, &id, since)
        .await
        .map_err(ApiError::from_store("webhook"))?;
    Ok((StatusCode::ACCEPTED, Json(json!({"recovered": recovered}))))
}
