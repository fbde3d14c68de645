//! The bench's own receiver: a minimal HTTP server on loopback that records each arrival (which
//! trigger event, when, on which webhook path) and answers by path: `/ok/..` 204, `/fail/..` 500,
//! `/hang/..` never (until the sender's timeout).
//!
//! It stands in for the customers' endpoints, so it should cost as little as it can: every
//! microsecond it spends is taken from the server being measured on a shared machine. Hence hyper
//! without a router, and the trigger event's id read from the body without building a JSON tree.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;

/// One request that reached the receiver.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub trigger_event: String,
    pub path: String,
    pub at: Instant,
}

#[derive(Default)]
struct Shared {
    arrivals: Mutex<Vec<Arrival>>,
}

#[derive(Clone)]
pub struct BenchReceiver {
    pub base_url: String,
    shared: Arc<Shared>,
}

/// The part of a payload the receiver reads: `data.id`, borrowed from the body.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow)]
    data: ProbeData<'a>,
}

#[derive(Deserialize)]
struct ProbeData<'a> {
    #[serde(borrow)]
    id: Option<&'a str>,
}

/// How the receiver answers a path.
enum Mode {
    Ok,
    Fail,
    Hang,
}

impl Mode {
    /// `/ok/..`, `/fail/..` or `/hang/..`; anything else is answered 404.
    fn of(path: &str) -> Option<Self> {
        let rest = path.strip_prefix('/')?;
        let (mode, name) = rest.split_once('/')?;
        if name.is_empty() || name.contains('/') {
            return None;
        }
        match mode {
            "ok" => Some(Self::Ok),
            "fail" => Some(Self::Fail),
            "hang" => Some(Self::Hang),
            _ => None,
        }
    }
}

impl BenchReceiver {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared::default());
        tokio::spawn(accept_connections(listener, Arc::clone(&shared)));
        Ok(Self { base_url, shared })
    }

    /// Takes every arrival recorded so far.
    pub fn drain(&self) -> Vec<Arrival> {
        std::mem::take(
            &mut *self
                .shared
                .arrivals
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }
}

async fn accept_connections(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, most likely: let some connections close first.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |request| receive(Arc::clone(&shared), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn receive(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let at = Instant::now();
    let path = request.uri().path().to_owned();
    let status = match Mode::of(&path) {
        None => StatusCode::NOT_FOUND,
        Some(Mode::Fail) => StatusCode::INTERNAL_SERVER_ERROR,
        Some(Mode::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::NO_CONTENT
        }
        Some(Mode::Ok) => {
            let body = match request.into_body().collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => Bytes::new(),
            };
            let trigger_event = serde_json::from_slice::<Probe<'_>>(&body)
                .ok()
                .and_then(|probe| probe.data.id)
                .unwrap_or_default()
                .to_owned();
            shared
                .arrivals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Arrival {
                    trigger_event,
                    path,
                    at,
                });
            StatusCode::NO_CONTENT
        }
    };
    let mut response = Response::new(Empty::new());
    *response.status_mut() = status;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_choose_the_answer() {
        assert!(matches!(Mode::of("/ok/deliver-0"), Some(Mode::Ok)));
        assert!(matches!(Mode::of("/fail/x"), Some(Mode::Fail)));
        assert!(matches!(Mode::of("/hang/x"), Some(Mode::Hang)));
        assert!(Mode::of("/ok/").is_none());
        assert!(Mode::of("/ok/a/b").is_none());
        assert!(Mode::of("/other/x").is_none());
        assert!(Mode::of("ok/x").is_none());
    }
}
