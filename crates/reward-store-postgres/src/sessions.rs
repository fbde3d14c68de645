//! Dashboard sessions, and the attempt statistics the dashboard shows.

use reward_core::ids::{AccountId, ApiKeyId, WebhookId};
use reward_core::names::Name;
use reward_core::time::Timestamp;
use reward_store::records::{AttemptStats, NewSession, Session};
use reward_store::StoreResult;
use tokio_postgres::Row;

use crate::errors::from_pg;
use crate::rows;
use crate::statements::Db;

/// The session joined with its account and key: a session is only found while its key is live.
const LIVE_SESSION: &str = "SELECT s.account_id, a.name, s.api_key_id, k.display_prefix,
       s.expires_at
     FROM sessions s
     JOIN api_keys k ON k.account_id = s.account_id AND k.id = s.api_key_id
     JOIN accounts a ON a.id = s.account_id
     WHERE s.token_hash = $1 AND s.expires_at > $2 AND k.revoked_at IS NULL";

fn from_row(row: &Row) -> StoreResult<Session> {
    Ok(Session {
        account_id: AccountId::from_trusted(rows::get(row, 0)?),
        account_name: Name::from_trusted(rows::get(row, 1)?),
        api_key_id: ApiKeyId::from_trusted(rows::get(row, 2)?),
        api_key_prefix: rows::get(row, 3)?,
        expires_at: rows::timestamp(row, 4)?,
    })
}

pub async fn start(
    client: &impl Db,
    key_hash: &str,
    session: &NewSession,
) -> StoreResult<Option<Session>> {
    client
        .execute(
            "DELETE FROM sessions WHERE expires_at <= $1",
            &[&session.created_at.as_millis()],
        )
        .await
        .map_err(from_pg)?;
    // The session is opened from the key's row in the same statement, so a key revoked at this
    // instant on another node either opens nothing or is seen revoked by every later lookup.
    let opened = client
        .execute(
            "INSERT INTO sessions (account_id, token_hash, api_key_id, created_at, expires_at)
             SELECT account_id, $2, id, $3, $4 FROM api_keys
             WHERE key_hash = $1 AND revoked_at IS NULL",
            &[
                &key_hash,
                &session.token_hash,
                &session.created_at.as_millis(),
                &session.expires_at.as_millis(),
            ],
        )
        .await
        .map_err(from_pg)?;
    if opened == 0 {
        return Ok(None);
    }
    find(client, &session.token_hash, session.created_at).await
}

pub async fn find(
    client: &impl Db,
    token_hash: &str,
    now: Timestamp,
) -> StoreResult<Option<Session>> {
    let found = client
        .query_opt(LIVE_SESSION, &[&token_hash, &now.as_millis()])
        .await
        .map_err(from_pg)?;
    found.as_ref().map(from_row).transpose()
}

pub async fn end(client: &impl Db, token_hash: &str) -> StoreResult<()> {
    client
        .execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash])
        .await
        .map_err(from_pg)?;
    Ok(())
}

/// Per webhook of the account, the attempts counted in its roll-ups (every node's shard) from the
/// hour `since` falls in, and how many of them succeeded: a read of a few rows per webhook and
/// hour, however many attempts there were.
pub async fn attempt_stats(
    client: &impl Db,
    account: &AccountId,
    since: Timestamp,
) -> StoreResult<Vec<AttemptStats>> {
    let since = reward_core::stats::hour_start(since);
    let found = client
        .query(
            "SELECT webhook_id, sum(succeeded + failed)::bigint, sum(succeeded)::bigint
             FROM attempt_rollups
             WHERE account_id = $1 AND hour_start >= $2
             GROUP BY webhook_id",
            &[&account.as_str(), &since.as_millis()],
        )
        .await
        .map_err(from_pg)?;
    found
        .iter()
        .map(|row| {
            Ok(AttemptStats {
                webhook_id: WebhookId::from_trusted(rows::get(row, 0)?),
                attempts: rows::unsigned(row, 1)?,
                succeeded: rows::unsigned(row, 2)?,
            })
        })
        .collect()
}
