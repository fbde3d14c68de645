//! `GET /v1/deliveries`: the account's deliveries by webhook, event, event type, status and time,
//! each filter alone and together, paged; and the time filters of `GET /v1/webhooks/{id}/deliveries`
//! and `GET /v1/events`. Each answer is checked against the unfiltered list filtered here.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{Api, TestServer};
use crate::receiver::{Answer, Receiver};

const CREATED: &str = "trigger_event.created";
const ISSUED: &str = "balance.credit_points_issued";

/// What a filter keeps, as checked here on the unfiltered list.
type Keep<'a> = Box<dyn Fn(&Value) -> bool + 'a>;

/// Every item of a list, following `next_cursor` with pages of `limit`; fails on a duplicate.
async fn all_pages(api: &Api, path: &str, limit: u32) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{path}{separator}limit={limit}");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let reply = api.get(&url).await;
        assert_eq!(reply.status, StatusCode::OK, "{url}: {:?}", reply.body);
        let page = reply.body["data"].as_array().expect("data").clone();
        assert!(page.len() <= limit as usize, "{url}: page too long");
        items.extend(page);
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let ids: HashSet<&str> = items.iter().map(id_of).collect();
    assert_eq!(ids.len(), items.len(), "{path}: an item came twice");
    items
}

fn id_of(item: &Value) -> &str {
    item["id"].as_str().expect("id")
}

fn ids(items: &[Value]) -> Vec<&str> {
    items.iter().map(id_of).collect()
}

