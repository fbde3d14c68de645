//! Account Settings → Webhooks: the list with each webhook's recent success rate, and the
//! handlers of the form that creates or edits one (its fields and their validation are in
//! [`super::webhook_form`]).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use reward_core::endpoint::ExtraHeaders;
use reward_core::ids::WebhookId;
use reward_core::signing::WebhookSecret;
use reward_core::stats::StatsPeriod;
use reward_core::time::Timestamp;
use reward_store::records::{AttemptStats, NewWebhook, PageRequest, Webhook, WebhookPatch};
use serde::Deserialize;

use super::page::{cursor_param, decode_cursor, render, see_other, Layout, PageError, PageResult};
use super::session::{SignedForm, SignedIn, HOME};
use super::webhook_form::{validate, WebhookForm};
use crate::operations::{has_room_for_webhook, webhook_limit_message};
use crate::state::AppState;

/// Webhooks per page of the list.
const PAGE_SIZE: u32 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings", get(|| async { see_other(HOME) }))
        .route("/settings/webhooks", get(list).post(create))
        .route("/settings/webhooks/new", get(new_form))
        .route("/settings/webhooks/{id}/edit", get(edit_form).post(update))
}

/// A webhook id from a path; one that cannot be valid names nothing.
pub fn webhook_id(text: &str) -> PageResult<WebhookId> {
    WebhookId::parse(text).map_err(|_| PageError::NotFound("webhook"))
}

#[derive(Deserialize)]
pub struct ListQuery {
    pub notice: Option<String>,
    pub cursor: Option<String>,
}

/// A recent success rate as the list shows it.
pub struct SuccessRate {
    /// "99.5%", or "—" without attempts.
    pub text: String,
    /// "of 200 attempts", or "No attempts".
    pub detail: String,
    /// "good", "warn", "bad" or "none": the colour, always beside the text.
    pub level: &'static str,
}

impl SuccessRate {
    pub fn of(stats: Option<&AttemptStats>) -> Self {
        let Some(stats) = stats.filter(|stats| stats.attempts > 0) else {
            return Self {
                text: "—".into(),
                detail: "No attempts".into(),
                level: "none",
            };
        };
        // Rounded down to a tenth of a percent: 199 of 200 is 99.5%, never "100%".
        let permille = stats.succeeded.min(stats.attempts) * 1000 / stats.attempts;
        let text = if permille % 10 == 0 {
            format!("{}%", permille / 10)
        } else {
            format!("{}.{}%", permille / 10, permille % 10)
        };
        let plural = if stats.attempts == 1 { "" } else { "s" };
        Self {
            text,
            detail: format!("of {} attempt{plural}", stats.attempts),
            level: match permille {
                950.. => "good",
                500.. => "warn",
                _ => "bad",
            },
        }
    }
}

pub struct WebhookRow {
    pub id: String,
    pub name: String,
    pub url: String,
    pub events: Vec<&'static str>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub success: SuccessRate,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    layout: Layout,
    webhooks: Vec<WebhookRow>,
    next_page: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let account = &signed_in.session.account_id;
    let page = state
        .store
        .list_webhooks(
            account,
            PageRequest {
                limit: PAGE_SIZE,
                cursor: decode_cursor(query.cursor.as_deref())?,
            },
        )
        .await?;
    // The hours of a webhook's 24-hour health chart, so the list and its page agree.
    let since = StatsPeriod::Day.since(Timestamp::now());
    let stats = state.store.attempt_stats(account, since).await?;
    let webhooks = page
        .items
        .into_iter()
        .map(|webhook: Webhook| {
            let stats = stats.iter().find(|stats| stats.webhook_id == webhook.id);
            WebhookRow {
                id: webhook.id.to_string(),
                name: webhook.name.to_string(),
                url: webhook.url.as_str().to_owned(),
                events: webhook.events.names(),
                enabled: webhook.enabled,
                disabled_reason: webhook.disabled_reason,
                success: SuccessRate::of(stats),
            }
        })
        .collect();
    let page = WebhooksPage {
        layout: Layout::settings(&signed_in, "Webhooks", "webhooks")
            .with_notice(query.notice.as_deref()),
        webhooks,
        next_page: cursor_param(page.next_cursor),
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "webhook_form.html")]
struct FormPage {
    layout: Layout,
    heading: String,
    action: String,
    submit_label: &'static str,
    cancel_href: String,
    /// Whether the form offers the signing secret: on create only (rotation changes it later).
    asks_secret: bool,
    form: WebhookForm,
}

