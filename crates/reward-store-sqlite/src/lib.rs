//! The embedded SQLite store: Reward's default.
//!
//! - [`writer`]: one writing connection on its own thread, committing jobs in groups.
//! - [`readers`]: read-only connections for queries, which WAL lets run beside the writer.
//! - [`migrations`]: the schema, applied on open.
//! - one module per resource (`accounts`, `webhooks`, `deliveries`, `events`, `rewards`) holds its
//!   SQL; [`outbox`] writes events and their deliveries inside the caller's transaction;
//!   `sessions` holds the dashboard's sign-ins and its attempt statistics.
//! - [`export`]: the whole database read out, locked against a server, for `reward copy`.

mod accounts;
pub mod backup;
mod connection;
mod deliveries;
mod disabling;
mod errors;
mod events;
pub mod export;
mod idempotent;
mod migrations;
pub use migrations::MigrateError;
mod ordering;
mod outbox;
mod queue;
mod readers;
mod retention;
mod rewards;
mod rollups;
mod rows;
mod search;
mod sessions;
mod subscriptions;
#[cfg(test)]
mod test_fixtures;
mod webhooks;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reward_core::event::NewEvent;
use reward_core::ids::{AccountId, ApiKeyId, DeliveryId, EventId, WebhookId};
use reward_core::names::{IdempotencyKey, Name, TriggerId, UserId};
use reward_core::signing::WebhookSecret;
use reward_core::stats::StatsPeriod;
use reward_core::time::Timestamp;
use reward_store::handoff::{Handoff, HandoffSlot, Outbox};
use reward_store::idempotent::{Reservation, StoredResponse};
use reward_store::records::*;
use reward_store::refills::RefillHorizon;
use reward_store::rules;
use reward_store::secrets::SecretCipher;
use reward_store::{
    Accounts, DeliveryQueue, EventLog, Housekeeping, IdempotentRequests, Rewards, Sessions,
    StoreError, StoreResult, Webhooks,
};
use thiserror::Error;
use tokio::sync::Notify;

pub use connection::path_from_url;

use readers::Readers;
use writer::Writer;

/// Read connections kept open.
const READERS: usize = 4;
/// Waiting deliveries the upkeep's safety net schedules per run at most.
const SCHEDULE_WAITING_BATCH: u32 = 1_000;

