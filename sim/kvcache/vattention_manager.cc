// vAttention: virtually contiguous KV per request, physical pages mapped on demand
// (stock CUDA VMM or vAttention's modified UVM driver), mapping overlapped with
// compute, pages of finished requests reused in place or reclaimed.
//
// Accounting unit: the page group, one page of page_bytes in each of the
// 2 x layers K/V buffers of a rank (2 x layers x page_bytes bytes). A request of t
// tokens needs ceil(t / tokens_per_page) groups, where
// tokens_per_page = page_bytes / (kv_heads_per_rank x head_dim x dtype_bytes).
// Reclamation follows the repo's vattention/vattention.cu; see VAttentionKvConfig.
//
// Prefix sharing (PrefixCachedVAttentionManager, VAttentionKvConfig::
// prefix_caching) is kvsim's what-if: the vAttention paper (arXiv 2405.04437,
// ASPLOS'25) and its repo share no prefixes. It mirrors the paged prefix cache
// (paged_manager.cc; vLLM V1's automatic prefix caching, vllm/v1/core/block_pool.py)
// at page-group granularity:
//  - Only whole page groups are shared: a cached prefix of T tokens gives
//    floor(T / tokens_per_page) of them (at most (tokens - 1) / tokens_per_page: the
//    last token is computed again for its logits). The partial last page is
//    recomputed, not copied: copying it would need a device-to-device copy kernel
//    per layer (2 x layers buffers); recomputing fewer than tokens_per_page tokens is
//    what an engine without a copy path does (vLLM caches full blocks only, too).
//  - Content keys: ContentKey(prefix, end) at each page boundary, registered through
//    OnTokensComputed once the page's tokens are computed (whole pages only). A key
//    names tokens [i x P, (i + 1) x P), so a group sits at page index i in every
//    virtual range that maps it; a group may be mapped in several ranges at once.
//  - Mapping a cached group into a request's range costs what growth costs, per page
//    per buffer: stock cuMemMap + cuMemSetAccess, uvm one map call. It happens at
//    admission, before the prefill: synchronous, counted in KvStepCost::map_calls.
//  - A cached group keeps its content in its physical pages whether or not a range
//    maps it (cuMemUnmap leaves a handle's bytes; vAttention keeps its handles in a
//    pool), so the cache holds as much as the pool, not as much as the idle slots'
//    ranges. Evicting a cached group (taking it for other content) unmaps it from
//    every range that still maps it (stock: cuMemUnmap per page per range; uvm:
//    free) and forgets its content.
//  - Groups no request reads are spare (no key: partial or unwritten pages, pages
//    past a reused slot's need; mapped in one range) or cached (keyed, in an LRU
//    queue that a request's groups join in reverse, its last first, so that a prefix
//    is evicted from its end). Both count as free capacity. When the free pool (groups
//    neither mapped nor cached) cannot cover a need, spare groups are unmapped first
//    (idle slots', then busy slots'), then cached groups are evicted from the LRU
//    queue's head: content is lost only then, and in LRU order.
//  - Slots (deferred reclamation): an admission takes (1) the idle slot whose own
//    mapped groups are the longest leading run of the request's cached groups: those
//    need no mapping (a resumed request usually finds its own slot); else (2) the
//    base manager's best fit among idle slots mapping no cached group (their spare
//    pages are reused in place, for free); else (3) the idle slot released longest
//    ago.
//  - At a position of a cached group the chosen slot does not map already, what the
//    slot maps there is unmapped from it first. At a position the request computes,
//    a spare group of the slot is reused in place, and so is a cached group mapped
//    only there when it is the one the pool would evict next anyway; any other group
//    is unmapped from the slot (a cached one stays cached, mapped nowhere; one that
//    another request reads stays mapped where it is read) and a free group is
//    mapped. Deferred reclamation's in-place reuse thus gives way to keeping content:
//    reusing an idle slot that mapped cached groups costs an unmap and a map per
//    group where the content is not evicted.
//  - Without deferred reclamation, the per-iteration reclamation unmaps idle slots'
//    spare groups only: cached groups stay until the pool needs them (a cache
//    unmapped every iteration would keep nothing).
//  - Usage: allocated = groups some request reads, a shared group once; cached =
//    groups no request reads that are mapped (spare) or hold content (cached); live
//    counts a shared page's tokens once.
#include <algorithm>
#include <limits>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/flat_key_map.h"
#include "sim/core/id_map.h"
#include "sim/kvcache/kv_cache_manager.h"

namespace kvsim {
namespace {

class VAttentionKvManager final : public KvCacheManager {
 public:
  VAttentionKvManager(const KvGeometry& geometry, const VAttentionKvConfig& config)
      : geometry_(geometry),
        config_(config),
        tokens_per_page_(config.page_bytes / geometry.bytes_per_token_per_layer),
        group_bytes_(2 * geometry.num_layers * config.page_bytes),
        total_groups_(geometry.capacity_bytes / group_bytes_),
        watermark_groups_(
            static_cast<int64_t>(config.watermark * static_cast<double>(total_groups_))),
        free_pool_(total_groups_),
        slots_(static_cast<size_t>(config.max_slots)) {
    for (int64_t s = 0; s < config.max_slots; ++s) idle_.insert({0, s});
  }