impl FormPage {
    fn create(signed_in: &SignedIn, form: WebhookForm) -> Self {
        Self {
            layout: Layout::settings(signed_in, "Create Webhook", "webhooks"),
            heading: "Create Webhook".into(),
            action: "/settings/webhooks".into(),
            submit_label: "Create Webhook",
            cancel_href: HOME.into(),
            asks_secret: true,
            form,
        }
    }

    fn edit(signed_in: &SignedIn, id: &WebhookId, form: WebhookForm) -> Self {
        Self {
            layout: Layout::settings(signed_in, "Edit webhook", "webhooks"),
            heading: "Edit webhook".into(),
            action: format!("/settings/webhooks/{id}/edit"),
            submit_label: "Save changes",
            cancel_href: format!("/settings/webhooks/{id}"),
            asks_secret: false,
            form,
        }
    }

    /// The form shown again after a refusal: 422, like the API.
    fn refused(self) -> Response {
        render(StatusCode::UNPROCESSABLE_ENTITY, &self)
    }
}

async fn new_form(signed_in: SignedIn) -> Response {
    render(
        StatusCode::OK,
        &FormPage::create(&signed_in, WebhookForm::blank()),
    )
}

async fn create(State(state): State<AppState>, form: SignedForm) -> PageResult {
    let valid = match validate(&form.fields, state.target_policy, &ExtraHeaders::none()) {
        Ok(valid) => valid,
        Err(refused) => return Ok(FormPage::create(&form.signed_in, *refused).refused()),
    };
    let account = &form.signed_in.session.account_id;
    if !has_room_for_webhook(state.store.as_ref(), account).await? {
        let mut refused = WebhookForm::posted(&form.fields);
        refused.errors.name = Some(webhook_limit_message());
        return Ok(FormPage::create(&form.signed_in, refused).refused());
    }
    state
        .store
        .create_webhook(
            &form.signed_in.session.account_id,
            NewWebhook {
                name: valid.name,
                url: valid.url,
                events: valid.events,
                enabled: true,
                secret: valid.secret.unwrap_or_else(WebhookSecret::generate),
                settings: valid.settings,
            },
        )
        .await?;
    // Back to the list, where the new webhook now shows: the seed's steps end there.
    Ok(see_other("/settings/webhooks?notice=created"))
}

async fn edit_form(
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
    Ok(render(
        StatusCode::OK,
        &FormPage::edit(&signed_in, &id, WebhookForm::of(&webhook)),
    ))
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: SignedForm,
) -> PageResult {
    let id = webhook_id(&id)?;
    // The stored headers, whose masked values the form sends back when they are left as shown.
    let stored = state
        .store
        .get_webhook(&form.signed_in.session.account_id, &id)
        .await
        .map_err(PageError::from_store("webhook"))?;
    let valid = match validate(&form.fields, state.target_policy, &stored.settings.headers) {
        Ok(valid) => valid,
        Err(refused) => return Ok(FormPage::edit(&form.signed_in, &id, *refused).refused()),
    };
    let settings = valid.settings;
    let patch = WebhookPatch {
        name: Some(valid.name),
        url: Some(valid.url),
        events: Some(valid.events),
        enabled: None,
        filter: Some(settings.filter),
        headers: Some(settings.headers),
        description: Some(settings.description),
        metadata: Some(settings.metadata),
        rate_limit: Some(settings.rate_limit),
        ordering: Some(settings.ordering),
    };
    state
        .store
        .update_webhook(&form.signed_in.session.account_id, &id, patch)
        .await
        .map_err(PageError::from_store("webhook"))?;
    Ok(see_other(&format!(
        "/settings/webhooks/{id}?notice=updated"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(attempts: u64, succeeded: u64) -> SuccessRate {
        SuccessRate::of(Some(&AttemptStats {
            webhook_id: WebhookId::generate(),
            attempts,
            succeeded,
        }))
    }

    #[test]
    fn success_rates_round_down_and_say_how_many() {
        assert_eq!(rate(200, 199).text, "99.5%");
        assert_eq!(rate(3, 3).text, "100%");
        assert_eq!(rate(3, 1).text, "33.3%");
        assert_eq!(rate(1, 0).detail, "of 1 attempt");
        assert_eq!(rate(3, 0).level, "bad");
        assert_eq!(SuccessRate::of(None).level, "none");
        assert_eq!(rate(0, 0).text, "—");
    }
}
