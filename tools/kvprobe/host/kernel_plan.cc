#include "tools/kvprobe/host/kernel_plan.h"

namespace kvprobe {

int PrefillMTiles(int tokens, int q_heads, int batch, int sm_count) {
  constexpr int kMinTokens = 2048;    // 128-row padding at most 1/16 of a sequence
  constexpr long long kMinWaves = 3;  // waves of 128-row blocks over the GPU
  constexpr long long kBlocksPerSm = 2;
  if (tokens < kMinTokens || q_heads < 1 || batch < 1 || sm_count < 1) return 1;
  const long long rows = PrefillBlockRows(2);
  const long long blocks = (tokens + rows - 1) / rows * q_heads * static_cast<long long>(batch);
  return blocks >= kMinWaves * kBlocksPerSm * sm_count ? 2 : 1;
}

}  // namespace kvprobe
