//! Per-webhook rate limits (issue 16): attempts to a limited webhook never start faster than its
//! limit, on one node and across three on PostgreSQL (the limit is shared, not per node); what
//! waits is `pending` in the API; an unlimited webhook of the same account is not slowed.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{create_account, fresh_postgres_database, Api, ServerProcess, TestServer};
use crate::receiver::Receiver;

const LIMIT: usize = 20;
/// Enough that the backlog, once every trigger event is recorded, still holds well over five
/// seconds of work at `LIMIT` a second.
const QUEUED: usize = 200;

/// A webhook receiving `trigger_event.created` only (one delivery per trigger event).
async fn create_webhook(api: &Api, url: &str, rate_limit: Value) -> Value {
    let reply = api
        .post(
            "/v1/webhooks",
            json!({
                "name": "Limited",
                "url": url,
                "events": ["trigger_event.created"],
                "rate_limit": rate_limit,
            }),
        )
        .await;
    assert_eq!(
        reply.status,
        reqwest::StatusCode::CREATED,
        "{:?}",
        reply.body
    );
    reply.body
}

/// Records `count` trigger events, spread over the given nodes' APIs, ten at a time per API.
async fn trigger_events(apis: &[Api], count: usize) {
    let per_client = count / 10;
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..10 {
        let api = apis[client % apis.len()].clone();
        clients.spawn(async move {
            for n in 0..per_client {
                api.trigger_event(&format!("u{client}-{n}"), "signup", json!(null))
                    .await;
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.expect("a client");
    }
}

/// The starts a receiver saw hold the limit: about `LIMIT` a second over the five seconds after
/// the first start once the whole backlog was recorded (within 10%; before that, starts also wait
/// for trigger events to be recorded), and no one-second window, at any time, holds more than
/// `LIMIT + 1`.
fn assert_paced(arrivals: &[Instant], backlog_recorded: Instant) {
    let mut arrivals = arrivals.to_vec();
    arrivals.sort();
    let first = arrivals[0];
    let offsets: Vec<u128> = arrivals
        .iter()
        .map(|at| at.duration_since(first).as_millis())
        .collect();
    let recorded_after_ms = backlog_recorded
        .saturating_duration_since(first)
        .as_millis();
    let Some(window_start) = arrivals.iter().find(|at| **at >= backlog_recorded) else {
        panic!("every start came before the backlog was recorded ({recorded_after_ms} ms)");
    };
    let in_five_seconds = arrivals
        .iter()
        .filter(|at| **at >= *window_start)
        .filter(|at| at.duration_since(*window_start) < Duration::from_secs(5))
        .count();
    let expected = LIMIT * 5;
    assert!(
        in_five_seconds.abs_diff(expected) <= expected / 10,
        "{in_five_seconds} starts in the 5 s after the first once the backlog was recorded \
         ({recorded_after_ms} ms after the first start), expected {expected} ± 10% \
         (ms after the first: {offsets:?})"
    );
    for (index, start) in arrivals.iter().enumerate() {
        let within_a_second = arrivals[index..]
            .iter()
            .take_while(|at| at.duration_since(*start) < Duration::from_secs(1))
            .count();
        assert!(
            within_a_second <= LIMIT + 1,
            "{within_a_second} starts within one second of start {index} \
             (ms after the first: {offsets:?})"
        );
    }
}

/// Queues `QUEUED` deliveries to a limited and an unlimited webhook of one account, and checks
/// the pace of the first, that the second got everything while the first still had work pending,
/// and that the waiting deliveries show as `pending`.
async fn limited_beside_unlimited(apis: &[Api]) {
    let limited = Receiver::start().await;
    let unlimited = Receiver::start().await;
    let api = &apis[0];
    let webhook = create_webhook(api, &limited.url, json!(LIMIT)).await;
    assert_eq!(webhook["rate_limit"], LIMIT);
    create_webhook(api, &unlimited.url, json!(null)).await;
    api.put_trigger("signup", json!({"fixed": 1})).await;

    trigger_events(apis, QUEUED).await;
    let backlog_recorded = Instant::now();
    unlimited.wait_for(QUEUED, Duration::from_secs(60)).await;
    let limited_so_far = limited.count();
    assert!(
        limited_so_far < QUEUED / 2,
        "the unlimited webhook got all {QUEUED} while the limited one got {limited_so_far}"
    );
    let webhook_id = webhook["id"].as_str().expect("id");
    let waiting = api
        .deliveries(webhook_id)
        .await
        .into_iter()
        .filter(|delivery| delivery["status"] == "pending" && delivery["attempt_count"] == 0)
        .count();
    assert!(waiting > 0, "deliveries waiting for their slot are pending");

    let received = limited.wait_for(QUEUED, Duration::from_secs(60)).await;
    let arrivals: Vec<Instant> = received.iter().map(|request| request.at).collect();
    assert_paced(&arrivals, backlog_recorded);
}

// The server and the receivers share the test's runtime: more than one thread, so that the
// test's own clients do not stall the worker's timers or the receivers' clocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_webhook_is_paced_and_others_are_not_slowed() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    limited_beside_unlimited(&[api]).await;
    server.stop().await;
}

// The receivers share the test's runtime with its clients: more than one thread, so that the
// clients do not delay the receivers' clocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_one_rate_limit() {
    let Some((_database, database_url)) = fresh_postgres_database().await else {
        return;
    };
    let env = [
        ("REWARD_ALLOW_INSECURE_TARGETS", "true"),
        ("REWARD_DELIVERY_TIMEOUT", "2s"),
        ("REWARD_RATE_LIMIT", "0"),
    ];
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(ServerProcess::spawn(&database_url, &env).await);
    }
    let account = create_account(&database_url, "Acme").await;
    let key = account["api_key"].as_str().expect("api_key");
    let apis: Vec<Api> = nodes
        .iter()
        .map(|node| Api::new(&node.base_url, key))
        .collect();
    limited_beside_unlimited(&apis).await;
    for node in nodes {
        node.kill().await;
    }
}

