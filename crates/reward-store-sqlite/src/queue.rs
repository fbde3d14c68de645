//! The delivery queue: claiming due deliveries under a lease, and recording attempts.
//!
//! Claiming first walks candidate ids in due order through the partial indexes (manual retries,
//! then pending deliveries whose time has come), skipping webhooks already at their in-flight
//! limit, so a slow endpoint's backlog never crowds out the others, and noting whether it passed
//! any over (the worker claims again once attempts free their slots). Only then does it lease the
//! chosen rows and load what sending needs.

use std::collections::HashMap;

use reward_core::event::{DisabledReason, NewEvent};
use reward_core::ids::{AccountId, DeliveryId, EventId, WebhookId};
use reward_core::time::Timestamp;
use reward_store::handoff::Outbox;
use reward_store::records::{
    AttemptRecord, Claim, ClaimRequest, ClaimedDelivery, DeliveryStatus, PassedOver, QueueStats,
};
use reward_store::rules;
use reward_store::secrets::SecretCipher;
use reward_store::StoreResult;
use rusqlite::{params, Connection, OptionalExtension};

use crate::errors::from_sqlite;
use crate::{outbox, rows};

/// Candidates examined per claim beyond the limit: bounds a claim's cost when many candidates
/// belong to saturated webhooks.
const EXTRA_CANDIDATES: u32 = 1000;

struct Candidate {
    account_id: String,
    id: String,
    webhook_id: WebhookId,
}

fn candidates(
    connection: &Connection,
    sql: &str,
    now: Timestamp,
    scan: u32,
) -> StoreResult<Vec<Candidate>> {
    let mut statement = connection.prepare_cached(sql).map_err(from_sqlite)?;
    let found = statement
        .query_map(params![now.as_millis(), scan], |row| {
            Ok(Candidate {
                account_id: row.get(0)?,
                id: row.get(1)?,
                webhook_id: WebhookId::from_trusted(row.get(2)?),
            })
        })
        .and_then(Iterator::collect)
        .map_err(from_sqlite)?;
    Ok(found)
}

const MANUAL_CANDIDATES: &str = "SELECT account_id, id, webhook_id FROM deliveries
    WHERE manual_attempt_at IS NOT NULL AND (lease_expires_at IS NULL OR lease_expires_at <= ?1)
    ORDER BY manual_attempt_at LIMIT ?2";

const DUE_CANDIDATES: &str = "SELECT d.account_id, d.id, d.webhook_id FROM deliveries d
    JOIN webhooks w ON w.account_id = d.account_id AND w.id = d.webhook_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
      AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= ?1)
      AND d.manual_attempt_at IS NULL AND w.enabled = 1
    ORDER BY d.next_attempt_at LIMIT ?2";

pub fn claim(
    connection: &Connection,
    request: &ClaimRequest,
    cipher: &SecretCipher,
) -> StoreResult<Claim> {
    let scan = request.limit.saturating_add(EXTRA_CANDIDATES);
    let mut in_flight: HashMap<WebhookId, u32> = request.in_flight.clone();
    let mut chosen = Vec::new();
    let mut passed_over = PassedOver::Nothing;
    for sql in [MANUAL_CANDIDATES, DUE_CANDIDATES] {
        for candidate in candidates(connection, sql, request.now, scan)? {
            if chosen.len() >= request.limit as usize {
                break;
            }
            let busy = in_flight.entry(candidate.webhook_id.clone()).or_insert(0);
            if *busy >= request.per_webhook_limit {
                passed_over = PassedOver::BusyWebhooks;
                continue;
            }
            *busy += 1;
            chosen.push(candidate);
        }
    }
    let mut lease = connection
        .prepare_cached(
            "UPDATE deliveries SET lease_expires_at = ?3 WHERE account_id = ?1 AND id = ?2",
        )
        .map_err(from_sqlite)?;
    let mut claimed = Vec::with_capacity(chosen.len());
    for candidate in chosen {
        lease
            .execute(params![
                candidate.account_id,
                candidate.id,
                request.lease_until.as_millis()
            ])
            .map_err(from_sqlite)?;
        if let Some(delivery) = load_claimed(connection, &candidate, cipher)? {
            claimed.push(delivery);
        }
    }
    Ok(Claim {
        deliveries: claimed,
        passed_over,
    })
}

fn load_claimed(
    connection: &Connection,
    candidate: &Candidate,
    cipher: &SecretCipher,
) -> StoreResult<Option<ClaimedDelivery>> {
    let webhook_id = candidate.webhook_id.as_str();
    connection
        .prepare_cached(
            "SELECT d.event_id, d.status, d.attempt_count, d.schedule_attempts,
                    d.manual_attempt_at IS NOT NULL, w.url, w.secret, w.previous_secrets,
                    e.payload, w.headers
             FROM deliveries d
             JOIN webhooks w ON w.account_id = d.account_id AND w.id = d.webhook_id
             JOIN events e ON e.account_id = d.account_id AND e.id = d.event_id
             WHERE d.account_id = ?1 AND d.id = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![candidate.account_id, candidate.id], |row| {
                    Ok(ClaimedDelivery {
                        account_id: AccountId::from_trusted(candidate.account_id.clone()),
                        id: DeliveryId::from_trusted(candidate.id.clone()),
                        webhook_id: candidate.webhook_id.clone(),
                        event_id: EventId::from_trusted(row.get(0)?),
                        status: rows::delivery_status(row, 1)?,
                        attempt_count: row.get(2)?,
                        schedule_attempts: row.get(3)?,
                        manual: row.get(4)?,
                        url: rows::webhook_url(row, 5)?,
                        secrets: rows::webhook_secrets(row, 6, cipher, webhook_id)?,
                        headers: rows::headers(row, 9, cipher, webhook_id)?,
                        payload: row.get(8)?,
                    })
                })
                .optional()
        })
        .map_err(from_sqlite)
}

