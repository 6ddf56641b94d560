// IdMap: a hash map from int64 ids to small values, for per-request state looked
// up on every iteration. Open addressing with linear probing in one flat array
// (no node per entry), erase by backward shift (no tombstones), so a lookup touches
// one or two cache lines. Entry references stay valid until the next insert or
// erase. Iteration order is unspecified; kvsim only looks entries up.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "sim/core/check.h"

namespace kvsim {

template <typename V>
class IdMap {
 public:
  IdMap() { slots_.resize(kMinSlots); }

  size_t size() const { return size_; }
  bool contains(int64_t id) const { return FindSlot(id) != kNone; }

  // The value of `id`, or nullptr.
  V* find(int64_t id) {
    const size_t s = FindSlot(id);
    return s == kNone ? nullptr : &slots_[s].value;
  }
  const V* find(int64_t id) const {
    const size_t s = FindSlot(id);
    return s == kNone ? nullptr : &slots_[s].value;
  }
  // The value of `id`. REQUIRES: contains(id).
  V& at(int64_t id) {
    V* v = find(id);
    KVSIM_CHECK(v != nullptr, "IdMap: no such id");
    return *v;
  }

  // Inserts (id, value). REQUIRES: !contains(id).
  void emplace(int64_t id, V value) {
    if ((size_ + 1) * 4 > slots_.size() * 3) Rehash(slots_.size() * 2);  // load <= 3/4
    size_t s = Home(id);
    while (slots_[s].used) {
      KVSIM_CHECK(slots_[s].id != id, "IdMap: id inserted twice");
      s = (s + 1) & Mask();
    }
    slots_[s] = {id, std::move(value), true};
    ++size_;
  }

  // Removes `id`; returns whether it was there.
  bool erase(int64_t id) {
    size_t hole = FindSlot(id);
    if (hole == kNone) return false;
    // Backward shift: move later entries of the probe run into the hole while that
    // keeps each reachable from its home slot.
    size_t s = (hole + 1) & Mask();
    while (slots_[s].used) {
      const size_t home = Home(slots_[s].id);
      // Entry s may fill the hole when its home is not in (hole, s] cyclically.
      const bool movable = hole <= s ? (home <= hole || home > s) : (home <= hole && home > s);
      if (movable) {
        slots_[hole] = std::move(slots_[s]);
        hole = s;
      }
      s = (s + 1) & Mask();
    }
    slots_[hole].used = false;
    --size_;
    return true;
  }

 private:
  static constexpr size_t kMinSlots = 16;  // a power of two
  static constexpr size_t kNone = ~size_t{0};
  struct Slot {
    int64_t id = 0;
    V value{};
    bool used = false;
  };

  size_t Mask() const { return slots_.size() - 1; }
  // Fibonacci hashing: consecutive ids spread over the table.
  size_t Home(int64_t id) const {
    const uint64_t h = static_cast<uint64_t>(id) * 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(h >> 32) & Mask();
  }
  size_t FindSlot(int64_t id) const {
    for (size_t s = Home(id);; s = (s + 1) & Mask()) {
      if (!slots_[s].used) return kNone;
      if (slots_[s].id == id) return s;
    }
  }
  void Rehash(size_t slots) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(slots, Slot{});
    size_ = 0;
    for (Slot& e : old) {
      if (e.used) emplace(e.id, std::move(e.value));
    }
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
};

}  // namespace kvsim
