//! One webhook's page: its signing secret (hidden until revealed, rotatable), its settings
//! (filter, headers with masked values, notes, rate limit), test events,
//! enable/disable, recent deliveries with their attempts and a retry, and deletion after a
//! confirmation page.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use reward_core::event::{EventType, NewEvent};
use reward_core::ids::{AccountId, DeliveryId, WebhookId};
use reward_core::signing::WebhookSecret;
use reward_core::stats::StatsPeriod;
use reward_core::time::Timestamp;
use reward_store::records::{PageRequest, Webhook, WebhookPatch, WebhookSettings, WebhookStats};
use reward_store::StoreError;

use super::delivery_rows::{delivery_rows, DeliveryRow};
use super::health_chart;
use super::page::{
    cursor_param, decode_cursor, render, see_other, Layout, PageError, PageResult, Time,
};
use super::session::{SignedForm, SignedIn};
use super::webhook_form::{mask, read_secret};
use super::webhooks::{webhook_id, ListQuery};
use crate::operations;
use crate::state::AppState;

/// Deliveries per page of the webhook's page.
const DELIVERIES_PER_PAGE: u32 = 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/webhooks/{id}", get(show))
        .route("/settings/webhooks/{id}/secret/reveal", post(reveal_secret))
        .route("/settings/webhooks/{id}/secret/rotate", post(rotate_secret))
        .route("/settings/webhooks/{id}/test", post(send_test))
        .route("/settings/webhooks/{id}/enable", post(enable))
        .route("/settings/webhooks/{id}/disable", post(disable))
        .route(
            "/settings/webhooks/{id}/delete",
            get(confirm_delete).post(delete),
        )
        .route(
            "/settings/webhooks/{id}/deliveries/{delivery}/retry",
            post(retry),
        )
}

/// The secret, when the page shows it.
struct ShownSecret {
    value: String,
    /// After a rotation: until when the previous secret still signs.
    previous_expires_at: Option<Time>,
}

/// A webhook's settings as its page shows them: header values masked as on the edit form.
struct ShownSettings {
    filter: Option<String>,
    headers: Vec<(String, String)>,
    description: Option<String>,
    metadata: Vec<(String, String)>,
    rate_limit: Option<u32>,
    per_user: bool,
}

impl From<&WebhookSettings> for ShownSettings {
    fn from(settings: &WebhookSettings) -> Self {
        Self {
            filter: settings
                .filter
                .as_ref()
                .and_then(|filter| serde_json::to_string_pretty(filter.as_json()).ok()),
            headers: settings
                .headers
                .iter()
                .map(|(name, value)| (name.to_owned(), mask(value)))
                .collect(),
            description: settings
                .description
                .as_ref()
                .map(|description| description.as_str().to_owned()),
            metadata: settings
                .metadata
                .iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
            rate_limit: settings.rate_limit.map(|limit| limit.per_second()),
            per_user: settings.ordering.is_per_user(),
        }
    }
}

