-- Ids are TEXT COLLATE "C" as everywhere (0001_initial.sql).
-- A webhook's attempts counted per hour (UTC, ms) and latency bucket (reward_core::stats), upserted
-- once per recorded batch: statistics read these rows, never the attempts. Kept 8 days by upkeep.
CREATE TABLE IF NOT EXISTS attempt_rollups (
    account_id      TEXT COLLATE "C" NOT NULL,
    webhook_id      TEXT COLLATE "C" NOT NULL,
    hour_start      BIGINT NOT NULL,
    latency_bucket  SMALLINT NOT NULL,
    succeeded       BIGINT NOT NULL,
    failed          BIGINT NOT NULL,
    PRIMARY KEY (account_id, webhook_id, hour_start, latency_bucket)
);
CREATE INDEX IF NOT EXISTS attempt_rollups_by_age ON attempt_rollups (hour_start);

-- When each webhook's current run of failed attempts began (NULL: its last attempt succeeded).
CREATE TABLE IF NOT EXISTS webhook_failure_runs (
    account_id     TEXT COLLATE "C" NOT NULL,
    webhook_id     TEXT COLLATE "C" NOT NULL,
    failing_since  BIGINT,
    PRIMARY KEY (account_id, webhook_id)
);
