#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets (tests/fuzz/) in OUT_DIR, one folder per
# target, from the files the repository bundles: traces, configs, plans, fit files,
# model and GPU cards, kvprobe profiles and the reference measurements. Large files
# are cut (traces and measurements to their first lines, profiles to a few rows per
# section), so nothing large is copied and nothing needs to be committed.
#
# Usage: tools/fuzz/seeds.sh OUT_DIR
set -euo pipefail

out=${1:?usage: tools/fuzz/seeds.sh OUT_DIR}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

seed() {  # seed TARGET NAME: stdin -> OUT_DIR/TARGET/NAME
  mkdir -p "$out/$1"
  cat > "$out/$1/$2"
}

# The first N lines of a file (at most 4 KiB of a trace keeps a few dozen rows).
first_lines() { head -n "$2" "$1"; }
first_kib() { head -c "$(( $2 * 1024 ))" "$1" | sed '$d'; }  # whole lines only

# --- traces: every bundled trace and the test traces, cut to about 4 KiB
for f in traces/*.csv traces/*.jsonl tests/data/workload/*; do
  first_kib "$f" 4 | seed fuzz_trace "$(basename "$f")"
done
# The formats no bundled file has: BurstGPT (its header, a failed request with 0
# Response tokens), benchmark_serving results (one line, and pretty-printed), and csv
# files whose first three columns name the arrival, prompt and output columns, as
# fuzz_trace.cc maps them (the input's length picks the arrival unit).
cat <<'CSV' | seed fuzz_trace burstgpt.csv
Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
5,ChatGPT,472,18,490,Conversation log
45,ChatGPT,1087,0,1087,Conversation log
110.5,GPT-4,417,505,922,API log
CSV
seed fuzz_trace benchmark_serving_small.json < tests/data/fit/benchmark_serving_small.json
tr -d '\n' < tests/data/fit/benchmark_serving_small.json | seed fuzz_trace benchmark_serving_one_line.json
printf '{"request_rate": "inf", "input_lens": [3, 4], "output_lens": [0, 2], "errors": ["boom", null]}\n' |
  seed fuzz_trace benchmark_serving_inf.json
cat <<'CSV' | seed fuzz_trace csv_seconds.csv
ts,n_in,n_out,note
100.5,10,20,"hello, world"
101,"14",7,"say ""hi"""
103.25,5,3,plain
CSV
cat <<'CSV' | seed fuzz_trace csv_milliseconds.csv
sent_ms,prompt,output
1714560000000,412,118
1714560000250,88,240
1714560001500,1530,64
CSV
cat <<'CSV' | seed fuzz_trace csv_timestamp.csv
sent_at,input_tokens,output_tokens,task
2024-05-01T12:00:00.5Z,412,118,chat
2024-05-01 12:00:01.25,88,240,code
2024-05-01T14:00:03+02:00,1530,64,chat
CSV

# --- scenarios: the bundled configs, read as configs/fuzz.yaml, and some with
# --set overrides after a "#--set" line (tests/fuzz/fuzz_common.h)
for f in configs/*.yaml; do
  seed fuzz_scenario "$(basename "$f")" < "$f"
done
for f in configs/fit/vllm019_rtx*.yaml; do  # scenarios of the fit runs, one folder deeper
  sed 's#\.\./\.\./#../#g' "$f" | seed fuzz_scenario "fit_$(basename "$f")"
done
overrides=(
  "kv_cache.type=vattention|kv_cache.page_bytes=64KiB"
  "kv_cache.type=vattention|kv_cache.page_bytes=2MiB|kv_cache.overlap=false|kv_cache.deferred_reclaim=false"
  "kv_cache.type=static|kv_cache.static_reserve=request_max"
  "kv_cache.prefix_caching=true|scheduler.type=vllm_v1|kv_cache.watermark=0"
  "scheduler.type=sarathi|scheduler.chunk_tokens=256"
  "scheduler.type=static_batching|scheduler.max_num_seqs=8"
  "timing.type=profiled|kv_cache.paged_kernel=profiled"
  "timing.type=profiled|timing.profile=../models/profiles/H200/profile.txt|gpu=H200|kv_cache.type=vattention"
  "timing.type=fixed|timing.fixed={per_iteration_s: 0.01, per_decode_token_s: 1e-4}"
  "timing.engine.preset=eager|timing.engine.cuda_graphs=false"
  "deployment.tensor_parallel=2|deployment.replicas=2|deployment.router=least_outstanding"
  "workload.arrival.process=poisson|workload.arrival.rate_qps=4"
  "workload.arrival.process=gamma|workload.arrival.rate_qps=4|workload.arrival.cv=3"
  "workload.lengths.source=fixed|workload.lengths.prompt_tokens=500|workload.lengths.output_tokens=100|workload.arrival.process=poisson|workload.arrival.rate_qps=2|workload.max_requests=20"
  "workload.lengths.source=uniform|workload.lengths.max_prompt_tokens=900|workload.lengths.max_output_tokens=90"
  "workload.lengths.source=resample|workload.max_requests=30"
  "simulation.skip_ahead=false|output.timeseries_interval_s=0"
  "compare=[{label: p32, set: {kv_cache.block_tokens: 32}}, {label: v64, set: {kv_cache.type: vattention, kv_cache.page_bytes: 64KiB}}]"
)
i=0
for o in "${overrides[@]}"; do
  { cat configs/quickstart.yaml; echo "#--set"; tr '|' '\n' <<< "$o"; } |
    seed fuzz_scenario "quickstart_set_$i.yaml"
  i=$((i + 1))
done
{ cat configs/quickstart.yaml; cat <<'YAML'
compare:
  - {label: paged32, set: {kv_cache.type: paged, kv_cache.block_tokens: 32}}
  - {label: static, set: {kv_cache.type: static}}
YAML
} | seed fuzz_scenario quickstart_compare.yaml
cat <<'YAML' | seed fuzz_scenario benchmark_serving_trace.yaml
model: Llama-3-8B
gpu: H100-SXM
workload: {trace: ../tests/data/fit/benchmark_serving_small.json}
YAML
cat <<'YAML' | seed fuzz_scenario csv_columns_lengths_only.yaml
model: Llama-3-8B
gpu: H100-SXM
workload:
  trace: ../traces/synthetic_custom_columns.csv
  format: csv
  columns: {prompt_tokens: input_tokens, output_tokens: output_tokens}
  arrival: {process: gamma, rate_qps: 3, cv: 2}
YAML
cat <<'YAML' | seed fuzz_scenario mooncake_test_trace.yaml
seed: 7
model: Yi-6B-200K
gpu: A100-80GB
deployment: {max_model_len: 65536, kv_capacity_bytes: 20GiB}
workload: {trace: ../tests/data/workload/three_rows_mooncake.jsonl, format: mooncake}
kv_cache: {type: paged, block_tokens: 512}
YAML
# The run target starts from the same scenarios.
mkdir -p "$out/fuzz_run"
cp "$out"/fuzz_scenario/* "$out/fuzz_run/"

# --- plans
for f in configs/plans/*.yaml; do
  seed fuzz_plan "$(basename "$f")" < "$f"
done

# --- fit files (read as configs/fit/fuzz.yaml), and one with aggregates and stages
for f in $(grep -l '^runs:' configs/fit/*.yaml); do
  seed fuzz_fit_config "$(basename "$f")" < "$f"
done
cat <<'YAML' | seed fuzz_fit_config aggregates_and_stages.yaml
name: hand
runs:
  - name: agg
    scenario: vllm019_rtx4090.yaml
    set: {scheduler.max_num_seqs: 128}
    aggregates: {ttft_s: {mean: 0.2, p99: 0.9}, tpot_s: {mean: 0.031}}
  - name: staged
    scenario: vllm019_rtxpro6000.yaml
    stages:
      - {set: {workload.arrival.rate_qps: 2}, aggregates: {e2e_s: {p50: 4.0}}}
      - {set: {workload.arrival.rate_qps: 4}, aggregates: {itl_s: {p90: 0.05}}}
  - name: csv
    scenario: vllm019_rtx4090.yaml
    requests: measured.csv
    format: requests_csv
free:
  timing.engine.per_iteration_s: {min: 0, max: 0.01, start: 0.0002}
  timing.roofline.gemm_efficiency: {}
metrics: [ttft_s.mean, e2e_s.p99]
solver: {method: pattern, max_iterations: 10, difference_step: 0.01, max_mean_error: 0.2}
YAML

# --- calibration files (none is bundled: these follow tests/config/calibration_test.cc)
cat <<'YAML' | seed fuzz_calibration shared_terms.yaml
# kvsim calibration
kvsim_calibration: 1
fitted_on:
  fit: configs/fit/vllm019_llama31_8b.yaml
  runs: [rtx4090, rtxpro6000]
  models: [Llama-3.1-8B]
  gpus: [RTX-4090, RTX-PRO-6000]
  timing_type: roofline
  engine_preset: vllm_v1
terms:
  timing.engine.per_iteration_s: 0.00031
  timing.engine.per_seq_s: 2.0e-05
residuals:
  rtx4090: {ttft_s.mean: 0.01}
holdout:
  rtx4090: {e2e_s.p99: -0.02}
YAML
cat <<'YAML' | seed fuzz_calibration engine_kernels.yaml
kvsim_calibration: 2
fitted_on:
  timing_type: roofline
  engine_preset: eager
  engine_kernels: {cuda_graphs: false, fused_kernels: false, kernels_per_layer: 35}
  hosts: ["A100-80GB: 2 x AMD EPYC 7742 (DGX A100), the A100-80GB card's host (speed 0.81)"]
fitted_terms: [timing.engine.launch_per_layer_s]
terms: {timing.engine.launch_per_layer_s: 3.0e-04}
# end of kvsim calibration
YAML
cat <<'YAML' | seed fuzz_calibration gpu_terms.yaml
kvsim_calibration: 2
fitted_on: {timing_type: roofline, engine_preset: vllm_v1, gpus: ["H100-SXM"]}
fitted_terms: [timing.engine.request_finish_s, "timing.roofline.gemm_efficiency @ H100-SXM",
  "timing.engine.kernel_gap_s @ H100-SXM", "timing.allreduce.bus_efficiency @ H100-SXM",
  "timing.roofline.memory_efficiency @ A100-80GB"]
terms: {timing.engine.request_finish_s: 0.001}
gpu_terms:
  H100-SXM:
    timing.roofline.gemm_efficiency: 0.62
    timing.engine.kernel_gap_s: 2.0e-06
    timing.allreduce.bus_efficiency: 0.7
  A100-80GB:
    timing.roofline.memory_efficiency: 0.8
# end of kvsim calibration
YAML

# --- model and GPU cards
for f in models/llm/*.yaml tests/data/hardware/tiny-moe.yaml; do
  seed fuzz_model_card "$(basename "$f")" < "$f"
done
# Hugging Face config.json files: the harness reads an input starting with '{' as one.
for f in models/hf/*/config.json; do
  seed fuzz_model_card "hf_$(basename "$(dirname "$f")").json" < "$f"
