#!/usr/bin/env python3
"""What recording attempts would cost PostgreSQL with a delivery's mutable state in a table of
its own (docs/scaling.md, "A delivery's state in a narrow table"). Nothing of Reward runs: the
statements are shaped as the store's (rows from `generate_series` instead of `unnest`).

Three schemas, in a scratch database:
  one   `deliveries` as migration 0014 leaves it: every index on one table, so each recorded
        attempt (status, lease and due time change; none of its updates is HOT) writes a new
        entry into every full index: the primary key, by event, by type, by webhook.
  split the columns a delivery never changes (webhook, event, type, creation, order) with those
        full indexes, and its state (status, counts, due and lease times) with the primary key
        and the queue's and the search's partial indexes; an attempt updates the state alone.
  keys  `deliveries` whole, less its three full search indexes, which index instead a table of
        each delivery's search keys (webhook, event, type) that is never updated: the statements
        reading a delivery's state stay as they are; those finding deliveries by webhook, event
        or type join the keys.

Each run inserts ROWS pending, leased deliveries in statements of 200 (one transaction each, as
a trigger-event batch), then records one succeeded attempt for each in statements of 100 (as the
worker's batch: the update and the attempts' insert in one statement). Runs alternate; prints
each run's milliseconds per phase and WAL, then the medians.

    scripts/delivery-state-cost.py [ROWS] [RUNS]     # 100,000 and 3 by default
    (PostgreSQL at 127.0.0.1:5432, user postgres; creates and drops the database state_cost)
"""

import re
import statistics
import subprocess
import sys

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
DATABASE = "state_cost"
CONNECT = ["-h", "127.0.0.1", "-U", "postgres"]
NOW = 1_764_000_000_000

TEXT = 'text COLLATE "C"'
FULL_INDEXES = """
CREATE INDEX ON {t} (account_id, event_id);
CREATE INDEX ON {t} (account_id, event_type, id);
CREATE INDEX ON {t} (account_id, webhook_id, id);"""
STATE_INDEXES = """
CREATE INDEX ON {t} (next_attempt_at) WHERE status = 'pending' AND lease_expires_at IS NULL;
CREATE INDEX ON {t} (account_id, id) WHERE status = 'failed';
CREATE INDEX ON {t} (lease_expires_at) INCLUDE (account_id, webhook_id)
    WHERE lease_expires_at IS NOT NULL;
CREATE INDEX ON {t} (manual_attempt_at) WHERE manual_attempt_at IS NOT NULL;
CREATE INDEX ON {t} (account_id, webhook_id, order_user, order_position)
    WHERE status = 'pending' AND order_user IS NOT NULL;
CREATE INDEX ON {t} (account_id, id) WHERE status = 'pending';
CREATE INDEX ON {t} (account_id, webhook_id, status, id) WHERE status <> 'succeeded';"""
STATE_COLUMNS = f"""status {TEXT} NOT NULL, attempt_count int NOT NULL DEFAULT 0,
    schedule_attempts int NOT NULL DEFAULT 0, next_attempt_at bigint, manual_attempt_at bigint,
    last_status_code int, lease_expires_at bigint, updated_at bigint NOT NULL"""
ATTEMPTS = f"""
CREATE TABLE attempts (account_id {TEXT} NOT NULL, delivery_id {TEXT} NOT NULL, id {TEXT} NOT NULL,
    number int NOT NULL, started_at bigint NOT NULL, duration_ms bigint NOT NULL,
    status_code int, response_body text, error text, PRIMARY KEY (account_id, delivery_id, id));
CREATE INDEX ON attempts (account_id, started_at);"""

SCHEMAS = {
    "one": f"""
CREATE TABLE deliveries (account_id {TEXT} NOT NULL, id {TEXT} NOT NULL,
    webhook_id {TEXT} NOT NULL, event_id {TEXT} NOT NULL, event_type {TEXT} NOT NULL,
    {STATE_COLUMNS}, created_at bigint NOT NULL, order_user {TEXT}, order_position bigint,
    PRIMARY KEY (account_id, id));"""
    + FULL_INDEXES.format(t="deliveries")
    + STATE_INDEXES.format(t="deliveries")
    + ATTEMPTS,
    "split": f"""
CREATE TABLE deliveries (account_id {TEXT} NOT NULL, id {TEXT} NOT NULL,
    webhook_id {TEXT} NOT NULL, event_id {TEXT} NOT NULL, event_type {TEXT} NOT NULL,
    created_at bigint NOT NULL, order_user {TEXT}, order_position bigint,
    PRIMARY KEY (account_id, id));
CREATE TABLE delivery_states (account_id {TEXT} NOT NULL, id {TEXT} NOT NULL,
    webhook_id {TEXT} NOT NULL, {STATE_COLUMNS}, order_user {TEXT}, order_position bigint,
    PRIMARY KEY (account_id, id));"""
    + FULL_INDEXES.format(t="deliveries")
    + STATE_INDEXES.format(t="delivery_states")
    + ATTEMPTS,
    "keys": f"""
CREATE TABLE deliveries (account_id {TEXT} NOT NULL, id {TEXT} NOT NULL,
    webhook_id {TEXT} NOT NULL, event_id {TEXT} NOT NULL, event_type {TEXT} NOT NULL,
    {STATE_COLUMNS}, created_at bigint NOT NULL, order_user {TEXT}, order_position bigint,
    PRIMARY KEY (account_id, id));
CREATE TABLE delivery_keys (account_id {TEXT} NOT NULL, id {TEXT} NOT NULL,
    webhook_id {TEXT} NOT NULL, event_id {TEXT} NOT NULL, event_type {TEXT} NOT NULL);"""
    + FULL_INDEXES.format(t="delivery_keys")
    + STATE_INDEXES.format(t="deliveries")
    + ATTEMPTS,
}


