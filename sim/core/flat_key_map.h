// FlatKeyMap: a map from nonzero 64-bit keys to 32-bit values in one flat array
// (open addressing, linear probing, backward-shift deletion): no allocation after
// construction, for a prefix cache's content keys (one per cached block).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "sim/core/check.h"

namespace kvsim {

class FlatKeyMap {
 public:
  // Room for `max_entries` keys at a load of at most one half.
  explicit FlatKeyMap(int64_t max_entries) {
    size_t capacity = 16;
    while (capacity < static_cast<size_t>(max_entries) * 2) capacity *= 2;
    slots_.resize(capacity);
    mask_ = capacity - 1;
    max_entries_ = max_entries;
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

 private:
  struct Slot {
    uint64_t key = 0;
    int32_t value = 0;
  };
  // Keys are already well-mixed hashes; a multiply spreads any that are not.
  size_t Home(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 17) & mask_;
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int64_t size_ = 0;
  int64_t max_entries_ = 0;
};

}  // namespace kvsim
