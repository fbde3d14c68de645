//! Hardening: abuse limits, slow clients, outbound caps, automatic disabling and secrets at rest.
//! Each test asserts what a client sees (status, error code, headers) and that nothing the API
//! acknowledged is lost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{Api, TestServer};
use crate::receiver::{Answer, Receiver};

/// Records trigger events until one is refused; returns the ids of those acknowledged (201) and
/// the refusal.
async fn record_until_refused(
    api: &Api,
    tries: usize,
) -> (Vec<String>, Option<crate::common::Reply>) {
    let mut acknowledged = Vec::new();
    for n in 0..tries {
        let reply = api
            .post(
                "/v1/trigger_events",
                json!({"user_id": format!("user-{n}"), "trigger_id": "visit", "value": null}),
            )
            .await;
        if reply.status == StatusCode::CREATED {
            acknowledged.push(reply.body["id"].as_str().expect("id").to_owned());
        } else {
            return (acknowledged, Some(reply));
        }
    }
    (acknowledged, None)
}

/// The trigger event ids in what the receiver got.
fn delivered_trigger_events(receiver: &Receiver) -> Vec<String> {
    let mut ids: Vec<String> = receiver
        .received()
        .iter()
        .map(|received| received.json())
        .filter(|event| event["type"] == "trigger_event.created")
        .map(|event| event["data"]["id"].as_str().expect("data.id").to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[tokio::test]
async fn over_the_rate_limit_answers_429_with_retry_after_and_loses_nothing() {
    let server = TestServer::start_with(|config| config.rate_limit = 5).await;
    let api = server.account("Acme").await;
    let other = server.account("Other").await;
    let receiver = Receiver::start().await;
    api.create_webhook(&receiver.url).await;
    api.put_trigger("visit", Value::Null).await;

    // A burst of 10 (twice the rate), less the two calls above: then 429.
    let (mut acknowledged, refused) = record_until_refused(&api, 50).await;
    let refused = refused.expect("the limit must refuse within 50 requests");
    refused.assert_error(429, "rate_limited", None);
    let retry_after: u64 = refused.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    assert!(
        (5..=20).contains(&acknowledged.len()),
        "{} acknowledged before the limit",
        acknowledged.len()
    );

    // Another account has its own bucket.
    assert_eq!(other.get("/v1/webhooks").await.status, StatusCode::OK);

    // After Retry-After, requests go through again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (more, _) = record_until_refused(&api, 3).await;
    assert_eq!(more.len(), 3);
    acknowledged.extend(more);

    // Every acknowledged event is delivered; the refused one never came into being.
    receiver
        .wait_for(acknowledged.len(), Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    acknowledged.sort();
    assert_eq!(delivered_trigger_events(&receiver), acknowledged);
}

#[tokio::test]
async fn a_rate_limit_of_zero_is_off() {
    let server = TestServer::start_with(|config| config.rate_limit = 0).await;
    let api = server.account("Acme").await;
    for _ in 0..300 {
        assert_eq!(api.get("/v1/webhooks").await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn an_account_has_at_most_100_webhooks() {
    let server = TestServer::start_with(|config| config.rate_limit = 0).await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids.push(api.create_webhook(&receiver.url).await["id"].clone());
    }
    let before = api.snapshot().await;
    let reply = api
        .post(
            "/v1/webhooks",
            json!({"name": "One more", "url": receiver.url, "events": ["trigger_event.created"]}),
        )
        .await;
    reply.assert_error(422, "limit_exceeded", None);
    assert_eq!(
        api.snapshot().await,
        before,
        "a refused webhook changes nothing"
    );

    // Deleting one makes room again.
    let id = ids[0].as_str().expect("id");
    assert_eq!(
        api.delete(&format!("/v1/webhooks/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    api.create_webhook(&receiver.url).await;
}

#[tokio::test]
async fn an_account_has_at_most_100_live_api_keys() {
    let server = TestServer::start_with(|config| config.rate_limit = 0).await;
    let api = server.account("Acme").await;
    // The account's first key is one of the 100.
    let mut ids = Vec::new();
    for n in 1..100 {
        let reply = api
            .post("/v1/api_keys", json!({"name": format!("ci-{n}")}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        ids.push(reply.body["id"].as_str().expect("id").to_owned());
    }
    let before = api.get("/v1/api_keys").await.body;
    assert_eq!(before["data"].as_array().map(Vec::len), Some(100));
    let reply = api.post("/v1/api_keys", json!({"name": "one more"})).await;
    reply.assert_error(422, "limit_exceeded", None);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("revoke one first")),
        "{:?}",
        reply.body
    );
    assert_eq!(
        api.get("/v1/api_keys").await.body,
        before,
        "a refused key changes nothing"
    );

    // Revoking one makes room again.
    assert_eq!(
        api.delete(&format!("/v1/api_keys/{}", ids[0])).await.status,
        StatusCode::NO_CONTENT
    );
    let reply = api
        .post("/v1/api_keys", json!({"name": "room again"}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
}

#[tokio::test]
async fn event_lists_and_urls_have_bounds() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    // Duplicates are dropped, so a webhook holds each known type at most once.
    let reply = api
        .post(
            "/v1/webhooks",
            json!({"name": "Dup", "url": receiver.url, "events": ["trigger_event.created", "trigger_event.created"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["events"], json!(["trigger_event.created"]));
    // A hostile list is refused before any work on its entries.
    let many = vec!["trigger_event.created"; 101];
    let reply = api
        .post(
            "/v1/webhooks",
            json!({"name": "Many", "url": receiver.url, "events": many}),
        )
        .await;
    reply.assert_error(422, "invalid_value", Some("events"));
    // URLs: at most 2048 characters.
    let long = format!("{}?{}", receiver.url, "a".repeat(2048));
    let reply = api
        .post(
            "/v1/webhooks",
            json!({"name": "Long", "url": long, "events": ["trigger_event.created"]}),
        )
        .await;
    reply.assert_error(422, "invalid_value", Some("url"));
    let webhooks = api.get("/v1/webhooks").await;
    assert_eq!(webhooks.body["data"].as_array().expect("data").len(), 1);
}

fn address_of(server: &TestServer) -> String {
    server.base_url.trim_start_matches("http://").to_owned()
}

/// Reads until the peer closes or `limit` passes; returns what was read and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut text = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&text).into(), true),
            Ok(Ok(n)) => text.extend_from_slice(&buffer[..n]),
            Err(_) => return (String::from_utf8_lossy(&text).into(), false),
        }
    }
}

#[tokio::test]
async fn a_client_too_slow_to_send_its_headers_is_disconnected() {
    let server = TestServer::start_with(|config| {
        config.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    let mut stream = TcpStream::connect(address_of(&server))
        .await
        .expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: reward\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed, "the connection must be closed");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Others are served as usual.
    assert_eq!(
        server.anonymous().get("/healthz").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_body_that_trickles_past_its_deadline_answers_408_and_changes_nothing() {
    let server = TestServer::start_with(|config| {
        config.body_read_timeout = Duration::from_millis(500);
    })
    .await;
    let api = server.account("Acme").await;
    let before = api.snapshot().await;
    let body =
        json!({"name": "Slow", "url": "http://127.0.0.1:9/", "events": ["trigger_event.created"]})
            .to_string();
    let mut stream = TcpStream::connect(address_of(&server))
        .await
        .expect("connect");
    let head = format!(
        "POST /v1/webhooks HTTP/1.1\r\nHost: reward\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        api.key,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    // One byte every 100 ms: each chunk is quick, the whole is not.
    let started = Instant::now();
    let mut answer = String::new();
    for byte in body.as_bytes().iter().take(body.len() - 1) {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        let mut buffer = [0u8; 4096];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer)).await
        {
            answer.push_str(&String::from_utf8_lossy(&buffer[..n]));
            break;
        }
    }
    if answer.is_empty() {
        answer = read_until_closed(&mut stream, Duration::from_secs(3))
            .await
            .0;
    }
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        api.snapshot().await,
        before,
        "a timed-out request changes nothing"
    );
}

/// A receiver that answers 204 after `delay` and records the most requests it ever held at once.
async fn counting_receiver(delay: Duration) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (now, most, total) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let state = (Arc::clone(&now), Arc::clone(&most), Arc::clone(&total));
    let app = Router::new().route(
        "/{*path}",
        post(move || {
            let (now, most, total) = state.clone();
            async move {
                let holding = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(holding, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                now.fetch_sub(1, Ordering::SeqCst);
                total.fetch_add(1, Ordering::SeqCst);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, most, total)
}

#[tokio::test]
async fn outbound_connections_to_one_host_are_capped() {
    let server = TestServer::start_with(|config| {
        config.per_host_connections = 2;
        config.delivery_timeout = Duration::from_secs(10);
        config.rate_limit = 0;
    })
    .await;
    let api = server.account("Acme").await;
    let (url, most, total) = counting_receiver(Duration::from_millis(150)).await;
    // Three webhooks on one host: each could have many attempts in flight; the host gets two.
    for _ in 0..3 {
        api.create_webhook(&url).await;
    }
    api.put_trigger("visit", Value::Null).await;
    let (acknowledged, refused) = record_until_refused(&api, 6).await;
    assert!(refused.is_none());
    let expected = acknowledged.len() * 3;
    let deadline = Instant::now() + Duration::from_secs(20);
    while total.load(Ordering::SeqCst) < expected {
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} delivered",
            total.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        most.load(Ordering::SeqCst) <= 2,
        "{} at once",
        most.load(Ordering::SeqCst)
    );
    // Nothing failed for waiting its turn. (The last attempts may still be being recorded when
    // their requests have arrived: each delivery is waited for, and must end succeeded.)
    let webhooks = api.get("/v1/webhooks").await.body["data"].clone();
    for webhook in webhooks.as_array().expect("data") {
        let id = webhook["id"].as_str().expect("id");
        for delivery in api.deliveries(id).await {
            let id = delivery["id"].as_str().expect("id");
            let settled = api
                .wait_delivery(id, Duration::from_secs(10), |found| {
                    found["status"] != "pending"
                })
                .await;
            assert_eq!(settled["status"], "succeeded", "{settled}");
        }
    }
}

#[tokio::test]
async fn a_webhook_whose_deliveries_all_fail_for_disable_after_is_disabled() {
    let server = TestServer::start_with(|config| {
        config.disable_after = Duration::from_secs(1);
        config.upkeep_every = Duration::from_millis(200);
        config.retry.max_retries = 20;
    })
    .await;
    let api = server.account("Acme").await;
    let failing = Receiver::start().await;
    failing.answer(Answer::Status(500));
    let healthy = Receiver::start().await;
    let failing_id = api.create_webhook(&failing.url).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let healthy_id = api.create_webhook(&healthy.url).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    api.put_trigger("visit", Value::Null).await;
    let started = Instant::now();
    let (acknowledged, _) = record_until_refused(&api, 3).await;
    assert_eq!(acknowledged.len(), 3);

    let webhook = loop {
        let webhook = api.get(&format!("/v1/webhooks/{failing_id}")).await.body;
        if webhook["enabled"] == false {
            break webhook;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never disabled: {webhook}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "disabled too early"
    );
    let reason = webhook["disabled_reason"]
        .as_str()
        .expect("disabled_reason");
    assert!(reason.contains("failed for 1s"), "{reason}");
    // The healthy one keeps going.
    let healthy_webhook = api.get(&format!("/v1/webhooks/{healthy_id}")).await.body;
    assert_eq!(healthy_webhook["enabled"], true, "{healthy_webhook}");
    assert!(healthy_webhook["disabled_reason"].is_null());

    // Nothing acknowledged is lost: once the endpoint is back and the webhook enabled again,
    // every event reaches it (failed deliveries through recover).
    failing.answer(Answer::Status(204));
    let reply = api
        .patch(
            &format!("/v1/webhooks/{failing_id}"),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert!(reply.body["disabled_reason"].is_null());
    let reply = api
        .post(
            &format!("/v1/webhooks/{failing_id}/recover"),
            json!({"since": "2000-01-01T00:00:00.000Z"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut expected = acknowledged.clone();
    expected.sort();
    loop {
        let deliveries = api.deliveries(&failing_id).await;
        if deliveries.len() == expected.len()
            && deliveries
                .iter()
                .all(|delivery| delivery["status"] == "succeeded")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every event was delivered after recovery: {deliveries:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered_trigger_events(&failing), expected);
    // Enabling restarted the clock: the next sweeps leave it enabled.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let webhook = api.get(&format!("/v1/webhooks/{failing_id}")).await.body;
    assert_eq!(webhook["enabled"], true, "{webhook}");
}

/// Every byte the database keeps: the SQLite file and its write-ahead log, or on PostgreSQL the
/// webhooks' secret columns.
async fn stored_bytes(database_url: &str) -> Vec<u8> {
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let mut bytes = std::fs::read(path).expect("database file");
        if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
            bytes.extend(wal);
        }
        return bytes;
    }
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let rows = client
        .query("SELECT secret, previous_secrets FROM webhooks", &[])
        .await
        .expect("query");
    rows.iter()
        .flat_map(|row| {
            let (current, previous): (String, String) = (row.get(0), row.get(1));
            format!("{current}\n{previous}\n").into_bytes()
        })
        .collect()
}

/// Whether `secret` (`whsec_` + base64 of its key) shows in `stored` in any form.
fn reveals(stored: &[u8], secret: &str) -> bool {
    use base64::Engine;
    let encoded = secret.strip_prefix("whsec_").expect("whsec_ secret");
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64 key");
    let contains = |needle: &[u8]| stored.windows(needle.len()).any(|window| window == needle);
    contains(b"whsec_") || contains(encoded.as_bytes()) || contains(&key)
}

fn assert_verifies(received: &crate::receiver::Received, secret: &str) {
    let secret = reward_core::signing::WebhookSecret::parse(secret).expect("secret");
    reward_core::signing::verify_request(
        &secret,
        Some(received.header("webhook-id")),
        Some(received.header("webhook-timestamp")),
        Some(received.header("webhook-signature")),
        &received.body,
        reward_core::time::Timestamp::now().as_unix_seconds(),
    )
    .expect("the signature verifies with the secret the API returned");
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_deliveries_still_verify() {
    let (database, database_url) = crate::common::fresh_database().await;
    let server = TestServer::start_on(&database_url, |_| {}).await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let webhook = api.create_webhook(&receiver.url).await;
    let id = webhook["id"].as_str().expect("id").to_owned();
    let first = webhook["secret"].as_str().expect("secret").to_owned();
    let rotated = api
        .post(&format!("/v1/webhooks/{id}/secret/rotate"), json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let current = rotated.body["secret"].as_str().expect("secret").to_owned();
    api.put_trigger("visit", Value::Null).await;
    api.trigger_event("u1", "visit", Value::Null).await;
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    // Signed by both during the rotation's overlap: each verifies.
    assert_verifies(&received[0], &first);
    assert_verifies(&received[0], &current);
    let shown = api.get(&format!("/v1/webhooks/{id}/secret")).await;
    assert_eq!(shown.body["secret"], current.as_str());

    // The database alone reveals neither secret.
    let stored = stored_bytes(&database_url).await;
    assert!(!stored.is_empty());
    assert!(
        !reveals(&stored, &first),
        "the previous secret is stored readable"
    );
    assert!(!reveals(&stored, &current), "the secret is stored readable");
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let key_file = format!("{path}.key");
        let metadata = std::fs::metadata(&key_file).expect("a key file beside the database");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
        }
        #[cfg(not(unix))]
        let _ = metadata;
    }
    server.stop().await;

    // A row from before encryption (plain text) is sealed when the server opens the database,
    // and its deliveries still verify.
    let legacy = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let connection = rusqlite::Connection::open(path).expect("open");
        connection
            .execute(
                "UPDATE webhooks SET secret = ?1, previous_secrets = '[]'",
                [legacy],
            )
            .expect("write a plain secret");
    } else {
        let (client, connection) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .execute(
                "UPDATE webhooks SET secret = $1, previous_secrets = '[]'",
                &[&legacy],
            )
            .await
            .expect("write a plain secret");
    }
    let server = TestServer::start_on(&database_url, |_| {}).await;
    let stored = stored_bytes(&database_url).await;
    assert!(!reveals(&stored, legacy), "a plain secret was left plain");
    let api = Api::new(&server.base_url, &api.key);
    api.trigger_event("u2", "visit", Value::Null).await;
    let received = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_verifies(&received[1], legacy);
    server.stop().await;
    drop(database);
}

#[tokio::test]
async fn postgres_without_a_secret_key_refuses_to_start_with_one_line() {
    // The key is checked before connecting, so no server need answer at this URL.
    let output = tokio::process::Command::new(crate::common::REWARD_BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "REWARD_DATABASE_URL",
            "postgres://reward@127.0.0.1:1/reward",
        )
        .env_remove("REWARD_SECRET_KEY")
        .env_remove("REWARD_CONFIG")
        .output()
        .await
        .expect("run reward serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("REWARD_SECRET_KEY"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("required with PostgreSQL"), "{stderr}");
}

/// Records `events` trigger events of the trigger `visit`, from 16 clients at once; each must be
/// acknowledged.
async fn record_from_16_clients(api: &Api, events: usize) {
    let clients: Vec<_> = (0..16)
        .map(|client| {
            let api = api.clone();
            tokio::spawn(async move {
                for n in (client..events).step_by(16) {
                    let reply = api
                        .post(
                            "/v1/trigger_events",
                            json!({"user_id": format!("user-{n}"), "trigger_id": "visit", "value": null}),
                        )
                        .await;
                    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
                }
            })
        })
        .collect();
    for client in clients {
        client.await.expect("client");
    }
}

/// Deleting a webhook with more deliveries than one deletion transaction takes (2,000 on SQLite)
/// removes every one of them, and nothing of the other webhooks.
#[tokio::test]
async fn deleting_a_webhook_with_many_deliveries_removes_them_all() {
    const EVENTS: usize = 2_100;
    let server = TestServer::start_with(|config| config.run_worker = false).await;
    let api = server.account("Acme").await;
    api.put_trigger("visit", Value::Null).await;
    let doomed = api.create_webhook("http://127.0.0.1:9/doomed").await;
    let kept = api.create_webhook("http://127.0.0.1:9/kept").await;
    record_from_16_clients(&api, EVENTS).await;
    let doomed_id = doomed["id"].as_str().expect("id");
    let kept_id = kept["id"].as_str().expect("id");
    let sample = api.deliveries(doomed_id).await;
    let kept_sample = api.deliveries(kept_id).await;
    assert_eq!(sample.len(), 100);

    let reply = api.delete(&format!("/v1/webhooks/{doomed_id}")).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{:?}", reply.body);
    for delivery in &sample {
        let id = delivery["id"].as_str().expect("id");
        api.get(&format!("/v1/deliveries/{id}"))
            .await
            .assert_error(404, "not_found", None);
    }
    for delivery in &kept_sample {
        let id = delivery["id"].as_str().expect("id");
        assert_eq!(
            api.get(&format!("/v1/deliveries/{id}")).await.status,
            StatusCode::OK
        );
    }
    if let Some(path) = server.database_url.strip_prefix("sqlite://") {
        let connection = rusqlite::Connection::open(path).expect("open");
        let count = |sql: &str, webhook: &str| -> i64 {
            connection
                .query_row(sql, [webhook], |row| row.get(0))
                .expect("count")
        };
        let by_webhook = "SELECT COUNT(*) FROM deliveries WHERE webhook_id = ?1";
        assert_eq!(count(by_webhook, doomed_id), 0);
        assert_eq!(count(by_webhook, kept_id), EVENTS as i64);
        let unfinished = "SELECT COUNT(*) FROM webhook_deletions WHERE webhook_id = ?1";
        assert_eq!(count(unfinished, doomed_id), 0);
    }
    server.stop().await;
}

/// Recovering more failed deliveries than one recovery transaction takes (2,000 on SQLite)
/// re-queues every one of them, once.
#[tokio::test]
async fn recovering_many_failed_deliveries_requeues_them_all_once() {
    const EVENTS: usize = 2_100;
    let server = TestServer::start_with(|config| config.retry.max_retries = 0).await;
    let api = server.account("Acme").await;
    api.put_trigger("visit", Value::Null).await;
    // Nothing listens on port 9: every attempt fails at once.
    let webhook = api.create_webhook("http://127.0.0.1:9/down").await;
    let webhook_id = webhook["id"].as_str().expect("id").to_owned();
    record_from_16_clients(&api, EVENTS).await;
    let pending = format!("/v1/webhooks/{webhook_id}/deliveries?status=pending&limit=1");
    let wait_until_none_pending = || async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let reply = api.get(&pending).await;
            if reply.body["data"].as_array().is_some_and(Vec::is_empty) {
                return;
            }
            assert!(Instant::now() < deadline, "deliveries still pending");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    wait_until_none_pending().await;

    let recovered = api
        .post(
            &format!("/v1/webhooks/{webhook_id}/recover"),
            json!({"since": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        recovered.status,
        StatusCode::ACCEPTED,
        "{:?}",
        recovered.body
    );
    assert_eq!(recovered.body["recovered"], EVENTS);
    wait_until_none_pending().await;
    let failed = api
        .get(&format!(
            "/v1/webhooks/{webhook_id}/deliveries?status=failed&limit=100"
        ))
        .await;
    for delivery in failed.body["data"].as_array().expect("data") {
        assert_eq!(delivery["attempt_count"], 2, "{delivery}");
    }
    server.stop().await;
}
