// The all-reduce estimate for an unmeasured GPU count, worked by hand: the ring
// factor, the least-squares extrapolation above the measured counts, interpolation
// between them, the bus bandwidth held from one count, and the sentences saying so.
#include "sim/timing/allreduce_estimate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace kvsim {
namespace {

using ::testing::HasSubstr;

TEST(RingFactor, IsTwiceTheShareOfTheMessageEachGpuSendsOnward) {
  EXPECT_DOUBLE_EQ(RingFactor(1), 0.0);
  EXPECT_DOUBLE_EQ(RingFactor(2), 1.0);
  EXPECT_DOUBLE_EQ(RingFactor(4), 1.5);
  EXPECT_DOUBLE_EQ(RingFactor(8), 1.75);
}

TEST(EstimateAllreduceSeconds, AboveTwoCountsFollowsTheLineThroughThemInTheRingFactor) {
  // (r, T): (1, 10), (1.5, 16): slope 12 per unit r; at r = 1.75: 16 + 12 x 0.25 = 19.
  EXPECT_DOUBLE_EQ(EstimateAllreduceSeconds({{2, 10}, {4, 16}}, 8), 19);
}

TEST(EstimateAllreduceSeconds, AboveThreeCountsFollowsTheLeastSquaresLine) {
  // (1, 10), (4/3, 14), (1.5, 15): mean r = 23/18, mean T = 13;
  // Srr = (5/18)^2 + (1/18)^2 + (4/18)^2 = 42/324, SrT = (-5/18)(-3) + (1/18)(1) + (4/18)(2)
  // = 24/18 = 432/324; slope = 432/42 = 72/7; at 1.75: 13 + 72/7 x (1.75 - 23/18).
  const double expected = 13 + 72.0 / 7 * (1.75 - 23.0 / 18);
  EXPECT_NEAR(EstimateAllreduceSeconds({{2, 10}, {3, 14}, {4, 15}}, 8), expected, 1e-12);
}

TEST(EstimateAllreduceSeconds, AboveTheCountsItIsNeverBelowTheLargestCountsTime) {
  // Faster on 4 GPUs than on 2 (the line falls): the 4-GPU time.
  EXPECT_DOUBLE_EQ(EstimateAllreduceSeconds({{2, 20}, {4, 16}}, 8), 16);
}

TEST(EstimateAllreduceSeconds, OneCountKeepsItsBusBandwidth) {
  EXPECT_DOUBLE_EQ(EstimateAllreduceSeconds({{4, 12}}, 8), 12 * 1.75 / 1.5);
  EXPECT_DOUBLE_EQ(EstimateAllreduceSeconds({{4, 12}}, 2), 12 * 1.0 / 1.5);
}

TEST(EstimateAllreduceSeconds, BetweenTwoCountsInterpolatesLinearlyInTheRingFactor) {
  // r(2) = 1, r(4) = 1.5, r(8) = 1.75: 4 GPUs sit 2/3 of the way from 2 to 8.
  EXPECT_DOUBLE_EQ(EstimateAllreduceSeconds({{2, 10}, {8, 25}}, 4), 20);
  // Only the neighbours count.
  EXPECT_DOUBLE_EQ(EstimateAllreduceSeconds({{2, 10}, {8, 25}, {16, 1000}}, 4), 20);
}

TEST(EstimateAllreduceSeconds, BelowEveryCountScalesTheSmallestOnesTime) {
  EXPECT_DOUBLE_EQ(EstimateAllreduceSeconds({{4, 15}, {8, 30}}, 2), 10);
}

TEST(DescribeAllreduceEstimate, SaysWhichCountsWereMeasuredAndWhichRuleApplies) {
  const std::map<int64_t, double> two_four = {{2, 1}, {4, 1}};
  EXPECT_EQ(DescribeAllreduceEstimate(two_four, 8),
            "all-reduce on 8 GPUs is not in the profile (measured: 2 and 4 GPUs); it is "
            "extrapolated at each message size along the least-squares line of time against "
            "the ring factor 2(n-1)/n through the measured counts, never below the 4-GPU time");
  EXPECT_THAT(DescribeAllreduceEstimate({{2, 1}, {3, 1}, {4, 1}}, 8),
              HasSubstr("(measured: 2, 3 and 4 GPUs)"));
  EXPECT_THAT(DescribeAllreduceEstimate({{2, 1}, {8, 1}}, 4),
              HasSubstr("interpolated at each message size between the 2- and 8-GPU times"));
  EXPECT_THAT(DescribeAllreduceEstimate({{4, 1}}, 8),
              HasSubstr("it is the 4-GPU time scaled by the ring factor 2(n-1)/n (1.75 / 1.5)"));
  EXPECT_THAT(DescribeAllreduceEstimate({{4, 1}, {8, 1}}, 2),
              HasSubstr("it is the 4-GPU time scaled by the ring factor 2(n-1)/n (1 / 1.5)"));
}

}  // namespace
}  // namespace kvsim
