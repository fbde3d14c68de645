//! The command line as operators use it: settings from flags, environment and a config file (with
//! bad values stopping start-up on one line naming the setting), and the admin subcommands.

use std::process::Output;

use serde_json::Value;

use crate::common::{
    create_account, fresh_database, fresh_postgres_database, metrics_text, Api, ServerProcess,
    TestDatabase, TestServer, REWARD_BIN,
};

async fn reward(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(REWARD_BIN);
    command.args(args).env_remove("REWARD_DATABASE_URL");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().await.expect("run reward")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn temp_database() -> (TestDatabase, String) {
    fresh_database().await
}

#[tokio::test]
async fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    let (_dir, url) = temp_database().await;
    // (environment, flags, the setting the message must name)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: [Case; 9] = [
        (
            &[("REWARD_RETRY_FACTOR", "abc")],
            &[],
            "REWARD_RETRY_FACTOR",
        ),
        (
            &[("REWARD_DATABASE_POOL_SIZE", "2")],
            &[],
            "REWARD_DATABASE_POOL_SIZE",
        ),
        (
            &[],
            &["--database-pool-size", "many"],
            "--database-pool-size",
        ),
        (
            &[("REWARD_DATABASE_PREPARED_STATEMENTS", "maybe")],
            &[],
            "REWARD_DATABASE_PREPARED_STATEMENTS",
        ),
        (&[("REWARD_RETRY_BASE", "soon")], &[], "REWARD_RETRY_BASE"),
        (&[], &["--delivery-timeout", "0s"], "--delivery-timeout"),
        (&[("REWARD_LISTEN", "not-an-address")], &[], "REWARD_LISTEN"),
        (
            &[("REWARD_EVENT_RETENTION", "0s")],
            &[],
            "REWARD_EVENT_RETENTION",
        ),
        (
            &[],
            &[
                "--otel-exporter-otlp-endpoint",
                "http://127.0.0.1:4318",
                "--otel-exporter-otlp-protocol",
                "grpc",
            ],
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ];
    for (env, flags, named) in cases {
        let mut args = vec!["serve", "--database-url", url.as_str()];
        args.extend_from_slice(flags);
        let output = reward(&args, env).await;
        assert!(!output.status.success(), "{named} must stop start-up");
        let message = stderr(&output);
        assert_eq!(message.trim().lines().count(), 1, "one line: {message}");
        assert!(message.contains(named), "{message} names {named}");
    }
}

#[tokio::test]
async fn config_file_settings_are_checked_and_overridden_by_flags() {
    let (dir, url) = temp_database().await;
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "retry_factor = \"abc\"\n").expect("write");
    let bad_path = bad.to_str().expect("path");
    let output = reward(
        &["serve", "--database-url", &url, "--config", bad_path],
        &[],
    )
    .await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("retry_factor"),
        "{}",
        stderr(&output)
    );

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "colour = \"blue\"\n").expect("write");
    let output = reward(&["serve", "--config", unknown.to_str().expect("path")], &[]).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("unknown setting 'colour'"),
        "{}",
        stderr(&output)
    );

    // A flag overrides the file's bad value, and the file's other settings apply.
    let mixed = dir.path().join("mixed.toml");
    std::fs::write(
        &mixed,
        "retry_factor = \"abc\"\nallow_insecure_targets = true\n",
    )
    .expect("write");
    let mixed_path = mixed.to_str().expect("path").to_owned();
    let server =
        ServerProcess::spawn_with_args(&url, &["--config", &mixed_path, "--retry-factor", "2"])
            .await;
    let account = create_account(&url, "Acme").await;
    let api = Api::new(&server.base_url, account["api_key"].as_str().expect("key"));
    // http:// to loopback is accepted only because the file allowed insecure targets.
    api.create_webhook("http://127.0.0.1:9/hook").await;
    server.kill().await;
}

/// `reward --help` lists every command an operator has, each with its one-line summary.
#[tokio::test]
async fn help_lists_every_command() {
    let output = reward(&["--help"], &[]).await;
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in [
        "serve", "accounts", "bench", "migrate", "listen", "backup", "copy",
    ] {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(&format!("{command} "))),
            "{command} missing from:\n{help}"
        );
    }
}

