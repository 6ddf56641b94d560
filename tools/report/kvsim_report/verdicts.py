"""Verdicts: the sentences each page opens with, computed from the JSON kvsim wrote.
Values that read the same at three significant digits count as tied."""

import json

from .fmt import MIB, _names, _plural, fbytes, fgen, fint, fmoney, is_num

# A load is sustained while p99 TTFT stays within this factor of its lowest-load value.
SWEEP_TTFT_FACTOR = 5.0


def _secs(x):
    return f"{fgen(x, 3)} s"


def _rate(x):
    return f"{fgen(x, 3)} req/s"


def _same(a, b):
    return f"{a:.3g}" == f"{b:.3g}"


def _ties(items, key, pick):
    """The items whose key reads the same as pick() of all keys (min or max)."""
    best = pick(key(it) for it in items)
    return [it for it in items if _same(key(it), best)]


def has_latency(s):
    """Whether a summary has request latencies (none without completed requests: JSON null)."""
    return s["requests_completed"] > 0 and is_num(s["ttft_s"]["p99"])


def is_overloaded(s):
    return s["load"] is not None and s["load"]["overloaded"]


def offered_rate(s):
    """The offered load of a run: the configured rate, else the measured arrival rate; None if
    neither is recorded."""
    rate = s["scenario"]["rate_qps"]
    if is_num(rate) and rate > 0:
        return rate
    if s["load"] is not None and is_num(s["load"]["offered_qps"]) and s["load"]["offered_qps"] > 0:
        return s["load"]["offered_qps"]
    return None


def _queueing_text(s):
    """The queueing delay of the first and last quarter of the arrivals and, where recorded,
    how long the waiting queue had gone without draining when the last request arrived (kvsim's
    overload rule needs both the growth and a queue that never drained in the last quarter)."""
    ld = s["load"]
    text = (f"requests arriving in the last quarter queued {_secs(ld['queue_last_quarter_s'])} "
            f"on average against {_secs(ld['queue_first_quarter_s'])} in the first")
    age, span = ld.get("backlog_age_s"), ld.get("arrival_span_s")
    if is_num(age) and is_num(span) and span > 0:
        text += (f", and requests had waited without a break for {_secs(age)} of the "
                 f"{_secs(span)} of arrivals when the last one came")
    return text


def paged_base(runs):
    """The run ratios are taken to: the one labelled paged, else the first paged one, else
    None."""
    for r in runs:
        if r["label"] == "paged":
            return r
    for r in runs:
        if r["summary"]["kv_manager"] == "paged":
            return r
    return None


def verdict_run(label, s):
    """A run's verdict: requests completed, p99 TTFT and E2E, whether it keeps up with the load."""
    total, done = s["requests_total"], s["requests_completed"]
    rejected = s["requests_rejected"] or 0
    rej = f" ({fint(rejected)} rejected: prompt at least max_model_len)" if rejected else ""
    if not has_latency(s):
        return (f"{label} completed none of its {fint(total)} requests{rej}, so it has no latency "
                "statistics.")
    rate = offered_rate(s)
    offered = f" offered at {_rate(rate)}" if rate else ""
    first = (f"{label} completed {fint(done)} of {fint(total)} requests{offered}{rej} "
             f"({_rate(s['requests_per_s'])} over the whole run, the last requests' drain "
             f"included), with p99 TTFT {_secs(s['ttft_s']['p99'])} and p99 E2E "
             f"{_secs(s['e2e_s']['p99'])}.")
    if s["load"] is None:
        return first + " Whether it keeps up with the load is not recorded."
    if s["load"]["overloaded"]:
        return first + f" It does not keep up: {_queueing_text(s)}."
    return first + f" It keeps up with the load: {_queueing_text(s)}."


def verdict_compare(runs, base=None):
    """runs: [{label, summary}]; base: the run ratios are to (paged_base), or None. Returns the
    comparison's verdict: who has the lowest and highest p99 TTFT, which runs queue, which holds
    the least KV memory at peak, and the requests rejected."""
    if len(runs) == 1:
        return verdict_run(runs[0]["label"], runs[0]["summary"])
    done = [r for r in runs if has_latency(r["summary"])]
    idle = [r["label"] for r in runs if not has_latency(r["summary"])]
    if not done:
        return (f"No run completed a request ({_names(idle)}), so there are no latencies to "
                "compare.")
    idle_text = ""
    if idle:
        idle_text = (f" {_names(idle)} completed no requests, so "
                     + ("it has" if len(idle) == 1 else "they have") + " no latency statistics.")
    ref = base if base is not None and base in done and _ttft(base) > 0 else None
    first = _compare_ttft_sentence(done, idle, ref) + _compare_e2e_sentence(done)
    second = _compare_queue_sentence(runs, done, ref)
    second += _compare_kv_clause(runs, base)
    return f"{first} {second}.{idle_text}{_compare_rejected_text(runs)}"


