//! Webhooks and their secrets.

use reward_core::endpoint::Ordering;
use reward_core::event::NewEvent;
use reward_core::ids::{AccountId, WebhookId};
use reward_core::names::Name;
use reward_core::rotation::{after_rotation, Retired};
use reward_core::signing::WebhookSecret;
use reward_core::time::Timestamp;
use reward_store::columns::{self, event_types_json};
use reward_store::paging::{fetch_limit, id_cursor, page_of};
pub use reward_store::records::Rotation;
use reward_store::records::{
    DeliveryTarget, NewWebhook, Page, PageRequest, Webhook, WebhookPatch, WebhookSecrets,
    WebhookSettings,
};
use reward_store::rules;
use reward_store::secrets::{previous_from_stored, previous_to_stored, SecretCipher};
use reward_store::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::errors::from_sqlite;
use crate::rows;
use crate::subscriptions;

const COLUMNS: &str = "id, name, url, events, enabled, disabled_reason, created_at, updated_at,
     filter, headers, description, metadata, rate_limit, ordering";

fn from_row(row: &Row, cipher: &SecretCipher) -> rusqlite::Result<Webhook> {
    let id: String = row.get(0)?;
    Ok(Webhook {
        name: Name::from_trusted(row.get(1)?),
        url: rows::webhook_url(row, 2)?,
        events: rows::event_types(row, 3)?,
        enabled: row.get(4)?,
        disabled_reason: row.get(5)?,
        created_at: rows::timestamp(row, 6)?,
        updated_at: rows::timestamp(row, 7)?,
        settings: rows::webhook_settings(row, 8, cipher, &id)?,
        id: WebhookId::from_trusted(id),
    })
}

/// The settings' columns as written: `filter, headers, description, metadata, rate_limit`
/// (`ordering` is written from its name).
fn settings_columns(
    id: &WebhookId,
    settings: &WebhookSettings,
    cipher: &SecretCipher,
) -> (Option<String>, String, Option<String>, String, Option<i64>) {
    (
        columns::filter_column(settings.filter.as_ref()),
        columns::headers_column(cipher, id.as_str(), &settings.headers),
        settings
            .description
            .as_ref()
            .map(|description| description.as_str().to_owned()),
        columns::metadata_column(&settings.metadata),
        columns::rate_limit_column(settings.rate_limit),
    )
}

pub fn create(
    connection: &Connection,
    account: &AccountId,
    new: &NewWebhook,
    cipher: &SecretCipher,
) -> StoreResult<Webhook> {
    let now = Timestamp::now();
    let webhook = rules::new_webhook(new, now);
    let (filter, headers, description, metadata, rate_limit) =
        settings_columns(&webhook.id, &webhook.settings, cipher);
    connection
        .prepare_cached(
            "INSERT INTO webhooks (account_id, id, name, url, events, enabled, secret, created_at, updated_at,
             filter, headers, description, metadata, rate_limit, ordering)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                webhook.id.as_str(),
                webhook.name.as_str(),
                webhook.url.as_str(),
                event_types_json(&webhook.events),
                webhook.enabled,
                cipher.seal(webhook.id.as_str(), &new.secret),
                now.as_millis(),
                filter,
                headers,
                description,
                metadata,
                rate_limit,
                webhook.settings.ordering.as_str(),
            ])
        })
        .map_err(from_sqlite)?;
    Ok(webhook)
}

pub fn list(
    connection: &Connection,
    account: &AccountId,
    page: &PageRequest,
    cipher: &SecretCipher,
) -> StoreResult<Page<Webhook>> {
    let after = id_cursor::<WebhookId>(page)?;
    let sql = format!(
        "SELECT {COLUMNS} FROM webhooks WHERE account_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
    );
    let mut statement = connection.prepare_cached(&sql).map_err(from_sqlite)?;
    let found = statement
        .query_map(
            params![account.as_str(), after, fetch_limit(page.limit)],
            |row| from_row(row, cipher),
        )
        .and_then(Iterator::collect)
        .map_err(from_sqlite)?;
    Ok(page_of(found, page.limit, |webhook: &Webhook| {
        webhook.id.to_string()
    }))
}

