-- The account-wide delivery search (`GET /v1/deliveries`, reward_store::search). Each filter alone
-- reads an index that leads with account_id and ends with id, so a page newest first (and a time
-- range, which narrows the ids) stops after its rows: a webhook by `deliveries_by_webhook`, an
-- event by `deliveries_by_event` (a few rows), none by the primary key; these add the rest.
--
-- Built inside the migration's transaction, which holds writes to deliveries while each index
-- is built; on a large table an operator can build them first with CREATE INDEX
-- CONCURRENTLY under these names, and the migration then leaves them be (docs/scaling.md).
CREATE INDEX IF NOT EXISTS deliveries_by_type ON deliveries (account_id, event_type, id);
-- By status: pending and failed deliveries only (as 0003 reasons, an update to a succeeded row adds
-- no entry to an index whose predicate it fails). Succeeded ones, most of them, are found by the
-- primary key newest first.
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (account_id, id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_failed ON deliveries (account_id, id) WHERE status = 'failed';