#[derive(Debug, Error)]
pub enum OpenError {
    // `cause`, not `source`: each message says it already, and a `source` would be printed a
    // second time by the command line's error chain.
    #[error("cannot create the database folder {path}: {cause}")]
    CreateFolder {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot open the database {path}: {cause}")]
    Open {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    #[error("cannot migrate the database {path}: {cause}")]
    Migrate {
        path: PathBuf,
        cause: migrations::MigrateError,
    },
    #[error("cannot start the database writer: {0}")]
    Writer(std::io::Error),
    #[error("cannot read the secret key: {0}")]
    Key(String),
}

pub struct SqliteStore {
    /// Seals webhook secrets at rest.
    cipher: SecretCipher,
    writer: Writer,
    readers: Readers,
    /// Woken when a change may have made a delivery due, so an idle worker starts at once instead
    /// of polling.
    work: Arc<Notify>,
    /// Set once this process's worker takes new deliveries directly (see [`Handoff`]).
    handoff: HandoffSlot,
    /// The refill horizon of this process's latest claim.
    refill_horizon: RefillHorizon,
    /// Where the next clearing of attempts' bodies resumes (see `retention`).
    bodies_resume_at: std::sync::Mutex<Option<retention::BodiesCursor>>,
}

impl SqliteStore {
    /// Opens (creating the file and its folder when missing) and migrates the database, without
    /// a secret key: for tools that never touch webhook secrets (`reward accounts`, `migrate`).
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_inner(path, SecretCipher::plaintext())
    }

    /// Like [`Self::open`], sealing webhook secrets with `cipher` (from `REWARD_SECRET_KEY`) when
    /// given, else with the key file beside the database (created, mode 0600, when missing).
    /// Secrets still stored plain are sealed now.
    pub fn open_sealed(path: &Path, cipher: Option<SecretCipher>) -> Result<Self, OpenError> {
        // The key file goes beside the database, so its folder must exist first.
        create_folder_of(path)?;
        let cipher = match cipher {
            Some(cipher) => cipher,
            None => SecretCipher::load_or_create_key_file(&SecretCipher::key_file_beside(path))
                .map_err(OpenError::Key)?,
        };
        Self::open_inner(path, cipher)
    }

    fn open_inner(path: &Path, cipher: SecretCipher) -> Result<Self, OpenError> {
        create_folder_of(path)?;
        let mut connection = connection::open_writer(path).map_err(|cause| OpenError::Open {
            path: path.to_owned(),
            cause,
        })?;
        migrations::migrate(&mut connection).map_err(|cause| OpenError::Migrate {
            path: path.to_owned(),
            cause,
        })?;
        // A migration cannot seal secrets stored before encryption (SQL has no key); opening with
        // one can. Without a key (tools) there is nothing to do.
        webhooks::seal_plain_secrets(&connection, &cipher).map_err(|cause| OpenError::Migrate {
            path: path.to_owned(),
            cause: cause.into(),
        })?;
        let writer = Writer::start(connection).map_err(OpenError::Writer)?;
        Ok(Self {
            cipher,
            writer,
            readers: Readers::new(path.to_owned(), READERS),
            work: Arc::new(Notify::new()),
            handoff: HandoffSlot::default(),
            refill_horizon: RefillHorizon::new(),
            bodies_resume_at: std::sync::Mutex::default(),
        })
    }

    /// After a committed write: hands its new deliveries to the worker, or wakes the worker to
    /// claim the ones left for claiming.
    fn deliver_committed<T>(&self, result: StoreResult<(T, Outbox)>) -> StoreResult<T> {
        let (value, outbox) = result?;
        if self.handoff.committed(outbox) {
            self.work.notify_one();
        }
        Ok(value)
    }

    /// The attempts, their deliveries' new states and their roll-ups, in one job; a webhook
    /// disabled on the way (410 Gone) emits `webhook.disabled`, handed off once committed. Ended
    /// ordered deliveries schedule their users' next ones, leased for `lease` when given.
    async fn record(
        &self,
        records: Vec<AttemptRecord>,
        lease: Option<Duration>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let (handoff, cipher) = (self.handoff.get().cloned(), self.cipher.clone());
        let result = self
            .writer
            .write(move |c| {
                let mut outbox = Outbox::new(handoff.as_deref(), &cipher);
                for record in &records {
                    queue::record_attempt(c, record, &mut outbox)?;
                }
                rollups::record(c, &records)?;
                let passed = queue::advance_turns(c, &records, lease, &cipher)?;
                Ok((passed, outbox))
            })
            .await;
        self.deliver_committed(result)
    }

    /// Where the next clearing of attempts' bodies resumes; a panic while it was held cannot
    /// leave it half written, so a poisoned lock is taken as it is.
    fn bodies_resume_lock(&self) -> std::sync::MutexGuard<'_, Option<retention::BodiesCursor>> {
        self.bodies_resume_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Passes a result through, waking the delivery worker when it succeeded.
    fn wake_on_success<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        if result.is_ok() {
            self.work.notify_one();
        }
        result
    }
}

/// Creates the folder a database file goes in, when missing.
fn create_folder_of(path: &Path) -> Result<(), OpenError> {
    match path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        Some(folder) => std::fs::create_dir_all(folder).map_err(|cause| OpenError::CreateFolder {
            path: folder.to_owned(),
            cause,
        }),
        None => Ok(()),
    }
}

/// Clones the arguments a job needs onto its thread.
macro_rules! owned {
    ($($name:ident),*) => { $(let $name = $name.clone();)* };
}

#[async_trait]
impl Accounts for SqliteStore {
    async fn create_account(&self, name: Name, key: NewApiKeyRecord) -> StoreResult<Account> {
        self.writer
            .write(move |c| accounts::create(c, &name, &key))
            .await
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        self.readers.read(accounts::list).await
    }

    async fn authenticate(&self, key_hash: &str) -> StoreResult<Option<AccountId>> {
        let key_hash = key_hash.to_owned();
        self.readers
            .read_point(move |c| accounts::authenticate(c, &key_hash))
            .await
    }

    async fn create_api_key(
        &self,
        account: &AccountId,
        key: NewApiKeyRecord,
    ) -> StoreResult<ApiKey> {
        owned!(account);
        self.writer
            .write(move |c| accounts::insert_key(c, &account, &key, Timestamp::now()))
            .await
    }

