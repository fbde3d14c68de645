//! Waking idle workers on every node: `LISTEN`/`NOTIFY`.
//!
//! After a transaction that made a delivery due commits, the node [`WorkSignal::announce`]s it:
//! its own worker wakes at once, and a `pg_notify` reaches every node listening. Each node keeps
//! one connection listening (started the first time its worker waits, so `reward accounts ...`
//! never opens it) and turns every notification into a wake-up of its worker.
//!
//! The notification is sent after the commit, by one task per node that coalesces announcements
//! (while one `pg_notify` is on its way, any number of new ones make one more), not inside each
//! transaction. A transaction that notifies holds PostgreSQL's database-wide notification lock
//! from before its commit until the commit is flushed, so notifying in every write serialized all
//! of them, fsync included: measured under load, 61% of busy sessions were waiting on that lock
//! (`Lock:object`, docs/scaling.md). After the commit, the cost is one short statement per burst.
//! What is lost: a node dying between its commit and its `pg_notify` delays the others until
//! their next poll (1 s), and the work was committed, so it is not lost.
//!
//! Notifications are not stored: one sent while the listening connection is down is lost. So the
//! listener wakes the worker each time it (re)starts listening, and workers poll as a safety net.
//!
//! This only says *that* work may be due. Recording attempts announces nothing: deliveries this
//! node hands to its own worker never need a claim, and whether freed slots are worth a claim (a
//! claim on a large queue of leased deliveries is a scan PostgreSQL pays for) is the worker's
//! decision, from what its last claim passed over (see `reward_store::DeliveryQueue`).

use std::future::poll_fn;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::connect::Pool;
use crate::key_cache::{self, KeyCache};
use crate::statements::Db;

/// The channel work is announced on.
pub const CHANNEL: &str = "reward_work";

/// Pause before listening again after the connection failed.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

pub struct WorkSignal {
    config: tokio_postgres::Config,
    /// Woken by notifications and by this node's own changes; holds one wake-up while no worker
    /// waits, so none is lost between two waits.
    work: Arc<Notify>,
    /// Announcements waiting for the announcing task; many coalesce into one.
    to_announce: Arc<Notify>,
    /// API keys found valid, usable while the listening connection carries revocations.
    keys: Arc<KeyCache>,
    /// The listening task, once started; stopped when the store is dropped.
    listener: OnceLock<AbortHandle>,
    /// The announcing task, once started; stopped when the store is dropped.
    announcer: OnceLock<AbortHandle>,
}

impl WorkSignal {
    pub fn new(config: tokio_postgres::Config) -> Self {
        Self {
            config,
            work: Arc::new(Notify::new()),
            to_announce: Arc::new(Notify::new()),
            keys: Arc::default(),
            listener: OnceLock::new(),
            announcer: OnceLock::new(),
        }
    }

    /// Resolves when new work may be due, on this node or any other.
    pub async fn wait(&self) {
        self.start_listening();
        self.work.notified().await;
    }

    /// The API keys this node found valid (see `key_cache`); listening starts with the first use,
    /// and the cache is empty until it has.
    pub fn keys(&self) -> &KeyCache {
        self.start_listening();
        &self.keys
    }

    fn start_listening(&self) {
        self.listener.get_or_init(|| {
            let listening = listen(
                self.config.clone(),
                Arc::clone(&self.work),
                Arc::clone(&self.keys),
            );
            tokio::spawn(listening).abort_handle()
        });
    }

    /// Tells every node's worker that work may be due; call it after the commit that made it so.
    pub fn announce(&self, pool: &Pool) {
        self.work.notify_one();
        self.announcer.get_or_init(|| {
            tokio::spawn(send_announcements(
                pool.clone(),
                Arc::clone(&self.to_announce),
            ))
            .abort_handle()
        });
        self.to_announce.notify_one();
    }
}

impl Drop for WorkSignal {
    fn drop(&mut self) {
        for task in [self.listener.get(), self.announcer.get()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

/// Sends one `pg_notify` per burst of announcements, until the store is dropped.
async fn send_announcements(pool: Pool, to_announce: Arc<Notify>) {
    loop {
        to_announce.notified().await;
        let sent = match pool.get().await {
            Ok(client) => client
                .execute("SELECT pg_notify($1, '')", &[&CHANNEL])
                .await
                .map(|_| ())
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = sent {
            // Other nodes find the work at their next poll; nothing is lost.
            tracing::debug!(%error, "announcing new work failed");
        }
    }
}

/// Listens until the store is dropped, reconnecting whenever the connection fails.
async fn listen(config: tokio_postgres::Config, work: Arc<Notify>, keys: Arc<KeyCache>) {
    loop {
        if let Err(error) = listen_once(&config, &work, &keys).await {
            let error = crate::errors::describe(&error);
            tracing::warn!(%error, "listening for new work failed; workers poll until it is back");
        }
        // Revocations no longer arrive: API keys are looked up every time until they do.
        keys.set_listening(false);
        // Whatever was announced while not listening is found by looking now.
        work.notify_one();
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

/// One listening connection, until it fails.
async fn listen_once(
    config: &tokio_postgres::Config,
    work: &Notify,
    keys: &KeyCache,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // The connection only makes progress while polled, so it is driven here, in the same task as
    // the LISTEN it has to carry: new work wakes the worker, a revoked key empties the key cache.
    let drive = async {
        while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(notification) = message? {
                if notification.channel() == key_cache::CHANNEL {
                    keys.forget_all();
                } else {
                    work.notify_one();
                }
            }
        }
        Ok(())
    };
    let subscribe = async {
        client
            .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {}", key_cache::CHANNEL))
            .await?;
        // Revocations reach this node from here on; any made before were not heard.
        keys.set_listening(true);
        // Announcements made before LISTEN took effect were missed: look once now.
        work.notify_one();
        std::future::pending::<Result<(), tokio_postgres::Error>>().await
    };
    tokio::select! {
        ended = drive => ended,
        failed = subscribe => failed,
    }
}
