//! `reward copy` (issue 18): the move from SQLite to PostgreSQL. An SQLite database served by the
//! real binary, with deliveries in every state (succeeded, failed, pending after an attempt,
//! pending never attempted, ordered ones waiting their turn), is copied by the real binary into a
//! fresh PostgreSQL database, which three nodes then serve: the pending deliveries complete,
//! signatures verify with the secrets the receivers always had, Idempotency-Keys still replay,
//! balances, counts and payload bytes are those of the source. A served source and a target with
//! accounts are both refused, changing nothing.
//!
//! Runs whenever a PostgreSQL server answers (skipped with one line otherwise, a failure with
//! `REWARD_REQUIRE_POSTGRES=1`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{
    create_account, fresh_postgres_database, Api, Reply, ServerProcess, REWARD_BIN, TEST_SECRET_KEY,
};
use crate::databases::query;
use crate::receiver::{Answer, Receiver};

/// The source's settings: a failing receiver gives up fast (one retry, 100 ms apart).
const SOURCE_ENV: [(&str, &str); 5] = [
    ("REWARD_ALLOW_INSECURE_TARGETS", "true"),
    ("REWARD_MAX_RETRIES", "1"),
    ("REWARD_RETRY_BASE", "100ms"),
    ("REWARD_RETRY_FACTOR", "2"),
    ("REWARD_DELIVERY_TIMEOUT", "2s"),
];

/// The target's nodes: as in many_nodes.rs.
const NODE_ENV: [(&str, &str); 5] = [
    ("REWARD_ALLOW_INSECURE_TARGETS", "true"),
    ("REWARD_RETRY_BASE", "100ms"),
    ("REWARD_RETRY_FACTOR", "2"),
    ("REWARD_DELIVERY_TIMEOUT", "2s"),
    ("REWARD_LEASE", "3s"),
];

/// Every column of the PostgreSQL schema is one the copy carries (`transfer::TABLES`), or its
/// table is one it leaves out on purpose: a column added by a later migration and not listed
/// would otherwise be lost in the move without a word. (The SQLite schema is checked the same
/// way by a unit test of reward-store-sqlite.)
async fn assert_target_schema_is_listed(target_url: &str) {
    use reward_store::transfer::tables::{NOT_COPIED, TARGET_DEFAULTED};
    use reward_store::transfer::TABLES;
    let columns = query(
        target_url,
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public'",
    )
    .await;
    let mut unlisted = Vec::new();
    for row in columns {
        let (table, column) = (row[0].clone().unwrap_or_default(), row[1].clone());
        if NOT_COPIED.iter().any(|(name, _)| *name == table) {
            continue;
        }
        if TARGET_DEFAULTED
            .iter()
            .any(|(name, defaulted, _)| *name == table && Some(*defaulted) == column.as_deref())
        {
            continue;
        }
        let listed = TABLES.iter().any(|listed| {
            listed.name == table
                && listed
                    .columns
                    .iter()
                    .any(|c| Some(c.name) == column.as_deref())
        });
        if !listed {
            unlisted.push((table, column));
        }
    }
    assert!(unlisted.is_empty(), "not in transfer::TABLES: {unlisted:?}");
}

struct CopyRun {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs the real `reward copy`, the target's key given in the environment and the source's found
/// beside the source database.
async fn run_copy(from: &str, to: &str) -> CopyRun {
    run_copy_with(from, to, &[]).await
}

/// `reward copy` with extra environment (e.g. the source's key).
async fn run_copy_with(from: &str, to: &str, env: &[(&str, &str)]) -> CopyRun {
    let mut command = tokio::process::Command::new(REWARD_BIN);
    command
        .args(["copy", "--from", from, "--to", to])
        .env("REWARD_TO_SECRET_KEY", TEST_SECRET_KEY)
        .env_remove("REWARD_FROM_SECRET_KEY");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("reward copy timed out")
        .expect("run reward copy");
    CopyRun {
        success: output.status.success(),
        stdout: String::from_utf8(output.stdout).expect("utf-8"),
        stderr: String::from_utf8(output.stderr).expect("utf-8"),
    }
}

/// Rows per table, counted in the database itself.
async fn counts(database_url: &str, tables: &[String]) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for table in tables {
        let rows = query(
            database_url,
            &format!("SELECT CAST(count(*) AS TEXT) FROM {table}"),
        )
        .await;
        let count = rows[0][0].as_deref().expect("a count").parse().expect("n");
        counts.insert(table.clone(), count);
    }
    counts
}

