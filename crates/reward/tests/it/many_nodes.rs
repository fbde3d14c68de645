//! Several `reward serve` processes on one PostgreSQL database (SPEC §8): they share all the work,
//! one node can die mid-burst without losing an acknowledged event, no delivery is ever attempted
//! by two nodes at once, and the invariants of one node hold across three (one trigger event per
//! Idempotency-Key, no lost balance update).
//!
//! These run whenever a PostgreSQL server answers, whatever `REWARD_TEST_BACKEND` says, and are
//! skipped with one line when none does (a failure with `REWARD_REQUIRE_POSTGRES=1`). Each runs
//! twice: the nodes connected to PostgreSQL directly (`...::direct`), and through PgBouncer in
//! transaction mode with statements unnamed and `LISTEN` on a direct connection
//! (`...::through_pgbouncer`, skipped with one line when PgBouncer is missing, a failure with
//! `REWARD_REQUIRE_PGBOUNCER=1`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{create_account, fresh_postgres_database, Api, ServerProcess};
use crate::databases::TestDatabase;
use crate::idempotency::futures_join_all;
use crate::pgbouncer::PgBouncer;
use crate::receiver::{Answer, Receiver};
use reward_store_postgres::testing::server_url;

/// Short retries, and a lease short enough that a dead node's claims come back within seconds
/// (still longer than an attempt's timeout, so a live node's claim never runs out mid-attempt).
const NODE_ENV: [(&str, &str); 5] = [
    ("REWARD_ALLOW_INSECURE_TARGETS", "true"),
    ("REWARD_RETRY_BASE", "100ms"),
    ("REWARD_RETRY_FACTOR", "2"),
    ("REWARD_DELIVERY_TIMEOUT", "2s"),
    ("REWARD_LEASE", "3s"),
];

/// Three nodes on one database, and an API client on each for one new account.
pub(crate) async fn three_nodes(database_url: &str) -> (Vec<ServerProcess>, Vec<Api>) {
    three_nodes_on(&SharedDatabase::direct(database_url)).await
}

/// How the nodes reach their database.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Route {
    Direct,
    /// Through PgBouncer in transaction mode: statements unnamed, `LISTEN` straight to
    /// PostgreSQL (docs/scaling.md).
    ThroughPgBouncer,
}

/// The database several nodes share, and how they reach it.
pub(crate) struct SharedDatabase {
    /// PostgreSQL's own URL: for the `LISTEN` connection, and for administration.
    pub url: String,
    /// PgBouncer, when the nodes go through it; dropped (stopped) before the database.
    bouncer: Option<PgBouncer>,
    _database: Option<TestDatabase>,
}

impl SharedDatabase {
    /// A fresh database reached by `route`, or `None` when what it needs is missing (said once,
    /// a failure when required).
    pub async fn fresh(route: Route) -> Option<Self> {
        let (database, url) = fresh_postgres_database().await?;
        let bouncer = match route {
            Route::Direct => None,
            Route::ThroughPgBouncer => Some(PgBouncer::start(&server_url()).await?),
        };
        Some(Self {
            url,
            bouncer,
            _database: Some(database),
        })
    }

    fn direct(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            bouncer: None,
            _database: None,
        }
    }

    /// The settings a node of these tests runs with: [`NODE_ENV`] and the route's.
    fn node_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = NODE_ENV
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        env.extend(self.route_env());
        env
    }

    /// The settings a node reaches the database with: none directly; through PgBouncer, its URL,
    /// `LISTEN` on PostgreSQL's and statements unnamed.
    pub fn route_env(&self) -> Vec<(String, String)> {
        let Some(bouncer) = &self.bouncer else {
            return Vec::new();
        };
        vec![
            ("REWARD_DATABASE_URL".into(), bouncer.url_for(&self.url)),
            ("REWARD_DATABASE_LISTEN_URL".into(), self.url.clone()),
            ("REWARD_DATABASE_PREPARED_STATEMENTS".into(), "false".into()),
        ]
    }
}

/// Three nodes reaching `database` its way, and an API client on each for one new account.
pub(crate) async fn three_nodes_on(database: &SharedDatabase) -> (Vec<ServerProcess>, Vec<Api>) {
    let env = database.node_env();
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(ServerProcess::spawn(&database.url, &env).await);
    }
    let account = create_account(&database.url, "Acme").await;
    let key = account["api_key"].as_str().expect("api_key");
    let apis = nodes
        .iter()
        .map(|node| Api::new(&node.base_url, key))
        .collect();
    (nodes, apis)
}

