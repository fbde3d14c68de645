//! The store as several nodes use it: two `PostgresStore`s on one fresh database stand for two
//! nodes. Leases, the in-flight limit, `SKIP LOCKED` claims and `LISTEN`/`NOTIFY` are checked
//! here, below the HTTP API; the integration suite (`crates/reward/tests/it/many_nodes.rs`) checks
//! the same promises with real processes.
//!
//! Runs whenever a PostgreSQL server answers at `REWARD_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432`); skipped with one line when none does, unless
//! `REWARD_REQUIRE_POSTGRES=1` makes that a failure.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reward_core::endpoint::{EventSelection, Ordering};
use reward_core::event::EventType;
use reward_core::ids::{AccountId, WebhookId};
use reward_core::names::UserId;
use reward_core::time::Timestamp;
use reward_store::records::{
    Attempt, AttemptRecord, ClaimRequest, ClaimedDelivery, DeliveryUpdate, IssueCredits,
    PassedOver, WebhookPatch,
};
use reward_store::{DeliveryQueue, EventLog, Housekeeping, Rewards, Webhooks};
use reward_store_postgres::testing::ScratchDatabase;
use reward_store_postgres::PostgresStore;

mod support {
    pub mod pgbouncer;
    pub mod route;
}
use support::pgbouncer::PgBouncer;
use support::route::{connect_to, Route};

/// Two nodes on one database, an account, and a webhook subscribed to credit issuance.
struct TwoNodes {
    first: Arc<PostgresStore>,
    second: Arc<PostgresStore>,
    account: AccountId,
    webhook: WebhookId,
    /// Dropped after the stores, before the database.
    _bouncer: Option<PgBouncer>,
    /// Dropped last: the stores' connections go first.
    _database: ScratchDatabase,
}

/// Each scenario twice: `direct` and `through_pgbouncer` (skipped when PgBouncer is missing).
macro_rules! on_both_routes {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn direct() {
                super::$scenario(super::Route::Direct).await;
            }

            #[tokio::test]
            async fn through_pgbouncer() {
                super::$scenario(super::Route::ThroughPgBouncer).await;
            }
        }
    )*};
}

impl TwoNodes {
    async fn start(route: Route) -> Option<Self> {
        let database = ScratchDatabase::create("reward_store_test").await?;
        let (url, options, bouncer) = connect_to(route, &database).await?;
        let open = || async {
            let store = PostgresStore::open_with(&url, &options).await;
            Arc::new(store.expect("open"))
        };
        let (first, second) = (open().await, open().await);
        let account = reward_store::testing::new_account(&*first).await;
        let webhook = first
            .create_webhook(
                &account,
                reward_store::testing::loopback_webhook(
                    "Orders",
                    EventSelection::Only(vec![EventType::BalanceCreditPointsIssued]),
                ),
            )
            .await
            .expect("webhook")
            .id;
        Some(Self {
            first,
            second,
            account,
            webhook,
            _bouncer: bouncer,
            _database: database,
        })
    }

    /// Queues `count` deliveries, due now.
    async fn queue(&self, count: usize) {
        for _ in 0..count {
            self.first
                .issue_credits(
                    &self.account,
                    IssueCredits {
                        user: UserId::parse("u1").expect("user"),
                        points: 1,
                        reason: None,
                        trace: None,
                    },
                )
                .await
                .expect("credits");
        }
    }
}

fn claim_request(limit: u32, per_webhook_limit: u32, lease: Duration) -> ClaimRequest {
    let now = Timestamp::now();
    ClaimRequest {
        now,
        lease_until: now.plus_millis(i64::try_from(lease.as_millis()).expect("lease")),
        limit,
        per_webhook_limit,
        in_flight: HashMap::new(),
    }
}

fn succeeded(claimed: &ClaimedDelivery) -> AttemptRecord {
    AttemptRecord {
        account_id: claimed.account_id.clone(),
        delivery_id: claimed.id.clone(),
        webhook_id: claimed.webhook_id.clone(),
        attempt: Attempt {
            id: reward_core::ids::AttemptId::generate(),
            number: claimed.attempt_count + 1,
            started_at: Timestamp::now(),
            duration_ms: 1,
            status_code: Some(200),
            // An endpoint may answer anything, a NUL included: recording must not fail on it.
            response_body: Some("ok\0".into()),
            error: None,
        },
        update: DeliveryUpdate::Succeeded,
        scheduled: true,
        disable_webhook: None,
        ordered: claimed.ordered,
    }
}

