//! Faults outside Reward's control, one test each: an endpoint down for longer than the whole
//! retry schedule, an endpoint streaming a body forever, a restart in the middle of a schedule, and
//! a store that stops taking writes (SQLite locked by another connection, a full disk, a disk that
//! refuses writes; PostgreSQL unreachable). Each asserts what a client sees and that no event the
//! API acknowledged is lost.
//!
//! An endpoint that accepts the connection and never answers is `delivery::a_hanging_endpoint_times_out`.
//! The store's faults are in `store`.

mod store;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{create_account, fresh_database, Api, Reply, ServerProcess, TestServer};
use crate::receiver::{Answer, Receiver};

pub(super) const WAIT: Duration = Duration::from_secs(20);

/// A trigger event the API acknowledged (201): what its `trigger_event.created` must carry.
#[derive(Debug, Clone)]
pub(super) struct Acknowledged {
    pub id: String,
    pub user: String,
}

/// Records a trigger event for `user` (1 point, from the `visit` trigger), with an
/// Idempotency-Key when given.
pub(super) async fn record(api: &Api, user: &str, key: Option<&str>) -> Reply {
    let body = json!({"user_id": user, "trigger_id": "visit", "value": null});
    let headers: Vec<(&str, &str)> = key
        .map(|key| ("idempotency-key", key))
        .into_iter()
        .collect();
    api.send(
        Method::POST,
        "/v1/trigger_events",
        Some(body.to_string().into_bytes()),
        &headers,
    )
    .await
}

pub(super) async fn record_acknowledged(api: &Api, user: &str) -> Acknowledged {
    let reply = record(api, user, None).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    Acknowledged {
        id: reply.body["id"].as_str().expect("id").to_owned(),
        user: user.to_owned(),
    }
}

/// A webhook for both event types on `url`, and the `visit` trigger (1 point each): every trigger
/// event gives the webhook two deliveries.
pub(super) async fn subscribe(api: &Api, url: &str) -> String {
    let webhook = api.create_webhook(url).await;
    api.put_trigger("visit", json!({"fixed": 1})).await;
    webhook["id"].as_str().expect("id").to_owned()
}

