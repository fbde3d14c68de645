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

pub fn attempt_stats(
    connection: &Connection,
    account: &AccountId,
    since: Timestamp,
) -> StoreResult<Vec<AttemptStats>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT d.webhook_id, COUNT(*), SUM(a.status_code BETWEEN 200 AND 299)
             FROM attempts a
             JOIN deliveries d ON d.account_id = a.account_id AND d.id = a.delivery_id
             WHERE a.account_id = ?1 AND a.started_at >= ?2
             GROUP BY d.webhook_id",
        )
        .map_err(from_sqlite)?;
    let stats = statement
        .query_map(params![account.as_str(), since.as_millis()], |row| {
            Ok(AttemptStats {
                webhook_id: WebhookId::from_trusted(row.get(0)?),
                attempts: row.get::<_, i64>(1)?.max(0) as u64,
                succeeded: row.get::<_, Option<i64>>(2)?.unwrap_or(0).max(0) as u64,
            })
        })
        .and_then(Iterator::collect)
        .map_err(from_sqlite)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use reward_core::ids::DeliveryId;

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
    fn attempt_stats_count_recent_attempts_per_webhook() {
        let (connection, account, _) = database();
        let webhook = WebhookId::generate();
        let delivery = DeliveryId::generate();
        connection
            .execute(
                "INSERT INTO deliveries (account_id, id, webhook_id, event_id, event_type, status,
                 created_at, updated_at) VALUES (?1, ?2, ?3, 'we_x', 'trigger_event.created',
                 'pending', 0, 0)",
                params![account.as_str(), delivery.as_str(), webhook.as_str()],
            )
            .expect("delivery");
        let now = Timestamp::now();
        let attempts = [
            (now.plus_millis(-25 * HOUR_MS), Some(200)), // too old to count
            (now.plus_millis(-HOUR_MS), Some(500)),
            (now.plus_millis(-HOUR_MS), None), // a connection error
            (now, Some(204)),
        ];
        for (number, (started_at, status)) in attempts.iter().enumerate() {
            connection
                .execute(
                    "INSERT INTO attempts (account_id, delivery_id, id, number, started_at,
                     duration_ms, status_code) VALUES (?1, ?2, ?3, ?4, ?5, 10, ?6)",
                    params![
                        account.as_str(),
                        delivery.as_str(),
                        format!("at_{number}"),
                        number,
                        started_at.as_millis(),
                        status
                    ],
                )
                .expect("attempt");
        }
        let stats =
            attempt_stats(&connection, &account, now.plus_millis(-24 * HOUR_MS)).expect("stats");
        assert_eq!(
            stats,
            vec![AttemptStats {
                webhook_id: webhook,
                attempts: 3,
                succeeded: 1
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
