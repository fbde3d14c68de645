-- Webhooks deleted whose deliveries are still being removed, a chunk per transaction (one
-- transaction for a million deliveries would hold every page it touches in memory). A row goes
-- with the last chunk; one left behind by a crash is finished by the upkeep's purge.
CREATE TABLE webhook_deletions (
    account_id  TEXT NOT NULL,
    webhook_id  TEXT NOT NULL,
    PRIMARY KEY (account_id, webhook_id)
);
