//! The server being measured, as the bench talks to it: through its public API only.

use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::{json, Value};

#[derive(Clone)]
pub struct Target {
    pub base_url: String,
    api_key: String,
    client: reqwest::Client,
}

/// The trigger every bench event uses: no credit rule, so each trigger event emits exactly one
/// event (`trigger_event.created`) and the counts stay exact.
pub const TRIGGER: &str = "bench";

impl Target {
    pub fn new(base_url: &str, api_key: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            client,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base_url))
            .bearer_auth(&self.api_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = reply.status();
        let text = reply.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Disables a webhook: events recorded from now on create no delivery to it.
    pub async fn disable_webhook(&self, id: &str) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            Some(json!({"enabled": false})),
        )
        .await
        .map(drop)
    }

    /// A GET of the API; its JSON answer.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn prepare(&self) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::PUT,
            &format!("/v1/triggers/{TRIGGER}"),
            Some(json!({"name": "bench", "credit_points": null})),
        )
        .await?;
        Ok(())
    }

    /// A webhook of `trigger_event.created`, with the fields of `settings` (an object, e.g. a
    /// payload `filter` or `ordering`) added.
    pub async fn create_webhook(
        &self,
        url: &str,
        enabled: bool,
        settings: &Value,
    ) -> anyhow::Result<String> {
        let mut body = json!({"name": "bench", "url": url, "events": ["trigger_event.created"],
                              "enabled": enabled});
        if let (Some(body), Some(settings)) = (body.as_object_mut(), settings.as_object()) {
            body.extend(settings.clone());
        }
        let created = self
            .call(reqwest::Method::POST, "/v1/webhooks", Some(body))
            .await?;
        Ok(created["id"].as_str().context("webhook id")?.to_owned())
    }

    pub async fn delete_webhook(&self, webhook: &str) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/v1/webhooks/{webhook}"),
            None,
        )
        .await?;
        Ok(())
    }

    /// Records one trigger event with this value; returns its id, when the request started, and
    /// when it was acknowledged.
    pub async fn record(
        &self,
        user: &str,
        value: Value,
    ) -> anyhow::Result<(String, Instant, Instant)> {
        let started = Instant::now();
        let recorded = self
            .call(
                reqwest::Method::POST,
                "/v1/trigger_events",
                Some(json!({"user_id": user, "trigger_id": TRIGGER, "value": value})),
            )
            .await?;
        let acknowledged = Instant::now();
        Ok((
            recorded["id"]
                .as_str()
                .context("trigger event id")?
                .to_owned(),
            started,
            acknowledged,
        ))
    }

    /// A plain POST, for the ceiling: the bench's client straight to the receiver.
    pub async fn raw_post(&self, url: &str) -> anyhow::Result<()> {
        let reply = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(r#"{"data":{"id":"ceiling"}}"#)
            .send()
            .await?;
        if !reply.status().is_success() {
            bail!("the receiver answered {}", reply.status());
        }
        Ok(())
    }
}
