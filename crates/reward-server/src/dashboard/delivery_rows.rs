//! Deliveries with their attempts as the pages list them: the webhook's page and the account-wide
//! search show the same rows (template `delivery_attempts.html` draws the attempts).

use reward_core::ids::AccountId;
use reward_store::records::{Attempt, Delivery, DeliveryStatus, DeliveryWithAttempts};
use reward_store::StoreError;

use super::page::{PageResult, Time};
use crate::state::AppState;

pub struct AttemptRow {
    pub number: u32,
    pub started: Time,
    pub status_code: String,
    pub duration: String,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

impl From<Attempt> for AttemptRow {
    fn from(attempt: Attempt) -> Self {
        Self {
            number: attempt.number,
            started: attempt.started_at.into(),
            status_code: attempt
                .status_code
                .map_or_else(|| "—".to_owned(), |code| code.to_string()),
            duration: format!("{} ms", attempt.duration_ms),
            response_body: attempt.response_body.filter(|body| !body.is_empty()),
            error: attempt.error,
        }
    }
}

pub struct DeliveryRow {
    pub id: String,
    /// The webhook it goes to: the search lists several webhooks' deliveries.
    pub webhook_id: String,
    pub event_type: &'static str,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    pub last_status_code: String,
    pub created: Time,
    pub next_attempt: Option<Time>,
    pub attempts: Vec<AttemptRow>,
}

impl DeliveryRow {
    pub fn status_name(&self) -> &'static str {
        self.status.as_str()
    }

    pub fn status_label(&self) -> &'static str {
        match self.status {
            DeliveryStatus::Pending => "Pending",
            DeliveryStatus::Succeeded => "Succeeded",
            DeliveryStatus::Failed => "Failed",
        }
    }

    /// Attempts are shown open unless the delivery succeeded: failures are what one looks for.
    pub fn attempts_open(&self) -> bool {
        self.status != DeliveryStatus::Succeeded
    }
}

impl From<DeliveryWithAttempts> for DeliveryRow {
    fn from(found: DeliveryWithAttempts) -> Self {
        let delivery = found.delivery;
        Self {
            id: delivery.id.to_string(),
            webhook_id: delivery.webhook_id.to_string(),
            event_type: delivery.event_type.as_str(),
            status: delivery.status,
            attempt_count: delivery.attempt_count,
            last_status_code: delivery
                .last_status_code
                .map_or_else(|| "—".to_owned(), |code| code.to_string()),
            created: delivery.created_at.into(),
            next_attempt: match delivery.status {
                DeliveryStatus::Pending => delivery.next_attempt_at.map(Time::from),
                _ => None,
            },
            attempts: found.attempts.into_iter().map(AttemptRow::from).collect(),
        }
    }
}

/// A listed page of deliveries as rows, each read again with its attempts.
pub async fn delivery_rows(
    state: &AppState,
    account: &AccountId,
    deliveries: &[Delivery],
) -> PageResult<Vec<DeliveryRow>> {
    let mut rows = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        match state.store.get_delivery(account, &delivery.id).await {
            Ok(found) => rows.push(DeliveryRow::from(found)),
            // Deleted or purged between the two reads: it is simply no longer listed.
            Err(StoreError::NotFound) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(rows)
}