/// `reward serve --help` lists every setting as a flag with its variable, the OpenTelemetry ones
/// included (SPEC: every setting is a variable and a flag of the same meaning).
#[tokio::test]
async fn serve_help_lists_the_trace_settings_as_flags() {
    let output = reward(&["serve", "--help"], &[]).await;
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for (flag, variable) in [
        (
            "--otel-exporter-otlp-endpoint",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        ("--otel-service-name", "OTEL_SERVICE_NAME"),
        ("--otel-bsp-max-queue-size", "OTEL_BSP_MAX_QUEUE_SIZE"),
        ("--otel-sdk-disabled", "OTEL_SDK_DISABLED"),
        ("--disable-after", "REWARD_DISABLE_AFTER"),
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
        assert!(help.contains(variable), "{variable} missing from:\n{help}");
    }
}

/// `reward backup` refuses what it cannot copy with one clear line, and changes nothing.
#[tokio::test]
async fn backup_refuses_postgres_and_an_existing_target() {
    let output = reward(
        &[
            "backup",
            "--to",
            "/tmp/never.dump",
            "--database-url",
            "postgres://127.0.0.1/x",
        ],
        &[],
    )
    .await;
    assert!(!output.status.success());
    let message = stderr(&output);
    assert_eq!(message.trim().lines().count(), 1, "{message}");
    assert!(
        message.contains("pg_dump --format=custom --file=/tmp/never.dump 'postgres://127.0.0.1/x'"),
        "the database given, not another: {message}"
    );

    // A password never reaches the message; the command says where it goes.
    let output = reward(
        &[
            "backup",
            "--to",
            "/tmp/never.dump",
            "--database-url",
            "postgres://reward:hunter2@127.0.0.1/x",
        ],
        &[],
    )
    .await;
    let message = stderr(&output);
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.contains("reward:***@127.0.0.1/x"), "{message}");
    for (to, says) in [
        ("", "a file path is required"),
        ("sqlite:///tmp/x.db", "a URL"),
    ] {
        let output = reward(&["backup", "--to", to], &[]).await;
        assert!(!output.status.success());
        assert!(
            stderr(&output).contains(says),
            "{to:?}: {}",
            stderr(&output)
        );
    }

    let dir = tempfile::TempDir::new().expect("temp dir");
    let url = format!("sqlite://{}/reward.db", dir.path().display());
    create_account(&url, "Acme").await;
    let existing = dir.path().join("existing.db");
    std::fs::write(&existing, b"keep me").expect("write");
    let target = existing.to_str().expect("path");
    let output = reward(&["backup", "--to", target, "--database-url", &url], &[]).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("already exists"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read(&existing).expect("read"), b"keep me");

    // A PostgreSQL-only setting with a SQLite backup is a mistake worth stopping for.
    let output = reward(
        &["backup", "--to", "/tmp/never.db", "--database-url", &url],
        &[("REWARD_DATABASE_LISTEN_URL", "postgres://x@127.0.0.1/y")],
    )
    .await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("REWARD_DATABASE_LISTEN_URL"),
        "{}",
        stderr(&output)
    );
    assert!(!std::path::Path::new("/tmp/never.db").exists());
}

/// A listening URL is PostgreSQL's: given with SQLite, or not a postgres:// URL, it stops the
/// command with a line naming it, before anything is created.
#[tokio::test]
async fn a_listening_url_that_cannot_be_used_is_refused() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let sqlite = format!("sqlite://{}/reward.db", dir.path().display());
    let postgres = "postgres://postgres@127.0.0.1:1/never_created";
    let cases = [
        (sqlite.as_str(), "postgres://postgres@127.0.0.1:5432/reward"),
        (postgres, "sqlite://elsewhere.db"),
    ];
    for (database, listen) in cases {
        let output = reward(
            &["migrate", "--database-url", database],
            &[("REWARD_DATABASE_LISTEN_URL", listen)],
        )
        .await;
        assert!(!output.status.success(), "{database} with {listen}");
        let message = stderr(&output);
        assert!(
            message.contains("REWARD_DATABASE_LISTEN_URL"),
            "names the setting: {message}"
        );
    }
    assert!(
        !dir.path().join("reward.db").exists(),
        "no SQLite database was created"
    );
}

#[tokio::test]
async fn version_migrate_and_accounts_list() {
    let output = reward(&["--version"], &[]).await;
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("reward "));

    let (_dir, url) = temp_database().await;
    let migrated = reward(&["migrate", "--database-url", &url], &[]).await;
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let first = create_account(&url, "First").await;
    let second = create_account(&url, "Second").await;
    let listed = reward(&["accounts", "list", "--database-url", &url], &[]).await;
    assert!(listed.status.success());
    let accounts: Vec<Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    assert_eq!(accounts.len(), 2);
    assert_eq!(accounts[0]["account_id"], second["account_id"]);
    assert_eq!(accounts[1]["account_id"], first["account_id"]);
    assert_eq!(accounts[1]["name"], "First");
    assert!(accounts[0].get("api_key").is_none());
}

