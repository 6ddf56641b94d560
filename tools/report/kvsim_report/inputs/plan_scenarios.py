"""A plan directory of several scenarios: plan.json with `combine` and `scenarios` in place of
one scenario's target_qps, scenario, slo and slo_applied; each candidate combined over the
scenarios with its result on each (`by_scenario`); the recommendation with one whole-fleet check
per scenario (`checks`). plan.csv (one row per candidate) and plan_scenarios.csv (one row per
candidate per scenario) are checked to list the same candidates, nothing read from them."""

import os

from ..errors import InputError
from .files import load_csv
from .plan import _read_candidate, _read_slo, read_latencies, read_plan_outcome

# plan.json's `combine`: how the scenarios' fleets make one.
COMBINE_RULES = ("one_fleet", "separate_fleets")

SCENARIO_TEXTS = ("config", "model", "model_card", "trace", "arrival_process")


def is_scenarios_plan(root):
    """Whether plan.json (a Node) is of several scenarios: it has a `scenarios` list."""
    return root.has("scenarios")


def read_plan_scenarios(d, root):
    """plan.json of plan directory `d` of several scenarios (`root`: it loaded, a Node), checked,
    as a dict: plan_file, combine (COMBINE_RULES), scenarios (_read_scenario of each, in the
    file's order), then what read_plan_outcome reads, each candidate with `scenario` (its binding
    scenario's name) and `by` (its result on each scenario, in the scenarios' order); rec, when
    there is one, also holds its candidate's scenario and by, estimated_replicas,
    verify_replicas, verify_requests_per_replica, verify_too_few_requests and checks (_read_check
    of each)."""
    plan = {"plan_file": root["plan"].str() if root.has("plan") else ""}
    combine = root["combine"]
    if combine.str() not in COMBINE_RULES:
        combine._fail(f"expected one of {', '.join(COMBINE_RULES)}, got {combine.str()!r}")
    plan["combine"] = combine.str()
    plan["scenarios"] = _read_scenarios(root["scenarios"])
    names = [s["name"] for s in plan["scenarios"]]
    plan.update(read_plan_outcome(d, root, lambda n: _read_combined(n, names, plan["combine"])))
    rec = plan["rec"]
    if rec is not None:
        chosen = next(c for c in plan["cands"] if c["candidate"] == rec["candidate"])
        rec["scenario"], rec["by"] = chosen["scenario"], chosen["by"]
        _read_rec_checks(root["recommendation"], rec, names)
    _check_plan_scenarios_csv(os.path.join(d, "plan_scenarios.csv"),
                              [c["candidate"] for c in plan["cands"]], names)
    return plan


def _read_scenarios(node):
    """plan.json's `scenarios`: a non-empty list of scenarios with distinct names."""
    scenarios = []
    for n in node.items():
        s = _read_scenario(n)
        if any(s["name"] == t["name"] for t in scenarios):
            n["name"]._fail(f"names another scenario again: {s['name']!r}")
        scenarios.append(s)
    if not scenarios:
        node._fail("empty list")
    return scenarios


def _read_scenario(n):
    """One entry of plan.json's `scenarios`: name, target (QPS), scenario (config, model,
    model_card, trace, arrival_process, seed, probe_requests), slo (plain values) and slo_applied
    (kvsim's words for each SLO)."""
    name = n["name"].str()
    if not name:
        n["name"]._fail("empty scenario name")
    sc = n["scenario"]
    scenario = {k: sc[k].str() for k in SCENARIO_TEXTS}
    scenario["seed"] = sc["seed"].int()
    scenario["probe_requests"] = sc["probe_requests"].int()
    return {"name": name, "target": n["target_qps"].nonneg(), "scenario": scenario,
            "slo": _read_slo(n["slo"]),
            "slo_applied": [t.str() for t in n["slo_applied"].items()]}


