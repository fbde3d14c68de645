//! The delivery worker: claims due deliveries from the store, attempts each on its own task, and
//! records the outcome with the delivery's next state.
//!
//! - [`sender`]: one HTTP attempt (signing, headers, timeout, 1 KiB answer).
//! - [`targets`]: which addresses a delivery may connect to.
//! - [`dns`]: resolving target hosts asynchronously, bounded in time and in lookups at once.
//! - `reclaim`: when to claim again after recording attempts.
//!
//! Isolation: at most [`PER_WEBHOOK_IN_FLIGHT`] attempts per webhook run at once, and claiming
//! skips webhooks at that limit, so a slow or dead endpoint only ever holds its own slots.
//! Rate limits: a claim grants a rate-limited webhook's deliveries start slots at most a second
//! ahead (`reward_core::endpoint::rate_limit`) and leaves the rest pending in the store; each
//! attempt waits for its slot (`ClaimedDelivery::start_slot`) and starts within the slot's window
//! or not at all (then it is given back to claiming: a stall must not bunch starts), and
//! `next_due_at` tells the worker when a limited webhook's slots need refilling. Such webhooks
//! are never handed off.
//! Latency: the store wakes the worker when a change makes work due, and the recorder tells it
//! when each retry it stored falls due; it polls only as a safety net ([`IDLE_POLL`]).
//!
//! When to claim again is decided here, not in the store: after a full claim at once; after
//! recording attempts only when the last claim passed over due deliveries of busy webhooks (the
//! recorded attempts freed their slots; see `reclaim`), or when an ordered delivery ended without
//! passing its turn on (its slot is free for another user's). In the steady state, where every
//! delivery is handed off, recording costs no claim.
//! Ordered webhooks (`ordering: per_user`) are never handed off: the store's claim only offers
//! each user's earliest pending delivery, so one user's deliveries go one at a time, in order.
//! When one ends, the transaction that records it also leases the user's next one
//! (`DeliveryQueue::record_attempts_passing_turns`), which takes over the ended one's slot and
//! starts at once: a busy user's deliveries follow each other without a claim between them.
//!
//! The worker sees the store only through [`DeliveryQueue`].

pub mod dns;
mod reclaim;
pub mod sender;
pub mod targets;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reward_core::delivery::{
    counts_in_schedule, next_state, AttemptContext, AttemptResult, NextState,
};
use reward_core::endpoint::rate_limit::SLOT_HORIZON_MICROS;
use reward_core::ids::{AccountId, AttemptId, DeliveryId, WebhookId};
use reward_core::retry::RetryPolicy;
use reward_core::time::Timestamp;
use reward_store::handoff::Handoff;
use reward_store::records::{
    Attempt, AttemptRecord, Claim, ClaimRequest, ClaimedDelivery, DeliveryStatus, DeliveryUpdate,
    PassedOver, StartSlot,
};
use reward_store::DeliveryQueue;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::traces::AttemptSpan;
use reclaim::ReclaimPolicy;
use sender::{SendOutcome, Sender};

/// Attempts in flight to one webhook at most.
pub const PER_WEBHOOK_IN_FLIGHT: u32 = 64;
/// Hand-offs waiting for a slot of one webhook at most (a quarter of the hand-off queue, so one
/// stalled webhook cannot take it all); past it they are given up to claiming: their leases are
/// released, and claims take them as the webhook's slots free up.
const MAX_PARKED_PER_WEBHOOK: usize = 2048;
/// Finished attempts recorded in one store call at most.
const RECORD_BATCH: usize = 512;
/// How long a lingering batch of finished attempts waits for the next one before it is recorded
/// anyway, while this worker's claims wait for slots (see [`linger`]).
const LINGER_QUIET: Duration = Duration::from_millis(5);
/// Attempts in flight in this process at most (a claim started just before hand-offs filled
/// the room may go past it by one batch).
pub const MAX_IN_FLIGHT: usize = 1024;
/// Deliveries claimed per store call at most.
const CLAIM_BATCH: u32 = 256;
/// Longest sleep while idle: bounds how late a retry (or another node's expired lease) is seen.
pub const IDLE_POLL: Duration = Duration::from_secs(1);
/// Pause after the store failed, before trying again.
const STORE_BACKOFF: Duration = Duration::from_millis(500);

