//! What store operations take and return.

use reward_core::credit::CreditRule;
use reward_core::endpoint::{
    Description, EventSelection, ExtraHeaders, Metadata, Ordering, RateLimit,
};
use reward_core::event::EventType;
use reward_core::filter::PayloadFilter;
use reward_core::ids::{
    AccountId, ApiKeyId, AttemptId, DeliveryId, EventId, TriggerEventId, WebhookId,
};
use reward_core::names::{IdempotencyKey, Name, TriggerId, UserId, WebhookUrl};
use reward_core::signing::WebhookSecret;
use reward_core::time::Timestamp;
use reward_core::trace::TraceParent;

/// Which page of a newest-first list to read.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// 1..=100.
    pub limit: u32,
    /// The `next_cursor` of the page before, as the store made it.
    pub cursor: Option<String>,
}

/// One page of a newest-first list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when more items follow.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: AccountId,
    pub name: Name,
    pub created_at: Timestamp,
}

/// An API key as stored: never the key itself.
#[derive(Debug, Clone)]
pub struct NewApiKeyRecord {
    pub id: ApiKeyId,
    pub name: Name,
    pub hash: String,
    pub display_prefix: String,
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: Name,
    pub display_prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub name: Name,
    pub url: WebhookUrl,
    pub events: EventSelection,
    pub enabled: bool,
    pub secret: WebhookSecret,
    pub settings: WebhookSettings,
}

/// What a customer may set on a webhook beyond its name, URL, events and state; each has a
/// default (no filter, no headers, no notes, no limit).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookSettings {
    /// Only events this matches are delivered.
    pub filter: Option<PayloadFilter>,
    /// Sent with every delivery; sealed at rest.
    pub headers: ExtraHeaders,
    pub description: Option<Description>,
    pub metadata: Metadata,
    /// At most this many attempts start per second, across every node.
    pub rate_limit: Option<RateLimit>,
    /// Whether one user's deliveries wait for each other (`per_user`) or not.
    pub ordering: Ordering,
}

/// Fields to change; `None` leaves a field as it is (`Some(None)` clears one that can be null).
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub name: Option<Name>,
    pub url: Option<WebhookUrl>,
    pub events: Option<EventSelection>,
    pub enabled: Option<bool>,
    pub filter: Option<Option<PayloadFilter>>,
    pub headers: Option<ExtraHeaders>,
    pub description: Option<Option<Description>>,
    pub metadata: Option<Metadata>,
    pub rate_limit: Option<Option<RateLimit>>,
    pub ordering: Option<Ordering>,
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: WebhookId,
    pub name: Name,
    pub url: WebhookUrl,
    pub events: EventSelection,
    pub enabled: bool,
    /// Why Reward itself disabled the webhook, if it did.
    pub disabled_reason: Option<String>,
    pub settings: WebhookSettings,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Which events a webhook receives: its selection of types, then its filter.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub events: EventSelection,
    pub filter: Option<PayloadFilter>,
}

/// Where and how a webhook's deliveries are sent.
#[derive(Debug, Clone)]
pub struct DeliveryTarget {
    pub url: WebhookUrl,
    pub secrets: WebhookSecrets,
    pub headers: ExtraHeaders,
}

/// The secrets that sign a webhook's deliveries: the current one and those rotated out.
pub use reward_core::rotation::WebhookSecrets;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "succeeded" => Some(DeliveryStatus::Succeeded),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub webhook_id: WebhookId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub last_status_code: Option<u16>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: AttemptId,
    pub number: u32,
    pub started_at: Timestamp,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DeliveryWithAttempts {
    pub delivery: Delivery,
    /// Oldest first.
    pub attempts: Vec<Attempt>,
}

/// Which deliveries of an account a search keeps: every filter given must hold. Times are
/// exclusive bounds on `created_at` (strictly after, strictly before).
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub webhook: Option<WebhookId>,
    pub event: Option<EventId>,
    pub event_type: Option<EventType>,
    pub status: Option<DeliveryStatus>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
}

/// Which events of an account a list keeps; times as in [`DeliveryQuery`].
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub event_type: Option<EventType>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub id: EventId,
    pub event_type: EventType,
    pub created_at: Timestamp,
    /// The exact payload bytes sent to receivers.
    pub payload: String,
}

