//! The PostgreSQL store: several `reward serve` nodes share one database and all its work.
//!
//! - [`connect`]: which URLs are ours, the connection pool, and the settings PgBouncer needs.
//! - [`statements`]: how every statement is sent: prepared per connection, or unnamed.
//! - [`migrations`]: the schema (`migrations/` beside `src/`), applied on open, safely from
//!   several nodes at once.
//! - one module per resource (`accounts`, `webhooks`, `deliveries`, `events`, `rewards`,
//!   `sessions`) holds its SQL, as in the SQLite store; [`outbox`] writes events and their
//!   deliveries inside the caller's transaction.
//! - [`queue`]: claims under a lease with `FOR UPDATE SKIP LOCKED`, shared by every node.
//! - [`signal`]: `LISTEN`/`NOTIFY`, so new work wakes an idle worker on any node (listening on
//!   its own URL when given, as PgBouncer's transaction mode needs).
//! - [`batched`]: trigger events recorded together in one transaction (group commit).
//! - [`import`]: a whole copied database written into an empty one, for `reward copy`.
//! - `testing` (feature `testing`): databases of a test's own on the test server, for this
//!   crate's tests and the integration suite's.
//!
//! Behaviour matches the SQLite store call for call (ids, order, cursors, errors); what differs
//! is how each invariant survives many writers: see `rewards` (idempotency, balances), `queue`
//! (leases) and `webhooks` (no delivery outlives its webhook).

mod accounts;
mod batched;
mod coalesce;
mod connect;
mod deliveries;
mod disabling;
mod errors;
mod events;
mod functions;
mod idempotent;
pub mod import;
mod key_cache;
mod migrations;
pub use migrations::MigrateError;
mod ordering;
mod outbox;
mod queue;
mod rate_slots;
mod retention;
mod rewards;
mod rollups;
mod rows;
mod search;
mod secrets;
mod sessions;
mod signal;
mod statements;
mod statistics;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod webhooks;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use reward_core::event::NewEvent;
use reward_core::ids::{AccountId, ApiKeyId, DeliveryId, EventId, WebhookId};
use reward_core::names::{IdempotencyKey, Name, TriggerId, UserId};
use reward_core::signing::WebhookSecret;
use reward_core::stats::StatsPeriod;
use reward_core::time::Timestamp;
use reward_store::handoff::{Handoff, HandoffSlot};
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

pub use connect::{
    is_postgres_url, ConnectOptions, ConnectionRoom, MAX_POOL_SIZE, MIN_POOL_SIZE, POOL_SIZE,
};
pub use signal::CHANNEL;
pub use statements::Statements;

use batched::{TriggerEventBatcher, WriteContext};
use coalesce::{Batching, Coalescer, Overlap};
use connect::Pool;
use errors::{from_pg, from_pool};
use signal::WorkSignal;
use statements::Conn;

#[derive(Debug, Error)]
pub enum OpenError {
    #[error("not a valid PostgreSQL URL: {0}")]
    Url(tokio_postgres::Error),
    #[error("cannot set up the connection pool: {0}")]
    Pool(String),
    #[error("cannot connect to the database: {0}")]
    Connect(StoreError),
    #[error("cannot migrate the database: {0}")]
    Migrate(migrations::MigrateError),
    #[error("the database {name} does not exist and could not be created: {reason}")]
    Create { name: String, reason: String },
}

/// Keys looked up in one statement at most, and such statements under way at once.
/// Waiting deliveries the upkeep's safety net schedules per run at most.
const SCHEDULE_WAITING_BATCH: i64 = 1_000;
const KEY_LOOKUP_BATCH: usize = 256;
/// How long the worker may hold finished attempts for company (see `record_linger`; it stops
/// waiting after a short quiet when an attempt failed or its claims wait for slots). 15 ms
/// rather than 5 measured a sixth fewer commits ("Tenth" in docs/scaling.md); 40 rather than 15,
/// once successes wait through the gaps between bursts, 3.4 times fewer batches of attempts,
/// a sixth fewer commits and more trigger events recorded on 1 and 3 nodes ("Measured").
const RECORD_LINGER: Duration = Duration::from_millis(40);
const CONCURRENT_KEY_LOOKUPS: usize = 4;

