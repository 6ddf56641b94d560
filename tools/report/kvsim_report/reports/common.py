"""What the run, compare and sweep reports share: the scenario table and sentence of runs read
from summary.json, and notes for timing caveats and assumed terms (plan reports too)."""

import os

from ..fmt import fgen, fint, is_num


def note_caveats(doc, labelled, kind="Timing caveat"):
    """One note per distinct timing caveat of (label, caveats) pairs, naming the labels
    it concerns when it does not concern them all; `kind` starts each note."""
    seen = {}
    for label, caveats in labelled:
        for text in caveats:
            seen.setdefault(text, [])
            if label not in seen[text]:
                seen[text].append(label)
    everyone = list(dict.fromkeys(label for label, _ in labelled))
    for text, labels in seen.items():
        which = "" if len(labels) == len(everyone) else f" ({', '.join(labels)})"
        doc.note(f"{kind}{which}: {text}")


def _trace_of(run):
    """The scenario's trace, or "not recorded"."""
    t = run["summary"]["scenario"]["trace"]
    return t if t else "not recorded"


def _arrival_of(run):
    """'poisson, 12 requests/s', the arrival process alone without a rate, or "not recorded"."""
    sc = run["summary"]["scenario"]
    proc, rate = sc["arrival_process"], sc["rate_qps"]
    if not proc:
        return "not recorded"
    if is_num(rate) and rate > 0:
        scaled = " (trace time-scaled)" if proc == "trace" else ""
        return f"{proc}, {fgen(rate)} requests/s{scaled}"
    return proc


SCENARIO_FIELDS = [
    ("model", lambda r: r["summary"]["scenario"]["model"]),
    ("GPU", lambda r: r["summary"]["scenario"]["gpu"]),
    ("tensor parallel (GPUs per replica)",
     lambda r: str(r["summary"]["scenario"]["tensor_parallel"])),
    ("replicas", lambda r: str(r["summary"]["scenario"]["replicas"])),
    ("trace", _trace_of),
    ("arrivals", _arrival_of),
    ("scheduler", lambda r: r["summary"]["scenario"]["scheduler"]),
    ("max_model_len (tokens)", lambda r: fint(r["summary"]["scenario"]["max_model_len"])),
    ("seed", lambda r: str(r["summary"]["scenario"]["seed"])),
    ("timing", lambda r: r["summary"]["timing"]),
]


def _scenario_rows(runs, extra=None):
    """Scenario fields; a field that differs between runs lists each run's value. Returns
    [[name, text]] rows for a two-column table."""
    fields = list(SCENARIO_FIELDS)
    if extra:
        fields += extra
    rows = []
    for name, get in fields:
        values = [get(r) for r in runs]
        if all(v == values[0] for v in values):
            rows.append([name, values[0]])
        else:
            rows.append([name, "; ".join(f"{r['label']}: {v}" for r, v in zip(runs, values))])
    return rows


def _scenario_sentence(s):
    """'Llama-3-8B on 1 x H100-SXM (TP 1), scheduler vllm' of a summary, for page titles."""
    sc = s["scenario"]
    where = f"{sc['tensor_parallel']} x {sc['gpu']} (TP {sc['tensor_parallel']})"
    if sc["replicas"] != 1:
        where = f"{sc['replicas']} replicas of {where}"
    return f"{sc['model']} on {where}, scheduler {sc['scheduler']}"


def dir_name(d):
    """The directory's own name, as the report's first paragraph names it."""
    return os.path.basename(os.path.abspath(d))