    async fn list_api_keys(&self, account: &AccountId) -> StoreResult<Vec<ApiKey>> {
        owned!(account);
        self.readers
            .read(move |c| accounts::list_keys(c, &account))
            .await
    }

    async fn revoke_api_key(&self, account: &AccountId, key: &ApiKeyId) -> StoreResult<()> {
        owned!(account, key);
        self.writer
            .write(move |c| accounts::revoke_key(c, &account, &key))
            .await
    }

    async fn touch_api_keys(&self, used: Vec<(String, Timestamp)>) -> StoreResult<()> {
        self.writer
            .write(move |c| accounts::touch_keys(c, &used))
            .await
    }
}

#[async_trait]
impl Sessions for SqliteStore {
    async fn start_session(
        &self,
        key_hash: &str,
        session: NewSession,
    ) -> StoreResult<Option<Session>> {
        let key_hash = key_hash.to_owned();
        self.writer
            .write(move |c| sessions::start(c, &key_hash, &session))
            .await
    }

    async fn find_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Session>> {
        let token_hash = token_hash.to_owned();
        self.readers
            .read(move |c| sessions::find(c, &token_hash, now))
            .await
    }

    async fn end_session(&self, token_hash: &str) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        self.writer
            .write(move |c| sessions::end(c, &token_hash))
            .await
    }
}

#[async_trait]
impl Webhooks for SqliteStore {
    async fn create_webhook(
        &self,
        account: &AccountId,
        webhook: NewWebhook,
    ) -> StoreResult<Webhook> {
        owned!(account);
        let cipher = self.cipher.clone();
        self.writer
            .write(move |c| webhooks::create(c, &account, &webhook, &cipher))
            .await
    }

    async fn list_webhooks(
        &self,
        account: &AccountId,
        page: PageRequest,
    ) -> StoreResult<Page<Webhook>> {
        owned!(account);
        let cipher = self.cipher.clone();
        self.readers
            .read(move |c| webhooks::list(c, &account, &page, &cipher))
            .await
    }

    async fn get_webhook(&self, account: &AccountId, id: &WebhookId) -> StoreResult<Webhook> {
        owned!(account, id);
        let cipher = self.cipher.clone();
        self.readers
            .read(move |c| webhooks::get(c, &account, &id, &cipher))
            .await
    }

    async fn update_webhook(
        &self,
        account: &AccountId,
        id: &WebhookId,
        patch: WebhookPatch,
    ) -> StoreResult<Webhook> {
        owned!(account, id);
        let cipher = self.cipher.clone();
        let result = self
            .writer
            .write(move |c| webhooks::update(c, &account, &id, &patch, &cipher))
            .await;
        self.wake_on_success(result)
    }

    async fn delete_webhook(&self, account: &AccountId, id: &WebhookId) -> StoreResult<()> {
        owned!(account, id);
        let mut deleted = {
            let (account, id) = (account.clone(), id.clone());
            self.writer
                .write(move |c| webhooks::delete(c, &account, &id))
                .await?
        };
        // The rest of its deliveries, a chunk per transaction. Should this stop half-way (a
        // crash), `webhook_deletions` remembers it and the upkeep's purge finishes it.
        while deleted == webhooks::DELETE_CHUNK {
            let (account, id) = (account.clone(), id.clone());
            deleted = self
                .writer
                .write(move |c| webhooks::delete_deliveries_chunk(c, &account, &id))
                .await?;
        }
        Ok(())
    }

    async fn webhook_secrets(
        &self,
        account: &AccountId,
        id: &WebhookId,
    ) -> StoreResult<WebhookSecrets> {
        owned!(account, id);
        let cipher = self.cipher.clone();
        self.readers
            .read(move |c| webhooks::secrets(c, &account, &id, &cipher))
            .await
    }

    async fn rotate_webhook_secret(
        &self,
        account: &AccountId,
        id: &WebhookId,
        secret: WebhookSecret,
        previous_expires_at: Timestamp,
        replaces: Option<&str>,
    ) -> StoreResult<WebhookSecrets> {
        owned!(account, id);
        let cipher = self.cipher.clone();
        let replaces = replaces.map(str::to_owned);
        self.writer
            .write(move |c| {
                let rotation = webhooks::Rotation {
                    secret: &secret,
                    previous_expires_at,
                    replaces: replaces.as_deref(),
                };
                webhooks::rotate_secret(c, &account, &id, &rotation, &cipher)
            })
            .await
    }

