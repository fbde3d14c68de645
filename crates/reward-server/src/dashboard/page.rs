//! What every page shares: the layout's data, rendering, redirects, short notices, times and
//! the errors a page can end in (shown as pages, never as JSON).

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine;
use reward_core::time::Timestamp;
use reward_store::StoreError;
use thiserror::Error;

use super::session::{self, SignedIn};

/// What the layout templates (`base.html`, `settings.html`) read.
pub struct Layout {
    pub title: String,
    /// Who is signed in; `None` on the sign-in and error pages.
    pub user: Option<UserBar>,
    /// The session's CSRF token, put in every form; empty when signed out.
    pub csrf_token: String,
    /// Which Account Settings tab is current: "webhooks", "deliveries" or "api-keys".
    pub section: &'static str,
    pub notice: Option<&'static str>,
    /// Whether the notice says something was not done (drawn as a warning, not a success).
    pub notice_warns: bool,
}

pub struct UserBar {
    pub account_name: String,
    pub key_prefix: String,
}

impl Layout {
    pub fn signed_out(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            user: None,
            csrf_token: String::new(),
            section: "",
            notice: None,
            notice_warns: false,
        }
    }

    pub fn settings(signed_in: &SignedIn, title: &str, section: &'static str) -> Self {
        Self {
            title: title.to_owned(),
            user: Some(UserBar {
                account_name: signed_in.session.account_name.to_string(),
                key_prefix: signed_in.session.api_key_prefix.clone(),
            }),
            csrf_token: signed_in.csrf_token.clone(),
            section,
            notice: None,
            notice_warns: false,
        }
    }

    pub fn with_notice(mut self, notice: Option<&str>) -> Self {
        self.notice = notice.and_then(notice_text);
        self.notice_warns = notice.is_some_and(|key| NOT_DONE.contains(&key));
        self
    }
}

/// The notices that say a request was not carried out.
const NOT_DONE: [&str; 4] = [
    "resend_disabled",
    "resend_gone",
    "test_disabled",
    "secret_already_rotated",
];

/// The confirmations a redirect may ask the next page to show (`?notice=`). Only these fixed
/// sentences can appear, so a crafted link cannot put words on a Reward page.
fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "created" => "Webhook created. Open it to see its signing secret or send a test event.",
        "updated" => "Changes saved.",
        "enabled" => "Webhook enabled. Deliveries that were waiting go out now.",
        "disabled" => "Webhook disabled. Its deliveries wait until it is enabled again.",
        "deleted" => "Webhook deleted, with its deliveries.",
        "test_sent" => "Test event sent. Its delivery is listed below.",
        "test_disabled" => {
            "Not sent: the webhook is disabled. Enable it first, then send a test event."
        }
        "retried" => "Retry requested: one attempt is made now.",
        "key_revoked" => "API key revoked. It no longer works.",
        "resent" => "Event resent: a new, pending delivery of it to the same webhook is on its way (a status filter may hide it).",
        "resend_disabled" => "Not resent: the webhook is disabled. Enable it first, then resend.",
        "resend_gone" => "Not resent: the event is no longer stored (events are kept 30 days).",
        "signed_out" => "You are signed out.",
        "secret_already_rotated" => "Not rotated again: the form was sent a second time, and the secret it replaced had already been rotated. The current secret is shown.",
        _ => return None,
    })
}

/// Renders a template as an HTML page with `status`.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(error) => {
            tracing::error!(%error, "rendering a dashboard page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side.",
            )
                .into_response()
        }
    }
}

/// 303 See Other: after a form, the browser loads `location` with GET (no resubmission).
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// A time as a page shows it: machine-readable for `<time datetime>`, readable as text (UTC;
/// the script shows it in the reader's own time zone).
pub struct Time {
    pub iso: String,
    pub text: String,
}

