//! The delivery queue shared by every node: claiming due deliveries under a lease, recording
//! attempts, and when to look again.
//!
//! A claim is one transaction. It reads how many attempts every node has in flight per webhook
//! (live leases), then picks candidates in due order with `FOR UPDATE SKIP LOCKED`: rows another
//! node is claiming at this instant are skipped rather than waited for, and rows it has claimed
//! carry a live lease and no longer qualify. Webhooks at their in-flight limit are left out in the
//! query itself, so a slow endpoint's backlog is never even locked; when one claim fills a webhook
//! up, the next pass leaves it out too. Chosen rows get `lease_expires_at`; until then no node
//! attempts them, and when a node dies its leases simply run out and any node takes them over.
//!
//! Leases are stamped and compared on the database's clock, so nodes whose clocks disagree still
//! agree on when a lease ends. Due times (`next_attempt_at`) are written by the nodes' clocks, as in
//! the SQLite store, and compared with the claiming node's clock.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use reward_core::ids::{AccountId, DeliveryId, EventId, WebhookId};
use reward_core::time::Timestamp;
use reward_store::records::{
    AttemptRecord, ClaimRequest, ClaimedDelivery, DeliveryStatus, DeliveryUpdate, QueueStats,
    WebhookSecrets,
};
use reward_store::secrets::SecretCipher;
use reward_store::StoreResult;
use tokio_postgres::Row;

use crate::errors::from_pg;
use crate::rows;

/// Candidate queries per source and claim at most: each pass after the first only happens because
/// the one before filled a webhook up, so this bounds a claim's cost, not its fairness.
const MAX_PASSES: usize = 8;

/// The database's clock, in milliseconds: the clock leases live on.
const DATABASE_NOW: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// Attempts in flight per webhook on every node: deliveries whose lease has not run out.
const LIVE_LEASES: &str = "SELECT webhook_id, count(*)::integer FROM deliveries
    WHERE lease_expires_at > $1 GROUP BY webhook_id";

/// Deliveries a manual retry asked for; the webhook may be disabled (it was asked for).
const MANUAL_CANDIDATES: &str = "SELECT account_id, id, webhook_id FROM deliveries
    WHERE manual_attempt_at IS NOT NULL
      AND (lease_expires_at IS NULL OR lease_expires_at <= $1)
      AND webhook_id <> ALL($2::text[])
    ORDER BY manual_attempt_at LIMIT $3
    FOR UPDATE SKIP LOCKED";

/// Pending deliveries whose time has come, to enabled webhooks.
const DUE_CANDIDATES: &str = "SELECT d.account_id, d.id, d.webhook_id FROM deliveries d
    JOIN webhooks w ON w.account_id = d.account_id AND w.id = d.webhook_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= $1
      AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= $2)
      AND d.manual_attempt_at IS NULL AND w.enabled
      AND d.webhook_id <> ALL($3::text[])
    ORDER BY d.next_attempt_at LIMIT $4
    FOR UPDATE OF d SKIP LOCKED";

/// Leases the chosen rows and reads what sending needs, in one statement.
const LEASE_AND_LOAD: &str = "WITH leased AS (
        UPDATE deliveries SET lease_expires_at = $3
        WHERE (account_id, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
        RETURNING account_id, id, webhook_id, event_id, status, attempt_count,
                  schedule_attempts, manual_attempt_at
    )
    SELECT d.account_id, d.id, d.webhook_id, d.event_id, d.status, d.attempt_count,
           d.schedule_attempts, d.manual_attempt_at IS NOT NULL, w.url, w.secret,
           w.previous_secret, w.previous_secret_expires_at, e.payload
    FROM leased d
    JOIN webhooks w ON w.account_id = d.account_id AND w.id = d.webhook_id
    JOIN events e ON e.account_id = d.account_id AND e.id = d.event_id";

struct Candidate {
    account_id: String,
    id: String,
    webhook_id: WebhookId,
}

/// Attempts in flight per webhook, as far as this claim knows.
struct Busy {
    per_webhook: HashMap<WebhookId, u32>,
    limit: u32,
}

