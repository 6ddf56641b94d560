// Tests for the roofline execution-time model: cases worked out by hand from the
// formulas of sim/timing/execution_time_model.h on a small hand-made model and GPU,
// and monotonicity in context and prompt length.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

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

// TinyGpu's round numbers: 1 PFLOP/s, 2 TB/s, 400 GB/s links.
using ::kvsim::testing::TinyGpu;
constexpr double kLink = 4e11;

// Efficiencies chosen so the arithmetic is easy:
//   GEMMs at 0.5 x 1e15 = 5e14 FLOP/s, weight reads at 0.8 x 2e12 = 1.6e12 B/s,
//   prefill attention at 5e14 FLOP/s, decode attention at 1.6e12 B/s.
RooflineConfig EasyConfig() {
  return {.gemm_efficiency = 0.5,
          .memory_efficiency = 0.8,
          .attention_prefill_efficiency = 0.5,
          .attention_decode_efficiency = 0.8};
}
constexpr double kGemm = 5e14;          // FLOP/s
constexpr double kWeightRead = 1.6e12;  // B/s
constexpr double kAttnPrefill = 5e14;   // FLOP/s
constexpr double kAttnDecode = 1.6e12;  // B/s

// Every engine term zero (preset none).
CostConfig NoEngineCosts() {
  CostConfig c;
  c.engine = EnginePresetDefaults(EngineConfig::Preset::kNone);
  return c;
}

// Shared cost terms with round numbers, every field set (preset none, then):
//   1 ms per iteration, 10 us per sequence, 0.1 us per block-table entry, no per-token
//   CPU, no kernel gaps, CUDA graphs (no eager launch bound);
//   all-reduce 10 us + 2 (tp-1)/tp x bytes / (4e11 x 1.0);
//   paged attention through flash_paged: decode x (1 + 2 / block), prefill x 1.37.
CostConfig EasyCosts() {
  CostConfig c;
  c.engine = EnginePresetDefaults(EngineConfig::Preset::kNone);
  c.engine.per_iteration_s = 1e-3;
  c.engine.per_seq_s = 1e-5;
  c.engine.per_prefill_token_s = 0;
  c.engine.block_table_entry_s = 1e-7;
  c.engine.cuda_graphs = true;
  c.engine.launch_per_layer_s = 0;
  c.engine.kernel_gap_s = 0;
  c.allreduce = {.latency_s = 1e-5, .bus_efficiency = 1.0};
  c.paged_kernel = PagedKernel::kFlashPaged;
  c.paged = true;
  return c;
}

// The small per-layer kernels (norms, RoPE, activation, KV write) stream, per token
// and layer, b x (8 hidden + 2 (heads + kv_heads)/tp head_dim + 3 ffn/tp
// + 4 kv_heads/tp head_dim) bytes at the weight-read bandwidth (1.6e12 B/s), the
// activation term 3 k ffn/tp for k experts per token:
//   TP 1: 2 x (8,192 + 2 x 10 x 128 + 12,288 + 4 x 2 x 128) = 2 x 24,064 = 48,128 B
//   TP 2: 2 x (8,192 + 2 x 5 x 128 + 6,144 + 4 x 1 x 128)   = 2 x 16,128 = 32,256 B
//   MoE (ffn 1024, k 2), TP 1: 2 x (8,192 + 2,560 + 6,144 + 1,024) = 2 x 17,920 = 35,840 B
constexpr double kSmallBytesPerToken = 48'128.0;
constexpr double kSmallBytesPerTokenTp2 = 32'256.0;
constexpr double kMoeSmallBytesPerToken = 35'840.0;

std::unique_ptr<ExecutionTimeModel> Easy(const ModelSpec& model, int64_t tp = 1,
                                         const CostConfig& costs = EasyCosts()) {
  return NewRooflineModel(model, TinyGpu(), tp, EasyConfig(), costs);
}

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