/// The items of `all` that `keep` keeps, in the same (newest first) order.
fn expected(all: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<&str> {
    all.iter().filter(|item| keep(item)).map(id_of).collect()
}

/// Two webhooks (both types), a trigger issuing points, and `count` trigger events: 4 deliveries
/// each (two events, two webhooks). No worker: every delivery stays pending.
async fn two_webhooks(server: &TestServer, count: usize) -> (Api, String, String) {
    let api = server.account("Acme").await;
    let first = api.create_webhook("http://127.0.0.1:9/first").await;
    let second = api.create_webhook("http://127.0.0.1:9/second").await;
    api.put_trigger("signup", json!({"fixed": 5})).await;
    for user in 0..count {
        api.trigger_event(&format!("user-{user}"), "signup", Value::Null)
            .await;
    }
    (api, id_of(&first).to_owned(), id_of(&second).to_owned())
}

async fn without_worker() -> TestServer {
    TestServer::start_with(|config| config.run_worker = false).await
}

#[tokio::test]
async fn each_filter_alone_and_together_keeps_exactly_its_deliveries() {
    let server = without_worker().await;
    let (api, first, second) = two_webhooks(&server, 3).await;
    let all = all_pages(&api, "/v1/deliveries", 100).await;
    assert_eq!(all.len(), 12, "{all:?}");
    let mut sorted = ids(&all);
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids(&all), sorted, "newest first");
    let event = all[5]["event_id"].as_str().expect("event_id").to_owned();

    let cases: Vec<(String, Keep)> = vec![
        (format!("webhook_id={first}"), {
            let first = first.clone();
            Box::new(move |d: &Value| d["webhook_id"] == first.as_str())
        }),
        (format!("webhook_id={second}"), {
            let second = second.clone();
            Box::new(move |d: &Value| d["webhook_id"] == second.as_str())
        }),
        (format!("event_id={event}"), {
            let event = event.clone();
            Box::new(move |d: &Value| d["event_id"] == event.as_str())
        }),
        (
            format!("event_type={CREATED}"),
            Box::new(|d: &Value| d["event_type"] == CREATED),
        ),
        (
            format!("event_type={ISSUED}"),
            Box::new(|d: &Value| d["event_type"] == ISSUED),
        ),
        ("status=pending".into(), Box::new(|_: &Value| true)),
        ("status=succeeded".into(), Box::new(|_: &Value| false)),
        ("status=failed".into(), Box::new(|_: &Value| false)),
        (format!("webhook_id={first}&event_type={ISSUED}"), {
            let first = first.clone();
            Box::new(move |d: &Value| {
                d["webhook_id"] == first.as_str() && d["event_type"] == ISSUED
            })
        }),
        (
            format!("webhook_id={second}&event_id={event}&status=pending"),
            {
                let (second, event) = (second.clone(), event.clone());
                Box::new(move |d: &Value| {
                    d["webhook_id"] == second.as_str() && d["event_id"] == event.as_str()
                })
            },
        ),
        (
            format!("event_id={event}&event_type={CREATED}&status=pending"),
            {
                let event = event.clone();
                Box::new(move |d: &Value| {
                    d["event_id"] == event.as_str() && d["event_type"] == CREATED
                })
            },
        ),
        (
            format!("webhook_id={first}&status=failed"),
            Box::new(|_: &Value| false),
        ),
    ];
    for (filter, keep) in &cases {
        let found = all_pages(&api, &format!("/v1/deliveries?{filter}"), 100).await;
        assert_eq!(ids(&found), expected(&all, keep), "{filter}");
        // The same view as a webhook's own list.
        for delivery in &found {
            let own = all.iter().find(|d| id_of(d) == id_of(delivery));
            assert_eq!(Some(delivery), own, "{filter}");
        }
    }
    // Well-formed ids that name nothing match nothing.
    for filter in [
        "webhook_id=wh_01jf2wkmvcfw6ts1qmgzya291c",
        "event_id=we_01jf2wkmvcfw6ts1qmgzya291c",
    ] {
        let reply = api.get(&format!("/v1/deliveries?{filter}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{filter}");
        assert_eq!(
            reply.body,
            json!({"data": [], "next_cursor": null}),
            "{filter}"
        );
    }
}

#[tokio::test]
async fn status_finds_pending_succeeded_and_failed_deliveries() {
    let server = TestServer::start_with(|config| config.retry.max_retries = 1).await;
    let api = server.account("Acme").await;
    let ok = Receiver::start().await;
    let down = Receiver::start().await;
    down.answer(Answer::Status(500));
    // Asks for its retry an hour later: the delivery waits, pending, for the whole test.
    let later = Receiver::start().await;
    later.answer(Answer::WithHeaders(
        503,
        vec![("retry-after", "3600".into())],
    ));
    let mut webhooks = Vec::new();
    for receiver in [&ok, &down, &later] {
        let created = api
            .post(
                "/v1/webhooks",
                json!({"name": "Orders", "url": receiver.url, "events": [CREATED]}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        webhooks.push(id_of(&created.body).to_owned());
    }
    api.put_trigger("visit", Value::Null).await;
    api.trigger_event("user-1", "visit", Value::Null).await;
    let all = all_pages(&api, "/v1/deliveries", 100).await;
    assert_eq!(all.len(), 3, "{all:?}");
    let by_webhook = |webhook: &str| {
        all.iter()
            .find(|d| d["webhook_id"] == webhook)
            .map(|d| id_of(d).to_owned())
            .expect("a delivery per webhook")
    };
    let (succeeded, failed, pending) = (
        by_webhook(&webhooks[0]),
        by_webhook(&webhooks[1]),
        by_webhook(&webhooks[2]),
    );
    let wait = Duration::from_secs(30);
    api.wait_delivery(&succeeded, wait, |d| d["status"] == "succeeded")
        .await;
    api.wait_delivery(&failed, wait, |d| d["status"] == "failed")
        .await;
    api.wait_delivery(&pending, wait, |d| d["attempt_count"] == 1)
        .await;

    for (status, id) in [
        ("succeeded", &succeeded),
        ("failed", &failed),
        ("pending", &pending),
    ] {
        let found = all_pages(&api, &format!("/v1/deliveries?status={status}"), 100).await;
        assert_eq!(ids(&found), vec![id.as_str()], "{status}");
        assert_eq!(found[0]["status"], status);
        let mine = format!("/v1/deliveries?status={status}&webhook_id={}", webhooks[0]);
        let expected: Vec<&str> = if status == "succeeded" {
            vec![succeeded.as_str()]
        } else {
            Vec::new()
        };
        assert_eq!(ids(&all_pages(&api, &mine, 100).await), expected, "{mine}");
    }
}

/// Deliveries whose creation times hold at least three distinct milliseconds, newest first.
async fn deliveries_over_time(api: &Api) -> Vec<Value> {
    for user in 0.. {
        api.trigger_event(&format!("user-{user}"), "signup", Value::Null)
            .await;
        let all = all_pages(api, "/v1/deliveries", 100).await;
        let times: HashSet<&str> = all
            .iter()
            .filter_map(|d| d["created_at"].as_str())
            .collect();
        if times.len() >= 3 {
            return all;
        }
    }
    unreachable!()
}

#[tokio::test]
async fn time_bounds_are_exclusive_on_every_list_that_takes_them() {
    let server = without_worker().await;
    let (api, first, _) = two_webhooks(&server, 0).await;
    let all = deliveries_over_time(&api).await;
    let mut times: Vec<String> = all
        .iter()
        .map(|d| d["created_at"].as_str().expect("created_at").to_owned())
        .collect();
    times.sort();
    times.dedup();
    // A middle time: some deliveries before it, some at it, some after.
    let pivot = &times[times.len() / 2];
    let oldest = &times[0];
    let created = |d: &Value| d["created_at"].as_str().expect("created_at").to_owned();
    let cases: Vec<(String, Keep)> = vec![
        (format!("created_after={pivot}"), {
            let pivot = pivot.clone();
            Box::new(move |d: &Value| created(d) > pivot)
        }),
        (format!("created_before={pivot}"), {
            let pivot = pivot.clone();
            Box::new(move |d: &Value| created(d) < pivot)
        }),
        (format!("created_after={oldest}&created_before={pivot}"), {
            let (oldest, pivot) = (oldest.clone(), pivot.clone());
            Box::new(move |d: &Value| created(d) > oldest && created(d) < pivot)
        }),
        (
            format!("created_after={pivot}&created_before={pivot}"),
            Box::new(|_: &Value| false),
        ),
        (
            "created_after=2000-01-01T00:00:00Z".into(),
            Box::new(|_: &Value| true),
        ),
        (
            "created_before=2000-01-01T00:00:00Z".into(),
            Box::new(|_: &Value| false),
        ),
        (
            "created_after=9999-12-31T23:59:59Z".into(),
            Box::new(|_: &Value| false),
        ),
        (
            "created_before=9999-12-31T23:59:59Z".into(),
            Box::new(|_: &Value| true),
        ),
        // An offset other than Z, its '+' escaped: the same instant as Z.
        (
            "created_before=2000-01-01T01:00:00%2B01:00".into(),
            Box::new(|_: &Value| false),
        ),
        (
            format!("created_after={pivot}&webhook_id={first}&event_type={ISSUED}"),
            {
                let (pivot, first) = (pivot.clone(), first.clone());
                Box::new(move |d: &Value| {
                    created(d) > pivot
                        && d["webhook_id"] == first.as_str()
                        && d["event_type"] == ISSUED
                })
            },
        ),
        (format!("created_before={pivot}&status=pending"), {
            let pivot = pivot.clone();
            Box::new(move |d: &Value| created(d) < pivot)
        }),
    ];
    for (filter, keep) in &cases {
        let found = all_pages(&api, &format!("/v1/deliveries?{filter}"), 100).await;
        assert_eq!(ids(&found), expected(&all, keep), "{filter}");
    }

    // A webhook's own list takes them too.
    let own: Vec<Value> = all
        .iter()
        .filter(|d| d["webhook_id"] == first.as_str())
        .cloned()
        .collect();
    for (filter, keep) in cases.iter().take(4) {
        let path = format!("/v1/webhooks/{first}/deliveries?{filter}");
        let found = all_pages(&api, &path, 100).await;
        assert_eq!(ids(&found), expected(&own, keep), "{path}");
    }

    // And so do events.
    let events = all_pages(&api, "/v1/events", 100).await;
    let mut event_times: Vec<String> = events
        .iter()
        .map(|e| e["time"].as_str().expect("time").to_owned())
        .collect();
    event_times.sort();
    let pivot = &event_times[event_times.len() / 2];
    let time = |e: &Value| e["time"].as_str().expect("time").to_owned();
    for (filter, keep) in [
        (
            format!("created_after={pivot}"),
            Box::new(|e: &Value| time(e) > *pivot) as Keep,
        ),
        (
            format!("created_before={pivot}"),
            Box::new(|e: &Value| time(e) < *pivot),
        ),
        (
            format!("created_before={pivot}&type={CREATED}"),
            Box::new(|e: &Value| time(e) < *pivot && e["type"] == CREATED),
        ),
    ] {
        let found = all_pages(&api, &format!("/v1/events?{filter}"), 2).await;
        assert_eq!(ids(&found), expected(&events, keep), "events {filter}");
    }
}

#[tokio::test]
async fn paging_a_filtered_search_misses_nothing_and_repeats_nothing() {
    let server = without_worker().await;
    let (api, first, _) = two_webhooks(&server, 7).await;
    let all = all_pages(&api, "/v1/deliveries", 100).await;
    assert_eq!(all.len(), 28);
    let middle = all[all.len() / 2]["created_at"]
        .as_str()
        .expect("created_at")
        .to_owned();
    let filters = [
        String::new(),
        format!("webhook_id={first}"),
        format!("event_type={CREATED}"),
        "status=pending".to_owned(),
        format!("webhook_id={first}&event_type={ISSUED}&status=pending"),
        format!("created_before={middle}"),
        format!("created_after={middle}&event_type={CREATED}"),
    ];
    for filter in &filters {
        let whole = all_pages(&api, &format!("/v1/deliveries?{filter}"), 100).await;
        assert!(!whole.is_empty(), "{filter}");
        for limit in [1, 3] {
            let paged = all_pages(&api, &format!("/v1/deliveries?{filter}"), limit).await;
            assert_eq!(ids(&paged), ids(&whole), "{filter} by {limit}");
        }
    }
}

#[tokio::test]
async fn another_accounts_deliveries_never_appear() {
    let server = without_worker().await;
    let (mine, _, _) = two_webhooks(&server, 1).await;
    let (theirs, their_webhook, _) = two_webhooks(&server, 2).await;
    let their_deliveries = all_pages(&theirs, "/v1/deliveries", 100).await;
    assert_eq!(their_deliveries.len(), 8);
    let their_event = their_deliveries[0]["event_id"].as_str().expect("event_id");

    let own = all_pages(&mine, "/v1/deliveries", 100).await;
    assert_eq!(own.len(), 4);
    let theirs_ids: HashSet<&str> = ids(&their_deliveries).into_iter().collect();
    assert!(ids(&own).iter().all(|id| !theirs_ids.contains(id)));
    for filter in [
        format!("webhook_id={their_webhook}"),
        format!("event_id={their_event}"),
        format!("event_type={CREATED}&created_after=2000-01-01T00:00:00Z"),
    ] {
        let found = all_pages(&mine, &format!("/v1/deliveries?{filter}"), 100).await;
        assert!(
            ids(&found).iter().all(|id| !theirs_ids.contains(id)),
            "{filter}"
        );
    }
    // Their webhook's own list stays theirs.
    let reply = mine
        .get(&format!(
            "/v1/webhooks/{their_webhook}/deliveries?created_after=2000-01-01T00:00:00Z"
        ))
        .await;
    reply.assert_error(404, "not_found", None);
}

#[tokio::test]
async fn invalid_filters_are_refused_naming_their_parameter() {
    let server = without_worker().await;
    let (api, first, _) = two_webhooks(&server, 1).await;
    let before = api.snapshot().await;
    let search_cases = [
        ("webhook_id=nope", "webhook_id"),
        ("webhook_id=", "webhook_id"),
        ("webhook_id=we_01jf2wkmvcfw6ts1qmgzya291c", "webhook_id"),
        ("event_id=wh_01jf2wkmvcfw6ts1qmgzya291c", "event_id"),
        ("event_id=we_01jf2wkmvcfw6ts1qmgzya291", "event_id"),
        ("event_type=order.paid", "event_type"),
        ("status=done", "status"),
        ("status=PENDING", "status"),
        ("created_after=yesterday", "created_after"),
        ("created_after=2024-12-14", "created_after"),
        ("created_before=2024-13-01T00:00:00Z", "created_before"),
        // An unescaped '+' arrives as a space.
        ("created_before=2024-12-14T15:29:18+01:00", "created_before"),
        ("limit=0", "limit"),
        ("cursor=bm90IGEgY3Vyc29y", "cursor"),
    ];
    for (query, field) in search_cases {
        let reply = api.get(&format!("/v1/deliveries?{query}")).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {:?}",
            reply.body
        );
        assert_eq!(
            reply.body["error"]["field"], field,
            "{query}: {:?}",
            reply.body
        );
    }
    for path in [
        format!("/v1/webhooks/{first}/deliveries"),
        "/v1/events".to_owned(),
    ] {
        for (query, field) in [
            ("created_after=soon", "created_after"),
            ("created_before=2024-12-14T25:00:00Z", "created_before"),
        ] {
            let reply = api.get(&format!("{path}?{query}")).await;
            assert_eq!(
                reply.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{path}?{query}"
            );
            assert_eq!(reply.body["error"]["field"], field, "{path}?{query}");
        }
    }
    assert_eq!(api.snapshot().await, before);
}
