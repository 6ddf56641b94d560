"""Run and compare directories: the scenario, the summary (a run) or side-by-side table with
ratios to paged (a comparison), KV memory and running batch over time, latency distributions;
a run's config.yaml shown as written."""

import functools
import os

from ..charts.ccdf import chart_ccdf
from ..charts.mpl import color
from ..charts.run import any_cached, chart_kv_memory, chart_running
from ..document import Doc
from ..fmt import GIB, fbytes, fgen, fint, fnum, is_num
from ..headings import (H_BATCH, H_COMPARISON, H_CONFIG, H_KV_MEMORY, H_LATENCY, H_SCENARIO,
                        H_SUMMARY)
from ..inputs.compare import read_compare
from ..inputs.files import Node, load_json
from ..inputs.run_dir import is_interval_layout, load_run_dir
from ..inputs.summary import read_summary
from ..series import request_latencies, run_series
from ..verdicts import paged_base, verdict_compare, verdict_run
from .common import _scenario_rows, _scenario_sentence, dir_name, note_caveats


COMPARE_ROWS = [
    # name, getter, format, ratio
    ("throughput (req/s)", lambda s: s["requests_per_s"], lambda x: fnum(x, 2), True),
    ("output tokens/s", lambda s: s["output_tokens_per_s"], lambda x: fnum(x, 0), True),
    ("TTFT p50 (s)", lambda s: s["ttft_s"]["p50"], lambda x: fnum(x, 3), True),
    ("TTFT p99 (s)", lambda s: s["ttft_s"]["p99"], lambda x: fnum(x, 3), True),
    ("TBT p50 (ms, all tokens)", lambda s: s["tbt_s"]["p50"] * 1e3, lambda x: fnum(x, 2), True),
    ("TBT p99 (ms, all tokens)", lambda s: s["tbt_s"]["p99"] * 1e3, lambda x: fnum(x, 2), True),
    ("E2E p50 (s)", lambda s: s["e2e_s"]["p50"], lambda x: fnum(x, 3), True),
    ("E2E p99 (s)", lambda s: s["e2e_s"]["p99"], lambda x: fnum(x, 3), True),
    ("max running batch", lambda s: s["max_running"], fint, True),
    ("mean running batch", lambda s: s["mean_running"], lambda x: fnum(x, 1), True),
    ("KV fragmentation (%)", lambda s: s["kv_fragmentation"] * 100, lambda x: fnum(x, 1), True),
    ("KV peak allocated (GiB)", lambda s: s["kv_peak_allocated_bytes"] / GIB,
     lambda x: fnum(x, 2), True),
    ("preemptions", lambda s: s["preemptions"], fint, True),
    ("exposed mapping overhead (s)", lambda s: s["exposed_overhead_s"], lambda x: fnum(x, 3), True),
    ("requests completed / offered",
     lambda s: (s["requests_completed"], s["requests_total"]), None, False),
]


# Shown in a comparison when some run caches prefixes (summary.json `prefix_cache`).
PREFIX_CACHE_ROWS = [
    ("prefix hit (% of prompt tokens)",
     lambda s: s["prefix_cache"]["token_hit_rate"] * 100 if s["prefix_cache"] else 0.0,
     lambda x: fnum(x, 1), False),
    ("requests with a prefix hit (%)",
     lambda s: s["prefix_cache"]["request_hit_rate"] * 100 if s["prefix_cache"] else 0.0,
     lambda x: fnum(x, 1), False),
    ("tokens recomputed after preemption",
     lambda s: s["prefix_cache"]["recomputed_tokens"] if s["prefix_cache"] else 0, fint, False),
]