TEST(RooflineModel, DecodeBatchIsWeightReadsPlusKvReadsPlusSmallKernelsPlusLmHeadPlusCpu) {
  auto model = Easy(TinyDense());
  const BatchWork w = DecodeBatch();
  // Per layer:
  //   weights  30,408,704 B / 1.6e12 B/s = 19.00544 us
  //            (GEMMs: 2 x 4 x 15,204,352 = 121,634,816 FLOP / 5e14 = 0.24 us, less)
  //   KV read  2 x 4000 x 512 B = 4,096,000 B / 1.6e12 B/s = 2.56 us
  //   small    4 tokens x 48,128 B = 192,512 B / 1.6e12 B/s = 0.12032 us
  // LM head: 32000 x 1024 x 2 B = 65,536,000 B / 1.6e12 = 40.96 us
  //          (FLOPs: 2 x 4 x 1024 x 32000 / 5e14 = 0.52 us, less)
  // CPU: 1 ms + 4 x 10 us = 1040 us
  // Total = 2 x (19.00544 + 2.56 + 0.12032) + 40.96 + 1040 = 1124.33152 us
  const double weights_s = kDenseParamsPerLayer * 2 / kWeightRead;
  const double gemm_s = 2 * 4 * kDenseParamsPerLayer / kGemm;
  ASSERT_GT(weights_s, 50 * gemm_s);  // weight reads dominate
  const double kv_s = 2.0 * 4000 * 512 / kAttnDecode;
  const double small_s = 4 * kSmallBytesPerToken / kWeightRead;
  const double lm_head_s = kVocab * kHidden * 2 / kWeightRead;
  const double cpu_s = 1e-3 + 4 * 1e-5;
  const double expected_s = kLayers * (weights_s + kv_s + small_s) + lm_head_s + cpu_s;
  EXPECT_NEAR(expected_s * 1e6, 1124.33152, 1e-9);
  EXPECT_NEAR(Micros(model->IterationTime(w)), expected_s * 1e6, 1e-3);
}

TEST(RooflineModel, DecodeReadsEveryKvTokenOncePerLayer) {
  auto model = Easy(TinyDense());
  BatchWork w = DecodeBatch();
  const Nanos base = model->IterationTime(w);
  // 1000 more KV tokens: K and V of 512 B each per layer, 2 x 1000 x 512 B / 1.6e12 B/s
  // = 0.64 us per layer, 1.28 us over 2 layers; nothing else depends on the context.
  w.decode_context_tokens += 1000;
  EXPECT_NEAR(Micros(model->IterationTime(w)) - Micros(base),
              kLayers * 2 * 1000 * 512 / kAttnDecode * 1e6, 2e-3);
  EXPECT_NEAR(kLayers * 2 * 1000 * 512 / kAttnDecode * 1e6, 1.28, 1e-12);
}

TEST(RooflineModel, LargePrefillIsBoundByFlops) {
  auto model = Easy(TinyDense());
  const BatchWork w = PrefillBatch();
  // Per layer:
  //   GEMMs    2 x 4096 x 15,204,352 = 124,554,051,584 FLOP / 5e14 = 249.108103168 us
  //            (weights: 19.00544 us, less)
  //   attention 4 x 8 heads x 128 x 8,390,656 pairs = 34,368,126,976 FLOP / 5e14
  //            = 68.736253952 us
  //   small    4096 x 48,128 B = 197,132,288 B / 1.6e12 = 123.20768 us
  // LM head: 40.96 us (memory-bound for one row)
  // CPU: 1000 + 10 = 1010 us
  // Total = 2 x (249.108103168 + 68.736253952 + 123.20768) + 40.96 + 1010
  //       = 1933.06407424 us
  const double gemm_s = 2 * 4096 * kDenseParamsPerLayer / kGemm;
  const double weights_s = kDenseParamsPerLayer * 2 / kWeightRead;
  ASSERT_GT(gemm_s, 10 * weights_s);  // FLOPs dominate
  const double attention_s = 4 * 8 * 128 * (4096.0 * 4097.0 / 2.0) / kAttnPrefill;
  const double small_s = 4096 * kSmallBytesPerToken / kWeightRead;
  const double lm_head_s = kVocab * kHidden * 2 / kWeightRead;
  const double expected_s = kLayers * (gemm_s + attention_s + small_s) + lm_head_s + 1e-3 + 1e-5;
  EXPECT_NEAR(expected_s * 1e6, 1933.06407424, 1e-9);
  EXPECT_NEAR(Micros(model->IterationTime(w)), expected_s * 1e6, 1e-3);
}

