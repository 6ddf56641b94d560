// Pieces the paged managers share (paged_manager.cc: without prefix caching;
// paged_prefix_cache.cc: with it). Internal to sim/kvcache.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/kvcache/kv_cache_manager.h"

namespace kvsim {

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

// The new blocks a request holding `blocks` blocks of block_tokens and `tokens` tokens
// takes over a decode run of `rounds` rounds: round j (1 <= j <= rounds) needs one
// when tokens + j passes its blocks, first at blocks x block_tokens - tokens + 1 (>= 1
// while the blocks cover the tokens), then every block_tokens rounds. Adds one to
// taken_per_round[j] for each and returns how many.
inline int64_t AddDecodeRoundBlocks(int64_t tokens, int64_t blocks, int64_t rounds,
                                    int64_t block_tokens, std::vector<int64_t>& taken_per_round) {
  const int64_t first = blocks * block_tokens - tokens + 1;
  KVSIM_CHECK(first >= 1, "a request's blocks do not cover its tokens");
  int64_t n = 0;
  for (int64_t j = first; j <= rounds; j += block_tokens) {
    ++taken_per_round[static_cast<size_t>(j)];
    ++n;
  }
  return n;
}

// (tokens, blocks) of request `id` in `requests` (an IdMap of records with those
// fields), or (-1, 0) when it is not there: the `held_of` of the two functions here.
template <typename Requests>
std::pair<int64_t, int64_t> HeldBy(const Requests& requests, int64_t id) {
  const auto* r = requests.find(id);
  return r == nullptr ? std::pair<int64_t, int64_t>{-1, 0}
                      : std::pair<int64_t, int64_t>{r->tokens, r->blocks};
}

// KvCacheManager::GrowDecodeRounds of a paged pool: each request of `ids` (holding
// tokens[i] tokens) grows by `rounds` tokens. `held_of(id)` gives a request's
// (tokens, blocks); `grow(id, new_blocks)` records its new blocks and tokens; then,
// round by round, `take_round(n)` takes that round's n new blocks from the pool (and
// counts the round's tokens) and `usage_now()` is recorded in `usage`. `taken` is a
// scratch buffer. REQUIRES: the new blocks together fit `free_blocks`.
template <typename HeldOf, typename Grow, typename TakeRound, typename UsageNow>
void GrowPagedDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                           int64_t rounds, int64_t block_tokens, int64_t max_model_len,
                           int64_t free_blocks, HeldOf held_of, Grow grow, TakeRound take_round,
                           UsageNow usage_now, std::vector<int64_t>& taken,
                           std::vector<KvUsage>& usage) {
  KVSIM_CHECK(ids.size() == tokens.size(), "one token count per request");
  taken.assign(static_cast<size_t>(rounds) + 1, 0);  // new blocks in round j
  int64_t total = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto [t, blocks] = held_of(ids[i]);
    KVSIM_CHECK(t == tokens[i] && tokens[i] + rounds <= max_model_len, "bad decode rounds");
    const int64_t n = AddDecodeRoundBlocks(tokens[i], blocks, rounds, block_tokens, taken);
    grow(ids[i], n);
    total += n;
  }
  KVSIM_CHECK(total <= free_blocks, "decode rounds beyond the free blocks");
  usage.clear();
  for (int64_t j = 1; j <= rounds; ++j) {
    take_round(taken[static_cast<size_t>(j)]);
    usage.push_back(usage_now());
  }
}