def _metric_table(runs, base):
    """(headers, rows) of the summary or comparison table: one row per metric, one column per
    run, ratios to `base` in brackets where it is not None."""
    headers = ["metric"] + [r["label"] for r in runs]
    rows = []
    caching = any((r["summary"].get("prefix_cache") or {}).get("enabled") for r in runs)
    for name, get, form, ratio in COMPARE_ROWS + (PREFIX_CACHE_ROWS if caching else []):
        row = [name]
        for r in runs:
            v = get(r["summary"])
            if form is None:
                row.append(f"{v[0]:,} / {v[1]:,}")
                continue
            cell = form(v)
            if ratio and base is not None and r is not base:
                b = get(base["summary"])
                if is_num(b) and is_num(v) and b != 0:
                    cell += f" ({v / b:.2f}x)"
            row.append(cell)
        rows.append(row)
    return headers, rows


# The KV memory caption's sentence on the cached line (where some run has one).
CACHED_TEXT = (
    "Cached (kept for reuse, the dash-dot line): KV bytes held for no running request but kept "
    "as free capacity the scheduler can reuse, beside allocated (allocated + cached stays within "
    "the budget): vAttention pages left mapped by deferred reclamation and, with prefix caching, "
    "unreferenced cached prefix blocks kept for reuse and evicted least recently used first "
    "(cached_bytes, in the interval layout mean_cached_bytes).")


def _timeseries_text(runs, per_iteration, per_interval):
    """What the runs' timeseries.csv rows are, for a caption: `per_iteration` for the
    per-iteration layout, per_interval(table) for the interval one; where the runs differ, each
    text follows the labels of its runs."""
    texts = {}
    for r in runs:
        ts = r["timeseries"]
        text = per_interval(ts) if is_interval_layout(ts) else per_iteration
        texts.setdefault(text, []).append(r["label"])
    if len(texts) == 1:
        return next(iter(texts))
    return "; ".join(f"{', '.join(labels)}: {text}" for text, labels in texts.items())


def _interval_text(ts):
    """'1 s interval' for an interval-layout table ('interval' when it has no rows)."""
    return f"{fgen(ts['interval_s'][0])} s interval" if ts["interval_s"] else "interval"


def build_run_or_compare(doc, runs, compare):
    """Fills `doc` with the sections of a run (`compare` False, one run) or of a comparison: the
    scenario, the summary or comparison table, KV memory and running batch over time (from
    timeseries.csv) and latency distributions (from requests.csv)."""
    for i, r in enumerate(runs):
        r["index"] = i
    first = runs[0]["summary"]
    replicas = first["scenario"]["replicas"]
    doc.h2(H_SCENARIO)
    doc.table(["", "value"], _scenario_rows(runs), right=set())
    _metric_section(doc, runs, compare)
    with_ts = [r for r in runs if r["timeseries"] is not None]
    with_req = [r for r in runs if r["requests"] is not None]
    for r in with_ts:
        r["series"] = run_series(r)
    _kv_memory_section(doc, with_ts, replicas)
    _batch_section(doc, with_ts)
    _latency_section(doc, with_req)


def _metric_section(doc, runs, compare):
    """The comparison table (ratios to the paged run) or a run's summary table, then the runs'
    notes, timing caveats and assumed terms."""
    notes = [n for r in runs for n in r["notes"]]
    percentiles = ("TBT in this table is over all tokens (summary.json, from a log-bucketed "
                   f"histogram, within 0.4%); {_request_percentiles_text(runs)}.")
    if compare:
        base = paged_base(runs)
        doc.h2(H_COMPARISON)
        headers, rows = _metric_table(runs, base)
        doc.table(headers, rows)
        if base is not None:
            doc.note(f"Ratios in brackets are to `{base['label']}`. {percentiles}")
        else:
            doc.note(f"No paged run in this comparison, so no ratios are shown. {percentiles}")
    else:
        doc.h2(H_SUMMARY)
        headers, rows = _metric_table(runs, None)
        headers[1] = f"{runs[0]['label']}"
        doc.table(headers, rows)
        doc.note(percentiles)
    for n in notes:
        doc.note(n)
    note_caveats(doc, [(r["label"], r["summary"]["timing_caveats"]) for r in runs])
    note_caveats(doc, [(r["label"], r["summary"]["timing_assumptions"]) for r in runs],
                 "Assumed")