pub struct Worker {
    /// The store's delivery queue: the only part of the store the worker uses.
    pub store: Arc<dyn DeliveryQueue>,
    pub sender: Sender,
    pub retry: RetryPolicy,
    pub lease: Duration,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// A span per attempt, in its event's trace, when tracing is on.
    pub traces: crate::traces::Traces,
}

impl Worker {
    /// Runs until `shutdown`; then stops claiming and lets attempts in flight finish (each is
    /// bounded by the delivery timeout) before returning.
    pub async fn run(self, shutdown: CancellationToken) {
        let worker = Arc::new(self);
        match worker.store.release_all_leases().await {
            Ok(0) => {}
            Ok(released) => tracing::info!(
                released,
                "re-queued deliveries in flight when the last run stopped"
            ),
            Err(error) => tracing::warn!(%error, "could not release old leases; they will expire"),
        }
        // Finished attempts go to one recorder that writes them in batches: an attempt's slot is
        // free as soon as its HTTP exchange ends, while its lease keeps the delivery from being
        // claimed again until the outcome is stored.
        let (records, recorder_queue) = mpsc::unbounded_channel();
        let slots_wanted = Arc::new(AtomicBool::new(false));
        // The recorder tells the loop of every batch it stored: when its earliest retry falls due
        // (so a retry sooner than the loop's planned wake-up is claimed on time rather than at the
        // next idle poll), and that its attempts' slots are free.
        let (recorded, mut recorded_batches) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(record_in_batches(
            Arc::clone(&worker.store),
            recorder_queue,
            recorded,
            Recording {
                lease: worker.lease,
                stopping: shutdown.clone(),
                slots_wanted: Arc::clone(&slots_wanted),
            },
        ));
        let handoff = worker.store.start_handoff(worker.lease);
        let mut slots = Slots {
            worker: Arc::clone(&worker),
            records,
            in_flight: HashMap::new(),
            tasks: JoinSet::new(),
            parked: HashMap::new(),
            parked_count: 0,
            given_up: Vec::new(),
            handoff: handoff.clone(),
        };
        // Claiming costs a store transaction, so it runs when the store says work may be due or
        // when the next retry falls due, not on every hand-off; and it runs beside the rest of
        // this loop, so hand-offs and finished attempts never wait for the store.
        let mut claiming: Option<PendingClaim> = None;
        let mut claim_now = true;
        let mut next_claim = Instant::now();
        // The earliest stored retry not yet covered by a claim: a claim round that ends after it
        // was stored must not push the next claim past it.
        let mut retry_due: Option<Instant> = None;
        let mut reclaim = ReclaimPolicy::default();
        while !shutdown.is_cancelled() {
            slots.reap_finished();
            slots.take_handoffs();
            if claiming.is_none() && (claim_now || Instant::now() >= next_claim) {
                let room = MAX_IN_FLIGHT.saturating_sub(slots.tasks.len());
                if room > 0 {
                    let limit = CLAIM_BATCH.min(room as u32);
                    let round = claim_round(Arc::clone(&worker), limit, slots.in_flight.clone());
                    claiming = Some(Box::pin(round));
                    claim_now = false;
                    reclaim.claim_started();
                    // This claim takes every retry already due; later ones stay remembered.
                    retry_due = retry_due.filter(|due| *due > Instant::now());
                }
            }
            let handed_off = async {
                match &handoff {
                    Some(handoff) => handoff.arrived().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                round = finish_claim(&mut claiming) => {
                    claiming = None;
                    match round {
                        ClaimRound::Claimed { deliveries, full, passed_over, pause } => {
                            for delivery in deliveries {
                                slots.start(delivery);
                            }
                            // Again at once after a full batch (more may be due right now), or
                            // when attempts recorded meanwhile freed slots it passed over.
                            claim_now = reclaim.claim_ended(passed_over) || full;
                            slots_wanted.store(reclaim.slots_wanted(), AtomicOrdering::Relaxed);
                            next_claim = Instant::now() + pause;
                            if let Some(due) = retry_due {
                                next_claim = next_claim.min(due);
                            }
                        }
                        ClaimRound::Failed(error) => {
                            reclaim.claim_failed();
                            tracing::warn!(%error, "claiming deliveries failed; retrying shortly");
                            next_claim = Instant::now() + STORE_BACKOFF;
                        }
                    }
                }
                () = worker.store.work_signal() => {
                    reclaim.work_announced();
                    claim_now = true;
                }
                Some(batch) = recorded_batches.recv() => {
                    if let Some(due) = batch.earliest_retry {
                        let due = instant_of(due);
                        retry_due = Some(retry_due.map_or(due, |known| known.min(due)));
                        next_claim = next_claim.min(due);
                    }
                    let slots_freed = slots.pass_turns(batch.passed, batch.turns_held);
                    if batch.stored {
                        claim_now |= reclaim.recorded(claiming.is_some());
                        if slots_freed {
                            claim_now |= reclaim.turns_ended(claiming.is_some());
                        }
                    }
                }
                () = handed_off => {}
                Some(done) = slots.tasks.join_next(), if !slots.tasks.is_empty() => slots.finished(done),
                () = tokio::time::sleep_until(next_claim.into()), if claiming.is_none() => {}
                () = shutdown.cancelled() => {}
            }
            slots.release_given_up();
        }
        // A claim under way has leased its deliveries: attempt them like the rest in flight.
        if let Some(round) = claiming.take() {
            if let ClaimRound::Claimed { deliveries, .. } = round.await {
                for delivery in deliveries {
                    slots.start(delivery);
                }
            }
        }
        slots.give_up_parked();
        if !slots.tasks.is_empty() {
            tracing::info!(
                in_flight = slots.tasks.len(),
                "waiting for attempts in flight"
            );
        }
        while let Some(done) = slots.tasks.join_next().await {
            slots.finished(done);
        }
        // Every attempt has queued its record; closing the queue lets the recorder finish.
        drop(slots);
        let _ = recorder.await;
        // Turns passed on while stopping are given back: their deliveries go to claiming now
        // rather than when their leases run out.
        let mut passed = Vec::new();
        while let Ok(batch) = recorded_batches.try_recv() {
            passed.extend(
                batch
                    .passed
                    .into_iter()
                    .map(|delivery| (delivery.account_id, delivery.id)),
            );
        }
        if !passed.is_empty() {
            if let Err(error) = worker.store.release_leases(passed).await {
                tracing::warn!(%error, "releasing deliveries passed on while stopping failed; their leases will run out");
            }
        }
    }

    async fn claim(
        &self,
        limit: u32,
        in_flight: &HashMap<WebhookId, u32>,
    ) -> reward_store::StoreResult<Claim> {
        let now = Timestamp::now();
        // A claimed delivery of a rate-limited webhook may wait up to the slot horizon before
        // it starts: its lease covers that wait and then the whole configured lease.
        let lease_ms = i64::try_from(self.lease.as_millis())
            .unwrap_or(i64::MAX)
            .saturating_add(SLOT_HORIZON_MICROS / 1000);
        self.store
            .claim_due_deliveries(ClaimRequest {
                now,
                lease_until: now.plus_millis(lease_ms),
                limit,
                per_webhook_limit: PER_WEBHOOK_IN_FLIGHT,
                in_flight: in_flight.clone(),
            })
            .await
    }

    /// How long to sleep when nothing could be claimed: until the next retry falls due, at most
    /// [`IDLE_POLL`].
    async fn idle_pause(&self) -> Duration {
        match self.store.next_due_at(Timestamp::now()).await {
            Ok(Some(due)) => time_until(due).clamp(Duration::from_millis(1), IDLE_POLL),
            _ => IDLE_POLL,
        }
    }

    /// One attempt, handed to the recorder. Returns its webhook, so its in-flight slot can be
    /// freed, or kept for the user's next delivery when an ordered one ended.
    async fn attempt(
        &self,
        delivery: ClaimedDelivery,
        records: &mpsc::UnboundedSender<AttemptRecord>,
    ) -> AttemptEnded {
        if let Some(slot) = delivery.start_slot {
            if !self.wait_for_slot(slot).await {
                self.give_back(&delivery).await;
                return AttemptEnded {
                    webhook: delivery.webhook_id,
                    turn_ended: false,
                };
            }
        }
        let started_at = Timestamp::now();
        let clock = Instant::now();
        let span = self.traces.attempt(&delivery);
        // Without a span of its own (tracing off here, or shedding), the attempt still passes on
        // its event's trace context.
        let trace_parent = span
            .as_ref()
            .and_then(AttemptSpan::trace_parent)
            .or(delivery.trace);
        let outcome = self.sender.send(&delivery, trace_parent.as_ref()).await;
        let elapsed = clock.elapsed();
        let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let status_code = outcome.status_code;
        let delivered = outcome.result == AttemptResult::Delivered;
        let record = self.record_for(&delivery, outcome, started_at, duration_ms);
        let outcome_name = outcome_name(record.update);
        self.metrics.attempt(outcome_name, status_code, elapsed);
        if let Some(span) = span {
            span.end(status_code, outcome_name, delivered);
        }
        let turn_ended = record.ends_turn();
        if records.send(record).is_err() {
            tracing::warn!(delivery_id = %delivery.id, "the recorder has stopped; the lease will expire");
            return AttemptEnded {
                webhook: delivery.webhook_id,
                turn_ended: false,
            };
        }
        AttemptEnded {
            webhook: delivery.webhook_id,
            turn_ended,
        }
    }

    /// Waits for a rate-limited webhook's start slot, granted by the claim; returns whether the
    /// attempt may start (false when this process stalled past the slot's window). The wait holds
    /// the webhook's in-flight slot and is covered by the lease.
    async fn wait_for_slot(&self, slot: StartSlot) -> bool {
        tokio::time::sleep_until(slot.at.into()).await;
        slot.at.elapsed() <= slot.window
    }

    /// Gives a delivery whose start slot was missed back to claiming, which grants it a new one:
    /// starting it late could bunch it with the next slots, faster than the limit.
    async fn give_back(&self, delivery: &ClaimedDelivery) {
        self.metrics.start_slot_missed();
        tracing::debug!(delivery_id = %delivery.id, "missed its rate-limit start slot; claimed again");
        let released = self
            .store
            .release_leases(vec![(delivery.account_id.clone(), delivery.id.clone())])
            .await;
        if let Err(error) = released {
            tracing::warn!(%error, delivery_id = %delivery.id, "releasing a delivery that missed its slot failed; its lease will run out");
        }
    }

    fn record_for(
        &self,
        delivery: &ClaimedDelivery,
        outcome: SendOutcome,
        started_at: Timestamp,
        duration_ms: u64,
    ) -> AttemptRecord {
        let context = AttemptContext {
            manual: delivery.manual,
            was_failed: delivery.status == DeliveryStatus::Failed,
            schedule_attempts: delivery.schedule_attempts,
        };
        let now = Timestamp::now();
        let next = next_state(
            &self.retry,
            context,
            outcome.result,
            now,
            rand::random::<f64>(),
        );
        let update = match next {
            NextState::Succeeded => DeliveryUpdate::Succeeded,
            NextState::RetryAt(at) => DeliveryUpdate::RetryAt(at),
            NextState::Failed => DeliveryUpdate::Failed,
            NextState::Unchanged => DeliveryUpdate::Unchanged,
        };
        let disable_webhook = (outcome.result == AttemptResult::Gone).then(|| {
            format!("The endpoint answered 410 Gone at {now}; Reward disabled the webhook. Enable it again once the endpoint is back.")
        });
        let next_attempt_at = match update {
            DeliveryUpdate::RetryAt(at) => Some(at.to_rfc3339()),
            _ => None,
        };
        tracing::info!(
            webhook_id = %delivery.webhook_id,
            event_id = %delivery.event_id,
            delivery_id = %delivery.id,
            host = delivery.url.host(),
            status = outcome.status_code,
            duration_ms,
            outcome = outcome_name(update),
            next_attempt_at,
            error = outcome.error.as_deref(),
            "delivery attempt"
        );
        AttemptRecord {
            account_id: delivery.account_id.clone(),
            delivery_id: delivery.id.clone(),
            webhook_id: delivery.webhook_id.clone(),
            attempt: Attempt {
                id: AttemptId::generate(),
                number: delivery.attempt_count + 1,
                started_at,
                duration_ms,
                status_code: outcome.status_code,
                response_body: outcome.response_body,
                error: outcome.error,
            },
            update,
            scheduled: counts_in_schedule(context),
            disable_webhook,
            ordered: delivery.ordered,
        }
    }
}

/// A claim running beside the worker's loop.
type PendingClaim = Pin<Box<dyn Future<Output = ClaimRound> + Send>>;

enum ClaimRound {
    /// What was claimed; whether the batch was full (more may be due); whether due deliveries of
    /// busy webhooks were passed over; how long to wait before claiming again otherwise.
    Claimed {
        deliveries: Vec<ClaimedDelivery>,
        full: bool,
        passed_over: PassedOver,
        pause: Duration,
    },
    Failed(reward_store::StoreError),
}

async fn claim_round(
    worker: Arc<Worker>,
    limit: u32,
    in_flight: HashMap<WebhookId, u32>,
) -> ClaimRound {
    match worker.claim(limit, &in_flight).await {
        Ok(claim) => {
            let full = claim.deliveries.len() == limit as usize;
            let pause = if full {
                Duration::ZERO
            } else {
                worker.idle_pause().await
            };
            ClaimRound::Claimed {
                deliveries: claim.deliveries,
                full,
                passed_over: claim.passed_over,
                pause,
            }
        }
        Err(error) => ClaimRound::Failed(error),
    }
}

/// The running claim's outcome; never resolves when none runs.
async fn finish_claim(claiming: &mut Option<PendingClaim>) -> ClaimRound {
    match claiming {
        Some(round) => round.await,
        None => std::future::pending().await,
    }
}

/// How an attempt's task ended.
struct AttemptEnded {
    webhook: WebhookId,
    /// An ordered delivery ended: its in-flight slot stays taken until its record tells whether
    /// the user's next delivery takes it over ([`Slots::pass_turns`]).
    turn_ended: bool,
}

/// What the recorder needs besides the store.
struct Recording {
    /// How long the users' next deliveries are leased for when turns are passed on.
    lease: Duration,
    /// Once the worker stops, turns are no longer passed on: nothing would attempt them.
    stopping: CancellationToken,
    /// This worker's claims wait for slots that recorded attempts free (see [`linger`]).
    slots_wanted: Arc<AtomicBool>,
}

/// A batch of attempts the recorder wrote, or failed to.
struct Recorded {
    /// It was stored (else the deliveries' leases run out and they are attempted again).
    stored: bool,
    /// When the earliest retry it stored falls due.
    earliest_retry: Option<Timestamp>,
    /// The in-flight slots its ended ordered deliveries still hold, per webhook.
    turns_held: HashMap<WebhookId, u32>,
    /// The users' next deliveries, leased in the same transaction: they take over those slots.
    passed: Vec<ClaimedDelivery>,
}

/// Writes finished attempts in batches until every sender is gone, and tells the loop of each
/// batch. A failed write is logged: the deliveries' leases then run out and they are attempted
/// again, so at least once holds.
async fn record_in_batches(
    store: Arc<dyn DeliveryQueue>,
    mut queue: mpsc::UnboundedReceiver<AttemptRecord>,
    recorded: mpsc::UnboundedSender<Recorded>,
    recording: Recording,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    let linger_for = store.record_linger();
    while queue.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let patient = !recording.slots_wanted.load(AtomicOrdering::Relaxed);
        linger(&mut queue, &mut batch, linger_for, patient).await;
        let records = std::mem::take(&mut batch);
        let mut turns_held: HashMap<WebhookId, u32> = HashMap::new();
        for record in records.iter().filter(|record| record.ends_turn()) {
            *turns_held.entry(record.webhook_id.clone()).or_insert(0) += 1;
        }
        let count = records.len();
        let earliest_retry = records
            .iter()
            .filter_map(|record| match record.update {
                DeliveryUpdate::RetryAt(at) => Some(at),
                _ => None,
            })
            .min();
        let result = if turns_held.is_empty() || recording.stopping.is_cancelled() {
            store.record_attempts(records).await.map(|()| Vec::new())
        } else {
            store
                .record_attempts_passing_turns(records, recording.lease)
                .await
        };
        let stored = result.is_ok();
        let passed = result.unwrap_or_else(|error| {
            tracing::warn!(%error, count, "recording attempts failed; their deliveries will be retried");
            Vec::new()
        });
        // The loop is gone only on shutdown, when it gives back what was passed on.
        let _ = recorded.send(Recorded {
            stored,
            earliest_retry: earliest_retry.filter(|_| stored),
            turns_held,
            passed,
        });
    }
}

