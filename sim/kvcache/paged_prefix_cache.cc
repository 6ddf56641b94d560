// PagedAttention with vLLM V1's automatic prefix caching (PrefixCachedPagedManager;
// vllm/v1/core/block_pool.py, kv_cache_manager.py, kv_cache_utils.py): each full
// block of computed tokens is cached under its content key (ContentKey: the same key
// means the same tokens from the request's start through the block's end), blocks
// carry reference counts so requests share them, and freed blocks join a free queue
// in LRU order (a request's blocks in reverse, its last block first) from whose head
// allocation evicts. A request's leading blocks whose keys are cached are reused at
// admission and need no compute: another request's prefix, or its own blocks after
// a preemption. These are vLLM's per-block rules; the manager keeps them in runs of
// up to 32 consecutive block positions (see PrefixCachedPagedManager).
#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/flat_key_map.h"
#include "sim/core/id_map.h"
#include "sim/kvcache/kv_cache_manager.h"
#include "sim/kvcache/paged_internal.h"

namespace kvsim {
namespace {

// The paged pool with vLLM V1's automatic prefix caching (see the top of the file).
//
// Same rules as one block at a time, kept in runs of block positions so that the
// work of an admission, a registration, a release or an eviction is per run, not per
// block (a Mooncake request holds about a thousand blocks; its runs are about 30).
//  - Content. Block position j of a request holds its tokens [0, (j + 1) x
//    block_tokens); its content is (its source at that end, j) (ContentSourceAt).
//    Positions go in windows of kWindow: a Group is the cached blocks of one
//    source's window, found through one FlatKeyMap entry (ContentGroupKey), its
//    positions as bit masks (`present`, `in_use`, `shared`). Two blocks hold the same
//    content exactly when ContentKey gives their ends the same key (up to 64-bit
//    collisions): this is vLLM's one-entry-per-block cache.
//  - A request's block table is a list of Spans, each the positions of one window and
//    one source: which of them hold a cached block (`held`, of the span's group) and
//    which a block caching nothing (`anon`: not yet computed or registered, a partial
//    block, or a copy of content another block caches).
//  - A block's reference count is 0 (free), 1 (in `in_use`) or 1 + extra (in
//    `shared`, extra per position): only sharing costs per-block work.
//  - The free queue (LRU, evict from the front) is a list of Items, each the free
//    blocks one release gave back from one span, highest position first: `cached`
//    (positions of a group) and `empty`. A group lists the items holding its free
//    blocks, so that a hit takes them back out; an item that hits emptied is dead and
//    skipped.
class PrefixCachedPagedManager final : public PagedPoolManager<PrefixCachedPagedManager> {
 public:
  PrefixCachedPagedManager(const KvGeometry& geometry, const PagedKvConfig& config)
      : PagedPoolManager(geometry, config),
        // A group holds at least one cached block: never more groups than blocks. Most
        // hold many, so the index starts small and grows as needed.
        index_(total_blocks_, 0) {
    KVSIM_CHECK(total_blocks_ < (int64_t{1} << 31), "more blocks than group ids");
    // The never-used blocks, as empty items of up to kWindow blocks.
    for (int64_t left = total_blocks_; left > 0; left -= kWindow) {
      queue_.push_back({kNone, 0, RangeMask(0, std::min<int64_t>(left, kWindow))});
    }
  }

  void Identify(int64_t id, const PrefixIdentity& prefix) override {
    if (memo_.id == id) memo_.id = -1;  // its hits were for the old identity
    PrefixIdentity* known = identities_.find(id);
    if (known != nullptr) {
      *known = prefix;
    } else {
      identities_.emplace(id, prefix);
    }
  }

  bool Admit(int64_t id, int64_t tokens, int64_t max_tokens) override {
    KVSIM_CHECK(!requests_.contains(id), "request admitted twice");
    CheckAdmission(geometry_, tokens, max_tokens);
    const PrefixIdentity prefix = IdentityOf(id);
    const HitMemo& hits = Hits(id, prefix, tokens);
    if (!Fits(hits, tokens)) return false;
    Request r;
    r.prefix = prefix;
    r.tokens = tokens;
    if (!spare_tables_.empty()) {
      r.spans = std::move(spare_tables_.back());
      spare_tables_.pop_back();
    }
    const int64_t blocks = CeilDiv(tokens, config_.block_tokens);
    AppendBlocks(r, blocks);
    // The hits: each run lies in one span (both end where the window or the source does).
    size_t s = 0;
    for (const HitRun& run : hits.runs) {
      while (r.spans[s].hi <= run.lo) ++s;
      Span& span = r.spans[s];
      const Mask mask = RangeMask(run.lo, run.hi);
      span.group = run.group;
      span.held |= mask;
      span.anon &= ~mask;
      Group& group = groups_[static_cast<size_t>(run.group)];
      const Mask from_free = mask & ~group.in_use;
      if (from_free != 0) TakeBack(run.group, from_free);
      AddReferences(group, mask & group.in_use);
      group.in_use |= mask;
    }
    r.registered = hits.count;  // cached blocks carry their content
    TakeFree(blocks - hits.count);
    live_tokens_ += tokens;
    requests_.emplace(id, std::move(r));
    CompactQueue();
    return true;
  }

