// PagedAttention (vLLM): fixed-size blocks of block_tokens from one pool.
//
// Without prefix caching the free blocks are a count (PagedKvManager). With it
// (PrefixCachedPagedManager, vLLM V1's automatic prefix caching: vllm/v1/core/
// block_pool.py, kv_cache_manager.py, kv_cache_utils.py) every block is tracked:
// each full block of computed tokens is cached under its content key (ContentKey:
// the same key means the same tokens from the request's start through the block's
// end), blocks carry reference counts so requests share them, and freed blocks join
// a free queue in LRU order (a request's blocks in reverse, its last block first)
// from whose head allocation evicts. A request's leading blocks whose keys are
// cached are reused at admission and need no compute: another request's prefix, or
// its own blocks after a preemption.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/flat_key_map.h"
#include "sim/core/id_map.h"
#include "sim/kvcache/kv_cache_manager.h"

namespace kvsim {
namespace {

// Round j of a decode run needs a new block for each request whose tokens[i] + j is
// one past a whole number of blocks it holds; all of them together must fit the free
// blocks (each Grow takes from the same pool, so no round is refused exactly when the
// total fits). Blocks are never returned within the rounds. `held(id)` gives a
// request's (tokens, blocks), tokens -1 when it is not admitted.
template <typename Held>
int64_t CertainPagedDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                                 int64_t limit, int64_t block_tokens, int64_t max_model_len,
                                 int64_t free_blocks, Held held_of,
                                 std::vector<std::pair<int64_t, int64_t>>& held) {
  KVSIM_CHECK(ids.size() == tokens.size(), "one token count per request");
  int64_t most = limit;
  held.clear();
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto [t, blocks] = held_of(ids[i]);
    KVSIM_CHECK(t == tokens[i], "decode rounds for a request not holding the given tokens");
    held.emplace_back(t, blocks);
    most = std::min(most, max_model_len - t);
  }
  const auto fits = [&](int64_t r) {
    int64_t need = 0;
    for (const auto& [t, blocks] : held) {
      need += std::max<int64_t>(0, CeilDiv(t + r, block_tokens) - blocks);
    }
    return need <= free_blocks;
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
        [this](int64_t id) {
          const Entry* e = requests_.find(id);
          return e == nullptr ? std::pair<int64_t, int64_t>{-1, 0}
                              : std::pair<int64_t, int64_t>{e->tokens, e->blocks};
        },
        scratch_held_);
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

// The paged pool with vLLM V1's automatic prefix caching (see the top of the file).
class PrefixCachedPagedManager final : public KvCacheManager {
 public:
  PrefixCachedPagedManager(const KvGeometry& geometry, const PagedKvConfig& config)
      : geometry_(geometry),
        config_(config),
        block_bytes_(config.block_tokens * geometry.bytes_per_token),
        watermark_blocks_(0),
        blocks_(static_cast<size_t>(geometry.capacity_bytes / block_bytes_)),
        cached_(static_cast<int64_t>(blocks_.size())) {
    const auto total = static_cast<int64_t>(blocks_.size());
    watermark_blocks_ = static_cast<int64_t>(config.watermark * static_cast<double>(total));
    for (int32_t b = 0; b < static_cast<int32_t>(total); ++b) PushFree(b);
  }

  void Identify(int64_t id, const PrefixIdentity& prefix) override {
    identities_.insert_or_assign(id, prefix);
  }

  bool Admit(int64_t id, int64_t tokens, int64_t max_tokens) override {
    KVSIM_CHECK(!requests_.contains(id), "request admitted twice");
    CheckAdmission(geometry_, tokens, max_tokens);
    const PrefixIdentity prefix = IdentityOf(id);
    const std::vector<int32_t> hits = Hits(prefix, tokens);
    if (!Fits(hits, tokens)) return false;
    Request r;
    r.prefix = prefix;
    r.tokens = tokens;
    r.registered = static_cast<int64_t>(hits.size());  // cached blocks carry their keys
    for (const int32_t b : hits) {
      Block& block = blocks_[static_cast<size_t>(b)];
      if (block.ref == 0) {
        Unlink(b);
      } else {
        ++shared_refs_;  // a second reader of a block in use: its tokens count once
      }
      ++block.ref;
      r.blocks.push_back(b);
    }
    TakeFree(CeilDiv(tokens, config_.block_tokens) - static_cast<int64_t>(hits.size()), r.blocks);
    live_tokens_ += tokens;
    requests_.emplace(id, std::move(r));
    return true;
  }

  bool CanAdmit(int64_t id, int64_t tokens, int64_t max_tokens) const override {
    CheckAdmission(geometry_, tokens, max_tokens);
    return Fits(Hits(IdentityOf(id), tokens), tokens);
  }