pub struct PostgresStore {
    pool: Pool,
    signal: Arc<WorkSignal>,
    /// The `now` of this node's latest claim, in milliseconds (`i64::MIN` before the first):
    /// what `next_due_at` counts unseen retries from.
    last_claim_at: AtomicI64,
    /// The refill horizon of this node's latest claim, on the database's clock.
    refill_horizon: RefillHorizon,
    /// Seals webhook secrets at rest ([`PostgresStore::with_secret_cipher`]); plain until given.
    cipher: SecretCipher,
    /// Set once this node's worker takes the deliveries it creates directly (see [`Handoff`]).
    handoff: Arc<HandoffSlot>,
    /// Where trigger events wait to be written in batches (group commit); started on first use.
    trigger_events: OnceLock<TriggerEventBatcher>,
    /// API key lookups made together (see `accounts::answer_key_lookups`); started on first use.
    key_lookups: OnceLock<Coalescer<String, Option<AccountId>>>,
    /// The attempt roll-up rows this node writes (see `rollups`).
    rollup_shard: rollups::RollupShard,
}

impl PostgresStore {
    /// Connects and migrates. The database itself must exist (creating one needs rights a
    /// service should not have).
    pub async fn open(url: &str) -> Result<Self, OpenError> {
        Self::open_with(url, &ConnectOptions::default()).await
    }

    /// [`PostgresStore::open`] with `options`: PgBouncer's settings (see [`ConnectOptions`]).
    pub async fn open_with(url: &str, options: &ConnectOptions) -> Result<Self, OpenError> {
        let config = connect::config_from_url(url)?;
        let listen_config = match &options.listen_url {
            Some(listen_url) => connect::config_from_url(listen_url)?,
            None => config.clone(),
        };
        let pool = connect::pool(config.clone(), options)?;
        let mut client = match pool.get().await {
            Ok(client) => client,
            Err(error) if connect::database_is_missing(&error) => {
                let name = connect::create_database(&config).await?;
                tracing::info!(database = name, "created the database");
                pool.get()
                    .await
                    .map_err(|error| OpenError::Connect(from_pool(error)))?
            }
            Err(error) => return Err(OpenError::Connect(from_pool(error))),
        };
        migrations::migrate(client.client_mut())
            .await
            .map_err(OpenError::Migrate)?;
        drop(client);
        Ok(Self {
            pool,
            signal: Arc::new(WorkSignal::new(listen_config)),
            last_claim_at: AtomicI64::new(i64::MIN),
            refill_horizon: RefillHorizon::new(),
            cipher: SecretCipher::plaintext(),
            handoff: Arc::default(),
            trigger_events: OnceLock::new(),
            key_lookups: OnceLock::new(),
            rollup_shard: rollups::RollupShard::pick(),
        })
    }

    /// The server's room for every connection this node may keep (its pool and the one
    /// listening) beside those open now; call it once started.
    pub async fn connection_room(&self) -> StoreResult<ConnectionRoom> {
        let client = self.client().await?;
        ConnectionRoom::read(&client, self.pool.open(), self.pool.max_size() + 1)
            .await
            .map_err(from_pg)
    }

    /// Seals webhook secrets with `cipher` from now on, and seals those still stored plain.
    pub async fn with_secret_cipher(mut self, cipher: SecretCipher) -> StoreResult<Self> {
        let sealed = secrets::seal_plain_secrets(&self.client().await?, &cipher).await?;
        if sealed > 0 {
            tracing::info!(sealed, "sealed webhook secrets stored before encryption");
        }
        self.cipher = cipher;
        Ok(self)
    }

    async fn client(&self) -> StoreResult<Conn> {
        self.pool.get().await.map_err(from_pool)
    }
}

impl PostgresStore {
    /// After a committed transaction: hands its deliveries to this node's worker, and tells
    /// every node when some were left for claiming (as [`WriteContext::after_commit`], without
    /// cloning a context on the recording path).
    fn after_commit(&self, outbox: reward_store::handoff::Outbox) {
        if self.handoff.committed(outbox) {
            self.signal.announce(&self.pool);
        }
    }

    /// What a write needs to hand its new deliveries off once committed.
    fn write_context(&self) -> WriteContext {
        WriteContext {
            pool: self.pool.clone(),
            cipher: self.cipher.clone(),
            handoff: Arc::clone(&self.handoff),
            signal: Arc::clone(&self.signal),
        }
    }
}

