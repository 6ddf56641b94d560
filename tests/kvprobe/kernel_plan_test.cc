// The attention kernels' launch shapes: how a decode context is cut into splits
// (forced counts and the plan), and the prefill kernel's block shape (two m-tiles per
// warp, 128-row blocks, once a sequence has 2,048 tokens and those blocks fill the GPU
// three times over with two resident per multiprocessor, else one).
#include "tools/kvprobe/host/kernel_plan.h"

#include <gtest/gtest.h>

namespace kvprobe {
namespace {

constexpr int kH200Sms = 132;                   // 3 waves x 2 blocks x 132 = 792 blocks of 128 rows
constexpr long long kH200Slots = 2 * kH200Sms;  // decode blocks resident at once

TEST(KernelPlanTest, AForcedSplitIsEqualPartsRoundedUpToWholeGranules) {
  EXPECT_EQ(ForcedDecodeSplit(1024, 2), (DecodeSplit{2, 512}));
  // ceil(1024 / 3) = 342 -> 384 tokens, ceil(1024 / 384) = 3 splits (the last 256).
  EXPECT_EQ(ForcedDecodeSplit(1024, 3), (DecodeSplit{3, 384}));
}

TEST(KernelPlanTest, AForcedSplitMayComeOutLowerThanAsked) {
  // ceil(1024 / 5) = 205 -> 256 tokens: 4 splits.
  EXPECT_EQ(ForcedDecodeSplit(1024, 5), (DecodeSplit{4, 256}));
}

TEST(KernelPlanTest, AForcedCountIsClampedToOneGranulePerSplitAndSixtyFour) {
  EXPECT_EQ(ForcedDecodeSplit(1024, 64), (DecodeSplit{8, 128}));     // 1024 / 128 = 8
  EXPECT_EQ(ForcedDecodeSplit(16384, 100), (DecodeSplit{64, 256}));  // at most 64
  EXPECT_EQ(ForcedDecodeSplit(1000, 0), (DecodeSplit{1, 1024}));     // at least 1
  EXPECT_EQ(ForcedDecodeSplit(100, 4), (DecodeSplit{1, 128}));       // under one granule
  EXPECT_EQ(ForcedDecodeSplit(0, 1), (DecodeSplit{1, 128}));         // taken as 1 token
}

TEST(KernelPlanTest, ThePlanSplitsSixteenSequencesOf1KInTwoToFillOneWave) {
  // 16 x 8 = 128 pairs on 264 slots. 1 split: 1 wave x (1024 + 64) = 1,088; 2 splits:
  // 256 blocks, 1 wave x (512 + 64) + 96 = 672; 3: 384 blocks, 2 x (384 + 64) + 96 =
  // 992; 4: 512 blocks, 2 x (256 + 64) + 96 = 736; 8: 4 x (128 + 64) + 96 = 864.
  EXPECT_EQ(PlanDecodeSplit(16, 8, 1024, kH200Slots), (DecodeSplit{2, 512}));
}

TEST(KernelPlanTest, ThePlanLeavesAFullGpuUnsplit) {
  // 64 x 8 = 512 pairs: 1 split = 2 waves x 1,088 = 2,176; 2 splits = 4 x 576 + 96.
  EXPECT_EQ(PlanDecodeSplit(64, 8, 1024, kH200Slots), (DecodeSplit{1, 1024}));
}

TEST(KernelPlanTest, ThePlanCutsOneLongContextIntoTheMostSplitsOneWaveHolds) {
  // 8 pairs: one wave holds 33 splits, so 512-token splits (32 of them) cost 576 + 96;
  // 256-token ones (64 splits, 512 blocks) take 2 waves: 2 x 320 + 96 = 736.
  EXPECT_EQ(PlanDecodeSplit(1, 8, 16384, kH200Slots), (DecodeSplit{32, 512}));
}

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

TEST(KernelPlanTest, ABulkCopyIsAWarpStepOfContiguousRowsOrAtMostOneBlock) {
  EXPECT_EQ(BulkBoxRows(0), 32);
  EXPECT_EQ(BulkBoxRows(16), 16);
  EXPECT_EQ(BulkBoxRows(32), 32);
  EXPECT_EQ(BulkBoxRows(256), 32);
}

TEST(KernelPlanTest, TheBulkScheduleReadsNoBlocksOfUnderSixteenOrUnevenTokens) {
  EXPECT_EQ(BulkBoxRows(8), 0);
  EXPECT_EQ(BulkBoxRows(24), 0);
  EXPECT_EQ(BulkBoxRows(48), 0);
  EXPECT_EQ(BulkBoxRows(-16), 0);
}

TEST(KernelPlanTest, ABoxPastTheSplitsEndRepeatsTheBoxHoldingItsLastToken) {
  // Blocks of 16: the step at token 96 has boxes at 96 and 112; with the last token at
  // 100 the second box would start past it and starts at 96 instead.
  EXPECT_EQ(BulkBoxFirstToken(96, 0, 100, 16), 96);
  EXPECT_EQ(BulkBoxFirstToken(96, 1, 100, 16), 96);
  // The last token at 112: the second box holds it.
  EXPECT_EQ(BulkBoxFirstToken(96, 1, 112, 16), 112);
}

TEST(KernelPlanTest, EveryBulkBoxLiesInOneBlockAtOrBeforeTheLastTokenAndCoversEachValidToken) {
  for (int block : {0, 16, 32, 64, 128, 256}) {
    const int rows = BulkBoxRows(block);
    for (int last = 0; last < 600; ++last) {
      for (int step = 0; step <= last; step += 32) {
        for (int box = 0; box * rows < 32; ++box) {
          const int first = BulkBoxFirstToken(step, box, last, rows);
          EXPECT_EQ(first % rows, 0);
          EXPECT_LE(first, last);  // its block is one the sequence holds
          if (block > 0) {
            EXPECT_EQ(first / block, (first + rows - 1) / block) << "box crosses a block";
          }
          // A box holding any token up to `last` is the box's own rows.
          if (step + box * rows <= last) {
            EXPECT_EQ(first, step + box * rows);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace kvprobe
