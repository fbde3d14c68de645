//! Coalescing concurrent calls into batches: each caller queues its request and waits for its
//! own answer, while a task takes whatever has queued up (at most `max_batch`) and hands it to
//! one batch function, with up to `concurrent` batches under way at once ([`Overlap`] says when
//! a second one may start).
//!
//! Under light load a batch is a single request, answered as soon as it would have been alone;
//! under heavy load one statement serves many requests. PostgreSQL's cost is per statement and
//! per round trip far more than per row, so this is what lets a node keep up on a small machine.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reward_store::{StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};

/// Requests waiting for a batch at most; past it callers wait (back-pressure).
const QUEUE: usize = 4096;

/// When a batch may start while another is under way.
#[derive(Debug, Clone, Copy)]
pub enum Overlap {
    /// At once (reads: nothing to gain by waiting).
    Always,
    /// After waiting up to this long for a batch under way to end; the next batch then takes
    /// everything queued meanwhile. For writes: each transaction costs a commit
    /// (a WAL flush) and a handful of statements whatever its size, so one batch at a time,
    /// as large as the load makes it, costs the database least per request, which is what
    /// lets several nodes, each seeing a share of the requests, keep up (docs/scaling.md). A
    /// batch that stalls (waiting for a row another node holds) holds the next one back only
    /// this long.
    After(Duration),
}

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
    pub fn start<F, Fut>(max_batch: usize, concurrent: usize, overlap: Overlap, run: F) -> Self
    where
        F: Fn(Vec<Call<Q, A>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (queue, calls) = mpsc::channel(QUEUE);
        tokio::spawn(form_batches(
            calls,
            Limits {
                max_batch: max_batch.max(1),
                concurrent: concurrent.max(1),
                overlap,
            },
            run,
        ));
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

struct Limits {
    max_batch: usize,
    concurrent: usize,
    overlap: Overlap,
}

async fn form_batches<Q, A, F, Fut>(mut calls: mpsc::Receiver<Call<Q, A>>, limits: Limits, run: F)
where
    Q: Send + 'static,
    A: Send + 'static,
    F: Fn(Vec<Call<Q, A>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let batches = Arc::new(Semaphore::new(limits.concurrent));
    // Told each time a batch ends.
    let ended = Arc::new(Notify::new());
    loop {
        let Ok(permit) = Arc::clone(&batches).acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(limits.max_batch);
        if calls.recv_many(&mut batch, limits.max_batch).await == 0 {
            return;
        }
        // Listening before looking, so an end between the two is not missed.
        let an_end = ended.notified();
        tokio::pin!(an_end);
        an_end.as_mut().enable();
        let under_way = limits.concurrent - 1 - batches.available_permits();
        if let (Overlap::After(wait), true) = (limits.overlap, under_way > 0) {
            let _ = tokio::time::timeout(wait, an_end).await;
            while batch.len() < limits.max_batch {
                match calls.try_recv() {
                    Ok(call) => batch.push(call),
                    Err(_) => break,
                }
            }
        }
        let running = run(batch);
        let ended = Arc::clone(&ended);
        tokio::spawn(async move {
            running.await;
            drop(permit);
            ended.notify_waiters();
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::sync::Mutex;

    use super::*;

    /// Each batch as (its size, when it started, when it ended); the first takes `first_takes`.
    type Batches = Arc<Mutex<Vec<(usize, Instant, Instant)>>>;

    async fn three_calls(
        overlap: Overlap,
        first_takes: Duration,
    ) -> Vec<(usize, Instant, Instant)> {
        let batches: Batches = Arc::default();
        let seen = Arc::clone(&batches);
        let coalescer = Arc::new(Coalescer::start(
            16,
            4,
            overlap,
            move |calls: Vec<Call<u32, u32>>| {
                let seen = Arc::clone(&seen);
                async move {
                    let started = Instant::now();
                    let first = seen.lock().await.is_empty();
                    let size = calls.len();
                    seen.lock().await.push((size, started, started));
                    if first {
                        tokio::time::sleep(first_takes).await;
                    }
                    for call in calls {
                        let request = call.request;
                        call.answer(Ok(request));
                    }
                    if let Some(batch) = seen.lock().await.iter_mut().find(|b| b.1 == started) {
                        batch.2 = Instant::now();
                    }
                }
            },
        ));
        let first = tokio::spawn({
            let coalescer = Arc::clone(&coalescer);
            async move { coalescer.call(1).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (second, third) = tokio::join!(coalescer.call(2), coalescer.call(3));
        assert_eq!(first.await.expect("task").expect("answer"), 1);
        assert_eq!((second.expect("answer"), third.expect("answer")), (2, 3));
        let seen = batches.lock().await.clone();
        seen
    }

    #[tokio::test]
    async fn a_batch_waits_for_the_one_under_way_and_takes_all_that_queued() {
        let batches = three_calls(
            Overlap::After(Duration::from_secs(5)),
            Duration::from_millis(200),
        )
        .await;
        assert_eq!(batches.len(), 2, "{batches:?}");
        assert_eq!(batches[1].0, 2, "the two queued calls went together");
        assert!(
            batches[1].1 >= batches[0].2,
            "it started once the first ended"
        );
    }

    #[tokio::test]
    async fn a_stalled_batch_holds_the_next_back_only_so_long() {
        let batches = three_calls(
            Overlap::After(Duration::from_millis(50)),
            Duration::from_secs(2),
        )
        .await;
        assert!(batches.len() >= 2, "{batches:?}");
        let waited = batches[1].1.duration_since(batches[0].1);
        assert!(
            batches[1].1 < batches[0].2,
            "it started beside the stalled one"
        );
        assert!(waited < Duration::from_secs(1), "waited {waited:?}");
    }

    #[tokio::test]
    async fn reads_start_at_once() {
        let batches = three_calls(Overlap::Always, Duration::from_millis(500)).await;
        assert!(batches.len() >= 2, "{batches:?}");
        assert!(
            batches[1].1 < batches[0].2,
            "the second started beside the first"
        );
    }
}
