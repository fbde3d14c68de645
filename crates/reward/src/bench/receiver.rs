//! The bench's own receiver: a minimal HTTP server on loopback that records each arrival (which
//! trigger event, when, on which webhook path) and answers by path: `/ok/..` 204, `/fail/..` 500,
//! `/hang/..` never (until the sender's timeout).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
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

#[derive(Deserialize)]
struct Probe {
    data: ProbeData,
}

#[derive(Deserialize)]
struct ProbeData {
    id: Option<String>,
}

impl BenchReceiver {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/{mode}/{name}", post(receive))
            .with_state(Arc::clone(&shared));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
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

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path((mode, name)): Path<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    match mode.as_str() {
        "fail" => return StatusCode::INTERNAL_SERVER_ERROR,
        "hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return StatusCode::NO_CONTENT;
        }
        _ => {}
    }
    let trigger_event = serde_json::from_slice::<Probe>(&body)
        .ok()
        .and_then(|probe| probe.data.id)
        .unwrap_or_default();
    shared
        .arrivals
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arrival {
            trigger_event,
            path: format!("/{mode}/{name}"),
            at,
        });
    StatusCode::NO_CONTENT
}
