// Text helpers: trimming, and splitting a CSV line into its fields.
#include "sim/core/text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kvsim {
namespace {

using ::testing::ElementsAre;

TEST(Trim, DropsTheGivenBlanksAtBothEndsOnly) {
  EXPECT_EQ(Trim("  a b\t"), "a b");
  EXPECT_EQ(Trim(" \t "), "");
  EXPECT_EQ(Trim("x\r\n", "\r\n"), "x");
}

TEST(SplitFields, KeepsEmptyFieldsAndTrimsOnlyWhenAsked) {
  EXPECT_THAT(SplitFields("a,,b"), ElementsAre("a", "", "b"));
  EXPECT_THAT(SplitFields(" a , b "), ElementsAre(" a ", " b "));
  EXPECT_THAT(SplitFields(" a , b\r", " \r"), ElementsAre("a", "b"));
  EXPECT_THAT(SplitFields("one"), ElementsAre("one"));
  EXPECT_THAT(SplitFields(""), ElementsAre(""));
  EXPECT_THAT(SplitFields("a,"), ElementsAre("a", ""));
}

}  // namespace
}  // namespace kvsim
