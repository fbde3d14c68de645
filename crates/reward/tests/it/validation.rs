//! Bad input (SPEC §4): every validation rule answers its status, `error.code` and `error.field`,
//! never a 5xx, and a refused request changes nothing an account can see.
//!
//! The rules are tables of cases: one server per group (a test below each module), each case a
//! request with what must come back and what must stay as it was. A case's name is the rule it
//! checks and the value it tries, so a failure says which one broke.

mod access;
mod rewards;
mod webhooks;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{Api, Reply, TestServer};

/// A loopback receiver nobody listens on; a refused request never causes a delivery to it.
const HOOK_URL: &str = "http://127.0.0.1:9/hook";
const EVENT_TYPES: [&str; 2] = ["trigger_event.created", "balance.credit_points_issued"];
/// The trigger every server here starts with, and the user nothing may create.
const TRIGGER: &str = "signup";
const USER: &str = "user-1";

/// One request to send.
struct Request {
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
}

impl Request {
    fn new(method: Method, path: &str, body: Option<Vec<u8>>) -> Self {
        Self {
            method,
            path: path.to_owned(),
            body,
            headers: Vec::new(),
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

fn get(path: &str) -> Request {
    Request::new(Method::GET, path, None)
}

fn delete(path: &str) -> Request {
    Request::new(Method::DELETE, path, None)
}

fn post(path: &str, body: Value) -> Request {
    Request::new(Method::POST, path, Some(body.to_string().into_bytes()))
}

fn post_raw(path: &str, body: &[u8]) -> Request {
    Request::new(Method::POST, path, Some(body.to_vec()))
}

fn put(path: &str, body: Value) -> Request {
    Request::new(Method::PUT, path, Some(body.to_string().into_bytes()))
}

fn patch(path: &str, body: Value) -> Request {
    Request::new(Method::PATCH, path, Some(body.to_string().into_bytes()))
}

/// What a case's request must get back.
enum Expect {
    /// An error reply; `message_part`, when given, must appear in `error.message`.
    Refused {
        status: u16,
        code: &'static str,
        field: Option<String>,
        message_part: Option<&'static str>,
    },
    /// A success with this status: the bound next to a refused value is not itself refused.
    Accepted(u16),
}

/// What a refused case checks, beyond the account's lists, before and after its request.
enum Guard {
    /// The user does not exist (routes that would bring it into being).
    UserAbsent(String),
    /// `GET path` answers the same before and after (with `status`, when given).
    Unchanged { path: String, status: Option<u16> },
}

/// One row of a table: a named request and what must come of it.
struct Case {
    name: String,
    /// Who sends the request; the owner (the account whose data must not change) when `None`.
    caller: Option<Api>,
    request: Request,
    expect: Expect,
    guards: Vec<Guard>,
}

impl Case {
    /// A request that must be refused with `status`, `code` and `field`.
    fn refused(
        name: impl Into<String>,
        request: Request,
        status: u16,
        code: &'static str,
        field: Option<&str>,
    ) -> Self {
        Self {
            name: name.into(),
            caller: None,
            request,
            expect: Expect::Refused {
                status,
                code,
                field: field.map(str::to_owned),
                message_part: None,
            },
            guards: Vec::new(),
        }
    }

    /// A request that must succeed with `status`.
    fn accepted(name: impl Into<String>, request: Request, status: u16) -> Self {
        Self {
            name: name.into(),
            caller: None,
            request,
            expect: Expect::Accepted(status),
            guards: Vec::new(),
        }
    }

    fn sent_by(mut self, caller: &Api) -> Self {
        self.caller = Some(caller.clone());
        self
    }

    fn message_contains(mut self, part: &'static str) -> Self {
        if let Expect::Refused { message_part, .. } = &mut self.expect {
            *message_part = Some(part);
        }
        self
    }

    fn user_stays_absent(mut self, user: &str) -> Self {
        self.guards.push(Guard::UserAbsent(user.to_owned()));
        self
    }

    fn leaves_unchanged(mut self, path: &str, status: Option<u16>) -> Self {
        self.guards.push(Guard::Unchanged {
            path: path.to_owned(),
            status,
        });
        self
    }

    /// Sends the request as the case says and checks everything it expects, each failure naming
    /// the case.
    async fn check(&self, owner: &Api) {
        let name = &self.name;
        let caller = self.caller.as_ref().unwrap_or(owner);
        let (status, code, field, message_part) = match &self.expect {
            Expect::Accepted(status) => {
                let reply = send(caller, name, &self.request).await;
                assert_eq!(reply.status.as_u16(), *status, "{name}: {:?}", reply.body);
                return;
            }
            Expect::Refused {
                status,
                code,
                field,
                message_part,
            } => (*status, *code, field.as_deref(), *message_part),
        };
        let mut before_guards = Vec::with_capacity(self.guards.len());
        for guard in &self.guards {
            before_guards.push(guard_state(owner, name, guard).await);
        }
        let before = owner.snapshot().await;
        let reply = send(caller, name, &self.request).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{name}: status of {:?}",
            reply.body
        );
        let error = &reply.body["error"];
        assert_eq!(error["code"], code, "{name}: code of {:?}", reply.body);
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "{name}: no message in {:?}",
            reply.body
        );
        if let Some(part) = message_part {
            assert!(message.contains(part), "{name}: message {message:?}");
        }
        match field {
            Some(field) => assert_eq!(error["field"], field, "{name}: field of {:?}", reply.body),
            None => assert!(
                error.get("field").is_none(),
                "{name}: no field in {:?}",
                reply.body
            ),
        }
        assert_eq!(
            owner.snapshot().await,
            before,
            "{name}: the request changed stored data"
        );
        for (guard, before) in self.guards.iter().zip(before_guards) {
            let after = guard_state(owner, name, guard).await;
            assert_eq!(after, before, "{name}: {} changed", guard_subject(guard));
        }
    }
}

/// Checks a guard's condition and returns what must be the same after the request.
async fn guard_state(owner: &Api, name: &str, guard: &Guard) -> Option<(u16, Value)> {
    match guard {
        Guard::UserAbsent(user) => {
            assert_user_absent(owner, name, user).await;
            None
        }
        Guard::Unchanged { path, status } => {
            let reply = owner.get(path).await;
            if let Some(status) = status {
                assert_eq!(
                    reply.status.as_u16(),
                    *status,
                    "{name}: GET {path}: {:?}",
                    reply.body
                );
            }
            Some((reply.status.as_u16(), reply.body))
        }
    }
}

fn guard_subject(guard: &Guard) -> String {
    match guard {
        Guard::UserAbsent(user) => format!("user {user}"),
        Guard::Unchanged { path, .. } => format!("GET {path}"),
    }
}

/// Checks every case in order (cases that change data come after the refusals they border).
async fn run(owner: &Api, cases: &[Case]) {
    assert!(!cases.is_empty(), "an empty table checks nothing");
    for case in cases {
        case.check(owner).await;
    }
}

/// Sends a request; whatever the case expects, a 5xx is a failure of its own.
async fn send(api: &Api, name: &str, request: &Request) -> Reply {
    let headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let reply = api
        .send(
            request.method.clone(),
            &request.path,
            request.body.clone(),
            &headers,
        )
        .await;
    assert!(
        !reply.status.is_server_error(),
        "{name}: {} {} answered {}: {:?}",
        request.method,
        request.path,
        reply.status,
        reply.body
    );
    reply
}

async fn assert_user_absent(api: &Api, name: &str, user: &str) {
    let reply = api.get(&format!("/v1/users/{user}")).await;
    assert_eq!(reply.status.as_u16(), 404, "{name}: user {user} exists");
    assert_eq!(
        reply.body["error"]["code"], "not_found",
        "{name}: {:?}",
        reply.body
    );
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{name}: {:?}",
        reply.body
    );
    assert!(
        reply.body["error"].get("field").is_none(),
        "{name}: {:?}",
        reply.body
    );
}

