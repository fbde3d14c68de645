//! Test harness: start a server (in-process or the real binary), create accounts with the real
//! `reward accounts create`, and talk to the API. Each server gets a fresh database on the backend
//! `REWARD_TEST_BACKEND` selects (see `databases`).

#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use reward_core::names::TargetPolicy;
use reward_server::Config;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::databases::{fresh_database, fresh_postgres_database, TestDatabase};

pub const REWARD_BIN: &str = env!("CARGO_BIN_EXE_reward");

/// A server running inside the test process, on its own fresh database.
pub struct TestServer {
    pub base_url: String,
    pub database_url: String,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// Keeps the database alive as long as the server (when the server made it).
    _database: Option<TestDatabase>,
}

/// The secret key tests on PostgreSQL seal webhook secrets with (SQLite tests use the key file
/// beside their database, as a default install does).
pub const TEST_SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn secret_key_for(database_url: &str) -> Option<&'static str> {
    database_url
        .starts_with("postgres")
        .then_some(TEST_SECRET_KEY)
}

/// Settings for tests: loopback receivers allowed, short retries, no rate limit.
pub fn test_config(database_url: &str) -> Config {
    let mut config = Config::with_database_url(database_url);
    config.target_policy = TargetPolicy::AllowInsecure;
    config.retry.base = Duration::from_millis(100);
    config.retry.factor = 2.0;
    config.delivery_timeout = Duration::from_secs(2);
    // Tests drive the API faster than a client should; hardening.rs tests the limit itself.
    config.rate_limit = 0;
    config.secret_key = secret_key_for(database_url).map(str::to_owned);
    config
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        let (database, database_url) = fresh_database().await;
        let mut server = Self::start_on(&database_url, configure).await;
        server._database = Some(database);
        server
    }

    /// Starts on an existing database (e.g. to restart with other settings).
    pub async fn start_on(database_url: &str, configure: impl FnOnce(&mut Config)) -> Self {
        let database_url = database_url.to_owned();
        let mut config = test_config(&database_url);
        configure(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(reward_server::run(config, listener, shutdown.clone()));
        let server = Self {
            base_url,
            database_url,
            shutdown,
            task: Some(task),
            _database: None,
        };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&self) {
        wait_healthy(&self.base_url).await;
    }

    /// A new account, made by the real `reward accounts create`, and an API client for it.
    pub async fn account(&self, name: &str) -> Api {
        let created = create_account(&self.database_url, name).await;
        Api::new(
            &self.base_url,
            created["api_key"].as_str().expect("api_key"),
        )
    }

    /// A client with no (or any) key.
    pub fn anonymous(&self) -> Api {
        Api::new(&self.base_url, "")
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn wait_healthy(base_url: &str) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("{base_url}/healthz")).send().await {
            if response.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("server at {base_url} never became healthy");
}

/// Runs `reward accounts create` against a database and returns its JSON line.
pub async fn create_account(database_url: &str, name: &str) -> Value {
    let output = tokio::process::Command::new(REWARD_BIN)
        .args([
            "accounts",
            "create",
            "--name",
            name,
            "--database-url",
            database_url,
        ])
        .env_remove("REWARD_DATABASE_URL")
        .output()
        .await
        .expect("run reward accounts create");
    assert!(
        output.status.success(),
        "accounts create failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    serde_json::from_str(stdout.trim()).expect("JSON line")
}

/// A node's `/metrics`, in the classic text format.
pub async fn metrics_text(base_url: &str) -> String {
    reqwest::get(format!("{base_url}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The real binary, `reward serve`, as a child process.
pub struct ServerProcess {
    pub base_url: String,
    pub child: tokio::process::Child,
    /// Every line it wrote to stderr, so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `reward serve` on a random port with `env` added, and waits until it answers.
    pub async fn spawn(database_url: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn_full(database_url, env, &[]).await
    }

    /// Starts `reward serve` with extra flags.
    pub async fn spawn_with_args(database_url: &str, args: &[&str]) -> Self {
        Self::spawn_full(database_url, &[], args).await
    }

    async fn spawn_full(database_url: &str, env: &[(&str, &str)], args: &[&str]) -> Self {
        let mut command = tokio::process::Command::new(REWARD_BIN);
        command
            .arg("serve")
            .args(args)
            .env("REWARD_LISTEN", "127.0.0.1:0")
            .env("REWARD_DATABASE_URL", database_url)
            .env("RUST_LOG", "info")
            .env("REWARD_RATE_LIMIT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(key) = secret_key_for(database_url) {
            command.env("REWARD_SECRET_KEY", key);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn reward serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let address = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.expect("read stderr") {
                let address = line.split("address=").nth(1).map(|rest| {
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                });
                log.lock().expect("log lock").push(line);
                if address.is_some() {
                    return address;
                }
            }
            None
        })
        .await
        .expect("server start timed out")
        .expect("server printed its address");
        // Keep draining stderr so the child never blocks on a full pipe.
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().expect("log lock").push(line);
            }
        });
        let base_url = format!("http://{address}");
        wait_healthy(&base_url).await;
        Self {
            base_url,
            child,
            log,
        }
    }

    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        let _ = self.child.wait().await;
    }
}