impl Busy {
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

pub async fn claim(
    client: &impl GenericClient,
    request: &ClaimRequest,
    cipher: &SecretCipher,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let database_now: i64 = rows::get(
        &client.query_one(DATABASE_NOW, &[]).await.map_err(from_pg)?,
        0,
    )?;
    let lease_ms = request.lease_until.as_millis() - request.now.as_millis();
    let lease_until = database_now.saturating_add(lease_ms.max(0));
    let mut busy = Busy {
        per_webhook: request.in_flight.clone(),
        limit: request.per_webhook_limit,
    };
    // This node's own attempts are among the live leases too; a webhook is as busy as the larger
    // count says (a lease is released a moment before this node's attempt task ends).
    let statement = client.prepare_cached(LIVE_LEASES).await.map_err(from_pg)?;
    for row in client
        .query(&statement, &[&database_now])
        .await
        .map_err(from_pg)?
    {
        let webhook = WebhookId::from_trusted(rows::get(&row, 0)?);
        let everywhere = rows::count(&row, 1)?;
        let slot = busy.per_webhook.entry(webhook).or_insert(0);
        *slot = (*slot).max(everywhere);
    }
    let limit = request.limit as usize;
    let mut claimed = Vec::new();
    let due_before = request.now.as_millis();
    for manual in [true, false] {
        let candidates = client
            .prepare_cached(if manual {
                MANUAL_CANDIDATES
            } else {
                DUE_CANDIDATES
            })
            .await
            .map_err(from_pg)?;
        for _ in 0..MAX_PASSES {
            let room = limit.saturating_sub(claimed.len());
            if room == 0 {
                break;
            }
            let saturated = busy.saturated();
            let scan = i64::try_from(room).unwrap_or(i64::MAX);
            let found = if manual {
                client
                    .query(&candidates, &[&database_now, &saturated, &scan])
                    .await
            } else {
                client
                    .query(
                        &candidates,
                        &[&due_before, &database_now, &saturated, &scan],
                    )
                    .await
            }
            .map_err(from_pg)?;
            let exhausted = found.len() < room;
            let mut chosen = Vec::with_capacity(found.len());
            let mut refused = false;
            for row in &found {
                let candidate = candidate_from_row(row)?;
                if busy.take_slot(&candidate.webhook_id) {
                    chosen.push(candidate);
                } else {
                    refused = true;
                }
            }
            claimed.extend(lease_and_load(client, &chosen, lease_until, cipher).await?);
            // Another pass only helps when this one filled a webhook up: the next leaves it out.
            if exhausted || !refused {
                break;
            }
        }
    }
    Ok(claimed)
}

fn candidate_from_row(row: &Row) -> StoreResult<Candidate> {
    Ok(Candidate {
        account_id: rows::get(row, 0)?,
        id: rows::get(row, 1)?,
        webhook_id: WebhookId::from_trusted(rows::get(row, 2)?),
    })
}

async fn lease_and_load(
    client: &impl GenericClient,
    chosen: &[Candidate],
    lease_until: i64,
    cipher: &SecretCipher,
) -> StoreResult<Vec<ClaimedDelivery>> {
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let accounts: Vec<&str> = chosen.iter().map(|c| c.account_id.as_str()).collect();
    let ids: Vec<&str> = chosen.iter().map(|c| c.id.as_str()).collect();
    let statement = client
        .prepare_cached(LEASE_AND_LOAD)
        .await
        .map_err(from_pg)?;
    let found = client
        .query(&statement, &[&accounts, &ids, &lease_until])
        .await
        .map_err(from_pg)?;
    found
        .iter()
        .map(|row| claimed_from_row(row, cipher))
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
            previous: rows::previous_secret(row, 10, 11, cipher, webhook_id)?,
        },
        payload: rows::get(row, 12)?,
    })
}

/// Stores the attempt and the delivery's new state, and releases the lease.
///
/// Rows are locked webhook first, then delivery, the order deleting a webhook takes them in, so
/// the two never deadlock.
pub async fn record_attempt(
    client: &impl GenericClient,
    record: &AttemptRecord,
) -> StoreResult<()> {
    disable_webhook(client, record).await?;
    store_attempt(client, record).await
}

/// Stores a worker's batch of finished attempts in one transaction: one commit, so one WAL flush,
/// for the batch instead of one each (the flush is what a commit waits on; docs/scaling.md).
///
/// Rows are taken in one order, the webhooks to disable first and then the deliveries, each
/// sorted by key: two nodes' batches never deadlock each other, nor a webhook's deletion.
pub async fn record_attempts(
    client: &impl GenericClient,
    records: &mut [AttemptRecord],
) -> StoreResult<()> {
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
        disable_webhook(client, record).await?;
    }
    for record in records.iter() {
        store_attempt(client, record).await?;
    }
    Ok(())
}

/// Disables the webhook when the attempt asked for it (410 Gone).
async fn disable_webhook(client: &impl GenericClient, record: &AttemptRecord) -> StoreResult<()> {
    let Some(reason) = &record.disable_webhook else {
        return Ok(());
    };
    let statement = client
        .prepare_cached(
            "UPDATE webhooks SET enabled = false, disabled_reason = $3, updated_at = $4
             WHERE account_id = $1 AND id = $2",
        )
        .await
        .map_err(from_pg)?;
    client
        .execute(
            &statement,
            &[
                &record.account_id.as_str(),
                &record.webhook_id.as_str(),
                reason,
                &Timestamp::now().as_millis(),
            ],
        )
        .await
        .map_err(from_pg)?;
    Ok(())
}

