//! The delivery engine against real receivers: bytes, headers and signatures; the retry schedule;
//! manual retry and recover; rotation; 410 Gone; latency.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{Api, TestServer};
use crate::receiver::{Answer, Receiver};

const WAIT: Duration = Duration::from_secs(10);

/// A webhook on `receiver` for both event types; returns (webhook JSON, secret).
async fn webhook_on(api: &Api, receiver: &Receiver) -> (Value, String) {
    let webhook = api.create_webhook(&receiver.url).await;
    let secret = webhook["secret"].as_str().expect("secret").to_owned();
    (webhook, secret)
}

fn is_status(status: &'static str) -> impl Fn(&Value) -> bool {
    move |delivery| delivery["status"] == status
}

#[tokio::test]
async fn payload_bytes_headers_and_signature_are_exact() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let (webhook, secret) = webhook_on(&api, &receiver).await;
    api.put_trigger("successful_payment", json!({"per_unit": 10}))
        .await;
    let recorded = api
        .trigger_event(
            "ca9bb5c2-25a6-43e9-972e-862d28241a47",
            "successful_payment",
            json!(2.99),
        )
        .await;

    let arrived = receiver.wait_for(2, WAIT).await;
    let events = api.get("/v1/events").await.body["data"]
        .as_array()
        .expect("data")
        .clone();
    for request in &arrived {
        let id = request.header("webhook-id");
        let stored = api.get(&format!("/v1/events/{id}")).await;
        assert_eq!(stored.status.as_u16(), 200);
        // The body is the stored payload, byte for byte.
        assert_eq!(
            request.body,
            serde_json::to_vec(&stored.body).expect("json")
        );
        assert_eq!(request.header("content-type"), "application/json");
        assert!(request.header("user-agent").starts_with("Reward-Webhooks/"));
        let timestamp: i64 = request
            .header("webhook-timestamp")
            .parse()
            .expect("unix seconds");
        let now = reward_core::time::Timestamp::now().as_unix_seconds();
        assert!((now - timestamp).abs() < 60);
        let signature = request.header("webhook-signature");
        assert!(
            signature.starts_with("v1,") && !signature.contains(' '),
            "{signature}"
        );

        let verifier = standardwebhooks::Webhook::new(&secret).expect("secret");
        verifier
            .verify(&request.body, &request.headers)
            .expect("reference verifier accepts");
        let mut tampered = request.body.to_vec();
        tampered[10] ^= 1;
        assert!(verifier.verify(&tampered, &request.headers).is_err());
        assert_eq!(request.path, "/hook");
    }
    let created = arrived
        .iter()
        .map(|request| request.json())
        .find(|event| event["type"] == "trigger_event.created")
        .expect("trigger_event.created arrived");
    assert_eq!(created["data"]["id"], recorded["id"]);
    assert_eq!(created["data"]["value"], json!(2.99));
    assert_eq!(events.len(), 2);

    let webhook_id = webhook["id"].as_str().expect("id");
    for delivery in api.deliveries(webhook_id).await {
        let id = delivery["id"].as_str().expect("id");
        let done = api.wait_delivery(id, WAIT, is_status("succeeded")).await;
        assert_eq!(done["attempt_count"], 1);
        assert_eq!(done["last_status_code"], 204);
        assert_eq!(done["next_attempt_at"], Value::Null);
        let attempt = &done["attempts"][0];
        assert_eq!(attempt["number"], 1);
        assert_eq!(attempt["status_code"], 204);
        assert_eq!(attempt["error"], Value::Null);
        assert!(attempt["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("at_")));
    }
}

#[tokio::test]
async fn a_failing_endpoint_gets_one_plus_max_retries_attempts_with_growing_gaps() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    receiver.answer(Answer::Status(500));
    let (webhook, _) = webhook_on(&api, &receiver).await;
    let test = api
        .post(
            &format!("/v1/webhooks/{}/test", webhook["id"].as_str().expect("id")),
            json!({"type": "trigger_event.created"}),
        )
        .await;
    let delivery_id = test.body["id"].as_str().expect("id");
    // base 100ms, factor 2: gaps of about 100, 200, 400, 800, 1600 ms.
    let done = api
        .wait_delivery(delivery_id, WAIT, is_status("failed"))
        .await;
    assert_eq!(done["attempt_count"], 6);
    assert_eq!(done["last_status_code"], 500);
    assert_eq!(done["attempts"].as_array().expect("attempts").len(), 6);
    for (n, attempt) in done["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .enumerate()
    {
        assert_eq!(attempt["number"], n + 1);
        assert_eq!(attempt["status_code"], 500);
        assert_eq!(attempt["error"], "HTTP 500");
    }
    let arrivals = receiver.received();
    assert_eq!(arrivals.len(), 6);
    let gaps: Vec<Duration> = arrivals
        .windows(2)
        .map(|pair| pair[1].at - pair[0].at)
        .collect();
    for (k, gap) in gaps.iter().enumerate() {
        let nominal = Duration::from_millis(100 * 2_u64.pow(k as u32));
        assert!(
            *gap >= nominal.mul_f64(0.9),
            "gap {k} {gap:?} shorter than {nominal:?} - 10%"
        );
    }
    // Each gap's floor doubles (the per-gap check above), so the schedule grows; a loaded
    // machine may only stretch gaps, never shorten them.
    // Nothing more comes after `failed`.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 6);
}

#[tokio::test]
async fn transient_503s_then_success() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    receiver.script(vec![
        Answer::Status(503),
        Answer::Status(503),
        Answer::Status(204),
    ]);
    let (webhook, _) = webhook_on(&api, &receiver).await;
    let test = api
        .post(
            &format!("/v1/webhooks/{}/test", webhook["id"].as_str().expect("id")),
            json!({"type": "balance.credit_points_issued"}),
        )
        .await;
    let done = api
        .wait_delivery(
            test.body["id"].as_str().expect("id"),
            WAIT,
            is_status("succeeded"),
        )
        .await;
    assert_eq!(done["attempt_count"], 3);
    let codes: Vec<&Value> = done["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [&json!(503), &json!(503), &json!(204)]);
    assert_eq!(receiver.count(), 3);
    let ids: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert!(
        ids.iter().all(|id| id == &ids[0]),
        "same webhook-id on every retry"
    );
}

#[tokio::test]
async fn redirects_fail_and_are_never_followed() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let elsewhere = Receiver::start().await;
    receiver.answer(Answer::WithHeaders(
        302,
        vec![("location", elsewhere.url.clone())],
    ));
    let (webhook, _) = webhook_on(&api, &receiver).await;
    let test = api
        .post(
            &format!("/v1/webhooks/{}/test", webhook["id"].as_str().expect("id")),
            json!({"type": "trigger_event.created"}),
        )
        .await;
    let done = api
        .wait_delivery(test.body["id"].as_str().expect("id"), WAIT, |d| {
            d["attempt_count"].as_u64() >= Some(1)
        })
        .await;
    assert_eq!(done["last_status_code"], 302);
    assert_eq!(
        done["status"], "pending",
        "a redirect is a failed attempt, retried"
    );
    let error = done["attempts"][0]["error"].as_str().expect("error");
    assert!(error.contains("redirect"), "{error}");
    assert_eq!(elsewhere.count(), 0, "the Location was never followed");
}

