// vAttention: virtually contiguous KV per request, physical pages mapped on demand
// (stock CUDA VMM or vAttention's modified UVM driver), mapping overlapped with
// compute, pages of finished requests reused in place or reclaimed.
//
// Accounting unit: the page group, one page of page_bytes in each of the
// 2 x layers K/V buffers of a rank (2 x layers x page_bytes bytes). A request of t
// tokens needs ceil(t / tokens_per_page) groups, where
// tokens_per_page = page_bytes / (kv_heads_per_rank x head_dim x dtype_bytes).
// Reclamation follows the repo's vattention/vattention.cu; see VAttentionKvConfig.

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
#include "sim/kvcache/contiguous_internal.h"
#include "sim/kvcache/kv_cache_manager.h"
#include "sim/kvcache/vattention_prefix_manager.h"

namespace kvsim {
namespace {

class VAttentionKvManager final : public VAttentionManagerBase {
 public:
  VAttentionKvManager(const KvGeometry& geometry, const VAttentionKvConfig& config)
      : VAttentionManagerBase(geometry, config),
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
    if ((!config_.deferred_reclaim && idle_pages) || StepCostPending()) return 0;
    return RoundsInsideRoom(
        ids, tokens, limit,
        [this](int64_t id) {
          const int64_t* s = slot_of_.find(id);
          return s == nullptr ? nullptr : &slots_[*s];
        },
        [this](const Slot& slot) { return Room(slot); });
  }

  void GrowDecodeRounds(std::span<const int64_t> ids, std::span<const int64_t> tokens,
                        int64_t rounds, std::vector<KvUsage>& usage) override {
    GrowRoundsInsideRoom(
        ids, tokens, rounds, [this](int64_t id) -> Slot& { return slots_[slot_of_.at(id)]; },
        [this](const Slot& slot) { return Room(slot); }, live_tokens_, [this] { return Usage(); },
        usage);
    // Each round's OnIterationStart would clear the flag and reclaim nothing.
    decode_mapped_ = false;
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
            .cached_bytes = reclaimable_ * group_bytes_,
            .bytes_per_token = geometry_.bytes_per_token};
  }

 private:
  struct Slot {
    int64_t mapped = 0;  // page groups mapped into this slot's virtual range
    int64_t needed = 0;  // groups its request's tokens occupy (0 when idle)
    int64_t tokens = 0;
    bool busy = false;
  };

  // The tokens a slot holds without mapping more: those of the groups it needs.
  int64_t Room(const Slot& slot) const { return slot.needed * tokens_per_page_; }

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
    ChargeMap(phase, extra);
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

  // Unmaps n of slot's excess groups back to the free pool (ChargeUnmap).
  void Unmap(Slot& slot, int64_t n, GrowthPhase phase) {
    slot.mapped -= n;
    reclaimable_ -= n;
    free_pool_ += n;
    ChargeUnmap(phase, n);
  }

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
