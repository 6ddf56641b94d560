#!/usr/bin/env python3
"""kvsim fidelity benchmark: kvsim's figures beside real measurements.

Runs by hand (not in CI), after a build:

    tools/fidelity/kvsim_fidelity.py [--kvsim build/sim/kvsim] [--out DIR] [--only NAME,...]

Sections (NAME for --only):
  vllm       replays of two real vLLM 0.19 runs (reference/vllm-0.19-llama-3.1-8b): the recorded
             arrivals and token counts with the engine's settings; TTFT, TPOT, latency.
  paper      the vAttention paper's effects with the paper's setups (A100-80GB).
  splitwise  trends of the Splitwise table (reference/splitwise-perf-model): TP 8 / TP 2 and
             A100 / H100 time ratios; batch-1 times beside them, for scale.
Every row prints the reference, kvsim's figure and the error, and says which reference is a
published figure and which a measurement. Nothing here is fitted: every run uses kvsim's default
terms for the engine named in the row.
"""

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
REF = os.path.join(HERE, "reference")

ROWS = []  # (section, name, reference, kvsim, error text, note)


def run_kvsim(kvsim, yaml_text, out_dir, timeseries=False):
    """Runs `kvsim run` on a config written into out_dir, its outputs in out_dir/run
    (replacing an earlier one); returns summary.json (and the timeseries rows when asked)."""
    os.makedirs(out_dir, exist_ok=True)
    cfg = os.path.join(out_dir, "config_in.yaml")
    run_dir = os.path.join(out_dir, "run")
    with open(cfg, "w") as f:
        f.write(f"models_dir: {ROOT}/models\n" + yaml_text)
        f.write(f"\noutput: {{requests_csv: false, timeseries_csv: {str(timeseries).lower()}, "
                "timeseries_interval_s: 0}\n")
    res = subprocess.run([kvsim, "run", cfg, "--out", run_dir, "--force", "-q"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"kvsim failed on {cfg}:\n{res.stderr}")
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    if summary["requests_completed"] != summary["requests_total"]:
        sys.exit(f"{cfg}: only {summary['requests_completed']} of {summary['requests_total']} "
                 "requests completed")
    if not timeseries:
        return summary, None
    with open(os.path.join(run_dir, "timeseries.csv")) as f:
        rows = list(csv.DictReader(f))
    return summary, rows


def add(section, name, reference, value, note="", ratio_error=True):
    if reference is None or value is None:
        err = "n/a"
    else:
        err = f"{100.0 * (value - reference) / reference:+.1f}%"
    ROWS.append((section, name, reference, value, err, note))


def percentile(xs, q):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, math.ceil(q / 100.0 * len(xs)) - 1))
    return xs[k]


# ---------------------------------------------------------------------------------------
# 1. vLLM 0.19 replays

VLLM_RUNS = {
    # GPU folder: (kvsim card, trace, settings from vllm/meta.json engine_kwargs / kv_cache)
    "RTX4090": ("RTX-4090", "vllm019_sharegpt_rtx4090.csv",
                {"max_num_seqs": 256, "max_num_batched_tokens": 2048, "max_model_len": 32768,
                 "kv_blocks": 2588}),
    "RTXPRO6000": ("RTX-PRO-6000-Server", "vllm019_sharegpt_rtxpro6000.csv",
                   {"max_num_seqs": 128, "max_num_batched_tokens": 2048, "max_model_len": 0,
                    "kv_blocks": 0}),
}


def vllm_reference(gpu):
    path = os.path.join(REF, "vllm-0.19-llama-3.1-8b", gpu, "vllm", "requests.jsonl")
    rs = [json.loads(line) for line in open(path)]
    ttft = [r["first_token_ts"] - r["queued_ts"] for r in rs]
    tpot = [(r["last_token_ts"] - r["first_token_ts"]) / (r["output_toks"] - 1)
            for r in rs if r["output_toks"] > 1]
    lat = [r["last_token_ts"] - r["queued_ts"] for r in rs]
    out = {}
    for key, xs in (("ttft_s", ttft), ("tpot_s", tpot), ("e2e_s", lat)):
        out[key] = {"mean": statistics.mean(xs), "p50": percentile(xs, 50),
                    "p90": percentile(xs, 90), "p99": percentile(xs, 99)}
    return out