#[tokio::test]
async fn a_hanging_endpoint_times_out() {
    let server =
        TestServer::start_with(|config| config.delivery_timeout = Duration::from_millis(500)).await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    receiver.script(vec![Answer::After(Duration::from_secs(5))]);
    let (webhook, _) = webhook_on(&api, &receiver).await;
    let test = api
        .post(
            &format!("/v1/webhooks/{}/test", webhook["id"].as_str().expect("id")),
            json!({"type": "trigger_event.created"}),
        )
        .await;
    let done = api
        .wait_delivery(test.body["id"].as_str().expect("id"), WAIT, |d| {
            d["attempt_count"].as_u64() >= Some(1)
        })
        .await;
    let attempt = &done["attempts"][0];
    assert_eq!(attempt["status_code"], Value::Null);
    assert!(
        attempt["error"]
            .as_str()
            .expect("error")
            .contains("timed out"),
        "{attempt}"
    );
    assert!(attempt["duration_ms"].as_u64().expect("duration") < 2000);
    // The retry (answered 204 by default) then succeeds.
    api.wait_delivery(
        test.body["id"].as_str().expect("id"),
        WAIT,
        is_status("succeeded"),
    )
    .await;
}

/// SPEC: success is "a 2xx status within the timeout". An endpoint that answers 200 at once but
/// sends the rest of its body only after the timeout has delivered: one attempt, succeeded, with
/// what of the body arrived in time.
#[tokio::test]
async fn a_2xx_in_time_delivers_however_slowly_its_body_follows() {
    let server =
        TestServer::start_with(|config| config.delivery_timeout = Duration::from_millis(500)).await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let (webhook, _) = webhook_on(&api, &receiver).await;
    let (url, requests) = SlowBodyReceiver::start().await;
    let webhook_id = webhook["id"].as_str().expect("id");
    api.patch(&format!("/v1/webhooks/{webhook_id}"), json!({"url": url}))
        .await;
    let test = api.send_test(webhook_id, "trigger_event.created").await;
    let id = test.body["id"].as_str().expect("id").to_owned();
    let done = api.wait_delivery(&id, WAIT, is_status("succeeded")).await;
    assert_eq!(done["attempt_count"], 1, "{done}");
    let attempt = &done["attempts"][0];
    assert_eq!(attempt["status_code"], 200, "{attempt}");
    assert_eq!(attempt["error"], Value::Null, "{attempt}");
    assert_eq!(attempt["response_body"], "0123456789", "{attempt}");
    assert!(attempt["duration_ms"].as_u64().expect("duration") < 2000);
    // Not attempted again.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Answers every request with `200`, a `content-length` of 20 and the first 10 bytes at once; the
/// other 10 follow 3 s later. Counts the requests.
struct SlowBodyReceiver;

impl SlowBodyReceiver {
    async fn start() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let requests = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 4096];
                    // The headers, then as many body bytes as they announce.
                    loop {
                        let Ok(read) = stream.read(&mut buffer).await else {
                            return;
                        };
                        if read == 0 {
                            return;
                        }
                        request.extend_from_slice(&buffer[..read]);
                        let text = String::from_utf8_lossy(&request).to_lowercase();
                        let Some(end) = text.find("\r\n\r\n") else {
                            continue;
                        };
                        let length: usize = text
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .and_then(|value| value.trim().parse().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let head = "HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n0123456789";
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    let _ = stream.write_all(b"abcdefghij").await;
                });
            }
        });
        (url, requests)
    }
}

