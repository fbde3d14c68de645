//! Accounts are isolated (SPEC §4): another account's id answers 404, exactly like an id that
//! does not exist, and nothing another account sends changes an account's data.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use reward_core::ids::{DeliveryId, EventId, WebhookId};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::common::{Api, Reply, TestServer};

const TRIGGER: &str = "signup";
const USER: &str = "user-1";
/// What A's trigger issues per event, so A's user's balance after one event.
const POINTS: i64 = 5;

/// A webhook receiver that counts requests and answers every one with 500, so that A's
/// deliveries end `failed` (the server here makes no retries) and stay still: any later attempt,
/// retry or recovery would show in A's data or in the count.
struct Receiver {
    url: String,
    hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!(
            "http://{}/hook",
            listener.local_addr().expect("receiver address")
        );
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer_500(stream, Arc::clone(&counter)));
            }
        });
        Self { url, hits, task }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP/1.1 request (headers and a `content-length` body) and answers 500.
async fn answer_500(mut stream: TcpStream, hits: Arc<AtomicUsize>) {
    let mut request = Vec::new();
    let mut chunk = [0_u8; 8192];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => request.extend_from_slice(&chunk[..read]),
        }
        let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if request.len() >= end + 4 + length {
            break;
        }
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let response =
        b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    let _ = stream.write_all(response).await;
    let _ = stream.shutdown().await;
}

/// One server, two accounts. A has a webhook, a trigger, a user with a balance, events and three
/// deliveries (two from the trigger event, one test), settled; B has nothing.
struct World {
    _server: TestServer,
    receiver: Receiver,
    a: Api,
    b: Api,
    webhook_id: String,
    event_id: String,
    delivery_id: String,
    delivery_ids: Vec<String>,
}

async fn world() -> World {
    let receiver = Receiver::start().await;
    let server = TestServer::start_with(|c| c.retry.max_retries = 0).await;
    let a = server.account("Account A").await;
    let b = server.account("Account B").await;

    let webhook = a.create_webhook(&receiver.url).await;
    let webhook_id = webhook["id"].as_str().expect("webhook id").to_owned();
    a.put_trigger(TRIGGER, json!({ "fixed": POINTS })).await;
    let recorded = a.trigger_event(USER, TRIGGER, json!(1)).await;
    assert_eq!(recorded["credit_points_issued"], POINTS, "{recorded:?}");

    let reply = a.send_test(&webhook_id, "trigger_event.created").await;
    assert_eq!(reply.status.as_u16(), 202, "{:?}", reply.body);
    let delivery_id = reply.body["id"].as_str().expect("delivery id").to_owned();

    let delivery_ids = wait_until_settled(&a, &receiver, &webhook_id, 3).await;
    assert!(delivery_ids.contains(&delivery_id), "{delivery_ids:?}");

    let events = a.get("/v1/events").await;
    assert_eq!(events.status.as_u16(), 200, "{:?}", events.body);
    let event_id = events.body["data"][0]["id"]
        .as_str()
        .expect("an event of A")
        .to_owned();

    let world = World {
        _server: server,
        receiver,
        a,
        b,
        webhook_id,
        event_id,
        delivery_id,
        delivery_ids,
    };
    assert_eq!(balance(&world.a, USER).await, POINTS);
    world
}

/// Waits until the webhook's `count` deliveries stop changing, and returns their ids: all
/// `failed` once the delivery worker has tried each one (once: this server makes no retries),
/// or, in a build that does not deliver yet, still untouched (`pending`, no attempt, no request
/// received) two seconds on.
async fn wait_until_settled(
    api: &Api,
    receiver: &Receiver,
    webhook_id: &str,
    count: usize,
) -> Vec<String> {
    let path = format!("/v1/webhooks/{webhook_id}/deliveries?limit=100");
    let started = Instant::now();
    let mut last = Value::Null;
    while started.elapsed() < Duration::from_secs(20) {
        let reply = api.get(&path).await;
        assert_eq!(reply.status.as_u16(), 200, "{:?}", reply.body);
        let data = reply.body["data"].as_array().cloned().unwrap_or_default();
        assert!(data.len() <= count, "too many deliveries: {data:?}");
        let ids = || {
            data.iter()
                .map(|d| d["id"].as_str().expect("delivery id").to_owned())
                .collect()
        };
        let all = |status: &str| data.iter().all(|d| d["status"] == status);
        if data.len() == count && all("failed") && receiver.hits() == count {
            return ids();
        }
        let untouched = data.iter().all(|d| d["attempt_count"] == 0);
        if data.len() == count
            && all("pending")
            && untouched
            && receiver.hits() == 0
            && started.elapsed() > Duration::from_secs(2)
        {
            return ids();
        }
        last = reply.body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "deliveries never settled ({} requests received): {last:?}",
        receiver.hits()
    );
}

