// The cost terms every timing model shares (sim/timing/cost_terms.h): the ring
// all-reduce, the small per-layer kernels, the paged-attention kernels against the
// contiguous one, how CPU and GPU time combine into an iteration, the engine presets,
// the efficiencies a card or the config gives, and what is declared as assumed.
// Every figure is worked out by hand from the formulas in cost_terms.h.
#include "sim/timing/cost_terms.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "sim/core/check.h"
#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/timing/execution_time_model.h"
#include "sim/timing/profile.h"
#include "tests/testing/tiny_model.h"

namespace kvsim {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// 2 layers, hidden 1024, 8 query heads and 2 KV heads of 128, ffn 4096, bf16.
ModelSpec Tiny() { return ::kvsim::testing::TinyDenseModel("tiny"); }

// Round numbers: 1 PFLOP/s, 2 TB/s, 400 GB/s links; states no efficiency, no FP32 peak.
using ::kvsim::testing::TinyGpu;
constexpr double kLink = 4e11;

// Every engine term zero (preset none), CUDA graphs on.
CostConfig NoEngine() {
  CostConfig c;
  c.engine = EnginePresetDefaults(EngineConfig::Preset::kNone);
  return c;
}

// The shared terms of Tiny on TinyGpu at `tp`, small kernels at 0.8 of the bandwidth.
CostTerms Terms(const CostConfig& config = NoEngine(), int64_t tp = 1,
                const GpuSpec& gpu = TinyGpu()) {
  return CostTerms(Tiny(), gpu, tp, config, 0.8);
}

constexpr double kMiB = 1048576;

// ---- All-reduce ------------------------------------------------------------------

TEST(CostTerms, AllReduceOnACardStatingNoNcclTermsTakesTheGenericRing) {
  // Generic latency: 6 us + 2 (n-1) x 2 us; bus efficiency 0.7.
  // TP 2: 6 + 2 x 1 x 2 = 10 us; 2 (1/2) x 1 MiB / (4e11 x 0.7) = 3.744914 us.
  // TP 4: 6 + 2 x 3 x 2 = 18 us; 2 (3/4) x 1 MiB / 2.8e11 = 5.617371 us.
  // TP 8: 6 + 2 x 7 x 2 = 34 us; 2 (7/8) x 1 MiB / 2.8e11 = 6.553600 us.
  for (const auto& [tp, latency_us, expected_us] :
       {std::tuple{2, 10.0, 13.744914}, std::tuple{4, 18.0, 23.617371},
        std::tuple{8, 34.0, 40.553600}}) {
    SCOPED_TRACE(tp);
    const CostTerms t = Terms(NoEngine(), tp);
    EXPECT_DOUBLE_EQ(t.allreduce_latency_s(), (6.0 + 2.0 * (tp - 1) * 2.0) * 1e-6);
    EXPECT_DOUBLE_EQ(t.allreduce_latency_s(), latency_us * 1e-6);
    EXPECT_DOUBLE_EQ(t.bus_efficiency(), 0.7);
    const double ring_s = 2.0 * (tp - 1) / tp * kMiB / (kLink * 0.7);
    EXPECT_DOUBLE_EQ(t.AllreduceSeconds(kMiB), latency_us * 1e-6 + ring_s);
    EXPECT_NEAR(t.AllreduceSeconds(kMiB) * 1e6, expected_us, 1e-6);
    // An empty message costs the latency alone.
    EXPECT_DOUBLE_EQ(t.AllreduceSeconds(0), latency_us * 1e-6);
  }
}

TEST(CostTerms, AllReduceTakesTheCardsNcclTerms) {
  GpuSpec card = TinyGpu();
  card.efficiency.allreduce_base_latency_s = 5e-6;
  card.efficiency.allreduce_hop_latency_s = 1.5e-6;
  card.efficiency.allreduce_bus_efficiency = 0.8;
  // TP 4: 5 + 2 x 3 x 1.5 = 14 us; 2 (3/4) x 1 MiB / (4e11 x 0.8) = 4.9152 us;
  // 18.9152 us in all.
  const CostTerms t = Terms(NoEngine(), 4, card);
  EXPECT_DOUBLE_EQ(t.allreduce_latency_s(), (5.0 + 2 * 3 * 1.5) * 1e-6);
  EXPECT_DOUBLE_EQ(t.bus_efficiency(), 0.8);
  EXPECT_DOUBLE_EQ(t.AllreduceSeconds(kMiB), 14e-6 + 1.5 * kMiB / (kLink * 0.8));
  EXPECT_NEAR(t.AllreduceSeconds(kMiB) * 1e6, 18.9152, 1e-9);
}

TEST(CostTerms, AllReduceLatencyNeedsBothCardTermsElseBothAreGeneric) {
  // A card with a base latency but no hop latency: the generic 6 + 2 (n-1) x 2 us; its
  // bus efficiency is still used. TP 2: 10 us + 1 MiB / (4e11 x 0.9) = 12.912711 us.
  GpuSpec card = TinyGpu();
  card.efficiency.allreduce_base_latency_s = 1e-6;
  card.efficiency.allreduce_bus_efficiency = 0.9;
  const CostTerms t = Terms(NoEngine(), 2, card);
  EXPECT_DOUBLE_EQ(t.allreduce_latency_s(), 10e-6);
  EXPECT_DOUBLE_EQ(t.bus_efficiency(), 0.9);
  EXPECT_NEAR(t.AllreduceSeconds(kMiB) * 1e6, 10 + kMiB / (kLink * 0.9) * 1e6, 1e-9);
  EXPECT_NEAR(t.AllreduceSeconds(kMiB) * 1e6, 12.912711, 1e-6);
}

TEST(CostTerms, ConfiguredAllReduceTermsWinOverTheCardsAndTheGenericOnes) {
  GpuSpec card = TinyGpu();
  card.efficiency.allreduce_base_latency_s = 5e-6;
  card.efficiency.allreduce_hop_latency_s = 1.5e-6;
  card.efficiency.allreduce_bus_efficiency = 0.8;
  CostConfig c = NoEngine();
  c.allreduce = {.latency_s = 3e-5, .bus_efficiency = 0.5};
  // TP 4: 30 us + 2 (3/4) x 1 MiB / (4e11 x 0.5) = 30 + 7.86432 = 37.86432 us, on either card.
  for (const GpuSpec& gpu : {card, TinyGpu()}) {
    const CostTerms t = Terms(c, 4, gpu);
    EXPECT_DOUBLE_EQ(t.allreduce_latency_s(), 3e-5);
    EXPECT_DOUBLE_EQ(t.bus_efficiency(), 0.5);
    EXPECT_DOUBLE_EQ(t.AllreduceSeconds(kMiB), 3e-5 + 1.5 * kMiB / (kLink * 0.5));
    EXPECT_NEAR(t.AllreduceSeconds(kMiB) * 1e6, 37.86432, 1e-9);
  }
  // One term configured, the other from the card: 30 us + 4.9152 us (bus 0.8).
  c.allreduce = {.latency_s = 3e-5, .bus_efficiency = 0};
  EXPECT_NEAR(Terms(c, 4, card).AllreduceSeconds(kMiB) * 1e6, 34.9152, 1e-9);
  // A configured latency of 0 is a value, not "unset": 0 + 4.9152 us.
  c.allreduce = {.latency_s = 0, .bus_efficiency = 0};
  EXPECT_NEAR(Terms(c, 4, card).AllreduceSeconds(kMiB) * 1e6, 4.9152, 1e-9);
}

TEST(CostTerms, OneGpuHasNoAllReduce) {
  CostConfig c = NoEngine();
  c.allreduce = {.latency_s = 3e-5, .bus_efficiency = 0.5};
  EXPECT_EQ(Terms(c, 1).AllreduceSeconds(kMiB), 0);
  EXPECT_EQ(Terms(NoEngine(), 1).AllreduceSeconds(kMiB), 0);
}

// ---- Small per-layer kernels ---------------------------------------------------------

TEST(CostTerms, PerLayerKernelsStreamTheirBytesPerTokenAndPayTenKernelGaps) {
  CostConfig c = NoEngine();
  c.engine.kernel_gap_s = 1e-6;
  // bytes per token = b x (8 hidden + 2 (heads + kv_heads)/tp head_dim + 3 ffn/tp
  //                        + 4 kv_heads/tp head_dim)
  //   TP 1: 2 x (8 x 1024 + 2 x (8 + 2) x 128 + 3 x 4096 + 4 x 2 x 128)
  //       = 2 x (8,192 + 2,560 + 12,288 + 1,024) = 48,128 B
  //   TP 2: 2 x (8,192 + 2 x (4 + 1) x 128 + 3 x 2048 + 4 x 1 x 128)
  //       = 2 x (8,192 + 1,280 + 6,144 + 512) = 32,256 B
  // 100 tokens at 2e12 x 0.8 = 1.6e12 B/s, plus 10 kernels x 1 us:
  //   TP 1: 4,812,800 B / 1.6e12 = 3.008 us + 10 us = 13.008 us
  //   TP 2: 3,225,600 B / 1.6e12 = 2.016 us + 10 us = 12.016 us
  constexpr double kTp1Bytes = 2.0 * (8 * 1024 + 2 * (8 + 2) * 128 + 3 * 4096 + 4 * 2 * 128);
  constexpr double kTp2Bytes = 2.0 * (8 * 1024 + 2 * (4 + 1) * 128 + 3 * 2048 + 4 * 1 * 128);
  EXPECT_EQ(kTp1Bytes, 48'128);
  EXPECT_EQ(kTp2Bytes, 32'256);
  EXPECT_EQ(CostTerms::kKernelsPerLayer, 10);
  EXPECT_DOUBLE_EQ(Terms(c, 1).PerLayerKernelsSeconds(100), 100 * kTp1Bytes / 1.6e12 + 10 * 1e-6);
  EXPECT_NEAR(Terms(c, 1).PerLayerKernelsSeconds(100) * 1e6, 13.008, 1e-9);
  EXPECT_DOUBLE_EQ(Terms(c, 2).PerLayerKernelsSeconds(100), 100 * kTp2Bytes / 1.6e12 + 10 * 1e-6);
  EXPECT_NEAR(Terms(c, 2).PerLayerKernelsSeconds(100) * 1e6, 12.016, 1e-9);
  // Without kernel gaps, the bytes alone: 3.008 us.
  EXPECT_NEAR(Terms(NoEngine(), 1).PerLayerKernelsSeconds(100) * 1e6, 3.008, 1e-9);
}

TEST(CostTerms, AnEngineRunningMoreKernelsPerLayerPaysAGapForEach) {
  CostConfig c = NoEngine();
  c.engine.kernel_gap_s = 1e-6;
  c.engine.kernels_per_layer = 35;
  // The bytes are the same 3.008 us at TP 1 (above); 35 kernels x 1 us instead of 10.
  EXPECT_NEAR(Terms(c, 1).PerLayerKernelsSeconds(100) * 1e6, 3.008 + 35, 1e-9);
  // From measured rows the GEMMs and attention hold their own boundaries: the five
  // small kernels and the 25 the engine runs beyond a fused engine's 10 pay one each.
  EXPECT_NEAR(Terms(c, 1).PerLayerSmallKernelsSeconds(100) * 1e6, 3.008 + 5 + 25, 1e-9);
  c.engine.kernels_per_layer = 0;  // a fused engine's 10, of which 5 small
  EXPECT_NEAR(Terms(c, 1).PerLayerKernelsSeconds(100) * 1e6, 3.008 + 10, 1e-9);
  EXPECT_NEAR(Terms(c, 1).PerLayerSmallKernelsSeconds(100) * 1e6, 3.008 + 5, 1e-9);
  EXPECT_EQ(EnginePresetDefaults(EngineConfig::Preset::kEager).kernels_per_layer, 35);
  EXPECT_EQ(EnginePresetDefaults(EngineConfig::Preset::kVllmV1).kernels_per_layer, 0);
}

TEST(CostTerms, UnfusedOperatorsMoveEachActivationOncePerOperator) {
  CostConfig c = NoEngine();
  c.engine.fused_kernels = false;
  // Tiny at TP 1, b = 2: H 1024, Q = 8 x 128 = 1024, K = 2 x 128 = 256, F = 4096.
  //   norms 2 (28 + 8) 1024 = 73,728;  residuals 2 x 3 x 2 x 1024 = 12,288;
  //   RoPE 10 x 2 (1024 + 256) = 25,600;  output copy 2 x 2 x 1024 = 4,096;
  //   KV write 4 x 2 x 256 = 2,048;  SiLU and mul 5 x 2 x 4096 = 40,960
  //   = 158,720 B, against the fused 48,128: 110,592 B more per token and layer.
  EXPECT_DOUBLE_EQ(Terms(c, 1).UnfusedExtraBytesPerToken(), 158'720 - 48'128);
  // TP 2 (Q 512, K 128, F 2048; the norms and residuals stay whole on every rank):
  //   73,728 + 12,288 + 20 x 640 + 4 x 512 + 8 x 128 + 10 x 2048 = 122,368 B,
  //   against the fused 32,256: 90,112 B.
  EXPECT_DOUBLE_EQ(Terms(c, 2).UnfusedExtraBytesPerToken(), 90'112);
  // MoE, 2 of 4 experts of ffn 1024 per token (F = 2 x 1024): 73,728 + 12,288 + 25,600
  // + 4,096 + 2,048 + 10 x 2048 = 138,240 B against the fused 35,840: 102,400 B.
  ModelSpec moe = Tiny();
  moe.ffn_size = 1024;
  moe.num_experts = 4;
  moe.experts_per_token = 2;
  EXPECT_DOUBLE_EQ(CostTerms(moe, TinyGpu(), 1, c, 0.8).UnfusedExtraBytesPerToken(), 102'400);
  // 100 tokens at 1.6e12 B/s: 11,059,200 / 1.6e12 = 6.912 us on top of the 3.008 us.
  EXPECT_NEAR(Terms(c, 1).UnfusedExtraSeconds(100) * 1e6, 6.912, 1e-9);
  EXPECT_NEAR(Terms(c, 1).PerLayerKernelsSeconds(100) * 1e6, 3.008 + 6.912, 1e-9);
  EXPECT_NEAR(Terms(c, 1).PerLayerSmallKernelsSeconds(100) * 1e6, 3.008 + 6.912, 1e-9);
  // Fused (every vLLM preset): nothing more.
  EXPECT_EQ(Terms(NoEngine(), 1).UnfusedExtraBytesPerToken(), 0);
  EXPECT_EQ(Terms(NoEngine(), 1).UnfusedExtraSeconds(100), 0);
  EXPECT_FALSE(EnginePresetDefaults(EngineConfig::Preset::kEager).fused_kernels);
  EXPECT_TRUE(EnginePresetDefaults(EngineConfig::Preset::kVllmV0).fused_kernels);
}

TEST(CostTerms, NoTokensRunNoPerLayerKernels) {
  CostConfig c = NoEngine();
  c.engine.kernel_gap_s = 1e-6;
  EXPECT_EQ(Terms(c).PerLayerKernelsSeconds(0), 0);
}

// ---- Paged attention ------------------------------------------------------------------

CostTerms PagedTerms(PagedKernel kernel, const GpuSpec& gpu = TinyGpu()) {
  CostConfig c = NoEngine();
  c.paged_kernel = kernel;
  c.paged = true;
  return Terms(c, 1, gpu);
}

CostInputs PagedDecode(int64_t block_tokens, double decode_context = 1000) {
  return {.tokens = 4,
          .num_seqs = 4,
          .decode_seqs = 4,
          .decode_context = decode_context,
          .max_context = 250,
          .layout = AttentionLayout::kPaged,
          .block_tokens = block_tokens};
}

TEST(CostTerms, FlashPagedDecodeReadsTwoExtraTokensPerBlock) {
  const CostTerms t = PagedTerms(PagedKernel::kFlashPaged);
  // 10 us contiguous x (1 + 2/16) = 11.25 us; x (1 + 2/256) = 10.078125 us.
  EXPECT_DOUBLE_EQ(t.PagedDecodeSeconds(10e-6, PagedDecode(16)), 10e-6 * (1 + 2.0 / 16));
  EXPECT_NEAR(t.PagedDecodeSeconds(10e-6, PagedDecode(16)) * 1e6, 11.25, 1e-12);
  EXPECT_NEAR(t.PagedDecodeSeconds(10e-6, PagedDecode(256)) * 1e6, 10.078125, 1e-12);
}

TEST(CostTerms, FlashInferPagedDecodeReadsOneExtraTokenPerBlock) {
  const CostTerms t = PagedTerms(PagedKernel::kFlashInferPaged);
  // 10 us x (1 + 1/16) = 10.625 us; one-token pages: x 2 = 20 us.
  EXPECT_DOUBLE_EQ(t.PagedDecodeSeconds(10e-6, PagedDecode(16)), 10e-6 * (1 + 1.0 / 16));
  EXPECT_NEAR(t.PagedDecodeSeconds(10e-6, PagedDecode(16)) * 1e6, 10.625, 1e-12);
  EXPECT_NEAR(t.PagedDecodeSeconds(10e-6, PagedDecode(1)) * 1e6, 20.0, 1e-12);
}

TEST(CostTerms, VllmPagedDecodeIsBoundedByItsFp32ArithmeticAndSlowsAboveSixteenTokenBlocks) {
  GpuSpec card = TinyGpu();
  card.fp32_flops_per_s = 2e13;
  const CostTerms t = PagedTerms(PagedKernel::kVllmPaged, card);
  // FP32 floor: 4 x heads_per_rank x head_dim x decode_context FLOPs at 0.235 of the
  // FP32 peak. 100,000 KV tokens: 4 x 8 x 128 x 100,000 = 409,600,000 FLOP
  // / (2e13 x 0.235 = 4.7e12 FLOP/s) = 87.148936 us, above the 10 us contiguous.
  const double floor_s = 4.0 * 8 * 128 * 100'000 / (2e13 * 0.235);
  EXPECT_NEAR(floor_s * 1e6, 87.148936, 1e-6);
  EXPECT_DOUBLE_EQ(t.PagedDecodeSeconds(10e-6, PagedDecode(16, 100'000)), floor_s);
  // 64-token blocks: log2(64/16) = 2 doublings, x (1 + 0.25 x 2) = x 1.5: 130.723404 us.
  EXPECT_DOUBLE_EQ(t.PagedDecodeSeconds(10e-6, PagedDecode(64, 100'000)), floor_s * 1.5);
  EXPECT_NEAR(t.PagedDecodeSeconds(10e-6, PagedDecode(64, 100'000)) * 1e6, 130.723404, 1e-6);
  // Below 16 tokens no speed-up: 8-token blocks are x 1.
  EXPECT_DOUBLE_EQ(t.PagedDecodeSeconds(10e-6, PagedDecode(8, 100'000)), floor_s);
  // 1,000 KV tokens: the floor is 4,096,000 / 4.7e12 = 0.871489 us, below the 10 us
  // contiguous, which stays; 32-token blocks: 1 doubling, x 1.25 = 12.5 us.
  EXPECT_LT(4.0 * 8 * 128 * 1000 / (2e13 * 0.235), 10e-6);
  EXPECT_DOUBLE_EQ(t.PagedDecodeSeconds(10e-6, PagedDecode(16, 1000)), 10e-6);
  EXPECT_NEAR(t.PagedDecodeSeconds(10e-6, PagedDecode(32, 1000)) * 1e6, 12.5, 1e-12);
}

TEST(CostTerms, VllmPagedDecodeOnACardWithoutAnFp32PeakHasNoFloor) {
  const CostTerms t = PagedTerms(PagedKernel::kVllmPaged);  // TinyGpu states no FP32 peak
  // 100,000 KV tokens: still the 10 us contiguous; 128-token blocks: 3 doublings,
  // x (1 + 0.25 x 3) = 17.5 us.
  EXPECT_DOUBLE_EQ(t.PagedDecodeSeconds(10e-6, PagedDecode(16, 100'000)), 10e-6);
  EXPECT_NEAR(t.PagedDecodeSeconds(10e-6, PagedDecode(128, 100'000)) * 1e6, 17.5, 1e-12);
}

TEST(CostTerms, PagedPrefillIsThePublishedSlowdownOfEachKernel) {
  // 10 us contiguous: flash_paged x 1.37, flashinfer_paged x 1.42, vllm_paged x 1.
  EXPECT_NEAR(PagedTerms(PagedKernel::kFlashPaged).PagedPrefillSeconds(10e-6) * 1e6, 13.7, 1e-12);
  EXPECT_NEAR(PagedTerms(PagedKernel::kFlashInferPaged).PagedPrefillSeconds(10e-6) * 1e6, 14.2,
              1e-12);
  EXPECT_EQ(PagedTerms(PagedKernel::kVllmPaged).PagedPrefillSeconds(10e-6), 10e-6);
}

TEST(CostTerms, TheProfiledPagedKernelIsNotTimedByTheSharedTerms) {
  const CostTerms t = PagedTerms(PagedKernel::kProfiled);
  EXPECT_THROW(t.PagedDecodeSeconds(10e-6, PagedDecode(16)), InvariantError);
  EXPECT_THROW(t.PagedPrefillSeconds(10e-6), InvariantError);
}

// ---- Iteration ----------------------------------------------------------------------

// Every engine term set to a round value: 1 ms per iteration, 10 us per sequence,
// 0.1 us per prefill token, 0.01 us per block-table entry; eager launches of 300 us
// per layer (600 us for Tiny's 2 layers).
CostConfig EagerEngine() {
  CostConfig c = NoEngine();
  c.engine.per_iteration_s = 1e-3;
  c.engine.per_seq_s = 1e-5;
  c.engine.per_prefill_token_s = 1e-7;
  c.engine.block_table_entry_s = 1e-8;
  c.engine.cuda_graphs = false;
  c.engine.launch_per_layer_s = 3e-4;
  return c;
}

// 3 sequences, 500 prefill tokens among them, the longest context 1000 tokens.
CostInputs Mixed(AttentionLayout layout, int64_t block_tokens = 16) {
  return {.tokens = 502,
          .prefill_tokens = 500,
          .num_seqs = 3,
          .decode_seqs = 2,
          .decode_context = 1500,
          .max_context = 1000,
          .layout = layout,
          .block_tokens = block_tokens};
}

TEST(CostTerms, WithoutCudaGraphsAPassTakesTheLongerOfItsLaunchesAndItsGpuTime) {
  const CostTerms t = Terms(EagerEngine());
  // CPU: 1000 + 3 x 10 + 500 x 0.1 = 1080 us (contiguous: no block table); launches
  // 2 layers x 300 us = 600 us, which run ahead of the GPU:
  //   GPU 100 us: the GPU waits for the launches, max(100, 600) + 1080 = 1680 us;
  //   GPU 1 ms: the launches hide behind it, max(1000, 600) + 1080 = 2080 us.
  const double cpu_s = 1e-3 + 3 * 1e-5 + 500 * 1e-7;
  const CostInputs in = Mixed(AttentionLayout::kContiguous);
  EXPECT_DOUBLE_EQ(t.IterationSeconds(100e-6, in), 2 * 3e-4 + cpu_s);
  EXPECT_NEAR(t.IterationSeconds(100e-6, in) * 1e6, 1680, 1e-9);
  EXPECT_NEAR(t.IterationSeconds(1e-3, in) * 1e6, 2080, 1e-9);
  // At 600 us of GPU the two are level: 600 + 1080.
  EXPECT_NEAR(t.IterationSeconds(600e-6, in) * 1e6, 1680, 1e-9);
  // With CUDA graphs there are no launches: 100 + 1080 = 1180 us.
  CostConfig graphs = EagerEngine();
  graphs.engine.cuda_graphs = true;
  EXPECT_NEAR(Terms(graphs).IterationSeconds(100e-6, in) * 1e6, 1180, 1e-9);
}

TEST(CostTerms, PagedIterationsPrepareABlockTablePaddedToTheLongestContext) {
  const CostTerms t = Terms(EagerEngine());
  // 3 sequences x ceil(1000 / 16) = 63 entries = 189 entries x 0.01 us = 1.89 us, on top
  // of the contiguous 1680 us: 1681.89 us.
  EXPECT_NEAR(t.IterationSeconds(100e-6, Mixed(AttentionLayout::kPaged)) * 1e6,
              1680 + 3 * std::ceil(1000.0 / 16) * 0.01, 1e-9);
  EXPECT_NEAR(t.IterationSeconds(100e-6, Mixed(AttentionLayout::kPaged)) * 1e6, 1681.89, 1e-9);
  // 32-token blocks: 3 x ceil(1000 / 32) = 3 x 32 = 96 entries, 0.96 us.
  EXPECT_NEAR(t.IterationSeconds(100e-6, Mixed(AttentionLayout::kPaged, 32)) * 1e6, 1680.96, 1e-9);
  // One token past a block boundary adds a column: ceil(1009 / 16) = 64, 3 x 64 x 0.01 us.
  CostInputs wider = Mixed(AttentionLayout::kPaged);
  wider.max_context = 1009;
  EXPECT_NEAR(t.IterationSeconds(100e-6, wider) * 1e6, 1680 + 3 * 64 * 0.01, 1e-9);
}

// ---- Host CPU -----------------------------------------------------------------------

TEST(CostTerms, OnASlowerHostEveryCpuTermTakesLongerAndTheGpuTermsDoNot) {
  EngineConfig e = EagerEngine().engine;
  e.request_arrival_s = 2e-3;
  e.request_finish_s = 4e-3;
  e.kernel_gap_s = 1e-6;
  // A host at 0.8 of the reference core: each CPU term / 0.8.
  const EngineConfig slow = EngineOnHost(e, 0.8, "a test host");
  EXPECT_DOUBLE_EQ(slow.per_iteration_s, 1e-3 / 0.8);
  EXPECT_DOUBLE_EQ(slow.per_seq_s, 1e-5 / 0.8);
  EXPECT_DOUBLE_EQ(slow.per_prefill_token_s, 1e-7 / 0.8);
  EXPECT_DOUBLE_EQ(slow.block_table_entry_s, 1e-8 / 0.8);
  EXPECT_DOUBLE_EQ(slow.launch_per_layer_s, 3e-4 / 0.8);
  EXPECT_DOUBLE_EQ(slow.request_arrival_s, 2.5e-3);
  EXPECT_DOUBLE_EQ(slow.request_finish_s, 5e-3);
  EXPECT_DOUBLE_EQ(slow.kernel_gap_s, 1e-6);  // on the GPU
  EXPECT_EQ(slow.host_cpu_speed, 0.8);
  EXPECT_EQ(slow.host_cpu, "a test host");
  // The eager iteration of above at 100 us of GPU: max(100, 600 / 0.8) + 1080 / 0.8
  // = 750 + 1350 = 2100 us.
  CostConfig c = EagerEngine();
  c.engine = slow;
  EXPECT_NEAR(Terms(c).IterationSeconds(100e-6, Mixed(AttentionLayout::kContiguous)) * 1e6, 2100,
              1e-9);
}

TEST(CostTerms, AssumptionsNameTheHostWhoseSpeedScaledTheCpuTerms) {
  CostConfig c = NoEngine();
  EXPECT_THAT(Terms(c).Assumptions(), Not(Contains(HasSubstr("host CPU"))));
  c.engine = EngineOnHost(c.engine, 0.81, "2 x EPYC 7742, the A100 card's host");
  EXPECT_THAT(Terms(c).Assumptions(),
              Contains(AllOf(HasSubstr("single-thread speed 0.81 relative to a Xeon Platinum "
                                       "8480C core (2 x EPYC 7742, the A100 card's host)"),
                             HasSubstr("not measured"))));
  // A speed the config set is named as such.
  c.engine = EngineOnHost(NoEngine().engine, 0.5, std::string(kHostFromDeployment));
  EXPECT_THAT(Terms(c).Assumptions(),
              Contains(AllOf(HasSubstr("single-thread speed 0.5 relative"),
                             HasSubstr("as deployment.host_cpu_speed sets it"))));
  // The reference core itself: nothing scaled, the host named as assumed.
  c.engine = EngineOnHost(NoEngine().engine, 1.0, "2 x Xeon 8480C, the H100 card's host");
  EXPECT_THAT(Terms(c).Assumptions(),
              Contains(AllOf(HasSubstr("stated for a Xeon Platinum 8480C core, the host assumed "
                                       "(2 x Xeon 8480C, the H100 card's host)"),
                             HasSubstr("deployment.host_cpu_speed"))));
}

// ---- Engine presets -----------------------------------------------------------------

TEST(CostTerms, ThePresetNoneChargesNothingOutsideTheGpuKernels) {
  const EngineConfig none = EnginePresetDefaults(EngineConfig::Preset::kNone);
  EXPECT_EQ(none.preset, EngineConfig::Preset::kNone);
  EXPECT_EQ(none.per_iteration_s, 0);
  EXPECT_EQ(none.per_seq_s, 0);
  EXPECT_EQ(none.per_prefill_token_s, 0);
  EXPECT_EQ(none.request_arrival_s, 0);
  EXPECT_EQ(none.request_finish_s, 0);
  EXPECT_EQ(none.block_table_entry_s, 0);
  EXPECT_TRUE(none.cuda_graphs);
  EXPECT_EQ(none.launch_per_layer_s, 0);
  EXPECT_EQ(none.kernel_gap_s, 0);
  // An iteration is then its GPU time, paged or not.
  EXPECT_EQ(Terms(NoEngine()).IterationSeconds(123e-6, Mixed(AttentionLayout::kPaged)), 123e-6);
}

TEST(CostTerms, TheEagerPresetLaunchesKernelsFromTheCpu) {
  const EngineConfig eager = EnginePresetDefaults(EngineConfig::Preset::kEager);
  EXPECT_EQ(eager.preset, EngineConfig::Preset::kEager);
  EXPECT_FALSE(eager.cuda_graphs);
  EXPECT_GT(eager.launch_per_layer_s, 0);
  // The vLLM presets replay CUDA graphs; only V0 rebuilds block tables on the CPU.
  const EngineConfig v1 = EnginePresetDefaults(EngineConfig::Preset::kVllmV1);
  const EngineConfig v0 = EnginePresetDefaults(EngineConfig::Preset::kVllmV0);
  EXPECT_TRUE(v1.cuda_graphs);
  EXPECT_TRUE(v0.cuda_graphs);
  EXPECT_EQ(v1.block_table_entry_s, 0);
  EXPECT_GT(v0.block_table_entry_s, 0);
  // V0's CPU share grows with the batch: on the A100 card's host (0.81 of the
  // reference core) it is Vidur's measured line, 2.02 ms + 0.171 ms per sequence.
  const EngineConfig v0_on_a100 = EngineOnHost(v0, 0.81, "A100 host");
  EXPECT_NEAR(v0_on_a100.per_iteration_s * 1e3, 2.02, 0.01);
  EXPECT_NEAR(v0_on_a100.per_seq_s * 1e3, 0.171, 0.001);
  EXPECT_STREQ(EnginePresetName(EngineConfig::Preset::kVllmV1), "vllm_v1");
  EXPECT_STREQ(EnginePresetName(EngineConfig::Preset::kVllmV0), "vllm_v0");
  EXPECT_STREQ(EnginePresetName(EngineConfig::Preset::kEager), "eager");
  EXPECT_STREQ(EnginePresetName(EngineConfig::Preset::kNone), "none");
}

// ---- Assumptions ----------------------------------------------------------------------

TEST(CostTerms, AssumptionsNameTheEnginePreset) {
  CostConfig c = NoEngine();
  EXPECT_THAT(Terms(c).Assumptions(),
              ElementsAre("timing.engine: preset none (per iteration 0 ms, per sequence 0 us, per "
                          "prefill token 0 us, block-table entry 0 us, kernel gap 0 us) charges no "
                          "engine CPU time at all: an idealisation, not an estimate"));
  // Terms the config sets are named as the config's, never as the preset's.
  c.engine.per_iteration_s = 2e-3;
  c.engine.per_seq_s = 5e-6;
  c.engine.configured = {{"per_iteration_s", "0.002"}, {"per_seq_s", "5e-6"}};
  EXPECT_THAT(Terms(c).Assumptions(),
              ElementsAre("timing.engine: preset none (per iteration 2 ms, per sequence 5 us, per "
                          "prefill token 0 us, block-table entry 0 us, kernel gap 0 us) has "
                          "per_iteration_s 0.002, per_seq_s 5e-6 as the config sets them; the "
                          "other terms are the preset's zeros"));
  CostConfig v1;
  v1.engine = EnginePresetDefaults(EngineConfig::Preset::kVllmV1);
  v1.engine.per_iteration_s = 1e-3;
  v1.engine.per_seq_s = 2e-6;
  v1.engine.configured = {{"per_iteration_s", "0.001"}, {"per_seq_s", "1e-6"}};
  v1.engine.fitted = {"per_seq_s"};  // the calibration's value replaced the config's
  EXPECT_THAT(Terms(v1).Assumptions().front(),
              HasSubstr("us) has per_seq_s fitted to measured runs (timing.calibration); has "
                        "per_iteration_s 0.001 as the config sets it; the other terms are the "
                        "preset's sourced estimates"));
  CostConfig eager;
  eager.engine = EnginePresetDefaults(EngineConfig::Preset::kEager);
  const std::vector<std::string> a = Terms(eager).Assumptions();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_THAT(a[0], StartsWith("timing.engine: preset eager ("));
  EXPECT_THAT(
      a[0], HasSubstr(", eager launch 350 us per layer, 35 kernels per layer, unfused operators)"));
}

TEST(CostTerms, AssumptionsListTheGenericAllReduceOnlyWithTensorParallelismOnACardLackingIt) {
  // TP 1: no all-reduce, nothing to declare.
  EXPECT_EQ(Terms(NoEngine(), 1).Assumptions().size(), 1u);
  // TP 4 on a card stating nothing: latency 6 + 2 x 3 x 2 = 18 us, bus efficiency 0.7.
  const std::vector<std::string> generic = Terms(NoEngine(), 4).Assumptions();
  ASSERT_EQ(generic.size(), 3u);
  EXPECT_EQ(generic[1],
            "timing.allreduce: the tiny-gpu card states no NCCL latency or bus efficiency; "
            "generic NVLink values are used (latency 18 us, bus efficiency 0.7)");
  // A card stating its latency but not its bus efficiency, and the other way round.
  GpuSpec latency_only = TinyGpu();
  latency_only.efficiency.allreduce_base_latency_s = 5e-6;
  latency_only.efficiency.allreduce_hop_latency_s = 1.5e-6;
  EXPECT_THAT(Terms(NoEngine(), 4, latency_only).Assumptions().at(1),
              HasSubstr("states no NCCL bus efficiency; generic NVLink values are used (latency "
                        "14 us, bus efficiency 0.7)"));
  GpuSpec bus_only = TinyGpu();
  bus_only.efficiency.allreduce_bus_efficiency = 0.8;
  EXPECT_THAT(Terms(NoEngine(), 4, bus_only).Assumptions().at(1),
              HasSubstr("states no NCCL latency; generic NVLink values are used (latency 18 us, "
                        "bus efficiency 0.8)"));
  // A card stating all three: only the logits' all-gather, which no card states.
  GpuSpec full = latency_only;
  full.efficiency.allreduce_bus_efficiency = 0.8;
  EXPECT_THAT(Terms(NoEngine(), 4, full).Assumptions(),
              ElementsAre(StartsWith("timing.engine:"),
                          "timing: the logits' all-gather across tensor-parallel ranks is timed "
                          "as an all-reduce of half its bytes (the same bytes through each GPU of "
                          "a ring); no all-gather was measured"));
}

TEST(CostTerms, AssumptionsSayWhenTheCardsAllReduceTermsAreExtrapolatedBeyondTheGpusMeasured) {
  GpuSpec card = TinyGpu();
  card.efficiency.allreduce_base_latency_s = 5e-6;
  card.efficiency.allreduce_hop_latency_s = 1.5e-6;
  card.efficiency.allreduce_bus_efficiency = 0.8;
  card.efficiency.allreduce_fit_max_gpus = 4;
  const auto extrapolated = [](const std::vector<std::string>& a) {
    return std::count_if(a.begin(), a.end(), [](const std::string& s) {
      return s.find("extrapolated") != std::string::npos;
    });
  };
  // Measured on up to 4 GPUs: TP 4 is within them, TP 8 beyond.
  EXPECT_EQ(extrapolated(Terms(NoEngine(), 4, card).Assumptions()), 0);
  // TP 8: latency 5 + 2 x 7 x 1.5 = 26 us.
  EXPECT_THAT(Terms(NoEngine(), 8, card).Assumptions(),
              Contains("timing.allreduce: the tiny-gpu card's NCCL terms were measured on up to 4 "
                       "GPUs; at tensor parallelism 8 they are extrapolated (latency base + 2 "
                       "(n-1) hop = 26 us, bus efficiency 0.8)"));
  // Terms the config states replace the card's: nothing of the card's is extrapolated.
  CostConfig stated = NoEngine();
  stated.allreduce.latency_s = 2e-5;
  stated.allreduce.bus_efficiency = 0.7;
  EXPECT_EQ(extrapolated(Terms(stated, 8, card).Assumptions()), 0);
}

// ---- Collectives once per pass ---------------------------------------------------------

TEST(CostTerms, APassAllReducesTheEmbeddingAndGathersTheLogitsAsHalfTheirBytes) {
  // Tiny: hidden 1024, vocab 32000, 2 bytes. 6 tokens, 4 of them emitting logits:
  // embedding 6 x 1024 x 2 = 12,288 B; logits 4 x 32000 x 2 = 256,000 B gathered, timed
  // as an all-reduce of 128,000 B.
  EXPECT_THAT(Terms(NoEngine(), 2).PassAllreduceBytes(6, 4), ElementsAre(12288.0, 128000.0));
  EXPECT_THAT(Terms(NoEngine(), 8).PassAllreduceBytes(6, 4), ElementsAre(12288.0, 128000.0));
  // A step of prefill chunks only emits no logits: the embedding's all-reduce alone.
  EXPECT_THAT(Terms(NoEngine(), 2).PassAllreduceBytes(6, 0), ElementsAre(12288.0));
  // One GPU: no collectives at all.
  EXPECT_THAT(Terms(NoEngine(), 1).PassAllreduceBytes(6, 4), ::testing::IsEmpty());
  // On the generic ring at TP 2 (10 us, 4e11 x 0.7 B/s), the all-gather's all-reduce
  // takes 10 + 2 x 1/2 x 128,000 / 2.8e11 s = 10.457143 us: one ring pass of the
  // 256,000 gathered bytes, (2-1)/2 of them through each GPU.
  EXPECT_NEAR(Terms(NoEngine(), 2).AllreduceSeconds(128000) * 1e6, 10 + 0.5 * 256000 / 2.8e11 * 1e6,
              1e-9);
  EXPECT_NEAR(Terms(NoEngine(), 2).AllreduceSeconds(128000) * 1e6, 10.457143, 1e-6);
}

TEST(CostTerms, AssumptionsListTheNamedPagedKernelOnlyOnAPagedCache) {
  EXPECT_EQ(Terms(NoEngine()).Assumptions().size(), 1u);  // not paged
  const std::vector<std::string> flash = PagedTerms(PagedKernel::kFlashPaged).Assumptions();
  ASSERT_EQ(flash.size(), 2u);
  EXPECT_EQ(flash[1],
            "kv_cache.paged_kernel: flash_paged is timed from published figures against the "
            "contiguous kernel (decode +2 tokens of KV traffic per block; prefill x1.37, the "
            "paper's upper bound), not measured on this GPU");
  EXPECT_THAT(PagedTerms(PagedKernel::kFlashInferPaged).Assumptions().at(1),
              HasSubstr("flashinfer_paged is timed from published figures against the contiguous "
                        "kernel (decode +1 tokens of KV traffic per block; prefill x1.42"));
  EXPECT_THAT(PagedTerms(PagedKernel::kVllmPaged).Assumptions().at(1),
              HasSubstr("vllm_paged is timed from published figures against the contiguous "
                        "kernel (decode bounded by FP32 arithmetic at 0.235 of the card's FP32 "
                        "peak, +25% per block-size doubling above 16; prefill contiguous)"));
  // The profile's own paged kernel is measured: nothing to declare here.
  EXPECT_EQ(PagedTerms(PagedKernel::kProfiled).Assumptions().size(), 1u);
}

TEST(CostTerms, VllmPagedOnACardWithoutAnFp32PeakSaysItsBoundIsNotApplied) {
  const std::vector<std::string> none = PagedTerms(PagedKernel::kVllmPaged).Assumptions();
  ASSERT_EQ(none.size(), 3u);
  EXPECT_THAT(none[2], HasSubstr("the tiny-gpu card states no fp32_flops_per_s"));
  GpuSpec with_fp32 = TinyGpu();
  with_fp32.fp32_flops_per_s = 19.5e12;
  EXPECT_EQ(PagedTerms(PagedKernel::kVllmPaged, with_fp32).Assumptions().size(), 2u);
}

// ---- Efficiencies -----------------------------------------------------------------------

TEST(ResolveEfficiencies, TheCardsValuesWinOverTheGenericDefaults) {
  GpuSpec card = TinyGpu();
  card.efficiency.gemm = 0.65;
  card.efficiency.attention_prefill = 0.55;
  std::vector<std::string> assumed;
  const RooflineConfig r = ResolveEfficiencies(RooflineConfig{}, card, &assumed);
  EXPECT_EQ(r.gemm_efficiency, 0.65);               // card
  EXPECT_EQ(r.memory_efficiency, 0.85);             // generic
  EXPECT_EQ(r.attention_prefill_efficiency, 0.55);  // card
  EXPECT_EQ(r.attention_decode_efficiency, 0.8);    // generic
  // One sentence per generic default used.
  EXPECT_THAT(assumed,
              ElementsAre("memory_efficiency: the tiny-gpu card states none; the generic 0.85 of "
                          "peak is assumed",
                          "attention_decode_efficiency: the tiny-gpu card states none; the generic "
                          "0.8 of peak is assumed"));
}

TEST(ResolveEfficiencies, ConfiguredValuesWinOverTheCard) {
  GpuSpec card = TinyGpu();
  card.efficiency.gemm = 0.65;
  card.efficiency.memory = 0.9;
  card.efficiency.attention_prefill = 0.55;
  card.efficiency.attention_decode = 0.85;
  std::vector<std::string> assumed;
  const RooflineConfig r = ResolveEfficiencies(
      {.gemm_efficiency = 0.5, .memory_efficiency = -1, .attention_decode_efficiency = 0.7}, card,
      &assumed);
  EXPECT_EQ(r.gemm_efficiency, 0.5);                // config
  EXPECT_EQ(r.memory_efficiency, 0.9);              // card
  EXPECT_EQ(r.attention_prefill_efficiency, 0.55);  // card
  EXPECT_EQ(r.attention_decode_efficiency, 0.7);    // config
  EXPECT_THAT(assumed, ::testing::IsEmpty());
}

TEST(ResolveEfficiencies, ACardStatingNoneTakesFourGenericDefaultsEachDeclared) {
  std::vector<std::string> assumed;
  const RooflineConfig r = ResolveEfficiencies(RooflineConfig{}, TinyGpu(), &assumed);
  const RooflineConfig d = RooflineDefaults();
  EXPECT_EQ(d.gemm_efficiency, 0.7);
  EXPECT_EQ(d.memory_efficiency, 0.85);
  EXPECT_EQ(d.attention_prefill_efficiency, 0.6);
  EXPECT_EQ(d.attention_decode_efficiency, 0.8);
  EXPECT_EQ(r.gemm_efficiency, d.gemm_efficiency);
  EXPECT_EQ(r.memory_efficiency, d.memory_efficiency);
  EXPECT_EQ(r.attention_prefill_efficiency, d.attention_prefill_efficiency);
  EXPECT_EQ(r.attention_decode_efficiency, d.attention_decode_efficiency);
  ASSERT_EQ(assumed.size(), 4u);
  EXPECT_THAT(assumed[0], StartsWith("gemm_efficiency: "));
  EXPECT_THAT(assumed[1], StartsWith("memory_efficiency: "));
  EXPECT_THAT(assumed[2], StartsWith("attention_prefill_efficiency: "));
  EXPECT_THAT(assumed[3], StartsWith("attention_decode_efficiency: "));
  // Without a list to fill, the values are the same.
  const RooflineConfig quiet = ResolveEfficiencies(RooflineConfig{}, TinyGpu(), nullptr);
  EXPECT_EQ(quiet.memory_efficiency, 0.85);
}

// ---- Both models share the terms -----------------------------------------------------------

TEST(CostTerms, RooflineAndProfiledModelsAddTheSamePagedDecodeOverhead) {
  // Llama-3-8B at TP 1 on the H100-SXM card: 32 layers, 8 KV heads of 128 in bf16
  // (8 x 128 x 2 = 2,048 B of K or of V per token and layer). 16 sequences decoding over 2,048
  // tokens each, paged in 16-token blocks through flash_paged, against the same batch contiguous;
  // the engine charges 0.1 us per block-table entry and nothing else.
  const ModelSpec llama = LoadModelSpec(KVSIM_SOURCE_DIR "/models/llm/Llama-3-8B.yaml");
  const GpuSpec h100 = LoadGpuSpec(KVSIM_SOURCE_DIR "/models/gpu/H100-SXM.yaml");
  CostConfig costs = NoEngine();
  costs.engine.block_table_entry_s = 1e-7;
  costs.paged_kernel = PagedKernel::kFlashPaged;
  costs.paged = true;
  const BatchWork contiguous{.num_seqs = 16,
                             .decode_tokens = 16,
                             .logit_tokens = 16,
                             .decode_context_tokens = 16 * 2048,
                             .max_context_tokens = 2048};
  BatchWork paged = contiguous;
  paged.layout = AttentionLayout::kPaged;
  paged.block_tokens = 16;
  // Both: a block table of 16 x ceil(2048 / 16) = 16 x 128 = 2,048 entries x 0.1 us =
  // 204.8 us, and flash_paged's 2 / 16 = 0.125 of each layer's contiguous decode time.
  const double table_us = 16 * std::ceil(2048.0 / 16) * 0.1;
  EXPECT_NEAR(table_us, 204.8, 1e-9);

  // Roofline: contiguous decode per layer 2 x 32,768 x 2,048 B / (3.35e12 x 0.8)
  // = 134,217,728 B / 2.68e12 B/s = 50.081242 us; overhead 0.125 x 50.081242 x 32
  // layers = 200.324967 us; with the table 405.124967 us.
  const auto roofline = NewRooflineModel(llama, h100, 1,
                                         {.gemm_efficiency = 0.7,
                                          .memory_efficiency = 0.85,
                                          .attention_prefill_efficiency = 0.6,
                                          .attention_decode_efficiency = 0.8},
                                         costs);
  const double roofline_decode_us = 2.0 * 16 * 2048 * 2048 / (3.35e12 * 0.8) * 1e6;
  const double roofline_extra_us = 32 * (2.0 / 16) * roofline_decode_us + table_us;
  EXPECT_NEAR(roofline_extra_us, 405.124967, 1e-6);
  EXPECT_NEAR(static_cast<double>(
                  (roofline->IterationTime(paged) - roofline->IterationTime(contiguous)).count()) *
                  1e-3,
              roofline_extra_us, 2e-3);

  // Profiled: the fixture's contiguous decode row for batch 16 at 2,048 tokens is
  // 54.83 us per layer (line 218; the model's heads match the row's, no scaling);
  // overhead 0.125 x 54.83 x 32 = 219.32 us; with the table 424.12 us.
  const auto profiled =
      NewProfiledModel(LoadProfile(KVSIM_TEST_DATA_DIR "/timing/h100_profile.txt"), llama, h100, 1,
                       ProfiledConfig{}, costs);
  const double profiled_extra_us = 32 * (2.0 / 16) * 54.83 + table_us;
  EXPECT_NEAR(profiled_extra_us, 424.12, 1e-9);
  EXPECT_NEAR(static_cast<double>(
                  (profiled->IterationTime(paged) - profiled->IterationTime(contiguous)).count()) *
                  1e-3,
              profiled_extra_us, 2e-3);

  // And both declare the same shared terms.
  const std::vector<std::string> shared = CostTerms(llama, h100, 1, costs, 0.85).Assumptions();
  for (const std::string& sentence : shared) {
    EXPECT_THAT(roofline->Assumptions(), ::testing::Contains(sentence));
    EXPECT_THAT(profiled->Assumptions(), ::testing::Contains(sentence));
  }
}

}  // namespace
}  // namespace kvsim
