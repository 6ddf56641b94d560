"""Plan directories of several scenarios: the scenarios and how their fleets combine, the
recommendation with each scenario's sizing and whole-fleet check, every candidate ranked by its
combined cost (each on each scenario alone folded away), max QPS per replica on each scenario,
the combined cost, cost against p99 TTFT and KV manager savings. What plans of one scenario show
the same way comes from plan.py."""

import functools
import os

from ..charts.mpl import color
from ..charts.plan import chart_plan_qps
from ..document import Doc
from ..fmt import _names, _plural, fgen, fint, fmoney, fnum
from ..headings import H_CANDIDATES, H_PLAN_QPS, H_RECOMMENDATION, H_SCENARIOS
from ..inputs.plan import plan_model_name
from ..inputs.plan_scenarios import read_plan_scenarios
from ..verdicts import (check_failure_text, rec_replicas_by_scenario, slo_rows,
                        verdict_plan_scenarios)
from .common import dir_name
from .plan import (LATENCIES, _off_scale_note, _plan_cost_section, _plan_pareto_section,
                   _savings_section, _uniq, candidate_ranker, candidate_tables,
                   note_candidate_caveats, ranking)

# plan.json's `combine`, in words.
COMBINE_WORDS = {
    "one_fleet": ("One fleet serves every scenario, each in turn: it has the most replicas any "
                  "scenario needs, and its cost is that fleet's."),
    "separate_fleets": ("Each scenario has its own fleet of the same deployment: replicas, GPUs "
                        "and cost per hour are the sums of the scenarios' fleets."),
}

# What the fleets of each combine rule are sized from, for the cost chart's caption.
COMBINE_SIZED = {
    "one_fleet": "each scenario's max QPS per replica, the fleet as large as the largest need",
    "separate_fleets": "each scenario's max QPS per replica, the scenarios' fleets added",
}


def report_plan_scenarios(d, root):
    """(doc, build) of plan directory `d` of several scenarios (`root`: its plan.json, loaded):
    plan.json (with plan.csv and plan_scenarios.csv) read and checked; build() draws."""
    plan = read_plan_scenarios(d, root)
    plan["rank_key"] = candidate_ranker(plan["rec"])
    models = [plan_model_name(s["scenario"]) for s in plan["scenarios"]]
    models = ", ".join(dict.fromkeys(m for m in models if m))
    loads = ", ".join(f"{s['name']} {fgen(s['target'])} QPS" for s in plan["scenarios"])
    doc = Doc(f"kvsim plan: {models + ', ' if models else ''}{loads}, "
              f"{len(plan['cands'])} candidates")
    return doc, functools.partial(_build, doc, d, plan)


def _build(doc, d, plan):
    """Fills the document, section by section."""
    cands, rec = plan["cands"], plan["rec"]
    doc.verdict(verdict_plan_scenarios(plan))
    files = [f for f in ("plan.json", "plan.csv", "plan_scenarios.csv")
             if os.path.exists(os.path.join(d, f))]
    doc.p(f"Plan directory `{dir_name(d)}` written by `kvsim plan`"
          + (f" from `{plan['plan_file']}`" if plan["plan_file"] else "")
          + f": {_names(files)}.")
    _scenarios_section(doc, plan)
    _recommendation_section(doc, plan)
    order = _candidates_section(doc, plan)
    gpus = list(dict.fromkeys(c["gpu"] for c in cands))
    kvs = list(dict.fromkeys(c["kv_label"] for c in cands))
    kv_color = {k: color(i) for i, k in enumerate(kvs)}
    _qps_section(doc, plan, kv_color, kvs)
    meet = [cands[i] for i in order if cands[i]["meets_slo"]]  # cheapest first
    _plan_cost_section(doc, cands, meet, rec, None, kv_color, kvs,
                       title="Cost per hour of the fleet serving every scenario, candidates "
                       "that meet every scenario's SLOs",
                       sized=COMBINE_SIZED[plan["combine"]])
    _plan_pareto_section(doc, cands, meet, rec, kv_color, kvs, gpus,
                         about=" Cost is the fleet serving every scenario; p99 TTFT is one "
                         "replica's at its fleet's share of the target on the scenario that "
                         "needs the most replicas.")
    _savings_section(doc, plan["savings"])


def _arrivals(process):
    return f"{process}, at each probe's rate" + (" (trace time-scaled)" if process == "trace"
                                                 else "")


