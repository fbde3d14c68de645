//! Retries fall due on time (issue 14 §2): a retry scheduled while the worker sleeps toward its
//! idle poll must not wait for that poll.

use std::time::Duration;

use serde_json::json;

use crate::common::TestServer;
use crate::receiver::{Answer, Receiver};

/// Base 200 ms and factor 2: every gap between attempts within its ±10% jitter and 50 ms.
#[tokio::test]
async fn retries_fall_due_on_time() {
    let server = TestServer::start_with(|config| {
        config.retry.base = Duration::from_millis(200);
        config.retry.factor = 2.0;
        config.retry.max_retries = 5;
    })
    .await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    receiver.answer(Answer::Status(500));
    let webhook = api.create_webhook(&receiver.url).await;
    let test = api
        .post(
            &format!("/v1/webhooks/{}/test", webhook["id"].as_str().expect("id")),
            json!({"type": "trigger_event.created"}),
        )
        .await;
    let delivery_id = test.body["id"].as_str().expect("id");
    api.wait_delivery(delivery_id, Duration::from_secs(15), |delivery| {
        delivery["status"] == "failed"
    })
    .await;
    let arrivals = receiver.received();
    assert_eq!(arrivals.len(), 6);
    let gaps: Vec<Duration> = arrivals
        .windows(2)
        .map(|pair| pair[1].at - pair[0].at)
        .collect();
    // 200, 400, 800, 1600, 3200 ms, each within its ±10% jitter and 50 ms of work.
    for (k, gap) in gaps.iter().enumerate() {
        let nominal = Duration::from_millis(200 * 2_u64.pow(k as u32));
        let earliest = nominal.mul_f64(0.9);
        let latest = nominal.mul_f64(1.1) + Duration::from_millis(50);
        assert!(
            *gap >= earliest && *gap <= latest,
            "gap {k} was {gap:?}, due {nominal:?} ±10% (+50 ms); all gaps: {gaps:?}"
        );
    }
}
