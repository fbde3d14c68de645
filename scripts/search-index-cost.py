#!/usr/bin/env python3
"""What migration 0007's indexes cost the delivery path, in scratch SQLite files (docs/scaling.md).

Writes deliveries as the store's hot path does, with the schema before 0007 and with it, runs
alternating: ROWS deliveries inserted pending in transactions of BATCH (the writer's group commit,
synchronous=FULL, WAL), then each marked succeeded with its attempt in transactions of BATCH (the
recorder's batches). Prints each run's seconds per phase; compare medians.

    scripts/search-index-cost.py [ROWS] [RUNS]     # 100,000 and 3 by default
"""

import os
import sqlite3
import statistics
import sys
import tempfile
import time

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
BATCH = 256
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIGRATIONS = os.path.join(ROOT, "crates/reward-store-sqlite/src/migrations")


def schema(with_search_indexes):
    names = sorted(f for f in os.listdir(MIGRATIONS) if f.endswith(".sql"))
    if not with_search_indexes:
        names = [f for f in names if not f.startswith("0007")]
    return "".join(open(os.path.join(MIGRATIONS, f)).read() + "\n" for f in names)


def run(with_search_indexes, folder):
    path = os.path.join(folder, f"cost-{with_search_indexes}-{time.monotonic_ns()}.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.executescript(schema(with_search_indexes))
    now = 1_764_000_000_000
    started = time.perf_counter()
    for start in range(0, ROWS, BATCH):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO deliveries (account_id, id, webhook_id, event_id, event_type, status,"
            " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
            [("acc_a", f"dl_{i:026d}", f"wh_{i % 10:026d}", f"we_{i // 10:026d}",
              "trigger_event.created" if i % 3 else "balance.credit_points_issued",
              now, now + i, now + i) for i in range(start, min(start + BATCH, ROWS))])
        db.execute("COMMIT")
    inserted = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, ROWS, BATCH):
        db.execute("BEGIN IMMEDIATE")
        batch = range(start, min(start + BATCH, ROWS))
        db.executemany(
            "INSERT INTO attempts (account_id, delivery_id, id, number, started_at, duration_ms,"
            " status_code) VALUES ('acc_a', ?, ?, 1, ?, 3, 204)",
            [(f"dl_{i:026d}", f"at_{i:026d}", now + i) for i in batch])
        db.executemany(
            "UPDATE deliveries SET status = 'succeeded', attempt_count = 1, last_status_code = 204,"
            " next_attempt_at = NULL, updated_at = ? WHERE account_id = 'acc_a' AND id = ?",
            [(now + i, f"dl_{i:026d}") for i in batch])
        db.execute("COMMIT")
    recorded = time.perf_counter() - started
    db.close()
    return inserted, recorded


def main():
    results = {False: [], True: []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(RUNS):
            for with_indexes in (False, True):
                inserted, recorded = run(with_indexes, folder)
                results[with_indexes].append((inserted, recorded))
                label = "with 0007" if with_indexes else "before  "
                print(f"{label}: insert {inserted:.2f} s, record {recorded:.2f} s", flush=True)
    for with_indexes, runs in results.items():
        label = "with 0007" if with_indexes else "before  "
        print(f"median {label}: insert {statistics.median(r[0] for r in runs):.2f} s, "
              f"record {statistics.median(r[1] for r in runs):.2f} s ({ROWS:,} deliveries)")


if __name__ == "__main__":
    main()
