"""summary.json (of a run; also each entry of compare.json and sweep.json): the facts the report
uses, checked, as a plain dict."""


SUMMARY_PERCENTILES = ("ttft_s", "tbt_s", "tpot_s", "e2e_s")


def read_summary(node):
    """Checks a summary.json object and returns a plain dict of what the report uses."""
    s = {"kv_manager": node["kv_manager"].str()}
    sc = node["scenario"]
    s["scenario"] = {
        "model": sc["model"].str(), "gpu": sc["gpu"].str(),
        "tensor_parallel": sc["tensor_parallel"].int(), "replicas": sc["replicas"].int(),
        "scheduler": sc["scheduler"].str(), "max_model_len": sc["max_model_len"].int(),
        "seed": sc["seed"].int(),
        "trace": sc["trace"].str() if sc.has("trace") else None,
        "arrival_process": sc["arrival_process"].str() if sc.has("arrival_process") else None,
        "rate_qps": sc["rate_qps"].num() if sc.has("rate_qps") else None,
    }
    for k in ("requests_total", "requests_completed", "preemptions"):
        s[k] = node[k].int()
    for k in ("requests_rejected", "requests_truncated"):
        s[k] = node[k].int() if node.has(k) else None
    s["makespan_s"] = node["makespan_s"].nonneg()
    t = node["throughput"]
    s["requests_per_s"] = t["requests_per_s"].nonneg()
    s["output_tokens_per_s"] = t["output_tokens_per_s"].nonneg()
    for k in SUMMARY_PERCENTILES:
        p = node[k]
        s[k] = {q: p[q].num(allow_null=True) for q in ("mean", "p50", "p90", "p99")}
    # How the request percentiles (TTFT, TPOT, E2E) were computed: "exact" (nearest rank), or
    # beyond kvsim's limit on exact ones "log histogram, within 0.4%". Absent in outputs of a
    # kvsim before the limit, whose request percentiles were all exact.
    s["percentiles"] = node["percentiles"].str() if node.has("percentiles") else "exact"
    kv = node["kv"]
    for k in ("capacity_bytes", "peak_allocated_bytes", "mean_allocated_bytes",
              "mean_live_bytes", "fragmentation"):
        s["kv_" + k] = kv[k].num(allow_null=True)
    b = node["batch"]
    s["max_running"] = b["max_running"].int()
    s["mean_running"] = b["mean_running"].num(allow_null=True)
    pc = node.get("prefix_cache")  # absent in outputs of a kvsim without prefix sharing
    s["prefix_cache"] = None if pc is None else {
        "enabled": pc["enabled"].bool(), "token_hit_rate": pc["token_hit_rate"].nonneg(),
        "request_hit_rate": pc["request_hit_rate"].nonneg(),
        "recomputed_tokens": pc["recomputed_tokens"].int()}
    v = node.get("vattention")
    s["exposed_overhead_s"] = v["exposed_overhead_s"].num() if v is not None else 0.0
    s["page_bytes"] = v["page_bytes"].num() if v is not None else None
    s["timing_caveats"] = _caveats(node)
    s["timing_assumptions"] = _assumptions(node)
    s["timing"] = _timing_text(node)
    s["load"] = None  # absent in older outputs
    if node.has("load"):
        ld = node["load"]
        s["load"] = {"offered_qps": ld["offered_qps"].num(allow_null=True),
                     "queue_first_quarter_s": ld["queue_first_quarter_s"].num(allow_null=True),
                     "queue_last_quarter_s": ld["queue_last_quarter_s"].num(allow_null=True),
                     "overloaded": ld["overloaded"].bool()}
        # The backlog's age at the last arrival and the arrival span, s (absent in older
        # outputs: None).
        for key in ("arrival_span_s", "backlog_age_s"):
            s["load"][key] = ld[key].nonneg() if ld.has(key) else None
    return s


def _caveats(node):
    """The node's timing_caveats strings (absent in older outputs: none)."""
    if not node.has("timing_caveats"):
        return []
    return [c.str() for c in node["timing_caveats"].items()]


def _timing_text(node):
    """'roofline, engine vllm_v1, paged kernel flash_paged' from summary.json's timing
    object (absent in older outputs: 'not recorded')."""
    if not node.has("timing"):
        return "not recorded"
    t = node["timing"]
    text = t["model"].str()
    if t.has("profile") and t["profile"].str():
        text += f" ({t['profile'].str()})"
    if t.has("engine_preset"):
        text += f", engine {t['engine_preset'].str()}"
    if t.has("paged_kernel"):
        text += f", paged kernel {t['paged_kernel'].str()}"
    return text


def _assumptions(node):
    """The terms the run assumed rather than measured: timing.assumptions of a
    summary, timing_assumptions of a plan candidate (absent in older outputs: none)."""
    if node.has("timing") and node["timing"].has("assumptions"):
        return [c.str() for c in node["timing"]["assumptions"].items()]
    if node.has("timing_assumptions"):
        return [c.str() for c in node["timing_assumptions"].items()]
    return []
