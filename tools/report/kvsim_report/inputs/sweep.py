"""A sweep directory: sweep.json {kvsim_version, rates_qps, runs: [{label, rate_qps, summary}]}
and one folder per run, DIR/<label>/rate_<qps>/ (summary.json, config.yaml, manifest.json)."""

import os

from ..errors import InputError
from ..fmt import fgen
from .files import Node, dir_label, load_json
from .manifest import require_manifest, summary_mark, version_mark
from .summary import read_summary


def read_sweep(d):
    """(rates, runs, labels) of sweep directory `d`: rates_qps as listed; runs as
    [{label, rate, summary}] in the file's order, no (label, rate) twice, each with its folder
    (check_run_folders); labels: the KV managers in order of first appearance."""
    path = os.path.join(d, "sweep.json")
    root = Node(load_json(path), path)
    rates = [n.nonneg() for n in root["rates_qps"].items()]
    runs = []
    labels = []
    for e in root["runs"].items():
        label = dir_label(e["label"])
        rate = e["rate_qps"].nonneg()
        summary = read_summary(e["summary"])
        if label not in labels:
            labels.append(label)
        runs.append({"label": label, "rate": rate, "summary": summary})
    if not runs:
        raise InputError(f"{path}: runs: empty list")
    seen = set()
    for r in runs:
        key = (r["label"], r["rate"])
        if key in seen:
            raise InputError(f"{path}: runs: label {r['label']!r} at {fgen(r['rate'])} QPS twice")
        seen.add(key)
    check_run_folders(d, path, version_mark(root), runs)
    return rates, runs, labels


def rate_folder_names(rate):
    """The names kvsim gives the folder of a run at `rate` QPS, the current one first:
    rate_<the shortest text that reads back as the rate> ("rate_4", "rate_12.5",
    "rate_0.1"), as C++'s fmt "{}" writes a double; before that, rate_<6 significant digits>
    (printf's %g)."""
    shortest = repr(float(rate))
    if shortest.endswith(".0"):
        shortest = shortest[:-2]
    return [f"rate_{shortest}", f"rate_{rate:g}"]


def check_run_folders(d, path, version, runs):
    """Each run that sweep.json (`path`) lists has its folder DIR/<label>/rate_<qps>/, with a
    manifest when sweep.json's kvsim_version (`version`, version_mark) or the run's summary say a
    kvsim that writes one wrote it; so has `d` itself."""
    marks = [version] + [summary_mark(r["summary"]) for r in runs]
    require_manifest(d, path, next((m for m in marks if m), None))
    for r in runs:
        folders = [os.path.join(d, r["label"], name) for name in rate_folder_names(r["rate"])]
        folder = next((f for f in folders if os.path.isdir(f)), None)
        if folder is None:
            raise InputError(f"{folders[0]}: missing, though {path} lists the run of "
                             f"{r['label']!r} at {fgen(r['rate'])} QPS, whose outputs kvsim "
                             "writes there")
        require_manifest(folder, path, version or summary_mark(r["summary"]))
