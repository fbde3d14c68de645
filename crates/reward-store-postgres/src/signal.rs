//! Waking idle workers on every node: `LISTEN`/`NOTIFY`.
//!
//! Every transaction that makes a delivery due calls [`announce`], a `pg_notify` that PostgreSQL
//! delivers to every listening session when, and only if, the transaction commits. Each node keeps
//! one connection listening (started the first time its worker waits, so `reward accounts ...`
//! never opens it) and turns every notification into a wake-up of its worker. The node that made
//! the change also wakes its own worker directly, without the round trip.
//!
//! Notifications are not stored: one sent while the listening connection is down is lost. So the
//! listener wakes the worker each time it (re)starts listening, and workers poll as a safety net.

use std::future::poll_fn;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_postgres::GenericClient;
use reward_store::StoreResult;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::errors::from_pg;

/// The channel work is announced on.
pub const CHANNEL: &str = "reward_work";

/// Pause before listening again after the connection failed.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Queues a wake-up for every node's worker, sent when the caller's transaction commits.
pub async fn announce(client: &impl GenericClient) -> StoreResult<()> {
    let statement = client
        .prepare_cached("SELECT pg_notify($1, '')")
        .await
        .map_err(from_pg)?;
    client
        .execute(&statement, &[&CHANNEL])
        .await
        .map_err(from_pg)?;
    Ok(())
}

pub struct WorkSignal {
    config: tokio_postgres::Config,
    /// Woken by notifications and by this node's own changes; holds one wake-up while no worker
    /// waits, so none is lost between two waits.
    work: Arc<Notify>,
    /// The listening task, once started; stopped when the store is dropped.
    listener: OnceLock<AbortHandle>,
}

impl WorkSignal {
    pub fn new(config: tokio_postgres::Config) -> Self {
        Self {
            config,
            work: Arc::new(Notify::new()),
            listener: OnceLock::new(),
        }
    }

    /// Resolves when new work may be due, on this node or any other.
    pub async fn wait(&self) {
        self.listener.get_or_init(|| {
            tokio::spawn(listen(self.config.clone(), Arc::clone(&self.work))).abort_handle()
        });
        self.work.notified().await;
    }

    /// Wakes this node's worker (after a commit that made work due here).
    pub fn wake_here(&self) {
        self.work.notify_one();
    }
}

impl Drop for WorkSignal {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.get() {
            listener.abort();
        }
    }
}

/// Listens until the store is dropped, reconnecting whenever the connection fails.
async fn listen(config: tokio_postgres::Config, work: Arc<Notify>) {
    loop {
        if let Err(error) = listen_once(&config, &work).await {
            tracing::warn!(%error, "listening for new work failed; workers poll until it is back");
        }
        // Whatever was announced while not listening is found by looking now.
        work.notify_one();
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

/// One listening connection, until it fails.
async fn listen_once(
    config: &tokio_postgres::Config,
    work: &Notify,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // The connection only makes progress while polled, so it is driven here, in the same task as
    // the LISTEN it has to carry, and every notification it brings wakes the worker.
    let drive = async {
        while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(_) = message? {
                work.notify_one();
            }
        }
        Ok(())
    };
    let subscribe = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        // Announcements made before LISTEN took effect were missed: look once now.
        work.notify_one();
        std::future::pending::<Result<(), tokio_postgres::Error>>().await
    };
    tokio::select! {
        ended = drive => ended,
        failed = subscribe => failed,
    }
}
