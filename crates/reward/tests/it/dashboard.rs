//! The dashboard (SPEC §7) as people use it: headless Chromium against the real server and a
//! real receiver on loopback, following the seed's steps literally. `sessions` checks over plain
//! HTTP what a browser hides (redirects, cookies, forged forms).

mod browser;
mod delivery_search;
mod health;
mod sessions;
pub(crate) mod visitor;
mod webhook_settings;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{Api, TestServer};
use crate::receiver::{Answer, Receiver};
use browser::Browser;

const BOTH_EVENTS: [&str; 2] = ["trigger_event.created", "balance.credit_points_issued"];

async fn webhooks(api: &Api) -> Vec<Value> {
    let reply = api.get("/v1/webhooks?limit=100").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["data"].as_array().expect("data").clone()
}

async fn secret(api: &Api, id: &str) -> String {
    let reply = api.get(&format!("/v1/webhooks/{id}/secret")).await;
    reply.body["secret"].as_str().expect("secret").to_owned()
}

// In a browser.

#[tokio::test]
async fn the_seeds_steps_create_a_webhook() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;

    // "Go to the Webhooks page under Account Settings."
    browser.sign_in(&server.base_url, &api.key).await;
    browser.click_link("Account Settings").await;
    browser.click_link("Webhooks").await;
    assert_eq!(browser.text("h1").await, "Webhooks");
    // "Click the Create Webhook button."
    browser.click_link("Create Webhook").await;
    browser
        .wait_for_path(|path| path == "/settings/webhooks/new")
        .await;
    // "Enter a name. Specify the URL. Select the events."
    browser.type_into("#name", "Orders").await;
    browser.type_into("#url", &receiver.url).await;
    for event in BOTH_EVENTS {
        browser
            .click(&format!("input[name=events][value='{event}']"))
            .await;
    }
    // "Click Create Webhook."
    browser.click_button("Create Webhook").await;

    browser
        .wait_for_path(|path| path.starts_with("/settings/webhooks?notice=created"))
        .await;
    let row = browser.text("#webhooks tbody tr").await;
    assert!(row.contains("Orders"), "{row}");
    assert!(row.contains(&receiver.url), "{row}");
    assert!(row.contains("Enabled"), "{row}");
    for event in BOTH_EVENTS {
        assert!(row.contains(event), "{row}");
    }
    assert!(row.contains("No attempts"), "{row}");

    let created = webhooks(&api).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["name"], "Orders");
    assert_eq!(created[0]["url"], receiver.url.as_str());
    assert_eq!(created[0]["events"], json!(BOTH_EVENTS));
    assert_eq!(created[0]["enabled"], true);
    browser.close().await;
}

#[tokio::test]
async fn a_bad_url_is_shown_on_the_form_and_nothing_is_created() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.account("Acme").await;

    browser.sign_in(&server.base_url, &api.key).await;
    browser.click_link("Create Webhook").await;
    browser.type_into("#name", "Orders").await;
    browser.type_into("#url", "not a url").await;
    browser
        .click("input[name=events][value='trigger_event.created']")
        .await;
    browser.click_button("Create Webhook").await;

    let error = browser.text("#url-error").await;
    assert!(error.contains("Not an absolute URL"), "{error}");
    let summary = browser.text("#error-summary").await;
    assert!(summary.contains("The webhook was not saved"), "{summary}");
    let url = browser.find("#url").await;
    assert_eq!(
        url.attr("aria-invalid").await.expect("attr").as_deref(),
        Some("true")
    );
    // The input is kept.
    assert_eq!(
        browser
            .find("#name")
            .await
            .prop("value")
            .await
            .expect("value")
            .as_deref(),
        Some("Orders")
    );
    assert_eq!(
        url.prop("value").await.expect("value").as_deref(),
        Some("not a url")
    );
    assert!(browser
        .find("input[name=events][value='trigger_event.created']")
        .await
        .is_selected()
        .await
        .expect("selected"));
    assert_eq!(browser.count("#name-error").await, 0, "the name was fine");

    assert!(webhooks(&api).await.is_empty(), "nothing was created");
    browser.close().await;
}

