//! Signing in and out, the session cookie, and protection against cross-site request forgery.
//!
//! - Signing in (`POST /sign-in`) takes an API key and opens a session in the store; the browser
//!   gets a random token in an HttpOnly, SameSite=Strict cookie that lives 8 hours, `Secure` as
//!   [`CookieSecurity`] decides from `REWARD_PUBLIC_URL`. The store
//!   keeps only the token's SHA-256, and ends the session at expiry, on sign out, or when the key
//!   it was opened with is revoked.
//! - Every form carries a CSRF token, checked on every POST ([`SignedForm`]). A session's token
//!   is derived from the session token, so it needs no storage and changes with each sign-in.
//!   The sign-in form itself (before any session) uses a double-submit cookie, so a third-party
//!   page cannot sign a browser into someone else's account.

use std::time::Duration;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine;
use rand::RngCore;
use reward_core::api_key;
use reward_core::digest::sha256_hex;
use reward_core::time::Timestamp;
use reward_store::records::{NewSession, Session};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::form::FormFields;
use super::page::{render, see_other, Layout, PageError, PageResult};
use crate::config::PublicUrl;
use crate::operations::record_key_use;
use crate::state::AppState;

const SESSION_COOKIE: &str = "reward_session";
/// The sign-in form's own CSRF token (there is no session yet to derive one from).
const SIGN_IN_COOKIE: &str = "reward_sign_in";
const CSRF_FIELD: &str = "csrf_token";
/// How long a session lasts, whatever happens in it: the cookie's Max-Age and the stored expiry.
const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// How long an open sign-in form stays usable.
const SIGN_IN_FORM_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Where a signed-in person lands.
pub const HOME: &str = "/settings/webhooks";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(sign_in_page))
        .route("/sign-in", post(sign_in))
        .route("/sign-out", post(sign_out))
}

/// The account signed in to the dashboard for this request.
pub struct SignedIn {
    pub session: Session,
    /// Identifies the session in the store (the token itself is never stored).
    token_hash: String,
    /// The value every form of this session must send back.
    pub csrf_token: String,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(PageError::SignedOut)?;
        let token_hash = token_hash(token);
        let session = state
            .store
            .find_session(&token_hash, Timestamp::now())
            .await?
            .ok_or(PageError::SignedOut)?;
        Ok(Self {
            session,
            token_hash,
            csrf_token: csrf_token_for(token),
        })
    }
}

/// A POSTed form from a signed-in session whose CSRF token is right. Handlers that change
/// anything take this, so none can forget the check.
pub struct SignedForm {
    pub signed_in: SignedIn,
    pub fields: FormFields,
}

impl FromRequest<AppState> for SignedForm {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageError> {
        let (mut parts, body) = request.into_parts();
        let signed_in = SignedIn::from_request_parts(&mut parts, state).await?;
        let fields = read_form(Request::from_parts(parts, body), state).await?;
        if !same_secret(fields.get(CSRF_FIELD), &signed_in.csrf_token) {
            return Err(PageError::Forgery);
        }
        Ok(Self { signed_in, fields })
    }
}

async fn read_form(request: Request, state: &AppState) -> PageResult<FormFields> {
    let body = Bytes::from_request(request, state)
        .await
        .map_err(|rejection| PageError::BadForm(rejection.status()))?;
    Ok(FormFields::parse(&body))
}

/// Compares a sent token with the expected one in constant time; a missing one never matches.
fn same_secret(sent: Option<&str>, expected: &str) -> bool {
    match sent {
        Some(sent) if !expected.is_empty() => sent.as_bytes().ct_eq(expected.as_bytes()).into(),
        _ => false,
    }
}

/// 32 random bytes, base64url: a session token or a sign-in form token.
fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    BASE64URL.encode(bytes)
}

fn token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// A session's CSRF token: a one-way function of the session token, distinct from its stored
/// hash, so knowing one (or reading the database) never gives the other.
fn csrf_token_for(session_token: &str) -> String {
    sha256_hex(format!("reward-dashboard-csrf:{session_token}").as_bytes())
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value)
}

/// When the dashboard's cookies carry `Secure` (docs/decisions.md, "REWARD_PUBLIC_URL").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSecurity {
    /// `REWARD_PUBLIC_URL` is https://: every cookie is `Secure`, whatever the request says.
    Always,
    /// `REWARD_PUBLIC_URL` is http://: the operator serves plain HTTP on purpose; none is.
    Never,
    /// No `REWARD_PUBLIC_URL`: `Secure`, except in plain local development: a request for a
    /// loopback host (`localhost`, 127.0.0.0/8, `[::1]`) that no proxy reports as HTTPS. A
    /// request can only make its own cookies less safe this way, never another browser's.
    UnlessLocal,
}

