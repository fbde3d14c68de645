-- Nothing reads attempts by start time any more: clearing their bodies walks them in the order
-- they were recorded (the table's row ids), and the dashboard's recent success rate reads the
-- roll-ups. Every attempt recorded paid for an entry in it: the SQLite writer's work per
-- delivery, measured in docs/performance.md.
DROP INDEX IF EXISTS attempts_by_time;
