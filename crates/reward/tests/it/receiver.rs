//! A real HTTP receiver on loopback that records what arrives and answers as scripted.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    /// A status with extra headers (e.g. Retry-After, Location).
    WithHeaders(u16, Vec<(&'static str, String)>),
    /// Waits this long, then answers 204.
    After(Duration),
    /// A status with a text body.
    WithBody(u16, &'static str),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("header {name} missing"))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Answer>>,
    default_answer: Mutex<Option<Answer>>,
    arrived: Notify,
    /// Requests being answered right now, and the most ever at once, per webhook-id.
    in_flight: Mutex<std::collections::HashMap<String, usize>>,
    overlaps: AtomicUsize,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
}

impl Receiver {
    /// Starts a receiver answering 204 to everything.
    pub async fn start() -> Self {
        Self::start_at("127.0.0.1:0").await
    }

    /// Starts a receiver on a given address, e.g. a port an endpoint that was down used to have.
    pub async fn start_at(address: &str) -> Self {
        let listener = TcpListener::bind(address).await.expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/{*path}", any(receive))
            .with_state(Arc::clone(&shared));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared }
    }

    /// The answer for every request not covered by a script.
    pub fn answer(&self, answer: Answer) {
        *self.shared.default_answer.lock().expect("lock") = Some(answer);
    }

    /// Answers for the next requests, in order; then the default answer.
    pub fn script(&self, answers: Vec<Answer>) {
        self.shared.script.lock().expect("lock").extend(answers);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("lock").clone()
    }

    pub fn count(&self) -> usize {
        self.shared.received.lock().expect("lock").len()
    }

    /// Requests that overlapped another in-flight request carrying the same webhook-id.
    pub fn overlapping_duplicates(&self) -> usize {
        self.shared.overlaps.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            if self.count() >= n {
                return self.received();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "expected {n} requests within {timeout:?}, got {}",
                    self.count()
                );
            }
            let _ = tokio::time::timeout(left, arrived).await;
        }
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let id = headers
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    {
        let mut in_flight = shared.in_flight.lock().expect("lock");
        let count = in_flight.entry(id.clone()).or_insert(0);
        if *count > 0 && !id.is_empty() {
            shared.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        *count += 1;
    }
    shared.received.lock().expect("lock").push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
        at,
    });
    shared.arrived.notify_waiters();
    let answer = shared
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .or_else(|| shared.default_answer.lock().expect("lock").clone())
        .unwrap_or(Answer::Status(204));
    let response = match answer {
        Answer::Status(code) => status(code).into_response(),
        Answer::WithHeaders(code, extra) => {
            let mut response = status(code).into_response();
            for (name, value) in extra {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::try_from(name), HeaderValue::from_str(&value))
                {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        Answer::WithBody(code, body) => (status(code), body).into_response(),
        Answer::After(delay) => {
            tokio::time::sleep(delay).await;
            StatusCode::NO_CONTENT.into_response()
        }
    };
    if let Some(count) = shared.in_flight.lock().expect("lock").get_mut(&id) {
        *count = count.saturating_sub(1);
    }
    response
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).expect("valid status")
}
