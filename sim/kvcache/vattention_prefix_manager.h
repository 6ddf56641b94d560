// vAttention with prefix sharing at page-group granularity (internal to
// sim/kvcache: NewVAttentionKvManager builds it; its methods are defined in
// vattention_prefix_manager.cc (the KvCacheManager interface) and
// vattention_prefix_groups.cc (page groups, slots, eviction and mapping costs)).
//
// Prefix sharing (VAttentionKvConfig::prefix_caching) is kvsim's what-if: the vAttention paper
// (arXiv 2405.04437, ASPLOS'25) and its repo share no prefixes. It mirrors the paged prefix cache
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
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/flat_key_map.h"
#include "sim/core/id_map.h"
#include "sim/kvcache/contiguous_internal.h"
#include "sim/kvcache/kv_cache_manager.h"

namespace kvsim {

// vAttention with prefix sharing at page-group granularity (the rules above).
class PrefixCachedVAttentionManager final : public VAttentionManagerBase {
 public:
  PrefixCachedVAttentionManager(const KvGeometry& geometry, const VAttentionKvConfig& config)
      : VAttentionManagerBase(geometry, config),
        groups_(static_cast<size_t>(total_groups_)),
        slots_(static_cast<size_t>(config.max_slots)),
        cached_(total_groups_) {
    // Popped from the back: group 0 first.
    free_.reserve(groups_.size());
    for (auto g = static_cast<int32_t>(total_groups_) - 1; g >= 0; --g) free_.push_back(g);
    for (int64_t s = 0; s < config.max_slots; ++s) File(s);
  }

  void Identify(int64_t id, const PrefixIdentity& prefix) override {
    identities_.insert_or_assign(id, prefix);
  }

  bool Admit(int64_t id, int64_t tokens, int64_t max_tokens) override;

  bool CanAdmit(int64_t id, int64_t tokens, int64_t max_tokens) const override {
    CheckAdmission(geometry_, tokens, max_tokens);
    return !(idle_plain_.empty() && idle_keyed_.empty()) &&
           Fits(Hits(IdentityOf(id), tokens), CeilDiv(tokens, tokens_per_page_));
  }

  int64_t CachedPrefixTokens(int64_t id, int64_t tokens) const override {
    KVSIM_CHECK(!slot_of_.contains(id) && tokens >= 1, "asking an admitted request's cache");
    return static_cast<int64_t>(Hits(IdentityOf(id), tokens).size()) * tokens_per_page_;
  }

  bool Grow(int64_t id, int64_t tokens, GrowthPhase phase) override;

  // As the base manager: rounds inside the page groups each request already needs
  // map nothing; between them OnIterationStart must do nothing either.
  int64_t CertainDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                              int64_t limit) const override;

