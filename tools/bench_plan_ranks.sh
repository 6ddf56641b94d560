#!/usr/bin/env bash
# Benchmark: the 2,000-candidate plan (configs/plans/bench_2000_candidates.yaml) on one
# process and on 2 and 3 MPI ranks of one thread each; prints each wall time, the speedup
# over one process and the parallel efficiency (speedup / ranks), and checks that every
# run wrote the same plan.csv. Usage: tools/bench_plan_ranks.sh [BUILD_DIR] (default build).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kvsim=${1:-$root/build}/sim/kvsim
plan=$root/configs/plans/bench_2000_candidates.yaml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root_flags=()
[ "$(id -u)" -ne 0 ] || root_flags=(--allow-run-as-root)
seconds() {  # wall seconds of the command "$@"
  local start end
  start=$(date +%s.%N)
  "$@" > /dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
one=$(seconds "$kvsim" plan "$plan" --out "$tmp/r1" --jobs 1 -q)
printf "%-28s %8.2f s  speedup %5.2f  efficiency %5.1f%%\n" "1 process, 1 thread" "$one" 1 100
for n in 2 3; do
  t=$(seconds mpirun "${root_flags[@]}" --oversubscribe -np "$n" "$kvsim" plan "$plan" \
        --out "$tmp/r$n" --jobs 1 -q)
  cmp -s "$tmp/r1/plan.csv" "$tmp/r$n/plan.csv" || { echo "plan.csv differs at $n ranks"; exit 1; }
  speedup=$(echo "$one / $t" | bc -l)
  printf "%-28s %8.2f s  speedup %5.2f  efficiency %5.1f%%\n" "mpirun -np $n, 1 thread each" \
    "$t" "$speedup" "$(echo "100 * $speedup / $n" | bc -l)"
done
echo "plan.csv identical at 1, 2 and 3 ranks; $(($(wc -l < "$tmp/r1/plan.csv") - 1)) candidates"
