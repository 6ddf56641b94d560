// The prefill kernel's block shape: two m-tiles per warp (128-row blocks) once a
// sequence has 2,048 tokens and those blocks fill the GPU three times over (two
// resident per multiprocessor), else one.
#include "tools/kvprobe/host/kernel_plan.h"

#include <gtest/gtest.h>

namespace kvprobe {
namespace {

constexpr int kH200Sms = 132;  // 3 waves x 2 blocks x 132 = 792 blocks of 128 rows

TEST(KernelPlanTest, ABlockServes64RowsPerMTileAndWarpPair) {
  EXPECT_EQ(PrefillBlockRows(1), 64);
  EXPECT_EQ(PrefillBlockRows(2), 128);
}

TEST(KernelPlanTest, FourThousandTokensOf32HeadsFillAnH200ThreeTimesOverWithTwoMTiles) {
  // 4,096 / 128 = 32 blocks per head, x 32 heads = 1,024 >= 792.
  EXPECT_EQ(PrefillMTiles(4096, 32, 1, kH200Sms), 2);
  EXPECT_EQ(PrefillMTiles(16384, 32, 1, kH200Sms), 2);
}

TEST(KernelPlanTest, TwoThousandTokensOfOneSequenceStayAtOneMTile) {
  // 2,048 / 128 x 32 = 512 blocks: under two waves.
  EXPECT_EQ(PrefillMTiles(2048, 32, 1, kH200Sms), 1);
  EXPECT_EQ(PrefillMTiles(512, 32, 1, kH200Sms), 1);
}

TEST(KernelPlanTest, TheThresholdIsThreeWavesOfTwoBlocksPerMultiprocessor) {
  // 8 heads: 99 blocks per head (12,545-12,672 tokens) x 8 = 792, exactly three waves.
  EXPECT_EQ(PrefillMTiles(12545, 8, 1, kH200Sms), 2);
  EXPECT_EQ(PrefillMTiles(12544, 8, 1, kH200Sms), 1);  // 98 x 8 = 784
}

TEST(KernelPlanTest, AWholeBatchCountsTowardTheWaves) {
  // 2,048 tokens x 32 heads x 2 sequences = 1,024 blocks.
  EXPECT_EQ(PrefillMTiles(2048, 32, 2, kH200Sms), 2);
}

TEST(KernelPlanTest, ShortSequencesStayAtOneMTileHoweverManyThereAre) {
  // 25,600 blocks, but a 1,024-token sequence would pad its last 128-row block.
  EXPECT_EQ(PrefillMTiles(1024, 32, 100, kH200Sms), 1);
  EXPECT_EQ(PrefillMTiles(2047, 32, 100, kH200Sms), 1);
}

TEST(KernelPlanTest, FewerMultiprocessorsNeedFewerBlocks) {
  // 2,560 tokens x 32 heads = 20 x 32 = 640 blocks: under 3 x 2 x 108 = 648 on an
  // A100, over 3 x 2 x 100 = 600.
  EXPECT_EQ(PrefillMTiles(2560, 32, 1, 108), 1);
  EXPECT_EQ(PrefillMTiles(2560, 32, 1, 100), 2);
}

TEST(KernelPlanTest, NonPositiveSizesGiveOneMTile) {
  EXPECT_EQ(PrefillMTiles(0, 32, 1, kH200Sms), 1);
  EXPECT_EQ(PrefillMTiles(8192, 0, 1, kH200Sms), 1);
  EXPECT_EQ(PrefillMTiles(8192, 32, 0, kH200Sms), 1);
  EXPECT_EQ(PrefillMTiles(8192, 32, 1, 0), 1);
}

}  // namespace
}  // namespace kvprobe
