//! Accounts and their API keys.

use reward_core::ids::{AccountId, ApiKeyId};
use reward_core::names::Name;
use reward_core::time::Timestamp;
use reward_store::records::{Account, ApiKey, NewApiKeyRecord};
use reward_store::rules;
use reward_store::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension};

use crate::errors::from_sqlite;
use crate::rows;

pub fn create(connection: &Connection, name: &Name, key: &NewApiKeyRecord) -> StoreResult<Account> {
    let account = Account {
        id: AccountId::generate(),
        name: name.clone(),
        created_at: Timestamp::now(),
    };
    connection
        .prepare_cached("INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)")
        .and_then(|mut statement| {
            statement.execute(params![
                account.id.as_str(),
                name.as_str(),
                account.created_at.as_millis()
            ])
        })
        .map_err(from_sqlite)?;
    insert_key(connection, &account.id, key, account.created_at)?;
    Ok(account)
}

pub fn list(connection: &Connection) -> StoreResult<Vec<Account>> {
    let mut statement = connection
        .prepare_cached("SELECT id, name, created_at FROM accounts ORDER BY id DESC")
        .map_err(from_sqlite)?;
    let accounts = statement
        .query_map([], |row| {
            Ok(Account {
                id: AccountId::from_trusted(row.get(0)?),
                name: Name::from_trusted(row.get(1)?),
                created_at: rows::timestamp(row, 2)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(from_sqlite)?;
    Ok(accounts)
}

pub fn insert_key(
    connection: &Connection,
    account: &AccountId,
    key: &NewApiKeyRecord,
    now: Timestamp,
) -> StoreResult<ApiKey> {
    connection
        .prepare_cached(
            "INSERT INTO api_keys (account_id, id, name, key_hash, display_prefix, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                key.id.as_str(),
                key.name.as_str(),
                key.hash,
                key.display_prefix,
                now.as_millis()
            ])
        })
        .map_err(from_sqlite)?;
    Ok(rules::new_api_key(key, now))
}

pub fn authenticate(connection: &Connection, key_hash: &str) -> StoreResult<Option<AccountId>> {
    connection
        .prepare_cached(
            "SELECT account_id FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
        )
        .and_then(|mut statement| {
            statement
                .query_row([key_hash], |row| row.get::<_, String>(0))
                .optional()
        })
        .map(|found| found.map(AccountId::from_trusted))
        .map_err(from_sqlite)
}

pub fn list_keys(connection: &Connection, account: &AccountId) -> StoreResult<Vec<ApiKey>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT id, name, display_prefix, created_at, last_used_at FROM api_keys
             WHERE account_id = ?1 AND revoked_at IS NULL ORDER BY id DESC",
        )
        .map_err(from_sqlite)?;
    let keys = statement
        .query_map([account.as_str()], |row| {
            Ok(ApiKey {
                id: ApiKeyId::from_trusted(row.get(0)?),
                name: Name::from_trusted(row.get(1)?),
                display_prefix: row.get(2)?,
                created_at: rows::timestamp(row, 3)?,
                last_used_at: rows::optional_timestamp(row, 4)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(from_sqlite)?;
    Ok(keys)
}

pub fn revoke_key(connection: &Connection, account: &AccountId, key: &ApiKeyId) -> StoreResult<()> {
    let changed = connection
        .prepare_cached(
            "UPDATE api_keys SET revoked_at = ?3 WHERE account_id = ?1 AND id = ?2 AND revoked_at IS NULL",
        )
        .and_then(|mut statement| {
            statement.execute(params![account.as_str(), key.as_str(), Timestamp::now().as_millis()])
        })
        .map_err(from_sqlite)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub fn touch_keys(connection: &Connection, used: &[(String, Timestamp)]) -> StoreResult<()> {
    let mut statement = connection
        .prepare_cached("UPDATE api_keys SET last_used_at = ?2 WHERE key_hash = ?1")
        .map_err(from_sqlite)?;
    for (hash, at) in used {
        statement
            .execute(params![hash, at.as_millis()])
            .map_err(from_sqlite)?;
    }
    Ok(())
}
