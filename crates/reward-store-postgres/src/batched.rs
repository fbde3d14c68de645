//! Recording trigger events in batches: group commit for PostgreSQL.
//!
//! Each trigger event recorded on its own costs a transaction of seven statements, and on a small
//! machine PostgreSQL's per-statement work (and the context switches of every round trip) is what
//! limits the rate. Requests that arrive together are therefore written together: one transaction
//! and a handful of statements per batch, whatever its size, with rows passed as arrays
//! (`unnest`). The batch commits once, so one WAL flush covers all of its events, and each
//! request is answered only after that commit: durability is unchanged.
//!
//! When a batch fails as a whole (a balance would overflow, a statement was refused), it is
//! rolled back and each of its requests is recorded again on its own, so one bad request gets its
//! own error and never fails its neighbours. An `Idempotency-Key` is claimed in the batch like
//! the rest; a request whose key is already taken (a replay, a conflict, or the same key twice in
//! one batch) is recorded on its own once the batch has committed, which settles its answer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use reward_core::credit::CreditRule;
use reward_core::endpoint::Ordering;
use reward_core::event::{EventType, NewEvent};
use reward_core::idempotency;
use reward_core::ids::{AccountId, DeliveryId, WebhookId};
use reward_core::time::Timestamp;
use reward_core::trace::TraceParent;
use reward_store::handoff::{HandoffSlot, Outbox};
use reward_store::records::{
    DeliveryTarget, RecordTriggerEvent, Subscription, TriggerEvent, TriggerEventOutcome,
};
use reward_store::rules::{self, NewTriggerEvent};
use reward_store::secrets::SecretCipher;
use reward_store::user_counters::UserCounters;
use reward_store::{StoreError, StoreResult};
use tokio::task::JoinSet;

use crate::coalesce::{Batching, Call, Coalescer, Gather, Overlap};
use crate::connect::Pool;
use crate::errors::{from_balance_update, from_pg, from_pool};
use crate::outbox::{self, NewDelivery};
use crate::rewards;
use crate::rows;
use crate::signal::WorkSignal;
use crate::statements::{shift_placeholders, Db, Param, Tx};
use crate::webhooks;

/// Requests in one batch at most.
const MAX_BATCH: usize = 256;
/// Batches written at once at most: one, unless it takes longer than [`OVERLAP_AFTER`] (a stall
/// on a row another node holds, say), when the next starts beside it (see [`Overlap`]).
/// Measured on PostgreSQL, 1 and 3 nodes, 32 clients: one at a time records 1.17 and 1.5 times
/// as many trigger events per second as four at once (docs/scaling.md).
const CONCURRENT_BATCHES: usize = 4;
/// How long a batch runs before the next may start beside it.
const OVERLAP_AFTER: std::time::Duration = std::time::Duration::from_millis(10);
/// How long a batch waits for the callers it may expect, and from how many it does (see
/// [`Gather`]). Measured on PostgreSQL with 32 clients (docs/scaling.md): 1.16 times the trigger
/// events per second on one node and 1.36 times on three, the clients no longer split into two
/// groups taking turns.
const GATHER: Gather = Gather {
    wait: std::time::Duration::from_millis(2),
    from: 8,
};

/// A trigger event to record, for an account.
pub struct Job {
    account: AccountId,
    request: RecordTriggerEvent,
}

type JobCall = Call<Job, TriggerEventOutcome>;

/// What a write needs to hand its new deliveries off once committed: the store's, shared with
/// the tasks that write batches.
#[derive(Clone)]
pub struct WriteContext {
    pub pool: Pool,
    pub cipher: SecretCipher,
    pub handoff: Arc<HandoffSlot>,
    pub signal: Arc<WorkSignal>,
}

impl WriteContext {
    /// An outbox for one transaction, handing off to this node's worker when it takes hand-offs.
    pub fn outbox(&self) -> Outbox {
        self.handoff.outbox(&self.cipher)
    }

    /// After a committed transaction: hands its deliveries to this node's worker, and tells
    /// every node when some were left for claiming.
    pub fn after_commit(&self, outbox: Outbox) {
        if self.handoff.committed(outbox) {
            self.signal.announce(&self.pool);
        }
    }
}

