//! `GET /v1/webhooks/{id}/stats` against the attempts really made to a real receiver: counts per
//! bucket, succeeded and failed, percentiles within the latency buckets' resolution, pending
//! deliveries and the run of failures; the period's validation; another account's webhook.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use reward_core::stats::{bucket_upper_ms, latency_bucket, percentile_ms};
use reward_core::time::Timestamp;
use serde_json::{json, Value};

use crate::common::{Api, TestServer};
use crate::receiver::{Answer, Receiver};

const WAIT: Duration = Duration::from_secs(10);

/// Sends one test event to the webhook and waits until its delivery is finished.
async fn deliver_one(api: &Api, webhook_id: &str) -> Value {
    let test = api.send_test(webhook_id, "trigger_event.created").await;
    assert_eq!(test.status, StatusCode::ACCEPTED, "{:?}", test.body);
    api.wait_delivery(test.body["id"].as_str().expect("id"), WAIT, |delivery| {
        delivery["status"] != "pending"
    })
    .await
}

fn time(value: &Value) -> Timestamp {
    Timestamp::parse_rfc3339(value.as_str().expect("time")).expect("RFC 3339")
}

/// What the statistics of these attempts must say per bucket start (ms): attempts, succeeded,
/// failed, p50, p99, computed from each attempt as the API shows it.
fn expected_buckets(attempts: &[Value], bucket_ms: i64) -> BTreeMap<i64, Value> {
    let mut grouped: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for attempt in attempts {
        let start = time(&attempt["started_at"]).as_millis();
        grouped
            .entry(start.div_euclid(bucket_ms) * bucket_ms)
            .or_default()
            .push(attempt);
    }
    grouped
        .into_iter()
        .map(|(start, attempts)| {
            let succeeded = attempts
                .iter()
                .filter(|attempt| {
                    attempt["status_code"]
                        .as_u64()
                        .is_some_and(|code| (200..300).contains(&code))
                })
                .count();
            let mut counts: BTreeMap<u8, u64> = BTreeMap::new();
            for attempt in &attempts {
                let duration = attempt["duration_ms"].as_u64().expect("duration_ms");
                *counts.entry(latency_bucket(duration)).or_default() += 1;
            }
            let counts: Vec<(u8, u64)> = counts.into_iter().collect();
            (
                start,
                json!({
                    "attempts": attempts.len(),
                    "succeeded": succeeded,
                    "failed": attempts.len() - succeeded,
                    "p50_ms": percentile_ms(&counts, 0.5),
                    "p99_ms": percentile_ms(&counts, 0.99),
                }),
            )
        })
        .collect()
}

fn check_period(stats: &Value, period: &str, buckets: usize, attempts: &[Value]) {
    assert_eq!(stats["period"], period);
    let shown = stats["buckets"].as_array().expect("buckets");
    assert_eq!(shown.len(), buckets, "{stats}");
    let bucket_ms = if period == "24h" {
        3_600_000
    } else {
        86_400_000
    };
    let expected = expected_buckets(attempts, bucket_ms);
    let mut matched = 0;
    for (index, bucket) in shown.iter().enumerate() {
        let start = time(&bucket["start"]).as_millis();
        assert_eq!(
            start % bucket_ms,
            0,
            "buckets start on the hour or day: {bucket}"
        );
        if index > 0 {
            let before = time(&shown[index - 1]["start"]).as_millis();
            assert_eq!(start - before, bucket_ms, "consecutive buckets");
        }
        let got = json!({
            "attempts": bucket["attempts"],
            "succeeded": bucket["succeeded"],
            "failed": bucket["failed"],
            "p50_ms": bucket["p50_ms"],
            "p99_ms": bucket["p99_ms"],
        });
        match expected.get(&start) {
            Some(want) => {
                assert_eq!(&got, want, "bucket {start}");
                matched += 1;
            }
            None => assert_eq!(
                got,
                json!({"attempts": 0, "succeeded": 0, "failed": 0, "p50_ms": null, "p99_ms": null}),
                "an empty bucket"
            ),
        }
    }
    assert_eq!(matched, expected.len(), "every attempt falls in the period");
}