    async fn send_test_event(
        &self,
        account: &AccountId,
        id: &WebhookId,
        event: NewEvent,
    ) -> StoreResult<Delivery> {
        owned!(account, id);
        let result = self
            .writer
            .write(move |c| {
                rules::test_target(webhooks::enabled(c, &account, &id)?, &id)?;
                outbox::insert_event(c, &account, &event)?;
                // A test event is never ordered.
                outbox::insert_delivery(c, &account, &id, &event, None, None)
            })
            .await;
        self.wake_on_success(result)
    }
}

#[async_trait]
impl Rewards for SqliteStore {
    async fn put_trigger(
        &self,
        account: &AccountId,
        trigger: TriggerSpec,
    ) -> StoreResult<(Trigger, bool)> {
        owned!(account);
        self.writer
            .write(move |c| rewards::put_trigger(c, &account, &trigger))
            .await
    }

    async fn list_triggers(
        &self,
        account: &AccountId,
        page: PageRequest,
    ) -> StoreResult<Page<Trigger>> {
        owned!(account);
        self.readers
            .read(move |c| rewards::list_triggers(c, &account, &page))
            .await
    }

    async fn get_trigger(&self, account: &AccountId, id: &TriggerId) -> StoreResult<Trigger> {
        owned!(account, id);
        self.readers
            .read(move |c| rewards::find_trigger(c, &account, &id)?.ok_or(StoreError::NotFound))
            .await
    }

    async fn delete_trigger(&self, account: &AccountId, id: &TriggerId) -> StoreResult<()> {
        owned!(account, id);
        self.writer
            .write(move |c| rewards::delete_trigger(c, &account, &id))
            .await
    }

    async fn record_trigger_event(
        &self,
        account: &AccountId,
        request: RecordTriggerEvent,
    ) -> StoreResult<TriggerEventOutcome> {
        owned!(account);
        let (handoff, cipher) = (self.handoff.get().cloned(), self.cipher.clone());
        let result = self
            .writer
            .write(move |c| {
                let mut outbox = Outbox::new(handoff.as_deref(), &cipher);
                let outcome = rewards::record_trigger_event(c, &account, &request, &mut outbox)?;
                Ok((outcome, outbox))
            })
            .await;
        self.deliver_committed(result)
    }

    async fn issue_credits(
        &self,
        account: &AccountId,
        request: IssueCredits,
    ) -> StoreResult<CreditsIssued> {
        owned!(account);
        let (handoff, cipher) = (self.handoff.get().cloned(), self.cipher.clone());
        let result = self
            .writer
            .write(move |c| {
                let mut outbox = Outbox::new(handoff.as_deref(), &cipher);
                let issued = rewards::issue_credits(c, &account, &request, &mut outbox)?;
                Ok((issued, outbox))
            })
            .await;
        self.deliver_committed(result)
    }

    async fn get_user(&self, account: &AccountId, id: &UserId) -> StoreResult<User> {
        owned!(account, id);
        self.readers
            .read(move |c| rewards::get_user(c, &account, &id))
            .await
    }
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn list_events(
        &self,
        account: &AccountId,
        query: &EventQuery,
        page: PageRequest,
    ) -> StoreResult<Page<Event>> {
        owned!(account, query);
        self.readers
            .read(move |c| events::list(c, &account, &query, &page))
            .await
    }

    async fn get_event(&self, account: &AccountId, id: &EventId) -> StoreResult<Event> {
        owned!(account, id);
        self.readers
            .read(move |c| events::get(c, &account, &id))
            .await
    }

