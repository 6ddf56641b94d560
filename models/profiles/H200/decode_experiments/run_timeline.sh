#!/bin/bash
# Builds decode_timeline.cu in eleven variants of the staged decode kernel and traces the
# cells the timeline README section reports; writes its CSVs and times under $1. Run
# from the repository root on a machine with the GPU. VARIANTS="base w8_merge" (say)
# builds and runs only those.
set -euo pipefail
out=$1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw --format=csv
F="-O3 -std=c++17 -arch=sm_90 --expt-relaxed-constexpr -I. -Itools/kvprobe -DKVPROBE_DECODE_TRACE=1"
SRC="tools/kvprobe/cuda/attention.cu tools/kvprobe/cuda/common.cu tools/kvprobe/host/kernel_plan.cc
 tools/kvprobe/host/reference.cc tools/kvprobe/host/steady_warm.cc tools/kvprobe/host/timing_plan.cc
 tools/kvprobe/host/profile_writer.cc tools/kvprobe/host/args.cc -lcuda"
dir=models/profiles/H200/decode_experiments
# Each variant's staged warps (which of kvprobe's two staged kernels it traces), fast merge,
# early slot, four-dimension merge, S accumulators a tile and K/V read as first to leave
# the L2: base is kvprobe 0.3.9's default kernels (4-warp staged blocks, warps merged one
# after another); w8_merge is kvprobe 0.3.10-0.3.12's; w8_vec is w8_merge with
# -DKVPROBE_DECODE_VEC_MERGE=1 (kvprobe 0.3.12's option); w8_vec_qk2 is w8_vec with
# -DKVPROBE_DECODE_QK_CHAINS=2, kvprobe 0.3.13's default kernel; w8_qk2_ef adds
# -DKVPROBE_DECODE_KV_EVICT_FIRST=1, and w8_qk2_ef_early the early slot as well.
declare -A variant=(
  [base]="4 0 0 0 1 0" [w8]="8 0 0 0 1 0" [merge]="4 1 0 0 1 0" [early]="4 0 1 0 1 0"
  [merge_early]="4 1 1 0 1 0" [merge_early_w8]="8 1 1 0 1 0" [w8_merge]="8 1 0 0 1 0"
  [w8_vec]="8 1 0 1 1 0" [w8_vec_qk2]="8 1 0 1 2 0" [w8_qk2_ef]="8 1 0 1 2 1"
  [w8_qk2_ef_early]="8 1 1 1 2 1"
)
run=${VARIANTS:-base w8 merge early merge_early merge_early_w8 w8_merge w8_vec w8_vec_qk2 w8_qk2_ef
  w8_qk2_ef_early}
flags() {
  set -- $1
  echo "-DKVPROBE_TIMELINE_STAGED_WARPS=$1 -DKVPROBE_DECODE_FAST_MERGE=$2 -DKVPROBE_DECODE_EARLY_SLOT=$3 -DKVPROBE_DECODE_VEC_MERGE=$4 -DKVPROBE_DECODE_QK_CHAINS=$5 -DKVPROBE_DECODE_KV_EVICT_FIRST=$6"
}
for v in $run; do
  nvcc $F $(flags "${variant[$v]}") -o /tmp/tl_$v $dir/decode_timeline.cu $SRC &
done
wait
for round in 1 2; do
  for v in $run; do
    for s in "16 1024" "16 4096" "16 256"; do
      set -- $s
      echo "== $v round $round"
      /tmp/tl_$v $1 $2 $out/${v}_${1}x${2}.csv
    done
  done
done 2>&1 | tee $out/timeline_times.txt