/// Stores the attempt and its delivery's new state, releases the lease, and disables the webhook
/// when the attempt asked for it (410 Gone), emitting `webhook.disabled` through `outbox`.
pub fn record_attempt(
    connection: &Connection,
    record: &AttemptRecord,
    outbox: &mut Outbox,
) -> StoreResult<()> {
    let account = record.account_id.as_str();
    let delivery = record.delivery_id.as_str();
    let attempt = &record.attempt;
    let now = Timestamp::now().as_millis();
    let (status, next_attempt_at) = rules::state_after(record.update);
    let updated = connection
        .prepare_cached(
            "UPDATE deliveries SET attempt_count = attempt_count + 1,
               schedule_attempts = schedule_attempts + ?3, last_status_code = ?4,
               manual_attempt_at = NULL, lease_expires_at = NULL, updated_at = ?5,
               status = COALESCE(?6, status),
               next_attempt_at = CASE WHEN ?6 IS NULL THEN next_attempt_at ELSE ?7 END
             WHERE account_id = ?1 AND id = ?2",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account,
                delivery,
                i64::from(record.scheduled),
                attempt.status_code,
                now,
                status.map(DeliveryStatus::as_str),
                next_attempt_at.map(Timestamp::as_millis),
            ])
        })
        .map_err(from_sqlite)?;
    if updated == 0 {
        // The webhook was deleted while the attempt ran: its deliveries went with it.
        return Ok(());
    }
    connection
        .prepare_cached(
            "INSERT INTO attempts (account_id, delivery_id, id, number, started_at, duration_ms,
             status_code, response_body, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account,
                delivery,
                attempt.id.as_str(),
                attempt.number,
                attempt.started_at.as_millis(),
                i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX),
                attempt.status_code,
                attempt.response_body,
                attempt.error,
            ])
        })
        .map_err(from_sqlite)?;
    if let Some(reason) = &record.disable_webhook {
        // Only an enabled webhook is disabled (and announced): a second 410 from the same batch or
        // a webhook disabled meanwhile changes nothing.
        let disabled: Option<String> = connection
            .prepare_cached(
                "UPDATE webhooks SET enabled = 0, disabled_reason = ?3, updated_at = ?4
                 WHERE account_id = ?1 AND id = ?2 AND enabled = 1 RETURNING name",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(
                        params![account, record.webhook_id.as_str(), reason, now],
                        |row| row.get(0),
                    )
                    .optional()
            })
            .map_err(from_sqlite)?;
        if let Some(name) = disabled {
            let event = NewEvent::webhook_disabled(
                Timestamp::from_millis(now),
                &record.webhook_id,
                &name,
                DisabledReason::Gone,
            );
            outbox::emit(connection, &record.account_id, &event, outbox)?;
        }
    }
    Ok(())
}

pub fn next_due_at(connection: &Connection, now: Timestamp) -> StoreResult<Option<Timestamp>> {
    connection
        .prepare_cached(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending' AND next_attempt_at > ?1",
        )
        .and_then(|mut statement| statement.query_row([now.as_millis()], |row| row.get::<_, Option<i64>>(0)))
        .map(|found| found.map(Timestamp::from_millis))
        .map_err(from_sqlite)
}

pub fn release_all_leases(connection: &Connection) -> StoreResult<u64> {
    connection
        .execute(
            "UPDATE deliveries SET lease_expires_at = NULL WHERE lease_expires_at IS NOT NULL",
            [],
        )
        .map(|changed| changed as u64)
        .map_err(from_sqlite)
}

/// Releases the leases of the given deliveries (handed off, then given up unattempted).
pub fn release_leases(
    connection: &Connection,
    deliveries: &[(AccountId, DeliveryId)],
) -> StoreResult<()> {
    let mut release = connection
        .prepare_cached(
            "UPDATE deliveries SET lease_expires_at = NULL WHERE account_id = ?1 AND id = ?2",
        )
        .map_err(from_sqlite)?;
    for (account, delivery) in deliveries {
        release
            .execute(params![account.as_str(), delivery.as_str()])
            .map_err(from_sqlite)?;
    }
    Ok(())
}

pub fn queue_stats(connection: &Connection) -> StoreResult<QueueStats> {
    connection
        .prepare_cached("SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE status = 'pending'")
        .and_then(|mut statement| {
            statement.query_row([], |row| {
                Ok(QueueStats {
                    pending: row.get::<_, i64>(0)?.max(0) as u64,
                    oldest_pending_created_at: rows::optional_timestamp(row, 1)?,
                })
            })
        })
        .map_err(from_sqlite)
}