struct TestChoice {
    value: &'static str,
    description: &'static str,
    subscribed: bool,
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct WebhookPage {
    layout: Layout,
    webhook: Webhook,
    id: String,
    settings: ShownSettings,
    /// Its health over 24 hours and over 7 days.
    health: Vec<HealthPanel>,
    secret: Option<ShownSecret>,
    /// Which secret the Rotate form replaces ([`WebhookSecret::version`]), so a form sent again (a
    /// reload of the page a rotation answered) does not rotate a second time.
    secret_version: String,
    /// Why the secret typed for a rotation was refused (nothing was rotated).
    rotate_error: Option<String>,
    test_choices: Vec<TestChoice>,
    deliveries: Vec<DeliveryRow>,
    /// The `?cursor=` of older deliveries, when there are more.
    older: Option<String>,
    /// Whether this page shows older deliveries (so it offers a way back to the newest).
    paged: bool,
}

/// One period of a webhook's health: the chart (SVG drawn here, no script) and its figures.
struct HealthPanel {
    heading: &'static str,
    svg: String,
    /// e.g. `98.5%`; `None` without attempts.
    success_rate: Option<String>,
    pending: u64,
    failing_since: Option<Time>,
}

impl HealthPanel {
    fn of(id: &WebhookId, stats: &WebhookStats) -> Self {
        let (heading, period, title) = match stats.period {
            StatsPeriod::Day => (
                "Last 24 hours",
                health_chart::Period::Day,
                "Attempts per hour, last 24 hours",
            ),
            StatsPeriod::Week => (
                "Last 7 days",
                health_chart::Period::Week,
                "Attempts per day, last 7 days",
            ),
        };
        let buckets = &stats.buckets;
        let chart_id = format!("health-{}-{}", stats.period.as_str(), id.as_str());
        Self {
            heading,
            svg: health_chart::draw(&chart_id, title, period, buckets),
            success_rate: stats
                .success_rate
                .map(|rate| format!("{:.1}%", rate * 100.0)),
            pending: stats.pending,
            failing_since: stats.failing_since.map(Time::from),
        }
    }
}

/// Builds the page: the webhook, and one page of its deliveries with their attempts.
async fn webhook_page(
    state: &AppState,
    signed_in: &SignedIn,
    id: &WebhookId,
    cursor: Option<String>,
    secret: Option<ShownSecret>,
) -> PageResult<WebhookPage> {
    let account = &signed_in.session.account_id;
    let webhook = state
        .store
        .get_webhook(account, id)
        .await
        .map_err(PageError::from_store("webhook"))?;
    let paged = cursor.is_some();
    let page = state
        .store
        .list_deliveries(
            account,
            id,
            None,
            PageRequest {
                limit: DELIVERIES_PER_PAGE,
                cursor,
            },
        )
        .await
        .map_err(PageError::from_store("webhook"))?;
    let deliveries = delivery_rows(state, account, &page.items).await?;
    let test_choices = EventType::ALL
        .iter()
        .map(|kind| TestChoice {
            value: kind.as_str(),
            description: kind.description(),
            subscribed: webhook.events.includes(*kind),
        })
        .collect();
    // A secret that cannot be opened (the server started with another key) must not hide the
    // page: its form then names no secret, and Rotate replaces whatever is there.
    let secret_version = state
        .store
        .webhook_secrets(account, id)
        .await
        .map(|secrets| secrets.current.version())
        .unwrap_or_default();
    let mut health = Vec::with_capacity(StatsPeriod::ALL.len());
    for period in StatsPeriod::ALL {
        let stats = state
            .store
            .webhook_stats(account, id, period, Timestamp::now())
            .await
            .map_err(PageError::from_store("webhook"))?;
        health.push(HealthPanel::of(id, &stats));
    }
    Ok(WebhookPage {
        layout: Layout::settings(signed_in, webhook.name.as_str(), "webhooks"),
        id: webhook.id.to_string(),
        settings: ShownSettings::from(&webhook.settings),
        health,
        webhook,
        secret,
        secret_version,
        rotate_error: None,
        test_choices,
        deliveries,
        older: cursor_param(page.next_cursor),
        paged,
    })
}

async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let id = webhook_id(&id)?;
    let cursor = decode_cursor(query.cursor.as_deref())?;
    let mut page = webhook_page(&state, &signed_in, &id, cursor, None).await?;
    page.layout = page.layout.with_notice(query.notice.as_deref());
    Ok(render(StatusCode::OK, &page))
}

/// Shows the page with the secret visible. It answers the POST itself rather than redirecting,
/// so the secret never appears in a URL or the browser's history.
async fn reveal_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: SignedForm,
) -> PageResult {
    let id = webhook_id(&id)?;
    let page = with_current_secret(&state, &form.signed_in, &id).await?;
    Ok(render(StatusCode::OK, &page))
}

/// The webhook's page with its current secret shown.
async fn with_current_secret(
    state: &AppState,
    signed_in: &SignedIn,
    id: &WebhookId,
) -> PageResult<WebhookPage> {
    let secrets = state
        .store
        .webhook_secrets(&signed_in.session.account_id, id)
        .await
        .map_err(PageError::from_store("webhook"))?;
    let shown = ShownSecret {
        value: secrets.current.expose().to_owned(),
        previous_expires_at: None,
    };
    webhook_page(state, signed_in, id, None, Some(shown)).await
}

