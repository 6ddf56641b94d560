// The all-reduce measurement's plan: GPU counts and sizes measured, the NCCL id's hex
// round trip, the bus-bandwidth factor, and the slowest-rank combination of the
// ranks' files with its errors.
#include "tools/kvprobe/host/allreduce_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvprobe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The runtime_error message of combining `csvs`; fails the test when they combine.
std::string CombineError(const std::vector<std::string>& csvs) {
  std::vector<std::string> names;
  for (size_t r = 0; r < csvs.size(); ++r) names.push_back("rank" + std::to_string(r) + ".csv");
  try {
    CombineRankTimes(csvs, names);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a runtime_error";
  return "";
}

TEST(DefaultAllreduceGpuCounts, ArePowersOfTwoUpToTheGpusPresentPlusThatCount) {
  EXPECT_THAT(DefaultAllreduceGpuCounts(0), IsEmpty());
  EXPECT_THAT(DefaultAllreduceGpuCounts(1), IsEmpty());
  EXPECT_THAT(DefaultAllreduceGpuCounts(2), ElementsAre(2));
  EXPECT_THAT(DefaultAllreduceGpuCounts(4), ElementsAre(2, 4));
  EXPECT_THAT(DefaultAllreduceGpuCounts(6), ElementsAre(2, 4, 6));
  EXPECT_THAT(DefaultAllreduceGpuCounts(8), ElementsAre(2, 4, 8));
}

TEST(AllreduceSizes, Span64KiBTo256MiBDoublingOrQuadruplingWhenQuick) {
  const std::vector<size_t> full = AllreduceSizes(false);
  ASSERT_EQ(full.size(), 13u);  // 2^16 .. 2^28
  for (size_t i = 0; i < full.size(); ++i) EXPECT_EQ(full[i], size_t{1} << (16 + i));
  EXPECT_THAT(AllreduceSizes(true),
              ElementsAre(65536, 262144, 1048576, 4194304, 16777216, 67108864, 268435456));
}

TEST(AllreduceRepsFor, FallsWithTheSizeAndDependsOnItAlone) {
  EXPECT_EQ(AllreduceRepsFor(size_t{64} << 10), 200);
  EXPECT_EQ(AllreduceRepsFor(size_t{4} << 20), 200);
  EXPECT_EQ(AllreduceRepsFor(size_t{8} << 20), 50);
  EXPECT_EQ(AllreduceRepsFor(size_t{32} << 20), 50);
  EXPECT_EQ(AllreduceRepsFor(size_t{256} << 20), 20);
}

TEST(Hex, EncodesEachByteAsTwoLowerCaseDigitsAndDecodesBack) {
  const std::array<unsigned char, 4> bytes = {0x00, 0x7f, 0xa5, 0xff};
  const std::string hex = HexEncode(bytes.data(), bytes.size());
  EXPECT_EQ(hex, "007fa5ff");
  std::array<unsigned char, 4> back = {};
  ASSERT_TRUE(HexDecode(hex, back.data(), back.size()));
  EXPECT_EQ(back, bytes);
  ASSERT_TRUE(HexDecode("007FA5FF", back.data(), back.size()));  // upper case too
  EXPECT_EQ(back, bytes);
}

TEST(Hex, DecodingRejectsTheWrongLengthAndNonHexDigits) {
  std::array<unsigned char, 2> out = {};
  EXPECT_FALSE(HexDecode("abc", out.data(), out.size()));
  EXPECT_FALSE(HexDecode("abcdef", out.data(), out.size()));
  EXPECT_FALSE(HexDecode("abzz", out.data(), out.size()));
  EXPECT_FALSE(HexDecode("+1ab", out.data(), out.size()));
}

TEST(BusBandwidthFactor, IsTwiceTheShareEachRingStepLeavesToOthers) {
  EXPECT_DOUBLE_EQ(BusBandwidthFactor(2), 1.0);
  EXPECT_DOUBLE_EQ(BusBandwidthFactor(4), 1.5);
  EXPECT_DOUBLE_EQ(BusBandwidthFactor(8), 1.75);
}

TEST(CombineRankTimes, TakesTheSlowestRankAtEachSizeForEachTime) {
  const std::string rank0 =
      RankTimesCsv({{65536, {20.5, 11.0, 7.0}}, {1048576, {31.0, 40.0, 30.5}}});
  const std::string rank1 =
      RankTimesCsv({{65536, {19.0, 12.5, 6.5}}, {1048576, {33.25, 39.0, 31.0}}});
  EXPECT_EQ(rank0,
            "bytes,time_us,in_graph_us,alone_in_graph_us\n65536,20.5,11,7\n1048576,31,40,30.5\n");
  const auto times = CombineRankTimes({rank0, rank1}, {"a.csv", "b.csv"});
  ASSERT_EQ(times.size(), 2u);
  EXPECT_EQ(times.at(65536), (RankTime{20.5, 12.5, 7.0}));
  EXPECT_EQ(times.at(1048576), (RankTime{33.25, 40.0, 31.0}));
}

TEST(CombineRankTimes, NamesTheFileAndLineOfAMalformedRow) {
  const std::string header = "bytes,time_us,in_graph_us,alone_in_graph_us\n";
  const std::string good = header + "65536,20,11,7\n";
  EXPECT_THAT(CombineError({good, ""}), HasSubstr("rank1.csv: empty (the rank wrote nothing)"));
  EXPECT_THAT(CombineError({"bytes,time_us,in_graph_us\n65536,20,11\n"}),
              HasSubstr("rank0.csv:1: expected the header "
                        "'bytes,time_us,in_graph_us,alone_in_graph_us'"));
  EXPECT_THAT(CombineError({good, header + "65536,20,11\n"}),
              HasSubstr("rank1.csv:2: expected 'bytes,time_us,in_graph_us,alone_in_graph_us', "
                        "got '65536,20,11'"));
  EXPECT_THAT(CombineError({header + "65536,20,11,7,4\n"}), HasSubstr("rank0.csv:2: expected"));
  EXPECT_THAT(CombineError({header + "65536,20,11,7\n0,5,5,5\n"}),
              HasSubstr("rank0.csv:3: expected a positive byte count and three positive times"));
  EXPECT_THAT(CombineError({header + "65536,-2,11,7\n"}), HasSubstr("rank0.csv:2:"));
  EXPECT_THAT(CombineError({header + "65536,20,0,7\n"}), HasSubstr("rank0.csv:2:"));
  EXPECT_THAT(CombineError({header + "65536,20,11,0\n"}), HasSubstr("rank0.csv:2:"));
  EXPECT_THAT(CombineError({header + "65536,20x,11,7\n"}), HasSubstr("rank0.csv:2:"));
  EXPECT_THAT(CombineError({header + "65536,20,11,7\n65536,21,11,7\n"}),
              HasSubstr("rank0.csv:3: size 65536 repeated"));
  EXPECT_THAT(CombineError({header}), HasSubstr("rank0.csv:1: no timings"));
}

TEST(CombineRankTimes, RanksThatMeasuredDifferentSizesAreAnError) {
  const std::string header = "bytes,time_us,in_graph_us,alone_in_graph_us\n";
  EXPECT_THAT(CombineError({header + "65536,20,11,7\n", header + "131072,20,11,7\n"}),
              HasSubstr("rank1.csv: its message sizes differ from rank0.csv's"));
  EXPECT_THAT(CombineError({header + "65536,20,11,7\n", header + "65536,20,11,7\n4,1,1,1\n"}),
              HasSubstr("differ"));
}

}  // namespace
}  // namespace kvprobe
