//! The delivery queue: claiming due deliveries under a lease, and recording attempts.
//!
//! Claiming first walks candidate ids in due order through the partial indexes (manual retries,
//! then pending deliveries whose time has come), skipping webhooks already at their in-flight
//! limit, so a slow endpoint's backlog never crowds out the others, and noting whether it passed
//! any over (the worker claims again once attempts free their slots). Only then does it lease the
//! chosen rows and load what sending needs.
//!
//! Rate-limited webhooks: each chosen delivery of one takes a start slot ([`SlotGrant`]) and the
//! webhook's `rate_next_at` moves past the slots granted, in the claim's transaction (the single
//! writer serializes claims). Deliveries past the slot horizon are not leased: they stay pending.
//! A webhook whose next free start is more than [`REFILL_AHEAD_MICROS`] ahead is left out of the
//! candidate queries, so its backlog is not walked again until its slots need refilling, and
//! [`next_due_at`] wakes the worker then. Unlimited webhooks cost nothing more: no statement is
//! added unless a limited webhook's delivery was chosen.
//!
//! Ordered webhooks (`ordering: per_user`): a delivery with an `order_user` is a candidate only
//! while no earlier one of its webhook and user is pending (the `deliveries_ordered` index
//! answers that), so each user's deliveries are attempted one at a time, in order, and a retried
//! one holds the user's later ones back until it ends. Deliveries without one pay a NULL test.
//! Only the user's earliest pending delivery is scheduled: the later ones wait with no
//! `next_attempt_at`, so claims never walk them (the `deliveries_due` index leaves NULLs out of
//! its range). When one ends, the transaction that records it schedules the next one and, for
//! the worker that attempted it, leases it ([`advance_turns`]): a user's deliveries follow each
//! other without a claim between them. The `NOT EXISTS` rule above stays as the guarantee of
//! order; the waiting only keeps claims cheap.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reward_core::endpoint::rate_limit::REFILL_AHEAD_MICROS;
use reward_core::endpoint::{RateLimit, SlotGrant};
use reward_core::event::{DisabledReason, NewEvent};
use reward_core::ids::{AccountId, DeliveryId, EventId, WebhookId};
use reward_core::time::Timestamp;
use reward_store::columns;
use reward_store::handoff::Outbox;
use reward_store::records::{
    AttemptRecord, Claim, ClaimRequest, ClaimedDelivery, DeliveryStatus, PassedOver, QueueStats,
    StartSlot,
};
use reward_store::rules;
use reward_store::secrets::SecretCipher;
use reward_store::StoreResult;
use rusqlite::{params, Connection, OptionalExtension};

use crate::errors::from_sqlite;
use crate::{outbox, rows};

/// Candidate queries per source and claim at most: a pass after the first only happens because
/// rate-limited webhooks' backlogs filled the one before.
const MAX_PASSES: usize = 4;

/// Candidates examined per claim beyond the limit: bounds a claim's cost when many candidates
/// belong to saturated webhooks.
const EXTRA_CANDIDATES: u32 = 1000;

struct Candidate {
    account_id: String,
    id: String,
    webhook_id: WebhookId,
    rate_limit: Option<RateLimit>,
    rate_next_at: Option<i64>,
}

/// Now on the wall clock, in microseconds since the epoch: the unit of rate-limit start slots.
fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
        })
}

fn candidates(
    connection: &Connection,
    sql: &str,
    now: Timestamp,
    scan: u32,
    refill_before: i64,
    excluded: &str,
) -> StoreResult<Vec<Candidate>> {
    let mut statement = connection.prepare_cached(sql).map_err(from_sqlite)?;
    let found = statement
        .query_map(
            params![now.as_millis(), scan, refill_before, excluded],
            |row| {
                Ok(Candidate {
                    account_id: row.get(0)?,
                    id: row.get(1)?,
                    webhook_id: WebhookId::from_trusted(row.get(2)?),
                    rate_limit: columns::rate_limit_from_column(row.get(3)?),
                    rate_next_at: row.get(4)?,
                })
            },
        )
        .and_then(Iterator::collect)
        .map_err(from_sqlite)?;
    Ok(found)
}

