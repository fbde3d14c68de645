//! Ordered delivery (`ordering: per_user`): one user's deliveries to a webhook are attempted one at
//! a time, in the order the events were recorded, through failures, retries and a node's death;
//! different users never wait for each other; explicit requests (test events, resends, manual
//! retries) go out of order.
//!
//! The receiver here answers 500 to a seeded pseudo-random third of requests and logs every
//! arrival with where it stands in its user's order: the user's i-th trigger event has its
//! `trigger_event.created` at 2i - 1 and the balance change it caused (points 1, so `sequence` i)
//! at 2i.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::common::{fresh_postgres_database, Api, TestServer};
use crate::idempotency::futures_join_all;
use crate::many_nodes::three_nodes;

/// One request as it arrived.
#[derive(Debug, Clone)]
struct Arrival {
    user: String,
    event_type: String,
    /// The trigger event it is about (`data.id` of `trigger_event.created`,
    /// `data.trigger_event.id` of a balance change).
    trigger_event: Option<String>,
    sequence: Option<i64>,
    answered_ok: bool,
}

struct Log {
    arrivals: Mutex<Vec<Arrival>>,
    /// The pseudo-random state (splitmix64), seeded per test.
    random: Mutex<u64>,
    /// Requests answered 500: one in `fail_one_in` (0: none).
    fail_one_in: u64,
    /// Users whose requests always fail.
    failing_users: Mutex<HashSet<String>>,
    /// Failures in a row per message: never more than three, so no delivery runs out of retries.
    failures: Mutex<HashMap<String, u32>>,
    /// Requests being answered, per user; and how often a second one arrived meanwhile.
    in_flight: Mutex<HashMap<String, Vec<String>>>,
    /// Each time a user's request arrived while another of theirs was in flight: what was.
    overlaps: Mutex<Vec<String>>,
    /// How long each answer takes.
    delay: Duration,
}

#[derive(Clone)]
struct OrderedReceiver {
    url: String,
    log: Arc<Log>,
}

