#include "tools/kvprobe/host/kernel_plan.h"

#include <algorithm>

namespace kvprobe {

DecodeSplit ForcedDecodeSplit(int max_len, int wanted) {
  const long long len = std::max(1, max_len);
  const long long granule = kDecodeSplitGranuleTokens;
  const long long s = std::clamp<long long>(
      wanted, 1, std::min<long long>(kMaxDecodeSplits, std::max(1LL, len / granule)));
  const long long per = ((len + s - 1) / s + granule - 1) / granule * granule;
  return {static_cast<int>((len + per - 1) / per), static_cast<int>(per)};
}

DecodeSplit PlanDecodeSplit(int batch, int kv_heads, int max_len, long long slots) {
  constexpr long long kBlockCost = 64;    // a block's fixed cost, tokens
  constexpr long long kCombineCost = 96;  // the merge kernel's, tokens
  const long long pairs = std::max(1LL, static_cast<long long>(batch) * kv_heads);
  slots = std::max(1LL, slots);
  const int len = std::max(1, max_len);
  const int max_s = std::min(kMaxDecodeSplits, std::max(1, len / kDecodeSplitGranuleTokens));
  long long best_cost = -1;
  DecodeSplit best;
  for (int s = 1; s <= max_s; ++s) {
    const DecodeSplit split = ForcedDecodeSplit(len, s);
    const long long waves = (pairs * split.splits + slots - 1) / slots;
    const long long cost =
        waves * (split.split_tokens + kBlockCost) + (split.splits > 1 ? kCombineCost : 0);
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      best = split;
    }
  }
  return best;
}

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
