// Eight bf16 values moved as one 16-byte word: the unit every kvprobe kernel loads.
#pragma once

#include <cuda_bf16.h>

namespace kvprobe {

// Widens the 8 bf16 values packed in `raw` (element 0 in the lowest bytes) to floats.
__device__ __forceinline__ void Unpack8(const uint4& raw, float* out) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

}  // namespace kvprobe
