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
use std::sync::Arc;

use deadpool_postgres::{GenericClient, Pool};
use reward_core::credit::CreditRule;
use reward_core::event::{EventType, NewEvent};
use reward_core::ids::{AccountId, DeliveryId, TriggerEventId, WebhookId};
use reward_core::names::WebhookUrl;
use reward_core::time::Timestamp;
use reward_store::handoff::{HandoffSlot, Outbox};
use reward_store::records::{
    RecordTriggerEvent, TriggerEvent, TriggerEventOutcome, WebhookSecrets,
};
use reward_store::secrets::SecretCipher;
use reward_store::{StoreError, StoreResult};
use tokio::task::JoinSet;

use crate::coalesce::{Call, Coalescer};
use crate::errors::{from_balance_update, from_pg, from_pool};
use crate::rewards;
use crate::rows;
use crate::signal::WorkSignal;

/// Requests in one batch at most.
const MAX_BATCH: usize = 256;
/// Batches written at once: while one waits for its commit, the next is already being written.
const CONCURRENT_BATCHES: usize = 4;

/// A trigger event to record, for an account.
pub struct Job {
    account: AccountId,
    request: RecordTriggerEvent,
}

type JobCall = Call<Job, TriggerEventOutcome>;

/// What writing a batch needs, shared with the tasks that write them.
#[derive(Clone)]
pub struct BatchContext {
    pub pool: Pool,
    pub cipher: SecretCipher,
    pub handoff: Arc<HandoffSlot>,
    pub signal: Arc<WorkSignal>,
}

impl BatchContext {
    fn outbox(&self) -> Outbox {
        self.handoff.outbox(&self.cipher)
    }

    fn after_commit(&self, outbox: Outbox) {
        if self.handoff.committed(outbox) {
            self.signal.announce(&self.pool);
        }
    }
}

/// Where trigger events wait for their batch.
pub struct TriggerEventBatcher(Coalescer<Job, TriggerEventOutcome>);

