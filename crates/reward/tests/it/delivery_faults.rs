//! The delivery engine under faults: isolation from slow and dead endpoints, SIGKILL mid-burst,
//! graceful shutdown, secure-mode refusals, and `reward listen` as a verifying receiver.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{create_account, fresh_database, Api, ServerProcess, TestServer, REWARD_BIN};
use crate::receiver::{Answer, Receiver};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn slow_and_dead_endpoints_do_not_delay_a_healthy_one() {
    let server =
        TestServer::start_with(|config| config.delivery_timeout = Duration::from_secs(15)).await;
    let api = server.account("Acme").await;
    let slow = Receiver::start().await;
    slow.answer(Answer::After(Duration::from_secs(10)));
    let healthy = Receiver::start().await;
    // A dead endpoint: a port nothing listens on.
    let dead_url = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/hook", listener.local_addr().expect("addr"))
    };
    api.create_webhook(&slow.url).await;
    api.create_webhook(&dead_url).await;
    api.create_webhook(&healthy.url).await;
    api.put_trigger("signup", json!({"fixed": 1})).await;

    // Fill the slow endpoint's in-flight slots, then keep sending events.
    let events = 60;
    let started = Instant::now();
    for n in 0..events {
        api.trigger_event(&format!("u{n}"), "signup", Value::Null)
            .await;
    }
    // Every event gives the healthy endpoint two deliveries.
    let arrived = healthy.wait_for(events * 2, WAIT).await;
    let last = arrived
        .iter()
        .map(|request| request.at)
        .max()
        .expect("arrivals");
    let elapsed = last - started;
    eprintln!(
        "healthy endpoint got {} deliveries in {elapsed:?} beside a 10 s endpoint",
        arrived.len()
    );
    assert!(
        elapsed < Duration::from_secs(8),
        "healthy deliveries waited on the slow endpoint: {elapsed:?}"
    );
    assert!(slow.count() >= 1);
}

#[tokio::test]
async fn sigkill_during_a_burst_loses_no_acknowledged_event() {
    let (_database, database_url) = fresh_database().await;
    let receiver = Receiver::start().await;
    let env = [
        ("REWARD_ALLOW_INSECURE_TARGETS", "true"),
        ("REWARD_RETRY_BASE", "100ms"),
        ("REWARD_RETRY_FACTOR", "2"),
    ];
    let server = ServerProcess::spawn(&database_url, &env).await;
    let account = create_account(&database_url, "Acme").await;
    let api = Api::new(&server.base_url, account["api_key"].as_str().expect("key"));
    api.create_webhook(&receiver.url).await;
    api.put_trigger("signup", json!({"fixed": 1})).await;

    let mut clients = Vec::new();
    for client in 0..8 {
        let api = api.clone();
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut acknowledged = Vec::new();
            for n in 0..2000 {
                let body = json!({"user_id": format!("u{client}-{n}"), "trigger_id": "signup"});
                let sent = http
                    .post(format!("{}/v1/trigger_events", api.base_url))
                    .bearer_auth(&api.key)
                    .body(body.to_string())
                    .send()
                    .await;
                let Ok(response) = sent else { break };
                if response.status().as_u16() != 201 {
                    break;
                }
                let Ok(recorded) = response.json::<Value>().await else {
                    break;
                };
                acknowledged.push(recorded["id"].as_str().expect("id").to_owned());
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.kill().await;
    let mut acknowledged = HashSet::new();
    for client in clients {
        acknowledged.extend(client.await.expect("client"));
    }
    assert!(
        acknowledged.len() >= 8,
        "the burst got going: {}",
        acknowledged.len()
    );

    let restarted = ServerProcess::spawn(&database_url, &env).await;
    // Every acknowledged trigger event reaches the receiver (its trigger_event.created does).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delivered: HashSet<String> = receiver
            .received()
            .iter()
            .map(|request| request.json())
            .filter(|event| event["type"] == "trigger_event.created")
            .filter_map(|event| event["data"]["id"].as_str().map(str::to_owned))
            .collect();
        let missing = acknowledged.difference(&delivered).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} acknowledged events never arrived",
            acknowledged.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{} acknowledged events, all delivered after SIGKILL and restart",
        acknowledged.len()
    );
    restarted.kill().await;
}

