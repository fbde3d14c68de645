//! Sessions, CSRF and the API keys page over plain HTTP: what a browser hides (redirects,
//! cookies, forged forms) is asserted directly.

use reqwest::StatusCode;
use serde_json::json;

use super::visitor::Visitor;
use super::webhooks;
use crate::common::{Api, TestServer};

/// A mistyped dashboard address gets the dashboard's own "Not found" page (HTML, with the
/// pages' headers), not the API's JSON; an unknown API route keeps its JSON.
#[tokio::test]
async fn a_mistyped_dashboard_address_gets_a_page() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    for path in ["/settings/nope", "/settings/webhooks/x/y/z"] {
        let answer = client
            .get(format!("{}{path}", server.base_url))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
        let kind = answer.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert!(kind.starts_with("text/html"), "{path}: {kind}");
        assert!(
            answer.headers().contains_key("content-security-policy"),
            "{path}"
        );
        let body = answer.text().await.expect("body");
        assert!(body.contains("Not found"), "{path}: {body}");
    }
    let api_route = client
        .get(format!("{}/v1/nope", server.base_url))
        .send()
        .await
        .expect("answer");
    assert_eq!(api_route.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = api_route.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn pages_need_a_session() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let id = api.create_webhook("http://127.0.0.1:9/hook").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut visitor = Visitor::new(&server.base_url);
    for path in [
        "/settings".to_owned(),
        "/settings/webhooks".to_owned(),
        "/settings/webhooks/new".to_owned(),
        "/settings/api-keys".to_owned(),
        format!("/settings/webhooks/{id}"),
        format!("/settings/webhooks/{id}/delete"),
    ] {
        let answer = visitor.get(&path).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            matches!(
                answer.location.as_deref(),
                Some("/") | Some("/settings/webhooks")
            ),
            "{path} → {:?}",
            answer.location
        );
        assert!(!answer.body.contains(&id), "{path}");
    }
    visitor.get("/settings/webhooks").await.assert_redirect("/");

    // Forms too: nothing happens without a session, even with a token-shaped field.
    let posted = visitor
        .post(
            &format!("/settings/webhooks/{id}/delete"),
            &[("csrf_token", "0".repeat(64).as_str())],
        )
        .await;
    posted.assert_redirect("/");
    assert_eq!(webhooks(&api).await.len(), 1);

    // A made-up session cookie is no session, and is cleared.
    visitor.set_cookie("reward_session", "forged");
    let answer = visitor.get("/settings/webhooks").await;
    answer.assert_redirect("/");
    assert!(answer
        .cookie("reward_session")
        .is_some_and(|cookie| cookie.contains("Max-Age=0")));

    // The API's JSON 404 still answers unknown /v1 paths; the dashboard's own 404 is a page.
    let unknown = api.get("/v1/nothing_here").await;
    unknown.assert_error(404, "not_found", None);
    visitor.sign_in(&api.key).await;
    let missing = visitor
        .get("/settings/webhooks/wh_00000000000000000000000000")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("No such webhook"), "{}", missing.body);
}

#[tokio::test]
async fn sign_in_sets_a_strict_session_cookie_and_sign_out_ends_it() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let mut visitor = Visitor::new(&server.base_url);

    // A wrong key is refused on the form.
    let wrong = visitor.sign_in("rwd_not-a-key").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("This API key is not valid"),
        "{}",
        wrong.body
    );
    assert!(wrong.cookie("reward_session").is_none());

    // The sign-in form has its own CSRF token: without it nothing is signed in.
    let mut stranger = Visitor::new(&server.base_url);
    let forged = stranger.post("/sign-in", &[("api_key", &api.key)]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.cookie("reward_session").is_none());

    let signed_in = visitor.sign_in(&api.key).await;
    signed_in.assert_redirect("/settings/webhooks");
    let cookie = signed_in.cookie("reward_session").expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let token = visitor.cookie("reward_session").expect("kept").to_owned();
    assert!(token.len() >= 43, "a long random token: {token}");
    let page = visitor.get("/settings/webhooks").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Acme"), "the account's name shows");
    visitor.get("/").await.assert_redirect("/settings/webhooks");

    // Signing out needs the token too, then ends the session for good.
    let refused = visitor.post("/sign-out", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = visitor
        .post_from("/settings/webhooks", "/sign-out", &[])
        .await;
    out.assert_redirect("/?notice=signed_out");
    assert!(out
        .cookie("reward_session")
        .is_some_and(|cookie| cookie.contains("Max-Age=0")));
    assert!(visitor
        .get("/?notice=signed_out")
        .await
        .body
        .contains("You are signed out"));
    let mut replay = Visitor::new(&server.base_url);
    replay.set_cookie("reward_session", &token);
    replay.get("/settings/webhooks").await.assert_redirect("/");
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let mut visitor = Visitor::new(&server.base_url);
    visitor.sign_in(&api.key).await;
    let fields = [
        ("name", "Orders"),
        ("url", "http://127.0.0.1:9/hook"),
        ("events", "trigger_event.created"),
    ];

    let missing = visitor.post("/settings/webhooks", &fields).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert!(
        missing.body.contains("This form could not be accepted"),
        "{}",
        missing.body
    );
    let mut forged = fields.to_vec();
    forged.push(("csrf_token", "0123456789abcdef"));
    let wrong = visitor.post("/settings/webhooks", &forged).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(webhooks(&api).await.is_empty(), "nothing was created");

    // Another session's token is no good either.
    let mut other = Visitor::new(&server.base_url);
    other.sign_in(&api.key).await;
    let theirs = other.get("/settings/webhooks").await.csrf_token();
    let mut borrowed = fields.to_vec();
    borrowed.push(("csrf_token", &theirs));
    let refused = visitor.post("/settings/webhooks", &borrowed).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(webhooks(&api).await.is_empty());

    // With its own token the same form works.
    let created = visitor
        .post_from("/settings/webhooks/new", "/settings/webhooks", &fields)
        .await;
    created.assert_redirect("/settings/webhooks?notice=created");
    let id = webhooks(&api).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Every action form is checked, e.g. delete.
    let delete = visitor
        .post(&format!("/settings/webhooks/{id}/delete"), &[])
        .await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);
    assert_eq!(webhooks(&api).await.len(), 1);
}

