//! Scenarios every backend must pass, run by each backend's own tests (feature `testing`): one
//! body, so the stores cannot drift apart on what they promise.

mod refills;

use reward_core::ids::{AccountId, ApiKeyId};
use reward_core::names::Name;

use crate::records::NewApiKeyRecord;
use crate::Accounts;

pub use refills::a_refill_due_since_the_last_claim_is_announced;

/// A new account named Acme, with a key of a hash no other account's shares.
pub async fn new_account(store: &impl Accounts) -> AccountId {
    let key = NewApiKeyRecord {
        id: ApiKeyId::generate(),
        name: Name::parse("default").expect("name"),
        hash: format!("hash-{}", ApiKeyId::generate()),
        display_prefix: "rwd_test".into(),
    };
    store
        .create_account(Name::parse("Acme").expect("name"), key)
        .await
        .expect("account")
        .id
}
