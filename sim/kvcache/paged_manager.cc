// PagedAttention (vLLM): fixed-size blocks of block_tokens from one pool.
//
// Without prefix caching the free blocks are a count. With it (vLLM V1's
// automatic prefix caching, vllm/v1/core/block_pool.py and kv_cache_manager.py)
// they form a queue in release order: never-used blocks first, then each released
// request's blocks as one run, its last block first (vLLM frees a request's blocks
// in reverse order so that its tail is evicted first). Allocation takes blocks from
// the head, evicting the oldest released content. A request admitted again (after
// preemption) finds the whole blocks of its run that are still queued and reuses
// them: their tokens need no recompute.
#include <algorithm>
#include <limits>
#include <list>
#include <unordered_map>

#include "sim/core/check.h"
#include "sim/core/id_map.h"
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
        free_blocks_(total_blocks_) {
    if (config_.prefix_caching && total_blocks_ > 0) queue_.push_back({kNoOwner, total_blocks_, 0});
  }

  bool Admit(int64_t id, int64_t tokens, int64_t max_tokens) override {
    KVSIM_CHECK(!requests_.contains(id), "request admitted twice");
    CheckAdmission(tokens, max_tokens);
    const int64_t blocks = CeilDiv(tokens, config_.block_tokens);
    // Reused blocks are free (queued) blocks too, so the test is the same with them.
    if (free_blocks_ - blocks < watermark_blocks_) return false;
    const int64_t hits = HitBlocks(id, tokens);
    if (const auto it = run_of_.find(id); it != run_of_.end()) {
      // Take the hit blocks out of the queue; the rest of the run (its tail, whose
      // content a new admission does not reuse) stays queued without an owner.
      Run& run = *it->second;
      cached_blocks_ -= run.blocks;
      run.blocks -= hits;
      run.owner = kNoOwner;
      run.full_blocks = 0;
      if (run.blocks == 0) queue_.erase(it->second);
      run_of_.erase(it);
      free_blocks_ -= hits;
    }
    Take(blocks - hits);
    requests_.emplace(id, Entry{blocks, tokens});
    live_tokens_ += tokens;
    return true;
  }

  bool CanAdmit(int64_t, int64_t tokens, int64_t max_tokens) const override {
    CheckAdmission(tokens, max_tokens);
    return free_blocks_ - CeilDiv(tokens, config_.block_tokens) >= watermark_blocks_;
  }

  int64_t CachedPrefixTokens(int64_t id, int64_t tokens) const override {
    KVSIM_CHECK(!requests_.contains(id) && tokens >= 1, "asking an admitted request's cache");
    return HitBlocks(id, tokens) * config_.block_tokens;
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

  // Round j needs a new block for each request whose tokens[i] + j is one past a
  // whole number of blocks it holds; all of them together must fit the free blocks
  // (each Grow takes from the same pool, so no round is refused exactly when the
  // total fits). Blocks are never returned within the rounds.
  int64_t CertainDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                              int64_t limit) const override {
    KVSIM_CHECK(ids.size() == tokens.size(), "one token count per request");
    int64_t most = limit;
    std::vector<std::pair<int64_t, int64_t>>& held = scratch_held_;  // (tokens, blocks)
    held.clear();
    for (size_t i = 0; i < ids.size(); ++i) {
      const Entry* e = requests_.find(ids[i]);
      KVSIM_CHECK(e != nullptr && e->tokens == tokens[i],
                  "decode rounds for a request not holding the given tokens");
      held.emplace_back(tokens[i], e->blocks);
      most = std::min(most, geometry_.max_model_len - tokens[i]);
    }
    const auto fits = [&](int64_t r) {
      int64_t need = 0;
      for (const auto& [t, blocks] : held) {
        need += std::max<int64_t>(0, CeilDiv(t + r, config_.block_tokens) - blocks);
      }
      return need <= free_blocks_;
    };
    if (most <= 0) return 0;
    if (fits(most)) return most;    // the usual case: memory to spare
    int64_t lo = 0, hi = most - 1;  // fits(lo) holds
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo + 1) / 2;
      if (fits(mid)) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return lo;
  }

  // Per-request next-boundary bookkeeping instead of a lookup per request per round:
  // each request's first round past its blocks, then one every block_tokens rounds.
  void GrowDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                        int64_t rounds, std::vector<KvUsage>& usage) override {
    KVSIM_CHECK(ids.size() == tokens.size(), "one token count per request");
    std::vector<int64_t>& taken = scratch_taken_;  // new blocks in round j
    taken.assign(static_cast<size_t>(rounds) + 1, 0);
    int64_t total = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      Entry& e = requests_.at(ids[i]);
      KVSIM_CHECK(e.tokens == tokens[i] && tokens[i] + rounds <= geometry_.max_model_len,
                  "bad decode rounds");
      int64_t n = 0;
      for (int64_t j = e.blocks * config_.block_tokens - tokens[i] + 1; j <= rounds;
           j += config_.block_tokens) {
        if (j >= 1) {
          ++taken[static_cast<size_t>(j)];
          ++n;
        }
      }
      e.blocks += n;
      e.tokens += rounds;
      total += n;
    }
    KVSIM_CHECK(total <= free_blocks_, "decode rounds beyond the free blocks");
    const auto n = static_cast<int64_t>(ids.size());
    usage.clear();
    for (int64_t j = 1; j <= rounds; ++j) {
      Take(taken[static_cast<size_t>(j)]);
      live_tokens_ += n;
      usage.push_back(Usage());
    }
  }

  void Release(int64_t id) override { ReleaseWritten(id, kAllWritten); }

  void ReleaseWritten(int64_t id, int64_t written_tokens) override {
    const Entry* found = requests_.find(id);
    KVSIM_CHECK(found != nullptr, "releasing a request that was not admitted");
    KVSIM_CHECK(written_tokens >= 0, "written tokens must not be negative");
    const Entry e = *found;
    free_blocks_ += e.blocks;
    live_tokens_ -= e.tokens;
    if (config_.prefix_caching && e.blocks > 0) {
      // Only whole blocks of written tokens can be found again (Admit detaches a
      // request's earlier run, so it has none queued now).
      KVSIM_CHECK(!run_of_.contains(id), "a released request still had a queued run");
      const int64_t written = std::min(e.tokens, written_tokens);
      queue_.push_back({id, e.blocks, written / config_.block_tokens});
      run_of_.emplace(id, std::prev(queue_.end()));
      cached_blocks_ += e.blocks;
    }
    requests_.erase(id);
  }

  KvUsage Usage() const override {
    return {.capacity_bytes = geometry_.capacity_bytes,
            .allocated_bytes = (total_blocks_ - free_blocks_) * block_bytes_,
            .live_bytes = live_tokens_ * geometry_.bytes_per_token,
            .cached_bytes = cached_blocks_ * block_bytes_};
  }

  AttentionLayout layout() const override { return AttentionLayout::kPaged; }
  int64_t block_tokens() const override { return config_.block_tokens; }

  int64_t MaxAdmissibleTokens() const override {
    return (total_blocks_ - watermark_blocks_) * config_.block_tokens;
  }

 private:
  static constexpr int64_t kNoOwner = -1;
  static constexpr int64_t kAllWritten = std::numeric_limits<int64_t>::max();
  struct Entry {
    int64_t blocks;
    int64_t tokens;
  };
  // Free blocks released together: `blocks` of them still queued, the last
  // `full_blocks` of the run's original blocks hold whole blocks of `owner`'s tokens
  // (its first ones; the run's tail, evicted first, is its partial last block).
  struct Run {
    int64_t owner;
    int64_t blocks;
    int64_t full_blocks;
  };

  void CheckAdmission(int64_t tokens, int64_t max_tokens) const {
    KVSIM_CHECK(tokens >= 1 && tokens <= max_tokens && max_tokens <= geometry_.max_model_len,
                "admission outside [1, max_model_len]");
  }

  // Whole blocks of `id`'s first `tokens` tokens still queued, at most
  // (tokens - 1) / block_tokens.
  int64_t HitBlocks(int64_t id, int64_t tokens) const {
    const auto it = run_of_.find(id);
    if (it == run_of_.end()) return 0;
    const Run& run = *it->second;
    return std::min({run.full_blocks, run.blocks, (tokens - 1) / config_.block_tokens});
  }

  // Takes n free blocks; with prefix caching, from the head of the queue.
  void Take(int64_t n) {
    KVSIM_CHECK(n >= 0 && n <= free_blocks_, "taking more blocks than are free");
    free_blocks_ -= n;
    if (!config_.prefix_caching) return;
    while (n > 0) {
      Run& head = queue_.front();
      const int64_t k = std::min(n, head.blocks);
      head.blocks -= k;
      n -= k;
      if (head.owner != kNoOwner) cached_blocks_ -= k;
      if (head.blocks == 0) {
        if (head.owner != kNoOwner) run_of_.erase(head.owner);
        queue_.pop_front();
      }
    }
  }

  KvGeometry geometry_;
  PagedKvConfig config_;
  int64_t block_bytes_;
  int64_t total_blocks_;
  int64_t watermark_blocks_;
  int64_t free_blocks_;  // queued blocks, with or without content
  IdMap<Entry> requests_;
  int64_t live_tokens_ = 0;
  // Prefix caching only.
  std::list<Run> queue_;
  std::unordered_map<int64_t, std::list<Run>::iterator> run_of_;  // owner -> its queued run
  // Reused buffers of the decode-round calls (no state between calls).
  mutable std::vector<std::pair<int64_t, int64_t>> scratch_held_;
  std::vector<int64_t> scratch_taken_;
  int64_t cached_blocks_ = 0;  // queued blocks that still hold an owner's content
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