/// A server (loopback targets allowed) and an account that already has a webhook and a trigger,
/// so that a refused request that changed them would show.
async fn start() -> (TestServer, Api, String) {
    let server = TestServer::start().await;
    let api = server.account("validation").await;
    let webhook = api.create_webhook(HOOK_URL).await;
    let webhook_id = webhook["id"].as_str().expect("webhook id").to_owned();
    api.put_trigger(TRIGGER, json!({"fixed": 5})).await;
    (server, api, webhook_id)
}

fn webhook_body() -> Value {
    json!({"name": "Orders", "url": HOOK_URL, "events": EVENT_TYPES})
}

fn trigger_event_body() -> Value {
    json!({"user_id": USER, "trigger_id": TRIGGER, "value": 3})
}

/// `base` with `field` set to `value`.
fn with(mut base: Value, field: &str, value: Value) -> Value {
    base[field] = value;
    base
}

/// `base` without `field`.
fn without(mut base: Value, field: &str) -> Value {
    base.as_object_mut().expect("object").remove(field);
    base
}

/// A valid JSON body padded with whitespace to at least `size` bytes.
fn padded(body: &Value, size: usize) -> Vec<u8> {
    let mut bytes = body.to_string().into_bytes();
    let closing = bytes.pop().expect("closing brace");
    bytes.resize(size, b' ');
    bytes.push(closing);
    bytes
}

