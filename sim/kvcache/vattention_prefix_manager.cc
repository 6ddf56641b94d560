// PrefixCachedVAttentionManager: the KvCacheManager interface (the rules are at the
// top of vattention_prefix_manager.h).
#include "sim/kvcache/vattention_prefix_manager.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "sim/core/check.h"

namespace kvsim {

bool PrefixCachedVAttentionManager::Admit(int64_t id, int64_t tokens, int64_t max_tokens) {
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

bool PrefixCachedVAttentionManager::Grow(int64_t id, int64_t tokens, GrowthPhase phase) {
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

int64_t PrefixCachedVAttentionManager::CertainDecodeRounds(std::span<const int64_t> ids,
                                                           std::span<const int64_t> tokens,
                                                           int64_t limit) const {
  KVSIM_CHECK(ids.size() == tokens.size(), "one token count per request");
  if ((!config_.deferred_reclaim && idle_spare_.size > 0) || StepCostPending()) return 0;
  return RoundsInsideRoom(
      ids, tokens, limit,
      [this](int64_t id) {
        const int64_t* s = slot_of_.find(id);
        return s == nullptr ? nullptr : &slots_[static_cast<size_t>(*s)];
      },
      [this](const Slot& slot) { return Room(slot); });
}

void PrefixCachedVAttentionManager::GrowDecodeRounds(std::span<const int64_t> ids,
                                                     std::span<const int64_t> tokens,
                                                     int64_t rounds, std::vector<KvUsage>& usage) {
  GrowRoundsInsideRoom(
      ids, tokens, rounds,
      [this](int64_t id) -> Slot& { return slots_[static_cast<size_t>(slot_of_.at(id))]; },
      [this](const Slot& slot) { return Room(slot); }, live_tokens_, [this] { return Usage(); },
      usage);
  decode_mapped_ = false;  // each round's OnIterationStart would clear it
}

void PrefixCachedVAttentionManager::OnTokensComputed(int64_t id, int64_t computed_tokens) {
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

void PrefixCachedVAttentionManager::ReleaseWritten(int64_t id, int64_t written_tokens) {
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

void PrefixCachedVAttentionManager::OnIterationStart() {
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

KvUsage PrefixCachedVAttentionManager::Usage() const {
  const auto mapped = static_cast<int64_t>(groups_.size() - free_.size());
  return {
      .capacity_bytes = geometry_.capacity_bytes,
      .allocated_bytes = in_use_ * group_bytes_,
      .live_bytes = (live_tokens_ - shared_refs_ * tokens_per_page_) * geometry_.bytes_per_token,
      .cached_bytes = (mapped - in_use_) * group_bytes_,
      .bytes_per_token = geometry_.bytes_per_token};
}

}  // namespace kvsim
