//! The delivery queue shared by every node: claiming due deliveries under a lease, recording
//! attempts, and when to look again.
//!
//! A claim is one transaction. It picks candidates in due order with `FOR UPDATE SKIP LOCKED`:
//! rows another node is claiming at this instant are skipped rather than waited for, and rows it
//! has claimed carry a live lease and no longer qualify. Candidates come from three sources, each
//! through an index that holds little besides them: manual retries, deliveries whose lease ran
//! out, and due deliveries no node holds (`deliveries_due_unleased`), so a claim that finds
//! nothing costs next to nothing, however many deliveries the nodes are attempting. Then it counts
//! how many attempts every node has in flight to the candidates' webhooks (live leases) and
//! refuses those past the in-flight limit; the next pass leaves such webhooks out in the query
//! itself, as it does from the start those this node alone fills, so a slow endpoint's backlog
//! is locked by one pass at most. Chosen rows get `lease_expires_at`; until then no node attempts
//! them, and when a node dies its leases simply run out and any node takes them over.
//!
//! A claim says what it passed over: due deliveries it refused because their webhook filled up
//! during the claim, or busy webhooks it left out of its search unseen. It does not look whether
//! those webhooks have due deliveries waiting: that is one more statement per claim, scanning their
//! unfinished deliveries, most of them leased in the steady state. The worker decides from whether
//! work was announced (see `reward_server::worker`).
//!
//! Rate-limited webhooks (`rate_slots`): a claim gives each chosen delivery of one a start slot
//! from the webhook's next free start, held on its row and shared by every node; deliveries past
//! the slot horizon are not leased and stay pending. Webhooks whose next free start is more than
//! [`REFILL_AHEAD_MICROS`] ahead are left out in the candidate queries (as busy ones are), so a
//! limited webhook's backlog never fills a claim; [`next_due_at`] wakes the worker when their
//! slots need refilling. A claim with no limited webhook among its candidates runs no statement
//! more.
//!
//! Ordered webhooks (`ordering: per_user`): a delivery with an `order_user` is a candidate only
//! while no earlier one of its webhook and user is pending, so no two nodes ever hold one user's
//! deliveries at once: the earliest is the only candidate, `SKIP LOCKED` and its lease keep it to
//! one node, and a dead node's lease holds the user's line only until it runs out. A claim that
//! reads the user's earlier delivery as pending while it is being recorded simply passes the
//! next one over. Only the user's earliest pending delivery is scheduled: the later ones wait with
//! no `next_attempt_at` (claims never walk them), and the transaction that records an ordered
//! delivery's end schedules the next one and leases it for the worker that recorded it
//! ([`advance_turns`]), so a user's deliveries follow each other without a claim between them.
//!
//! Leases are stamped and compared on the database's clock, so nodes whose clocks disagree still
//! agree on when a lease ends. Due times (`next_attempt_at`) are written by the nodes' clocks, as in
//! the SQLite store, and compared with the claiming node's clock.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reward_core::endpoint::rate_limit::REFILL_AHEAD_MICROS;
use reward_core::event::{DisabledReason, NewEvent};
use reward_core::ids::{AccountId, DeliveryId, EventId, WebhookId};
use reward_core::time::Timestamp;
use reward_store::handoff::Outbox;
use reward_store::records::{
    AttemptRecord, Claim, ClaimRequest, ClaimedDelivery, DeliveryStatus, PassedOver, QueueStats,
    StartSlot, WebhookSecrets,
};
use reward_store::rules;
use reward_store::secrets::SecretCipher;
use reward_store::StoreResult;
use tokio_postgres::Row;

use crate::errors::from_pg;
use crate::rate_slots::{RateSlot, RateSlots};
use crate::statements::{Db, Param, Tx};
use crate::{outbox, rollups, rows};

/// Candidate queries per source and claim at most: each pass after the first only happens because
/// the one before filled a webhook up, so this bounds a claim's cost, not its fairness.
const MAX_PASSES: usize = 8;

/// The database's clock, in microseconds: the clock leases (in milliseconds) and rate-limit start
/// slots live on.
const DATABASE_NOW: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

/// Attempts in flight to the given webhooks (`$2`) on every node: deliveries whose lease has not
/// run out. Counted only for the webhooks a claim found candidates of: most claims find none,
/// and counting every lease on every claim walked every delivery being attempted.
const LIVE_LEASES: &str = "SELECT webhook_id, count(*)::integer FROM deliveries
    WHERE lease_expires_at > $1 AND webhook_id = ANY($2::text[]) GROUP BY webhook_id";