/// Each scenario twice: `direct` and `through_pgbouncer`.
macro_rules! on_both_routes {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn direct() {
                super::$scenario(super::Route::Direct).await;
            }

            #[tokio::test]
            async fn through_pgbouncer() {
                super::$scenario(super::Route::ThroughPgBouncer).await;
            }
        }
    )*};
}

on_both_routes!(
    three_nodes_share_the_load_and_survive_losing_one,
    concurrent_credits_on_three_nodes_add_up_exactly,
    one_idempotency_key_sent_to_three_nodes_at_once_records_one_trigger_event,
    an_event_recorded_on_any_node_is_delivered_within_100_ms,
    an_api_only_node_wakes_another_nodes_worker_within_100_ms,
    a_key_revoked_on_one_node_stops_working_on_the_others,
);

/// Records trigger events on one node until `until` or the node stops answering; returns the ids
/// of those it acknowledged (201).
async fn record_until(api: Api, client: usize, until: Instant) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for n in 0..2000 {
        if Instant::now() >= until {
            break;
        }
        let body = json!({"user_id": format!("c{client}-{n}"), "trigger_id": "signup"});
        let sent = http
            .post(format!("{}/v1/trigger_events", api.base_url))
            .bearer_auth(&api.key)
            .body(body.to_string())
            .send()
            .await;
        let Ok(response) = sent else { break };
        if response.status() != StatusCode::CREATED {
            break;
        }
        let Ok(recorded) = response.json::<Value>().await else {
            break;
        };
        acknowledged.push(recorded["id"].as_str().expect("id").to_owned());
    }
    acknowledged
}

/// The trigger events whose `trigger_event.created` reached the receiver.
fn delivered_trigger_events(receiver: &Receiver) -> HashSet<String> {
    receiver
        .received()
        .iter()
        .map(|request| request.json())
        .filter(|event| event["type"] == "trigger_event.created")
        .filter_map(|event| event["data"]["id"].as_str().map(str::to_owned))
        .collect()
}

