//! Webhooks and their secrets.

use reward_core::endpoint::Ordering;
use reward_core::event::NewEvent;
use reward_core::ids::{AccountId, WebhookId};
use reward_core::names::Name;
use reward_core::rotation::{after_rotation, Retired};
use reward_core::time::Timestamp;
use reward_store::columns::{self, event_types_json};
use reward_store::paging::{fetch_limit, id_cursor, page_of};
pub use reward_store::records::Rotation;
use reward_store::records::{
    DeliveryTarget, NewWebhook, Page, PageRequest, Subscription, Webhook, WebhookPatch,
    WebhookSecrets, WebhookSettings,
};
use reward_store::rules;
use reward_store::secrets::{previous_from_stored, previous_to_stored, SecretCipher};
use reward_store::{StoreError, StoreResult};
use tokio_postgres::Row;

use crate::errors::from_pg;
use crate::rows;
use crate::statements::Db;

const COLUMNS: &str = "id, name, url, events, enabled, disabled_reason, created_at, updated_at,
     filter, headers, description, metadata, rate_limit, ordering";

fn from_row(row: &Row, cipher: &SecretCipher) -> StoreResult<Webhook> {
    let id: &str = rows::get(row, 0)?;
    Ok(Webhook {
        id: WebhookId::from_trusted(id.to_owned()),
        name: Name::from_trusted(rows::get(row, 1)?),
        url: rows::webhook_url(row, 2)?,
        events: rows::event_types(row, 3)?,
        enabled: rows::get(row, 4)?,
        disabled_reason: rows::get(row, 5)?,
        created_at: rows::timestamp(row, 6)?,
        updated_at: rows::timestamp(row, 7)?,
        settings: rows::webhook_settings(row, 8, cipher, id)?,
    })
}

/// The settings' columns as written: `filter, headers, description, metadata, rate_limit,
/// ordering`.
struct SettingsColumns {
    filter: Option<String>,
    headers: String,
    description: Option<String>,
    metadata: String,
    rate_limit: Option<i32>,
    ordering: &'static str,
}

impl SettingsColumns {
    fn of(id: &WebhookId, settings: &WebhookSettings, cipher: &SecretCipher) -> Self {
        Self {
            filter: columns::filter_column(settings.filter.as_ref()),
            headers: columns::headers_column(cipher, id.as_str(), &settings.headers),
            description: settings
                .description
                .as_ref()
                .map(|description| description.as_str().to_owned()),
            metadata: columns::metadata_column(&settings.metadata),
            rate_limit: settings
                .rate_limit
                .map(|limit| i32::try_from(limit.per_second()).unwrap_or(i32::MAX)),
            ordering: settings.ordering.as_str(),
        }
    }
}

pub async fn create(
    client: &impl Db,
    account: &AccountId,
    new: &NewWebhook,
    cipher: &SecretCipher,
) -> StoreResult<Webhook> {
    let now = Timestamp::now();
    let webhook = rules::new_webhook(new, now);
    let settings = SettingsColumns::of(&webhook.id, &webhook.settings, cipher);
    client
        .execute(
            "INSERT INTO webhooks (account_id, id, name, url, events, enabled, secret, created_at,
             updated_at, filter, headers, description, metadata, rate_limit, ordering)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, $13, $14)",
            &[
                &account.as_str(),
                &webhook.id.as_str(),
                &webhook.name.as_str(),
                &webhook.url.as_str(),
                &event_types_json(&webhook.events),
                &webhook.enabled,
                &cipher.seal(webhook.id.as_str(), &new.secret),
                &now.as_millis(),
                &settings.filter,
                &settings.headers,
                &settings.description,
                &settings.metadata,
                &settings.rate_limit,
                &settings.ordering,
            ],
        )
        .await
        .map_err(from_pg)?;
    Ok(webhook)
}

