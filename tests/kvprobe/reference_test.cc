// kvprobe's float64 attention reference and its helpers: bf16 rounding, decode and
// causal prefill attention with grouped-query heads worked out by hand, and the error
// and percentile measures used to check and summarise the GPU runs.
#include "tools/kvprobe/host/reference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

namespace kvprobe {
namespace {

// Index of element (b, t, h, d) of a [batch][tokens][heads][head_dim] tensor.
size_t At(int tokens, int heads, int head_dim, int b, int t, int h, int d) {
  return ((static_cast<size_t>(b) * tokens + t) * heads + h) * head_dim + d;
}

// Deterministic, varied inputs in [-1, 1).
std::vector<float> Pattern(size_t n, int seed) {
  std::vector<float> out(n);
  uint32_t x = 2463534242u + static_cast<uint32_t>(seed) * 747796405u;
  for (float& v : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v = static_cast<float>(x % 2000) / 1000.0f - 1.0f;
  }
  return out;
}

// --- bf16 ---------------------------------------------------------------------------

TEST(Bf16Test, OneIsExact) {
  EXPECT_EQ(FloatToBf16(1.0f), 0x3F80);
  EXPECT_EQ(Bf16ToFloat(0x3F80), 1.0f);
}

TEST(Bf16Test, ValuesWithEightSignificantBitsRoundTripExactly) {
  for (float v : {0.0f, 0.5f, 2.0f, 3.0f, 1.5f, 255.0f, 1.0f + 1.0f / 128, 65536.0f, 0.1875f}) {
    EXPECT_EQ(Bf16ToFloat(FloatToBf16(v)), v) << v;
  }
}

TEST(Bf16Test, HalfwayAboveOneRoundsDownToEvenOne) {
  // 1 + 2^-8 lies halfway between 1 and the next bf16, 1 + 2^-7; 1 has the even mantissa.
  EXPECT_EQ(FloatToBf16(1.0f + 1.0f / 256), 0x3F80);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 1.0f / 256)), 1.0f);
}

TEST(Bf16Test, HalfwayAboveAnOddMantissaRoundsUpToEven) {
  // 1 + 3 x 2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 3.0f / 256)), 1.0f + 1.0f / 64);
}

TEST(Bf16Test, MoreThanHalfwayRoundsUp) {
  // 1 + 3 x 2^-9 = 1 + 2^-8 + 2^-9 is past the halfway point 1 + 2^-8.
  EXPECT_EQ(FloatToBf16(1.0f + 3.0f / 512), 0x3F81);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 3.0f / 512)), 1.0f + 1.0f / 128);
}

TEST(Bf16Test, LessThanHalfwayRoundsDown) {
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 1.0f / 512)), 1.0f);
}

TEST(Bf16Test, NegativeNumbersRoundLikeTheirMagnitude) {
  EXPECT_EQ(FloatToBf16(-1.0f), 0xBF80);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(-1.5f)), -1.5f);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(-(1.0f + 1.0f / 256))), -1.0f);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(-(1.0f + 3.0f / 512))), -(1.0f + 1.0f / 128));
  EXPECT_EQ(FloatToBf16(-0.0f), 0x8000);
}

TEST(Bf16Test, NanStaysNan) {
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(-std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload lies only in the low 16 bits would truncate to infinity.
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::numeric_limits<float>::signaling_NaN()))));
  float low_payload_nan;
  const uint32_t bits = 0x7F800001u;
  std::memcpy(&low_payload_nan, &bits, sizeof bits);
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(low_payload_nan))));
}

TEST(Bf16Test, InfinitiesStayInfinite) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(inf)), inf);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(-inf)), -inf);
}

TEST(Bf16Test, LargestFloatRoundsToInfinity) {
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(std::numeric_limits<float>::max())),
            std::numeric_limits<float>::infinity());
}

// --- decode attention ---------------------------------------------------------------

TEST(DecodeAttentionTest, IdenticalKeysGiveTheMeanOfTheValues) {
  const AttentionShape s{.batch = 1, .q_heads = 1, .kv_heads = 1, .head_dim = 2};
  const std::vector<float> q = {0.3f, -0.7f};
  const std::vector<float> k = {1, 2, 1, 2, 1, 2};
  const std::vector<float> v = {1, 2, 3, 4, 5, 9};
  const std::vector<double> out = DecodeAttentionReference(s, 3, {3}, q, k, v);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_NEAR(out[0], (1 + 3 + 5) / 3.0, 1e-12);
  EXPECT_NEAR(out[1], (2 + 4 + 9) / 3.0, 1e-12);
}

