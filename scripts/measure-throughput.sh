#!/usr/bin/env bash
# Measures how many trigger events per second Reward sustains on the machine's PostgreSQL
# (127.0.0.1:5432) with one node and with three, connected directly and through PgBouncer
# (transaction mode, statements unnamed), three runs each, in a release build; prints every run
# and the median. The figures in docs/scaling.md come from here.
#
#   scripts/measure-throughput.sh            # 1 and 3 nodes, both routes, 32 clients, 10 s per run
#   CLIENTS=64 SECONDS_PER_RUN=20 ROUTES=direct NODES="1 3" scripts/measure-throughput.sh
#   BASELINE=/tmp/reward-before scripts/measure-throughput.sh
#       # each run twice, back to back: first with BASELINE (a release build of the commit before
#       # a change) as the nodes' binary, then with this tree's; a median for each
#   REWARD_TEST_PGBOUNCER_SERVER_CONNECTIONS=20 ROUTES=pgbouncer scripts/measure-throughput.sh
#       # PgBouncer's server pool (default_pool_size) other than the tests' 10
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
built=target/release/reward
variants=(this)
if [ -n "${BASELINE:-}" ]; then
    # The test starts the nodes from target/release/reward: the baseline takes its place for its
    # runs, and this tree's build is put back whatever happens.
    cp "$built" "$built.measured"
    trap 'mv -f "$built.measured" "$built"' EXIT
    variants=(baseline this)
fi
for route in $routes; do
for nodes in $node_counts; do
    declare -A runs=()
    for run in 1 2 3; do
        for variant in "${variants[@]}"; do
            if [ "$variant" = baseline ]; then cp "$BASELINE" "$built"; elif [ -n "${BASELINE:-}" ]; then cp "$built.measured" "$built"; fi
            line=$(REWARD_THROUGHPUT_NODES=$nodes REWARD_THROUGHPUT_CLIENTS=$clients \
                REWARD_THROUGHPUT_SECONDS=$seconds REWARD_THROUGHPUT_ROUTE=$route \
                "$binary" --ignored --exact throughput::throughput --nocapture 2>&1 |
                grep '^throughput:' || echo "throughput: 0 trigger events/s (the run failed)")
            echo "run $run ($variant): $line"
            runs[$variant]+="$(sed -E 's/.*: ([0-9]+) trigger events\/s.*/\1/' <<<"$line") "
        done
    done
    for variant in "${variants[@]}"; do
        median=$(tr ' ' '\n' <<<"${runs[$variant]}" | grep . | sort -n | sed -n 2p)
        echo "== $nodes node(s) $route, $clients clients, $variant: median $median trigger events/s (runs: ${runs[$variant]% })"
    done
    unset runs
done
done