    async fn list_deliveries(
        &self,
        account: &AccountId,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<Delivery>> {
        owned!(account, webhook);
        self.readers
            .read(move |c| deliveries::list(c, &account, &webhook, status, &page))
            .await
    }

    async fn search_deliveries(
        &self,
        account: &AccountId,
        query: &DeliveryQuery,
        page: PageRequest,
    ) -> StoreResult<Page<Delivery>> {
        owned!(account, query);
        self.readers
            .read(move |c| deliveries::search(c, &account, &query, &page))
            .await
    }

    async fn get_delivery(
        &self,
        account: &AccountId,
        id: &DeliveryId,
    ) -> StoreResult<DeliveryWithAttempts> {
        owned!(account, id);
        self.readers
            .read(move |c| deliveries::get_with_attempts(c, &account, &id))
            .await
    }

    async fn resend_event(
        &self,
        account: &AccountId,
        event: &EventId,
        webhook: &WebhookId,
    ) -> StoreResult<Delivery> {
        owned!(account, event, webhook);
        let cipher = self.cipher.clone();
        let result = self
            .writer
            .write(move |c| {
                let event = events::get(c, &account, &event)?;
                rules::resend_target(webhooks::get(c, &account, &webhook, &cipher), &webhook)?;
                // A resend is explicit: it goes out of order.
                outbox::insert_delivery(c, &account, &webhook, &event.into(), None, None)
            })
            .await;
        self.wake_on_success(result)
    }

    async fn request_retry(&self, account: &AccountId, id: &DeliveryId) -> StoreResult<Delivery> {
        owned!(account, id);
        let result = self
            .writer
            .write(move |c| deliveries::request_retry(c, &account, &id))
            .await;
        self.wake_on_success(result)
    }

    async fn recover_deliveries(
        &self,
        account: &AccountId,
        webhook: &WebhookId,
        since: Timestamp,
    ) -> StoreResult<u64> {
        let started = Timestamp::now();
        let mut recovered = 0;
        loop {
            owned!(account, webhook);
            let chunk = self
                .writer
                .write(move |c| deliveries::recover_chunk(c, &account, &webhook, since, started))
                .await?;
            recovered += chunk;
            // Each chunk is due now: the worker may start on it while the next is written.
            self.work.notify_one();
            if chunk < deliveries::RECOVER_CHUNK {
                return Ok(recovered);
            }
        }
    }

    async fn attempt_stats(
        &self,
        account: &AccountId,
        since: Timestamp,
    ) -> StoreResult<Vec<AttemptStats>> {
        owned!(account);
        self.readers
            .read(move |c| sessions::attempt_stats(c, &account, since))
            .await
    }

    async fn webhook_stats(
        &self,
        account: &AccountId,
        webhook: &WebhookId,
        period: StatsPeriod,
        now: Timestamp,
    ) -> StoreResult<WebhookStats> {
        owned!(account, webhook);
        self.readers
            .read(move |c| rollups::webhook_stats(c, &account, &webhook, period, now))
            .await
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        self.readers.read(queue::queue_stats).await
    }
}

#[async_trait]
impl IdempotentRequests for SqliteStore {
    async fn reserve_request(
        &self,
        account: &AccountId,
        key: &IdempotencyKey,
        fingerprint: &str,
        now: Timestamp,
    ) -> StoreResult<Reservation> {
        owned!(account, key);
        let fingerprint = fingerprint.to_owned();
        let cipher = self.cipher.clone();
        self.writer
            .write(move |c| idempotent::reserve(c, &account, &key, &fingerprint, now, &cipher))
            .await
    }

    async fn complete_request(
        &self,
        account: &AccountId,
        key: &IdempotencyKey,
        reserved: Timestamp,
        response: StoredResponse,
    ) -> StoreResult<()> {
        owned!(account, key);
        let cipher = self.cipher.clone();
        self.writer
            .write(move |c| idempotent::complete(c, &account, &key, reserved, &response, &cipher))
            .await
    }

