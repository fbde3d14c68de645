//! Coalescing concurrent calls into batches: each caller queues its request and waits for its
//! own answer, while a task takes whatever has queued up (at most `max_batch`) and hands it to
//! one batch function, with up to `concurrent` batches under way at once.
//!
//! Under light load a batch is a single request, answered as soon as it would have been alone;
//! under heavy load one statement serves many requests. PostgreSQL's cost is per statement and
//! per round trip far more than per row, so this is what lets a node keep up on a small machine.

use std::future::Future;
use std::sync::Arc;

use reward_store::{StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Requests waiting for a batch at most; past it callers wait (back-pressure).
const QUEUE: usize = 4096;

/// One caller's request and where its answer goes.
pub struct Call<Q, A> {
    pub request: Q,
    pub reply: oneshot::Sender<StoreResult<A>>,
}

impl<Q, A> Call<Q, A> {
    /// Answers the caller; one that stopped waiting is not an error.
    pub fn answer(self, answer: StoreResult<A>) {
        let _ = self.reply.send(answer);
    }
}

pub struct Coalescer<Q, A> {
    queue: mpsc::Sender<Call<Q, A>>,
}

impl<Q: Send + 'static, A: Send + 'static> Coalescer<Q, A> {
    /// Starts the task forming batches; it stops when the coalescer is dropped. `run` must answer
    /// every call it is given.
    pub fn start<F, Fut>(max_batch: usize, concurrent: usize, run: F) -> Self
    where
        F: Fn(Vec<Call<Q, A>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (queue, calls) = mpsc::channel(QUEUE);
        tokio::spawn(form_batches(calls, max_batch, concurrent, run));
        Self { queue }
    }

    /// Queues the request and waits for its answer.
    pub async fn call(&self, request: Q) -> StoreResult<A> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Call { request, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the batching task stopped".into())
}

async fn form_batches<Q, A, F, Fut>(
    mut calls: mpsc::Receiver<Call<Q, A>>,
    max_batch: usize,
    concurrent: usize,
    run: F,
) where
    Q: Send + 'static,
    A: Send + 'static,
    F: Fn(Vec<Call<Q, A>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let batches = Arc::new(Semaphore::new(concurrent.max(1)));
    loop {
        let Ok(permit) = Arc::clone(&batches).acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(max_batch);
        if calls.recv_many(&mut batch, max_batch.max(1)).await == 0 {
            return;
        }
        let running = run(batch);
        tokio::spawn(async move {
            running.await;
            drop(permit);
        });
    }
}