/// Lets a batch that came with company wait up to `linger_for` (the store's
/// `DeliveryQueue::record_linger`) for more, up to [`RECORD_BATCH`]: under load, attempts end in
/// a stream. A lone attempt (light load) is written at once, and so is a batch that ends an
/// ordered delivery: its user's next one waits for the record.
///
/// A stream that stops for [`LINGER_QUIET`] ends the wait when the batch holds a failed attempt
/// (its retry may be due soon) or when the worker is not `patient` (its claims wait for busy
/// webhooks' slots): every attempt such a webhook had in flight may have ended, their slots held
/// until the record (claims count live leases), and nothing more is coming. Otherwise (hand-offs
/// that succeeded, no claim waiting) the batch waits out its linger: a node's attempts end in
/// bursts, one per batch of trigger events it wrote, several milliseconds apart, and the short
/// quiet would record each burst on its own, a commit each (docs/scaling.md).
async fn linger(
    queue: &mut mpsc::UnboundedReceiver<AttemptRecord>,
    batch: &mut Vec<AttemptRecord>,
    linger_for: Duration,
    patient: bool,
) {
    if linger_for.is_zero() || batch.len() < 2 || batch.iter().any(AttemptRecord::ends_turn) {
        return;
    }
    let succeeded = |record: &AttemptRecord| matches!(record.update, DeliveryUpdate::Succeeded);
    let deadline = tokio::time::Instant::now() + linger_for;
    let mut all_succeeded = batch.iter().all(succeeded);
    while batch.len() < RECORD_BATCH {
        let quiet = if patient && all_succeeded {
            linger_for
        } else {
            LINGER_QUIET
        };
        let quiet_until = (tokio::time::Instant::now() + quiet).min(deadline);
        let (before, room) = (batch.len(), RECORD_BATCH - batch.len());
        match tokio::time::timeout_at(quiet_until, queue.recv_many(batch, room)).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let arrived = &batch[before..];
                if arrived.iter().any(AttemptRecord::ends_turn) {
                    return;
                }
                all_succeeded &= arrived.iter().all(succeeded);
            }
        }
    }
}

