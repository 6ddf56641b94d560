// Tests for LogHistogram: exact small values, bounded relative error of quantiles
// against the true nearest-rank quantile, exact mean, and the empty histogram.
#include "sim/metrics/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "sim/core/check.h"

namespace kvsim {
namespace {

// The nearest-rank q-quantile of a sample: the ceil(q x n)-th smallest (at least the
// first).
int64_t TrueNearestRank(std::vector<int64_t> values, double q) {
  std::sort(values.begin(), values.end());
  const auto n = static_cast<int64_t>(values.size());
  const int64_t rank =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(n))));
  return values[static_cast<size_t>(rank - 1)];
}

TEST(LogHistogram, EmptyHistogramReportsZeros) {
  LogHistogram h;
  EXPECT_EQ(h.count(), 0);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.Quantile(0.0), 0.0);
  EXPECT_EQ(h.Quantile(0.5), 0.0);
  EXPECT_EQ(h.Quantile(1.0), 0.0);
}

TEST(LogHistogram, ValuesBelow256AreExact) {
  LogHistogram h;
  // 0, 1, ..., 255 once each: the k-th smallest (rank k + 1) is k.
  for (int64_t v = 255; v >= 0; --v) h.Add(v);
  ASSERT_EQ(h.count(), 256);
  for (int64_t k = 0; k < 256; ++k) {
    // q = (k + 1) / 256 is exact in binary, so ceil(q x 256) = k + 1.
    EXPECT_EQ(h.Quantile(static_cast<double>(k + 1) / 256.0), static_cast<double>(k)) << k;
  }
  EXPECT_EQ(h.Quantile(0.0), 0.0);
  EXPECT_EQ(h.max(), 255);
  // (0 + 255) / 2
  EXPECT_EQ(h.mean(), 127.5);
}

TEST(LogHistogram, NearestRankOfASmallSampleWorkedOutByHand) {
  LogHistogram h;
  for (int64_t v : {7, 3, 11, 5, 2, 13, 17, 19, 23, 29}) h.Add(v);
  // Sorted: 2 3 5 7 11 13 17 19 23 29.
  EXPECT_EQ(h.Quantile(0.5), 11.0);   // ceil(5.0) = 5th
  EXPECT_EQ(h.Quantile(0.51), 13.0);  // ceil(5.1) = 6th
  EXPECT_EQ(h.Quantile(0.9), 23.0);   // ceil(9.0) = 9th
  EXPECT_EQ(h.Quantile(0.99), 29.0);  // ceil(9.9) = 10th
  EXPECT_EQ(h.Quantile(0.0), 2.0);    // rank 1
  EXPECT_EQ(h.Quantile(0.1), 2.0);    // ceil(1.0) = 1st
  // (2+3+5+7+11+13+17+19+23+29) / 10 = 129 / 10
  EXPECT_EQ(h.mean(), 12.9);
}

TEST(LogHistogram, ASingleLargeValueIsReportedExactly) {
  // 1001 shares a bucket with 1000 (buckets of width 2 from 512 to 1023), but the
  // estimate is clamped to [min, max].
  LogHistogram h;
  h.Add(1001);
  EXPECT_EQ(h.Quantile(0.0), 1001.0);
  EXPECT_EQ(h.Quantile(0.5), 1001.0);
  EXPECT_EQ(h.Quantile(1.0), 1001.0);
  EXPECT_EQ(h.max(), 1001);
}

TEST(LogHistogram, QuantilesOfARandomSampleAreWithinOnePartIn256) {
  // Log-uniform nanosecond values from 1 ns to 100 s.
  std::mt19937_64 rng(42);
  std::vector<int64_t> values;
  LogHistogram h;
  for (int i = 0; i < 20'000; ++i) {
    const double exponent = 11.0 * std::ldexp(static_cast<double>(rng() >> 11), -53);  // [0, 11)
    const auto v = static_cast<int64_t>(std::pow(10.0, exponent));
    values.push_back(v);
    h.Add(v);
  }
  for (double q : {0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0}) {
    const auto truth = static_cast<double>(TrueNearestRank(values, q));
    EXPECT_LE(std::abs(h.Quantile(q) - truth), truth * std::ldexp(1.0, -8))
        << "q " << q << ": histogram " << h.Quantile(q) << ", true " << truth;
  }
  EXPECT_EQ(h.max(), *std::max_element(values.begin(), values.end()));
}

TEST(LogHistogram, QuantilesOfEveryValueUpToAMillionAreWithinOnePartIn256) {
  // Each value alone: the reported quantile must be within 2^-8 of it.
  LogHistogram all;
  for (int64_t v = 1; v <= 1 << 20; v += 97) all.Add(v);
  std::vector<int64_t> values;
  for (int64_t v = 1; v <= 1 << 20; v += 97) values.push_back(v);
  for (int i = 0; i <= 1000; ++i) {
    const double q = i / 1000.0;
    const auto truth = static_cast<double>(TrueNearestRank(values, q));
    ASSERT_LE(std::abs(all.Quantile(q) - truth), truth * std::ldexp(1.0, -8)) << "q " << q;
  }
}

TEST(LogHistogram, MeanIsExact) {
  std::mt19937_64 rng(7);
  LogHistogram h;
  int64_t sum = 0;
  const int n = 10'000;
  for (int i = 0; i < n; ++i) {
    // Up to 1e11 each: the sum stays below 2^53, so a double holds it exactly.
    const auto v = static_cast<int64_t>(rng() % 100'000'000'000ULL);
    sum += v;
    h.Add(v);
  }
  EXPECT_EQ(h.count(), n);
  EXPECT_EQ(h.mean(), static_cast<double>(sum) / n);
}

TEST(LogHistogram, AcceptsTheLargestInt64) {
  LogHistogram h;
  h.Add(std::numeric_limits<int64_t>::max());
  h.Add(0);
  EXPECT_EQ(h.max(), std::numeric_limits<int64_t>::max());
  const auto max = static_cast<double>(std::numeric_limits<int64_t>::max());
  EXPECT_LE(h.Quantile(1.0), max);
  EXPECT_GE(h.Quantile(1.0), max * (1 - std::ldexp(1.0, -8)));
  EXPECT_EQ(h.Quantile(0.5), 0.0);
}

TEST(LogHistogram, RejectsNegativeValues) {
  LogHistogram h;
  EXPECT_THROW(h.Add(-1), InvariantError);
  EXPECT_EQ(h.count(), 0);
}

}  // namespace
}  // namespace kvsim
