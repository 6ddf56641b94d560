// When kvprobe stops replaying a kernel or graph and times it (steady_warm.h): at least
// the minimum, then until two consecutive chunks agree within the tolerance, at most
// the maximum. Every figure is worked out by hand.
#include "tools/kvprobe/host/steady_warm.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace kvprobe {
namespace {

// At least 800 ms, at most 2,500 ms, chunks agreeing within 1.5%.
constexpr SteadyWarmLimits kPass{.min_ms = 800, .max_ms = 2500, .tolerance = 0.015};

TEST(SteadyWarm, ReplaysUntilTheMinimumHasPassed) {
  // A 30 ms trial counts: 770 ms to go. Chunks of 5 launches of 30 ms = 150 ms.
  SteadyWarm w(kPass, 30000);
  for (int chunk = 1; chunk <= 5; ++chunk) {  // 180, 330, 480, 630, 780 ms
    ASSERT_TRUE(w.More()) << chunk;
    w.Record(30000, 5);
  }
  EXPECT_DOUBLE_EQ(w.warmed_ms(), 780);
  EXPECT_TRUE(w.More());  // 20 ms short, though the chunks agree exactly
  w.Record(30000, 5);     // 930 ms, and equal to the chunk before
  EXPECT_DOUBLE_EQ(w.warmed_ms(), 930);
  EXPECT_FALSE(w.More());
}

TEST(SteadyWarm, GoesOnWhileConsecutiveChunksDifferByMoreThanTheTolerance) {
  // Chunks of 100 ms at 10.0 us per launch (10,000 launches each): the 8th reaches the
  // 800 ms minimum and agrees with the 7th, so it is the last.
  SteadyWarm w(kPass);
  for (int chunk = 1; chunk <= 8; ++chunk) {
    ASSERT_TRUE(w.More()) << chunk;
    w.Record(10.0, 10000);
  }
  EXPECT_FALSE(w.More());
  EXPECT_DOUBLE_EQ(w.warmed_ms(), 800);
  // The clock still moving: 10.0 -> 9.8 us is 2.04% of 9.8 (beyond 1.5%), 9.8 -> 9.7
  // is 1.03% of 9.7 (within).
  SteadyWarm moving(kPass);
  for (int chunk = 0; chunk < 7; ++chunk) moving.Record(10.0, 10000);  // 700 ms
  moving.Record(9.8, 10000);                                           // 798 ms
  EXPECT_TRUE(moving.More());                                          // short of 800
  moving.Record(9.7, 10000);                                           // 895 ms, within 1.5%
  EXPECT_FALSE(moving.More());
  EXPECT_DOUBLE_EQ(moving.warmed_ms(), 895);
  SteadyWarm jump(kPass);
  for (int chunk = 0; chunk < 8; ++chunk) jump.Record(10.0, 10000);  // 800 ms, steady
  jump.Record(9.8, 10000);                                           // 898 ms: 2.04% off
  EXPECT_TRUE(jump.More());
}

TEST(SteadyWarm, StopsAtTheMaximumIfTheChunksNeverAgree) {
  // Alternating 10 and 11 us (10% apart), chunks of 1,000 launches: 10 ms or 11 ms
  // each. 238 chunks (119 pairs of 21 ms) make 2,499 ms, still short of 2,500; the
  // 239th (10 ms) passes it.
  SteadyWarm w(kPass);
  int chunks = 0;
  while (w.More()) {
    w.Record(chunks % 2 == 0 ? 10.0 : 11.0, 1000);
    ++chunks;
    ASSERT_LT(chunks, 1000);
  }
  EXPECT_EQ(chunks, 239);
  EXPECT_DOUBLE_EQ(w.warmed_ms(), 119 * 21 + 10);
}

TEST(SteadyWarm, WithoutARangeItStopsAtTheMinimumWhateverTheChunks) {
  const SteadyWarmLimits fixed{.min_ms = 200, .max_ms = 200};
  SteadyWarm w(fixed);
  w.Record(10.0, 10000);  // 100 ms
  EXPECT_TRUE(w.More());
  w.Record(20.0, 5000);  // 200 ms, twice the previous chunk's time per launch
  EXPECT_FALSE(w.More());
}

TEST(SteadyWarm, ATrialLongerThanTheMinimumStillWantsTwoAgreeingChunks) {
  // A 574 ms pass (a 16K-token prefill) after a 3-pass trial of 1,722 ms, with room up to
  // 5 s: past the minimum, but one chunk has nothing to compare with (2,296 ms); a second
  // that differs by 5% goes on (2,841 ms); a third within 1.5% of it ends it (3,386 ms).
  SteadyWarm w({.min_ms = 800, .max_ms = 5000, .tolerance = 0.015}, 3 * 574000.0);
  EXPECT_TRUE(w.More());
  w.Record(574000, 1);
  EXPECT_DOUBLE_EQ(w.warmed_ms(), 2296);
  EXPECT_TRUE(w.More());
  w.Record(545000, 1);  // 5.3% of 545,000 below the chunk before
  EXPECT_TRUE(w.More());
  w.Record(545000, 1);
  EXPECT_FALSE(w.More());
  EXPECT_DOUBLE_EQ(w.warmed_ms(), 3386);
  // With no range the trial alone is enough.
  EXPECT_FALSE(SteadyWarm({.min_ms = 800, .max_ms = 800}, 3 * 574000.0).More());
}

TEST(SteadyWarm, AChunkWithoutATimeIsAnError) {
  // A chunk that took no time would never bring the replays to their limits.
  SteadyWarm w(kPass);
  EXPECT_THROW(w.Record(0, 10), std::invalid_argument);
  EXPECT_THROW(w.Record(-1, 10), std::invalid_argument);
  EXPECT_THROW(w.Record(10, 0), std::invalid_argument);
}

}  // namespace
}  // namespace kvprobe