/// A stored event as one to queue again (a resend): the same id and the same bytes, so the
/// receiver sees the same `webhook-id` and a signature over exactly what it got the first time.
/// A resend is an explicit request: it goes out of order, so it carries no user position.
impl From<Event> for reward_core::event::NewEvent {
    fn from(event: Event) -> Self {
        Self {
            id: event.id,
            event_type: event.event_type,
            time: event.created_at,
            payload: event.payload,
            user_position: None,
            trace: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TriggerSpec {
    pub id: TriggerId,
    pub name: Name,
    pub credit_points: Option<CreditRule>,
}

#[derive(Debug, Clone)]
pub struct Trigger {
    pub id: TriggerId,
    pub name: Name,
    pub credit_points: Option<CreditRule>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct RecordTriggerEvent {
    pub user: UserId,
    pub trigger: TriggerId,
    pub value: Option<serde_json::Number>,
    /// The key, and a fingerprint of the request it came with.
    pub idempotency: Option<(IdempotencyKey, String)>,
    /// The traced API request recording it, when tracing is on: its events join that trace.
    pub trace: Option<TraceParent>,
}

#[derive(Debug, Clone)]
pub struct TriggerEvent {
    pub id: TriggerEventId,
    pub user: UserId,
    pub trigger: TriggerId,
    pub value: Option<serde_json::Number>,
    pub credit_points_issued: i64,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub enum TriggerEventOutcome {
    /// Recorded now.
    Recorded(TriggerEvent),
    /// The idempotency key was seen before with the same request: the first result.
    Replayed(TriggerEvent),
}

#[derive(Debug, Clone)]
pub struct IssueCredits {
    pub user: UserId,
    pub points: i64,
    pub reason: Option<String>,
    /// The traced API request issuing them, when tracing is on: the event joins that trace.
    pub trace: Option<TraceParent>,
}

#[derive(Debug, Clone)]
pub struct CreditsIssued {
    pub user: UserId,
    pub points: i64,
    pub balance: i64,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub balance: i64,
    pub created_at: Timestamp,
}

/// What one claim leased, and what it passed over: due deliveries of webhooks at their in-flight
/// limit can be claimed once attempts to those webhooks end, which the worker uses to decide when
/// to claim again.
#[derive(Debug)]
pub struct Claim {
    pub deliveries: Vec<ClaimedDelivery>,
    pub passed_over: PassedOver,
}

/// Whether a claim passed over due deliveries of webhooks at their in-flight limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassedOver {
    /// Nothing: freeing slots cannot make another claim find more.
    Nothing,
    /// Due deliveries of busy webhooks were seen and left.
    BusyWebhooks,
    /// Busy webhooks were left out of the search without looking at their deliveries (PostgreSQL
    /// leaves them out in SQL): some may wait, or all may be leased already. Finding out would
    /// cost a scan of their unfinished deliveries on every claim, so the worker decides from
    /// whether work was announced instead.
    BusyWebhooksUnseen,
}

/// A delivery a worker has claimed, with everything needed to attempt it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub account_id: reward_core::ids::AccountId,
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event_id: EventId,
    pub url: WebhookUrl,
    pub secrets: WebhookSecrets,
    /// Sent beside Reward's own headers.
    pub headers: ExtraHeaders,
    /// The exact bytes to send.
    pub payload: String,
    /// The span that recorded its event, read with the payload: the attempt joins its trace.
    pub trace: Option<TraceParent>,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    pub schedule_attempts: u32,
    /// A manual retry asked for this attempt.
    pub manual: bool,
    /// When its webhook's rate limit lets it start; `None` without a limit.
    pub start_slot: Option<StartSlot>,
    /// It waited its turn among its user's deliveries (its webhook orders per user): once it
    /// ends, succeeded or failed, the user's next delivery may be claimed.
    pub ordered: bool,
}

/// When a claimed delivery of a rate-limited webhook may start (its slot granted by the claim,
/// see `reward_core::endpoint::rate_limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartSlot {
    /// When, on this process's monotonic clock: the slot was counted on the database's clock and
    /// placed here from the moment the claim read that clock, so neither a node's clock skew nor
    /// how long the claim took afterwards (which varies) moves it.
    pub at: std::time::Instant,
    /// How long after that it may still start. A start missed (the process stalled past it) is
    /// given back to claiming rather than bunched with the next slots.
    pub window: std::time::Duration,
}

impl StartSlot {
    /// The slot at `slot` for a claim that read `now` (microseconds, on one clock) at `read_at`.
    pub fn new(read_at: std::time::Instant, now: i64, slot: i64, window_micros: i64) -> Self {
        let micros =
            |value: i64| std::time::Duration::from_micros(u64::try_from(value).unwrap_or(0));
        Self {
            at: read_at + micros(slot.saturating_sub(now)),
            window: micros(window_micros),
        }
    }
}

/// What to claim.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub now: Timestamp,
    /// The claim's expiry: no other worker attempts the delivery before it.
    pub lease_until: Timestamp,
    pub limit: u32,
    /// Webhooks with this many attempts in flight are skipped (per-endpoint isolation).
    pub per_webhook_limit: u32,
    /// Attempts this worker already has in flight, per webhook.
    pub in_flight: std::collections::HashMap<WebhookId, u32>,
}

/// The delivery's state after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeliveryUpdate {
    Succeeded,
    /// Still pending; retry at this time; the attempt counted in the schedule.
    RetryAt(Timestamp),
    Failed,
    /// A manual attempt that failed: status and schedule as they were.
    Unchanged,
}