async fn balance(api: &Api, user: &str) -> i64 {
    let reply = api.get(&format!("/v1/users/{user}")).await;
    assert_eq!(reply.status.as_u16(), 200, "{:?}", reply.body);
    reply.body["balance"].as_i64().expect("balance")
}

/// Everything A has, read by A: lists, each resource, each delivery with its attempts, the
/// webhook's secret, the user's balance, and how many requests the receiver got.
async fn a_state(world: &World) -> Value {
    let mut state = world.a.snapshot().await;
    let mut paths = vec![
        format!("/v1/webhooks/{}", world.webhook_id),
        format!("/v1/webhooks/{}/secret", world.webhook_id),
        format!("/v1/events/{}", world.event_id),
        format!("/v1/triggers/{TRIGGER}"),
        format!("/v1/users/{USER}"),
    ];
    for id in &world.delivery_ids {
        paths.push(format!("/v1/deliveries/{id}"));
    }
    for path in paths {
        let reply = world.a.get(&path).await;
        assert_eq!(reply.status.as_u16(), 200, "A's {path}: {:?}", reply.body);
        state[path.as_str()] = reply.body;
    }
    state["receiver_hits"] = json!(world.receiver.hits());
    state
}

fn json_body(body: &Option<Value>) -> Option<Vec<u8>> {
    body.as_ref().map(|body| body.to_string().into_bytes())
}

/// B sends `method` to A's `path` (and `body`): 404 not_found, the very answer an id that exists
/// nowhere (`unknown_path`) gets; and A's data is as it was, even a moment later.
async fn b_gets_404(
    world: &World,
    method: Method,
    path: &str,
    unknown_path: &str,
    body: Option<Value>,
) {
    let before = a_state(world).await;

    let reply = world
        .b
        .send(method.clone(), path, json_body(&body), &[])
        .await;
    assert_eq!(
        reply.status.as_u16(),
        404,
        "B's {method} {path}: {:?}",
        reply.body
    );
    reply.assert_error(404, "not_found", None);

    let unknown: Reply = world
        .b
        .send(method.clone(), unknown_path, json_body(&body), &[])
        .await;
    assert_eq!(unknown.status, reply.status, "{method} {unknown_path}");
    assert_eq!(
        unknown.body, reply.body,
        "another account's id must answer like an unknown id"
    );

    // Give any wrongly scheduled work (an attempt, a retry) the time to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = a_state(world).await;
    assert_eq!(after, before, "B's {method} {path} changed A's data");
    assert_eq!(balance(&world.a, USER).await, POINTS);
    let trigger = world.a.get(&format!("/v1/triggers/{TRIGGER}")).await;
    assert_eq!(trigger.status.as_u16(), 200, "{:?}", trigger.body);
}

fn other_webhook() -> String {
    WebhookId::generate().as_str().to_owned()
}

#[tokio::test]
async fn b_cannot_get_a_webhook() {
    let w = world().await;
    let path = format!("/v1/webhooks/{}", w.webhook_id);
    let unknown = format!("/v1/webhooks/{}", other_webhook());
    b_gets_404(&w, Method::GET, &path, &unknown, None).await;
}

#[tokio::test]
async fn b_cannot_patch_a_webhook() {
    let w = world().await;
    let path = format!("/v1/webhooks/{}", w.webhook_id);
    let unknown = format!("/v1/webhooks/{}", other_webhook());
    let body = json!({
        "name": "Hijacked",
        "url": "http://127.0.0.1:9/elsewhere",
        "events": ["balance.credit_points_issued"],
        "enabled": false,
    });
    b_gets_404(&w, Method::PATCH, &path, &unknown, Some(body)).await;
}

#[tokio::test]
async fn b_cannot_delete_a_webhook() {
    let w = world().await;
    let path = format!("/v1/webhooks/{}", w.webhook_id);
    let unknown = format!("/v1/webhooks/{}", other_webhook());
    b_gets_404(&w, Method::DELETE, &path, &unknown, None).await;
}

#[tokio::test]
async fn b_cannot_read_a_webhook_secret() {
    let w = world().await;
    let path = format!("/v1/webhooks/{}/secret", w.webhook_id);
    let unknown = format!("/v1/webhooks/{}/secret", other_webhook());
    b_gets_404(&w, Method::GET, &path, &unknown, None).await;
}

#[tokio::test]
async fn b_cannot_rotate_a_webhook_secret() {
    let w = world().await;
    let path = format!("/v1/webhooks/{}/secret/rotate", w.webhook_id);
    let unknown = format!("/v1/webhooks/{}/secret/rotate", other_webhook());
    b_gets_404(&w, Method::POST, &path, &unknown, None).await;
}