# The rows of the scenarios table: (name, the text of a scenario of _read_scenario).
SCENARIO_ROWS = (
    ("target load", lambda s: f"{fgen(s['target'])} requests/s"),
    ("model", lambda s: f"{s['scenario']['model']} (card {s['scenario']['model_card']})"),
    ("scenario file", lambda s: s["scenario"]["config"]),
    ("trace", lambda s: s["scenario"]["trace"] or "none"),
    ("arrivals", lambda s: _arrivals(s["scenario"]["arrival_process"])),
    ("seed", lambda s: str(s["scenario"]["seed"])),
    ("requests per probe", lambda s: fint(s["scenario"]["probe_requests"])),
    ("SLOs", lambda s: "; ".join(slo_rows(s["slo"])) or "none"),
)


def _scenarios_section(doc, plan):
    """The scenarios side by side, how their fleets combine, the candidate space, the SLOs as
    kvsim applied them (folded away) and the plan's warnings."""
    doc.h2(H_SCENARIOS)
    scenarios, cands = plan["scenarios"], plan["cands"]
    doc.p(f"{_plural(len(scenarios), 'scenario')}, each candidate sized for every one. "
          + COMBINE_WORDS[plan["combine"]])
    doc.table([""] + [s["name"] for s in scenarios],
              [[name] + [text(s) for s in scenarios] for name, text in SCENARIO_ROWS],
              right=set())
    doc.table(["candidate space", "values"],
              [["GPUs", _uniq(cands, "gpu")],
               ["tensor parallel", _uniq(cands, "tensor_parallel")],
               ["KV managers", _uniq(cands, "kv_label")],
               ["schedulers", _uniq(cands, "scheduler")]], right=set())
    with doc.details("The SLOs as kvsim applied them, per scenario"):
        for s in scenarios:
            doc.p(f"{s['name']}:")
            doc.bullets(s["slo_applied"] or ["none"])
    for w in plan["warnings"]:
        doc.note(f"Plan warning: {w}")


def _recommendation_section(doc, plan):
    """The recommended fleet, then per scenario its sizing and whole-fleet check, and its p99
    latencies beside one replica's; or the plan's infeasible text."""
    doc.h2(H_RECOMMENDATION)
    rec = plan["rec"]
    if rec is None:
        doc.p(f"{plan['infeasible_text']}.")
        return
    doc.p(f"{rec['replicas']} x `{rec['candidate']}` ({_plural(rec['gpus'], 'GPU')}, "
          f"{fmoney(rec['cost_per_hour'])}/hour): {_fleet_text(plan)}; "
          + _verified_text(rec) + ".")
    checks = {c["scenario"]: c for c in rec["checks"]}
    targets = {s["name"]: s["target"] for s in plan["scenarios"]}
    slos = {s["name"]: s["slo"] for s in plan["scenarios"]}
    doc.table(["scenario", "target (req/s)", "QPS / replica", "binding SLO", "replicas (sizing)",
               "replicas (whole-fleet check)", "whole-fleet check"],
              [[b["scenario"], fgen(targets[b["scenario"]]), fgen(b["max_qps_per_replica"]),
                b["binding_slo"] or "—", str(b["replicas"]) if b["meets_slo"] else "—",
                _check_replicas(checks.get(b["scenario"])),
                _check_text(checks.get(b["scenario"]), slos[b["scenario"]])]
               for b in rec["by"]], right={1, 2, 4, 5})
    doc.note("Per scenario: one replica's max QPS within that scenario's SLOs, the SLO missed at "
             "the lowest failing rate, the replicas its target load needs by division, and those "
             "its whole-fleet run at the target load behind a least-outstanding router ended "
             "with" + (" (the one fleet's)" if plan["combine"] == "one_fleet" else "") + ".")
    _latency_tables(doc, rec, targets)
    if plan["tie"]:
        doc.note(f"Tie: {plan['tie']}.")


def _fleet_text(plan):
    """How the recommended fleet is made of the scenarios' fleets."""
    rec = plan["rec"]
    if plan["combine"] == "one_fleet":
        text = ("one fleet serving every scenario in turn, sized for the most any needs ("
                + ", ".join(f"{b['replicas']} for {b['scenario']}" for b in rec["by"]) + ")")
    else:
        each = rec_replicas_by_scenario(rec)
        text = "separate fleets, " + " + ".join(f"{each[s['name']]} for {s['name']}"
                                                for s in plan["scenarios"])
    if rec["replicas"] > rec["estimated_replicas"]:
        text += (f", {rec['replicas'] - rec['estimated_replicas']} replica(s) more than the "
                 f"{rec['estimated_replicas']} the sizing gave")
    return text


