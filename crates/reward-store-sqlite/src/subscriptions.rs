//! Each account's enabled webhooks as the writer last read them: what an event needs to find its
//! subscribers (event types, filter, ordering, rate limit) parsed once, and the URL, secrets and
//! headers opened once, instead of read and parsed again for every event recorded on the single
//! writer thread.
//!
//! The memory belongs to the writer thread ([`remember_on_writer`]); on any other thread (a
//! test's connection) every call reads the table. What is remembered is forgotten whenever it
//! could be wrong:
//! - a change to a column it holds, through the writer's connection: temporary triggers on
//!   `webhooks` call [`FORGET_FUNCTION`], whichever statement made the change;
//! - a rollback of the writer's transaction (what was read inside it may never have been
//!   committed);
//! - a commit by another connection (an operator's `sqlite3` shell, a second process): each read
//!   first compares `PRAGMA data_version`.
//!
//! A column that [`read_enabled`] starts reading must be added to the triggers' `UPDATE OF` list.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use reward_core::endpoint::Ordering;
use reward_core::ids::{AccountId, WebhookId};
use reward_core::names::WebhookUrl;
use reward_store::columns;
use reward_store::records::{DeliveryTarget, Subscription, WebhookSecrets};
use reward_store::secrets::SecretCipher;
use reward_store::StoreResult;
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, Row};

use crate::errors::from_sqlite;
use crate::rows;

/// The SQL function the triggers call; registered on the writer's connection only.
const FORGET_FUNCTION: &str = "reward_forget_subscriptions";

/// Accounts remembered at most; past it, everything is forgotten and read again (bounds memory).
const ACCOUNTS_REMEMBERED: usize = 4096;

/// One enabled webhook, as a new event's delivery needs it.
pub struct EnabledWebhook {
    pub id: WebhookId,
    pub subscription: Subscription,
    pub rate_limited: bool,
    pub ordering: Ordering,
    url: WebhookUrl,
    sealed_secret: String,
    sealed_previous: String,
    sealed_headers: String,
    target: OnceCell<DeliveryTarget>,
}

impl EnabledWebhook {
    fn from_row(row: &Row) -> rusqlite::Result<Self> {
        Ok(Self {
            id: WebhookId::from_trusted(row.get(0)?),
            subscription: Subscription {
                events: rows::event_types(row, 1)?,
                filter: rows::filter(row, 2)?,
            },
            url: rows::webhook_url(row, 3)?,
            sealed_secret: row.get(4)?,
            sealed_previous: row.get(5)?,
            sealed_headers: row.get(6)?,
            rate_limited: row.get(7)?,
            ordering: Ordering::from_trusted(&row.get::<_, String>(8)?),
            target: OnceCell::new(),
        })
    }

    /// Its URL, opened secrets and headers (opened on first use; the store has one cipher).
    pub fn target(&self, cipher: &SecretCipher) -> StoreResult<DeliveryTarget> {
        if let Some(target) = self.target.get() {
            return Ok(target.clone());
        }
        let id = self.id.as_str();
        let target = DeliveryTarget {
            url: self.url.clone(),
            secrets: WebhookSecrets {
                current: cipher.open(id, &self.sealed_secret)?,
                previous: cipher.open_previous(id, &self.sealed_previous)?,
            },
            headers: columns::headers_from_column(cipher, id, &self.sealed_headers)?,
        };
        Ok(self.target.get_or_init(|| target).clone())
    }
}

/// What the writer thread remembers.
#[derive(Default)]
struct Memory {
    /// `PRAGMA data_version` when the accounts below were read.
    data_version: Option<i64>,
    accounts: HashMap<String, Rc<[EnabledWebhook]>>,
}

thread_local! {
    /// `Some` on the writer thread only.
    static MEMORY: RefCell<Option<Memory>> = const { RefCell::new(None) };
}

/// Makes the calling thread (the writer's) remember accounts' webhooks read through
/// `connection`, and has `connection` tell it of every change that could make them wrong.
pub fn remember_on_writer(connection: &Connection) -> rusqlite::Result<()> {
    connection.create_scalar_function(FORGET_FUNCTION, 0, FunctionFlags::SQLITE_UTF8, |_| {
        forget();
        Ok(0)
    })?;
    // Temporary: the writer's connection alone has them; nothing is stored in the file.
    connection.execute_batch(&format!(
        "CREATE TEMP TRIGGER IF NOT EXISTS reward_webhook_added AFTER INSERT ON main.webhooks
         BEGIN SELECT {FORGET_FUNCTION}(); END;
         CREATE TEMP TRIGGER IF NOT EXISTS reward_webhook_removed AFTER DELETE ON main.webhooks
         BEGIN SELECT {FORGET_FUNCTION}(); END;
         CREATE TEMP TRIGGER IF NOT EXISTS reward_webhook_changed
         AFTER UPDATE OF account_id, id, events, enabled, filter, url, secret, previous_secrets,
                         headers, rate_limit, ordering ON main.webhooks
         BEGIN SELECT {FORGET_FUNCTION}(); END;"
    ))?;
    connection.rollback_hook(Some(forget));
    MEMORY.with(|memory| *memory.borrow_mut() = Some(Memory::default()));
    Ok(())
}

fn forget() {
    MEMORY.with(|memory| {
        if let Some(memory) = memory.borrow_mut().as_mut() {
            memory.accounts.clear();
        }
    });
}