def _ttft(r):
    """p99 TTFT of a run {label, summary}."""
    return r["summary"]["ttft_s"]["p99"]


def _versus(group, ref):
    """', 0.50x paged': the p99 TTFT of group[0] as a ratio to `ref`'s ("" when `ref` is None or
    in the group)."""
    if ref is None or ref in group:
        return ""
    return f", {_ttft(group[0]) / _ttft(ref):.2f}x {ref['label']}"


def _compare_ttft_sentence(done, idle, ref):
    """The comparison verdict's first sentence: the lowest and highest p99 TTFT of the runs
    `done` (those with latencies), as ratios to `ref` where it is not None."""
    if len(done) == 1:
        return f"Only {done[0]['label']} completed requests: p99 TTFT {_secs(_ttft(done[0]))}."
    low = _ties(done, _ttft, min)
    high = _ties(done, _ttft, max)
    if len(low) == len(done):
        who = "Both runs" if len(done) == 2 else f"All {len(done)} runs"
        if idle:
            who += " that completed requests"
        return f"{who} have the same p99 TTFT ({_secs(_ttft(done[0]))})."
    return (f"{_names(r['label'] for r in low)} "
            + ("has" if len(low) == 1 else "share") + " the lowest p99 TTFT "
            f"({_secs(_ttft(low[0]))}{_versus(low, ref)}), {_names(r['label'] for r in high)} "
            f"the highest ({_secs(_ttft(high[0]))}{_versus(high, ref)}).")


# Runs within this fraction of the best median E2E latency tie, as in kvsim compare's
# printed verdict (kVerdictTieFraction, sim/simulator/compare_outputs.h).
E2E_TIE_FRACTION = 0.005


def _compare_e2e_sentence(done):
    """' By median end-to-end latency, ... lowest (...)': the printed verdict's first figure,
    every run within E2E_TIE_FRACTION of the best named; "" for a single run."""
    if len(done) < 2:
        return ""
    e2e = [r["summary"]["e2e_s"]["p50"] for r in done]
    best = min(e2e)
    low = [r["label"] for r, v in zip(done, e2e) if abs(v - best) <= E2E_TIE_FRACTION * best]
    if len(low) == len(done):
        return f" Their median end-to-end latencies are alike ({_secs(best)})."
    return (f" By median end-to-end latency (kvsim compare's verdict), {_names(low)} "
            + ("is" if len(low) == 1 else "are") + f" the lowest ({_secs(best)}).")


def _compare_queue_sentence(runs, done, ref):
    """The comparison verdict's second sentence, without its final full stop: which runs queue
    (kvsim flags them overloaded, or TTFT p50 above 1 s and 10x the best) and which keep up."""
    rates = [offered_rate(r["summary"]) for r in runs]
    at = f" at {_rate(rates[0])}" if rates[0] and all(
        x and _same(x, rates[0]) for x in rates) else ""
    best_p50 = min(r["summary"]["ttft_s"]["p50"] for r in done)
    queue = [r for r in done if is_overloaded(r["summary"]) or (
        r["summary"]["ttft_s"]["p50"] > 1.0 and r["summary"]["ttft_s"]["p50"] > 10 * best_p50)]
    if queue:
        keeping = [r for r in done if r not in queue]
        ref2 = ref if ref is not None and ref not in queue else (
            min(keeping, key=_ttft) if keeping else None)
        parts = []
        for r in queue:
            why = "kvsim flags it overloaded" if is_overloaded(r["summary"]) else \
                "TTFT p50 above 1 s and 10x the best"
            if ref2 is not None and _ttft(ref2) > 0:
                size = f"p99 TTFT {_ttft(r) / _ttft(ref2):.1f}x {ref2['label']}'s"
            else:
                size = f"p99 TTFT {_secs(_ttft(r))}"
            parts.append(f"{r['label']} ({size}; {why})")
        second = f"{_names(parts)} " + ("queues" if len(queue) == 1 else "queue") + at
        return second + ("; the others keep up" if keeping else "; no run keeps up")
    if all(r["summary"]["load"] is not None for r in done):
        return "Every run keeps up with the offered load" + at
    return "No run queues (TTFT p50 above 1 s and 10x the best)" + at


