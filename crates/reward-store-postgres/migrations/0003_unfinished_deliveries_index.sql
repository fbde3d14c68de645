-- Deliveries by webhook and status are listed for pending and failed ones (succeeded ones, most
-- of them, are listed through `deliveries_by_webhook`). Indexing succeeded deliveries too cost
-- every delivery one more index entry when its success was recorded (that update cannot be HOT:
-- its status is indexed); a delivery that succeeds now leaves this index.
DROP INDEX deliveries_by_webhook_status;
CREATE INDEX deliveries_unfinished_by_webhook ON deliveries (account_id, webhook_id, status, id)
    WHERE status <> 'succeeded';
