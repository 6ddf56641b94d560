"""Plan directories: the recommendation and its whole-fleet verification, every candidate ranked
as kvsim ranks them, max QPS and cost per candidate, cost against p99 TTFT, KV manager savings.
Plans of several scenarios (plan_scenarios.py) share the candidate tables and the cost, Pareto and
savings sections."""

import functools
import math

from ..charts.mpl import color
from ..charts.plan import chart_plan_cost, chart_plan_pareto, chart_plan_qps
from ..document import Doc
from ..fmt import _names, _plural, fgen, fint, fmoney, fnum, is_num
from ..headings import (H_CANDIDATES, H_PLAN_COST, H_PLAN_PARETO, H_PLAN_QPS, H_PLAN_SAVINGS,
                        H_RECOMMENDATION, H_SCENARIO)
from ..inputs.plan import plan_model_name, read_plan
from ..verdicts import slo_rows, verdict_plan
from .common import dir_name, note_caveats


# plan.json's latencies the reports show: (key, name, scale to the unit, unit).
LATENCIES = (("ttft_s", "TTFT", 1, "s"), ("tbt_s", "TBT", 1e3, "ms"), ("e2e_s", "E2E", 1, "s"))


def candidate_ranker(rec):
    """A sort key (candidate, index in plan.json) for candidates as kvsim ranks them: those that
    meet the SLOs first, cheapest first; at equal cost the recommended one, then the higher max
    QPS per replica, the lower p99 TTFT, the plan's order."""
    chosen = rec["candidate"] if rec is not None else None

    def key(c, i):
        ttft = c["lat"]["ttft_s"]["p99"]
        return (not c["meets_slo"], c["cost_per_hour"], c["candidate"] != chosen,
                -c["max_qps_per_replica"], ttft if is_num(ttft) else math.inf, i)

    return key


def _off_scale_note(cands, names, what):
    if not names:
        return ""
    byname = {c["candidate"]: c for c in cands}
    return (" Off scale (cut at the axis end, so the others stay readable; the value is "
            "written on it): " + "; ".join(f"`{n}` ({what(byname[n])})" for n in names) + ".")


def report_plan(d, root=None):
    """(doc, build) of plan directory `d` of one scenario (`root`: its plan.json, when already
    loaded): plan.json (and plan.csv) read and checked; build() draws."""
    plan = read_plan(d, root)
    cands, target = plan["cands"], plan["target"]
    plan["rank_key"] = candidate_ranker(plan["rec"])
    model = plan_model_name(plan["scenario"])
    title = f"kvsim plan: {model + ', ' if model else ''}target {fgen(target)} QPS, " \
            f"{len(cands)} candidates"
    doc = Doc(title)
    return doc, functools.partial(_build_plan, doc, d, plan, model)


def _build_plan(doc, d, plan, model):
    """Fills a plan's document, section by section."""
    cands, rec, target = plan["cands"], plan["rec"], plan["target"]
    doc.verdict(verdict_plan(cands, rec, target, plan["slo"] or {}, plan["infeasible_text"]))
    doc.p(f"Plan directory `{dir_name(d)}` written by `kvsim plan`"
          + (f" from `{plan['plan_file']}`" if plan["plan_file"] else "")
          + ": plan.json and plan.csv.")
    _plan_scenario_section(doc, plan, model)
    _recommendation_section(doc, plan)
    order = _candidates_section(doc, plan)

    gpus = list(dict.fromkeys(c["gpu"] for c in cands))
    kvs = list(dict.fromkeys(c["kv_label"] for c in cands))
    kv_color = {k: color(i) for i, k in enumerate(kvs)}
    doc.h2(H_PLAN_QPS)
    png, info = chart_plan_qps(cands, target, kv_color, kvs)
    doc.chart("plan_max_qps.png", png, "Max QPS per replica per candidate",
              "Candidates are named GPU/TP/KV manager/scheduler. Colour: KV manager; "
              "hatched bars miss the SLOs."
              + _off_scale_note(cands, info["clipped"],
                                lambda c: f"{fgen(c['max_qps_per_replica'], 3)} req/s"))
    meet = [cands[i] for i in order if cands[i]["meets_slo"]]  # cheapest first
    _plan_cost_section(doc, cands, meet, rec, target, kv_color, kvs)
    _plan_pareto_section(doc, cands, meet, rec, kv_color, kvs, gpus)
    _savings_section(doc, plan["savings"])