async fn post_keyed(api: &Api, path: &str, body: &Value, key: &str) -> Reply {
    api.send(
        Method::POST,
        path,
        Some(body.to_string().into_bytes()),
        &[("Idempotency-Key", key)],
    )
    .await
}

fn replayed(reply: &Reply) -> bool {
    reply
        .headers
        .get("idempotent-replayed")
        .is_some_and(|value| value.as_bytes() == b"true")
}

async fn create_webhook(api: &Api, body: Value) -> Value {
    let reply = api.post("/v1/webhooks", body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body
}

fn text(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {value}"))
        .to_owned()
}

/// Polls `check` until it holds, or fails after `timeout`.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every delivery of the account (account-wide search, up to 100).
async fn all_deliveries(api: &Api, filter: &str) -> Vec<Value> {
    let reply = api.get(&format!("/v1/deliveries?limit=100{filter}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["data"].as_array().expect("data").clone()
}

#[tokio::test]
async fn an_sqlite_database_copied_to_postgres_is_served_by_three_nodes_as_it_was() {
    let Some((_target, target_url)) = fresh_postgres_database().await else {
        return;
    };
    let folder = tempfile::TempDir::new().expect("temp dir");
    let source_url = format!("sqlite://{}/reward.db", folder.path().display());
    let (steady, failing, later) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    failing.answer(Answer::Status(500));
    // Tried once, then asked to come back in 4 s: the source stops before then.
    later.answer(Answer::WithHeaders(503, vec![("Retry-After", "4".into())]));

    // The source, served by the real binary.
    let source = ServerProcess::spawn(&source_url, &SOURCE_ENV).await;
    let account = create_account(&source_url, "Acme").await;
    let api_key = text(&account, "api_key");
    let api = Api::new(&source.base_url, &api_key);
    let both = json!(["trigger_event.created", "balance.credit_points_issued"]);
    let steady_hook = create_webhook(
        &api,
        json!({"name": "Steady", "url": steady.url, "events": both,
               "headers": {"X-Tenant": "acme"}}),
    )
    .await;
    let steady_id = text(&steady_hook, "id");
    // Rotated: the receiver may still hold the first secret, which keeps signing for 24 hours.
    let first_secret = text(&steady_hook, "secret");
    let rotated = api
        .post(
            &format!("/v1/webhooks/{steady_id}/secret/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let rotated_secret = text(&rotated.body, "secret");
    let failing_hook = create_webhook(
        &api,
        json!({"name": "Failing", "url": failing.url, "events": both}),
    )
    .await;
    let failing_id = text(&failing_hook, "id");
    api.put_trigger("signup", json!({"fixed": 10})).await;
    let order = json!({"user_id": "u1", "trigger_id": "signup", "value": null});
    let recorded = post_keyed(&api, "/v1/trigger_events", &order, "order-1").await;
    assert_eq!(recorded.status, StatusCode::CREATED, "{:?}", recorded.body);
    api.trigger_event("u2", "signup", Value::Null).await;
    let credit = json!({"points": 5});
    let credited = post_keyed(&api, "/v1/users/u1/credits", &credit, "credit-1").await;
    assert_eq!(credited.status, StatusCode::CREATED, "{:?}", credited.body);
    eventually(
        "five succeeded and five failed",
        Duration::from_secs(20),
        || {
            let api = api.clone();
            let (steady_id, failing_id) = (steady_id.clone(), failing_id.clone());
            async move {
                let ok = api.deliveries(&steady_id).await;
                let failed = api.deliveries(&failing_id).await;
                ok.len() == 5
                    && ok.iter().all(|d| d["status"] == "succeeded")
                    && failed.len() == 5
                    && failed.iter().all(|d| d["status"] == "failed")
            }
        },
    )
    .await;
    let failed_before: Vec<String> = api
        .deliveries(&failing_id)
        .await
        .iter()
        .map(|delivery| text(delivery, "id"))
        .collect();

    // An ordered webhook: one of u3's deliveries is tried and waits for its retry, the others
    // wait their turn, when the source stops.
    let ordered_hook = create_webhook(
        &api,
        json!({"name": "Ordered", "url": later.url, "events": both, "ordering": "per_user"}),
    )
    .await;
    let ordered_id = text(&ordered_hook, "id");
    api.trigger_event("u3", "signup", Value::Null).await;
    api.trigger_event("u3", "signup", Value::Null).await;
    eventually(
        "the ordered webhook's first attempt",
        Duration::from_secs(10),
        || {
            let api = api.clone();
            let ordered_id = ordered_id.clone();
            async move {
                api.deliveries(&ordered_id)
                    .await
                    .iter()
                    .any(|d| d["attempt_count"] == 1 && d["status"] == "pending")
            }
        },
    )
    .await;
    source.kill().await;

    // Served again without a worker: u4's deliveries are never attempted on the source.
    let mut api_only = SOURCE_ENV.to_vec();
    api_only.push(("REWARD_WORKER", "false"));
    let source = ServerProcess::spawn(&source_url, &api_only).await;
    let api = Api::new(&source.base_url, &api_key);
    api.trigger_event("u4", "signup", json!(3)).await;
    let mut balances = BTreeMap::new();
    for user in ["u1", "u2", "u3", "u4"] {
        let reply = api.get(&format!("/v1/users/{user}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        balances.insert(user, reply.body["balance"].clone());
    }
    assert_eq!(balances["u1"], 15);

    // While it is served, the copy is refused and the target is left as it was.
    let refused = run_copy(&source_url, &target_url).await;
    assert!(!refused.success, "a served source was copied");
    assert!(
        refused.stderr.contains("open in another process") && refused.stderr.contains("fuser"),
        "{}",
        refused.stderr
    );
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    let tables = query(
        &target_url,
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
    )
    .await;
    assert!(tables.is_empty(), "the target was changed: {tables:?}");
    source.kill().await;

    let states = query(
        &source_url,
        "SELECT DISTINCT status || CASE WHEN attempt_count > 0 THEN '+tried' ELSE '' END
           || CASE WHEN order_user IS NOT NULL AND next_attempt_at IS NULL THEN '+waiting' ELSE '' END
         FROM deliveries",
    )
    .await;
    let states: Vec<String> = states
        .into_iter()
        .filter_map(|row| row[0].clone())
        .collect();
    for state in [
        "succeeded+tried",
        "failed+tried",
        "pending+tried",
        "pending",
        "pending+waiting",
    ] {
        assert!(states.iter().any(|s| s == state), "{state} in {states:?}");
    }

    // The copy.
    let copied = run_copy(&source_url, &target_url).await;
    assert!(copied.success, "{}", copied.stderr);
    assert_eq!(copied.stdout.lines().count(), 1, "{}", copied.stdout);
    eprintln!("reward copy printed: {}", copied.stdout.trim());
    let line: BTreeMap<String, i64> =
        serde_json::from_str(copied.stdout.trim()).expect("a JSON line of counts");
    assert!(
        copied.stderr.contains("copy: deliveries:"),
        "progress on stderr: {}",
        copied.stderr
    );
    let tables: Vec<String> = line.keys().cloned().collect();
    for table in [
        "accounts",
        "api_keys",
        "webhooks",
        "triggers",
        "users",
        "trigger_events",
        "idempotency_keys",
        "idempotent_responses",
        "events",
        "deliveries",
        "attempts",
        "attempt_rollups",
        "webhook_failure_runs",
    ] {
        assert!(line[table] > 0, "{table} copied: {line:?}");
    }
    assert_eq!(counts(&source_url, &tables).await, line, "source counts");
    assert_eq!(counts(&target_url, &tables).await, line, "target counts");
    let payloads = "SELECT id, payload FROM events ORDER BY id";
    assert_eq!(
        query(&source_url, payloads).await,
        query(&target_url, payloads).await,
        "the exact payloads"
    );
    assert_target_schema_is_listed(&target_url).await;
    let secret_at_rest = query(&target_url, "SELECT secret, headers FROM webhooks").await;
    for row in secret_at_rest {
        assert!(row[0].as_deref().is_some_and(|s| s.starts_with("enc:v1:")));
    }

    // Three nodes serve the target; the receivers are healthy again.
    failing.answer(Answer::Status(204));
    later.answer(Answer::Status(204));
    let before = (steady.count(), failing.count(), later.count());
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(ServerProcess::spawn(&target_url, &NODE_ENV).await);
    }
    let apis: Vec<Api> = nodes
        .iter()
        .map(|node| Api::new(&node.base_url, &api_key))
        .collect();
    eventually(
        "every pending delivery done",
        Duration::from_secs(30),
        || {
            let api = apis[0].clone();
            async move { all_deliveries(&api, "&status=pending").await.is_empty() }
        },
    )
    .await;
    for delivery in all_deliveries(&apis[1], "").await {
        let id = text(&delivery, "id");
        let expected = if failed_before.contains(&id) {
            "failed"
        } else if delivery["webhook_id"] == failing_id.as_str() {
            // Its retries may have run out on the source before it stopped.
            continue;
        } else {
            "succeeded"
        };
        assert_eq!(delivery["status"], expected, "{delivery}");
    }
    assert!(later.count() > before.2 && steady.count() > before.0);
    // The copied deliveries are found by their webhook, event and type as by anything else (on
    // PostgreSQL through their search keys, which the copy writes).
    let everything = all_deliveries(&apis[1], "").await;
    let ids_where = |key: &str, value: &str| -> Vec<String> {
        everything
            .iter()
            .filter(|delivery| delivery[key] == value)
            .map(|delivery| text(delivery, "id"))
            .collect()
    };
    let first = &everything[everything.len() - 1];
    for key in ["webhook_id", "event_id", "event_type"] {
        let value = text(first, key);
        let found: Vec<String> = all_deliveries(&apis[2], &format!("&{key}={value}"))
            .await
            .iter()
            .map(|delivery| text(delivery, "id"))
            .collect();
        assert!(!found.is_empty(), "{key}");
        assert_eq!(found, ids_where(key, &value), "{key}");
    }

    // Signatures verify with the secrets the receivers always had.
    let verify = |receiver: &Receiver, from: usize, secrets: &[&str]| {
        for request in &receiver.received()[from..] {
            for secret in secrets {
                standardwebhooks::Webhook::new(secret)
                    .expect("secret")
                    .verify(&request.body, &request.headers)
                    .unwrap_or_else(|e| panic!("{secret:.12}… does not verify: {e:?}"));
            }
        }
    };
    verify(&steady, before.0, &[&first_secret, &rotated_secret]);
    verify(&failing, before.1, &[&text(&failing_hook, "secret")]);
    verify(&later, 0, &[&text(&ordered_hook, "secret")]);
    for request in &steady.received()[before.0..] {
        assert_eq!(request.header("x-tenant"), "acme");
    }
    // Idempotency-Keys replay; balances are the source's.
    let again = post_keyed(&apis[2], "/v1/trigger_events", &order, "order-1").await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
    assert!(replayed(&again));
    assert_eq!(again.body, recorded.body);
    let again = post_keyed(&apis[1], "/v1/users/u1/credits", &credit, "credit-1").await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
    assert!(replayed(&again));
    assert_eq!(again.body, credited.body);
    for (n, (user, balance)) in balances.iter().enumerate() {
        let reply = apis[n % 3].get(&format!("/v1/users/{user}")).await;
        assert_eq!(&reply.body["balance"], balance, "{user}");
    }

    // A second copy into the now non-empty target is refused, changing nothing.
    let settled = counts(&target_url, &tables).await;
    let second = run_copy(&source_url, &target_url).await;
    assert!(!second.success);
    assert_eq!(second.stderr.lines().count(), 1, "{}", second.stderr);
    assert!(
        second.stderr.contains("already has") && second.stderr.contains("accounts"),
        "{}",
        second.stderr
    );
    assert_eq!(counts(&target_url, &tables).await, settled);
    for node in nodes {
        node.kill().await;
    }
}

#[tokio::test]
async fn a_failed_copy_leaves_the_target_empty_and_can_be_run_again() {
    let folder = tempfile::TempDir::new().expect("temp dir");
    let source_url = format!("sqlite://{}/reward.db", folder.path().display());
    // Only SQLite to PostgreSQL: the other ways are refused with one line.
    for (from, to, says) in [
        (source_url.as_str(), "sqlite://elsewhere.db", "--to"),
        (
            "postgres://postgres@127.0.0.1/nowhere",
            "postgres://postgres@127.0.0.1/x",
            "--from",
        ),
    ] {
        let refused = run_copy(from, to).await;
        assert!(!refused.success);
        assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
        assert!(refused.stderr.contains(says), "{}", refused.stderr);
    }
    let Some((_target, target_url)) = fresh_postgres_database().await else {
        return;
    };
    let source = ServerProcess::spawn(&source_url, &SOURCE_ENV).await;
    let account = create_account(&source_url, "Acme").await;
    let api = Api::new(&source.base_url, &text(&account, "api_key"));
    let receiver = Receiver::start().await;
    let webhook = create_webhook(
        &api,
        json!({"name": "Orders", "url": receiver.url, "events": ["trigger_event.created"]}),
    )
    .await;
    source.kill().await;

    // A target that cannot be reached is named with the server's own words.
    let missing = format!("{target_url}_missing");
    let unreachable = run_copy(&source_url, &missing).await;
    assert!(!unreachable.success);
    assert!(
        unreachable.stderr.contains("does not exist"),
        "{}",
        unreachable.stderr
    );

    // The source's secrets do not open with this key: found before the target is touched.
    let wrong_key = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
    let failed = run_copy_with(
        &source_url,
        &target_url,
        &[("REWARD_FROM_SECRET_KEY", wrong_key)],
    )
    .await;
    assert!(!failed.success);
    let error = failed.stderr.lines().last().unwrap_or_default();
    assert!(
        error.contains("does not open with the source's key")
            && error.contains("--from-secret-key"),
        "{}",
        failed.stderr
    );
    assert!(
        error.contains("nothing was changed in the target"),
        "{}",
        failed.stderr
    );
    let tables_made = query(
        &target_url,
        "SELECT CAST(count(*) AS TEXT) FROM pg_tables WHERE schemaname = 'public'",
    )
    .await;
    assert_eq!(tables_made[0][0].as_deref(), Some("0"), "not even migrated");

    // With the key file beside the source (the default), it goes through.
    let copied = run_copy(&source_url, &target_url).await;
    assert!(copied.success, "{}", copied.stderr);
    let node = ServerProcess::spawn(&target_url, &NODE_ENV).await;
    let api = Api::new(&node.base_url, &text(&account, "api_key"));
    let webhook_id = text(&webhook, "id");
    let test = api.send_test(&webhook_id, "trigger_event.created").await;
    assert_eq!(test.status, StatusCode::ACCEPTED, "{:?}", test.body);
    let arrived = receiver.wait_for(1, Duration::from_secs(10)).await;
    standardwebhooks::Webhook::new(&text(&webhook, "secret"))
        .expect("secret")
        .verify(&arrived[0].body, &arrived[0].headers)
        .expect("signed with the webhook's own secret");
    node.kill().await;
}

/// `reward --help` lists `copy` with its summary, and `reward copy` without its keys says which
/// one is missing in one line.
#[tokio::test]
async fn help_lists_copy_and_a_missing_target_key_is_named() {
    let help = tokio::process::Command::new(REWARD_BIN)
        .arg("--help")
        .output()
        .await
        .expect("run reward --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.lines()
            .any(|line| line.trim_start().starts_with("copy ") && line.contains("SQLite")),
        "{help}"
    );
    let output = tokio::process::Command::new(REWARD_BIN)
        .args([
            "copy",
            "--from",
            "sqlite://x.db",
            "--to",
            "postgres://127.0.0.1/x",
        ])
        .env_remove("REWARD_TO_SECRET_KEY")
        .output()
        .await
        .expect("run reward copy");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("REWARD_TO_SECRET_KEY is required"),
        "{stderr}"
    );
}