def new_rows(first, last):
    return (
        "SELECT 'acc_a', 'dl_' || lpad(g::text, 26, '0'), 'wh_' || lpad((g % 10)::text, 26, '0'),"
        " 'ev_' || lpad((g / 10)::text, 26, '0'), CASE WHEN g % 3 = 0 THEN"
        " 'balance.credit_points_issued' ELSE 'trigger_event.created' END,"
        f" {NOW} + g FROM generate_series({first}, {last}) g"
    )


def insert(schema, first, last):
    rows = new_rows(first, last)
    if schema == "keys":
        return (
            f"WITH x(a, i, w, e, t, n) AS ({rows}), keys AS ("
            "INSERT INTO delivery_keys (account_id, id, webhook_id, event_id, event_type)"
            " SELECT a, i, w, e, t FROM x)"
            " INSERT INTO deliveries (account_id, id, webhook_id, event_id, event_type, status,"
            " next_attempt_at, lease_expires_at, created_at, updated_at)"
            f" SELECT a, i, w, e, t, 'pending', {NOW}, {NOW + 30_000}, n, n FROM x;"
        )
    if schema == "one":
        return (
            "INSERT INTO deliveries (account_id, id, webhook_id, event_id, event_type, status,"
            " next_attempt_at, lease_expires_at, created_at, updated_at)"
            f" SELECT a, i, w, e, t, 'pending', {NOW}, {NOW + 30_000}, n, n"
            f" FROM ({rows}) x(a, i, w, e, t, n);"
        )
    return (
        f"WITH x(a, i, w, e, t, n) AS ({rows}), immutable AS ("
        "INSERT INTO deliveries (account_id, id, webhook_id, event_id, event_type, created_at)"
        " SELECT a, i, w, e, t, n FROM x)"
        " INSERT INTO delivery_states (account_id, id, webhook_id, status, next_attempt_at,"
        f" lease_expires_at, updated_at) SELECT a, i, w, 'pending', {NOW}, {NOW + 30_000}, n FROM x;"
    )


def record(schema, first, last):
    table = "delivery_states" if schema == "split" else "deliveries"
    ids = f"SELECT 'dl_' || lpad(g::text, 26, '0') FROM generate_series({first}, {last}) g"
    return (
        f"WITH done AS (UPDATE {table} SET status = 'succeeded', attempt_count = attempt_count + 1,"
        " schedule_attempts = schedule_attempts + 1, last_status_code = 204,"
        f" manual_attempt_at = NULL, lease_expires_at = NULL, updated_at = {NOW + 5},"
        f" next_attempt_at = NULL WHERE account_id = 'acc_a' AND id IN ({ids}) RETURNING id)"
        " INSERT INTO attempts (account_id, delivery_id, id, number, started_at, duration_ms,"
        f" status_code) SELECT 'acc_a', id, 'at_' || id, 1, {NOW}, 3, 204 FROM done;"
    )


def psql(sql, database=DATABASE):
    done = subprocess.run(
        ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", *CONNECT, database],
        input=sql, capture_output=True, text=True, check=True,
    )
    return done.stdout


def run(schema):
    subprocess.run(["dropdb", *CONNECT, "--if-exists", DATABASE], check=True)
    subprocess.run(["createdb", *CONNECT, DATABASE], check=True)
    psql(SCHEMAS[schema])
    lines = ["\\timing on", "SELECT pg_current_wal_lsn();"]
    lines += [insert(schema, s, min(s + 200, ROWS) - 1) for s in range(0, ROWS, 200)]
    lines.append("SELECT 'recording';")
    lines += [record(schema, s, min(s + 100, ROWS) - 1) for s in range(0, ROWS, 100)]
    lines.append("SELECT pg_current_wal_lsn();")
    output = psql("\n".join(lines))
    inserted = recorded = 0.0
    phase = "insert"
    lsns = []
    for line in output.splitlines():
        if line == "recording":
            phase = "record"
        elif re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", line):
            lsns.append(line)
        elif line.startswith("Time: ") and len(lsns) == 1:
            ms = float(line.split()[1])
            if phase == "insert":
                inserted += ms
            else:
                recorded += ms
    wal = psql(f"SELECT pg_wal_lsn_diff('{lsns[1]}', '{lsns[0]}')::bigint / 1000000;")
    return inserted, recorded, int(wal)


def main():
    results = {"one": [], "split": [], "keys": []}
    for _ in range(RUNS):
        for schema in results:
            figures = run(schema)
            results[schema].append(figures)
            print(f"{schema:5}: insert {figures[0]:,.0f} ms, record {figures[1]:,.0f} ms,"
                  f" WAL {figures[2]} MB", flush=True)
    subprocess.run(["dropdb", *CONNECT, "--if-exists", DATABASE], check=True)
    for schema, runs in results.items():
        medians = [statistics.median(run[i] for run in runs) for i in range(3)]
        print(f"median {schema:5}: insert {medians[0]:,.0f} ms, record {medians[1]:,.0f} ms,"
              f" WAL {medians[2]:.0f} MB ({ROWS:,} deliveries)")


if __name__ == "__main__":
    main()
