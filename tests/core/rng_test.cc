// Tests for Rng: reproducible streams and the moments of its distributions.
#include "sim/core/rng.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "sim/core/check.h"

namespace kvsim {
namespace {

struct Moments {
  double mean = 0;
  double cv = 0;  // standard deviation / mean
};

template <typename Draw>
Moments SampleMoments(int n, Draw draw) {
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < n; ++i) {
    const double x = draw();
    sum += x;
    sum_sq += x * x;
  }
  Moments m;
  m.mean = sum / n;
  const double var = (sum_sq - n * m.mean * m.mean) / (n - 1);
  m.cv = std::sqrt(var) / m.mean;
  return m;
}

TEST(Rng, SameSeedAndStreamGiveTheSameSequence) {
  Rng a(42, RngStream::kArrivals);
  Rng b(42, RngStream::kArrivals);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a.NextU64(), b.NextU64()) << "draw " << i;
  Rng c(42, RngStream::kLengths);
  Rng d(42, RngStream::kLengths);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(c.Exponential(2.0), d.Exponential(2.0));
}

TEST(Rng, DifferentStreamsOrSeedsGiveDifferentSequences) {
  auto first_draws = [](uint64_t seed, RngStream stream) {
    Rng rng(seed, stream);
    std::vector<uint64_t> v;
    for (int i = 0; i < 16; ++i) v.push_back(rng.NextU64());
    return v;
  };
  const auto arrivals = first_draws(7, RngStream::kArrivals);
  EXPECT_NE(arrivals, first_draws(7, RngStream::kLengths));
  EXPECT_NE(arrivals, first_draws(7, RngStream::kRouter));
  EXPECT_NE(first_draws(7, RngStream::kLengths), first_draws(7, RngStream::kRouter));
  EXPECT_NE(arrivals, first_draws(8, RngStream::kArrivals));
  EXPECT_NE(first_draws(0, RngStream::kArrivals), first_draws(1, RngStream::kArrivals));
}

TEST(Rng, Uniform01StaysInTheHalfOpenUnitInterval) {
  Rng rng(1, RngStream::kArrivals);
  double lo = 1, hi = 0, sum = 0;
  constexpr int kDraws = 1'000'000;
  for (int i = 0; i < kDraws; ++i) {
    const double u = rng.Uniform01();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    sum += u;
  }
  EXPECT_LT(lo, 1e-5);
  EXPECT_GT(hi, 1 - 1e-5);
  EXPECT_NEAR(sum / kDraws, 0.5, 0.002);
}

TEST(Rng, UniformIntCoversItsInclusiveRangeEvenly) {
  Rng rng(3, RngStream::kLengths);
  std::map<int64_t, int> counts;
  constexpr int kDraws = 70'000;
  for (int i = 0; i < kDraws; ++i) {
    const int64_t v = rng.UniformInt(-3, 3);
    ASSERT_GE(v, -3);
    ASSERT_LE(v, 3);
    ++counts[v];
  }
  ASSERT_EQ(counts.size(), 7u);
  for (const auto& [value, count] : counts) {
    EXPECT_NEAR(count, kDraws / 7, kDraws / 7 * 0.05) << "value " << value;
  }
  EXPECT_EQ(rng.UniformInt(5, 5), 5);
  EXPECT_THROW(rng.UniformInt(2, 1), InvariantError);
}

TEST(Rng, ExponentialHasTheRequestedMeanAndAnUntruncatedTail) {
  Rng rng(11, RngStream::kArrivals);
  constexpr int kDraws = 200'000;
  constexpr double kMean = 2.0;
  double sum = 0, max = 0;
  int beyond_3_means = 0;
  for (int i = 0; i < kDraws; ++i) {
    const double x = rng.Exponential(kMean);
    ASSERT_GE(x, 0.0);
    sum += x;
    max = std::max(max, x);
    if (x > 3 * kMean) ++beyond_3_means;
  }
  EXPECT_NEAR(sum / kDraws, kMean, 0.02 * kMean);
  // P(X > 3 mean) = e^-3 for an exponential.
  EXPECT_NEAR(static_cast<double>(beyond_3_means) / kDraws, std::exp(-3.0), 0.1 * std::exp(-3.0));
  // About 67 of 200k draws exceed 8 means; a truncated sampler would have none.
  EXPECT_GT(max, 8 * kMean);
}

TEST(Rng, GammaMatchesMeanAndCoefficientOfVariation) {
  for (double cv : {0.5, 2.0}) {
    Rng rng(5, RngStream::kArrivals);
    const double mean = 0.25;
    const double shape = 1 / (cv * cv);
    const double scale = mean / shape;
    const Moments m = SampleMoments(200'000, [&] { return rng.Gamma(shape, scale); });
    EXPECT_NEAR(m.mean, mean, 0.02 * mean) << "cv " << cv;
    EXPECT_NEAR(m.cv, cv, 0.03 * cv) << "cv " << cv;
  }
}

TEST(Rng, GammaWithShapeOneIsExponential) {
  Rng rng(9, RngStream::kArrivals);
  const Moments m = SampleMoments(200'000, [&] { return rng.Gamma(1.0, 3.0); });
  EXPECT_NEAR(m.mean, 3.0, 0.06);
  EXPECT_NEAR(m.cv, 1.0, 0.02);
}

TEST(Rng, NormalHasZeroMeanAndUnitVariance) {
  Rng rng(13, RngStream::kRouter);
  double sum = 0, sum_sq = 0;
  constexpr int kDraws = 200'000;
  for (int i = 0; i < kDraws; ++i) {
    const double x = rng.Normal();
    sum += x;
    sum_sq += x * x;
  }
  EXPECT_NEAR(sum / kDraws, 0.0, 0.01);
  EXPECT_NEAR(sum_sq / kDraws, 1.0, 0.02);
}

}  // namespace
}  // namespace kvsim