// fp8 weights: half the bytes per weight read; the LM head stays 16-bit.
//   per layer: 30,408,704 / 2 B / 1.6e12 B/s = 9.50272 us (was 19.00544)
//   total = 2 x (9.50272 + 2.56 + 0.12032) + 40.96 + 1040 = 1105.32608 us
TEST(RooflineModel, Fp8WeightsHalveTheWeightReadsButNotTheLmHead) {
  ModelSpec m = TinyDense();
  m.weight_dtype_bytes = 1;
  EXPECT_NEAR(Micros(Easy(m)->IterationTime(DecodeBatch())), 1105.32608, 1e-3);
}

// An fp8 KV cache: K and V of 256 B per token and layer, 2 x 4000 x 256 B / 1.6e12 B/s
// = 1.28 us per layer (was 2.56): 2 x (19.00544 + 1.28 + 0.12032) + 40.96 + 1040
// = 1121.77152 us.
TEST(RooflineModel, AnFp8KvCacheHalvesTheDecodeAttentionReads) {
  ModelSpec m = TinyDense();
  m.kv_dtype_bytes = 1;
  EXPECT_NEAR(Micros(Easy(m)->IterationTime(DecodeBatch())), 1121.77152, 1e-3);
}

// fp8 weights multiply at the GPU's fp8 rate when it has one (W8A8), else at bf16
// (weight-only). With 2 PFLOP/s fp8 at 0.5 efficiency the 4096-token prefill's GEMMs
// take 124.554051584 us per layer (was 249.108103168):
//   2 x (124.554051584 + 68.736253952 + 123.20768) + 40.96 + 1010 = 1683.955971072 us
TEST(RooflineModel, Fp8WeightsRunTheirGemmsAtTheFp8RateOnlyWhereTheGpuHasOne) {
  ModelSpec m = TinyDense();
  m.weight_dtype_bytes = 1;
  const Nanos no_fp8 = Easy(m)->IterationTime(PrefillBatch());
  EXPECT_NEAR(Micros(no_fp8), 1933.06407424, 1e-3);  // as bf16: compute-bound
  GpuSpec gpu = ::kvsim::testing::TinyGpu();
  gpu.fp8_flops_per_s = 2e15;
  const auto fp8 = NewRooflineModel(m, gpu, 1, EasyConfig(), EasyCosts());
  EXPECT_NEAR(Micros(fp8->IterationTime(PrefillBatch())), 1683.955971072, 1e-3);
  // 16-bit weights on that GPU still multiply at the bf16 rate.
  EXPECT_NEAR(Micros(NewRooflineModel(TinyDense(), gpu, 1, EasyConfig(), EasyCosts())
                         ->IterationTime(PrefillBatch())),
              1933.06407424, 1e-3);
}

