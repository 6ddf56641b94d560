// Text helpers: trimming, splitting a CSV line into its fields, and a byte order mark.
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

TEST(WithoutByteOrderMark, DropsALeadingUtf8ByteOrderMarkOnly) {
  EXPECT_EQ(WithoutByteOrderMark("\xEF\xBB\xBF[meta]\n"), "[meta]\n");
  EXPECT_EQ(WithoutByteOrderMark("[meta]\n"), "[meta]\n");
  // Only at the start, and only the whole mark.
  EXPECT_EQ(WithoutByteOrderMark("a\xEF\xBB\xBF"), "a\xEF\xBB\xBF");
  EXPECT_EQ(WithoutByteOrderMark("\xEF\xBB"), "\xEF\xBB");
  EXPECT_EQ(WithoutByteOrderMark(""), "");
}

}  // namespace
}  // namespace kvsim
