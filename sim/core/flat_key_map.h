// FlatKeyMap: a map from nonzero 64-bit keys to 32-bit values in one flat array
// (open addressing, linear probing, backward-shift deletion), for a prefix cache's
// content keys. Sized for its most entries up front (no allocation after
// construction), or started small and doubled as it fills (a table that stays small
// stays in cache; the most entries remains a checked bound).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "sim/core/check.h"

namespace kvsim {

class FlatKeyMap {
 public:
  // Room for `max_entries` keys at a load of at most one half.
  explicit FlatKeyMap(int64_t max_entries) : FlatKeyMap(max_entries, max_entries) {}

  // Room for `initial_entries` keys at a load of at most one half; an insert that
  // would pass that load doubles the array. At most `max_entries` keys ever.
  // REQUIRES: 0 <= initial_entries <= max_entries.
  FlatKeyMap(int64_t max_entries, int64_t initial_entries) : max_entries_(max_entries) {
    KVSIM_CHECK(initial_entries >= 0 && initial_entries <= max_entries,
                "FlatKeyMap: initial entries outside [0, max_entries]");
    size_t capacity = 16;
    while (capacity < static_cast<size_t>(initial_entries) * 2) capacity *= 2;
    slots_.resize(capacity);
    mask_ = capacity - 1;
  }

  // The value of `key`, or nullopt. REQUIRES: key != 0.
  std::optional<int32_t> Find(uint64_t key) const {
    for (size_t i = Home(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return s.value;
      if (s.key == 0) return std::nullopt;
    }
  }

  // Inserts key -> value unless `key` is there; returns whether it inserted.
  // REQUIRES: key != 0; fewer than max_entries keys before an insert.
  bool Insert(uint64_t key, int32_t value) {
    KVSIM_CHECK(key != 0, "key 0 marks an empty slot");
    size_t i = Home(key);
    for (; slots_[i].key != 0; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return false;
    }
    KVSIM_CHECK(size_ < max_entries_, "FlatKeyMap is full");
    if (static_cast<size_t>(size_ + 1) * 2 > slots_.size()) {
      Grow();
      i = Home(key);
      while (slots_[i].key != 0) i = (i + 1) & mask_;
    }
    slots_[i] = {key, value};
    ++size_;
    return true;
  }

  // Removes `key` if present; returns whether it was.
  bool Erase(uint64_t key) {
    size_t i = Home(key);
    while (slots_[i].key != key) {
      if (slots_[i].key == 0) return false;
      i = (i + 1) & mask_;
    }
    // Backward shift: move later entries of the probe run into the hole, so that
    // lookups never need tombstones.
    for (size_t j = (i + 1) & mask_; slots_[j].key != 0; j = (j + 1) & mask_) {
      const size_t home = Home(slots_[j].key);
      // Move j into i when its home is not in (i, j] (cyclically).
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
    --size_;
    return true;
  }

  int64_t size() const { return size_; }
  // Slots in the array (a power of two, at least twice size()).
  int64_t capacity() const { return static_cast<int64_t>(slots_.size()); }

 private:
  struct Slot {
    uint64_t key = 0;
    int32_t value = 0;
  };
  // Keys are already well-mixed hashes; a multiply spreads any that are not.
  size_t Home(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 17) & mask_;
  }

  // Doubles the array and re-inserts every key.
  void Grow() {
    std::vector<Slot> old(slots_.size() * 2);
    std::swap(old, slots_);
    mask_ = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.key == 0) continue;
      size_t i = Home(s.key);
      while (slots_[i].key != 0) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  int64_t max_entries_ = 0;
  size_t mask_ = 0;
  int64_t size_ = 0;
};

}  // namespace kvsim