# A run whose peak KV reached this fraction of its capacity filled its cache
# (sim/simulator/compare_outputs.h, kKvFullFraction).
KV_FULL_FRACTION = 0.9


def _peak(r):
    """Peak allocated KV bytes of a run {label, summary}."""
    return r["summary"]["kv_peak_allocated_bytes"]


def _compare_kv_clause(runs, base):
    """'; paged holds the least KV memory at peak (14 GiB, ...)', or "" when fewer than two runs
    record it or all hold the same."""
    kv = [r for r in runs if is_num(r["summary"]["kv_peak_allocated_bytes"])]
    if len(kv) <= 1:
        return ""
    # Every cache filled (peak at 90% of capacity or more): a lower peak is memory that a
    # coarser granularity stranded, not a saving (kvsim's compare verdict says the same).
    cap = [r["summary"]["kv_capacity_bytes"] for r in kv]
    if all(is_num(c) and c > 0 and _peak(r) >= KV_FULL_FRACTION * c for r, c in zip(kv, cap)):
        return (f"; the KV cache filled in every run (peak within "
                f"{100 * (1 - KV_FULL_FRACTION):.0f}% of its capacity: memory binds)")
    lean = _ties(kv, _peak, min)
    if len(lean) == len(kv):
        return ""
    ratio = ""
    if base is not None and base in kv and base not in lean and _peak(base) > 0:
        ratio = f", {_peak(lean[0]) / _peak(base):.2f}x {base['label']}"
    return (f"; {_names(r['label'] for r in lean)} "
            + ("holds" if len(lean) == 1 else "hold")
            + f" the least KV memory at peak ({fbytes(_peak(lean[0]))}{ratio})")


def _compare_rejected_text(runs):
    """' Every run rejected ...' or ' Requests rejected ...: a 3 of 100, ...', or "" when no run
    rejected a request."""
    rejected = [(r["label"], r["summary"]["requests_rejected"] or 0,
                 r["summary"]["requests_total"]) for r in runs]
    if not any(n for _, n, _ in rejected):
        return ""
    if len(set((n, t) for _, n, t in rejected)) == 1:
        return (f" Every run rejected {fint(rejected[0][1])} of its "
                f"{fint(rejected[0][2])} requests (prompt at least max_model_len).")
    return (" Requests rejected (prompt at least max_model_len): "
            + ", ".join(f"{label} {fint(n)} of {fint(t)}" for label, n, t in rejected) + ".")


def sweep_limit(points, factor=SWEEP_TTFT_FACTOR):
    """One manager's points [(rate, summary)] in rate order: (the highest rate sustained before
    the first that is not, or None; (that first failing rate, why) or None when every rate is
    sustained). A rate is sustained when requests completed, kvsim does not flag the run
    overloaded (completions falling behind arrivals: summary.json load.overloaded), and p99 TTFT
    is at most `factor` x its value at the lowest rate."""
    base = None
    sustained = None
    for rate, s in points:
        if not has_latency(s):
            return sustained, (rate, "no completed requests")
        if is_overloaded(s):
            return sustained, (rate, f"overloaded, completions fall behind arrivals "
                                     f"({_queueing_text(s)})")
        p99 = s["ttft_s"]["p99"]
        if base is None:
            base = (rate, p99)
        elif p99 > factor * base[1]:
            ratio = f"{p99 / base[1]:.1f}x" if base[1] > 0 else "above"
            return sustained, (rate, f"p99 TTFT {_secs(p99)}, {ratio} its value at "
                                     f"{_rate(base[0])}")
        sustained = rate
    return sustained, None