impl OrderedReceiver {
    async fn start(seed: u64, fail_one_in: u64, delay: Duration) -> Self {
        let log = Arc::new(Log {
            arrivals: Mutex::new(Vec::new()),
            random: Mutex::new(seed),
            fail_one_in,
            failing_users: Mutex::new(HashSet::new()),
            failures: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            overlaps: Mutex::new(Vec::new()),
            delay,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(Arc::clone(&log));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, log }
    }

    fn fail_user(&self, user: &str, failing: bool) {
        let mut users = self.log.failing_users.lock().expect("lock");
        if failing {
            users.insert(user.to_owned());
        } else {
            users.remove(user);
        }
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.log.arrivals.lock().expect("lock").clone()
    }

    fn overlaps(&self) -> Vec<String> {
        self.log.overlaps.lock().expect("lock").clone()
    }
}

fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn receive(State(log): State<Arc<Log>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let data = &event["data"];
    let user = data["user"]["id"].as_str().unwrap_or("").to_owned();
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let label = format!(
        "{} {} ({webhook_id})",
        event["type"].as_str().unwrap_or(""),
        data["id"]
            .as_str()
            .or_else(|| data["trigger_event"]["id"].as_str())
            .unwrap_or("")
    );
    {
        let mut in_flight = log.in_flight.lock().expect("lock");
        let mine = in_flight.entry(user.clone()).or_default();
        if !mine.is_empty() && !user.is_empty() {
            log.overlaps
                .lock()
                .expect("lock")
                .push(format!("{user}: {label} while {mine:?}"));
        }
        mine.push(label.clone());
    }
    // Counted out however the request ends: a node killed mid-request drops it unanswered.
    let _answered = InFlight {
        log: Arc::clone(&log),
        user: user.clone(),
        label,
    };
    let fails = {
        let always = log.failing_users.lock().expect("lock").contains(&user);
        let drawn = log.fail_one_in > 0
            && next_random(&mut log.random.lock().expect("lock")).is_multiple_of(log.fail_one_in);
        let mut failures = log.failures.lock().expect("lock");
        let in_a_row = failures.entry(webhook_id.clone()).or_insert(0);
        let fails = always || (drawn && *in_a_row < 3);
        *in_a_row = if fails { *in_a_row + 1 } else { 0 };
        fails
    };
    log.arrivals.lock().expect("lock").push(Arrival {
        user: user.clone(),
        event_type: event["type"].as_str().unwrap_or("").to_owned(),
        trigger_event: data["id"]
            .as_str()
            .or_else(|| data["trigger_event"]["id"].as_str())
            .map(str::to_owned),
        sequence: data["sequence"].as_i64(),
        answered_ok: !fails,
    });
    if !log.delay.is_zero() {
        tokio::time::sleep(log.delay).await;
    }
    if fails {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

/// One of a user's requests being answered; counted out when dropped.
struct InFlight {
    log: Arc<Log>,
    user: String,
    label: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.log.in_flight.lock() {
            if let Some(mine) = in_flight.get_mut(&self.user) {
                if let Some(at) = mine.iter().position(|label| *label == self.label) {
                    mine.remove(at);
                }
            }
        }
    }
}

/// Creates an ordered webhook for both user event types; returns its id.
async fn ordered_webhook(api: &Api, url: &str) -> String {
    let reply = api
        .post(
            "/v1/webhooks",
            json!({
                "name": "Balances",
                "url": url,
                "events": ["trigger_event.created", "balance.credit_points_issued"],
                "ordering": "per_user",
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["ordering"], "per_user");
    reply.body["id"].as_str().expect("id").to_owned()
}

/// Records `count` trigger events for each user, each user's one after another (users at once,
/// on the given nodes in turn); returns each user's trigger event ids in recording order.
async fn record_per_user(
    apis: &[Api],
    users: &[String],
    count: usize,
) -> HashMap<String, Vec<String>> {
    let recorded = futures_join_all(users.iter().enumerate().map(|(index, user)| {
        let apis = apis.to_vec();
        let user = user.clone();
        async move {
            let mut ids = Vec::with_capacity(count);
            for n in 0..count {
                let api = &apis[(index + n) % apis.len()];
                let recorded = api.trigger_event(&user, "purchase", json!(n)).await;
                ids.push(recorded["id"].as_str().expect("id").to_owned());
            }
            (user, ids)
        }
    }))
    .await;
    recorded.into_iter().collect()
}

/// Where an arrival stands in its user's order (see the module's doc).
fn order_key(arrival: &Arrival, positions: &HashMap<String, usize>) -> usize {
    let trigger_event = arrival
        .trigger_event
        .as_deref()
        .expect("about a trigger event");
    let i = positions[trigger_event];
    if arrival.event_type == "trigger_event.created" {
        2 * i - 1
    } else {
        2 * i
    }
}

/// Waits until every user's 2 × count events have arrived answered 2xx; panics after `timeout`.
async fn wait_all_succeeded(receiver: &OrderedReceiver, expected: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let succeeded: HashSet<(String, String, Option<String>)> = receiver
            .arrivals()
            .into_iter()
            .filter(|arrival| arrival.answered_ok)
            .map(|arrival| (arrival.user, arrival.event_type, arrival.trigger_event))
            .collect();
        if succeeded.len() >= expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {expected} events arrived within {timeout:?}",
            succeeded.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks the rules of ordered delivery on what arrived, per user: never two of the user's
/// requests at once; never an earlier event after a later one was attempted (a repeat of the
/// same one may come, after a crash); first successful arrivals in strictly increasing order and
/// all there; balance sequences 1..=count in that order. Returns (requests, repeats of a
/// success).
fn check_order(
    receiver: &OrderedReceiver,
    recorded: &HashMap<String, Vec<String>>,
    count: usize,
) -> (usize, usize) {
    let overlaps = receiver.overlaps();
    assert!(
        overlaps.is_empty(),
        "two requests of one user were in flight at once ({} times): {:?}",
        overlaps.len(),
        &overlaps[..overlaps.len().min(5)]
    );
    let positions: HashMap<String, usize> = recorded
        .values()
        .flat_map(|ids| ids.iter().enumerate().map(|(i, id)| (id.clone(), i + 1)))
        .collect();
    let arrivals = receiver.arrivals();
    let mut repeats = 0;
    for user in recorded.keys() {
        let mine: Vec<&Arrival> = arrivals.iter().filter(|a| &a.user == user).collect();
        let keys: Vec<usize> = mine.iter().map(|a| order_key(a, &positions)).collect();
        for pair in keys.windows(2) {
            assert!(
                pair[0] <= pair[1],
                "user {user}: event {} arrived after event {} had been attempted: {keys:?}",
                pair[1],
                pair[0]
            );
        }
        let mut first_successes = Vec::new();
        let mut sequences = Vec::new();
        for arrival in mine.iter().filter(|a| a.answered_ok) {
            let key = order_key(arrival, &positions);
            if first_successes.contains(&key) {
                repeats += 1;
                continue;
            }
            first_successes.push(key);
            if arrival.event_type == "balance.credit_points_issued" {
                sequences.push(
                    arrival
                        .sequence
                        .expect("a balance change carries its sequence"),
                );
            }
        }
        let expected: Vec<usize> = (1..=2 * count).collect();
        assert_eq!(
            first_successes, expected,
            "user {user}: first successful arrivals out of order or missing"
        );
        let expected: Vec<i64> = (1..=i64::try_from(count).expect("count")).collect();
        assert_eq!(sequences, expected, "user {user}: balance sequences");
    }
    (arrivals.len(), repeats)
}

fn users(count: usize) -> Vec<String> {
    (0..count).map(|n| format!("user-{n:02}")).collect()
}

#[tokio::test]
async fn each_users_deliveries_arrive_one_at_a_time_in_order_through_failures() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = OrderedReceiver::start(17, 3, Duration::ZERO).await;
    ordered_webhook(&api, &receiver.url).await;
    api.put_trigger("purchase", json!({"fixed": 1})).await;

    let users = users(50);
    let recorded = record_per_user(std::slice::from_ref(&api), &users, 20).await;
    wait_all_succeeded(&receiver, 50 * 40, Duration::from_secs(90)).await;
    let (requests, repeats) = check_order(&receiver, &recorded, 20);
    let failed = receiver
        .arrivals()
        .iter()
        .filter(|a| !a.answered_ok)
        .count();
    eprintln!(
        "ordered: 50 users x 20 trigger events, {requests} requests, {failed} answered 500, \
         {repeats} repeats of a success"
    );
    assert!(failed >= 300, "about a third failed: {failed}");
    assert_eq!(repeats, 0, "no crash here, so nothing arrives twice");
    server.stop().await;
}

#[tokio::test]
async fn order_holds_across_three_nodes_when_one_is_killed() {
    let Some((_database, database_url)) = fresh_postgres_database().await else {
        return;
    };
    // Answers take a moment, so that the killed node dies with attempts in flight.
    let receiver = OrderedReceiver::start(42, 3, Duration::from_millis(5)).await;
    let (mut nodes, apis) = three_nodes(&database_url).await;
    let response = apis[0]
        .post(
            "/v1/webhooks",
            json!({"name": "Balances", "url": receiver.url,
                   "events": ["trigger_event.created", "balance.credit_points_issued"],
                   "ordering": "per_user"}),
        )
        .await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    apis[0].put_trigger("purchase", json!({"fixed": 1})).await;

    // Events are recorded through the two nodes that live; all three deliver.
    let users = users(50);
    let recording = {
        let apis = apis[..2].to_vec();
        let users = users.clone();
        tokio::spawn(async move { record_per_user(&apis, &users, 20).await })
    };
    // Kill the third node once deliveries are under way.
    let started = Instant::now();
    while receiver.arrivals().len() < 300 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    nodes.pop().expect("a third node").kill().await;
    let recorded = recording.await.expect("recording");
    wait_all_succeeded(&receiver, 50 * 40, Duration::from_secs(120)).await;
    let (requests, repeats) = check_order(&receiver, &recorded, 20);
    eprintln!(
        "ordered on three nodes, one SIGKILLed: {requests} requests, {repeats} repeats of a \
         success (at least once)"
    );
    for node in nodes {
        node.kill().await;
    }
}

#[tokio::test]
async fn a_users_failing_delivery_holds_back_only_that_user() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = OrderedReceiver::start(1, 0, Duration::ZERO).await;
    let webhook = ordered_webhook(&api, &receiver.url).await;
    api.put_trigger("purchase", json!({"fixed": 1})).await;

    receiver.fail_user("stuck", true);
    let stuck = api.trigger_event("stuck", "purchase", json!(1)).await;
    api.trigger_event("stuck", "purchase", json!(2)).await;
    let started = Instant::now();
    for n in 0..5 {
        api.trigger_event("flowing", "purchase", json!(n)).await;
    }
    // The other user's ten deliveries all arrive while the first user's first one keeps failing.
    let deadline = started + Duration::from_secs(10);
    loop {
        let flowing = receiver
            .arrivals()
            .iter()
            .filter(|a| a.user == "flowing" && a.answered_ok)
            .count();
        if flowing == 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {flowing} of the other user's 10 deliveries arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    // Its retries go on (100 ms, 200 ms, … apart) while nothing else of that user is attempted.
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver
        .arrivals()
        .iter()
        .filter(|a| a.user == "stuck")
        .count()
        < 3
    {
        assert!(
            Instant::now() < deadline,
            "the failing delivery was not retried"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stuck_arrivals: Vec<Arrival> = receiver
        .arrivals()
        .into_iter()
        .filter(|a| a.user == "stuck")
        .collect();
    assert!(
        stuck_arrivals
            .iter()
            .all(|a| a.trigger_event.as_deref() == stuck["id"].as_str()
                && a.event_type == "trigger_event.created"),
        "the user's later deliveries wait for the failing one: {stuck_arrivals:?}"
    );
    eprintln!(
        "one user's failing delivery: the other user's 10 arrived within {took:?}, the first \
         retried {} times meanwhile",
        stuck_arrivals.len()
    );

    // Explicit requests go out of order: a test event arrives while the user's line is held.
    let before = receiver.arrivals().len();
    let sent = api
        .send_test(&webhook, "balance.credit_points_issued")
        .await;
    assert!(sent.status.is_success(), "{:?}", sent.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !receiver.arrivals()[before..]
        .iter()
        .any(|a| a.event_type == "balance.credit_points_issued" && a.user != "stuck")
    {
        assert!(Instant::now() < deadline, "the test event never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Once the endpoint takes the user's requests again, the rest follows in order.
    receiver.fail_user("stuck", false);
    wait_all_succeeded(&receiver, 14 + 1, Duration::from_secs(30)).await;
    let stuck_order: Vec<(String, Option<i64>)> = receiver
        .arrivals()
        .into_iter()
        .filter(|a| a.user == "stuck" && a.answered_ok)
        .map(|a| (a.event_type, a.sequence))
        .collect();
    assert_eq!(
        stuck_order,
        vec![
            ("trigger_event.created".to_owned(), None),
            ("balance.credit_points_issued".to_owned(), Some(1)),
            ("trigger_event.created".to_owned(), None),
            ("balance.credit_points_issued".to_owned(), Some(2)),
        ]
    );
    server.stop().await;
}