#[tokio::test]
async fn b_cannot_send_a_test_event_to_a_webhook() {
    let w = world().await;
    let path = format!("/v1/webhooks/{}/test", w.webhook_id);
    let unknown = format!("/v1/webhooks/{}/test", other_webhook());
    let body = json!({"type": "balance.credit_points_issued"});
    b_gets_404(&w, Method::POST, &path, &unknown, Some(body)).await;
}

#[tokio::test]
async fn b_cannot_list_a_webhook_deliveries() {
    let w = world().await;
    let path = format!("/v1/webhooks/{}/deliveries", w.webhook_id);
    let unknown = format!("/v1/webhooks/{}/deliveries", other_webhook());
    b_gets_404(&w, Method::GET, &path, &unknown, None).await;
    let path = format!("/v1/webhooks/{}/deliveries?status=failed", w.webhook_id);
    let unknown = format!("/v1/webhooks/{}/deliveries?status=failed", other_webhook());
    b_gets_404(&w, Method::GET, &path, &unknown, None).await;
}

#[tokio::test]
async fn b_cannot_recover_a_webhook_deliveries() {
    let w = world().await;
    let path = format!("/v1/webhooks/{}/recover", w.webhook_id);
    let unknown = format!("/v1/webhooks/{}/recover", other_webhook());
    let body = json!({"since": "2000-01-01T00:00:00Z"});
    b_gets_404(&w, Method::POST, &path, &unknown, Some(body)).await;
}

#[tokio::test]
async fn b_cannot_get_a_delivery() {
    let w = world().await;
    let unknown = format!("/v1/deliveries/{}", DeliveryId::generate().as_str());
    for id in &w.delivery_ids {
        let path = format!("/v1/deliveries/{id}");
        b_gets_404(&w, Method::GET, &path, &unknown, None).await;
    }
}

#[tokio::test]
async fn b_cannot_retry_a_delivery() {
    let w = world().await;
    let path = format!("/v1/deliveries/{}/retry", w.delivery_id);
    let unknown = format!("/v1/deliveries/{}/retry", DeliveryId::generate().as_str());
    b_gets_404(&w, Method::POST, &path, &unknown, None).await;
}

#[tokio::test]
async fn b_cannot_get_an_event() {
    let w = world().await;
    let path = format!("/v1/events/{}", w.event_id);
    let unknown = format!("/v1/events/{}", EventId::generate().as_str());
    b_gets_404(&w, Method::GET, &path, &unknown, None).await;
}

#[tokio::test]
async fn b_cannot_get_a_trigger() {
    let w = world().await;
    let path = format!("/v1/triggers/{TRIGGER}");
    b_gets_404(&w, Method::GET, &path, "/v1/triggers/no_such_trigger", None).await;
}

#[tokio::test]
async fn b_cannot_delete_a_trigger() {
    let w = world().await;
    let path = format!("/v1/triggers/{TRIGGER}");
    b_gets_404(
        &w,
        Method::DELETE,
        &path,
        "/v1/triggers/no_such_trigger",
        None,
    )
    .await;
}

#[tokio::test]
async fn b_cannot_get_a_user() {
    let w = world().await;
    let path = format!("/v1/users/{USER}");
    b_gets_404(&w, Method::GET, &path, "/v1/users/no-such-user", None).await;
}

#[tokio::test]
async fn b_lists_are_empty() {
    let w = world().await;
    let before = a_state(&w).await;
    for path in ["/v1/webhooks", "/v1/events", "/v1/triggers"] {
        let reply = w.b.get(path).await;
        assert_eq!(reply.status.as_u16(), 200, "B's {path}: {:?}", reply.body);
        assert_eq!(
            reply.body,
            json!({"data": [], "next_cursor": null}),
            "B's {path}"
        );
        // ...while A's are not.
        let reply = w.a.get(path).await;
        assert_eq!(reply.status.as_u16(), 200, "A's {path}: {:?}", reply.body);
        let data = reply.body["data"].as_array().expect("data");
        assert!(!data.is_empty(), "A's {path} is empty");
    }
    // Filters do not reach A's data either.
    for path in [
        "/v1/events?type=trigger_event.created",
        "/v1/events?type=balance.credit_points_issued",
    ] {
        let reply = w.b.get(path).await;
        assert_eq!(reply.status.as_u16(), 200, "B's {path}: {:?}", reply.body);
        assert_eq!(reply.body["data"], json!([]), "B's {path}");
    }
    assert_eq!(a_state(&w).await, before);
}