/// Where trigger events wait for their batch.
pub struct TriggerEventBatcher(Coalescer<Job, TriggerEventOutcome>);

impl TriggerEventBatcher {
    pub fn start(context: WriteContext) -> Self {
        let context = Arc::new(context);
        Self(Coalescer::start(
            Batching {
                max_batch: MAX_BATCH,
                concurrent: CONCURRENT_BATCHES,
                overlap: Overlap::After(OVERLAP_AFTER),
                gather: Some(GATHER),
            },
            move |calls| {
                let context = Arc::clone(&context);
                async move { write_batch(context, calls).await }
            },
        ))
    }

    /// Records the trigger event in the next batch; answers once that batch committed.
    pub async fn record(
        &self,
        account: AccountId,
        request: RecordTriggerEvent,
    ) -> StoreResult<TriggerEventOutcome> {
        self.0.call(Job { account, request }).await
    }
}

/// Writes the batch, or each of its jobs on its own when the batch as a whole failed. Jobs
/// written alone run at once, each on its own connection.
async fn write_batch(context: Arc<WriteContext>, calls: Vec<JobCall>) {
    let mut alone = JoinSet::new();
    if calls.len() == 1 {
        for call in calls {
            write_alone_in(&mut alone, &context, call);
        }
    } else {
        let jobs: Vec<&Job> = calls.iter().map(|call| &call.request).collect();
        let mut outbox = context.outbox();
        match write_together(&context, &jobs, &mut outbox).await {
            Ok(outcomes) => {
                context.after_commit(outbox);
                for (call, outcome) in calls.into_iter().zip(outcomes) {
                    match outcome {
                        Some(outcome) => call.answer(outcome),
                        None => write_alone_in(&mut alone, &context, call),
                    }
                }
            }
            Err(error) => {
                tracing::debug!(%error, "a batch of trigger events failed; recording each alone");
                for call in calls {
                    write_alone_in(&mut alone, &context, call);
                }
            }
        }
    }
    while alone.join_next().await.is_some() {}
}

fn write_alone_in(alone: &mut JoinSet<()>, context: &Arc<WriteContext>, call: JobCall) {
    let context = Arc::clone(context);
    alone.spawn(async move {
        let outcome = write_alone(&context, &call.request.account, &call.request.request).await;
        call.answer(outcome);
    });
}

/// One trigger event in its own transaction.
async fn write_alone(
    context: &WriteContext,
    account: &AccountId,
    request: &RecordTriggerEvent,
) -> StoreResult<TriggerEventOutcome> {
    let mut outbox = context.outbox();
    let mut client = context.pool.get().await.map_err(from_pool)?;
    let tx = client.transaction();
    let outcome = rewards::record_trigger_event(&tx, account, request, &mut outbox).await?;
    tx.commit().await.map_err(from_pg)?;
    context.after_commit(outbox);
    Ok(outcome)
}