/// A database a newer release migrated (an older node started during an upgrade, or a rollback
/// without restoring the backup): refused with one line, and its schema version left as it is.
#[tokio::test]
async fn a_database_migrated_by_a_newer_release_is_refused() {
    let (_dir, url) = temp_database().await;
    let migrated = reward(&["migrate", "--database-url", &url], &[]).await;
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let sqlite = url.starts_with("sqlite://");
    let (bump, version) = if sqlite {
        (
            "PRAGMA user_version = 999",
            "SELECT CAST(user_version AS TEXT) FROM pragma_user_version",
        )
    } else {
        (
            "INSERT INTO reward_migrations (version, applied_at) VALUES (999, 0)",
            "SELECT max(version)::text FROM reward_migrations",
        )
    };
    crate::databases::query(&url, bump).await;
    for args in [
        &["migrate", "--database-url", &url][..],
        &["serve", "--database-url", &url, "--listen", "127.0.0.1:0"][..],
    ] {
        let key = [("REWARD_SECRET_KEY", crate::common::TEST_SECRET_KEY)];
        let refused = reward(args, &key).await;
        assert!(!refused.status.success(), "{args:?}");
        let said = stderr(&refused);
        // Said once: an error's cause is not printed again after its message.
        assert_eq!(
            said.matches("its schema is at version 999, newer than this build of Reward knows")
                .count(),
            1,
            "{args:?}: {said}"
        );
    }
    let found = crate::databases::query(&url, version).await;
    assert_eq!(found, vec![vec![Some("999".to_owned())]]);
}

/// How many of the node's log lines so far say every one of `parts`.
fn lines_saying(node: &ServerProcess, parts: &[impl AsRef<str>]) -> usize {
    let log = node.log.lock().expect("log");
    log.iter()
        .filter(|line| parts.iter().all(|part| line.contains(part.as_ref())))
        .count()
}

/// The node still answers `/readyz` with 200.
async fn assert_ready(base_url: &str) {
    let ready = reqwest::get(format!("{base_url}/readyz"))
        .await
        .expect("GET /readyz");
    assert_eq!(ready.status().as_u16(), 200);
}

/// The version gauges' values in a `/metrics` exposition: (database, build).
async fn schema_versions_shown(base_url: &str) -> (Option<i64>, Option<i64>) {
    let text = metrics_text(base_url).await;
    let gauge = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    };
    (
        gauge("reward_database_schema_version"),
        gauge("reward_build_schema_version"),
    )
}

