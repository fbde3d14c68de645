//! Edge input (issue 14 §5): what arrives before a handler can judge it. Undecodable ids, long
//! targets, large headers and bodies declared too large all answer in the API's JSON error
//! shape; the reference pages carry the dashboard's security headers; `REWARD_PUBLIC_URL`, not
//! a request header, decides whether cookies are `Secure`.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::Method;
use reward_core::digest::sha256_hex;
use reward_server::config::PublicUrl;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{create_account, fresh_database, Api, ServerProcess, TestServer};

fn address_of(base_url: &str) -> String {
    base_url.trim_start_matches("http://").to_owned()
}

/// Sends `request` as raw bytes and reads the answer until the server closes or `limit` passes;
/// returns the answer and how long it took.
async fn raw_exchange(base_url: &str, request: &[u8], limit: Duration) -> (String, Duration) {
    let mut stream = TcpStream::connect(address_of(base_url))
        .await
        .expect("connect");
    let started = Instant::now();
    // The server may answer and close before all is written (that is the point of some tests).
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buffer[..n]);
                if complete_response(&answer) {
                    break;
                }
            }
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

/// Whether `bytes` hold a whole response with a `Content-Length` body.
fn complete_response(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .is_some_and(|length| body.len() >= length)
}

/// The JSON error body of a raw answer, asserting its status and `application/json`.
#[track_caller]
fn raw_json_error(answer: &str, status: u16) -> Value {
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status} ")),
        "expected {status}: {answer:.300}"
    );
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let body: Value = serde_json::from_str(body).expect("a JSON body");
    assert!(body["error"]["code"].is_string(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body
}

// ---------------------------------------------------------------------------------------------
// Ids that cannot be decoded, and query strings.

/// Every documented route with a path parameter, with `%ff` (not UTF-8 once decoded) for each.
async fn routes_with_undecodable_ids(api: &Api) -> Vec<(Method, String)> {
    let document = api.get("/openapi.json").await.body;
    let mut routes = Vec::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        if !path.contains('{') {
            continue;
        }
        let broken: String = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "%ff"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in operations.as_object().expect("operations").keys() {
            let method = match method.as_str() {
                "get" => Method::GET,
                "post" => Method::POST,
                "put" => Method::PUT,
                "patch" => Method::PATCH,
                "delete" => Method::DELETE,
                _ => continue,
            };
            routes.push((method, broken.clone()));
        }
    }
    routes
}

#[tokio::test]
async fn an_id_that_does_not_decode_answers_the_json_error_shape_on_every_route() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let before = api.snapshot().await;
    let routes = routes_with_undecodable_ids(&api).await;
    assert!(routes.len() >= 10, "{routes:?}");
    assert!(routes.contains(&(Method::GET, "/v1/webhooks/%ff".to_owned())));
    for (method, path) in routes {
        let body =
            matches!(method, Method::POST | Method::PUT | Method::PATCH).then(|| b"{}".to_vec());
        // `Api::send` fails the test on any body that is not JSON.
        let reply = api.send(method.clone(), &path, body, &[]).await;
        reply.assert_error(400, "bad_request", None);
        assert_eq!(
            reply.headers[CONTENT_TYPE], "application/json",
            "{method} {path}"
        );
    }
    assert_eq!(api.snapshot().await, before);
}

#[tokio::test]
async fn query_strings_that_do_not_decode_answer_the_json_error_shape() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.get("/v1/webhooks?limit=%ff")
        .await
        .assert_error(422, "invalid_value", Some("limit"));
    api.get("/v1/webhooks?cursor=%ff%fe")
        .await
        .assert_error(422, "invalid_cursor", Some("cursor"));
    api.get("/v1/events?limit=1&limit=%00")
        .await
        .assert_error(422, "invalid_value", Some("limit"));
}

// ---------------------------------------------------------------------------------------------
// 414, 431 and 413 before anything is read.

#[tokio::test]
async fn a_target_too_long_answers_414_in_the_json_shape() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let long = format!("/v1/webhooks?padding={}", "a".repeat(9 * 1024));
    api.get(&long).await.assert_error(414, "uri_too_long", None);
    // Under the limit the same route answers as usual: it does not take `padding`.
    let fine = format!("/v1/webhooks?padding={}", "a".repeat(7 * 1024));
    api.get(&fine)
        .await
        .assert_error(422, "unknown_field", Some("padding"));
}