def _request_percentiles_text(runs):
    """How the table's request percentiles (TTFT, TPOT, E2E) were computed, as the runs'
    summary.json says (its percentiles field): one clause when every run's says the same, else
    one per kind naming its runs, in the order the runs come."""
    def how(text):
        return "exact (nearest rank)" if text == "exact" else f"from a {text}"

    kinds = {}
    for r in runs:
        kinds.setdefault(r["summary"]["percentiles"], []).append(r["label"])
    if len(kinds) == 1:
        return f"the other percentiles are over requests, {how(next(iter(kinds)))}"
    return "the other percentiles are over requests, as each run's summary.json says: " + \
        "; ".join(f"for {', '.join(f'`{label}`' for label in labels)} {how(text)}"
                  for text, labels in kinds.items())


def _kv_memory_section(doc, with_ts, replicas):
    """KV memory over time of the runs with a timeseries.csv (`with_ts`, each with its series)."""
    doc.h2(H_KV_MEMORY)
    if not with_ts:
        doc.p("No timeseries.csv was written, so there is no KV memory chart.")
        return
    png, width = chart_kv_memory(with_ts, replicas)
    rows = _timeseries_text(
        with_ts, "one sample per iteration",
        lambda ts: f"one row per {_interval_text(ts)} (each replica's duration-weighted "
                   "means over the iterations starting in it, held until its next row)")
    cap = "Allocated: the reservation, blocks or pages each admitted request holds; live: " \
          "what " \
          f"its tokens occupy; the dotted line is the KV budget. From timeseries.csv, {rows}."
    what = "allocated vs live"
    if any_cached(with_ts):
        what = "allocated, live and cached"
        drawn = ", ".join(f"`{r['label']}`" for r in with_ts if r["series"][3] is not None)
        cap += f" {CACHED_TEXT} Drawn for {drawn}."
    if width:
        cap += f" Long runs are drawn as the maximum of each {fgen(width)} s bin."
    doc.chart("kv_memory.png", png, f"KV memory over time, {what}, per manager", cap)


def _batch_section(doc, with_ts):
    """The running batch over time of the runs with a timeseries.csv."""
    doc.h2(H_BATCH)
    if not with_ts:
        doc.p("No timeseries.csv was written, so there is no batch-size chart.")
        return
    png, width, window = chart_running(with_ts)
    rows = _timeseries_text(
        with_ts, "the sequences in each iteration (timeseries.csv; 0 while idle)",
        lambda ts: f"the time-averaged batch of each {_interval_text(ts)}, mean_running x "
                   f"min(1, busy_s / interval_s) (timeseries.csv, one row per "
                   f"{_interval_text(ts)}; 0 where a replica has no row)")
    cap = (f"Faint lines: {rows}; "
           f"bold lines: their time-weighted mean over a sliding {fgen(window)} s window.")
    if width:
        cap += f" Long runs are drawn as the maximum of each {fgen(width)} s bin."
    doc.chart("running_batch.png", png, "Running batch size over time", cap)


# How to read the latency charts, the start of each one's caption.
CCDF_HOW = ("Complementary CDFs: the fraction of requests slower than x, on a log scale, so "
            "the tail reads off the lower lines: p50 where a curve crosses 0.5, p90 at 0.1, "
            "p99 at 0.01 (the dotted guides; each run's percentiles are marked with its "
            "marker and listed in the legend, nearest rank). ")


