#!/usr/bin/env python3
"""Summarises the last `cargo bench --bench check` run as a Markdown table:
time per op (criterion's mean and median) and, where the bench has one, the
ratio to its floor (`check/X` and `check_cached/X` against `floor/X`).

Usage: python3 benches/summary.py [TARGET_DIR]   (default: ./target)
Reads TARGET_DIR/criterion/*/new/{benchmark,estimates}.json; stdlib only.
"""

import json
import sys
from pathlib import Path


def load(criterion_dir):
    results = {}
    for estimates in sorted(criterion_dir.glob("*/new/estimates.json")):
        benchmark = estimates.with_name("benchmark.json")
        if not benchmark.exists():
            continue
        full_id = json.loads(benchmark.read_text())["full_id"]
        data = json.loads(estimates.read_text())
        results[full_id] = (data["mean"]["point_estimate"], data["median"]["point_estimate"])
    return results


def human(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def floor_of(name):
    kind, _, algorithm = name.partition("/")
    if kind in ("check", "check_cached"):
        return f"floor/{algorithm}"
    return None


def main():
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("target")
    results = load(target / "criterion")
    if not results:
        sys.exit(f"no criterion results under {target / 'criterion'}: run `cargo bench --bench check` first")
    print("| bench | mean | median | ratio to floor (mean) |")
    print("|---|---:|---:|---:|")
    for name, (mean, median) in sorted(results.items()):
        floor = floor_of(name)
        ratio = ""
        if floor in results:
            ratio = f"{mean / results[floor][0]:.2f}x `{floor}`"
        print(f"| `{name}` | {human(mean)} | {human(median)} | {ratio} |")


if __name__ == "__main__":
    main()
