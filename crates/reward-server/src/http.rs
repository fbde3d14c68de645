//! Serving HTTP connections with deadlines against slow clients: a connection that has not sent a
//! request's headers within `header_read_timeout` is closed (hyper's `header_read_timeout`,
//! which `axum::serve` leaves unset), and every body has its own deadline
//! (`api::limits::with_body_deadline`). Otherwise this is `axum::serve`: HTTP/1.1, one task per
//! connection, and on shutdown no new connections while those open finish their requests.
//!
//! A request head (request line and headers) over [`MAX_HEAD_BYTES`] cannot be read at all:
//! hyper answers it with a bare 431 (and a target over 64 KiB or more than 100 headers likewise
//! with 414 or 431) and closes the connection. Below those hard limits the API's own, smaller
//! limits answer in its JSON error shape (`api::limits::check_request_head`).

use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The largest request head hyper reads (its default would be about 400 KiB per connection).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Pause after `accept` failed (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` until `shutdown`, then waits for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
