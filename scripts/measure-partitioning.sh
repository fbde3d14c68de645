#!/usr/bin/env bash
# What partitioning attempts by time would change for retention on PostgreSQL (issue 18 §4),
# measured on a scratch database: 1,000,000 expired attempts (of 2,000,000) purged
#   (a) as Reward does: DELETE of 2,000 rows per statement, each committed, until none is left;
#   (b) partitioned by day: DROP of the expired days' partitions;
# with pgbench inserting attempts at a steady rate meanwhile (the writers: their largest and p99
# latency during each purge, against the same load with no purge), and what reading one
# delivery's attempts costs in each layout (pgbench, selects per second).
# Usage: scripts/measure-partitioning.sh [postgres server URL without a database]
set -euo pipefail
SERVER="${1:-postgres://postgres@127.0.0.1:5432}"
DB="reward_partitioning_$$"
WORK="$(mktemp -d)"
trap 'psql -q "$SERVER/postgres" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
psql -q "$SERVER/postgres" -c "CREATE DATABASE $DB"
URL="$SERVER/$DB"
DAY=86400000

psql -q "$URL" <<SQL
CREATE TABLE plain (
    account_id text COLLATE "C" NOT NULL, delivery_id text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL, number int NOT NULL, started_at bigint NOT NULL,
    duration_ms bigint NOT NULL, status_code int, response_body text, error text,
    PRIMARY KEY (account_id, delivery_id, id));
CREATE INDEX plain_by_time ON plain (account_id, started_at);
CREATE TABLE parted (LIKE plain) PARTITION BY RANGE (started_at);
ALTER TABLE parted ADD PRIMARY KEY (account_id, delivery_id, id, started_at);
CREATE INDEX parted_by_time ON parted (account_id, started_at);
DO \$\$ BEGIN
  FOR day IN 0..31 LOOP
    EXECUTE format('CREATE TABLE parted_d%s PARTITION OF parted FOR VALUES FROM (%s) TO (%s)',
                   day, day::bigint * $DAY, (day + 1)::bigint * $DAY);
  END LOOP;
END \$\$;
-- Days 0-9 expired, days 20-29 kept: 1,000,000 rows each, 100,000 per day.
INSERT INTO plain
SELECT 'acc_1', 'del_' || n, 'att_' || n, 1,
       (CASE WHEN n < 1000000 THEN (n / 100000) ELSE 20 + (n - 1000000) / 100000 END)::bigint * $DAY
         + (n % 100000) * 800,
       120, 200, repeat('x', 200), NULL
FROM generate_series(0, 1999999) AS n;
INSERT INTO parted SELECT * FROM plain;
CREATE PROCEDURE purge_plain(before bigint) LANGUAGE plpgsql AS \$p\$
DECLARE gone int;
BEGIN
  LOOP
    DELETE FROM plain WHERE (account_id, delivery_id, id) IN (
      SELECT account_id, delivery_id, id FROM plain
      WHERE account_id = 'acc_1' AND started_at < before LIMIT 2000);
    GET DIAGNOSTICS gone = ROW_COUNT;
    COMMIT;
    EXIT WHEN gone = 0;
  END LOOP;
END \$p\$;
VACUUM ANALYZE plain; VACUUM ANALYZE parted;
SQL

# The writers: one attempt inserted per transaction, 500 a second, into the table under test.
for table in plain parted; do
  cat > "$WORK/insert_$table.sql" <<SQL
\set n random(1, 1000000000)
INSERT INTO $table VALUES ('acc_1', 'new_' || :n || '_' || :client_id, 'att_' || :n, 1,
  25::bigint * $DAY + (:n % $DAY), 120, 200, 'ok', NULL) ON CONFLICT DO NOTHING;
SQL
  cat > "$WORK/read_$table.sql" <<SQL
\set n random(1000000, 1999999)
SELECT * FROM $table WHERE account_id = 'acc_1' AND delivery_id = 'del_' || :n;
SQL
done

# Writers' latencies (ms) from pgbench's per-transaction log: p99 and max.
latencies() {
  cat "$WORK"/log_"$1".* | awk '{print $3 / 1000}' | sort -n |
    awk '{v[NR] = $1} END {i = int(NR * 0.99); if (i < 1) i = 1; printf "n=%d p99=%.1f max=%.1f", NR, v[i], v[NR]}'
}

# Runs the writers for $2 seconds on table $1 while $3 (SQL, may be empty) runs; prints figures.
measure() {
  local table="$1" seconds="$2" purge="$3" label="$4"
  local name="${label//[^a-z]/_}"
  (cd "$WORK" && pgbench -n -c 4 -j 2 -R 500 -T "$seconds" -f "insert_$table.sql" \
      --log --log-prefix="log_$name" "$URL" >"$WORK/pgbench_$name.out" 2>&1) &
  local writers=$!
  sleep 1
  if [ -n "$purge" ]; then
    local started=$(date +%s.%N)
    psql -q "$URL" -c "$purge" >/dev/null
    local ended=$(date +%s.%N)
    printf '%-34s purge %.2f s; ' "$label" "$(echo "$ended - $started" | bc)"
  else
    printf '%-34s no purge;      ' "$label"
  fi
  wait "$writers" || { cat "$WORK/pgbench_$name.out" >&2; exit 1; }
  echo "writers $(latencies "$name")"
}

echo "reading one delivery's attempts (pgbench, 2 clients, 10 s):"
for table in plain parted; do
  tps=$(pgbench -n -c 2 -j 2 -T 10 -f "$WORK/read_$table.sql" "$URL" 2>/dev/null | awk '/^tps/ {print $3; exit}')
  echo "  $table: $tps selects/s"
done
echo "purging 1,000,000 expired attempts of 2,000,000, writers at 500 inserts/s:"
measure plain 12 "" "plain, baseline"
measure plain 60 "CALL purge_plain(10 * $DAY)" "plain, chunked DELETE"
measure parted 12 "" "partitioned, baseline"
drops=$(for day in $(seq 0 9); do printf 'DROP TABLE parted_d%s; ' "$day"; done)
measure parted 12 "$drops" "partitioned, DROP partitions"
psql -qtA "$URL" -c "SELECT 'left: plain ' || (SELECT count(*) FROM plain WHERE started_at < 10 * $DAY) || ', partitioned ' || (SELECT count(*) FROM parted WHERE started_at < 10 * $DAY)"