/// Runs `$body` in a transaction on a pooled connection, bound to `$tx`, and commits. An error
/// returns early; dropping the transaction rolls it back.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut client = $store.client().await?;
        let $tx = client.transaction();
        let value = $body;
        $tx.commit().await.map_err(from_pg)?;
        value
    }};
}

/// Like [`in_transaction`], for a change that made work due: once it commits, every node's
/// worker is told.
macro_rules! in_transaction_waking {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let value = in_transaction!($store, |$tx| $body);
        $store.signal.announce(&$store.pool);
        value
    }};
}

#[async_trait]
impl Accounts for PostgresStore {
    async fn create_account(&self, name: Name, key: NewApiKeyRecord) -> StoreResult<Account> {
        Ok(in_transaction!(self, |tx| accounts::create(
            &tx, &name, &key
        )
        .await?))
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        accounts::list(&self.client().await?).await
    }

    async fn authenticate(&self, key_hash: &str) -> StoreResult<Option<AccountId>> {
        let keys = self.signal.keys();
        if let Some(account) = keys.get(key_hash) {
            return Ok(Some(account));
        }
        let lookup = keys.lookup_starts();
        let found = self
            .key_lookups
            .get_or_init(|| {
                let pool = self.pool.clone();
                Coalescer::start(
                    Batching {
                        max_batch: KEY_LOOKUP_BATCH,
                        concurrent: CONCURRENT_KEY_LOOKUPS,
                        overlap: Overlap::Always,
                        gather: None,
                    },
                    move |calls| {
                        let pool = pool.clone();
                        async move { accounts::answer_key_lookups(&pool, calls).await }
                    },
                )
            })
            .call(key_hash.to_owned())
            .await?;
        if let Some(account) = &found {
            keys.remember(lookup, key_hash, account);
        }
        Ok(found)
    }

    async fn create_api_key(
        &self,
        account: &AccountId,
        key: NewApiKeyRecord,
    ) -> StoreResult<ApiKey> {
        accounts::insert_key(&self.client().await?, account, &key, Timestamp::now()).await
    }

    async fn list_api_keys(&self, account: &AccountId) -> StoreResult<Vec<ApiKey>> {
        accounts::list_keys(&self.client().await?, account).await
    }

    /// Every node forgets the keys it cached when this commits (see `key_cache`), this one at
    /// once.
    async fn revoke_api_key(&self, account: &AccountId, key: &ApiKeyId) -> StoreResult<()> {
        in_transaction!(self, |tx| accounts::revoke_key(&tx, account, key).await?);
        self.signal.keys().forget_all();
        Ok(())
    }

    async fn touch_api_keys(&self, used: Vec<(String, Timestamp)>) -> StoreResult<()> {
        in_transaction!(self, |tx| accounts::touch_keys(&tx, &used).await?);
        Ok(())
    }
}

#[async_trait]
impl Sessions for PostgresStore {
    async fn start_session(
        &self,
        key_hash: &str,
        session: NewSession,
    ) -> StoreResult<Option<Session>> {
        Ok(in_transaction!(self, |tx| sessions::start(
            &tx, key_hash, &session
        )
        .await?))
    }

    async fn find_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Session>> {
        sessions::find(&self.client().await?, token_hash, now).await
    }

    async fn end_session(&self, token_hash: &str) -> StoreResult<()> {
        sessions::end(&self.client().await?, token_hash).await
    }
}

#[async_trait]
impl Webhooks for PostgresStore {
    async fn create_webhook(
        &self,
        account: &AccountId,
        webhook: NewWebhook,
    ) -> StoreResult<Webhook> {
        webhooks::create(&self.client().await?, account, &webhook, &self.cipher).await
    }

    async fn list_webhooks(
        &self,
        account: &AccountId,
        page: PageRequest,
    ) -> StoreResult<Page<Webhook>> {
        webhooks::list(&self.client().await?, account, &page, &self.cipher).await
    }

    async fn get_webhook(&self, account: &AccountId, id: &WebhookId) -> StoreResult<Webhook> {
        webhooks::get(&self.client().await?, account, id, &self.cipher).await
    }