/// The batch in one transaction. Returns each job's outcome, in order: a job without a key
/// naming an unknown trigger, or whose rule would issue too many points, gets its error and
/// writes nothing; `None` is a job to be recorded alone once this batch has committed, which
/// settles what it answers: its `Idempotency-Key` was already taken (a replay, a conflict, or a
/// second request with it in this batch), or it has a key and an error. An `Err` means nothing
/// was written.
async fn write_together(
    context: &WriteContext,
    jobs: &[&Job],
    outbox: &mut Outbox,
) -> StoreResult<Vec<Option<StoreResult<TriggerEventOutcome>>>> {
    let now = Timestamp::now();
    let mut client = context.pool.get().await.map_err(from_pool)?;
    let tx = client.transaction();
    let (credit_rules, subscribers) = tokio::try_join!(
        load_rules(&tx, jobs),
        load_subscribers(&tx, jobs, outbox.cipher()),
    )?;

    let mut recorded: Vec<StoreResult<TriggerEvent>> = Vec::with_capacity(jobs.len());
    for job in jobs {
        let key = (job.account.to_string(), job.request.trigger.to_string());
        // More than 10^12 points is that job's own error, like an unknown trigger, and writes
        // nothing.
        recorded.push(match credit_rules.get(&key) {
            None => Err(StoreError::UnknownTrigger(job.request.trigger.to_string())),
            Some(rule) => NewTriggerEvent::new(&job.request, now)
                .record(rule.as_ref())
                .map_err(StoreError::from),
        });
    }

    let claimed = claim_keys(&tx, jobs, &recorded, now).await?;
    let written: Vec<(&AccountId, &TriggerEvent)> = jobs
        .iter()
        .zip(&recorded)
        .zip(&claimed)
        .filter(|(_, claimed)| **claimed)
        .filter_map(|((job, recorded), _)| {
            recorded.as_ref().ok().map(|event| (&job.account, event))
        })
        .collect();
    // The traced requests behind `written`, in the same order.
    let causes: Vec<Option<TraceParent>> = jobs
        .iter()
        .zip(&recorded)
        .zip(&claimed)
        .filter(|((_, recorded), claimed)| **claimed && recorded.is_ok())
        .map(|((job, _), _)| job.request.trace)
        .collect();
    let counters = add_to_users(&tx, &written, now).await?;
    let events = events_of(&written, &causes, counters);
    let event_rows: Vec<(&AccountId, &NewEvent)> = events
        .iter()
        .map(|(account, event)| (*account, event))
        .collect();
    let (deliveries, webhooks) = deliveries_of(&events, &subscribers);
    insert_and_commit(tx, &written, &event_rows, &deliveries, now, outbox.lease()).await?;

    for (delivery, webhook) in deliveries.into_iter().zip(webhooks) {
        outbox.add(
            delivery.account,
            delivery.id,
            webhook.id.clone(),
            delivery.event,
            webhook.target.clone(),
        );
    }
    Ok(recorded
        .into_iter()
        .zip(claimed)
        .map(|(recorded, claimed)| claimed.then(|| recorded.map(TriggerEventOutcome::Recorded)))
        .collect())
}

/// The batch's trigger events, events and deliveries as one statement (data-modifying `WITH`
/// parts): one parse, plan and execution start instead of three, which three nodes' smaller
/// batches pay three times as often (docs/scaling.md, "Eleventh"). A batch without deliveries
/// leaves their part out, as it left out their statement (planning it costs even with no rows).
/// The statement and `COMMIT` are sent together (one round trip: see [`Tx::execute_and_commit`]).
async fn insert_and_commit(
    tx: Tx<'_>,
    written: &[(&AccountId, &TriggerEvent)],
    events: &[(&AccountId, &NewEvent)],
    deliveries: &[NewDelivery<'_>],
    now: Timestamp,
    lease: Option<std::time::Duration>,
) -> StoreResult<()> {
    // Each part's placeholders follow those of the parts before it.
    const EVENTS_FROM: usize = rewards::TRIGGER_EVENT_PARAMS;
    const DELIVERIES_FROM: usize = EVENTS_FROM + outbox::EVENT_PARAMS;
    static WITH_DELIVERIES: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH trigger_events_written AS ({}), events_written AS ({}) {}",
            rewards::INSERT_TRIGGER_EVENTS,
            shift_placeholders(outbox::INSERT_EVENTS, EVENTS_FROM),
            shift_placeholders(outbox::INSERT_DELIVERIES, DELIVERIES_FROM),
        )
    });
    static WITHOUT_DELIVERIES: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH trigger_events_written AS ({}) {}",
            rewards::INSERT_TRIGGER_EVENTS,
            shift_placeholders(outbox::INSERT_EVENTS, EVENTS_FROM),
        )
    });
    let trigger_events = rewards::TriggerEventColumns::of(written);
    let events = outbox::EventColumns::of(events);
    let mut params: Vec<&dyn Param> = trigger_events
        .params()
        .into_iter()
        .chain(events.params())
        .collect();
    let deliveries = outbox::DeliveryColumns::of(deliveries, now, lease);
    let statement = if deliveries.is_empty() {
        &*WITHOUT_DELIVERIES
    } else {
        params.extend(deliveries.params());
        &*WITH_DELIVERIES
    };
    tx.execute_and_commit(&[(statement.as_str(), &params)])
        .await
        .map_err(from_pg)?;
    Ok(())
}