done
for f in models/gpu/*.yaml tests/data/hardware/toy-gpu.yaml; do
  seed fuzz_gpu_card "$(basename "$f")" < "$f"
done

# --- kvprobe profiles: the test profiles, and the bundled ones cut to a few rows per
# section ([gemm]: Llama-3-8B only) so that they still parse
reduce_profile() {
  awk -F, '
    /^\[/ { section = $0; rows = -1; print; next }
    /^#/ || /^[[:space:]]*$/ || section == "[meta]" { print; next }
    { rows++ }
    rows == 0 { print; next }                        # the column names
    section == "[gemm]" { if ($1 == "Llama-3-8B" && ($3 == 1 || $3 == 2)) print; next }
    section == "[decode_attention]" || section == "[prefill_attention]" { if (rows <= 60) print; next }
    rows <= 24 { print }
  ' "$1"
}
for f in models/profiles/*/profile.txt; do
  gpu=$(basename "$(dirname "$f")")
  reduce_profile "$f" | seed fuzz_profile "reduced_$gpu.txt"
  first_kib "$f" 8 | seed fuzz_profile "head_$gpu.txt"
done
for f in tests/data/timing/*.txt; do
  seed fuzz_profile "$(basename "$f")" < "$f"
done

# --- measured runs (kvsim fit) and JSON
ref=tools/fidelity/reference/vllm-0.19-llama-3.1-8b
for gpu in RTX4090 RTXPRO6000; do
  first_lines "$ref/$gpu/vllm/requests.jsonl" 20 | seed fuzz_measurement "requests_$gpu.jsonl"
  head -n 1 "$ref/$gpu/vllm/requests.jsonl" | seed fuzz_json "request_line_$gpu.json"
  seed fuzz_json "config_$gpu.json" < "$ref/$gpu/config.json"
  if [ "$(stat -c %s "$ref/$gpu/vllm/meta.json")" -le 16384 ]; then
    seed fuzz_json "meta_$gpu.json" < "$ref/$gpu/vllm/meta.json"
  fi
done
for f in tests/data/fit/*; do
  seed fuzz_measurement "$(basename "$f")" < "$f"
done
seed fuzz_json benchmark_serving_small.json < tests/data/fit/benchmark_serving_small.json
head -n 1 traces/synthetic_trace.jsonl | seed fuzz_json mooncake_line.json
printf '[1, -2.5e-3, 1e400, Infinity, -Infinity, NaN, "a\\u00e9\\n", true, false, null, {"k": [[]]}]\n' |
  seed fuzz_json literals.json

echo "seeds: $(find "$out" -type f | wc -l) files in $(find "$out" -mindepth 1 -maxdepth 1 -type d | wc -l) corpora under $out"
