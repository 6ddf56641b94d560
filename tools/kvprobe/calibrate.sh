#!/usr/bin/env bash
# Builds kvprobe (needs the CUDA toolkit and CMake) and measures this machine's GPU.
# Usage: tools/kvprobe/calibrate.sh [kvprobe options], e.g. --gpu-name H100-SXM
# Writes models/profiles/<gpu name>/profile.txt and raw CSVs beside it.
# kvprobe is compiled for the compute capabilities of the GPUs present (nvidia-smi),
# else for the build's default list; KVPROBE_CUDA_ARCHITECTURES=... overrides both.
set -euo pipefail
cd "$(dirname "$0")/../.."
archs="${KVPROBE_CUDA_ARCHITECTURES:-}"
if [[ -z "$archs" ]] && command -v nvidia-smi >/dev/null 2>&1; then
  # "9.0" -> "90"; one entry per distinct capability, ';'-separated for CMake.
  archs="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null |
    tr -d ' .' | grep -E '^[0-9]+$' | sort -u | paste -sd';' || true)"
fi
cmake -S tools/kvprobe -B build-kvprobe -DCMAKE_BUILD_TYPE=Release \
  ${archs:+-DKVPROBE_CUDA_ARCHITECTURES="$archs"} >/dev/null
cmake --build build-kvprobe -j"$(nproc)" >/dev/null
exec build-kvprobe/kvprobe "$@"
