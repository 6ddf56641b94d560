#!/usr/bin/env bash
# Builds kvprobe (needs the CUDA toolkit and CMake) and measures this machine's GPU.
# Usage: tools/kvprobe/calibrate.sh [kvprobe options], e.g. --gpu-name H100-SXM
# Writes models/profiles/<gpu name>/profile.txt and raw CSVs beside it (--out DIR: DIR/).
# A --quick or --only run refuses to replace an existing profile.txt there (--force does).
# nvcc is $CUDACXX, else the one on PATH, else /usr/local/cuda/bin/nvcc; CMake is given
# that one (CMake alone looks only on PATH and in $CUDA_PATH).
# kvprobe is compiled for the compute capabilities of the GPUs present (nvidia-smi);
# without nvidia-smi, for the list of the previous build in build-kvprobe, or sm_80 and
# sm_90 on a first build. KVPROBE_CUDA_ARCHITECTURES=... overrides either.
set -euo pipefail
# $CUDACXX as CMake reads it (a name on PATH, or a path from the caller's directory),
# resolved before the cd below.
nvcc="${CUDACXX:-}"
if [[ -n "$nvcc" ]]; then
  nvcc="$(command -v "$nvcc" 2>/dev/null || echo "$nvcc")"
  [[ "$nvcc" == /* ]] || nvcc="$PWD/$nvcc"
fi
cd "$(dirname "$0")/../.."
if [[ -z "$nvcc" ]]; then
  nvcc="$(command -v nvcc 2>/dev/null || true)"
fi
if [[ -z "$nvcc" && -x /usr/local/cuda/bin/nvcc ]]; then
  nvcc=/usr/local/cuda/bin/nvcc
fi
if [[ -z "$nvcc" || ! -x "$nvcc" ]]; then
  echo "calibrate.sh: no CUDA compiler (nvcc) in \$CUDACXX, on PATH or in /usr/local/cuda/bin:" \
    "install the CUDA toolkit to build kvprobe${CUDACXX:+ (CUDACXX=$CUDACXX is not an executable)}" >&2
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
cmake -S tools/kvprobe -B build-kvprobe -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$nvcc" \
  ${archs:+-DKVPROBE_CUDA_ARCHITECTURES="$archs"} >/dev/null
# Without a CUDA compiler CMake builds only kvprobe's host library, and has no kvprobe target.
if ! cmake --build build-kvprobe -j"$(nproc)" --target kvprobe >/dev/null; then
  echo "calibrate.sh: building kvprobe in build-kvprobe failed with $nvcc (above); if CMake" \
    "built no kvprobe target, see the output of: cmake -S tools/kvprobe -B build-kvprobe" \
    "-DCMAKE_CUDA_COMPILER=$nvcc (KVPROBE_BUILD_CUDA must be ON)" >&2
  exit 2
fi
if [[ ! -x build-kvprobe/kvprobe ]]; then
  echo "calibrate.sh: the build made no build-kvprobe/kvprobe (nvcc: $nvcc)" >&2
  exit 2
fi
exec build-kvprobe/kvprobe "$@"