TEST(RooflineModel, PagedLayoutRunsTheFlashPagedKernelAndAddsTheBlockTable) {
  auto model = Easy(TinyDense());
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
  // flash_paged adds (1.37 - 1) x 1.075838976 + (2 / 16) x 2.56
  //   = 0.39806042112 + 0.32 = 0.71806042112 us per layer, x 2 layers = 1.43612084224 us,
  // and a block table of 5 seqs x ceil(1000 / 16) = 63 entries x 0.1 us = 31.5 us.
  // Difference: 32.93612084224 us.
  const double prefill_s = 4 * 8 * 128 * (512.0 * 513.0 / 2.0) / kAttnPrefill;
  const double decode_s = 2.0 * 4000 * 512 / kAttnDecode;
  const double table_s = 5 * std::ceil(1000.0 / 16) * 1e-7;
  const double extra_s = kLayers * ((1.37 - 1) * prefill_s + (2.0 / 16) * decode_s) + table_s;
  EXPECT_NEAR(extra_s * 1e6, 32.93612084224, 1e-9);
  const Nanos contiguous_t = model->IterationTime(w);
  const Nanos paged_t = model->IterationTime(paged);
  // Each time is rounded to the nanosecond.
  EXPECT_NEAR(Micros(paged_t) - Micros(contiguous_t), extra_s * 1e6, 2e-3);
}

TEST(RooflineModel, BlockTableCostGrowsWithBatchTimesBlocksOfTheLongestContext) {
  auto model = Easy(TinyDense());
  BatchWork w16 = DecodeBatch();
  w16.layout = AttentionLayout::kPaged;
  w16.block_tokens = 16;
  BatchWork w32 = w16;
  w32.block_tokens = 32;
  // Table: 4 x ceil(1000/16) = 4 x 63 = 252 entries vs 4 x ceil(1000/32) = 4 x 32 =
  // 128 entries; 124 x 0.1 us = 12.4 us. Kernel (flash_paged, 2 / block):
  // 2 layers x 2.56 us x (2/16 - 2/32) = 0.32 us. Difference 12.72 us.
  const double decode_s = 2.0 * 4000 * 512 / kAttnDecode;
  const double kernel_us = kLayers * decode_s * (2.0 / 16 - 2.0 / 32) * 1e6;
  EXPECT_NEAR((4 * 63 - 4 * 32) * 0.1 + kernel_us, 12.72, 1e-9);
  EXPECT_NEAR(Micros(model->IterationTime(w16)) - Micros(model->IterationTime(w32)),
              (4 * 63 - 4 * 32) * 0.1 + kernel_us, 2e-3);
  // One more token of longest context past a block boundary adds a column:
  // ceil(1001 / 16) = 63 (same); ceil(1009 / 16) = 64 (+1 entry per seq = 0.4 us).
  BatchWork same = w16;
  same.max_context_tokens = 1001;
  EXPECT_EQ(model->IterationTime(same), model->IterationTime(w16));
  BatchWork wider = w16;
  wider.max_context_tokens = 1009;
  EXPECT_NEAR(Micros(model->IterationTime(wider)) - Micros(model->IterationTime(w16)), 4 * 0.1,
              2e-3);
}

TEST(RooflineModel, TensorParallelismHalvesPerRankWorkAndAddsAllReduces) {
  auto model = Easy(TinyDense(), 2);
  const BatchWork w = DecodeBatch();
  // Per layer on one of 2 ranks:
  //   weights  30,408,704 / 2 B / 1.6e12 = 9.50272 us
  //   KV read  1 KV head per rank: 256 B per token; 2 x 4000 x 256 / 1.6e12 = 1.28 us
  //   small    4 x 32,256 B = 129,024 B / 1.6e12 = 0.08064 us
  //   all-reduce 2 x (10 us + 2 x (2-1)/2 x 4 tokens x 1024 x 2 B / (4e11 x 1.0))
  //            = 2 x (10 + 0.02048) = 20.04096 us
  // LM head: 65,536,000 / 2 / 1.6e12 = 20.48 us; CPU 1040 us.
  // Once per pass: the embedding's all-reduce of 4 x 1024 x 2 B, 10.02048 us, and the
  // logits' all-gather of 4 x 32000 x 2 B timed as an all-reduce of half of it,
  // 10 + 2 x 1/2 x 128,000 / 4e11 = 10.32 us.
  // Total = 2 x (9.50272 + 1.28 + 0.08064 + 20.04096) + 20.48 + 20.34048 + 1040
  //       = 1142.62912 us
  const double weights_s = kDenseParamsPerLayer * 2 / 2 / kWeightRead;
  const double kv_s = 2.0 * 4000 * 256 / kAttnDecode;
  const double small_s = 4 * kSmallBytesPerTokenTp2 / kWeightRead;
  const double allreduce_s = 2 * (1e-5 + 2.0 * (2 - 1) / 2 * 4 * kHidden * 2 / (kLink * 1.0));
  const double lm_head_s = kVocab * kHidden * 2 / 2 / kWeightRead;
  const double pass_s =
      (1e-5 + 4 * kHidden * 2 / (kLink * 1.0)) + (1e-5 + 4 * kVocab * 2 / 2 / (kLink * 1.0));
  const double expected_s =
      kLayers * (weights_s + kv_s + small_s + allreduce_s) + lm_head_s + pass_s + 1e-3 + 4 * 1e-5;
  EXPECT_NEAR(expected_s * 1e6, 1142.62912, 1e-9);
  EXPECT_NEAR(Micros(model->IterationTime(w)), expected_s * 1e6, 1e-3);
}

