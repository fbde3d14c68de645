-- The account-wide delivery search (`GET /v1/deliveries`, reward_store::search). Each filter alone
-- reads an index that leads with account_id and ends with id, so a page newest first (and a time
-- range, which narrows the ids) stops after its rows: a webhook by `deliveries_by_webhook`, an
-- event by `deliveries_by_event`, none by the primary key; these add the rest.
--
-- SQLite plans without statistics (the server never runs ANALYZE), and given an event's few rows
-- in (account_id, event_id) it preferred reading the whole account by the primary key, newest
-- first, to sorting them: that index now ends with id too, so it gives them in order.
DROP INDEX IF EXISTS deliveries_by_event;
CREATE INDEX IF NOT EXISTS deliveries_by_event ON deliveries (account_id, event_id, id);
CREATE INDEX IF NOT EXISTS deliveries_by_type ON deliveries (account_id, event_type, id);
-- By status: pending and failed deliveries only, each in its own small index that a delivery
-- leaves when it succeeds (as 0004 reasons, indexing every status would cost the common life of
-- a delivery, created pending and then succeeded, one more change). Succeeded ones, most of them,
-- are found by the primary key newest first.
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (account_id, id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_failed ON deliveries (account_id, id) WHERE status = 'failed';
