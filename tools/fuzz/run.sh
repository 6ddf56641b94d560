#!/usr/bin/env bash
# Builds kvsim's fuzz targets (tests/fuzz/) with clang's libFuzzer, ASan and UBSan in
# build-fuzz/, builds their seed corpora from the repository's files (tools/fuzz/seeds.sh)
# and runs each target for SECONDS_PER_TARGET seconds (default 60).
#
# Usage: tools/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#   TARGET: fuzz_trace, fuzz_scenario, ... (default: all of them, one after another)
#
# A finding is an exception other than kvsim::InputError escaping a parser, a broken
# promise of the parser's header, an ASan/UBSan/LeakSanitizer report, an input running
# over 20 s or a single allocation over 1 GiB. Inputs use tools/fuzz/fuzz.dict.
# Exits 0 when no target found anything; else 1, after printing each finding's target
# and crash file. Kept in build-fuzz/ (ignored by git):
#   fuzz-corpus/TARGET/     the corpus each run grows and the next run starts from
#   fuzz-artifacts/TARGET/  crash-*, leak-*, timeout-*, oom-* inputs
#   fuzz-logs/TARGET.log    libFuzzer's output
# Reproduce a finding: build-fuzz/tests/fuzz/TARGET FILE (KVSIM_FUZZ_VERBOSE=1 also
# prints every input error the harness saw).
#
# Environment: KVSIM_FUZZ_BUILD_DIR (default build-fuzz), KVSIM_FUZZ_JOBS (build jobs,
# default nproc), KVSIM_FUZZ_PARALLEL (targets run at once, default 1; one core each),
# KVSIM_FUZZ_ARGS (extra libFuzzer flags, e.g. "-only_ascii=1").
set -euo pipefail

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: tools/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi
shift $(($# > 0 ? 1 : 0))

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KVSIM_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${KVSIM_FUZZ_JOBS:-$(nproc)}
all_targets=(fuzz_trace fuzz_scenario fuzz_plan fuzz_fit_config fuzz_calibration fuzz_model_card
             fuzz_gpu_card fuzz_profile fuzz_measurement fuzz_json fuzz_run)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "unknown target '$t'; targets: ${all_targets[*]}" >&2; exit 2; }
done

clang=${CXX:-}
[ -n "$clang" ] && [[ $("$clang" --version 2>/dev/null) == *clang* ]] || clang=$(command -v clang++ || true)
[ -n "$clang" ] || { echo "tools/fuzz/run.sh: clang++ (with libFuzzer) is required" >&2; exit 2; }

echo "== configure and build ($build, $clang)"
mkdir -p "$build"
# The same configuration as tools/sanitize.sh, which also builds the tests here.
cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER="$clang" -DKVSIM_FUZZ=ON -DKVPROBE_BUILD_CUDA=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 2; }
cmake --build "$build" --target kvsim_fuzzers -j"$jobs"

# The seed corpora and the targets' scratch files live in one temporary directory.
work=$(mktemp -d "${TMPDIR:-/tmp}/kvsim_fuzz_run.XXXXXX")
trap 'rm -rf "$work"' EXIT
seeds=$work/seeds
"$root/tools/fuzz/seeds.sh" "$seeds"
mkdir -p "$work/tmp"
export TMPDIR=$work/tmp

# Findings abort: ASan/UBSan stop at the first error (halt_on_error), LeakSanitizer
# reports leaks at exit; malloc_limit_mb makes a single huge allocation a finding.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:halt_on_error=1:detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

# Runs target $1 and writes its summary line to $work/result.$1, prefixed "FINDING "
# when it found something.
run_target() {
  local t=$1
  local corpus=$build/fuzz-corpus/$t
  local artifacts=$build/fuzz-artifacts/$t
  local log=$build/fuzz-logs/$t.log
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  echo "== $t: ${seconds}s (log $log)"
  local before start rc=0 new execs cov line
  before=$(find "$artifacts" -type f | sort)
  start=$SECONDS
  # shellcheck disable=SC2086  # KVSIM_FUZZ_ARGS is a list of flags
  "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2560 \
      -malloc_limit_mb=1024 -max_len=65536 -print_final_stats=1 -dict="$root/tools/fuzz/fuzz.dict" \
      -artifact_prefix="$artifacts/" ${KVSIM_FUZZ_ARGS:-} "$corpus" "$seeds/$t" > "$log" 2>&1 || rc=$?
  new=$(comm -13 <(echo "$before") <(find "$artifacts" -type f | sort) | grep -v '/slow-unit-' || true)
  execs=$(grep -a '^stat::number_of_executed_units:' "$log" | tail -n 1 | tr -dc '0-9')
  cov=$(grep -a -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
  line="$t: ${execs:-?} executions in $((SECONDS - start))s, ${cov:-cov: ?}, corpus $(find "$corpus" -type f | wc -l) files"
  if [ "$rc" -ne 0 ] || [ -n "$new" ]; then
    line="FINDING $line: FINDING (exit $rc)"
    {
      echo "!! FINDING in $t (exit status $rc); last lines of $log:"
      grep -a -E '==kvsim-fuzz==|ERROR: |SUMMARY: |runtime error|Test unit written' "$log" | tail -n 8 || true
      for f in $new; do echo "!! $t: crash file $f"; done
      [ -n "$new" ] || echo "!! $t: no crash file was written; see $log"
    } >&2
  fi
  echo "$line" > "$work/result.$t"
  echo "   ${line#FINDING }"
}

# KVSIM_FUZZ_PARALLEL targets at a time (default 1: one after another).
parallel=${KVSIM_FUZZ_PARALLEL:-1}
for t in "${targets[@]}"; do
  if [ "$parallel" -gt 1 ]; then
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
    run_target "$t" &
  else
    run_target "$t"
  fi
done
wait

failed=()
summary=()
for t in "${targets[@]}"; do
  line=$(cat "$work/result.$t" 2>/dev/null || echo "FINDING $t: did not report")
  [[ $line == FINDING* ]] && failed+=("$t")
  summary+=("${line#FINDING }")
done

echo "== summary"
printf '   %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  echo "reproduce: $build/tests/fuzz/TARGET CRASH_FILE" >&2
  exit 1
fi
echo "no findings"
