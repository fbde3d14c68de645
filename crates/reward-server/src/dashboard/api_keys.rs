//! Account Settings → API keys: create one (its text shown once), list them, revoke one. Keys
//! are made by the same code as `POST /v1/api_keys`.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use reward_core::ids::ApiKeyId;
use reward_core::names::Name;
use reward_store::records::ApiKey;

use super::page::{render, see_other, Layout, PageError, PageResult, Time};
use super::session::{signed_out_response, SignedForm, SignedIn};
use super::webhooks::ListQuery;
use crate::operations::{api_key_limit_message, has_room_for_api_key, issue_key};
use crate::state::AppState;

const PAGE: &str = "/settings/api-keys";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PAGE, get(show).post(create))
        .route("/settings/api-keys/{id}/revoke", post(revoke))
}

struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    created: Time,
    last_used: Option<Time>,
    /// The key this session was opened with: revoking it signs this browser out.
    current: bool,
}

/// A key just created: its text, shown this once.
struct NewKey {
    name: String,
    key: String,
}

#[derive(Template)]
#[template(path = "api_keys.html")]
struct ApiKeysPage {
    layout: Layout,
    keys: Vec<KeyRow>,
    created: Option<NewKey>,
    /// The name field as typed, and why it was refused.
    name: String,
    name_error: Option<String>,
}

async fn page(
    state: &AppState,
    signed_in: &SignedIn,
    created: Option<NewKey>,
) -> PageResult<ApiKeysPage> {
    let keys = state
        .store
        .list_api_keys(&signed_in.session.account_id)
        .await?;
    Ok(ApiKeysPage {
        layout: Layout::settings(signed_in, "API keys", "api-keys"),
        keys: keys
            .into_iter()
            .map(|key: ApiKey| KeyRow {
                current: key.id == signed_in.session.api_key_id,
                id: key.id.to_string(),
                name: key.name.to_string(),
                prefix: key.display_prefix,
                created: key.created_at.into(),
                last_used: key.last_used_at.map(Time::from),
            })
            .collect(),
        created,
        name: String::new(),
        name_error: None,
    })
}

async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let mut page = page(&state, &signed_in, None).await?;
    page.layout = page.layout.with_notice(query.notice.as_deref());
    Ok(render(StatusCode::OK, &page))
}

/// Creates a key and answers with the page showing it, never redirecting: the key must not
/// travel in a URL.
async fn create(State(state): State<AppState>, form: SignedForm) -> PageResult {
    let typed = form.fields.text("name");
    let name = match Name::parse(typed) {
        Ok(name) => name,
        Err(error) => {
            let mut refused = page(&state, &form.signed_in, None).await?;
            refused.name = typed.to_owned();
            refused.name_error = Some(error.0);
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &refused));
        }
    };
    let account = &form.signed_in.session.account_id;
    if !has_room_for_api_key(state.store.as_ref(), account).await? {
        let mut refused = page(&state, &form.signed_in, None).await?;
        refused.name = typed.to_owned();
        refused.name_error = Some(api_key_limit_message());
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &refused));
    }
    let (key, plaintext) = issue_key(&state, account, name).await?;
    let created = NewKey {
        name: key.name.to_string(),
        key: plaintext,
    };
    let page = page(&state, &form.signed_in, Some(created)).await?;
    Ok(render(StatusCode::CREATED, &page))
}

async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: SignedForm,
) -> PageResult {
    let id = ApiKeyId::parse(&id).map_err(|_| PageError::NotFound("API key"))?;
    state
        .store
        .revoke_api_key(&form.signed_in.session.account_id, &id)
        .await
        .map_err(PageError::from_store("API key"))?;
    if id == form.signed_in.session.api_key_id {
        // The store has ended this session with its key.
        return Ok(signed_out_response());
    }
    Ok(see_other(&format!("{PAGE}?notice=key_revoked")))
}
