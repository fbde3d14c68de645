#!/usr/bin/env python3
"""The delivery search's query plans on millions of rows (docs/scaling.md, "Finding deliveries").

Builds scratch databases (never the real ones): a SQLite file (a recursive CTE) and a PostgreSQL
database (generate_series), each with the schema of the migrations and ROWS deliveries of two
accounts over 30 days, then prints each search's plan and time: on SQLite EXPLAIN QUERY PLAN and
the query's time (Python's sqlite3, best of 3), without ANALYZE statistics as the server leaves it;
on PostgreSQL EXPLAIN ANALYZE, analyzed as autovacuum (and the store's statistics.rs) keep it,
with the deliveries' search keys in `delivery_keys` (migration 0015). The statements are the ones
`reward_store::search` builds (see its tests), values written in.

    scripts/search-plans.py [ROWS]      # 2,000,000 by default; needs sqlite3 and psql
    BACKENDS=sqlite scripts/search-plans.py   # one backend only
"""

import os
import sqlite3
import subprocess
import sys
import tempfile
import time

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SQLITE_MIGRATIONS = os.path.join(ROOT, "crates/reward-store-sqlite/src/migrations")
PG_MIGRATIONS = os.path.join(ROOT, "crates/reward-store-postgres/migrations")
PG = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-X", "-q", "-v", "ON_ERROR_STOP=1"]
PG_DATABASE = "reward_search_plans"

DAY = 86_400_000
END = 1_764_000_000_000  # the newest delivery's time
START = END - 30 * DAY
STEP = 30 * DAY // ROWS  # milliseconds between deliveries
MARGIN = 5 * 60 * 1000  # reward_store::search::ID_CLOCK_MARGIN_MS
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
WEBHOOK = "wh_01jf2wkmvcfw6ts1qmgzya2903"


def ulid_time_sql(ms):
    """SQL (both dialects) for the 10 Crockford base32 digits of a ULID's clock."""
    return " || ".join(
        f"substr('{ALPHABET}', CAST((({ms} >> {shift}) & 31) + 1 AS INTEGER), 1)"
        for shift in range(45, -1, -5)
    )


def pad16(value, dialect):
    """`value` as 16 decimal digits (valid base32 digits of a ULID's random part)."""
    if dialect == "postgres":
        return f"lpad(({value})::text, 16, '0')"
    return f"substr('0000000000000000' || ({value}), -16, 16)"


def lowest_id(prefix, ms):
    """`lowest_at`: the smallest id made at `ms`."""
    digits = "".join(ALPHABET[(ms >> shift) & 31] for shift in range(45, -1, -5))
    return f"{prefix}{digits}{'0' * 16}"


# Every row: i = 0 .. ROWS-1, oldest first. Account acc_a holds 9 in 10, acc_b the rest; 10
# webhooks; an event per two deliveries, 30% of events of the rarer type; 2% failed, pending the
# newest 5,000 and 1 in 1,000 of the rest (retrying), the others succeeded.
def columns(i, created, ulid, dialect):
    return f"""
      CASE WHEN {i} % 10 = 9 THEN 'acc_b' ELSE 'acc_a' END,
      'dl_' || {ulid} || {pad16(i, dialect)},
      'wh_01jf2wkmvcfw6ts1qmgzya290' || ({i} % 10),
      'we_' || {ulid} || {pad16(f"{i} / 2", dialect)},
      CASE WHEN ({i} / 2) % 10 < 7 THEN 'trigger_event.created'
           ELSE 'balance.credit_points_issued' END,
      CASE WHEN {i} >= {ROWS - 5000} OR {i} % 1000 = 7 THEN 'pending'
           WHEN {i} % 50 = 4 THEN 'failed' ELSE 'succeeded' END,
      1, {created}, {created}"""


COLUMN_NAMES = "account_id, id, webhook_id, event_id, event_type, status, attempt_count, created_at, updated_at"


def searches(event_id):
    """(what, filters, after, before): each filter alone, the time range, and a few combinations."""
    hour_start = END - 10 * DAY
    hour_end = hour_start + 3_600_000
    old = END - 20 * DAY
    return [
        ("no filter", [], None, None),
        ("webhook_id", [("webhook_id", WEBHOOK)], None, None),
        ("event_id", [("event_id", event_id)], None, None),
        ("event_type (the rarer, 30%)", [("event_type", "balance.credit_points_issued")], None, None),
        ("status = pending", [("status", "pending")], None, None),
        ("status = failed", [("status", "failed")], None, None),
        ("status = succeeded", [("status", "succeeded")], None, None),
        ("created_after and created_before (one hour, 10 days ago)", [], hour_start, hour_end),
        ("created_before (20 days ago)", [], None, old),
        ("created_after (the last hour)", [], END - 3_600_000, None),
        ("webhook_id, one hour 10 days ago", [("webhook_id", WEBHOOK)], hour_start, hour_end),
        ("webhook_id and status = failed", [("webhook_id", WEBHOOK), ("status", "failed")], None, None),
        ("event_type and status = failed",
         [("event_type", "balance.credit_points_issued"), ("status", "failed")], None, None),
    ]


KEYS = ("webhook_id", "event_id", "event_type")
# reward_store::search's KEYS_JOINED and keys_apart, for PostgreSQL's `delivery_keys`.
KEYS_JOINED = ("delivery_keys k CROSS JOIN LATERAL (SELECT * FROM deliveries "
               "WHERE account_id = k.account_id AND id = k.delivery_id OFFSET 0) d")
KEYS_APART = {"account_id": "k.account_id", "id": "k.delivery_id", "webhook_id": "k.webhook_id",
              "event_id": "k.event_id", "event_type": "k.event_type", "status": "d.status",
              "created_at": "d.created_at"}


