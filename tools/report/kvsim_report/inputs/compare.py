"""A comparison directory: compare.json (a list of {label, summary}) and one run directory per
label."""

import os

from ..errors import InputError
from .files import Node, load_json
from .run_dir import load_run_dir
from .summary import read_summary


def read_compare(d):
    """The runs of comparison directory `d`, in compare.json's order: a list of load_run_dir's
    dicts, each label checked to be a usable directory name and unique."""
    path = os.path.join(d, "compare.json")
    root = Node(load_json(path), path)
    entries = root.items()
    if not entries:
        raise InputError(f"{path}: empty list (no runs)")
    runs = []
    seen = set()
    for e in entries:
        label = e["label"].str()
        if not label or "/" in label or label in (".", ".."):
            e["label"]._fail(f"not a usable directory name: {label!r}")
        if label in seen:
            e["label"]._fail(f"duplicate label {label!r}")
        seen.add(label)
        summary = read_summary(e["summary"])
        runs.append(load_run_dir(os.path.join(d, label), label, summary))
    return runs