/// Rotates the secret and shows the new one, with how long the old one keeps signing. A form
/// that names another secret than the current one (sent again: a reload of the page this
/// answered) rotates nothing and shows the current secret, which that first rotation made.
async fn rotate_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: SignedForm,
) -> PageResult {
    let id = webhook_id(&id)?;
    let account = &form.signed_in.session.account_id;
    let replaces = form.fields.text("replaces");
    let chosen = match read_secret(form.fields.text("secret")) {
        Ok(chosen) => chosen,
        Err(error) => {
            let mut page = webhook_page(&state, &form.signed_in, &id, None, None).await?;
            page.rotate_error = Some(error);
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let previous_expires_at =
        Timestamp::now().plus_millis(reward_core::signing::ROTATION_OVERLAP_MS);
    let rotated = state
        .store
        .rotate_webhook_secret(
            account,
            &id,
            chosen.unwrap_or_else(WebhookSecret::generate),
            previous_expires_at,
            (!replaces.is_empty()).then_some(replaces),
        )
        .await;
    let secrets = match rotated {
        Err(StoreError::SecretChanged) => {
            let mut page = with_current_secret(&state, &form.signed_in, &id).await?;
            page.layout = page.layout.with_notice(Some("secret_already_rotated"));
            return Ok(render(StatusCode::OK, &page));
        }
        other => other.map_err(PageError::from_store("webhook"))?,
    };
    let shown = ShownSecret {
        value: secrets.current.expose().to_owned(),
        previous_expires_at: Some(previous_expires_at.into()),
    };
    let page = webhook_page(&state, &form.signed_in, &id, None, Some(shown)).await?;
    Ok(render(StatusCode::OK, &page))
}

async fn send_test(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: SignedForm,
) -> PageResult {
    let id = webhook_id(&id)?;
    // The buttons only send known types; anything else was not sent by our page.
    let kind = EventType::parse(form.fields.text("type"))
        .ok_or(PageError::BadForm(StatusCode::UNPROCESSABLE_ENTITY))?;
    let event = NewEvent::test_event(Timestamp::now(), kind);
    let notice =
        match operations::send_test_event(&state, &form.signed_in.session.account_id, &id, event)
            .await
        {
            Ok(_) => "test_sent",
            Err(StoreError::WebhookDisabled(_)) => "test_disabled",
            Err(other) => return Err(PageError::from_store("webhook")(other)),
        };
    Ok(see_other(&format!(
        "/settings/webhooks/{id}?notice={notice}#deliveries"
    )))
}

async fn set_enabled(state: &AppState, account: &AccountId, id: &str, enabled: bool) -> PageResult {
    let id = webhook_id(id)?;
    let patch = WebhookPatch {
        enabled: Some(enabled),
        ..WebhookPatch::default()
    };
    state
        .store
        .update_webhook(account, &id, patch)
        .await
        .map_err(PageError::from_store("webhook"))?;
    let notice = if enabled { "enabled" } else { "disabled" };
    Ok(see_other(&format!(
        "/settings/webhooks/{id}?notice={notice}"
    )))
}

async fn enable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: SignedForm,
) -> PageResult {
    set_enabled(&state, &form.signed_in.session.account_id, &id, true).await
}

async fn disable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: SignedForm,
) -> PageResult {
    set_enabled(&state, &form.signed_in.session.account_id, &id, false).await
}

#[derive(Template)]
#[template(path = "webhook_delete.html")]
struct DeletePage {
    layout: Layout,
    id: String,
    name: String,
    url: String,
}

async fn confirm_delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> PageResult {
    let id = webhook_id(&id)?;
    let webhook = state
        .store
        .get_webhook(&signed_in.session.account_id, &id)
        .await
        .map_err(PageError::from_store("webhook"))?;
    let page = DeletePage {
        layout: Layout::settings(&signed_in, "Delete webhook", "webhooks"),
        id: id.to_string(),
        name: webhook.name.to_string(),
        url: webhook.url.as_str().to_owned(),
    };
    Ok(render(StatusCode::OK, &page))
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: SignedForm,
) -> PageResult {
    let id = webhook_id(&id)?;
    state
        .store
        .delete_webhook(&form.signed_in.session.account_id, &id)
        .await
        .map_err(PageError::from_store("webhook"))?;
    Ok(see_other("/settings/webhooks?notice=deleted"))
}

/// Asks for one attempt of the delivery now, then shows the webhook's page again.
async fn retry(
    State(state): State<AppState>,
    Path((id, delivery)): Path<(String, String)>,
    form: SignedForm,
) -> PageResult<Response> {
    let id = webhook_id(&id)?;
    let delivery = DeliveryId::parse(&delivery).map_err(|_| PageError::NotFound("delivery"))?;
    let account = &form.signed_in.session.account_id;
    let found = state
        .store
        .get_delivery(account, &delivery)
        .await
        .map_err(PageError::from_store("delivery"))?;
    // The path names the webhook too: a delivery of another webhook is not this page's.
    if found.delivery.webhook_id != id {
        return Err(PageError::NotFound("delivery"));
    }
    state
        .store
        .request_retry(account, &delivery)
        .await
        .map_err(PageError::from_store("delivery"))?;
    Ok(see_other(&format!(
        "/settings/webhooks/{id}?notice=retried#deliveries"
    )))
}
