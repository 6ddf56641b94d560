"""A run directory: summary.json, requests.csv and timeseries.csv (either layout, told from its
header), a CSV that the directory's manifest.json does not list being one kvsim did not write."""

import os

from ..errors import InputError
from .files import Node, load_csv, load_json, open_csv, read_csv_rows
from .manifest import manifest_names, require_manifest, summary_mark
from .summary import read_summary


REQUEST_COLUMNS = ("id", "replica", "arrival_s", "first_scheduled_s", "first_token_s",
                   "finish_s", "prompt_tokens", "output_tokens", "preemptions")
# timeseries.csv comes in two layouts, told apart by the header. Per iteration
# (output.timeseries_interval_s: 0): one row per iteration of each replica.
TIMESERIES_COLUMNS = ("time_s", "replica", "duration_s", "running", "waiting", "prefill_tokens",
                      "decode_tokens", "allocated_bytes", "live_bytes", "cached_bytes",
                      "exposed_overhead_s")
TIMESERIES_INTS = ("replica", "running", "waiting", "prefill_tokens", "decode_tokens",
                   "allocated_bytes", "live_bytes", "cached_bytes")
# Per interval (output.timeseries_interval_s: I > 0): one row per replica per interval
# [k*I, (k+1)*I) in which at least one of its iterations starts, each iteration counted wholly in
# the interval it starts in; means are weighted by iteration duration, bytes rounded.
TIMESERIES_INTERVAL_COLUMNS = ("time_s", "replica", "interval_s", "iterations", "busy_s",
                               "mean_running", "max_running", "max_waiting", "prefill_tokens",
                               "decode_tokens", "mean_allocated_bytes", "peak_allocated_bytes",
                               "mean_live_bytes", "mean_cached_bytes", "exposed_overhead_s")
TIMESERIES_INTERVAL_INTS = ("replica", "iterations", "max_running", "max_waiting",
                            "prefill_tokens", "decode_tokens", "mean_allocated_bytes",
                            "peak_allocated_bytes", "mean_live_bytes", "mean_cached_bytes")


def _check_request(r):
    if r["replica"] < 0:
        return "replica < 0"
    if r["first_scheduled_s"] < r["arrival_s"] - 1e-9:
        return "first_scheduled_s is before arrival_s"
    if r["first_token_s"] < r["arrival_s"] - 1e-9:
        return "first_token_s is before arrival_s"
    if r["finish_s"] < r["first_token_s"] - 1e-9:
        return "finish_s is before first_token_s"
    if r["output_tokens"] < 1 or r["prompt_tokens"] < 0 or r["preemptions"] < 0:
        return "token or preemption count out of range"
    return None


def _check_sample(r):
    if r["replica"] < 0 or r["duration_s"] < 0 or r["time_s"] < 0:
        return "negative time, duration or replica"
    if r["running"] < 0 or r["waiting"] < 0:
        return "negative request count"
    if r["allocated_bytes"] < 0 or r["live_bytes"] < 0 or r["cached_bytes"] < 0:
        return "negative byte count"
    return None


def _interval_checks():
    """A `checks` function for the interval layout. It remembers the rows before it: interval_s
    must be the same on every row, and each replica's rows must be in time order."""
    interval = None
    last_time = {}

    def check(r):
        nonlocal interval
        for c in TIMESERIES_INTERVAL_COLUMNS:
            if r[c] < 0:
                return f"{c} is negative ({r[c]:g})"
        if r["interval_s"] <= 0:
            return "interval_s is 0, not > 0"
        if interval is not None and r["interval_s"] != interval:
            return f"interval_s is {r['interval_s']:g}, but {interval:g} on the rows before"
        if r["iterations"] < 1:
            return "iterations is 0 (an interval without iterations has no row)"
        before = last_time.get(r["replica"])
        if before is not None and r["time_s"] <= before:
            return (f"replica {r['replica']}: time_s {r['time_s']:g} is not after its row "
                    f"before ({before:g})")
        interval = r["interval_s"]
        last_time[r["replica"]] = r["time_s"]
        return None

    return check


def load_timeseries(path):
    """timeseries.csv in either layout, picked by its header: {column: [values]} with the
    layout's columns (is_interval_layout tells which)."""
    reader, header = open_csv(path)
    layouts = (("interval", TIMESERIES_INTERVAL_COLUMNS, TIMESERIES_INTERVAL_INTS,
                _interval_checks()),
               ("per-iteration", TIMESERIES_COLUMNS, TIMESERIES_INTS, _check_sample))
    lacking = []
    for name, columns, ints, checks in layouts:
        missing = [c for c in columns if c not in header]
        if not missing:
            return read_csv_rows(path, reader, header, columns, ints, checks=checks)
        lacking.append((len(missing), name, missing))
    _, nearer, missing = min(lacking)
    raise InputError(
        f"{path}:1: header is neither timeseries layout (it lacks {', '.join(missing)} of the "
        f"nearer, {nearer} one); expected the per-iteration header "
        f"{','.join(TIMESERIES_COLUMNS)} or the interval header "
        f"{','.join(TIMESERIES_INTERVAL_COLUMNS)}")


def is_interval_layout(ts):
    """Whether a table from load_timeseries is in the interval layout."""
    return "interval_s" in ts


def load_run_dir(run_dir, label, summary=None, source=None):
    """A run directory: {label, summary, requests, timeseries, notes}; the timeseries in either
    layout (load_timeseries). `summary` is read from `source` (default: the directory's
    summary.json, read here when `summary` is None); the directory must have a manifest when the
    summary says a kvsim that writes one wrote it (require_manifest). A CSV that kvsim's
    manifest.json does not list was not written (output switched off, or a sweep point); one
    missing without a manifest is an error."""
    if source is None:
        source = os.path.join(run_dir, "summary.json")
    if summary is None:
        summary = read_summary(Node(load_json(source), source))
    require_manifest(run_dir, source, summary_mark(summary))
    written = manifest_names(run_dir)
    run = {"label": label, "dir": run_dir, "summary": summary,
           "requests": None, "timeseries": None, "notes": []}
    for key, name, load in (
            ("requests", "requests.csv",
             lambda path: load_csv(
                 path, REQUEST_COLUMNS,
                 ints=("id", "replica", "prompt_tokens", "output_tokens", "preemptions"),
                 checks=_check_request)),
            ("timeseries", "timeseries.csv", load_timeseries)):
        path = os.path.join(run_dir, name)
        if not os.path.exists(path) and written is not None and name not in written:
            run["notes"].append(f"{label}: {name} was not written (the directory's "
                                "manifest.json does not list it)")
            continue
        run[key] = load(path)
    if run["requests"] is not None:
        n = len(run["requests"]["id"])
        if n != summary["requests_completed"]:
            raise InputError(
                f"{os.path.join(run_dir, 'requests.csv')}: {n} request rows, but summary.json "
                f"says {summary['requests_completed']} completed")
    return run
