//! Handing new deliveries straight to this process's worker.
//!
//! A delivery is written to the store before its event is acknowledged (the outbox). Claiming it
//! back afterwards costs a query, a lease write and a load per delivery. Instead, a backend that
//! supports hand-off writes a new delivery already leased to this process, and once the
//! transaction has committed, passes it here with everything sending needs. The worker takes it
//! from here without touching the store until the attempt is recorded.
//!
//! Nothing is lost: the row is in the store, leased. If this process stops or drops a hand-off,
//! the lease runs out (or is released on the next start) and the delivery is claimed as usual.
//!
//! The queue is bounded (`capacity`, counting deliveries handed off and not yet started or given
//! up by the worker): past it, new deliveries are written unleased and claimed the usual way, so a
//! dead endpoint's backlog never piles up in memory.
//!
//! Deliveries to rate-limited webhooks are never handed off: the stores load no target for them
//! and write them unleased, so a claim grants each a start slot (`reward_core::endpoint::rate_limit`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use reward_core::event::NewEvent;
use reward_core::ids::{AccountId, DeliveryId, WebhookId};
use tokio::sync::Notify;

use crate::records::{ClaimedDelivery, DeliveryStatus, DeliveryTarget};
use crate::secrets::SecretCipher;

/// Deliveries handed off and not yet started, at most; past it they are left for claiming.
const CAPACITY: usize = 8192;

/// A store's hand-off queue: empty until its process's worker starts taking hand-offs.
#[derive(Default)]
pub struct HandoffSlot(OnceLock<Arc<Handoff>>);

impl HandoffSlot {
    /// The queue, made on the first call with `lease` (see [`DeliveryQueue::start_handoff`]).
    ///
    /// [`DeliveryQueue::start_handoff`]: crate::DeliveryQueue::start_handoff
    pub fn start(&self, lease: Duration) -> Arc<Handoff> {
        Arc::clone(
            self.0
                .get_or_init(|| Arc::new(Handoff::new(lease, CAPACITY))),
        )
    }

    /// The queue, when a worker takes hand-offs.
    pub fn get(&self) -> Option<&Arc<Handoff>> {
        self.0.get()
    }

    /// An outbox for one transaction.
    pub fn outbox(&self, cipher: &SecretCipher) -> Outbox {
        Outbox::new(self.get().map(Arc::as_ref), cipher)
    }

    /// After the outbox's transaction committed; see [`Outbox::committed`].
    pub fn committed(&self, outbox: Outbox) -> bool {
        outbox.committed(self.get().map(Arc::as_ref))
    }
}

pub struct Handoff {
    lease: Duration,
    capacity: usize,
    /// Committed deliveries, with when they were handed off.
    ready: Mutex<VecDeque<(Instant, ClaimedDelivery)>>,
    /// Handed off and neither started nor given up by the worker yet.
    outstanding: AtomicUsize,
    arrived: Notify,
}

impl Handoff {
    pub fn new(lease: Duration, capacity: usize) -> Self {
        Self {
            lease,
            capacity,
            ready: Mutex::new(VecDeque::new()),
            outstanding: AtomicUsize::new(0),
            arrived: Notify::new(),
        }
    }

    /// The lease to write on new deliveries, or `None` when the queue is full and they should
    /// be left for claiming. The bound is soft: transactions running together may each see room.
    fn lease_for_new(&self) -> Option<Duration> {
        (self.outstanding.load(Ordering::Relaxed) < self.capacity).then_some(self.lease)
    }

    /// How long after its hand-off a delivery may still be started: past this, too little of the
    /// lease would be left for the attempt, so the worker gives it up to claiming instead.
    pub fn max_wait(&self) -> Duration {
        self.lease / 3
    }

    /// Queues deliveries whose transaction has committed, and wakes the worker.
    pub fn push(&self, deliveries: Vec<ClaimedDelivery>) {
        if deliveries.is_empty() {
            return;
        }
        self.outstanding
            .fetch_add(deliveries.len(), Ordering::Relaxed);
        let now = Instant::now();
        self.lock()
            .extend(deliveries.into_iter().map(|delivery| (now, delivery)));
        self.arrived.notify_one();
    }

    /// Takes up to `limit` deliveries, oldest first, each with when it was handed off. The worker
    /// calls [`Self::settled`] for each once it has started or given it up.
    pub fn take(&self, limit: usize) -> Vec<(Instant, ClaimedDelivery)> {
        let mut ready = self.lock();
        let count = limit.min(ready.len());
        ready.drain(..count).collect()
    }

    /// `count` taken deliveries were started or given up.
    pub fn settled(&self, count: usize) {
        let _ =
            self.outstanding
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |outstanding| {
                    Some(outstanding.saturating_sub(count))
                });
    }

    /// Resolves when deliveries may have been pushed since the last call.
    pub async fn arrived(&self) {
        self.arrived.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Instant, ClaimedDelivery)>> {
        // A panic while holding this lock cannot leave the deque half-changed; keep going.
        self.ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One transaction's new deliveries, on their way to the worker once it commits.
pub struct Outbox {
    /// Set when handing off: the lease new deliveries are written with, and the key to open the
    /// secrets the worker signs with.
    handoff: Option<(Duration, SecretCipher)>,
    ready: Vec<ClaimedDelivery>,
    left_for_claiming: bool,
}

impl Outbox {
    /// An outbox for one transaction: handing off when `handoff` is given and has room.
    pub fn new(handoff: Option<&Handoff>, cipher: &SecretCipher) -> Self {
        Self {
            handoff: handoff
                .and_then(Handoff::lease_for_new)
                .map(|lease| (lease, cipher.clone())),
            ready: Vec::new(),
            left_for_claiming: false,
        }
    }

    /// The key to open subscribers' secrets with, when new deliveries are handed off.
    pub fn cipher(&self) -> Option<&SecretCipher> {
        self.handoff.as_ref().map(|(_, cipher)| cipher)
    }

    /// How long new deliveries are leased for, when they are handed off.
    pub fn lease(&self) -> Option<Duration> {
        self.handoff.as_ref().map(|(lease, _)| *lease)
    }

    /// Notes a delivery written in this transaction: handed off when its webhook's `target` was
    /// loaded (it was then written leased), else left for claiming. Stores load no target for a
    /// rate-limited webhook: its deliveries must be claimed, which grants them start slots.
    pub fn add(
        &mut self,
        account: &AccountId,
        id: DeliveryId,
        webhook: WebhookId,
        event: &NewEvent,
        target: Option<DeliveryTarget>,
    ) {
        match target {
            Some(target) => self.ready.push(ClaimedDelivery {
                account_id: account.clone(),
                id,
                webhook_id: webhook,
                event_id: event.id.clone(),
                url: target.url,
                secrets: target.secrets,
                headers: target.headers,
                payload: event.payload.clone(),
                trace: event.trace,
                status: DeliveryStatus::Pending,
                attempt_count: 0,
                schedule_attempts: 0,
                manual: false,
                // Rate-limited and ordered webhooks are never handed off: their deliveries are
                // claimed.
                start_slot: None,
                ordered: false,
            }),
            None => self.left_for_claiming = true,
        }
    }

    /// After the transaction committed: hands its deliveries to the worker. Returns whether some
    /// were left for claiming (the worker should be told to claim).
    pub fn committed(self, handoff: Option<&Handoff>) -> bool {
        if let Some(handoff) = handoff {
            handoff.push(self.ready);
        }
        self.left_for_claiming
    }
}
