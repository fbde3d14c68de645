//! The single writer, with group commit.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` every commit costs an fsync.
//! So one thread owns the writing connection and runs jobs in batches: it takes every job waiting,
//! runs them in one transaction, commits the batch once (one fsync for all), and only then
//! answers each caller. An answer therefore always means "durable", and throughput grows with
//! concurrency instead of being capped by the disk.
//!
//! A failing job must change nothing. Most fail before they write (validation, lookups), which
//! costs the batch nothing. One that fails after writing (SQLite's change counter moved) makes
//! the writer roll the batch back, answer that job with its error, and run the others again in a
//! new transaction: jobs are closures that can run twice, and nothing of a rolled-back attempt
//! was answered or seen. This replaced a savepoint per job, whose in-memory statement journal
//! copied every page a job touched (about a tenth of the server's CPU in a profile).

use std::thread;

use reward_store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::errors::from_sqlite;

/// Most jobs committed together; bounds the latency one batch adds to its first job.
const MAX_BATCH: usize = 512;
/// Jobs waiting for the writer before callers wait to enqueue (back-pressure).
const QUEUE_DEPTH: usize = 4096;

/// How one run of a job went.
enum Ran {
    Succeeded,
    /// Failed without writing anything: the transaction goes on.
    FailedCleanly,
    /// Failed after writing, or SQLite ended the transaction: the batch must be rolled back.
    FailedAfterWriting {
        unavailable: bool,
    },
}

/// One caller's work and the channel its answer goes back on.
trait Job: Send {
    /// Runs the work inside the batch's transaction, keeping its outcome for the answer. May run
    /// again when the batch is rolled back and retried.
    fn run(&mut self, connection: &Connection) -> Ran;
    /// Answers: the job's own error if it failed, else the batch's fate.
    fn answer(self: Box<Self>, committed: Result<(), StoreError>);
}

struct WriteJob<F, T> {
    work: F,
    outcome: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<F, T> Job for WriteJob<F, T>
where
    T: Send + 'static,
    F: FnMut(&Connection) -> StoreResult<T> + Send + 'static,
{
    fn run(&mut self, connection: &Connection) -> Ran {
        let changes_before = connection.total_changes();
        let outcome = (self.work)(connection);
        let ran = match &outcome {
            Ok(_) if !connection.is_autocommit() => Ran::Succeeded,
            Ok(_) => Ran::FailedAfterWriting { unavailable: true },
            Err(_)
                if connection.total_changes() == changes_before && !connection.is_autocommit() =>
            {
                Ran::FailedCleanly
            }
            Err(error) => Ran::FailedAfterWriting {
                unavailable: matches!(error, StoreError::Unavailable(_)),
            },
        };
        self.outcome = Some(outcome);
        ran
    }

    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        let answer = match (self.outcome, committed) {
            (Some(Err(error)), _) => Err(error),
            (_, Err(error)) => Err(error),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (None, Ok(())) => Err(StoreError::Internal(
                "a job was answered before it ran".into(),
            )),
        };
        let _ = self.reply.send(answer);
    }
}

pub struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

fn writer_stopped() -> StoreError {
    StoreError::Unavailable("the database writer has stopped".into())
}

impl Writer {
    pub fn start(connection: Connection) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        thread::Builder::new()
            .name("reward-sqlite-writer".into())
            .spawn(move || run_batches(connection, queue))?;
        Ok(Self { jobs })
    }

    /// Runs `work` in a write transaction and answers once it is committed (durable). `work` may
    /// run more than once (when another job in its batch fails after writing), so it must not
    /// consume what it captured.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(WriteJob {
            work,
            outcome: None,
            reply,
        });
        self.jobs.send(job).await.map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }
}

fn run_batches(connection: Connection, mut queue: mpsc::Receiver<Box<dyn Job>>) {
    if let Err(error) = crate::subscriptions::remember_on_writer(&connection) {
        // Only slower: every event then reads its account's webhooks.
        tracing::warn!(%error, "the writer could not remember webhooks between events");
    }
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&connection, std::mem::take(&mut batch));
    }
}

/// Runs and commits one batch, then answers every job in it.
fn run_batch(connection: &Connection, mut jobs: Vec<Box<dyn Job>>) {
    loop {
        if let Err(error) = run_cached(connection, "BEGIN IMMEDIATE") {
            return answer_all(jobs, Err(from_sqlite(error)));
        }
        match run_jobs(connection, &mut jobs) {
            None => break,
            Some((failed, unavailable)) => {
                // SQLite may have rolled back already (a full disk); then this fails harmlessly.
                let _ = run_cached(connection, "ROLLBACK");
                let failed_job = jobs.remove(failed);
                if unavailable {
                    // The store itself is in trouble: running the others again would fail
                    // again, one by one. Everyone is told to retry (503); nothing was written.
                    let error =
                        StoreError::Unavailable("the database gave up the transaction".into());
                    failed_job.answer(Err(error.clone()));
                    return answer_all(jobs, Err(error));
                }
                failed_job.answer(Ok(()));
                if jobs.is_empty() {
                    return;
                }
            }
        }
    }
    let committed = run_cached(connection, "COMMIT").map_err(from_sqlite);
    if committed.is_err() {
        let _ = run_cached(connection, "ROLLBACK");
    }
    answer_all(jobs, committed);
}