/// One finished attempt, to be recorded with the delivery's new state.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub account_id: reward_core::ids::AccountId,
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    pub attempt: Attempt,
    pub update: DeliveryUpdate,
    /// The attempt counted in the retry schedule.
    pub scheduled: bool,
    /// Disable the webhook, with this reason (e.g. it answered 410 Gone).
    pub disable_webhook: Option<String>,
    /// The delivery waited its turn among its user's ([`ClaimedDelivery::ordered`]): when it
    /// ends, succeeded or failed, the store schedules the user's next delivery.
    pub ordered: bool,
}

impl AttemptRecord {
    /// An ordered delivery ended: its user's next delivery may go.
    pub fn ends_turn(&self) -> bool {
        self.ordered
            && matches!(
                self.update,
                DeliveryUpdate::Succeeded | DeliveryUpdate::Failed
            )
    }
}

// Dashboard sessions and statistics.

/// A dashboard sign-in about to be stored: only a hash of its token, never the token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token_hash: String,
    pub created_at: Timestamp,
    /// The session ends then, whatever happens before.
    pub expires_at: Timestamp,
}

/// A live dashboard session, with what the dashboard shows about who is signed in.
#[derive(Debug, Clone)]
pub struct Session {
    pub account_id: AccountId,
    pub account_name: Name,
    /// The API key the session was opened with: revoking it ends the session.
    pub api_key_id: ApiKeyId,
    pub api_key_prefix: String,
    pub expires_at: Timestamp,
}

/// One webhook's delivery attempts in a period, and how many of them succeeded (2xx).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptStats {
    pub webhook_id: WebhookId,
    pub attempts: u64,
    pub succeeded: u64,
}

/// A webhook's health over a period (`GET /v1/webhooks/{id}/stats`, the dashboard's charts),
/// read from roll-ups (see `reward_store::rollups`).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookStats {
    pub period: reward_core::stats::StatsPeriod,
    /// Every bucket of the period, oldest first, zeros where nothing happened.
    pub buckets: Vec<StatsBucket>,
    /// Succeeded ÷ attempts over the whole period; `None` without attempts.
    pub success_rate: Option<f64>,
    /// The webhook's deliveries pending now (due or waiting for a retry).
    pub pending: u64,
    /// When the run of failed attempts since the webhook's last success began; `None` when its
    /// last attempt succeeded or it has none.
    pub failing_since: Option<Timestamp>,
}

/// The attempts that started in one bucket of a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsBucket {
    pub start: Timestamp,
    pub attempts: u64,
    /// Answered 2xx.
    pub succeeded: u64,
    pub failed: u64,
    /// Latency percentiles, as the upper bound of their latency bucket; `None` without attempts.
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
}

/// The delivery queue at a glance, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    /// Deliveries pending (due or waiting for a retry).
    pub pending: u64,
    /// When the oldest pending delivery was created.
    pub oldest_pending_created_at: Option<Timestamp>,
}

/// A database's schema version (how many migrations ran on it) beside the newest this build
/// knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersions {
    pub database: usize,
    pub build: usize,
}

impl SchemaVersions {
    /// A newer release migrated the database: this build may no longer write what it expects.
    pub fn database_is_newer(&self) -> bool {
        self.database > self.build
    }
}

/// A secret rotation as the stores carry it out: the new secret, until when the one it replaces
/// keeps signing, and, when the caller named it, the version of the secret it replaces (rotated
/// only while that one is current).
#[derive(Clone, Copy)]
pub struct Rotation<'a> {
    pub secret: &'a reward_core::signing::WebhookSecret,
    pub previous_expires_at: Timestamp,
    pub replaces: Option<&'a str>,
}