/// A rolling upgrade: a newer release migrates the database while this node runs. The node keeps
/// serving, says once per version that it should be upgraded, and shows both versions.
#[tokio::test]
async fn a_running_node_notices_a_newer_release_migrating_its_database() {
    let (_dir, url) = temp_database().await;
    let node = ServerProcess::spawn(&url, &[]).await;
    let (database, build) = schema_versions_shown(&node.base_url).await;
    let build = build.expect("reward_build_schema_version");
    assert_eq!(database, Some(build), "a database this build migrated");
    let bump = |version: i64| {
        if url.starts_with("sqlite://") {
            format!("PRAGMA user_version = {version}")
        } else {
            format!("INSERT INTO reward_migrations (version, applied_at) VALUES ({version}, 0)")
        }
    };
    let warning = |newer: i64| {
        [
            "a newer release of Reward migrated the database: upgrade this node".to_owned(),
            format!("database={newer}"),
            format!("build={build}"),
        ]
    };
    for newer in [build + 1, build + 2] {
        crate::databases::query(&url, &bump(newer)).await;
        // Checked 2, 4, 8 and 16 s after start, then every 30 s: on a slow machine the bump
        // can land just after a check at 30 s.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
        while schema_versions_shown(&node.base_url).await.0 != Some(newer) {
            assert!(
                std::time::Instant::now() < deadline,
                "version {newer} never shown"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // The gauge is set before the warning goes out, and the line reaches this test through
        // the node's stderr a moment later.
        while lines_saying(&node, &warning(newer)) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "version {newer} shown but never warned about: {:#?}",
                node.log
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    for newer in [build + 1, build + 2] {
        assert_eq!(lines_saying(&node, &warning(newer)), 1, "{:#?}", node.log);
    }
    assert_ready(&node.base_url).await;
    node.kill().await;
}

/// `REWARD_DATABASE_POOL_SIZE`: under 64 concurrent trigger events with their deliveries and 128
/// searches, a node holds at most that many connections besides the one listening, and at the
/// smallest size it allows still gets everything done.
#[tokio::test]
async fn the_pool_size_bounds_a_nodes_connections() {
    let Some((_database, url)) = fresh_postgres_database().await else {
        return;
    };
    let smallest = reward_server::store::MIN_POOL_SIZE.to_string();
    // The node's own sessions, told apart from those of `reward accounts` below, which may
    // linger a moment after it exits.
    let separator = if url.contains('?') { '&' } else { '?' };
    let node_url = format!("{url}{separator}application_name=reward_pool_test");
    let node = ServerProcess::spawn(
        &url,
        &[
            ("REWARD_DATABASE_URL", node_url.as_str()),
            ("REWARD_DATABASE_POOL_SIZE", smallest.as_str()),
            ("REWARD_ALLOW_INSECURE_TARGETS", "true"),
        ],
    )
    .await;
    let created = create_account(&url, "Acme").await;
    let api = Api::new(&node.base_url, created["api_key"].as_str().expect("key"));
    let receiver = crate::receiver::Receiver::start().await;
    api.create_webhook(&receiver.url).await;
    api.put_trigger("signup", serde_json::json!({"fixed": 1}))
        .await;

    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let database = url
        .rsplit('/')
        .next()
        .and_then(|name| name.split('?').next())
        .expect("a database name")
        .to_owned();
    let held = || async {
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = $1 AND application_name = 'reward_pool_test'",
                &[&database],
            )
            .await
            .expect("count connections")
            .get::<_, i64>(0)
    };
    // Trigger events, and as many searches beside them: each search holds a connection.
    let events = (0..64).map(|n| {
        let api = api.clone();
        tokio::spawn(async move {
            api.trigger_event(&format!("user-{n}"), "signup", serde_json::Value::Null)
                .await;
            assert_eq!(api.get("/v1/deliveries").await.status.as_u16(), 200);
        })
    });
    let searches = (0..64).map(|_| {
        let api = api.clone();
        tokio::spawn(async move { api.get("/v1/deliveries").await.status.as_u16() })
    });
    let searches: Vec<_> = searches.collect();
    let events: Vec<_> = events.collect();
    let mut most = 0;
    let arrived = async {
        loop {
            most = most.max(held().await);
            if receiver.count() >= 128 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), arrived)
        .await
        .expect("every delivery arrives");
    for event in events {
        event.await.expect("recorded");
    }
    for search in searches {
        assert_eq!(search.await.expect("searched"), 200);
    }
    let limit = i64::try_from(reward_server::store::MIN_POOL_SIZE).expect("small") + 1;
    assert!(most >= 2, "the node's connections were seen: {most}");
    assert!(most <= limit, "{most} connections, at most {limit}");
    node.kill().await;
}

/// A node whose pool could not fit in the server's `max_connections` says so at start, and
/// serves all the same.
#[tokio::test]
async fn a_pool_larger_than_the_server_allows_is_warned_about() {
    let Some((_database, url)) = fresh_postgres_database().await else {
        return;
    };
    // Larger than any max_connections a test server runs with (100 by default).
    let largest = reward_server::store::MAX_POOL_SIZE.to_string();
    let node = ServerProcess::spawn(&url, &[("REWARD_DATABASE_POOL_SIZE", largest.as_str())]).await;
    let said = [
        "the database server may run out of connections for this node",
        &format!("this_node={}", reward_server::store::MAX_POOL_SIZE + 1),
    ];
    assert_eq!(lines_saying(&node, &said), 1, "{:#?}", node.log);
    assert_ready(&node.base_url).await;
    node.kill().await;
}

#[tokio::test]
async fn rotate_key_issues_a_new_key_and_revokes_the_old() {
    let server = TestServer::start().await;
    let created = create_account(&server.database_url, "Acme").await;
    let old = Api::new(&server.base_url, created["api_key"].as_str().expect("key"));
    assert_eq!(old.get("/v1/webhooks").await.status.as_u16(), 200);
    let account = created["account_id"].as_str().expect("id");
    let output = reward(
        &[
            "accounts",
            "rotate-key",
            "--account",
            account,
            "--database-url",
            &server.database_url,
        ],
        &[],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let rotated: Value = serde_json::from_slice(&output.stdout).expect("JSON line");
    assert_eq!(rotated["account_id"], account);
    let new = Api::new(&server.base_url, rotated["api_key"].as_str().expect("key"));
    assert_eq!(new.get("/v1/webhooks").await.status.as_u16(), 200);
    old.get("/v1/webhooks")
        .await
        .assert_error(401, "unauthorized", None);

    let unknown = reward(
        &[
            "accounts",
            "rotate-key",
            "--account",
            "acc_01jf2wkmvcfw6ts1qmgzya291c",
            "--database-url",
            &server.database_url,
        ],
        &[],
    )
    .await;
    assert!(!unknown.status.success());
}

#[tokio::test]
async fn json_logs_carry_request_ids() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let (_dir, url) = temp_database().await;
    let mut child = tokio::process::Command::new(REWARD_BIN)
        .args([
            "serve",
            "--database-url",
            &url,
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        // PostgreSQL needs the key; on SQLite it stands in for the key file.
        .env("REWARD_SECRET_KEY", crate::common::TEST_SECRET_KEY)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut base_url = None;
    while let Some(line) = lines.next_line().await.expect("read") {
        let entry: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("a JSON log line: {line}"));
        if let Some(address) = entry["address"].as_str() {
            base_url = Some(format!("http://{address}"));
            break;
        }
    }
    let base_url = base_url.expect("the server logged its address");
    crate::common::wait_healthy(&base_url).await;
    let reply = reqwest::get(format!("{base_url}/v1/webhooks"))
        .await
        .expect("GET");
    assert_eq!(reply.status().as_u16(), 401);
    let request_id = reply.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_owned();
    assert!(request_id.starts_with("req_"), "{request_id}");
    let logged = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.expect("read") {
            let entry: Value = serde_json::from_str(&line).expect("JSON log line");
            if entry["status"] == 401 {
                return entry;
            }
        }
        panic!("no log line for the request");
    })
    .await
    .expect("logged in time");
    assert_eq!(
        logged["span"]["request_id"],
        request_id.as_str(),
        "{logged}"
    );
    assert!(!logged.to_string().contains("rwd_"), "no API key in logs");
}

/// The README's first command on a fresh machine: `reward serve` with its default URL, whose
/// folder does not exist yet. It creates the folder, the database and the key file, and serves.
#[tokio::test]
async fn serve_creates_a_missing_data_folder_with_its_key_file() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let database = dir.path().join("reward-data").join("reward.db");
    let url = format!("sqlite://{}", database.display());
    let server = ServerProcess::spawn(&url, &[]).await;
    let health = reqwest::get(format!("{}/healthz", server.base_url))
        .await
        .expect("healthz");
    assert!(health.status().is_success());
    // Ready too: its database answers.
    let ready = reqwest::get(format!("{}/readyz", server.base_url))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = ready.json().await.expect("JSON");
    assert_eq!(body, serde_json::json!({"status": "ready"}));
    assert!(database.exists(), "the database file");
    assert!(
        dir.path()
            .join("reward-data")
            .join("reward.db.key")
            .exists(),
        "the key file beside it"
    );
    server.kill().await;
}

/// SPEC §2: `reward serve` creates its database. On PostgreSQL too: a URL naming a database the
/// server lacks gets it created (from the maintenance database), then migrated.
#[tokio::test]
async fn a_missing_postgres_database_is_created() {
    let Some((database, url)) = fresh_postgres_database().await else {
        return;
    };
    // Free the name: the test's guard drops the database made again below.
    let (server, name) = url.rsplit_once('/').expect("a database in the URL");
    let (admin, connection) =
        tokio_postgres::connect(&format!("{server}/postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect to the server");
    tokio::spawn(connection);
    admin
        .batch_execute(&format!("DROP DATABASE {name}"))
        .await
        .expect("drop the scratch database");
    let output = reward(&["migrate", "--database-url", &url], &[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let exists = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .expect("look it up")
        .get::<_, i64>(0);
    assert_eq!(exists, 1);
    let created = reward(
        &[
            "accounts",
            "create",
            "--name",
            "Acme",
            "--database-url",
            &url,
        ],
        &[(
            "REWARD_SECRET_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )],
    )
    .await;
    assert!(created.status.success(), "{}", stderr(&created));
    drop(database);
}