#[tokio::test]
async fn sigterm_lets_attempts_in_flight_finish_and_exits_zero() {
    let (_database, database_url) = fresh_database().await;
    let receiver = Receiver::start().await;
    receiver.answer(Answer::After(Duration::from_millis(1500)));
    let env = [("REWARD_ALLOW_INSECURE_TARGETS", "true")];
    let mut server = ServerProcess::spawn(&database_url, &env).await;
    let account = create_account(&database_url, "Acme").await;
    let api = Api::new(&server.base_url, account["api_key"].as_str().expect("key"));
    let webhook = api.create_webhook(&receiver.url).await;
    let webhook_id = webhook["id"].as_str().expect("id");
    let test = api.send_test(webhook_id, "trigger_event.created").await;
    receiver.wait_for(1, WAIT).await;

    let pid = server.child.id().expect("pid");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(WAIT, server.child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "exit status {status:?}");

    // The attempt that was in flight was recorded before exit.
    receiver.answer(Answer::Status(500));
    let restarted = ServerProcess::spawn(&database_url, &env).await;
    let api = Api::new(&restarted.base_url, &api.key);
    let delivery = api
        .get(&format!(
            "/v1/deliveries/{}",
            test.body["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(delivery.body["status"], "succeeded", "{}", delivery.body);
    assert_eq!(receiver.count(), 1);
    restarted.kill().await;
}

/// `REWARD_SHUTDOWN_DELAY`: after SIGTERM the node says it is not ready but goes on serving for
/// the delay (a load balancer's time to stop sending it requests), then stops, exit status 0.
#[tokio::test]
async fn sigterm_with_a_shutdown_delay_turns_unready_and_serves_on_until_it_ends() {
    let (_database, database_url) = fresh_database().await;
    let delay = Duration::from_secs(5);
    let env = [("REWARD_SHUTDOWN_DELAY", "5s")];
    let mut server = ServerProcess::spawn(&database_url, &env).await;
    let account = create_account(&database_url, "Acme").await;
    let api = Api::new(&server.base_url, account["api_key"].as_str().expect("key"));
    assert_eq!(api.get("/readyz").await.status.as_u16(), 200);

    let pid = server.child.id().expect("pid");
    let signalled = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    // Unready at once (the signal is handled within moments)...
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let ready = api.get("/readyz").await;
        if ready.status.as_u16() == 503 {
            ready.assert_error(503, "shutting_down", None);
            break;
        }
        assert!(Instant::now() < deadline, "still ready: {:?}", ready.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...while requests are still served, writes included.
    assert_eq!(api.get("/v1/webhooks").await.status.as_u16(), 200);
    let credited = api.post("/v1/users/u1/credits", json!({"points": 5})).await;
    assert_eq!(credited.status.as_u16(), 201, "{:?}", credited.body);
    assert!(
        signalled.elapsed() < delay,
        "the checks above outlasted the delay"
    );
    let status = tokio::time::timeout(WAIT, server.child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        signalled.elapsed() >= delay,
        "stopped after {:?}, before the delay",
        signalled.elapsed()
    );
}

#[tokio::test]
async fn secure_mode_refuses_private_targets_without_connecting() {
    let (_database, database_url) = fresh_database().await;
    let receiver = Receiver::start().await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .and_then(|rest| rest.split('/').next())
        .expect("port")
        .to_owned();

    // Webhooks made while insecure targets were allowed...
    let insecure = TestServer::start_on(&database_url, |_| {}).await;
    let api = insecure.account("Acme").await;
    let by_ip = api.create_webhook(&receiver.url).await;
    let by_name = api
        .create_webhook(&format!("http://localhost:{port}/hook"))
        .await;
    insecure.stop().await;

    // ...are refused once the server runs in secure mode: no connection is ever made.
    let secure = TestServer::start_on(&database_url, |config| {
        config.target_policy = reward_core::names::TargetPolicy::SecureOnly;
    })
    .await;
    let api = Api::new(&secure.base_url, &api.key);
    for webhook in [&by_ip, &by_name] {
        let id = webhook["id"].as_str().expect("id");
        let test = api.send_test(id, "trigger_event.created").await;
        assert_eq!(test.status.as_u16(), 202);
        let done = api
            .wait_delivery(test.body["id"].as_str().expect("id"), WAIT, |d| {
                d["attempt_count"].as_u64() >= Some(1)
            })
            .await;
        let error = done["attempts"][0]["error"].as_str().expect("error");
        assert!(error.contains("refused"), "{error}");
        assert_eq!(done["attempts"][0]["status_code"], Value::Null);
    }
    assert_eq!(
        receiver.count(),
        0,
        "secure mode connected to a loopback target"
    );
}

/// Starts `reward listen` and returns the child and its URL.
async fn start_listen(
    secret: &str,
) -> (
    tokio::process::Child,
    String,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let mut child = tokio::process::Command::new(REWARD_BIN)
        .args(["listen", "--secret", secret, "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn reward listen");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("banner")
        .expect("read")
        .expect("line");
    let url = first
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .expect("URL in banner")
        .to_owned();
    (child, url, lines)
}

#[tokio::test]
async fn reward_listen_verifies_real_deliveries_and_rejects_tampered_ones() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    // Learn the secret first: create the webhook on a placeholder, then point it at listen.
    let webhook = api.create_webhook("http://127.0.0.1:9/").await;
    let webhook_id = webhook["id"].as_str().expect("id");
    let secret = webhook["secret"].as_str().expect("secret");
    let (_child, url, mut lines) = start_listen(secret).await;
    api.patch(&format!("/v1/webhooks/{webhook_id}"), json!({"url": url}))
        .await;
    let test = api.send_test(webhook_id, "trigger_event.created").await;
    let done = api
        .wait_delivery(test.body["id"].as_str().expect("id"), WAIT, |d| {
            d["status"] == "succeeded"
        })
        .await;
    assert_eq!(done["last_status_code"], 204);
    let printed = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("line")
        .expect("read")
        .expect("line");
    assert!(
        printed.contains("verified") && printed.contains("trigger_event.created"),
        "{printed}"
    );

    // Replay the same request with one body byte changed: 400 with a reason.
    let event = api
        .get(&format!(
            "/v1/events/{}",
            test.body["event_id"].as_str().expect("id")
        ))
        .await;
    let body = serde_json::to_vec(&event.body).expect("json");
    let timestamp = reward_core::time::Timestamp::now().as_unix_seconds();
    let signing = reward_core::signing::WebhookSecret::parse(secret).expect("secret");
    let event_id = test.body["event_id"].as_str().expect("id");
    let signature = signing.sign(event_id, timestamp, &body);
    let post = |body: Vec<u8>| {
        reqwest::Client::new()
            .post(&url)
            .header("webhook-id", event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature.clone())
            .body(body)
            .send()
    };
    let genuine = post(body.clone()).await.expect("post");
    assert_eq!(genuine.status().as_u16(), 204);
    let mut tampered = body.clone();
    tampered[12] ^= 1;
    let refused = post(tampered).await.expect("post");
    assert_eq!(refused.status().as_u16(), 400);
    assert!(refused.text().await.expect("text").contains("signature"));

    let stale = reqwest::Client::new()
        .post(&url)
        .header("webhook-id", event_id)
        .header("webhook-timestamp", (timestamp - 600).to_string())
        .header(
            "webhook-signature",
            signing.sign(event_id, timestamp - 600, &body),
        )
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(stale.status().as_u16(), 400);
}
