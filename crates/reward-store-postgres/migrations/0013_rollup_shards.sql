-- Each node counts its recorded attempts in roll-up rows of its own (`shard`, picked at random
-- when the node starts): nodes recording the same webhook's attempts at once no longer wait for
-- each other's row locks and commits. Statistics add the shards up. Rows written before, and rows
-- copied in by `reward copy`, are shard 0.
ALTER TABLE attempt_rollups ADD COLUMN IF NOT EXISTS shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE attempt_rollups DROP CONSTRAINT attempt_rollups_pkey;
ALTER TABLE attempt_rollups
    ADD PRIMARY KEY (account_id, webhook_id, hour_start, latency_bucket, shard);
