"""Calibration directories (kvprobe profile.txt): the GPU, VMM call latencies, GEMM throughput,
decode attention bandwidth, paged against contiguous attention, all-reduce, the vAttention
mechanism."""

import functools
import os

from ..charts.profile import chart_allreduce, chart_decode, chart_gemm, chart_paged, chart_vmm
from ..document import Doc
from ..fmt import fbytes, fgen, fint, fnum
from ..headings import (H_ALLREDUCE, H_DECODE, H_GEMM, H_PAGED, H_SCENARIO, H_VATTENTION,
                        H_VMM)
from ..inputs.profile import load_profile
from ..verdicts import verdict_calibration
from .common import dir_name

# [meta] keys shown in the scenario table, with their names there, in this order.
META_ROWS = (("gpu_name", "GPU"), ("gpu_memory_bytes", "GPU memory"),
             ("sm_count", "SMs"), ("sm_clock_mhz", "highest SM clock (MHz)"),
             ("driver_version", "driver"), ("cuda_runtime_version", "CUDA runtime"),
             ("kvprobe_version", "kvprobe"), ("mode", "mode"),
             ("date_utc", "measured (UTC)"), ("probe_seconds", "probe time (s)"),
             ("allocation_granularity_bytes", "VMM allocation granularity"),
             ("attention_verified_max_relative_error",
              "attention check, worst relative error"))


def report_calibration(d):
    """(doc, build) of calibration directory `d`: profile.txt read and checked; build()
    draws."""
    path = os.path.join(d, "profile.txt")
    meta, t = load_profile(path)
    gpu = meta.get("gpu_name", "unknown GPU")
    doc = Doc(f"kvprobe calibration profile: {gpu}")
    return doc, functools.partial(_build_calibration, doc, d, meta, t)


def _build_calibration(doc, d, meta, t):
    """Fills a profile's document, section by section."""
    doc.verdict(verdict_calibration(meta, t))
    doc.p(f"Calibration directory `{dir_name(d)}`: profile.txt "
          "measured by kvprobe (format: tools/kvprobe/PROFILE_FORMAT.md).")
    copy_max = max(r["gbps"] for r in t["copy"])
    _profile_scenario_section(doc, meta, copy_max)
    _vmm_section(doc, t)
    _gemm_section(doc, t)
    _decode_section(doc, t, copy_max)
    _paged_section(doc, t)
    if t.get("allreduce"):
        _allreduce_section(doc, t["allreduce"], meta)
    if t.get("vattention"):
        _vattention_section(doc, t["vattention"])


def _profile_scenario_section(doc, meta, copy_max):
    """What the profile is and the GPU it measured ([meta]), with the best copy bandwidth."""
    doc.h2(H_SCENARIO)
    rows = [["what", "a GPU profile: it has no model, trace, tensor parallelism, scheduler or "
             "seed of its own; kvsim uses it with `timing.type: profiled`"]]
    for key, name in META_ROWS:
        if key in meta:
            v = meta[key]
            if key.endswith("_bytes"):
                try:
                    v = f"{fbytes(float(v))} ({int(float(v)):,} bytes)"
                except ValueError:
                    pass
            rows.append([name, v])
    rows.append(["device copy bandwidth (best)", f"{copy_max:,.0f} GB/s (read + write)"])
    doc.table(["", "value"], rows, right=set())


def _vmm_section(doc, t):
    """VMM call latencies: the chart, the calls at the smallest handle size, [vmm_under_load]."""
    doc.h2(H_VMM)
    vmm = t["vmm"]
    addr_calls = ("cuMemAddressReserve", "cuMemAddressFree")
    handle_rows = [r for r in vmm if r["call"] not in addr_calls]
    addr_rows = [r for r in vmm if r["call"] in addr_calls]
    doc.chart("vmm_latency.png", chart_vmm(handle_rows, addr_rows),
              "VMM call latencies by handle size",
              "map_set_access_pooled is cuMemMap + cuMemSetAccess of a handle created once; "
              "cudaMalloc and cudaFree are shown for comparison.")
    sizes = sorted(set(r["handle_bytes"] for r in handle_rows))
    if sizes:
        s0 = sizes[0]
        doc.table(["call", "p10 (µs)", "p50 (µs)", "p90 (µs)", "p99 (µs)", "samples"],
                  [[r["call"], fgen(r["p10_us"]), fgen(r["p50_us"]), fgen(r["p90_us"]),
                    fgen(r["p99_us"]), fint(r["samples"])]
                   for r in handle_rows if r["handle_bytes"] == s0])
        doc.note(f"The table is for {fbytes(s0)} handles.")
    if "vmm_under_load" in t and t["vmm_under_load"]:
        doc.table(["under load", "value"],
                  [[r["metric"], fgen(r["value"])] for r in t["vmm_under_load"]])


