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
use tokio_postgres::Row;

use crate::errors::from_pg;
use crate::rows;
use crate::statements::Db;

const COLUMNS: &str = "id, event_id, webhook_id, event_type, status, attempt_count, \
                       next_attempt_at, last_status_code, created_at, updated_at";

fn from_row(row: &Row) -> StoreResult<Delivery> {
    let status = rows::delivery_status(row, 4)?;
    Ok(Delivery {
        id: DeliveryId::from_trusted(rows::get(row, 0)?),
        event_id: EventId::from_trusted(rows::get(row, 1)?),
        webhook_id: WebhookId::from_trusted(rows::get(row, 2)?),
        event_type: rows::event_type(row, 3)?,
        status,
        attempt_count: rows::count(row, 5)?,
        next_attempt_at: rules::shown_next_attempt(status, rows::optional_timestamp(row, 6)?),
        last_status_code: rows::status_code(row, 7)?,
        created_at: rows::timestamp(row, 8)?,
        updated_at: rows::timestamp(row, 9)?,
    })
}

/// One webhook's deliveries; `NotFound` when the account has no such webhook.
pub async fn list(
    client: &impl Db,
    account: &AccountId,
    webhook: &WebhookId,
    status: Option<DeliveryStatus>,
    page: &PageRequest,
) -> StoreResult<Page<Delivery>> {
    crate::webhooks::ensure_exists(client, account, webhook).await?;
    let query = DeliveryQuery {
        webhook: Some(webhook.clone()),
        status,
        ..DeliveryQuery::default()
    };
    search(client, account, &query, page).await
}

/// The account's deliveries that `query` keeps, newest first.
pub async fn search(
    client: &impl Db,
    account: &AccountId,
    query: &DeliveryQuery,
    page: &PageRequest,
) -> StoreResult<Page<Delivery>> {
    let statement =
        reward_store::search::deliveries(DeliveryLayout::KeysApart, account.as_str(), query, page)?;
    let found = crate::search::rows(client, COLUMNS, &statement).await?;
    let deliveries = found
        .iter()
        .map(from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(page_of(deliveries, page.limit, |delivery: &Delivery| {
        delivery.id.to_string()
    }))
}

pub async fn get(client: &impl Db, account: &AccountId, id: &DeliveryId) -> StoreResult<Delivery> {
    let found = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM deliveries WHERE account_id = $1 AND id = $2"),
            &[&account.as_str(), &id.as_str()],
        )
        .await
        .map_err(from_pg)?;
    found
        .as_ref()
        .map(from_row)
        .transpose()?
        .ok_or(StoreError::NotFound)
}

fn attempt_from_row(row: &Row) -> StoreResult<Attempt> {
    Ok(Attempt {
        id: AttemptId::from_trusted(rows::get(row, 0)?),
        number: rows::count(row, 1)?,
        started_at: rows::timestamp(row, 2)?,
        duration_ms: rows::unsigned(row, 3)?,
        status_code: rows::status_code(row, 4)?,
        response_body: rows::get(row, 5)?,
        error: rows::get(row, 6)?,
    })
}

pub async fn get_with_attempts(
    client: &impl Db,
    account: &AccountId,
    id: &DeliveryId,
) -> StoreResult<DeliveryWithAttempts> {
    let delivery = get(client, account, id).await?;
    let found = client
        .query(
            "SELECT id, number, started_at, duration_ms, status_code, response_body, error
             FROM attempts WHERE account_id = $1 AND delivery_id = $2 ORDER BY number, id",
            &[&account.as_str(), &id.as_str()],
        )
        .await
        .map_err(from_pg)?;
    let attempts = found
        .iter()
        .map(attempt_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(DeliveryWithAttempts { delivery, attempts })
}

/// Marks the delivery for one attempt now; its status and schedule are left as they are. It is
/// explicit, so it goes out of order: the delivery waits for no earlier one of its user.
pub async fn request_retry(
    client: &impl Db,
    account: &AccountId,
    id: &DeliveryId,
) -> StoreResult<Delivery> {
    // Out of order now: scheduled if it waited its turn, and its user's next delivery no longer
    // waits for it.
    let changed = client
        .query_opt(
            "UPDATE deliveries SET manual_attempt_at = $3, updated_at = $3, order_user = NULL,
             order_position = NULL, next_attempt_at = COALESCE(next_attempt_at, $3)
             WHERE account_id = $1 AND id = $2 RETURNING webhook_id",
            &[
                &account.as_str(),
                &id.as_str(),
                &Timestamp::now().as_millis(),
            ],
        )
        .await
        .map_err(from_pg)?;
    let Some(changed) = changed else {
        return Err(StoreError::NotFound);
    };
    let webhook = WebhookId::from_trusted(rows::get(&changed, 0)?);
    crate::ordering::schedule_waiting(client, Some((account, &webhook)), i64::MAX).await?;
    get(client, account, id).await
}

/// Puts every failed delivery of the webhook created since `since` back in the queue, due now,
/// with a fresh retry schedule. A recovery is explicit: its deliveries go out of order.
pub async fn recover(
    client: &impl Db,
    account: &AccountId,
    webhook: &WebhookId,
    since: Timestamp,
) -> StoreResult<u64> {
    crate::webhooks::ensure_exists(client, account, webhook).await?;
    client
        .execute(
            "UPDATE deliveries SET status = 'pending', schedule_attempts = 0, next_attempt_at = $4,
             updated_at = $4, order_user = NULL, order_position = NULL WHERE account_id = $1 AND webhook_id = $2 AND status = 'failed'
             AND created_at >= $3",
            &[
                &account.as_str(),
                &webhook.as_str(),
                &since.as_millis(),
                &Timestamp::now().as_millis(),
            ],
        )
        .await
        .map_err(from_pg)
}
