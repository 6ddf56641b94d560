// FlatKeyMap against std::unordered_map on a long random sequence of inserts, finds and
// erases that wraps its probe runs around the array end; a map started small doubles
// its array as it fills.
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
        if (got) {
          ASSERT_EQ(*got, found->second);
        }
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

// 16 slots hold 8 keys at a load of one half; the 9th doubles the array, and 1000
// keys need 2000 slots: 2048. Every key keeps its value through each doubling.
TEST(FlatKeyMap, AMapStartedSmallDoublesItsArrayAsItFillsAndKeepsEveryKey) {
  FlatKeyMap map(1000, 0);
  EXPECT_EQ(map.capacity(), 16);
  for (uint64_t k = 1; k <= 8; ++k) ASSERT_TRUE(map.Insert(k * 7919, static_cast<int32_t>(k)));
  EXPECT_EQ(map.capacity(), 16);
  ASSERT_TRUE(map.Insert(9 * 7919, 9));
  EXPECT_EQ(map.capacity(), 32);
  for (uint64_t k = 10; k <= 1000; ++k) ASSERT_TRUE(map.Insert(k * 7919, static_cast<int32_t>(k)));
  EXPECT_EQ(map.capacity(), 2048);
  EXPECT_EQ(map.size(), 1000);
  for (uint64_t k = 1; k <= 1000; ++k) ASSERT_EQ(map.Find(k * 7919), static_cast<int32_t>(k));
  // The most entries is still a bound: the 1001st key is refused.
  EXPECT_THROW(map.Insert(1001 * 7919, 1001), InvariantError);
  for (uint64_t k = 1; k <= 1000; k += 2) ASSERT_TRUE(map.Erase(k * 7919));
  for (uint64_t k = 1; k <= 1000; ++k) {
    ASSERT_EQ(map.Find(k * 7919).has_value(), k % 2 == 0);
  }
}

TEST(FlatKeyMap, AMapSizedUpFrontNeverGrows) {
  FlatKeyMap map(100);
  EXPECT_EQ(map.capacity(), 256);  // 100 keys at load 1/2: 200 slots, rounded to 256
  for (uint64_t k = 1; k <= 100; ++k) ASSERT_TRUE(map.Insert(k, static_cast<int32_t>(k)));
  EXPECT_EQ(map.capacity(), 256);
}

TEST(FlatKeyMap, AGrowingMapAgreesWithAStandardMapOverManySteps) {
  FlatKeyMap map(1000, 0);
  std::unordered_map<uint64_t, int32_t> reference;
  std::mt19937_64 rng(2);
  for (int step = 0; step < 300'000; ++step) {
    // Inserts outnumber erases at first, so the map grows through every size.
    const uint64_t key = 1 + rng() % 3000;
    const auto value = static_cast<int32_t>(step);
    const uint64_t op = rng() % 4;
    if (op <= 1 || (op == 2 && step < 100'000)) {
      if (reference.size() < 1000) {
        ASSERT_EQ(map.Insert(key, value), reference.emplace(key, value).second);
      }
    } else if (op == 2) {
      ASSERT_EQ(map.Erase(key), reference.erase(key) == 1);
    } else {
      const auto found = reference.find(key);
      const std::optional<int32_t> got = map.Find(key);
      ASSERT_EQ(got.has_value(), found != reference.end());
      if (got) {
        ASSERT_EQ(*got, found->second);
      }
    }
    ASSERT_EQ(map.size(), static_cast<int64_t>(reference.size()));
    ASSERT_GE(map.capacity(), 2 * map.size());
  }
}

}  // namespace
}  // namespace kvsim