#[tokio::test]
async fn headers_too_large_answer_431_in_the_json_shape() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let big = "b".repeat(40 * 1024);
    api.send(Method::GET, "/v1/webhooks", None, &[("x-padding", &big)])
        .await
        .assert_error(431, "headers_too_large", None);
    let fine = "b".repeat(16 * 1024);
    let reply = api
        .send(Method::GET, "/v1/webhooks", None, &[("x-padding", &fine)])
        .await;
    assert_eq!(reply.status.as_u16(), 200);

    // Past hyper's hard limit the head cannot be read at all: a bare 431, at once.
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: reward\r\nX-Padding: {}\r\n\r\n",
        "h".repeat(70 * 1024)
    );
    let (answer, took) =
        raw_exchange(&server.base_url, huge.as_bytes(), Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.200}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn a_declared_body_over_256_kib_answers_413_at_once_without_reading_it() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let before = api.snapshot().await;
    for path in [
        "/v1/webhooks",
        "/v1/trigger_events",
        "/v1/users/u-1/credits",
    ] {
        // Only the head: the client waits for the answer before sending any of the body.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: reward\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            api.key,
            256 * 1024 + 1
        );
        let (answer, took) =
            raw_exchange(&server.base_url, head.as_bytes(), Duration::from_secs(5)).await;
        let body = raw_json_error(&answer, 413);
        assert_eq!(body["error"]["code"], "payload_too_large", "{path}");
        assert!(took < Duration::from_secs(1), "{path} took {took:?}");
    }
    // The same on routes without a body, and for anonymous clients: nothing is read first.
    let head = "POST /sign-in HTTP/1.1\r\nHost: reward\r\nContent-Length: 99999999999\r\n\r\n";
    let (answer, took) =
        raw_exchange(&server.base_url, head.as_bytes(), Duration::from_secs(5)).await;
    raw_json_error(&answer, 413);
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(
        api.snapshot().await,
        before,
        "a refused body changes nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// Security headers on the reference.

/// base64 of the SHA-256 of `text`, as a CSP hash source spells it.
fn csp_hash(text: &str) -> String {
    let hex = sha256_hex(text.as_bytes());
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex"))
        .collect();
    format!("'sha256-{}'", BASE64.encode(bytes))
}

#[track_caller]
fn assert_security_headers(headers: &HeaderMap, what: &str) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_owned()
    };
    let policy = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(policy.contains(directive), "{what}: {policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{what}: {policy}");
    assert!(!policy.contains("script-src"), "{what}: no script may run");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert_eq!(header("referrer-policy"), "same-origin", "{what}");
    policy
}

#[tokio::test]
async fn the_reference_carries_the_dashboards_security_headers() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    for path in [
        "/docs",
        "/docs/events",
        "/docs/events/trigger_event.created",
        "/docs/events/no.such.event",
    ] {
        let response = client
            .get(format!("{}{path}", server.base_url))
            .send()
            .await
            .expect("request");
        let policy = assert_security_headers(response.headers(), path);
        let page = response.text().await.expect("page");
        // Each inline stylesheet is allowed by its hash, so the page still looks as it should.
        let styles: Vec<&str> = page
            .split("<style>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</style>").map(|(style, _)| style))
            .collect();
        assert!(!styles.is_empty(), "{path} has a stylesheet");
        for style in styles {
            assert!(policy.contains(&csp_hash(style)), "{path}: {policy}");
        }
    }
    let response = client
        .get(format!("{}/openapi.json", server.base_url))
        .send()
        .await
        .expect("request");
    assert_security_headers(response.headers(), "/openapi.json");
}

// ---------------------------------------------------------------------------------------------
// REWARD_PUBLIC_URL and the Secure cookie attribute.

/// The `Set-Cookie` values of the sign-in page, requested with `headers`.
async fn sign_in_cookies(base_url: &str, headers: &[(&str, &str)]) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut request = client.get(format!("{base_url}/"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    assert_eq!(response.status().as_u16(), 200);
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().expect("ascii").to_owned())
        .collect();
    assert!(!cookies.is_empty(), "the sign-in page sets its form cookie");
    cookies
}

