#!/bin/sh
# mpirun -np 2 and -np 3 (oversubscribed on a 2-core machine) write the plan.csv and
# plan.json of a single-process run, byte for byte but for plan.json's wall time: for the
# 48-candidate benchmark plan and for a plan of two scenarios (with plan_scenarios.csv).
# Usage: mpi_plan_test.sh KVSIM_BINARY SOURCE_DIR
set -eu
kvsim=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Open MPI refuses to run as root unless told; containers and CI often are root.
root_flags=""
if [ "$(id -u)" = 0 ]; then root_flags="--allow-run-as-root"; fi
strip() { sed 's/"wall_s": [-0-9.e+]*/"wall_s": _/' "$1"; }
for plan in "$src/configs/plans/bench_48_candidates.yaml" \
    "$src/configs/plans/llama3_8b_conv_and_code.yaml"; do
  name=$(basename "$plan" .yaml)
  "$kvsim" plan "$plan" --out "$tmp/$name-single" --jobs 2 -q
  for n in 2 3; do
    mpirun $root_flags --oversubscribe -np "$n" "$kvsim" plan "$plan" --out "$tmp/$name-np$n" \
      --jobs 1 -q
    cmp "$tmp/$name-single/plan.csv" "$tmp/$name-np$n/plan.csv"
    if [ -f "$tmp/$name-single/plan_scenarios.csv" ]; then
      cmp "$tmp/$name-single/plan_scenarios.csv" "$tmp/$name-np$n/plan_scenarios.csv"
    fi
    strip "$tmp/$name-single/plan.json" > "$tmp/a.json"
    strip "$tmp/$name-np$n/plan.json" > "$tmp/b.json"
    cmp "$tmp/a.json" "$tmp/b.json"
    echo "$name, mpirun -np $n: outputs identical to one process"
  done
done
# An error on the ranks (a plan that does not exist) ends them all with its message.
if mpirun $root_flags --oversubscribe -np 2 "$kvsim" plan "$tmp/none.yaml" --out "$tmp/x" -q \
    2> "$tmp/err.txt"; then
  echo "a missing plan under mpirun did not fail"; exit 1
fi
grep -q "none.yaml" "$tmp/err.txt"
echo "mpirun with a missing plan: fails naming it"