pub fn get(
    connection: &Connection,
    account: &AccountId,
    id: &WebhookId,
    cipher: &SecretCipher,
) -> StoreResult<Webhook> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE account_id = ?1 AND id = ?2");
    connection
        .prepare_cached(&sql)
        .and_then(|mut statement| {
            statement
                .query_row(params![account.as_str(), id.as_str()], |row| {
                    from_row(row, cipher)
                })
                .optional()
        })
        .map_err(from_sqlite)?
        .ok_or(StoreError::NotFound)
}

/// `NotFound` unless the account has this webhook.
/// Whether the account's webhook is enabled; `None` when the account has no such webhook.
pub fn enabled(
    connection: &Connection,
    account: &AccountId,
    id: &WebhookId,
) -> StoreResult<Option<bool>> {
    connection
        .prepare_cached("SELECT enabled FROM webhooks WHERE account_id = ?1 AND id = ?2")
        .and_then(|mut statement| {
            statement
                .query_row(params![account.as_str(), id.as_str()], |row| row.get(0))
                .optional()
        })
        .map_err(from_sqlite)
}

pub fn ensure_exists(
    connection: &Connection,
    account: &AccountId,
    id: &WebhookId,
) -> StoreResult<()> {
    connection
        .prepare_cached("SELECT 1 FROM webhooks WHERE account_id = ?1 AND id = ?2")
        .and_then(|mut statement| {
            statement
                .query_row(params![account.as_str(), id.as_str()], |_| Ok(()))
                .optional()
        })
        .map_err(from_sqlite)?
        .ok_or(StoreError::NotFound)
}

pub fn update(
    connection: &Connection,
    account: &AccountId,
    id: &WebhookId,
    patch: &WebhookPatch,
    cipher: &SecretCipher,
) -> StoreResult<Webhook> {
    let stored = get(connection, account, id, cipher)?;
    let before = stored.settings.ordering;
    let webhook = rules::patched(stored, patch, Timestamp::now());
    let (filter, headers, description, metadata, rate_limit) =
        settings_columns(&webhook.id, &webhook.settings, cipher);
    connection
        .prepare_cached(
            "UPDATE webhooks SET name = ?3, url = ?4, events = ?5, enabled = ?6, disabled_reason = ?7,
             updated_at = ?8, filter = ?9, headers = ?10, description = ?11, metadata = ?12,
             rate_limit = ?13, ordering = ?14
             WHERE account_id = ?1 AND id = ?2",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                id.as_str(),
                webhook.name.as_str(),
                webhook.url.as_str(),
                event_types_json(&webhook.events),
                webhook.enabled,
                webhook.disabled_reason,
                webhook.updated_at.as_millis(),
                filter,
                headers,
                description,
                metadata,
                rate_limit,
                webhook.settings.ordering.as_str(),
            ])
        })
        .map_err(from_sqlite)?;
    if let Some(ordering) = rules::reordering(before, webhook.settings.ordering) {
        crate::ordering::reorder_pending(connection, account, id, ordering)?;
    }
    Ok(webhook)
}

/// Deletes the webhook and the first [`DELETE_CHUNK`] of its deliveries (pending ones are thereby
/// cancelled); the caller deletes the rest with [`delete_deliveries_chunk`], one transaction per
/// chunk. One transaction for all of them would hold every deleted page in memory until it
/// commits: hundreds of MiB for a webhook with a million deliveries.
pub fn delete(connection: &Connection, account: &AccountId, id: &WebhookId) -> StoreResult<usize> {
    let removed = connection
        .prepare_cached("DELETE FROM webhooks WHERE account_id = ?1 AND id = ?2")
        .and_then(|mut statement| statement.execute(params![account.as_str(), id.as_str()]))
        .map_err(from_sqlite)?;
    if removed == 0 {
        return Err(StoreError::NotFound);
    }
    connection
        .prepare_cached(
            "INSERT OR IGNORE INTO webhook_deletions (account_id, webhook_id) VALUES (?1, ?2)",
        )
        .and_then(|mut statement| statement.execute(params![account.as_str(), id.as_str()]))
        .map_err(from_sqlite)?;
    delete_deliveries_chunk(connection, account, id)
}