/// A disabled webhook gets nothing new, a test event included: 409 `webhook_disabled`, nothing
/// stored and nothing sent, then or once it is enabled again; enabled, the test goes out.
#[tokio::test]
async fn a_test_event_to_a_disabled_webhook_is_refused() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let (webhook, _) = webhook_on(&api, &receiver).await;
    let webhook_id = webhook["id"].as_str().expect("id");
    let disabled = api
        .patch(
            &format!("/v1/webhooks/{webhook_id}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(disabled.status.as_u16(), 200, "{:?}", disabled.body);
    let snapshot = api.snapshot().await;
    let test_path = format!("/v1/webhooks/{webhook_id}/test");
    let refused = api
        .post(&test_path, json!({"type": "trigger_event.created"}))
        .await;
    refused.assert_error(409, "webhook_disabled", None);
    assert_eq!(api.snapshot().await, snapshot, "nothing stored");
    api.patch(
        &format!("/v1/webhooks/{webhook_id}"),
        json!({"enabled": true}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 0, "nothing waited to go out");
    let sent = api
        .post(&test_path, json!({"type": "trigger_event.created"}))
        .await;
    assert_eq!(sent.status.as_u16(), 202, "{:?}", sent.body);
    receiver.wait_for(1, WAIT).await;
}

#[tokio::test]
async fn response_bodies_are_kept_up_to_one_kib() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let (webhook, _) = webhook_on(&api, &receiver).await;
    // The receiver answers 204 with no body; a 500 with a long body comes from a second receiver.
    let loud = LoudReceiver::start(500, "x".repeat(5000)).await;
    let webhook_id = webhook["id"].as_str().expect("id");
    api.patch(&format!("/v1/webhooks/{webhook_id}"), json!({"url": loud}))
        .await;
    let test = api.send_test(webhook_id, "trigger_event.created").await;
    let done = api
        .wait_delivery(test.body["id"].as_str().expect("id"), WAIT, |d| {
            d["attempt_count"].as_u64() >= Some(1)
        })
        .await;
    let body = done["attempts"][0]["response_body"].as_str().expect("body");
    assert_eq!(body.len(), 1024);
}

/// A raw receiver answering one fixed status and body.
struct LoudReceiver;

impl LoudReceiver {
    async fn start(status: u16, body: String) -> String {
        use axum::routing::post;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let code = axum::http::StatusCode::from_u16(status).expect("status");
        let app = axum::Router::new().route("/", post(move || async move { (code, body) }));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        url
    }
}

#[tokio::test]
async fn manual_retry_of_a_failed_delivery_succeeds_once_the_endpoint_recovers() {
    let server = TestServer::start_with(|config| config.retry.max_retries = 1).await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    receiver.answer(Answer::Status(500));
    let (webhook, _) = webhook_on(&api, &receiver).await;
    let test = api
        .post(
            &format!("/v1/webhooks/{}/test", webhook["id"].as_str().expect("id")),
            json!({"type": "trigger_event.created"}),
        )
        .await;
    let id = test.body["id"].as_str().expect("id").to_owned();
    let failed = api.wait_delivery(&id, WAIT, is_status("failed")).await;
    assert_eq!(failed["attempt_count"], 2);

    // A manual retry while still failing: one attempt, still failed, no new schedule.
    let retried = api
        .post(&format!("/v1/deliveries/{id}/retry"), json!({}))
        .await;
    assert_eq!(retried.status.as_u16(), 202);
    let still = api
        .wait_delivery(&id, WAIT, |d| d["attempt_count"] == 3)
        .await;
    assert_eq!(still["status"], "failed");
    assert_eq!(still["next_attempt_at"], Value::Null);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        receiver.count(),
        3,
        "no schedule after a failed manual attempt"
    );

    receiver.answer(Answer::Status(200));
    api.post(&format!("/v1/deliveries/{id}/retry"), json!({}))
        .await;
    let done = api.wait_delivery(&id, WAIT, is_status("succeeded")).await;
    assert_eq!(done["attempt_count"], 4);
    assert_eq!(done["last_status_code"], 200);
}