impl CookieSecurity {
    pub fn for_public_url(public_url: Option<&PublicUrl>) -> Self {
        match public_url.map(PublicUrl::is_https) {
            Some(true) => Self::Always,
            Some(false) => Self::Never,
            None => Self::UnlessLocal,
        }
    }

    fn secure(self, headers: &HeaderMap) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::UnlessLocal => {
                let forwarded_https = headers
                    .get("x-forwarded-proto")
                    .and_then(|value| value.to_str().ok())
                    .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
                    || headers
                        .get_all(header::FORWARDED)
                        .iter()
                        .filter_map(|value| value.to_str().ok())
                        .any(forwarded_says_https);
                let local = headers
                    .get(header::HOST)
                    .and_then(|value| value.to_str().ok())
                    .is_some_and(is_loopback_host);
                forwarded_https || !local
            }
        }
    }
}

/// Whether a `Forwarded` header (RFC 7239: `for=...;proto=https, for=...`) says a proxy took the
/// request over HTTPS. Any element saying so is enough: it only ever adds `Secure`.
fn forwarded_says_https(value: &str) -> bool {
    value
        .split([',', ';'])
        .filter_map(|pair| pair.split_once('='))
        .any(|(name, proto)| {
            name.trim().eq_ignore_ascii_case("proto")
                && proto.trim().trim_matches('"').eq_ignore_ascii_case("https")
        })
}

/// Whether a `Host` header (name or address, with or without a port) names this machine.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.trim().strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.trim().split(':').next().unwrap_or_default(),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// A `Set-Cookie` value: never readable by scripts, never sent with cross-site requests, and
/// `Secure` as [`CookieSecurity`] decides.
fn set_cookie(
    name: &str,
    value: &str,
    max_age: Duration,
    security: CookieSecurity,
    headers: &HeaderMap,
) -> String {
    format!(
        "{name}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        max_age.as_secs(),
        if security.secure(headers) {
            "; Secure"
        } else {
            ""
        }
    )
}

fn cookie_security(state: &AppState) -> CookieSecurity {
    CookieSecurity::for_public_url(state.public_url.as_ref())
}

/// Removes the session cookie from the browser.
pub fn expired_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    layout: Layout,
    csrf_token: String,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
struct NoticeQuery {
    notice: Option<String>,
}

/// `GET /`: the sign-in form, or straight to the dashboard when already signed in.
async fn sign_in_page(
    State(state): State<AppState>,
    Query(query): Query<NoticeQuery>,
    request: Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    if SignedIn::from_request_parts(&mut parts, &state)
        .await
        .is_ok()
    {
        return see_other(HOME);
    }
    sign_in_form(
        &state,
        &parts.headers,
        query.notice.as_deref(),
        None,
        StatusCode::OK,
    )
}

/// Renders the sign-in form, reusing the browser's form token or issuing one.
fn sign_in_form(
    state: &AppState,
    headers: &HeaderMap,
    notice: Option<&str>,
    error: Option<&'static str>,
    status: StatusCode,
) -> Response {
    let form_token = cookie(headers, SIGN_IN_COOKIE)
        .map(str::to_owned)
        .unwrap_or_else(random_token);
    let page = SignInPage {
        layout: Layout::signed_out("Sign in").with_notice(notice),
        csrf_token: form_token.clone(),
        error,
    };
    let cookie = set_cookie(
        SIGN_IN_COOKIE,
        &form_token,
        SIGN_IN_FORM_LIFETIME,
        cookie_security(state),
        headers,
    );
    with_cookie(render(status, &page), &cookie)
}