pub async fn list(
    client: &impl Db,
    account: &AccountId,
    page: &PageRequest,
    cipher: &SecretCipher,
) -> StoreResult<Page<Webhook>> {
    let before = id_cursor::<WebhookId>(page)?;
    let found = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM webhooks WHERE account_id = $1 AND id < $2
             ORDER BY id DESC LIMIT $3"
            ),
            &[&account.as_str(), &before, &fetch_limit(page.limit)],
        )
        .await
        .map_err(from_pg)?;
    let webhooks = found
        .iter()
        .map(|row| from_row(row, cipher))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(page_of(webhooks, page.limit, |webhook: &Webhook| {
        webhook.id.to_string()
    }))
}

pub async fn get(
    client: &impl Db,
    account: &AccountId,
    id: &WebhookId,
    cipher: &SecretCipher,
) -> StoreResult<Webhook> {
    find(client, account, id, "", cipher).await
}

/// The webhook, its row kept from deletion until the transaction ends (see [`keep`]).
pub async fn get_kept(
    client: &impl Db,
    account: &AccountId,
    id: &WebhookId,
    cipher: &SecretCipher,
) -> StoreResult<Webhook> {
    find(client, account, id, " FOR KEY SHARE", cipher).await
}

/// `NotFound` unless the account has this webhook.
pub async fn ensure_exists(
    client: &impl Db,
    account: &AccountId,
    id: &WebhookId,
) -> StoreResult<()> {
    client
        .query_opt(
            "SELECT 1 FROM webhooks WHERE account_id = $1 AND id = $2",
            &[&account.as_str(), &id.as_str()],
        )
        .await
        .map_err(from_pg)?
        .map(|_| ())
        .ok_or(StoreError::NotFound)
}

/// Whether the account's webhook is enabled (`None`: no such webhook); the row stays locked
/// against deletion until the transaction ends (`FOR KEY SHARE` blocks `DELETE` but no update):
/// a delivery queued for it inside the transaction can then never outlive the webhook, whatever
/// another node does at the same time.
pub async fn keep_enabled(
    client: &impl Db,
    account: &AccountId,
    id: &WebhookId,
) -> StoreResult<Option<bool>> {
    Ok(client
        .query_opt(
            "SELECT enabled FROM webhooks WHERE account_id = $1 AND id = $2 FOR KEY SHARE",
            &[&account.as_str(), &id.as_str()],
        )
        .await
        .map_err(from_pg)?
        .map(|row| row.get(0)))
}

async fn find(
    client: &impl Db,
    account: &AccountId,
    id: &WebhookId,
    lock: &str,
    cipher: &SecretCipher,
) -> StoreResult<Webhook> {
    let found = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM webhooks WHERE account_id = $1 AND id = $2{lock}"),
            &[&account.as_str(), &id.as_str()],
        )
        .await
        .map_err(from_pg)?;
    found
        .as_ref()
        .map(|row| from_row(row, cipher))
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub async fn update(
    client: &impl Db,
    account: &AccountId,
    id: &WebhookId,
    patch: &WebhookPatch,
    cipher: &SecretCipher,
) -> StoreResult<Webhook> {
    // FOR NO KEY UPDATE: two nodes patching one webhook at once apply one patch after the other
    // instead of each overwriting the other's fields with what it read.
    let stored = find(client, account, id, " FOR NO KEY UPDATE", cipher).await?;
    let before = stored.settings.ordering;
    let webhook = rules::patched(stored, patch, Timestamp::now());
    let settings = SettingsColumns::of(&webhook.id, &webhook.settings, cipher);
    client
        .execute(
            "UPDATE webhooks SET name = $3, url = $4, events = $5, enabled = $6,
             disabled_reason = $7, updated_at = $8, filter = $9, headers = $10,
             description = $11, metadata = $12, rate_limit = $13, ordering = $14
             WHERE account_id = $1 AND id = $2",
            &[
                &account.as_str(),
                &id.as_str(),
                &webhook.name.as_str(),
                &webhook.url.as_str(),
                &event_types_json(&webhook.events),
                &webhook.enabled,
                &webhook.disabled_reason,
                &webhook.updated_at.as_millis(),
                &settings.filter,
                &settings.headers,
                &settings.description,
                &settings.metadata,
                &settings.rate_limit,
                &settings.ordering,
            ],
        )
        .await
        .map_err(from_pg)?;
    if let Some(ordering) = rules::reordering(before, webhook.settings.ordering) {
        crate::ordering::reorder_pending(client, account, id, ordering).await?;
    }
    Ok(webhook)
}