  bool CanAdmit(int64_t id, int64_t tokens, int64_t max_tokens) const override {
    CheckAdmission(geometry_, tokens, max_tokens);
    return Fits(Hits(id, IdentityOf(id), tokens), tokens);
  }

  int64_t CachedPrefixTokens(int64_t id, int64_t tokens) const override {
    KVSIM_CHECK(!requests_.contains(id) && tokens >= 1, "asking an admitted request's cache");
    return Hits(id, IdentityOf(id), tokens).count * config_.block_tokens;
  }

  bool WantsComputedTokens() const override { return true; }

  // Caches the request's full blocks of computed tokens under their content; a
  // content another block already caches is left to that block (vLLM caches one
  // copy). Visits only the spans of blocks completed since the last call.
  void OnTokensComputed(int64_t id, int64_t computed_tokens) override {
    Request* found = requests_.find(id);
    KVSIM_CHECK(found != nullptr, "computed tokens of a request that was not admitted");
    Request& r = *found;
    const int64_t full = std::min(computed_tokens, r.tokens) / config_.block_tokens;
    while (r.registered < full) {
      while (r.spans[r.registered_span].hi <= r.registered) ++r.registered_span;
      Span& span = r.spans[r.registered_span];
      const int64_t hi = std::min(span.hi, full);
      const Mask mask = RangeMask(r.registered, hi);  // blocks caching nothing yet
      const int32_t g = index_.Find(span.key).value_or(kNone);
      const int32_t gi = g == kNone ? NewGroup(span.key) : g;
      KVSIM_CHECK(span.held == 0 || span.group == gi, "a span's blocks in two groups");
      Group& group = groups_[static_cast<size_t>(gi)];
      const Mask fresh = mask & ~group.present;  // the rest another block caches
      group.present |= fresh;
      group.in_use |= fresh;
      span.group = gi;
      span.held |= fresh;
      span.anon &= ~fresh;
      r.registered = hi;
    }
  }

  void Release(int64_t id) override { ReleaseWritten(id, std::numeric_limits<int64_t>::max()); }

  void ReleaseWritten(int64_t id, int64_t written_tokens) override {
    KVSIM_CHECK(written_tokens >= 0, "written tokens must not be negative");
    OnTokensComputed(id, written_tokens);
    Request& r = requests_.at(id);
    // In reverse, so that the request's last block is evicted first.
    for (auto it = r.spans.rbegin(); it != r.spans.rend(); ++it) {
      const Span& span = *it;
      Mask freed = 0;
      if (span.held != 0) {
        Group& group = groups_[static_cast<size_t>(span.group)];
        const Mask still_held = span.held & group.shared;
        DropReferences(group, still_held);
        freed = span.held & ~still_held;
        group.in_use &= ~freed;
        if (freed != 0) group.items.push_back(queue_base_ + static_cast<int64_t>(queue_.size()));
      }
      if ((freed | span.anon) == 0) continue;
      queue_.push_back({freed != 0 ? span.group : kNone, freed, span.anon});
      free_blocks_ += std::popcount(freed) + std::popcount(span.anon);
      cached_free_ += std::popcount(freed);
    }
    live_tokens_ -= r.tokens;
    r.spans.clear();
    spare_tables_.push_back(std::move(r.spans));
    requests_.erase(id);
    identities_.erase(id);
    CompactQueue();
  }

  KvUsage Usage() const override {
    return {.capacity_bytes = geometry_.capacity_bytes,
            .allocated_bytes = (total_blocks_ - free_blocks_) * block_bytes_,
            .live_bytes =
                (live_tokens_ - shared_refs_ * config_.block_tokens) * geometry_.bytes_per_token,
            .cached_bytes = cached_free_ * block_bytes_,
            .bytes_per_token = geometry_.bytes_per_token};
  }