/// Claims the `Idempotency-Key` of every job that has one and names a known trigger, for its
/// new trigger event, as `rewards::record_trigger_event` does one at a time (a key past its
/// window is taken over). Returns, per job, whether it goes on in this batch: jobs without a key
/// (answered with their error, if they have one: an unknown trigger, too many points), or whose
/// key this batch now holds. A job with a key and an error is recorded alone, as a key already
/// taken is: a replay of its key answers the first response, whatever the trigger is now.
async fn claim_keys(
    client: &impl Db,
    jobs: &[&Job],
    recorded: &[StoreResult<TriggerEvent>],
    now: Timestamp,
) -> StoreResult<Vec<bool>> {
    let mut wanted: HashMap<(&str, &str), usize> = HashMap::new();
    for (index, (job, recorded)) in jobs.iter().zip(recorded).enumerate() {
        if let (Some((key, _)), Ok(_)) = (&job.request.idempotency, recorded) {
            // A second request with the same key waits for the first one's outcome.
            wanted
                .entry((job.account.as_str(), key.as_str()))
                .or_insert(index);
        }
    }
    let mut goes_on: Vec<bool> = jobs
        .iter()
        .map(|job| job.request.idempotency.is_none())
        .collect();
    if wanted.is_empty() {
        return Ok(goes_on);
    }
    // In key order, as users' rows are taken: two batches claiming the same keys never deadlock.
    let mut claims: Vec<((&str, &str), usize)> = wanted.into_iter().collect();
    claims.sort_unstable();
    let claims: Vec<usize> = claims.into_iter().map(|(_, index)| index).collect();
    let mut accounts = Vec::with_capacity(claims.len());
    let mut keys = Vec::with_capacity(claims.len());
    let mut fingerprints = Vec::with_capacity(claims.len());
    let mut ids = Vec::with_capacity(claims.len());
    for &index in &claims {
        let (Some((key, fingerprint)), Ok(event)) =
            (&jobs[index].request.idempotency, &recorded[index])
        else {
            continue;
        };
        accounts.push(jobs[index].account.as_str());
        keys.push(key.as_str());
        fingerprints.push(fingerprint.as_str());
        ids.push(event.id.as_str());
    }
    let expired_at_or_before = idempotency::forgotten_at_or_before(now).as_millis();
    let taken = client
        .query(
            "INSERT INTO idempotency_keys (account_id, key, request_fingerprint, trigger_event_id,
             created_at)
             SELECT account_id, key, fingerprint, trigger_event_id, $5
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
               AS claim(account_id, key, fingerprint, trigger_event_id)
             ON CONFLICT (account_id, key) DO UPDATE SET
               request_fingerprint = EXCLUDED.request_fingerprint,
               trigger_event_id = EXCLUDED.trigger_event_id, created_at = EXCLUDED.created_at
             WHERE idempotency_keys.created_at <= $6
             RETURNING account_id, key",
            &[
                &accounts,
                &keys,
                &fingerprints,
                &ids,
                &now.as_millis(),
                &expired_at_or_before,
            ],
        )
        .await
        .map_err(from_pg)?;
    let mut held: HashSet<(String, String)> = HashSet::with_capacity(taken.len());
    for row in &taken {
        held.insert((rows::get(row, 0)?, rows::get(row, 1)?));
    }
    for index in claims {
        if let Some((key, _)) = &jobs[index].request.idempotency {
            let name = (jobs[index].account.to_string(), key.to_string());
            goes_on[index] = held.contains(&name);
        }
    }
    Ok(goes_on)
}