#[tokio::test]
async fn b_trigger_event_with_a_trigger_id_is_unknown_trigger() {
    let w = world().await;
    let before = a_state(&w).await;
    let b_before = w.b.snapshot().await;
    for user in [USER, "user-of-b"] {
        let reply =
            w.b.post(
                "/v1/trigger_events",
                json!({"user_id": user, "trigger_id": TRIGGER, "value": 1}),
            )
            .await;
        reply.assert_error(422, "unknown_trigger", Some("trigger_id"));
        let absent = w.b.get(&format!("/v1/users/{user}")).await;
        absent.assert_error(404, "not_found", None);
    }
    assert_eq!(w.b.snapshot().await, b_before);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a_state(&w).await, before);
    assert_eq!(balance(&w.a, USER).await, POINTS);
}

#[tokio::test]
async fn trigger_ids_are_per_account() {
    let w = world().await;
    let before = a_state(&w).await;
    // B's PUT of the same trigger id creates B's own trigger: 201, not a replacement of A's.
    let reply =
        w.b.put(
            &format!("/v1/triggers/{TRIGGER}"),
            json!({"name": "B's signup", "credit_points": {"fixed": 100}}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{:?}", reply.body);
    let recorded = w.b.trigger_event(USER, TRIGGER, json!(1)).await;
    assert_eq!(recorded["credit_points_issued"], 100, "{recorded:?}");
    assert_eq!(balance(&w.b, USER).await, 100);
    // B deletes its own trigger; A's stays.
    let reply = w.b.delete(&format!("/v1/triggers/{TRIGGER}")).await;
    assert_eq!(reply.status.as_u16(), 204, "{:?}", reply.body);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a_state(&w).await, before);
    assert_eq!(balance(&w.a, USER).await, POINTS);
}

#[tokio::test]
async fn user_ids_are_per_account() {
    let w = world().await;
    let before = a_state(&w).await;
    let reply =
        w.b.post(&format!("/v1/users/{USER}/credits"), json!({"points": 7}))
            .await;
    assert_eq!(reply.status.as_u16(), 201, "{:?}", reply.body);
    assert_eq!(reply.body["balance"], 7, "B's user starts from nothing");
    assert_eq!(balance(&w.b, USER).await, 7);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a_state(&w).await, before);
    assert_eq!(balance(&w.a, USER).await, POINTS);
}

#[tokio::test]
async fn malformed_ids_in_paths_answer_404() {
    let w = world().await;
    let before = a_state(&w).await;
    // Malformed, wrong prefix, wrong length, not base32: for the owner as for anyone.
    let webhook_ids = [
        "nope".to_owned(),
        "wh_".to_owned(),
        "wh_123".to_owned(),
        w.delivery_id.clone(),
        w.event_id.clone(),
        format!("{}x", w.webhook_id),
        w.webhook_id.replacen("wh_", "dl_", 1),
        format!("wh_{}", "u".repeat(26)),
    ];
    let mut requests: Vec<(Method, String, Option<Value>)> = Vec::new();
    for id in &webhook_ids {
        requests.extend([
            (Method::GET, format!("/v1/webhooks/{id}"), None),
            (
                Method::PATCH,
                format!("/v1/webhooks/{id}"),
                Some(json!({"name": "Renamed"})),
            ),
            (Method::DELETE, format!("/v1/webhooks/{id}"), None),
            (Method::GET, format!("/v1/webhooks/{id}/secret"), None),
            (
                Method::POST,
                format!("/v1/webhooks/{id}/secret/rotate"),
                None,
            ),
            (
                Method::POST,
                format!("/v1/webhooks/{id}/test"),
                Some(json!({"type": "trigger_event.created"})),
            ),
            (Method::GET, format!("/v1/webhooks/{id}/deliveries"), None),
            (
                Method::POST,
                format!("/v1/webhooks/{id}/recover"),
                Some(json!({"since": "2000-01-01T00:00:00Z"})),
            ),
        ]);
    }
    for id in ["nope", "dl_", w.webhook_id.as_str(), w.event_id.as_str()] {
        requests.push((Method::GET, format!("/v1/deliveries/{id}"), None));
        requests.push((Method::POST, format!("/v1/deliveries/{id}/retry"), None));
    }
    for id in ["nope", "we_", w.webhook_id.as_str(), w.delivery_id.as_str()] {
        requests.push((Method::GET, format!("/v1/events/{id}"), None));
    }
    for id in ["bad%20id", "bad!id", "caf%C3%A9"] {
        requests.push((Method::GET, format!("/v1/triggers/{id}"), None));
        requests.push((Method::DELETE, format!("/v1/triggers/{id}"), None));
    }
    for id in ["user%201", "user%2F1", "a%25b"] {
        requests.push((Method::GET, format!("/v1/users/{id}"), None));
    }
    for api in [&w.a, &w.b] {
        for (method, path, body) in &requests {
            let reply = api.send(method.clone(), path, json_body(body), &[]).await;
            assert_eq!(
                reply.status.as_u16(),
                404,
                "{method} {path}: {:?}",
                reply.body
            );
            reply.assert_error(404, "not_found", None);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a_state(&w).await, before);
}
