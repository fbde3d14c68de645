//! Resolving webhook hosts without ever holding a thread (issue 14 §1).
//!
//! The system's `getaddrinfo` blocks a thread for as long as a name server takes to answer, and
//! tokio runs it on the blocking pool the SQLite readers share: a few hundred names whose DNS never
//! answers used to stall every account's API reads. This resolver is hickory's, fully async (its
//! queries are tokio sockets), reading the same system configuration (`/etc/resolv.conf` and
//! `/etc/hosts`), and bounded three ways:
//!
//! - a deadline per lookup ([`TargetDns::deadline`]), well inside the attempt's own timeout, so a
//!   lookup that never answers ends as a failed attempt that says so;
//! - concurrent lookups of one name share one query (64 attempts to one slow host ask once);
//! - at most [`MAX_LOOKUPS_IN_FLIGHT`] distinct names are looked up at once.
//!
//! Answers are cached by hickory for their TTL ([`CACHED_ANSWERS`] at most).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::config::{ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use tokio::sync::{watch, Semaphore};

/// Distinct names looked up at once, at most. With one lookup per name, one account (at most 100
/// webhooks) cannot take more than a small share of them.
pub const MAX_LOOKUPS_IN_FLIGHT: usize = 1024;
/// Answers hickory keeps (each for its TTL).
const CACHED_ANSWERS: u64 = 4096;
/// The longest a lookup may take, whatever the attempt's timeout.
const LONGEST_LOOKUP: Duration = Duration::from_secs(10);

/// Why a host has no addresses to connect to.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DnsError {
    #[error("{host} did not resolve in time (no DNS answer within {} ms)", .after.as_millis())]
    TimedOut { host: String, after: Duration },
    #[error("{host} did not resolve: {reason}")]
    Failed { host: String, reason: String },
}

type Answer = Result<Arc<[IpAddr]>, DnsError>;

/// The resolver deliveries use (cheap to clone: everything is shared).
#[derive(Clone)]
pub struct TargetDns {
    inner: Arc<Shared>,
}

struct Shared {
    resolver: TokioResolver,
    deadline: Duration,
    lookups: Semaphore,
    /// Names being looked up, each with the channel its answer will be published on.
    in_flight: Mutex<HashMap<String, watch::Receiver<Option<Answer>>>>,
}

impl TargetDns {
    /// The system's configuration (`/etc/resolv.conf`, `/etc/hosts`); lookups get at most two
    /// thirds of `attempt_timeout` (and never more than 10 s), leaving the rest to connecting and
    /// the exchange itself.
    pub fn from_system(attempt_timeout: Duration) -> Self {
        let provider = TokioRuntimeProvider::default();
        let builder = Resolver::builder(provider.clone()).unwrap_or_else(|error| {
            // Literal addresses still work; names fail with a readable error per attempt.
            tracing::warn!(%error, "cannot read the system's DNS configuration; webhook hosts given by name will not resolve");
            Resolver::builder_with_config(ResolverConfig::default(), provider)
        });
        Self::with_builder(builder, attempt_timeout)
    }