def _latency_section(doc, with_req):
    """TTFT, TPOT and E2E distributions of the runs with a requests.csv (`with_req`)."""
    doc.h2(H_LATENCY)
    if not with_req:
        doc.p("No requests.csv was written, so there are no latency distributions.")
        return
    lat = {r["label"]: request_latencies(r) for r in with_req}
    how = CCDF_HOW
    doc.chart("ccdf_ttft.png", chart_ccdf(
        [(r["label"], color(r["index"]), lat[r["label"]][0]) for r in with_req],
        "Time to first token (TTFT): fraction of requests above x",
        "TTFT: arrival to first token (s)", "s"),
        "TTFT distribution (complementary CDF)",
        how + "From requests.csv: first_token_s - arrival_s of every completed request.")
    excluded = {r["label"]: sum(1 for n in r["requests"]["output_tokens"] if n < 2)
                for r in with_req}
    doc.chart("ccdf_tpot.png", chart_ccdf(
        [(r["label"], color(r["index"]), lat[r["label"]][1]) for r in with_req],
        "Per-request mean time between tokens (TPOT): fraction of requests above x",
        "per-request mean time between tokens (ms)", "ms"),
        "TPOT: per-request mean time between tokens (complementary CDF)",
        how + "requests.csv has no per-token times, so this is each request's mean gap "
        "(finish_s - first_token_s) / (output_tokens - 1), the same quantity as "
        "summary.json's TPOT; it hides the spread between a request's tokens that the "
        "all-token TBT percentiles in the table include. Requests with one output token are "
        "left out"
        + (" (" + ", ".join(f"{k}: {v}" for k, v in excluded.items() if v) + ")"
           if any(excluded.values()) else "") + ".")
    doc.chart("ccdf_e2e.png", chart_ccdf(
        [(r["label"], color(r["index"]), lat[r["label"]][2]) for r in with_req],
        "End-to-end latency (E2E): fraction of requests above x",
        "E2E: arrival to last token (s)", "s"),
        "End-to-end latency distribution (complementary CDF)",
        how + "From requests.csv: finish_s - arrival_s.")


def report_run(d):
    """(doc, build) of run directory `d`: every input read and checked; build() draws."""
    summary_path = os.path.join(d, "summary.json")
    summary = read_summary(Node(load_json(summary_path), summary_path))
    run = load_run_dir(d, summary["kv_manager"], summary)
    manager = summary["kv_manager"]
    if summary["page_bytes"]:
        manager += f" ({fbytes(summary['page_bytes'])} pages)"
    title = f"kvsim run: {_scenario_sentence(summary)}, KV manager {manager}"
    doc = Doc(title)
    doc.verdict(verdict_run(run["label"], summary))
    doc.p(f"Run directory `{dir_name(d)}`: summary.json, requests.csv "
          "and timeseries.csv written by `kvsim run`.")
    config = _config_text(d)
    return doc, functools.partial(_build_run, doc, run, config)


def _build_run(doc, run, config):
    """Fills a run's document: build_run_or_compare's sections, then config.yaml as written."""
    build_run_or_compare(doc, [run], compare=False)
    if config is not None:
        doc.h2(H_CONFIG)
        with doc.details("config.yaml, as kvsim wrote it"):
            doc.verbatim(config)
        doc.note("The configuration after overrides, shown as written; the figures above "
                 "come from summary.json and the CSVs.")


def _config_text(d):
    """DIR/config.yaml as text, to show verbatim (never parsed); None when absent or not
    readable as UTF-8 text."""
    try:
        with open(os.path.join(d, "config.yaml"), "rb") as f:
            data = f.read(1 << 20)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def report_compare(d):
    """(doc, build) of comparison directory `d`: every input read and checked; build() draws."""
    runs = read_compare(d)
    first = runs[0]["summary"]
    doc = Doc(f"kvsim compare: {_scenario_sentence(first)}, {len(runs)} KV managers")
    doc.verdict(verdict_compare(runs, paged_base(runs)))
    doc.p(f"Comparison directory `{dir_name(d)}` written by "
          f"`kvsim compare`: compare.json and one run directory per label "
          f"({', '.join(r['label'] for r in runs)}).")
    return doc, functools.partial(build_run_or_compare, doc, runs, compare=True)