fn all_secure(cookies: &[String]) -> bool {
    cookies.iter().all(|cookie| cookie.ends_with("; Secure"))
}

fn none_secure(cookies: &[String]) -> bool {
    cookies.iter().all(|cookie| !cookie.contains("Secure"))
}

#[tokio::test]
async fn an_https_public_url_makes_cookies_secure_whatever_the_request_says() {
    let server = TestServer::start_with(|config| {
        config.public_url = Some(PublicUrl::parse("https://rewards.example.com").expect("url"));
    })
    .await;
    for headers in [
        &[][..],
        &[("x-forwarded-proto", "http")][..],
        &[("host", "localhost")][..],
    ] {
        let cookies = sign_in_cookies(&server.base_url, headers).await;
        assert!(all_secure(&cookies), "{headers:?}: {cookies:?}");
    }

    // Signing in sets the session cookie the same way.
    let api = server.account("Acme").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form_cookie = sign_in_cookies(&server.base_url, &[]).await[0].clone();
    let token = form_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, value)| value.to_owned())
        .expect("form token");
    let response = client
        .post(format!("{}/sign-in", server.base_url))
        .header("cookie", format!("reward_sign_in={token}"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("api_key", api.key.as_str()),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(response.status().as_u16(), 303);
    let session = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|cookie| cookie.starts_with("reward_session="))
        .expect("a session cookie")
        .to_owned();
    assert!(session.ends_with("; Secure"), "{session}");
}

#[tokio::test]
async fn an_http_public_url_never_marks_cookies_secure() {
    let server = TestServer::start_with(|config| {
        config.public_url = Some(PublicUrl::parse("http://10.0.0.5:8080/").expect("url"));
    })
    .await;
    for headers in [
        &[][..],
        &[("x-forwarded-proto", "https")][..],
        &[("host", "rewards.example.com")][..],
    ] {
        let cookies = sign_in_cookies(&server.base_url, headers).await;
        assert!(none_secure(&cookies), "{headers:?}: {cookies:?}");
    }
}

#[tokio::test]
async fn without_a_public_url_only_local_development_goes_without_secure() {
    let server = TestServer::start().await;
    // The test client asks for 127.0.0.1: local development.
    assert!(none_secure(&sign_in_cookies(&server.base_url, &[]).await));
    // A proxy reporting HTTPS, or any other host name, gets Secure cookies.
    for headers in [
        &[("x-forwarded-proto", "https")][..],
        &[("host", "rewards.example.com")][..],
        &[("host", "10.0.0.5:8080")][..],
    ] {
        let cookies = sign_in_cookies(&server.base_url, headers).await;
        assert!(all_secure(&cookies), "{headers:?}: {cookies:?}");
    }
}

#[tokio::test]
async fn the_public_url_is_a_flag_a_variable_and_a_config_key_and_is_checked() {
    let (dir, url) = fresh_database().await;
    // From the environment, through the real binary.
    let server =
        ServerProcess::spawn(&url, &[("REWARD_PUBLIC_URL", "https://r.example.com")]).await;
    assert!(all_secure(&sign_in_cookies(&server.base_url, &[]).await));
    server.kill().await;
    // From the config file.
    let file = dir.path().join("public.toml");
    std::fs::write(&file, "public_url = \"https://r.example.com/\"\n").expect("write");
    let file = file.to_str().expect("path").to_owned();
    let server = ServerProcess::spawn_with_args(&url, &["--config", &file]).await;
    assert!(all_secure(&sign_in_cookies(&server.base_url, &[]).await));
    server.kill().await;
    // A flag overrides the file.
    let server = ServerProcess::spawn_with_args(
        &url,
        &["--config", &file, "--public-url", "http://127.0.0.1:1/"],
    )
    .await;
    assert!(none_secure(&sign_in_cookies(&server.base_url, &[]).await));
    server.kill().await;
    let _account = create_account(&url, "Acme").await;

    // A bad value stops start-up with one line naming the setting.
    for bad in [
        "rewards.example.com",
        "ftp://rewards.example.com",
        "https://user:pw@rewards.example.com",
        "https://rewards.example.com/reward",
        "https://rewards.example.com/?a=b",
        "https://",
    ] {
        let output = tokio::process::Command::new(crate::common::REWARD_BIN)
            .args(["serve", "--database-url", &url])
            .env("REWARD_PUBLIC_URL", bad)
            .env("REWARD_LISTEN", "127.0.0.1:0")
            .output()
            .await
            .expect("run reward");
        assert!(!output.status.success(), "{bad} must stop start-up");
        let message = String::from_utf8_lossy(&output.stderr);
        assert_eq!(message.trim().lines().count(), 1, "{bad}: {message}");
        assert!(message.contains("REWARD_PUBLIC_URL"), "{bad}: {message}");
    }
}