/// The account's enabled webhooks: remembered on the writer thread, read otherwise.
pub fn enabled(connection: &Connection, account: &AccountId) -> StoreResult<Rc<[EnabledWebhook]>> {
    let remembering = MEMORY.with(|memory| memory.borrow().is_some());
    if !remembering {
        return read_enabled(connection, account);
    }
    let data_version: i64 = connection
        .prepare_cached("PRAGMA data_version")
        .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
        .map_err(from_sqlite)?;
    let remembered = MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let memory = memory.as_mut()?;
        if memory.data_version != Some(data_version) {
            memory.accounts.clear();
            memory.data_version = Some(data_version);
        }
        memory.accounts.get(account.as_str()).cloned()
    });
    if let Some(webhooks) = remembered {
        return Ok(webhooks);
    }
    let webhooks = read_enabled(connection, account)?;
    MEMORY.with(|memory| {
        if let Some(memory) = memory.borrow_mut().as_mut() {
            if memory.accounts.len() >= ACCOUNTS_REMEMBERED {
                memory.accounts.clear();
            }
            memory
                .accounts
                .insert(account.as_str().to_owned(), Rc::clone(&webhooks));
        }
    });
    Ok(webhooks)
}

fn read_enabled(connection: &Connection, account: &AccountId) -> StoreResult<Rc<[EnabledWebhook]>> {
    connection
        .prepare_cached(
            "SELECT id, events, filter, url, secret, previous_secrets, headers,
                    rate_limit IS NOT NULL, ordering
             FROM webhooks WHERE account_id = ?1 AND enabled = 1",
        )
        .and_then(|mut statement| {
            statement
                .query_map([account.as_str()], EnabledWebhook::from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map(Rc::from)
        .map_err(from_sqlite)
}

#[cfg(test)]
mod tests {
    use reward_store::records::WebhookSettings;

    use super::*;
    use crate::test_fixtures;

    struct Database {
        _folder: tempfile::TempDir,
        path: std::path::PathBuf,
        writer: Connection,
        account: AccountId,
        cipher: SecretCipher,
    }

    /// A migrated file with one account, its writer connection remembering on this thread.
    fn database() -> Database {
        let folder = tempfile::tempdir().expect("folder");
        let path = folder.path().join("reward.db");
        let mut writer = crate::connection::open_writer(&path).expect("open");
        crate::migrations::migrate(&mut writer).expect("migrate");
        let account = test_fixtures::add_account(&writer);
        remember_on_writer(&writer).expect("remember");
        Database {
            _folder: folder,
            path,
            writer,
            account,
            cipher: SecretCipher::new([7; 32]),
        }
    }

    impl Database {
        fn add_webhook(&self) -> WebhookId {
            let settings = WebhookSettings::default();
            test_fixtures::add_webhook(&self.writer, &self.account, settings, &self.cipher)
        }

        fn enabled(&self) -> Rc<[EnabledWebhook]> {
            enabled(&self.writer, &self.account).expect("enabled webhooks")
        }

        fn ids(&self) -> Vec<String> {
            self.enabled().iter().map(|w| w.id.to_string()).collect()
        }

        fn change(&self, sql: &str) {
            self.writer.execute_batch(sql).expect("change");
        }
    }

    #[test]
    fn what_is_read_once_is_remembered_until_a_column_it_holds_changes() {
        let database = database();
        let first = database.add_webhook();
        let read = database.enabled();
        assert!(Rc::ptr_eq(&read, &database.enabled()), "read again");
        // `updated_at` is not held: still remembered.
        database.change("UPDATE webhooks SET updated_at = updated_at + 1");
        assert!(Rc::ptr_eq(&read, &database.enabled()), "forgotten");

        let second = database.add_webhook();
        assert_eq!(database.ids(), [first.to_string(), second.to_string()]);
        database.change(&format!(
            "UPDATE webhooks SET url = 'https://example.com/moved' WHERE id = '{first}'"
        ));
        let moved = database.enabled()[0]
            .target(&database.cipher)
            .expect("target");
        assert_eq!(moved.url.as_str(), "https://example.com/moved");
        database.change(&format!(
            "UPDATE webhooks SET enabled = 0 WHERE id = '{first}'"
        ));
        assert_eq!(database.ids(), [second.to_string()]);
        database.change(&format!("DELETE FROM webhooks WHERE id = '{second}'"));
        assert!(database.ids().is_empty());
    }

    #[test]
    fn a_change_rolled_back_is_forgotten_with_what_was_read_after_it() {
        let database = database();
        let webhook = database.add_webhook();
        database.change(&format!(
            "BEGIN; UPDATE webhooks SET enabled = 0 WHERE id = '{webhook}'"
        ));
        assert!(database.ids().is_empty(), "read inside the transaction");
        database.change("ROLLBACK");
        assert_eq!(database.ids(), [webhook.to_string()]);
    }

    #[test]
    fn a_commit_by_another_connection_is_seen() {
        let database = database();
        let webhook = database.add_webhook();
        assert_eq!(database.ids(), [webhook.to_string()]);
        let other = Connection::open(&database.path).expect("another connection");
        other
            .execute("UPDATE webhooks SET enabled = 0", [])
            .expect("disable");
        assert!(database.ids().is_empty());
    }

    #[test]
    fn another_thread_reads_the_table_every_time() {
        let database = database();
        database.add_webhook();
        let (path, account) = (database.path.clone(), database.account.clone());
        std::thread::spawn(move || {
            let reader = crate::connection::open_reader(&path).expect("reader");
            let first = enabled(&reader, &account).expect("read");
            let second = enabled(&reader, &account).expect("read");
            assert_eq!(first.len(), 1);
            assert!(!Rc::ptr_eq(&first, &second), "remembered off the writer");
        })
        .join()
        .expect("the other thread's reads");
    }
}