/// How long until a wall-clock time (zero, if it has passed).
fn time_until(at: Timestamp) -> Duration {
    let wait = at.as_millis().saturating_sub(Timestamp::now().as_millis());
    Duration::from_millis(u64::try_from(wait).unwrap_or(0))
}

/// The monotonic instant at which a wall-clock time falls (now, if it has passed).
fn instant_of(at: Timestamp) -> Instant {
    Instant::now() + time_until(at)
}

/// The state an attempt left its delivery in, as logs and metrics name it.
fn outcome_name(update: DeliveryUpdate) -> &'static str {
    match update {
        DeliveryUpdate::Succeeded => "succeeded",
        DeliveryUpdate::RetryAt(_) => "retry",
        DeliveryUpdate::Failed => "failed",
        DeliveryUpdate::Unchanged => "unchanged",
    }
}

/// The attempts this worker runs, per webhook, and the hand-offs waiting for a slot.
struct Slots {
    worker: Arc<Worker>,
    records: mpsc::UnboundedSender<AttemptRecord>,
    in_flight: HashMap<WebhookId, u32>,
    tasks: JoinSet<AttemptEnded>,
    /// Handed-off deliveries whose webhook was at its limit, with when they were handed off.
    parked: HashMap<WebhookId, VecDeque<(Instant, ClaimedDelivery)>>,
    parked_count: usize,
    /// Handed-off deliveries given up since their leases were last released.
    given_up: Vec<(AccountId, DeliveryId)>,
    handoff: Option<Arc<Handoff>>,
}

