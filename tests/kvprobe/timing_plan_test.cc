// How many launches a timed graph captures and how many copies of a kernel's inputs they
// cycle through (timing_plan.h). Every figure is worked out by hand.
#include "tools/kvprobe/host/timing_plan.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace kvprobe {
namespace {

constexpr double kL2Bytes = 50e6;  // an H100 / H200

TEST(LaunchesPerGraph, FillsAboutOneMillisecondPerReplay) {
  // 1,000 us / 7 us = 142.9: 143 launches; 1,000 / 40 = 25.
  EXPECT_EQ(LaunchesPerGraph(7, 10, 400), 143);
  EXPECT_EQ(LaunchesPerGraph(40, 10, 400), 25);
}

TEST(LaunchesPerGraph, StaysWithinItsBounds) {
  EXPECT_EQ(LaunchesPerGraph(0.5, 10, 400), 400);    // 2,000 wanted
  EXPECT_EQ(LaunchesPerGraph(500, 10, 400), 10);     // 2 wanted
  EXPECT_EQ(LaunchesPerGraph(0, 1, 100000), 10000);  // counted as 0.1 us
  EXPECT_EQ(LaunchesPerGraph(-3, 1, 100000), 10000);
}

TEST(LaunchesPerGraph, RefusesBoundsThatCannotHold) {
  EXPECT_THROW(LaunchesPerGraph(5, 0, 10), std::invalid_argument);
  EXPECT_THROW(LaunchesPerGraph(5, 20, 10), std::invalid_argument);
}

TEST(LaunchesCyclingCopies, RoundsUpToWholeCyclesThroughTheCopies) {
  EXPECT_EQ(LaunchesCyclingCopies(20, 7), 21);
  EXPECT_EQ(LaunchesCyclingCopies(21, 7), 21);
  EXPECT_EQ(LaunchesCyclingCopies(10, 51), 51);  // one cycle holds more than wanted
  EXPECT_EQ(LaunchesCyclingCopies(20, 1), 20);
  EXPECT_EQ(LaunchesCyclingCopies(20, 0), 20);  // no copies: the one input
  EXPECT_EQ(LaunchesCyclingCopies(0, 3), 3);
}

TEST(ColdCopies, PutsFourL2SizesOfOtherCopiesBetweenTwoUsesOfOne) {
  // Llama-3-8B's O projection at TP 2: 2,048 x 4,096 bf16 = 16,777,216 bytes. 4 x 50e6 /
  // 16,777,216 = 11.92: 12, plus the copy in use: 13; between two uses of one, 12 others
  // (201 MB) stream through.
  EXPECT_EQ(ColdCopies(16777216, kL2Bytes, 4, 1000, 2, 512), 13);
  // One sequence of 512 tokens, 8 KV heads of 128: K and V 2,097,152 bytes. 200e6 / 2,097,152
  // = 95.4: 96 + 1.
  EXPECT_EQ(ColdCopies(2097152, kL2Bytes, 4, 100000, 1, 1 << 30), 97);
}

TEST(ColdCopies, AnInputLargerThanFourL2SizesStillAlternatesBetweenTwo) {
  // gate_up of Llama-3-8B at TP 1: 4,096 x 28,672 bf16 = 234,881,024 bytes: ceil(0.85) + 1 = 2.
  EXPECT_EQ(ColdCopies(234881024, kL2Bytes, 4, 8, 2, 512), 2);
  // A 4 GiB cache: ceil(0.05) + 1 = 2 as well.
  EXPECT_EQ(ColdCopies(4294967296.0, kL2Bytes, 4, 4, 1, 1 << 30), 2);
}

TEST(ColdCopies, TakesNoMoreThanTheBuffersHoldOrTheCapUnlessTheLeastIsMore) {
  EXPECT_EQ(ColdCopies(2097152, kL2Bytes, 4, 40, 1, 1 << 30), 40);  // the buffers hold 40
  EXPECT_EQ(ColdCopies(1024, kL2Bytes, 4, 1000000, 2, 512), 512);   // 195,314 wanted
  EXPECT_EQ(ColdCopies(16777216, kL2Bytes, 4, 1, 2, 512), 2);       // the least wins
  // The decode probe's largest cell, a 4 GiB cache (at least 1 copy), would want 2, but its
  // buffers hold one.
  EXPECT_EQ(ColdCopies(4294967296.0, kL2Bytes, 4, 1, 1, 1 << 30), 1);
}

TEST(ColdCopies, WithoutAnL2OrAnInputSizeNeedsOnlyTheLeast) {
  EXPECT_EQ(ColdCopies(16777216, 0, 4, 1000, 2, 512), 2);  // ceil(0) + 1 = 1, at least 2
  EXPECT_EQ(ColdCopies(0, kL2Bytes, 4, 1000, 1, 512), 1);
  EXPECT_EQ(ColdCopies(-5, kL2Bytes, 4, 1000, 3, 512), 3);
}

TEST(ShareRoundUs, AtOneClockSharesTheRoundAsTheAloneTimes) {
  // 100 + 200 us alone, both at 1,500 MHz; the round took 270 us: 90 + 180.
  const std::vector<double> shares = ShareRoundUs(270, {100, 200}, {1500, 1500});
  ASSERT_EQ(shares.size(), 2u);
  EXPECT_DOUBLE_EQ(shares[0], 90);
  EXPECT_DOUBLE_EQ(shares[1], 180);
}

TEST(ShareRoundUs, AGemmTimedAloneAtALowerClockIsNotChargedForIt) {
  // Alone: 100 us at 1,000 MHz (100,000 cycles) and 200 us at 1,500 MHz (300,000
  // cycles); the round took 300 us: a quarter and three quarters, 75 + 225.
  const std::vector<double> shares = ShareRoundUs(300, {100, 200}, {1000, 1500});
  EXPECT_DOUBLE_EQ(shares[0], 75);
  EXPECT_DOUBLE_EQ(shares[1], 225);
  EXPECT_DOUBLE_EQ(shares[0] + shares[1], 300);
}

TEST(ShareRoundUs, WithoutEveryClockSharesByTheAloneTimes) {
  const std::vector<double> shares = ShareRoundUs(600, {100, 200, 300}, {1500, 0, 1500});
  EXPECT_DOUBLE_EQ(shares[0], 100);
  EXPECT_DOUBLE_EQ(shares[1], 200);
  EXPECT_DOUBLE_EQ(shares[2], 300);
}

TEST(ShareRoundUs, RefusesWhatCannotBeShared) {
  EXPECT_THROW(ShareRoundUs(100, {}, {}), std::invalid_argument);
  EXPECT_THROW(ShareRoundUs(100, {50}, {1500, 1500}), std::invalid_argument);
  EXPECT_THROW(ShareRoundUs(0, {50}, {1500}), std::invalid_argument);
  EXPECT_THROW(ShareRoundUs(100, {50, 0}, {1500, 1500}), std::invalid_argument);
}

}  // namespace
}  // namespace kvprobe
