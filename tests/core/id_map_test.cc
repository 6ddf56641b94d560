// IdMap against std::unordered_map over random inserts, lookups and erases, with
// ids that collide in the table and ids far apart.
#include "sim/core/id_map.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/rng.h"

namespace kvsim {
namespace {

TEST(IdMap, AgreesWithAStandardMapOverRandomOperations) {
  Rng rng(3, RngStream::kArrivals);
  IdMap<int64_t> map;
  std::unordered_map<int64_t, int64_t> reference;
  for (int i = 0; i < 200000; ++i) {
    // Mostly a dense window of ids (as requests are numbered), sometimes far ones.
    const int64_t id = rng.UniformInt(0, 9) == 0
                           ? rng.UniformInt(-(int64_t{1} << 40), int64_t{1} << 40)
                           : rng.UniformInt(0, 3000);
    switch (rng.UniformInt(0, 2)) {
      case 0:
        if (!reference.contains(id)) {
          map.emplace(id, i);
          reference.emplace(id, i);
        }
        break;
      case 1:
        EXPECT_EQ(map.erase(id), reference.erase(id) == 1);
        break;
      default: {
        const int64_t* v = map.find(id);
        const auto it = reference.find(id);
        ASSERT_EQ(v != nullptr, it != reference.end()) << id;
        if (v != nullptr) {
          EXPECT_EQ(*v, it->second);
        }
      }
    }
    ASSERT_EQ(map.size(), reference.size());
  }
  for (const auto& [id, value] : reference) EXPECT_EQ(map.at(id), value);
}

TEST(IdMap, ErasingEveryEntryLeavesItEmptyAndReusable) {
  IdMap<int> map;
  for (int64_t id = 0; id < 1000; ++id) map.emplace(id * 17, static_cast<int>(id));
  for (int64_t id = 0; id < 1000; ++id) EXPECT_TRUE(map.erase(id * 17));
  EXPECT_EQ(map.size(), 0u);
  EXPECT_FALSE(map.contains(0));
  map.emplace(5, 7);
  EXPECT_EQ(map.at(5), 7);
}

TEST(IdMap, InsertingAnIdTwiceIsAnInvariantError) {
  IdMap<int> map;
  map.emplace(1, 1);
  EXPECT_THROW(map.emplace(1, 2), InvariantError);
}

}  // namespace
}  // namespace kvsim