def _fact(sc, unrecorded, key, name, show=str):
    """show(sc[key]), or "not recorded" with `name` added to `unrecorded` when plan.json's
    scenario does not record it."""
    value = sc.get(key)
    if value is None:
        unrecorded.append(name)
        return "not recorded"
    return show(value)


def _uniq(cands, key):
    """The candidates' distinct values of `key`, in order, as text."""
    return ", ".join(dict.fromkeys(str(c[key]) for c in cands))


def _model_text(sc, model, unrecorded):
    """The scenario table's model: plan.json's model and card, else the card's file name."""
    card = sc.get("model_card")
    if sc.get("model"):
        return sc["model"] + (f" (card {card})" if card else "")
    if card:
        return f"{model} (the file name of its model card, {card})"
    unrecorded.append("model")
    return "not recorded"


def _plan_scenario_section(doc, plan, model):
    """The plan's base scenario, candidate space, target and SLOs, noting what plan.json does
    not record, then the plan's warnings."""
    doc.h2(H_SCENARIO)
    sc = plan["scenario"] or {}
    cands, slo = plan["cands"], plan["slo"]
    unrecorded = []
    model_text = _model_text(sc, model, unrecorded)
    rows = [["model", model_text],
            ["scenario file", _fact(sc, unrecorded, "config", "scenario file")],
            ["trace", _fact(sc, unrecorded, "trace", "trace")],
            ["arrivals", _fact(sc, unrecorded, "arrival_process", "arrival process",
                               lambda p: f"{p}, at each probe's rate"
                               + (" (trace time-scaled)" if p == "trace" else ""))],
            ["seed", _fact(sc, unrecorded, "seed", "seed")],
            ["requests per probe",
             _fact(sc, unrecorded, "probe_requests", "requests per probe", fint)],
            ["GPUs (candidates)", _uniq(cands, "gpu")],
            ["tensor parallel (candidates)", _uniq(cands, "tensor_parallel")],
            ["KV managers (candidates)", _uniq(cands, "kv_label")],
            ["schedulers (candidates)", _uniq(cands, "scheduler")],
            ["target load", f"{fgen(plan['target'])} requests/s"]]
    if slo is None:
        unrecorded.append("SLOs")
        rows.append(["SLOs", "not recorded"])
    else:
        rows.append(["SLOs", "; ".join(slo_rows(slo)) or "none"])
        if slo.get("stability") is True and "stability_slack_s" not in slo:
            unrecorded.append("stability slack")
    doc.table(["", "value"], rows, right=set())
    if unrecorded:
        doc.note(f"plan.json does not record the {_names(unrecorded)}, so "
                 + ("it is" if len(unrecorded) == 1 else "they are")
                 + " shown as not recorded.")
    for w in plan["warnings"]:
        doc.note(f"Plan warning: {w}")