def _verified_text(rec):
    if not rec["checks"]:
        return "not verified: the plan ran no whole-fleet simulation"
    if rec["verified"]:
        return "verified: the whole-fleet run of every scenario met its SLOs"
    failed = [c["scenario"] for c in rec["checks"] if not c["verified"]]
    return f"NOT verified on {_names(failed)}"


def _check_replicas(check):
    return str(check["replicas"]) if check is not None else "—"


def _check_text(check, slo):
    """One scenario's whole-fleet check in words (`slo`: that scenario's SLOs)."""
    if check is None:
        return "not run"
    if check["verified"]:
        return (f"verified: {_plural(check['verify_replicas'], 'replica')}, "
                f"{fint(check['verify_requests_completed'])} requests completed")
    return "NOT verified: " + check_failure_text(check, slo)


def _latency_tables(doc, rec, targets):
    """p99 latencies per scenario, one replica at its max QPS beside the whole fleet at the
    target load; every percentile folded away."""
    checks = {c["scenario"]: c for c in rec["checks"]}
    rows = []
    for b in rec["by"]:
        fleet = checks[b["scenario"]]["verify"] if b["scenario"] in checks else None
        row = [b["scenario"]]
        for k, _, scale, _ in LATENCIES:
            row += [fnum(b["lat"][k]["p99"] * scale, 3),
                    fnum(fleet[k]["p99"] * scale, 3) if fleet else "—"]
        rows.append(row)
    headers = ["scenario"]
    for _, name, _, unit in LATENCIES:
        headers += [f"{name} p99, one replica ({unit})", f"{name} p99, whole fleet ({unit})"]
    doc.table(headers, rows)
    with doc.details("p50, p90 and p99 per scenario"):
        for b in rec["by"]:
            fleet = checks[b["scenario"]]["verify"] if b["scenario"] in checks else None
            doc.table([f"{b['scenario']}: latency", "one replica at its max QPS",
                       f"whole fleet at {fgen(targets[b['scenario']])} QPS"],
                      [[f"{name} {q} ({unit})", fnum(b["lat"][k][q] * scale, 3),
                        fnum(fleet[k][q] * scale, 3) if fleet else "—"]
                       for k, name, scale, unit in LATENCIES for q in ("p50", "p90", "p99")])


def _candidates_section(doc, plan):
    """Every candidate ranked by its combined cost (candidate_tables), each on each scenario
    alone folded away, then the timing caveats and assumptions. Returns the ranking."""
    doc.h2(H_CANDIDATES)
    order = ranking(plan)
    rule = plan["ranking_rule"]
    candidate_tables(doc, plan["cands"], order,
                     "Listed by the cost per hour of the fleet serving every scenario, those "
                     "that meet every scenario's SLOs first"
                     + (f" (kvsim's ranking: {rule})" if rule else "")
                     + "; candidates are named GPU/TP/KV manager/scheduler. Replicas, GPUs and "
                     "cost are the combined fleet's; QPS per replica, binding SLO and latencies "
                     "are those of the scenario that needs the most replicas (the binding SLO "
                     "names it), one replica at its highest passing rate.")
    rows = []
    for i in order:
        for b in plan["cands"][i]["by"]:
            ok = b["meets_slo"]
            rows.append([b["candidate"], b["scenario"], "yes" if ok else "no",
                         fgen(b["max_qps_per_replica"]), b["binding_slo"] or "—",
                         str(b["replicas"]) if ok else "—",
                         fmoney(b["cost_per_hour"]) if ok else "—",
                         fnum(b["lat"]["ttft_s"]["p99"], 3), b["note"]])
    with doc.details("Each candidate on each scenario alone"):
        doc.table(["candidate", "scenario", "meets SLOs", "QPS / replica", "binding SLO",
                   "replicas", "$/hour", "TTFT p99 (s)", "note"], rows,
                  right={3, 5, 6, 7}, small=True)
    note_candidate_caveats(doc, plan["cands"])
    return order


def _qps_section(doc, plan, kv_color, kvs):
    """One chart per scenario: each candidate's max QPS per replica on it, against its target."""
    doc.h2(H_PLAN_QPS)
    for k, s in enumerate(plan["scenarios"]):
        by = [c["by"][k] for c in plan["cands"]]
        png, info = chart_plan_qps(by, s["target"], kv_color, kvs)
        doc.chart(f"plan_max_qps_{k + 1}.png", png, f"Max QPS per replica on {s['name']}",
                  "Candidates are named GPU/TP/KV manager/scheduler. Colour: KV manager; "
                  f"hatched bars miss {s['name']}'s SLOs; the dotted line is its target load."
                  + _off_scale_note(by, info["clipped"],
                                    lambda c: f"{fgen(c['max_qps_per_replica'], 3)} req/s"))