def _gemm_section(doc, t):
    """GEMM TFLOP/s against tokens of one model (Llama-3-8B where measured) at its lowest TP."""
    doc.h2(H_GEMM)
    gemm = t["gemm"]
    models = list(dict.fromkeys(r["model"] for r in gemm))
    model = "Llama-3-8B" if "Llama-3-8B" in models else models[0]
    tps = sorted(set(r["tensor_parallel"] for r in gemm if r["model"] == model))
    tp = tps[0]
    all_tps = ", ".join(str(int(x)) for x in sorted(set(r["tensor_parallel"] for r in gemm)))
    rows_ = [r for r in gemm if r["model"] == model and r["tensor_parallel"] == tp]
    layers = list(dict.fromkeys(r["layer"] for r in rows_))
    doc.chart("gemm_tflops.png", chart_gemm(rows_, layers, model, tp),
              f"GEMM TFLOP/s against tokens, {model}",
              f"The profile holds {len(models)} model(s) at TP {all_tps}; {model} at TP "
              f"{int(tp)} is shown; n and k are the per-rank output and input widths.")


def _decode_section(doc, t, copy_max):
    """Decode attention bandwidth, contiguous and paged at the smallest block size."""
    doc.h2(H_DECODE)
    dec = t["decode_attention"]
    # The grid's own head count; rows with fewer KV heads (one rank's share under tensor
    # parallelism) would overlay the same batch x context points.
    main = _main_heads(dec, "kv_heads")
    kv_heads = main[0]["kv_heads"] if main else 0
    others = sorted({int(r["kv_heads"]) for r in dec} - {int(kv_heads)}, reverse=True)
    dec = main
    contiguous = [r for r in dec if r["layout"] == "contiguous"]
    paged_blocks = sorted(set(r["block_tokens"] for r in dec if r["layout"] == "paged"))
    panels = [("contiguous KV", contiguous)]
    if paged_blocks:
        b0 = paged_blocks[0]
        panels.append((f"paged KV, {int(b0)}-token blocks",
                       [r for r in dec if r["layout"] == "paged" and r["block_tokens"] == b0]))
    panels = [p for p in panels if p[1]]
    batches = sorted(set(r["batch"] for r in dec))
    doc.chart("decode_attention_gbps.png", chart_decode(dec, panels, batches, copy_max),
              "Decode attention GB/s against batch x context",
              f"kv_gbps = K and V bytes read / kernel time; rows with {int(kv_heads)} KV heads"
              + (f" (those with {', '.join(map(str, others))} are left out)" if others else "")
              + ".")


def _main_heads(rows_, column):
    """The rows of the head count most rows have (the grid's own shape; kvprobe adds a few
    rows with one rank's share of the heads, which would overlay the grid's points)."""
    counts = {}
    for r in rows_:
        counts[r[column]] = counts.get(r[column], 0) + 1
    if not counts:
        return rows_
    main = max(counts, key=lambda k: (counts[k], k))
    return [r for r in rows_ if r[column] == main]


def _paged_ratios(rows_, keys):
    """{block tokens: [(shape key, paged time / contiguous time)]} of the paged rows whose shape
    (the values of `keys`) has a contiguous row."""
    base = {tuple(r[k] for k in keys): r["time_us"] for r in rows_
            if r["layout"] == "contiguous"}
    out = {}
    for r in rows_:
        if r["layout"] != "paged":
            continue
        key = tuple(r[k] for k in keys)
        if key in base and base[key] > 0:
            out.setdefault(r["block_tokens"], []).append((key, r["time_us"] / base[key]))
    return out


