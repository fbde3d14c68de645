-- Balances that stay in sync and ordered delivery (issue 17).
--
-- users.sequence: the changes of the user's balance counted (1 for the first); each
-- `balance.credit_points_issued` carries the value its change gave. users.event_position: every
-- event about the user counted (`trigger_event.created` and balance changes): their order, which
-- an ordered webhook follows. Both move in the transaction that records the events, under the
-- user's row lock, so every node counts on one row. Users from before this migration count their
-- changes from it.
ALTER TABLE users
    ADD COLUMN sequence BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN event_position BIGINT NOT NULL DEFAULT 0;
-- An event about a user: the user and the event's position (NULL for other events), so that a
-- webhook turned to `per_user` can order the deliveries it has not started yet.
ALTER TABLE events
    ADD COLUMN user_id TEXT COLLATE "C",
    ADD COLUMN user_position BIGINT;
-- `none` (every delivery on its own) or `per_user` (one user's deliveries one at a time, in order).
ALTER TABLE webhooks
    ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'per_user'));
-- Set only on a delivery that waits its turn (its webhook orders per user): its user and its
-- event's position. A claim takes such a delivery only when no earlier one of the same webhook
-- and user is pending; this index, of ordered pending deliveries alone, answers that, and costs
-- unordered webhooks nothing.
ALTER TABLE deliveries
    ADD COLUMN order_user TEXT COLLATE "C",
    ADD COLUMN order_position BIGINT;
CREATE INDEX IF NOT EXISTS deliveries_ordered
    ON deliveries (account_id, webhook_id, order_user, order_position)
    WHERE status = 'pending' AND order_user IS NOT NULL;
