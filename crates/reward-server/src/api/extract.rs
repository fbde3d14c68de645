//! Request extractors: the authenticated account, list parameters, and ids in paths.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine;
use reward_core::api_key;
use reward_core::ids::AccountId;
use reward_core::time::Timestamp;
use reward_store::records::{Page, PageRequest};
use serde::Serialize;

use super::error::{ApiError, ApiResult};
use super::AppState;

/// The account whose API key authenticated the request.
pub struct Authenticated(pub AccountId);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized("Send your API key as 'Authorization: Bearer <key>'.")
            })?;
        let key = header
            .to_str()
            .ok()
            .and_then(|value| {
                let (scheme, key) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
            })
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("The Authorization header must be 'Bearer <key>'.")
            })?;
        let key_hash = api_key::hash(key);
        let account = state
            .store
            .authenticate(&key_hash)
            .await?
            .ok_or_else(|| ApiError::unauthorized("This API key is not valid."))?;
        record_key_use(state, key_hash);
        state.rate_limiter.check(&account)?;
        Ok(Self(account))
    }
}

/// How often one key's "last used" time is written, at most.
const KEY_USE_INTERVAL: Duration = Duration::from_secs(60);
/// Keys remembered before the ones outside the interval are forgotten (bounds the memory).
const KEY_USE_REMEMBERED: usize = 10_000;

/// Remembers when each key's use was last written, so "last used" costs at most one write per
/// key per minute instead of one per request (every write is an fsync on the store's writer).
#[derive(Default)]
pub struct KeyUseThrottle {
    written: Mutex<HashMap<String, Instant>>,
}

impl KeyUseThrottle {
    /// Whether a use of the key (by hash) at `now` is to be written; remembers it when it is.
    pub fn admit(&self, key_hash: &str, now: Instant) -> bool {
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let recent = |at: &Instant| now.saturating_duration_since(*at) < KEY_USE_INTERVAL;
        if written.get(key_hash).is_some_and(recent) {
            return false;
        }
        if written.len() >= KEY_USE_REMEMBERED {
            written.retain(|_, at| recent(at));
        }
        written.insert(key_hash.to_owned(), now);
        true
    }
}

/// Notes that a key was used, in the background: the request never waits for that write, and
/// a failure to record it only loses a "last used" time.
pub fn record_key_use(state: &AppState, key_hash: String) {
    if !state.key_use.admit(&key_hash, Instant::now()) {
        return;
    }
    let store = state.store.clone();
    tokio::spawn(async move {
        if let Err(error) = store
            .touch_api_keys(vec![(key_hash, Timestamp::now())])
            .await
        {
            tracing::warn!(%error, "could not record an API key's last use");
        }
    });
}

/// The query string's parameters.
pub struct QueryParams(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(params) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    rejection.body_text(),
                )
            })?;
        Ok(Self(params))
    }
}

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

impl QueryParams {
    /// `?limit=` (1..=100, default 20) and `?cursor=` (opaque, from a previous page).
    pub fn page(&self) -> ApiResult<PageRequest> {
        let limit = match self.0.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                .ok_or_else(|| {
                    ApiError::invalid("limit", "limit must be a whole number from 1 to 100.")
                })?,
        };
        let cursor = match self.0.get("cursor") {
            None => None,
            Some(text) => Some(decode_cursor(text)?),
        };
        Ok(PageRequest { limit, cursor })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

fn decode_cursor(text: &str) -> ApiResult<String> {
    BASE64URL
        .decode(text)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_cursor",
                "The cursor is not one this list returned.",
            )
            .with_field("cursor")
        })
}

/// `{"data": [...], "next_cursor": "..." | null}`.
#[derive(Serialize)]
pub struct ListBody<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> ListBody<T> {
    pub fn from_page<R>(page: Page<R>, view: impl Fn(R) -> T) -> Self {
        Self {
            data: page.items.into_iter().map(view).collect(),
            next_cursor: page.next_cursor.map(|cursor| BASE64URL.encode(cursor)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_use_is_admitted_once_a_minute() {
        let throttle = KeyUseThrottle::default();
        let start = Instant::now();
        assert!(throttle.admit("a", start));
        assert!(!throttle.admit("a", start + Duration::from_secs(59)));
        assert!(throttle.admit("b", start + Duration::from_secs(1)));
        assert!(throttle.admit("a", start + Duration::from_secs(60)));
    }
}
