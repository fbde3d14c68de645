-- Answers kept for the Idempotency-Key of the API's creating POSTs (webhooks, API keys, credits,
-- resends, test events; trigger events keep theirs in idempotency_keys). A row is written as a
-- reservation (status NULL) before the work and gets its answer after; `body` is sealed like a
-- webhook's secret (answers can hold one). Upkeep drops rows past 24 hours.
-- (IF NOT EXISTS: tests that step the schema back a version run later migrations again.)
CREATE TABLE IF NOT EXISTS idempotent_responses (
    account_id          TEXT COLLATE "C" NOT NULL,
    key                 TEXT COLLATE "C" NOT NULL,
    request_fingerprint TEXT NOT NULL,
    status              INTEGER,
    body                TEXT,
    created_at          BIGINT NOT NULL,
    PRIMARY KEY (account_id, key)
);
CREATE INDEX IF NOT EXISTS idempotent_responses_by_age ON idempotent_responses (created_at);
