//! The single writer, with group commit.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` every commit costs an fsync.
//! So one thread owns the writing connection and runs jobs in batches: it takes every job waiting,
//! runs each inside its own savepoint (a failing job rolls back alone), commits the batch once
//! (one fsync for all), and only then answers each caller. An answer therefore always means
//! "durable", and throughput grows with concurrency instead of being capped by the disk.

use std::thread;

use reward_store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::errors::{from_sqlite, Duplicate};

/// Most jobs committed together; bounds the latency one batch adds to its first job.
const MAX_BATCH: usize = 512;
/// Jobs waiting for the writer before callers wait to enqueue (back-pressure).
const QUEUE_DEPTH: usize = 4096;

/// One caller's work and the channel its answer goes back on.
trait Job: Send {
    /// Runs the work inside the batch's transaction; returns whether it succeeded and how to
    /// answer once the batch's fate is known.
    fn run(self: Box<Self>, connection: &Connection) -> (bool, Box<dyn Answer>);
    /// Answers without running: the batch could not start.
    fn abandon(self: Box<Self>, error: StoreError);
}

trait Answer: Send {
    fn send(self: Box<Self>, committed: Result<(), StoreError>);
}

struct WriteJob<F, T> {
    work: F,
    reply: oneshot::Sender<StoreResult<T>>,
}

struct PendingAnswer<T> {
    outcome: StoreResult<T>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<F, T> Job for WriteJob<F, T>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
{
    fn run(self: Box<Self>, connection: &Connection) -> (bool, Box<dyn Answer>) {
        let outcome = (self.work)(connection);
        let succeeded = outcome.is_ok();
        let answer = PendingAnswer {
            outcome,
            reply: self.reply,
        };
        (succeeded, Box::new(answer))
    }

    fn abandon(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

impl<T: Send> Answer for PendingAnswer<T> {
    fn send(self: Box<Self>, committed: Result<(), StoreError>) {
        // A job's own error wins; otherwise a failed commit fails everyone in the batch.
        let answer = match (self.outcome, committed) {
            (Err(error), _) => Err(error),
            (Ok(_), Err(error)) => Err(error),
            (Ok(value), Ok(())) => Ok(value),
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

    /// Runs `work` in a write transaction and answers once it is committed (durable).
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(WriteJob { work, reply });
        self.jobs.send(job).await.map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }
}

fn run_batches(connection: Connection, mut queue: mpsc::Receiver<Box<dyn Job>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&connection, &mut batch);
    }
}

/// Runs and commits one batch, then answers every job in it.
fn run_batch(connection: &Connection, batch: &mut Vec<Box<dyn Job>>) {
    if let Err(error) = run_cached(connection, "BEGIN IMMEDIATE") {
        let error = from_sqlite(error);
        for job in batch.drain(..) {
            job.abandon(error.duplicate());
        }
        return;
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut jobs = batch.drain(..);
    while let Some(job) = jobs.next() {
        if let Err(error) = run_cached(connection, "SAVEPOINT job") {
            job.abandon(from_sqlite(error));
            continue;
        }
        let (succeeded, answer) = job.run(connection);
        let closed = if succeeded {
            run_cached(connection, "RELEASE job")
        } else {
            run_cached(connection, "ROLLBACK TO job")
                .and_then(|()| run_cached(connection, "RELEASE job"))
        };
        answers.push(answer);
        if let Err(error) = closed {
            // The transaction is in an unknown state (SQLite may have rolled it back itself, on
            // a full disk or an I/O error): give it up whole. Nothing in it was written, and the
            // store's trouble is not the callers' fault, so each is told to retry (503).
            let _ = connection.execute_batch("ROLLBACK");
            let error =
                StoreError::Unavailable(format!("the database gave up the transaction: {error}"));
            for answer in answers {
                answer.send(Err(error.duplicate()));
            }
            for job in jobs {
                job.abandon(error.duplicate());
            }
            return;
        }
    }
    drop(jobs);
    let committed = run_cached(connection, "COMMIT").map_err(from_sqlite);
    if committed.is_err() {
        let _ = connection.execute_batch("ROLLBACK");
    }
    for answer in answers {
        let result = match &committed {
            Ok(()) => Ok(()),
            Err(error) => Err(error.duplicate()),
        };
        answer.send(result);
    }
}

/// Runs one transaction-control statement from the statement cache: these run several times per
/// job, and parsing them each time showed in profiles.
fn run_cached(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(|_| ())
}