/// One user's three deliveries to a `per_user` webhook: a claim offers the first alone; recording
/// its end on the other node passes the turn on to the second, leased there, so no claim takes
/// it; and so on until the user has none left.
async fn an_ended_ordered_delivery_passes_its_users_turn_on_in_the_same_transaction(route: Route) {
    let Some(nodes) = TwoNodes::start(route).await else {
        return;
    };
    let per_user = WebhookPatch {
        ordering: Some(Ordering::PerUser),
        ..WebhookPatch::default()
    };
    nodes
        .first
        .update_webhook(&nodes.account, &nodes.webhook, per_user)
        .await
        .expect("per_user");
    nodes.queue(3).await;
    let lease = Duration::from_secs(30);
    let mut turn = nodes
        .first
        .claim_due_deliveries(claim_request(10, 1000, lease))
        .await
        .expect("claim")
        .deliveries;
    assert_eq!(turn.len(), 1, "a claim offers the user's earliest only");
    let mut seen = HashSet::new();
    for step in 0..3 {
        let current = turn.pop().expect("a delivery in turn");
        assert!(current.ordered, "step {step}: it waits its turn");
        assert!(
            seen.insert(current.id.clone()),
            "step {step}: a new delivery"
        );
        turn = nodes
            .second
            .record_attempts_passing_turns(vec![succeeded(&current)], lease)
            .await
            .expect("record and pass the turn on");
        let claimed = nodes
            .first
            .claim_due_deliveries(claim_request(10, 1000, lease))
            .await
            .expect("claim")
            .deliveries;
        assert!(
            claimed.is_empty(),
            "step {step}: the next delivery is leased to the node that passed the turn on"
        );
        if step < 2 {
            assert_eq!(turn.len(), 1, "step {step}: the next one was passed on");
        }
    }
    assert!(turn.is_empty(), "the user has no delivery left");
}

async fn two_nodes_claiming_at_once_never_get_the_same_delivery(route: Route) {
    let Some(nodes) = TwoNodes::start(route).await else {
        return;
    };
    nodes.queue(120).await;
    let claim_everything = |store: Arc<PostgresStore>| async move {
        let mut claimed = Vec::new();
        loop {
            let batch = store
                .claim_due_deliveries(claim_request(7, 1000, Duration::from_secs(30)))
                .await
                .expect("claim")
                .deliveries;
            if batch.is_empty() {
                return claimed;
            }
            claimed.extend(batch.into_iter().map(|delivery| delivery.id));
        }
    };
    let (first, second) = tokio::join!(
        tokio::spawn(claim_everything(Arc::clone(&nodes.first))),
        tokio::spawn(claim_everything(Arc::clone(&nodes.second))),
    );
    let (first, second) = (first.expect("first"), second.expect("second"));
    let all: Vec<_> = first.iter().chain(&second).collect();
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 120, "every delivery claimed once: {}", all.len());
    assert_eq!(distinct.len(), 120, "no delivery claimed twice");
    assert!(
        !first.is_empty() && !second.is_empty(),
        "both nodes took work"
    );
}

