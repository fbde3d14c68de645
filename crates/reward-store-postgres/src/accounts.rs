//! Accounts and their API keys.

use std::collections::HashMap;

use deadpool_postgres::{GenericClient, Pool};
use reward_core::ids::{AccountId, ApiKeyId};
use reward_core::names::Name;
use reward_core::time::Timestamp;
use reward_store::records::{Account, ApiKey, NewApiKeyRecord};
use reward_store::rules;
use reward_store::{StoreError, StoreResult};

use crate::coalesce::Call;
use crate::errors::{from_pg, from_pool};
use crate::rows;

pub async fn create(
    client: &impl GenericClient,
    name: &Name,
    key: &NewApiKeyRecord,
) -> StoreResult<Account> {
    let account = Account {
        id: AccountId::generate(),
        name: name.clone(),
        created_at: Timestamp::now(),
    };
    let statement = client
        .prepare_cached("INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)")
        .await
        .map_err(from_pg)?;
    client
        .execute(
            &statement,
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

pub async fn list(client: &impl GenericClient) -> StoreResult<Vec<Account>> {
    let statement = client
        .prepare_cached("SELECT id, name, created_at FROM accounts ORDER BY id DESC")
        .await
        .map_err(from_pg)?;
    let found = client.query(&statement, &[]).await.map_err(from_pg)?;
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
    client: &impl GenericClient,
    account: &AccountId,
    key: &NewApiKeyRecord,
    now: Timestamp,
) -> StoreResult<ApiKey> {
    let statement = client
        .prepare_cached(
            "INSERT INTO api_keys (account_id, id, name, key_hash, display_prefix, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await
        .map_err(from_pg)?;
    client
        .execute(
            &statement,
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
    client: &impl GenericClient,
    key_hashes: &[&str],
) -> StoreResult<HashMap<String, AccountId>> {
    let statement = client
        .prepare_cached(
            "SELECT key_hash, account_id FROM api_keys
             WHERE key_hash = ANY($1::text[]) AND revoked_at IS NULL",
        )
        .await
        .map_err(from_pg)?;
    let found = client
        .query(&statement, &[&key_hashes])
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

pub async fn list_keys(
    client: &impl GenericClient,
    account: &AccountId,
) -> StoreResult<Vec<ApiKey>> {
    let statement = client
        .prepare_cached(
            "SELECT id, name, display_prefix, created_at, last_used_at FROM api_keys
             WHERE account_id = $1 AND revoked_at IS NULL ORDER BY id DESC",
        )
        .await
        .map_err(from_pg)?;
    let found = client
        .query(&statement, &[&account.as_str()])
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

pub async fn revoke_key(
    client: &impl GenericClient,
    account: &AccountId,
    key: &ApiKeyId,
) -> StoreResult<()> {
    let statement = client
        .prepare_cached(
            "UPDATE api_keys SET revoked_at = $3
             WHERE account_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .await
        .map_err(from_pg)?;
    let changed = client
        .execute(
            &statement,
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
    Ok(())
}

pub async fn touch_keys(
    client: &impl GenericClient,
    used: &[(String, Timestamp)],
) -> StoreResult<()> {
    let statement = client
        .prepare_cached("UPDATE api_keys SET last_used_at = $2 WHERE key_hash = $1")
        .await
        .map_err(from_pg)?;
    for (hash, at) in used {
        client
            .execute(&statement, &[hash, &at.as_millis()])
            .await
            .map_err(from_pg)?;
    }
    Ok(())
}