impl Slots {
    fn start(&mut self, delivery: ClaimedDelivery) {
        *self
            .in_flight
            .entry(delivery.webhook_id.clone())
            .or_insert(0) += 1;
        self.spawn(delivery);
    }

    /// Starts an attempt whose in-flight slot is already counted.
    fn spawn(&mut self, delivery: ClaimedDelivery) {
        let (worker, records) = (Arc::clone(&self.worker), self.records.clone());
        self.tasks
            .spawn(async move { worker.attempt(delivery, &records).await });
    }

    /// A recorded batch's ended ordered deliveries hand their slots to their users' next
    /// deliveries (passed on by the store); slots left over are freed. Returns whether any was.
    fn pass_turns(
        &mut self,
        passed: Vec<ClaimedDelivery>,
        mut held: HashMap<WebhookId, u32>,
    ) -> bool {
        for delivery in passed {
            match held.get_mut(&delivery.webhook_id) {
                Some(count) if *count > 0 => {
                    *count -= 1;
                    self.spawn(delivery);
                }
                // Never passed on more than ended; counted like any other start if it were.
                _ => self.start(delivery),
            }
        }
        let mut freed = false;
        for (webhook, count) in held {
            for _ in 0..count {
                self.free_slot(&webhook);
                freed = true;
            }
        }
        freed
    }