    async fn release_request(
        &self,
        account: &AccountId,
        key: &IdempotencyKey,
        reserved: Timestamp,
    ) -> StoreResult<()> {
        owned!(account, key);
        self.writer
            .write(move |c| idempotent::release(c, &account, &key, reserved))
            .await
    }
}

#[async_trait]
impl Housekeeping for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.readers
            .read(|c| {
                c.query_row("SELECT 1", [], |_| Ok(()))
                    .map_err(errors::from_sqlite)
            })
            .await
    }

    async fn schema_versions(&self) -> StoreResult<SchemaVersions> {
        let database = self
            .readers
            .read(|c| migrations::applied(c).map_err(errors::from_sqlite))
            .await?;
        Ok(SchemaVersions {
            database,
            build: migrations::COUNT,
        })
    }

    async fn schedule_waiting(&self) -> StoreResult<u64> {
        let scheduled = self
            .writer
            .write(|c| ordering::schedule_waiting(c, None, SCHEDULE_WAITING_BATCH))
            .await?;
        if scheduled > 0 {
            self.work.notify_one();
        }
        Ok(scheduled as u64)
    }

    async fn disable_failing_webhooks(
        &self,
        failing_since: Timestamp,
        now: Timestamp,
        reason: String,
    ) -> StoreResult<Vec<WebhookId>> {
        let (handoff, cipher) = (self.handoff.get().cloned(), self.cipher.clone());
        let result = self
            .writer
            .write(move |c| {
                let mut outbox = Outbox::new(handoff.as_deref(), &cipher);
                let disabled =
                    disabling::disable_failing(c, failing_since, now, &reason, &mut outbox)?;
                Ok((disabled, outbox))
            })
            .await;
        self.deliver_committed(result)
    }

    async fn purge_rollups(&self, before: Timestamp) -> StoreResult<()> {
        self.writer.write(move |c| rollups::purge(c, before)).await
    }

    async fn purge_expired(
        &self,
        events_before: Timestamp,
        idempotency_before: Timestamp,
    ) -> StoreResult<()> {
        // A chunk per transaction, so a day's worth of expired rows never sits in memory at once.
        while self.writer.write(webhooks::finish_a_deletion).await? > 0 {}
        reward_store::chunks::walk(events::PurgeCursor::default(), |from| async move {
            let (deleted, next) = self
                .writer
                .write(move |c| events::purge_events_chunk(c, events_before, from))
                .await?;
            Ok((deleted as u64, next))
        })
        .await?;
        while self
            .writer
            .write(move |c| events::purge_keys_chunk(c, idempotency_before))
            .await?
            > 0
        {}
        Ok(())
    }

    /// Walks the attempts by row id from where the previous walk ended (see `retention`), so
    /// `since` is not needed: attempts before it were walked by an earlier run.
    async fn clear_attempt_bodies(&self, _since: Timestamp, before: Timestamp) -> StoreResult<u64> {
        let resume = self.bodies_resume_lock().clone();
        let start = self
            .writer
            .write(move |c| retention::walk_start(c, resume.as_ref()))
            .await?;
        reward_store::chunks::walk(start, |from| async move {
            let chunk = self
                .writer
                .write(move |c| retention::clear_bodies_chunk(c, from, before))
                .await?;
            if let Some(resume) = chunk.resume_at {
                *self.bodies_resume_lock() = Some(resume);
            }
            Ok((chunk.cleared as u64, chunk.next))
        })
        .await
    }
}

#[async_trait]
impl DeliveryQueue for SqliteStore {
    async fn claim_due_deliveries(&self, request: ClaimRequest) -> StoreResult<Claim> {
        let cipher = self.cipher.clone();
        let (claim, refill_horizon) = self
            .writer
            .write(move |c| queue::claim(c, &request, &cipher))
            .await?;
        self.refill_horizon.covered(refill_horizon);
        Ok(claim)
    }

    async fn record_attempt(&self, record: AttemptRecord) -> StoreResult<()> {
        self.record_attempts(vec![record]).await
    }

    async fn record_attempts(&self, records: Vec<AttemptRecord>) -> StoreResult<()> {
        self.record(records, None).await.map(drop)
    }

    async fn record_attempts_passing_turns(
        &self,
        records: Vec<AttemptRecord>,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        self.record(records, Some(lease)).await
    }

    async fn next_due_at(&self, now: Timestamp) -> StoreResult<Option<Timestamp>> {
        let refill_horizon = self.refill_horizon.latest();
        self.readers
            .read(move |c| queue::next_due_at(c, now, refill_horizon))
            .await
    }

    async fn release_all_leases(&self) -> StoreResult<u64> {
        self.writer.write(queue::release_all_leases).await
    }

    async fn release_leases(&self, deliveries: Vec<(AccountId, DeliveryId)>) -> StoreResult<()> {
        let released = self
            .writer
            .write(move |c| queue::release_leases(c, &deliveries))
            .await;
        self.wake_on_success(released)
    }

    async fn work_signal(&self) {
        self.work.notified().await;
    }

    /// SQLite has one process per database file, so this process's worker is the only one and
    /// may take every delivery it creates.
    fn start_handoff(&self, lease: Duration) -> Option<Arc<Handoff>> {
        Some(self.handoff.start(lease))
    }
}