def _recommendation_section(doc, plan):
    """The recommended fleet, whether the whole-fleet run verified it, and its latencies beside
    one replica's; or the plan's infeasible text."""
    doc.h2(H_RECOMMENDATION)
    rec, cands, target = plan["rec"], plan["cands"], plan["target"]
    if rec is None:
        doc.p(f"{plan['infeasible_text']}.")
        return
    sized = next(c for c in cands if c["candidate"] == rec["candidate"])["replicas"]
    added = (f" with {rec['replicas'] - sized} replica(s) added to the {sized} the "
             "sizing gave" if rec["replicas"] > sized else "")
    verdict = ("verified: the whole fleet, simulated at the target load behind a "
               f"least-outstanding router, met the SLOs{added}" if rec["verified"] else
               "NOT verified: the whole-fleet run missed "
               + (rec["verify_binding_slo"] or "an SLO")
               + " even with the replicas added")
    doc.p(f"{rec['replicas']} x `{rec['candidate']}` ({_plural(rec['gpus'], 'GPU')}, "
          f"{fmoney(rec['cost_per_hour'])}/hour, "
          f"{fmoney(rec['cost_per_million_output_tokens'])} per million output tokens); "
          f"{verdict}.")
    vrows = []
    for k, name, scale, unit in LATENCIES:
        for q in ("p50", "p90", "p99"):
            vrows.append([f"{name} {q} ({unit})",
                          fnum(rec["lat"][k][q] * scale, 3),
                          fnum(rec["verify"][k][q] * scale, 3)])
    doc.table(["latency", "one replica at its max QPS",
               f"whole fleet at {fgen(target)} QPS"], vrows)
    if rec["verify_requests_completed"] is not None:
        doc.note(f"The whole-fleet run completed {rec['verify_requests_completed']:,} "
                 "requests.")
    if plan["tie"]:
        doc.note(f"Tie: {plan['tie']}.")


def _candidates_section(doc, plan):
    """Every candidate in kvsim's ranking (candidate_ranker): candidate_tables, then the
    candidates' timing caveats and assumptions. Returns the ranking, as indices into
    plan["cands"]."""
    doc.h2(H_CANDIDATES)
    order = ranking(plan)
    ranking_rule = plan["ranking_rule"]
    candidate_tables(doc, plan["cands"], order,
                     "Listed by cost per hour, those that meet the SLOs first"
                     + (f" (kvsim's ranking: {ranking_rule})" if ranking_rule else "")
                     + "; candidates are named GPU/TP/KV manager/scheduler; latencies are those "
                     "of one replica at its highest passing rate. The binding SLO is the one "
                     "missed at the lowest failing rate.")
    note_candidate_caveats(doc, plan["cands"])
    return order


def ranking(plan):
    """The candidates' ranking (plan["rank_key"]), as indices into plan["cands"]."""
    cands, rank_key = plan["cands"], plan["rank_key"]
    return sorted(range(len(cands)), key=lambda i: rank_key(cands[i], i))


def candidate_tables(doc, cands, order, note):
    """The candidates in the order `order`: a brief table, `note`, and every column of plan.json
    folded away."""
    brief = []
    full = []
    for i in order:
        c = cands[i]
        ok = c["meets_slo"]
        brief.append([c["candidate"], "yes" if ok else "no", fgen(c["max_qps_per_replica"]),
                      c["binding_slo"] or "—",
                      f"{c['replicas']} x {c['tensor_parallel']}" if ok else "—",
                      fmoney(c["cost_per_hour"]) if ok else "—",
                      fnum(c["lat"]["ttft_s"]["p99"], 3), "yes" if c["pareto"] else ""])
        full.append([c["candidate"], c["status"], fgen(c["max_qps_per_replica"]),
                     fgen(c["max_qps_per_gpu"]), c["binding_slo"] or "—",
                     str(c["replicas"]) if ok else "—", str(c["gpus"]) if ok else "—",
                     fmoney(c["cost_per_hour"]) if ok else "—",
                     fnum(c["cost_per_million_output_tokens"], 3) if ok else "—",
                     fnum(c["lat"]["ttft_s"]["p99"], 3),
                     fnum(c["lat"]["tbt_s"]["p99"] * 1e3, 1),
                     fnum(c["lat"]["e2e_s"]["p99"], 2), "yes" if ok else "no",
                     "yes" if c["pareto"] else "", c["note"]])
    doc.table(["candidate", "meets SLOs", "QPS / replica", "binding SLO",
               "replicas x GPUs", "$/hour", "TTFT p99 (s)", "Pareto"], brief,
              right={2, 4, 5, 6})
    doc.note(note)
    with doc.details("Every column of plan.json, per candidate"):
        doc.table(["candidate", "status", "QPS / replica", "QPS / GPU", "binding SLO",
                   "replicas", "GPUs", "$/hour", "$/M output tok", "TTFT p99 (s)",
                   "TBT p99 (ms)", "E2E p99 (s)", "meets SLOs", "Pareto", "note"], full,
                  right={2, 3, 5, 6, 7, 8, 9, 10, 11}, small=True)