impl TriggerEventBatcher {
    pub fn start(context: BatchContext) -> Self {
        let context = Arc::new(context);
        Self(Coalescer::start(
            MAX_BATCH,
            CONCURRENT_BATCHES,
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
async fn write_batch(context: Arc<BatchContext>, calls: Vec<JobCall>) {
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

fn write_alone_in(alone: &mut JoinSet<()>, context: &Arc<BatchContext>, call: JobCall) {
    let context = Arc::clone(context);
    alone.spawn(async move {
        let outcome = write_alone(&context, &call.request.account, &call.request.request).await;
        call.answer(outcome);
    });
}

/// One trigger event in its own transaction.
async fn write_alone(
    context: &BatchContext,
    account: &AccountId,
    request: &RecordTriggerEvent,
) -> StoreResult<TriggerEventOutcome> {
    let mut outbox = context.outbox();
    let mut client = context.pool.get().await.map_err(from_pool)?;
    let tx = client.transaction().await.map_err(from_pg)?;
    let outcome = rewards::record_trigger_event(&tx, account, request, &mut outbox).await?;
    tx.commit().await.map_err(from_pg)?;
    context.after_commit(outbox);
    Ok(outcome)
}

/// The batch in one transaction. Returns each job's outcome, in order: a job naming an unknown
/// trigger gets its error and writes nothing; `None` is a job whose `Idempotency-Key` was already
/// taken (a replay, a conflict, or a second request with it in this batch), to be recorded alone
/// once this batch has committed, which settles what it answers. An `Err` means nothing was
/// written.
async fn write_together(
    context: &BatchContext,
    jobs: &[&Job],
    outbox: &mut Outbox,
) -> StoreResult<Vec<Option<StoreResult<TriggerEventOutcome>>>> {
    let now = Timestamp::now();
    let mut client = context.pool.get().await.map_err(from_pool)?;
    let tx = client.transaction().await.map_err(from_pg)?;
    let (rules, subscribers) = tokio::try_join!(
        load_rules(&tx, jobs),
        load_subscribers(&tx, jobs, outbox.cipher()),
    )?;

    let mut recorded: Vec<StoreResult<TriggerEvent>> = Vec::with_capacity(jobs.len());
    for job in jobs {
        let key = (job.account.to_string(), job.request.trigger.to_string());
        recorded.push(match rules.get(&key) {
            None => Err(StoreError::UnknownTrigger(job.request.trigger.to_string())),
            Some(rule) => Ok(TriggerEvent {
                id: TriggerEventId::generate(),
                user: job.request.user.clone(),
                trigger: job.request.trigger.clone(),
                value: job.request.value.clone(),
                credit_points_issued: rule
                    .as_ref()
                    .map_or(0, |rule| rule.points_for(job.request.value.as_ref())),
                created_at: now,
            }),
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
    let balances = add_to_balances(&tx, &written, now).await?;
    let events = events_of(&written, balances, now);
    let deliveries = deliveries_of(&events, &subscribers);
    tokio::try_join!(
        insert_trigger_events(&tx, &written),
        insert_events(&tx, &events),
        insert_deliveries(&tx, &deliveries, now, outbox.lease()),
    )?;
    tx.commit().await.map_err(from_pg)?;

    for delivery in deliveries {
        outbox.add(
            delivery.account,
            delivery.id,
            delivery.webhook.id.clone(),
            delivery.event,
            delivery.webhook.target.clone(),
        );
    }
    Ok(recorded
        .into_iter()
        .zip(claimed)
        .map(|(recorded, claimed)| claimed.then(|| recorded.map(TriggerEventOutcome::Recorded)))
        .collect())
}

/// Claims the `Idempotency-Key` of every job that has one and names a known trigger, for its
/// new trigger event, as `rewards::record_trigger_event` does one at a time (a key past its
/// window is taken over). Returns, per job, whether it goes on in this batch: jobs without a key,
/// with an unknown trigger (answered with that error), or whose key this batch now holds.
async fn claim_keys(
    client: &impl GenericClient,
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
        .zip(recorded)
        .map(|(job, recorded)| job.request.idempotency.is_none() || recorded.is_err())
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
    let statement = client
        .prepare_cached(
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
        )
        .await
        .map_err(from_pg)?;
    let expired_at_or_before = now.as_millis() - rewards::IDEMPOTENCY_WINDOW_MS;
    let taken = client
        .query(
            &statement,
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
    client: &impl GenericClient,
    jobs: &[&Job],
) -> StoreResult<HashMap<(String, String), Option<CreditRule>>> {
    let accounts: Vec<&str> = jobs.iter().map(|job| job.account.as_str()).collect();
    let triggers: Vec<&str> = jobs
        .iter()
        .map(|job| job.request.trigger.as_str())
        .collect();
    let statement = client
        .prepare_cached(
            "SELECT DISTINCT t.account_id, t.rule_kind, t.rule_amount, t.id FROM triggers t
             JOIN unnest($1::text[], $2::text[]) AS named(account_id, id)
               ON t.account_id = named.account_id COLLATE \"C\"
              AND t.id = named.id COLLATE \"C\"",
        )
        .await
        .map_err(from_pg)?;
    let found = client
        .query(&statement, &[&accounts, &triggers])
        .await
        .map_err(from_pg)?;
    found
        .iter()
        .map(|row| {
            let account: String = rows::get(row, 0)?;
            let trigger: String = rows::get(row, 3)?;
            Ok(((account, trigger), rewards::rule_from_columns(row, 1, 2)?))
        })
        .collect()
}

/// An enabled webhook that may receive this batch's events.
struct Subscriber {
    id: WebhookId,
    events: Vec<EventType>,
    target: Option<(WebhookUrl, WebhookSecrets)>,
}

/// The enabled webhooks of the batch's accounts subscribed to either event a trigger event can
/// emit, kept from deletion until the transaction ends (as `webhooks::subscribed` does).
async fn load_subscribers(
    client: &impl GenericClient,
    jobs: &[&Job],
    cipher: Option<&SecretCipher>,
) -> StoreResult<HashMap<String, Vec<Subscriber>>> {
    let mut accounts: Vec<&str> = jobs.iter().map(|job| job.account.as_str()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    let types: Vec<&str> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
    let statement = client
        .prepare_cached(
            "SELECT account_id, id, events, url, secret, previous_secret, previous_secret_expires_at
             FROM webhooks
             WHERE account_id = ANY($1::text[]) AND enabled AND events::jsonb ?| $2::text[]
             FOR KEY SHARE",
        )
        .await
        .map_err(from_pg)?;
    let found = client
        .query(&statement, &[&accounts, &types])
        .await
        .map_err(from_pg)?;
    let mut by_account: HashMap<String, Vec<Subscriber>> = HashMap::new();
    for row in &found {
        let account: String = rows::get(row, 0)?;
        let id: &str = rows::get(row, 1)?;
        let target = match cipher {
            None => None,
            Some(cipher) => Some((
                rows::webhook_url(row, 3)?,
                WebhookSecrets {
                    current: rows::secret(row, 4, cipher, id)?,
                    previous: rows::previous_secret(row, 5, 6, cipher, id)?,
                },
            )),
        };
        by_account.entry(account).or_default().push(Subscriber {
            id: WebhookId::from_trusted(id.to_owned()),
            events: rows::event_types(row, 2)?,
            target,
        });
    }
    Ok(by_account)
}

/// Adds each user's points (all of them, summed per user, one row each, in key order so two
/// batches lock users in the same order). Returns each trigger event's balance right after it, in
/// order. A sum past `i64::MAX` fails the batch; its jobs then find out one by one.
async fn add_to_balances(
    client: &impl GenericClient,
    written: &[(&AccountId, &TriggerEvent)],
    now: Timestamp,
) -> StoreResult<Vec<i64>> {
    let mut sums: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (account, event) in written {
        let sum = sums
            .entry((account.as_str(), event.user.as_str()))
            .or_insert(0);
        *sum = sum
            .checked_add(event.credit_points_issued)
            .ok_or(StoreError::BalanceOverflow)?;
    }
    let accounts: Vec<&str> = sums.keys().map(|(account, _)| *account).collect();
    let users: Vec<&str> = sums.keys().map(|(_, user)| *user).collect();
    let points: Vec<i64> = sums.values().copied().collect();
    let statement = client
        .prepare_cached(
            "INSERT INTO users (account_id, id, balance, created_at)
             SELECT account_id, id, points, $4 FROM unnest($1::text[], $2::text[], $3::bigint[])
               AS added(account_id, id, points)
             ON CONFLICT (account_id, id) DO UPDATE SET balance = users.balance + EXCLUDED.balance
             RETURNING account_id, id, balance",
        )
        .await
        .map_err(from_pg)?;
    let found = client
        .query(&statement, &[&accounts, &users, &points, &now.as_millis()])
        .await
        .map_err(from_balance_update)?;
    let mut finals: HashMap<(String, String), i64> = HashMap::with_capacity(found.len());
    for row in &found {
        finals.insert((rows::get(row, 0)?, rows::get(row, 1)?), rows::get(row, 2)?);
    }
    // Walk back from each user's final balance: the balance after a trigger event is the final
    // one less the points of that user's later events in the batch.
    let mut after = vec![0; written.len()];
    for (index, (account, event)) in written.iter().enumerate().rev() {
        let key = (account.to_string(), event.user.to_string());
        let balance = finals
            .get_mut(&key)
            .ok_or_else(|| StoreError::Unavailable("a user's balance was not returned".into()))?;
        after[index] = *balance;
        *balance -= event.credit_points_issued;
    }
    Ok(after)
}

/// An event of the batch and the account it belongs to.
struct BatchEvent<'a> {
    account: &'a AccountId,
    event: NewEvent,
}

/// Each trigger event's events, as `rewards::record_trigger_event` emits them.
fn events_of<'a>(
    written: &[(&'a AccountId, &TriggerEvent)],
    balances: Vec<i64>,
    now: Timestamp,
) -> Vec<BatchEvent<'a>> {
    let mut events = Vec::with_capacity(written.len());
    for ((account, recorded), balance) in written.iter().zip(balances) {
        events.push(BatchEvent {
            account,
            event: NewEvent::trigger_event_created(
                now,
                &recorded.id,
                &recorded.user,
                recorded.value.as_ref(),
                &recorded.trigger,
            ),
        });
        if recorded.credit_points_issued > 0 {
            events.push(BatchEvent {
                account,
                event: NewEvent::credit_points_issued(
                    now,
                    &recorded.user,
                    recorded.credit_points_issued,
                    balance,
                    Some(&recorded.id),
                    None,
                ),
            });
        }
    }
    events
}

struct BatchDelivery<'a> {
    account: &'a AccountId,
    id: DeliveryId,
    webhook: &'a Subscriber,
    event: &'a NewEvent,
}

fn deliveries_of<'a>(
    events: &'a [BatchEvent<'a>],
    subscribers: &'a HashMap<String, Vec<Subscriber>>,
) -> Vec<BatchDelivery<'a>> {
    let mut deliveries = Vec::new();
    for batch_event in events {
        let Some(webhooks) = subscribers.get(batch_event.account.as_str()) else {
            continue;
        };
        for webhook in webhooks
            .iter()
            .filter(|webhook| webhook.events.contains(&batch_event.event.event_type))
        {
            deliveries.push(BatchDelivery {
                account: batch_event.account,
                id: DeliveryId::generate(),
                webhook,
                event: &batch_event.event,
            });
        }
    }
    deliveries
}

async fn insert_trigger_events(
    client: &impl GenericClient,
    written: &[(&AccountId, &TriggerEvent)],
) -> StoreResult<()> {
    let accounts: Vec<&str> = written
        .iter()
        .map(|(account, _)| account.as_str())
        .collect();
    let ids: Vec<&str> = written.iter().map(|(_, event)| event.id.as_str()).collect();
    let users: Vec<&str> = written
        .iter()
        .map(|(_, event)| event.user.as_str())
        .collect();
    let triggers: Vec<&str> = written
        .iter()
        .map(|(_, event)| event.trigger.as_str())
        .collect();
    let values: Vec<Option<String>> = written
        .iter()
        .map(|(_, event)| event.value.as_ref().map(ToString::to_string))
        .collect();
    let points: Vec<i64> = written
        .iter()
        .map(|(_, event)| event.credit_points_issued)
        .collect();
    let created: Vec<i64> = written
        .iter()
        .map(|(_, event)| event.created_at.as_millis())
        .collect();
    let statement = client
        .prepare_cached(
            "INSERT INTO trigger_events (account_id, id, user_id, trigger_id, value,
             credit_points_issued, created_at)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::bigint[], $7::bigint[])",
        )
        .await
        .map_err(from_pg)?;
    client
        .execute(
            &statement,
            &[
                &accounts, &ids, &users, &triggers, &values, &points, &created,
            ],
        )
        .await
        .map_err(from_pg)?;
    Ok(())
}

async fn insert_events(client: &impl GenericClient, events: &[BatchEvent<'_>]) -> StoreResult<()> {
    let accounts: Vec<&str> = events.iter().map(|e| e.account.as_str()).collect();
    let ids: Vec<&str> = events.iter().map(|e| e.event.id.as_str()).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event.event_type.as_str()).collect();
    let times: Vec<i64> = events.iter().map(|e| e.event.time.as_millis()).collect();
    let payloads: Vec<&str> = events.iter().map(|e| e.event.payload.as_str()).collect();
    let statement = client
        .prepare_cached(
            "INSERT INTO events (account_id, id, event_type, created_at, payload)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[])",
        )
        .await
        .map_err(from_pg)?;
    client
        .execute(&statement, &[&accounts, &ids, &types, &times, &payloads])
        .await
        .map_err(from_pg)?;
    Ok(())
}

/// The pending deliveries, due now; when `lease` is given (handed off), leased to this node for
/// that long on the database's clock, as `outbox::queue` writes them.
async fn insert_deliveries(
    client: &impl GenericClient,
    deliveries: &[BatchDelivery<'_>],
    now: Timestamp,
    lease: Option<std::time::Duration>,
) -> StoreResult<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let accounts: Vec<&str> = deliveries.iter().map(|d| d.account.as_str()).collect();
    let ids: Vec<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
    let webhooks: Vec<&str> = deliveries.iter().map(|d| d.webhook.id.as_str()).collect();
    let events: Vec<&str> = deliveries.iter().map(|d| d.event.id.as_str()).collect();
    let types: Vec<&str> = deliveries
        .iter()
        .map(|d| d.event.event_type.as_str())
        .collect();
    let lease = lease.map(|lease| i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
    let statement = client
        .prepare_cached(
            "INSERT INTO deliveries (account_id, id, webhook_id, event_id, event_type, status,
             next_attempt_at, lease_expires_at, created_at, updated_at)
             SELECT new.account_id, new.id, new.webhook_id, new.event_id, new.event_type,
                    'pending', $6,
                    (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $7::bigint, $6, $6
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
               AS new(account_id, id, webhook_id, event_id, event_type)",
        )
        .await
        .map_err(from_pg)?;
    client
        .execute(
            &statement,
            &[
                &accounts,
                &ids,
                &webhooks,
                &events,
                &types,
                &now.as_millis(),
                &lease,
            ],
        )
        .await
        .map_err(from_pg)?;
    Ok(())
}