  bool Admit(int64_t id, int64_t tokens, int64_t max_tokens) override {
    KVSIM_CHECK(!slot_of_.contains(id), "request admitted twice");
    CheckAdmission(geometry_, tokens, max_tokens);
    if (idle_.empty()) return false;
    // Reuse the idle slot whose mapped pages cover the need most tightly; if none
    // covers it, the one with the most pages mapped. (The repo's best fit,
    // alloc_new_batch_idx, reuses idle slots' pages whether or not reclamation is
    // deferred; with none covering it takes the lowest-numbered idle slot.)
    const int64_t groups = CeilDiv(tokens, tokens_per_page_);
    auto it = idle_.upper_bound({-groups, std::numeric_limits<int64_t>::max()});
    it = (it == idle_.begin()) ? idle_.begin() : std::prev(it);
    const auto chosen = *it;
    const int64_t s = chosen.second;
    idle_.erase(it);  // so reclamation cannot pick this slot
    if (!Reserve(s, groups, watermark_groups_, GrowthPhase::kPrefill)) {
      idle_.insert(chosen);
      return false;
    }
    slots_[s].busy = true;
    slots_[s].tokens = tokens;
    slot_of_.emplace(id, s);
    live_tokens_ += tokens;
    return true;
  }

  bool CanAdmit(int64_t, int64_t tokens, int64_t max_tokens) const override {
    CheckAdmission(geometry_, tokens, max_tokens);
    // An idle slot needs no groups yet, so its need grows by all of them.
    return !idle_.empty() &&
           free_pool_ + reclaimable_ - CeilDiv(tokens, tokens_per_page_) >= watermark_groups_;
  }

  bool Grow(int64_t id, int64_t tokens, GrowthPhase phase) override {
    const int64_t* found = slot_of_.find(id);
    KVSIM_CHECK(found != nullptr, "growing a request that was not admitted");
    const int64_t s = *found;
    Slot& slot = slots_[s];
    KVSIM_CHECK(tokens >= slot.tokens && tokens <= geometry_.max_model_len, "bad growth");
    if (!Reserve(s, CeilDiv(tokens, tokens_per_page_), 0, phase)) return false;
    live_tokens_ += tokens - slot.tokens;
    slot.tokens = tokens;
    return true;
  }

  // Decode rounds that stay inside the page groups each request already needs:
  // Reserve then changes nothing, so nothing is mapped or charged. Between them
  // OnIterationStart must do nothing either: reclamation deferred, or no idle slot
  // holding pages to reclaim.
  int64_t CertainDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                              int64_t limit) const override {
    KVSIM_CHECK(ids.size() == tokens.size(), "one token count per request");
    const bool idle_pages = !idle_.empty() && idle_.begin()->first < 0;
    if ((!config_.deferred_reclaim && idle_pages) || cost_.map_calls != 0 ||
        cost_.unmap_calls != 0 || cost_.synchronous != Nanos(0) || cost_.background != Nanos(0)) {
      return 0;
    }
    int64_t rounds = limit;
    for (size_t i = 0; i < ids.size(); ++i) {
      const int64_t* s = slot_of_.find(ids[i]);
      KVSIM_CHECK(s != nullptr && slots_[*s].tokens == tokens[i],
                  "decode rounds for a request not holding the given tokens");
      rounds = std::min(rounds, slots_[*s].needed * tokens_per_page_ - tokens[i]);
    }
    return std::max<int64_t>(0, rounds);
  }

  void GrowDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                        int64_t rounds, std::vector<KvUsage>& usage) override {
    KVSIM_CHECK(ids.size() == tokens.size(), "one token count per request");
    for (size_t i = 0; i < ids.size(); ++i) {
      Slot& slot = slots_[slot_of_.at(ids[i])];
      KVSIM_CHECK(slot.tokens == tokens[i] && tokens[i] + rounds <= slot.needed * tokens_per_page_,
                  "bad decode rounds");
      slot.tokens += rounds;
    }
    // Each round's OnIterationStart would clear the flag and reclaim nothing.
    decode_mapped_ = false;
    const auto n = static_cast<int64_t>(ids.size());
    usage.clear();
    for (int64_t j = 1; j <= rounds; ++j) {
      live_tokens_ += n;
      usage.push_back(Usage());
    }
  }

  void Release(int64_t id) override {
    const int64_t* found = slot_of_.find(id);
    KVSIM_CHECK(found != nullptr, "releasing a request that was not admitted");
    const int64_t s = *found;
    slot_of_.erase(id);
    Slot& slot = slots_[s];
    live_tokens_ -= slot.tokens;
    reclaimable_ += slot.needed;  // all its mapped groups are now excess
    slot.needed = 0;
    slot.tokens = 0;
    slot.busy = false;
    // Its pages stay mapped to the idle slot (cached) whether or not reclamation is
    // deferred: an admission may reuse them before OnIterationStart() reclaims them.
    idle_.insert({-slot.mapped, s});
  }

  void OnIterationStart() override {
    const bool decode_mapped = std::exchange(decode_mapped_, false);
    if (config_.deferred_reclaim) return;
    if (!config_.overlap) {
      // step_sync(eager_reclaim): every idle slot's pages, before the iteration.
      UnmapIdle(reclaimable_, GrowthPhase::kPrefill);
    } else if (!decode_mapped) {
      // do_reclaim_pages: one page group, on the background thread, only when it
      // mapped nothing for decode growth this iteration.
      UnmapIdle(1, GrowthPhase::kDecode);
    }
  }

  KvUsage Usage() const override {
    return {.capacity_bytes = geometry_.capacity_bytes,
            .allocated_bytes = (total_groups_ - free_pool_ - reclaimable_) * group_bytes_,
            .live_bytes = live_tokens_ * geometry_.bytes_per_token,
            .cached_bytes = reclaimable_ * group_bytes_};
  }

  AttentionLayout layout() const override { return AttentionLayout::kContiguous; }
  int64_t page_bytes() const override { return config_.page_bytes; }
  std::optional<VmmBackend> vmm_backend() const override { return config_.backend; }

  int64_t MaxAdmissibleTokens() const override {
    if (config_.max_slots < 1) return 0;
    return (total_groups_ - watermark_groups_) * tokens_per_page_;
  }

