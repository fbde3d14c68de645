//! Answers kept for `Idempotency-Key`s (`reward_store::idempotent`). The single writer makes a
//! reservation's read and write one step: two requests with one key are never both reserved.

use reward_core::ids::AccountId;
use reward_core::names::IdempotencyKey;
use reward_core::time::Timestamp;
use reward_store::idempotent::{
    sealing_context, verdict, KeptRequest, Reservation, StoredResponse, Verdict,
};
use reward_store::secrets::SecretCipher;
use reward_store::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension};

use crate::errors::from_sqlite;

/// A kept row: what [`verdict`] weighs, and the answer once there is one.
struct Kept {
    request: KeptRequest,
    answer: Option<(u16, String)>,
}

fn kept(
    connection: &Connection,
    account: &AccountId,
    key: &IdempotencyKey,
) -> StoreResult<Option<Kept>> {
    connection
        .prepare_cached(
            "SELECT request_fingerprint, status, body, created_at FROM idempotent_responses
             WHERE account_id = ?1 AND key = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![account.as_str(), key.as_str()], |row| {
                    let status: Option<u16> = row.get(1)?;
                    let body: Option<String> = row.get(2)?;
                    Ok(Kept {
                        request: KeptRequest {
                            fingerprint: row.get(0)?,
                            answered: status.is_some(),
                            created_at: Timestamp::from_millis(row.get(3)?),
                        },
                        answer: status.zip(body),
                    })
                })
                .optional()
        })
        .map_err(from_sqlite)
}

pub fn reserve(
    connection: &Connection,
    account: &AccountId,
    key: &IdempotencyKey,
    fingerprint: &str,
    now: Timestamp,
    cipher: &SecretCipher,
) -> StoreResult<Reservation> {
    if let Some(kept) = kept(connection, account, key)? {
        match verdict(&kept.request, fingerprint, now) {
            Verdict::TakeOver => {}
            Verdict::Conflict => return Err(StoreError::IdempotencyConflict),
            Verdict::InProgress => return Ok(Reservation::InProgress),
            Verdict::Replay => {
                let (status, sealed) = kept.answer.ok_or_else(|| {
                    StoreError::Internal("a kept answer has a status but no body".into())
                })?;
                let body = cipher.open_text(&sealing_context(account, key), &sealed)?;
                return Ok(Reservation::Replay(StoredResponse { status, body }));
            }
        }
    }
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO idempotent_responses
               (account_id, key, request_fingerprint, status, body, created_at)
             VALUES (?1, ?2, ?3, NULL, NULL, ?4)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                key.as_str(),
                fingerprint,
                now.as_millis()
            ])
        })
        .map_err(from_sqlite)?;
    Ok(Reservation::Reserved(now))
}

pub fn complete(
    connection: &Connection,
    account: &AccountId,
    key: &IdempotencyKey,
    reserved: Timestamp,
    response: &StoredResponse,
    cipher: &SecretCipher,
) -> StoreResult<()> {
    let sealed = cipher.seal_text(&sealing_context(account, key), &response.body);
    connection
        .prepare_cached(
            "UPDATE idempotent_responses SET status = ?4, body = ?5
             WHERE account_id = ?1 AND key = ?2 AND created_at = ?3 AND status IS NULL",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                key.as_str(),
                reserved.as_millis(),
                response.status,
                sealed
            ])
        })
        .map_err(from_sqlite)?;
    Ok(())
}

pub fn release(
    connection: &Connection,
    account: &AccountId,
    key: &IdempotencyKey,
    reserved: Timestamp,
) -> StoreResult<()> {
    connection
        .prepare_cached(
            "DELETE FROM idempotent_responses
             WHERE account_id = ?1 AND key = ?2 AND created_at = ?3 AND status IS NULL",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                key.as_str(),
                reserved.as_millis()
            ])
        })
        .map_err(from_sqlite)?;
    Ok(())
}

/// Drops up to `limit` rows past the window; returns how many went.
pub fn purge_chunk(connection: &Connection, before: Timestamp, limit: i64) -> StoreResult<usize> {
    connection
        .prepare_cached(
            "DELETE FROM idempotent_responses WHERE rowid IN (
               SELECT rowid FROM idempotent_responses WHERE created_at < ?1 LIMIT ?2)",
        )
        .and_then(|mut statement| statement.execute(params![before.as_millis(), limit]))
        .map_err(from_sqlite)
}