/// Deliveries a manual retry asked for; the webhook may be disabled (it was asked for). Rate-limited
/// webhooks whose slots reach past `$4` (microseconds) are left out.
const MANUAL_CANDIDATES: &str = "SELECT d.account_id, d.id, d.webhook_id, w.rate_limit IS NOT NULL
    FROM deliveries d
    JOIN webhooks w ON w.account_id = d.account_id AND w.id = d.webhook_id
    WHERE d.manual_attempt_at IS NOT NULL
      AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= $1)
      AND d.webhook_id <> ALL($2::text[])
      AND (w.rate_limit IS NULL OR w.rate_next_at IS NULL OR w.rate_next_at < $4)
    ORDER BY d.manual_attempt_at LIMIT $3
    FOR UPDATE OF d SKIP LOCKED";

/// A due-delivery candidate query: its rows (`FROM ... WHERE` its own conditions), then what
/// every due candidate must pass: not asked for by a manual retry, an enabled webhook not left
/// out (`$3`), not rate-limited past the refill horizon (`$5`), and for an ordered delivery, no
/// earlier one of its user pending; at most `$4`.
macro_rules! due_candidates {
    ($rows:expr, $order:literal) => {
        concat!(
            "SELECT d.account_id, d.id, d.webhook_id, w.rate_limit IS NOT NULL
    FROM ",
            $rows,
            "
      AND d.manual_attempt_at IS NULL AND w.enabled
      AND d.webhook_id <> ALL($3::text[])
      AND (w.rate_limit IS NULL OR w.rate_next_at IS NULL OR w.rate_next_at < $5)
      AND (d.order_user IS NULL OR NOT EXISTS (
            SELECT 1 FROM deliveries p
            WHERE p.account_id = d.account_id AND p.webhook_id = d.webhook_id
              AND p.order_user = d.order_user AND p.order_user IS NOT NULL
              AND p.status = 'pending' AND p.order_position < d.order_position))
    ORDER BY ",
            $order,
            " LIMIT $4
    FOR UPDATE OF d SKIP LOCKED"
        )
    };
}

/// Pending deliveries whose time has come and that no node holds, in due order, through
/// `deliveries_due_unleased`, which holds only those: a claim never walks the deliveries nodes
/// are attempting (every delivery a node hands to its own worker is pending and due), which under
/// load made each claim a scan of thousands of rows that found nothing (docs/scaling.md). `$2`
/// is unused here but typed, so every due candidate query takes the same parameters.
const DUE_CANDIDATES: &str = due_candidates!(
    "deliveries d
    JOIN webhooks w ON w.account_id = d.account_id AND w.id = d.webhook_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND d.lease_expires_at IS NULL
      AND $2::bigint IS NOT NULL",
    "d.next_attempt_at"
);

/// Pending due deliveries whose lease ran out unrecorded (their node died), through
/// `deliveries_leased`: few, so earliest lease first.
const EXPIRED_CANDIDATES: &str = due_candidates!(
    "deliveries d
    JOIN webhooks w ON w.account_id = d.account_id AND w.id = d.webhook_id
    WHERE d.lease_expires_at <= $2 AND d.status = 'pending' AND d.next_attempt_at <= $1",
    "d.lease_expires_at"
);

/// Leases the chosen rows and reads what sending needs, in one statement.
const LEASE_AND_LOAD: &str = "WITH leased AS (
        UPDATE deliveries SET lease_expires_at = $3
        WHERE (account_id, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
        RETURNING account_id, id, webhook_id, event_id, status, attempt_count,
                  schedule_attempts, manual_attempt_at, order_user
    )
    SELECT d.account_id, d.id, d.webhook_id, d.event_id, d.status, d.attempt_count,
           d.schedule_attempts, d.manual_attempt_at IS NOT NULL, w.url, w.secret,
           w.previous_secrets, e.payload, w.headers, d.order_user IS NOT NULL, e.trace_parent
    FROM leased d
    JOIN webhooks w ON w.account_id = d.account_id AND w.id = d.webhook_id
    JOIN events e ON e.account_id = d.account_id AND e.id = d.event_id";

struct Candidate {
    account_id: String,
    id: String,
    webhook_id: WebhookId,
    rate_limited: bool,
    /// Its start slot, when its webhook is rate-limited.
    slot: Option<StartSlot>,
}

/// Attempts in flight per webhook, as far as this claim knows.
struct Busy {
    per_webhook: HashMap<WebhookId, u32>,
    limit: u32,
}

impl Busy {
    fn full(&self, webhook: &WebhookId) -> bool {
        self.per_webhook
            .get(webhook)
            .is_some_and(|busy| *busy >= self.limit)
    }

