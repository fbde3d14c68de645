-- Retention walks the events in the order they were written (the table's row ids, which follow
-- their creation time), so the index of their age is no longer read. Every event written paid
-- for an entry in it: the SQLite writer's work per event, measured in docs/performance.md.
DROP INDEX IF EXISTS events_by_age;