TEST(RooflineModel, TensorParallelismNeedsALinkBandwidth) {
  GpuSpec gpu = TinyGpu();
  gpu.link_bandwidth_bytes_per_s = 0;
  EXPECT_THROW(NewRooflineModel(TinyDense(), gpu, 2, EasyConfig(), EasyCosts()), InvariantError);
  EXPECT_NO_THROW(NewRooflineModel(TinyDense(), gpu, 1, EasyConfig(), EasyCosts()));
}

// Decode of `tokens` sequences with no context, on a model without per-sequence CPU
// cost, so only the weights read and the small per-token kernels change with the batch.
Nanos DecodeTime(const ExecutionTimeModel& model, int64_t tokens) {
  BatchWork w;
  w.num_seqs = tokens;
  w.decode_tokens = tokens;
  w.logit_tokens = tokens;
  return model.IterationTime(w);
}

CostConfig NoPerSeqCpu() {
  CostConfig c = EasyCosts();
  c.engine.per_seq_s = 0;
  return c;
}

TEST(RooflineModel, MoeDecodeReadsTheExpertsItsTokensTouch) {
  auto model = Easy(TinyMoe(), 1, NoPerSeqCpu());
  // Experts read by T tokens: 8 x (1 - (1 - 2/8)^T): T=1 -> 2, T=2 -> 3.5,
  // T=4 -> 8 x (1 - 81/256) = 5.46875.
  // Weight bytes per layer = (2,629,632 + E x 3,145,728) x 2, read at 1.6e12 B/s:
  //   T=1: (2,629,632 + 6,291,456) x 2 = 17,842,176 B -> 11.15136 us
  //   T=2: (2,629,632 + 11,010,048) x 2 = 27,279,360 B -> 17.0496 us
  // The small kernels add 35,840 B / 1.6e12 = 0.0224 us per token and layer. Every
  // other term is the same (no context, memory-bound LM head, no per-seq CPU), so T=2
  // costs 2 layers x (17.0496 - 11.15136 + 0.0224) = 11.84128 us more than T=1.
  for (auto [t, experts] : {std::pair{1, 2.0}, std::pair{2, 3.5}, std::pair{4, 5.46875}}) {
    EXPECT_DOUBLE_EQ(8 * (1 - std::pow(1 - 2.0 / 8, t)), experts) << t;
  }
  auto weights_us = [](double experts) {
    return (kMoeAttentionParams + experts * kExpertParams) * 2 / kWeightRead * 1e6;
  };
  const double small_us_per_token = kMoeSmallBytesPerToken / kWeightRead * 1e6;
  EXPECT_NEAR(weights_us(2.0), 11.15136, 1e-9);
  EXPECT_NEAR(weights_us(3.5), 17.0496, 1e-9);
  EXPECT_NEAR(small_us_per_token, 0.0224, 1e-12);
  const double t1 = Micros(DecodeTime(*model, 1));
  const double t2 = Micros(DecodeTime(*model, 2));
  const double t4 = Micros(DecodeTime(*model, 4));
  EXPECT_NEAR(t2 - t1, kLayers * (weights_us(3.5) - weights_us(2.0) + small_us_per_token), 2e-3);
  EXPECT_NEAR(t2 - t1, 11.84128, 2e-3);
  EXPECT_NEAR(t4 - t1, kLayers * (weights_us(5.46875) - weights_us(2.0) + 3 * small_us_per_token),
              2e-3);
  // T=1 in full: 2 x (11.15136 + 0.0224) + LM head 40.96 + CPU 1000 = 1063.30752 us.
  EXPECT_NEAR(t1, 1063.30752, 1e-3);
}

