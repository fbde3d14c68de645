//! Scenarios every backend must pass, run by each backend's own tests (feature `testing`): one
//! body, so the stores cannot drift apart on what they promise.

mod refills;
mod rotation;

use reward_core::endpoint::EventSelection;
use reward_core::ids::{AccountId, ApiKeyId, AttemptId, DeliveryId, WebhookId};
use reward_core::names::{Name, TargetPolicy, WebhookUrl};
use reward_core::signing::WebhookSecret;
use reward_core::time::Timestamp;

use crate::records::{
    Attempt, AttemptRecord, DeliveryUpdate, NewApiKeyRecord, NewWebhook, WebhookSettings,
};
use crate::Accounts;

pub use refills::a_refill_due_since_the_last_claim_is_announced;
pub use rotation::a_rotation_naming_the_current_secret_happens_once;

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

/// An enabled webhook named `name` receiving `events`, to a loopback port nothing listens on
/// (insecure targets allowed), with a fresh secret and default settings.
pub fn loopback_webhook(name: &str, events: EventSelection) -> NewWebhook {
    NewWebhook {
        name: Name::parse(name).expect("name"),
        url: WebhookUrl::parse("http://127.0.0.1:9/hook", TargetPolicy::AllowInsecure)
            .expect("url"),
        events,
        enabled: true,
        secret: WebhookSecret::generate(),
        settings: WebhookSettings::default(),
    }
}

/// A first attempt of a new delivery to the webhook that ended with `status` after
/// `duration_ms`, recorded as its delivery's success (roll-ups count it by its status alone).
pub fn attempt_record(
    account: &AccountId,
    webhook: &WebhookId,
    started_at: i64,
    duration_ms: u64,
    status: u16,
) -> AttemptRecord {
    AttemptRecord {
        account_id: account.clone(),
        delivery_id: DeliveryId::generate(),
        webhook_id: webhook.clone(),
        attempt: Attempt {
            id: AttemptId::generate(),
            number: 1,
            started_at: Timestamp::from_millis(started_at),
            duration_ms,
            status_code: Some(status),
            response_body: None,
            error: None,
        },
        update: DeliveryUpdate::Succeeded,
        scheduled: true,
        disable_webhook: None,
        ordered: false,
    }
}