/// Deletes the webhook with its deliveries and their attempts: pending ones are thereby cancelled.
///
/// The webhook goes first: that waits for every transaction still queueing a delivery for it
/// (they hold `FOR KEY SHARE`, see [`keep`]), so the deliveries deleted next include theirs.
pub async fn delete(client: &impl Db, account: &AccountId, id: &WebhookId) -> StoreResult<()> {
    let removed = client
        .execute(
            "DELETE FROM webhooks WHERE account_id = $1 AND id = $2",
            &[&account.as_str(), &id.as_str()],
        )
        .await
        .map_err(from_pg)?;
    if removed == 0 {
        return Err(StoreError::NotFound);
    }
    // Found by their keys (`delivery_keys_by_webhook`), which go with them (migration 0016).
    for sql in [
        "DELETE FROM attempts WHERE account_id = $1 AND delivery_id IN
         (SELECT delivery_id FROM delivery_keys WHERE account_id = $1 AND webhook_id = $2)",
        "DELETE FROM deliveries WHERE account_id = $1 AND id IN
         (SELECT delivery_id FROM delivery_keys WHERE account_id = $1 AND webhook_id = $2)",
    ] {
        client
            .execute(sql, &[&account.as_str(), &id.as_str()])
            .await
            .map_err(from_pg)?;
    }
    Ok(())
}

pub async fn secrets(
    client: &impl Db,
    account: &AccountId,
    id: &WebhookId,
    cipher: &SecretCipher,
) -> StoreResult<WebhookSecrets> {
    let row = client
        .query_opt(
            "SELECT secret, previous_secrets FROM webhooks WHERE account_id = $1 AND id = $2",
            &[&account.as_str(), &id.as_str()],
        )
        .await
        .map_err(from_pg)?
        .ok_or(StoreError::NotFound)?;
    Ok(WebhookSecrets {
        current: rows::secret(&row, 0, cipher, id.as_str())?,
        previous: rows::previous_secrets(&row, 1, cipher, id.as_str())?,
    })
}

/// Makes `secret` current. The one it replaces signs until `previous_expires_at`, beside those
/// rotated out before that still sign (at most `MAX_PREVIOUS_SECRETS`; see
/// `reward_core::rotation`). Stored forms are kept as they are: nothing is opened to rotate.
pub async fn rotate_secret(
    client: &impl Db,
    account: &AccountId,
    id: &WebhookId,
    rotation: &Rotation<'_>,
    cipher: &SecretCipher,
) -> StoreResult<WebhookSecrets> {
    let Rotation {
        secret,
        previous_expires_at,
        replaces,
    } = *rotation;
    // Locked: two rotations at once must each keep the secret the other rotated out.
    let row = client
        .query_opt(
            "SELECT secret, previous_secrets FROM webhooks WHERE account_id = $1 AND id = $2
             FOR NO KEY UPDATE",
            &[&account.as_str(), &id.as_str()],
        )
        .await
        .map_err(from_pg)?
        .ok_or(StoreError::NotFound)?;
    let stored_current: String = rows::get(&row, 0)?;
    if let Some(replaces) = replaces {
        // Checked where the rotation happens (the single writer here; the row lock on
        // PostgreSQL), so two rotations naming one secret cannot both pass.
        if cipher.open(id.as_str(), &stored_current)?.version() != replaces {
            return Err(StoreError::SecretChanged);
        }
    }
    let now = Timestamp::now();
    let rotated_out = Retired {
        secret: stored_current,
        expires_at: previous_expires_at,
    };
    let previous = previous_from_stored(id.as_str(), rows::get(&row, 1)?)?;
    let previous = previous_to_stored(&after_rotation(rotated_out, &previous, now));
    let sealed = cipher.seal(id.as_str(), secret);
    client
        .execute(
            "UPDATE webhooks SET secret = $3, previous_secrets = $4, updated_at = $5
             WHERE account_id = $1 AND id = $2",
            &[
                &account.as_str(),
                &id.as_str(),
                &sealed,
                &previous,
                &now.as_millis(),
            ],
        )
        .await
        .map_err(from_pg)?;
    Ok(WebhookSecrets {
        current: secret.clone(),
        previous: cipher.open_previous(id.as_str(), &previous)?,
    })
}