TEST(DecodeAttentionTest, ScoresAreScaledByTheSquareRootOfTheHeadDim) {
  // head_dim 4: score = q.k / 2. Token 1's key gives q.k = 2 ln 3, so score ln 3 and
  // weights 1/4 and 3/4 against token 0's score 0: out = 4/4 + 3 x 8/4 = 7.
  const AttentionShape s{.batch = 1, .q_heads = 1, .kv_heads = 1, .head_dim = 4};
  const float a = static_cast<float>(std::log(3.0) / 2);
  const std::vector<float> q = {1, 1, 1, 1};
  const std::vector<float> k = {0, 0, 0, 0, a, a, a, a};
  const std::vector<float> v = {4, 4, 4, 4, 8, 8, 8, 8};
  const std::vector<double> out = DecodeAttentionReference(s, 2, {2}, q, k, v);
  for (double x : out) EXPECT_NEAR(x, 7.0, 1e-6);
}

TEST(DecodeAttentionTest, OneMuchLargerKeyGivesThatTokensValue) {
  const AttentionShape s{.batch = 1, .q_heads = 1, .kv_heads = 1, .head_dim = 2};
  const std::vector<float> q = {1, 1};
  const std::vector<float> k = {0, 0, 100, 100, 0.5f, -0.5f, 1, 1};
  const std::vector<float> v = {1, 2, -3, 7, 5, 6, 8, 9};
  const std::vector<double> out = DecodeAttentionReference(s, 4, {4}, q, k, v);
  EXPECT_NEAR(out[0], -3.0, 1e-12);
  EXPECT_NEAR(out[1], 7.0, 1e-12);
}

