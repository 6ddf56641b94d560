// Tests for the fixed-cost execution-time model:
// per_iteration + per_prefill_token x prefill + per_decode_token x decode.
#include <gtest/gtest.h>

#include <cstdint>

#include "sim/core/check.h"
#include "sim/timing/execution_time_model.h"

namespace kvsim {
namespace {

FixedTimeConfig Config(int64_t per_iteration_ns, int64_t per_prefill_ns, int64_t per_decode_ns) {
  FixedTimeConfig c;
  c.per_iteration = Nanos(per_iteration_ns);
  c.per_prefill_token = Nanos(per_prefill_ns);
  c.per_decode_token = Nanos(per_decode_ns);
  return c;
}

BatchWork Work(int64_t seqs, int64_t prefill_tokens, int64_t decode_tokens) {
  BatchWork w;
  w.num_seqs = seqs;
  w.prefill_tokens = prefill_tokens;
  w.decode_tokens = decode_tokens;
  w.logit_tokens = seqs;
  return w;
}

TEST(FixedTimeModel, AddsPerIterationPerPrefillTokenAndPerDecodeTokenCosts) {
  // 1 ms + 100 x 2 us + 7 x 30 us = 1000 + 200 + 210 us = 1.41 ms.
  auto model = NewFixedTimeModel(Config(1'000'000, 2'000, 30'000));
  EXPECT_EQ(model->IterationTime(Work(8, 100, 7)), Nanos(1'000'000 + 100 * 2'000 + 7 * 30'000));
  EXPECT_EQ(model->IterationTime(Work(8, 100, 7)), Nanos(1'410'000));
}

TEST(FixedTimeModel, ChargesOnlyPerIterationForAnEmptyIteration) {
  auto model = NewFixedTimeModel(Config(1'000'000, 2'000, 30'000));
  EXPECT_EQ(model->IterationTime(Work(1, 0, 0)), Nanos(1'000'000));
}

TEST(FixedTimeModel, IsExactlyLinearInEachTokenCount) {
  auto model = NewFixedTimeModel(Config(500'000, 3'000, 25'000));
  for (int64_t p = 0; p <= 4096; p += 512) {
    for (int64_t d = 0; d <= 256; d += 32) {
      EXPECT_EQ(model->IterationTime(Work(1 + d, p, d)), Nanos(500'000 + p * 3'000 + d * 25'000))
          << p << " prefill, " << d << " decode";
    }
  }
}

TEST(FixedTimeModel, IgnoresContextLayoutAndBatchShape) {
  auto model = NewFixedTimeModel(Config(1'000'000, 2'000, 30'000));
  BatchWork plain = Work(4, 64, 3);
  BatchWork busy = plain;
  busy.num_seqs = 40;
  busy.prefill_seqs = 2;
  busy.prefill_attention_pairs = 1e9;
  busy.decode_context_tokens = 1'000'000;
  busy.max_context_tokens = 100'000;
  busy.layout = AttentionLayout::kPaged;
  busy.block_tokens = 16;
  EXPECT_EQ(model->IterationTime(busy), model->IterationTime(plain));
}

TEST(FixedTimeModel, DefaultsToOneMillisecondPerIteration) {
  auto model = NewFixedTimeModel(FixedTimeConfig{});
  EXPECT_EQ(model->IterationTime(Work(3, 500, 2)), Nanos(1'000'000));
}

TEST(FixedTimeModel, NeverReturnsZeroTime) {
  auto model = NewFixedTimeModel(Config(0, 0, 0));
  EXPECT_EQ(model->IterationTime(Work(1, 10, 1)), Nanos(1));
}

TEST(FixedTimeModel, RejectsNegativeCostsAndEmptyBatches) {
  EXPECT_THROW(NewFixedTimeModel(Config(-1, 0, 0)), InvariantError);
  EXPECT_THROW(NewFixedTimeModel(Config(0, -1, 0)), InvariantError);
  EXPECT_THROW(NewFixedTimeModel(Config(0, 0, -1)), InvariantError);
  auto model = NewFixedTimeModel(FixedTimeConfig{});
  EXPECT_THROW(model->IterationTime(Work(0, 0, 0)), InvariantError);
}

}  // namespace
}  // namespace kvsim