/// Waits until every acknowledged trigger event has reached the receiver, and checks that each
/// arrived as it was acknowledged (its id and user), once per event type.
pub(super) async fn assert_all_delivered(
    receiver: &Receiver,
    acknowledged: &[Acknowledged],
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut created: HashMap<String, Value> = HashMap::new();
        let mut issued: HashSet<String> = HashSet::new();
        for request in receiver.received() {
            let event = request.json();
            assert_eq!(request.header("webhook-id"), event["id"], "{event}");
            match event["type"].as_str() {
                Some("trigger_event.created") => {
                    let id = event["data"]["id"].as_str().expect("data.id").to_owned();
                    created.insert(id, event);
                }
                Some("balance.credit_points_issued") => {
                    if let Some(id) = event["data"]["trigger_event"]["id"].as_str() {
                        issued.insert(id.to_owned());
                    }
                }
                other => panic!("unexpected event type {other:?}"),
            }
        }
        let missing: Vec<&Acknowledged> = acknowledged
            .iter()
            .filter(|ack| !created.contains_key(&ack.id) || !issued.contains(&ack.id))
            .collect();
        if missing.is_empty() {
            for ack in acknowledged {
                assert_eq!(created[&ack.id]["data"]["user"]["id"], ack.user.as_str());
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged events never arrived, e.g. {:?}",
            missing.len(),
            acknowledged.len(),
            missing[0]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Converts an arrival's `Instant` to wall-clock milliseconds, to compare with `next_attempt_at`.
fn wall_millis(at: Instant) -> i64 {
    let ago = Instant::now().saturating_duration_since(at);
    let wall = SystemTime::now() - ago;
    let since_epoch = wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since_epoch.as_millis()).expect("millis")
}

pub(super) fn millis_of(rfc3339: &Value) -> i64 {
    let text = rfc3339
        .as_str()
        .unwrap_or_else(|| panic!("a time, got {rfc3339}"));
    reward_core::time::Timestamp::parse_rfc3339(text)
        .expect("RFC 3339")
        .as_millis()
}

/// An address nothing listens on (yet): an endpoint that is down.
fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}

#[tokio::test]
async fn an_endpoint_down_longer_than_the_schedule_gets_everything_after_recover() {
    let started = Instant::now();
    // Four attempts 100, 200 and 400 ms apart: the whole schedule is over in about a second.
    let server = TestServer::start_with(|config| config.retry.max_retries = 3).await;
    let api = server.account("Acme").await;
    let address = free_address();
    let webhook_id = subscribe(&api, &format!("http://{address}/hook")).await;
    let since = reward_core::time::Timestamp::now().plus_millis(-1000);
    let mut acknowledged = Vec::new();
    for n in 0..10 {
        acknowledged.push(record_acknowledged(&api, &format!("user-{n}")).await);
    }

    // Every delivery runs through its whole schedule against the dead endpoint and ends failed.
    let deadline = Instant::now() + WAIT;
    let deliveries = loop {
        let deliveries = api.deliveries(&webhook_id).await;
        if deliveries.len() == 20 && deliveries.iter().all(|d| d["status"] == "failed") {
            break deliveries;
        }
        assert!(Instant::now() < deadline, "not all failed: {deliveries:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for delivery in &deliveries {
        assert_eq!(delivery["attempt_count"], 4, "{delivery}");
        assert_eq!(delivery["next_attempt_at"], Value::Null, "{delivery}");
        assert_eq!(delivery["last_status_code"], Value::Null, "{delivery}");
    }
    let one = api
        .get(&format!(
            "/v1/deliveries/{}",
            deliveries[0]["id"].as_str().expect("id")
        ))
        .await;
    let error = one.body["attempts"][3]["error"].as_str().expect("error");
    assert!(!error.is_empty(), "{}", one.body);

    // The endpoint comes back on the same address; failed deliveries stay failed on their own...
    let receiver = Receiver::start_at(&address.to_string()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.count(),
        0,
        "a failed delivery was attempted on its own"
    );

    // ...and recover brings every one of them back, each delivered once, as acknowledged.
    let recovered = api
        .post(
            &format!("/v1/webhooks/{webhook_id}/recover"),
            json!({"since": since.to_rfc3339()}),
        )
        .await;
    assert_eq!(
        recovered.status,
        StatusCode::ACCEPTED,
        "{:?}",
        recovered.body
    );
    assert_eq!(recovered.body["recovered"], 20);
    assert_all_delivered(&receiver, &acknowledged, WAIT).await;
    let deadline = Instant::now() + WAIT;
    while !api
        .deliveries(&webhook_id)
        .await
        .iter()
        .all(|d| d["status"] == "succeeded" && d["attempt_count"] == 5)
    {
        assert!(
            Instant::now() < deadline,
            "recovered deliveries did not all succeed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(receiver.count(), 20, "one request per recovered delivery");
    eprintln!(
        "down longer than the schedule, recovered: {:?}",
        started.elapsed()
    );
}

/// What one streamed answer ended as, seen from the endpoint.
#[derive(Debug, Clone)]
struct StreamEnd {
    bytes_written: usize,
    lasted: Duration,
}

/// An endpoint that answers with `statuses[n]` to its n-th connection and then streams a chunked
/// body forever, until Reward hangs up.
async fn endless_stream_endpoint(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<StreamEnd>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let ends = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&ends);
    tokio::spawn(async move {
        let mut statuses = statuses.into_iter();
        while let Ok((stream, _)) = listener.accept().await {
            let status = statuses.next().unwrap_or(200);
            let ends = Arc::clone(&recorded);
            tokio::spawn(async move {
                let end = stream_forever(stream, status).await;
                ends.lock().expect("lock").push(end);
            });
        }
    });
    (url, ends)
}

async fn stream_forever(mut stream: TcpStream, status: u16) -> StreamEnd {
    // Read the request head (and whatever of the body came with it).
    let mut head = Vec::new();
    let mut buffer = [0_u8; 4096];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let started = Instant::now();
    let answer = format!(
        "HTTP/1.1 {status} Streaming\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let mut bytes_written = 0;
    if stream.write_all(answer.as_bytes()).await.is_ok() {
        let chunk = format!("400\r\n{}\r\n", "x".repeat(1024));
        // Stops when Reward hangs up (or, failing that, after a minute and 1 GiB).
        while started.elapsed() < Duration::from_secs(60) && bytes_written < (1 << 30) {
            if stream.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
            bytes_written += 1024;
        }
    }
    StreamEnd {
        bytes_written,
        lasted: started.elapsed(),
    }
}

#[tokio::test]
async fn an_endpoint_streaming_forever_costs_one_kib_and_no_more_than_the_timeout() {
    let started = Instant::now();
    let timeout = Duration::from_secs(5);
    let server = TestServer::start_with(|config| config.delivery_timeout = timeout).await;
    let api = server.account("Acme").await;
    // The first answer is a 500 streamed forever, the retry a 200 streamed forever.
    let (url, ends) = endless_stream_endpoint(vec![500, 200]).await;
    let webhook = api.create_webhook(&url).await;
    let test = api
        .post(
            &format!("/v1/webhooks/{}/test", webhook["id"].as_str().expect("id")),
            json!({"type": "trigger_event.created"}),
        )
        .await;
    assert_eq!(test.status, StatusCode::ACCEPTED, "{:?}", test.body);
    let done = api
        .wait_delivery(test.body["id"].as_str().expect("id"), WAIT, |d| {
            d["status"] == "succeeded"
        })
        .await;
    assert_eq!(done["attempt_count"], 2, "{done}");
    let attempts = done["attempts"].as_array().expect("attempts");
    assert_eq!(attempts[0]["status_code"], 500);
    assert_eq!(attempts[0]["error"], "HTTP 500");
    assert_eq!(attempts[1]["status_code"], 200);
    for attempt in attempts {
        let body = attempt["response_body"].as_str().expect("body");
        assert_eq!(body.len(), 1024, "1 KiB of the answer is kept");
        assert!(body.bytes().all(|byte| byte == b'x'), "{body}");
        // Reward stops reading after 1 KiB: the attempt is over long before its timeout.
        let duration = attempt["duration_ms"].as_u64().expect("duration");
        assert!(duration < 2000, "{attempt}");
    }
    // Each stream was cut by Reward hanging up, well within the timeout, after at most what the
    // kernel's socket buffers hold.
    let deadline = Instant::now() + WAIT;
    while ends.lock().expect("lock").len() < 2 {
        assert!(Instant::now() < deadline, "the streams were never cut");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for end in ends.lock().expect("lock").iter() {
        assert!(end.lasted < timeout, "{end:?}");
        assert!(end.bytes_written < 64 << 20, "{end:?}");
    }
    eprintln!(
        "endless streams: {:?}, in {:?}",
        ends.lock().expect("lock"),
        started.elapsed()
    );
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_retry_schedule_keeps_the_schedule() {
    let started = Instant::now();
    let (_database, database_url) = fresh_database().await;
    let receiver = Receiver::start().await;
    // Three failures, then success: attempts 2 s, 4 s and 8 s apart (±10%).
    receiver.script(vec![Answer::Status(500); 3]);
    let env = [
        ("REWARD_ALLOW_INSECURE_TARGETS", "true"),
        ("REWARD_RETRY_BASE", "2s"),
        ("REWARD_RETRY_FACTOR", "2"),
        ("REWARD_MAX_RETRIES", "4"),
        ("REWARD_DELIVERY_TIMEOUT", "2s"),
    ];
    let server = ServerProcess::spawn(&database_url, &env).await;
    let account = create_account(&database_url, "Acme").await;
    let key = account["api_key"].as_str().expect("api_key").to_owned();
    let api = Api::new(&server.base_url, &key);
    let webhook = api.create_webhook(&receiver.url).await;
    let test = api
        .post(
            &format!("/v1/webhooks/{}/test", webhook["id"].as_str().expect("id")),
            json!({"type": "trigger_event.created"}),
        )
        .await;
    let delivery_id = test.body["id"].as_str().expect("id").to_owned();
    let before = api
        .wait_delivery(&delivery_id, WAIT, |d| d["attempt_count"] == 2)
        .await;
    assert_eq!(before["status"], "pending");
    let next_attempt_at = millis_of(&before["next_attempt_at"]);

    // SIGKILL between the second and third attempts, and start again at once.
    server.kill().await;
    let restarted = ServerProcess::spawn(&database_url, &env).await;
    let api = Api::new(&restarted.base_url, &key);
    let after = api.get(&format!("/v1/deliveries/{delivery_id}")).await;
    assert_eq!(after.body["attempt_count"], 2, "{:?}", after.body);
    assert_eq!(after.body["status"], "pending");
    assert_eq!(
        after.body["next_attempt_at"], before["next_attempt_at"],
        "the restart kept the time of the next attempt"
    );
    assert_eq!(receiver.count(), 2, "no attempt at start-up");

    // The third attempt comes when the schedule said, not before, and is numbered 3.
    let arrivals = receiver.wait_for(3, WAIT).await;
    let third_at = wall_millis(arrivals[2].at);
    assert!(
        third_at >= next_attempt_at - 50,
        "attempt 3 came {} ms before its time",
        next_attempt_at - third_at
    );
    let third = api
        .wait_delivery(&delivery_id, WAIT, |d| d["attempt_count"] == 3)
        .await;
    assert_eq!(third["attempts"][2]["number"], 3);
    // The gap after it is the fourth of the schedule (8 s), not the first (2 s).
    let gap = millis_of(&third["next_attempt_at"]) - millis_of(&third["attempts"][2]["started_at"]);
    assert!(
        (7_200..=9_000).contains(&gap),
        "gap after attempt 3: {gap} ms"
    );

    let done = api
        .wait_delivery(&delivery_id, WAIT, |d| d["status"] == "succeeded")
        .await;
    assert_eq!(done["attempt_count"], 4);
    let numbers: Vec<&Value> = done["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|attempt| &attempt["number"])
        .collect();
    assert_eq!(numbers, [&json!(1), &json!(2), &json!(3), &json!(4)]);
    assert_eq!(receiver.count(), 4, "one request per scheduled attempt");
    restarted.kill().await;
    eprintln!("restart mid-schedule: {:?}", started.elapsed());
}
