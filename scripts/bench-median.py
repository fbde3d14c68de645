#!/usr/bin/env python3
"""Runs `reward bench --json` several times and prints the median of every figure.

Usage: scripts/bench-median.py [--runs 3] [--binary target/release/reward] [--baseline OTHER]
           -- <bench arguments>
e.g.   scripts/bench-median.py -- --scenarios ceiling,ingest,deliver,fanout,latency,mixed
       scripts/bench-median.py --before 'dropdb -h 127.0.0.1 -U postgres --if-exists bench &&
           createdb -h 127.0.0.1 -U postgres bench' -- --database-url postgres://...
       (--before runs a shell command before each run: each run on a fresh database, as the
       default SQLite runs are)

With --baseline, the runs of OTHER (the build of the commit before a change) and of --binary
alternate, and the medians of both print side by side with their ratio: measured back to back, so
the hour moves both alike.

The machine this project is measured on is small and shared, so one run says little; the median
of several is what the README quotes.
"""
import argparse
import json
import statistics
import subprocess
import sys


def leaves(value, prefix=""):
    """Every number in a JSON document, by its dotted path (lists of samples are skipped)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from leaves(inner, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield prefix, float(value)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--binary", default="target/release/reward")
    parser.add_argument("--baseline", help="another build to alternate runs with")
    parser.add_argument("--before", help="shell command to run before each run")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    bench_args = [arg for arg in options.bench_args if arg != "--"]
    binaries = [options.binary] if not options.baseline else [options.baseline, options.binary]
    figures = {binary: {} for binary in binaries}
    for run in range(options.runs):
        for binary in binaries:
            print(f"run {run + 1} of {options.runs}: {binary} ...", file=sys.stderr)
            if options.before:
                subprocess.run(options.before, shell=True, check=True)
            output = subprocess.run(
                [binary, "bench", "--json", *bench_args],
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            ).stdout
            for path, number in leaves(json.loads(output)["scenarios"]):
                figures[binary].setdefault(path, []).append(number)
    if not options.baseline:
        measured = figures[options.binary]
        width = max(len(path) for path in measured)
        for path, numbers in measured.items():
            runs = ", ".join(f"{number:.4g}" for number in numbers)
            print(f"{path:<{width}}  {statistics.median(numbers):>12.4g}   ({runs})")
        return
    before, after = figures[options.baseline], figures[options.binary]
    width = max(len(path) for path in after)
    print(f"{'figure':<{width}}  {'baseline':>12}  {'this build':>12}  {'ratio':>6}   runs")
    for path, numbers in after.items():
        old_runs = before.get(path, [float("nan")])
        old = statistics.median(old_runs)
        new = statistics.median(numbers)
        ratio = new / old if old else float("nan")
        runs = "; ".join(
            ", ".join(f"{number:.4g}" for number in each) for each in (old_runs, numbers)
        )
        print(f"{path:<{width}}  {old:>12.4g}  {new:>12.4g}  {ratio:>6.2f}   ({runs})")


if __name__ == "__main__":
    main()