    fn saturated(&self) -> Vec<&str> {
        self.per_webhook
            .iter()
            .filter(|(_, busy)| **busy >= self.limit)
            .map(|(webhook, _)| webhook.as_str())
            .collect()
    }

    /// Takes a slot on the candidate's webhook if one is free.
    fn take_slot(&mut self, webhook: &WebhookId) -> bool {
        let busy = self.per_webhook.entry(webhook.clone()).or_insert(0);
        if *busy >= self.limit {
            return false;
        }
        *busy += 1;
        true
    }
}

/// Claims due deliveries; returns them with the claim's refill horizon on the database's clock
/// (see [`RefillHorizon`](reward_store::refills::RefillHorizon)).
pub async fn claim(
    client: &impl Db,
    request: &ClaimRequest,
    cipher: &SecretCipher,
) -> StoreResult<(Claim, i64)> {
    let asked_at = std::time::Instant::now();
    let database_now_micros: i64 = rows::get(
        &client.query_one(DATABASE_NOW, &[]).await.map_err(from_pg)?,
        0,
    )?;
    let answered_at = std::time::Instant::now();
    let database_now = database_now_micros / 1000;
    let refill_before = database_now_micros.saturating_add(REFILL_AHEAD_MICROS);
    let mut rates = RateSlots::new(database_now_micros, asked_at, answered_at);
    let lease_ms = request.lease_until.as_millis() - request.now.as_millis();
    let lease_until = database_now.saturating_add(lease_ms.max(0));
    let mut busy = Busy {
        per_webhook: request.in_flight.clone(),
        limit: request.per_webhook_limit,
    };
    // Webhooks whose live leases this claim has counted.
    let mut counted: HashSet<WebhookId> = HashSet::new();
    let limit = request.limit as usize;
    let mut claimed = Vec::new();
    // A candidate was refused: its webhook filled up during this claim.
    let mut refused_some = false;
    let due_before = request.now.as_millis();
    // Manual retries first (they were asked for), then run-out leases, then due deliveries.
    for (candidates, manual) in [
        (MANUAL_CANDIDATES, true),
        (EXPIRED_CANDIDATES, false),
        (DUE_CANDIDATES, false),
    ] {
        for _ in 0..MAX_PASSES {
            let room = limit.saturating_sub(claimed.len());
            if room == 0 {
                break;
            }
            let mut excluded = busy.saturated();
            excluded.extend(rates.exhausted());
            let scan = i64::try_from(room).unwrap_or(i64::MAX);
            let found = if manual {
                client
                    .query(
                        candidates,
                        &[&database_now, &excluded, &scan, &refill_before],
                    )
                    .await
            } else {
                client
                    .query(
                        candidates,
                        &[&due_before, &database_now, &excluded, &scan, &refill_before],
                    )
                    .await
            }
            .map_err(from_pg)?;
            let exhausted = found.len() < room;
            let found = found
                .iter()
                .map(candidate_from_row)
                .collect::<StoreResult<Vec<_>>>()?;
            count_live_leases(client, database_now, &found, &mut counted, &mut busy).await?;
            let limited: Vec<(&str, &str)> = found
                .iter()
                .filter(|candidate| candidate.rate_limited)
                .map(|candidate| (candidate.account_id.as_str(), candidate.webhook_id.as_str()))
                .collect();
            if !limited.is_empty() {
                rates.lock(client, &limited).await?;
            }
            let mut chosen = Vec::with_capacity(found.len());
            // Refused for a busy webhook; or for either reason (the next pass leaves both out).
            let mut refused_busy = false;
            let mut refused = false;
            for mut candidate in found {
                if busy.full(&candidate.webhook_id) {
                    refused_busy = true;
                    continue;
                }
                match rates.slot_for(
                    &candidate.account_id,
                    candidate.webhook_id.as_str(),
                    candidate.rate_limited,
                ) {
                    RateSlot::Unlimited => {}
                    RateSlot::Granted(slot) => candidate.slot = Some(slot),
                    RateSlot::Held => {
                        refused = true;
                        continue;
                    }
                }
                busy.take_slot(&candidate.webhook_id);
                chosen.push(candidate);
            }
            refused |= refused_busy;
            refused_some |= refused_busy;
            claimed.extend(lease_and_load(client, &chosen, lease_until, cipher).await?);
            // Another pass only helps when this one filled a webhook up: the next leaves it out.
            if exhausted || !refused {
                break;
            }
        }
    }
    rates.store(client).await?;
    let passed_over = if refused_some {
        PassedOver::BusyWebhooks
    } else if busy.saturated().is_empty() {
        PassedOver::Nothing
    } else {
        PassedOver::BusyWebhooksUnseen
    };
    let claim = Claim {
        deliveries: claimed,
        passed_over,
    };
    Ok((claim, refill_before))
}

