//! `reward accounts ...`: account administration against the database directly, so it works
//! whether or not a server is running.

use anyhow::Context;
use reward_core::api_key;
use reward_core::ids::ApiKeyId;
use reward_core::names::Name;
use reward_store::records::NewApiKeyRecord;
use serde_json::json;

use crate::cli::AccountsCommand;

pub async fn run(command: AccountsCommand) -> anyhow::Result<()> {
    match command {
        AccountsCommand::Create { name, database } => {
            let name = Name::parse(&name).map_err(|error| anyhow::anyhow!("--name: {error}"))?;
            let store = reward_server::store::open(&database.database_url)?;
            let key = api_key::generate();
            let record = NewApiKeyRecord {
                id: ApiKeyId::generate(),
                name: Name::parse("default").context("the default key name")?,
                hash: key.hash,
                display_prefix: key.display_prefix,
            };
            let account = store
                .create_account(name, record)
                .await
                .context("creating the account")?;
            println!(
                "{}",
                json!({"account_id": account.id, "api_key": key.plaintext})
            );
            Ok(())
        }
    }
}
