//! Accounts and their API keys.

use std::collections::HashMap;

use reward_core::ids::{AccountId, ApiKeyId};
use reward_core::names::Name;
use reward_core::time::Timestamp;
use reward_store::records::{Account, ApiKey, NewApiKeyRecord};
use reward_store::rules;
use reward_store::{StoreError, StoreResult};

use crate::coalesce::Call;
use crate::connect::Pool;
use crate::errors::{from_pg, from_pool};
use crate::rows;
use crate::statements::Db;

pub async fn create(client: &impl Db, name: &Name, key: &NewApiKeyRecord) -> StoreResult<Account> {
    let account = Account {
        id: AccountId::generate(),
        name: name.clone(),
        created_at: Timestamp::now(),
    };
    client
        .execute(
            "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)",
            &[
                &account.id.as_str(),
                &name.as_str(),
                &account.created_at.as_millis(),
            ],
        )
        .await
        .map_err(from_pg)?;
    insert_key(client, &account.id, key, account.created_at).await?;
    Ok(account)
}

pub async fn list(client: &impl Db) -> StoreResult<Vec<Account>> {
    let found = client
        .query(
            "SELECT id, name, created_at FROM accounts ORDER BY id DESC",
            &[],
        )
        .await
        .map_err(from_pg)?;
    found
        .iter()
        .map(|row| {
            Ok(Account {
                id: AccountId::from_trusted(rows::get(row, 0)?),
                name: Name::from_trusted(rows::get(row, 1)?),
                created_at: rows::timestamp(row, 2)?,
            })
        })
        .collect()
}

pub async fn insert_key(
    client: &impl Db,
    account: &AccountId,
    key: &NewApiKeyRecord,
    now: Timestamp,
) -> StoreResult<ApiKey> {
    let statement =
        "INSERT INTO api_keys (account_id, id, name, key_hash, display_prefix, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)";
    client
        .execute(
            statement,
            &[
                &account.as_str(),
                &key.id.as_str(),
                &key.name.as_str(),
                &key.hash,
                &key.display_prefix,
                &now.as_millis(),
            ],
        )
        .await
        .map_err(from_pg)?;
    Ok(rules::new_api_key(key, now))
}

/// Key lookups made together: every request authenticates, and one statement for all of those
/// that arrived at once costs the database far less than one each. Each lookup still reads the
/// keys as they are when it runs, so a revoked key stops working at once.
pub async fn answer_key_lookups(pool: &Pool, calls: Vec<Call<String, Option<AccountId>>>) {
    let hashes: Vec<&str> = calls.iter().map(|call| call.request.as_str()).collect();
    let found = match pool.get().await {
        Ok(client) => authenticate_many(&client, &hashes).await,
        Err(error) => Err(from_pool(error)),
    };
    match found {
        Ok(accounts) => {
            for call in calls {
                let account = accounts.get(&call.request).cloned();
                call.answer(Ok(account));
            }
        }
        Err(error) => {
            for call in calls {
                call.answer(Err(error.clone()));
            }
        }
    }
}

/// The accounts of several keys at once, by key hash: revoked and unknown keys are absent.
async fn authenticate_many(
    client: &impl Db,
    key_hashes: &[&str],
) -> StoreResult<HashMap<String, AccountId>> {
    let found = client
        .query(
            "SELECT key_hash, account_id FROM api_keys
             WHERE key_hash = ANY($1::text[]) AND revoked_at IS NULL",
            &[&key_hashes],
        )
        .await
        .map_err(from_pg)?;
    found
        .iter()
        .map(|row| {
            Ok((
                rows::get(row, 0)?,
                AccountId::from_trusted(rows::get(row, 1)?),
            ))
        })
        .collect()
}

pub async fn list_keys(client: &impl Db, account: &AccountId) -> StoreResult<Vec<ApiKey>> {
    let found = client
        .query(
            "SELECT id, name, display_prefix, created_at, last_used_at FROM api_keys
             WHERE account_id = $1 AND revoked_at IS NULL ORDER BY id DESC",
            &[&account.as_str()],
        )
        .await
        .map_err(from_pg)?;
    found
        .iter()
        .map(|row| {
            Ok(ApiKey {
                id: ApiKeyId::from_trusted(rows::get(row, 0)?),
                name: Name::from_trusted(rows::get(row, 1)?),
                display_prefix: rows::get(row, 2)?,
                created_at: rows::timestamp(row, 3)?,
                last_used_at: rows::optional_timestamp(row, 4)?,
            })
        })
        .collect()
}

/// Revokes the key and, in the caller's transaction, tells every node (`key_cache`).
pub async fn revoke_key(client: &impl Db, account: &AccountId, key: &ApiKeyId) -> StoreResult<()> {
    let changed = client
        .execute(
            "UPDATE api_keys SET revoked_at = $3
             WHERE account_id = $1 AND id = $2 AND revoked_at IS NULL",
            &[
                &account.as_str(),
                &key.as_str(),
                &Timestamp::now().as_millis(),
            ],
        )
        .await
        .map_err(from_pg)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    // Delivered to every node's listening connection when the revocation commits, not before.
    client
        .execute("SELECT pg_notify($1, '')", &[&crate::key_cache::CHANNEL])
        .await
        .map_err(from_pg)?;
    Ok(())
}

pub async fn touch_keys(client: &impl Db, used: &[(String, Timestamp)]) -> StoreResult<()> {
    for (hash, at) in used {
        client
            .execute(
                "UPDATE api_keys SET last_used_at = $2 WHERE key_hash = $1",
                &[hash, &at.as_millis()],
            )
            .await
            .map_err(from_pg)?;
    }
    Ok(())
}