#[tokio::test]
async fn recover_requeues_failed_deliveries_since_a_time() {
    let server = TestServer::start_with(|config| config.retry.max_retries = 0).await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    receiver.answer(Answer::Status(500));
    let (webhook, _) = webhook_on(&api, &receiver).await;
    let webhook_id = webhook["id"].as_str().expect("id");
    let test_path = format!("/v1/webhooks/{webhook_id}/test");
    let send_test = || api.post(&test_path, json!({"type": "trigger_event.created"}));
    let old = send_test().await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    api.wait_delivery(&old, WAIT, is_status("failed")).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let since = reward_core::time::Timestamp::now();
    let mut recent = Vec::new();
    for _ in 0..3 {
        recent.push(
            send_test().await.body["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    for id in &recent {
        api.wait_delivery(id, WAIT, is_status("failed")).await;
    }
    receiver.answer(Answer::Status(204));
    let recovered = api
        .post(
            &format!("/v1/webhooks/{webhook_id}/recover"),
            json!({"since": since.to_rfc3339()}),
        )
        .await;
    assert_eq!(recovered.status.as_u16(), 202);
    assert_eq!(recovered.body["recovered"], 3);
    for id in &recent {
        let done = api.wait_delivery(id, WAIT, is_status("succeeded")).await;
        assert_eq!(done["attempt_count"], 2);
    }
    let untouched = api.get(&format!("/v1/deliveries/{old}")).await;
    assert_eq!(untouched.body["status"], "failed");
    assert_eq!(untouched.body["attempt_count"], 1);
}

#[tokio::test]
async fn after_a_rotation_each_delivery_carries_two_valid_signatures() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let (webhook, old_secret) = webhook_on(&api, &receiver).await;
    let webhook_id = webhook["id"].as_str().expect("id");
    let rotated = api
        .post(
            &format!("/v1/webhooks/{webhook_id}/secret/rotate"),
            json!({}),
        )
        .await;
    let new_secret = rotated.body["secret"].as_str().expect("secret").to_owned();
    api.send_test(webhook_id, "trigger_event.created").await;
    let arrived = receiver.wait_for(1, WAIT).await;
    let request = &arrived[0];
    let signatures: Vec<&str> = request.header("webhook-signature").split(' ').collect();
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    for secret in [&old_secret, &new_secret] {
        let verifier = standardwebhooks::Webhook::new(secret).expect("secret");
        verifier
            .verify(&request.body, &request.headers)
            .expect("each secret verifies");
    }
}

#[tokio::test]
async fn gone_disables_the_webhook_and_says_why() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    receiver.answer(Answer::Status(410));
    let (webhook, _) = webhook_on(&api, &receiver).await;
    let webhook_id = webhook["id"].as_str().expect("id");
    let test = api.send_test(webhook_id, "trigger_event.created").await;
    let done = api
        .wait_delivery(
            test.body["id"].as_str().expect("id"),
            WAIT,
            is_status("failed"),
        )
        .await;
    assert_eq!(done["attempt_count"], 1);
    let disabled = api.get(&format!("/v1/webhooks/{webhook_id}")).await;
    assert_eq!(disabled.body["enabled"], false);
    assert!(disabled.body["disabled_reason"]
        .as_str()
        .expect("reason")
        .contains("410"));

    // Disabled: new events are not delivered to it.
    api.put_trigger("signup", json!({"fixed": 1})).await;
    api.trigger_event("u1", "signup", Value::Null).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 1);
    assert_eq!(api.deliveries(webhook_id).await.len(), 1);

    // Enabling clears the reason.
    let enabled = api
        .patch(
            &format!("/v1/webhooks/{webhook_id}"),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(enabled.body["disabled_reason"], Value::Null);
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    receiver.script(vec![Answer::WithHeaders(
        429,
        vec![("retry-after", "2".into())],
    )]);
    let (webhook, _) = webhook_on(&api, &receiver).await;
    let webhook_id = webhook["id"].as_str().expect("id");
    api.send_test(webhook_id, "trigger_event.created").await;
    let arrived = receiver.wait_for(2, WAIT).await;
    let gap = arrived[1].at - arrived[0].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "waited {gap:?}, asked for 2s"
    );
}

