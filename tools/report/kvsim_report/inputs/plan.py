"""A plan directory: plan.json (every fact the plan report shows) and plan.csv (checked to be a
table of the same candidates, nothing read from it). This module reads plans of one scenario and
holds what plans of several (plan_scenarios.py) read the same way."""

import os

from ..errors import InputError
from .files import Node, load_csv, load_json
from .manifest import require_manifest, version_mark
from .summary import _assumptions, _caveats


def _read_candidate(n):
    """A plan.json candidate (or the recommendation), checked, as a plain dict; `lat` holds its
    latencies at its max QPS, `lat_target` those at its fleet's share of the target."""
    c = {
        "candidate": n["candidate"].str(), "gpu": n["gpu"].str(),
        "tensor_parallel": n["tensor_parallel"].int(), "kv_manager": n["kv_manager"].str(),
        "kv_label": n["kv_label"].str(), "scheduler": n["scheduler"].str(),
        "status": n["status"].str(), "note": n["note"].str(),
        "max_qps_per_replica": n["max_qps_per_replica"].nonneg(),
        "max_qps_per_gpu": n["max_qps_per_gpu"].nonneg(),
        "binding_slo": n["binding_slo"].str(), "replicas": n["replicas"].int(),
        "gpus": n["gpus"].int(), "cost_per_hour": n["cost_per_hour"].nonneg(),
        "cost_per_million_output_tokens": n["cost_per_million_output_tokens"].nonneg(),
        "meets_slo": n["meets_slo"].bool(), "pareto": n["pareto"].bool(),
        "timing_caveats": _caveats(n),
        "timing_assumptions": _assumptions(n),
    }
    c["lat"] = read_latencies(n["latencies_at_max"])
    # At the fleet's share of the target (plans written before kvsim recorded it: at max).
    c["lat_target"] = (read_latencies(n["latencies_at_target"]) if n.has("latencies_at_target")
                       else c["lat"])
    return c


def read_latencies(node):
    """{ttft_s, tbt_s, e2e_s: {p50, p90, p99}} of a plan.json latencies object (null: NaN)."""
    return {k: {q: node[k][q].num(allow_null=True) for q in ("p50", "p90", "p99")}
            for k in ("ttft_s", "tbt_s", "e2e_s")}


PLAN_CSV_COLUMNS = ("candidate", "max_qps_per_replica", "cost_per_hour", "meets_slo")


def load_plan_json(d):
    """plan.json of plan directory `d`, parsed, as a Node; `d` must have a manifest when
    plan.json records the kvsim_version that wrote it (require_manifest)."""
    path = os.path.join(d, "plan.json")
    root = Node(load_json(path), path)
    require_manifest(d, path, version_mark(root))
    return root


def read_plan(d, root=None):
    """plan.json of plan directory `d` (`root`: it already loaded by load_plan_json), one
    scenario's, checked, as a dict: target (QPS), plan_file (the plan's path as kvsim was given
    it, "" when not recorded), scenario (_read_plan_scenario), slo (_read_slo), then what
    read_plan_outcome reads."""
    if root is None:
        root = load_plan_json(d)
    plan = {"target": root["target_qps"].nonneg(),
            "plan_file": root["plan"].str() if root.has("plan") else "",
            "scenario": _read_plan_scenario(root.get("scenario")),
            "slo": _read_slo(root.get("slo"))}
    plan.update(read_plan_outcome(d, root, _read_candidate))
    return plan


