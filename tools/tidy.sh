#!/bin/bash
# clang-tidy over sim/ and tools/ with the checks of .clang-tidy, on the compile
# commands of a configured build (default build/). Prints the findings and exits 1
# when there are any. The compile commands hold g++'s flags: clang's -Wconversion would
# also check sign changes, which the build leaves out, so that is off here too.
#   tools/tidy.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
tidy=$(command -v clang-tidy || command -v clang-tidy-14 || true)
if [[ -z "$tidy" ]]; then
  echo "tidy: clang-tidy is not installed (apt-get install clang-tidy)" >&2
  exit 2
fi
if [[ ! -f "$build/compile_commands.json" ]]; then
  echo "tidy: $build/compile_commands.json is missing; configure the build first" >&2
  exit 2
fi
cd "$root"
files=$(git ls-files 'sim/*.cc' 'tools/kvprobe/host/*.cc')
out=$(printf '%s\n' $files | xargs -P "$(nproc)" -n 4 "$tidy" -p "$build" --quiet --extra-arg=-Wno-unknown-warning-option --extra-arg=-Wno-sign-conversion 2>/dev/null |
  grep -E '^/.*(warning|error):' | sort -u || true)
if [[ -n "$out" ]]; then
  printf '%s\n' "$out"
  echo "tidy: $(printf '%s\n' "$out" | wc -l) findings" >&2
  exit 1
fi
echo "tidy: clean"
