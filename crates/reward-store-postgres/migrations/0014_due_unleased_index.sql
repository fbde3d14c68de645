-- The delivery queue's due index holds only deliveries no node holds: a node writes the deliveries
-- it creates already leased to itself (pending and due), so under load `deliveries_due` was mostly
-- deliveries being attempted, and every claim (and the worker's look at when work next falls due)
-- walked all of them to find nothing. Leased deliveries are found by `deliveries_leased` instead:
-- a claim takes those whose lease ran out from there. A small index, built inside the migration's
-- transaction (an operator may build it first with CREATE INDEX CONCURRENTLY under this name).
CREATE INDEX IF NOT EXISTS deliveries_due_unleased ON deliveries (next_attempt_at)
    WHERE status = 'pending' AND lease_expires_at IS NULL;
DROP INDEX IF EXISTS deliveries_due;
