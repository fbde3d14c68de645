-- What a customer may set on a webhook beyond name, URL, events and state (issue 16):
-- `filter`: the payload filter as JSON, NULL for none; `headers`: extra request headers as a JSON
-- object sealed like `secret` ('' for none); `description`: NULL or text; `metadata`: a JSON
-- object of strings; `rate_limit`: deliveries per second, NULL for no limit. `events` may now
-- hold ["*"] (every type).
ALTER TABLE webhooks ADD COLUMN filter TEXT;
ALTER TABLE webhooks ADD COLUMN headers TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN description TEXT;
ALTER TABLE webhooks ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE webhooks ADD COLUMN rate_limit INTEGER;