def statement(filters, after, before, keys_apart):
    """The statement `reward_store::search::deliveries` builds, values written in: on
    PostgreSQL (`keys_apart`) a search by webhook, event or type reads `delivery_keys` joined to
    the deliveries."""
    given = dict(filters)
    # Pending or failed deliveries: their own indexes on `deliveries`, unless of one event.
    unfinished = "event_id" not in given and given.get("status") in ("pending", "failed")
    joined = keys_apart and any(column in KEYS for column in given) and not unfinished
    if joined:
        name = lambda column: KEYS_APART[column]
    elif unfinished and not keys_apart:
        # SQLite: `+event_type`, no index, so the status's own index is read.
        name = lambda column: "+event_type" if column == "event_type" else column
    else:
        name = lambda column: column
    terms, below = [f"{name('account_id')} = 'acc_a'"], "~"
    terms += [f"{name(column)} = '{value}'" for column, value in filters]
    if after is not None:
        terms.append(f"{name('created_at')} > {after} AND {name('id')} >= '{lowest_id('dl_', after + 1 - MARGIN)}'")
    if before is not None:
        terms.append(f"{name('created_at')} < {before}")
        below = lowest_id("dl_", before + MARGIN)
    terms.append(f"{name('id')} < '{below}'")
    columns = sql_columns()
    if joined:
        columns = ", ".join(f"d.{column.strip()}" for column in columns.split(","))
    source = KEYS_JOINED if joined else "deliveries"
    return (f"SELECT {columns} FROM {source} WHERE {' AND '.join(terms)} "
            f"ORDER BY {name('id')} DESC LIMIT 21")


def sql_columns():
    return "id, event_id, webhook_id, event_type, status, attempt_count, next_attempt_at, last_status_code, created_at, updated_at"


def sqlite(path):
    migrations = sorted(f for f in os.listdir(SQLITE_MIGRATIONS) if f.endswith(".sql"))
    script = "".join(open(os.path.join(SQLITE_MIGRATIONS, f)).read() + "\n" for f in migrations)
    ulid = ulid_time_sql("created")
    script += f"""
      INSERT INTO deliveries ({COLUMN_NAMES})
      WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS - 1}),
           rows(i, created) AS (SELECT i, {START} + i * {STEP} FROM n)
      SELECT {columns('i', 'created', ulid, 'sqlite')} FROM rows;
    """
    started = time.monotonic()
    subprocess.run(["sqlite3", path], input=script, text=True, check=True)
    print(f"SQLite {ROWS:,} deliveries written in {time.monotonic() - started:.0f} s", flush=True)
    event_id = subprocess.run(
        ["sqlite3", path, f"SELECT event_id FROM deliveries WHERE account_id = 'acc_a' LIMIT 1 OFFSET {ROWS // 3}"],
        text=True, capture_output=True, check=True).stdout.strip()
    for what, filters, after, before in searches(event_id):
        query = statement(filters, after, before, keys_apart=False)
        plan = subprocess.run(["sqlite3", path, f"EXPLAIN QUERY PLAN {query}"],
                              text=True, capture_output=True, check=True).stdout
        connection = sqlite3.connect(path)
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            connection.execute(query).fetchall()
            timings.append((time.perf_counter() - started) * 1000)
        connection.close()
        print(f"\n-- {what}: {min(timings):.2f} ms (best of 3)\n{query}\n{plan}", flush=True)


def postgres():
    subprocess.run(PG + ["-c", f"DROP DATABASE IF EXISTS {PG_DATABASE}", "-c", f"CREATE DATABASE {PG_DATABASE}"], check=True)
    database = PG + ["-d", PG_DATABASE]
    migrations = sorted(f for f in os.listdir(PG_MIGRATIONS) if f.endswith(".sql"))
    for f in migrations:
        subprocess.run(database + ["-f", os.path.join(PG_MIGRATIONS, f)], check=True)
    ulid = ulid_time_sql("created")
    started = time.monotonic()
    subprocess.run(database + ["-c", f"""
      INSERT INTO deliveries ({COLUMN_NAMES})
      SELECT {columns('i', 'created', ulid, 'postgres')}
      FROM (SELECT i, {START}::bigint + i * {STEP} AS created
            FROM generate_series(0::bigint, {ROWS - 1}) AS i) AS rows""",
                               "-c", """INSERT INTO delivery_keys
                                   SELECT account_id, id, webhook_id, event_id, event_type
                                   FROM deliveries""",
                               "-c", "VACUUM ANALYZE deliveries",
                               "-c", "VACUUM ANALYZE delivery_keys"], check=True)
    print(f"PostgreSQL {ROWS:,} deliveries written in {time.monotonic() - started:.0f} s", flush=True)
    event_id = subprocess.run(
        database + ["-tA", "-c", f"SELECT event_id FROM deliveries WHERE account_id = 'acc_a' LIMIT 1 OFFSET {ROWS // 3}"],
        text=True, capture_output=True, check=True).stdout.strip()
    for what, filters, after, before in searches(event_id):
        query = statement(filters, after, before, keys_apart=True)
        subprocess.run(database + ["-c", query], capture_output=True, check=True)  # warm the cache
        plan = subprocess.run(database + ["-c", f"EXPLAIN (ANALYZE, BUFFERS) {query}"],
                              text=True, capture_output=True, check=True).stdout
        print(f"\n-- {what}\n{query}\n{plan}", flush=True)
    subprocess.run(PG + ["-c", f"DROP DATABASE {PG_DATABASE}"], check=True)


if __name__ == "__main__":
    which = os.environ.get("BACKENDS", "sqlite postgres").split()
    if "sqlite" in which:
        with tempfile.TemporaryDirectory() as folder:
            sqlite(os.path.join(folder, "plans.db"))
    if "postgres" in which:
        postgres()