    /// Starts a handed-off delivery, or parks it while its webhook is at its limit. One handed
    /// off too long ago, or for a webhook with [`MAX_PARKED_PER_WEBHOOK`] parked already, is
    /// given up: its lease is released and claiming takes it, at the webhook's own pace.
    fn start_or_park(&mut self, delivery: ClaimedDelivery, handed_at: Instant) {
        let busy = self
            .in_flight
            .get(&delivery.webhook_id)
            .copied()
            .unwrap_or(0);
        let parked = self
            .parked
            .get(&delivery.webhook_id)
            .map_or(0, VecDeque::len);
        if self.too_old(handed_at) || parked >= MAX_PARKED_PER_WEBHOOK {
            self.give_up(delivery);
        } else if busy < PER_WEBHOOK_IN_FLIGHT {
            self.settle(1);
            self.start(delivery);
        } else {
            self.parked_count += 1;
            self.parked
                .entry(delivery.webhook_id.clone())
                .or_default()
                .push_back((handed_at, delivery));
        }
    }

    fn too_old(&self, handed_at: Instant) -> bool {
        self.handoff
            .as_ref()
            .is_some_and(|handoff| handed_at.elapsed() > handoff.max_wait())
    }

    /// Starts (or parks) every handed-off delivery there is room for.
    fn take_handoffs(&mut self) {
        let Some(handoff) = self.handoff.clone() else {
            return;
        };
        // Parked hand-offs hold no slot: counting them here would let one stalled webhook keep
        // every other webhook's deliveries waiting.
        let room = MAX_IN_FLIGHT.saturating_sub(self.tasks.len());
        for (handed_at, delivery) in handoff.take(room) {
            self.start_or_park(delivery, handed_at);
        }
    }