    fn with_builder(
        mut builder: hickory_resolver::ResolverBuilder<TokioRuntimeProvider>,
        attempt_timeout: Duration,
    ) -> Self {
        let deadline = (attempt_timeout * 2 / 3).min(LONGEST_LOOKUP);
        let options: &mut ResolverOpts = builder.options_mut();
        // Two tries per server within the deadline: one lost UDP datagram is not a failure.
        options.timeout = deadline / 2;
        options.attempts = 2;
        options.cache_size = CACHED_ANSWERS;
        // Many names may wait on one server at once; hickory's default (32 per connection)
        // would turn one slow customer's names into "busy" errors for everyone else's.
        options.max_active_requests = MAX_LOOKUPS_IN_FLIGHT;
        // Building fails only for encrypted transports, which this resolver is built without.
        let resolver = builder
            .build()
            .expect("a resolver over plain UDP and TCP always builds");
        Self {
            inner: Arc::new(Shared {
                resolver,
                deadline,
                lookups: Semaphore::new(MAX_LOOKUPS_IN_FLIGHT),
                in_flight: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// How long a lookup may take at most.
    pub fn deadline(&self) -> Duration {
        self.inner.deadline
    }

    /// The addresses of `host`. Concurrent calls for one name share one lookup, which runs on its
    /// own task: an attempt that gives up does not cancel it for the others.
    pub async fn lookup(&self, host: &str) -> Answer {
        let mut answer = self.join_or_start(host);
        let published = answer.wait_for(Option::is_some).await;
        match published.as_deref() {
            Ok(Some(answer)) => answer.clone(),
            // The lookup task always publishes before it ends; a panic inside hickory would not.
            _ => Err(DnsError::Failed {
                host: host.to_owned(),
                reason: "the lookup stopped without an answer".to_owned(),
            }),
        }
    }

    fn join_or_start(&self, host: &str) -> watch::Receiver<Option<Answer>> {
        let mut in_flight = self
            .inner
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(answer) = in_flight.get(host) {
            return answer.clone();
        }
        let (publish, answer) = watch::channel(None);
        in_flight.insert(host.to_owned(), answer.clone());
        let inner = Arc::clone(&self.inner);
        let host = host.to_owned();
        tokio::spawn(async move {
            let result = inner.resolve(&host).await;
            // Forget the name before publishing, so a caller arriving later asks again (and
            // gets hickory's cache) rather than an answer that may be about to expire.
            inner
                .in_flight
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(&host);
            publish.send_replace(Some(result));
        });
        answer
    }
}

impl Shared {
    async fn resolve(&self, host: &str) -> Answer {
        let deadline = self.deadline;
        let timed_out = || DnsError::TimedOut {
            host: host.to_owned(),
            after: deadline,
        };
        let lookup = async {
            // Waiting for a free lookup counts in the deadline.
            let Ok(_permit) = self.lookups.acquire().await else {
                return Err(timed_out());
            };
            self.resolver.lookup_ip(host).await.map_err(|error| {
                if is_timeout(&error) {
                    timed_out()
                } else {
                    DnsError::Failed {
                        host: host.to_owned(),
                        reason: error.to_string(),
                    }
                }
            })
        };
        match tokio::time::timeout(deadline, lookup).await {
            Ok(Ok(found)) => Ok(found.iter().collect::<Vec<_>>().into()),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(timed_out()),
        }
    }
}

fn is_timeout(error: &hickory_resolver::net::NetError) -> bool {
    matches!(error, hickory_resolver::net::NetError::Timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::config::NameServerConfig;
    use std::time::Instant;

    /// A resolver asking only `server` (the hosts file is still read).
    fn asking(server: std::net::SocketAddr, attempt_timeout: Duration) -> TargetDns {
        let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
        for connection in &mut name_server.connections {
            connection.port = server.port();
        }
        let config = ResolverConfig::from_name_servers(vec![name_server]);
        let builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
        TargetDns::with_builder(builder, attempt_timeout)
    }

    /// A name server that reads every query and never answers.
    async fn silent_server() -> (std::net::SocketAddr, tokio::net::UdpSocket) {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        (socket.local_addr().expect("address"), socket)
    }

    #[tokio::test]
    async fn a_name_server_that_never_answers_ends_the_lookup_at_its_deadline() {
        let (server, _socket) = silent_server().await;
        let dns = asking(server, Duration::from_millis(600));
        assert_eq!(dns.deadline(), Duration::from_millis(400));
        let started = Instant::now();
        let error = dns
            .lookup("hook.no-answer.example.com")
            .await
            .expect_err("no answer");
        let took = started.elapsed();
        assert!(matches!(error, DnsError::TimedOut { .. }), "{error}");
        assert!(
            error.to_string().contains("did not resolve in time"),
            "{error}"
        );
        assert!(took < Duration::from_millis(600), "took {took:?}");
    }

    #[tokio::test]
    async fn concurrent_lookups_of_one_name_share_one_query() {
        let (server, socket) = silent_server().await;
        let dns = asking(server, Duration::from_millis(600));
        let lookups: Vec<_> = (0..50)
            .map(|_| {
                let dns = dns.clone();
                tokio::spawn(async move { dns.lookup("shared.no-answer.example.com").await })
            })
            .collect();
        for lookup in lookups {
            assert!(lookup.await.expect("task").is_err());
        }
        // Count the queries that reached the server: at most the resolver's own retries of
        // one lookup (two tries, A and AAAA, maybe with search domains), never 50.
        let mut queries = 0;
        let mut buffer = [0_u8; 512];
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(20), socket.recv_from(&mut buffer)).await
        {
            queries += 1;
        }
        assert!(queries > 0, "the server was asked");
        assert!(queries < 20, "{queries} queries for one name");
    }

    #[tokio::test]
    async fn names_in_the_hosts_file_resolve_without_a_server() {
        let (server, _socket) = silent_server().await;
        let dns = asking(server, Duration::from_secs(3));
        let found = dns.lookup("localhost").await.expect("localhost");
        assert!(found.iter().any(IpAddr::is_loopback), "{found:?}");
    }
}