def read_plan_outcome(d, root, read_candidate):
    """What plan.json holds of the candidates, whatever its scenarios, checked: cands
    (read_candidate of each, in the file's order), savings, warnings, ranking_rule, tie, rec (the
    recommended candidate with its whole-fleet verification, or None when the plan is infeasible)
    and infeasible_text (plan.json's recommendation when it is a string, else None). plan.csv,
    where present, must list the same candidates in the same order."""
    cands = [read_candidate(n) for n in root["candidates"].items()]
    if not cands:
        raise InputError(f"{root.file}: candidates: empty list")
    names = [c["candidate"] for c in cands]
    for p in root["pareto"].items():
        if p.str() not in names:
            p._fail(f"names no candidate: {p.str()!r}")
    plan = {"cands": cands}
    plan["savings"] = [{"manager": s["manager"].str(), "versus": s["versus"].str(),
                        "cost": s["cost_per_hour"].nonneg(),
                        "versus_cost": s["versus_cost_per_hour"].nonneg(),
                        "saving": s["saving"].num()} for s in root["kv_savings"].items()]
    # Written by newer kvsim versions only: absent, they are left out.
    plan["warnings"] = [w.str() for w in root["warnings"].items()] if root.has("warnings") else []
    plan["ranking_rule"] = root["ranking_rule"].str() if root.has("ranking_rule") else ""
    plan["tie"] = root["tie"].str() if root.has("tie") else ""
    plan["rec"], plan["infeasible_text"] = _read_recommendation(root["recommendation"], names)
    _check_plan_csv(os.path.join(d, "plan.csv"), names)
    return plan


def _read_recommendation(recn, names):
    """(rec, infeasible_text) of plan.json's `recommendation`: a string when no candidate meets
    the SLOs, (None, that string); else (the candidate with verified, verify_binding_slo,
    verify_requests_completed and verify latencies, None)."""
    if isinstance(recn.value, str):
        return None, recn.value
    rec = _read_candidate(recn)
    rec["verified"] = recn["verified"].bool()
    rec["verify_binding_slo"] = recn["verify_binding_slo"].str() \
        if recn.has("verify_binding_slo") else ""
    rec["verify_requests_completed"] = recn["verify_requests_completed"].int() \
        if recn.has("verify_requests_completed") else None
    rec["verify"] = read_latencies(recn["verify_latencies"])
    if rec["candidate"] not in names:
        recn["candidate"]._fail(f"names no candidate: {rec['candidate']!r}")
    return rec, None


def _check_plan_csv(csv_path, names):
    """Checks that plan.csv, where present, is a table of the candidates `names`, in that
    order."""
    if os.path.exists(csv_path):
        rows = load_csv(csv_path, PLAN_CSV_COLUMNS, texts=PLAN_CSV_COLUMNS)
        if len(rows["candidate"]) != len(names):
            raise InputError(f"{csv_path}: {len(rows['candidate'])} candidate rows, plan.json "
                             f"has {len(names)}")
        if rows["candidate"] != names:
            raise InputError(f"{csv_path}: its candidates are not plan.json's, in its order")


def _read_plan_scenario(node):
    """plan.json's `scenario` object (absent in older outputs: None): what the plan's base
    scenario was. Fields a kvsim may not write are None."""
    if node is None:
        return None

    def text(key):
        return node[key].str() if node.has(key) else None

    return {"config": text("config"), "model_card": text("model_card"), "model": text("model"),
            "trace": text("trace"), "arrival_process": text("arrival_process"),
            "seed": node["seed"].int() if node.has("seed") else None,
            "probe_requests": node["probe_requests"].int() if node.has("probe_requests")
            else None}


def _read_slo(node):
    """plan.json's `slo` object as plain values (absent in older outputs: None)."""
    if node is None:
        return None
    if not isinstance(node.value, dict):
        node._fail("expected an object")
    slo = {}
    for key, value in node.value.items():
        child = node[key]
        if isinstance(value, dict):
            slo[key] = {q: child[q].num() for q in value}
        elif isinstance(value, bool):
            slo[key] = value
        else:
            slo[key] = child.num()
    return slo


def plan_model_name(scenario):
    """The model of a plan: plan.json's scenario.model, else its model card's file name."""
    if scenario is None:
        return None
    if scenario["model"]:
        return scenario["model"]
    if scenario["model_card"]:
        return os.path.splitext(os.path.basename(scenario["model_card"]))[0]
    return None
