#!/usr/bin/env bash
# Builds kvsim and every test suite with AddressSanitizer and UndefinedBehaviorSanitizer
# and runs them all (ctest). Any sanitizer report fails the test that triggered it:
# undefined behaviour aborts (-fno-sanitize-recover), as do leaks and memory errors.
#
# With clang++ it builds in build-fuzz/, configured exactly as tools/fuzz/run.sh
# configures it (clang, ASan, UBSan, libFuzzer coverage), so fuzzing afterwards
# reuses the libraries; without clang, g++ with -DKVSIM_SANITIZE=ON in build-asan/.
#
# It builds as on a machine without Open MPI: CMake is told MPI cannot be found
# (-DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON), so CI also builds and tests kvsim down that path
# (the mpirun tests report themselves skipped), and Open MPI's own allocations stay out
# of LeakSanitizer's reports.
#
# Usage: tools/sanitize.sh [CTEST_ARGS...]   e.g. tools/sanitize.sh -R app_tests
# Environment: KVSIM_SANITIZE_JOBS (build and test jobs, default nproc).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=${KVSIM_SANITIZE_JOBS:-$(nproc)}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

if clang=$(command -v clang++); then
  build=${KVSIM_FUZZ_BUILD_DIR:-$root/build-fuzz}
  flags=(-DCMAKE_CXX_COMPILER="$clang" -DKVSIM_FUZZ=ON -DKVPROBE_BUILD_CUDA=OFF
         -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVSIM_MPI=ON -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON)
else
  build=$root/build-asan
  flags=(-DKVSIM_SANITIZE=ON -DKVPROBE_BUILD_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
         -DKVSIM_MPI=ON -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON)
fi
echo "== ASan+UBSan test build ($build)"
mkdir -p "$build"
cmake -S "$root" -B "$build" "${flags[@]}" -DKVSIM_BUILD_TESTS=ON -DKVSIM_WERROR="${KVSIM_WERROR:-OFF}" > "$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 2; }
cmake --build "$build" -j"$jobs"
ctest --test-dir "$build" -j"$jobs" --output-on-failure "$@"
