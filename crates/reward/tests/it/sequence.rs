//! `sequence` on `balance.credit_points_issued`: per user, 1 for the first change of the balance,
//! then one more with every change, without gaps or repeats, whoever writes it (64 writers at
//! once, which PostgreSQL's batcher coalesces; trigger events and credits by hand mixed); a replay
//! of an `Idempotency-Key` emits nothing new, and a trigger event of 0 points moves nothing. The
//! events' positions among their user's events (internal, read from the database) count every
//! event about the user, `trigger_event.created` just before the balance change it caused. On
//! PostgreSQL the same holds through three nodes on one database.

use std::collections::{BTreeMap, HashMap, HashSet};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{
    create_account, fresh_postgres_database, Api, Reply, ServerProcess, TestServer,
};
use crate::databases::query;

const CREATED: &str = "trigger_event.created";
const ISSUED: &str = "balance.credit_points_issued";
const USERS: [&str; 4] = ["u1", "u2", "u3", "u4"];
const WRITERS: usize = 64;
const ROUNDS: usize = 4;

/// One write of the concurrent run.
#[derive(Debug, Clone)]
struct Write {
    user: &'static str,
    path: String,
    body: Value,
    /// Points it adds to the balance (0: no change, so no `balance.credit_points_issued`).
    points: i64,
    /// Sent with this `Idempotency-Key` (and replayed later), or none.
    key: Option<String>,
}

/// Writer `writer`'s `round`-th write: trigger events of 3, 10 × value and 0 points, and credits by
/// hand, spread over the users so that each user is written by many writers at once.
fn planned(writer: usize, round: usize) -> Write {
    let user = USERS[(writer + round) % USERS.len()];
    let key = writer
        .is_multiple_of(3)
        .then(|| format!("k-{writer}-{round}"));
    let (path, body, points) = match (writer * 7 + round) % 4 {
        0 => {
            let points = i64::try_from(writer % 5 + 1).expect("small");
            (
                format!("/v1/users/{user}/credits"),
                json!({"points": points, "reason": "goodwill"}),
                points,
            )
        }
        1 => (
            "/v1/trigger_events".to_owned(),
            json!({"user_id": user, "trigger_id": "signup", "value": null}),
            3,
        ),
        2 => {
            let value = i64::try_from(writer + 1).expect("small");
            (
                "/v1/trigger_events".to_owned(),
                json!({"user_id": user, "trigger_id": "payment", "value": value}),
                value * 10,
            )
        }
        _ => (
            "/v1/trigger_events".to_owned(),
            json!({"user_id": user, "trigger_id": "visit", "value": 1}),
            0,
        ),
    };
    Write {
        user,
        path,
        body,
        points,
        key,
    }
}

async fn send(api: &Api, write: &Write) -> Reply {
    let headers: Vec<(&str, &str)> = write
        .key
        .as_deref()
        .map(|key| ("Idempotency-Key", key))
        .into_iter()
        .collect();
    api.send(
        Method::POST,
        &write.path,
        Some(write.body.to_string().into_bytes()),
        &headers,
    )
    .await
}

/// Sends every write, one task per writer, all at once, each its writes in turn (writer `n`
/// through `apis[n % apis.len()]`); returns each write with the answer it got.
async fn run_writers(apis: &[Api], writes: &[Vec<Write>]) -> Vec<(Write, Reply)> {
    let tasks: Vec<_> = writes
        .iter()
        .cloned()
        .enumerate()
        .map(|(writer, mine)| {
            let api = apis[writer % apis.len()].clone();
            tokio::spawn(async move {
                let mut answered = Vec::with_capacity(mine.len());
                for write in mine {
                    let reply = send(&api, &write).await;
                    assert_eq!(
                        reply.status,
                        StatusCode::CREATED,
                        "{write:?}: {:?}",
                        reply.body
                    );
                    answered.push((write, reply));
                }
                answered
            })
        })
        .collect();
    let mut answered = Vec::new();
    for task in tasks {
        answered.extend(task.await.expect("writer"));
    }
    answered
}

/// Every event of the account, following `next_cursor`; fails on a duplicate.
async fn all_events(api: &Api) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/events?limit=100".to_owned();
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let reply = api.get(&path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.body);
        events.extend(reply.body["data"].as_array().expect("data").iter().cloned());
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let ids: HashSet<&str> = events.iter().map(id_of).collect();
    assert_eq!(ids.len(), events.len(), "an event listed twice");
    events
}