def note_candidate_caveats(doc, cands):
    """The candidates' timing caveats and assumed terms, one note each."""
    note_caveats(doc, [(c["candidate"], c["timing_caveats"]) for c in cands])
    note_caveats(doc, [(c["candidate"], c["timing_assumptions"]) for c in cands], "Assumed")


def _plan_cost_section(doc, cands, meet, rec, target, kv_color, kvs, title=None,
                       sized="one replica's max QPS"):
    """The fleet cost of the candidates that meet the SLOs (`meet`, cheapest first), and those
    not priced. `title`: the chart's (chart_plan_cost); `sized`: what the fleets were sized
    from, for the caption."""
    doc.h2(H_PLAN_COST)
    if meet:
        png, info = chart_plan_cost(meet, rec, target, kv_color, kvs, title)
        doc.chart("plan_cost.png", png, "Cost per hour per candidate",
                  "Cheapest first; bars are labelled replicas x GPUs per replica, as sized "
                  f"from {sized} (before the whole-fleet check)."
                  + _off_scale_note(cands, info["clipped"],
                                    lambda c: f"{fmoney(c['cost_per_hour'])}/hour, "
                                              f"{_plural(c['gpus'], 'GPU')}"))
    else:
        doc.p("No candidate meets the SLOs, so no fleet is priced.")
    missing = [c["candidate"] for c in cands if not c["meets_slo"]]
    if missing:
        doc.note(f"Not priced (missing the SLOs or infeasible): {', '.join(missing)}.")


def _plan_pareto_section(doc, cands, meet, rec, kv_color, kvs, gpus, about=""):
    """Fleet cost against p99 TTFT of the candidates that meet the SLOs and have a p99 TTFT;
    `about` (a sentence) follows the caption's first."""
    doc.h2(H_PLAN_PARETO)
    # The frontier is over the latencies at the target: each point's `lat` is those.
    at_target = [dict(c, lat=c["lat_target"]) for c in meet]
    pts = [c for c in at_target if is_num(c["lat"]["ttft_s"]["p99"])]
    if not pts:
        doc.p("No candidate meets the SLOs, so there is no cost/latency frontier.")
        return
    png, info = chart_plan_pareto(pts, rec and dict(rec, lat=rec["lat_target"]), kv_color, kvs,
                                  gpus)
    unplotted = [c["candidate"] for c in at_target if c not in pts]
    doc.chart("plan_pareto.png", png, "Cost against p99 TTFT at the target",
              "Colour: KV manager; marker: GPU. p99 TTFT of one replica at its fleet's share of "
              "the target (target / replicas). Circled points are the Pareto frontier "
              "(no other candidate is both cheaper and lower in that p99 TTFT)." + about
              + _off_scale_note(at_target, info["clipped"],
                                lambda c: f"{fgen(c['lat']['ttft_s']['p99'], 3)} s, "
                                          f"{fmoney(c['cost_per_hour'])}/hour")
              + (f" Not drawn (no p99 TTFT): {', '.join(unplotted)}." if unplotted
                 else ""))


def _savings_section(doc, savings):
    """Each KV manager's cheapest fleet against the others'."""
    doc.h2(H_PLAN_SAVINGS)
    if savings:
        doc.table(["KV manager", "against", "its cheapest fleet", "the other's cheapest",
                   "saving"],
                  [[s["manager"], s["versus"], fmoney(s["cost"]) + "/h",
                    fmoney(s["versus_cost"]) + "/h", f"{100 * s['saving']:.0f}%"]
                   for s in savings])
    else:
        doc.p("No savings: fewer than two KV managers have a fleet that meets the SLOs.")
