//! Coalescing concurrent calls into batches: each caller queues its request and waits for its
//! own answer, while a task takes whatever has queued up (at most `max_batch`) and hands it to
//! one batch function, with up to `concurrent` batches under way at once ([`Overlap`] says when
//! a second one may start).
//!
//! Under light load a batch is a single request, answered as soon as it would have been alone;
//! under heavy load one statement serves many requests. PostgreSQL's cost is per statement and
//! per round trip far more than per row, so this is what lets a node keep up on a small machine.
//!
//! With [`Batching::gather`], a batch that starts with fewer requests than it may expect waits a
//! little for the rest (group commit's `commit_delay`, in the node). Clients answered together
//! come back a few hundred microseconds apart: without the wait the first one back would start a
//! batch of its own and leave the others for the next. And under steady load, one batch at a
//! time splits the clients into two groups taking turns (one group's batch runs while the other
//! queues), each batch half as large as it could be: a batch formed behind another therefore
//! also waits for that one's callers to come back, and the two groups become one.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

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

/// How calls are formed into batches.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Calls in one batch at most.
    pub max_batch: usize,
    /// Batches under way at once at most.
    pub concurrent: usize,
    /// When a batch may start while another is under way.
    pub overlap: Overlap,
    /// Whether and how a batch waits for the calls it may expect; `None` never waits (reads).
    pub gather: Option<Gather>,
}

/// A batch waits up to `wait` for the calls it may expect: as many as the batch before had,
/// plus, when it formed behind that one, those queued meanwhile (that batch's callers come back
/// once it ends); but only when that is at least `from`. Below it the load is light enough that
/// a batch gains less than its callers lose: requests arriving on their own at a steady rate
/// (1,000 a second, `reward bench`'s latency scenario) would each wait for a neighbour that is
/// not coming back, 2 ms on the median. A lone caller never waits.
#[derive(Debug, Clone, Copy)]
pub struct Gather {
    pub wait: Duration,
    pub from: usize,
}

pub struct Coalescer<Q, A> {
    queue: mpsc::Sender<Call<Q, A>>,
}