async fn a_dead_nodes_leases_run_out_and_the_other_takes_over(route: Route) {
    let Some(nodes) = TwoNodes::start(route).await else {
        return;
    };
    nodes.queue(3).await;
    let lease = Duration::from_millis(800);
    let taken = nodes
        .first
        .claim_due_deliveries(claim_request(10, 1000, lease))
        .await
        .expect("claim")
        .deliveries;
    assert_eq!(taken.len(), 3);
    // The first node "dies" holding its claims. Starting the second releases nothing...
    assert_eq!(nodes.second.release_all_leases().await.expect("release"), 0);
    let while_leased = nodes
        .second
        .claim_due_deliveries(claim_request(10, 1000, lease))
        .await
        .expect("claim")
        .deliveries;
    assert!(
        while_leased.is_empty(),
        "a live lease keeps other nodes off"
    );
    // ...but its idle worker knows when to look again: when the leases run out.
    let now = Timestamp::now();
    let due = nodes
        .second
        .next_due_at(now)
        .await
        .expect("next due")
        .expect("a lease runs out");
    assert!(due.as_millis() - now.as_millis() <= 800, "{due} vs {now}");
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let taken_over = nodes
        .second
        .claim_due_deliveries(claim_request(10, 1000, lease))
        .await
        .expect("claim")
        .deliveries;
    assert_eq!(taken_over.len(), 3, "the expired claims are taken over");
    // One recorded alone, the others as a worker's batch (one transaction).
    nodes
        .second
        .record_attempt(succeeded(&taken_over[0]))
        .await
        .expect("record");
    nodes
        .second
        .record_attempts(taken_over[1..].iter().map(succeeded).collect())
        .await
        .expect("record a batch");
    for delivery in &taken_over {
        let recorded = nodes
            .first
            .get_delivery(&nodes.account, &delivery.id)
            .await
            .expect("delivery");
        assert_eq!(recorded.delivery.status.as_str(), "succeeded");
        assert_eq!(recorded.attempts.len(), 1);
    }
    let recorded = nodes
        .first
        .get_delivery(&nodes.account, &taken_over[0].id)
        .await
        .expect("delivery");
    assert_eq!(
        recorded.attempts[0].response_body.as_deref(),
        Some("ok\u{FFFD}")
    );
}

async fn the_in_flight_limit_counts_every_nodes_attempts(route: Route) {
    let Some(nodes) = TwoNodes::start(route).await else {
        return;
    };
    nodes.queue(40).await;
    let limit = 32;
    let first = nodes
        .first
        .claim_due_deliveries(claim_request(256, limit, Duration::from_secs(30)))
        .await
        .expect("claim")
        .deliveries;
    assert_eq!(first.len(), 32, "one webhook gets 32 at most");
    let second = nodes
        .second
        .claim_due_deliveries(claim_request(256, limit, Duration::from_secs(30)))
        .await
        .expect("claim")
        .deliveries;
    assert!(
        second.is_empty(),
        "the other node sees the webhook's 32 in flight: claimed {}",
        second.len()
    );
    nodes
        .first
        .record_attempt(succeeded(&first[0]))
        .await
        .expect("record");
    let freed = nodes
        .second
        .claim_due_deliveries(claim_request(256, limit, Duration::from_secs(30)))
        .await
        .expect("claim")
        .deliveries;
    assert_eq!(freed.len(), 1, "one slot came free");
    assert_eq!(freed[0].webhook_id, nodes.webhook);
}

/// A claim says what it passed over: deliveries it refused because their webhook filled up during
/// the claim, or busy webhooks left out of its search unseen (whether their deliveries wait is the
/// worker's judgement, from announcements), or nothing.
async fn a_claim_says_what_it_passed_over(route: Route) {
    let Some(nodes) = TwoNodes::start(route).await else {
        return;
    };
    let limit = 32;
    let claim = |store: Arc<PostgresStore>| async move {
        store
            .claim_due_deliveries(claim_request(256, limit, Duration::from_secs(30)))
            .await
            .expect("claim")
    };
    let nothing_due = claim(Arc::clone(&nodes.first)).await;
    assert!(nothing_due.deliveries.is_empty());
    assert_eq!(nothing_due.passed_over, PassedOver::Nothing);
    nodes.queue(40).await;
    let filled = claim(Arc::clone(&nodes.first)).await;
    assert_eq!(filled.deliveries.len(), 32);
    assert_eq!(
        filled.passed_over,
        PassedOver::BusyWebhooks,
        "the claim filled the webhook up and refused the other 8"
    );
    // The other node learns that the webhook is full only from its candidates' leases.
    let busy = claim(Arc::clone(&nodes.second)).await;
    assert!(busy.deliveries.is_empty());
    assert_eq!(
        busy.passed_over,
        PassedOver::BusyWebhooks,
        "the other node found the 8 and refused them"
    );
    // The node attempting the 32 knows, and leaves the webhook out of its search.
    let mut own = claim_request(256, limit, Duration::from_secs(30));
    own.in_flight.insert(nodes.webhook.clone(), limit);
    let unseen = nodes.first.claim_due_deliveries(own).await.expect("claim");
    assert!(unseen.deliveries.is_empty());
    assert_eq!(
        unseen.passed_over,
        PassedOver::BusyWebhooksUnseen,
        "the busy webhook was left out of the search"
    );
    nodes
        .first
        .record_attempt(succeeded(&filled.deliveries[0]))
        .await
        .expect("record");
    let freed = claim(Arc::clone(&nodes.second)).await;
    assert_eq!(freed.deliveries.len(), 1, "one slot came free");
    assert_eq!(freed.passed_over, PassedOver::BusyWebhooks, "7 still wait");
}

