//! Abuse limits of the API (see docs/security.md):
//!
//! - [`RateLimiter`]: a token bucket per account; over it, 429 `rate_limited` with `Retry-After`.
//! - [`ensure_room_for_webhook`] and [`ensure_room_for_api_key`]: at most
//!   [`MAX_WEBHOOKS_PER_ACCOUNT`](crate::operations::MAX_WEBHOOKS_PER_ACCOUNT) webhooks and
//!   [`MAX_API_KEYS_PER_ACCOUNT`](crate::operations::MAX_API_KEYS_PER_ACCOUNT) live API keys per
//!   account (the rules are in `crate::operations`, shared with the dashboard).
//! - [`with_body_deadline`]: a request body must arrive whole within [`BODY_READ_TIMEOUT`], so a
//!   client trickling bytes cannot hold a connection and a task forever. (Headers have their own
//!   deadline, [`HEADER_READ_TIMEOUT`] by default, enforced by the connection itself: see
//!   `crate::http`.)
//! - [`check_request_head`]: before any handler, a request whose target, headers or declared
//!   body are too large is answered at once, in the API's error shape: 414 over
//!   [`MAX_URI_BYTES`], 431 over [`MAX_HEADER_BYTES`], 413 when `Content-Length` says more than
//!   the largest body accepted (without waiting for a body that would be refused anyway).
//!   Beyond hyper's own hard limits (`crate::http`) a request cannot be read at all, and hyper
//!   answers the bare status.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use reward_core::ids::AccountId;
use reward_store::Store;

use super::error::{ApiError, ApiResult};
use crate::operations::{
    api_key_limit_message, has_room_for_api_key, has_room_for_webhook, webhook_limit_message,
};

/// Largest request body accepted (SPEC §4: 413 above).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Entries an `events` list may hold at most, before duplicates are removed. Each entry must be a
/// known type and duplicates are dropped, so a webhook never holds more than the known types;
/// this only bounds the work a hostile list can cause.
pub const MAX_EVENT_LIST_ENTRIES: usize = 100;
/// Longest wait for a request's headers, by default (`Config::header_read_timeout`).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a request's whole body, from when its headers were read, by default
/// (`Config::body_read_timeout`).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest request target (path and query) answered normally; longer is 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most bytes of header names and values together answered normally; more is 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Buckets kept before the idle (full) ones are dropped. Dropping a full bucket changes nothing:
/// a new one starts full too.
const BUCKETS_REMEMBERED: usize = 10_000;

/// [`has_room_for_webhook`] as the API answers it: 422 `limit_exceeded`.
pub async fn ensure_room_for_webhook(store: &dyn Store, account: &AccountId) -> ApiResult<()> {
    ensure_room(
        has_room_for_webhook(store, account).await?,
        webhook_limit_message,
    )
}

/// [`has_room_for_api_key`] as the API answers it: 422 `limit_exceeded`.
pub async fn ensure_room_for_api_key(store: &dyn Store, account: &AccountId) -> ApiResult<()> {
    ensure_room(
        has_room_for_api_key(store, account).await?,
        api_key_limit_message,
    )
}

fn ensure_room(room: bool, message: impl FnOnce() -> String) -> ApiResult<()> {
    if room {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_exceeded",
        message(),
    ))
}

/// One account's bucket: `tokens` as of `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per account, in memory (per process: with several nodes, each node allows the
/// rate). `rate` requests per second sustained, bursts of twice that.
pub struct RateLimiter {
    /// Requests per second; 0 turns the limit off.
    rate: u32,
    buckets: Mutex<HashMap<AccountId, Bucket>>,
}

impl RateLimiter {
    pub fn new(rate: u32) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn burst(&self) -> f64 {
        f64::from(self.rate) * 2.0
    }

