#!/usr/bin/env python3
"""Summarises decode_timeline.cu's stamps (CSV or .csv.gz, one row per warp and launch).

Per launch, times from the launch's first warp start (us): when the first, the first
tenth, the average and the last block are done (their last warp's exit), when any warp's
last step landed; per warp, medians of the gaps the README tables give; per block (the
medians of its warps' stamps), how long it streamed (first step landed to last step
landed), when it requested its last step (estimated: RING_STEPS steps before its last
landing, the steps taken as evenly paced), and how long the launch's streaming would take
were every block's bytes shared over all the GPU's SMs at the blocks' own rates (the
blocks' SMs at theirs, the idle ones at the average). Each figure is averaged over the
launches.
Usage: timeline_summary.py [--sms N] FILE...   (N: the GPU's SMs, 132 on an H200)
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


RING_STEPS = 3  # steps a warp of the staged kernel requests ahead (kStagedSlots)


def block_streams(rows, t0):
    """Per block: (stream ns, last request ns from t0), from its warps' median stamps."""
    blocks = collections.defaultdict(list)
    for r in rows:
        blocks[r["block"]].append(r)
    out = []
    for warps in blocks.values():
        first = statistics.median(int(w["first_data_ns"]) for w in warps) - t0
        last = statistics.median(int(w["last_data_ns"]) for w in warps) - t0
        steps = int(warps[0]["steps"])
        pace = (last - first) / max(1, steps - 1)
        out.append((last - first, last - RING_STEPS * pace))
    return out


def launch_figures(rows, sms):
    t0 = min(int(r["entry_ns"]) for r in rows)
    exits = collections.defaultdict(int)
    for r in rows:
        exits[r["block"]] = max(exits[r["block"]], int(r["exit_ns"]) - t0)
    done = sorted(exits.values())
    streams = block_streams(rows, t0)
    rates = [1 / s for s, _ in streams if s > 0]
    busy = len(set(r["sm"] for r in rows))
    shared = len(rates) / (sum(rates) + max(0, sms - busy) * statistics.mean(rates))

    def median_gap(a, b):
        return statistics.median(int(r[b]) - int(r[a]) for r in rows)

    return {
        "first block done": done[0],
        "first tenth of the blocks done": done[len(done) // 10],
        "average block done": statistics.mean(exits.values()),
        "last block done": max(exits.values()),
        "any warp's last step landed": max(int(r["last_data_ns"]) for r in rows) - t0,
        "warp start to context length": median_gap("entry_ns", "lens_ns"),
        "warp start to first step landed": median_gap("entry_ns", "first_data_ns"),
        "last step landed to its arithmetic done": median_gap("last_data_ns", "computed_ns"),
        "arithmetic done to merge barrier passed": median_gap("computed_ns", "merge_start_ns"),
        "merge barrier to result written": median_gap("merge_start_ns", "exit_ns"),
        "block streaming, mean": statistics.mean(s for s, _ in streams),
        "block streaming, longest": max(s for s, _ in streams),
        "streaming shared over every SM": shared,
        "a block's last step requested, mean": statistics.mean(q for _, q in streams),
        "a block's last step requested, latest": max(q for _, q in streams),
    }


def main(args):
    sms = 132
    if len(args) >= 2 and args[0] == "--sms":
        sms, args = int(args[1]), args[2:]
    for path in args:
        launches = collections.defaultdict(list)
        for r in read_rows(path):
            launches[r["launch"]].append(r)
        per_launch = [launch_figures(rows, sms) for rows in launches.values()]
        print(f"{path}: {len(per_launch)} launches")
        for key in per_launch[0]:
            us = statistics.mean(f[key] for f in per_launch) / 1000
            print(f"  {key:42s} {us:6.2f} us")


if __name__ == "__main__":
    main(sys.argv[1:])
