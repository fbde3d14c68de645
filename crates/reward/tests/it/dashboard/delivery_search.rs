//! The account-wide delivery search and Resend (issue 16), over plain HTTP and in a browser.
//! What a Resend did is read back through the API.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use reward_core::time::Timestamp;
use serde_json::{json, Value};

use super::browser::Browser;
use super::visitor::{Answer, Visitor};
use crate::common::{Api, TestServer};
use crate::receiver::{Answer as Reply, Receiver};

const PAGE: &str = "/settings/deliveries";
const WAIT: Duration = Duration::from_secs(20);

async fn create_webhook(api: &Api, name: &str, url: &str) -> String {
    let reply = api
        .post(
            "/v1/webhooks",
            json!({"name": name, "url": url,
                   "events": ["trigger_event.created", "balance.credit_points_issued"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body["id"].as_str().expect("id").to_owned()
}

/// Records one trigger event that issues points: one delivery of each type per webhook.
async fn trigger(api: &Api) {
    api.put_trigger("payment", json!({"per_unit": 10})).await;
    api.trigger_event("u1", "payment", json!(2)).await;
}

/// The delivery ids a search page lists, in order.
fn listed(answer: &Answer) -> Vec<String> {
    let marker = "id=\"delivery-";
    answer
        .body
        .match_indices(marker)
        .map(|(at, _)| {
            let rest = &answer.body[at + marker.len()..];
            rest[..rest.find('"').expect("end of id")].to_owned()
        })
        .collect()
}

fn ids(deliveries: &[Value]) -> Vec<String> {
    deliveries
        .iter()
        .map(|delivery| delivery["id"].as_str().expect("id").to_owned())
        .collect()
}

const MINUTE: i64 = 60_000;

/// A `datetime-local` value, minutes only, as the browser sends it (UTC).
fn local(time: Timestamp) -> String {
    time.to_rfc3339()[..16].to_owned()
}

/// A link's `href` from a page (HTML-escaped `&` undone).
fn href(answer: &Answer, id: &str) -> String {
    let marker = "href=\"";
    let at = answer
        .body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {}", answer.body));
    let start = answer.body[..at].rfind(marker).expect("href") + marker.len();
    let end = answer.body[start..].find('"').expect("end of href") + start;
    answer.body[start..end]
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

async fn signed_in(server: &TestServer, api: &Api) -> Visitor {
    let mut visitor = Visitor::new(&server.base_url);
    visitor
        .sign_in(&api.key)
        .await
        .assert_redirect("/settings/webhooks");
    visitor
}

#[tokio::test]
async fn the_search_filters_by_webhook_type_status_and_time() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let healthy = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.answer(Reply::Status(500));
    let alpha = create_webhook(&api, "Alpha", &healthy.url).await;
    let beta = create_webhook(&api, "Beta", &failing.url).await;
    trigger(&api).await;
    let alphas = api.deliveries(&alpha).await;
    let betas = api.deliveries(&beta).await;
    assert_eq!((alphas.len(), betas.len()), (2, 2));
    for delivery in &alphas {
        let id = delivery["id"].as_str().expect("id");
        api.wait_delivery(id, WAIT, |d| d["status"] == "succeeded")
            .await;
    }
    for delivery in &betas {
        let id = delivery["id"].as_str().expect("id");
        api.wait_delivery(id, WAIT, |d| d["attempt_count"].as_u64() >= Some(1))
            .await;
    }
    let created =
        Timestamp::parse_rfc3339(alphas[0]["created_at"].as_str().expect("time")).expect("time");
    // The minute it was created in, as the form's inputs have no finer unit here.
    let created = created.plus_millis(-created.as_millis().rem_euclid(MINUTE));
    let mut visitor = signed_in(&server, &api).await;

    let mut all = ids(&alphas);
    all.extend(ids(&betas));
    let cases: Vec<(String, Vec<String>)> = vec![
        (String::new(), all.clone()),
        (format!("webhook={alpha}"), ids(&alphas)),
        (format!("webhook={beta}"), ids(&betas)),
        (
            "event_type=balance.credit_points_issued".to_owned(),
            all.iter()
                .filter(|id| {
                    alphas.iter().chain(&betas).any(|d| {
                        d["id"] == id.as_str() && d["event_type"] == "balance.credit_points_issued"
                    })
                })
                .cloned()
                .collect(),
        ),
        ("status=succeeded".to_owned(), ids(&alphas)),
        ("status=pending".to_owned(), ids(&betas)),
        ("status=failed".to_owned(), vec![]),
        (
            format!(
                "from={}&to={}",
                local(created.plus_millis(-MINUTE)),
                local(created.plus_millis(2 * MINUTE))
            ),
            all.clone(),
        ),
        (
            format!("from={}", local(created.plus_millis(2 * MINUTE))),
            vec![],
        ),
        (format!("to={}", local(created)), vec![]),
        (
            format!("webhook={beta}&event_type=trigger_event.created&status=pending"),
            betas
                .iter()
                .filter(|d| d["event_type"] == "trigger_event.created")
                .map(|d| d["id"].as_str().expect("id").to_owned())
                .collect(),
        ),
    ];
    for (query, expected) in cases {
        let answer = visitor.get(&format!("{PAGE}?{query}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.body);
        let shown = listed(&answer);
        assert_eq!(sorted(shown.clone()), sorted(expected.clone()), "{query}");
        if expected.is_empty() {
            assert!(
                answer.body.contains("No delivery matches this search"),
                "{query}"
            );
        }
    }

    // Newest first, with the webhook's name, attempts and a Resend each.
    let answer = visitor.get(PAGE).await;
    let shown = listed(&answer);
    let newest_first = api.get("/v1/deliveries?limit=100").await.body["data"]
        .as_array()
        .map(|data| ids(data))
        .expect("data");
    assert_eq!(shown, newest_first);
    assert!(answer.body.contains(">Alpha</a>") && answer.body.contains(">Beta</a>"));
    assert!(answer.body.contains("HTTP 500") || answer.body.contains(">500<"));
    assert!(answer.body.contains("class=\"attempt\""));
    for id in &shown {
        assert!(answer
            .body
            .contains(&format!("/settings/deliveries/{id}/resend")));
    }
    assert!(answer.body.contains("read as UTC"));
}

#[tokio::test]
async fn bad_search_fields_are_shown_beside_each_field() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let other = server.account("Other").await;
    let others = create_webhook(&other, "Theirs", "http://127.0.0.1:9/hook").await;
    create_webhook(&api, "Ours", "http://127.0.0.1:9/hook").await;
    let mut visitor = signed_in(&server, &api).await;

    for (query, field, says) in [
        (
            "status=lost",
            "status",
            "Choose pending, succeeded or failed.",
        ),
        (
            "event_type=order.paid",
            "event-type",
            "Not an event type Reward sends.",
        ),
        (
            "webhook=wh_nope",
            "webhook",
            "Not a webhook of this account.",
        ),
        ("from=yesterday", "from", "Not a date and time"),
        ("to=2024-12-14T15:29%2B01:00", "to", "Not a date and time"),
        (
            "from=2024-12-14T15:29&to=2024-12-14T15:00",
            "to",
            "Must be later than",
        ),
    ] {
        let answer = visitor.get(&format!("{PAGE}?{query}")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let error = format!("id=\"search-{field}-error\"");
        let at = answer
            .body
            .find(&error)
            .unwrap_or_else(|| panic!("{query}: {}", answer.body));
        assert!(answer.body[at..].contains(says), "{query}");
        assert!(answer.body.contains("The search did not run"), "{query}");
        assert!(listed(&answer).is_empty(), "{query}");
    }
    // Another account's webhook is not this account's, whatever its id.
    let answer = visitor.get(&format!("{PAGE}?webhook={others}")).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.body.contains("id=\"search-webhook-error\""));
    assert!(!answer.body.contains("Theirs"));
}

#[tokio::test]
async fn another_accounts_deliveries_are_never_shown_or_resent() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let other = server.account("Other").await;
    let ours = create_webhook(&api, "Ours", "http://127.0.0.1:9/hook").await;
    let theirs = create_webhook(&other, "Theirs", "http://127.0.0.1:9/hook").await;
    trigger(&api).await;
    trigger(&other).await;
    let their_deliveries = ids(&other.deliveries(&theirs).await);
    let mut visitor = signed_in(&server, &api).await;

    let answer = visitor.get(PAGE).await;
    assert_eq!(
        sorted(listed(&answer)),
        sorted(ids(&api.deliveries(&ours).await))
    );
    for id in &their_deliveries {
        assert!(!answer.body.contains(id.as_str()));
    }
    assert!(!answer.body.contains("Theirs"));

    let resent = visitor
        .post_from(PAGE, &format!("{PAGE}/{}/resend", their_deliveries[0]), &[])
        .await;
    assert_eq!(resent.status, StatusCode::NOT_FOUND);
    assert_eq!(
        other.deliveries(&theirs).await.len(),
        their_deliveries.len()
    );
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test]
async fn pages_of_a_search_keep_its_filters() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let id = create_webhook(&api, "Orders", "http://127.0.0.1:9/hook").await;
    api.put_trigger("payment", json!({"per_unit": 10})).await;
    for n in 0..21 {
        api.trigger_event(&format!("u{n}"), "payment", json!(1))
            .await;
    }
    let expected: Vec<String> = api
        .deliveries(&id)
        .await
        .iter()
        .filter(|d| d["event_type"] == "trigger_event.created")
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(expected.len(), 21);
    let mut visitor = signed_in(&server, &api).await;

    let first = visitor
        .get(&format!("{PAGE}?event_type=trigger_event.created"))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let first_ids = listed(&first);
    assert_eq!(first_ids, expected[..20]);
    assert_eq!(first.body.matches("id=\"newest\"").count(), 0);
    let older = href(&first, "older");
    assert!(
        older.starts_with("/settings/deliveries?event_type=trigger_event.created&cursor="),
        "{older}"
    );

    let second = visitor.get(&older).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(listed(&second), expected[20..]);
    assert_eq!(second.body.matches("id=\"older\"").count(), 0);
    assert_eq!(
        href(&second, "newest"),
        "/settings/deliveries?event_type=trigger_event.created"
    );

    // A cursor that does not decode, or decodes to no delivery id, names no page: both say so
    // (as the API answers 422 `invalid_cursor`), rather than showing the first page.
    for cursor in ["%%%", "bm90LWFuLWlk"] {
        let broken = visitor
            .get(&format!(
                "{PAGE}?event_type=trigger_event.created&cursor={cursor}"
            ))
            .await;
        assert_eq!(broken.status, StatusCode::NOT_FOUND, "{cursor}");
        assert!(
            broken
                .body
                .contains("This page of the list does not exist."),
            "{cursor}"
        );
        let on_webhook = visitor
            .get(&format!("/settings/webhooks/{id}?cursor={cursor}"))
            .await;
        assert_eq!(on_webhook.status, StatusCode::NOT_FOUND, "{cursor}");
        let webhooks = visitor
            .get(&format!("/settings/webhooks?cursor={cursor}"))
            .await;
        assert_eq!(webhooks.status, StatusCode::NOT_FOUND, "{cursor}");
    }
}

#[tokio::test]
async fn resend_makes_a_new_delivery_of_the_same_event() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let id = create_webhook(&api, "Orders", &receiver.url).await;
    trigger(&api).await;
    let before = api.deliveries(&id).await;
    let original = before
        .iter()
        .find(|d| d["event_type"] == "trigger_event.created")
        .expect("delivery")
        .clone();
    let original_id = original["id"].as_str().expect("id").to_owned();
    api.wait_delivery(&original_id, WAIT, |d| d["status"] == "succeeded")
        .await;
    receiver.wait_for(2, WAIT).await;
    let mut visitor = signed_in(&server, &api).await;

    // From the search: back to the same search, with a notice.
    let search = "status=succeeded&event_type=trigger_event.created";
    let resent = visitor
        .post_from(
            &format!("{PAGE}?{search}"),
            &format!("{PAGE}/{original_id}/resend"),
            &[("search", search)],
        )
        .await;
    resent.assert_redirect(&format!(
        "{PAGE}?event_type=trigger_event.created&status=succeeded&notice=resent"
    ));
    let after = api.deliveries(&id).await;
    assert_eq!(after.len(), before.len() + 1);
    let new = after
        .iter()
        .find(|d| !ids(&before).contains(&d["id"].as_str().expect("id").to_owned()))
        .expect("a new delivery");
    assert_eq!(new["event_id"], original["event_id"]);
    assert_eq!(new["webhook_id"], id.as_str());
    let arrived = receiver.wait_for(3, WAIT).await;
    let first = arrived
        .iter()
        .find(|r| r.json()["type"] == "trigger_event.created")
        .expect("first");
    assert_eq!(arrived[2].body, first.body, "the stored bytes again");
    let page = visitor
        .get(resent.location.as_deref().expect("location"))
        .await;
    assert!(page.body.contains("Event resent"), "{}", page.body);

    // From the webhook's page: back to it.
    let webhook_page = format!("/settings/webhooks/{id}");
    let answer = visitor.get(&webhook_page).await;
    assert!(answer
        .body
        .contains(&format!("{PAGE}/{original_id}/resend")));
    visitor
        .post_from(
            &webhook_page,
            &format!("{PAGE}/{original_id}/resend"),
            &[("from", "webhook")],
        )
        .await
        .assert_redirect(&format!("{webhook_page}?notice=resent#deliveries"));
    assert_eq!(api.deliveries(&id).await.len(), before.len() + 2);

    // A disabled webhook: a notice saying so, and nothing queued.
    let patched = api
        .patch(&format!("/v1/webhooks/{id}"), json!({"enabled": false}))
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    let refused = visitor
        .post_from(
            PAGE,
            &format!("{PAGE}/{original_id}/resend"),
            &[("search", "")],
        )
        .await;
    refused.assert_redirect(&format!("{PAGE}?notice=resend_disabled"));
    let page = visitor.get(&format!("{PAGE}?notice=resend_disabled")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("notice notice-warn"));
    assert!(page.body.contains("Not resent: the webhook is disabled"));
    assert_eq!(api.deliveries(&id).await.len(), before.len() + 2);

    // Only this page's fields come back after a resend, never another address.
    api.patch(&format!("/v1/webhooks/{id}"), json!({"enabled": true}))
        .await;
    visitor
        .post_from(
            PAGE,
            &format!("{PAGE}/{original_id}/resend"),
            &[("search", "next=https://evil.test/&status=failed")],
        )
        .await
        .assert_redirect(&format!("{PAGE}?status=failed&notice=resent"));
}

#[tokio::test]
async fn resend_without_the_csrf_token_is_refused() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let id = create_webhook(&api, "Orders", "http://127.0.0.1:9/hook").await;
    trigger(&api).await;
    let before = api.deliveries(&id).await;
    let delivery = before[0]["id"].as_str().expect("id").to_owned();
    let mut visitor = signed_in(&server, &api).await;

    let path = format!("{PAGE}/{delivery}/resend");
    let missing = visitor.post(&path, &[("search", "")]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let forged = visitor
        .post(&path, &[("csrf_token", "0".repeat(64).as_str())])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(api.deliveries(&id).await.len(), before.len());

    // Signed out: the sign-in page, nothing done.
    let mut stranger = Visitor::new(&server.base_url);
    stranger.get(PAGE).await.assert_redirect("/");
    stranger.post(&path, &[]).await.assert_redirect("/");
    assert_eq!(api.deliveries(&id).await.len(), before.len());
}

// In a browser.

#[tokio::test]
async fn searching_deliveries_and_resending_in_a_browser_with_a_screenshot() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let healthy = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.answer(Reply::Status(503));
    let orders = create_webhook(&api, "Orders", &healthy.url).await;
    create_webhook(&api, "Billing sync", &failing.url).await;
    trigger(&api).await;
    for delivery in api.deliveries(&orders).await {
        let id = delivery["id"].as_str().expect("id");
        api.wait_delivery(id, WAIT, |d| d["status"] == "succeeded")
            .await;
    }

    browser.sign_in(&server.base_url, &api.key).await;
    browser.click_link("Deliveries").await;
    browser.wait_for_path(|path| path == PAGE).await;
    assert_eq!(browser.text("h1").await, "Deliveries");
    assert_eq!(browser.count("tbody.delivery").await, 4);

    // Search: Orders' succeeded deliveries of one type.
    browser
        .click(&format!("#search-webhook option[value='{orders}']"))
        .await;
    browser
        .click("#search-event-type option[value='balance.credit_points_issued']")
        .await;
    browser
        .click("#search-status option[value='succeeded']")
        .await;
    browser.click_button("Search").await;
    browser
        .wait_for_path(|path| path.contains("status=succeeded"))
        .await;
    assert_eq!(browser.count("tbody.delivery").await, 1);
    let row = browser.text("tbody.delivery").await;
    assert!(
        row.contains("balance.credit_points_issued") && row.contains("Orders"),
        "{row}"
    );
    assert!(row.contains("Succeeded"), "{row}");

    // The README's picture, only when asked, like `screenshots_for_the_docs`.
    if std::env::var("REWARD_SCREENSHOTS").as_deref() == Ok("1") {
        // The whole account's deliveries, the failing endpoint's attempts open.
        browser.goto(&format!("{}{PAGE}", server.base_url)).await;
        let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&folder).expect("docs/screenshots");
        browser.screenshot(&folder.join("deliveries.png")).await;
        browser
            .goto(&format!(
                "{}{PAGE}?webhook={orders}&event_type=balance.credit_points_issued&status=succeeded",
                server.base_url
            ))
            .await;
    }

    // Resend: back on the same search, with the new delivery listed first.
    let before = api.deliveries(&orders).await.len();
    browser.click("tbody.delivery button.resend").await;
    browser
        .wait_for_path(|path| path.contains("notice=resent"))
        .await;
    assert!(browser.text(".notice").await.contains("Event resent"));
    assert_eq!(api.deliveries(&orders).await.len(), before + 1);
    browser
        .reload_until(
            &format!(
                "{}{PAGE}?webhook={orders}&event_type=balance.credit_points_issued",
                server.base_url
            ),
            "tbody.delivery .delivery-status",
            |status| status == "Succeeded",
        )
        .await;
    assert_eq!(browser.count("tbody.delivery").await, 2);
    healthy.wait_for(3, WAIT).await;
    browser.close().await;
}
