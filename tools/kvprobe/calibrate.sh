#!/usr/bin/env bash
# Builds kvprobe (needs the CUDA toolkit and CMake) and measures this machine's GPU.
# Usage: tools/kvprobe/calibrate.sh [kvprobe options], e.g. --gpu-name H100-SXM
# Writes models/profiles/<gpu name>/profile.txt and raw CSVs beside it.
# kvprobe is compiled for the compute capabilities of the GPUs present (nvidia-smi);
# without nvidia-smi, for the list of the previous build in build-kvprobe, or sm_80 and
# sm_90 on a first build. KVPROBE_CUDA_ARCHITECTURES=... overrides either.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v nvcc >/dev/null 2>&1 && [[ ! -x /usr/local/cuda/bin/nvcc ]]; then
  echo "calibrate.sh: no CUDA compiler (nvcc) on PATH or in /usr/local/cuda/bin: install the CUDA" \
    "toolkit to build kvprobe" >&2
  exit 2
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1' && ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "calibrate.sh: no NVIDIA driver here (neither libcuda.so.1 nor nvidia-smi): kvprobe measures" \
    "the GPU of the machine it runs on; run this on a machine with an NVIDIA GPU" >&2
  exit 2
fi
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