  KvStepCost TakeStepCost() override { return std::exchange(cost_, KvStepCost{}); }

 private:
  struct Slot {
    int64_t mapped = 0;  // page groups mapped into this slot's virtual range
    int64_t needed = 0;  // groups its request's tokens occupy (0 when idle)
    int64_t tokens = 0;
    bool busy = false;
  };

  // Makes slot `s` cover `groups` page groups, keeping at least `keep_free` groups
  // available afterwards. Returns false and changes nothing when it cannot.
  bool Reserve(int64_t s, int64_t groups, int64_t keep_free, GrowthPhase phase) {
    Slot& slot = slots_[s];
    if (groups <= slot.needed) return true;
    // Free capacity (free pool + mapped-but-unneeded groups) drops by exactly the
    // groups this slot's need grows by; that also bounds what must be mapped.
    if (free_pool_ + reclaimable_ - (groups - slot.needed) < keep_free) return false;
    const int64_t extra = std::max<int64_t>(0, groups - slot.mapped);
    // Use this slot's own mapped-but-unneeded groups first.
    reclaimable_ -= std::min(groups, slot.mapped) - slot.needed;
    slot.needed = groups;
    if (extra == 0) return true;
    if (extra > free_pool_) ReclaimFromOthers(s, extra - free_pool_, phase);
    free_pool_ -= extra;
    slot.mapped += extra;
    if (phase == GrowthPhase::kDecode) decode_mapped_ = true;
    // One call per page: cuMemMap + cuMemSetAccess (stock) or one uvm map call.
    const int64_t calls = extra * 2 * geometry_.num_layers;
    cost_.map_calls += calls;
    Charge(phase, calls * (config_.backend == VmmBackend::kUvm
                               ? config_.uvm_map_latency
                               : config_.map_latency + config_.set_access_latency));
    return true;
  }

  // Unmaps up to `groups` groups of idle slots, those with the fewest mapped groups
  // first (ties: the highest slot index). Returns how many it unmapped.
  int64_t UnmapIdle(int64_t groups, GrowthPhase phase) {
    int64_t done = 0;
    while (done < groups) {
      // Idle slots holding pages sort before those holding none (key -mapped < 0).
      auto it = idle_.lower_bound({0, std::numeric_limits<int64_t>::min()});
      if (it == idle_.begin()) break;
      const int64_t s = std::prev(it)->second;
      idle_.erase(std::prev(it));
      const int64_t n = std::min(groups - done, slots_[s].mapped);
      Unmap(slots_[s], n, phase);
      done += n;
      idle_.insert({-slots_[s].mapped, s});
    }
    return done;
  }

  // Unmaps `groups` groups from slots other than `except`: idle slots first (as
  // UnmapIdle), then busy slots' mapped-but-unneeded groups.
  void ReclaimFromOthers(int64_t except, int64_t groups, GrowthPhase phase) {
    groups -= UnmapIdle(groups, phase);
    for (int64_t s = 0; groups > 0 && s < config_.max_slots; ++s) {
      Slot& slot = slots_[s];
      if (s == except || !slot.busy || slot.mapped == slot.needed) continue;
      const int64_t n = std::min(groups, slot.mapped - slot.needed);
      Unmap(slot, n, phase);
      groups -= n;
    }
    KVSIM_CHECK(groups == 0, "reclaimable page groups were miscounted");
  }

  // Unmaps n of slot's excess groups back to the free pool: one cuMemUnmap per page
  // on stock; on uvm the pages go back to the pool without a driver call.
  void Unmap(Slot& slot, int64_t n, GrowthPhase phase) {
    slot.mapped -= n;
    reclaimable_ -= n;
    free_pool_ += n;
    if (config_.backend == VmmBackend::kUvm) return;
    const int64_t calls = n * 2 * geometry_.num_layers;
    cost_.unmap_calls += calls;
    Charge(phase, calls * config_.unmap_latency);
  }

  void Charge(GrowthPhase phase, Nanos t) {
    if (config_.overlap && phase == GrowthPhase::kDecode) {
      cost_.background += t;
    } else {
      cost_.synchronous += t;
    }
  }

  KvGeometry geometry_;
  VAttentionKvConfig config_;
  int64_t tokens_per_page_;
  int64_t group_bytes_;
  int64_t total_groups_;
  int64_t watermark_groups_;
  int64_t free_pool_;        // groups not mapped anywhere
  int64_t reclaimable_ = 0;  // sum over slots of (mapped - needed)
  std::vector<Slot> slots_;
  // Idle slots keyed (-mapped groups, index): most mapped first.
  std::set<std::pair<int64_t, int64_t>> idle_;
  IdMap<int64_t> slot_of_;  // request id -> its slot
  int64_t live_tokens_ = 0;
  // Decode growth mapped since the last OnIterationStart(): the background thread
  // then skips its reclamation step.
  bool decode_mapped_ = false;
  KvStepCost cost_;
};

// vAttention with prefix sharing at page-group granularity (see the top of the file).
class PrefixCachedVAttentionManager final : public KvCacheManager {
 public:
  PrefixCachedVAttentionManager(const KvGeometry& geometry, const VAttentionKvConfig& config)
      : geometry_(geometry),
        config_(config),
        tokens_per_page_(config.page_bytes / geometry.bytes_per_token_per_layer),
        group_bytes_(2 * geometry.num_layers * config.page_bytes),
        watermark_groups_(0),
        groups_(static_cast<size_t>(geometry.capacity_bytes / group_bytes_)),
        slots_(static_cast<size_t>(config.max_slots)),
        cached_(static_cast<int64_t>(groups_.size())) {
    const auto total = static_cast<int64_t>(groups_.size());
    watermark_groups_ = static_cast<int64_t>(config.watermark * static_cast<double>(total));
    // Popped from the back: group 0 first.
    free_.reserve(groups_.size());
    for (auto g = static_cast<int32_t>(total) - 1; g >= 0; --g) free_.push_back(g);
    for (int64_t s = 0; s < config.max_slots; ++s) File(s);
  }

