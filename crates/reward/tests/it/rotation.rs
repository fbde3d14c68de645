//! Secret rotation: every secret rotated out keeps signing for its own 24 hours, at most five at a
//! time, and each signature a delivery carries verifies with the Standard Webhooks library. A
//! database from before (one previous secret per webhook) migrates without losing one.

use std::time::Duration;

use reward_core::time::Timestamp;
use serde_json::json;

use crate::common::{fresh_database, Api, TestServer};
use crate::databases::stored_webhook_column;
use crate::receiver::{Received, Receiver};

const WAIT: Duration = Duration::from_secs(10);
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Rotates the webhook's secret; returns the new one, after checking that the one it replaced
/// signs for 24 hours from now.
async fn rotate(api: &Api, webhook_id: &str) -> String {
    let before = Timestamp::now();
    let rotated = api
        .post(
            &format!("/v1/webhooks/{webhook_id}/secret/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status.as_u16(), 200, "{:?}", rotated.body);
    let expires = rotated.body["previous_secret_expires_at"]
        .as_str()
        .and_then(Timestamp::parse_rfc3339)
        .expect("previous_secret_expires_at");
    let after = Timestamp::now();
    assert!(
        before.plus_millis(DAY_MS - 1000) <= expires && expires <= after.plus_millis(DAY_MS + 1000),
        "{:?}",
        rotated.body
    );
    rotated.body["secret"].as_str().expect("secret").to_owned()
}

/// Sends the webhook a test event; returns it as received, the `count`th request.
async fn test_delivery(api: &Api, webhook_id: &str, receiver: &Receiver, count: usize) -> Received {
    let sent = api.send_test(webhook_id, "trigger_event.created").await;
    assert_eq!(sent.status.as_u16(), 202, "{:?}", sent.body);
    let mut received = receiver.wait_for(count, WAIT).await;
    received.remove(count - 1)
}

fn verifies(received: &Received, secret: &str) -> bool {
    standardwebhooks::Webhook::new(secret)
        .expect("secret")
        .verify(&received.body, &received.headers)
        .is_ok()
}

fn signatures(received: &Received) -> Vec<&str> {
    received.header("webhook-signature").split(' ').collect()
}

#[tokio::test]
async fn every_secret_rotated_out_keeps_signing_five_at_most() {
    let server = TestServer::start().await;
    let api = server.account("Acme").await;
    let receiver = Receiver::start().await;
    let webhook = api.create_webhook(&receiver.url).await;
    let id = webhook["id"].as_str().expect("id");
    let mut secrets = vec![webhook["secret"].as_str().expect("secret").to_owned()];

    // Three rotations in a row: the first one's secret did not stop signing at the second.
    for _ in 0..3 {
        secrets.push(rotate(&api, id).await);
    }
    let received = test_delivery(&api, id, &receiver, 1).await;
    let signed = signatures(&received);
    assert_eq!(signed.len(), 4, "{signed:?}");
    assert!(
        signed.iter().all(|entry| entry.starts_with("v1,")),
        "{signed:?}"
    );
    for (n, secret) in secrets.iter().enumerate() {
        assert!(
            verifies(&received, secret),
            "secret {n} of 4 does not verify"
        );
    }

    // Six rotations in all: the five rotated out last sign beside the current one; the first,
    // the oldest, no longer does.
    for _ in 0..3 {
        secrets.push(rotate(&api, id).await);
    }
    let received = test_delivery(&api, id, &receiver, 2).await;
    assert_eq!(
        signatures(&received).len(),
        6,
        "{:?}",
        signatures(&received)
    );
    assert!(!verifies(&received, &secrets[0]), "the oldest still signs");
    for (n, secret) in secrets.iter().enumerate().skip(1) {
        assert!(
            verifies(&received, secret),
            "secret {n} of 7 does not verify"
        );
    }
    let shown = api.get(&format!("/v1/webhooks/{id}/secret")).await;
    assert_eq!(shown.body["secret"], secrets[6].as_str());
}

/// The database as the version before kept it: one `previous_secret` (and its expiry) per
/// webhook, and the migration that replaced them not yet applied. `previous` maps webhook ids to
/// the previous secret to store, sealed or plain. Every migration after 0004 is undone: 0005 here,
/// and the columns 0006, 0010 and 0011 added (the others make only tables and indexes, with IF
/// NOT EXISTS, so running them again is harmless).
async fn back_to_one_previous_secret(database_url: &str, previous: &[(&str, String)]) {
    let expires_at = Timestamp::now().plus_millis(3600 * 1000).as_millis();
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let connection = rusqlite::Connection::open(path).expect("open");
        connection
            .execute_batch(
                "ALTER TABLE webhooks ADD COLUMN previous_secret TEXT;
                 ALTER TABLE webhooks ADD COLUMN previous_secret_expires_at INTEGER;
                 ALTER TABLE webhooks DROP COLUMN previous_secrets;
                 ALTER TABLE webhooks DROP COLUMN filter;
                 ALTER TABLE webhooks DROP COLUMN headers;
                 ALTER TABLE webhooks DROP COLUMN description;
                 ALTER TABLE webhooks DROP COLUMN metadata;
                 ALTER TABLE webhooks DROP COLUMN rate_limit;
                 DROP INDEX webhooks_rate_next_at;
                 ALTER TABLE webhooks DROP COLUMN rate_next_at;
                 ALTER TABLE users DROP COLUMN sequence;
                 ALTER TABLE users DROP COLUMN event_position;
                 ALTER TABLE events DROP COLUMN user_id;
                 ALTER TABLE events DROP COLUMN user_position;
                 ALTER TABLE events DROP COLUMN trace_parent;
                 ALTER TABLE webhooks DROP COLUMN ordering;
                 DROP INDEX deliveries_ordered;
                 ALTER TABLE deliveries DROP COLUMN order_user;
                 ALTER TABLE deliveries DROP COLUMN order_position;
                 PRAGMA user_version = 4;",
            )
            .expect("the older schema");
        for (id, secret) in previous {
            connection
                .execute(
                    "UPDATE webhooks SET previous_secret = ?2, previous_secret_expires_at = ?3
                     WHERE id = ?1",
                    rusqlite::params![id, secret, expires_at],
                )
                .expect("a previous secret");
        }
    } else {
        let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .batch_execute(
                "ALTER TABLE webhooks ADD COLUMN previous_secret TEXT,
                     ADD COLUMN previous_secret_expires_at BIGINT, DROP COLUMN previous_secrets,
                     DROP COLUMN filter, DROP COLUMN headers, DROP COLUMN description,
                     DROP COLUMN metadata, DROP COLUMN rate_limit, DROP COLUMN rate_next_at,
                     DROP COLUMN ordering;
                 ALTER TABLE users DROP COLUMN sequence, DROP COLUMN event_position;
                 ALTER TABLE events DROP COLUMN user_id, DROP COLUMN user_position,
                     DROP COLUMN trace_parent;
                 DROP INDEX deliveries_ordered;
                 ALTER TABLE deliveries DROP COLUMN order_user, DROP COLUMN order_position;
                 DROP TRIGGER deliveries_keys_written ON deliveries;
                 DROP TRIGGER deliveries_keys_deleted ON deliveries;
                 DROP FUNCTION reward_delivery_keys_written();
                 DROP FUNCTION reward_delivery_keys_deleted();
                 DROP TABLE delivery_keys;
                 CREATE INDEX deliveries_by_webhook ON deliveries (account_id, webhook_id, id);
                 CREATE INDEX deliveries_by_event ON deliveries (account_id, event_id);
                 DELETE FROM reward_migrations WHERE version >= 5;",
            )
            .await
            .expect("the older schema");
        for (id, secret) in previous {
            client
                .execute(
                    "UPDATE webhooks SET previous_secret = $2, previous_secret_expires_at = $3
                     WHERE id = $1",
                    &[id, secret, &expires_at],
                )
                .await
                .expect("a previous secret");
        }
    }
}

/// What a webhook's `previous_secrets` column holds.
async fn stored_previous(database_url: &str, id: &str) -> String {
    stored_webhook_column(database_url, "previous_secrets", id).await
}

#[tokio::test]
async fn a_previous_secret_from_before_migrates_and_keeps_signing() {
    let (database, database_url) = fresh_database().await;
    let server = TestServer::start_on(&database_url, |_| {}).await;
    let api = server.account("Acme").await;
    let (sealed_receiver, plain_receiver) = (Receiver::start().await, Receiver::start().await);
    let sealed = api.create_webhook(&sealed_receiver.url).await;
    let sealed_id = sealed["id"].as_str().expect("id").to_owned();
    let first = sealed["secret"].as_str().expect("secret").to_owned();
    let current = rotate(&api, &sealed_id).await;
    let plain = api.create_webhook(&plain_receiver.url).await;
    let plain_id = plain["id"].as_str().expect("id").to_owned();
    let plain_current = plain["secret"].as_str().expect("secret").to_owned();
    // The rotated-out secret as the rotation stored it (sealed), and one from before secrets
    // were sealed at all.
    let stored: serde_json::Value =
        serde_json::from_str(&stored_previous(&database_url, &sealed_id).await).expect("JSON");
    let stored_first = stored[0]["secret"].as_str().expect("sealed").to_owned();
    assert!(stored_first.starts_with("enc:v1:"), "{stored}");
    let legacy = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    server.stop().await;
    back_to_one_previous_secret(
        &database_url,
        &[(&sealed_id, stored_first), (&plain_id, legacy.to_owned())],
    )
    .await;

    let server = TestServer::start_on(&database_url, |_| {}).await;
    let api = Api::new(&server.base_url, &api.key);
    let migrated = stored_previous(&database_url, &plain_id).await;
    assert!(
        !migrated.contains("whsec_") && migrated.contains("enc:v1:"),
        "the plain previous secret was not sealed: {migrated}"
    );
    let received = test_delivery(&api, &sealed_id, &sealed_receiver, 1).await;
    assert_eq!(signatures(&received).len(), 2);
    assert!(verifies(&received, &first), "the migrated previous secret");
    assert!(verifies(&received, &current));
    let received = test_delivery(&api, &plain_id, &plain_receiver, 1).await;
    assert_eq!(signatures(&received).len(), 2);
    assert!(verifies(&received, legacy), "the migrated plain secret");
    assert!(verifies(&received, &plain_current));
    // A rotation after the migration keeps both secrets rotated out.
    let next = rotate(&api, &sealed_id).await;
    let received = test_delivery(&api, &sealed_id, &sealed_receiver, 2).await;
    for secret in [&first, &current, &next] {
        assert!(verifies(&received, secret));
    }
    server.stop().await;
    drop(database);
}