def section_vllm(kvsim, out):
    for gpu, (card, trace, s) in VLLM_RUNS.items():
        kv_bytes = s["kv_blocks"] * 16 * 131072  # blocks x 16 tokens x 128 KiB (Llama-3.1-8B)
        yaml = f"""
seed: 42
model: Llama-3.1-8B
gpu: {card}
deployment:
  gpu_memory_utilization: 0.9
  kv_capacity_bytes: {kv_bytes}
  max_model_len: {s["max_model_len"]}
workload:
  trace: {ROOT}/traces/{trace}
  arrival: {{process: trace}}
scheduler: {{type: vllm_v1, max_num_seqs: {s["max_num_seqs"]},
            max_num_batched_tokens: {s["max_num_batched_tokens"]}}}
kv_cache: {{type: paged, block_tokens: 16, watermark: 0, paged_kernel: flash_paged,
           prefix_caching: true}}
timing: {{type: roofline, engine: {{preset: vllm_v1}}}}
"""
        summary, _ = run_kvsim(kvsim, yaml, os.path.join(out, "vllm", gpu))
        ref = vllm_reference(gpu)
        for metric in ("ttft_s", "tpot_s", "e2e_s"):
            for stat in ("mean", "p50", "p90", "p99"):
                add("vllm", f"{gpu} {metric} {stat}", ref[metric][stat], summary[metric][stat],
                    "measured (engine timestamps)")


# ---------------------------------------------------------------------------------------
# 2. vAttention paper effects (A100-80GB; the paper's models; FIDELITY.md section 1)

A100 = "A100-80GB"
# The paper's stock-driver figure for a 2 MB page: cuMemMap + cuMemSetAccess about 40 us
# (paper section 6.1), used as the A100's VMM cost since kvsim has no A100 profile.
A100_VMM = "vmm: {map_s: 1.0e-6, set_access_s: 39.0e-6, unmap_s: 20.0e-6}"


def fixed_batch_yaml(model, tp, batch, prompt, output, kv, engine, scheduler="vllm",
                     max_model_len=None, extra=""):
    mml = max_model_len or (prompt + output + 64)
    chunk = ", chunk_tokens: 16384" if scheduler == "sarathi" else ""  # sarathi's key only
    return f"""
seed: 1
model: {model}
gpu: {A100}
deployment: {{tensor_parallel: {tp}, max_model_len: {mml}}}
workload:
  trace: {ROOT}/traces/splitwise_conv.csv
  arrival: {{process: poisson, rate_qps: 1000000}}
  lengths: {{source: fixed, prompt_tokens: {prompt}, output_tokens: {output}}}
  max_requests: {batch}
scheduler: {{type: {scheduler}, max_num_seqs: {batch}, max_num_batched_tokens: {max(mml, 2048)}{chunk}}}
kv_cache: {kv}
timing: {{type: roofline, engine: {{preset: {engine}}}}}
{extra}
"""


def decode_tokens_per_s(rows, batch):
    """Decode-only iterations with the whole batch running: batch / mean duration."""
    ds = [float(r["duration_s"]) for r in rows
          if int(r["prefill_tokens"]) == 0 and int(r["running"]) == batch]
    return batch / statistics.mean(ds) if ds else None