/// An API response: status, headers and the JSON body (Null when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts an error reply: status, `error.code`, and `error.field` when given.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str, field: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "status of {:?}", self.body);
        assert_eq!(self.body["error"]["code"], code, "code of {:?}", self.body);
        assert!(self.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        match field {
            Some(field) => assert_eq!(
                self.body["error"]["field"], field,
                "field of {:?}",
                self.body
            ),
            None => assert!(
                self.body["error"].get("field").is_none(),
                "no field in {:?}",
                self.body
            ),
        }
    }
}

/// A client for one account.
#[derive(Clone)]
pub struct Api {
    pub base_url: String,
    pub key: String,
    client: reqwest::Client,
}

impl Api {
    pub fn new(base_url: &str, key: &str) -> Self {
        Self {
            base_url: base_url.to_owned(),
            key: key.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if !self.key.is_empty() {
            request = request.bearer_auth(&self.key);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("JSON body, got {}", String::from_utf8_lossy(&bytes)))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body.to_string().into_bytes()), &[])
            .await
    }

    pub async fn post_raw(&self, path: &str, body: &[u8]) -> Reply {
        self.send(Method::POST, path, Some(body.to_vec()), &[])
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(body.to_string().into_bytes()), &[])
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(
            Method::PATCH,
            path,
            Some(body.to_string().into_bytes()),
            &[],
        )
        .await
    }

    /// Polls a delivery until `done` holds for it; returns it (with attempts).
    pub async fn wait_delivery(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let reply = self.get(&format!("/v1/deliveries/{id}")).await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
            if done(&reply.body) {
                return reply.body;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "delivery {id} did not get there in {timeout:?}: {}",
                    reply.body
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The deliveries of a webhook (first page of 100).
    /// Sends a test event of `event_type` to the webhook (`POST /v1/webhooks/{id}/test`).
    pub async fn send_test(&self, webhook_id: &str, event_type: &str) -> Reply {
        self.post(
            &format!("/v1/webhooks/{webhook_id}/test"),
            json!({ "type": event_type }),
        )
        .await
    }

    pub async fn deliveries(&self, webhook_id: &str) -> Vec<Value> {
        let reply = self
            .get(&format!("/v1/webhooks/{webhook_id}/deliveries?limit=100"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body["data"].as_array().expect("data").clone()
    }

    /// Creates a webhook subscribed to both event types; returns its JSON.
    pub async fn create_webhook(&self, url: &str) -> Value {
        let reply = self
            .post(
                "/v1/webhooks",
                json!({
                    "name": "Orders",
                    "url": url,
                    "events": ["trigger_event.created", "balance.credit_points_issued"],
                }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body
    }

    /// Creates (or replaces) a trigger with a rule.
    pub async fn put_trigger(&self, id: &str, credit_points: Value) -> Value {
        let reply = self
            .put(
                &format!("/v1/triggers/{id}"),
                json!({"name": id, "credit_points": credit_points}),
            )
            .await;
        assert!(reply.status.is_success(), "{:?}", reply.body);
        reply.body
    }

    /// Records a trigger event; returns its JSON.
    pub async fn trigger_event(&self, user: &str, trigger: &str, value: Value) -> Value {
        let reply = self
            .post(
                "/v1/trigger_events",
                json!({"user_id": user, "trigger_id": trigger, "value": value}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body
    }

    /// Everything the account can list, to show that a rejected request changed nothing.
    pub async fn snapshot(&self) -> Value {
        let mut lists = serde_json::Map::new();
        for path in [
            "/v1/webhooks?limit=100",
            "/v1/events?limit=100",
            "/v1/triggers?limit=100",
        ] {
            let reply = self.get(path).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.body);
            lists.insert(path.to_owned(), reply.body);
        }
        let webhooks = lists["/v1/webhooks?limit=100"]["data"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for webhook in webhooks {
            let id = webhook["id"].as_str().expect("id");
            let path = format!("/v1/webhooks/{id}/deliveries?limit=100");
            let reply = self.get(&path).await;
            // The worker moves a delivery's state on its own; what a request could have changed
            // is which deliveries exist, of which events.
            let deliveries: Vec<Value> = reply.body["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|d| json!({"id": d["id"], "event_id": d["event_id"], "event_type": d["event_type"], "created_at": d["created_at"]}))
                .collect();
            lists.insert(path, Value::Array(deliveries));
        }
        Value::Object(lists)
    }
}

/// Whether a Python module (a real, independent parser or validator) can be used. Missing, the
/// test is skipped with one line, unless `REWARD_REQUIRE_PYTHON_TOOLS=1` (as in `.ci/run`).
pub fn python_module(module: &str) -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        if std::env::var("REWARD_REQUIRE_PYTHON_TOOLS").as_deref() == Ok("1") {
            panic!("python3 module {module} is required (pip install -r scripts/requirements-test.txt)");
        }
        eprintln!("skipped: checks needing python3 module {module} (pip install -r scripts/requirements-test.txt, or run .ci/run)");
    }
    found
}
