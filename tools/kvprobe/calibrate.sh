#!/usr/bin/env bash
# Builds kvprobe (needs the CUDA toolkit and CMake) and measures this machine's GPU.
# Usage: tools/kvprobe/calibrate.sh [kvprobe options], e.g. --gpu-name H100-SXM
# Writes models/profiles/<gpu name>/profile.txt and raw CSVs beside it.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S tools/kvprobe -B build-kvprobe -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-kvprobe -j"$(nproc)" >/dev/null
exec build-kvprobe/kvprobe "$@"
