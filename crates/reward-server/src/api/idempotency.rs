//! `Idempotency-Key` on the API's creating `POST`s (webhooks, API keys, credits, resends, test
//! events): a request sent again with the same key gets the first answer again, with
//! `Idempotent-Replayed: true`, and creates nothing. The rules and the reasons behind them are
//! in `reward_store::idempotent`; trigger events keep their own keys (`trigger_events.rs`).
//!
//! A handler reads the key ([`IdempotentRequest::read`], 422 on a bad one) and hands its work to
//! [`respond`], which reserves the key first, runs the work, and keeps a 2xx answer (a second
//! request while the first works waits a moment for that answer, then gets 409
//! `idempotency_in_progress`). The body is validated before the key is reserved. The work
//! runs in a task of its own: a client that hangs up cannot stop it between creating something
//! and keeping the answer that says so.

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reward_core::digest::sha256_hex;
use reward_core::ids::AccountId;
use reward_core::names::IdempotencyKey;
use reward_core::time::Timestamp;
use reward_store::idempotent::{Reservation, StoredResponse};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::Required;
use utoipa::IntoParams;

use super::error::{ApiError, ApiResult};
use super::input::JsonObject;
use super::AppState;

/// How long a request waits for another with its key to answer, in steps, before a 409.
const IN_PROGRESS_WAIT: Duration = Duration::from_millis(50);
const IN_PROGRESS_WAITS: u32 = 10;

/// The header that replays say they are replays with.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The `Idempotency-Key` header, when the request has one. Given twice, it is refused: which of
/// the two would count is a guess, and a proxy in front may have guessed the other.
pub fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<IdempotencyKey>> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "The Idempotency-Key header is given more than once; give it once.",
        ));
    }
    let text = value.to_str().map_err(|_| {
        ApiError::invalid(
            "Idempotency-Key",
            "An Idempotency-Key may only contain visible ASCII characters.",
        )
    })?;
    IdempotencyKey::parse(text)
        .map(Some)
        .map_err(|error| ApiError::invalid("Idempotency-Key", error.0))
}

/// The `Idempotency-Key` header as the OpenAPI document describes it, on every route that reads
/// it (`params(IdempotencyKeyHeader)`).
pub struct IdempotencyKeyHeader;

impl IntoParams for IdempotencyKeyHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(IdempotencyKey::MAX_LEN))
            .pattern(Some(IdempotencyKey::PATTERN));
        vec![ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "1–255 visible ASCII characters, given once, kept 24 hours per account: the same key with the same request answers the first response again (`Idempotent-Replayed: true`) and creates nothing; with another request it answers 409.",
            ))
            .schema(Some(schema))
            .build()]
    }
}

/// A request with an `Idempotency-Key`: the key and what makes two requests the same one.
pub struct IdempotentRequest {
    key: IdempotencyKey,
    fingerprint: String,
}

impl IdempotentRequest {
    /// The request's key and fingerprint: its method, its path and its body (keys in order, so
    /// spacing and key order do not make another request). `None` without the header.
    pub fn read(headers: &HeaderMap, path: &str, body: &JsonObject) -> ApiResult<Option<Self>> {
        Ok(idempotency_key(headers)?.map(|key| Self {
            key,
            fingerprint: sha256_hex(format!("POST\0{path}\0{}", body.canonical_text()).as_bytes()),
        }))
    }
}

/// Answers the request with `work`'s answer, or, when its key was used before, with what that
/// use answered (or a 409). Without a key, just runs the work.
pub async fn respond<R>(
    state: &AppState,
    account: &AccountId,
    request: Option<IdempotentRequest>,
    work: impl Future<Output = ApiResult<R>> + Send + 'static,
) -> ApiResult<Response>
where
    R: IntoResponse + Send + 'static,
{
    let Some(IdempotentRequest { key, fingerprint }) = request else {
        return work.await.map(IntoResponse::into_response);
    };
    let mut waits = 0;
    let reserved = loop {
        match state
            .store
            .reserve_request(account, &key, &fingerprint, Timestamp::now())
            .await?
        {
            Reservation::Reserved(at) => break at,
            Reservation::Replay(answer) => return replay(answer),
            // The first request usually answers within milliseconds: wait for its answer a
            // little rather than make the client retry.
            Reservation::InProgress if waits < IN_PROGRESS_WAITS => {
                waits += 1;
                tokio::time::sleep(IN_PROGRESS_WAIT).await;
            }
            Reservation::InProgress => return Err(in_progress()),
        }
    };
    let store = state.store.clone();
    let account = account.clone();
    let task = tokio::spawn(async move {
        let response = match work.await {
            Ok(answer) => answer.into_response(),
            Err(error) => error.into_response(),
        };
        if !response.status().is_success() {
            // Nothing was created: the key may be used again.
            release(store, account, key, reserved).await;
            return response;
        }
        let (parts, body) = response.into_parts();
        let bytes = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(%error, "could not read an answer to keep it");
                return ApiError::from(reward_store::StoreError::Internal(error.to_string()))
                    .into_response();
            }
        };
        let kept = StoredResponse {
            status: parts.status.as_u16(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        if let Err(error) = store.complete_request(&account, &key, reserved, kept).await {
            // The work is done and answered; only a replay of it is lost.
            tracing::warn!(%error, "could not keep the answer for an Idempotency-Key");
        }
        Response::from_parts(parts, Body::from(bytes))
    });
    task.await.map_err(|error| {
        ApiError::from(reward_store::StoreError::Internal(format!(
            "an idempotent request's task failed: {error}"
        )))
    })
}

/// Frees a reservation whose request created nothing. When the store is down (the likely reason
/// the request failed), tries again in the background for as long as the reservation would hold
/// the key anyway, so the client's retry with the same key is not kept waiting by it.
async fn release(
    store: std::sync::Arc<dyn reward_store::Store>,
    account: AccountId,
    key: IdempotencyKey,
    reserved: Timestamp,
) {
    if store
        .release_request(&account, &key, reserved)
        .await
        .is_ok()
    {
        return;
    }
    tokio::spawn(async move {
        for _ in 0..RELEASE_TRIES {
            tokio::time::sleep(RELEASE_PAUSE).await;
            match store.release_request(&account, &key, reserved).await {
                Ok(()) => return,
                Err(error) => tracing::debug!(%error, "an Idempotency-Key is not released yet"),
            }
        }
        tracing::warn!("could not release an Idempotency-Key; it frees itself after a minute");
    });
}

/// How often, and how far apart, releasing a reservation is tried again.
const RELEASE_TRIES: u32 = 60;
const RELEASE_PAUSE: Duration = Duration::from_secs(1);

/// The kept answer, said to be a replay.
fn replay(answer: StoredResponse) -> ApiResult<Response> {
    let status = StatusCode::from_u16(answer.status).map_err(|_| {
        ApiError::from(reward_store::StoreError::Internal(format!(
            "a kept answer has status {}",
            answer.status
        )))
    })?;
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    Ok(response)
}

fn in_progress() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_in_progress",
        "A request with this Idempotency-Key is still being processed; send it again in a moment to get its answer.",
    )
    .with_retry_after(1)
}