/// Counts every node's live leases of the candidates' webhooks not counted yet. This node's own
/// attempts are among them too; a webhook is as busy as the larger count says (a lease is
/// released a moment before this node's attempt task ends).
async fn count_live_leases(
    client: &impl Db,
    database_now: i64,
    found: &[Candidate],
    counted: &mut HashSet<WebhookId>,
    busy: &mut Busy,
) -> StoreResult<()> {
    let mut uncounted: Vec<&str> = Vec::new();
    for candidate in found {
        if counted.insert(candidate.webhook_id.clone()) {
            uncounted.push(candidate.webhook_id.as_str());
        }
    }
    if uncounted.is_empty() {
        return Ok(());
    }
    for row in client
        .query(LIVE_LEASES, &[&database_now, &uncounted])
        .await
        .map_err(from_pg)?
    {
        let webhook = WebhookId::from_trusted(rows::get(&row, 0)?);
        let everywhere = rows::count(&row, 1)?;
        let slot = busy.per_webhook.entry(webhook).or_insert(0);
        *slot = (*slot).max(everywhere);
    }
    Ok(())
}

fn candidate_from_row(row: &Row) -> StoreResult<Candidate> {
    Ok(Candidate {
        account_id: rows::get(row, 0)?,
        id: rows::get(row, 1)?,
        webhook_id: WebhookId::from_trusted(rows::get(row, 2)?),
        rate_limited: rows::get(row, 3)?,
        slot: None,
    })
}

async fn lease_and_load(
    client: &impl Db,
    chosen: &[Candidate],
    lease_until: i64,
    cipher: &SecretCipher,
) -> StoreResult<Vec<ClaimedDelivery>> {
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let accounts: Vec<&str> = chosen.iter().map(|c| c.account_id.as_str()).collect();
    let ids: Vec<&str> = chosen.iter().map(|c| c.id.as_str()).collect();
    let found = client
        .query(LEASE_AND_LOAD, &[&accounts, &ids, &lease_until])
        .await
        .map_err(from_pg)?;
    let slots: HashMap<&str, StartSlot> = chosen
        .iter()
        .filter_map(|c| c.slot.map(|slot| (c.id.as_str(), slot)))
        .collect();
    found
        .iter()
        .map(|row| {
            let mut claimed = claimed_from_row(row, cipher)?;
            if let Some(slot) = slots.get(claimed.id.as_str()) {
                claimed.start_slot = Some(*slot);
            }
            Ok(claimed)
        })
        .collect()
}

fn claimed_from_row(row: &Row, cipher: &SecretCipher) -> StoreResult<ClaimedDelivery> {
    let webhook_id: &str = rows::get(row, 2)?;
    Ok(ClaimedDelivery {
        account_id: AccountId::from_trusted(rows::get(row, 0)?),
        id: DeliveryId::from_trusted(rows::get(row, 1)?),
        webhook_id: WebhookId::from_trusted(rows::get(row, 2)?),
        event_id: EventId::from_trusted(rows::get(row, 3)?),
        status: rows::delivery_status(row, 4)?,
        attempt_count: rows::count(row, 5)?,
        schedule_attempts: rows::count(row, 6)?,
        manual: rows::get(row, 7)?,
        url: rows::webhook_url(row, 8)?,
        secrets: WebhookSecrets {
            current: rows::secret(row, 9, cipher, webhook_id)?,
            previous: rows::previous_secrets(row, 10, cipher, webhook_id)?,
        },
        headers: rows::headers(row, 12, cipher, webhook_id)?,
        payload: rows::get(row, 11)?,
        trace: rows::trace_parent(row, 14)?,
        start_slot: None,
        ordered: rows::get(row, 13)?,
    })
}