#[tokio::test]
async fn a_test_event_fails_then_succeeds_on_retry() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let id = api.create_webhook(&receiver.url).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let page = format!("{}/settings/webhooks/{id}", server.base_url);
    browser.sign_in(&server.base_url, &api.key).await;

    // A test event arrives, and its delivery shows 2xx.
    browser.goto(&page).await;
    browser
        .click("button[aria-label='Send test event: trigger_event.created']")
        .await;
    let first = browser.find("tbody.delivery").await;
    let first = first.attr("id").await.expect("attr").expect("delivery id");
    browser
        .reload_until(&page, &format!("#{first} .delivery-status"), |s| {
            s == "Succeeded"
        })
        .await;
    assert_eq!(
        browser.text(&format!("#{first} .delivery-code")).await,
        "204"
    );
    assert_eq!(receiver.count(), 1);
    let arrived = &receiver.received()[0];
    assert_eq!(arrived.json()["type"], "trigger_event.created");

    // The receiver fails: every attempt shows, until the delivery has failed.
    receiver.answer(Answer::Status(500));
    browser.goto(&page).await;
    browser
        .click("button[aria-label='Send test event: balance.credit_points_issued']")
        .await;
    // The form's answer first: reloading while its POST is still to go would cancel it (the
    // page already lists a delivery, so nothing else shows it went).
    browser
        .wait_for_text(".notice", |s| s.starts_with("Test event sent."))
        .await;
    browser
        .reload_until(&page, "tbody.delivery .delivery-status", |s| s == "Failed")
        .await;
    let failed = browser.find("tbody.delivery").await;
    let failed = failed.attr("id").await.expect("attr").expect("delivery id");
    assert_ne!(failed, first);
    assert_eq!(
        browser.text(&format!("#{failed} .delivery-attempts")).await,
        "6"
    );
    assert_eq!(
        browser.text(&format!("#{failed} .delivery-code")).await,
        "500"
    );
    assert_eq!(browser.count(&format!("#{failed} tr.attempt")).await, 6);
    let attempt = browser.text(&format!("#{failed} tr.attempt")).await;
    assert!(
        attempt.contains("500") && attempt.contains("HTTP 500"),
        "{attempt}"
    );

    // Fixed: Retry delivers it.
    receiver.answer(Answer::Status(204));
    browser.click(&format!("#{failed} button.retry")).await;
    browser
        .wait_for_path(|path| path.contains("notice=retried"))
        .await;
    browser
        .reload_until(&page, &format!("#{failed} .delivery-status"), |s| {
            s == "Succeeded"
        })
        .await;
    assert_eq!(
        browser.text(&format!("#{failed} .delivery-code")).await,
        "204"
    );
    assert_eq!(
        browser.text(&format!("#{failed} .delivery-attempts")).await,
        "7"
    );
    browser.close().await;
}

#[tokio::test]
async fn secret_reveal_and_rotate_edit_disable_enable_delete() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let id = api.create_webhook(&receiver.url).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    browser.sign_in(&server.base_url, &api.key).await;
    browser.click_link("Orders").await;
    browser
        .wait_for_path(|path| path == format!("/settings/webhooks/{id}"))
        .await;

    // Hidden until Reveal.
    let masked = browser.text("#secret-masked").await;
    assert!(!masked.contains(&secret(&api, &id).await[6..]), "{masked}");
    assert_eq!(browser.count("#secret").await, 0);
    browser.click_button("Reveal").await;
    let revealed = browser.text("#secret").await;
    assert_eq!(revealed, secret(&api, &id).await);

    // Rotate: a new secret, shown, and the old one's overlap said.
    browser.click_button("Rotate").await;
    browser
        .wait_for_text("#secret", |text| text != revealed)
        .await;
    let rotated = browser.text("#secret").await;
    assert!(rotated.starts_with("whsec_"), "{rotated}");
    assert_eq!(rotated, secret(&api, &id).await);
    assert!(browser
        .text(".secret-box + .notice")
        .await
        .contains("previous secret keeps signing"));

    // Edit name, URL and events.
    browser.click_link("Edit").await;
    browser.type_into("#name", "Orders v2").await;
    let new_url = format!("{}/v2", receiver.url);
    browser.type_into("#url", &new_url).await;
    browser
        .click("input[name=events][value='balance.credit_points_issued']")
        .await;
    browser.click_button("Save changes").await;
    browser
        .wait_for_path(|path| path.ends_with("notice=updated"))
        .await;
    assert_eq!(browser.text("#webhook-name").await, "Orders v2");
    let edited = api.get(&format!("/v1/webhooks/{id}")).await.body;
    assert_eq!(edited["name"], "Orders v2");
    assert_eq!(edited["url"], new_url.as_str());
    assert_eq!(edited["events"], json!(["trigger_event.created"]));

    // Disable, enable.
    browser.click_button("Disable").await;
    browser
        .wait_for_path(|path| path.ends_with("notice=disabled"))
        .await;
    assert_eq!(browser.text("#webhook-state").await, "Disabled");
    assert_eq!(
        api.get(&format!("/v1/webhooks/{id}")).await.body["enabled"],
        false
    );
    browser.click_button("Enable").await;
    browser
        .wait_for_path(|path| path.ends_with("notice=enabled"))
        .await;
    assert_eq!(browser.text("#webhook-state").await, "Enabled");
    assert_eq!(
        api.get(&format!("/v1/webhooks/{id}")).await.body["enabled"],
        true
    );

    // Delete, after a confirmation page; Cancel there would have kept it.
    browser.click_link("Delete webhook…").await;
    let question = browser.text("h1").await;
    assert!(question.contains("Delete “Orders v2”?"), "{question}");
    assert_eq!(
        api.get(&format!("/v1/webhooks/{id}")).await.status,
        StatusCode::OK
    );
    browser.click_button("Delete webhook").await;
    browser
        .wait_for_path(|path| path == "/settings/webhooks?notice=deleted")
        .await;
    assert!(browser.text(".notice").await.contains("Webhook deleted"));
    assert_eq!(browser.count("#webhooks").await, 0, "the list is empty");
    api.get(&format!("/v1/webhooks/{id}"))
        .await
        .assert_error(404, "not_found", None);
    browser.close().await;
}