fn id_of(event: &Value) -> &str {
    event["id"].as_str().expect("id")
}

fn int(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("an integer, got {value}"))
}

/// Per user: its balance events ordered by `sequence`, which must be exactly 1..n, each balance
/// the one before plus its points (from 0). Returns each user's (n, final balance).
fn check_sequences(events: &[Value]) -> BTreeMap<String, (i64, i64)> {
    let mut by_user: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for event in events.iter().filter(|event| event["type"] == ISSUED) {
        let user = event["data"]["user"]["id"].as_str().expect("user");
        by_user
            .entry(user.to_owned())
            .or_default()
            .push(&event["data"]);
    }
    let mut outcome = BTreeMap::new();
    for (user, mut issued) in by_user {
        issued.sort_by_key(|data| int(&data["sequence"]));
        let sequences: Vec<i64> = issued.iter().map(|data| int(&data["sequence"])).collect();
        let expected: Vec<i64> = (1..=i64::try_from(issued.len()).expect("small")).collect();
        assert_eq!(sequences, expected, "{user}: a gap or a repeat");
        let mut balance = 0;
        for data in &issued {
            balance += int(&data["points"]);
            assert_eq!(int(&data["balance"]), balance, "{user}: {data}");
        }
        outcome.insert(
            user,
            (i64::try_from(expected.len()).expect("small"), balance),
        );
    }
    outcome
}

/// Each event's user and position among that user's events, as stored (`events.user_id`,
/// `events.user_position`: internal, so read from the database), by event id.
async fn stored_positions(database_url: &str) -> HashMap<String, (Option<String>, Option<i64>)> {
    let rows = query(
        database_url,
        "SELECT id, user_id, CAST(user_position AS TEXT) FROM events",
    )
    .await;
    rows.into_iter()
        .map(|row| {
            let mut columns = row.into_iter();
            let mut next = || columns.next().flatten();
            let id = next().expect("id");
            let user = next();
            let position = next().map(|text| text.parse().expect("a position"));
            (id, (user, position))
        })
        .collect()
}

async fn check_positions(database_url: &str, events: &[Value]) {
    let stored = stored_positions(database_url).await;
    assert_eq!(stored.len(), events.len());
    let mut by_user: BTreeMap<String, Vec<(i64, &Value)>> = BTreeMap::new();
    let mut created_at: HashMap<&str, i64> = HashMap::new();
    for event in events {
        let user = event["data"]["user"]["id"].as_str().expect("user");
        let (stored_user, position) = &stored[id_of(event)];
        assert_eq!(stored_user.as_deref(), Some(user), "{event}");
        let position = position.unwrap_or_else(|| panic!("no position: {event}"));
        if event["type"] == CREATED {
            created_at.insert(event["data"]["id"].as_str().expect("id"), position);
        }
        by_user
            .entry(user.to_owned())
            .or_default()
            .push((position, event));
    }
    for (user, mut positioned) in by_user {
        positioned.sort_by_key(|(position, _)| *position);
        let positions: Vec<i64> = positioned.iter().map(|(position, _)| *position).collect();
        let expected: Vec<i64> = (1..=i64::try_from(positions.len()).expect("small")).collect();
        assert_eq!(
            positions, expected,
            "{user}: a gap or a repeat in positions"
        );
        let mut sequence = 0;
        for (position, event) in positioned {
            if event["type"] != ISSUED {
                continue;
            }
            let data = &event["data"];
            sequence += 1;
            assert_eq!(int(&data["sequence"]), sequence, "{user}: out of order");
            if let Some(trigger_event) = data["trigger_event"]["id"].as_str() {
                assert_eq!(created_at[trigger_event] + 1, position, "{user}: {event}");
            }
        }
    }
}

async fn setup(api: &Api) {
    api.put_trigger("signup", json!({"fixed": 3})).await;
    api.put_trigger("payment", json!({"per_unit": 10})).await;
    api.put_trigger("visit", Value::Null).await;
}

