//! Triggers, trigger events, users' balances and credits: the rewards domain, each change
//! emitting its events through the outbox in the same transaction.

use reward_core::idempotency;
use reward_core::ids::{AccountId, TriggerEventId};
use reward_core::names::{IdempotencyKey, Name, TriggerId, UserId};
use reward_core::time::Timestamp;
use reward_store::columns::{rule_columns, rule_from_columns};
use reward_store::paging::{fetch_limit, page_of, trigger_cursor, trigger_cursor_of};
use reward_store::records::{
    CreditsIssued, IssueCredits, Page, PageRequest, RecordTriggerEvent, Trigger, TriggerEvent,
    TriggerEventOutcome, TriggerSpec, User,
};
use reward_store::rules::{self, NewTriggerEvent};
use reward_store::user_counters::UserCounters;
use reward_store::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::errors::from_sqlite;
use crate::outbox;
use crate::rows;
use reward_store::handoff::Outbox;

const TRIGGER_COLUMNS: &str = "id, name, rule_kind, rule_amount, created_at, updated_at";

fn trigger_from_row(row: &Row) -> rusqlite::Result<Trigger> {
    let kind: Option<String> = row.get(2)?;
    Ok(Trigger {
        id: TriggerId::from_trusted(row.get(0)?),
        name: Name::from_trusted(row.get(1)?),
        credit_points: rule_from_columns(kind.as_deref(), rows::json_number(row, 3)?),
        created_at: rows::timestamp(row, 4)?,
        updated_at: rows::timestamp(row, 5)?,
    })
}

pub fn put_trigger(
    connection: &Connection,
    account: &AccountId,
    spec: &TriggerSpec,
) -> StoreResult<(Trigger, bool)> {
    let existed = find_trigger(connection, account, &spec.id)?.is_some();
    let now = Timestamp::now().as_millis();
    let (kind, amount) = rule_columns(spec.credit_points.as_ref());
    connection
        .prepare_cached(
            "INSERT INTO triggers (account_id, id, name, rule_kind, rule_amount, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (account_id, id) DO UPDATE SET name = excluded.name,
               rule_kind = excluded.rule_kind, rule_amount = excluded.rule_amount,
               updated_at = excluded.updated_at",
        )
        .and_then(|mut statement| {
            statement.execute(params![account.as_str(), spec.id.as_str(), spec.name.as_str(), kind, amount, now])
        })
        .map_err(from_sqlite)?;
    let trigger = find_trigger(connection, account, &spec.id)?.ok_or(StoreError::NotFound)?;
    Ok((trigger, !existed))
}

pub fn find_trigger(
    connection: &Connection,
    account: &AccountId,
    id: &TriggerId,
) -> StoreResult<Option<Trigger>> {
    let sql = format!("SELECT {TRIGGER_COLUMNS} FROM triggers WHERE account_id = ?1 AND id = ?2");
    connection
        .prepare_cached(&sql)
        .and_then(|mut statement| {
            statement
                .query_row(params![account.as_str(), id.as_str()], trigger_from_row)
                .optional()
        })
        .map_err(from_sqlite)
}

/// Newest first by creation time (see `reward_store::paging::trigger_cursor`).
pub fn list_triggers(
    connection: &Connection,
    account: &AccountId,
    page: &PageRequest,
) -> StoreResult<Page<Trigger>> {
    let (before_time, before_id) = trigger_cursor(page)?;
    let sql = format!(
        "SELECT {TRIGGER_COLUMNS} FROM triggers WHERE account_id = ?1
         AND (created_at < ?2 OR (created_at = ?2 AND id < ?3))
         ORDER BY created_at DESC, id DESC LIMIT ?4"
    );
    let mut statement = connection.prepare_cached(&sql).map_err(from_sqlite)?;
    let found = statement
        .query_map(
            params![
                account.as_str(),
                before_time,
                before_id,
                fetch_limit(page.limit)
            ],
            trigger_from_row,
        )
        .and_then(Iterator::collect)
        .map_err(from_sqlite)?;
    Ok(page_of(found, page.limit, trigger_cursor_of))
}

pub fn delete_trigger(
    connection: &Connection,
    account: &AccountId,
    id: &TriggerId,
) -> StoreResult<()> {
    let removed = connection
        .prepare_cached("DELETE FROM triggers WHERE account_id = ?1 AND id = ?2")
        .and_then(|mut statement| statement.execute(params![account.as_str(), id.as_str()]))
        .map_err(from_sqlite)?;
    if removed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn trigger_event_by_id(
    connection: &Connection,
    account: &AccountId,
    id: &str,
) -> StoreResult<TriggerEvent> {
    connection
        .prepare_cached(
            "SELECT id, user_id, trigger_id, value, credit_points_issued, created_at FROM trigger_events
             WHERE account_id = ?1 AND id = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![account.as_str(), id], |row| {
                    Ok(TriggerEvent {
                        id: TriggerEventId::from_trusted(row.get(0)?),
                        user: UserId::from_trusted(row.get(1)?),
                        trigger: TriggerId::from_trusted(row.get(2)?),
                        value: rows::json_number(row, 3)?,
                        credit_points_issued: row.get(4)?,
                        created_at: rows::timestamp(row, 5)?,
                    })
                })
                .optional()
        })
        .map_err(from_sqlite)?
        .ok_or(StoreError::NotFound)
}

