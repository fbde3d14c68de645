//! `GET /v1/webhooks/{id}/stats`: a webhook's health at a glance, a thin mapping of the store's
//! [`WebhookStats`] (read from roll-ups, so as cheap with millions of attempts as with none).

use axum::extract::{Path, State};
use axum::Json;
use reward_core::ids::WebhookId;
use reward_core::stats::StatsPeriod;
use reward_core::time::Timestamp;
use reward_store::records::{StatsBucket, WebhookStats};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult};
use super::extract::{Authenticated, QueryParams};
use super::schemas::ErrorBody;
use super::{parse_path_id, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stats))
}

/// `?period=` of the statistics.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// `24h` (default): 24 hourly buckets, the current hour (UTC) last; `7d`: 7 daily buckets,
    /// the current day (UTC) last.
    pub period: Option<StatsPeriodName>,
}

#[derive(Serialize, ToSchema)]
pub enum StatsPeriodName {
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
}

/// A webhook's delivery attempts over a period.
#[derive(Serialize, ToSchema)]
pub struct WebhookStatsView {
    #[schema(value_type = StatsPeriodName)]
    pub period: &'static str,
    /// Every bucket of the period, oldest first; zeros where nothing happened.
    pub buckets: Vec<StatsBucketView>,
    /// Succeeded ÷ attempts over the whole period (0 to 1); null when there were no attempts.
    #[schema(minimum = 0, maximum = 1)]
    pub success_rate: Option<f64>,
    /// The webhook's deliveries pending now (due, or waiting for a retry).
    pub pending: u64,
    /// When the run of failed attempts since the webhook's last successful (2xx) attempt began:
    /// the start of the first failed attempt after it (or of its first attempt ever, when none
    /// succeeded). Null when its last attempt succeeded or it has none.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub failing_since: Option<Timestamp>,
}

/// The attempts that started in one bucket (an hour or a day, UTC).
#[derive(Serialize, ToSchema)]
pub struct StatsBucketView {
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    pub attempts: u64,
    /// Answered 2xx.
    pub succeeded: u64,
    /// Any other answer, or none (timeouts, refused connections).
    pub failed: u64,
    /// Median attempt duration in ms, from log-spaced buckets: at or above the true value, by at
    /// most 19%. Null without attempts.
    pub p50_ms: Option<u64>,
    /// 99th percentile of attempt durations in ms, read the same way. Null without attempts.
    pub p99_ms: Option<u64>,
}

impl From<WebhookStats> for WebhookStatsView {
    fn from(stats: WebhookStats) -> Self {
        Self {
            period: stats.period.as_str(),
            buckets: stats
                .buckets
                .into_iter()
                .map(StatsBucketView::from)
                .collect(),
            success_rate: stats.success_rate,
            pending: stats.pending,
            failing_since: stats.failing_since,
        }
    }
}

impl From<StatsBucket> for StatsBucketView {
    fn from(bucket: StatsBucket) -> Self {
        Self {
            start: bucket.start,
            attempts: bucket.attempts,
            succeeded: bucket.succeeded,
            failed: bucket.failed,
            p50_ms: bucket.p50_ms,
            p99_ms: bucket.p99_ms,
        }
    }
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/stats", operation_id = "get_webhook_stats", tag = "Webhooks", summary = "Get a webhook's delivery statistics",
    description = "Attempts to this webhook per hour over the last 24 hours, or per day over the last 7 days (UTC buckets, the current one last): how many succeeded (2xx) and failed, and their p50 and p99 durations. Also the success rate over the period, the deliveries pending now, and since when the webhook has been failing. Counted as attempts are recorded, so reading is cheap.",
    params(("id" = String, Path, description = "The webhook id (wh_...)"), StatsParams), security(("api_key" = [])),
    responses((status = 200, description = "The webhook's statistics", body = WebhookStatsView),
        (status = 404, description = "No such webhook", body = ErrorBody),
        (status = 422, description = "A period other than 24h or 7d; `field` is `period`", body = ErrorBody)))]
async fn stats(
    State(state): State<AppState>,
    Authenticated(account): Authenticated,
    Path(id): Path<String>,
    query: QueryParams,
) -> ApiResult<Json<WebhookStatsView>> {
    let id = parse_path_id(&id, WebhookId::parse, "webhook")?;
    let period = match query.get("period") {
        None => StatsPeriod::Day,
        Some(text) => StatsPeriod::parse(text)
            .ok_or_else(|| ApiError::invalid("period", "period must be 24h or 7d."))?,
    };
    let stats = state
        .store
        .webhook_stats(&account, &id, period, Timestamp::now())
        .await
        .map_err(ApiError::from_store("webhook"))?;
    Ok(Json(stats.into()))
}
