#!/usr/bin/env bash
# cmake --install puts kvsim and its bundled files under a prefix, and the installed
# kvsim finds them there from any working directory: a card that exists only in the
# installed tree is found by name, the bundled quickstart config runs with its
# relative trace path, and `kvsim report` uses the installed report script.
# Usage: install_test.sh BUILD_DIR
set -euo pipefail
build=$1
prefix=$(mktemp -d "${TMPDIR:-/tmp}/kvsim_install_test.XXXXXX")
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" > "$prefix.log" 2>&1 || { cat "$prefix.log"; exit 1; }
rm -f "$prefix.log"
share=$prefix/share/kvsim
for f in bin/kvsim share/kvsim/models/llm/Llama-3-8B.yaml share/kvsim/configs/quickstart.yaml \
         share/kvsim/traces/AzureLLMInferenceTrace_conv.csv share/kvsim/tools/report/kvsim_report.py \
         share/kvsim/tools/report/kvsim_report/__init__.py \
         share/kvsim/python/kvsim/__init__.py; do
  [ -e "$prefix/$f" ] || { echo "install_test: $f was not installed"; exit 1; }
done
# A GPU card only the installed tree has: found by name only if kvsim looks there.
sed 's/^name:.*/name: InstalledOnly/' "$share/models/gpu/H100-SXM.yaml" > "$share/models/gpu/InstalledOnly.yaml"
cd "$prefix"
"$prefix/bin/kvsim" run "$share/configs/quickstart.yaml" --set workload.max_requests=30 \
    --set gpu=InstalledOnly --out "$prefix/out" -q
grep -q '"gpu": "InstalledOnly"' "$prefix/out/summary.json" || { echo "install_test: wrong card"; exit 1; }
"$prefix/bin/kvsim" report "$prefix/out" > /dev/null
[ -s "$prefix/out/report.html" ] || { echo "install_test: no report"; exit 1; }
"$prefix/bin/kvsim" --version
echo "install_test: ok"