/// What an idempotency key already answers, if anything.
fn replay(
    connection: &Connection,
    account: &AccountId,
    key: &IdempotencyKey,
    fingerprint: &str,
    now: Timestamp,
) -> StoreResult<Option<TriggerEvent>> {
    let seen: Option<(String, String, i64)> = connection
        .prepare_cached(
            "SELECT request_fingerprint, trigger_event_id, created_at FROM idempotency_keys
             WHERE account_id = ?1 AND key = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![account.as_str(), key.as_str()], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()
        })
        .map_err(from_sqlite)?;
    match seen {
        Some((_, _, created_at))
            if created_at <= idempotency::forgotten_at_or_before(now).as_millis() =>
        {
            Ok(None)
        }
        Some((seen_fingerprint, _, _)) if seen_fingerprint != fingerprint => {
            Err(StoreError::IdempotencyConflict)
        }
        Some((_, trigger_event, _)) => {
            trigger_event_by_id(connection, account, &trigger_event).map(Some)
        }
        None => Ok(None),
    }
}

/// Creates the user at balance 0 if new, then adds `added` to its counters (the balance, its
/// `sequence` and event position); returns them after. A balance never passes
/// [`reward_core::credit::MAX_BALANCE`]: the one writer reads and writes the row, so checking here
/// is enough, and the counters move with the balance, in the same transaction.
fn add_to_user(
    connection: &Connection,
    account: &AccountId,
    user: &UserId,
    added: UserCounters,
    now: Timestamp,
) -> StoreResult<UserCounters> {
    connection
        .prepare_cached(
            "INSERT INTO users (account_id, id, balance, created_at) VALUES (?1, ?2, 0, ?3)
             ON CONFLICT (account_id, id) DO NOTHING",
        )
        .and_then(|mut statement| {
            statement.execute(params![account.as_str(), user.as_str(), now.as_millis()])
        })
        .map_err(from_sqlite)?;
    let after = user_counters(connection, account, user)?.after(added)?;
    connection
        .prepare_cached(
            "UPDATE users SET balance = ?3, sequence = ?4, event_position = ?5
             WHERE account_id = ?1 AND id = ?2",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                user.as_str(),
                after.balance,
                after.sequence,
                after.event_position
            ])
        })
        .map_err(from_sqlite)?;
    Ok(after)
}

fn user_counters(
    connection: &Connection,
    account: &AccountId,
    user: &UserId,
) -> StoreResult<UserCounters> {
    connection
        .prepare_cached(
            "SELECT balance, sequence, event_position FROM users WHERE account_id = ?1 AND id = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![account.as_str(), user.as_str()], |row| {
                    Ok(UserCounters {
                        balance: row.get(0)?,
                        sequence: row.get(1)?,
                        event_position: row.get(2)?,
                    })
                })
                .optional()
        })
        .map_err(from_sqlite)?
        .ok_or(StoreError::NotFound)
}

pub fn record_trigger_event(
    connection: &Connection,
    account: &AccountId,
    request: &RecordTriggerEvent,
    outbox: &mut Outbox,
) -> StoreResult<TriggerEventOutcome> {
    let now = Timestamp::now();
    if let Some((key, fingerprint)) = &request.idempotency {
        if let Some(first) = replay(connection, account, key, fingerprint, now)? {
            return Ok(TriggerEventOutcome::Replayed(first));
        }
    }
    let trigger = find_trigger(connection, account, &request.trigger)?
        .ok_or_else(|| StoreError::UnknownTrigger(request.trigger.to_string()))?;
    let recorded = NewTriggerEvent::new(request, now).record(trigger.credit_points.as_ref())?;
    let after = add_to_user(
        connection,
        account,
        &request.user,
        UserCounters::added_by_trigger_event(&recorded),
        now,
    )?;
    connection
        .prepare_cached(
            "INSERT INTO trigger_events (account_id, id, user_id, trigger_id, value, credit_points_issued, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                recorded.id.as_str(),
                recorded.user.as_str(),
                recorded.trigger.as_str(),
                recorded.value.as_ref().map(ToString::to_string),
                recorded.credit_points_issued,
                now.as_millis(),
            ])
        })
        .map_err(from_sqlite)?;
    outbox::emit(
        connection,
        account,
        &rules::created_event(&recorded, &after, request.trace.as_ref()),
        outbox,
    )?;
    if let Some(issued) = rules::points_issued_event(&recorded, &after, request.trace.as_ref()) {
        outbox::emit(connection, account, &issued, outbox)?;
    }
    if let Some((key, fingerprint)) = &request.idempotency {
        connection
            .prepare_cached(
                "INSERT OR REPLACE INTO idempotency_keys (account_id, key, request_fingerprint, trigger_event_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    account.as_str(),
                    key.as_str(),
                    fingerprint,
                    recorded.id.as_str(),
                    now.as_millis()
                ])
            })
            .map_err(from_sqlite)?;
    }
    Ok(TriggerEventOutcome::Recorded(recorded))
}

pub fn issue_credits(
    connection: &Connection,
    account: &AccountId,
    request: &IssueCredits,
    outbox: &mut Outbox,
) -> StoreResult<CreditsIssued> {
    let now = Timestamp::now();
    let added = UserCounters::added_by_credits(request.points);
    let after = add_to_user(connection, account, &request.user, added, now)?;
    let (issued, event) = rules::credits_issued(request, &after, now);
    outbox::emit(connection, account, &event, outbox)?;
    Ok(issued)
}

pub fn get_user(connection: &Connection, account: &AccountId, id: &UserId) -> StoreResult<User> {
    connection
        .prepare_cached(
            "SELECT id, balance, created_at FROM users WHERE account_id = ?1 AND id = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![account.as_str(), id.as_str()], |row| {
                    Ok(User {
                        id: UserId::from_trusted(row.get(0)?),
                        balance: row.get(1)?,
                        created_at: rows::timestamp(row, 2)?,
                    })
                })
                .optional()
        })
        .map_err(from_sqlite)?
        .ok_or(StoreError::NotFound)
}