    fn reap_finished(&mut self) {
        while let Some(done) = self.tasks.try_join_next() {
            self.finished(done);
        }
    }

    /// Frees a finished attempt's slot, unless an ordered delivery ended (its slot waits for the
    /// record: see [`Self::pass_turns`]).
    fn finished(&mut self, done: Result<AttemptEnded, tokio::task::JoinError>) {
        let Ok(ended) = done else {
            // A panicked attempt leaves its slot counted; its lease expires and it is retried.
            return;
        };
        // An ordered delivery that ended keeps its slot until its record is stored.
        if !ended.turn_ended {
            self.free_slot(&ended.webhook);
        }
    }

    /// Frees one of a webhook's in-flight slots and gives it to the webhook's next parked
    /// hand-off that still has enough of its lease left; older ones are given up to claiming.
    fn free_slot(&mut self, webhook: &WebhookId) {
        if let Some(count) = self.in_flight.get_mut(webhook) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.in_flight.remove(webhook);
            }
        }
        while let Some((handed_at, delivery)) = self.next_parked(webhook) {
            self.parked_count -= 1;
            if self.too_old(handed_at) {
                self.give_up(delivery);
            } else {
                self.settle(1);
                self.start(delivery);
                break;
            }
        }
    }

    fn next_parked(&mut self, webhook: &WebhookId) -> Option<(Instant, ClaimedDelivery)> {
        let queue = self.parked.get_mut(webhook)?;
        let next = queue.pop_front();
        if queue.is_empty() {
            self.parked.remove(webhook);
        }
        next
    }

    /// On shutdown: parked hand-offs stay in the store, leased; the next start releases them.
    fn give_up_parked(&mut self) {
        self.settle(self.parked_count);
        self.parked.clear();
        self.parked_count = 0;
    }

    /// A handed-off delivery this worker will not attempt: its lease is released (in
    /// [`Self::release_given_up`]) so a claim takes it at its webhook's pace.
    fn give_up(&mut self, delivery: ClaimedDelivery) {
        self.settle(1);
        self.given_up.push((delivery.account_id, delivery.id));
    }

    /// Releases the leases of the deliveries given up since the last call, beside the loop. If
    /// that fails, the leases run out instead.
    fn release_given_up(&mut self) {
        if self.given_up.is_empty() {
            return;
        }
        let deliveries = std::mem::take(&mut self.given_up);
        self.worker.metrics.handoffs_given_up(deliveries.len());
        let store = Arc::clone(&self.worker.store);
        tokio::spawn(async move {
            let count = deliveries.len();
            if let Err(error) = store.release_leases(deliveries).await {
                tracing::warn!(%error, count, "releasing given-up deliveries failed; their leases will run out");
            }
        });
    }

    fn settle(&self, count: usize) {
        if let Some(handoff) = &self.handoff {
            handoff.settled(count);
        }
    }
}