// What both paged managers share (CRTP: `Derived` is the manager, which befriends this
// class): a pool of total_blocks_ blocks of block_tokens tokens, free_blocks_ of them
// free; admission keeps watermark_blocks_ free, growth may use them. Growth, alone or
// in decode rounds, takes blocks that cache nothing from the pool. `Derived` has
//  - requests_: an IdMap of the admitted requests' records, each with the `tokens`
//    it holds and the `blocks` of its block table;
//  - TakeFree(n): takes n blocks from the free pool, n <= free_blocks_;
//  - AppendBlocks(record, n): appends n taken blocks, caching nothing, to a
//    request's table and adds them to its `blocks`.
template <typename Derived>
class PagedPoolManager : public KvCacheManager {
 public:
  bool Grow(int64_t id, int64_t tokens, GrowthPhase) final {
    auto* found = self().requests_.find(id);
    KVSIM_CHECK(found != nullptr, "growing a request that was not admitted");
    auto& r = *found;
    KVSIM_CHECK(tokens >= r.tokens && tokens <= geometry_.max_model_len, "bad growth");
    const int64_t extra = CeilDiv(tokens, config_.block_tokens) - r.blocks;
    if (extra > free_blocks_) return false;
    self().TakeFree(extra);
    self().AppendBlocks(r, extra);
    live_tokens_ += tokens - r.tokens;
    r.tokens = tokens;
    return true;
  }

  int64_t CertainDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                              int64_t limit) const final {
    return CertainPagedDecodeRounds(
        ids, tokens, limit, config_.block_tokens, geometry_.max_model_len, free_blocks_,
        [this](int64_t id) { return HeldBy(self().requests_, id); }, scratch_held_);
  }

  // Per-request next-boundary bookkeeping instead of a lookup per request per round:
  // each request's first round past its blocks, then one every block_tokens rounds.
  // The new blocks all cache nothing, so which request takes which free block does
  // not matter, only how many each round takes: per round one TakeFree, per request
  // one AppendBlocks.
  void GrowDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                        int64_t rounds, std::vector<KvUsage>& usage) final {
    const auto n = static_cast<int64_t>(ids.size());
    GrowPagedDecodeRounds(
        ids, tokens, rounds, config_.block_tokens, geometry_.max_model_len, free_blocks_,
        [this](int64_t id) { return HeldBy(self().requests_, id); },
        [this, rounds](int64_t id, int64_t blocks) {
          auto& r = self().requests_.at(id);
          self().AppendBlocks(r, blocks);
          r.tokens += rounds;
        },
        [this, n](int64_t blocks) {
          self().TakeFree(blocks);
          live_tokens_ += n;
        },
        [this] { return self().Usage(); }, scratch_taken_, usage);
  }

  AttentionLayout layout() const final { return AttentionLayout::kPaged; }
  int64_t block_tokens() const final { return config_.block_tokens; }
  int64_t MaxAdmissibleTokens() const final {
    return (total_blocks_ - watermark_blocks_) * config_.block_tokens;
  }

 protected:
  // REQUIRES: config checked as NewPagedKvManager checks it.
  PagedPoolManager(const KvGeometry& geometry, const PagedKvConfig& config)
      : geometry_(geometry),
        config_(config),
        block_bytes_(config.block_tokens * geometry.bytes_per_token),
        total_blocks_(geometry.capacity_bytes / block_bytes_),
        watermark_blocks_(
            static_cast<int64_t>(config.watermark * static_cast<double>(total_blocks_))),
        free_blocks_(total_blocks_) {}

  KvGeometry geometry_;
  PagedKvConfig config_;
  int64_t block_bytes_;
  int64_t total_blocks_;
  int64_t watermark_blocks_;
  int64_t free_blocks_;
  int64_t live_tokens_ = 0;  // tokens of admitted requests, a shared block's once per reader

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
  const Derived& self() const { return static_cast<const Derived&>(*this); }

  // Reused buffers of the decode-round calls (no state between calls).
  mutable std::vector<std::pair<int64_t, int64_t>> scratch_held_;
  std::vector<int64_t> scratch_taken_;
};

// The paged manager with vLLM V1's automatic prefix caching (paged_prefix_cache.cc).
// REQUIRES: config checked as NewPagedKvManager checks it.
std::unique_ptr<KvCacheManager> NewPrefixCachedPagedManager(const KvGeometry& geometry,
                                                            const PagedKvConfig& config);

}  // namespace kvsim