async fn three_nodes_share_the_load_and_survive_losing_one(route: Route) {
    let Some(database) = SharedDatabase::fresh(route).await else {
        return;
    };
    let receiver = Receiver::start().await;
    // Answers take a moment, so that two attempts of one delivery would overlap at the receiver.
    let slow_enough_to_overlap = Answer::After(Duration::from_millis(10));
    receiver.answer(slow_enough_to_overlap.clone());
    let (mut nodes, apis) = three_nodes_on(&database).await;
    apis[0].create_webhook(&receiver.url).await;
    apis[1].put_trigger("signup", json!({"fixed": 1})).await;

    // Three clients per node record trigger events for three seconds.
    let until = Instant::now() + Duration::from_secs(3);
    let mut clients = Vec::new();
    for client in 0..9 {
        let api = apis[client % 3].clone();
        clients.push(tokio::spawn(record_until(api, client, until)));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // A request cut off by SIGKILL never finishes at the receiver, which would then count its
    // retry as an overlap. So the receiver answers at once while the node dies, and slowly again
    // once the dying node's last requests are done.
    receiver.answer(Answer::Status(204));
    tokio::time::sleep(Duration::from_millis(100)).await;
    nodes.pop().expect("a third node").kill().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    receiver.answer(slow_enough_to_overlap);

    let mut acknowledged = HashSet::new();
    for client in clients {
        acknowledged.extend(client.await.expect("client"));
    }
    assert!(
        acknowledged.len() >= 90,
        "the load got going: {}",
        acknowledged.len()
    );
    // Every acknowledged event arrives, including those the dead node had claimed (after the
    // lease) and those it had only just recorded.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let missing = acknowledged
            .difference(&delivered_trigger_events(&receiver))
            .count();
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
    let received = receiver.count();
    let distinct: HashSet<String> = receiver
        .received()
        .iter()
        .map(|request| request.header("webhook-id").to_owned())
        .collect();
    eprintln!(
        "three nodes, one SIGKILLed: {} acknowledged trigger events, {received} requests for \
         {} events ({} duplicates), no overlap",
        acknowledged.len(),
        distinct.len(),
        received - distinct.len()
    );
    assert_eq!(
        receiver.overlapping_duplicates(),
        0,
        "a delivery was attempted by two nodes at once"
    );
    for node in nodes {
        node.kill().await;
    }
}

async fn concurrent_credits_on_three_nodes_add_up_exactly(route: Route) {
    let Some(database) = SharedDatabase::fresh(route).await else {
        return;
    };
    let (nodes, apis) = three_nodes_on(&database).await;
    // Four clients per node add to one user's balance at the same time.
    let replies = futures_join_all((0..12).map(|client| {
        let api = apis[client % 3].clone();
        async move {
            let mut issued = Vec::new();
            for n in 0..25 {
                let points = (client * 25 + n) % 7 + 1;
                let reply = api
                    .post("/v1/users/u1/credits", json!({"points": points}))
                    .await;
                assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
                issued.push((points, reply.body["balance"].as_i64().expect("balance")));
            }
            issued
        }
    }))
    .await;
    let issued: Vec<(usize, i64)> = replies.into_iter().flatten().collect();
    let total: i64 = issued
        .iter()
        .map(|(points, _)| i64::try_from(*points).expect("points"))
        .sum();
    // Each issuance saw a balance no other did: no two read the same value and wrote over it.
    let balances: HashSet<i64> = issued.iter().map(|(_, balance)| *balance).collect();
    assert_eq!(
        balances.len(),
        issued.len(),
        "two issuances saw one balance"
    );
    assert_eq!(balances.iter().max().copied(), Some(total));
    for api in &apis {
        assert_eq!(api.get("/v1/users/u1").await.body["balance"], total);
    }
    let issued_events = apis[0]
        .get("/v1/events?type=balance.credit_points_issued&limit=100")
        .await;
    assert_eq!(
        issued_events.body["data"].as_array().map(Vec::len),
        Some(100)
    );
    for node in nodes {
        node.kill().await;
    }
}

async fn one_idempotency_key_sent_to_three_nodes_at_once_records_one_trigger_event(route: Route) {
    let Some(database) = SharedDatabase::fresh(route).await else {
        return;
    };
    let (nodes, apis) = three_nodes_on(&database).await;
    apis[0].put_trigger("signup", json!({"fixed": 5})).await;
    let rounds = 10;
    for round in 0..rounds {
        let key = format!("order-{round}");
        let body = json!({"user_id": "u1", "trigger_id": "signup", "value": null}).to_string();
        // Two requests per node, all with the same key and body, at the same time.
        let replies = futures_join_all((0..6).map(|request| {
            let api = apis[request % 3].clone();
            let key = key.clone();
            let body = body.clone().into_bytes();
            async move {
                api.send(
                    reqwest::Method::POST,
                    "/v1/trigger_events",
                    Some(body),
                    &[("Idempotency-Key", key.as_str())],
                )
                .await
            }
        }))
        .await;
        let first_id = &replies[0].body["id"];
        for reply in &replies {
            assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
            assert_eq!(&reply.body["id"], first_id, "one trigger event per key");
        }
        let originals = replies
            .iter()
            .filter(|reply| !reply.headers.contains_key("idempotent-replayed"))
            .count();
        assert_eq!(originals, 1, "one answer recorded, the others replayed");
    }
    let created = apis[2]
        .get("/v1/events?type=trigger_event.created&limit=100")
        .await;
    assert_eq!(created.body["data"].as_array().map(Vec::len), Some(rounds));
    assert_eq!(
        apis[1].get("/v1/users/u1").await.body["balance"],
        json!(5 * rounds)
    );
    for node in nodes {
        node.kill().await;
    }
}

async fn an_event_recorded_on_any_node_is_delivered_within_100_ms(route: Route) {
    let Some(database) = SharedDatabase::fresh(route).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let (nodes, apis) = three_nodes_on(&database).await;
    let webhook = apis[0].create_webhook(&receiver.url).await;
    let webhook_id = webhook["id"].as_str().expect("id");
    // Let every worker settle into waiting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut latencies = Vec::new();
    for n in 0..15 {
        let api = &apis[n % 3];
        let before = receiver.count();
        let sent_at = Instant::now();
        let test = api.send_test(webhook_id, "trigger_event.created").await;
        assert_eq!(test.status, StatusCode::ACCEPTED, "{:?}", test.body);
        let arrived = receiver.wait_for(before + 1, Duration::from_secs(5)).await;
        latencies.push(arrived[before].at - sent_at);
        // Idle again before the next one: each event must wake a waiting worker.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let slowest = latencies[latencies.len() - 1];
    eprintln!(
        "event created on one of three nodes to its arrival: median {median:?}, slowest \
         {slowest:?}"
    );
    assert!(
        median < Duration::from_millis(100),
        "median {median:?} over 100 ms: {latencies:?}"
    );
    // Every one came by a wake-up, not by the 1 s poll that backs it up.
    assert!(
        slowest < Duration::from_millis(500),
        "slowest {slowest:?}: {latencies:?}"
    );
    for node in nodes {
        node.kill().await;
    }
}

/// A node without a worker leaves what it records for the others to claim, and tells them with
/// `NOTIFY` once it commits: their workers wake at once (through PgBouncer, the notification goes
/// through it and the listening sessions do not), not at their 1 s poll.
/// A key revoked through one node stops working on the others at once, though they answer
/// recent requests from a cache of keys (`key_cache` in the PostgreSQL store): the revocation's
/// notification empties it. Within 100 ms (the notification's way to each node), where an entry
/// alone would be trusted for a second.
async fn a_key_revoked_on_one_node_stops_working_on_the_others(route: Route) {
    let Some(database) = SharedDatabase::fresh(route).await else {
        return;
    };
    let (nodes, apis) = three_nodes_on(&database).await;
    let created = apis[0]
        .post("/v1/api_keys", json!({"name": "Billing service"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id");
    let key = created.body["key"].as_str().expect("key");
    let others: Vec<Api> = nodes[1..]
        .iter()
        .map(|node| Api::new(&node.base_url, key))
        .collect();
    // Let the nodes' listening connections start, so their caches are in use.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for api in &others {
        for _ in 0..2 {
            assert_eq!(api.get("/v1/webhooks").await.status, StatusCode::OK);
        }
    }
    let revoked = apis[0].delete(&format!("/v1/api_keys/{id}")).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{:?}", revoked.body);
    let revoked_at = Instant::now();
    for (index, api) in others.iter().enumerate() {
        loop {
            let status = api.get("/v1/webhooks").await.status;
            if status == StatusCode::UNAUTHORIZED {
                break;
            }
            assert_eq!(status, StatusCode::OK);
            assert!(
                revoked_at.elapsed() < Duration::from_millis(100),
                "node {} still took the revoked key after {:?}",
                index + 1,
                revoked_at.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for node in nodes {
        node.kill().await;
    }
}

async fn an_api_only_node_wakes_another_nodes_worker_within_100_ms(route: Route) {
    let Some(database) = SharedDatabase::fresh(route).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let env = database.node_env();
    let mut env: Vec<(&str, &str)> = env
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let workers = [
        ServerProcess::spawn(&database.url, &env).await,
        ServerProcess::spawn(&database.url, &env).await,
    ];
    env.push(("REWARD_WORKER", "false"));
    let api_only = ServerProcess::spawn(&database.url, &env).await;
    let account = create_account(&database.url, "Acme").await;
    let api = Api::new(
        &api_only.base_url,
        account["api_key"].as_str().expect("key"),
    );
    let webhook = api.create_webhook(&receiver.url).await;
    let webhook_id = webhook["id"].as_str().expect("id");
    // Let both workers settle into waiting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut latencies = Vec::new();
    for _ in 0..15 {
        let before = receiver.count();
        let sent_at = Instant::now();
        let test = api.send_test(webhook_id, "trigger_event.created").await;
        assert_eq!(test.status, StatusCode::ACCEPTED, "{:?}", test.body);
        let arrived = receiver.wait_for(before + 1, Duration::from_secs(5)).await;
        latencies.push(arrived[before].at - sent_at);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let slowest = latencies[latencies.len() - 1];
    eprintln!(
        "{route:?}: event recorded on the API-only node to its arrival from another node: \
         median {median:?}, slowest {slowest:?}"
    );
    assert!(
        median < Duration::from_millis(100),
        "median {median:?} over 100 ms: {latencies:?}"
    );
    assert!(
        slowest < Duration::from_millis(500),
        "slowest {slowest:?}: {latencies:?}"
    );
    api_only.kill().await;
    for node in workers {
        node.kill().await;
    }
}
