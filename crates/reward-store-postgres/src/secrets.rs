//! Webhook secrets at rest: sealing the rows still stored plain once a key is given (see
//! `reward_store::secrets`; a SQL migration cannot do it, having no key).

use reward_core::signing::WebhookSecret;
use reward_store::secrets::SecretCipher;
use reward_store::{StoreError, StoreResult};

use crate::errors::from_pg;
use crate::statements::Db;

/// Seals every secret still stored plain; returns how many webhooks it sealed. Each row is
/// updated only if still plain, so nodes starting together seal each once.
pub async fn seal_plain_secrets(client: &impl Db, cipher: &SecretCipher) -> StoreResult<usize> {
    // A plain secret is `whsec_...`; a sealed one's base64 never holds `"whsec`.
    let plain = client
        .query(
            "SELECT account_id, id, secret, previous_secrets FROM webhooks
             WHERE secret NOT LIKE 'enc:v1:%' OR previous_secrets LIKE '%\"whsec%'",
            &[],
        )
        .await
        .map_err(from_pg)?;
    let reseal = |id: &str, stored: &str| -> StoreResult<String> {
        if !SecretCipher::is_plain(stored) {
            return Ok(stored.to_owned());
        }
        let secret = WebhookSecret::parse(stored).map_err(|_| {
            StoreError::Internal(format!("webhook {id}: the stored secret is not valid"))
        })?;
        Ok(cipher.seal(id, &secret))
    };
    for row in &plain {
        let (account_id, id): (&str, &str) = (row.get(0), row.get(1));
        let (secret, previous): (&str, &str) = (row.get(2), row.get(3));
        let sealed = reseal(id, secret)?;
        let sealed_previous = cipher
            .seal_plain_previous(id, previous)?
            .unwrap_or_else(|| previous.to_owned());
        client
            .execute(
                "UPDATE webhooks SET secret = $3, previous_secrets = $4
                 WHERE account_id = $1 AND id = $2 AND secret = $5 AND previous_secrets = $6",
                &[
                    &account_id,
                    &id,
                    &sealed,
                    &sealed_previous,
                    &secret,
                    &previous,
                ],
            )
            .await
            .map_err(from_pg)?;
    }
    Ok(plain.len())
}
