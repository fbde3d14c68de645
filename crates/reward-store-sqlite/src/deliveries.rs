//! Reading deliveries and their attempts, and the account's manual controls (retry, recover).

use reward_core::ids::{AccountId, AttemptId, DeliveryId, EventId, WebhookId};
use reward_core::time::Timestamp;
use reward_store::paging::page_of;
use reward_store::records::{
    Attempt, Delivery, DeliveryQuery, DeliveryStatus, DeliveryWithAttempts, Page, PageRequest,
};
use reward_store::rules;
use reward_store::search::DeliveryLayout;
use reward_store::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::errors::from_sqlite;
use crate::rows;

const COLUMNS: &str =
    "id, event_id, webhook_id, event_type, status, attempt_count, next_attempt_at, \
                       last_status_code, created_at, updated_at";

fn from_row(row: &Row) -> rusqlite::Result<Delivery> {
    let status = rows::delivery_status(row, 4)?;
    Ok(Delivery {
        id: DeliveryId::from_trusted(row.get(0)?),
        event_id: EventId::from_trusted(row.get(1)?),
        webhook_id: WebhookId::from_trusted(row.get(2)?),
        event_type: rows::event_type(row, 3)?,
        status,
        attempt_count: row.get(5)?,
        next_attempt_at: rules::shown_next_attempt(status, rows::optional_timestamp(row, 6)?),
        last_status_code: rows::status_code(row, 7)?,
        created_at: rows::timestamp(row, 8)?,
        updated_at: rows::timestamp(row, 9)?,
    })
}

/// One webhook's deliveries; `NotFound` when the account has no such webhook.
pub fn list(
    connection: &Connection,
    account: &AccountId,
    webhook: &WebhookId,
    status: Option<DeliveryStatus>,
    page: &PageRequest,
) -> StoreResult<Page<Delivery>> {
    crate::webhooks::ensure_exists(connection, account, webhook)?;
    let query = DeliveryQuery {
        webhook: Some(webhook.clone()),
        status,
        ..DeliveryQuery::default()
    };
    search(connection, account, &query, page)
}

/// The account's deliveries that `query` keeps, newest first.
pub fn search(
    connection: &Connection,
    account: &AccountId,
    query: &DeliveryQuery,
    page: &PageRequest,
) -> StoreResult<Page<Delivery>> {
    let statement =
        reward_store::search::deliveries(DeliveryLayout::OneTable, account.as_str(), query, page)?;
    let found = crate::search::rows(connection, COLUMNS, &statement, from_row)?;
    Ok(page_of(found, page.limit, |delivery: &Delivery| {
        delivery.id.to_string()
    }))
}

pub fn get(connection: &Connection, account: &AccountId, id: &DeliveryId) -> StoreResult<Delivery> {
    let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE account_id = ?1 AND id = ?2");
    connection
        .prepare_cached(&sql)
        .and_then(|mut statement| {
            statement
                .query_row(params![account.as_str(), id.as_str()], from_row)
                .optional()
        })
        .map_err(from_sqlite)?
        .ok_or(StoreError::NotFound)
}

pub fn get_with_attempts(
    connection: &Connection,
    account: &AccountId,
    id: &DeliveryId,
) -> StoreResult<DeliveryWithAttempts> {
    let delivery = get(connection, account, id)?;
    let mut statement = connection
        .prepare_cached(
            "SELECT id, number, started_at, duration_ms, status_code, response_body, error
             FROM attempts WHERE account_id = ?1 AND delivery_id = ?2 ORDER BY number, id",
        )
        .map_err(from_sqlite)?;
    let attempts = statement
        .query_map(params![account.as_str(), id.as_str()], |row| {
            Ok(Attempt {
                id: AttemptId::from_trusted(row.get(0)?),
                number: row.get(1)?,
                started_at: rows::timestamp(row, 2)?,
                duration_ms: row.get::<_, i64>(3)?.max(0) as u64,
                status_code: rows::status_code(row, 4)?,
                response_body: row.get(5)?,
                error: row.get(6)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(from_sqlite)?;
    Ok(DeliveryWithAttempts { delivery, attempts })
}

/// Marks the delivery for one attempt now; its status and schedule are left as they are. It is
/// explicit, so it goes out of order: the delivery waits for no earlier one of its user.
pub fn request_retry(
    connection: &Connection,
    account: &AccountId,
    id: &DeliveryId,
) -> StoreResult<Delivery> {
    let now = Timestamp::now().as_millis();
    // Out of order now: scheduled if it waited its turn, and its user's next delivery no longer
    // waits for it.
    let webhook: Option<String> = connection
        .prepare_cached(
            "UPDATE deliveries SET manual_attempt_at = ?3, updated_at = ?3, order_user = NULL,
             order_position = NULL, next_attempt_at = COALESCE(next_attempt_at, ?3)
             WHERE account_id = ?1 AND id = ?2 RETURNING webhook_id",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![account.as_str(), id.as_str(), now], |row| {
                    row.get(0)
                })
                .optional()
        })
        .map_err(from_sqlite)?;
    let Some(webhook) = webhook else {
        return Err(StoreError::NotFound);
    };
    let webhook = WebhookId::from_trusted(webhook);
    crate::ordering::schedule_waiting(connection, Some((account, &webhook)), u32::MAX)?;
    get(connection, account, id)
}

/// Deliveries put back in the queue per transaction by a recovery.
pub const RECOVER_CHUNK: u64 = 2_000;

/// Puts up to [`RECOVER_CHUNK`] failed deliveries of the webhook created since `since` back in
/// the queue, due now, with a fresh retry schedule; returns how many. The caller repeats until
/// fewer come back: one transaction for all of a webhook's failures would hold every page it
/// touches in memory. Only deliveries last changed by `started` (when the recovery began) are
/// taken, so one that fails again meanwhile is not recovered twice by the same call. A recovery is
/// explicit: its deliveries go out of order.
pub fn recover_chunk(
    connection: &Connection,
    account: &AccountId,
    webhook: &WebhookId,
    since: Timestamp,
    started: Timestamp,
) -> StoreResult<u64> {
    crate::webhooks::ensure_exists(connection, account, webhook)?;
    let now = Timestamp::now().as_millis();
    let changed = connection
        .prepare_cached(
            "UPDATE deliveries SET status = 'pending', schedule_attempts = 0, next_attempt_at = ?4,
             updated_at = ?4, order_user = NULL, order_position = NULL WHERE rowid IN (
               SELECT rowid FROM deliveries WHERE account_id = ?1 AND webhook_id = ?2
               AND status = 'failed' AND created_at >= ?3 AND updated_at <= ?6 LIMIT ?5)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                webhook.as_str(),
                since.as_millis(),
                now,
                RECOVER_CHUNK as i64,
                started.as_millis()
            ])
        })
        .map_err(from_sqlite)?;
    Ok(changed as u64)
}

/// Deletes deliveries (by id, in one account) with their attempts.
pub fn delete_with_attempts(
    connection: &Connection,
    account: &str,
    deliveries: &[String],
) -> StoreResult<()> {
    let mut attempts = connection
        .prepare_cached("DELETE FROM attempts WHERE account_id = ?1 AND delivery_id = ?2")
        .map_err(from_sqlite)?;
    let mut delivery = connection
        .prepare_cached("DELETE FROM deliveries WHERE account_id = ?1 AND id = ?2")
        .map_err(from_sqlite)?;
    for id in deliveries {
        attempts
            .execute(params![account, id])
            .map_err(from_sqlite)?;
        delivery
            .execute(params![account, id])
            .map_err(from_sqlite)?;
    }
    Ok(())
}
