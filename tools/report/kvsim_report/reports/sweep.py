"""Sweep directories: each KV manager at each offered load; the highest load each sustains, a
table of every point, throughput and p99 latencies against offered load."""

import functools

from ..charts.sweep import chart_sweep_p99, chart_sweep_throughput
from ..document import Doc
from ..fmt import fgen, fint, fnum
from ..headings import H_SCENARIO, H_SWEEP_LATENCY, H_SWEEP_TABLE, H_SWEEP_THROUGHPUT
from ..inputs.sweep import read_sweep
from ..verdicts import verdict_sweep
from .common import _scenario_rows, _scenario_sentence, dir_name, note_caveats


def report_sweep(d):
    """(doc, build) of sweep directory `d`: sweep.json read and checked; build() draws."""
    rates, runs, labels = read_sweep(d)
    first = runs[0]["summary"]
    doc = Doc(f"kvsim sweep: {_scenario_sentence(first)}, {len(labels)} KV managers at "
              f"{len(set(r['rate'] for r in runs))} offered loads")
    return doc, functools.partial(_build_sweep, doc, d, rates, runs, labels)


def _build_sweep(doc, d, rates, runs, labels):
    """Fills a sweep's document: verdict, scenario, the table of every point, the charts."""
    doc.verdict(verdict_sweep(runs, labels))
    doc.p(f"Sweep directory `{dir_name(d)}` written by `kvsim sweep`:"
          f" offered loads {', '.join(fgen(r) for r in rates)} requests/s, managers "
          f"{', '.join(labels)}.")
    _sweep_scenario_section(doc, runs)
    by_label = {lab: sorted((r for r in runs if r["label"] == lab), key=lambda r: r["rate"])
                for lab in labels}
    _sweep_table_section(doc, runs, labels, by_label)

    doc.h2(H_SWEEP_THROUGHPUT)
    doc.chart("sweep_throughput.png", chart_sweep_throughput(labels, by_label),
              "Throughput against offered load",
              "Completed requests over the makespan. Where a manager's line falls away from "
              "the dotted diagonal it no longer keeps up; with a finite request set it sits "
              "a little below the diagonal even then, while the last requests drain.")

    doc.h2(H_SWEEP_LATENCY)
    for key, name, scale, unit, fname in (
            ("ttft_s", "TTFT", 1.0, "s", "sweep_ttft_p99.png"),
            ("tbt_s", "TBT (all tokens)", 1e3, "ms", "sweep_tbt_p99.png"),
            ("e2e_s", "E2E", 1.0, "s", "sweep_e2e_p99.png")):
        doc.chart(fname, chart_sweep_p99(labels, by_label, key, name, scale, unit),
                  f"p99 {name} against offered load", "")


def _sweep_scenario_section(doc, runs):
    """The scenario table: fields shared by every point once, arrivals and request counts over
    all points."""
    doc.h2(H_SCENARIO)
    pseudo = [{"label": f"{r['label']}@{fgen(r['rate'])}", "summary": r["summary"]}
              for r in runs]
    rows = [row for row in _scenario_rows(pseudo) if row[0] != "arrivals"]
    procs = sorted(set(r["summary"]["scenario"]["arrival_process"] or "not recorded"
                       for r in runs))
    rows.append(["arrivals", f"{', '.join(procs)}, at each offered load"
                 + (" (trace time-scaled)" if procs == ["trace"] else "")])
    rows.append(["requests per run", ", ".join(sorted(set(
        fint(r["summary"]["requests_total"]) for r in runs)))])
    doc.table(["", "value"], rows, right=set())


def _sweep_table_section(doc, runs, labels, by_label):
    """One row per (KV manager, offered load), then the runs' timing caveats and assumptions."""
    doc.h2(H_SWEEP_TABLE)
    headers = ["KV manager", "offered (req/s)", "completed (req/s)", "output tok/s",
               "TTFT p99 (s)", "TBT p99 (ms)", "E2E p99 (s)", "max batch", "preemptions",
               "completed / offered"]
    rows = []
    for lab in labels:
        for r in by_label[lab]:
            s = r["summary"]
            rows.append([lab, fgen(r["rate"]), fnum(s["requests_per_s"], 2),
                         fnum(s["output_tokens_per_s"], 0), fnum(s["ttft_s"]["p99"], 3),
                         fnum(s["tbt_s"]["p99"] * 1e3, 2), fnum(s["e2e_s"]["p99"], 3),
                         fint(s["max_running"]), fint(s["preemptions"]),
                         f"{s['requests_completed']:,} / {s['requests_total']:,}"])
    doc.table(headers, rows)
    doc.note("Completed requests/s is completed requests over the makespan (last completion); "
             "TBT p99 is over all tokens.")
    note_caveats(doc, [(r["label"], r["summary"]["timing_caveats"]) for r in runs])
    note_caveats(doc, [(r["label"], r["summary"]["timing_assumptions"]) for r in runs],
                 "Assumed")
