#!/bin/sh
# mpirun -np 2 and -np 3 (oversubscribed on a 2-core machine) write the plan.csv and
# plan.json of a single-process run, byte for byte but for plan.json's wall time.
# Usage: mpi_plan_test.sh KVSIM_BINARY SOURCE_DIR
set -eu
kvsim=$1
src=$2
plan="$src/configs/plans/bench_48_candidates.yaml"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Open MPI refuses to run as root unless told; containers and CI often are root.
root_flags=""
if [ "$(id -u)" = 0 ]; then root_flags="--allow-run-as-root"; fi
"$kvsim" plan "$plan" --out "$tmp/single" --jobs 2 -q
strip() { sed 's/"wall_s": [-0-9.e+]*/"wall_s": _/' "$1"; }
for n in 2 3; do
  mpirun $root_flags --oversubscribe -np "$n" "$kvsim" plan "$plan" --out "$tmp/np$n" --jobs 1 -q
  cmp "$tmp/single/plan.csv" "$tmp/np$n/plan.csv"
  strip "$tmp/single/plan.json" > "$tmp/a.json"
  strip "$tmp/np$n/plan.json" > "$tmp/b.json"
  cmp "$tmp/a.json" "$tmp/b.json"
  echo "mpirun -np $n: plan.csv and plan.json identical to one process"
done
# An error on the ranks (a plan that does not exist) ends them all with its message.
if mpirun $root_flags --oversubscribe -np 2 "$kvsim" plan "$tmp/none.yaml" --out "$tmp/x" -q \
    2> "$tmp/err.txt"; then
  echo "a missing plan under mpirun did not fail"; exit 1
fi
grep -q "none.yaml" "$tmp/err.txt"
echo "mpirun with a missing plan: fails naming it"
