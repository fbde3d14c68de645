-- The search keys of 0015 are written and deleted by the database itself, whoever writes the
-- deliveries: a node of a release before 0015 still running while another upgrades (it inserts
-- and deletes deliveries without a word about keys), an operator's own SQL, `reward copy`.
-- Statement-level triggers over transition tables: one `INSERT ... SELECT` (or `DELETE`) per
-- statement, as a `WITH` part of each statement did before (the same measured cost).
CREATE OR REPLACE FUNCTION reward_delivery_keys_written() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery_keys (account_id, delivery_id, webhook_id, event_id, event_type)
        SELECT account_id, id, webhook_id, event_id, event_type FROM written;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION reward_delivery_keys_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM delivery_keys k USING deleted d
        WHERE k.account_id = d.account_id AND k.webhook_id = d.webhook_id
          AND k.delivery_id = d.id;
    RETURN NULL;
END $$;
-- Creating a trigger locks `deliveries` against writes until the migration commits, so the
-- deliveries written while 0015 filled the keys (by nodes still on the release before) are all
-- committed and visible to the backfill below, and every later one passes the trigger.
CREATE TRIGGER deliveries_keys_written AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION reward_delivery_keys_written();
CREATE TRIGGER deliveries_keys_deleted AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION reward_delivery_keys_deleted();
INSERT INTO delivery_keys (account_id, delivery_id, webhook_id, event_id, event_type)
    SELECT d.account_id, d.id, d.webhook_id, d.event_id, d.event_type FROM deliveries d
    WHERE NOT EXISTS (
        SELECT 1 FROM delivery_keys k
        WHERE k.account_id = d.account_id AND k.webhook_id = d.webhook_id
          AND k.delivery_id = d.id);