def _paged_section(doc, t):
    """Paged against contiguous attention, decode and prefill: the ratio chart and a table."""
    doc.h2(H_PAGED)
    dec = _main_heads(t["decode_attention"], "kv_heads")
    pre = _main_heads(t["prefill_attention"], "q_heads")
    dec_keys = ("batch", "context_tokens", "q_heads", "kv_heads", "head_dim")
    pre_keys = ("batch", "tokens", "q_heads", "kv_heads", "head_dim")
    dr = _paged_ratios(dec, dec_keys)
    pr = _paged_ratios(pre, pre_keys)
    if not (dr or pr):
        doc.p("The profile has no paged and contiguous rows of the same shape to compare.")
        return
    panels = [(n, r) for n, r in (("decode", dr), ("prefill", pr)) if r]
    doc.chart("paged_vs_contiguous.png", chart_paged(panels),
              "Paged against contiguous attention",
              "Above 1: the paged kernel is slower. Decode points with the same "
              "batch x context product come from different batch/context splits.")
    rows_ = []
    for name, rr in (("decode", dr), ("prefill", pr)):
        for bt in sorted(rr):
            vals = [p[1] for p in rr[bt]]
            rows_.append([name, str(int(bt)), fnum(min(vals), 3),
                          fnum(sum(vals) / len(vals), 3), fnum(max(vals), 3),
                          str(len(vals))])
    doc.table(["attention", "block tokens", "min ratio", "mean ratio", "max ratio",
               "shapes"], rows_)


def _allreduce_section(doc, rows, meta):
    """The [allreduce] section: time and bus bandwidth against message size per GPU count."""
    doc.h2(H_ALLREDUCE)
    by_gpus = {}
    for r in rows:
        by_gpus.setdefault(int(r["gpus"]), []).append(r)
    doc.chart("allreduce.png", chart_allreduce(by_gpus), "NCCL all-reduce",
              "Measured with one process per GPU; each point is the slowest rank's time.")
    table = []
    for n, rr in sorted(by_gpus.items()):
        rr = sorted(rr, key=lambda r: r["bytes"])
        table.append([str(n), fbytes(rr[0]["bytes"]), fgen(rr[0]["time_us"]),
                      fbytes(rr[-1]["bytes"]), fgen(rr[-1]["time_us"]),
                      fgen(rr[-1]["busbw_gbps"])])
    doc.table(["GPUs", "smallest size", "time (µs)", "largest size", "time (µs)",
               "bus bandwidth (GB/s)"], table)
    measured = ", ".join(str(n) for n in sorted(by_gpus))
    doc.note(f"Measured GPU counts: {measured}. At a tensor_parallel the profile did not measure, "
             "kvsim estimates the all-reduce from these counts (time linear in the ring factor "
             "2(n-1)/n at each size; README, Profiled timing) and every run says so in a caveat."
             + (" NVLink multicast was off." if meta.get("nccl_nvls_enable") == "0" else ""))


def _vattention_section(doc, rows):
    """The [vattention] rows: the mechanism run for real on a fixed decode schedule."""
    doc.h2(H_VATTENTION)
    doc.table(["overlap", "page size", "batch", "iterations", "mean iteration (µs)",
               "p99 iteration (µs)", "mean exposed map (µs)", "max exposed map (µs)",
               "map calls"],
              [["on" if r["overlap"] else "off", fbytes(r["page_bytes"]),
                fint(r["batch"]), fint(r["iterations"]), fgen(r["mean_iteration_us"]),
                fgen(r["p99_iteration_us"]), fgen(r["mean_exposed_map_us"]),
                fgen(r["max_exposed_map_us"]), fint(r["map_calls"])]
               for r in rows])
    doc.note("The vAttention mechanism run for real on a fixed decode schedule: pages "
             "mapped on demand one iteration ahead (overlap on) or synchronously.")