impl<Q: Send + 'static, A: Send + 'static> Coalescer<Q, A> {
    /// Starts the task forming batches; it stops when the coalescer is dropped. `run` must answer
    /// every call it is given.
    pub fn start<F, Fut>(batching: Batching, run: F) -> Self
    where
        F: Fn(Vec<Call<Q, A>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (queue, calls) = mpsc::channel(QUEUE);
        tokio::spawn(form_batches(
            calls,
            Batching {
                max_batch: batching.max_batch.max(1),
                concurrent: batching.concurrent.max(1),
                ..batching
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

async fn form_batches<Q, A, F, Fut>(mut calls: mpsc::Receiver<Call<Q, A>>, limits: Batching, run: F)
where
    Q: Send + 'static,
    A: Send + 'static,
    F: Fn(Vec<Call<Q, A>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let batches = Arc::new(Semaphore::new(limits.concurrent));
    // Told each time a batch ends.
    let ended = Arc::new(Notify::new());
    let mut last_size = 0;
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
        // The callers this batch may expect: those of the batch before, when it has ended and
        // they come back; with that one still under way, also those queued behind it.
        let mut wanted = last_size;
        if let (Overlap::After(wait), true) = (limits.overlap, under_way > 0) {
            let _ = tokio::time::timeout(wait, an_end).await;
            while batch.len() < limits.max_batch {
                match calls.try_recv() {
                    Ok(call) => batch.push(call),
                    Err(_) => break,
                }
            }
            wanted += batch.len();
        }
        if let Some(gather) = limits.gather.filter(|gather| wanted >= gather.from) {
            let wanted = wanted.min(limits.max_batch);
            gather_more(&mut calls, &mut batch, wanted, gather.wait).await;
        }
        last_size = batch.len();
        let running = run(batch);
        let ended = Arc::clone(&ended);
        tokio::spawn(async move {
            running.await;
            drop(permit);
            ended.notify_waiters();
        });
    }
}

/// Adds calls to `batch` as they come until it holds `wanted` or `gather` has passed.
async fn gather_more<C>(
    calls: &mut mpsc::Receiver<C>,
    batch: &mut Vec<C>,
    wanted: usize,
    gather: Duration,
) {
    let deadline = Instant::now() + gather;
    while batch.len() < wanted {
        match tokio::time::timeout_at(deadline, calls.recv()).await {
            Ok(Some(call)) => batch.push(call),
            Ok(None) | Err(_) => return,
        }
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
            Batching {
                max_batch: 16,
                concurrent: 4,
                overlap,
                gather: None,
            },
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

    /// The sizes of the batches a coalescer ran, in order.
    type Sizes = Arc<Mutex<Vec<usize>>>;

    /// A coalescer of one write batch at a time (`gather` as given) whose batches each take
    /// `batch_takes`, and the sizes of the batches it ran.
    fn sizing_coalescer(
        gather: Option<Gather>,
        batch_takes: Duration,
    ) -> (Arc<Coalescer<u32, u32>>, Sizes) {
        let sizes: Sizes = Arc::default();
        let seen = Arc::clone(&sizes);
        let coalescer = Coalescer::start(
            Batching {
                max_batch: 64,
                concurrent: 4,
                overlap: Overlap::After(Duration::from_secs(5)),
                gather,
            },
            move |calls: Vec<Call<u32, u32>>| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock().await.push(calls.len());
                    tokio::time::sleep(batch_takes).await;
                    for call in calls {
                        let request = call.request;
                        call.answer(Ok(request));
                    }
                }
            },
        );
        (Arc::new(coalescer), sizes)
    }

    /// Batches' sizes when `rounds` rounds of `clients` calls go in, each round's calls `apart`
    /// from each other and a round starting once the one before was answered.
    async fn rounds_of_calls(
        gather: Option<Gather>,
        clients: u32,
        rounds: u32,
        apart: Duration,
    ) -> Vec<usize> {
        let (coalescer, sizes) = sizing_coalescer(gather, Duration::ZERO);
        for round in 0..rounds {
            let mut calls = Vec::new();
            for client in 0..clients {
                let coalescer = Arc::clone(&coalescer);
                calls.push(tokio::spawn(async move { coalescer.call(client).await }));
                if round > 0 {
                    tokio::time::sleep(apart).await;
                }
            }
            for call in calls {
                call.await.expect("task").expect("answer");
            }
        }
        let sizes = sizes.lock().await.clone();
        sizes
    }

    #[tokio::test]
    async fn a_smaller_batch_gathers_the_clients_of_the_one_before() {
        // The first round arrives at once; each later one's calls a millisecond apart.
        let gather = |from| {
            Some(Gather {
                wait: Duration::from_millis(200),
                from,
            })
        };
        let apart = Duration::from_millis(1);
        let gathered = rounds_of_calls(gather(2), 4, 3, apart).await;
        assert_eq!(gathered, vec![4, 4, 4], "each round in one batch");
        let alone = rounds_of_calls(None, 4, 3, apart).await;
        assert!(alone.len() > 3, "without gathering they split: {alone:?}");
        let light = rounds_of_calls(gather(5), 4, 3, apart).await;
        assert!(
            light.len() > 3,
            "expecting fewer than `from`, none waits: {light:?}"
        );
    }

    #[tokio::test]
    async fn a_lone_caller_never_waits_to_gather() {
        let started = Instant::now();
        let gather = Gather {
            wait: Duration::from_secs(5),
            from: 1,
        };
        let sizes = rounds_of_calls(Some(gather), 1, 3, Duration::ZERO).await;
        assert_eq!(sizes, vec![1, 1, 1]);
        assert!(started.elapsed() < Duration::from_secs(1), "it waited");
    }

    /// Batch sizes when six clients call ten times each, each call a millisecond after the
    /// answer to the one before, three starting a little after the others; each batch takes 5 ms.
    async fn two_groups_of_clients(gather: Option<Gather>) -> Vec<usize> {
        let (coalescer, sizes) = sizing_coalescer(gather, Duration::from_millis(5));
        let mut clients = Vec::new();
        for client in 0..6 {
            if client == 3 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let coalescer = Arc::clone(&coalescer);
            clients.push(tokio::spawn(async move {
                for _ in 0..10 {
                    coalescer.call(client).await.expect("answer");
                    // The answer's way back and the next request's way in.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }));
        }
        for client in clients {
            client.await.expect("client");
        }
        let sizes = sizes.lock().await.clone();
        sizes
    }

    #[tokio::test]
    async fn clients_taking_turns_become_one_group() {
        let apart = two_groups_of_clients(None).await;
        assert!(apart.iter().all(|&size| size <= 3), "{apart:?}");
        let gather = Gather {
            wait: Duration::from_millis(200),
            from: 2,
        };
        let together = two_groups_of_clients(Some(gather)).await;
        let whole = together.iter().filter(|&&size| size == 6).count();
        assert!(whole >= 8, "the six went together: {together:?}");
        assert!(together.len() <= 12, "{together:?}");
    }
}