/// Leaves out rate-limited webhooks whose slots reach far enough ahead (`?3`, microseconds), and
/// those whose slots this claim used up (`?4`, a JSON array of ids).
const MANUAL_CANDIDATES: &str = "SELECT d.account_id, d.id, d.webhook_id, w.rate_limit,
           w.rate_next_at
    FROM deliveries d
    JOIN webhooks w ON w.account_id = d.account_id AND w.id = d.webhook_id
    WHERE d.manual_attempt_at IS NOT NULL
      AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= ?1)
      AND (w.rate_limit IS NULL OR w.rate_next_at IS NULL OR w.rate_next_at < ?3)
      AND d.webhook_id NOT IN (SELECT value FROM json_each(?4))
    ORDER BY d.manual_attempt_at LIMIT ?2";

const DUE_CANDIDATES: &str = "SELECT d.account_id, d.id, d.webhook_id, w.rate_limit,
           w.rate_next_at
    FROM deliveries d
    JOIN webhooks w ON w.account_id = d.account_id AND w.id = d.webhook_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
      AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= ?1)
      AND d.manual_attempt_at IS NULL AND w.enabled = 1
      AND (w.rate_limit IS NULL OR w.rate_next_at IS NULL OR w.rate_next_at < ?3)
      AND d.webhook_id NOT IN (SELECT value FROM json_each(?4))
      AND (d.order_user IS NULL OR NOT EXISTS (
            SELECT 1 FROM deliveries p
            WHERE p.account_id = d.account_id AND p.webhook_id = d.webhook_id
              AND p.order_user = d.order_user AND p.order_user IS NOT NULL
              AND p.status = 'pending' AND p.order_position < d.order_position))
    ORDER BY d.next_attempt_at LIMIT ?2";

pub fn claim(
    connection: &Connection,
    request: &ClaimRequest,
    cipher: &SecretCipher,
) -> StoreResult<(Claim, i64)> {
    let scan = request.limit.saturating_add(EXTRA_CANDIDATES);
    let (now_micros, read_at) = (now_micros(), Instant::now());
    let refill_horizon = now_micros.saturating_add(REFILL_AHEAD_MICROS);
    let mut in_flight: HashMap<WebhookId, u32> = request.in_flight.clone();
    let mut grants: HashMap<(String, WebhookId), SlotGrant> = HashMap::new();
    let mut chosen = Vec::new();
    // Ids chosen by earlier passes (filled only when a pass follows another: it sees them again).
    let mut chosen_ids: HashSet<String> = HashSet::new();
    let mut passed_over = PassedOver::Nothing;
    for sql in [MANUAL_CANDIDATES, DUE_CANDIDATES] {
        // Rate-limited webhooks whose slots this claim has used up, left out of the next pass.
        let mut exhausted = String::from("[]");
        for _ in 0..MAX_PASSES {
            let found = candidates(
                connection,
                sql,
                request.now,
                scan,
                refill_horizon,
                &exhausted,
            )?;
            let scanned_all = found.len() < scan as usize;
            let mut refused_for_rate = false;
            for candidate in found {
                if chosen.len() >= request.limit as usize {
                    break;
                }
                if chosen_ids.contains(&candidate.id) {
                    continue;
                }
                let busy = in_flight.entry(candidate.webhook_id.clone()).or_insert(0);
                if *busy >= request.per_webhook_limit {
                    passed_over = PassedOver::BusyWebhooks;
                    continue;
                }
                let slot = match candidate.rate_limit {
                    None => None,
                    Some(limit) => {
                        let key = (candidate.account_id.clone(), candidate.webhook_id.clone());
                        let grant = grants.entry(key).or_insert_with(|| {
                            SlotGrant::new(limit, candidate.rate_next_at, now_micros)
                        });
                        // Past the horizon it stays pending; `next_due_at` wakes the worker.
                        let Some(slot) = grant.take() else {
                            refused_for_rate = true;
                            continue;
                        };
                        Some(StartSlot::new(
                            read_at,
                            now_micros,
                            slot,
                            grant.window_micros(),
                        ))
                    }
                };
                *busy += 1;
                chosen.push((candidate, slot));
            }
            // Another pass only helps when this one stopped short of the queue because of
            // webhooks whose slots it used up: the next leaves them out.
            if chosen.len() >= request.limit as usize || scanned_all || !refused_for_rate {
                break;
            }
            exhausted = exhausted_webhooks(&grants);
            chosen_ids.extend(chosen.iter().map(|(candidate, _)| candidate.id.clone()));
        }
    }
    store_next_free_starts(connection, &grants)?;
    let mut lease = connection
        .prepare_cached(
            "UPDATE deliveries SET lease_expires_at = ?3 WHERE account_id = ?1 AND id = ?2",
        )
        .map_err(from_sqlite)?;
    let mut claimed = Vec::with_capacity(chosen.len());
    for (candidate, slot) in chosen {
        lease
            .execute(params![
                candidate.account_id,
                candidate.id,
                request.lease_until.as_millis()
            ])
            .map_err(from_sqlite)?;
        if let Some(mut delivery) = load_claimed(connection, &candidate, cipher)? {
            delivery.start_slot = slot;
            claimed.push(delivery);
        }
    }
    let claim = Claim {
        deliveries: claimed,
        passed_over,
    };
    Ok((claim, refill_horizon))
}

