// EnumTable: names and values of an enum, both ways, and the listing config errors use.
#include "sim/core/enum_table.h"

#include <gtest/gtest.h>

#include <optional>
#include <string_view>

#include "sim/core/check.h"

namespace kvsim {
namespace {

enum class Fruit { kApple, kPear, kPlum, kFig };

// kFig is left out on purpose: a value without a name.
constexpr auto kFruits = MakeEnumTable<Fruit>(
    {{"apple", Fruit::kApple}, {"pear", Fruit::kPear}, {"plum", Fruit::kPlum}});

// The table is usable in constant expressions.
static_assert(kFruits.size() == 3);
static_assert(kFruits.Name(Fruit::kPear) == "pear");
static_assert(kFruits.Parse("plum") == Fruit::kPlum);
static_assert(!kFruits.Parse("fig").has_value());

TEST(EnumTable, NamesAndValuesRoundTrip) {
  for (const EnumName<Fruit>& e : kFruits.entries()) {
    EXPECT_EQ(kFruits.Parse(kFruits.Name(e.value)), e.value);
    EXPECT_EQ(kFruits.Name(*kFruits.Parse(e.name)), e.name);
  }
  EXPECT_EQ(kFruits.Name(Fruit::kApple), "apple");
  EXPECT_EQ(kFruits.Name(Fruit::kPlum), "plum");
  EXPECT_STREQ(kFruits.CName(Fruit::kPear), "pear");
}

TEST(EnumTable, AnUnknownNameParsesToNullopt) {
  EXPECT_EQ(kFruits.Parse("fig"), std::nullopt);
  EXPECT_EQ(kFruits.Parse(""), std::nullopt);
  EXPECT_EQ(kFruits.Parse("Apple"), std::nullopt);  // exact: case matters
  EXPECT_EQ(kFruits.Parse("apple "), std::nullopt);
  EXPECT_EQ(kFruits.Parse("appl"), std::nullopt);
}

TEST(EnumTable, AValueMissingFromTheTableIsABug) {
  EXPECT_THROW((void)kFruits.Name(Fruit::kFig), InvariantError);
  EXPECT_THROW((void)kFruits.CName(Fruit::kFig), InvariantError);
}

TEST(EnumTable, ListsTheNamesInTableOrderAsConfigErrorsDo) {
  EXPECT_EQ(kFruits.NameList(), "apple, pear, plum");
  EXPECT_EQ(kFruits.NameList("|"), "apple|pear|plum");
  EXPECT_EQ(kFruits.NameList(", ", " or "), "apple, pear or plum");
  constexpr auto kOne = MakeEnumTable<Fruit>({{"fig", Fruit::kFig}});
  EXPECT_EQ(kOne.NameList(), "fig");
  EXPECT_EQ(kOne.NameList(", ", " or "), "fig");
}

TEST(EnumTable, SelectKeepsTheGivenValuesInTheGivenOrder) {
  constexpr auto kTwo = kFruits.Select({Fruit::kPlum, Fruit::kApple});
  EXPECT_EQ(kTwo.NameList(), "plum, apple");
  EXPECT_EQ(kTwo.Parse("apple"), Fruit::kApple);
  EXPECT_EQ(kTwo.Parse("pear"), std::nullopt);
  EXPECT_THROW((void)kTwo.Name(Fruit::kPear), InvariantError);
}

TEST(EnumTable, WithUnsetNamesNulloptFirst) {
  constexpr auto kSetting = kFruits.WithUnset("auto");
  EXPECT_EQ(kSetting.NameList(), "auto, apple, pear, plum");
  EXPECT_EQ(kSetting.Name(std::nullopt), "auto");
  EXPECT_EQ(kSetting.Name(Fruit::kPear), "pear");
  const std::optional<std::optional<Fruit>> unset = kSetting.Parse("auto");
  ASSERT_TRUE(unset.has_value());
  EXPECT_EQ(*unset, std::nullopt);
  EXPECT_EQ(kSetting.Parse("plum"), std::optional<Fruit>(Fruit::kPlum));
  EXPECT_EQ(kSetting.Parse("fig"), std::nullopt);
}

TEST(EnumTable, ATableBuiltAtRunTimeChecksItsNames) {
  const std::array<EnumName<Fruit>, 2> same_name = {
      {{"apple", Fruit::kApple}, {"apple", Fruit::kPear}}};
  EXPECT_THROW((EnumTable<Fruit, 2>(same_name)), InvariantError);
  const std::array<EnumName<Fruit>, 2> same_value = {
      {{"apple", Fruit::kApple}, {"pear", Fruit::kApple}}};
  EXPECT_THROW((EnumTable<Fruit, 2>(same_value)), InvariantError);
  const std::array<EnumName<Fruit>, 1> empty_name = {{{"", Fruit::kApple}}};
  EXPECT_THROW((EnumTable<Fruit, 1>(empty_name)), InvariantError);
}

}  // namespace
}  // namespace kvsim
