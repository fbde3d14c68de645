//! Answers kept for `Idempotency-Key`s (`reward_store::idempotent`), safe across nodes: the
//! reservation is an insert relying on the primary key, as trigger events' keys are claimed
//! (`rewards::claim_idempotency_key`): of two nodes inserting one key at once, `ON CONFLICT`
//! makes the second wait for the first to commit and then see its row. A key free again (its
//! window passed, or its reservation abandoned by a crash) is taken over by the same statement,
//! in the `WHERE` of its `DO UPDATE`, which says what `verdict` says for those.

use reward_core::idempotency;
use reward_core::ids::AccountId;
use reward_core::names::IdempotencyKey;
use reward_core::time::Timestamp;
use reward_store::idempotent::{
    reservation_abandoned_at_or_before, sealing_context, verdict, KeptRequest, Reservation,
    StoredResponse, Verdict,
};
use reward_store::secrets::SecretCipher;
use reward_store::{StoreError, StoreResult};

use crate::errors::from_pg;
use crate::rows;
use crate::statements::Db;

pub async fn reserve(
    client: &impl Db,
    account: &AccountId,
    key: &IdempotencyKey,
    fingerprint: &str,
    now: Timestamp,
    cipher: &SecretCipher,
) -> StoreResult<Reservation> {
    let reserved = client
        .query_opt(
            "INSERT INTO idempotent_responses
               (account_id, key, request_fingerprint, status, body, created_at)
             VALUES ($1, $2, $3, NULL, NULL, $4)
             ON CONFLICT (account_id, key) DO UPDATE SET
               request_fingerprint = EXCLUDED.request_fingerprint, status = NULL, body = NULL,
               created_at = EXCLUDED.created_at
             WHERE idempotent_responses.created_at <= $5
                OR (idempotent_responses.status IS NULL
                    AND idempotent_responses.created_at <= $6
                    AND idempotent_responses.request_fingerprint = EXCLUDED.request_fingerprint)
             RETURNING 1",
            &[
                &account.as_str(),
                &key.as_str(),
                &fingerprint,
                &now.as_millis(),
                &idempotency::forgotten_at_or_before(now).as_millis(),
                &reservation_abandoned_at_or_before(now).as_millis(),
            ],
        )
        .await
        .map_err(from_pg)?;
    if reserved.is_some() {
        return Ok(Reservation::Reserved(now));
    }
    let Some(row) = client
        .query_opt(
            "SELECT request_fingerprint, status, body, created_at FROM idempotent_responses
             WHERE account_id = $1 AND key = $2",
            &[&account.as_str(), &key.as_str()],
        )
        .await
        .map_err(from_pg)?
    else {
        // Purged between the two statements: rare, and asking again settles it.
        return Err(StoreError::Unavailable(
            "an idempotency key changed while it was read; try again".into(),
        ));
    };
    let status: Option<i32> = rows::get(&row, 1)?;
    let kept = KeptRequest {
        fingerprint: rows::get(&row, 0)?,
        answered: status.is_some(),
        created_at: Timestamp::from_millis(rows::get(&row, 3)?),
    };
    match verdict(&kept, fingerprint, now) {
        Verdict::Conflict => Err(StoreError::IdempotencyConflict),
        // Taken over by another request between the statements, or not yet free by the
        // database's reading: either way someone else holds it now.
        Verdict::InProgress | Verdict::TakeOver => Ok(Reservation::InProgress),
        Verdict::Replay => {
            let sealed: Option<String> = rows::get(&row, 2)?;
            let (Some(status), Some(sealed)) = (status, sealed) else {
                return Err(StoreError::Internal(
                    "a kept answer has a status but no body".into(),
                ));
            };
            let status = u16::try_from(status)
                .map_err(|_| StoreError::Internal("a kept answer's status is not one".into()))?;
            let body = cipher.open_text(&sealing_context(account, key), &sealed)?;
            Ok(Reservation::Replay(StoredResponse { status, body }))
        }
    }
}

pub async fn complete(
    client: &impl Db,
    account: &AccountId,
    key: &IdempotencyKey,
    reserved: Timestamp,
    response: &StoredResponse,
    cipher: &SecretCipher,
) -> StoreResult<()> {
    let sealed = cipher.seal_text(&sealing_context(account, key), &response.body);
    client
        .execute(
            "UPDATE idempotent_responses SET status = $4, body = $5
             WHERE account_id = $1 AND key = $2 AND created_at = $3 AND status IS NULL",
            &[
                &account.as_str(),
                &key.as_str(),
                &reserved.as_millis(),
                &i32::from(response.status),
                &sealed,
            ],
        )
        .await
        .map_err(from_pg)?;
    Ok(())
}

pub async fn release(
    client: &impl Db,
    account: &AccountId,
    key: &IdempotencyKey,
    reserved: Timestamp,
) -> StoreResult<()> {
    client
        .execute(
            "DELETE FROM idempotent_responses
             WHERE account_id = $1 AND key = $2 AND created_at = $3 AND status IS NULL",
            &[&account.as_str(), &key.as_str(), &reserved.as_millis()],
        )
        .await
        .map_err(from_pg)?;
    Ok(())
}
