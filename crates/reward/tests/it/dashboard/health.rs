//! A webhook's health on its dashboard page (issue 16): the last 24 hours and 7 days as charts
//! drawn on the server (SVG, no script), with the success rate, pending deliveries and how long
//! it has been failing, from the same roll-ups as `GET /v1/webhooks/{id}/stats`.

use std::time::Duration;

use reqwest::StatusCode;

use super::browser::Browser;
use super::visitor::Visitor;
use crate::common::{Api, TestServer};
use crate::receiver::{Answer, Receiver};

/// A webhook with three attempts: two failed (500, 502), then the retry schedule's next one
/// succeeded; returns its id.
async fn webhook_with_history(api: &Api, receiver: &Receiver) -> String {
    receiver.script(vec![Answer::Status(500), Answer::Status(502)]);
    let id = api.create_webhook(&receiver.url).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let sent = api.send_test(&id, "trigger_event.created").await;
    assert_eq!(sent.status, StatusCode::ACCEPTED);
    let delivery = sent.body["id"].as_str().expect("delivery id");
    let done = api
        .wait_delivery(delivery, Duration::from_secs(10), |found| {
            found["status"] != "pending"
        })
        .await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["attempt_count"], 3);
    id
}

#[tokio::test]
async fn the_webhook_page_draws_its_health_for_24_hours_and_7_days() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let id = webhook_with_history(&api, &receiver).await;
    let stats = api.get(&format!("/v1/webhooks/{id}/stats")).await.body;
    assert_eq!(stats["buckets"][23]["attempts"], 3, "{stats}");

    let mut visitor = Visitor::new(&server.base_url);
    visitor.sign_in(&api.key).await;
    let page = visitor.get(&format!("/settings/webhooks/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let health = page
        .body
        .split(r#"id="health""#)
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .expect("a Health section");
    assert_eq!(health.matches("<svg").count(), 2, "{health}");
    assert!(health.contains("Last 24 hours") && health.contains("Last 7 days"));
    // One success in three attempts, shown as the API computes it.
    assert_eq!(health.matches("success 33.3%").count(), 2, "{health}");
    assert!(health.contains("0 pending"), "{health}");
    assert!(
        !health.contains("failing since"),
        "the last attempt succeeded"
    );
    assert!(!health.contains("<script"), "drawn on the server");

    // The list of webhooks shows the same recent success rate, read from the same roll-ups.
    let list = visitor.get("/settings/webhooks").await;
    assert_eq!(list.status, StatusCode::OK);
    let row = list
        .body
        .split(&format!("data-webhook-id=\"{id}\""))
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .expect("the webhook's row");
    assert!(row.contains("33.3%"), "{row}");
    assert!(row.contains("of 3 attempts"), "{row}");
}

#[tokio::test]
async fn the_health_charts_show_in_the_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let id = webhook_with_history(&api, &receiver).await;

    browser.sign_in(&server.base_url, &api.key).await;
    browser
        .goto(&format!("{}/settings/webhooks/{id}", server.base_url))
        .await;
    assert_eq!(browser.count("#health svg").await, 2);
    // Each chart names itself for screen readers, and its bars carry their counts.
    let text = browser.text("#health").await;
    assert!(text.contains("Last 24 hours"), "{text}");
    assert!(browser.count("#health svg title").await >= 2);
    let folder = tempfile::TempDir::new().expect("temp dir");
    browser
        .screenshot(&folder.path().join("webhook-health.png"))
        .await;
    browser.close().await;
}