/// Each named trigger's credit rule, keyed by (account, trigger); unknown triggers are absent.
async fn load_rules(
    client: &impl Db,
    jobs: &[&Job],
) -> StoreResult<HashMap<(String, String), Option<CreditRule>>> {
    let accounts: Vec<&str> = jobs.iter().map(|job| job.account.as_str()).collect();
    let triggers: Vec<&str> = jobs
        .iter()
        .map(|job| job.request.trigger.as_str())
        .collect();
    let found = client
        .query_hot(
            "SELECT DISTINCT t.account_id, t.rule_kind, t.rule_amount, t.id FROM triggers t
             JOIN unnest($1::text[], $2::text[]) AS named(account_id, id)
               ON t.account_id = named.account_id COLLATE \"C\"
              AND t.id = named.id COLLATE \"C\"",
            &[&accounts, &triggers],
        )
        .await
        .map_err(from_pg)?;
    found
        .iter()
        .map(|row| {
            let account: String = rows::get(row, 0)?;
            let trigger: String = rows::get(row, 3)?;
            Ok(((account, trigger), rewards::rule_from_row(row, 1, 2)?))
        })
        .collect()
}

/// An enabled webhook that may receive this batch's events.
struct Subscriber {
    id: WebhookId,
    subscription: Subscription,
    target: Option<DeliveryTarget>,
    ordering: Ordering,
}

