#!/bin/sh
# mpirun -np 2 and -np 3 (oversubscribed on a 2-core machine) of kvsim sweep print what
# a single-process run prints and write its directory tree: every file byte for byte
# but for the wall time of each simulation ("wall_s" in summary.json and sweep.json)
# and, in the manifests, those two files' sizes and CRCs. An error in a run (a trace
# row that is read only while simulating) ends every rank with its message.
# Usage: mpi_sweep_test.sh KVSIM_BINARY SOURCE_DIR
set -eu
kvsim=$1
src=$2
config="$src/configs/quickstart.yaml"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Open MPI refuses to run as root unless told; containers and CI often are root.
root_flags=""
if [ "$(id -u)" = 0 ]; then root_flags="--allow-run-as-root"; fi
sweep() {  # sweep LAUNCHER... : 4 compare entries x 3 rates = 12 runs into $tmp/out
  "$@" "$kvsim" sweep "$config" --rates 2,4.5,8 --set workload.max_requests=150 \
    --out "$tmp/out" --jobs 1
}
# A copy of tree $1 in $2 with the wall times, and the manifest entries of the files
# holding them, written as "_".
normalize() {
  cp -R "$1" "$2"
  find "$2" -type f -name '*.json' | while read -r f; do
    sed 's/"wall_s": [-0-9.e+]*/"wall_s": _/' "$f" |
      awk '/"name": "(summary|sweep)\.json"/ { masked = 2; print; next }
           masked > 0 { sub(/: .*/, ": _"); masked--; }
           { print }' > "$f.normalized"
    mv "$f.normalized" "$f"
  done
}
sweep > "$tmp/single.txt"
mv "$tmp/out" "$tmp/single"
normalize "$tmp/single" "$tmp/single.normalized"
test "$(find "$tmp/single" -name summary.json | wc -l)" -eq 12
for n in 2 3; do
  sweep mpirun $root_flags --oversubscribe -np "$n" > "$tmp/np$n.txt"
  mv "$tmp/out" "$tmp/np$n"
  cmp "$tmp/single.txt" "$tmp/np$n.txt"
  normalize "$tmp/np$n" "$tmp/np$n.normalized"
  diff -r "$tmp/single.normalized" "$tmp/np$n.normalized"
  echo "mpirun -np $n: stdout and every output file identical to one process"
done
# A trace whose 42nd row is malformed; with Poisson arrivals the row is read only when
# a run reaches it, on whichever rank runs it.
head -n 41 "$src/traces/AzureLLMInferenceTrace_conv.csv" > "$tmp/bad.csv"
echo "2023-11-16 18:20:00.0000000,abc,5" >> "$tmp/bad.csv"
if mpirun $root_flags --oversubscribe -np 3 "$kvsim" sweep "$config" --rates 2,4 \
    --set workload.max_requests=100 --set "workload.trace=$tmp/bad.csv" \
    --set workload.arrival.process=poisson --out "$tmp/bad" --jobs 1 -q 2> "$tmp/err.txt"; then
  echo "a sweep whose runs fail did not fail under mpirun"; exit 1
fi
grep -q "bad.csv:42: column 'ContextTokens': 'abc' is not a number" "$tmp/err.txt"
test ! -e "$tmp/bad"
echo "mpirun with a run that fails: fails naming the trace row, writes no outputs"