TEST(RooflineModel, MoeDecodeTimeGrowsWithTokensUntilEveryExpertIsRead) {
  auto model = Easy(TinyMoe(), 1, NoPerSeqCpu());
  double previous = 0;
  for (int64_t t = 1; t <= 32; ++t) {
    const double now = Micros(DecodeTime(*model, t));
    EXPECT_GT(now, previous) << t << " tokens";
    previous = now;
  }
  // 64 tokens read 8 x (1 - 0.75^64) = 8 - 8e-8 experts: all 8, to within 1 ns; the
  // small kernels stream 64 x 35,840 B per layer.
  const double all_experts_s =
      kLayers * ((kMoeAttentionParams + 8 * kExpertParams) * 2 + 64 * kMoeSmallBytesPerToken) /
          kWeightRead +
      kVocab * kHidden * 2 / kWeightRead + 1e-3;
  EXPECT_NEAR(Micros(DecodeTime(*model, 64)), all_experts_s * 1e6, 2e-3);
}

TEST(RooflineModel, DenseDecodeGrowsOnlyByTheSmallKernelsWhileWeightReadsDominate) {
  // A dense model reads all its weights for any batch: from 1 to 16 decodes only the
  // small per-token kernels grow, 2 layers x 48,128 B / 1.6e12 B/s = 0.06016 us a token.
  auto model = Easy(TinyDense(), 1, NoPerSeqCpu());
  const double per_token_us = kLayers * kSmallBytesPerToken / kWeightRead * 1e6;
  EXPECT_NEAR(per_token_us, 0.06016, 1e-12);
  const double one = Micros(DecodeTime(*model, 1));
  for (int64_t t = 2; t <= 16; ++t) {
    EXPECT_NEAR(Micros(DecodeTime(*model, t)) - one, static_cast<double>(t - 1) * per_token_us,
                2e-3)
        << t;
  }
}

TEST(RooflineModel, MoreDecodeContextNeverTakesLessTime) {
  for (PagedKernel kernel :
       {PagedKernel::kFlashPaged, PagedKernel::kFlashInferPaged, PagedKernel::kVllmPaged}) {
    CostConfig costs = EasyCosts();
    costs.paged_kernel = kernel;
    GpuSpec gpu = TinyGpu();
    gpu.fp32_flops_per_s = 2e13;  // vllm_paged: the FP32 floor takes over at long contexts
    auto model = NewRooflineModel(TinyDense(), gpu, 1, EasyConfig(), costs);
    for (AttentionLayout layout : {AttentionLayout::kContiguous, AttentionLayout::kPaged}) {
      Nanos previous{0};
      for (int64_t context = 0; context <= 2'000'000; context += 7919) {
        BatchWork w = DecodeBatch();
        w.layout = layout;
        w.block_tokens = 16;
        w.decode_context_tokens = context;
        w.max_context_tokens = CeilDiv(context, 4);
        const Nanos t = model->IterationTime(w);
        EXPECT_GE(t, previous) << PagedKernelName(kernel) << ", " << context
                               << " tokens of context";
        previous = t;
      }
    }
  }
}