  int64_t CachedPrefixTokens(int64_t id, int64_t tokens) const override {
    KVSIM_CHECK(!requests_.contains(id) && tokens >= 1, "asking an admitted request's cache");
    return static_cast<int64_t>(Hits(IdentityOf(id), tokens).size()) * config_.block_tokens;
  }

  bool Grow(int64_t id, int64_t tokens, GrowthPhase) override {
    Request* found = requests_.find(id);
    KVSIM_CHECK(found != nullptr, "growing a request that was not admitted");
    Request& r = *found;
    KVSIM_CHECK(tokens >= r.tokens && tokens <= geometry_.max_model_len, "bad growth");
    const int64_t extra =
        CeilDiv(tokens, config_.block_tokens) - static_cast<int64_t>(r.blocks.size());
    if (extra > free_count_) return false;
    TakeFree(extra, r.blocks);
    live_tokens_ += tokens - r.tokens;
    r.tokens = tokens;
    return true;
  }

  int64_t CertainDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                              int64_t limit) const override {
    return CertainPagedDecodeRounds(
        ids, tokens, limit, config_.block_tokens, geometry_.max_model_len, free_count_,
        [this](int64_t id) {
          const Request* r = requests_.find(id);
          return r == nullptr ? std::pair<int64_t, int64_t>{-1, 0}
                              : std::pair<int64_t, int64_t>{r->tokens,
                                                            static_cast<int64_t>(r->blocks.size())};
        },
        scratch_held_);
  }

  bool WantsComputedTokens() const override { return true; }

  // Caches the request's full blocks of computed tokens under their content keys; a
  // key another block already holds is left to that block (vLLM caches one copy).
  void OnTokensComputed(int64_t id, int64_t computed_tokens) override {
    Request* found = requests_.find(id);
    KVSIM_CHECK(found != nullptr, "computed tokens of a request that was not admitted");
    Request& r = *found;
    const int64_t full = std::min(computed_tokens, r.tokens) / config_.block_tokens;
    for (int64_t b = r.registered; b < full; ++b) {
      const uint64_t key = ContentKey(r.prefix, (b + 1) * config_.block_tokens);
      const int32_t block = r.blocks[static_cast<size_t>(b)];
      if (blocks_[static_cast<size_t>(block)].key == 0 && cached_.Insert(key, block)) {
        blocks_[static_cast<size_t>(block)].key = key;
      }
    }
    r.registered = std::max(r.registered, full);
  }

  void Release(int64_t id) override { ReleaseWritten(id, std::numeric_limits<int64_t>::max()); }

  void ReleaseWritten(int64_t id, int64_t written_tokens) override {
    KVSIM_CHECK(written_tokens >= 0, "written tokens must not be negative");
    OnTokensComputed(id, written_tokens);
    const Request r = std::move(requests_.at(id));
    requests_.erase(id);
    // In reverse, so that the request's last block is evicted first.
    for (auto it = r.blocks.rbegin(); it != r.blocks.rend(); ++it) {
      Block& block = blocks_[static_cast<size_t>(*it)];
      KVSIM_CHECK(block.ref >= 1, "releasing a block nobody holds");
      if (--block.ref > 0) {
        --shared_refs_;
      } else {
        PushFree(*it);
      }
    }
    live_tokens_ -= r.tokens;
    identities_.erase(id);
  }

  KvUsage Usage() const override {
    const auto total = static_cast<int64_t>(blocks_.size());
    return {.capacity_bytes = geometry_.capacity_bytes,
            .allocated_bytes = (total - free_count_) * block_bytes_,
            .live_bytes =
                (live_tokens_ - shared_refs_ * config_.block_tokens) * geometry_.bytes_per_token,
            .cached_bytes = cached_free_ * block_bytes_};
  }

  AttentionLayout layout() const override { return AttentionLayout::kPaged; }
  int64_t block_tokens() const override { return config_.block_tokens; }
  int64_t MaxAdmissibleTokens() const override {
    return (static_cast<int64_t>(blocks_.size()) - watermark_blocks_) * config_.block_tokens;
  }

 private:
  static constexpr int32_t kNone = -1;
  struct Block {
    int32_t ref = 0;       // requests holding it
    uint64_t key = 0;      // content key when cached; 0: none
    int32_t prev = kNone;  // free queue links (ref == 0 only)
    int32_t next = kNone;
  };
  struct Request {
    PrefixIdentity prefix;
    std::vector<int32_t> blocks;  // its block table
    int64_t tokens = 0;
    int64_t registered = 0;  // leading full blocks offered to the cache
  };

  PrefixIdentity IdentityOf(int64_t id) const {
    const auto it = identities_.find(id);
    if (it != identities_.end()) return it->second;
    PrefixIdentity own;
    own.request_id = id;
    return own;
  }