def verdict_sweep(runs, labels, factor=SWEEP_TTFT_FACTOR):
    """runs: [{label, rate, summary}]; labels: the managers in order."""
    results = {}
    for lab in labels:
        pts = sorted(((r["rate"], r["summary"]) for r in runs if r["label"] == lab),
                     key=lambda p: p[0])
        results[lab] = sweep_limit(pts, factor)
    groups = {}
    for lab in labels:
        sustained, failure = results[lab]
        groups.setdefault((sustained, failure is None), []).append(lab)
    order = sorted(groups, key=lambda k: (k[0] is None, -(k[0] or 0.0), not k[1]))
    parts = []
    for sustained, clean in order:
        labs = groups[(sustained, clean)]
        verb = "sustains" if len(labs) == 1 else "sustain"
        if sustained is None:
            parts.append(f"{_names(labs)} {verb} none of the loads tested")
        else:
            parts.append(f"{_names(labs)} {verb} {_rate(sustained)}"
                         + (" (every load tested)" if clean else ""))
    rates = sorted(set(r["rate"] for r in runs))
    lead = (f"Highest offered load sustained (p99 TTFT within {factor:g}x its lowest-load value, "
            "completions keeping up with arrivals): ")
    if len(rates) == 1:
        lead = (f"Only one offered load was tested ({_rate(rates[0])}), so p99 TTFT is not "
                "compared across loads. Sustained (completions keeping up with arrivals): ")
    text = lead + "; ".join(parts) + "."
    fails = [f"{lab} at {_rate(results[lab][1][0])}: {results[lab][1][1]}" for lab in labels
             if results[lab][1] is not None]
    if fails:
        text += " First load not sustained: " + "; ".join(fails) + "."
    return text


SLO_METRIC_NAMES = {"ttft_s": "TTFT", "tbt_s": "TBT", "tpot_s": "TPOT", "e2e_s": "E2E"}


def slo_text(name, slo):
    """A binding_slo name of plan.json ('ttft_s.p99', 'attainment', 'stability') in words, with
    its bound from plan.json's `slo` object: 'the p99 TTFT SLO (at most 2 s)'."""
    metric, _, q = name.partition(".")
    if metric in SLO_METRIC_NAMES and q:
        bounds = slo.get(metric)
        bound = bounds.get(q) if isinstance(bounds, dict) else None
        return (f"the {q} {SLO_METRIC_NAMES[metric]} SLO ("
                + (f"at most {fgen(bound)} s" if is_num(bound) else "bound not recorded") + ")")
    if name == "attainment":
        a = slo.get("attainment")
        share = f"{100 * a:g}%" if is_num(a) else "a share (not recorded)"
        return f"the attainment SLO (at least {share} of requests within every per-request bound)"
    if name == "stability":
        slack = slo.get("stability_slack_s")
        return ("the stability SLO (" + (
            f"mean queueing of the last quarter of requests at most max({fgen(slack)} s, 2x the "
            "first quarter's)" if is_num(slack) else "queueing must not grow over the run") + ")")
    return f"`{name}`"


def slo_rows(slo):
    """Each SLO of plan.json's `slo` object as text, in the file's order."""
    out = []
    request = []
    for key, value in slo.items():
        if key in SLO_METRIC_NAMES and isinstance(value, dict):
            out += [f"{key}.{q} ≤ {fgen(v)} s" if is_num(v) else f"{key}.{q} = {v}"
                    for q, v in value.items()]
        elif key.startswith("request_") and key[8:] in SLO_METRIC_NAMES:
            request.append(f"{key[8:]} ≤ {fgen(value)} s" if is_num(value) else
                           f"{key[8:]} = {value}")
        elif key == "attainment":
            out.append(f"attainment ≥ {fgen(value)} (share of requests within every "
                       "per-request bound)" if is_num(value) else f"attainment = {value}")
        elif key == "stability":
            if value is True:
                slack = slo.get("stability_slack_s")
                out.append("stability: mean queueing of the last quarter of requests ≤ "
                           "max(slack, 2x the first quarter's), slack "
                           + (f"{fgen(slack)} s" if is_num(slack) else "not recorded"))
            elif value is False:
                out.append("stability: off")
        elif key == "stability_slack_s":
            continue
        else:
            out.append(f"{key} = {json.dumps(value)}")
    if request:
        out.append("per request: " + ", ".join(request))
    return out


