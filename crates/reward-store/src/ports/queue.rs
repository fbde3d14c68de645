//! The delivery worker's port: everything it asks of the store, and nothing else.
//!
//! The store answers questions and keeps leases; *when* to ask again is the worker's decision.
//! A claim says what it passed over of webhooks at their in-flight limit ([`Claim::passed_over`],
//! [`PassedOver`]): only due deliveries passed over can make recording attempts (which free those
//! webhooks' slots) worth a new claim, so only then does the worker claim again after recording.
//! In the steady state, where every delivery is handed off, recording attempts costs no claim.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reward_core::ids::{AccountId, DeliveryId};
use reward_core::time::Timestamp;

use crate::handoff::Handoff;
#[cfg(doc)]
use crate::records::PassedOver;
use crate::records::{AttemptRecord, Claim, ClaimRequest, ClaimedDelivery};
use crate::StoreResult;

#[async_trait]
pub trait DeliveryQueue: Send + Sync + 'static {
    /// Claims due deliveries under a lease: pending ones whose time has come (webhook enabled)
    /// and ones a manual retry asked for, skipping webhooks at their in-flight limit. Says
    /// whether due deliveries were left because their webhooks were at that limit; when the
    /// claim was full that may be said without looking (the worker claims again at once anyway).
    async fn claim_due_deliveries(&self, request: ClaimRequest) -> StoreResult<Claim>;
    /// Records an attempt and the delivery's new state, and releases the lease.
    async fn record_attempt(&self, record: AttemptRecord) -> StoreResult<()>;
    /// Records many attempts at once (one transaction where the backend can). An ordered
    /// delivery that ended schedules its user's next one, which waited unscheduled (no
    /// `next_attempt_at`) behind it.
    async fn record_attempts(&self, records: Vec<AttemptRecord>) -> StoreResult<()> {
        for record in records {
            self.record_attempt(record).await?;
        }
        Ok(())
    }
    /// Records attempts as [`Self::record_attempts`] does and, in the same transaction, passes
    /// each ended ordered delivery's turn ([`AttemptRecord::ends_turn`]) on: its user's next
    /// pending delivery to the same webhook is leased for `lease` and returned, to be attempted
    /// at once, when it is due, not leased, not asked for by a manual retry, and its webhook is
    /// enabled and not rate-limited (a rate-limited one needs a start slot: claims grant those).
    /// Otherwise it is left to claiming. Either way it is scheduled, as `record_attempts` does.
    async fn record_attempts_passing_turns(
        &self,
        records: Vec<AttemptRecord>,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let _ = lease;
        self.record_attempts(records).await?;
        Ok(Vec::new())
    }
    /// When the earliest pending delivery after `now` falls due, if any.
    async fn next_due_at(&self, now: Timestamp) -> StoreResult<Option<Timestamp>>;
    /// Releases every lease (single-node backends call this on start: no other worker exists).
    async fn release_all_leases(&self) -> StoreResult<u64>;
    /// Releases the leases of deliveries handed to this process that its worker gave up without
    /// attempting (see `handoff`), so a claim can take them now rather than when the lease runs
    /// out, and wakes the workers to claim.
    async fn release_leases(&self, deliveries: Vec<(AccountId, DeliveryId)>) -> StoreResult<()>;
    /// Resolves when new work may be due (a delivery created, retried or recovered). Waking
    /// spuriously is allowed; missing work is not, so workers also poll now and then.
    async fn work_signal(&self);
    /// How long the worker may hold a batch of finished attempts that came with company, waiting
    /// for more, before recording it: where every write is a commit the database flushes and a
    /// handful of statements whatever its size (PostgreSQL), fewer and larger batches leave it
    /// more for everything else. Zero (the default) records each batch at once.
    fn record_linger(&self) -> Duration {
        Duration::ZERO
    }
    /// Starts handing deliveries this process creates straight to its worker, leased for
    /// `lease` (see [`crate::handoff`]). Returns the queue to take them from, or `None` when the
    /// backend leaves every delivery to claiming.
    fn start_handoff(&self, lease: Duration) -> Option<Arc<Handoff>> {
        let _ = lease;
        None
    }
}
