// PagedAttention (vLLM): fixed-size blocks of block_tokens from one pool.
//
// Without prefix caching the free blocks are a count (PagedKvManager, here). With it,
// the blocks of computed prompts are cached by content and shared (vLLM V1's automatic
// prefix caching: PrefixCachedPagedManager, paged_prefix_cache.cc).
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/id_map.h"
#include "sim/kvcache/kv_cache_manager.h"
#include "sim/kvcache/paged_internal.h"

namespace kvsim {
namespace {

class PagedKvManager final : public KvCacheManager {
 public:
  PagedKvManager(const KvGeometry& geometry, const PagedKvConfig& config)
      : geometry_(geometry),
        config_(config),
        block_bytes_(config.block_tokens * geometry.bytes_per_token),
        total_blocks_(geometry.capacity_bytes / block_bytes_),
        watermark_blocks_(
            static_cast<int64_t>(config.watermark * static_cast<double>(total_blocks_))),
        free_blocks_(total_blocks_) {}

  bool Admit(int64_t id, int64_t tokens, int64_t max_tokens) override {
    KVSIM_CHECK(!requests_.contains(id), "request admitted twice");
    CheckAdmission(geometry_, tokens, max_tokens);
    const int64_t blocks = CeilDiv(tokens, config_.block_tokens);
    if (free_blocks_ - blocks < watermark_blocks_) return false;
    Take(blocks);
    requests_.emplace(id, Entry{blocks, tokens});
    live_tokens_ += tokens;
    return true;
  }

  bool CanAdmit(int64_t, int64_t tokens, int64_t max_tokens) const override {
    CheckAdmission(geometry_, tokens, max_tokens);
    return free_blocks_ - CeilDiv(tokens, config_.block_tokens) >= watermark_blocks_;
  }

  bool Grow(int64_t id, int64_t tokens, GrowthPhase) override {
    Entry* found = requests_.find(id);
    KVSIM_CHECK(found != nullptr, "growing a request that was not admitted");
    Entry& e = *found;
    KVSIM_CHECK(tokens >= e.tokens && tokens <= geometry_.max_model_len, "bad growth");
    const int64_t extra = CeilDiv(tokens, config_.block_tokens) - e.blocks;
    if (extra > free_blocks_) return false;
    Take(extra);
    e.blocks += extra;
    live_tokens_ += tokens - e.tokens;
    e.tokens = tokens;
    return true;
  }

  int64_t CertainDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                              int64_t limit) const override {
    return CertainPagedDecodeRounds(
        ids, tokens, limit, config_.block_tokens, geometry_.max_model_len, free_blocks_,
        [this](int64_t id) { return HeldBy(requests_, id); }, scratch_held_);
  }

  // Per-request next-boundary bookkeeping instead of a lookup per request per round:
  // each request's first round past its blocks, then one every block_tokens rounds.
  void GrowDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                        int64_t rounds, std::vector<KvUsage>& usage) override {
    const auto n = static_cast<int64_t>(ids.size());
    GrowPagedDecodeRounds(
        ids, tokens, rounds, config_.block_tokens, geometry_.max_model_len, free_blocks_,
        [this](int64_t id) { return HeldBy(requests_, id); },
        [this, rounds](int64_t id, int64_t blocks) {
          Entry& e = requests_.at(id);
          e.blocks += blocks;
          e.tokens += rounds;
        },
        [this, n](int64_t blocks) {
          Take(blocks);
          live_tokens_ += n;
        },
        [this] { return Usage(); }, scratch_taken_, usage);
  }

  void Release(int64_t id) override {
    const Entry* found = requests_.find(id);
    KVSIM_CHECK(found != nullptr, "releasing a request that was not admitted");
    free_blocks_ += found->blocks;
    live_tokens_ -= found->tokens;
    requests_.erase(id);
  }

  KvUsage Usage() const override {
    return {.capacity_bytes = geometry_.capacity_bytes,
            .allocated_bytes = (total_blocks_ - free_blocks_) * block_bytes_,
            .live_bytes = live_tokens_ * geometry_.bytes_per_token,
            .cached_bytes = 0};
  }

  AttentionLayout layout() const override { return AttentionLayout::kPaged; }
  int64_t block_tokens() const override { return config_.block_tokens; }

  int64_t MaxAdmissibleTokens() const override {
    return (total_blocks_ - watermark_blocks_) * config_.block_tokens;
  }

 private:
  struct Entry {
    int64_t blocks;
    int64_t tokens;
  };

  void Take(int64_t n) {
    KVSIM_CHECK(n >= 0 && n <= free_blocks_, "taking more blocks than are free");
    free_blocks_ -= n;
  }

  KvGeometry geometry_;
  PagedKvConfig config_;
  int64_t block_bytes_;
  int64_t total_blocks_;
  int64_t watermark_blocks_;
  int64_t free_blocks_;
  IdMap<Entry> requests_;
  int64_t live_tokens_ = 0;
  // Reused buffers of the decode-round calls (no state between calls).
  mutable std::vector<std::pair<int64_t, int64_t>> scratch_held_;
  std::vector<int64_t> scratch_taken_;
};

}  // namespace

std::unique_ptr<KvCacheManager> NewPagedKvManager(const KvGeometry& geometry,
                                                  const PagedKvConfig& config) {
  KVSIM_CHECK(config.block_tokens >= 1, "block_tokens must be positive");
  KVSIM_CHECK(config.watermark >= 0 && config.watermark < 1, "watermark must be in [0, 1)");
  KVSIM_CHECK(geometry.bytes_per_token > 0 && geometry.max_model_len > 0, "bad KV geometry");
  if (config.prefix_caching) return NewPrefixCachedPagedManager(geometry, config);
  return std::make_unique<PagedKvManager>(geometry, config);
}

}  // namespace kvsim