    async fn update_webhook(
        &self,
        account: &AccountId,
        id: &WebhookId,
        patch: WebhookPatch,
    ) -> StoreResult<Webhook> {
        // Enabling a webhook makes its waiting deliveries due.
        Ok(in_transaction_waking!(self, |tx| webhooks::update(
            &tx,
            account,
            id,
            &patch,
            &self.cipher
        )
        .await?))
    }

    async fn delete_webhook(&self, account: &AccountId, id: &WebhookId) -> StoreResult<()> {
        in_transaction!(self, |tx| webhooks::delete(&tx, account, id).await?);
        Ok(())
    }

    async fn webhook_secrets(
        &self,
        account: &AccountId,
        id: &WebhookId,
    ) -> StoreResult<WebhookSecrets> {
        webhooks::secrets(&self.client().await?, account, id, &self.cipher).await
    }

    async fn rotate_webhook_secret(
        &self,
        account: &AccountId,
        id: &WebhookId,
        secret: WebhookSecret,
        previous_expires_at: Timestamp,
        replaces: Option<&str>,
    ) -> StoreResult<WebhookSecrets> {
        let rotation = webhooks::Rotation {
            secret: &secret,
            previous_expires_at,
            replaces,
        };
        Ok(in_transaction!(self, |tx| webhooks::rotate_secret(
            &tx,
            account,
            id,
            &rotation,
            &self.cipher
        )
        .await?))
    }

    async fn send_test_event(
        &self,
        account: &AccountId,
        id: &WebhookId,
        event: NewEvent,
    ) -> StoreResult<Delivery> {
        Ok(in_transaction_waking!(self, |tx| {
            rules::test_target(webhooks::keep_enabled(&tx, account, id).await?, id)?;
            outbox::insert_event(&tx, account, &event).await?;
            outbox::insert_delivery(&tx, account, id, &event, None).await?
        }))
    }
}

#[async_trait]
impl Rewards for PostgresStore {
    async fn put_trigger(
        &self,
        account: &AccountId,
        trigger: TriggerSpec,
    ) -> StoreResult<(Trigger, bool)> {
        rewards::put_trigger(&self.client().await?, account, &trigger).await
    }

    async fn list_triggers(
        &self,
        account: &AccountId,
        page: PageRequest,
    ) -> StoreResult<Page<Trigger>> {
        rewards::list_triggers(&self.client().await?, account, &page).await
    }

