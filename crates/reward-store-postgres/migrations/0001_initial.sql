-- The schema of crates/reward-store-sqlite/src/migrations/0001_initial.sql, in PostgreSQL terms:
-- timestamps are BIGINT milliseconds since the Unix epoch, flags are BOOLEAN, and every key column
-- is TEXT COLLATE "C" so ids sort byte by byte, exactly as in SQLite (cursors and "newest first"
-- depend on it, whatever the server's default collation).
--
-- Every table holding an account's data leads its primary key and its lookup indexes with
-- account_id. That is what lets the tables be distributed by account_id (Citus) later without a
-- rewrite: see docs/scaling.md.

CREATE TABLE accounts (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    account_id      TEXT COLLATE "C" NOT NULL,
    id              TEXT COLLATE "C" NOT NULL,
    name            TEXT NOT NULL,
    key_hash        TEXT COLLATE "C" NOT NULL UNIQUE,
    display_prefix  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT,
    revoked_at      BIGINT,
    PRIMARY KEY (account_id, id)
);

CREATE TABLE webhooks (
    account_id                  TEXT COLLATE "C" NOT NULL,
    id                          TEXT COLLATE "C" NOT NULL,
    name                        TEXT NOT NULL,
    url                         TEXT NOT NULL,
    events                      TEXT NOT NULL, -- JSON array of event type names
    enabled                     BOOLEAN NOT NULL,
    disabled_reason             TEXT,
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  BIGINT,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);

CREATE TABLE events (
    account_id  TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    event_type  TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    payload     TEXT NOT NULL, -- the exact bytes sent and signed
    PRIMARY KEY (account_id, id)
);
CREATE INDEX events_by_type ON events (account_id, event_type, id);
CREATE INDEX events_by_age ON events (created_at);

CREATE TABLE deliveries (
    account_id          TEXT COLLATE "C" NOT NULL,
    id                  TEXT COLLATE "C" NOT NULL,
    webhook_id          TEXT COLLATE "C" NOT NULL,
    event_id            TEXT COLLATE "C" NOT NULL,
    event_type          TEXT COLLATE "C" NOT NULL,
    status              TEXT COLLATE "C" NOT NULL, -- pending | succeeded | failed
    attempt_count       INTEGER NOT NULL DEFAULT 0,
    -- attempts counted by the retry schedule; a recover starts a new schedule
    schedule_attempts   INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     BIGINT,
    -- set by a manual retry: attempt once now, whatever the status
    manual_attempt_at   BIGINT,
    last_status_code    INTEGER,
    -- a node's claim, on the database's clock: no other node attempts the delivery before it
    lease_expires_at    BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX deliveries_by_webhook ON deliveries (account_id, webhook_id, id);
CREATE INDEX deliveries_by_webhook_status ON deliveries (account_id, webhook_id, status, id);
CREATE INDEX deliveries_by_event ON deliveries (account_id, event_id);
-- the delivery queue: only rows a worker may still have to attempt
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_manual ON deliveries (manual_attempt_at) WHERE manual_attempt_at IS NOT NULL;
-- leases held (or left behind by a dead node): each claim counts every node's attempts in flight
-- per webhook from it, and idle workers wake when the earliest one runs out
CREATE INDEX deliveries_leased ON deliveries (lease_expires_at) INCLUDE (account_id, webhook_id)
    WHERE lease_expires_at IS NOT NULL;

CREATE TABLE attempts (
    account_id      TEXT COLLATE "C" NOT NULL,
    delivery_id     TEXT COLLATE "C" NOT NULL,
    id              TEXT COLLATE "C" NOT NULL,
    number          INTEGER NOT NULL,
    started_at      BIGINT NOT NULL,
    duration_ms     BIGINT NOT NULL,
    status_code     INTEGER,
    response_body   TEXT,
    error           TEXT,
    PRIMARY KEY (account_id, delivery_id, id)
);

CREATE TABLE triggers (
    account_id   TEXT COLLATE "C" NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    name         TEXT NOT NULL,
    rule_kind    TEXT,          -- per_unit | fixed | NULL
    rule_amount  TEXT,          -- the JSON number as given
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX triggers_by_age ON triggers (account_id, created_at, id);

CREATE TABLE trigger_events (
    account_id            TEXT COLLATE "C" NOT NULL,
    id                    TEXT COLLATE "C" NOT NULL,
    user_id               TEXT COLLATE "C" NOT NULL,
    trigger_id            TEXT COLLATE "C" NOT NULL,
    value                 TEXT, -- the JSON number as given
    credit_points_issued  BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);

CREATE TABLE users (
    account_id  TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    balance     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);

-- The primary key is what makes an Idempotency-Key safe across nodes: two requests with one key
-- cannot both insert it (see rewards.rs).
CREATE TABLE idempotency_keys (
    account_id          TEXT COLLATE "C" NOT NULL,
    key                 TEXT COLLATE "C" NOT NULL,
    request_fingerprint TEXT NOT NULL,
    trigger_event_id    TEXT COLLATE "C" NOT NULL,
    created_at          BIGINT NOT NULL,
    PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