/// Locks the users whose ordered deliveries ended (`$1`, `$2`), in key order as every writer
/// takes users' rows: a transaction recording an event about one of them holds the row until it
/// commits, so the next delivery it wrote is seen here, or it sees the ended one as ended and
/// schedules its delivery itself (`outbox::insert_deliveries`).
const LOCK_TURN_USERS: &str = "SELECT 1 FROM users
    WHERE (account_id, id) IN (
        SELECT DISTINCT e.account_id, e.order_user FROM deliveries e
        WHERE (e.account_id, e.id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
          AND e.order_user IS NOT NULL)
    ORDER BY account_id, id
    FOR NO KEY UPDATE";

/// Moves the ended ordered deliveries' users on, in one statement: for each (`$1`, `$2`), its
/// user's earliest pending delivery to the same webhook (through `deliveries_ordered`) is
/// scheduled at `$3` if it waited unscheduled and, when `$4` (milliseconds) is given, leased
/// until the database's clock plus `$4` and returned when it may go now: due by this node's clock
/// (`$3`), not leased, not asked for by a manual retry, its webhook enabled and not rate-limited.
/// The update checks the lease again on the row it locks, so a node that leased it meanwhile
/// keeps it.
const ADVANCE_TURNS: &str = "WITH clock AS (
        SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now
    ), ended AS (
        SELECT DISTINCT e.account_id, e.webhook_id, e.order_user
        FROM deliveries e
        WHERE (e.account_id, e.id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
          AND e.order_user IS NOT NULL AND e.status <> 'pending'
    ), heads AS (
        SELECT n.account_id, n.id,
               $4::bigint IS NOT NULL
               AND (n.next_attempt_at IS NULL OR n.next_attempt_at <= $3)
               AND (n.lease_expires_at IS NULL OR n.lease_expires_at <= clock.now)
               AND n.manual_attempt_at IS NULL AND w.enabled AND w.rate_limit IS NULL AS may_go
        FROM ended e
        CROSS JOIN LATERAL (
            SELECT n.account_id, n.id, n.next_attempt_at, n.lease_expires_at,
                   n.manual_attempt_at
            FROM deliveries n
            WHERE n.account_id = e.account_id AND n.webhook_id = e.webhook_id
              AND n.order_user = e.order_user AND n.order_user IS NOT NULL
              AND n.status = 'pending'
            ORDER BY n.order_position LIMIT 1
        ) n
        JOIN webhooks w ON w.account_id = e.account_id AND w.id = e.webhook_id
        CROSS JOIN clock
    ), advanced AS (
        UPDATE deliveries d
        SET next_attempt_at = COALESCE(d.next_attempt_at, $3),
            lease_expires_at = CASE WHEN h.may_go THEN clock.now + $4 ELSE d.lease_expires_at END
        FROM heads h, clock
        WHERE d.account_id = h.account_id AND d.id = h.id AND d.status = 'pending'
          AND (d.next_attempt_at IS NULL OR h.may_go)
          AND (NOT h.may_go OR d.lease_expires_at IS NULL OR d.lease_expires_at <= clock.now)
        RETURNING d.account_id, d.id, d.webhook_id, d.event_id, d.status, d.attempt_count,
                  d.schedule_attempts, d.manual_attempt_at, d.order_user, h.may_go
    )
    SELECT d.account_id, d.id, d.webhook_id, d.event_id, d.status, d.attempt_count,
           d.schedule_attempts, d.manual_attempt_at IS NOT NULL, w.url, w.secret,
           w.previous_secrets, e.payload, w.headers, d.order_user IS NOT NULL, e.trace_parent
    FROM advanced d
    JOIN webhooks w ON w.account_id = d.account_id AND w.id = d.webhook_id
    JOIN events e ON e.account_id = d.account_id AND e.id = d.event_id
    WHERE d.may_go";

/// Moves each ended ordered delivery's user on, in the transaction that recorded it (see
/// [`ADVANCE_TURNS`]), and returns the next deliveries it leased (only with `lease`).
pub async fn advance_turns(
    client: &impl Db,
    records: &[AttemptRecord],
    lease: Option<Duration>,
    cipher: &SecretCipher,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let ended: Vec<&AttemptRecord> = records.iter().filter(|r| r.ends_turn()).collect();
    if ended.is_empty() {
        return Ok(Vec::new());
    }
    let accounts: Vec<&str> = ended.iter().map(|r| r.account_id.as_str()).collect();
    let ids: Vec<&str> = ended.iter().map(|r| r.delivery_id.as_str()).collect();
    client
        .query(LOCK_TURN_USERS, &[&accounts, &ids])
        .await
        .map_err(from_pg)?;
    let now = Timestamp::now().as_millis();
    let lease_ms = lease.map(|lease| i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
    client
        .query(ADVANCE_TURNS, &[&accounts, &ids, &now, &lease_ms])
        .await
        .map_err(from_pg)?
        .iter()
        .map(|row| claimed_from_row(row, cipher))
        .collect()
}

/// Stores a worker's batch of finished attempts in one transaction and commits it: one commit,
/// so one WAL flush, for the batch instead of one each (the flush is what a commit waits on;
/// docs/scaling.md), and one statement for all of their rows instead of two round trips each.
/// Ended ordered deliveries schedule their users' next ones ([`advance_turns`]), leased for
/// `lease` when given; those are returned.
///
/// Rows are taken in one order, the webhooks to disable first and then the deliveries, each
/// sorted by key: two nodes' batches never deadlock each other, nor a webhook's deletion; then
/// the roll-ups (sorted by key too), their statement sent with the attempts'. In the usual batch
/// (no ordered delivery ended, no delivery twice) both go with `COMMIT` in one round trip
/// ([`Tx::execute_and_commit`]).
pub async fn record_attempts_and_commit(
    tx: Tx<'_>,
    shard: rollups::RollupShard,
    records: &mut [AttemptRecord],
    outbox: &mut Outbox,
    lease: Option<Duration>,
    cipher: &SecretCipher,
) -> StoreResult<Vec<ClaimedDelivery>> {
    records.sort_by(|a, b| {
        (
            a.account_id.as_str(),
            a.webhook_id.as_str(),
            a.delivery_id.as_str(),
        )
            .cmp(&(
                b.account_id.as_str(),
                b.webhook_id.as_str(),
                b.delivery_id.as_str(),
            ))
    });
    for record in records.iter() {
        disable_webhook(&tx, record, outbox).await?;
    }
    let records: &[AttemptRecord] = records;
    let mut rounds = rounds_of_distinct_deliveries(records);
    if rounds.len() > 1 || records.iter().any(AttemptRecord::ends_turn) {
        let store_rounds = async {
            for round in rounds {
                store_attempts(&tx, &round).await?;
            }
            Ok(())
        };
        tokio::try_join!(store_rounds, rollups::record(&tx, shard, records))?;
        let passed = advance_turns(&tx, records, lease, cipher).await?;
        tx.commit().await.map_err(from_pg)?;
        return Ok(passed);
    }
    let attempts = rounds.pop().map(|round| AttemptColumns::of(&round));
    let attempt_params = attempts.as_ref().map(AttemptColumns::params);
    let counted = rollups::RollupColumns::of(shard, records);
    let counted_params = counted.as_ref().map(rollups::RollupColumns::params);
    let last: Vec<(&str, &[&dyn Param])> = [
        attempt_params
            .as_deref()
            .map(|params| (STORE_ATTEMPTS, params)),
        counted_params
            .as_deref()
            .map(|params| (rollups::RECORD, params)),
    ]
    .into_iter()
    .flatten()
    .collect();
    tx.execute_and_commit(&last).await.map_err(from_pg)?;
    Ok(Vec::new())
}

/// Splits sorted records into rounds in which each delivery appears at most once (one statement
/// updates a row once): the first attempt of every delivery, then any second, and so on. A batch
/// practically never holds two attempts of one delivery (its lease is released only when the
/// first is recorded), so this is one round.
fn rounds_of_distinct_deliveries(records: &[AttemptRecord]) -> Vec<Vec<&AttemptRecord>> {
    let mut rounds: Vec<Vec<&AttemptRecord>> = Vec::new();
    let mut previous: Option<(&str, &str)> = None;
    let mut occurrence = 0;
    for record in records {
        let key = (record.account_id.as_str(), record.delivery_id.as_str());
        occurrence = if previous == Some(key) {
            occurrence + 1
        } else {
            0
        };
        previous = Some(key);
        if rounds.len() <= occurrence {
            rounds.push(Vec::new());
        }
        rounds[occurrence].push(record);
    }
    rounds
}

/// Disables the webhook when the attempt asked for it (410 Gone), and emits `webhook.disabled`
/// through `outbox`. Only an enabled webhook is disabled and announced: a second 410, here or
/// on another node, changes nothing.
async fn disable_webhook(
    client: &impl Db,
    record: &AttemptRecord,
    outbox: &mut Outbox,
) -> StoreResult<()> {
    let Some(reason) = &record.disable_webhook else {
        return Ok(());
    };
    let now = Timestamp::now();
    let statement = "UPDATE webhooks SET enabled = false, disabled_reason = $3, updated_at = $4
             WHERE account_id = $1 AND id = $2 AND enabled RETURNING name";
    let disabled = client
        .query_opt(
            statement,
            &[
                &record.account_id.as_str(),
                &record.webhook_id.as_str(),
                reason,
                &now.as_millis(),
            ],
        )
        .await
        .map_err(from_pg)?;
    if let Some(row) = disabled {
        let name: String = rows::get(&row, 0)?;
        let event =
            NewEvent::webhook_disabled(now, &record.webhook_id, &name, DisabledReason::Gone);
        outbox::emit(client, &record.account_id, &event, outbox).await?;
    }
    Ok(())
}

/// Each attempt's row and its delivery's new state, the lease released, in one statement. The
/// deliveries are locked in the order given, one primary-key lookup each (a lateral subquery: a
/// plain join lets the planner pick a sequential scan whenever the table's statistics are stale,
/// as they are while a new database fills up); an attempt whose delivery is gone (its webhook was
/// deleted while the attempt ran) is dropped with it.
const STORE_ATTEMPTS: &str = r#"WITH input AS MATERIALIZED (
    SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::text[], $6::bigint[],
                         $7::text[], $8::int[], $9::bigint[], $10::bigint[], $11::text[],
                         $12::text[])
        WITH ORDINALITY AS given(account_id, delivery_id, scheduled, status_code, status,
                                 next_attempt_at, attempt_id, number, started_at, duration_ms,
                                 response_body, error, position)
),
locked AS MATERIALIZED (
    SELECT d.account_id, d.id FROM input i
    CROSS JOIN LATERAL (
        SELECT account_id, id FROM deliveries
        WHERE account_id = i.account_id COLLATE "C" AND id = i.delivery_id COLLATE "C"
        FOR UPDATE
    ) d
    ORDER BY i.position
),
updated AS (
    UPDATE deliveries d SET attempt_count = d.attempt_count + 1,
        schedule_attempts = d.schedule_attempts + i.scheduled, last_status_code = i.status_code,
        manual_attempt_at = NULL, lease_expires_at = NULL, updated_at = $13,
        status = COALESCE(i.status, d.status),
        next_attempt_at = CASE WHEN i.status IS NULL THEN d.next_attempt_at
                               ELSE i.next_attempt_at END
    FROM input i
    JOIN locked l ON l.account_id = i.account_id COLLATE "C" AND l.id = i.delivery_id COLLATE "C"
    WHERE d.account_id = l.account_id AND d.id = l.id
    RETURNING d.account_id, d.id
)
INSERT INTO attempts (account_id, delivery_id, id, number, started_at, duration_ms, status_code,
                      response_body, error)