impl From<Timestamp> for Time {
    fn from(time: Timestamp) -> Self {
        let iso = time.to_rfc3339();
        // `2024-12-14T15:29:18.821Z` reads as `2024-12-14 15:29:18 UTC`.
        let text = format!(
            "{} UTC",
            iso.get(..19).unwrap_or(&iso).replacen('T', " ", 1)
        );
        Self { iso, text }
    }
}

/// A store's next-page cursor as a query value, encoded like the API's cursors.
pub fn cursor_param(cursor: Option<String>) -> Option<String> {
    cursor.map(|cursor| BASE64URL.encode(cursor))
}

/// A `?cursor=` value back into the store's cursor. One that does not decode names no page, as
/// one that decodes to no id does: both answer "This page of the list does not exist" (404),
/// rather than quietly showing another page.
pub fn decode_cursor(param: Option<&str>) -> PageResult<Option<String>> {
    let Some(param) = param else {
        return Ok(None);
    };
    BASE64URL
        .decode(param)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or(PageError::Store(StoreError::InvalidCursor))
}

/// How a dashboard request can fail. Each becomes a page (or, when signed out, the sign-in page).
#[derive(Debug, Error)]
pub enum PageError {
    #[error("not signed in")]
    SignedOut,
    #[error("the form's CSRF token is missing or wrong")]
    Forgery,
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("the form could not be read")]
    BadForm(StatusCode),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PageError {
    /// Maps a store failure, naming the thing a "not found" is about.
    pub fn from_store(what: &'static str) -> impl Fn(StoreError) -> PageError {
        move |error| match error {
            StoreError::NotFound => PageError::NotFound(what),
            other => PageError::Store(other),
        }
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            PageError::SignedOut => {
                // A stale cookie is cleared on the way to the sign-in page.
                let mut response = see_other("/");
                if let Ok(value) = HeaderValue::from_str(&session::expired_session_cookie()) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
                return response;
            }
            PageError::Forgery => (
                StatusCode::FORBIDDEN,
                "This form could not be accepted",
                "It did not come from a current Reward page: its security token is missing or out \
                 of date. Nothing was changed. Go back, reload the page and try again."
                    .to_owned(),
            ),
            PageError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "Not found",
                format!("No such {what} exists in this account. It may have been deleted."),
            ),
            PageError::BadForm(status) => (
                status,
                "This form could not be read",
                "Nothing was changed. Go back and try again.".to_owned(),
            ),
            PageError::Store(StoreError::Unavailable(detail)) => {
                tracing::warn!(%detail, "store unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Reward is unavailable right now",
                    "The database could not be reached, so this was not completed. Try again shortly."
                        .to_owned(),
                )
            }
            PageError::Store(StoreError::InvalidCursor) => (
                StatusCode::NOT_FOUND,
                "Not found",
                "This page of the list does not exist.".to_owned(),
            ),
            PageError::Store(other) => {
                tracing::error!(error = %other, "dashboard request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Something went wrong on our side. Try again shortly.".to_owned(),
                )
            }
        };
        render(
            status,
            &ErrorPage {
                layout: Layout::signed_out(heading),
                heading,
                message,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_text() {
        let time = Time::from(Timestamp::from_millis(1_734_190_158_821));
        assert_eq!(time.iso, "2024-12-14T15:29:18.821Z");
        assert_eq!(time.text, "2024-12-14 15:29:18 UTC");
    }

    #[test]
    fn only_known_notices_show() {
        assert!(notice_text("created").is_some());
        assert!(notice_text("<script>").is_none());
    }

    #[test]
    fn cursors_round_trip() {
        let param = cursor_param(Some("wh_01".into()));
        assert_eq!(
            decode_cursor(param.as_deref()).expect("decodes"),
            Some("wh_01".into())
        );
        assert_eq!(decode_cursor(None).expect("no cursor"), None);
        assert!(matches!(
            decode_cursor(Some("%%%")),
            Err(PageError::Store(StoreError::InvalidCursor))
        ));
    }
}
