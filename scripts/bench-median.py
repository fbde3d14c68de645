#!/usr/bin/env python3
"""Runs `reward bench --json` several times and prints the median of every figure.

Usage: scripts/bench-median.py [--runs 3] [--binary target/release/reward] -- <bench arguments>
e.g.   scripts/bench-median.py -- --scenarios ceiling,ingest,deliver,fanout,latency,mixed
       scripts/bench-median.py --before 'dropdb -h 127.0.0.1 -U postgres --if-exists bench &&
           createdb -h 127.0.0.1 -U postgres bench' -- --database-url postgres://...
       (--before runs a shell command before each run: each run on a fresh database, as the
       default SQLite runs are)

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
    parser.add_argument("--before", help="shell command to run before each run")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    bench_args = [arg for arg in options.bench_args if arg != "--"]
    figures = {}
    for run in range(options.runs):
        print(f"run {run + 1} of {options.runs} ...", file=sys.stderr)
        if options.before:
            subprocess.run(options.before, shell=True, check=True)
        output = subprocess.run(
            [options.binary, "bench", "--json", *bench_args],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        for path, number in leaves(json.loads(output)["scenarios"]):
            figures.setdefault(path, []).append(number)
    width = max(len(path) for path in figures)
    for path, numbers in figures.items():
        runs = ", ".join(f"{number:.4g}" for number in numbers)
        print(f"{path:<{width}}  {statistics.median(numbers):>12.4g}   ({runs})")


if __name__ == "__main__":
    main()