#[tokio::test]
async fn the_api_keys_page_creates_lists_and_revokes_keys() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let mut visitor = Visitor::new(&server.base_url);
    visitor.sign_in(&api.key).await;

    // A refused name keeps the page, with the error beside the field.
    let refused = visitor
        .post_from("/settings/api-keys", "/settings/api-keys", &[("name", " ")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("key-name-error"));

    // Created: shown once, in this answer only.
    let created = visitor
        .post_from(
            "/settings/api-keys",
            "/settings/api-keys",
            &[("name", "CI")],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let marker = "id=\"new-key\">";
    let start = created.body.find(marker).expect("the new key") + marker.len();
    let key = created.body[start..start + 47].to_owned();
    assert!(key.starts_with("rwd_"), "{key}");
    let ci = Api::new(&server.base_url, &key);
    assert_eq!(ci.get("/v1/webhooks").await.status, StatusCode::OK);
    let listed = visitor.get("/settings/api-keys").await;
    assert!(!listed.body.contains(&key), "never shown again");
    assert!(listed.body.contains(&key[..12]), "its prefix is listed");
    let keys = api.get("/v1/api_keys").await.body["data"].clone();
    let ci_id = keys
        .as_array()
        .expect("keys")
        .iter()
        .find(|entry| entry["name"] == "CI")
        .expect("listed by the API")["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Revoked: it stops working.
    let revoked = visitor
        .post_from(
            "/settings/api-keys",
            &format!("/settings/api-keys/{ci_id}/revoke"),
            &[],
        )
        .await;
    revoked.assert_redirect("/settings/api-keys?notice=key_revoked");
    ci.get("/v1/webhooks")
        .await
        .assert_error(401, "unauthorized", None);
}

#[tokio::test]
async fn the_api_keys_page_refuses_a_key_past_the_limit() {
    let server = TestServer::start_with(|config| config.rate_limit = 0).await;
    let api = server.account("Acme").await;
    for n in 1..100 {
        let reply = api
            .post("/v1/api_keys", json!({"name": format!("ci-{n}")}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }
    let mut visitor = Visitor::new(&server.base_url);
    visitor.sign_in(&api.key).await;
    let refused = visitor
        .post_from(
            "/settings/api-keys",
            "/settings/api-keys",
            &[("name", "One more")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("key-name-error"));
    assert!(refused.body.contains("at most 100 live API keys"));
    assert!(!refused.body.contains("id=\"new-key\""), "no key shown");
    let keys = api.get("/v1/api_keys").await.body["data"].clone();
    assert_eq!(keys.as_array().map(Vec::len), Some(100));
}

#[tokio::test]
async fn revoking_a_key_ends_its_sessions_and_it_cannot_sign_in_again() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let mut visitor = Visitor::new(&server.base_url);
    visitor.sign_in(&api.key).await;
    let mut elsewhere = Visitor::new(&server.base_url);
    elsewhere.sign_in(&api.key).await;
    let own = api.get("/v1/api_keys").await.body["data"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let revoked = visitor
        .post_from(
            "/settings/api-keys",
            &format!("/settings/api-keys/{own}/revoke"),
            &[],
        )
        .await;
    revoked.assert_redirect("/");
    visitor.get("/settings/webhooks").await.assert_redirect("/");
    elsewhere
        .get("/settings/webhooks")
        .await
        .assert_redirect("/");

    let again = visitor.sign_in(&api.key).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(
        again.body.contains("It may have been revoked"),
        "{}",
        again.body
    );
}
