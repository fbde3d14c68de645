//! Request extractors: the authenticated account, list parameters, and ids in paths.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine;
use reward_core::api_key;
use reward_core::ids::AccountId;
use reward_store::records::{Page, PageRequest};
use serde::Serialize;

use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::operations::record_key_use;
use crate::traces::RequestTrace;

/// The account whose API key authenticated the request. Every authenticated route takes it, so
/// it also refuses query parameters the route does not document (`query_contract`).
pub struct Authenticated(pub AccountId);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mut headers = parts
            .headers
            .get_all(axum::http::header::AUTHORIZATION)
            .iter();
        let header = headers.next().ok_or_else(|| {
            ApiError::unauthorized("Send your API key as 'Authorization: Bearer <key>'.")
        })?;
        // Two keys in one request: which one acts is a guess a proxy may have made otherwise.
        if headers.next().is_some() {
            return Err(ApiError::unauthorized(
                "Send one Authorization header, not several.",
            ));
        }
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
        if let Some(trace) = parts.extensions.get::<RequestTrace>() {
            trace.set_account(&account);
        }
        state.rate_limiter.check(&account)?;
        // After the rate limit: a refused request still counts against it.
        super::query_contract::check(parts)?;
        Ok(Self(account))
    }
}

/// The query string's parameters.
pub struct QueryParams(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(params) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(invalid_query)?;
        Ok(Self(params))
    }
}

/// 400 `invalid_query`: a query string that does not decode.
pub(super) fn invalid_query(rejection: QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        rejection.body_text(),
    )
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