def _read_combined(n, names, combine):
    """A candidate of a plan of several scenarios (its combined result, read as one scenario's)
    with `scenario`, its binding scenario (one of `names`), and `by`, its result on each scenario
    in plan.json's `by_scenario` (one per scenario, in the order of `names`; each with its
    `scenario`). A candidate that
    meets every scenario's SLOs must have the replicas `combine` makes of the scenarios'."""
    c = _read_candidate(n)
    c["scenario"] = n["scenario"].str()
    if c["scenario"] not in names:
        n["scenario"]._fail(f"names no scenario: {c['scenario']!r}")
    entries = n["by_scenario"].items()
    if len(entries) != len(names):
        n["by_scenario"]._fail(f"{len(entries)} entries, expected one per scenario "
                               f"({len(names)})")
    c["by"] = []
    for e, name in zip(entries, names):
        if e["scenario"].str() != name:
            e["scenario"]._fail(f"expected {name!r} (the scenarios' order), got "
                                f"{e['scenario'].str()!r}")
        b = _read_candidate(e)
        if b["candidate"] != c["candidate"]:
            e["candidate"]._fail(f"expected {c['candidate']!r}, got {b['candidate']!r}")
        b["scenario"] = name
        c["by"].append(b)
    if c["meets_slo"]:
        each = [b["replicas"] for b in c["by"]]
        want = sum(each) if combine == "separate_fleets" else max(each)
        if c["replicas"] != want:
            n["replicas"]._fail(f"{c['replicas']}, but {combine} of the scenarios' replicas "
                                f"({', '.join(map(str, each))}) gives {want}")
    return c


def _read_rec_checks(recn, rec, names):
    """Adds to `rec` the fields of plan.json's recommendation (`recn`) that a plan of several
    scenarios writes: its estimate before verification, the binding check's verify_* fields,
    and `checks`: _read_check of each (one scenario each, none twice; empty when the plan did not
    verify)."""
    rec["estimated_replicas"] = recn["estimated_replicas"].int()
    rec["verify_replicas"] = recn["verify_replicas"].int()
    rec["verify_requests_per_replica"] = recn["verify_requests_per_replica"].int()
    rec["verify_too_few_requests"] = recn["verify_too_few_requests"].bool()
    rec["checks"] = []
    for n in recn["checks"].items():
        check = _read_check(n)
        if check["scenario"] not in names:
            n["scenario"]._fail(f"names no scenario: {check['scenario']!r}")
        if any(check["scenario"] == c["scenario"] for c in rec["checks"]):
            n["scenario"]._fail(f"a second check of {check['scenario']!r}")
        rec["checks"].append(check)


def _read_check(n):
    """One whole-fleet check of the recommendation: its scenario, the replicas it needs, whether
    it verified, and its last whole-fleet run (replicas, requests per replica, whether too few,
    the SLO closest to binding, requests completed, latencies as `verify`)."""
    return {"scenario": n["scenario"].str(), "replicas": n["replicas"].int(),
            "verified": n["verified"].bool(), "verify_replicas": n["verify_replicas"].int(),
            "verify_requests_per_replica": n["verify_requests_per_replica"].int(),
            "verify_too_few_requests": n["verify_too_few_requests"].bool(),
            "verify_binding_slo": n["verify_binding_slo"].str(),
            "verify_requests_completed": n["verify_requests_completed"].int(),
            "verify": read_latencies(n["verify_latencies"])}


def _check_plan_scenarios_csv(csv_path, cands, names):
    """Checks that plan_scenarios.csv, where present, has one row per candidate (`cands`, in
    order) per scenario (`names`, in order)."""
    if not os.path.exists(csv_path):
        return
    rows = load_csv(csv_path, ("candidate", "scenario"), texts=("candidate", "scenario"))
    want = [(c, s) for c in cands for s in names]
    got = list(zip(rows["candidate"], rows["scenario"]))
    if len(got) != len(want):
        raise InputError(f"{csv_path}: {len(got)} rows, plan.json has {len(cands)} candidates "
                         f"x {len(names)} scenarios")
    if got != want:
        raise InputError(f"{csv_path}: its rows are not plan.json's candidates by scenario, in "
                         "its order")