/// Retries go through claims too: a webhook limited to one a second gets a failing delivery's
/// first four attempts over at least two seconds (unlimited, this policy's retries come after
/// 100, 200 and 400 ms). Slots are a second apart and each start lies within its slot's second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_obey_the_rate_limit() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    receiver.answer(crate::receiver::Answer::Status(500));
    create_webhook(&api, &receiver.url, json!(1)).await;
    api.put_trigger("signup", json!({"fixed": 1})).await;
    api.trigger_event("u1", "signup", json!(null)).await;

    let attempts = receiver.wait_for(4, Duration::from_secs(30)).await;
    let spread = attempts[3].at.duration_since(attempts[0].at);
    assert!(
        spread >= Duration::from_secs(2),
        "four attempts within {spread:?} at one a second"
    );
    server.stop().await;
}

/// A limited webhook's backlog, larger than what one claim looks at and due before everything
/// else, does not keep another webhook's retry from being claimed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_backlog_does_not_crowd_out_other_webhooks() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let limited = Receiver::start().await;
    create_webhook(&api, &limited.url, json!(1)).await;
    api.put_trigger("signup", json!({"fixed": 1})).await;
    // More than a claim's candidates (256 + 1000 on SQLite), all due before the retry below.
    trigger_events(std::slice::from_ref(&api), 1300).await;

    let other = Receiver::start().await;
    other.script(vec![crate::receiver::Answer::Status(500)]);
    let reply = api
        .post(
            "/v1/webhooks",
            json!({"name": "Other", "url": other.url, "events": ["balance.credit_points_issued"]}),
        )
        .await;
    assert_eq!(
        reply.status,
        reqwest::StatusCode::CREATED,
        "{:?}",
        reply.body
    );
    api.trigger_event("last", "signup", json!(null)).await;
    // The first attempt fails; its retry (after 100 ms) is claimed, not starved behind the
    // backlog (which takes over 20 minutes at one a second).
    other.wait_for(2, Duration::from_secs(20)).await;
    assert!(limited.count() < 100, "the backlog is still there");
    server.stop().await;
}