/// A value as a case name shows it: short enough to read, long ones cut with their length.
fn label(value: &Value) -> String {
    let text = value.to_string();
    let count = text.chars().count();
    if count <= 100 {
        text
    } else {
        let head: String = text.chars().take(24).collect();
        format!("{head}… ({count} characters)")
    }
}

/// `rule [value]`, the name of one case of a rule.
fn named(rule: &str, value: &Value) -> String {
    format!("{rule} [{}]", label(value))
}

// Bodies that every JSON route refuses before reading a field.

const NOT_JSON: [&[u8]; 5] = [
    b"{\"name\": \"Orders\",",
    b"not json",
    b"",
    b"{'name': 'Orders'}",
    b"{\"name\": \"Orders\"} trailing",
];

const NOT_OBJECTS: [&str; 6] = [
    "[]",
    "[{\"name\": \"Orders\"}]",
    "\"Orders\"",
    "42",
    "null",
    "true",
];

/// The body-level refusals of a JSON route: unparseable (400), not an object (422), over 256 KiB
/// (413), named after `rule_prefix` (`webhook`, `trigger_event`).
fn body_cases(rule_prefix: &str, path: &str, valid: &Value) -> Vec<Case> {
    let mut cases = Vec::new();
    for body in NOT_JSON {
        let name = format!(
            "{rule_prefix}_body_that_does_not_parse_is_400_invalid_json [{}]",
            String::from_utf8_lossy(body)
        );
        cases.push(Case::refused(
            name,
            post_raw(path, body),
            400,
            "invalid_json",
            None,
        ));
    }
    for body in NOT_OBJECTS {
        let name = format!("{rule_prefix}_body_that_is_not_an_object_is_422_invalid_type [{body}]");
        let request = post_raw(path, body.as_bytes());
        cases.push(Case::refused(name, request, 422, "invalid_type", None));
    }
    for size in [256 * 1024 + 1, 300 * 1024] {
        let name = format!("{rule_prefix}_body_over_256_kib_is_413 [{size} bytes]");
        let request = post_raw(path, &padded(valid, size));
        cases.push(Case::refused(name, request, 413, "payload_too_large", None));
    }
    cases
}

/// The same body, padded to less than the limit, is accepted: the size alone was refused.
fn body_under_limit_case(rule_prefix: &str, path: &str, valid: &Value) -> Case {
    let name = format!("{rule_prefix}_body_over_256_kib_is_413 [200 KiB accepted]");
    Case::accepted(name, post_raw(path, &padded(valid, 200 * 1024)), 201)
}
