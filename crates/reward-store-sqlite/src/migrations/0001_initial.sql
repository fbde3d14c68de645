-- Every table holding an account's data leads its primary key and its lookup indexes with
-- account_id, so the schema can later be distributed by account without a rewrite.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    account_id      TEXT NOT NULL,
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    key_hash        TEXT NOT NULL UNIQUE,
    display_prefix  TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    revoked_at      INTEGER,
    PRIMARY KEY (account_id, id)
);

CREATE TABLE webhooks (
    account_id                  TEXT NOT NULL,
    id                          TEXT NOT NULL,
    name                        TEXT NOT NULL,
    url                         TEXT NOT NULL,
    events                      TEXT NOT NULL, -- JSON array of event type names
    enabled                     INTEGER NOT NULL,
    disabled_reason             TEXT,
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  INTEGER,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
);

CREATE TABLE events (
    account_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    payload     TEXT NOT NULL, -- the exact bytes sent and signed
    PRIMARY KEY (account_id, id)
);
CREATE INDEX events_by_type ON events (account_id, event_type, id);
CREATE INDEX events_by_age ON events (created_at);

CREATE TABLE deliveries (
    account_id          TEXT NOT NULL,
    id                  TEXT NOT NULL,
    webhook_id          TEXT NOT NULL,
    event_id            TEXT NOT NULL,
    event_type          TEXT NOT NULL,
    status              TEXT NOT NULL, -- pending | succeeded | failed
    attempt_count       INTEGER NOT NULL DEFAULT 0,
    -- attempts counted by the retry schedule; a recover starts a new schedule
    schedule_attempts   INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     INTEGER,
    -- set by a manual retry: attempt once now, whatever the status
    manual_attempt_at   INTEGER,
    last_status_code    INTEGER,
    -- a worker's claim: no other worker attempts the delivery before it expires
    lease_expires_at    INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX deliveries_by_webhook ON deliveries (account_id, webhook_id, id);
CREATE INDEX deliveries_by_webhook_status ON deliveries (account_id, webhook_id, status, id);
CREATE INDEX deliveries_by_event ON deliveries (account_id, event_id);
-- the delivery queue: only rows a worker may still have to attempt
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_manual ON deliveries (manual_attempt_at) WHERE manual_attempt_at IS NOT NULL;

CREATE TABLE attempts (
    account_id      TEXT NOT NULL,
    delivery_id     TEXT NOT NULL,
    id              TEXT NOT NULL,
    number          INTEGER NOT NULL,
    started_at      INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL,
    status_code     INTEGER,
    response_body   TEXT,
    error           TEXT,
    PRIMARY KEY (account_id, delivery_id, id)
);

CREATE TABLE triggers (
    account_id   TEXT NOT NULL,
    id           TEXT NOT NULL,
    name         TEXT NOT NULL,
    rule_kind    TEXT,          -- per_unit | fixed | NULL
    rule_amount  TEXT,          -- the JSON number as given
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX triggers_by_age ON triggers (account_id, created_at, id);

CREATE TABLE trigger_events (
    account_id            TEXT NOT NULL,
    id                    TEXT NOT NULL,
    user_id               TEXT NOT NULL,
    trigger_id            TEXT NOT NULL,
    value                 TEXT, -- the JSON number as given
    credit_points_issued  INTEGER NOT NULL,
    created_at            INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
);

CREATE TABLE users (
    account_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    balance     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
);

CREATE TABLE idempotency_keys (
    account_id          TEXT NOT NULL,
    key                 TEXT NOT NULL,
    request_fingerprint TEXT NOT NULL,
    trigger_event_id    TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