/// The webhooks of `grants` with no slot left, as a JSON array of ids (for `json_each`).
fn exhausted_webhooks(grants: &HashMap<(String, WebhookId), SlotGrant>) -> String {
    let ids: Vec<&str> = grants
        .iter()
        .filter(|(_, grant)| grant.exhausted())
        .map(|((_, webhook), _)| webhook.as_str())
        .collect();
    serde_json::to_string(&ids).unwrap_or_else(|_| String::from("[]"))
}

/// Moves each rate-limited webhook's next free start past the slots this claim granted it.
fn store_next_free_starts(
    connection: &Connection,
    grants: &HashMap<(String, WebhookId), SlotGrant>,
) -> StoreResult<()> {
    for ((account, webhook), grant) in grants {
        let Some(next_free) = grant.next_free() else {
            continue;
        };
        connection
            .prepare_cached(
                "UPDATE webhooks SET rate_next_at = ?3 WHERE account_id = ?1 AND id = ?2",
            )
            .and_then(|mut statement| {
                statement.execute(params![account, webhook.as_str(), next_free])
            })
            .map_err(from_sqlite)?;
    }
    Ok(())
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
                    e.payload, w.headers, d.order_user IS NOT NULL, e.trace_parent
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
                        trace: rows::trace_parent(row, 11)?,
                        start_slot: None,
                        ordered: row.get(10)?,
                    })
                })
                .optional()
        })
        .map_err(from_sqlite)
}

/// The earliest pending delivery of an ended ordered delivery's user to the same webhook (through
/// `deliveries_ordered`), whether it waits unscheduled, and whether it may be passed the turn now:
/// not leased, not asked for by a manual retry, due (or waiting: scheduling it makes it due), its
/// webhook enabled and not rate-limited.
const NEXT_TURN: &str = "SELECT n.id, n.webhook_id, n.next_attempt_at IS NULL,
           (n.next_attempt_at IS NULL OR n.next_attempt_at <= ?3)
           AND (n.lease_expires_at IS NULL OR n.lease_expires_at <= ?3)
           AND n.manual_attempt_at IS NULL AND w.enabled = 1 AND w.rate_limit IS NULL
    FROM deliveries e
    JOIN deliveries n ON n.account_id = e.account_id AND n.webhook_id = e.webhook_id
                     AND n.order_user = e.order_user
    JOIN webhooks w ON w.account_id = n.account_id AND w.id = n.webhook_id
    WHERE e.account_id = ?1 AND e.id = ?2 AND e.order_user IS NOT NULL AND e.status <> 'pending'
      AND n.status = 'pending' AND n.order_user IS NOT NULL
    ORDER BY n.order_position LIMIT 1";

