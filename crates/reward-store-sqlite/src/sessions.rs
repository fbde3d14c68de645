//! Dashboard sessions, and the attempt statistics the dashboard shows.

use reward_core::ids::{AccountId, ApiKeyId, WebhookId};
use reward_core::names::Name;
use reward_core::time::Timestamp;
use reward_store::records::{AttemptStats, NewSession, Session};
use reward_store::StoreResult;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::errors::from_sqlite;
use crate::rows;

/// The session joined with its account and key: a session is only found while its key is live.
const LIVE_SESSION: &str =
    "SELECT s.account_id, a.name, s.api_key_id, k.display_prefix, s.expires_at
     FROM sessions s
     JOIN api_keys k ON k.account_id = s.account_id AND k.id = s.api_key_id
     JOIN accounts a ON a.id = s.account_id
     WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND k.revoked_at IS NULL";

fn from_row(row: &Row) -> rusqlite::Result<Session> {
    Ok(Session {
        account_id: AccountId::from_trusted(row.get(0)?),
        account_name: Name::from_trusted(row.get(1)?),
        api_key_id: ApiKeyId::from_trusted(row.get(2)?),
        api_key_prefix: row.get(3)?,
        expires_at: rows::timestamp(row, 4)?,
    })
}

pub fn start(
    connection: &Connection,
    key_hash: &str,
    session: &NewSession,
) -> StoreResult<Option<Session>> {
    connection
        .prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")
        .and_then(|mut statement| statement.execute([session.created_at.as_millis()]))
        .map_err(from_sqlite)?;
    let key = connection
        .prepare_cached(
            "SELECT account_id, id FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
        )
        .and_then(|mut statement| {
            statement
                .query_row([key_hash], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .optional()
        })
        .map_err(from_sqlite)?;
    let Some((account, key_id)) = key else {
        return Ok(None);
    };
    connection
        .prepare_cached(
            "INSERT INTO sessions (account_id, token_hash, api_key_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account,
                session.token_hash,
                key_id,
                session.created_at.as_millis(),
                session.expires_at.as_millis(),
            ])
        })
        .map_err(from_sqlite)?;
    find(connection, &session.token_hash, session.created_at)
}

pub fn find(
    connection: &Connection,
    token_hash: &str,
    now: Timestamp,
) -> StoreResult<Option<Session>> {
    connection
        .prepare_cached(LIVE_SESSION)
        .and_then(|mut statement| {
            statement
                .query_row(params![token_hash, now.as_millis()], from_row)
                .optional()
        })
        .map_err(from_sqlite)
}

pub fn end(connection: &Connection, token_hash: &str) -> StoreResult<()> {
    connection
        .prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")
        .and_then(|mut statement| statement.execute([token_hash]))
        .map_err(from_sqlite)?;
    Ok(())
}

