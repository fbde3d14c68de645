#!/usr/bin/env bash
# Measures how many trigger events per second Reward sustains on the machine's PostgreSQL
# (127.0.0.1:5432) with one node and with three, connected directly and through PgBouncer
# (transaction mode, statements unnamed), three runs each, in a release build; prints every run
# and the median. The figures in docs/scaling.md come from here.
#
#   scripts/measure-throughput.sh            # 1 and 3 nodes, both routes, 32 clients, 10 s per run
#   CLIENTS=64 SECONDS_PER_RUN=20 ROUTES=direct NODES="1 3" scripts/measure-throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
clients="${CLIENTS:-32}"
seconds="${SECONDS_PER_RUN:-10}"
routes="${ROUTES:-direct pgbouncer}"
node_counts="${NODES:-1 3}"
export REWARD_REQUIRE_POSTGRES=1 REWARD_REQUIRE_PGBOUNCER=1
# Build once, then run the test binary itself: cargo would rebuild whenever a source changed.
binary=$(cargo test --release -p reward --test it --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\/deps\/it-[^"]*\)".*/\1/p' | tail -1)
if [ -z "$binary" ]; then
    cargo test --release -p reward --test it --no-run
    exit 1
fi
for route in $routes; do
for nodes in $node_counts; do
    runs=()
    for run in 1 2 3; do
        line=$(REWARD_THROUGHPUT_NODES=$nodes REWARD_THROUGHPUT_CLIENTS=$clients \
            REWARD_THROUGHPUT_SECONDS=$seconds REWARD_THROUGHPUT_ROUTE=$route \
            "$binary" --ignored --exact throughput::throughput --nocapture 2>&1 |
            grep '^throughput:' || echo "throughput: 0 trigger events/s (the run failed)")
        echo "run $run: $line"
        runs+=("$(sed -E 's/.*: ([0-9]+) trigger events\/s.*/\1/' <<<"$line")")
    done
    median=$(printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p)
    echo "== $nodes node(s) $route, $clients clients: median $median trigger events/s (runs: ${runs[*]})"
done
done