 private:
  friend class PagedPoolManager<PrefixCachedPagedManager>;

  static constexpr int32_t kNone = -1;
  // Block positions per window, one bit each: 32 x 16-token blocks are one 512-token
  // hash block of the Mooncake trace.
  using Mask = uint32_t;
  static constexpr int64_t kWindow = 32;

  // The cached blocks of one window of one source (bit p: position window x kWindow
  // + p). A block's references: 0 outside in_use, 1 + extra[p] in shared, else 1.
  struct Group {
    uint64_t key = 0;  // its ContentGroupKey (the index entry leading to it)
    Mask present = 0;  // positions with a cached block; the group is dropped at 0
    Mask in_use = 0;   // of them, held by requests
    Mask shared = 0;   // of them, held by two or more
    std::array<int32_t, kWindow> extra{};  // references beyond the first (shared only)
    std::vector<int64_t> items;            // positions of the items holding its free blocks
  };
  // Free blocks one release gave back from one span, highest position first.
  struct Item {
    int32_t group = kNone;  // the group of `cached`
    Mask cached = 0;        // free blocks caching content
    Mask empty = 0;         // free blocks caching nothing (their bits order them)
  };
  // Consecutive block positions of a request: one window, one source (group `key`).
  struct Span {
    uint64_t key = 0;
    int64_t hi = 0;         // its end: the positions from the previous span's hi
    int64_t until = 0;      // where the window or the source ends: hi may grow to it
    int32_t group = kNone;  // the group of `held` (once it has any)
    Mask held = 0;          // blocks caching content, one reference each
    Mask anon = 0;          // blocks caching nothing
  };
  struct Request {
    PrefixIdentity prefix;
    std::vector<Span> spans;  // its block table, in position order
    int64_t blocks = 0;
    int64_t tokens = 0;
    int64_t registered = 0;      // leading full blocks offered to the cache
    size_t registered_span = 0;  // a span at or before the one holding position `registered`
  };
  // Positions [lo, hi) of the hits, all in one group.
  struct HitRun {
    int32_t group = kNone;
    int64_t lo = 0, hi = 0;
  };
  // The last Hits answer, valid while `evictions` is unchanged.
  struct HitMemo {
    int64_t id = -1;
    int64_t tokens = 0;
    int64_t evictions = 0;
    int64_t count = 0;  // blocks hit: positions [0, count)
    std::vector<HitRun> runs;
  };

  // The bits of positions [lo, hi) of one window.
  static Mask RangeMask(int64_t lo, int64_t hi) {
    const int64_t width = hi - lo;
    const Mask ones = width >= kWindow ? ~Mask{0} : (Mask{1} << width) - 1;
    return ones << (lo % kWindow);
  }

  PrefixIdentity IdentityOf(int64_t id) const {
    const PrefixIdentity* known = identities_.find(id);
    if (known != nullptr) return *known;
    PrefixIdentity own;
    own.request_id = id;
    return own;
  }

  // The group key of block position j of `prefix`, and the first position past j
  // in another window or of another source.
  struct GroupSpan {
    uint64_t key = 0;
    int64_t until = 0;
  };
  GroupSpan SpanAt(const PrefixIdentity& prefix, int64_t j) const {
    const int64_t bt = config_.block_tokens;
    const ContentSourceSpan source = ContentSourceAt(prefix, (j + 1) * bt);
    const int64_t window = j / kWindow;
    // Positions j' whose end (j' + 1) x bt is still at most source.last_end.
    return {ContentGroupKey(source.source, window),
            std::min(source.last_end / bt, (window + 1) * kWindow)};
  }

  // Appends n blocks caching nothing to r's table.
  void AppendBlocks(Request& r, int64_t n) {
    const int64_t end = r.blocks + n;
    int64_t j = r.blocks;
    if (j < end && !r.spans.empty() && r.spans.back().hi == j && j < r.spans.back().until) {
      Span& last = r.spans.back();
      const int64_t hi = std::min(last.until, end);
      last.anon |= RangeMask(j, hi);
      last.hi = hi;
      j = hi;
    }
    while (j < end) {
      const GroupSpan g = SpanAt(r.prefix, j);
      const int64_t hi = std::min(g.until, end);
      r.spans.push_back({g.key, hi, g.until, kNone, 0, RangeMask(j, hi)});
      j = hi;
    }
    r.blocks = end;
  }