TEST(DecodeAttentionTest, GroupedQueryHeadsReadTheirOwnKvHead) {
  // q_heads 4, kv_heads 2: heads 0 and 1 read KV head 0, heads 2 and 3 read KV head 1.
  // Heads 0 and 2 pick token 0, heads 1 and 3 token 1; every (token, KV head) value differs.
  const AttentionShape s{.batch = 1, .q_heads = 4, .kv_heads = 2, .head_dim = 2};
  const std::vector<float> q = {50, 0, 0, 50, 50, 0, 0, 50};
  // [token][kv_head][dim]
  const std::vector<float> k = {1, 0, 1, 0, 0, 1, 0, 1};
  const std::vector<float> v = {1, 2, 5, 6, 3, 4, 7, 8};
  const std::vector<double> out = DecodeAttentionReference(s, 2, {2}, q, k, v);
  const std::vector<double> want = {1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_EQ(out.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(out[i], want[i], 1e-9) << i;
}

TEST(DecodeAttentionTest, TokensBeyondTheContextLengthHaveNoEffect) {
  const AttentionShape s{.batch = 2, .q_heads = 2, .kv_heads = 1, .head_dim = 4};
  const int max_context = 5;
  const std::vector<float> q = Pattern(2 * 2 * 4, 1);
  std::vector<float> k = Pattern(2 * max_context * 4, 2);
  std::vector<float> v = Pattern(2 * max_context * 4, 3);
  const std::vector<double> before = DecodeAttentionReference(s, max_context, {2, 5}, q, k, v);
  // Tokens 2..4 of sequence 0 get keys that would win every score and wild values.
  for (int t = 2; t < max_context; ++t) {
    for (int d = 0; d < 4; ++d) {
      k[At(max_context, 1, 4, 0, t, 0, d)] = 1000;
      v[At(max_context, 1, 4, 0, t, 0, d)] = 1e6f;
    }
  }
  const std::vector<double> after = DecodeAttentionReference(s, max_context, {2, 5}, q, k, v);
  EXPECT_EQ(after, before);
}

TEST(DecodeAttentionTest, ContextLengthsAreReadPerSequence) {
  // Both sequences hold identical keys, so each averages its first context_lens[b] values.
  const AttentionShape s{.batch = 2, .q_heads = 1, .kv_heads = 1, .head_dim = 1};
  const std::vector<float> q = {1, 1};
  const std::vector<float> k(2 * 4, 0.5f);
  const std::vector<float> v = {2, 4, 6, 8, 10, 20, 30, 40};
  const std::vector<double> out = DecodeAttentionReference(s, 4, {1, 3}, q, k, v);
  EXPECT_NEAR(out[0], 2.0, 1e-12);
  EXPECT_NEAR(out[1], 20.0, 1e-12);
}

TEST(DecodeAttentionTest, MismatchedInputSizesThrow) {
  const AttentionShape s{.batch = 2, .q_heads = 2, .kv_heads = 1, .head_dim = 4};
  const std::vector<float> q(2 * 2 * 4), kv(2 * 3 * 1 * 4);
  EXPECT_NO_THROW(DecodeAttentionReference(s, 3, {3, 3}, q, kv, kv));
  EXPECT_THROW(DecodeAttentionReference(s, 3, {3}, q, kv, kv), std::invalid_argument);
  EXPECT_THROW(DecodeAttentionReference(s, 3, {3, 3, 3}, q, kv, kv), std::invalid_argument);
  EXPECT_THROW(DecodeAttentionReference(s, 3, {3, 3}, std::vector<float>(15), kv, kv),
               std::invalid_argument);
  EXPECT_THROW(DecodeAttentionReference(s, 3, {3, 3}, q, std::vector<float>(25), kv),
               std::invalid_argument);
  EXPECT_THROW(DecodeAttentionReference(s, 3, {3, 3}, q, kv, std::vector<float>(23)),
               std::invalid_argument);
  EXPECT_THROW(DecodeAttentionReference(s, 4, {3, 3}, q, kv, kv), std::invalid_argument);
}

TEST(DecodeAttentionTest, ContextLengthsOutsideOneToMaxContextThrow) {
  const AttentionShape s{.batch = 1, .q_heads = 1, .kv_heads = 1, .head_dim = 1};
  const std::vector<float> q(1), kv(3);
  EXPECT_THROW(DecodeAttentionReference(s, 3, {0}, q, kv, kv), std::invalid_argument);
  EXPECT_THROW(DecodeAttentionReference(s, 3, {4}, q, kv, kv), std::invalid_argument);
  EXPECT_THROW(DecodeAttentionReference(s, 3, {-1}, q, kv, kv), std::invalid_argument);
}

TEST(DecodeAttentionTest, BadShapesThrow) {
  const std::vector<float> q(3 * 2), kv(3 * 2 * 2);
  const AttentionShape ungrouped{.batch = 1, .q_heads = 3, .kv_heads = 2, .head_dim = 2};
  EXPECT_THROW(DecodeAttentionReference(ungrouped, 3, {3}, q, kv, kv), std::invalid_argument);
  const AttentionShape no_heads{.batch = 1, .q_heads = 0, .kv_heads = 1, .head_dim = 2};
  EXPECT_THROW(DecodeAttentionReference(no_heads, 1, {1}, {}, {0, 0}, {0, 0}),
               std::invalid_argument);
}

// --- prefill attention --------------------------------------------------------------

TEST(PrefillAttentionTest, FirstTokenSeesOnlyItselfSoItsOutputIsItsValue) {
  const AttentionShape s{.batch = 2, .q_heads = 4, .kv_heads = 2, .head_dim = 8};
  const int tokens = 5;
  const std::vector<float> q = Pattern(2 * tokens * 4 * 8, 4);
  const std::vector<float> k = Pattern(2 * tokens * 2 * 8, 5);
  const std::vector<float> v = Pattern(2 * tokens * 2 * 8, 6);
  const std::vector<double> out = PrefillAttentionReference(s, tokens, q, k, v);
  for (int b = 0; b < 2; ++b) {
    for (int h = 0; h < 4; ++h) {
      for (int d = 0; d < 8; ++d) {
        EXPECT_EQ(out[At(tokens, 4, 8, b, 0, h, d)],
                  static_cast<double>(v[At(tokens, 2, 8, b, 0, h / 2, d)]))
            << "b " << b << " h " << h << " d " << d;
      }
    }
  }
}

TEST(PrefillAttentionTest, EveryRowEqualsDecodeOverTheTokensUpToIt) {
  const AttentionShape s{.batch = 2, .q_heads = 4, .kv_heads = 2, .head_dim = 8};
  const int tokens = 6;
  const std::vector<float> q = Pattern(2 * tokens * 4 * 8, 7);
  const std::vector<float> k = Pattern(2 * tokens * 2 * 8, 8);
  const std::vector<float> v = Pattern(2 * tokens * 2 * 8, 9);
  const std::vector<double> prefill = PrefillAttentionReference(s, tokens, q, k, v);
  for (int i = 0; i < tokens; ++i) {
    SCOPED_TRACE(i);
    // Token i's queries of both sequences, as a decode batch over the whole cache.
    std::vector<float> qi;
    for (int b = 0; b < 2; ++b) {
      const auto row = q.begin() + static_cast<std::ptrdiff_t>(At(tokens, 4, 8, b, i, 0, 0));
      qi.insert(qi.end(), row, row + 4 * 8);
    }
    const std::vector<double> decode =
        DecodeAttentionReference(s, tokens, {i + 1, i + 1}, qi, k, v);
    for (int b = 0; b < 2; ++b) {
      for (int j = 0; j < 4 * 8; ++j) {
        EXPECT_DOUBLE_EQ(prefill[At(tokens, 4, 8, b, i, 0, 0) + j], decode[b * 4 * 8 + j]);
      }
    }
  }
}

TEST(PrefillAttentionTest, LastRowEqualsDecodeOverTheWholeSequence) {
  const AttentionShape s{.batch = 1, .q_heads = 2, .kv_heads = 1, .head_dim = 4};
  const int tokens = 4;
  const std::vector<float> q = Pattern(tokens * 2 * 4, 10);
  const std::vector<float> k = Pattern(tokens * 4, 11);
  const std::vector<float> v = Pattern(tokens * 4, 12);
  const std::vector<double> prefill = PrefillAttentionReference(s, tokens, q, k, v);
  const std::vector<float> last(q.end() - 2 * 4, q.end());
  const std::vector<double> decode = DecodeAttentionReference(s, tokens, {tokens}, last, k, v);
  const std::vector<double> last_row(prefill.end() - 2 * 4, prefill.end());
  EXPECT_EQ(last_row, decode);
}

TEST(PrefillAttentionTest, LaterTokensDoNotChangeEarlierRows) {
  const AttentionShape s{.batch = 1, .q_heads = 1, .kv_heads = 1, .head_dim = 4};
  const int tokens = 4;
  const std::vector<float> q = Pattern(tokens * 4, 13);
  std::vector<float> k = Pattern(tokens * 4, 14);
  std::vector<float> v = Pattern(tokens * 4, 15);
  const std::vector<double> before = PrefillAttentionReference(s, tokens, q, k, v);
  for (int d = 0; d < 4; ++d) {
    k[3 * 4 + d] = 1000;
    v[3 * 4 + d] = 1e6f;
  }
  const std::vector<double> after = PrefillAttentionReference(s, tokens, q, k, v);
  EXPECT_EQ(std::vector<double>(after.begin(), after.begin() + 3 * 4),
            std::vector<double>(before.begin(), before.begin() + 3 * 4));
  EXPECT_NE(after[3 * 4], before[3 * 4]);
}

TEST(PrefillAttentionTest, MismatchedInputSizesThrow) {
  const AttentionShape s{.batch = 1, .q_heads = 2, .kv_heads = 1, .head_dim = 4};
  const std::vector<float> q(3 * 2 * 4), kv(3 * 1 * 4);
  EXPECT_NO_THROW(PrefillAttentionReference(s, 3, q, kv, kv));
  EXPECT_THROW(PrefillAttentionReference(s, 4, q, kv, kv), std::invalid_argument);
  EXPECT_THROW(PrefillAttentionReference(s, 3, std::vector<float>(23), kv, kv),
               std::invalid_argument);
  EXPECT_THROW(PrefillAttentionReference(s, 3, q, std::vector<float>(24), kv),
               std::invalid_argument);
  EXPECT_THROW(PrefillAttentionReference(s, 3, q, kv, std::vector<float>(11)),
               std::invalid_argument);
  EXPECT_THROW(PrefillAttentionReference(s, 0, {}, {}, {}), std::invalid_argument);
  const AttentionShape ungrouped{.batch = 1, .q_heads = 2, .kv_heads = 3, .head_dim = 4};
  EXPECT_THROW(PrefillAttentionReference(ungrouped, 1, std::vector<float>(8),
                                         std::vector<float>(12), std::vector<float>(12)),
               std::invalid_argument);
}

// --- MaxRelativeError ---------------------------------------------------------------

TEST(MaxRelativeErrorTest, IsTheLargestDifferenceOverTheLargestMagnitude) {
  // Differences 0, 0.5, 1; largest |want| 4: 1 / 4.
  EXPECT_DOUBLE_EQ(MaxRelativeError({1.0f, 2.5f, -3.0f}, {1.0, 2.0, -4.0}), 0.25);
}

TEST(MaxRelativeErrorTest, EqualInputsHaveNoError) {
  EXPECT_EQ(MaxRelativeError({1.5f, -2.0f}, {1.5, -2.0}), 0.0);
  EXPECT_EQ(MaxRelativeError({}, {}), 0.0);
}

TEST(MaxRelativeErrorTest, AllZeroInputsHaveNoError) {
  EXPECT_EQ(MaxRelativeError({0.0f, 0.0f}, {0.0, 0.0}), 0.0);
}

TEST(MaxRelativeErrorTest, AnyErrorAgainstAllZerosIsInfinite) {
  EXPECT_EQ(MaxRelativeError({0.0f, 1e-6f}, {0.0, 0.0}), std::numeric_limits<double>::infinity());
}

TEST(MaxRelativeErrorTest, NonFiniteResultsAreInfinitelyWrong) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(MaxRelativeError({1.0f, std::numeric_limits<float>::quiet_NaN()}, {1.0, 1.0}), inf);
  EXPECT_EQ(MaxRelativeError({std::numeric_limits<float>::infinity()}, {1.0}), inf);
}

TEST(MaxRelativeErrorTest, MismatchedSizesThrow) {
  EXPECT_THROW(MaxRelativeError({1.0f}, {1.0, 2.0}), std::invalid_argument);
}

// --- Percentile ---------------------------------------------------------------------

TEST(PercentileTest, IsTheNearestRankOfTheSortedValues) {
  // Sorted: 15 20 35 40 50. Rank ceil(q n), at least 1.
  const std::vector<double> values = {50, 15, 40, 20, 35};
  EXPECT_EQ(Percentile(values, 0.0), 15);
  EXPECT_EQ(Percentile(values, 0.05), 15);  // rank ceil(0.25) = 1
  EXPECT_EQ(Percentile(values, 0.3), 20);   // rank ceil(1.5) = 2
  EXPECT_EQ(Percentile(values, 0.4), 20);   // rank 2 exactly
  EXPECT_EQ(Percentile(values, 0.5), 35);   // rank ceil(2.5) = 3
  EXPECT_EQ(Percentile(values, 0.8), 40);   // rank 4 exactly
  EXPECT_EQ(Percentile(values, 1.0), 50);
}

TEST(PercentileTest, OneValueIsEveryPercentile) {
  EXPECT_EQ(Percentile({7.5}, 0.0), 7.5);
  EXPECT_EQ(Percentile({7.5}, 0.99), 7.5);
}

TEST(PercentileTest, KvprobesPercentilesOfOneToAHundredAreTheirRanks) {
  std::vector<double> values;
  for (int i = 100; i >= 1; --i) values.push_back(i);
  EXPECT_EQ(Percentile(values, 0.10), 10);
  EXPECT_EQ(Percentile(values, 0.50), 50);
  EXPECT_EQ(Percentile(values, 0.90), 90);
  EXPECT_EQ(Percentile(values, 0.99), 99);
}

TEST(PercentileTest, EveryWholePercentOfOneToAHundredIsItsRank) {
  // The k-th percentile of 1..100 is k: rank ceil(k/100 x 100) = k.
  std::vector<double> values;
  for (int i = 1; i <= 100; ++i) values.push_back(i);
  for (int k = 1; k <= 100; ++k) EXPECT_EQ(Percentile(values, k / 100.0), k) << "q = " << k << "%";
}

TEST(PercentileTest, NoValuesThrow) { EXPECT_THROW(Percentile({}, 0.5), std::invalid_argument); }

}  // namespace
}  // namespace kvprobe