/// Moves each ended ordered delivery's user on (in the transaction that recorded it): the user's
/// next delivery, which waited unscheduled, is scheduled now; and with `lease`, it is leased for
/// that long and returned, to be attempted at once, when it may go. The single writer keeps
/// claims out meanwhile; once committed, a claim sees the next delivery leased.
pub fn advance_turns(
    connection: &Connection,
    records: &[AttemptRecord],
    lease: Option<Duration>,
    cipher: &SecretCipher,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let now = Timestamp::now().as_millis();
    let lease_until =
        lease.map(|lease| now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)));
    let mut passed = Vec::new();
    for record in records.iter().filter(|record| record.ends_turn()) {
        let account = record.account_id.as_str();
        let next: Option<(String, String, bool, bool)> = connection
            .prepare_cached(NEXT_TURN)
            .and_then(|mut statement| {
                statement
                    .query_row(params![account, record.delivery_id.as_str(), now], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                    })
                    .optional()
            })
            .map_err(from_sqlite)?;
        let Some((id, webhook_id, waiting, may_go)) = next else {
            continue;
        };
        let lease_until = lease_until.filter(|_| may_go);
        if !waiting && lease_until.is_none() {
            continue;
        }
        connection
            .prepare_cached(
                "UPDATE deliveries SET next_attempt_at = COALESCE(next_attempt_at, ?3),
                   lease_expires_at = COALESCE(?4, lease_expires_at)
                 WHERE account_id = ?1 AND id = ?2",
            )
            .and_then(|mut statement| statement.execute(params![account, id, now, lease_until]))
            .map_err(from_sqlite)?;
        if lease_until.is_none() {
            continue;
        }
        let candidate = Candidate {
            account_id: account.to_owned(),
            id,
            webhook_id: WebhookId::from_trusted(webhook_id),
            rate_limit: None,
            rate_next_at: None,
        };
        passed.extend(load_claimed(connection, &candidate, cipher)?);
    }
    Ok(passed)
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

/// When the earliest pending delivery after `now` falls due, or a rate-limited webhook's slots
/// need refilling (its next free start less than [`REFILL_AHEAD_MICROS`] ahead and at or past
/// `refill_horizon`, the horizon of this process's latest claim: see
/// [`RefillHorizon`](reward_store::refills::RefillHorizon)), if either.
pub fn next_due_at(
    connection: &Connection,
    now: Timestamp,
    refill_horizon: Option<i64>,
) -> StoreResult<Option<Timestamp>> {
    let (now_micros, asked_at) = (now_micros(), Timestamp::now());
    let refill_from = refill_horizon.unwrap_or(now_micros.saturating_add(REFILL_AHEAD_MICROS));
    connection
        .prepare_cached(
            "SELECT (SELECT MIN(next_attempt_at) FROM deliveries
                     WHERE status = 'pending' AND next_attempt_at > ?1),
                    (SELECT MIN(rate_next_at) FROM webhooks WHERE rate_next_at >= ?2)",
        )
        .and_then(|mut statement| {
            statement.query_row(params![now.as_millis(), refill_from], |row| {
                Ok((row.get::<_, Option<i64>>(0)?, row.get::<_, Option<i64>>(1)?))
            })
        })
        .map(|(retry, rate_next_at)| {
            let refill = rate_next_at.map(|next| {
                let wait_micros = next
                    .saturating_sub(now_micros.saturating_add(REFILL_AHEAD_MICROS))
                    .max(0);
                // Rounded up: a wake-up is never early.
                asked_at.plus_millis(wait_micros.saturating_add(999) / 1000)
            });
            retry
                .map(Timestamp::from_millis)
                .into_iter()
                .chain(refill)
                .min()
        })
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