  // The cached blocks holding `prefix`'s leading blocks of its first `tokens` tokens,
  // at most (tokens - 1) / block_tokens of them (the last token is computed again).
  // A waiting request is asked about every iteration while it cannot be admitted, so
  // the answer for one (id, tokens) is kept and only extended while no cached block
  // was evicted since (a hit block keeps its key until it is evicted).
  const std::vector<int32_t>& Hits(const PrefixIdentity& prefix, int64_t tokens) const {
    HitMemo& m = memo_;
    if (m.id != prefix.request_id || m.tokens != tokens || m.evictions != evictions_) {
      m = HitMemo{prefix.request_id, tokens, evictions_, {}};
    }
    const int64_t most = (tokens - 1) / config_.block_tokens;
    for (auto b = static_cast<int64_t>(m.hits.size()); b < most; ++b) {
      const std::optional<int32_t> block =
          cached_.Find(ContentKey(prefix, (b + 1) * config_.block_tokens));
      if (!block) break;
      m.hits.push_back(*block);
    }
    return m.hits;
  }

  // Whether an admission of `tokens` tokens reusing `hits` keeps the watermark free.
  // Hits on blocks in use take no free block; on free (cached) ones they do.
  bool Fits(const std::vector<int32_t>& hits, int64_t tokens) const {
    const auto h = static_cast<int64_t>(hits.size());
    const int64_t fresh = CeilDiv(tokens, config_.block_tokens) - h;
    if (free_count_ - fresh < watermark_blocks_) return false;      // even if none is free
    if (free_count_ - h - fresh >= watermark_blocks_) return true;  // even if all are
    int64_t free_after = free_count_;
    for (const int32_t b : hits) free_after -= blocks_[static_cast<size_t>(b)].ref == 0 ? 1 : 0;
    return free_after - fresh >= watermark_blocks_;
  }

  // Takes n blocks from the free queue's head for `table`, evicting what they cached.
  void TakeFree(int64_t n, std::vector<int32_t>& table) {
    KVSIM_CHECK(n >= 0 && n <= free_count_, "taking more blocks than are free");
    for (int64_t i = 0; i < n; ++i) {
      const int32_t b = head_;
      Unlink(b);
      Block& block = blocks_[static_cast<size_t>(b)];
      if (block.key != 0) {
        cached_.Erase(block.key);
        block.key = 0;
        ++evictions_;
      }
      block.ref = 1;
      table.push_back(b);
    }
  }

  void PushFree(int32_t b) {
    Block& block = blocks_[static_cast<size_t>(b)];
    block.prev = tail_;
    block.next = kNone;
    (tail_ == kNone ? head_ : blocks_[static_cast<size_t>(tail_)].next) = b;
    tail_ = b;
    ++free_count_;
    if (block.key != 0) ++cached_free_;
  }

  void Unlink(int32_t b) {
    Block& block = blocks_[static_cast<size_t>(b)];
    (block.prev == kNone ? head_ : blocks_[static_cast<size_t>(block.prev)].next) = block.next;
    (block.next == kNone ? tail_ : blocks_[static_cast<size_t>(block.next)].prev) = block.prev;
    block.prev = block.next = kNone;
    --free_count_;
    if (block.key != 0) --cached_free_;
  }

  KvGeometry geometry_;
  PagedKvConfig config_;
  int64_t block_bytes_;
  int64_t watermark_blocks_;
  std::vector<Block> blocks_;
  int32_t head_ = kNone, tail_ = kNone;  // the free queue: evict from the head
  int64_t free_count_ = 0;               // blocks in the free queue
  int64_t cached_free_ = 0;              // of them, blocks that still cache content
  FlatKeyMap cached_;  // content key -> the block holding it (one key per block at most)
  IdMap<Request> requests_;
  std::unordered_map<int64_t, PrefixIdentity> identities_;  // Identify, until Release
  int64_t live_tokens_ = 0;  // tokens of admitted requests, shared blocks once per reader
  int64_t shared_refs_ = 0;  // references beyond the first to blocks in use
  // The last Hits answer, valid while `evictions` is unchanged.
  struct HitMemo {
    int64_t id = -1;
    int64_t tokens = 0;
    int64_t evictions = 0;
    std::vector<int32_t> hits;
  };
  int64_t evictions_ = 0;  // cached blocks evicted so far
  mutable HitMemo memo_;
  mutable std::vector<std::pair<int64_t, int64_t>> scratch_held_;
};

}  // namespace

std::unique_ptr<KvCacheManager> NewPagedKvManager(const KvGeometry& geometry,
                                                  const PagedKvConfig& config) {
  KVSIM_CHECK(config.block_tokens >= 1, "block_tokens must be positive");
  KVSIM_CHECK(config.watermark >= 0 && config.watermark < 1, "watermark must be in [0, 1)");
  KVSIM_CHECK(geometry.bytes_per_token > 0 && geometry.max_model_len > 0, "bad KV geometry");
  if (config.prefix_caching) return std::make_unique<PrefixCachedPagedManager>(geometry, config);
  return std::make_unique<PagedKvManager>(geometry, config);
}

}  // namespace kvsim