#[cfg(test)]
mod tests {
    use reward_core::ids::AccountId;
    use reward_store::testing::attempt_record;

    use super::*;

    fn finished() -> AttemptRecord {
        let now = Timestamp::now().as_millis();
        attempt_record(&AccountId::generate(), &WebhookId::generate(), now, 1, 204)
    }

    #[tokio::test]
    async fn a_lingering_batch_whose_stream_stopped_is_recorded_without_waiting_it_out() {
        let (sender, mut queue) = mpsc::unbounded_channel();
        for _ in 0..3 {
            sender.send(finished()).expect("queued");
        }
        let mut batch = vec![finished(), finished()];
        // A minute's linger, and the sender still open: only the quiet can end the wait.
        let lingered = tokio::time::timeout(
            Duration::from_secs(30),
            linger(&mut queue, &mut batch, Duration::from_secs(60), false),
        )
        .await;
        assert!(lingered.is_ok(), "the batch waited out its linger");
        assert_eq!(batch.len(), 5, "what had come meanwhile joins the batch");
        drop(sender);
    }

    /// Lingers over `batch` (patiently or not) while a burst of two attempts comes every 100 ms,
    /// three times; returns the batch's size once the linger ended.
    async fn lingered_over_bursts(mut batch: Vec<AttemptRecord>, patient: bool) -> usize {
        let gap = LINGER_QUIET * 20;
        let (sender, mut queue) = mpsc::unbounded_channel();
        let bursts = tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(gap).await;
                sender.send(finished()).expect("queued");
                sender.send(finished()).expect("queued");
            }
            sender
        });
        linger(&mut queue, &mut batch, gap * 6, patient).await;
        drop(bursts.await.expect("bursts"));
        batch.len()
    }

    #[tokio::test]
    async fn without_a_claim_waiting_successes_linger_across_gaps_between_bursts() {
        let patient = lingered_over_bursts(vec![finished(), finished()], true).await;
        assert_eq!(patient, 8, "every burst joined the batch");
        let waited_for = lingered_over_bursts(vec![finished(), finished()], false).await;
        assert_eq!(
            waited_for, 2,
            "a claim waiting: recorded before the next burst"
        );
        let mut failed = finished();
        failed.update = DeliveryUpdate::RetryAt(Timestamp::now());
        let retrying = lingered_over_bursts(vec![finished(), failed], true).await;
        assert_eq!(
            retrying, 2,
            "a retry to store: recorded before the next burst"
        );
    }
}