/// An enabled webhook that receives an event, with where and how to send when asked for.
pub struct Subscriber {
    pub id: WebhookId,
    pub target: Option<DeliveryTarget>,
    pub ordering: Ordering,
}

/// The enabled webhooks of an account that receive `event` (its type selected in SQL, their
/// filter matched here: [`rules::receives`]), kept from deletion until the transaction ends (see
/// [`keep`]). Only the rows of webhooks selecting the type are locked, so events of one type never
/// wait on webhooks of another. With `cipher`, also each one's URL, opened secrets and headers
/// (for handing new deliveries straight to the worker), except for those left for claiming (see
/// [`handing_off`]).
pub async fn subscribed(
    client: &impl Db,
    account: &AccountId,
    event: &NewEvent,
    cipher: Option<&SecretCipher>,
) -> StoreResult<Vec<Subscriber>> {
    let found = client
        .query(
            "SELECT id, events, filter, url, secret, previous_secrets, headers,
                    rate_limit IS NOT NULL, ordering
             FROM webhooks
             WHERE account_id = $1 AND enabled AND (events::jsonb ? $2 OR events::jsonb ? '*')
             FOR KEY SHARE",
            &[&account.as_str(), &event.event_type.as_str()],
        )
        .await
        .map_err(from_pg)?;
    let mut matching = rules::EventForMatching::new(event);
    let mut subscribers = Vec::with_capacity(found.len());
    for row in &found {
        let subscription = Subscription {
            events: rows::event_types(row, 1)?,
            filter: rows::filter(row, 2)?,
        };
        if !rules::receives(&subscription, &mut matching) {
            continue;
        }
        let id: &str = rows::get(row, 0)?;
        let ordering = ordering_of(row, 8)?;
        // A `per_user` webhook's deliveries are not handed off: most wait their turn (see
        // `outbox::queue`), and the event may get its place only after this lookup.
        subscribers.push(Subscriber {
            id: WebhookId::from_trusted(id.to_owned()),
            target: target_from_row(
                row,
                3,
                handing_off(row, 7, ordering.is_per_user(), cipher)?,
                id,
            )?,
            ordering,
        });
    }
    Ok(subscribers)
}

/// The cipher to load a hand-off's target with: none for a rate-limited webhook (column `limited`
/// is `rate_limit IS NOT NULL`), whose deliveries are left for claiming, which grants start slots,
/// nor for `ordered` deliveries, which a claim takes when their turn has come.
pub fn handing_off<'a>(
    row: &Row,
    limited: usize,
    ordered: bool,
    cipher: Option<&'a SecretCipher>,
) -> StoreResult<Option<&'a SecretCipher>> {
    let rate_limited: bool = rows::get(row, limited)?;
    Ok(cipher.filter(|_| !rate_limited && !ordered))
}

/// A webhook's ordering, from its column.
pub fn ordering_of(row: &Row, index: usize) -> StoreResult<Ordering> {
    Ok(Ordering::from_trusted(rows::get::<&str>(row, index)?))
}

/// With `cipher`, a webhook's URL, opened secrets and headers, from the columns `url, secret,
/// previous_secrets, headers` starting at `first`: what a hand-off needs.
pub fn target_from_row(
    row: &Row,
    first: usize,
    cipher: Option<&SecretCipher>,
    webhook_id: &str,
) -> StoreResult<Option<DeliveryTarget>> {
    let Some(cipher) = cipher else {
        return Ok(None);
    };
    Ok(Some(DeliveryTarget {
        url: rows::webhook_url(row, first)?,
        secrets: WebhookSecrets {
            current: rows::secret(row, first + 1, cipher, webhook_id)?,
            previous: rows::previous_secrets(row, first + 2, cipher, webhook_id)?,
        },
        headers: rows::headers(row, first + 3, cipher, webhook_id)?,
    }))
}