    async fn get_trigger(&self, account: &AccountId, id: &TriggerId) -> StoreResult<Trigger> {
        rewards::find_trigger(&self.client().await?, account, id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn delete_trigger(&self, account: &AccountId, id: &TriggerId) -> StoreResult<()> {
        rewards::delete_trigger(&self.client().await?, account, id).await
    }

    async fn record_trigger_event(
        &self,
        account: &AccountId,
        request: RecordTriggerEvent,
    ) -> StoreResult<TriggerEventOutcome> {
        self.trigger_events
            .get_or_init(|| TriggerEventBatcher::start(self.write_context()))
            .record(account.clone(), request)
            .await
    }

    async fn issue_credits(
        &self,
        account: &AccountId,
        request: IssueCredits,
    ) -> StoreResult<CreditsIssued> {
        let context = self.write_context();
        let mut outbox = context.outbox();
        let issued = in_transaction!(self, |tx| {
            rewards::issue_credits(&tx, account, &request, &mut outbox).await?
        });
        context.after_commit(outbox);
        Ok(issued)
    }

    async fn get_user(&self, account: &AccountId, id: &UserId) -> StoreResult<User> {
        rewards::get_user(&self.client().await?, account, id).await
    }
}

#[async_trait]
impl EventLog for PostgresStore {
    async fn list_events(
        &self,
        account: &AccountId,
        query: &EventQuery,
        page: PageRequest,
    ) -> StoreResult<Page<Event>> {
        events::list(&self.client().await?, account, query, &page).await
    }

    async fn get_event(&self, account: &AccountId, id: &EventId) -> StoreResult<Event> {
        events::get(&self.client().await?, account, id).await
    }

    async fn resend_event(
        &self,
        account: &AccountId,
        event: &EventId,
        webhook: &WebhookId,
    ) -> StoreResult<Delivery> {
        Ok(in_transaction_waking!(self, |tx| {
            let event = events::get(&tx, account, event).await?;
            rules::resend_target(
                webhooks::get_kept(&tx, account, webhook, &self.cipher).await,
                webhook,
            )?;
            outbox::insert_delivery(&tx, account, webhook, &event.into(), None).await?
        }))
    }

    async fn list_deliveries(
        &self,
        account: &AccountId,
        webhook: &WebhookId,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> StoreResult<Page<Delivery>> {
        deliveries::list(&self.client().await?, account, webhook, status, &page).await
    }

    async fn search_deliveries(
        &self,
        account: &AccountId,
        query: &DeliveryQuery,
        page: PageRequest,
    ) -> StoreResult<Page<Delivery>> {
        deliveries::search(&self.client().await?, account, query, &page).await
    }

    async fn get_delivery(
        &self,
        account: &AccountId,
        id: &DeliveryId,
    ) -> StoreResult<DeliveryWithAttempts> {
        // One snapshot for the delivery and its attempts, as SQLite's reader gives.
        let mut client = self.client().await?;
        let tx = client.transaction_with("BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ");
        let found = deliveries::get_with_attempts(&tx, account, id).await?;
        tx.commit().await.map_err(from_pg)?;
        Ok(found)
    }

    async fn request_retry(&self, account: &AccountId, id: &DeliveryId) -> StoreResult<Delivery> {
        Ok(in_transaction_waking!(self, |tx| {
            deliveries::request_retry(&tx, account, id).await?
        }))
    }

    async fn recover_deliveries(
        &self,
        account: &AccountId,
        webhook: &WebhookId,
        since: Timestamp,
    ) -> StoreResult<u64> {
        Ok(in_transaction_waking!(self, |tx| deliveries::recover(
            &tx, account, webhook, since
        )
        .await?))
    }

    async fn attempt_stats(
        &self,
        account: &AccountId,
        since: Timestamp,
    ) -> StoreResult<Vec<AttemptStats>> {
        sessions::attempt_stats(&self.client().await?, account, since).await
    }

    async fn webhook_stats(
        &self,
        account: &AccountId,
        webhook: &WebhookId,
        period: StatsPeriod,
        now: Timestamp,
    ) -> StoreResult<WebhookStats> {
        rollups::webhook_stats(&self.client().await?, account, webhook, period, now).await
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        queue::queue_stats(&self.client().await?).await
    }
}

#[async_trait]
impl IdempotentRequests for PostgresStore {
    async fn reserve_request(
        &self,
        account: &AccountId,
        key: &IdempotencyKey,
        fingerprint: &str,
        now: Timestamp,
    ) -> StoreResult<Reservation> {
        idempotent::reserve(
            &self.client().await?,
            account,
            key,
            fingerprint,
            now,
            &self.cipher,
        )
        .await
    }

    async fn complete_request(
        &self,
        account: &AccountId,
        key: &IdempotencyKey,
        reserved: Timestamp,
        response: StoredResponse,
    ) -> StoreResult<()> {
        idempotent::complete(
            &self.client().await?,
            account,
            key,
            reserved,
            &response,
            &self.cipher,
        )
        .await
    }

    async fn release_request(
        &self,
        account: &AccountId,
        key: &IdempotencyKey,
        reserved: Timestamp,
    ) -> StoreResult<()> {
        idempotent::release(&self.client().await?, account, key, reserved).await
    }
}

#[async_trait]
impl Housekeeping for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        // The simple protocol: no statement to prepare, so it also holds through PgBouncer.
        statements::Db::batch_execute(&self.client().await?, "SELECT 1")
            .await
            .map_err(from_pg)
    }

    async fn schedule_waiting(&self) -> StoreResult<u64> {
        let scheduled =
            ordering::schedule_waiting(&self.client().await?, None, SCHEDULE_WAITING_BATCH).await?;
        if scheduled > 0 {
            self.signal.announce(&self.pool);
        }
        Ok(scheduled)
    }

    async fn disable_failing_webhooks(
        &self,
        failing_since: Timestamp,
        now: Timestamp,
        reason: String,
    ) -> StoreResult<Vec<WebhookId>> {
        let context = self.write_context();
        let mut outbox = context.outbox();
        let disabled = in_transaction!(self, |tx| disabling::disable_failing(
            &tx,
            failing_since,
            now,
            &reason,
            &mut outbox
        )
        .await?);
        context.after_commit(outbox);
        Ok(disabled)
    }

    async fn purge_rollups(&self, before: Timestamp) -> StoreResult<()> {
        rollups::purge(&self.client().await?, before).await
    }

    async fn purge_expired(
        &self,
        events_before: Timestamp,
        idempotency_before: Timestamp,
    ) -> StoreResult<()> {
        retention::purge_expired(&self.client().await?, events_before, idempotency_before).await
    }

    async fn clear_attempt_bodies(&self, since: Timestamp, before: Timestamp) -> StoreResult<u64> {
        let client = self.client().await?;
        let mut cleared = 0;
        for account in retention::account_ids(&client).await? {
            cleared += reward_store::chunks::walk(since, |from| {
                retention::clear_bodies_chunk(&client, &account, from, before)
            })
            .await?;
        }
        Ok(cleared)
    }

    async fn refresh_statistics(&self) -> StoreResult<Vec<String>> {
        Ok(in_transaction!(self, |tx| statistics::refresh(&tx).await?))
    }

    async fn schema_versions(&self) -> StoreResult<SchemaVersions> {
        let database = migrations::applied(&self.client().await?)
            .await
            .map_err(from_pg)?;
        Ok(SchemaVersions {
            database,
            build: migrations::COUNT,
        })
    }
}

impl PostgresStore {
    /// A worker's batch of attempts in one transaction. The released leases free their webhooks'
    /// slots in every node's claims; the worker claims again when its last claim passed over
    /// busy webhooks (see `DeliveryQueue`). A webhook disabled on the way (410 Gone) emits
    /// `webhook.disabled`, handed off once committed. Ended ordered deliveries schedule their
    /// users' next ones after the attempts are stored, leased for `lease` when given.
    async fn record(
        &self,
        mut records: Vec<AttemptRecord>,
        lease: Option<Duration>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut outbox = self.handoff.outbox(&self.cipher);
        let mut client = self.client().await?;
        let passed = queue::record_attempts_and_commit(
            client.transaction(),
            self.rollup_shard,
            &mut records,
            &mut outbox,
            lease,
            &self.cipher,
        )
        .await?;
        self.after_commit(outbox);
        Ok(passed)
    }
}

#[async_trait]
impl DeliveryQueue for PostgresStore {
    async fn claim_due_deliveries(&self, request: ClaimRequest) -> StoreResult<Claim> {
        self.last_claim_at
            .fetch_max(request.now.as_millis(), Ordering::SeqCst);
        let (claim, refill_horizon) =
            in_transaction!(self, |tx| queue::claim(&tx, &request, &self.cipher).await?);
        self.refill_horizon.covered(refill_horizon);
        Ok(claim)
    }

