//! `/metrics` as Prometheus' own tools read it: `promtool check metrics` on the classic text
//! format, a real Prometheus server scraping a running Reward and answering a query, the format
//! negotiation, and the conventional names (`code`, `reward_build_info`, `process_*`).
//!
//! promtool and prometheus come from Debian's `prometheus` package (`.ci/run` installs it); missing
//! here, these tests skip with one line, unless `REWARD_REQUIRE_PROMETHEUS=1`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Api, TestServer};
use crate::receiver::Receiver;

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The header Prometheus 2.x scrapes with.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Whether Debian's `prometheus` package's `tool` runs here.
fn prometheus_tool(tool: &str) -> bool {
    let found = std::process::Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        if std::env::var("REWARD_REQUIRE_PROMETHEUS").as_deref() == Ok("1") {
            panic!("{tool} is required (apt-get install prometheus)");
        }
        eprintln!("skipped: checks needing {tool} (apt-get install prometheus, or run .ci/run)");
    }
    found
}

/// One delivery made and succeeded, so that counters, labels and the histogram have samples.
async fn deliver_once(api: &Api) {
    let receiver = Receiver::start().await;
    let webhook = api.create_webhook(&receiver.url).await;
    let webhook_id = webhook["id"].as_str().expect("id");
    let test = api.send_test(webhook_id, "trigger_event.created").await;
    assert_eq!(test.status.as_u16(), 202, "{:?}", test.body);
    api.wait_delivery(
        test.body["id"].as_str().expect("id"),
        Duration::from_secs(10),
        |d| d["status"] == "succeeded",
    )
    .await;
}

/// `GET /metrics` with an `Accept` header (none when `None`): content type and body.
async fn scrape(server: &TestServer, accept: Option<&str>) -> (String, String) {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", server.base_url));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let reply = request.send().await.expect("GET /metrics");
    assert_eq!(reply.status().as_u16(), 200);
    assert_eq!(reply.headers()["vary"], "accept");
    let content_type = reply.headers()["content-type"]
        .to_str()
        .expect("content type")
        .to_owned();
    (content_type, reply.text().await.expect("body"))
}

/// `GET /metrics` with no `Accept` header at all (reqwest would send `*/*`).
async fn scrape_without_accept(server: &TestServer) -> String {
    let address = server.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("write");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("answer in time")
        .expect("read");
    answer
}

