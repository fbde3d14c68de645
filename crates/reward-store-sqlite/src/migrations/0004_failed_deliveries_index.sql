-- Only recovering a webhook's failed deliveries reads the index of deliveries by webhook and
-- status (listing goes by `deliveries_by_webhook`, newest first). Indexing every status made the
-- common life of a delivery, created pending and then succeeded, cost three changes to it; an
-- index of failed deliveries alone is left untouched by it.
DROP INDEX deliveries_by_webhook_status;
CREATE INDEX deliveries_failed_by_webhook ON deliveries (account_id, webhook_id, id)
    WHERE status = 'failed';