TEST(RooflineModel, MorePrefillTokensNeverTakeLessTime) {
  for (int64_t tp : {1, 2}) {
    auto model = Easy(TinyDense(), tp);
    Nanos previous{0};
    for (int64_t c = 1; c <= 16384; c += 37) {
      const Nanos t = model->IterationTime(PrefillBatch(c));
      EXPECT_GE(t, previous) << c << " prompt tokens, tp " << tp;
      previous = t;
    }
  }
}

TEST(RooflineModel, EveryIterationTakesPositiveTime) {
  auto model = Easy(TinyDense(), 1, NoEngineCosts());
  BatchWork w;
  w.num_seqs = 1;
  EXPECT_GT(model->IterationTime(w), Nanos(0));
}

TEST(RooflineModel, RejectsAnEmptyBatch) {
  auto model = Easy(TinyDense());
  EXPECT_THROW(model->IterationTime(BatchWork{}), InvariantError);
}

TEST(RooflineModel, EfficienciesLeftUnsetAreTheCardsElseTheGenericDefaults) {
  // A card stating EasyConfig's four efficiencies times every batch as EasyConfig does.
  GpuSpec card = TinyGpu();
  card.efficiency.gemm = 0.5;
  card.efficiency.memory = 0.8;
  card.efficiency.attention_prefill = 0.5;
  card.efficiency.attention_decode = 0.8;
  const auto from_card = NewRooflineModel(TinyDense(), card, 1, RooflineConfig{}, EasyCosts());
  const auto explicit_config = Easy(TinyDense());
  for (const BatchWork& w : {DecodeBatch(), PrefillBatch()}) {
    EXPECT_EQ(from_card->IterationTime(w), explicit_config->IterationTime(w));
  }
  // A card stating none takes the generic 0.7, 0.85, 0.6, 0.8: the decode batch is then
  // 30,408,704 B / (2e12 x 0.85) per layer of weights, and so on; the same as asking for
  // those values.
  const auto generic = NewRooflineModel(TinyDense(), TinyGpu(), 1, RooflineConfig{}, EasyCosts());
  const auto asked = NewRooflineModel(TinyDense(), TinyGpu(), 1,
                                      {.gemm_efficiency = 0.7,
                                       .memory_efficiency = 0.85,
                                       .attention_prefill_efficiency = 0.6,
                                       .attention_decode_efficiency = 0.8},
                                      EasyCosts());
  for (const BatchWork& w : {DecodeBatch(), PrefillBatch()}) {
    EXPECT_EQ(generic->IterationTime(w), asked->IterationTime(w));
  }
}

TEST(RooflineModel, AssumptionsNameTheGenericEfficienciesAndTheSharedTerms) {
  // A card stating no efficiency: four generic ones; then the engine preset and, the
  // KV cache being paged, the flash_paged kernel (all-reduce: TP 1, none).
  const auto model = NewRooflineModel(TinyDense(), TinyGpu(), 1, RooflineConfig{}, EasyCosts());
  EXPECT_EQ(model->Name(), "roofline");
  EXPECT_THAT(model->Caveats(), ::testing::IsEmpty());
  const std::vector<std::string> a = model->Assumptions();
  ASSERT_EQ(a.size(), 6u);
  EXPECT_EQ(a[0],
            "gemm_efficiency: the tiny-gpu card states none; the generic 0.7 of peak is assumed");
  EXPECT_THAT(a[1], ::testing::StartsWith("memory_efficiency: "));
  EXPECT_THAT(a[2], ::testing::StartsWith("attention_prefill_efficiency: "));
  EXPECT_THAT(a[3], ::testing::StartsWith("attention_decode_efficiency: "));
  EXPECT_THAT(a[4], ::testing::StartsWith("timing.engine: preset none"));
  EXPECT_THAT(a[5], ::testing::StartsWith("kv_cache.paged_kernel: flash_paged"));
  // Every efficiency given: only the shared terms remain.
  EXPECT_EQ(Easy(TinyDense())->Assumptions().size(), 2u);
}

}  // namespace
}  // namespace kvsim