def section_paper(kvsim, out):
    # (a) Decode throughput at 16K context, vAttention (2 MB pages, contiguous FlashAttention)
    # over vLLM's paged kernel (block 16), vLLM V0-era engine for both. Published: Yi-6B up to
    # 1.97-1.99x (1.1x at batch 1), Llama-3-8B 1.3-1.58x, Yi-34B 1.53-1.6x. Llama-3-8B's card
    # stops at 8K context, so Llama-3.1-8B (same shapes, 128K context) stands in.
    cases = [("Yi-6B-200K", 1, [1, 2, 4, 8, 16, 32], (1.97, 1.99)),
             ("Llama-3.1-8B", 2, [1, 2, 4, 8, 16, 32], (1.3, 1.58)),
             ("Yi-34B-200K", 2, [1, 2, 4, 8, 16], (1.53, 1.6))]
    for model, tp, batches, (lo, hi) in cases:
        gains = []
        for b in batches:
            tps = {}
            for label, kv in (
                    ("vattn", f"{{type: vattention, page_bytes: 2MiB, {A100_VMM}}}"),
                    ("vllm", "{type: paged, block_tokens: 16, paged_kernel: vllm_paged}")):
                _, rows = run_kvsim(kvsim, fixed_batch_yaml(model, tp, b, 16384, 256, kv,
                                                            "vllm_v0"),
                                    os.path.join(out, "decode", f"{model}_b{b}_{label}"),
                                    timeseries=True)
                tps[label] = decode_tokens_per_s(rows, b)
            gains.append(tps["vattn"] / tps["vllm"])
        add("paper", f"decode gain {model} TP{tp}, max over batch {batches[0]}-{batches[-1]}",
            hi, max(gains), f"published up to {lo}-{hi}x; kvsim by batch: " +
            " ".join(f"{b}:{g:.2f}" for b, g in zip(batches, gains)))
        if model.startswith("Yi-6B"):
            add("paper", "decode gain Yi-6B TP1 at batch 1", 1.1, gains[0], "published ~1.1x")
            add("paper", "decode gain Yi-6B TP1 at batch 8", 1.97, gains[3], "published 1.97x")

    # (b) Prefill of a 16K prompt with synchronous mapping on a fresh cache, against no mapping
    # cost: published up to 1.15x with 64 KB pages, ~1.03x with 256 KB and 2 MB; 1.00x when
    # deferred reclamation hands the next request mapped pages.
    def ttft(kv, n=1, label=""):
        yaml = fixed_batch_yaml("Yi-6B-200K", 1, 1, 16384, 4, kv, "vllm_v0") if n == 1 else (
            fixed_batch_yaml("Yi-6B-200K", 1, 1, 16384, 4, kv, "vllm_v0").replace(
                "max_requests: 1", f"max_requests: {n}").replace(
                "rate_qps: 1000000", "rate_qps: 0.02"))
        summary, _ = run_kvsim(kvsim, yaml, os.path.join(out, "prefill", label))
        return summary["ttft_s"]["mean"] if n == 1 else summary["ttft_s"]["p50"]

    base = ttft("{type: vattention, page_bytes: 2MiB, vmm: {map_s: 0, set_access_s: 0, "
                "unmap_s: 0}}", label="free")
    for page, pub in (("64KiB", 1.15), ("256KiB", 1.03), ("2MiB", 1.03)):
        vmm = A100_VMM if page == "2MiB" else "vmm: {backend: uvm}"
        t = ttft(f"{{type: vattention, page_bytes: {page}, {vmm}}}", label=page)
        add("paper", f"prefill 16K Yi-6B, sync mapping, {page} pages", pub, t / base,
            "published (up to)")
    base4 = ttft("{type: vattention, page_bytes: 2MiB, vmm: {map_s: 0, set_access_s: 0, "
                 "unmap_s: 0}}", n=4, label="free4")
    t = ttft("{type: vattention, page_bytes: 64KiB, vmm: {backend: uvm}}", n=4, label="reuse")
    add("paper", "prefill 16K Yi-6B, 64 KB pages reused by deferred reclamation", 1.00,
        t / base4, "published; the same 4 arrivals without mapping cost")

    # (c) Iteration spikes without overlap: Llama-3-8B TP 1, batch 4, 32K context, 2 MB pages:
    # 25 ms rising to 41 ms once every 1,024 iterations; no spikes with overlap.
    for overlap in (False, True):
        kv = f"{{type: vattention, page_bytes: 2MiB, overlap: {str(overlap).lower()}, {A100_VMM}}}"
        _, rows = run_kvsim(kvsim, fixed_batch_yaml("Llama-3.1-8B", 1, 4, 32768, 2100, kv,
                                                    "vllm_v0"),
                            os.path.join(out, "spike", f"overlap_{overlap}"), timeseries=True)
        ds = [float(r["duration_s"]) for r in rows
              if int(r["prefill_tokens"]) == 0 and int(r["running"]) == 4]
        med, peak = statistics.median(ds), max(ds)
        if not overlap:
            add("paper", "spike: steady decode iteration (ms)", 25.0, med * 1e3, "published")
            add("paper", "spike: iteration with page mapping (ms)", 41.0, peak * 1e3, "published")
            add("paper", "spike height / steady", 41.0 / 25.0, peak / med, "published")
        else:
            add("paper", "with overlap: largest / steady iteration", 1.0, peak / med,
                "published: no spikes")

    # (d) Largest running batch, 64 KB over 2 MB pages, saturated on an A100. The paper's
    # request lengths for this table are not in the sources at hand: the arXiv-summarization
    # lengths (the paper's evaluation dataset family) stand in, all requests queued at once.
    for model, tp, pub in (("Yi-6B-200K", 1, 240 / 187), ("Llama-3.1-8B", 2, 258 / 203),
                           ("Yi-34B-200K", 2, 68 / 56)):
        batch = {}
        for page in ("64KiB", "2MiB"):
            vmm = A100_VMM if page == "2MiB" else "vmm: {backend: uvm}"
            yaml = f"""
seed: 1
model: {model}
gpu: {A100}
deployment: {{tensor_parallel: {tp}, max_model_len: 8192}}
workload:
  trace: {ROOT}/traces/arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv
  arrival: {{process: poisson, rate_qps: 1000000}}
  lengths: {{source: trace}}
  max_requests: 2000
scheduler: {{type: vllm, max_num_seqs: 1024}}
kv_cache: {{type: vattention, page_bytes: {page}, {vmm}}}
timing: {{type: roofline, engine: {{preset: vllm_v0}}}}
"""
            summary, _ = run_kvsim(kvsim, yaml, os.path.join(out, "maxbatch", f"{model}_{page}"))
            batch[page] = summary["batch"]["max_running"]
        add("paper", f"max batch 64 KB / 2 MB pages, {model} TP{tp}", pub,
            batch["64KiB"] / batch["2MiB"],
            f"published {pub:.3f}; kvsim {batch['64KiB']} / {batch['2MiB']} (lengths assumed)")

    # (e) Offline long-context throughput: 100 requests of 64K-192K tokens, Sarathi chunks of
    # 16K, vAttention (2 MB) over FA2_Paged (block 256) and FlashInfer_Paged (block 16).
    # Published 1.13-1.18x and 1.14-1.23x. The artifact's trace is not bundled: prompts uniform
    # in 64K-192K and outputs uniform in 64-1,024 tokens stand in for it (assumed).
    for model, tp in (("Yi-6B-200K", 1), ("Yi-34B-200K", 2)):
        spans = {}
        preempt = {}
        for label, kv in (("vattn", f"{{type: vattention, page_bytes: 2MiB, {A100_VMM}}}"),
                          ("fa_paged", "{type: paged, block_tokens: 256, paged_kernel: flash_paged}"),
                          ("fi_paged", "{type: paged, block_tokens: 16, "
                                       "paged_kernel: flashinfer_paged}")):
            yaml = fixed_batch_yaml(model, tp, 100, 65536, 64, kv, "vllm_v0", scheduler="sarathi",
                                    max_model_len=197632).replace(
                "lengths: {source: fixed, prompt_tokens: 65536, output_tokens: 64}",
                "lengths: {source: uniform, min_prompt_tokens: 65536, max_prompt_tokens: 196608, "
                "min_output_tokens: 64, max_output_tokens: 1024}").replace(
                "max_num_seqs: 100", "max_num_seqs: 256")
            summary, _ = run_kvsim(kvsim, yaml, os.path.join(out, "offline", f"{model}_{label}"))
            spans[label] = summary["makespan_s"]
            preempt[label] = summary["preemptions"]
        add("paper", f"offline throughput {model} TP{tp}: vAttention / FA2_Paged", 1.155,
            spans["fa_paged"] / spans["vattn"],
            f"published 1.13-1.18x; preemptions {preempt}")
        add("paper", f"offline throughput {model} TP{tp}: vAttention / FlashInfer_Paged", 1.185,
            spans["fi_paged"] / spans["vattn"], "published 1.14-1.23x")


