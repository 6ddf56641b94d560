// Tests for the roofline execution-time model: cases worked out by hand from the
// formulas of sim/timing/execution_time_model.h on a small hand-made model and GPU,
// and monotonicity in context and prompt length.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "sim/core/check.h"
#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/timing/execution_time_model.h"
#include "tests/testing/tiny_model.h"

namespace kvsim {
namespace {

// A small dense model:
//   attention params per layer = 1024 x 1024 [Q] + 2 x 1024 x 256 [K, V] + 1024 x 1024 [O]
//                              = 1,048,576 + 524,288 + 1,048,576 = 2,621,440
//   MLP params per layer       = 3 x 1024 x 4096 = 12,582,912
//   weights per layer          = 15,204,352 params x 2 bytes = 30,408,704 bytes
//   one of K or V per token per layer = 2 KV heads x 128 x 2 bytes = 512 bytes
ModelSpec TinyDense() { return ::kvsim::testing::TinyDenseModel("tiny-dense"); }
constexpr double kDenseParamsPerLayer = 2'621'440.0 + 12'582'912.0;  // 15,204,352
constexpr double kLayers = 2;
constexpr double kHidden = 1024;
constexpr double kVocab = 32000;

// A small MoE model: 8 experts of ffn 1024, top-2 routing.
//   attention params per layer = 2,621,440 + router 1024 x 8 = 2,629,632
//   params per expert          = 3 x 1024 x 1024 = 3,145,728
ModelSpec TinyMoe() {
  ModelSpec m = TinyDense();
  m.name = "tiny-moe";
  m.ffn_size = 1024;
  m.num_experts = 8;
  m.experts_per_token = 2;
  return m;
}
constexpr double kMoeAttentionParams = 2'629'632.0;
constexpr double kExpertParams = 3'145'728.0;

// Round numbers: 1 PFLOP/s, 2 TB/s, 400 GB/s links.
GpuSpec TinyGpu() {
  GpuSpec g;
  g.name = "tiny-gpu";
  g.memory_bytes = int64_t{80} << 30;
  g.bf16_flops_per_s = 1e15;
  g.hbm_bandwidth_bytes_per_s = 2e12;
  g.link_bandwidth_bytes_per_s = 4e11;
  g.host_link_bandwidth_bytes_per_s = 5e10;
  return g;
}
constexpr double kFlops = 1e15;
constexpr double kHbm = 2e12;
constexpr double kLink = 4e11;

// Efficiencies and costs chosen so the arithmetic is easy:
//   GEMMs at 0.5 x 1e15 = 5e14 FLOP/s, weight reads at 0.8 x 2e12 = 1.6e12 B/s,
//   prefill attention at 5e14 FLOP/s, decode attention at 1.6e12 B/s.
RooflineConfig EasyConfig() {
  RooflineConfig c;
  c.gemm_efficiency = 0.5;
  c.memory_efficiency = 0.8;
  c.attention_prefill_efficiency = 0.5;
  c.attention_decode_efficiency = 0.8;
  c.paged_prefill_slowdown = 1.5;
  c.paged_decode_slowdown = 2.0;
  c.block_table_entry_s = 1e-7;
  c.allreduce_latency_s = 1e-5;
  c.cpu_overhead_s = 1e-3;
  c.cpu_per_seq_s = 1e-5;
  return c;
}
constexpr double kGemm = 5e14;          // FLOP/s
constexpr double kWeightRead = 1.6e12;  // B/s
constexpr double kAttnPrefill = 5e14;   // FLOP/s
constexpr double kAttnDecode = 1.6e12;  // B/s

double Micros(Nanos t) { return static_cast<double>(t.count()) * 1e-3; }

// Four sequences decoding one token each, 4000 tokens of context in all, the longest
// 1000.
BatchWork DecodeBatch() {
  BatchWork w;
  w.num_seqs = 4;
  w.decode_tokens = 4;
  w.logit_tokens = 4;
  w.decode_context_tokens = 4000;
  w.max_context_tokens = 1000;
  return w;
}

// One prompt of `tokens` tokens computed in one chunk: tokens x (tokens + 1) / 2
// attention pairs (8,390,656 for 4096).
BatchWork PrefillBatch(int64_t tokens = 4096) {
  BatchWork w;
  w.num_seqs = 1;
  w.prefill_seqs = 1;
  w.prefill_tokens = tokens;
  w.logit_tokens = 1;
  w.prefill_attention_pairs = static_cast<double>(tokens) * static_cast<double>(tokens + 1) / 2;
  w.max_context_tokens = tokens;
  return w;
}

TEST(RooflineModel, DecodeBatchIsWeightReadsPlusKvReadsPlusLmHeadPlusCpu) {
  auto model = NewRooflineModel(TinyDense(), TinyGpu(), 1, EasyConfig());
  const BatchWork w = DecodeBatch();
  // Per layer:
  //   weights  30,408,704 B / 1.6e12 B/s = 19.00544 us
  //            (GEMMs: 2 x 4 x 15,204,352 = 121,634,816 FLOP / 5e14 = 0.24 us, less)
  //   KV read  2 x 4000 x 512 B = 4,096,000 B / 1.6e12 B/s = 2.56 us
  // LM head: 32000 x 1024 x 2 B = 65,536,000 B / 1.6e12 = 40.96 us
  //          (FLOPs: 2 x 4 x 1024 x 32000 / 5e14 = 0.52 us, less)
  // CPU: 1 ms + 4 x 10 us = 1040 us
  // Total = 2 x (19.00544 + 2.56) + 40.96 + 1040 = 1124.09088 us
  const double weights_s = kDenseParamsPerLayer * 2 / kWeightRead;
  const double gemm_s = 2 * 4 * kDenseParamsPerLayer / kGemm;
  ASSERT_GT(weights_s, 50 * gemm_s);  // weight reads dominate
  const double kv_s = 2.0 * 4000 * 512 / kAttnDecode;
  const double lm_head_s = kVocab * kHidden * 2 / kWeightRead;
  const double cpu_s = 1e-3 + 4 * 1e-5;
  const double expected_s = kLayers * (weights_s + kv_s) + lm_head_s + cpu_s;
  EXPECT_NEAR(expected_s * 1e6, 1124.09088, 1e-9);
  EXPECT_NEAR(Micros(model->IterationTime(w)), expected_s * 1e6, 1e-3);
}

TEST(RooflineModel, LargePrefillIsBoundByFlops) {
  auto model = NewRooflineModel(TinyDense(), TinyGpu(), 1, EasyConfig());
  const BatchWork w = PrefillBatch();
  // Per layer:
  //   GEMMs    2 x 4096 x 15,204,352 = 124,554,051,584 FLOP / 5e14 = 249.108103168 us
  //            (weights: 19.00544 us, less)
  //   attention 4 x 8 heads x 128 x 8,390,656 pairs = 34,368,126,976 FLOP / 5e14
  //            = 68.736253952 us
  // LM head: 40.96 us (memory-bound for one row)
  // CPU: 1000 + 10 = 1010 us
  // Total = 2 x (249.108103168 + 68.736253952) + 40.96 + 1010 = 1686.64871424 us
  const double gemm_s = 2 * 4096 * kDenseParamsPerLayer / kGemm;
  const double weights_s = kDenseParamsPerLayer * 2 / kWeightRead;
  ASSERT_GT(gemm_s, 10 * weights_s);  // FLOPs dominate
  const double attention_s = 4 * 8 * 128 * (4096.0 * 4097.0 / 2.0) / kAttnPrefill;
  const double lm_head_s = kVocab * kHidden * 2 / kWeightRead;
  const double expected_s = kLayers * (gemm_s + attention_s) + lm_head_s + 1e-3 + 1e-5;
  EXPECT_NEAR(expected_s * 1e6, 1686.64871424, 1e-9);
  EXPECT_NEAR(Micros(model->IterationTime(w)), expected_s * 1e6, 1e-3);
}

TEST(RooflineModel, PagedLayoutSlowsAttentionAndAddsTheBlockTable) {
  auto model = NewRooflineModel(TinyDense(), TinyGpu(), 1, EasyConfig());
  // A 512-token prompt chunk (no cached prefix: 512 x 513 / 2 = 131,328 pairs) with
  // the four decodes of DecodeBatch.
  BatchWork w = DecodeBatch();
  w.num_seqs = 5;
  w.prefill_seqs = 1;
  w.prefill_tokens = 512;
  w.logit_tokens = 5;
  w.prefill_attention_pairs = 512.0 * 513.0 / 2.0;
  BatchWork paged = w;
  paged.layout = AttentionLayout::kPaged;
  paged.block_tokens = 16;
  // Contiguous attention per layer:
  //   prefill 4 x 8 x 128 x 131,328 = 537,919,488 FLOP / 5e14 = 1.075838976 us
  //   decode  2.56 us
  // Paged adds (1.5 - 1) x 1.075838976 + (2.0 - 1) x 2.56 = 3.097919488 us per layer,
  // x 2 layers = 6.195838976 us, and a block table of 5 seqs x ceil(1000 / 16) = 63
  // entries x 0.1 us = 31.5 us. Difference: 37.695838976 us.
  const double prefill_s = 4 * 8 * 128 * (512.0 * 513.0 / 2.0) / kAttnPrefill;
  const double decode_s = 2.0 * 4000 * 512 / kAttnDecode;
  const double table_s = 5 * std::ceil(1000.0 / 16) * 1e-7;
  const double extra_s = kLayers * ((1.5 - 1) * prefill_s + (2.0 - 1) * decode_s) + table_s;
  EXPECT_NEAR(extra_s * 1e6, 37.695838976, 1e-9);
  const Nanos contiguous_t = model->IterationTime(w);
  const Nanos paged_t = model->IterationTime(paged);
  // Each time is rounded to the nanosecond.
  EXPECT_NEAR(Micros(paged_t) - Micros(contiguous_t), extra_s * 1e6, 2e-3);
}

TEST(RooflineModel, BlockTableCostGrowsWithBatchTimesBlocksOfTheLongestContext) {
  auto model = NewRooflineModel(TinyDense(), TinyGpu(), 1, EasyConfig());
  BatchWork w16 = DecodeBatch();
  w16.layout = AttentionLayout::kPaged;
  w16.block_tokens = 16;
  BatchWork w32 = w16;
  w32.block_tokens = 32;
  // Same kernels, different table: 4 x ceil(1000/16) = 4 x 63 = 252 entries vs
  // 4 x ceil(1000/32) = 4 x 32 = 128 entries; 124 x 0.1 us = 12.4 us.
  EXPECT_NEAR(Micros(model->IterationTime(w16)) - Micros(model->IterationTime(w32)),
              (4 * 63 - 4 * 32) * 0.1, 2e-3);
  // One more token of longest context past a block boundary adds a column:
  // ceil(1001 / 16) = 63 (same); ceil(1009 / 16) = 64 (+1 entry per seq = 0.4 us).
  BatchWork wider = w16;
  wider.max_context_tokens = 1009;
  EXPECT_NEAR(Micros(model->IterationTime(wider)) - Micros(model->IterationTime(w16)), 4 * 0.1,
              2e-3);
}

TEST(RooflineModel, TensorParallelismHalvesPerRankWorkAndAddsAllReduces) {
  auto model = NewRooflineModel(TinyDense(), TinyGpu(), 2, EasyConfig());
  const BatchWork w = DecodeBatch();
  // Per layer on one of 2 ranks:
  //   weights  30,408,704 / 2 B / 1.6e12 = 9.50272 us
  //   KV read  1 KV head per rank: 256 B per token; 2 x 4000 x 256 / 1.6e12 = 1.28 us
  //   all-reduce 2 x (10 us + 2 x (2-1)/2 x 4 tokens x 1024 x 2 B / 4e11)
  //            = 2 x (10 + 0.02048) = 20.04096 us
  // LM head: 65,536,000 / 2 / 1.6e12 = 20.48 us; CPU 1040 us.
  // Total = 2 x (9.50272 + 1.28 + 20.04096) + 20.48 + 1040 = 1122.12736 us
  const double weights_s = kDenseParamsPerLayer * 2 / 2 / kWeightRead;
  const double kv_s = 2.0 * 4000 * 256 / kAttnDecode;
  const double allreduce_s = 2 * (1e-5 + 2.0 * (2 - 1) / 2 * 4 * kHidden * 2 / kLink);
  const double lm_head_s = kVocab * kHidden * 2 / 2 / kWeightRead;
  const double expected_s =
      kLayers * (weights_s + kv_s + allreduce_s) + lm_head_s + 1e-3 + 4 * 1e-5;
  EXPECT_NEAR(expected_s * 1e6, 1122.12736, 1e-9);
  EXPECT_NEAR(Micros(model->IterationTime(w)), expected_s * 1e6, 1e-3);
}

TEST(RooflineModel, TensorParallelismNeedsALinkBandwidth) {
  GpuSpec gpu = TinyGpu();
  gpu.link_bandwidth_bytes_per_s = 0;
  EXPECT_THROW(NewRooflineModel(TinyDense(), gpu, 2, EasyConfig()), InvariantError);
  EXPECT_NO_THROW(NewRooflineModel(TinyDense(), gpu, 1, EasyConfig()));
}

// Decode of `tokens` sequences with no context, on a model without per-sequence CPU
// cost, so only the weights read change with the batch.
Nanos DecodeTime(const ExecutionTimeModel& model, int64_t tokens) {
  BatchWork w;
  w.num_seqs = tokens;
  w.decode_tokens = tokens;
  w.logit_tokens = tokens;
  return model.IterationTime(w);
}

RooflineConfig NoPerSeqCpu() {
  RooflineConfig c = EasyConfig();
  c.cpu_per_seq_s = 0;
  return c;
}

TEST(RooflineModel, MoeDecodeReadsTheExpertsItsTokensTouch) {
  auto model = NewRooflineModel(TinyMoe(), TinyGpu(), 1, NoPerSeqCpu());
  // Experts read by T tokens: 8 x (1 - (1 - 2/8)^T): T=1 -> 2, T=2 -> 3.5,
  // T=4 -> 8 x (1 - 81/256) = 5.46875.
  // Weight bytes per layer = (2,629,632 + E x 3,145,728) x 2, read at 1.6e12 B/s:
  //   T=1: (2,629,632 + 6,291,456) x 2 = 17,842,176 B -> 11.15136 us
  //   T=2: (2,629,632 + 11,010,048) x 2 = 27,279,360 B -> 17.0496 us
  // Every other term is the same (no context, memory-bound LM head, no per-seq CPU),
  // so T=2 costs 2 layers x (17.0496 - 11.15136) = 11.79648 us more than T=1.
  for (auto [t, experts] : {std::pair{1, 2.0}, std::pair{2, 3.5}, std::pair{4, 5.46875}}) {
    EXPECT_DOUBLE_EQ(8 * (1 - std::pow(1 - 2.0 / 8, t)), experts) << t;
  }
  auto weights_us = [](double experts) {
    return (kMoeAttentionParams + experts * kExpertParams) * 2 / kWeightRead * 1e6;
  };
  EXPECT_NEAR(weights_us(2.0), 11.15136, 1e-9);
  EXPECT_NEAR(weights_us(3.5), 17.0496, 1e-9);
  const double t1 = Micros(DecodeTime(*model, 1));
  const double t2 = Micros(DecodeTime(*model, 2));
  const double t4 = Micros(DecodeTime(*model, 4));
  EXPECT_NEAR(t2 - t1, kLayers * (weights_us(3.5) - weights_us(2.0)), 2e-3);
  EXPECT_NEAR(t2 - t1, 11.79648, 2e-3);
  EXPECT_NEAR(t4 - t1, kLayers * (weights_us(5.46875) - weights_us(2.0)), 2e-3);
  // T=1 in full: 2 x 11.15136 + LM head 40.96 + CPU 1000 = 1063.26272 us.
  EXPECT_NEAR(t1, 1063.26272, 1e-3);
}

TEST(RooflineModel, MoeDecodeTimeGrowsWithTokensUntilEveryExpertIsRead) {
  auto model = NewRooflineModel(TinyMoe(), TinyGpu(), 1, NoPerSeqCpu());
  double previous = 0;
  for (int64_t t = 1; t <= 32; ++t) {
    const double now = Micros(DecodeTime(*model, t));
    EXPECT_GT(now, previous) << t << " tokens";
    previous = now;
  }
  // 64 tokens read 8 x (1 - 0.75^64) = 8 - 8e-8 experts: all 8, to within 1 ns.
  const double all_experts_s =
      kLayers * (kMoeAttentionParams + 8 * kExpertParams) * 2 / kWeightRead +
      kVocab * kHidden * 2 / kWeightRead + 1e-3;
  EXPECT_NEAR(Micros(DecodeTime(*model, 64)), all_experts_s * 1e6, 2e-3);
}

TEST(RooflineModel, DenseDecodeTimeIsFlatWhileWeightReadsDominate) {
  // A dense model reads all its weights for any batch: 1 to 16 decodes cost the same
  // when nothing else depends on the batch.
  auto model = NewRooflineModel(TinyDense(), TinyGpu(), 1, NoPerSeqCpu());
  const Nanos one = DecodeTime(*model, 1);
  for (int64_t t = 2; t <= 16; ++t) EXPECT_EQ(DecodeTime(*model, t), one) << t;
}

TEST(RooflineModel, MoreDecodeContextNeverTakesLessTime) {
  auto model = NewRooflineModel(TinyDense(), TinyGpu(), 1, EasyConfig());
  for (AttentionLayout layout : {AttentionLayout::kContiguous, AttentionLayout::kPaged}) {
    Nanos previous{0};
    for (int64_t context = 0; context <= 2'000'000; context += 7919) {
      BatchWork w = DecodeBatch();
      w.layout = layout;
      w.block_tokens = 16;
      w.decode_context_tokens = context;
      w.max_context_tokens = CeilDiv(context, 4);
      const Nanos t = model->IterationTime(w);
      EXPECT_GE(t, previous) << context << " tokens of context";
      previous = t;
    }
  }
}

TEST(RooflineModel, MorePrefillTokensNeverTakeLessTime) {
  for (int64_t tp : {1, 2}) {
    auto model = NewRooflineModel(TinyDense(), TinyGpu(), tp, EasyConfig());
    Nanos previous{0};
    for (int64_t c = 1; c <= 16384; c += 37) {
      const Nanos t = model->IterationTime(PrefillBatch(c));
      EXPECT_GE(t, previous) << c << " prompt tokens, tp " << tp;
      previous = t;
    }
  }
}

TEST(RooflineModel, EveryIterationTakesPositiveTime) {
  RooflineConfig c = EasyConfig();
  c.cpu_overhead_s = 0;
  c.cpu_per_seq_s = 0;
  auto model = NewRooflineModel(TinyDense(), TinyGpu(), 1, c);
  BatchWork w;
  w.num_seqs = 1;
  EXPECT_GT(model->IterationTime(w), Nanos(0));
}

TEST(RooflineModel, RejectsAnEmptyBatch) {
  auto model = NewRooflineModel(TinyDense(), TinyGpu(), 1, EasyConfig());
  EXPECT_THROW(model->IterationTime(BatchWork{}), InvariantError);
}

}  // namespace
}  // namespace kvsim