/// Per webhook of the account, the attempts counted in its roll-ups from the hour `since` falls
/// in, and how many of them succeeded: a read of a few rows per webhook and hour, however many
/// attempts there were.
pub fn attempt_stats(
    connection: &Connection,
    account: &AccountId,
    since: Timestamp,
) -> StoreResult<Vec<AttemptStats>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT webhook_id, SUM(succeeded + failed), SUM(succeeded) FROM attempt_rollups
             WHERE account_id = ?1 AND hour_start >= ?2
             GROUP BY webhook_id",
        )
        .map_err(from_sqlite)?;
    let since = reward_core::stats::hour_start(since);
    let stats = statement
        .query_map(params![account.as_str(), since.as_millis()], |row| {
            Ok(AttemptStats {
                webhook_id: WebhookId::from_trusted(row.get(0)?),
                attempts: row.get::<_, i64>(1)?.max(0) as u64,
                succeeded: row.get::<_, i64>(2)?.max(0) as u64,
            })
        })
        .and_then(Iterator::collect)
        .map_err(from_sqlite)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use reward_store::testing::attempt_record;

    use super::*;

    const HOUR_MS: i64 = 3600 * 1000;

    /// A migrated in-memory database with one account whose key hashes to "key-hash".
    fn database() -> (Connection, AccountId, ApiKeyId) {
        let mut connection = Connection::open_in_memory().expect("open");
        crate::migrations::migrate(&mut connection).expect("migrate");
        let key = reward_store::records::NewApiKeyRecord {
            id: ApiKeyId::generate(),
            name: Name::parse("default").expect("name"),
            hash: "key-hash".into(),
            display_prefix: "rwd_abcdefgh".into(),
        };
        let account =
            crate::accounts::create(&connection, &Name::parse("Acme").expect("name"), &key)
                .expect("account");
        (connection, account.id, key.id)
    }

    fn new_session(token_hash: &str, now: Timestamp) -> NewSession {
        NewSession {
            token_hash: token_hash.into(),
            created_at: now,
            expires_at: now.plus_millis(8 * HOUR_MS),
        }
    }

    #[test]
    fn a_live_key_opens_a_session_that_is_found_until_it_ends() {
        let (connection, account, key) = database();
        let now = Timestamp::now();
        let session = start(&connection, "key-hash", &new_session("token-hash", now))
            .expect("start")
            .expect("a valid key opens a session");
        assert_eq!(session.account_id, account);
        assert_eq!(session.api_key_id, key);
        assert_eq!(session.account_name.as_str(), "Acme");
        assert!(find(&connection, "token-hash", now)
            .expect("find")
            .is_some());
        end(&connection, "token-hash").expect("end");
        assert!(find(&connection, "token-hash", now)
            .expect("find")
            .is_none());
    }

    #[test]
    fn a_wrong_or_revoked_key_opens_nothing_and_revoking_ends_sessions() {
        let (connection, account, key) = database();
        let now = Timestamp::now();
        assert!(start(&connection, "other", &new_session("t1", now))
            .expect("start")
            .is_none());
        start(&connection, "key-hash", &new_session("t2", now))
            .expect("start")
            .expect("session");
        crate::accounts::revoke_key(&connection, &account, &key).expect("revoke");
        assert!(find(&connection, "t2", now).expect("find").is_none());
        assert!(start(&connection, "key-hash", &new_session("t3", now))
            .expect("start")
            .is_none());
    }

    #[test]
    fn sessions_expire_and_are_removed_by_later_sign_ins() {
        let (connection, _, _) = database();
        let then = Timestamp::now();
        start(&connection, "key-hash", &new_session("old", then))
            .expect("start")
            .expect("session");
        let later = then.plus_millis(8 * HOUR_MS);
        assert!(find(&connection, "old", later).expect("find").is_none());
        start(&connection, "key-hash", &new_session("new", later))
            .expect("start")
            .expect("session");
        let rows: i64 = connection
            .query_row("SELECT COUNT(*) FROM sessions", [], |row| row.get(0))
            .expect("count");
        assert_eq!(rows, 1, "the expired session was removed");
    }

    #[test]
    fn attempt_stats_count_the_roll_ups_of_recent_hours_per_webhook() {
        let (connection, account, _) = database();
        let (webhook, quiet) = (WebhookId::generate(), WebhookId::generate());
        let now = Timestamp::parse_rfc3339("2026-12-05T10:20:00Z").expect("time");
        let at = |offset_ms: i64| now.as_millis() + offset_ms;
        let records = [
            attempt_record(&account, &quiet, at(-25 * HOUR_MS), 10, 200), // too old to count
            attempt_record(&account, &webhook, at(-HOUR_MS), 10, 500),
            attempt_record(&account, &webhook, at(-HOUR_MS), 10, 200),
            // The hour `since` falls in counts whole.
            attempt_record(&account, &webhook, at(-24 * HOUR_MS - 10 * 60_000), 10, 410),
            attempt_record(&account, &webhook, at(0), 10, 204),
        ];
        crate::rollups::record(&connection, &records).expect("roll-ups");
        let stats =
            attempt_stats(&connection, &account, now.plus_millis(-24 * HOUR_MS)).expect("stats");
        assert_eq!(
            stats,
            vec![AttemptStats {
                webhook_id: webhook,
                attempts: 4,
                succeeded: 2
            }]
        );
        let other = AccountId::generate();
        assert!(
            attempt_stats(&connection, &other, Timestamp::from_millis(0))
                .expect("stats")
                .is_empty()
        );
    }
}
