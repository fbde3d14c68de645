//! What the unit tests of this crate start from: an account and its webhooks, written through
//! the store's own functions.

use reward_core::endpoint::EventSelection;
use reward_core::ids::{AccountId, ApiKeyId, WebhookId};
use reward_core::names::{Name, TargetPolicy, WebhookUrl};
use reward_core::signing::WebhookSecret;
use reward_store::records::{NewApiKeyRecord, NewWebhook, WebhookSettings};
use reward_store::secrets::SecretCipher;
use rusqlite::Connection;

/// A new account (with one API key) in a migrated database.
pub fn add_account(connection: &Connection) -> AccountId {
    let key = NewApiKeyRecord {
        id: ApiKeyId::generate(),
        name: Name::parse("default").expect("name"),
        hash: "key-hash".into(),
        display_prefix: "rwd_abcdefgh".into(),
    };
    crate::accounts::create(connection, &Name::parse("Acme").expect("name"), &key)
        .expect("account")
        .id
}

/// A new enabled webhook of `account` receiving every event type.
pub fn add_webhook(
    connection: &Connection,
    account: &AccountId,
    settings: WebhookSettings,
    cipher: &SecretCipher,
) -> WebhookId {
    let new = NewWebhook {
        name: Name::parse("Hook").expect("name"),
        url: WebhookUrl::parse("https://example.com/hook", TargetPolicy::SecureOnly).expect("url"),
        events: EventSelection::Every,
        enabled: true,
        secret: WebhookSecret::generate(),
        settings,
    };
    crate::webhooks::create(connection, account, &new, cipher)
        .expect("webhook")
        .id
}
