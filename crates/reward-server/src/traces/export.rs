//! Exporting finished spans without ever making a request or an attempt wait.
//!
//! A span that ends is put on a bounded queue with `try_send`: when the queue is full (the
//! collector is slow or gone and the backlog reached `OTEL_BSP_MAX_QUEUE_SIZE`), the span is
//! dropped and counted (`reward_trace_spans_dropped_total`) instead of waited for. One thread of
//! its own takes spans off the queue and exports them in batches, every `OTEL_BSP_SCHEDULE_DELAY`
//! or as soon as a batch is full; a batch the collector did not take is dropped and counted too.
//! That thread runs its own small runtime, so a stuck export never holds a worker thread of the
//! server's runtime.
//!
//! Written here rather than taken from the SDK's batch processor because that one only logs what
//! it drops: an operator needs the count in `/metrics`.

use std::sync::mpsc::{self as std_mpsc, SyncSender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc::{self, error::TrySendError, Receiver, Sender};

/// What the export thread is asked to do.
enum Message {
    Span(Box<SpanData>),
    /// Export everything queued before this, then answer.
    Flush(SyncSender<()>),
}

/// Batches finished spans on a bounded queue and exports them from a thread of their own.
pub struct BoundedExport {
    queue: Sender<Message>,
    dropped: Counter,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for BoundedExport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BoundedExport")
            .finish_non_exhaustive()
    }
}

/// How the export thread batches.
pub struct Batching {
    pub max_queue: usize,
    pub max_batch: usize,
    pub schedule_delay: Duration,
}

/// Whether the export queue is full right now: spans made now would only be dropped, so they
/// are not made at all (see [`super::Traces`]). Holds no span; cheap to clone and ask.
#[derive(Clone)]
pub struct QueueRoom(Sender<Message>);

impl QueueRoom {
    pub fn is_full(&self) -> bool {
        self.0.capacity() == 0
    }
}

impl BoundedExport {
    /// A handle that tells whether the queue is full.
    pub fn room(&self) -> QueueRoom {
        QueueRoom(self.queue.clone())
    }

    /// Starts the export thread with `exporter` (already given its resource).
    pub fn start<E: SpanExporter + 'static>(
        exporter: E,
        batching: Batching,
        dropped: Counter,
    ) -> std::io::Result<Self> {
        let (queue, spans) = mpsc::channel(batching.max_queue);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread_dropped = dropped.clone();
        let thread = std::thread::Builder::new()
            .name("reward-trace-export".to_owned())
            .spawn(move || {
                runtime.block_on(export_until_closed(
                    exporter,
                    spans,
                    batching,
                    thread_dropped,
                ));
            })?;
        Ok(Self {
            queue,
            dropped,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Exports what is queued and stops the thread, waiting at most `timeout`: spans not out by
    /// then are lost with the process.
    fn stop(&self, timeout: Duration) -> OTelSdkResult {
        let Some(thread) = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            return Err(OTelSdkError::AlreadyShutdown);
        };
        let flushed = self.flush(timeout);
        // The thread ends once every sender is gone; ours stays until the provider drops this
        // processor, so it is not joined here (it never holds the process open).
        drop(thread);
        flushed
    }

    fn flush(&self, timeout: Duration) -> OTelSdkResult {
        let (done, finished) = std_mpsc::sync_channel(1);
        let deadline = Instant::now() + timeout;
        let mut message = Message::Flush(done);
        // The queue may be full: keep offering the request until the deadline.
        loop {
            match self.queue.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Closed(_)) => return Err(OTelSdkError::AlreadyShutdown),
                Err(TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        return Err(OTelSdkError::Timeout(timeout));
                    }
                    message = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        finished
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| OTelSdkError::Timeout(timeout))
    }
}

impl SpanProcessor for BoundedExport {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.queue.try_send(Message::Span(Box::new(span))).is_err() {
            self.dropped.inc();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flush(Duration::from_secs(5))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.stop(timeout)
    }
}

/// The export thread's loop: a batch goes out when it is full or `schedule_delay` after its first
/// span; on a flush request, everything queued before it goes out first.
async fn export_until_closed<E: SpanExporter>(
    exporter: E,
    mut spans: Receiver<Message>,
    batching: Batching,
    dropped: Counter,
) {
    let max_batch = batching.max_batch.max(1);
    let mut batch: Vec<SpanData> = Vec::with_capacity(max_batch);
    let mut due: Option<Instant> = None;
    loop {
        let message = match due {
            Some(due) => match tokio::time::timeout_at(due.into(), spans.recv()).await {
                Ok(Some(message)) => Some(message),
                Ok(None) => break,
                Err(_) => None,
            },
            None => match spans.recv().await {
                Some(message) => Some(message),
                None => break,
            },
        };
        match message {
            Some(Message::Span(span)) => {
                batch.push(*span);
                due.get_or_insert_with(|| Instant::now() + batching.schedule_delay);
                if batch.len() >= max_batch {
                    export(&exporter, &mut batch, &dropped).await;
                    due = None;
                }
            }
            Some(Message::Flush(done)) => {
                export(&exporter, &mut batch, &dropped).await;
                due = None;
                let _ = done.send(());
            }
            None => {
                export(&exporter, &mut batch, &dropped).await;
                due = None;
            }
        }
    }
    export(&exporter, &mut batch, &dropped).await;
}

async fn export<E: SpanExporter>(exporter: &E, batch: &mut Vec<SpanData>, dropped: &Counter) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::take(batch);
    let count = spans.len() as u64;
    if let Err(error) = exporter.export(spans).await {
        dropped.inc_by(count);
        tracing::debug!(%error, count, "exporting spans failed; they are dropped");
    }
}