SELECT i.account_id, i.delivery_id, i.attempt_id, i.number, i.started_at, i.duration_ms,
       i.status_code, i.response_body, i.error
FROM input i
JOIN updated u ON u.account_id = i.account_id COLLATE "C" AND u.id = i.delivery_id COLLATE "C"
"#;

/// Stores attempts of distinct deliveries (see [`STORE_ATTEMPTS`]).
async fn store_attempts(client: &impl Db, records: &[&AttemptRecord]) -> StoreResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    let columns = AttemptColumns::of(records);
    client
        .execute(STORE_ATTEMPTS, &columns.params())
        .await
        .map_err(from_pg)?;
    Ok(())
}

/// A batch of attempts as one array per column, the shape `unnest` takes.
struct AttemptColumns<'a> {
    now: i64,
    account_ids: Vec<&'a str>,
    delivery_ids: Vec<&'a str>,
    scheduled: Vec<i32>,
    status_codes: Vec<Option<i32>>,
    statuses: Vec<Option<&'static str>>,
    next_attempt_ats: Vec<Option<i64>>,
    attempt_ids: Vec<&'a str>,
    numbers: Vec<i32>,
    started_ats: Vec<i64>,
    durations_ms: Vec<i64>,
    response_bodies: Vec<Option<String>>,
    errors: Vec<Option<String>>,
}

