// PagedAttention (vLLM): fixed-size blocks of block_tokens from one pool.
#include <unordered_map>

#include "sim/core/check.h"
#include "sim/kvcache/kv_cache_manager.h"

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
    KVSIM_CHECK(tokens >= 1 && tokens <= max_tokens && max_tokens <= geometry_.max_model_len,
                "admission outside [1, max_model_len]");
    const int64_t blocks = CeilDiv(tokens, config_.block_tokens);
    if (free_blocks_ - blocks < watermark_blocks_) return false;
    free_blocks_ -= blocks;
    requests_.emplace(id, Entry{blocks, tokens});
    live_tokens_ += tokens;
    return true;
  }

  bool CanAdmit(int64_t tokens, int64_t max_tokens) const override {
    KVSIM_CHECK(tokens >= 1 && tokens <= max_tokens && max_tokens <= geometry_.max_model_len,
                "admission outside [1, max_model_len]");
    return free_blocks_ - CeilDiv(tokens, config_.block_tokens) >= watermark_blocks_;
  }

  bool Grow(int64_t id, int64_t tokens, GrowthPhase) override {
    auto it = requests_.find(id);
    KVSIM_CHECK(it != requests_.end(), "growing a request that was not admitted");
    Entry& e = it->second;
    KVSIM_CHECK(tokens >= e.tokens && tokens <= geometry_.max_model_len, "bad growth");
    const int64_t extra = CeilDiv(tokens, config_.block_tokens) - e.blocks;
    if (extra > free_blocks_) return false;
    free_blocks_ -= extra;
    e.blocks += extra;
    live_tokens_ += tokens - e.tokens;
    e.tokens = tokens;
    return true;
  }

  void Release(int64_t id) override {
    auto it = requests_.find(id);
    KVSIM_CHECK(it != requests_.end(), "releasing a request that was not admitted");
    free_blocks_ += it->second.blocks;
    live_tokens_ -= it->second.tokens;
    requests_.erase(it);
  }

  KvUsage Usage() const override {
    return {geometry_.capacity_bytes, (total_blocks_ - free_blocks_) * block_bytes_,
            live_tokens_ * geometry_.bytes_per_token};
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
  KvGeometry geometry_;
  PagedKvConfig config_;
  int64_t block_bytes_;
  int64_t total_blocks_;
  int64_t watermark_blocks_;
  int64_t free_blocks_;
  std::unordered_map<int64_t, Entry> requests_;
  int64_t live_tokens_ = 0;
};

}  // namespace

std::unique_ptr<KvCacheManager> NewPagedKvManager(const KvGeometry& geometry,
                                                  const PagedKvConfig& config) {
  KVSIM_CHECK(config.block_tokens >= 1, "block_tokens must be positive");
  KVSIM_CHECK(config.watermark >= 0 && config.watermark < 1, "watermark must be in [0, 1)");
  KVSIM_CHECK(geometry.bytes_per_token > 0 && geometry.max_model_len > 0, "bad KV geometry");
  return std::make_unique<PagedKvManager>(geometry, config);
}

}  // namespace kvsim
