-- Rate limits (issue 16): a rate-limited webhook's next free start slot, in microseconds since
-- the epoch on the database's clock (NULL: none granted yet). Claims grant start slots from it
-- and move it forward in the same transaction, holding the webhook's row: every node shares it.
-- The partial index finds the earliest one to wake a worker for.
ALTER TABLE webhooks ADD COLUMN rate_next_at BIGINT;
CREATE INDEX webhooks_rate_next_at ON webhooks (rate_next_at) WHERE rate_next_at IS NOT NULL;