# ---------------------------------------------------------------------------------------
# 3. Splitwise table trends (Llama2-70B; A100 and H100; TP 2, 4, 8)

def splitwise_reference():
    path = os.path.join(REF, "splitwise-perf-model", "perf_model.csv")
    table = {}
    for r in csv.DictReader(open(path)):
        if r["model"] != "llama2-70b" or r["hardware"] not in ("a100-80gb", "h100-80gb"):
            continue
        key = (r["hardware"], int(r["tensor_parallel"]), int(r["prompt_size"]),
               int(r["batch_size"]))
        table.setdefault(key, []).append((float(r["prompt_time"]), float(r["token_time"])))
    return {k: (statistics.median(p for p, _ in v), statistics.median(t for _, t in v))
            for k, v in table.items()}


def section_splitwise(kvsim, out):
    ref = splitwise_reference()
    cards = {"a100-80gb": "A100-80GB", "h100-80gb": "H100-SXM"}
    prompts = [512, 1024, 2048]  # 4,096 + output exceeds Llama-2-70B's context
    sim = {}
    for hw, card in cards.items():
        for tp in (2, 8):
            for p in prompts:
                yaml = f"""
seed: 1
model: Llama-2-70B
gpu: {card}
deployment: {{tensor_parallel: {tp}}}
workload:
  trace: {ROOT}/traces/splitwise_conv.csv
  arrival: {{process: poisson, rate_qps: 1000000}}
  lengths: {{source: fixed, prompt_tokens: {p}, output_tokens: 32}}
  max_requests: 1
scheduler: {{type: vllm, max_num_seqs: 1}}
kv_cache: {{type: paged, block_tokens: 16}}
timing: {{type: roofline, engine: {{preset: eager}}}}
"""
                summary, _ = run_kvsim(kvsim, yaml, os.path.join(out, "splitwise",
                                                                 f"{hw}_tp{tp}_p{p}"))
                sim[(hw, tp, p)] = (summary["ttft_s"]["mean"] * 1e3,
                                    summary["tpot_s"]["mean"] * 1e3)
    for hw in cards:
        for i, what in ((0, "prompt"), (1, "token")):
            rr = [ref[(hw, 8, p, 1)][i] / ref[(hw, 2, p, 1)][i] for p in prompts]
            ss = [sim[(hw, 8, p)][i] / sim[(hw, 2, p)][i] for p in prompts]
            add("splitwise", f"{hw} {what} time TP8/TP2 (mean over prompts 512-2048)",
                statistics.mean(rr), statistics.mean(ss), "measured table, engine unstated")
    for tp in (2, 8):
        for i, what in ((0, "prompt"), (1, "token")):
            rr = [ref[("a100-80gb", tp, p, 1)][i] / ref[("h100-80gb", tp, p, 1)][i]
                  for p in prompts]
            ss = [sim[("a100-80gb", tp, p)][i] / sim[("h100-80gb", tp, p)][i] for p in prompts]
            add("splitwise", f"A100/H100 {what} time at TP{tp}", statistics.mean(rr),
                statistics.mean(ss), "measured table")
    # Absolute times, batch 1: the trends above are the check (the table's engine is not
    # stated); these show how far kvsim's eager engine is from it.
    for hw in cards:
        for tp in (2, 8):
            add("splitwise", f"{hw} prompt time at TP{tp}, 1,024 tokens (ms)",
                ref[(hw, tp, 1024, 1)][0], sim[(hw, tp, 1024)][0],
                "measured table, engine unstated; not a target")
            add("splitwise", f"{hw} token time at TP{tp} (ms, mean over prompts 512-2048)",
                statistics.mean(ref[(hw, tp, p, 1)][1] for p in prompts),
                statistics.mean(sim[(hw, tp, p)][1] for p in prompts),
                "measured table, engine unstated; not a target")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kvsim", default=os.path.join(ROOT, "build", "sim", "kvsim"))
    ap.add_argument("--out", default=None, help="keep the runs here (default: a temp dir)")
    ap.add_argument("--only", default="vllm,paper,splitwise")
    args = ap.parse_args()
    if not os.access(args.kvsim, os.X_OK):
        sys.exit(f"{args.kvsim}: not found; build first (cmake --build build)")
    out = args.out or tempfile.mkdtemp(prefix="kvsim_fidelity_")
    sections = {"vllm": section_vllm, "paper": section_paper, "splitwise": section_splitwise}
    for name in args.only.split(","):
        if name not in sections:
            sys.exit(f"--only: unknown section '{name}'; valid: {', '.join(sections)}")
        sections[name](args.kvsim, os.path.join(out, name))
    print(f"{'check':<78} {'reference':>10} {'kvsim':>10} {'error':>8}  note")
    for section, name, refv, val, err, note in ROWS:
        fmtv = lambda v: "n/a" if v is None else f"{v:.4g}"
        print(f"{section + ': ' + name:<78} {fmtv(refv):>10} {fmtv(val):>10} {err:>8}  {note}")
    print(f"runs kept in {out}")


if __name__ == "__main__":
    main()