  // The cached blocks holding the leading blocks of the first `tokens` tokens of
  // request `id` (whose identity is `prefix`), at most (tokens - 1) / block_tokens of
  // them (the last token is computed again). A waiting request is asked about every
  // iteration while it cannot be admitted (CanAdmit), then by CachedPrefixTokens and
  // Admit, so the answer for one (id, tokens) is kept (until id's next Identify) and
  // only extended while no cached block was evicted since (a hit keeps its content
  // until evicted; a block cached since can only extend the answer).
  const HitMemo& Hits(int64_t id, const PrefixIdentity& prefix, int64_t tokens) const {
    HitMemo& m = memo_;
    if (m.id != id || m.tokens != tokens || m.evictions != evictions_) {
      m.id = id;
      m.tokens = tokens;
      m.evictions = evictions_;
      m.count = 0;
      m.runs.clear();
    }
    const int64_t most = (tokens - 1) / config_.block_tokens;
    while (m.count < most) {
      const int64_t j = m.count;
      const GroupSpan span = SpanAt(prefix, j);
      const std::optional<int32_t> g = index_.Find(span.key);
      if (!g) break;
      const Mask present = groups_[static_cast<size_t>(*g)].present >> (j % kWindow);
      const int64_t hi = std::min({span.until, most, j + std::countr_one(present)});
      if (hi == j) break;
      if (!m.runs.empty() && m.runs.back().group == *g && m.runs.back().hi == j) {
        m.runs.back().hi = hi;
      } else {
        m.runs.push_back({*g, j, hi});
      }
      m.count = hi;
      if (hi < std::min(span.until, most)) break;  // an absent position
    }
    return m;
  }

  // Whether an admission of `tokens` tokens reusing `hits` keeps the watermark free.
  // Hits on blocks in use take no free block; on free (cached) ones they do.
  bool Fits(const HitMemo& hits, int64_t tokens) const {
    const int64_t h = hits.count;
    const int64_t fresh = CeilDiv(tokens, config_.block_tokens) - h;
    if (free_blocks_ - fresh < watermark_blocks_) return false;      // even if none is free
    if (free_blocks_ - h - fresh >= watermark_blocks_) return true;  // even if all are
    int64_t free_after = free_blocks_;
    for (const HitRun& run : hits.runs) {
      const Group& group = groups_[static_cast<size_t>(run.group)];
      free_after -= std::popcount(RangeMask(run.lo, run.hi) & ~group.in_use);
    }
    return free_after - fresh >= watermark_blocks_;
  }

  // One more reference to each block of `mask` (all in use).
  void AddReferences(Group& group, Mask mask) {
    shared_refs_ += std::popcount(mask);
    for (Mask m = mask; m != 0; m &= m - 1) {
      const int p = std::countr_zero(m);
      group.extra[static_cast<size_t>(p)] = (group.shared >> p & 1) != 0 ? group.extra[p] + 1 : 1;
    }
    group.shared |= mask;
  }

  // One reference less to each block of `mask` (all shared).
  void DropReferences(Group& group, Mask mask) {
    shared_refs_ -= std::popcount(mask);
    for (Mask m = mask; m != 0; m &= m - 1) {
      const int p = std::countr_zero(m);
      if (--group.extra[static_cast<size_t>(p)] == 0) group.shared &= ~(Mask{1} << p);
    }
  }

  // Takes the free blocks `mask` of group g out of the free queue (a hit on them).
  void TakeBack(int32_t g, Mask mask) {
    Group& group = groups_[static_cast<size_t>(g)];
    const int n = std::popcount(mask);
    free_blocks_ -= n;
    cached_free_ -= n;
    for (size_t k = 0; k < group.items.size() && mask != 0;) {
      Item& item = queue_[static_cast<size_t>(group.items[k] - queue_base_)];
      const Mask taken = item.cached & mask;
      item.cached &= ~taken;
      mask &= ~taken;
      if (item.cached == 0) {
        if (item.empty == 0) ++dead_items_;
        group.items[k] = group.items.back();
        group.items.pop_back();
      } else {
        ++k;
      }
    }
    KVSIM_CHECK(mask == 0, "a free cached block in no item of the free queue");
  }

  // A new group, with no block, indexed under `key`. REQUIRES: key not indexed.
  int32_t NewGroup(uint64_t key) {
    int32_t g = kNone;
    if (!free_groups_.empty()) {
      g = free_groups_.back();
      free_groups_.pop_back();
    } else {
      g = static_cast<int32_t>(groups_.size());
      groups_.emplace_back();
    }
    Group& group = groups_[static_cast<size_t>(g)];
    group.key = key;
    group.present = group.in_use = group.shared = 0;
    group.items.clear();
    KVSIM_CHECK(index_.Insert(key, g), "a content group indexed twice");
    return g;
  }

