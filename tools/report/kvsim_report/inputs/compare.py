"""A comparison directory: compare.json (a list of {label, summary}) and one run directory per
label."""

import os

from ..errors import InputError
from .files import Node, dir_label, load_json
from .manifest import require_manifest, summary_mark
from .run_dir import load_run_dir
from .summary import read_summary


def read_compare(d):
    """The runs of comparison directory `d`, in compare.json's order: a list of load_run_dir's
    dicts, each label checked to be a usable directory name and unique. `d` and each label's
    directory must have a manifest when compare.json's summaries say a kvsim that writes one
    wrote them (require_manifest)."""
    path = os.path.join(d, "compare.json")
    root = Node(load_json(path), path)
    entries = root.items()
    if not entries:
        raise InputError(f"{path}: empty list (no runs)")
    listed = []
    seen = set()
    for e in entries:
        label = dir_label(e["label"])
        if label in seen:
            e["label"]._fail(f"duplicate label {label!r}")
        seen.add(label)
        listed.append((label, read_summary(e["summary"])))
    marks = [summary_mark(summary) for _, summary in listed]
    require_manifest(d, path, next((m for m in marks if m), None))
    return [load_run_dir(os.path.join(d, label), label, summary, path)
            for label, summary in listed]