/// The attempt's row and the delivery's new state; the lease is released.
async fn store_attempt(client: &impl GenericClient, record: &AttemptRecord) -> StoreResult<()> {
    let account = record.account_id.as_str();
    let delivery = record.delivery_id.as_str();
    let now = Timestamp::now().as_millis();
    let attempt = &record.attempt;
    let (status, next_attempt_at): (Option<DeliveryStatus>, Option<i64>) = match record.update {
        DeliveryUpdate::Succeeded => (Some(DeliveryStatus::Succeeded), None),
        DeliveryUpdate::RetryAt(at) => (Some(DeliveryStatus::Pending), Some(at.as_millis())),
        DeliveryUpdate::Failed => (Some(DeliveryStatus::Failed), None),
        DeliveryUpdate::Unchanged => (None, None),
    };
    let status_code = attempt.status_code.map(i32::from);
    let statement = client
        .prepare_cached(
            "UPDATE deliveries SET attempt_count = attempt_count + 1,
               schedule_attempts = schedule_attempts + $3, last_status_code = $4,
               manual_attempt_at = NULL, lease_expires_at = NULL, updated_at = $5,
               status = COALESCE($6, status),
               next_attempt_at = CASE WHEN $6::text IS NULL THEN next_attempt_at ELSE $7 END
             WHERE account_id = $1 AND id = $2",
        )
        .await
        .map_err(from_pg)?;
    let updated = client
        .execute(
            &statement,
            &[
                &account,
                &delivery,
                &i32::from(record.scheduled),
                &status_code,
                &now,
                &status.map(DeliveryStatus::as_str),
                &next_attempt_at,
            ],
        )
        .await
        .map_err(from_pg)?;
    if updated == 0 {
        // The webhook was deleted while the attempt ran: its deliveries went with it.
        return Ok(());
    }
    let statement = client
        .prepare_cached(
            "INSERT INTO attempts (account_id, delivery_id, id, number, started_at, duration_ms,
             status_code, response_body, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await
        .map_err(from_pg)?;
    client
        .execute(
            &statement,
            &[
                &account,
                &delivery,
                &attempt.id.as_str(),
                &i32::try_from(attempt.number).unwrap_or(i32::MAX),
                &attempt.started_at.as_millis(),
                &i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX),
                &status_code,
                &rows::storable_text(attempt.response_body.as_deref()),
                &rows::storable_text(attempt.error.as_deref()),
            ],
        )
        .await
        .map_err(from_pg)?;
    Ok(())
}

/// When an idle worker should look again: the earliest retry its last claim did not see due yet,
/// or the earliest lease that runs out (a dead node's claims are then taken over promptly).
///
/// Retries count from `last_claim_at` (the `now` of this node's latest claim), not from `now`: a
/// retry that fell due in the moment between that claim and this call was seen by neither, and
/// would otherwise wait for the worker's next poll, a second later. Such a retry is returned as it
/// is, due already, and the worker claims it at once. A delivery that was due at the last claim
/// but not taken (its webhook saturated or disabled) is not returned again, so nothing spins.
pub async fn next_due_at(
    client: &impl GenericClient,
    now: Timestamp,
    last_claim_at: Option<Timestamp>,
) -> StoreResult<Option<Timestamp>> {
    let unseen_after = last_claim_at.map_or(now, |claimed| claimed.min(now));
    let statement = client
        .prepare_cached(
            "SELECT LEAST(
               (SELECT min(next_attempt_at) FROM deliveries
                WHERE status = 'pending' AND next_attempt_at > $1),
               (SELECT min(lease_expires_at) FROM deliveries WHERE lease_expires_at > $2))",
        )
        .await
        .map_err(from_pg)?;
    let row = client
        .query_one(&statement, &[&unseen_after.as_millis(), &now.as_millis()])
        .await
        .map_err(from_pg)?;
    rows::optional_timestamp(&row, 0)
}

/// How many deliveries are pending, and since when the oldest waits (for `/metrics`).
pub async fn queue_stats(client: &impl GenericClient) -> StoreResult<QueueStats> {
    let statement = client
        .prepare_cached("SELECT count(*), min(created_at) FROM deliveries WHERE status = 'pending'")
        .await
        .map_err(from_pg)?;
    let row = client.query_one(&statement, &[]).await.map_err(from_pg)?;
    Ok(QueueStats {
        pending: rows::unsigned(&row, 0)?,
        oldest_pending_created_at: rows::optional_timestamp(&row, 1)?,
    })
}
