//! What the upkeep task does now and then: retention, disabling webhooks that only fail, and the
//! query planner's statistics; and whether the database answers at all (readiness), and whether
//! a newer release migrated it meanwhile.

use async_trait::async_trait;
use reward_core::ids::WebhookId;
use reward_core::time::Timestamp;

use crate::records::SchemaVersions;
use crate::StoreResult;

#[async_trait]
pub trait Housekeeping: Send + Sync + 'static {
    /// Answers once the database has answered a trivial read (`SELECT 1`): the readiness probe,
    /// `/readyz`. An error is the reason it could not.
    async fn ping(&self) -> StoreResult<()>;
    /// Disables every enabled webhook whose delivery attempts have all failed since
    /// `failing_since` or earlier (`REWARD_DISABLE_AFTER`): one failed then or before, none
    /// succeeded (2xx) since, and the webhook was not changed since (enabling or editing it
    /// restarts the clock). Sets `disabled_reason` to `reason` and emits `webhook.disabled` for
    /// each, in the same transaction; returns the webhooks disabled.
    async fn disable_failing_webhooks(
        &self,
        failing_since: Timestamp,
        now: Timestamp,
        reason: String,
    ) -> StoreResult<Vec<WebhookId>>;
    /// Removes events older than `events_before` (with their deliveries) and idempotency keys
    /// older than `idempotency_before`.
    async fn purge_expired(
        &self,
        events_before: Timestamp,
        idempotency_before: Timestamp,
    ) -> StoreResult<()>;
    /// Clears the response bodies of attempts that started in `[since, before)`, keeping their
    /// status, timing and error (`REWARD_ATTEMPT_BODY_RETENTION`); returns how many were
    /// cleared. Works in small chunks, each its own short write. A backend that remembers where
    /// its previous run ended (SQLite) may start there instead of at `since`.
    async fn clear_attempt_bodies(&self, since: Timestamp, before: Timestamp) -> StoreResult<u64>;
    /// Removes attempt roll-ups of hours before `before`, and failure runs of webhooks that are
    /// gone (`crate::rollups`).
    async fn purge_rollups(&self, before: Timestamp) -> StoreResult<()>;
    /// Refreshes the query planner's statistics of tables that changed a lot since they were
    /// last gathered; returns the tables refreshed. Backends whose plans do not depend on
    /// gathered statistics do nothing.
    async fn refresh_statistics(&self) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }
    /// Schedules (a bounded number of) pending deliveries that wait unscheduled for an earlier
    /// delivery of their user that is no longer pending; returns how many. The writes that end or
    /// reorder deliveries schedule what they free themselves, so this finds something only after
    /// a race they did not see (a change of `ordering` while events were being recorded) or a
    /// purge of a pending delivery: it keeps such a user's deliveries from waiting forever.
    async fn schedule_waiting(&self) -> StoreResult<u64>;
    /// The database's schema version as it is now, and the newest this build knows: during a
    /// rolling upgrade a newer release may migrate the database under a node still running.
    async fn schema_versions(&self) -> StoreResult<SchemaVersions>;
}