/// Deliveries deleted per transaction when a webhook goes.
pub const DELETE_CHUNK: usize = 2_000;

/// Deletes up to [`DELETE_CHUNK`] deliveries of a (deleted) webhook with their attempts; returns
/// how many deliveries went.
pub fn delete_deliveries_chunk(
    connection: &Connection,
    account: &AccountId,
    webhook: &WebhookId,
) -> StoreResult<usize> {
    let ids: Vec<String> = connection
        .prepare_cached(
            "SELECT id FROM deliveries WHERE account_id = ?1 AND webhook_id = ?2 LIMIT ?3",
        )
        .and_then(|mut statement| {
            statement
                .query_map(
                    params![account.as_str(), webhook.as_str(), DELETE_CHUNK as i64],
                    |row| row.get(0),
                )?
                .collect()
        })
        .map_err(from_sqlite)?;
    crate::deliveries::delete_with_attempts(connection, account.as_str(), &ids)?;
    if ids.len() < DELETE_CHUNK {
        connection
            .prepare_cached(
                "DELETE FROM webhook_deletions WHERE account_id = ?1 AND webhook_id = ?2",
            )
            .and_then(|mut statement| {
                statement.execute(params![account.as_str(), webhook.as_str()])
            })
            .map_err(from_sqlite)?;
    }
    Ok(ids.len())
}

/// Deletes a chunk of the deliveries of the first unfinished webhook deletion (one a crash cut
/// short); returns how many went.
pub fn finish_a_deletion(connection: &Connection) -> StoreResult<usize> {
    let pending: Option<(String, String)> = connection
        .prepare_cached("SELECT account_id, webhook_id FROM webhook_deletions LIMIT 1")
        .and_then(|mut statement| {
            statement
                .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(from_sqlite)?;
    match pending {
        None => Ok(0),
        Some((account, webhook)) => delete_deliveries_chunk(
            connection,
            &AccountId::from_trusted(account),
            &WebhookId::from_trusted(webhook),
        )
        // The row itself counts, so the caller comes back until it is gone.
        .map(|deleted| deleted.max(1)),
    }
}

pub fn secrets(
    connection: &Connection,
    account: &AccountId,
    id: &WebhookId,
    cipher: &SecretCipher,
) -> StoreResult<WebhookSecrets> {
    connection
        .prepare_cached(
            "SELECT secret, previous_secrets FROM webhooks WHERE account_id = ?1 AND id = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![account.as_str(), id.as_str()], |row| {
                    rows::webhook_secrets(row, 0, cipher, id.as_str())
                })
                .optional()
        })
        .map_err(from_sqlite)?
        .ok_or(StoreError::NotFound)
}

/// Makes `secret` current. The one it replaces signs until `previous_expires_at`, beside those
/// rotated out before that still sign (at most `MAX_PREVIOUS_SECRETS`; see
/// `reward_core::rotation`). Stored forms are kept as they are: nothing is opened to rotate.
pub fn rotate_secret(
    connection: &Connection,
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
    let (stored_current, stored_previous): (String, String) = connection
        .prepare_cached(
            "SELECT secret, previous_secrets FROM webhooks WHERE account_id = ?1 AND id = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![account.as_str(), id.as_str()], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()
        })
        .map_err(from_sqlite)?
        .ok_or(StoreError::NotFound)?;
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
    let previous = previous_from_stored(id.as_str(), &stored_previous)?;
    let previous = previous_to_stored(&after_rotation(rotated_out, &previous, now));
    connection
        .prepare_cached(
            "UPDATE webhooks SET secret = ?3, previous_secrets = ?4, updated_at = ?5
             WHERE account_id = ?1 AND id = ?2",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                account.as_str(),
                id.as_str(),
                cipher.seal(id.as_str(), secret),
                previous,
                now.as_millis(),
            ])
        })
        .map_err(from_sqlite)?;
    secrets(connection, account, id, cipher)
}