  void Identify(int64_t id, const PrefixIdentity& prefix) override {
    identities_.insert_or_assign(id, prefix);
  }

  bool Admit(int64_t id, int64_t tokens, int64_t max_tokens) override {
    KVSIM_CHECK(!slot_of_.contains(id), "request admitted twice");
    CheckAdmission(geometry_, tokens, max_tokens);
    if (idle_plain_.empty() && idle_keyed_.empty()) return false;
    const PrefixIdentity prefix = IdentityOf(id);
    std::vector<int32_t>& hits = scratch_hits_;
    hits = Hits(prefix, tokens);  // a copy: evictions below invalidate the memo
    const int64_t need = CeilDiv(tokens, tokens_per_page_);
    if (!Fits(hits, need)) return false;
    const auto h = static_cast<int64_t>(hits.size());
    const int64_t s = ChooseSlot(hits, need);
    Unfile(s);
    Slot& slot = slots_[static_cast<size_t>(s)];
    slot.request = id;
    slot.prefix = prefix;
    slot.registered = h;  // cached groups carry their keys
    slot.tokens = tokens;
    slot.needed = need;
    for (const int32_t g : hits) Pin(g);
    // Cached groups: mapped into this range unless it maps them already.
    for (int64_t i = 0; i < h; ++i) {
      const int32_t hit = hits[static_cast<size_t>(i)];
      const int32_t there = PageAt(slot, i);
      if (there == hit) continue;
      if (there != kNone) UnmapFromSlot(s, i, GrowthPhase::kPrefill);
      MapIntoSlot(hit, s, i, GrowthPhase::kPrefill);
    }
    Cover(s, h, need, GrowthPhase::kPrefill);
    slot_of_.emplace(id, s);
    live_tokens_ += tokens;
    return true;
  }

  bool CanAdmit(int64_t id, int64_t tokens, int64_t max_tokens) const override {
    CheckAdmission(geometry_, tokens, max_tokens);
    return !(idle_plain_.empty() && idle_keyed_.empty()) &&
           Fits(Hits(IdentityOf(id), tokens), CeilDiv(tokens, tokens_per_page_));
  }

  int64_t CachedPrefixTokens(int64_t id, int64_t tokens) const override {
    KVSIM_CHECK(!slot_of_.contains(id) && tokens >= 1, "asking an admitted request's cache");
    return static_cast<int64_t>(Hits(IdentityOf(id), tokens).size()) * tokens_per_page_;
  }

  bool Grow(int64_t id, int64_t tokens, GrowthPhase phase) override {
    const int64_t* found = slot_of_.find(id);
    KVSIM_CHECK(found != nullptr, "growing a request that was not admitted");
    const int64_t s = *found;
    Slot& slot = slots_[static_cast<size_t>(s)];
    KVSIM_CHECK(tokens >= slot.tokens && tokens <= geometry_.max_model_len, "bad growth");
    const int64_t need = CeilDiv(tokens, tokens_per_page_);
    if (need > slot.needed) {
      // Every group not read by a request can be had: free, spare or cached.
      if (Available() - (need - slot.needed) < 0) return false;
      const int64_t from = slot.needed;
      slot.needed = need;
      if (Cover(s, from, need, phase) > 0 && phase == GrowthPhase::kDecode) decode_mapped_ = true;
    }
    live_tokens_ += tokens - slot.tokens;
    slot.tokens = tokens;
    return true;
  }

