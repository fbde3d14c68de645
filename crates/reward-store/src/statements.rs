//! Statements every backend runs as written: rules whose natural form is one query over many
//! rows, kept in the SQL both dialects read, so the rule has one text. Placeholders are `$n`:
//! PostgreSQL's own, and in SQLite named parameters that the backend binds by those names.
//! Booleans are written `TRUE`/`FALSE` and tested bare, which SQLite reads over its 0/1 integers.

/// Disables every enabled webhook whose delivery attempts have all failed for long enough
/// (`REWARD_DISABLE_AFTER`): one failed at or before `$1` (the failing-since time), none
/// succeeded (2xx) since that one, and the webhook was not changed since it either (enabling or
/// editing it restarts the clock). Sets `updated_at` to `$2` (now) and `disabled_reason` to `$3`;
/// returns the account, id and name of each webhook disabled (for `webhook.disabled`). One statement, so nodes sweeping at the same moment
/// disable each webhook once.
pub const DISABLE_FAILING_WEBHOOKS: &str =
    "UPDATE webhooks SET enabled = FALSE, disabled_reason = $3, updated_at = $2
     WHERE enabled AND EXISTS (
       SELECT 1 FROM deliveries d JOIN attempts a
         ON a.account_id = d.account_id AND a.delivery_id = d.id
       WHERE d.account_id = webhooks.account_id AND d.webhook_id = webhooks.id
         AND a.started_at <= $1 AND a.started_at >= webhooks.updated_at
         AND (a.status_code IS NULL OR a.status_code NOT BETWEEN 200 AND 299)
         AND NOT EXISTS (
           SELECT 1 FROM deliveries sd JOIN attempts s
             ON s.account_id = sd.account_id AND s.delivery_id = sd.id
           WHERE sd.account_id = webhooks.account_id AND sd.webhook_id = webhooks.id
             AND s.started_at >= a.started_at AND s.status_code BETWEEN 200 AND 299))
     RETURNING account_id, id, name";
