// PrefixCachedVAttentionManager: page groups, slots, eviction and the VMM calls they
// cost (the rules are at the top of vattention_prefix_manager.h).
#include <algorithm>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/kvcache/vattention_prefix_manager.h"

namespace kvsim {

PrefixIdentity PrefixCachedVAttentionManager::IdentityOf(int64_t id) const {
  const auto it = identities_.find(id);
  if (it != identities_.end()) return it->second;
  PrefixIdentity own;
  own.request_id = id;
  return own;
}

const std::vector<int32_t>& PrefixCachedVAttentionManager::Hits(const PrefixIdentity& prefix,
                                                                int64_t tokens) const {
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

int64_t PrefixCachedVAttentionManager::ChooseSlot(const std::vector<int32_t>& hits,
                                                  int64_t need) const {
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

int64_t PrefixCachedVAttentionManager::Cover(int64_t s, int64_t from, int64_t to,
                                             GrowthPhase phase) {
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

void PrefixCachedVAttentionManager::Pin(int32_t g) {
  Group& group = groups_[static_cast<size_t>(g)];
  if (group.ref++ == 0) {
    Unlink(g);
    ++in_use_;
  } else {
    ++shared_refs_;  // a second reader: its tokens count once
  }
}

int32_t PrefixCachedVAttentionManager::TakeFree(GrowthPhase phase) {
  if (free_.empty()) {
    const int32_t victim = NextVictim();
    KVSIM_CHECK(victim != kNone, "no page group to reclaim: availability was miscounted");
    Evict(victim, phase);
  }
  const int32_t g = free_.back();
  free_.pop_back();
  return g;
}

void PrefixCachedVAttentionManager::Evict(int32_t g, GrowthPhase phase) {
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
    ChargeUnmap(phase, 1);
  }
  group.slots.clear();
  free_.push_back(g);
}

void PrefixCachedVAttentionManager::MapIntoSlot(int32_t g, int64_t s, int64_t i,
                                                GrowthPhase phase) {
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
  ChargeMap(phase, 1);
}

void PrefixCachedVAttentionManager::UnmapFromSlot(int64_t s, int64_t i, GrowthPhase phase) {
  Slot& slot = slots_[static_cast<size_t>(s)];
  const int32_t g = slot.pages[static_cast<size_t>(i)];
  Group& group = groups_[static_cast<size_t>(g)];
  slot.pages[static_cast<size_t>(i)] = kNone;
  --slot.mapped;
  if (group.key != 0) --slot.keyed;
  std::erase(group.slots, static_cast<int32_t>(s));
  ChargeUnmap(phase, 1);
  KVSIM_CHECK(!group.slots.empty() || group.ref == 0,
              "a page group read by a request is mapped nowhere");
  if (group.slots.empty() && group.key == 0) {
    Unlink(g);
    free_.push_back(g);
  }
}

void PrefixCachedVAttentionManager::DropKey(int32_t g) {
  for (const int32_t t : groups_[static_cast<size_t>(g)].slots) {
    Slot& slot = slots_[static_cast<size_t>(t)];
    const bool idle = slot.request == kIdle;
    if (idle) Unfile(t);
    --slot.keyed;
    if (idle) File(t);
  }
  DropKeyOnly(g);
}

void PrefixCachedVAttentionManager::File(int64_t s) {
  const Slot& slot = slots_[static_cast<size_t>(s)];
  if (slot.keyed == 0) {
    idle_plain_.insert({-slot.mapped, s});
  } else {
    idle_keyed_.insert({slot.released_at, s});
  }
}

void PrefixCachedVAttentionManager::PushBack(Queue& q, int32_t g) {
  Group& group = groups_[static_cast<size_t>(g)];
  KVSIM_CHECK(group.list == nullptr, "a page group in two queues");
  group.list = &q;
  group.prev = q.tail;
  group.next = kNone;
  (q.tail == kNone ? q.head : groups_[static_cast<size_t>(q.tail)].next) = g;
  q.tail = g;
  ++q.size;
}

void PrefixCachedVAttentionManager::Unlink(int32_t g) {
  Group& group = groups_[static_cast<size_t>(g)];
  Queue* q = group.list;
  if (q == nullptr) return;
  (group.prev == kNone ? q->head : groups_[static_cast<size_t>(group.prev)].next) = group.next;
  (group.next == kNone ? q->tail : groups_[static_cast<size_t>(group.next)].prev) = group.prev;
  group.prev = group.next = kNone;
  group.list = nullptr;
  --q->size;
}

}  // namespace kvsim