/// An enabled webhook that receives an event, with where and how to send when asked for.
pub struct Subscriber {
    pub id: WebhookId,
    pub target: Option<DeliveryTarget>,
    pub ordering: Ordering,
}

/// The enabled webhooks of an account that receive `event` (its type selected, their filter
/// matching: [`rules::receives`]); with `cipher`, also each one's URL, opened secrets and headers
/// (for handing new deliveries straight to the worker), except for rate-limited webhooks and
/// deliveries that wait their turn ([`rules::delivery_order`]).
pub fn subscribed(
    connection: &Connection,
    account: &AccountId,
    event: &NewEvent,
    cipher: Option<&SecretCipher>,
) -> StoreResult<Vec<Subscriber>> {
    let webhooks = subscriptions::enabled(connection, account)?;
    let mut matching = rules::EventForMatching::new(event);
    let mut subscribers = Vec::new();
    for webhook in webhooks.iter() {
        if !rules::receives(&webhook.subscription, &mut matching) {
            continue;
        }
        // A rate-limited webhook's deliveries are left for claiming, which grants start slots;
        // so is an ordered one's: a claim decides when its turn has come.
        let ordered = rules::delivery_order(webhook.ordering, event).is_some();
        let target = match cipher {
            None => None,
            Some(_) if webhook.rate_limited || ordered => None,
            Some(cipher) => Some(webhook.target(cipher)?),
        };
        subscribers.push(Subscriber {
            id: webhook.id.clone(),
            target,
            ordering: webhook.ordering,
        });
    }
    Ok(subscribers)
}

/// Seals the secrets still stored plain (rows written before secrets were encrypted); run when
/// the store opens, since only then is the key at hand. Returns how many webhooks it sealed.
pub fn seal_plain_secrets(
    connection: &Connection,
    cipher: &SecretCipher,
) -> rusqlite::Result<usize> {
    if !cipher.has_key() {
        return Ok(0);
    }
    // A plain secret is `whsec_...`; a sealed one's base64 never holds `"whsec_`.
    let plain: Vec<(String, String, String, String)> = connection
        .prepare(
            "SELECT account_id, id, secret, previous_secrets FROM webhooks
             WHERE secret NOT LIKE 'enc:v1:%' OR previous_secrets LIKE '%\"whsec%'",
        )?
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut update = connection.prepare(
        "UPDATE webhooks SET secret = ?3, previous_secrets = ?4 WHERE account_id = ?1 AND id = ?2",
    )?;
    let invalid = |error: StoreError| rusqlite::Error::InvalidParameterName(error.to_string());
    let reseal = |id: &str, stored: &str| -> rusqlite::Result<String> {
        if !SecretCipher::is_plain(stored) {
            return Ok(stored.to_owned());
        }
        let secret = WebhookSecret::parse(stored).map_err(|_| {
            rusqlite::Error::InvalidParameterName(format!(
                "webhook {id}: stored secret is not valid"
            ))
        })?;
        Ok(cipher.seal(id, &secret))
    };
    for (account_id, id, secret, previous) in &plain {
        let secret = reseal(id, secret)?;
        let previous = cipher
            .seal_plain_previous(id, previous)
            .map_err(invalid)?
            .unwrap_or_else(|| previous.clone());
        update.execute(params![account_id, id, secret, previous])?;
    }
    if !plain.is_empty() {
        // The plain text would linger in freed page space and in the write-ahead log: rewrite
        // the file and empty the log, once, so the file alone no longer holds it.
        drop(update);
        connection.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
    }
    Ok(plain.len())
}