/// The concurrent run through `apis`: per user, the sequences are exactly 1..n and follow the
/// balance, and the positions count every event; replaying every keyed request afterwards
/// answers the same and emits nothing.
async fn concurrent_run(apis: &[Api], database_url: &str) {
    let api = &apis[0];
    setup(api).await;
    let writes: Vec<Vec<Write>> = (0..WRITERS)
        .map(|writer| (0..ROUNDS).map(|round| planned(writer, round)).collect())
        .collect();
    let answered = run_writers(apis, &writes).await;

    // What each user should have: its changes counted and its points summed.
    let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (write, reply) in &answered {
        let granted = if write.path.ends_with("/credits") {
            int(&reply.body["points"])
        } else {
            int(&reply.body["credit_points_issued"])
        };
        assert_eq!(granted, write.points, "{write:?}");
        if write.points > 0 {
            let (changes, total) = expected.entry(write.user.to_owned()).or_default();
            *changes += 1;
            *total += write.points;
        }
    }
    let events = all_events(api).await;
    let seen = check_sequences(&events);
    assert_eq!(seen, expected);
    for (user, (_, total)) in &seen {
        let stored = api.get(&format!("/v1/users/{user}")).await;
        assert_eq!(int(&stored.body["balance"]), *total, "{user}");
    }
    check_positions(database_url, &events).await;

    // Replays: every keyed request again, all at once: the first answers, nothing new.
    let keyed: Vec<Vec<Write>> = writes
        .iter()
        .map(|mine| mine.iter().filter(|w| w.key.is_some()).cloned().collect())
        .filter(|mine: &Vec<Write>| !mine.is_empty())
        .collect();
    let firsts: HashMap<String, Value> = answered
        .iter()
        .filter_map(|(write, reply)| Some((write.key.clone()?, reply.body.clone())))
        .collect();
    assert!(firsts.len() >= WRITERS / 3 * ROUNDS, "replays to send");
    for (write, reply) in run_writers(apis, &keyed).await {
        let key = write.key.as_deref().expect("keyed");
        assert_eq!(reply.body, firsts[key], "{key} replays its first answer");
    }
    let after = all_events(api).await;
    assert_eq!(after.len(), events.len(), "a replay emitted an event");
    assert_eq!(check_sequences(&after), expected);
}

/// 64 writers recording trigger events and credits for four users at once, on one server (on
/// PostgreSQL, through its batcher).
#[tokio::test]
async fn sequences_have_no_gaps_or_repeats_under_concurrent_writers() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    concurrent_run(&[api], &server.database_url).await;
}

/// The same through three `reward serve` processes on one PostgreSQL database: the numbers come
/// from the user's row, whichever node writes. Runs whenever a PostgreSQL server answers.
#[tokio::test]
async fn sequences_hold_across_three_nodes() {
    let Some((_database, database_url)) = fresh_postgres_database().await else {
        return;
    };
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(ServerProcess::spawn(&database_url, &[]).await);
    }
    let account = create_account(&database_url, "Acme").await;
    let key = account["api_key"].as_str().expect("api_key");
    let apis: Vec<Api> = nodes
        .iter()
        .map(|node| Api::new(&node.base_url, key))
        .collect();
    concurrent_run(&apis, &database_url).await;
    for node in nodes {
        node.kill().await;
    }
}

/// A trigger event of 0 points emits no balance event and leaves the sequence where it was; the
/// user's next change carries the next number.
#[tokio::test]
async fn no_points_no_change_of_sequence() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    setup(&api).await;
    assert_eq!(
        api.trigger_event("u1", "visit", json!(5)).await["credit_points_issued"],
        0
    );
    assert_eq!(
        api.trigger_event("u1", "payment", json!(0.05)).await["credit_points_issued"],
        0
    );
    let none = api.get(&format!("/v1/events?type={ISSUED}")).await;
    assert_eq!(none.body["data"], json!([]));

    api.trigger_event("u1", "signup", Value::Null).await;
    api.trigger_event("u1", "visit", json!(5)).await;
    let credited = api.post("/v1/users/u1/credits", json!({"points": 2})).await;
    assert_eq!(credited.status, StatusCode::CREATED);
    api.trigger_event("u2", "signup", Value::Null).await;

    let events = all_events(&api).await;
    assert_eq!(events.len(), 8);
    // u1's two changes are 1 and 2 (no gap: the trigger events of 0 points took no number), and
    // u2 counts from 1.
    let expected = BTreeMap::from([("u1".to_owned(), (2, 5)), ("u2".to_owned(), (1, 3))]);
    assert_eq!(check_sequences(&events), expected);
    check_positions(&server.database_url, &events).await;
}