    /// Takes a token for one request at `now`, or says how long until one is available.
    pub fn admit(&self, account: &AccountId, now: Instant) -> Result<(), Duration> {
        if self.rate == 0 {
            return Ok(());
        }
        let (rate, burst) = (f64::from(self.rate), self.burst());
        let refilled = |bucket: &Bucket| {
            let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
            (bucket.tokens + elapsed * rate).min(burst)
        };
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= BUCKETS_REMEMBERED && !buckets.contains_key(account) {
            buckets.retain(|_, bucket| refilled(bucket) < burst);
        }
        let bucket = buckets.entry(account.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let tokens = refilled(bucket);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / rate))
        }
    }

    /// Buckets held right now (for tests of the memory bound).
    pub fn remembered(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// [`Self::admit`] as the API answers it: 429 `rate_limited` with `Retry-After` in whole
    /// seconds (at least 1).
    pub fn check(&self, account: &AccountId) -> ApiResult<()> {
        self.admit(account, Instant::now()).map_err(|wait| {
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "Too many requests: this account may make {} per second (bursts of {}). Try again in {seconds} s.",
                    self.rate,
                    self.rate * 2
                ),
            )
            .with_retry_after(seconds)
        })
    }
}

/// Middleware: refuses at once a request too large to serve (see the module doc). Runs before the
/// body is read, so a client declaring a huge body learns it without sending a byte of it.
pub async fn check_request_head(request: Request, next: Next) -> Response {
    match head_refusal(&request) {
        Some(refusal) => refusal.into_response(),
        None => next.run(request).await,
    }
}

fn head_refusal(request: &Request) -> Option<ApiError> {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("The request's path and query are longer than {MAX_URI_BYTES} bytes."),
        ));
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Some(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("The request's headers are larger than {MAX_HEADER_BYTES} bytes together."),
        ));
    }
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Some(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request body is larger than 256 KiB.",
        ));
    }
    None
}

/// Middleware: the request's body must arrive whole within `timeout` (a total deadline, not one
/// per chunk, so trickling a byte at a time does not extend it).
pub async fn with_body_deadline(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = Body::new(DeadlineBody {
        inner: body,
        timeout,
        deadline: Box::pin(tokio::time::sleep(timeout)),
    });
    next.run(Request::from_parts(parts, body)).await
}

/// The error a body past its deadline reads as; `input.rs` answers it with 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyDeadlineElapsed(pub Duration);

struct DeadlineBody {
    inner: Body,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(context) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(context) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyDeadlineElapsed(self.timeout).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Whether an error (or one of its causes) is a body past its deadline.
pub fn is_body_deadline(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<BodyDeadlineElapsed>() {
            return true;
        }
        current = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountId {
        AccountId::generate()
    }

    #[test]
    fn a_bucket_allows_its_burst_then_the_rate() {
        let limiter = RateLimiter::new(10);
        let start = Instant::now();
        let a = account();
        for _ in 0..20 {
            assert!(limiter.admit(&a, start).is_ok());
        }
        let wait = limiter.admit(&a, start).expect_err("over the burst");
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(
            limiter.admit(&account(), start).is_ok(),
            "accounts are apart"
        );
        let later = start + Duration::from_millis(100);
        assert!(limiter.admit(&a, later).is_ok());
        assert!(limiter.admit(&a, later).is_err());
    }

    #[test]
    fn zero_turns_it_off() {
        let limiter = RateLimiter::new(0);
        for _ in 0..10_000 {
            assert!(limiter.admit(&account(), Instant::now()).is_ok());
        }
        assert_eq!(limiter.remembered(), 0);
    }

    #[test]
    fn idle_buckets_are_forgotten() {
        let limiter = RateLimiter::new(1);
        let start = Instant::now();
        for _ in 0..BUCKETS_REMEMBERED {
            let _ = limiter.admit(&account(), start);
        }
        assert_eq!(limiter.remembered(), BUCKETS_REMEMBERED);
        // Ten seconds on, every bucket is full again: one more account evicts them all.
        let _ = limiter.admit(&account(), start + Duration::from_secs(10));
        assert_eq!(limiter.remembered(), 1);
    }
}