    async fn record_attempt(&self, record: AttemptRecord) -> StoreResult<()> {
        self.record(vec![record], None).await.map(drop)
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
        let last_claim_at = match self.last_claim_at.load(Ordering::SeqCst) {
            i64::MIN => None,
            millis => Some(Timestamp::from_millis(millis)),
        };
        queue::next_due_at(
            &self.client().await?,
            now,
            last_claim_at,
            self.refill_horizon.latest(),
        )
        .await
    }

    /// Does nothing: other nodes may hold leases right now. A dead node's leases run out instead
    /// (`REWARD_LEASE`), and `next_due_at` wakes a worker when the first one does.
    async fn release_all_leases(&self) -> StoreResult<u64> {
        Ok(0)
    }

    async fn release_leases(&self, deliveries: Vec<(AccountId, DeliveryId)>) -> StoreResult<()> {
        queue::release_leases(&self.client().await?, &deliveries).await?;
        self.signal.announce(&self.pool);
        Ok(())
    }

    async fn work_signal(&self) {
        self.signal.wait().await;
    }

    /// Measured with three nodes on one database (docs/scaling.md): batches of attempts grew
    /// from about 8 to 30 attempts, and trigger events recorded per second by about a sixth.
    fn record_linger(&self) -> Duration {
        RECORD_LINGER
    }

    /// Deliveries this node creates are leased to it as they are written, so no other node
    /// claims them while its worker sends them.
    fn start_handoff(&self, lease: Duration) -> Option<Arc<Handoff>> {
        Some(self.handoff.start(lease))
    }
}
