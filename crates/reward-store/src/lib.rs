//! The storage contract every backend implements.
//!
//! - [`Store`]: every operation the API and the delivery workers need. Each mutating operation is
//!   atomic: a domain change, the events it emits and one pending delivery per subscribed, enabled
//!   webhook commit together, before the call returns (the transactional outbox).
//! - [`records`]: what operations take and return.
//! - [`StoreError`]: what can go wrong, split into the caller's mistakes and the store's troubles.
//!
//! Every operation on an account's data takes that account's id, and backends key every such table
//! by `account_id` first, so an account can never read another's rows and the schema can later be
//! distributed by account.

pub mod columns;
mod error;
pub mod handoff;
pub mod paging;
pub mod records;
pub mod rules;
pub mod secrets;
pub mod statements;

use async_trait::async_trait;
use reward_core::event::{EventType, NewEvent};
use reward_core::ids::{AccountId, ApiKeyId, DeliveryId, EventId, WebhookId};
use reward_core::names::{Name, TriggerId, UserId};
use reward_core::signing::WebhookSecret;
use reward_core::time::Timestamp;

pub use error::StoreError;
use records::*;

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Accounts and API keys.

    /// Creates an account with its first API key (stored as a hash only).
    async fn create_account(&self, name: Name, key: NewApiKeyRecord) -> StoreResult<Account>;
    async fn list_accounts(&self) -> StoreResult<Vec<Account>>;
    /// The account an API key (by hash) belongs to, if the key exists and is not revoked.
    async fn authenticate(&self, key_hash: &str) -> StoreResult<Option<AccountId>>;
    async fn create_api_key(
        &self,
        account: &AccountId,
        key: NewApiKeyRecord,
    ) -> StoreResult<ApiKey>;
    async fn list_api_keys(&self, account: &AccountId) -> StoreResult<Vec<ApiKey>>;
    async fn revoke_api_key(&self, account: &AccountId, key: &ApiKeyId) -> StoreResult<()>;
    /// Records that keys were used (callers batch and throttle this).
    async fn touch_api_keys(&self, used: Vec<(String, Timestamp)>) -> StoreResult<()>;

    // Webhooks.

    async fn create_webhook(
        &self,
        account: &AccountId,
        webhook: NewWebhook,
    ) -> StoreResult<Webhook>;
    async fn list_webhooks(
        &self,
        account: &AccountId,
        page: PageRequest,
    ) -> StoreResult<Page<Webhook>>;
    async fn get_webhook(&self, account: &AccountId, id: &WebhookId) -> StoreResult<Webhook>;
    async fn update_webhook(
        &self,
        account: &AccountId,
        id: &WebhookId,
        patch: WebhookPatch,
    ) -> StoreResult<Webhook>;
    /// Deletes a webhook and cancels (removes) its deliveries.
    async fn delete_webhook(&self, account: &AccountId, id: &WebhookId) -> StoreResult<()>;
    async fn webhook_secrets(
        &self,
        account: &AccountId,
        id: &WebhookId,
    ) -> StoreResult<WebhookSecrets>;
    /// Makes `secret` current; the old one keeps signing until `previous_expires_at`.
    async fn rotate_webhook_secret(
        &self,
        account: &AccountId,
        id: &WebhookId,
        secret: WebhookSecret,
        previous_expires_at: Timestamp,
    ) -> StoreResult<WebhookSecrets>;
    /// Stores `event` and one pending delivery of it to this webhook only.
    async fn send_test_event(
        &self,
        account: &AccountId,
        id: &WebhookId,
        event: NewEvent,
    ) -> StoreResult<Delivery>;

    // Deliveries.

    async fn list_deliveries(
        &self,
        account: &AccountId,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<Delivery>>;
    async fn get_delivery(
        &self,
        account: &AccountId,
        id: &DeliveryId,
    ) -> StoreResult<DeliveryWithAttempts>;
    /// Asks for one attempt now, whatever the delivery's status.
    async fn request_retry(&self, account: &AccountId, id: &DeliveryId) -> StoreResult<Delivery>;
    /// Re-queues every failed delivery of the webhook created at or after `since`; returns how many.
    async fn recover_deliveries(
        &self,
        account: &AccountId,
        webhook: &WebhookId,
        since: Timestamp,
    ) -> StoreResult<u64>;

    // Events.

    async fn list_events(
        &self,
        account: &AccountId,
        event_type: Option<EventType>,
        page: PageRequest,
    ) -> StoreResult<Page<Event>>;
    async fn get_event(&self, account: &AccountId, id: &EventId) -> StoreResult<Event>;

    // Triggers, trigger events, users and credits.

    /// Creates or replaces a trigger; says which.
    async fn put_trigger(
        &self,
        account: &AccountId,
        trigger: TriggerSpec,
    ) -> StoreResult<(Trigger, bool)>;
    async fn list_triggers(
        &self,
        account: &AccountId,
        page: PageRequest,
    ) -> StoreResult<Page<Trigger>>;
    async fn get_trigger(&self, account: &AccountId, id: &TriggerId) -> StoreResult<Trigger>;
    async fn delete_trigger(&self, account: &AccountId, id: &TriggerId) -> StoreResult<()>;
    /// Records a trigger event, issues its trigger's points and emits the events, honouring the
    /// idempotency key when one is given.
    async fn record_trigger_event(
        &self,
        account: &AccountId,
        request: RecordTriggerEvent,
    ) -> StoreResult<TriggerEventOutcome>;
    /// Adds points to a user's balance by hand and emits `balance.credit_points_issued`.
    async fn issue_credits(
        &self,
        account: &AccountId,
        request: IssueCredits,
    ) -> StoreResult<CreditsIssued>;
    async fn get_user(&self, account: &AccountId, id: &UserId) -> StoreResult<User>;

    // The delivery queue.

    /// Claims due deliveries under a lease: pending ones whose time has come (webhook enabled)
    /// and ones a manual retry asked for, skipping webhooks at their in-flight limit.
    async fn claim_due_deliveries(
        &self,
        request: ClaimRequest,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Records an attempt and the delivery's new state, and releases the lease.
    async fn record_attempt(&self, record: AttemptRecord) -> StoreResult<()>;
    /// Records many attempts at once (one transaction where the backend can).
    async fn record_attempts(&self, records: Vec<AttemptRecord>) -> StoreResult<()> {
        for record in records {
            self.record_attempt(record).await?;
        }
        Ok(())
    }
    /// When the earliest pending delivery after `now` falls due, if any.
    async fn next_due_at(&self, now: Timestamp) -> StoreResult<Option<Timestamp>>;
    /// Releases every lease (single-node backends call this on start: no other worker exists).
    async fn release_all_leases(&self) -> StoreResult<u64>;
    /// Releases the leases of deliveries handed to this process that its worker gave up without
    /// attempting (see `handoff`), so a claim can take them now rather than when the lease runs
    /// out, and wakes the workers to claim.
    async fn release_leases(&self, deliveries: Vec<(AccountId, DeliveryId)>) -> StoreResult<()>;
    /// How many deliveries are pending, and since when the oldest waits.
    async fn queue_stats(&self) -> StoreResult<QueueStats>;
    /// Resolves when new work may be due (a delivery created, retried or recovered). Waking
    /// spuriously is allowed; missing work is not, so workers also poll now and then.
    async fn work_signal(&self);
    /// Starts handing deliveries this process creates straight to its worker, leased for
    /// `lease` (see [`handoff`]). Returns the queue to take them from, or `None` when the backend
    /// leaves every delivery to claiming.
    fn start_handoff(
        &self,
        lease: std::time::Duration,
    ) -> Option<std::sync::Arc<handoff::Handoff>> {
        let _ = lease;
        None
    }

    // Dashboard sessions.

    /// Opens a dashboard session for the API key with this hash, when that key exists and is not
    /// revoked (`None` otherwise). Sessions that have expired are removed on the way, which keeps
    /// the table small without a sweeper.
    async fn start_session(
        &self,
        key_hash: &str,
        session: NewSession,
    ) -> StoreResult<Option<Session>>;
    /// The session whose token has this hash, while it is live: not expired at `now`, and its API
    /// key not revoked.
    async fn find_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Session>>;
    /// Ends a session (sign out). Ending one that does not exist is not an error.
    async fn end_session(&self, token_hash: &str) -> StoreResult<()>;

    // Delivery statistics.

    /// Per webhook of the account that had any, the attempts started at or after `since` and how
    /// many succeeded: the dashboard's recent success rate.
    async fn attempt_stats(
        &self,
        account: &AccountId,
        since: Timestamp,
    ) -> StoreResult<Vec<AttemptStats>>;

    // Upkeep.

    /// Removes events older than `events_before` (with their deliveries) and idempotency keys
    /// older than `idempotency_before`.
    /// Disables every enabled webhook whose delivery attempts have all failed since
    /// `failing_since` or earlier (`REWARD_DISABLE_AFTER`): one failed then or before, none
    /// succeeded (2xx) since, and the webhook was not changed since (enabling or editing it
    /// restarts the clock). Sets `disabled_reason` to `reason`; returns the webhooks disabled.
    async fn disable_failing_webhooks(
        &self,
        failing_since: Timestamp,
        now: Timestamp,
        reason: String,
    ) -> StoreResult<Vec<WebhookId>>;

    async fn purge_expired(
        &self,
        events_before: Timestamp,
        idempotency_before: Timestamp,
    ) -> StoreResult<()>;

    /// Refreshes the query planner's statistics of tables that changed a lot since they were
    /// last gathered; returns the tables refreshed. Backends whose plans do not depend on
    /// gathered statistics do nothing.
    async fn refresh_statistics(&self) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }
}