  void GrowDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                        int64_t rounds, std::vector<KvUsage>& usage) override;

  bool WantsComputedTokens() const override { return true; }

  // Caches the request's whole pages of computed tokens under their content keys; a
  // key another group already holds is left to that group (one copy is cached).
  void OnTokensComputed(int64_t id, int64_t computed_tokens) override;

  void Release(int64_t id) override { ReleaseWritten(id, std::numeric_limits<int64_t>::max()); }

  // The request's groups stay mapped to its now idle slot (deferred reclamation): those
  // no other request reads become cached (keyed) or spare, its last group first.
  void ReleaseWritten(int64_t id, int64_t written_tokens) override;

  void OnIterationStart() override;

  KvUsage Usage() const override;

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

  // The tokens a slot holds without mapping more: those of the groups it needs.
  int64_t Room(const Slot& slot) const { return slot.needed * tokens_per_page_; }

  static int32_t PageAt(const Slot& slot, int64_t i) {
    return i < static_cast<int64_t>(slot.pages.size()) ? slot.pages[static_cast<size_t>(i)] : kNone;
  }

  PrefixIdentity IdentityOf(int64_t id) const;

  // Groups no request reads: free, spare or cached. Each can be had for a need.
  int64_t Available() const { return static_cast<int64_t>(groups_.size()) - in_use_; }

  // The cached groups holding `prefix`'s leading pages of its first `tokens` tokens,
  // at most (tokens - 1) / tokens_per_page of them (the last token is computed again).
  // Kept for one (id, tokens) and only extended while no key was dropped since.
  const std::vector<int32_t>& Hits(const PrefixIdentity& prefix, int64_t tokens) const;

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
  int64_t ChooseSlot(const std::vector<int32_t>& hits, int64_t need) const;

  // Makes positions [from, to) of busy slot `s` hold groups its request writes.
  // Returns the groups mapped. Where the slot maps a group already: a spare group
  // (mapped only here, no key) is reused in place; a cached group mapped only here is
  // reused in place when taking the groups this call needs would evict it anyway
  // (the same content is lost, and an unmap and a map are saved), else unmapped from
  // the slot and kept; a group another range maps or a request reads is unmapped
  // from the slot. Every position left without a group gets a free one, evicting as
  // TakeFree does. REQUIRES: Available() covers the positions not reused in place.
  int64_t Cover(int64_t s, int64_t from, int64_t to, GrowthPhase phase);

  // Reuses unread group `g`, mapped only in the busy slot that now needs it, in place:
  // its request writes it, overwriting what it cached.
  void Claim(int32_t g) {
    Unlink(g);
    if (groups_[static_cast<size_t>(g)].key != 0) DropKey(g);
    groups_[static_cast<size_t>(g)].ref = 1;
    ++in_use_;
  }

  // A cached group `g` gains a reader.
  void Pin(int32_t g);

  // A group of the free pool, unmapping (evicting) one when the pool is empty: an
  // idle slot's spare group, else a busy slot's, else the least recently cached.
  int32_t TakeFree(GrowthPhase phase);

  // The group TakeFree would evict now; kNone when the free pool has one.
  int32_t NextVictim() const {
    if (!free_.empty()) return kNone;
    return idle_spare_.head != kNone   ? idle_spare_.head
           : busy_spare_.head != kNone ? busy_spare_.head
                                       : cached_lru_.head;
  }

  // Takes unread group `g` for other content: forgets what it caches and unmaps it
  // from every range that still maps it, back to the free pool.
  void Evict(int32_t g, GrowthPhase phase);

  // Maps group `g` at page index i of slot s's range (the 2 x layers pages).
  void MapIntoSlot(int32_t g, int64_t s, int64_t i, GrowthPhase phase);

  // Unmaps whatever busy slot s maps at page index i. A cached group keeps its
  // content, mapped or not; any other group left mapped nowhere is read by no request
  // (readers map it) and goes back to the free pool.
  void UnmapFromSlot(int64_t s, int64_t i, GrowthPhase phase);

  // Forgets what group g caches; the slots mapping it count one keyed group fewer.
  void DropKey(int32_t g);

  void DropKeyOnly(int32_t g) {
    Group& group = groups_[static_cast<size_t>(g)];
    cached_.Erase(group.key);
    group.key = 0;
    ++dropped_keys_;
  }

  // Idle slots are filed by whether they hold cached content: without, by
  // (-mapped, index) as the base manager's best fit; with, by release order.
  void File(int64_t s);
  void Unfile(int64_t s) {
    const Slot& slot = slots_[static_cast<size_t>(s)];
    const size_t erased = slot.keyed == 0 ? idle_plain_.erase({-slot.mapped, s})
                                          : idle_keyed_.erase({slot.released_at, s});
    KVSIM_CHECK(erased == 1, "an idle slot was filed wrongly");
  }

  void PushBack(Queue& q, int32_t g);

  // Takes g out of its queue, if it is in one.
  void Unlink(int32_t g);

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

}  // namespace kvsim