def verdict_plan(cands, rec, target, slo, infeasible_text=None):
    """A plan's verdict: the recommended fleet, its cost, whether the whole-fleet run verified it
    and the SLO that binds; or, with no recommendation, why no candidate meets the SLOs."""
    if rec is None:
        return (f"No candidate meets the SLOs at {_rate(target)}: "
                + _infeasible_text(cands, lambda k: slo_text(k, slo)) + ".")
    gpu_text = _plural(rec["gpus"], "GPU")
    first = (f"Recommended: {rec['replicas']} x `{rec['candidate']}` ({gpu_text}, "
             f"{fmoney(rec['cost_per_hour'])}/hour, "
             f"${rec['cost_per_million_output_tokens']:,.3f} per million output tokens at "
             f"{_rate(target)})")
    if rec["verified"]:
        first += "; a simulation of the whole fleet at that load met the SLOs."
    else:
        first += ("; NOT verified: the whole-fleet simulation missed "
                  + (slo_text(rec["verify_binding_slo"], slo) if rec["verify_binding_slo"]
                     else "an SLO") + ".")
    if rec["binding_slo"]:
        second = (f"One replica sustains {_rate(rec['max_qps_per_replica'])} before "
                  f"{slo_text(rec['binding_slo'], slo)} binds")
    else:
        second = (f"One replica meets the SLOs at every rate tried, up to "
                  f"{_rate(rec['max_qps_per_replica'])}")
    return f"{first} {second}{_meet_text(cands, rec, 'the SLOs')}."


def _infeasible_text(cands, describe):
    """'N candidates tried, K of which cannot be built; the SLO that binds most often, for X of
    Y, is ...': why no candidate meets the SLOs, `describe` giving a binding SLO in words."""
    broken = [c for c in cands if c["status"] == "infeasible"]
    text = f"{_plural(len(cands), 'candidate')} tried"
    if broken:
        text += f", {len(broken)} of which cannot be built"
    counts = {}
    for c in cands:
        if c["status"] != "infeasible" and c["binding_slo"]:
            counts[c["binding_slo"]] = counts.get(c["binding_slo"], 0) + 1
    if counts:
        top = max(counts.values())
        most = [k for k, v in counts.items() if v == top]
        tried = len(cands) - len(broken)
        text += (f"; the SLO that binds most often, for {top} of {tried}, is " if len(most) == 1
                 else f"; the SLOs that bind most often, for {top} of {tried} each, are ")
        text += _names(describe(k) for k in most)
    return text


def _meet_text(cands, rec, slos):
    """'; M of N candidates meet `slos`, and K others cost the same per hour' (as the
    recommendation `rec`)."""
    meet = [c for c in cands if c["meets_slo"]]
    text = (f"; {len(meet)} of {_plural(len(cands), 'candidate')} "
            + ("meets" if len(meet) == 1 else "meet") + f" {slos}")
    same = [c for c in meet if c["candidate"] != rec["candidate"]
            and fmoney(c["cost_per_hour"]) == fmoney(rec["cost_per_hour"])]
    if same:
        text += (f", and {_plural(len(same), 'other')} cost" + ("s" if len(same) == 1 else "")
                 + " the same per hour")
    return text


def scenario_slo_text(name, scenarios):
    """A binding SLO of a plan of several scenarios ('code: ttft_s.p99', as the combined
    candidates name it) in words, with its bound from that scenario's SLOs: "code's p99 TTFT SLO
    (at most 4 s)"; a name without a scenario's as slo_text gives it, bounds not recorded."""
    scenario, sep, slo_name = name.rpartition(": ")
    by_name = {s["name"]: s for s in scenarios}
    if not sep or scenario not in by_name:
        return slo_text(name, {})
    return scenario_slo_words(scenario, slo_name, by_name[scenario]["slo"])


def scenario_slo_words(scenario, slo_name, slo):
    """SLO `slo_name` of scenario `scenario` (its SLOs `slo`) in words: "code's p99 TTFT SLO (at
    most 4 s)"."""
    text = slo_text(slo_name, slo)
    return f"{scenario}'s {text[4:]}" if text.startswith("the ") else f"{text} of {scenario}"


def verdict_plan_scenarios(plan):
    """The verdict of a plan of several scenarios (inputs/plan_scenarios.py): the recommended
    fleet, its cost, how it serves each scenario, whether each scenario's whole-fleet run
    verified it and the scenario and SLO that bind; or why no candidate meets every scenario's
    SLOs."""
    cands, rec, scenarios = plan["cands"], plan["rec"], plan["scenarios"]
    loads = [f"{s['name']} at {_rate(s['target'])}" for s in scenarios]
    if rec is None:
        return (f"No candidate meets the SLOs of every scenario ({', '.join(loads)}): "
                + _infeasible_text(cands, lambda k: scenario_slo_text(k, scenarios)) + ".")
    if plan["combine"] == "one_fleet":
        serves = f"one fleet serving {_names(loads)} in turn"
    else:
        each = rec_replicas_by_scenario(rec)
        serves = "separate fleets: " + _names(
            f"{load} on {_plural(each[s['name']], 'replica')}" for load, s in zip(loads, scenarios))
    first = (f"Recommended: {rec['replicas']} x `{rec['candidate']}` "
             f"({_plural(rec['gpus'], 'GPU')}, {fmoney(rec['cost_per_hour'])}/hour) as {serves}"
             f"; {_checks_text(rec, scenarios)}.")
    if rec["binding_slo"]:
        second = (f"The {rec['scenario']} scenario needs the most replicas: one replica sustains "
                  f"{_rate(rec['max_qps_per_replica'])} of it before "
                  f"{scenario_slo_text(rec['binding_slo'], scenarios)} binds")
    else:
        second = (f"The {rec['scenario']} scenario needs the most replicas: one replica meets its "
                  f"SLOs at every rate tried, up to {_rate(rec['max_qps_per_replica'])}")
    return f"{first} {second}{_meet_text(cands, rec, 'the SLOs of every scenario')}."


