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

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio_postgres::{AsyncMessage, NoTls};

/// The channel work is announced on.
pub const CHANNEL: &str = "reward_work";

/// Pause before listening again after the connection failed.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// The worker's wake-up, and whether a claim may find something.
///
/// Deliveries this node hands to its own worker never need a claim; only those left for claiming
/// (announced by a commit here or on another node) do, and a claim skips those of webhooks at
/// their in-flight limit. So "slots were freed" wakes the worker only while such deliveries may
/// remain: in the steady state, where every delivery is handed off, recording attempts costs no
/// claim (a claim on a large queue of leased deliveries is a scan PostgreSQL pays for).
struct Wakeup {
    /// Holds one wake-up while no worker waits, so none is lost between two waits.
    notify: Notify,
    /// Set when work was announced, until a claim took it (or left it only because its webhooks
    /// were busy, which keeps it set).
    unclaimed: AtomicBool,
}

impl Wakeup {
    fn work_may_be_due(&self) {
        self.unclaimed.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

pub struct WorkSignal {
    config: tokio_postgres::Config,
    /// Woken by notifications and by this node's own changes.
    work: Arc<Wakeup>,
    /// Announcements waiting for the announcing task; many coalesce into one.
    to_announce: Arc<Notify>,
    /// The listening task, once started; stopped when the store is dropped.
    listener: OnceLock<AbortHandle>,
    /// The announcing task, once started; stopped when the store is dropped.
    announcer: OnceLock<AbortHandle>,
}

impl WorkSignal {
    pub fn new(config: tokio_postgres::Config) -> Self {
        Self {
            config,
            work: Arc::new(Wakeup {
                notify: Notify::new(),
                // Work may be waiting from before this node started.
                unclaimed: AtomicBool::new(true),
            }),
            to_announce: Arc::new(Notify::new()),
            listener: OnceLock::new(),
            announcer: OnceLock::new(),
        }
    }

    /// Resolves when new work may be due, on this node or any other.
    pub async fn wait(&self) {
        self.listener.get_or_init(|| {
            tokio::spawn(listen(self.config.clone(), Arc::clone(&self.work))).abort_handle()
        });
        self.work.notify.notified().await;
    }

    /// Its recorded attempts released leases, which frees their webhooks' in-flight slots for the
    /// deliveries waiting behind them: wakes this node's worker, when some may be waiting.
    pub fn slots_freed(&self) {
        if self.work.unclaimed.load(Ordering::SeqCst) {
            self.work.notify.notify_one();
        }
    }

    /// A claim begins: it takes what was announced, unless it says otherwise. Returns whether
    /// anything was announced since the last claim.
    pub fn claim_starting(&self) -> bool {
        self.work.unclaimed.swap(false, Ordering::SeqCst)
    }

    /// The claim left announced deliveries behind (their webhooks were at their limit).
    pub fn claim_left_some(&self) {
        self.work.unclaimed.store(true, Ordering::SeqCst);
    }

    /// Tells every node's worker that work may be due; call it after the commit that made it so.
    pub fn announce(&self, pool: &Pool) {
        self.work.work_may_be_due();
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
async fn listen(config: tokio_postgres::Config, work: Arc<Wakeup>) {
    loop {
        if let Err(error) = listen_once(&config, &work).await {
            tracing::warn!(%error, "listening for new work failed; workers poll until it is back");
        }
        // Whatever was announced while not listening is found by looking now.
        work.work_may_be_due();
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

/// One listening connection, until it fails.
async fn listen_once(
    config: &tokio_postgres::Config,
    work: &Wakeup,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // The connection only makes progress while polled, so it is driven here, in the same task as
    // the LISTEN it has to carry, and every notification it brings wakes the worker.
    let drive = async {
        while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(_) = message? {
                work.work_may_be_due();
            }
        }
        Ok(())
    };
    let subscribe = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        // Announcements made before LISTEN took effect were missed: look once now.
        work.work_may_be_due();
        std::future::pending::<Result<(), tokio_postgres::Error>>().await
    };
    tokio::select! {
        ended = drive => ended,
        failed = subscribe => failed,
    }
}
