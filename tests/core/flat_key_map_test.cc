// FlatKeyMap against std::unordered_map on a long random sequence of inserts, finds and
// erases that wraps its probe runs around the array end.
#include "sim/core/flat_key_map.h"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>

namespace kvsim {
namespace {

TEST(FlatKeyMap, InsertFindAndEraseAgreeWithAStandardMapOverMillionsOfSteps) {
  FlatKeyMap map(1000);
  std::unordered_map<uint64_t, int32_t> reference;
  std::mt19937_64 rng(1);
  for (int step = 0; step < 2'000'000; ++step) {
    const uint64_t key = 1 + rng() % 3000;  // few keys: runs collide and wrap
    const auto value = static_cast<int32_t>(step);
    switch (rng() % 3) {
      case 0:
        if (reference.size() < 1000) {
          ASSERT_EQ(map.Insert(key, value), reference.emplace(key, value).second);
        }
        break;
      case 1:
        ASSERT_EQ(map.Erase(key), reference.erase(key) == 1);
        break;
      default: {
        const auto found = reference.find(key);
        const std::optional<int32_t> got = map.Find(key);
        ASSERT_EQ(got.has_value(), found != reference.end());
        if (got) ASSERT_EQ(*got, found->second);
      }
    }
    ASSERT_EQ(map.size(), static_cast<int64_t>(reference.size()));
  }
}

TEST(FlatKeyMap, ASecondInsertOfAKeyKeepsTheFirstValue) {
  FlatKeyMap map(4);
  EXPECT_TRUE(map.Insert(7, 1));
  EXPECT_FALSE(map.Insert(7, 2));
  EXPECT_EQ(map.Find(7), 1);
  EXPECT_FALSE(map.Find(8).has_value());
}

}  // namespace
}  // namespace kvsim