def rec_replicas_by_scenario(rec):
    """{scenario name: replicas} of the recommendation: each scenario's whole-fleet check's, else
    (no check run) the candidate's sizing for it."""
    if rec["checks"]:
        return {c["scenario"]: c["replicas"] for c in rec["checks"]}
    return {b["scenario"]: b["replicas"] for b in rec["by"]}


def _checks_text(rec, scenarios):
    """Whether the recommendation's whole-fleet checks verified it, naming each that did not."""
    if not rec["checks"]:
        return "not verified: the plan ran no whole-fleet simulation"
    if rec["verified"]:
        return "a simulation of each scenario's whole fleet at its load met its SLOs"
    slos = {s["name"]: s["slo"] for s in scenarios}
    return "NOT verified: " + "; ".join(
        check_failure_text(c, slos[c["scenario"]]) for c in rec["checks"] if not c["verified"])


def check_failure_text(check, slo):
    """Why one scenario's whole-fleet check (`slo`: its SLOs) did not verify."""
    name = check["scenario"]
    if check["verify_too_few_requests"]:
        return (f"{name}'s trace held too few requests for the whole-fleet run "
                f"({fint(check['verify_requests_per_replica'])} per replica)")
    return (f"the whole-fleet run of {name} with {_plural(check['verify_replicas'], 'replica')} "
            "missed " + (scenario_slo_words(name, check["verify_binding_slo"], slo)
                         if check["verify_binding_slo"] else "an SLO"))


def verdict_calibration(meta, t):
    """A profile's verdict: the best copy bandwidth, the cost of mapping a page against
    cudaMalloc, paged against contiguous decode attention."""
    gpu = meta.get("gpu_name", "this GPU")
    parts = []
    copy_max = max(r["gbps"] for r in t["copy"])
    parts.append(f"device copies reach {copy_max:,.0f} GB/s")
    vmm = t["vmm"]
    sizes = sorted(set(r["handle_bytes"] for r in vmm if r["call"] == "map_set_access_pooled"))
    if sizes:
        size = 2 * MIB if 2 * MIB in sizes else sizes[0]
        mapped = next(r for r in vmm if r["call"] == "map_set_access_pooled"
                      and r["handle_bytes"] == size)
        text = (f"mapping a {fbytes(size)} page (cuMemMap + cuMemSetAccess) takes "
                f"{fgen(mapped['p50_us'], 3)} µs at p50")
        malloc = [r for r in vmm if r["call"] == "cudaMalloc" and r["handle_bytes"] == size]
        if malloc:
            text += f" against {fgen(malloc[0]['p50_us'], 3)} µs for cudaMalloc"
        parts.append(text)
    dec = t["decode_attention"]
    base = {(r["batch"], r["context_tokens"], r["q_heads"], r["kv_heads"], r["head_dim"]):
            r["time_us"] for r in dec if r["layout"] == "contiguous"}
    ratios = {}
    for r in dec:
        key = (r["batch"], r["context_tokens"], r["q_heads"], r["kv_heads"], r["head_dim"])
        if r["layout"] == "paged" and base.get(key, 0) > 0:
            ratios.setdefault(r["block_tokens"], []).append(r["time_us"] / base[key])
    if ratios:
        bt = min(ratios)
        vals = ratios[bt]
        parts.append(f"paged decode attention ({int(bt)}-token blocks) takes "
                     f"{sum(vals) / len(vals):.2f}x the contiguous kernel's time on average "
                     f"({min(vals):.2f}x to {max(vals):.2f}x)")
    return f"On {gpu}, " + "; ".join(parts) + "."
