//! Account Settings → Webhooks: the list with each webhook's recent success rate, and the form
//! that creates or edits one. Fields are validated by the same newtypes the API uses
//! (`Name`, `WebhookUrl`, `EventType`); a refused form comes back with each error beside its
//! field and the input kept.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use reward_core::endpoint::selection::EVERY_TYPE;
use reward_core::endpoint::EventSelection;
use reward_core::event::EventType;
use reward_core::ids::WebhookId;
use reward_core::names::{Name, WebhookUrl};
use reward_core::signing::WebhookSecret;
use reward_core::time::Timestamp;
use reward_store::records::{
    AttemptStats, NewWebhook, PageRequest, Webhook, WebhookPatch, WebhookSettings,
};
use serde::Deserialize;

use super::form::FormFields;
use super::page::{cursor_param, decode_cursor, render, see_other, Layout, PageError, PageResult};
use super::session::{SignedForm, SignedIn, HOME};
use crate::operations::{has_room_for_webhook, webhook_limit_message};
use crate::state::AppState;

/// The window of the list's success rate.
const SUCCESS_WINDOW_MS: i64 = 24 * 3600 * 1000;
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
                cursor: decode_cursor(query.cursor.as_deref()),
            },
        )
        .await?;
    let since = Timestamp::now().plus_millis(-SUCCESS_WINDOW_MS);
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

/// One event type's checkbox.
pub struct EventChoice {
    pub value: &'static str,
    pub description: &'static str,
    pub checked: bool,
}

/// Why each field was refused, if it was.
#[derive(Default)]
pub struct FieldErrors {
    pub name: Option<String>,
    pub url: Option<String>,
    pub events: Option<String>,
}

/// The form's values as the person typed them, and its errors.
pub struct WebhookForm {
    pub name: String,
    pub url: String,
    pub events: Vec<EventChoice>,
    pub errors: FieldErrors,
}

impl WebhookForm {
    fn new(name: &str, url: &str, checked: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            url: url.to_owned(),
            events: std::iter::once(EventChoice {
                value: EVERY_TYPE,
                description: "Every event type, also those added later.",
                checked: checked.contains(&EVERY_TYPE),
            })
            .chain(EventType::ALL.iter().map(|kind| EventChoice {
                value: kind.as_str(),
                description: kind.description(),
                checked: checked.contains(&kind.as_str()),
            }))
            .collect(),
            errors: FieldErrors::default(),
        }
    }

    fn of(webhook: &Webhook) -> Self {
        Self::new(
            webhook.name.as_str(),
            webhook.url.as_str(),
            &webhook.events.names(),
        )
    }

    pub fn has_errors(&self) -> bool {
        self.errors.name.is_some() || self.errors.url.is_some() || self.errors.events.is_some()
    }
}

/// A webhook's fields once every one is valid.
struct ValidWebhook {
    name: Name,
    url: WebhookUrl,
    events: EventSelection,
}

/// Validates the posted fields as the API does; on refusal, the form to show again.
fn validate(state: &AppState, fields: &FormFields) -> Result<ValidWebhook, Box<WebhookForm>> {
    let checked = fields.all("events");
    let mut form = WebhookForm::new(fields.text("name"), fields.text("url"), &checked);
    let name = Name::parse(fields.text("name"))
        .map_err(|error| form.errors.name = Some(error.0))
        .ok();
    let url = WebhookUrl::parse(fields.text("url"), state.target_policy)
        .map_err(|error| form.errors.url = Some(error.0))
        .ok();
    let events = if checked.is_empty() {
        form.errors.events = Some("Select at least one event type.".into());
        None
    } else {
        EventSelection::parse(&checked, EventType::ALL.len() + 1)
            .map_err(|error| form.errors.events = Some(error.0))
            .ok()
    };
    match (name, url, events, form.has_errors()) {
        (Some(name), Some(url), Some(events), false) => Ok(ValidWebhook { name, url, events }),
        _ => Err(Box::new(form)),
    }
}

#[derive(Template)]
#[template(path = "webhook_form.html")]
struct FormPage {
    layout: Layout,
    heading: String,
    action: String,
    submit_label: &'static str,
    cancel_href: String,
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
        &FormPage::create(&signed_in, WebhookForm::new("", "", &[])),
    )
}

async fn create(State(state): State<AppState>, form: SignedForm) -> PageResult {
    let valid = match validate(&state, &form.fields) {
        Ok(valid) => valid,
        Err(refused) => return Ok(FormPage::create(&form.signed_in, *refused).refused()),
    };
    let account = &form.signed_in.session.account_id;
    if !has_room_for_webhook(state.store.as_ref(), account).await? {
        let mut refused = WebhookForm::new(
            form.fields.text("name"),
            form.fields.text("url"),
            &form.fields.all("events"),
        );
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
                secret: WebhookSecret::generate(),
                settings: WebhookSettings::default(),
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
    let valid = match validate(&state, &form.fields) {
        Ok(valid) => valid,
        Err(refused) => return Ok(FormPage::edit(&form.signed_in, &id, *refused).refused()),
    };
    let patch = WebhookPatch {
        name: Some(valid.name),
        url: Some(valid.url),
        events: Some(valid.events),
        ..WebhookPatch::default()
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