impl<'a> AttemptColumns<'a> {
    fn of(records: &[&'a AttemptRecord]) -> Self {
        let mut columns = Self::with_capacity(records.len());
        for record in records {
            columns.push(record);
        }
        columns
    }

    /// [`STORE_ATTEMPTS`]'s parameters.
    fn params(&self) -> Vec<&dyn Param> {
        vec![
            &self.account_ids,
            &self.delivery_ids,
            &self.scheduled,
            &self.status_codes,
            &self.statuses,
            &self.next_attempt_ats,
            &self.attempt_ids,
            &self.numbers,
            &self.started_ats,
            &self.durations_ms,
            &self.response_bodies,
            &self.errors,
            &self.now,
        ]
    }

    fn with_capacity(capacity: usize) -> Self {
        Self {
            now: Timestamp::now().as_millis(),
            account_ids: Vec::with_capacity(capacity),
            delivery_ids: Vec::with_capacity(capacity),
            scheduled: Vec::with_capacity(capacity),
            status_codes: Vec::with_capacity(capacity),
            statuses: Vec::with_capacity(capacity),
            next_attempt_ats: Vec::with_capacity(capacity),
            attempt_ids: Vec::with_capacity(capacity),
            numbers: Vec::with_capacity(capacity),
            started_ats: Vec::with_capacity(capacity),
            durations_ms: Vec::with_capacity(capacity),
            response_bodies: Vec::with_capacity(capacity),
            errors: Vec::with_capacity(capacity),
        }
    }

    fn push(&mut self, record: &'a AttemptRecord) {
        let attempt = &record.attempt;
        let (status, next_attempt_at) = rules::state_after(record.update);
        self.account_ids.push(record.account_id.as_str());
        self.delivery_ids.push(record.delivery_id.as_str());
        self.scheduled.push(i32::from(record.scheduled));
        self.status_codes.push(attempt.status_code.map(i32::from));
        self.statuses.push(status.map(DeliveryStatus::as_str));
        self.next_attempt_ats
            .push(next_attempt_at.map(Timestamp::as_millis));
        self.attempt_ids.push(attempt.id.as_str());
        self.numbers
            .push(i32::try_from(attempt.number).unwrap_or(i32::MAX));
        self.started_ats.push(attempt.started_at.as_millis());
        self.durations_ms
            .push(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX));
        self.response_bodies
            .push(rows::storable_text(attempt.response_body.as_deref()));
        self.errors
            .push(rows::storable_text(attempt.error.as_deref()));
    }
}