  // The `n` highest bits of `mask`. REQUIRES: n <= popcount(mask).
  static Mask HighestBits(Mask mask, int64_t n) {
    Mask out = 0;
    for (int64_t i = 0; i < n; ++i) {
      const Mask bit = Mask{1} << (kWindow - 1 - std::countl_zero(mask));
      out |= bit;
      mask &= ~bit;
    }
    return out;
  }

  // Takes n blocks from the free queue's front, evicting what they cached.
  void TakeFree(int64_t n) {
    KVSIM_CHECK(n >= 0 && n <= free_blocks_, "taking more blocks than are free");
    free_blocks_ -= n;
    while (n > 0) {
      Item& item = queue_[queue_head_];
      const Mask all = item.cached | item.empty;
      if (all == 0) {  // emptied by hits
        --dead_items_;
        ++queue_head_;
        continue;
      }
      const int64_t count = std::popcount(all);
      const Mask taken = count <= n ? all : HighestBits(all, n);
      n -= std::min(count, n);
      const Mask evicted = item.cached & taken;
      item.cached &= ~taken;
      item.empty &= ~taken;
      if (evicted != 0) {
        Group& group = groups_[static_cast<size_t>(item.group)];
        group.present &= ~evicted;
        cached_free_ -= std::popcount(evicted);
        evictions_ += std::popcount(evicted);
        if (item.cached == 0) {
          const int64_t at = queue_base_ + static_cast<int64_t>(queue_head_);
          std::erase(group.items, at);
        }
        if (group.present == 0) {
          index_.Erase(group.key);
          free_groups_.push_back(item.group);
        }
      }
      if ((item.cached | item.empty) == 0) ++queue_head_;
    }
  }

  // Drops the taken items at the queue's front once they are half of it, and the
  // dead ones once they outnumber the live ones (moving the live items to new
  // positions past every earlier one): the queue stays within a constant factor of
  // the free blocks, at an amortised constant cost per item.
  void CompactQueue() {
    if (queue_head_ >= 64 && queue_head_ * 2 > queue_.size()) {
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(queue_head_));
      queue_base_ += static_cast<int64_t>(queue_head_);
      queue_head_ = 0;
    }
    const auto items = static_cast<int64_t>(queue_.size() - queue_head_);
    if (dead_items_ >= 64 && dead_items_ * 2 > items) {
      const int64_t old_end = queue_base_ + static_cast<int64_t>(queue_.size());
      size_t out = 0;
      for (size_t i = queue_head_; i < queue_.size(); ++i) {
        const Item item = queue_[i];
        if ((item.cached | item.empty) == 0) continue;
        if (item.cached != 0) {
          std::vector<int64_t>& at = groups_[static_cast<size_t>(item.group)].items;
          const auto listed =
              std::find(at.begin(), at.end(), queue_base_ + static_cast<int64_t>(i));
          KVSIM_CHECK(listed != at.end(), "a free cached block's item not listed by its group");
          *listed = old_end + static_cast<int64_t>(out);
        }
        queue_[out++] = item;
      }
      queue_.resize(out);
      queue_base_ = old_end;
      queue_head_ = 0;
      dead_items_ = 0;
    }
  }

  FlatKeyMap index_;           // ContentGroupKey -> its group
  std::vector<Group> groups_;  // live groups and, listed in free_groups_, spares
  std::vector<int32_t> free_groups_;
  // The free queue: items [queue_head_, end) of queue_; item i is at position
  // queue_base_ + i (positions are never reused, so a group's `items` stay valid).
  std::vector<Item> queue_;
  size_t queue_head_ = 0;
  int64_t queue_base_ = 0;
  int64_t dead_items_ = 0;   // items in [queue_head_, end) that hits emptied
  int64_t cached_free_ = 0;  // free blocks that still cache content
  IdMap<Request> requests_;
  IdMap<PrefixIdentity> identities_;  // Identify, until Release
  int64_t shared_refs_ = 0;           // references beyond the first to blocks in use
  int64_t evictions_ = 0;             // cached blocks evicted so far
  mutable HitMemo memo_;
  // Reused buffers: released requests' tables (emptied).
  std::vector<std::vector<Span>> spare_tables_;
};

}  // namespace

std::unique_ptr<KvCacheManager> NewPrefixCachedPagedManager(const KvGeometry& geometry,
                                                            const PagedKvConfig& config) {
  return std::make_unique<PrefixCachedPagedManager>(geometry, config);
}

}  // namespace kvsim
