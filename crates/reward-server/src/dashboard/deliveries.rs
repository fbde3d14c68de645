//! Account Settings → Deliveries: every webhook's deliveries in one search (webhook, event type,
//! status, time range), newest first with their attempts, and **Resend**: a delivery's event
//! sent again to its webhook, from this page or the webhook's own.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use reward_core::event::EventType;
use reward_core::ids::{DeliveryId, WebhookId};
use reward_store::records::{DeliveryQuery, DeliveryStatus, PageRequest, Webhook};
use reward_store::StoreError;

use super::delivery_rows::{delivery_rows, DeliveryRow};
use super::delivery_search::{SearchErrors, SearchForm};
use super::form::FormFields;
use super::page::{cursor_param, decode_cursor, render, see_other, Layout, PageError, PageResult};
use super::session::{SignedForm, SignedIn};
use crate::operations::{self, MAX_WEBHOOKS_PER_ACCOUNT};
use crate::state::AppState;

/// Deliveries per page of the search.
const DELIVERIES_PER_PAGE: u32 = 20;
const PAGE_PATH: &str = "/settings/deliveries";
/// What the webhook page's Resend form sends as `from`, to be shown that page again.
const FROM_WEBHOOK_PAGE: &str = "webhook";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PAGE_PATH, get(search))
        .route("/settings/deliveries/{delivery}/resend", post(resend))
}

/// An option of a `<select>`.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

fn choices(options: impl Iterator<Item = (String, String)>, chosen: &str) -> Vec<Choice> {
    options
        .map(|(value, label)| Choice {
            selected: value == chosen,
            value,
            label,
        })
        .collect()
}

/// A found delivery, with the name of its webhook.
struct FoundRow {
    row: DeliveryRow,
    webhook_name: String,
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    layout: Layout,
    form: SearchForm,
    errors: SearchErrors,
    webhooks: Vec<Choice>,
    event_types: Vec<Choice>,
    statuses: Vec<Choice>,
    /// `None` when the form had errors and no search ran.
    deliveries: Option<Vec<FoundRow>>,
    /// The search as a query string: kept by the pager and sent back by each Resend form.
    search: String,
    /// The `?cursor=` of older deliveries, when there are more.
    older: Option<String>,
    /// Whether this page shows older deliveries (so it offers a way back to the newest).
    paged: bool,
}

impl DeliveriesPage {
    /// `/settings/deliveries` with the search and `extra` (e.g. `cursor=…`).
    fn link(&self, extra: Option<(&str, &str)>) -> String {
        let mut query = self.search.clone();
        if let Some((name, value)) = extra {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(name);
            query.push('=');
            query.push_str(value);
        }
        if query.is_empty() {
            PAGE_PATH.to_owned()
        } else {
            format!("{PAGE_PATH}?{query}")
        }
    }

    fn older_link(&self) -> Option<String> {
        let cursor = self.older.as_deref()?;
        Some(self.link(Some(("cursor", cursor))))
    }
}

async fn search(
    State(state): State<AppState>,
    signed_in: SignedIn,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let fields = FormFields::parse(raw.unwrap_or_default().as_bytes());
    let form = SearchForm::from_fields(&fields);
    let account = &signed_in.session.account_id;
    // One page holds them all: an account has at most this many webhooks.
    let webhooks = state
        .store
        .list_webhooks(
            account,
            PageRequest {
                limit: MAX_WEBHOOKS_PER_ACCOUNT as u32,
                cursor: None,
            },
        )
        .await?
        .items;
    let ids: Vec<WebhookId> = webhooks.iter().map(|webhook| webhook.id.clone()).collect();
    let cursor = decode_cursor(fields.get("cursor"))?;
    let paged = cursor.is_some();
    let (status, errors, deliveries, older) = match form.query(&ids) {
        Ok(query) => {
            let (found, older) = find(&state, &signed_in, &query, cursor, &webhooks).await?;
            (StatusCode::OK, SearchErrors::default(), Some(found), older)
        }
        Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, errors, None, None),
    };
    let page = DeliveriesPage {
        layout: Layout::settings(&signed_in, "Deliveries", "deliveries")
            .with_notice(fields.get("notice")),
        webhooks: choices(
            webhooks
                .iter()
                .map(|webhook| (webhook.id.to_string(), webhook.name.to_string())),
            &form.webhook,
        ),
        event_types: choices(
            EventType::ALL
                .iter()
                .map(|kind| (kind.as_str().to_owned(), kind.as_str().to_owned())),
            &form.event_type,
        ),
        statuses: choices(
            [
                DeliveryStatus::Pending,
                DeliveryStatus::Succeeded,
                DeliveryStatus::Failed,
            ]
            .iter()
            .map(|status| (status.as_str().to_owned(), status.as_str().to_owned())),
            &form.status,
        ),
        search: form.query_string(),
        form,
        errors,
        deliveries,
        older,
        paged,
    };
    Ok(render(status, &page))
}

/// One page of the search's deliveries as rows, each with its webhook's name, and the cursor of
/// the next page.
async fn find(
    state: &AppState,
    signed_in: &SignedIn,
    query: &DeliveryQuery,
    cursor: Option<String>,
    webhooks: &[Webhook],
) -> PageResult<(Vec<FoundRow>, Option<String>)> {
    let account = &signed_in.session.account_id;
    let page = state
        .store
        .search_deliveries(
            account,
            query,
            PageRequest {
                limit: DELIVERIES_PER_PAGE,
                cursor,
            },
        )
        .await?;
    let rows = delivery_rows(state, account, &page.items).await?;
    let found = rows
        .into_iter()
        .map(|row| FoundRow {
            webhook_name: webhooks
                .iter()
                .find(|webhook| webhook.id.as_str() == row.webhook_id)
                .map_or_else(
                    || row.webhook_id.clone(),
                    |webhook| webhook.name.to_string(),
                ),
            row,
        })
        .collect();
    Ok((found, cursor_param(page.next_cursor)))
}

/// Sends the delivery's event again to the delivery's webhook (a new delivery, the same event
/// and bytes), then shows the page the form was on with what happened.
async fn resend(
    State(state): State<AppState>,
    Path(delivery): Path<String>,
    form: SignedForm,
) -> PageResult {
    let delivery = DeliveryId::parse(&delivery).map_err(|_| PageError::NotFound("delivery"))?;
    let account = &form.signed_in.session.account_id;
    let found = state
        .store
        .get_delivery(account, &delivery)
        .await
        .map_err(PageError::from_store("delivery"))?
        .delivery;
    let notice =
        match operations::resend_event(&state, account, &found.event_id, &found.webhook_id).await {
            Ok(_) => "resent",
            Err(StoreError::WebhookDisabled(_)) => "resend_disabled",
            // Purged by retention (or the webhook deleted) since the page was shown.
            Err(StoreError::NotFound) => "resend_gone",
            Err(StoreError::UnknownWebhook(_)) => return Err(PageError::NotFound("webhook")),
            Err(other) => return Err(other.into()),
        };
    if form.fields.get("from") == Some(FROM_WEBHOOK_PAGE) {
        return Ok(see_other(&format!(
            "/settings/webhooks/{}?notice={notice}#deliveries",
            found.webhook_id
        )));
    }
    // The search is read again from its fields, so only a search of this page comes back.
    let search = SearchForm::from_fields(&FormFields::parse(form.fields.text("search").as_bytes()))
        .query_string();
    let separator = if search.is_empty() { "" } else { "&" };
    Ok(see_other(&format!(
        "{PAGE_PATH}?{search}{separator}notice={notice}"
    )))
}
