//! What the API and the dashboard both do, written once so the two front ends stay siblings
//! that never import each other, and neither can forget a step the other takes (a test event
//! sent from the dashboard is counted in the metrics like one sent through the API):
//!
//! - [`issue_key`]: make and store an API key.
//! - [`record_key_use`]: note a key's "last used" time, throttled by [`KeyUseThrottle`].
//! - [`has_room_for_webhook`]: the webhooks-per-account limit.
//! - [`send_test_event`], [`record_trigger_event`], [`issue_credits`]: changes that emit events,
//!   each counting what it emitted in `reward_events_emitted_total`.
//! - [`resend_event`]: a stored event delivered again to one webhook (emits nothing new).
//!
//! Each answers in store terms ([`StoreResult`]); each front end turns errors into its own
//! answer (JSON or a page).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use reward_core::api_key;
use reward_core::event::{EventType, NewEvent};
use reward_core::ids::{AccountId, ApiKeyId, EventId, WebhookId};
use reward_core::names::Name;
use reward_core::time::Timestamp;
use reward_store::records::{
    ApiKey, CreditsIssued, Delivery, IssueCredits, NewApiKeyRecord, PageRequest,
    RecordTriggerEvent, TriggerEventOutcome,
};
use reward_store::{Store, StoreResult};

use crate::metrics::Metrics;
use crate::state::AppState;
use crate::traces::RequestTrace;

/// Makes and stores a new key for the account; returns it with its text, to be shown once.
pub async fn issue_key(
    state: &AppState,
    account: &AccountId,
    name: Name,
) -> StoreResult<(ApiKey, String)> {
    let generated = api_key::generate();
    let record = NewApiKeyRecord {
        id: ApiKeyId::generate(),
        name,
        hash: generated.hash,
        display_prefix: generated.display_prefix,
    };
    let key = state.store.create_api_key(account, record).await?;
    Ok((key, generated.plaintext))
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

/// Live API keys one account may have at most: a script that creates a key per run, and never
/// revokes one, is stopped at a size every list still shows on one page.
pub const MAX_API_KEYS_PER_ACCOUNT: usize = 100;

/// Whether the account may have one more live API key (fewer than [`MAX_API_KEYS_PER_ACCOUNT`]).
/// As for webhooks, two creations at the same instant may both pass the count.
pub async fn has_room_for_api_key(store: &dyn Store, account: &AccountId) -> StoreResult<bool> {
    Ok(store.list_api_keys(account).await?.len() < MAX_API_KEYS_PER_ACCOUNT)
}

/// What a refused key creation says, in the API and the dashboard.
pub fn api_key_limit_message() -> String {
    format!(
        "An account may have at most {MAX_API_KEYS_PER_ACCOUNT} live API keys; revoke one first."
    )
}

/// Webhooks one account may have at most.
pub const MAX_WEBHOOKS_PER_ACCOUNT: usize = 100;

/// Whether the account may have one more webhook (fewer than [`MAX_WEBHOOKS_PER_ACCOUNT`]). Two
/// creations at the same instant may both pass the count: the limit is there against abuse, not
/// as a quota to the unit.
pub async fn has_room_for_webhook(store: &dyn Store, account: &AccountId) -> StoreResult<bool> {
    let page = store
        .list_webhooks(
            account,
            PageRequest {
                limit: MAX_WEBHOOKS_PER_ACCOUNT as u32,
                cursor: None,
            },
        )
        .await?;
    Ok(page.items.len() < MAX_WEBHOOKS_PER_ACCOUNT)
}

/// What a refused creation says, in the API and the dashboard.
pub fn webhook_limit_message() -> String {
    format!("An account may have at most {MAX_WEBHOOKS_PER_ACCOUNT} webhooks; delete one first.")
}

/// Sends a test event ([`NewEvent::test_event`]) to this webhook only, and counts it.
pub async fn send_test_event(
    state: &AppState,
    account: &AccountId,
    webhook: &WebhookId,
    event: NewEvent,
) -> StoreResult<Delivery> {
    let kind = event.event_type;
    let delivery = state.store.send_test_event(account, webhook, event).await?;
    state.metrics.event_emitted(kind);
    Ok(delivery)
}

/// Delivers a stored event again to one enabled webhook of the account, whatever it subscribes
/// to: a new delivery of the same event id and payload bytes, due now. Nothing is emitted, so
/// nothing is counted. Unknown event: `NotFound`; unknown webhook: `UnknownWebhook`; disabled
/// webhook: `WebhookDisabled`.
pub async fn resend_event(
    state: &AppState,
    account: &AccountId,
    event: &EventId,
    webhook: &WebhookId,
) -> StoreResult<Delivery> {
    state.store.resend_event(account, event, webhook).await
}

/// Records a trigger event and counts what it emitted; a replay emitted nothing. With the
/// request's span (`trace`, when tracing is on), the events join its trace.
pub async fn record_trigger_event(
    state: &AppState,
    account: &AccountId,
    mut request: RecordTriggerEvent,
    trace: Option<&RequestTrace>,
) -> StoreResult<TriggerEventOutcome> {
    request.trace = trace.map(|trace| *trace.parent());
    let started = trace.map(|_| SystemTime::now());
    let outcome = state.store.record_trigger_event(account, request).await?;
    count_emitted(&state.metrics, outcome.emitted());
    if let (Some(trace), Some(started)) = (trace, started) {
        state
            .traces
            .events_recorded(trace, account, outcome.emitted(), started);
    }
    Ok(outcome)
}

/// Issues points by hand and counts the event that emitted; see [`record_trigger_event`] for
/// `trace`.
pub async fn issue_credits(
    state: &AppState,
    account: &AccountId,
    mut request: IssueCredits,
    trace: Option<&RequestTrace>,
) -> StoreResult<CreditsIssued> {
    request.trace = trace.map(|trace| *trace.parent());
    let started = trace.map(|_| SystemTime::now());
    let issued = state.store.issue_credits(account, request).await?;
    count_emitted(&state.metrics, issued.emitted());
    if let (Some(trace), Some(started)) = (trace, started) {
        state
            .traces
            .events_recorded(trace, account, issued.emitted(), started);
    }
    Ok(issued)
}

/// Counts the events a change emitted, as the domain rules returned them (`reward_store::rules`).
fn count_emitted(metrics: &Metrics, emitted: &[EventType]) {
    for kind in emitted {
        metrics.event_emitted(*kind);
    }
}
