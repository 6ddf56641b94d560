"""Turn a kvsim output directory into DIR/report.html, DIR/report.md and DIR/report_files/*.png.

Usage: /usr/bin/python3 tools/report/kvsim_report.py DIR

DIR is one of (detected in this order):
  plan dir         plan.json (+ plan.csv)                        written by `kvsim plan`
  sweep dir        sweep.json                                    written by `kvsim sweep`
  compare dir      compare.json and DIR/<label>/{requests,timeseries}.csv   `kvsim compare`
  run dir          summary.json, requests.csv, timeseries.csv               `kvsim run`
  calibration dir  profile.txt (tools/kvprobe/PROFILE_FORMAT.md)            kvprobe

Every fact in a report comes from the files kvsim wrote into DIR (JSON, CSV, manifest.json), so a
directory reports the same wherever it is moved and from whatever working directory. A run's
config.yaml is shown verbatim, never parsed. A CSV the directory's manifest.json does not list was
not written (output switched off, or a sweep point); a fact the JSON does not hold is reported as
"not recorded". A directory without manifest.json whose files say a kvsim that writes manifests
wrote them (sweep.json's or plan.json's kvsim_version, a summary's load object) is refused: its
files were changed, or copied without it. Every run a sweep.json lists must have its folder,
DIR/<label>/rate_<qps>/.

Each page opens with a verdict: one or two sentences stating the result, computed from the data
(the lowest and highest p99 TTFT of a comparison, the highest load each manager of a sweep
sustains, a plan's recommendation, its cost and the SLO that binds). Latency distributions are
complementary CDFs on a log scale with p50/p90/p99 marked; plan charts end their axes past the bulk
of the candidates and label the few beyond; tables wrap to the page width.

timeseries.csv has one row per iteration or, with output.timeseries_interval_s > 0, one row per
replica per interval; the layout is told from its header. The KV memory chart draws allocated and
live bytes, and cached bytes (kept for reuse, held for no running request) for runs that have any.

report.html is self-contained: the charts are embedded as base64 PNG data URIs. report.md
references the same charts under report_files/. Output is deterministic for given inputs.

Exit status: 0 on success; 2 for bad input (a missing or malformed file, named with its line
where there is one) or bad usage; 1 when the outputs cannot be written.

The package (tools/report/kvsim_report.py puts its directory on sys.path and calls cli.main):
  cli.py                  detect the kind of DIR, verify manifests, build, write, exit status
  errors.py, fmt.py, headings.py   InputError/OutputError, number formatting, section headings
  inputs/                 reading kvsim's outputs: files.py (text, JSON through Node, CSV),
                          summary.py, run_dir.py (requests.csv, timeseries.csv), manifest.py,
                          compare.py, sweep.py, plan.py (plan.json, plan.csv), profile.py
  document.py             the document (Doc) and its HTML and Markdown renderings
  series.py               the step functions the run charts draw, per-request latencies
  verdicts.py             the opening sentences of every kind of page
  charts/                 mpl.py (matplotlib, shared helpers), ccdf.py, run.py, sweep.py,
                          plan.py, profile.py
  reports/                one module per kind: run.py (run and compare), sweep.py, plan.py,
                          calibration.py; common.py what they share
"""

from .cli import main

__all__ = ["main"]
