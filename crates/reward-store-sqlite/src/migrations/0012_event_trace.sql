-- Traces (issue 18): the W3C `traceparent` of the span that recorded the event, when tracing was
-- on (NULL otherwise), read with the payload when a delivery is sent, so every attempt of the
-- event joins the trace of the API request that recorded it, on any node, after any restart.
ALTER TABLE events ADD COLUMN trace_parent TEXT;