#[tokio::test]
async fn deleting_a_webhook_cancels_its_pending_deliveries() {
    let server =
        TestServer::start_with(|config| config.retry.base = Duration::from_millis(300)).await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    receiver.answer(Answer::Status(500));
    let (webhook, _) = webhook_on(&api, &receiver).await;
    let webhook_id = webhook["id"].as_str().expect("id");
    api.send_test(webhook_id, "trigger_event.created").await;
    receiver.wait_for(1, WAIT).await;
    assert_eq!(
        api.delete(&format!("/v1/webhooks/{webhook_id}"))
            .await
            .status
            .as_u16(),
        204
    );
    let count = receiver.count();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.count(), count, "no attempt after deletion");
}

#[tokio::test]
async fn an_idle_worker_starts_a_new_delivery_at_once() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let (webhook, _) = webhook_on(&api, &receiver).await;
    let webhook_id = webhook["id"].as_str().expect("id");
    let mut latencies = Vec::new();
    for n in 0..5 {
        // Let the worker go idle (its poll interval is 1 s).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let answered = {
            api.send_test(webhook_id, "trigger_event.created").await;
            Instant::now()
        };
        let arrived = receiver.wait_for(n + 1, WAIT).await;
        latencies.push(arrived[n].at.saturating_duration_since(answered));
    }
    latencies.sort();
    let median = latencies[2];
    eprintln!("API answer -> arrival latencies: {latencies:?}");
    // Far below the 1 s idle poll: the API's commit woke the worker.
    assert!(median < Duration::from_millis(250), "median {median:?}");
}

/// A burst to one webhook whose endpoint stalls: new deliveries are handed to the worker and wait
/// for the webhook's slots, up to 2,048 of them; the worker gives up the rest to claiming and
/// releases their leases, so they are delivered as soon as the endpoint answers again, not when
/// their lease (ten minutes here) runs out.
#[tokio::test]
async fn deliveries_the_worker_gives_up_are_claimed_without_waiting_for_their_lease() {
    const STALLED: usize = 64; // the worker's in-flight limit per webhook
    const EVENTS: usize = STALLED + 2048 + 200;
    let server = TestServer::start_with(|config| {
        config.lease = Duration::from_secs(600);
        config.delivery_timeout = Duration::from_secs(60);
    })
    .await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    receiver.script(vec![Answer::After(Duration::from_secs(15)); STALLED]);
    webhook_on(&api, &receiver).await;
    api.put_trigger("signup", Value::Null).await;

    let mut clients = tokio::task::JoinSet::new();
    for client in 0..32 {
        let api = api.clone();
        clients.spawn(async move {
            for n in (client..EVENTS).step_by(32) {
                api.trigger_event(&format!("user-{n}"), "signup", Value::Null)
                    .await;
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.expect("client");
    }

    let arrived = receiver.wait_for(EVENTS, Duration::from_secs(120)).await;
    let ids: std::collections::HashSet<&str> =
        arrived.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), EVENTS, "each event delivered once");
    let metrics = reqwest::get(format!("{}/metrics", server.base_url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let given_up: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("reward_delivery_handoffs_given_up_total "))
        .and_then(|value| value.trim().parse().ok())
        .expect("the given-up counter");
    assert!(
        given_up > 0,
        "the burst must have gone past what may wait for one webhook"
    );
}