/// When an idle worker should look again: the earliest retry its last claim did not see due yet,
/// or the earliest lease that runs out (a dead node's claims are then taken over promptly).
///
/// Retries count from `last_claim_at` (the `now` of this node's latest claim), not from `now`: a
/// retry that fell due in the moment between that claim and this call was seen by neither, and
/// would otherwise wait for the worker's next poll, a second later. Such a retry is returned as it
/// is, due already, and the worker claims it at once. A delivery that was due at the last claim
/// but not taken (its webhook saturated or disabled) is not returned again, so nothing spins.
///
/// Also when a rate-limited webhook's slots need refilling: its next free start less than
/// [`REFILL_AHEAD_MICROS`] ahead and at or past `refill_horizon`, the horizon of this node's
/// latest claim (see [`RefillHorizon`](reward_store::refills::RefillHorizon)), counted on the
/// database's clock and returned on this node's from when the answer arrived (so never early).
pub async fn next_due_at(
    client: &impl Db,
    now: Timestamp,
    last_claim_at: Option<Timestamp>,
    refill_horizon: Option<i64>,
) -> StoreResult<Option<Timestamp>> {
    let unseen_after = last_claim_at.map_or(now, |claimed| claimed.min(now));
    let row = client
        .query_one(
            "SELECT LEAST(
               (SELECT min(next_attempt_at) FROM deliveries
                WHERE status = 'pending' AND lease_expires_at IS NULL AND next_attempt_at > $1),
               (SELECT min(lease_expires_at) FROM deliveries WHERE lease_expires_at > $2)),
               (SELECT min(rate_next_at) FROM webhooks
                WHERE rate_next_at >= COALESCE($4, clock.now + $3)) - clock.now - $3
             FROM (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS now)
               AS clock",
            &[
                &unseen_after.as_millis(),
                &now.as_millis(),
                &REFILL_AHEAD_MICROS,
                &refill_horizon,
            ],
        )
        .await
        .map_err(from_pg)?;
    let answered_at = Timestamp::now();
    let due = rows::optional_timestamp(&row, 0)?;
    let refill = rows::get::<Option<i64>>(&row, 1)?
        .map(|wait_micros| answered_at.plus_millis(millis_rounded_up(wait_micros.max(0))));
    Ok(due.into_iter().chain(refill).min())
}

/// Microseconds as whole milliseconds, rounded up (a wake-up is never early).
fn millis_rounded_up(micros: i64) -> i64 {
    micros.saturating_add(999) / 1000
}

/// Releases the leases of the given deliveries (handed to this node, then given up unattempted:
/// at most a third of their lease had passed, so no other node can have claimed them since).
pub async fn release_leases(
    client: &impl Db,
    deliveries: &[(AccountId, DeliveryId)],
) -> StoreResult<()> {
    let (accounts, ids): (Vec<&str>, Vec<&str>) = deliveries
        .iter()
        .map(|(account, delivery)| (account.as_str(), delivery.as_str()))
        .unzip();
    client
        .execute(
            "UPDATE deliveries d SET lease_expires_at = NULL
             FROM unnest($1::text[], $2::text[]) AS given(account_id, id)
             WHERE d.account_id = given.account_id AND d.id = given.id",
            &[&accounts, &ids],
        )
        .await
        .map_err(from_pg)?;
    Ok(())
}

/// How many deliveries are pending, and since when the oldest waits (for `/metrics`).
pub async fn queue_stats(client: &impl Db) -> StoreResult<QueueStats> {
    let row = client
        .query_one(
            "SELECT count(*), min(created_at) FROM deliveries WHERE status = 'pending'",
            &[],
        )
        .await
        .map_err(from_pg)?;
    Ok(QueueStats {
        pending: rows::unsigned(&row, 0)?,
        oldest_pending_created_at: rows::optional_timestamp(&row, 1)?,
    })
}