/// The value of the one sample line `name{labels}` exactly as written.
fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn the_format_follows_the_accept_header() {
    let server = TestServer::start().await;
    deliver_once(&server.account("Acme").await).await;

    let raw = scrape_without_accept(&server).await;
    assert!(
        raw.to_ascii_lowercase()
            .contains(&format!("content-type: {TEXT_FORMAT}")),
        "{raw}"
    );
    assert!(!raw.contains("# EOF"), "{raw}");

    for accept in [
        "*/*",
        "text/plain",
        "text/plain; version=0.0.4",
        "application/json",
    ] {
        let (content_type, text) = scrape(&server, Some(accept)).await;
        assert_eq!(content_type, TEXT_FORMAT, "Accept: {accept}");
        assert!(!text.contains("# EOF"), "Accept: {accept}: {text}");
        assert!(!text.contains("_created"), "Accept: {accept}: {text}");
        assert!(
            text.contains("# HELP reward_deliveries_total ")
                && text.contains("# TYPE reward_deliveries_total counter\n"),
            "the classic format describes a counter under its sample's name: {text}"
        );
        assert!(text.contains("# TYPE reward_delivery_attempt_duration_seconds histogram\n"));
        assert!(text.contains("reward_delivery_attempt_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(text.contains("reward_delivery_attempt_duration_seconds_count 1\n"));
        assert!(text.contains("reward_delivery_attempt_duration_seconds_sum "));
    }

    for accept in [
        "application/openmetrics-text",
        "application/openmetrics-text; version=1.0.0",
        PROMETHEUS_ACCEPT,
    ] {
        let (content_type, text) = scrape(&server, Some(accept)).await;
        assert_eq!(content_type, OPENMETRICS, "Accept: {accept}");
        assert!(text.ends_with("# EOF\n"), "Accept: {accept}: {text}");
        assert!(
            text.contains("# TYPE reward_deliveries counter\n"),
            "OpenMetrics names the family: {text}"
        );
        assert_eq!(
            value_of(&text, "reward_deliveries_total{outcome=\"succeeded\"}"),
            Some(1.0)
        );
    }
}

#[tokio::test]
async fn conventional_names_build_info_and_process_metrics() {
    let server = TestServer::start().await;
    deliver_once(&server.account("Acme").await).await;
    let (_, text) = scrape(&server, Some("text/plain")).await;

    assert!(
        text.contains(
            "reward_api_requests_total{method=\"POST\",route=\"/v1/webhooks/{id}/test\",code=\"202\"} 1\n"
        ),
        "the status label is `code`: {text}"
    );
    assert!(!text.contains("status=\""), "{text}");
    assert!(text.contains("# TYPE reward_build_info gauge\n"), "{text}");
    assert_eq!(
        value_of(
            &text,
            &format!(
                "reward_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0)
    );

    if !cfg!(target_os = "linux") {
        assert!(!text.contains("process_"), "{text}");
        return;
    }
    assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
    // This test process is the server: it has certainly used some memory and files.
    let cpu = value_of(&text, "process_cpu_seconds_total").expect("cpu");
    let resident = value_of(&text, "process_resident_memory_bytes").expect("rss");
    let open_fds = value_of(&text, "process_open_fds").expect("open fds");
    let start = value_of(&text, "process_start_time_seconds").expect("start time");
    assert!(cpu > 0.0, "{cpu}");
    assert!(resident > 1_048_576.0, "{resident}");
    assert!(open_fds >= 3.0, "{open_fds}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        start <= now + 1.0 && start > now - 3600.0,
        "{start} vs {now}"
    );
    if let Some(max_fds) = value_of(&text, "process_max_fds") {
        assert!(max_fds >= open_fds, "{max_fds} < {open_fds}");
    }

    // An invented HTTP method is counted as `other`: clients cannot add series at will.
    let client = reqwest::Client::new();
    for method in ["BREW", "WHEN"] {
        client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}/healthz", server.base_url),
            )
            .send()
            .await
            .expect("request");
    }
    let (_, text) = scrape(&server, None).await;
    assert!(!text.contains("BREW") && !text.contains("WHEN"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
}

/// Runs `promtool check metrics` on `text`: its exit status and what it printed.
async fn promtool_check(text: &str) -> (bool, String) {
    let mut child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("promtool");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(text.as_bytes()).await.expect("write");
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("promtool in time")
        .expect("promtool output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

#[tokio::test]
async fn promtool_passes_the_text_format() {
    if !prometheus_tool("promtool") {
        return;
    }
    let server = TestServer::start().await;
    // Before anything happened (families without samples) and after a delivery.
    let (_, empty) = scrape(&server, None).await;
    let (passed, said) = promtool_check(&empty).await;
    assert!(passed && said.trim().is_empty(), "{said}\n{empty}");

    deliver_once(&server.account("Acme").await).await;
    for accept in [None, Some("text/plain")] {
        let (content_type, text) = scrape(&server, accept).await;
        assert_eq!(content_type, TEXT_FORMAT);
        let (passed, said) = promtool_check(&text).await;
        assert!(passed && said.trim().is_empty(), "{said}\n{text}");
    }
}

/// A Prometheus server of our own, on a free loopback port, scraping `target` every second.
struct PrometheusServer {
    base_url: String,
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    async fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: reward\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write config");
        // A port that was free a moment ago; Prometheus takes no port 0.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let child = tokio::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn prometheus");
        Self {
            base_url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        }
    }

    /// The result vector of an instant query, waiting (at most `timeout`) until `ready` holds.
    async fn query_until(
        &mut self,
        query: &str,
        timeout: Duration,
        ready: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer yet");
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited early: {status}");
            }
            let answer = client
                .get(format!("{}/api/v1/query", self.base_url))
                .query(&[("query", query)])
                .send()
                .await;
            if let Ok(answer) = answer {
                if let Ok(body) = answer.json::<Value>().await {
                    let result = body["data"]["result"].as_array().cloned();
                    last = body.to_string();
                    if let Some(result) = result.filter(|result| ready(result)) {
                        return result;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "{query} not ready in {timeout:?}; last answer: {last}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

fn values(result: &[Value]) -> Vec<f64> {
    result
        .iter()
        .filter_map(|series| series["value"][1].as_str()?.parse().ok())
        .collect()
}

#[tokio::test]
async fn a_real_prometheus_scrapes_reward_and_reads_deliveries_back() {
    if !prometheus_tool("prometheus") {
        return;
    }
    let server = TestServer::start().await;
    deliver_once(&server.account("Acme").await).await;
    let mut prometheus =
        PrometheusServer::start(server.base_url.trim_start_matches("http://")).await;

    let up = prometheus
        .query_until("up{job=\"reward\"}", Duration::from_secs(60), |result| {
            !result.is_empty()
        })
        .await;
    assert_eq!(values(&up), [1.0], "the scrape succeeded: {up:?}");
    let delivered = prometheus
        .query_until(
            "reward_deliveries_total{outcome=\"succeeded\"}",
            Duration::from_secs(30),
            |result| !result.is_empty(),
        )
        .await;
    assert_eq!(values(&delivered), [1.0], "{delivered:?}");
    assert_eq!(delivered[0]["metric"]["job"], "reward");
    let all = prometheus
        .query_until(
            "sum(reward_deliveries_total)",
            Duration::from_secs(10),
            |result| !result.is_empty(),
        )
        .await;
    assert_eq!(values(&all), [1.0], "{all:?}");
    let build = prometheus
        .query_until("reward_build_info", Duration::from_secs(10), |result| {
            !result.is_empty()
        })
        .await;
    assert_eq!(
        build[0]["metric"]["version"],
        env!("CARGO_PKG_VERSION"),
        "{build:?}"
    );
    if cfg!(target_os = "linux") {
        let resident = prometheus
            .query_until(
                "process_resident_memory_bytes{job=\"reward\"}",
                Duration::from_secs(10),
                |result| !result.is_empty(),
            )
            .await;
        assert!(values(&resident)[0] > 1_048_576.0, "{resident:?}");
    }
    prometheus.stop().await;
}
