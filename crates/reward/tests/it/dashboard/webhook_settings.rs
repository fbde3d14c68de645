//! The webhook form's settings (issue 16): filter, headers, description, metadata and rate limit,
//! in a real browser and over plain HTTP. What the form saves is read back through the API.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::browser::Browser;
use super::visitor::Visitor;
use super::webhooks;
use crate::common::{Api, TestServer};
use crate::receiver::Receiver;

const TOKEN: &str = "Bearer gateway-token-123";
/// How the form and the page show [`TOKEN`]: four characters and the mask.
const MASKED_TOKEN: &str = "Bear••••••••";
const FILTER: &str = r#"{"type": "trigger_event.created", "data.value": {"$gte": 100}}"#;
/// A filter the API refuses, and the start of the reason it gives.
const BAD_FILTER: &str = r#"{"data.points": {"$gte": true}}"#;
const BAD_FILTER_REASON: &str = "data.points: $gte takes";

async fn webhook(api: &Api, id: &str) -> Value {
    let reply = api.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body
}

/// A webhook with every setting, made through the API.
async fn create_with_settings(api: &Api) -> String {
    let reply = api
        .post(
            "/v1/webhooks",
            json!({
                "name": "Orders",
                "url": "http://127.0.0.1:9/hook",
                "events": ["trigger_event.created"],
                "filter": {"type": "trigger_event.created"},
                "headers": {"Authorization": TOKEN, "X-Tenant": "acme"},
                "description": "Orders feed",
                "metadata": {"team": "payments"},
                "rate_limit": 20,
                "ordering": "per_user",
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body["id"].as_str().expect("id").to_owned()
}

/// The fields the edit form sends for [`create_with_settings`]'s webhook when nothing is changed
/// (header values masked as the form shows them).
fn unchanged_form() -> Vec<(&'static str, &'static str)> {
    vec![
        ("name", "Orders"),
        ("url", "http://127.0.0.1:9/hook"),
        ("events", "trigger_event.created"),
        ("filter", r#"{"type": "trigger_event.created"}"#),
        ("header_name", "Authorization"),
        ("header_value", MASKED_TOKEN),
        ("header_name", "X-Tenant"),
        ("header_value", "a••••••••"),
        ("header_name", ""),
        ("header_value", ""),
        ("description", "Orders feed"),
        ("metadata_key", "team"),
        ("metadata_value", "payments"),
        ("metadata_key", ""),
        ("metadata_value", ""),
        ("rate_limit", "20"),
        ("ordering", "per_user"),
    ]
}

/// [`unchanged_form`] with the `nth` (from 0) field called `name` set to `value`.
fn changed_form(
    changes: &[(&'static str, usize, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    let mut fields = unchanged_form();
    for (name, nth, value) in changes {
        let field = fields
            .iter_mut()
            .filter(|(field, _)| field == name)
            .nth(*nth)
            .unwrap_or_else(|| panic!("no {name} #{nth}"));
        field.1 = value;
    }
    fields
}

// In a browser.

#[tokio::test]
async fn the_form_creates_a_webhook_with_a_filter_and_headers_and_shows_a_bad_filters_error() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;

    browser.sign_in(&server.base_url, &api.key).await;
    browser.click_link("Create Webhook").await;
    browser.type_into("#name", "Orders").await;
    browser.type_into("#url", &receiver.url).await;
    browser
        .click("input[name=events][value='trigger_event.created']")
        .await;
    browser.type_into("#filter", FILTER).await;
    browser.type_into("#header-name-1", "Authorization").await;
    browser.type_into("#header-value-1", TOKEN).await;
    browser.type_into("#header-name-2", "X-Tenant").await;
    browser.type_into("#header-value-2", "acme").await;
    browser.type_into("#description", "Orders feed").await;
    browser.type_into("#metadata-key-1", "team").await;
    browser.type_into("#metadata-value-1", "payments").await;
    browser.type_into("#rate_limit", "20").await;
    browser.select("#ordering", "per_user").await;
    browser.click_button("Create Webhook").await;
    browser
        .wait_for_path(|path| path.starts_with("/settings/webhooks?notice=created"))
        .await;

    let created = webhooks(&api).await;
    assert_eq!(created.len(), 1);
    let id = created[0]["id"].as_str().expect("id").to_owned();
    let stored = webhook(&api, &id).await;
    assert_eq!(
        stored["filter"],
        json!({"type": "trigger_event.created", "data.value": {"$gte": 100}})
    );
    assert_eq!(
        stored["headers"],
        json!({"Authorization": TOKEN, "X-Tenant": "acme"})
    );
    assert_eq!(stored["description"], "Orders feed");
    assert_eq!(stored["metadata"], json!({"team": "payments"}));
    assert_eq!(stored["rate_limit"], 20);
    assert_eq!(stored["ordering"], "per_user");

    // Its page shows the settings, header values masked.
    browser
        .goto(&format!("{}/settings/webhooks/{id}", server.base_url))
        .await;
    let filter = browser.text("#setting-filter").await;
    assert!(filter.contains("\"data.value\""), "{filter}");
    let headers = browser.text("#setting-headers").await;
    assert!(
        headers.contains(&format!("Authorization: {MASKED_TOKEN}")),
        "{headers}"
    );
    assert!(headers.contains("X-Tenant: a••••••••"), "{headers}");
    assert!(!headers.contains("gateway-token"), "{headers}");
    assert_eq!(browser.text("#setting-description").await, "Orders feed");
    assert!(browser.text("#setting-metadata").await.contains("team"));
    assert_eq!(browser.text("#setting-rate-limit").await, "20 per second");
    let ordering = browser.text("#setting-ordering").await;
    assert!(ordering.starts_with("Per user"), "{ordering}");

    // Edit: the stored value is shown masked; a bad filter is refused beside its field.
    browser.click_link("Edit").await;
    browser.wait_for_path(|path| path.ends_with("/edit")).await;
    let shown = browser
        .find("#header-value-1")
        .await
        .prop("value")
        .await
        .expect("value");
    assert_eq!(shown.as_deref(), Some(MASKED_TOKEN));
    let chosen = browser
        .find("#ordering")
        .await
        .prop("value")
        .await
        .expect("value");
    assert_eq!(chosen.as_deref(), Some("per_user"), "the stored ordering");
    browser.type_into("#filter", BAD_FILTER).await;
    browser.click_button("Save changes").await;
    let error = browser.text("#filter-error").await;
    assert!(error.contains(BAD_FILTER_REASON), "{error}");
    let summary = browser.text("#error-summary").await;
    assert!(summary.contains("Filter:"), "{summary}");
    let filter = browser.find("#filter").await;
    assert_eq!(
        filter.attr("aria-invalid").await.expect("attr").as_deref(),
        Some("true")
    );
    assert_eq!(
        filter.prop("value").await.expect("value").as_deref(),
        Some(BAD_FILTER),
        "the input is kept"
    );
    assert_eq!(webhook(&api, &id).await, stored, "nothing changed");

    // Fixed and saved: the header values left masked keep what was stored.
    browser.type_into("#filter", "").await;
    browser.type_into("#rate_limit", "5").await;
    browser.select("#ordering", "none").await;
    browser.click_button("Save changes").await;
    browser
        .wait_for_path(|path| path.ends_with("?notice=updated"))
        .await;
    let saved = webhook(&api, &id).await;
    assert_eq!(saved["filter"], Value::Null);
    assert_eq!(saved["rate_limit"], 5);
    assert_eq!(saved["ordering"], "none");
    assert_eq!(saved["headers"], stored["headers"]);
    assert_eq!(saved["metadata"], stored["metadata"]);
    browser.close().await;
}

// Over plain HTTP.

#[tokio::test]
async fn the_edit_form_masks_header_values_and_keeps_those_left_masked() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let id = create_with_settings(&api).await;
    let edit = format!("/settings/webhooks/{id}/edit");
    let mut visitor = Visitor::new(&server.base_url);
    visitor.sign_in(&api.key).await;

    for path in [edit.clone(), format!("/settings/webhooks/{id}")] {
        let page = visitor.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.body.contains(MASKED_TOKEN), "{path}");
        assert!(!page.body.contains("gateway-token"), "{path}");
        assert!(page.body.contains("payments"), "{path}");
    }

    // X-Tenant retyped, Authorization left masked, the rate limit changed.
    let fields = changed_form(&[("header_value", 1, "globex"), ("rate_limit", 0, "5")]);
    visitor
        .post_from(&edit, &edit, &fields)
        .await
        .assert_redirect(&format!("/settings/webhooks/{id}?notice=updated"));
    let stored = webhook(&api, &id).await;
    assert_eq!(
        stored["headers"],
        json!({"Authorization": TOKEN, "X-Tenant": "globex"})
    );
    assert_eq!(stored["rate_limit"], 5);
    assert_eq!(stored["ordering"], "per_user", "kept as the form showed it");
    assert_eq!(stored["filter"], json!({"type": "trigger_event.created"}));
    assert_eq!(stored["metadata"], json!({"team": "payments"}));
}

#[tokio::test]
async fn refused_settings_come_back_beside_their_field_and_change_nothing() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let id = create_with_settings(&api).await;
    let before = webhook(&api, &id).await;
    let edit = format!("/settings/webhooks/{id}/edit");
    let mut visitor = Visitor::new(&server.base_url);
    visitor.sign_in(&api.key).await;

    type Case = (
        &'static [(&'static str, usize, &'static str)],
        &'static str,
        &'static str,
    );
    let cases: [Case; 11] = [
        (&[("filter", 0, "{not json")], "filter", "not valid JSON"),
        (
            &[("filter", 0, "[1]")],
            "filter",
            "a filter must be a JSON object",
        ),
        (&[("filter", 0, BAD_FILTER)], "filter", BAD_FILTER_REASON),
        (&[("rate_limit", 0, "0")], "rate_limit", "from 1 to 10000"),
        (&[("rate_limit", 0, "ten")], "rate_limit", "whole number"),
        (&[("ordering", 0, "fifo")], "ordering", "none or per user"),
        (
            &[("header_name", 2, "Host"), ("header_value", 2, "x")],
            "headers",
            "reserved",
        ),
        // A masked value under another name cannot be the stored one.
        (&[("header_name", 0, "X-Other")], "headers", "is hidden"),
        (&[("header_value", 0, "")], "headers", "1–1024 bytes"),
        (
            &[("description", 0, "a\u{7}b")],
            "description",
            "control characters",
        ),
        (&[("metadata_key", 0, "")], "metadata", "1–64 characters"),
    ];
    for (changes, field, reason) in cases {
        let answer = visitor
            .post_from(&edit, &edit, &changed_form(changes))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{changes:?}"
        );
        let marker = format!("id=\"{field}-error\"");
        let start = answer
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("{changes:?}: no {marker} in {}", answer.body));
        let beside = &answer.body[start..];
        let beside = &beside[..beside.find("</p>").unwrap_or(beside.len())];
        assert!(beside.contains(reason), "{changes:?}: {beside}");
        assert!(
            !answer.body.contains("gateway-token"),
            "{changes:?}: a refused form shows no stored value"
        );
        assert_eq!(webhook(&api, &id).await, before, "{changes:?}");
    }

    // Creating with a bad setting creates nothing.
    let answer = visitor
        .post_from(
            "/settings/webhooks/new",
            "/settings/webhooks",
            &[
                ("name", "Second"),
                ("url", "http://127.0.0.1:9/other"),
                ("events", "*"),
                ("filter", BAD_FILTER),
                ("rate_limit", "20000"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.body.contains("id=\"filter-error\""));
    assert!(answer.body.contains("id=\"rate_limit-error\""));
    assert_eq!(webhooks(&api).await.len(), 1);
}

#[tokio::test]
async fn emptied_settings_are_cleared() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let id = create_with_settings(&api).await;
    let edit = format!("/settings/webhooks/{id}/edit");
    let mut visitor = Visitor::new(&server.base_url);
    visitor.sign_in(&api.key).await;

    let fields = [
        ("name", "Orders"),
        ("url", "http://127.0.0.1:9/hook"),
        ("events", "*"),
        ("filter", ""),
        ("header_name", ""),
        ("header_value", ""),
        ("description", ""),
        ("metadata_key", ""),
        ("metadata_value", ""),
        ("rate_limit", ""),
    ];
    visitor
        .post_from(&edit, &edit, &fields)
        .await
        .assert_redirect(&format!("/settings/webhooks/{id}?notice=updated"));
    let stored = webhook(&api, &id).await;
    assert_eq!(stored["events"], json!(["*"]));
    assert_eq!(stored["filter"], Value::Null);
    assert_eq!(stored["headers"], json!({}));
    assert_eq!(stored["description"], Value::Null);
    assert_eq!(stored["metadata"], json!({}));
    assert_eq!(stored["rate_limit"], Value::Null);
}

/// A customer's own secret (moving an endpoint from another provider): on the Create form and on
/// Rotate. Deliveries verify with it (Standard Webhooks); a bad one comes back beside its field
/// and changes nothing; left empty, Reward makes one.
#[tokio::test]
async fn an_own_secret_is_taken_on_create_and_on_rotate() {
    const OWN: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ROTATED: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let mut visitor = Visitor::new(&server.base_url);
    visitor.sign_in(&api.key).await;
    let create = |secret: &'static str| {
        vec![
            ("name", "Moved"),
            ("url", receiver.url.as_str()),
            ("events", "*"),
            ("secret", secret),
        ]
    };
    let refused = visitor
        .post_from(
            "/settings/webhooks/new",
            "/settings/webhooks",
            &create("whsec_c2hvcnQ="),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("id=\"secret-error\""),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("24 to 64 bytes"));
    assert!(webhooks(&api).await.is_empty(), "nothing created");

    visitor
        .post_from("/settings/webhooks/new", "/settings/webhooks", &create(OWN))
        .await
        .assert_redirect("/settings/webhooks?notice=created");
    let id = webhooks(&api).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let stored = |api: &Api, id: &str| {
        let (api, id) = (api.clone(), id.to_owned());
        async move { api.get(&format!("/v1/webhooks/{id}/secret")).await.body["secret"].clone() }
    };
    assert_eq!(stored(&api, &id).await, OWN);
    let sent = api.send_test(&id, "trigger_event.created").await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{:?}", sent.body);
    let arrived = receiver
        .wait_for(1, std::time::Duration::from_secs(10))
        .await;
    standardwebhooks::Webhook::new(OWN)
        .expect("secret")
        .verify(&arrived[0].body, &arrived[0].headers)
        .expect("signed with the customer's own secret");

    // Rotate: a bad secret is refused beside its field, nothing rotated; a good one is taken.
    let page = format!("/settings/webhooks/{id}");
    let rotate = format!("{page}/secret/rotate");
    let refused = visitor
        .post_from(&page, &rotate, &[("secret", "not-a-secret")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("id=\"new-secret-error\""),
        "{}",
        refused.body
    );
    assert_eq!(stored(&api, &id).await, OWN);
    let rotated = visitor
        .post_from(&page, &rotate, &[("secret", ROTATED)])
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert!(rotated.body.contains(ROTATED));
    assert_eq!(stored(&api, &id).await, ROTATED);
    // Left empty, Reward makes one.
    visitor.post_from(&page, &rotate, &[("secret", "")]).await;
    let made = stored(&api, &id).await;
    assert_ne!(made, ROTATED);
    assert!(made.as_str().expect("secret").starts_with("whsec_"));
}

/// The Rotate form sent twice (a reload of the page its rotation answered, which browsers offer
/// to send again) rotates once: the second shows the secret the first made, and says so.
#[tokio::test]
async fn a_rotation_sent_again_rotates_nothing() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let created = api
        .post(
            "/v1/webhooks",
            json!({"name": "Orders", "url": receiver.url, "events": ["*"]}),
        )
        .await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let original = created.body["secret"].as_str().expect("secret").to_owned();
    let mut visitor = Visitor::new(&server.base_url);
    visitor.sign_in(&api.key).await;
    let page = visitor.get(&format!("/settings/webhooks/{id}")).await;
    let form = [
        ("csrf_token", page.csrf_token()),
        ("replaces", page.hidden("replaces")),
        ("secret", String::new()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let rotate = format!("/settings/webhooks/{id}/secret/rotate");
    let secret = |api: &Api| {
        let (api, id) = (api.clone(), id.clone());
        async move {
            api.get(&format!("/v1/webhooks/{id}/secret")).await.body["secret"]
                .as_str()
                .expect("secret")
                .to_owned()
        }
    };

    let first = visitor.post(&rotate, &form).await;
    assert_eq!(first.status, StatusCode::OK);
    let rotated = secret(&api).await;
    assert_ne!(rotated, original);
    assert!(first.body.contains(&rotated));
    assert!(first.body.contains("Secret rotated."));

    let again = visitor.post(&rotate, &form).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(secret(&api).await, rotated, "not rotated a second time");
    assert!(again.body.contains(&rotated), "the current secret is shown");
    assert!(again.body.contains("Not rotated again"), "{}", again.body);

    // A form from the page as it is now rotates again.
    let now = visitor.get(&format!("/settings/webhooks/{id}")).await;
    let fresh = now.hidden("replaces");
    assert_ne!(fresh, form[1].1);
    visitor
        .post(
            &rotate,
            &[
                ("csrf_token", &now.csrf_token()),
                ("replaces", &fresh),
                ("secret", ""),
            ],
        )
        .await;
    assert_ne!(secret(&api).await, rotated);
}