// ---------------------------------------------------------------------------------------------
// Duplicate keys, read over HTTP.

#[tokio::test]
async fn a_key_named_twice_answers_400_naming_it_and_changes_nothing() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    api.put_trigger("visit", json!({"fixed": 1})).await;
    let before = api.snapshot().await;
    let cases: [(Method, &str, &str, &str); 4] = [
        (
            Method::POST,
            "/v1/trigger_events",
            r#"{"user_id": "u-1", "trigger_id": "visit", "user_id": "u-2"}"#,
            "user_id",
        ),
        (
            Method::POST,
            "/v1/webhooks",
            r#"{"name": "A", "url": "http://127.0.0.1:9/", "events": ["trigger_event.created"], "url": "http://127.0.0.1:10/"}"#,
            "url",
        ),
        (
            Method::POST,
            "/v1/users/u-1/credits",
            r#"{"points": 5, "reason": "a", "points": 500}"#,
            "points",
        ),
        (
            Method::PUT,
            "/v1/triggers/visit",
            r#"{"name": "Visit", "credit_points": {"fixed": 1, "fixed": 1000}}"#,
            "credit_points.fixed",
        ),
    ];
    for (method, path, body, key) in cases {
        let reply = api
            .send(method, path, Some(body.as_bytes().to_vec()), &[])
            .await;
        reply.assert_error(400, "duplicate_key", Some(key));
        let message = reply.body["error"]["message"].as_str().expect("message");
        assert!(message.contains(&format!("'{key}'")), "{message}");
    }
    assert_eq!(api.snapshot().await, before);
}

// ---------------------------------------------------------------------------------------------
// The special-purpose blocks at connect time.

#[tokio::test]
async fn secure_mode_refuses_tunnel_and_reserved_addresses_when_connecting() {
    let (_database, database_url) = fresh_database().await;
    // Webhooks made while insecure targets were allowed...
    let insecure = TestServer::start_on(&database_url, |_| {}).await;
    let api = insecure.account("Acme").await;
    let mut webhooks = Vec::new();
    for literal in [
        "[2002:7f00:1::1]",      // 6to4 around 127.0.0.1
        "[2001:0:4136:e378::1]", // Teredo
        "[::ffff:0:7f00:1]",     // SIIT around 127.0.0.1
        "[fec0::1]",             // site-local
        "[100::1]",              // discard-only
        "[64:ff9b::7f00:1]",     // NAT64 around 127.0.0.1
        "[2001:db8::1]",         // documentation
    ] {
        let webhook = api
            // https://, so that the sender's address check (not its scheme check) refuses.
            .create_webhook(&format!("https://{literal}:9/hook"))
            .await;
        webhooks.push((literal, webhook["id"].as_str().expect("id").to_owned()));
    }
    insecure.stop().await;

    // ...are refused by the sender once the server runs in secure mode, before any connection.
    let secure = TestServer::start_on(&database_url, |config| {
        config.target_policy = reward_core::names::TargetPolicy::SecureOnly;
    })
    .await;
    let api = Api::new(&secure.base_url, &api.key);
    for (literal, id) in webhooks {
        let test = api.send_test(&id, "trigger_event.created").await;
        assert_eq!(test.status.as_u16(), 202, "{literal}: {:?}", test.body);
        let delivery = test.body["id"].as_str().expect("delivery id");
        let done = api
            .wait_delivery(delivery, Duration::from_secs(20), |d| {
                d["attempt_count"].as_u64() >= Some(1)
            })
            .await;
        let error = done["attempts"][0]["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("is not a public address"),
            "{literal}: {error}"
        );
        assert_eq!(done["attempts"][0]["status_code"], Value::Null, "{literal}");
    }
}