async fn work_queued_on_one_node_wakes_the_other_within_100_ms(route: Route) {
    let Some(nodes) = TwoNodes::start(route).await else {
        return;
    };
    // The first wait starts listening and returns once it does (a look is due then).
    tokio::time::timeout(Duration::from_secs(5), nodes.second.work_signal())
        .await
        .expect("listening");
    let mut latencies = Vec::new();
    for _ in 0..10 {
        let waiting = {
            let second = Arc::clone(&nodes.second);
            tokio::spawn(async move {
                second.work_signal().await;
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let queued_at = Instant::now();
        nodes.queue(1).await;
        let woken_at = tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .expect("the other node woke")
            .expect("task");
        latencies.push(woken_at.saturating_duration_since(queued_at));
    }
    latencies.sort();
    let slowest = latencies[latencies.len() - 1];
    eprintln!("NOTIFY to the other node's worker: slowest {slowest:?} of {latencies:?}");
    assert!(slowest < Duration::from_millis(100), "{latencies:?}");
}

/// A table that grew since its statistics were gathered (here: never) is analyzed, once; without
/// it the planner plans the queue as if it were empty (see `statistics.rs`).
/// The refill scenario every backend runs (`reward_store::testing`), on one node.
async fn a_refill_due_since_the_last_claim_is_announced(route: Route) {
    let Some(nodes) = TwoNodes::start(route).await else {
        return;
    };
    reward_store::testing::a_refill_due_since_the_last_claim_is_announced(&*nodes.first).await;
}

/// The rotation scenario every backend runs, its rotations sent through both nodes at once.
async fn a_rotation_naming_the_current_secret_happens_once(route: Route) {
    let Some(nodes) = TwoNodes::start(route).await else {
        return;
    };
    reward_store::testing::a_rotation_naming_the_current_secret_happens_once(
        &*nodes.first,
        &*nodes.second,
    )
    .await;
}

async fn stale_statistics_are_refreshed_once(route: Route) {
    let Some(nodes) = TwoNodes::start(route).await else {
        return;
    };
    nodes.queue(120).await;
    // Backends report their inserts to the statistics views within about a second.
    let deadline = Instant::now() + Duration::from_secs(15);
    let refreshed = loop {
        let refreshed = nodes.first.refresh_statistics().await.expect("refresh");
        if refreshed.iter().any(|table| table == "deliveries") || Instant::now() > deadline {
            break refreshed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        refreshed.iter().any(|table| table == "deliveries"),
        "{refreshed:?}"
    );
    let again = nodes.second.refresh_statistics().await.expect("refresh");
    assert!(
        !again.iter().any(|table| table == "deliveries"),
        "analyzed twice: {again:?}"
    );
}

on_both_routes!(
    an_ended_ordered_delivery_passes_its_users_turn_on_in_the_same_transaction,
    two_nodes_claiming_at_once_never_get_the_same_delivery,
    a_dead_nodes_leases_run_out_and_the_other_takes_over,
    the_in_flight_limit_counts_every_nodes_attempts,
    a_claim_says_what_it_passed_over,
    work_queued_on_one_node_wakes_the_other_within_100_ms,
    stale_statistics_are_refreshed_once,
    a_refill_due_since_the_last_claim_is_announced,
    a_rotation_naming_the_current_secret_happens_once,
);
