//! Sending one delivery: the exact payload bytes, the Standard Webhooks headers, one shared
//! client (keep-alive, rustls), no redirects, no proxies, a hard timeout, and at most 1 KiB of the
//! answer kept; and at most so many connections to one host at once ([`HostSlots`]).
//!
//! The client is hyper-util's pooled HTTP/1.1 client with hyper-rustls, without a convenience
//! layer above it: it follows no redirects, uses no proxy and retries nothing by itself, which is
//! what a webhook sender needs, and each request costs less (reqwest's layers were a sixth of the
//! runtime's time in a fan-out profile).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER, USER_AGENT};
use hyper::{Method, Request, Response, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use reward_core::delivery::AttemptResult;
use reward_core::names::TargetPolicy;
use reward_core::retry::parse_retry_after;
use reward_core::signing::signature_header;
use reward_core::time::Timestamp;
use reward_core::trace::TraceParent;
use reward_store::records::ClaimedDelivery;

use super::dns::TargetDns;
use super::targets::{refusal_for_literal_host, TargetResolver};

/// How much of a receiver's answer is kept.
pub const MAX_RESPONSE_BODY: usize = 1024;

pub const USER_AGENT_VALUE: &str = concat!("Reward-Webhooks/", env!("CARGO_PKG_VERSION"));

/// What one attempt produced.
#[derive(Debug, Clone)]
pub struct SendOutcome {
    pub result: AttemptResult,
    pub status_code: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

impl SendOutcome {
    fn failed(error: String) -> Self {
        Self {
            result: AttemptResult::Failed { retry_after: None },
            status_code: None,
            response_body: None,
            error: Some(error),
        }
    }
}

/// Connections to one host (host and port) at once by default. The worker also caps attempts
/// per webhook (`PER_WEBHOOK_IN_FLIGHT`, 64); this cap protects a host that many webhooks (of
/// many accounts) point at, such as a shared integration platform, from being flooded by Reward.
/// It is four webhooks' worth, so one slow webhook alone cannot take every slot of a host its
/// neighbours also use.
pub const DEFAULT_PER_HOST_CONNECTIONS: usize = 256;
/// Hosts remembered before idle ones are forgotten (bounds the memory).
const HOSTS_REMEMBERED: usize = 4096;

/// A semaphore per target host: an attempt holds one of its permits for its whole exchange.
pub struct HostSlots {
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl HostSlots {
    pub fn new(per_host: usize) -> Self {
        Self {
            per_host: per_host.max(1),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a free connection slot to `host` (`name:port`).
    pub async fn acquire(&self, host: &str) -> OwnedSemaphorePermit {
        let semaphore = self.semaphore(host);
        semaphore
            .acquire_owned()
            .await
            .expect("host semaphores are never closed")
    }

    /// A free connection slot to `host` (`name:port`), when one is free right now.
    pub fn try_acquire(&self, host: &str) -> Option<OwnedSemaphorePermit> {
        self.semaphore(host).try_acquire_owned().ok()
    }

    /// The host's semaphore, made on first use (its name is copied only then).
    fn semaphore(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(semaphore) = hosts.get(host) {
            return Arc::clone(semaphore);
        }
        if hosts.len() >= HOSTS_REMEMBERED {
            // Idle: nobody holds or waits for it (the map's own reference is the only one).
            hosts.retain(|_, semaphore| Arc::strong_count(semaphore) > 1);
        }
        let semaphore = Arc::new(Semaphore::new(self.per_host));
        hosts.insert(host.to_owned(), Arc::clone(&semaphore));
        semaphore
    }

    /// Hosts remembered right now.
    pub fn remembered(&self) -> usize {
        self.hosts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

type HttpsClient = Client<HttpsConnector<HttpConnector<TargetResolver>>, Full<Bytes>>;

#[derive(Clone)]
pub struct Sender {
    client: HttpsClient,
    timeout: Duration,
    policy: TargetPolicy,
    hosts: Arc<HostSlots>,
}

impl Sender {
    pub fn new(timeout: Duration, policy: TargetPolicy) -> anyhow::Result<Self> {
        let mut http = HttpConnector::new_with_resolver(TargetResolver {
            public_only: policy == TargetPolicy::SecureOnly,
            dns: TargetDns::from_system(timeout),
        });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let connector = crate::outgoing::https_connector(http)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(DEFAULT_PER_HOST_CONNECTIONS)
            .build(connector);
        Ok(Self {
            client,
            timeout,
            policy,
            hosts: Arc::new(HostSlots::new(DEFAULT_PER_HOST_CONNECTIONS)),
        })
    }

    /// At most `per_host` connections to one target host at once.
    pub fn with_per_host_limit(mut self, per_host: usize) -> Self {
        self.hosts = Arc::new(HostSlots::new(per_host));
        self
    }

    /// Attempts the delivery once, sending `trace` as its `traceparent` when given. Never fails:
    /// every problem is a failed attempt.
    pub async fn send(
        &self,
        delivery: &ClaimedDelivery,
        trace: Option<&TraceParent>,
    ) -> SendOutcome {
        if self.policy == TargetPolicy::SecureOnly {
            if let Some(refusal) = refusal_for_literal_host(&delivery.url) {
                return SendOutcome::failed(refusal);
            }
            if delivery.url.url().scheme() != "https" {
                return SendOutcome::failed("refused: only https:// targets are allowed".into());
            }
        }
        // Waiting for a slot counts in the attempt's timeout, so an attempt still ends well
        // within its lease.
        let started = Instant::now();
        let host = delivery.url.host();
        let port = delivery.url.url().port_or_known_default().unwrap_or(0);
        let target = format!("{host}:{port}");
        // The usual case, a free slot, needs no timer.
        let slot = match self.hosts.try_acquire(&target) {
            Some(slot) => Ok(slot),
            None => tokio::time::timeout(self.timeout, self.hosts.acquire(&target)).await,
        };
        let Ok(_slot) = slot else {
            return SendOutcome::failed(format!(
                "timed out after {} waiting for a connection to {host} (at most {} at once)",
                humanize(self.timeout),
                self.hosts.per_host
            ));
        };
        self.exchange(delivery, trace, started + self.timeout).await
    }

    /// Sends the request and reads the answer's status by `deadline`; then what of its body
    /// arrives by then. A 2xx that arrived in time has delivered, however slowly its body follows.
    async fn exchange(
        &self,
        delivery: &ClaimedDelivery,
        trace: Option<&TraceParent>,
        deadline: Instant,
    ) -> SendOutcome {
        let timed_out = || format!("timed out after {}", humanize(self.timeout));
        let now = Timestamp::now();
        let timestamp = now.as_unix_seconds();
        let message_id = delivery.event_id.as_str();
        let signature = signature_header(
            &delivery.secrets.signing_at(now),
            message_id,
            timestamp,
            delivery.payload.as_bytes(),
        );
        // The customer's headers first; none of them can be one of Reward's (they are refused
        // when set), so Reward's own follow unchanged. A `traceparent` of the customer's gives
        // way to the attempt's own when traced: a request carries one trace context.
        let builder = delivery
            .headers
            .iter()
            .filter(|(name, _)| trace.is_none() || !name.eq_ignore_ascii_case("traceparent"))
            .fold(
                Request::builder()
                    .method(Method::POST)
                    .uri(delivery.url.url().as_str()),
                |builder, (name, value)| builder.header(name, value),
            );
        let builder = match trace {
            Some(trace) => builder.header("traceparent", trace.to_string()),
            None => builder,
        };
        let request = builder
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
            .header("webhook-id", message_id)
            .header("webhook-timestamp", timestamp)
            .header("webhook-signature", signature)
            .body(Full::new(Bytes::from(delivery.payload.clone())));
        let request = match request {
            Ok(request) => request,
            Err(error) => return SendOutcome::failed(format!("request failed: {error}")),
        };
        let answered = tokio::time::timeout_at(deadline.into(), self.client.request(request)).await;
        let mut response = match answered {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return SendOutcome::failed(describe(&error)),
            Err(_) => return SendOutcome::failed(timed_out()),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        let location = response.headers().contains_key(LOCATION);
        let mut kept = Vec::new();
        let read_error =
            match tokio::time::timeout_at(deadline.into(), read_prefix(&mut response, &mut kept))
                .await
            {
                Ok(read) => read,
                Err(_) => Some(format!("{} reading the answer's body", timed_out())),
            };
        let response_body = (!kept.is_empty()).then(|| lossy(&kept));
        let result = classify(status, retry_after);
        let error = match (&result, read_error) {
            (AttemptResult::Delivered, _) => None,
            (_, Some(read_error)) => Some(read_error),
            _ if status.is_redirection() => Some(format!(
                "HTTP {}: redirects are not followed{}",
                status.as_u16(),
                if location {
                    " (the Location header was ignored)"
                } else {
                    ""
                }
            )),
            _ => Some(format!("HTTP {}", status.as_u16())),
        };
        SendOutcome {
            result,
            status_code: Some(status.as_u16()),
            response_body,
            error,
        }
    }
}

/// 2xx delivers; 410 asks never to be called again; the rest fail (429 and 503 may say when to
/// come back).
pub fn classify(status: StatusCode, retry_after: Option<Duration>) -> AttemptResult {
    if status.is_success() {
        AttemptResult::Delivered
    } else if status == StatusCode::GONE {
        AttemptResult::Gone
    } else if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        AttemptResult::Failed { retry_after }
    } else {
        AttemptResult::Failed { retry_after: None }
    }
}

/// Reads at most [`MAX_RESPONSE_BODY`] bytes of the answer into `kept`; the rest is never read.
/// Returns why reading stopped early, if it did. (It runs under the attempt's deadline; what was
/// kept before the deadline stays.)
async fn read_prefix(response: &mut Response<Incoming>, kept: &mut Vec<u8>) -> Option<String> {
    let body = response.body_mut();
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                let Ok(chunk) = frame.into_data() else {
                    continue; // trailers
                };
                let room = MAX_RESPONSE_BODY - kept.len();
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if kept.len() >= MAX_RESPONSE_BODY {
                    break;
                }
            }
            None => break,
            Some(Err(error)) => {
                let what = format!("reading the answer failed: {error}");
                return Some(with_causes(&what, &error));
            }
        }
    }
    None
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A readable error, with the causes the client wraps.
fn describe(error: &hyper_util::client::legacy::Error) -> String {
    let what = if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    with_causes(what, error)
}

fn with_causes(what: &str, error: &dyn std::error::Error) -> String {
    let mut text = what.to_owned();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn humanize(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_host_gets_at_most_its_slots() {
        let slots = HostSlots::new(2);
        let first = slots.acquire("a.example").await;
        let _second = slots.acquire("a.example").await;
        let third = tokio::time::timeout(Duration::from_millis(50), slots.acquire("a.example"));
        assert!(third.await.is_err(), "a third connection must wait");
        let _other = slots.acquire("b.example").await;
        drop(first);
        let third = tokio::time::timeout(Duration::from_millis(50), slots.acquire("a.example"));
        assert!(third.await.is_ok(), "a freed slot is taken");
    }

    #[test]
    fn classification() {
        assert_eq!(
            classify(StatusCode::NO_CONTENT, None),
            AttemptResult::Delivered
        );
        assert_eq!(classify(StatusCode::GONE, None), AttemptResult::Gone);
        let later = Some(Duration::from_secs(5));
        assert_eq!(
            classify(StatusCode::SERVICE_UNAVAILABLE, later),
            AttemptResult::Failed { retry_after: later }
        );
        assert_eq!(
            classify(StatusCode::INTERNAL_SERVER_ERROR, later),
            AttemptResult::Failed { retry_after: None }
        );
        assert_eq!(
            classify(StatusCode::FOUND, None),
            AttemptResult::Failed { retry_after: None }
        );
    }
}
