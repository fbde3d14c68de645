-- What a customer may set on a webhook beyond name, URL, events and state (issue 16):
-- `filter`: the payload filter as JSON text, NULL for none; `headers`: extra request headers as a
-- JSON object sealed like `secret` ('' for none); `description`: NULL or text; `metadata`: a JSON
-- object of strings (as text, read by the server); `rate_limit`: deliveries per second, NULL for
-- no limit. `events` may now hold ["*"] (every type).
ALTER TABLE webhooks
    ADD COLUMN filter TEXT,
    ADD COLUMN headers TEXT NOT NULL DEFAULT '',
    ADD COLUMN description TEXT,
    ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}',
    ADD COLUMN rate_limit INTEGER CHECK (rate_limit BETWEEN 1 AND 10000);
