//! `reward accounts ...` and `reward migrate`: administration against the database directly, so
//! it works whether or not a server is running.

use anyhow::Context;
use reward_core::api_key;
use reward_core::ids::{AccountId, ApiKeyId};
use reward_core::names::Name;
use reward_store::records::NewApiKeyRecord;
use serde_json::json;

use crate::cli::{AccountsCommand, DatabaseArgs};

pub async fn run(command: AccountsCommand) -> anyhow::Result<()> {
    match command {
        AccountsCommand::Create { name, database } => {
            let name = Name::parse(&name).map_err(|error| anyhow::anyhow!("--name: {error}"))?;
            let store =
                reward_server::store::open(&database.database_url, &database.options()).await?;
            let (key, record) = new_key("default")?;
            let account = store
                .create_account(name, record)
                .await
                .context("creating the account")?;
            println!("{}", json!({"account_id": account.id, "api_key": key}));
        }
        AccountsCommand::List { database } => {
            let store =
                reward_server::store::open(&database.database_url, &database.options()).await?;
            for account in store.list_accounts().await.context("listing accounts")? {
                println!(
                    "{}",
                    json!({"account_id": account.id, "name": account.name, "created_at": account.created_at})
                );
            }
        }
        AccountsCommand::RotateKey { account, database } => {
            let account = AccountId::parse(&account)
                .map_err(|error| anyhow::anyhow!("--account: {error}"))?;
            let store =
                reward_server::store::open(&database.database_url, &database.options()).await?;
            let known = store.list_accounts().await.context("listing accounts")?;
            if !known.iter().any(|candidate| candidate.id == account) {
                anyhow::bail!("--account: no account {account}");
            }
            let old_keys = store
                .list_api_keys(&account)
                .await
                .context("listing keys")?;
            // The new key exists before the old ones go: the account is never without one.
            let (key, record) = new_key("rotated")?;
            store
                .create_api_key(&account, record)
                .await
                .context("creating the key")?;
            for old in old_keys {
                store
                    .revoke_api_key(&account, &old.id)
                    .await
                    .context("revoking an old key")?;
            }
            println!("{}", json!({"account_id": account, "api_key": key}));
        }
    }
    Ok(())
}

/// A new key: the text to show once, and what is stored.
fn new_key(name: &str) -> anyhow::Result<(String, NewApiKeyRecord)> {
    let key = api_key::generate();
    let record = NewApiKeyRecord {
        id: ApiKeyId::generate(),
        name: Name::parse(name).context("the key's name")?,
        hash: key.hash,
        display_prefix: key.display_prefix,
    };
    Ok((key.plaintext, record))
}

pub async fn migrate(database: DatabaseArgs) -> anyhow::Result<()> {
    reward_server::store::open(&database.database_url, &database.options()).await?;
    eprintln!(
        "the database at {} is migrated and up to date",
        database.database_url
    );
    Ok(())
}
