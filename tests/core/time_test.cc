// Tests for simulated time conversions: SecondsToNanos rounding and ToSeconds.
#include "sim/core/time.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "sim/core/check.h"

namespace kvsim {
namespace {

TEST(SecondsToNanos, ConvertsWholeAndFractionalSeconds) {
  EXPECT_EQ(SecondsToNanos(0.0), Nanos(0));
  EXPECT_EQ(SecondsToNanos(1.0), Nanos(1'000'000'000));
  EXPECT_EQ(SecondsToNanos(1.5), Nanos(1'500'000'000));
  EXPECT_EQ(SecondsToNanos(4.314579), Nanos(4'314'579'000));
  EXPECT_EQ(SecondsToNanos(3600.123456789), Nanos(3'600'123'456'789));
  EXPECT_EQ(SecondsToNanos(-2.25), Nanos(-2'250'000'000));
}

TEST(SecondsToNanos, RoundsAsLlroundDoesIncludingHalvesAndTheirNeighbours) {
  // Half-nanosecond values and the doubles just either side of them, over magnitudes
  // from a nanosecond to days, of both signs.
  for (int64_t whole : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{123456}, int64_t{99999999999},
                        int64_t{86400} * 1'000'000'000 * 3}) {
    for (double sign : {1.0, -1.0}) {
      const double half = sign * (static_cast<double>(whole) + 0.5);
      for (double x :
           {half, std::nextafter(half, 0.0), std::nextafter(half, 2 * half),
            sign * static_cast<double>(whole), sign * (static_cast<double>(whole) + 0.25)}) {
        const double seconds = x * 1e-9;
        if (seconds > 0 && std::llround(seconds * 1e9) == 0) continue;  // the 1 ns floor
        EXPECT_EQ(SecondsToNanos(seconds).count(), std::llround(seconds * 1e9)) << x;
      }
    }
  }
}

TEST(SecondsToNanos, RoundsToNearestNanosecond) {
  EXPECT_EQ(SecondsToNanos(1.4e-9), Nanos(1));
  EXPECT_EQ(SecondsToNanos(1.6e-9), Nanos(2));
  EXPECT_EQ(SecondsToNanos(2.4e-9), Nanos(2));
  EXPECT_EQ(SecondsToNanos(2.6e-9), Nanos(3));
  EXPECT_EQ(SecondsToNanos(1.0 + 0.4e-9), Nanos(1'000'000'000));
  EXPECT_EQ(SecondsToNanos(1.0 + 0.6e-9), Nanos(1'000'000'001));
  EXPECT_EQ(SecondsToNanos(-1.6e-9), Nanos(-2));
}

TEST(SecondsToNanos, NeverTurnsAPositiveDurationIntoZero) {
  EXPECT_EQ(SecondsToNanos(1e-12), Nanos(1));
  EXPECT_EQ(SecondsToNanos(0.4e-9), Nanos(1));
  EXPECT_EQ(SecondsToNanos(std::numeric_limits<double>::denorm_min()), Nanos(1));
  // Negative inputs still round to nearest.
  EXPECT_EQ(SecondsToNanos(-1e-12), Nanos(0));
}

TEST(SecondsToNanos, RejectsNonFiniteAndOutOfRangeInput) {
  EXPECT_THROW(SecondsToNanos(std::numeric_limits<double>::quiet_NaN()), InvariantError);
  EXPECT_THROW(SecondsToNanos(std::numeric_limits<double>::infinity()), InvariantError);
  EXPECT_THROW(SecondsToNanos(1e10), InvariantError);
}

TEST(ToSeconds, ConvertsNanosecondsToSeconds) {
  EXPECT_DOUBLE_EQ(ToSeconds(Nanos(0)), 0.0);
  EXPECT_DOUBLE_EQ(ToSeconds(Nanos(1'500'000'000)), 1.5);
  EXPECT_DOUBLE_EQ(ToSeconds(Nanos(1)), 1e-9);
  EXPECT_DOUBLE_EQ(ToSeconds(Nanos(-250'000'000)), -0.25);
}

TEST(ToSeconds, IsTheInverseOfSecondsToNanos) {
  for (int64_t ns : {int64_t{1}, int64_t{999}, int64_t{123'456'789}, int64_t{86'400'000'000'000},
                     int64_t{1} << 52}) {
    EXPECT_EQ(SecondsToNanos(ToSeconds(Nanos(ns))), Nanos(ns)) << ns;
  }
  for (double s : {1e-9, 0.001, 0.5, 4.314579, 3501.721937, 86400.0}) {
    EXPECT_NEAR(ToSeconds(SecondsToNanos(s)), s, 0.5e-9 + s * 1e-15) << s;
  }
}

}  // namespace
}  // namespace kvsim
