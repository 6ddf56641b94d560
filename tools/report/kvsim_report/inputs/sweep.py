"""A sweep directory's sweep.json: {rates_qps, runs: [{label, rate_qps, summary}]}."""

import os

from ..errors import InputError
from ..fmt import fgen
from .files import Node, load_json
from .summary import read_summary


def read_sweep(d):
    """(rates, runs, labels) of sweep directory `d`: rates_qps as listed; runs as
    [{label, rate, summary}] in the file's order, no (label, rate) twice; labels: the KV managers
    in order of first appearance."""
    path = os.path.join(d, "sweep.json")
    root = Node(load_json(path), path)
    rates = [n.nonneg() for n in root["rates_qps"].items()]
    runs = []
    labels = []
    for e in root["runs"].items():
        label = e["label"].str()
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
    return rates, runs, labels
