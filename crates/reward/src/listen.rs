//! `reward listen`: a local receiver for developers. It verifies each POST like a production
//! receiver should (Standard Webhooks signature, 5-minute timestamp tolerance, constant-time
//! comparison), prints the event readably, and answers 204 — or 400 with the reason.

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use reward_core::signing::{verify_request, WebhookSecret};
use reward_core::time::Timestamp;
use tokio::net::TcpListener;

use crate::cli::ListenArgs;

pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    let secret =
        WebhookSecret::parse(&args.secret).map_err(|error| anyhow::anyhow!("--secret: {error}"))?;
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("--port: cannot listen on 127.0.0.1:{}", args.port))?;
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    println!("Listening on http://{address}/ for signed webhooks (ctrl-c to stop)");
    let app = Router::new()
        .route("/", post(receive))
        .route("/{*path}", post(receive))
        .with_state(secret);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
    Ok(())
}

async fn receive(
    State(secret): State<WebhookSecret>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let verified = verify_request(
        &secret,
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        &body,
        Timestamp::now().as_unix_seconds(),
    );
    match verified {
        Ok(()) => {
            println!("{}", describe(&body));
            (StatusCode::NO_CONTENT, String::new())
        }
        Err(reason) => {
            println!(
                "rejected {}: {reason}",
                header("webhook-id").unwrap_or("(no webhook-id)")
            );
            (StatusCode::BAD_REQUEST, format!("{reason}\n"))
        }
    }
}

/// `✓ we_… trigger_event.created at 2024-…` followed by the pretty-printed payload.
fn describe(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(event) => {
            let pretty = serde_json::to_string_pretty(&event).unwrap_or_default();
            format!(
                "verified {} {} at {}\n{pretty}",
                event["id"].as_str().unwrap_or("?"),
                event["type"].as_str().unwrap_or("?"),
                event["time"].as_str().unwrap_or("?"),
            )
        }
        Err(_) => format!(
            "verified (body is not JSON): {}",
            String::from_utf8_lossy(body)
        ),
    }
}
