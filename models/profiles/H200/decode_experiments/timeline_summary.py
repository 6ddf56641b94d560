#!/usr/bin/env python3
"""Summarises decode_timeline.cu's stamps (CSV or .csv.gz, one row per warp and launch).

Per launch, times from the launch's first warp start (us): when the average and the last
block are done (their last warp's exit), when any warp's last step landed; per warp,
medians of the gaps the README tables give. Each figure is averaged over the launches.
Usage: timeline_summary.py FILE...
"""
import collections
import csv
import gzip
import statistics
import sys


def read_rows(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return list(csv.DictReader(f))


def launch_figures(rows):
    t0 = min(int(r["entry_ns"]) for r in rows)
    exits = collections.defaultdict(int)
    for r in rows:
        exits[r["block"]] = max(exits[r["block"]], int(r["exit_ns"]) - t0)

    def median_gap(a, b):
        return statistics.median(int(r[b]) - int(r[a]) for r in rows)

    return {
        "average block done": statistics.mean(exits.values()),
        "last block done": max(exits.values()),
        "any warp's last step landed": max(int(r["last_data_ns"]) for r in rows) - t0,
        "warp start to context length": median_gap("entry_ns", "lens_ns"),
        "warp start to first step landed": median_gap("entry_ns", "first_data_ns"),
        "last step landed to its arithmetic done": median_gap("last_data_ns", "computed_ns"),
        "arithmetic done to merge barrier passed": median_gap("computed_ns", "merge_start_ns"),
        "merge barrier to result written": median_gap("merge_start_ns", "exit_ns"),
    }


def main(paths):
    for path in paths:
        launches = collections.defaultdict(list)
        for r in read_rows(path):
            launches[r["launch"]].append(r)
        per_launch = [launch_figures(rows) for rows in launches.values()]
        print(f"{path}: {len(per_launch)} launches")
        for key in per_launch[0]:
            us = statistics.mean(f[key] for f in per_launch) / 1000
            print(f"  {key:42s} {us:6.2f} us")


if __name__ == "__main__":
    main(sys.argv[1:])