/// `POST /sign-in`: opens a session for a valid, unrevoked API key.
async fn sign_in(State(state): State<AppState>, request: Request) -> PageResult {
    let headers = request.headers().clone();
    let fields = read_form(request, &state).await?;
    if !same_secret(
        fields.get(CSRF_FIELD),
        cookie(&headers, SIGN_IN_COOKIE).unwrap_or(""),
    ) {
        return Err(PageError::Forgery);
    }
    let key = fields.text("api_key").trim();
    if key.is_empty() {
        let error = Some("Enter one of your account's API keys.");
        return Ok(sign_in_form(
            &state,
            &headers,
            None,
            error,
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    let key_hash = api_key::hash(key);
    let token = random_token();
    let now = Timestamp::now();
    let opened = state
        .store
        .start_session(
            &key_hash,
            NewSession {
                token_hash: token_hash(&token),
                created_at: now,
                expires_at: now.plus_millis(SESSION_LIFETIME.as_millis() as i64),
            },
        )
        .await?;
    if opened.is_none() {
        let error = Some("This API key is not valid. It may have been revoked.");
        return Ok(sign_in_form(
            &state,
            &headers,
            None,
            error,
            StatusCode::UNAUTHORIZED,
        ));
    }
    record_key_use(&state, key_hash);
    // A session that was open in this browser ends: one browser, one session.
    if let Some(previous) = cookie(&headers, SESSION_COOKIE) {
        state.store.end_session(&token_hash(previous)).await?;
    }
    let response = see_other(HOME);
    let response = with_cookie(
        response,
        &set_cookie(
            SESSION_COOKIE,
            &token,
            SESSION_LIFETIME,
            cookie_security(&state),
            &headers,
        ),
    );
    Ok(with_cookie(
        response,
        &format!("{SIGN_IN_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
    ))
}

/// `POST /sign-out`: ends the session in the store and in the browser.
async fn sign_out(State(state): State<AppState>, form: SignedForm) -> PageResult {
    state.store.end_session(&form.signed_in.token_hash).await?;
    Ok(with_cookie(
        see_other("/?notice=signed_out"),
        &expired_session_cookie(),
    ))
}

/// Ends the current session (its key was just revoked) and goes to the sign-in page.
pub fn signed_out_response() -> Response {
    with_cookie(see_other("/"), &expired_session_cookie())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; reward_session=tok; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&headers, SIGN_IN_COOKIE), None);
    }

    #[test]
    fn session_cookies_are_http_only_strict_and_expire() {
        let headers = HeaderMap::new();
        let plain = set_cookie(
            SESSION_COOKIE,
            "tok",
            SESSION_LIFETIME,
            CookieSecurity::Never,
            &headers,
        );
        assert_eq!(
            plain,
            "reward_session=tok; Path=/; Max-Age=28800; HttpOnly; SameSite=Strict"
        );
        let secure = set_cookie(
            SESSION_COOKIE,
            "tok",
            SESSION_LIFETIME,
            CookieSecurity::Always,
            &headers,
        );
        assert_eq!(
            secure,
            "reward_session=tok; Path=/; Max-Age=28800; HttpOnly; SameSite=Strict; Secure"
        );
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_public_url_decides_secure_whatever_the_request_says() {
        let https = PublicUrl::parse("https://rewards.example.com").expect("url");
        let http = PublicUrl::parse("http://10.0.0.5:8080/").expect("url");
        let always = CookieSecurity::for_public_url(Some(&https));
        let never = CookieSecurity::for_public_url(Some(&http));
        assert_eq!(always, CookieSecurity::Always);
        assert_eq!(never, CookieSecurity::Never);
        for request in [
            headers(&[]),
            headers(&[("host", "127.0.0.1:8080")]),
            headers(&[
                ("host", "rewards.example.com"),
                ("x-forwarded-proto", "http"),
            ]),
            headers(&[("host", "localhost"), ("x-forwarded-proto", "https")]),
        ] {
            assert!(always.secure(&request), "{request:?}");
            assert!(!never.secure(&request), "{request:?}");
        }
    }

    #[test]
    fn without_a_public_url_only_local_development_goes_without_secure() {
        let guess = CookieSecurity::for_public_url(None);
        for local in [
            "127.0.0.1:8080",
            "localhost",
            "LOCALHOST.:3000",
            "[::1]:8080",
            "app.localhost",
        ] {
            assert!(!guess.secure(&headers(&[("host", local)])), "{local}");
        }
        for remote in [
            "rewards.example.com",
            "10.0.0.5:8080",
            "[2001:db8::1]:443",
            "localhost.evil.com",
        ] {
            assert!(guess.secure(&headers(&[("host", remote)])), "{remote}");
        }
        assert!(guess.secure(&headers(&[])), "no Host header");
        assert!(guess.secure(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-proto", "https"),
        ])));
        // RFC 7239's header says the same, in any case and quoting.
        for forwarded in [
            "proto=https",
            "for=192.0.2.60;proto=https;by=203.0.113.43",
            "for=10.0.0.1, for=192.0.2.60;Proto=\"HTTPS\"",
        ] {
            assert!(
                guess.secure(&headers(&[
                    ("host", "127.0.0.1:8080"),
                    ("forwarded", forwarded)
                ])),
                "{forwarded}"
            );
        }
        assert!(!guess.secure(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("forwarded", "for=192.0.2.60;proto=http"),
        ])));
    }

    #[test]
    fn csrf_tokens_differ_from_the_stored_hash_and_must_match() {
        let token = random_token();
        assert_ne!(csrf_token_for(&token), token_hash(&token));
        let expected = csrf_token_for(&token);
        assert!(same_secret(Some(&expected), &expected));
        assert!(!same_secret(None, &expected));
        assert!(!same_secret(Some(""), &expected));
        assert!(!same_secret(Some("x"), ""));
    }
}