/// The enabled webhooks of the batch's accounts subscribed to either event a trigger event can
/// emit, kept from deletion until the transaction ends (as `webhooks::subscribed` does).
async fn load_subscribers(
    client: &impl Db,
    jobs: &[&Job],
    cipher: Option<&SecretCipher>,
) -> StoreResult<HashMap<String, Vec<Subscriber>>> {
    let mut accounts: Vec<&str> = jobs.iter().map(|job| job.account.as_str()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    let types: Vec<&str> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
    // A batch of one account names it as a value: the server then keeps one plan for the
    // statement. With an array, the plan made for each call's own array always looks cheaper
    // than the kept one, so the statement was planned again on every call.
    static OF_ONE_ACCOUNT: LazyLock<String> = LazyLock::new(|| subscribers_of("account_id = $1"));
    static OF_ACCOUNTS: LazyLock<String> =
        LazyLock::new(|| subscribers_of("account_id = ANY($1::text[])"));
    let found = match accounts.as_slice() {
        [account] => client.query_hot(&OF_ONE_ACCOUNT, &[account, &types]).await,
        _ => client.query_hot(&OF_ACCOUNTS, &[&accounts, &types]).await,
    }
    .map_err(from_pg)?;
    let mut by_account: HashMap<String, Vec<Subscriber>> = HashMap::new();
    for row in &found {
        let account: String = rows::get(row, 0)?;
        let id: &str = rows::get(row, 1)?;
        let ordering = webhooks::ordering_of(row, 9)?;
        // Every event of a trigger event is about its user: a `per_user` webhook orders them all,
        // so none is handed off.
        let cipher = webhooks::handing_off(row, 8, ordering.is_per_user(), cipher)?;
        by_account.entry(account).or_default().push(Subscriber {
            id: WebhookId::from_trusted(id.to_owned()),
            subscription: Subscription {
                events: rows::event_types(row, 2)?,
                filter: rows::filter(row, 7)?,
            },
            target: webhooks::target_from_row(row, 3, cipher, id)?,
            ordering,
        });
    }
    Ok(by_account)
}

/// The read of the enabled webhooks subscribed to the event types `$2`, of the accounts
/// `accounts` names (by `$1`), kept from deletion until the transaction ends.
fn subscribers_of(accounts: &str) -> String {
    format!(
        "SELECT account_id, id, events, url, secret, previous_secrets, headers, filter,
                rate_limit IS NOT NULL, ordering
         FROM webhooks
         WHERE {accounts} AND enabled
           AND (events::jsonb ?| $2::text[] OR events::jsonb ? '*')
         FOR KEY SHARE"
    )
}

/// Adds to each user's counters what the batch's trigger events add (all of them, summed per
/// user, one row each, in key order so two batches lock users in the same order). Returns each
/// trigger event's counters right after it (balance, `sequence`, event position), in order. A
/// balance past `MAX_BALANCE` (the table's check) or a sum past `i64::MAX` fails the batch; its
/// jobs then find out one by one.
async fn add_to_users(
    client: &impl Db,
    written: &[(&AccountId, &TriggerEvent)],
    now: Timestamp,
) -> StoreResult<Vec<UserCounters>> {
    let mut sums: BTreeMap<(&str, &str), UserCounters> = BTreeMap::new();
    for (account, event) in written {
        let sum = sums
            .entry((account.as_str(), event.user.as_str()))
            .or_default();
        *sum = sum.plus(UserCounters::added_by_trigger_event(event))?;
    }
    let accounts: Vec<&str> = sums.keys().map(|(account, _)| *account).collect();
    let users: Vec<&str> = sums.keys().map(|(_, user)| *user).collect();
    let points: Vec<i64> = sums.values().map(|sum| sum.balance).collect();
    let changes: Vec<i64> = sums.values().map(|sum| sum.sequence).collect();
    let events: Vec<i64> = sums.values().map(|sum| sum.event_position).collect();
    let found = client
        .query_hot(
            "INSERT INTO users (account_id, id, balance, sequence, event_position, created_at)
             SELECT account_id, id, points, changes, events, $6
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
               AS added(account_id, id, points, changes, events)
             ON CONFLICT (account_id, id) DO UPDATE SET
               balance = users.balance + EXCLUDED.balance,
               sequence = users.sequence + EXCLUDED.sequence,
               event_position = users.event_position + EXCLUDED.event_position
             RETURNING account_id, id, balance, sequence, event_position",
            &[
                &accounts,
                &users,
                &points,
                &changes,
                &events,
                &now.as_millis(),
            ],
        )
        .await
        .map_err(from_balance_update)?;
    let mut finals: HashMap<(String, String), UserCounters> = HashMap::with_capacity(found.len());
    for row in &found {
        let counters = UserCounters {
            balance: rows::get(row, 2)?,
            sequence: rows::get(row, 3)?,
            event_position: rows::get(row, 4)?,
        };
        finals.insert((rows::get(row, 0)?, rows::get(row, 1)?), counters);
    }
    // Walk back from each user's final counters: those after a trigger event are the final ones
    // less what that user's later events in the batch added.
    let mut after = vec![UserCounters::default(); written.len()];
    for (index, (account, event)) in written.iter().enumerate().rev() {
        let key = (account.to_string(), event.user.to_string());
        let counters = finals
            .get_mut(&key)
            .ok_or_else(|| StoreError::Unavailable("a user's counters were not returned".into()))?;
        after[index] = *counters;
        *counters = counters.before(UserCounters::added_by_trigger_event(event));
    }
    Ok(after)
}

/// Each trigger event's events, with their account, in the order the rules give them.
fn events_of<'a>(
    written: &[(&'a AccountId, &TriggerEvent)],
    causes: &[Option<TraceParent>],
    counters: Vec<UserCounters>,
) -> Vec<(&'a AccountId, NewEvent)> {
    let mut events = Vec::with_capacity(written.len());
    for (((account, recorded), after), cause) in written.iter().zip(counters).zip(causes) {
        let cause = cause.as_ref();
        events.push((*account, rules::created_event(recorded, &after, cause)));
        if let Some(issued) = rules::points_issued_event(recorded, &after, cause) {
            events.push((*account, issued));
        }
    }
    events
}

/// One delivery per event and subscribed webhook of its account, with the webhook it goes to.
fn deliveries_of<'a>(
    events: &'a [(&'a AccountId, NewEvent)],
    subscribers: &'a HashMap<String, Vec<Subscriber>>,
) -> (Vec<NewDelivery<'a>>, Vec<&'a Subscriber>) {
    let mut deliveries = Vec::new();
    let mut webhooks = Vec::new();
    for (account, event) in events {
        let Some(subscribed) = subscribers.get(account.as_str()) else {
            continue;
        };
        let mut matching = rules::EventForMatching::new(event);
        for webhook in subscribed
            .iter()
            .filter(|webhook| rules::receives(&webhook.subscription, &mut matching))
        {
            deliveries.push(NewDelivery {
                account,
                id: DeliveryId::generate(),
                webhook: &webhook.id,
                event,
                order: rules::delivery_order(webhook.ordering, event),
                handed_off: webhook.target.is_some(),
            });
            webhooks.push(webhook);
        }
    }
    (deliveries, webhooks)
}
