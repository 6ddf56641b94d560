// PagedAttention (vLLM): fixed-size blocks of block_tokens from one pool.
//
// Without prefix caching the free blocks are a count (PagedKvManager, here). With it,
// the blocks of computed prompts are cached by content and shared (vLLM V1's automatic
// prefix caching: PrefixCachedPagedManager, paged_prefix_cache.cc).
#include <cstdint>
#include <memory>

#include "sim/core/check.h"
#include "sim/core/id_map.h"
#include "sim/kvcache/kv_cache_manager.h"
#include "sim/kvcache/paged_internal.h"

namespace kvsim {
namespace {

class PagedKvManager final : public PagedPoolManager<PagedKvManager> {
 public:
  PagedKvManager(const KvGeometry& geometry, const PagedKvConfig& config)
      : PagedPoolManager(geometry, config) {}

  bool Admit(int64_t id, int64_t tokens, int64_t max_tokens) override {
    KVSIM_CHECK(!requests_.contains(id), "request admitted twice");
    CheckAdmission(geometry_, tokens, max_tokens);
    const int64_t blocks = CeilDiv(tokens, config_.block_tokens);
    if (free_blocks_ - blocks < watermark_blocks_) return false;
    TakeFree(blocks);
    requests_.emplace(id, Entry{blocks, tokens});
    live_tokens_ += tokens;
    return true;
  }

  bool CanAdmit(int64_t, int64_t tokens, int64_t max_tokens) const override {
    CheckAdmission(geometry_, tokens, max_tokens);
    return free_blocks_ - CeilDiv(tokens, config_.block_tokens) >= watermark_blocks_;
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
            .cached_bytes = 0,
            .bytes_per_token = geometry_.bytes_per_token};
  }

 private:
  friend class PagedPoolManager<PagedKvManager>;

  struct Entry {
    int64_t blocks;
    int64_t tokens;
  };

  void TakeFree(int64_t n) {
    KVSIM_CHECK(n >= 0 && n <= free_blocks_, "taking more blocks than are free");
    free_blocks_ -= n;
  }

  static void AppendBlocks(Entry& e, int64_t n) { e.blocks += n; }

  IdMap<Entry> requests_;
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