/// Writes the README's screenshots, at 1280 px, only when asked (`REWARD_SCREENSHOTS=1`), so an
/// ordinary run never changes the work tree.
#[tokio::test]
async fn screenshots_for_the_docs() {
    if std::env::var("REWARD_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let Some(browser) = Browser::start().await else {
        return;
    };
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&folder).expect("docs/screenshots");
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let healthy = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.answer(Answer::Status(503));

    // Some history: a flaky first delivery, a steady stream, an endpoint that is down.
    healthy.script(vec![Answer::Status(500), Answer::Status(502)]);
    let orders = api.create_webhook(&healthy.url).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let billing = api
        .post(
            "/v1/webhooks",
            json!({"name": "Billing sync", "url": failing.url, "events": ["balance.credit_points_issued"]}),
        )
        .await;
    assert_eq!(billing.status, StatusCode::CREATED);
    let analytics = api
        .post(
            "/v1/webhooks",
            json!({"name": "Analytics export", "url": format!("{}/analytics", healthy.url),
                   "events": ["trigger_event.created"], "enabled": false}),
        )
        .await;
    assert_eq!(analytics.status, StatusCode::CREATED);
    api.put_trigger("successful_payment", json!({"per_unit": 10}))
        .await;
    for (user, value) in [("ca9bb5c2", 2.99), ("f1d3a7e0", 12.5), ("0b7e44c1", 4.0)] {
        api.trigger_event(user, "successful_payment", json!(value))
            .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    healthy.wait_for(8, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    browser.sign_in(&server.base_url, &api.key).await;
    browser.screenshot(&folder.join("webhooks.png")).await;
    browser.click_link("Create Webhook").await;
    browser.type_into("#name", "Fulfilment").await;
    browser
        .type_into("#url", "https://fulfilment.example.com/hooks/reward")
        .await;
    browser
        .click("input[name=events][value='trigger_event.created']")
        .await;
    browser.screenshot(&folder.join("create-webhook.png")).await;
    browser
        .goto(&format!("{}/settings/webhooks/{orders}", server.base_url))
        .await;
    // Open the oldest delivery's attempts: the flaky ones, then the success.
    browser.click("tbody.delivery:last-of-type summary").await;
    browser.screenshot(&folder.join("webhook.png")).await;
    browser.close().await;
}

/// On a phone's width (390 CSS pixels) no page makes the reader scroll sideways: the reference's
/// tables, the webhooks list with a long URL, a webhook's page and forms, the delivery search and
/// the API keys.
#[tokio::test]
async fn pages_fit_a_phone_screen() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let long_url = format!(
        "{}/{}",
        receiver.url,
        "a-rather-long-path-segment".repeat(4)
    );
    let created = api
        .post(
            "/v1/webhooks",
            json!({"name": "Orders", "url": long_url, "events": ["*"],
                   "description": "Sends every event to the orders service"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();

    browser.sign_in(&server.base_url, &api.key).await;
    browser.set_width(390).await;
    let mut too_wide = Vec::new();
    for path in [
        "/docs".to_owned(),
        "/settings/webhooks".to_owned(),
        format!("/settings/webhooks/{id}"),
        format!("/settings/webhooks/{id}/edit"),
        "/settings/webhooks/new".to_owned(),
        "/settings/deliveries".to_owned(),
        "/settings/api-keys".to_owned(),
    ] {
        browser.goto(&format!("{}{path}", server.base_url)).await;
        let (overflow, elements) = browser.overflow().await;
        if overflow > 0 {
            too_wide.push(format!("{path}: {overflow} px ({})", elements.join(", ")));
        }
    }
    assert!(too_wide.is_empty(), "wider than the screen: {too_wide:?}");
    browser.close().await;
}