#[tokio::test]
async fn stats_match_the_attempts_recorded() {
    // No retries: each delivery is one attempt, so the sequence of outcomes is the script's.
    let server = TestServer::start_with(|config| config.retry.max_retries = 0).await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let webhook = api.create_webhook(&receiver.url).await;
    let webhook_id = webhook["id"].as_str().expect("id").to_owned();

    // Nothing yet: every bucket empty, no rate, nothing failing.
    let empty = api.get(&format!("/v1/webhooks/{webhook_id}/stats")).await;
    assert_eq!(empty.status, StatusCode::OK, "{:?}", empty.body);
    assert_eq!(empty.body["success_rate"], Value::Null);
    assert_eq!(empty.body["failing_since"], Value::Null);
    assert_eq!(empty.body["pending"], 0);
    check_period(&empty.body, "24h", 24, &[]);

    receiver.script(vec![
        Answer::After(Duration::from_millis(150)),
        Answer::Status(204),
        Answer::Status(500),
        Answer::After(Duration::from_millis(40)),
        Answer::Status(500),
        Answer::Status(503),
    ]);
    let mut attempts = Vec::new();
    let mut failed = Vec::new();
    for _ in 0..6 {
        let delivery = deliver_one(&api, &webhook_id).await;
        attempts.extend(delivery["attempts"].as_array().expect("attempts").clone());
        if delivery["status"] == "failed" {
            failed.push(delivery["id"].as_str().expect("id").to_owned());
        }
    }
    assert_eq!(failed.len(), 3);
    assert_eq!(attempts.len(), 6);
    let statuses: Vec<&Value> = attempts.iter().map(|a| &a["status_code"]).collect();
    assert_eq!(
        statuses,
        [
            &json!(204),
            &json!(204),
            &json!(500),
            &json!(204),
            &json!(500),
            &json!(503)
        ]
    );

    // Deliveries that stay pending: the webhook disabled, then its three failed deliveries
    // recovered (they wait for it to be enabled again; a disabled webhook gets no test event).
    let disabled = api
        .patch(
            &format!("/v1/webhooks/{webhook_id}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK);
    let waiting = api
        .post(
            &format!("/v1/webhooks/{webhook_id}/recover"),
            json!({"since": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(waiting.status, StatusCode::ACCEPTED, "{:?}", waiting.body);
    assert_eq!(waiting.body["recovered"], 3);

    let day = api.get(&format!("/v1/webhooks/{webhook_id}/stats")).await;
    assert_eq!(day.status, StatusCode::OK, "{:?}", day.body);
    check_period(&day.body, "24h", 24, &attempts);
    assert_eq!(day.body["success_rate"], 0.5);
    assert_eq!(day.body["pending"], 3);
    // The run began with the first failure after the last success (the fifth attempt).
    assert_eq!(
        time(&day.body["failing_since"]),
        time(&attempts[4]["started_at"]),
        "{}",
        day.body
    );
    // The slow attempt is the p99 of its hour, at or above what it took and within a bucket.
    let slow = attempts[0]["duration_ms"].as_u64().expect("duration");
    let p99 = day.body["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .filter_map(|bucket| bucket["p99_ms"].as_u64())
        .max()
        .expect("a p99");
    assert_eq!(p99, bucket_upper_ms(latency_bucket(slow)));
    assert!(p99 >= slow, "{p99} vs {slow}");
    assert!(
        (p99 as f64) <= slow as f64 * 2f64.powf(0.25) + 1.0,
        "{p99} vs {slow}"
    );

    let week = api
        .get(&format!("/v1/webhooks/{webhook_id}/stats?period=7d"))
        .await;
    assert_eq!(week.status, StatusCode::OK, "{:?}", week.body);
    check_period(&week.body, "7d", 7, &attempts);
    assert_eq!(week.body["success_rate"], 0.5);

    // A success ends the run; the next failure starts another.
    receiver.answer(Answer::Status(204));
    api.patch(
        &format!("/v1/webhooks/{webhook_id}"),
        json!({"enabled": true}),
    )
    .await;
    for id in &failed {
        api.wait_delivery(id, WAIT, |delivery| delivery["status"] == "succeeded")
            .await;
    }
    let recovered = api.get(&format!("/v1/webhooks/{webhook_id}/stats")).await;
    assert_eq!(
        recovered.body["failing_since"],
        Value::Null,
        "{}",
        recovered.body
    );
    assert_eq!(recovered.body["pending"], 0);
    receiver.answer(Answer::Status(500));
    let relapse = deliver_one(&api, &webhook_id).await;
    let relapsed = api.get(&format!("/v1/webhooks/{webhook_id}/stats")).await;
    assert_eq!(
        time(&relapsed.body["failing_since"]),
        time(&relapse["attempts"][0]["started_at"])
    );
}

#[tokio::test]
async fn stats_refuse_other_periods_and_other_accounts_webhooks() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let other = server.account("Other").await;
    let receiver = Receiver::start().await;
    let webhook_id = api.create_webhook(&receiver.url).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let before = api.snapshot().await;
    for period in ["1h", "24H", "", "7", "30d"] {
        let reply = api
            .get(&format!("/v1/webhooks/{webhook_id}/stats?period={period}"))
            .await;
        reply.assert_error(422, "invalid_value", Some("period"));
    }
    let theirs = other.get(&format!("/v1/webhooks/{webhook_id}/stats")).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{:?}", theirs.body);
    let unknown = api
        .get("/v1/webhooks/wh_01jf2wkmvb8n4p6r8t0v2x4z6a/stats")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let malformed = api.get("/v1/webhooks/nope/stats").await;
    assert_eq!(
        malformed.status,
        StatusCode::NOT_FOUND,
        "{:?}",
        malformed.body
    );
    assert_eq!(
        api.snapshot().await,
        before,
        "refused requests change nothing"
    );
}
