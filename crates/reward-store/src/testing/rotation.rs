//! Rotations that name the secret they replace, sent at once (a form submitted twice).

use reward_core::endpoint::EventSelection;
use reward_core::ids::{AccountId, WebhookId};
use reward_core::names::{Name, TargetPolicy, WebhookUrl};
use reward_core::rotation::WebhookSecrets;
use reward_core::signing::WebhookSecret;
use reward_core::time::Timestamp;

use crate::records::{NewWebhook, WebhookSettings};
use crate::{Accounts, StoreError, StoreResult, Webhooks};

/// Four rotations naming the current secret, sent at once through `first` and `second` (two
/// nodes of one database, or one store twice): exactly one rotates, the others change nothing
/// and say the secret changed, and the secret they replaced was rotated out once. A rotation
/// naming no secret always rotates; one naming a secret rotated out since changes nothing.
pub async fn a_rotation_naming_the_current_secret_happens_once<S>(first: &S, second: &S)
where
    S: Accounts + Webhooks,
{
    let account = super::new_account(first).await;
    let original = WebhookSecret::generate();
    let webhook = NewWebhook {
        name: Name::parse("Orders").expect("name"),
        url: WebhookUrl::parse("http://127.0.0.1:9/hook", TargetPolicy::AllowInsecure)
            .expect("url"),
        events: EventSelection::Every,
        enabled: true,
        secret: original.clone(),
        settings: WebhookSettings::default(),
    };
    let id = first
        .create_webhook(&account, webhook)
        .await
        .expect("webhook")
        .id;
    let version = original.version();
    let until = Timestamp::now().plus_millis(60_000);
    let rotate = |store| rotate_naming(store, &account, &id, &version, until);
    let (a, b, c, d) = tokio::join!(rotate(first), rotate(second), rotate(first), rotate(second));
    let outcomes = [a, b, c, d];
    let rotated: Vec<&WebhookSecret> = outcomes
        .iter()
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(secret, _)| secret)
        .collect();
    assert_eq!(rotated.len(), 1, "exactly one rotation of the named secret");
    for (_, outcome) in &outcomes {
        if let Err(error) = outcome {
            assert!(matches!(error, StoreError::SecretChanged), "{error:?}");
        }
    }
    let secrets = first.webhook_secrets(&account, &id).await.expect("secrets");
    assert_eq!(&secrets.current, rotated[0]);
    let retired: Vec<&WebhookSecret> = secrets.previous.iter().map(|p| &p.secret).collect();
    assert_eq!(retired, [&original], "the named secret rotated out once");

    // Naming a secret rotated out since: nothing changes.
    let stale = second
        .rotate_webhook_secret(
            &account,
            &id,
            WebhookSecret::generate(),
            until,
            Some(&version),
        )
        .await;
    assert!(matches!(stale, Err(StoreError::SecretChanged)), "{stale:?}");
    // Naming the current one, or none: rotated.
    let current = rotated[0].version();
    let next = WebhookSecret::generate();
    let named = second
        .rotate_webhook_secret(&account, &id, next.clone(), until, Some(&current))
        .await
        .expect("the current secret named");
    assert_eq!(named.current, next);
    let unnamed = first
        .rotate_webhook_secret(&account, &id, WebhookSecret::generate(), until, None)
        .await
        .expect("no secret named");
    assert_ne!(unnamed.current, next);
}

/// A new secret, and what rotating to it while naming `version` answered.
async fn rotate_naming<S: Webhooks>(
    store: &S,
    account: &AccountId,
    id: &WebhookId,
    version: &str,
    until: Timestamp,
) -> (WebhookSecret, StoreResult<WebhookSecrets>) {
    let secret = WebhookSecret::generate();
    let rotated = store
        .rotate_webhook_secret(account, id, secret.clone(), until, Some(version))
        .await;
    (secret, rotated)
}