  // As the base manager: rounds inside the page groups each request already needs
  // map nothing; between them OnIterationStart must do nothing either.
  int64_t CertainDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                              int64_t limit) const override {
    KVSIM_CHECK(ids.size() == tokens.size(), "one token count per request");
    if ((!config_.deferred_reclaim && idle_spare_.size > 0) || cost_.map_calls != 0 ||
        cost_.unmap_calls != 0 || cost_.synchronous != Nanos(0) || cost_.background != Nanos(0)) {
      return 0;
    }
    int64_t rounds = limit;
    for (size_t i = 0; i < ids.size(); ++i) {
      const int64_t* s = slot_of_.find(ids[i]);
      KVSIM_CHECK(s != nullptr && slots_[static_cast<size_t>(*s)].tokens == tokens[i],
                  "decode rounds for a request not holding the given tokens");
      rounds =
          std::min(rounds, slots_[static_cast<size_t>(*s)].needed * tokens_per_page_ - tokens[i]);
    }
    return std::max<int64_t>(0, rounds);
  }

  void GrowDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                        int64_t rounds, std::vector<KvUsage>& usage) override {
    KVSIM_CHECK(ids.size() == tokens.size(), "one token count per request");
    for (size_t i = 0; i < ids.size(); ++i) {
      Slot& slot = slots_[static_cast<size_t>(slot_of_.at(ids[i]))];
      KVSIM_CHECK(slot.tokens == tokens[i] && tokens[i] + rounds <= slot.needed * tokens_per_page_,
                  "bad decode rounds");
      slot.tokens += rounds;
    }
    decode_mapped_ = false;  // each round's OnIterationStart would clear it
    const auto n = static_cast<int64_t>(ids.size());
    usage.clear();
    for (int64_t j = 1; j <= rounds; ++j) {
      live_tokens_ += n;
      usage.push_back(Usage());
    }
  }

  bool WantsComputedTokens() const override { return true; }

  // Caches the request's whole pages of computed tokens under their content keys; a
  // key another group already holds is left to that group (one copy is cached).
  void OnTokensComputed(int64_t id, int64_t computed_tokens) override {
    const int64_t* found = slot_of_.find(id);
    KVSIM_CHECK(found != nullptr, "computed tokens of a request that was not admitted");
    Slot& slot = slots_[static_cast<size_t>(*found)];
    const int64_t full = std::min(computed_tokens, slot.tokens) / tokens_per_page_;
    for (int64_t b = slot.registered; b < full; ++b) {
      const int32_t g = PageAt(slot, b);
      KVSIM_CHECK(g != kNone, "a needed page of a busy slot is unmapped");
      Group& group = groups_[static_cast<size_t>(g)];
      const uint64_t key = ContentKey(slot.prefix, (b + 1) * tokens_per_page_);
      if (group.key == 0 && cached_.Insert(key, g)) {
        group.key = key;
        ++slot.keyed;  // a group the request computes is mapped in its range only
      }
    }
    slot.registered = std::max(slot.registered, full);
  }

  void Release(int64_t id) override { ReleaseWritten(id, std::numeric_limits<int64_t>::max()); }

  // The request's groups stay mapped to its now idle slot (deferred reclamation): those
  // no other request reads become cached (keyed) or spare, its last group first.
  void ReleaseWritten(int64_t id, int64_t written_tokens) override {
    KVSIM_CHECK(written_tokens >= 0, "written tokens must not be negative");
    OnTokensComputed(id, written_tokens);
    const int64_t s = slot_of_.at(id);
    slot_of_.erase(id);
    Slot& slot = slots_[static_cast<size_t>(s)];
    for (int64_t i = slot.needed - 1; i >= 0; --i) {
      const int32_t g = PageAt(slot, i);
      KVSIM_CHECK(g != kNone, "a needed page of a busy slot is unmapped");
      Group& group = groups_[static_cast<size_t>(g)];
      KVSIM_CHECK(group.ref >= 1, "releasing a page group nobody reads");
      if (--group.ref > 0) {
        --shared_refs_;
      } else {
        --in_use_;
        PushBack(group.key != 0 ? cached_lru_ : idle_spare_, g);
      }
    }
    // Its spare groups past its need now belong to an idle slot.
    for (auto i = static_cast<int64_t>(slot.pages.size()) - 1; i >= slot.needed; --i) {
      const int32_t g = slot.pages[static_cast<size_t>(i)];
      if (g != kNone && groups_[static_cast<size_t>(g)].list == &busy_spare_) {
        Unlink(g);
        PushBack(idle_spare_, g);
      }
    }
    live_tokens_ -= slot.tokens;
    slot.request = kIdle;
    slot.needed = 0;
    slot.tokens = 0;
    slot.registered = 0;
    slot.released_at = ++releases_;
    File(s);
    identities_.erase(id);
  }

  void OnIterationStart() override {
    const bool decode_mapped = std::exchange(decode_mapped_, false);
    if (config_.deferred_reclaim) return;
    if (!config_.overlap) {
      // step_sync(eager_reclaim): every idle slot's spare groups, before the iteration.
      while (idle_spare_.head != kNone) Evict(idle_spare_.head, GrowthPhase::kPrefill);
    } else if (!decode_mapped && idle_spare_.head != kNone) {
      // do_reclaim_pages: one group, in the background, when decode growth mapped none.
      Evict(idle_spare_.head, GrowthPhase::kDecode);
    }
  }

  KvUsage Usage() const override {
    const auto mapped = static_cast<int64_t>(groups_.size() - free_.size());
    return {
        .capacity_bytes = geometry_.capacity_bytes,
        .allocated_bytes = in_use_ * group_bytes_,
        .live_bytes = (live_tokens_ - shared_refs_ * tokens_per_page_) * geometry_.bytes_per_token,
        .cached_bytes = (mapped - in_use_) * group_bytes_};
  }

  AttentionLayout layout() const override { return AttentionLayout::kContiguous; }
  int64_t page_bytes() const override { return config_.page_bytes; }
  std::optional<VmmBackend> vmm_backend() const override { return config_.backend; }

  int64_t MaxAdmissibleTokens() const override {
    if (config_.max_slots < 1) return 0;
    return (static_cast<int64_t>(groups_.size()) - watermark_groups_) * tokens_per_page_;
  }

  KvStepCost TakeStepCost() override { return std::exchange(cost_, KvStepCost{}); }

 private:
  static constexpr int32_t kNone = -1;
  static constexpr int64_t kIdle = -1;

  // An intrusive queue of page groups (oldest at the head).
  struct Queue {
    int32_t head = kNone, tail = kNone;
    int64_t size = 0;
  };
  // One physical page group: a page in each of the 2 x layers K/V buffers.
  struct Group {
    uint64_t key = 0;       // content key while cached; 0: none
    int32_t ref = 0;        // requests reading it (that need its position)
    int64_t position = -1;  // its page index in every range that maps it
    // Slots whose range maps it. Empty: in the free pool, or cached and mapped nowhere.
    std::vector<int32_t> slots;
    // Unread groups: idle_spare_, busy_spare_ (no key, mapped) or cached_lru_ (keyed).
    Queue* list = nullptr;
    int32_t prev = kNone, next = kNone;
    bool doomed = false;  // Cover: an eviction victim to reuse in place (false between calls)
  };
  struct Slot {
    std::vector<int32_t> pages;  // page index -> group mapped there; kNone: none
    int64_t mapped = 0;          // groups mapped into the range
    int64_t keyed = 0;           // of them, groups that carry a content key
    int64_t needed = 0;          // page groups its request's tokens occupy (0 when idle)
    int64_t tokens = 0;
    int64_t request = kIdle;  // the admitted request's id; kIdle: none
    PrefixIdentity prefix;
    int64_t registered = 0;   // leading groups offered to the cache
    int64_t released_at = 0;  // release order, for idle slots holding cached content
  };

  static int32_t PageAt(const Slot& slot, int64_t i) {
    return i < static_cast<int64_t>(slot.pages.size()) ? slot.pages[static_cast<size_t>(i)] : kNone;
  }

  PrefixIdentity IdentityOf(int64_t id) const {
    const auto it = identities_.find(id);
    if (it != identities_.end()) return it->second;
    PrefixIdentity own;
    own.request_id = id;
    return own;
  }

  // Groups no request reads: free, spare or cached. Each can be had for a need.
  int64_t Available() const { return static_cast<int64_t>(groups_.size()) - in_use_; }

  // The cached groups holding `prefix`'s leading pages of its first `tokens` tokens,
  // at most (tokens - 1) / tokens_per_page of them (the last token is computed again).
  // Kept for one (id, tokens) and only extended while no key was dropped since.
  const std::vector<int32_t>& Hits(const PrefixIdentity& prefix, int64_t tokens) const {
    HitMemo& m = memo_;
    if (m.id != prefix.request_id || m.tokens != tokens || m.dropped != dropped_keys_) {
      m = HitMemo{prefix.request_id, tokens, dropped_keys_, {}};
    }
    const int64_t most = (tokens - 1) / tokens_per_page_;
    for (auto b = static_cast<int64_t>(m.hits.size()); b < most; ++b) {
      const std::optional<int32_t> g = cached_.Find(ContentKey(prefix, (b + 1) * tokens_per_page_));
      if (!g) break;
      m.hits.push_back(*g);
    }
    return m.hits;
  }

  // Whether an admission needing `need` groups, the first hits.size() of them the
  // cached `hits`, keeps the watermark available. Hits that a request reads already
  // take nothing more; the others, and every group past them, take one group each.
  bool Fits(const std::vector<int32_t>& hits, int64_t need) const {
    int64_t taken = need - static_cast<int64_t>(hits.size());
    for (const int32_t g : hits) taken += groups_[static_cast<size_t>(g)].ref == 0 ? 1 : 0;
    return Available() - taken >= watermark_groups_;
  }

  // The slot for an admission (see the top of the file): the idle slot mapping the
  // longest leading run of `hits` (ties: the lowest index); else the best fit among
  // idle slots mapping no cached group; else the idle slot released longest ago.
  int64_t ChooseSlot(const std::vector<int32_t>& hits, int64_t need) const {
    if (!hits.empty()) {
      int64_t best = kNone, best_run = 0;
      for (const int32_t t : groups_[static_cast<size_t>(hits.front())].slots) {
        const Slot& slot = slots_[static_cast<size_t>(t)];
        if (slot.request != kIdle) continue;
        int64_t run = 0;
        while (run < static_cast<int64_t>(hits.size()) &&
               PageAt(slot, run) == hits[static_cast<size_t>(run)]) {
          ++run;
        }
        if (run > best_run || (run == best_run && t < best)) {
          best = t;
          best_run = run;
        }
      }
      if (best != kNone) return best;
    }
    if (!idle_plain_.empty()) {
      // As the base manager: the tightest cover of the need, else the most mapped.
      auto it = idle_plain_.upper_bound({-need, std::numeric_limits<int64_t>::max()});
      it = (it == idle_plain_.begin()) ? idle_plain_.begin() : std::prev(it);
      return it->second;
    }
    KVSIM_CHECK(!idle_keyed_.empty(), "choosing a slot with none idle");
    return idle_keyed_.begin()->second;
  }

  // Makes positions [from, to) of busy slot `s` hold groups its request writes.
  // Returns the groups mapped. Where the slot maps a group already: a spare group
  // (mapped only here, no key) is reused in place; a cached group mapped only here is
  // reused in place when taking the groups this call needs would evict it anyway
  // (the same content is lost, and an unmap and a map are saved), else unmapped from
  // the slot and kept; a group another range maps or a request reads is unmapped
  // from the slot. Every position left without a group gets a free one, evicting as
  // TakeFree does. REQUIRES: Available() covers the positions not reused in place.
  int64_t Cover(int64_t s, int64_t from, int64_t to, GrowthPhase phase) {
    std::vector<int64_t>& missing = scratch_positions_;
    std::vector<int64_t>& candidates = scratch_candidates_;
    missing.clear();
    candidates.clear();
    Slot& slot = slots_[static_cast<size_t>(s)];
    for (int64_t i = from; i < to; ++i) {
      const int32_t g = PageAt(slot, i);
      if (g == kNone) {
        missing.push_back(i);
        continue;
      }
      Group& group = groups_[static_cast<size_t>(g)];
      if (group.ref == 0 && group.slots.size() == 1) {
        if (group.key == 0) {
          Claim(g);
        } else {
          candidates.push_back(i);
        }
        continue;
      }
      UnmapFromSlot(s, i, phase);  // it stays mapped where it is read or cached
      missing.push_back(i);
    }
    // Its spare groups past the need belong to a busy slot now.
    for (auto i = static_cast<int64_t>(slot.pages.size()) - 1; i >= to; --i) {
      const int32_t g = slot.pages[static_cast<size_t>(i)];
      if (g != kNone && groups_[static_cast<size_t>(g)].list == &idle_spare_) {
        Unlink(g);
        PushBack(busy_spare_, g);
      }
    }
    if (!candidates.empty()) {
      // The groups TakeFree would evict for all of them: the first `evicted` of
      // (idle spare, busy spare, cached LRU). This slot's cached groups among them
      // are reused in place; the rest of its cached groups are unmapped and kept.
      const auto needed = static_cast<int64_t>(missing.size() + candidates.size());
      int64_t evicted = needed - static_cast<int64_t>(free_.size());
      for (const Queue* q : {&idle_spare_, &busy_spare_, &cached_lru_}) {
        for (int32_t v = q->head; v != kNone && evicted > 0;
             v = groups_[static_cast<size_t>(v)].next) {
          --evicted;
          Group& victim = groups_[static_cast<size_t>(v)];
          if (victim.slots.size() == 1 && victim.slots.front() == s && victim.position >= from &&
              victim.position < to) {
            victim.doomed = true;
          }
        }
      }
      for (const int64_t i : candidates) {
        const int32_t g = slot.pages[static_cast<size_t>(i)];
        if (std::exchange(groups_[static_cast<size_t>(g)].doomed, false)) {
          Claim(g);
        } else {
          UnmapFromSlot(s, i, phase);
          missing.push_back(i);
        }
      }
    }
    for (const int64_t i : missing) {
      const int32_t g = TakeFree(phase);
      groups_[static_cast<size_t>(g)].ref = 1;
      ++in_use_;
      MapIntoSlot(g, s, i, phase);
    }
    return static_cast<int64_t>(missing.size());
  }

  // Reuses unread group `g`, mapped only in the busy slot that now needs it, in place:
  // its request writes it, overwriting what it cached.
  void Claim(int32_t g) {
    Unlink(g);
    if (groups_[static_cast<size_t>(g)].key != 0) DropKey(g);
    groups_[static_cast<size_t>(g)].ref = 1;
    ++in_use_;
  }

  // A cached group `g` gains a reader.
  void Pin(int32_t g) {
    Group& group = groups_[static_cast<size_t>(g)];
    if (group.ref++ == 0) {
      Unlink(g);
      ++in_use_;
    } else {
      ++shared_refs_;  // a second reader: its tokens count once
    }
  }

  // A group of the free pool, unmapping (evicting) one when the pool is empty: an
  // idle slot's spare group, else a busy slot's, else the least recently cached.
  int32_t TakeFree(GrowthPhase phase) {
    if (free_.empty()) {
      const int32_t victim = NextVictim();
      KVSIM_CHECK(victim != kNone, "no page group to reclaim: availability was miscounted");
      Evict(victim, phase);
    }
    const int32_t g = free_.back();
    free_.pop_back();
    return g;
  }

  // The group TakeFree would evict now; kNone when the free pool has one.
  int32_t NextVictim() const {
    if (!free_.empty()) return kNone;
    return idle_spare_.head != kNone   ? idle_spare_.head
           : busy_spare_.head != kNone ? busy_spare_.head
                                       : cached_lru_.head;
  }

  // Takes unread group `g` for other content: forgets what it caches and unmaps it
  // from every range that still maps it, back to the free pool.
  void Evict(int32_t g, GrowthPhase phase) {
    Group& group = groups_[static_cast<size_t>(g)];
    KVSIM_CHECK(group.ref == 0 && group.list != nullptr, "evicting a page group in use or free");
    Unlink(g);
    const bool keyed = group.key != 0;
    if (keyed) DropKeyOnly(g);
    for (const int32_t t : group.slots) {
      Slot& slot = slots_[static_cast<size_t>(t)];
      const bool idle = slot.request == kIdle;
      if (idle) Unfile(t);
      slot.pages[static_cast<size_t>(group.position)] = kNone;
      --slot.mapped;
      if (keyed) --slot.keyed;
      if (idle) File(t);
      ChargeUnmap(phase);
    }
    group.slots.clear();
    free_.push_back(g);
  }

  // Maps group `g` at page index i of slot s's range (the 2 x layers pages).
  void MapIntoSlot(int32_t g, int64_t s, int64_t i, GrowthPhase phase) {
    Group& group = groups_[static_cast<size_t>(g)];
    // A cached group's content fixes its page index, mapped or not.
    KVSIM_CHECK((group.key == 0 && group.slots.empty()) || group.position == i,
                "a page group at two page indices");
    group.position = i;
    group.slots.push_back(static_cast<int32_t>(s));
    Slot& slot = slots_[static_cast<size_t>(s)];
    if (static_cast<int64_t>(slot.pages.size()) <= i) slot.pages.resize(i + 1, kNone);
    KVSIM_CHECK(slot.pages[static_cast<size_t>(i)] == kNone, "mapping over a mapped page");
    slot.pages[static_cast<size_t>(i)] = g;
    ++slot.mapped;
    if (group.key != 0) ++slot.keyed;
    // One call per page: cuMemMap + cuMemSetAccess (stock) or one uvm map call.
    const int64_t calls = 2 * geometry_.num_layers;
    cost_.map_calls += calls;
    Charge(phase, calls * (config_.backend == VmmBackend::kUvm
                               ? config_.uvm_map_latency
                               : config_.map_latency + config_.set_access_latency));
  }

  // Unmaps whatever busy slot s maps at page index i. A cached group keeps its
  // content, mapped or not; any other group left mapped nowhere is read by no request
  // (readers map it) and goes back to the free pool.
  void UnmapFromSlot(int64_t s, int64_t i, GrowthPhase phase) {
    Slot& slot = slots_[static_cast<size_t>(s)];
    const int32_t g = slot.pages[static_cast<size_t>(i)];
    Group& group = groups_[static_cast<size_t>(g)];
    slot.pages[static_cast<size_t>(i)] = kNone;
    --slot.mapped;
    if (group.key != 0) --slot.keyed;
    std::erase(group.slots, static_cast<int32_t>(s));
    ChargeUnmap(phase);
    KVSIM_CHECK(!group.slots.empty() || group.ref == 0,
                "a page group read by a request is mapped nowhere");
    if (group.slots.empty() && group.key == 0) {
      Unlink(g);
      free_.push_back(g);
    }
  }

  // Forgets what group g caches; the slots mapping it count one keyed group fewer.
  void DropKey(int32_t g) {
    for (const int32_t t : groups_[static_cast<size_t>(g)].slots) {
      Slot& slot = slots_[static_cast<size_t>(t)];
      const bool idle = slot.request == kIdle;
      if (idle) Unfile(t);
      --slot.keyed;
      if (idle) File(t);
    }
    DropKeyOnly(g);
  }

  void DropKeyOnly(int32_t g) {
    Group& group = groups_[static_cast<size_t>(g)];
    cached_.Erase(group.key);
    group.key = 0;
    ++dropped_keys_;
  }

  // Idle slots are filed by whether they hold cached content: without, by
  // (-mapped, index) as the base manager's best fit; with, by release order.
  void File(int64_t s) {
    const Slot& slot = slots_[static_cast<size_t>(s)];
    if (slot.keyed == 0) {
      idle_plain_.insert({-slot.mapped, s});
    } else {
      idle_keyed_.insert({slot.released_at, s});
    }
  }
  void Unfile(int64_t s) {
    const Slot& slot = slots_[static_cast<size_t>(s)];
    const size_t erased = slot.keyed == 0 ? idle_plain_.erase({-slot.mapped, s})
                                          : idle_keyed_.erase({slot.released_at, s});
    KVSIM_CHECK(erased == 1, "an idle slot was filed wrongly");
  }

  void PushBack(Queue& q, int32_t g) {
    Group& group = groups_[static_cast<size_t>(g)];
    KVSIM_CHECK(group.list == nullptr, "a page group in two queues");
    group.list = &q;
    group.prev = q.tail;
    group.next = kNone;
    (q.tail == kNone ? q.head : groups_[static_cast<size_t>(q.tail)].next) = g;
    q.tail = g;
    ++q.size;
  }

  // Takes g out of its queue, if it is in one.
  void Unlink(int32_t g) {
    Group& group = groups_[static_cast<size_t>(g)];
    Queue* q = group.list;
    if (q == nullptr) return;
    (group.prev == kNone ? q->head : groups_[static_cast<size_t>(group.prev)].next) = group.next;
    (group.next == kNone ? q->tail : groups_[static_cast<size_t>(group.next)].prev) = group.prev;
    group.prev = group.next = kNone;
    group.list = nullptr;
    --q->size;
  }

  // One page group unmapped from one range: one cuMemUnmap per page on stock; uvm
  // returns the pages to its pool without a driver call.
  void ChargeUnmap(GrowthPhase phase) {
    if (config_.backend == VmmBackend::kUvm) return;
    const int64_t calls = 2 * geometry_.num_layers;
    cost_.unmap_calls += calls;
    Charge(phase, calls * config_.unmap_latency);
  }

  void Charge(GrowthPhase phase, Nanos t) {
    if (config_.overlap && phase == GrowthPhase::kDecode) {
      cost_.background += t;
    } else {
      cost_.synchronous += t;
    }
  }

  KvGeometry geometry_;
  VAttentionKvConfig config_;
  int64_t tokens_per_page_;
  int64_t group_bytes_;
  int64_t watermark_groups_;
  std::vector<Group> groups_;
  std::vector<int32_t> free_;  // the free pool: groups neither mapped nor cached
  Queue idle_spare_, busy_spare_;
  Queue cached_lru_;  // unread keyed groups: evict from the head
  std::vector<Slot> slots_;
  std::set<std::pair<int64_t, int64_t>> idle_plain_;  // (-mapped, index): no cached content
  std::set<std::pair<int64_t, int64_t>> idle_keyed_;  // (released_at, index)
  int64_t releases_ = 0;
  FlatKeyMap cached_;  // content key -> the group holding it (one key per group at most)
  IdMap<int64_t> slot_of_;
  std::unordered_map<int64_t, PrefixIdentity> identities_;  // Identify, until Release
  int64_t in_use_ = 0;                                      // groups some request reads
  int64_t live_tokens_ = 0;  // tokens of admitted requests, shared pages once per reader
  int64_t shared_refs_ = 0;  // readers beyond the first of groups in use
  bool decode_mapped_ = false;
  KvStepCost cost_;
  // The last Hits answer, valid while `dropped` is unchanged.
  struct HitMemo {
    int64_t id = -1;
    int64_t tokens = 0;
    int64_t dropped = 0;
    std::vector<int32_t> hits;
  };
  int64_t dropped_keys_ = 0;  // content keys dropped so far (evicted or overwritten)
  mutable HitMemo memo_;
  std::vector<int32_t> scratch_hits_;
  std::vector<int64_t> scratch_positions_;
  std::vector<int64_t> scratch_candidates_;
};

}  // namespace

namespace {

void CheckVAttentionConfig(const KvGeometry& geometry, const VAttentionKvConfig& config) {
  KVSIM_CHECK(geometry.bytes_per_token_per_layer > 0 && geometry.num_layers > 0, "bad KV geometry");
  KVSIM_CHECK(config.page_bytes >= geometry.bytes_per_token_per_layer,
              "a page must hold at least one token");
  KVSIM_CHECK(config.max_slots >= 1, "max_slots must be positive");
  KVSIM_CHECK(config.watermark >= 0 && config.watermark < 1, "watermark must be in [0, 1)");
  const std::optional<VmmConfigError> error = CheckVmmBackend(config);
  KVSIM_CHECK(!error, "kv_cache." + error->key + ": " + error->what);  // msg only on failure
}

}  // namespace

std::unique_ptr<KvCacheManager> NewVAttentionKvManager(const KvGeometry& geometry,
                                                       const VAttentionKvConfig& config) {
  CheckVAttentionConfig(geometry, config);
  if (config.prefix_caching) {
    return std::make_unique<PrefixCachedVAttentionManager>(geometry, config);
  }
  return std::make_unique<VAttentionKvManager>(geometry, config);
}

}  // namespace kvsim