/// Runs every job in the open transaction; stops at the first that failed after writing, with
/// its index and whether the store was unavailable.
fn run_jobs(connection: &Connection, jobs: &mut [Box<dyn Job>]) -> Option<(usize, bool)> {
    jobs.iter_mut()
        .enumerate()
        .find_map(|(index, job)| match job.run(connection) {
            Ran::Succeeded | Ran::FailedCleanly => None,
            Ran::FailedAfterWriting { unavailable } => Some((index, unavailable)),
        })
}

fn answer_all(jobs: Vec<Box<dyn Job>>, committed: Result<(), StoreError>) {
    for job in jobs {
        let result = match &committed {
            Ok(()) => Ok(()),
            Err(error) => Err(error.clone()),
        };
        job.answer(result);
    }
}

/// Runs one transaction-control statement from the statement cache: these run for every batch,
/// and parsing them each time showed in profiles.
fn run_cached(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn writer() -> Writer {
        let connection = Connection::open_in_memory().expect("open");
        connection
            .execute_batch("CREATE TABLE rows (name TEXT PRIMARY KEY)")
            .expect("schema");
        Writer::start(connection).expect("start")
    }

    fn insert(connection: &Connection, name: &str) -> StoreResult<()> {
        connection
            .execute("INSERT INTO rows (name) VALUES (?1)", [name])
            .map(|_| ())
            .map_err(from_sqlite)
    }

    fn names(connection: &Connection) -> StoreResult<Vec<String>> {
        let mut statement = connection
            .prepare("SELECT name FROM rows ORDER BY name")
            .map_err(from_sqlite)?;
        let names = statement
            .query_map([], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(from_sqlite)?;
        Ok(names)
    }

    /// Keeps the writer busy for a moment, so the jobs sent next queue up and run as one batch.
    async fn hold(writer: &std::sync::Arc<Writer>) -> tokio::task::JoinHandle<StoreResult<()>> {
        let writer = std::sync::Arc::clone(writer);
        let blocker = tokio::spawn(async move {
            writer
                .write(|_| {
                    std::thread::sleep(Duration::from_millis(200));
                    Ok(())
                })
                .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        blocker
    }

    /// Jobs in one batch: one fails after writing, one fails before, two succeed. The failed ones
    /// change nothing; the others commit (the ones before the failure ran a second time).
    #[tokio::test]
    async fn a_job_failing_after_writing_leaves_no_trace_and_the_batch_commits() {
        let writer = std::sync::Arc::new(writer());
        let blocker = hold(&writer).await;
        let before = writer.write(|c| insert(c, "before"));
        let wrote_then_failed = writer.write(|c| {
            insert(c, "half")?;
            Err::<(), _>(StoreError::BalanceOverflow)
        });
        let failed_cleanly = writer.write(|_| Err::<(), _>(StoreError::NotFound));
        let after = writer.write(|c| insert(c, "after"));
        let (before, half, clean, after) =
            tokio::join!(before, wrote_then_failed, failed_cleanly, after);
        blocker.await.expect("blocker").expect("blocker job");
        assert!(before.is_ok(), "{before:?}");
        assert!(matches!(half, Err(StoreError::BalanceOverflow)), "{half:?}");
        assert!(matches!(clean, Err(StoreError::NotFound)), "{clean:?}");
        assert!(after.is_ok(), "{after:?}");
        let stored = writer.write(names).await.expect("names");
        assert_eq!(stored, ["after", "before"]);
    }

    /// A job that runs again after a rollback sees none of its first run's writes.
    #[tokio::test]
    async fn jobs_run_again_after_a_rollback_start_from_a_clean_slate() {
        let writer = std::sync::Arc::new(writer());
        let blocker = hold(&writer).await;
        // Inserting the same key twice would fail on the second run if the first survived.
        let first = writer.write(|c| insert(c, "once"));
        let failing = writer.write(|c| {
            insert(c, "doomed")?;
            Err::<(), _>(StoreError::BalanceOverflow)
        });
        let (first, failing) = tokio::join!(first, failing);
        blocker.await.expect("blocker").expect("blocker job");
        assert!(first.is_ok(), "{first:?}");
        assert!(failing.is_err());
        assert_eq!(writer.write(names).await.expect("names"), ["once"]);
    }
}
