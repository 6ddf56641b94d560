// The profiled execution-time model: cases worked out by hand on small profiles with
// round numbers, the measured values at grid points of the H100 fixture, monotonicity
// between and beyond grid points, layouts, head scaling, and the errors.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/core/text.h"
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

constexpr const char* kFixture = KVSIM_TEST_DATA_DIR "/timing/h100_profile.txt";
constexpr const char* kPath = "p.txt";

// Prefill attention as measured, so the hand-made profile's figures come back; the
// small per-layer kernels at 0.8 of the card's bandwidth.
constexpr ProfiledConfig kAsMeasured{
    .prefill_attention = ProfiledConfig::PrefillAttention::kMeasured,
    .attention_prefill_efficiency = -1,
    .memory_efficiency = 0.8};

// No CPU costs (preset none: no engine term, no kernel gap), so that iteration times
// are GPU work only; the ring all-reduce at 8 us + 2 (tp-1)/tp x bytes / (link x 1.0);
// paged layouts through the profile's own paged rows.
CostConfig NoCpu() {
  CostConfig c;
  c.engine = EnginePresetDefaults(EngineConfig::Preset::kNone);
  c.allreduce = {.latency_s = 8e-6, .bus_efficiency = 1.0};
  c.paged_kernel = PagedKernel::kProfiled;
  c.paged = false;  // the manager's kind only changes what is declared
  return c;
}

double Us(Nanos t) { return static_cast<double>(t.count()) * 1e-3; }

// ---- Small hand-made model and profile ---------------------------------------

// 2 layers, hidden 1024, 8 query heads, 2 KV heads of 128, ffn 4096, vocab 32000.
// Per-rank GEMM shapes (n, k) at TP 1: qkv (1536, 1024), o (1024, 1024),
// gate_up (8192, 1024), down (1024, 4096), lm_head (32000, 1024).
ModelSpec Tiny() { return ::kvsim::testing::TinyDenseModel("tiny"); }

// Tiny with 8 experts of ffn 1024, top-2: gate_up (2048, 1024), down (1024, 1024).
ModelSpec TinyMoe() {
  ModelSpec m = Tiny();
  m.name = "tiny-moe";
  m.ffn_size = 1024;
  m.num_experts = 8;
  m.experts_per_token = 2;
  return m;
}

GpuSpec Gpu(double link_bytes_per_s = 450e9) {
  GpuSpec g;
  g.name = "test-gpu";
  g.memory_bytes = int64_t{80} << 30;
  g.hbm_bandwidth_bytes_per_s = 3.35e12;
  g.bf16_flops_per_s = 989.4e12;
  g.link_bandwidth_bytes_per_s = link_bytes_per_s;
  g.device_names = {"test"};  // TinyProfile's gpu_name
  return g;
}

// Gpu() with a bf16 peak of 4 PFLOP/s, for profiles whose round GEMM times beat a real
// card's peak (the checks against the card have tests of their own).
GpuSpec FastGpu() {
  GpuSpec g = Gpu();
  g.bf16_flops_per_s = 4e15;
  return g;
}

// Kernel rows as kvprobe writes them, their rate column the one their time implies (4
// significant digits): [gemm] tflops = 2 m n k / time, m = tokens;
// [decode_attention] kv_gbps = 2 x 2 bytes x batch x context x kv_heads x head_dim / time;
// [prefill_attention] tflops = 4 q_heads head_dim x batch x tokens (tokens + 1) / 2 / time.
std::string GemmRow(const std::string& model, std::string_view layer, int tp, int tokens, int64_t n,
                    int64_t k, double us) {
  return fmt::format("{},{},{},{},{},{},{},{},{:.4g}\n", model, layer, tp, tokens, tokens, n, k, us,
                     2.0 * tokens * static_cast<double>(n * k) / us * 1e-6);
}
std::string DecodeRow(std::string_view layout, int block, int batch, int context, int q_heads,
                      int kv_heads, double us, int head_dim = 128) {
  return fmt::format("{},{},{},{},{},{},{},{},{:.4g}\n", layout, block, batch, context, q_heads,
                     kv_heads, head_dim, us,
                     4.0 * batch * context * kv_heads * head_dim / us * 1e-3);
}
std::string PrefillRow(std::string_view layout, int block, int batch, int tokens, int q_heads,
                       double us, int kv_heads = 8, int head_dim = 128) {
  const double pairs = batch * tokens * (tokens + 1) / 2.0;
  return fmt::format("{},{},{},{},{},{},{},{},{:.4g}\n", layout, block, batch, tokens, q_heads,
                     kv_heads, head_dim, us, 4.0 * q_heads * head_dim * pairs / us * 1e-6);
}

// A profile with round numbers for one model at TP 1:
// - every linear layer (qkv, o, gate_up, down): (16, 8), (256, 10), (1024, 34),
//   (2048, 66), (4096, 130) in (tokens, us); the largest four lie on 2 + tokens / 32.
// - lm_head: twice those times.
// - decode attention (32 q heads, 8 KV heads, head_dim 128): batch {1, 4} x context
//   {256, 1024}, time = batch x context / 100 us contiguous; x2 paged with 16-token
//   blocks, x3 paged with 32-token blocks.
// - prefill attention (same heads): batch 1 of 15, 63 and 255 tokens and batch 2 of 15
//   (120, 2016, 32640 and 240 causal pairs), time = pairs / 100 us contiguous; x2 and
//   x3 paged as above.
struct TinyProfile {
  std::vector<std::pair<int, double>> linear = {
      {16, 8}, {256, 10}, {1024, 34}, {2048, 66}, {4096, 130}};
  int decode_kv_heads = 8;
  int prefill_q_heads = 32;
  bool paged = true;
  std::string allreduce;  // the [allreduce] section, if any

  std::string Render(const ModelSpec& m, int tp = 1) const {
    std::string s =
        "[meta]\nformat_version: 1\nkvprobe_version: 0.1.0\ngpu_name: test\n"
        "gpu_memory_bytes: 85899345920\nsm_count: 132\nsm_clock_mhz: 1980\n"
        "driver_version: 550.54.15\ncuda_driver_api_version: 12040\n"
        "cuda_runtime_version: 12040\ndate_utc: 2025-01-15T10:42:07Z\n"
        "allocation_granularity_bytes: 2097152\nhost: test\n"
        "[vmm]\ncall,handle_bytes,samples,p10_us,p50_us,p90_us,p99_us\n"
        "cuMemMap,2097152,10,1,1,1,1\n"
        "[copy]\nbytes,time_us,gbps\n1048576,6.08,344.8\n"
        "[gemm]\nmodel,layer,tensor_parallel,tokens,m,n,k,time_us,tflops\n";
    const int64_t kv = m.KvHeadsPerRank(tp);
    const std::vector<std::tuple<const char*, int64_t, int64_t, double>> layers = {
        {"qkv", (m.num_heads / tp + 2 * kv) * m.head_dim, m.hidden_size, 1},
        {"o", m.hidden_size, m.num_heads * m.head_dim / tp, 1},
        {"gate_up", 2 * m.ffn_size / tp, m.hidden_size, 1},
        {"down", m.hidden_size, m.ffn_size / tp, 1},
        {"lm_head", m.vocab_size / tp, m.hidden_size, 2}};
    for (const auto& [layer, n, k, factor] : layers) {
      for (const auto& [tokens, us] : linear)
        s += GemmRow(m.name, layer, tp, tokens, n, k, us * factor);
    }
    s += "[decode_attention]\n"
         "layout,block_tokens,batch,context_tokens,q_heads,kv_heads,head_dim,time_us,kv_gbps\n";
    for (const auto& [layout, block, factor] : std::vector<std::tuple<const char*, int, double>>{
             {"contiguous", 0, 1}, {"paged", 16, 2}, {"paged", 32, 3}}) {
      if (!paged && block > 0) continue;
      for (int batch : {1, 4}) {
        for (int context : {256, 1024}) {
          s += DecodeRow(layout, block, batch, context, 32, decode_kv_heads,
                         batch * context / 100.0 * factor);
        }
      }
    }
    s += "[prefill_attention]\n"
         "layout,block_tokens,batch,tokens,q_heads,kv_heads,head_dim,time_us,tflops\n";
    for (const auto& [layout, block, factor] : std::vector<std::tuple<const char*, int, double>>{
             {"contiguous", 0, 1}, {"paged", 16, 2}, {"paged", 32, 3}}) {
      if (!paged && block > 0) continue;
      for (const auto& [batch, tokens] :
           std::vector<std::pair<int, int>>{{1, 15}, {1, 63}, {1, 255}, {2, 15}}) {
        const double pairs = batch * tokens * (tokens + 1) / 2.0;
        s += PrefillRow(layout, block, batch, tokens, prefill_q_heads, pairs / 100.0 * factor);
      }
    }
    return s + allreduce;
  }
};

std::unique_ptr<ExecutionTimeModel> Model(const std::string& text, const ModelSpec& m,
                                          int64_t tp = 1, const ProfiledConfig& c = kAsMeasured,
                                          const GpuSpec& gpu = Gpu(),
                                          const CostConfig& costs = NoCpu()) {
  return NewProfiledModel(ParseProfile(text, kPath), m, gpu, tp, c, costs);
}

// The small per-layer kernels (not in the profile) over all layers, in us:
//   layers x tokens x bytes_per_token / (B x 0.8)
// bytes_per_token = b x (8 hidden + 2 (heads + kv_heads)/tp head_dim + 3 k ffn/tp
//                        + 4 kv_heads/tp head_dim), k experts per token:
//   Tiny at TP 1: 2 x (8,192 + 2 x 10 x 128 + 12,288 + 4 x 2 x 128) = 48,128 B
//   TinyMoe (ffn 1024, k 2): 2 x (8,192 + 2,560 + 6,144 + 1,024) = 35,840 B
//   Llama-3-8B: 2 x (8 x 4096 + 2 x 40 x 128 + 3 x 14336 + 4 x 8 x 128) = 180,224 B
constexpr double kTinySmallBytes = 48'128;
constexpr double kTinyMoeSmallBytes = 35'840;
constexpr double kLlamaSmallBytes = 180'224;
double SmallKernelsUs(double tokens, double bytes_per_token = kTinySmallBytes, double layers = 2,
                      double bandwidth = 3.35e12) {
  return layers * tokens * bytes_per_token / (bandwidth * 0.8) * 1e6;
}

// The 1-based line of the first line of `text` containing `needle`.
int LineOf(const std::string& text, const std::string& needle) {
  const size_t at = text.find(needle);
  EXPECT_NE(at, std::string::npos) << needle;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
}

// A batch of `tokens` prefill tokens in one sequence that emits no token and has no
// attention work: the linear layers only.
BatchWork LinearOnly(int64_t tokens) {
  return {.num_seqs = 1, .prefill_seqs = 1, .prefill_tokens = tokens};
}

// `batch` sequences decoding one token each over `context` tokens on average; no logits.
BatchWork Decode(int64_t batch, int64_t context_tokens_total,
                 AttentionLayout layout = AttentionLayout::kContiguous, int64_t block = 0) {
  return {.num_seqs = batch,
          .decode_tokens = batch,
          .decode_context_tokens = context_tokens_total,
          .max_context_tokens = context_tokens_total / batch,
          .layout = layout,
          .block_tokens = block};
}

// Attention time of all layers: the decode iteration minus the same tokens without
// attention (both rounded to ns, hence the 2 ns tolerance of the tests).
double DecodeAttentionUs(const ExecutionTimeModel& model, const BatchWork& w) {
  return Us(model.IterationTime(w)) - Us(model.IterationTime(LinearOnly(w.decode_tokens)));
}

// The model's caveats other than the one about decode rows that start above one
// sequence's KV heads per rank (the tiny and H100 profiles have 8-head rows only; that
// caveat has tests of its own).
std::vector<std::string> OtherCaveats(const ExecutionTimeModel& model) {
  std::vector<std::string> out;
  for (const std::string& c : model.Caveats()) {
    if (c.find("sequence-heads (batch x kv_heads)") == std::string::npos) out.push_back(c);
  }
  return out;
}

double PrefillAttentionUs(const ExecutionTimeModel& model, double pairs,
                          AttentionLayout layout = AttentionLayout::kContiguous,
                          int64_t block = 0) {
  BatchWork w = LinearOnly(64);
  w.prefill_attention_pairs = pairs;
  w.layout = layout;
  w.block_tokens = block;
  return Us(model.IterationTime(w)) - Us(model.IterationTime(LinearOnly(64)));
}

constexpr double kTolUs = 0.002;

// ---- GEMMs -------------------------------------------------------------------

TEST(ProfiledModel, AtAGridPointTheLinearLayersTakeTheirMeasuredTimes) {
  const auto model = Model(TinyProfile().Render(Tiny()), Tiny());
  // 2 layers x 4 GEMMs x 10 us at 256 tokens, and the small kernels:
  // 2 x 256 x 48,128 B / 2.68e12 B/s = 9.19460 us.
  EXPECT_NEAR(SmallKernelsUs(256), 9.19460, 1e-5);
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(256))), 80.0 + SmallKernelsUs(256), kTolUs);
  // 2 x 4 x 34 us at 1024 tokens; small kernels 4 x 9.19460 us.
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(1024))), 272.0 + SmallKernelsUs(1024), kTolUs);
}

TEST(ProfiledModel, BetweenGridPointsGemmTimesAreInterpolatedInLogTokensAndLogTime) {
  const auto model = Model(TinyProfile().Render(Tiny()), Tiny());
  // 512 tokens lie halfway between 256 and 1024 in log tokens: time = sqrt(10 x 34) us.
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(512))), 8 * std::sqrt(340.0) + SmallKernelsUs(512),
              kTolUs);
  // 300 tokens: 10 x 3.4^(ln(300/256) / ln 4) us.
  const double at_300 = 10 * std::pow(3.4, std::log(300.0 / 256) / std::log(4.0));
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(300))), 8 * at_300 + SmallKernelsUs(300), kTolUs);
}

TEST(ProfiledModel, BelowTheSmallestGridPointAGemmTakesThatPointsTime) {
  const auto model = Model(TinyProfile().Render(Tiny()), Tiny());
  for (int64_t tokens : {1, 2, 15, 16}) {
    EXPECT_NEAR(Us(model->IterationTime(LinearOnly(tokens))),
                8 * 8.0 + SmallKernelsUs(static_cast<double>(tokens)), kTolUs)
        << tokens;
  }
}

TEST(ProfiledModel, BeyondTheLargestGridPointGemmsFollowALineFittedToTheLargestFour) {
  const auto model = Model(TinyProfile().Render(Tiny()), Tiny());
  // (256, 10), (1024, 34), (2048, 66), (4096, 130) lie on 2 + tokens / 32 us; the
  // point (16, 8) does not, and is not part of the fit.
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(8192))),
              8 * (2 + 8192 / 32.0) + SmallKernelsUs(8192), kTolUs);
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(100000))),
              8 * (2 + 100000 / 32.0) + SmallKernelsUs(100000), kTolUs);
}

TEST(ProfiledModel, AtTheLargestGridPointAGemmKeepsItsTimeWhereTheFitLiesAboveIt) {
  TinyProfile p;
  p.linear = {{16, 8}, {1024, 34}, {2048, 66}, {3072, 98}, {4096, 126}};
  const auto model = Model(p.Render(Tiny()), Tiny());
  // Least squares through the largest four: x mean 2560, y mean 81, Sxy / Sxx =
  // 157,696 / 5,242,880 = 0.030078125 us a token, a = 81 - 77 = 4; at 4,096 tokens the
  // line gives 127.2 us, above the measured 126.
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(4096))), 8 * 126.0 + SmallKernelsUs(4096), kTolUs);
  // Beyond: 126 + 0.030078125 x (8,192 - 4,096) = 249.2 us (the line alone: 250.4).
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(8192))), 8 * 249.2 + SmallKernelsUs(8192), kTolUs);
}

TEST(ProfiledModel, TheLmHeadRunsOnTheLogitTokensOnly) {
  const auto model = Model(TinyProfile().Render(Tiny()), Tiny());
  BatchWork w = LinearOnly(1024);
  w.logit_tokens = 1;
  // lm_head at 1 logit token: below the grid, 2 x 8 us.
  EXPECT_NEAR(Us(model->IterationTime(w)), 272.0 + SmallKernelsUs(1024) + 16.0, kTolUs);
  w.logit_tokens = 256;
  EXPECT_NEAR(Us(model->IterationTime(w)), 272.0 + SmallKernelsUs(1024) + 20.0, kTolUs);
}

TEST(ProfiledModel, AMeasurementFasterThanOneAtFewerTokensSharesTheirMeanWithIt) {
  TinyProfile p;
  p.linear = {{16, 8}, {256, 7}, {1024, 34}, {2048, 66}, {4096, 130}};  // 256 tokens faster
  const auto model = Model(p.Render(Tiny()), Tiny());
  // 16 and 256 tokens both take (8 + 7) / 2 = 7.5 us, and so does every size between.
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(16))), 8 * 7.5 + SmallKernelsUs(16), kTolUs);
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(256))), 8 * 7.5 + SmallKernelsUs(256), kTolUs);
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(100))), 8 * 7.5 + SmallKernelsUs(100), kTolUs);
}

TEST(ProfiledModel, ARunOfFallingMeasurementsIsPooledUntilTheCurveNeverFalls) {
  TinyProfile p;
  // 256 and 512 tokens fall below 16; pooled: (12 + 9 + 6) / 3 = 9 us, then 1,024 and
  // 2,048 (34, 30) pool to 32, and 4,096 stays.
  p.linear = {{16, 12}, {256, 9}, {512, 6}, {1024, 34}, {2048, 30}, {4096, 130}};
  const auto model = Model(p.Render(Tiny()), Tiny(), 1, kAsMeasured, FastGpu());
  for (const auto& [tokens, us] :
       std::vector<std::pair<int64_t, double>>{{16, 9}, {512, 9}, {1024, 32}, {2048, 32}}) {
    EXPECT_NEAR(Us(model->IterationTime(LinearOnly(tokens))),
                8 * us + SmallKernelsUs(static_cast<double>(tokens)), kTolUs)
        << tokens;
  }
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(4096))), 8 * 130.0 + SmallKernelsUs(4096), kTolUs);
}

TEST(ProfiledModel, MoeExpertsReadRunEachOnTheirShareOfTheTokens) {
  const auto model = Model(TinyProfile().Render(TinyMoe()), TinyMoe());
  // 1 token, top-2 of 8: E_r = 8 (1 - (6/8)^1) = 2 experts at 1 x 2 / 2 = 1 token each:
  // per layer qkv 8 + o 8 + 2 x (gate_up 8 + down 8) = 48 us; 2 layers.
  // Small kernels: 2 x 1 x 35,840 B / 2.68e12 B/s = 0.026746 us per token.
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(1))), 96.0 + SmallKernelsUs(1, kTinyMoeSmallBytes),
              kTolUs);
  // 4 tokens: E_r = 8 (1 - 0.75^4) = 5.46875 experts at 8 / 5.46875 = 1.46 tokens (8 us):
  // 8 + 8 + 5.46875 x 16 = 103.5 us per layer.
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(4))),
              207.0 + SmallKernelsUs(4, kTinyMoeSmallBytes), kTolUs);
  // 4096 tokens: every expert is read (E_r = 8 to double precision), each at
  // 4096 x 2 / 8 = 1024 tokens (34 us): 130 + 130 + 8 x (34 + 34) = 804 us per layer.
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(4096))),
              1608.0 + SmallKernelsUs(4096, kTinyMoeSmallBytes), kTolUs);
}

// ---- Decode attention ----------------------------------------------------------

// The tiny profile's decode rows have 8 KV heads: batch 1 is 8 sequence-heads (the
// kernel's units), batch 4 is 32, and each row takes units / 8 x context / 100 us.
// Tiny has 2 KV heads (and 2 layers), so its batch B asks for 2 B units.

TEST(ProfiledModel, DecodeAttentionIsTheRowWithAsManySequenceHeadsAsBatchTimesKvHeadsPerRank) {
  const auto model = Model(TinyProfile().Render(Tiny()), Tiny());
  // 4 x 2 = 8 units at 1024: the batch-1 row, 10.24 us per layer.
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(4, 4 * 1024)), 2 * 10.24, kTolUs);
  // 16 x 2 = 32 units: the batch-4 rows, 10.24 us at 256 and 40.96 at 1024.
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(16, 16 * 256)), 2 * 10.24, kTolUs);
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(16, 16 * 1024)), 2 * 40.96, kTolUs);
}

TEST(ProfiledModel, DecodeAttentionIsBilinearInLogSequenceHeadsAndLogMeanContext) {
  const auto model = Model(TinyProfile().Render(Tiny()), Tiny());
  // The rows are a plane in (log units, log context, log time): 16 units at mean
  // context 512 take 16 / 8 x 512 / 100 = 10.24 us per layer.
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(8, 8 * 512)), 2 * 10.24, kTolUs);
  // Eight sequences, four of 256 tokens and four of 768: the mean context is 512 too.
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(8, 4 * 256 + 4 * 768)), 2 * 10.24, kTolUs);
  // 24 units at 700: 3 x 7 = 21 us per layer.
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(12, 12 * 700)), 2 * 21.0, kTolUs);
}

TEST(ProfiledModel, FewerSequenceHeadsThanTheSmallestRowTakeThatRowsTime) {
  const auto model = Model(TinyProfile().Render(Tiny()), Tiny());
  // One sequence of tiny's 2 KV heads is 2 units, a quarter of the smallest row's 8: a
  // GPU that launch left idle stays at least as idle, so the time is that row's (2.56
  // us per layer at 256 tokens), not a quarter of it.
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(1, 256)), 2 * 2.56, kTolUs);
  // Contexts below the smallest row's 256 take the 256 row's time as well.
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(1, 10)), 2 * 2.56, kTolUs);
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(4, 4 * 100)), 2 * 2.56, kTolUs);
}

TEST(ProfiledModel, DecodeAttentionBeyondTheGridFollowsTheLeastSquaresFitInUnitsTimesContext) {
  const auto model = Model(TinyProfile().Render(Tiny()), Tiny());
  // The fit over all contiguous rows is exactly units / 8 x context / 100 us.
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(32, 32 * 1024)), 2 * 81.92, kTolUs);
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(4, 4 * 4096)), 2 * 40.96, kTolUs);
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(256, 256 * 8192)), 2 * 512 / 8.0 * 8192 / 100.0,
              0.01);
}

TEST(ProfiledModel, BeyondTheGridDecodeAttentionContinuesFromTheEdgeCellAtTheFitsSlope) {
  std::string text = TinyProfile().Render(Tiny());
  const std::string row = DecodeRow("contiguous", 0, 4, 1024, 32, 8, 40.96);
  text.replace(text.find(row), row.size(), DecodeRow("contiguous", 0, 4, 1024, 32, 8, 36.96));
  const auto model = Model(text, Tiny());
  // Contiguous rows as (units = batch x 8 KV heads) x context against us: 2,048 -> 2.56,
  // 8,192 -> 10.24 (twice), 32,768 -> 36.96. Least squares: x mean 12,800, y mean 15.
  const std::vector<std::pair<double, double>> rows = {
      {2048, 2.56}, {8192, 10.24}, {8192, 10.24}, {32768, 36.96}};
  double sxy = 0, sxx = 0;
  for (const auto& [x, y] : rows) {
    sxy += (x - 12800) * (y - 15);
    sxx += (x - 12800) * (x - 12800);
  }
  const double slope_us = sxy / sxx;  // 616,120.32 / 556,793,856
  EXPECT_NEAR(slope_us, 0.0011065, 1e-7);
  // Tiny's 2 KV heads: batch 16 is 32 units, the edge cell 4 x 1024 of the profile;
  // context 2,048 is 32 x 1,024 units x tokens past it. Two layers.
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(16, 16 * 2048)), 2 * (36.96 + slope_us * 32 * 1024),
              kTolUs);
  // At the edge itself, the measured cell.
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(16, 16 * 1024)), 2 * 36.96, kTolUs);
}

TEST(ProfiledModel, AGridCellTheProfileLacksIsFilledFromTheFit) {
  std::string text = TinyProfile().Render(Tiny());
  const std::string row = DecodeRow("contiguous", 0, 4, 1024, 32, 8, 40.96);
  text.erase(text.find(row), row.size());
  const auto model = Model(text, Tiny());
  // The three rows left are still exactly units / 8 x context / 100 us, so is the fit.
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(16, 16 * 1024)), 2 * 40.96, kTolUs);
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(8, 8 * 512)), 2 * 10.24, kTolUs);
}

TEST(ProfiledModel, PagedBatchesUseThePagedRowsOfTheNearestBlockSize) {
  const auto model = Model(TinyProfile().Render(Tiny()), Tiny());
  const auto paged = [&](int64_t block) {
    return DecodeAttentionUs(*model, Decode(4, 4 * 1024, AttentionLayout::kPaged, block));
  };
  const double contiguous = 0.5 * 40.96;
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(4, 4 * 1024)), contiguous, kTolUs);
  EXPECT_NEAR(paged(16), 2 * contiguous, kTolUs);
  EXPECT_NEAR(paged(32), 3 * contiguous, kTolUs);
  // Unmeasured block sizes take the nearest measured one in log distance:
  // 20 is nearer 16 (ln 1.25) than 32 (ln 1.6); 23 is nearer 32 (ln 1.39 < ln 1.44).
  EXPECT_NEAR(paged(20), 2 * contiguous, kTolUs);
  EXPECT_NEAR(paged(23), 3 * contiguous, kTolUs);
  EXPECT_NEAR(paged(1), 2 * contiguous, kTolUs);
  EXPECT_NEAR(paged(256), 3 * contiguous, kTolUs);
}

TEST(ProfiledModel, RowsMeasuredWithFewerKvHeadsCountTheirOwnSequenceHeads) {
  TinyProfile p;
  p.decode_kv_heads = 4;  // batch 1 is 4 units, batch 4 is 16: units / 4 x context / 100 us
  const auto model = Model(p.Render(Tiny()), Tiny());
  // Tiny's 2 sequences are 4 units: the batch-1 row itself; 4 sequences, 8 units, lie
  // halfway in log units between the rows: 20.48 us per layer.
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(2, 2 * 1024)), 2 * 10.24, kTolUs);
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(4, 4 * 1024)), 2 * 20.48, kTolUs);
}

TEST(ProfiledModel, RowsOfSeveralKvHeadCountsJoinInOneSurfaceOfSequenceHeads) {
  std::string text = TinyProfile().Render(Tiny());
  // Batch-1 rows with one KV head (1 unit), slower per unit than the 8-head rows (a
  // near-idle GPU): 2 us at 256 tokens, 3 us at 1024.
  const std::string at = "contiguous,0,1,256,32,8,128";
  text.insert(text.find(at), DecodeRow("contiguous", 0, 1, 256, 4, 1, 2) +
                                 DecodeRow("contiguous", 0, 1, 1024, 4, 1, 3));
  const auto model = Model(text, Tiny());
  // Tiny at TP 2 would have one KV head per rank; at TP 1 one sequence is 2 units, a
  // third of the way in log units from 1 (3 us at 1024) to 8 (10.24 us): 3 x (10.24 /
  // 3)^(1/3).
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(1, 1024)), 2 * 3 * std::cbrt(10.24 / 3), kTolUs);
}

TEST(ProfiledModel, PrefillAttentionIsInterpolatedInCausalPairsAndScaledToQueryHeads) {
  const auto model = Model(TinyProfile().Render(Tiny()), Tiny());
  // Rows: pairs / 100 us with 32 query heads; tiny has 8: x 0.25, over 2 layers x 0.5.
  EXPECT_NEAR(PrefillAttentionUs(*model, 2016), 0.5 * 20.16, kTolUs);   // grid point
  EXPECT_NEAR(PrefillAttentionUs(*model, 10000), 0.5 * 100.0, kTolUs);  // between
  // Below the smallest row (120 pairs) the first segment's log-log line continues:
  // time = pairs / 100 there, so 50 pairs take 0.5 us (not the 1.2 us of 120 pairs).
  EXPECT_NEAR(PrefillAttentionUs(*model, 50), 0.5 * 0.5, kTolUs);
  EXPECT_NEAR(PrefillAttentionUs(*model, 1e6), 0.5 * 1e4, 0.01);  // beyond: the fit
}

TEST(ProfiledModel, PagedPrefillUsesThePagedRows) {
  const auto model = Model(TinyProfile().Render(Tiny()), Tiny());
  EXPECT_NEAR(PrefillAttentionUs(*model, 2016, AttentionLayout::kPaged, 16), 2 * 0.5 * 20.16,
              kTolUs);
  EXPECT_NEAR(PrefillAttentionUs(*model, 2016, AttentionLayout::kPaged, 32), 3 * 0.5 * 20.16,
              kTolUs);
}

TEST(ProfiledModel, PrefillAttentionScalesWithTheProfilesQueryHeads) {
  TinyProfile p;
  p.prefill_q_heads = 16;
  const auto model = Model(p.Render(Tiny()), Tiny());
  EXPECT_NEAR(PrefillAttentionUs(*model, 2016), 2 * 0.5 * 20.16, kTolUs);
}

// The tiny profile's rows with 32 query heads, and the same rows with `q_heads` at
// `factor` times their time, for model `m`.
std::string WithPrefillRowsOf(int q_heads, double factor, const ModelSpec& m = Tiny()) {
  TinyProfile other;
  other.prefill_q_heads = q_heads;
  const std::string header = "tflops\n";
  std::string text = TinyProfile().Render(m);
  const std::string theirs = other.Render(m);
  const size_t from = theirs.find(header, theirs.find("[prefill_attention]")) + header.size();
  std::istringstream rows(theirs.substr(from));
  std::string added, row;
  while (std::getline(rows, row) && !row.empty() && row[0] != '[') {
    // layout, block_tokens, batch, tokens, q_heads, kv_heads, head_dim, time_us, tflops
    const std::vector<std::string_view> f = SplitFields(row);
    added +=
        PrefillRow(f[0], std::stoi(std::string(f[1])), std::stoi(std::string(f[2])),
                   std::stoi(std::string(f[3])), q_heads, std::stod(std::string(f[7])) * factor);
  }
  const size_t at = text.find(header, text.find("[prefill_attention]")) + header.size();
  return text.insert(at, added);
}

TEST(ProfiledModel, PrefillAttentionUsesTheRowsOfTheRanksQueryHeadsWhereTheProfileHasThem) {
  // Rows with 8 query heads at 3x the 32-head rows' time: tiny has 8 query heads, so it
  // takes those rows as they are (3 x 20.16 us per layer at 2016 pairs), not a quarter of
  // the 32-head rows' 20.16.
  const auto model = Model(WithPrefillRowsOf(8, 3), Tiny());
  EXPECT_NEAR(PrefillAttentionUs(*model, 2016), 2 * 3 * 20.16, kTolUs);
  EXPECT_NEAR(PrefillAttentionUs(*model, 2016, AttentionLayout::kPaged, 16), 2 * 2 * 3 * 20.16,
              kTolUs);
}

TEST(ProfiledModel, PrefillAttentionScalesTheNearestMeasuredQueryHeadsTheSmallerOnATie) {
  ModelSpec m = Tiny();
  m.num_heads = 16;  // log-equidistant from the rows' 8 and 32
  const auto model = Model(WithPrefillRowsOf(8, 3, m), m);
  EXPECT_NEAR(PrefillAttentionUs(*model, 2016), 2 * 2 * 3 * 20.16, kTolUs);
  m.num_heads = 24;  // nearer 32 (ln 4/3 < ln 3)
  const auto nearer32 = Model(WithPrefillRowsOf(8, 3, m), m);
  EXPECT_NEAR(PrefillAttentionUs(*nearer32, 2016), 2 * 0.75 * 20.16, kTolUs);
}

// ---- All-reduce, CPU ------------------------------------------------------------

TEST(ProfiledModel, TensorParallelUsesTheMeasuredAllReduceElseTheRingFormula) {
  ModelSpec m = Tiny();
  m.num_kv_heads = 4;
  m.num_heads = 8;
  TinyProfile p;
  const auto ring = Model(p.Render(m, 2), m, 2);
  // 64 tokens x 1024 hidden x 2 bytes = 131072 bytes, two all-reduces per layer and
  // the embedding's, once per pass (no logits, so no all-gather): 2 x 2 + 1 = 5.
  p.allreduce =
      "[allreduce]\ngpus,bytes,time_us,algbw_gbps,busbw_gbps,in_graph_us\n"
      "2,65536,1,0,0,10\n2,262144,2,0,0,40\n4,65536,99,0,0,99\n4,262144,99,0,0,99\n";
  const auto measured = Model(p.Render(m, 2), m, 2);
  // Measured (in_graph_us): halfway in log bytes between 10 and 40 us: 20 us (the 4-GPU
  // rows unused).
  // Ring: 8 us + 2 (1/2) 131072 / 450e9 s = 8.29127 us.
  const double ring_us = 8 + 131072 / 450e9 * 1e6;
  EXPECT_NEAR(Us(measured->IterationTime(LinearOnly(64))) - Us(ring->IterationTime(LinearOnly(64))),
              (2 * 2 + 1) * (20 - ring_us), kTolUs);
  EXPECT_THAT(OtherCaveats(*measured), ::testing::IsEmpty());
  ASSERT_EQ(OtherCaveats(*ring).size(), 1u);
  EXPECT_THAT(OtherCaveats(*ring)[0],
              HasSubstr("all-reduce on 2 GPUs is not in the profile (no "
                        "[allreduce] rows); it is the ring formula at the "
                        "test-gpu card's link bandwidth (timing.allreduce)"));
  // One GPU: no all-reduce and nothing to declare.
  EXPECT_NEAR(Us(Model(p.Render(m, 1), m, 1)->IterationTime(LinearOnly(64))),
              Us(Model(TinyProfile().Render(m, 1), m, 1)->IterationTime(LinearOnly(64))), 0);
  EXPECT_THAT(OtherCaveats(*Model(p.Render(m, 1), m, 1)), ::testing::IsEmpty());
}

// Tiny with 8 query and 8 KV heads, so that it splits over 8 GPUs.
ModelSpec TinyFor8() {
  ModelSpec m = Tiny();
  m.num_heads = 8;
  m.num_kv_heads = 8;
  return m;
}

// All-reduce rows: for each GPU count, (bytes, us) pairs.
// [allreduce] rows of (gpus, bytes, in_graph_us), with time_us (unused) at half of it.
std::string AllreduceRows(const std::vector<std::tuple<int, int, double>>& rows) {
  std::string s = "[allreduce]\ngpus,bytes,time_us,algbw_gbps,busbw_gbps,in_graph_us\n";
  for (const auto& [gpus, bytes, us] : rows) {
    s += fmt::format("{},{},{},0,0,{}\n", gpus, bytes, us / 2, us);
  }
  return s;
}

TEST(ProfiledModel, APassWithLogitsAlsoGathersThemAsAnAllReduceOfHalfTheirBytes) {
  ModelSpec m = Tiny();
  m.num_kv_heads = 4;
  m.num_heads = 8;
  m.vocab_size = 131072;
  // Two profiles whose 2-GPU all-reduces differ by a factor 2 at every size (10 -> 20 us
  // at 64 KiB, 40 -> 80 us at 256 KiB: time proportional to bytes between them, flat
  // below): the iteration differs by the sum of the slower curve's all-reduces, once.
  TinyProfile fast, slow;
  fast.allreduce = AllreduceRows({{2, 65536, 10}, {2, 262144, 40}});
  slow.allreduce = AllreduceRows({{2, 65536, 20}, {2, 262144, 80}});
  const auto a = Model(fast.Render(m, 2), m, 2, kAsMeasured, FastGpu());
  const auto b = Model(slow.Render(m, 2), m, 2, kAsMeasured, FastGpu());
  BatchWork w = LinearOnly(4);  // 4 tokens x 1024 x 2 B = 8 KiB per all-reduce: 10 us
  // No logits: two all-reduces in each of 2 layers and the embedding's: 5 x 10 us.
  EXPECT_NEAR(Us(b->IterationTime(w)) - Us(a->IterationTime(w)), 50, kTolUs);
  // One sequence emits a token: its logits, 1 x 131072 x 2 B = 256 KiB gathered, add an
  // all-reduce of 128 KiB, 10 x 131072 / 65536 = 20 us on the fast curve.
  w.logit_tokens = 1;
  EXPECT_NEAR(Us(b->IterationTime(w)) - Us(a->IterationTime(w)), 50 + 20, kTolUs);
}

TEST(ProfiledModel, TensorParallelEightIsExtrapolatedFromTheTwoAndFourGpuRows) {
  const ModelSpec m = TinyFor8();
  TinyProfile measured_2_4, measured_8, slower_8;
  measured_2_4.allreduce =
      AllreduceRows({{2, 65536, 10}, {2, 262144, 40}, {4, 65536, 16}, {4, 262144, 46}});
  // At each size, time = a + b x 2(n-1)/n through (1, T2) and (1.5, T4); at 8 GPUs
  // (1.75): T4 + (T4 - T2) / 2 = 19 us at 64 KiB and 49 us at 256 KiB.
  measured_8.allreduce = AllreduceRows({{8, 65536, 19}, {8, 262144, 49}});
  slower_8.allreduce = AllreduceRows({{8, 65536, 29}, {8, 262144, 59}});
  const auto extrapolated = Model(measured_2_4.Render(m, 8), m, 8);
  const auto as_if_measured = Model(measured_8.Render(m, 8), m, 8);
  const auto slower = Model(slower_8.Render(m, 8), m, 8);
  // 32 tokens x 1024 hidden x 2 bytes = 64 KiB; 128 tokens = 256 KiB; 64 tokens lies
  // between (log-log on the estimated points).
  for (int64_t tokens : {32, 64, 128}) {
    SCOPED_TRACE(tokens);
    EXPECT_NEAR(Us(extrapolated->IterationTime(LinearOnly(tokens))),
                Us(as_if_measured->IterationTime(LinearOnly(tokens))), kTolUs);
  }
  for (int64_t tokens : {32, 128}) {  // at the measured sizes: 10 us more per all-reduce,
    SCOPED_TRACE(tokens);             // two per layer, two layers, and the embedding's
    EXPECT_NEAR(Us(slower->IterationTime(LinearOnly(tokens))) -
                    Us(extrapolated->IterationTime(LinearOnly(tokens))),
                (2 * 2 + 1) * 10, kTolUs);
  }
  ASSERT_EQ(OtherCaveats(*extrapolated).size(), 1u);
  EXPECT_THAT(OtherCaveats(*extrapolated)[0],
              HasSubstr("p.txt: all-reduce on 8 GPUs is not in the profile (measured: 2 and 4 "
                        "GPUs); it is extrapolated"));
  EXPECT_THAT(OtherCaveats(*as_if_measured), ::testing::IsEmpty());
}

TEST(ProfiledModel, OneMeasuredGpuCountKeepsItsBusBandwidthAtOtherCounts) {
  const ModelSpec m = TinyFor8();
  TinyProfile only_4, as_if_8;
  only_4.allreduce = AllreduceRows({{4, 65536, 12}, {4, 262144, 30}});
  // Time x 1.75 / 1.5: 14 us and 35 us.
  as_if_8.allreduce = AllreduceRows({{8, 65536, 14}, {8, 262144, 35}});
  for (int64_t tokens : {32, 128}) {
    EXPECT_NEAR(Us(Model(only_4.Render(m, 8), m, 8)->IterationTime(LinearOnly(tokens))),
                Us(Model(as_if_8.Render(m, 8), m, 8)->IterationTime(LinearOnly(tokens))), kTolUs);
  }
  EXPECT_THAT(OtherCaveats(*Model(only_4.Render(m, 8), m, 8)).at(0),
              HasSubstr("it is the 4-GPU time scaled by the ring factor"));
}

TEST(ProfiledModel, EngineCostsAreTheConfiguredOnes) {
  const std::string text = TinyProfile().Render(Tiny());
  CostConfig engine = NoCpu();
  engine.engine.per_iteration_s = 1e-3;
  engine.engine.per_seq_s = 5e-6;
  engine.engine.block_table_entry_s = 5e-9;
  const BatchWork w = Decode(3, 300, AttentionLayout::kPaged, 16);
  // 1 ms + 3 x 5 us + 5 ns x 3 sequences x ceil(100 / 16) = 7 blocks = 1015.105 us.
  EXPECT_NEAR(Us(Model(text, Tiny(), 1, kAsMeasured, Gpu(), engine)->IterationTime(w)) -
                  Us(Model(text, Tiny(), 1)->IterationTime(w)),
              1000 + 3 * 5 + 5e-3 * 3 * 7, kTolUs);
  EXPECT_NEAR(1000 + 3 * 5 + 5e-3 * 3 * 7, 1015.105, 1e-9);
}

TEST(ProfiledModel, KernelGapsAreChargedOnlyToTheFiveSmallKernelsEstimatedFromTheirBytes) {
  const std::string text = TinyProfile().Render(Tiny());
  CostConfig gaps = NoCpu();
  gaps.engine.kernel_gap_s = 1e-6;
  // The GEMM and attention rows are graph replays, each launch's boundary inside its
  // time; the two norms, RoPE, KV write and activation, from their bytes, get a gap
  // each: 2 layers x 5 kernels x 1 us = 10 us, whatever the batch.
  for (int64_t tokens : {1, 256, 4096}) {
    EXPECT_NEAR(
        Us(Model(text, Tiny(), 1, kAsMeasured, Gpu(), gaps)->IterationTime(LinearOnly(tokens))) -
            Us(Model(text, Tiny(), 1)->IterationTime(LinearOnly(tokens))),
        2 * 5 * 1.0, kTolUs)
        << tokens;
  }
}

TEST(ProfiledModel, WithoutCudaGraphsAPassTakesTheLongerOfItsLaunchesAndItsGpuTime) {
  const std::string text = TinyProfile().Render(Tiny());
  CostConfig eager = NoCpu();
  eager.engine.cuda_graphs = false;
  eager.engine.launch_per_layer_s = 1e-4;
  const auto graphs = Model(text, Tiny());
  const auto launched = Model(text, Tiny(), 1, kAsMeasured, Gpu(), eager);
  // 2 layers x 100 us = 200 us of launches, queued ahead of the GPU: a pass whose
  // kernels take less waits for them, one whose kernels take more hides them.
  for (int64_t tokens : {16, 4096}) {
    const double gpu_us = Us(graphs->IterationTime(LinearOnly(tokens)));
    EXPECT_NEAR(Us(launched->IterationTime(LinearOnly(tokens))), std::max(gpu_us, 2 * 100.0),
                kTolUs)
        << tokens;
  }
  // Both sides of the max are exercised: 16 tokens run under 200 us, 4,096 over.
  EXPECT_LT(Us(graphs->IterationTime(LinearOnly(16))), 200);
  EXPECT_GT(Us(graphs->IterationTime(LinearOnly(4096))), 200);
}

TEST(ProfiledModel, ANamedPagedKernelTimesTheContiguousRowsThroughItsCurve) {
  const std::string text = TinyProfile().Render(Tiny());
  CostConfig flash = NoCpu();
  flash.paged_kernel = PagedKernel::kFlashPaged;
  CostConfig flashinfer = NoCpu();
  flashinfer.paged_kernel = PagedKernel::kFlashInferPaged;
  const double contiguous = 0.5 * 40.96;  // decode batch 4 x 1024, see above
  // flash_paged: x (1 + 2 / 16) = x 1.125; flashinfer_paged: x (1 + 1 / 16) = x 1.0625.
  const BatchWork paged = Decode(4, 4 * 1024, AttentionLayout::kPaged, 16);
  EXPECT_NEAR(DecodeAttentionUs(*Model(text, Tiny(), 1, kAsMeasured, Gpu(), flash), paged),
              contiguous * (1 + 2.0 / 16), kTolUs);
  EXPECT_NEAR(DecodeAttentionUs(*Model(text, Tiny(), 1, kAsMeasured, Gpu(), flashinfer), paged),
              contiguous * (1 + 1.0 / 16), kTolUs);
  // Prefill at 2016 pairs (contiguous 0.5 x 20.16 us), measured as it is: x 1.37 and x 1.42.
  EXPECT_NEAR(PrefillAttentionUs(*Model(text, Tiny(), 1, kAsMeasured, Gpu(), flash), 2016,
                                 AttentionLayout::kPaged, 16),
              0.5 * 20.16 * 1.37, kTolUs);
  EXPECT_NEAR(PrefillAttentionUs(*Model(text, Tiny(), 1, kAsMeasured, Gpu(), flashinfer), 2016,
                                 AttentionLayout::kPaged, 16),
              0.5 * 20.16 * 1.42, kTolUs);
}

TEST(ProfiledModel, TheProfilesOwnPagedKernelOnAPagedCacheIsACaveatANamedOneAnAssumption) {
  const std::string text = TinyProfile().Render(Tiny());
  CostConfig own = NoCpu();
  own.paged = true;
  const auto profiled = Model(text, Tiny(), 1, kAsMeasured, Gpu(), own);
  EXPECT_EQ(profiled->Name(), "profiled");
  ASSERT_EQ(OtherCaveats(*profiled).size(), 1u);
  EXPECT_EQ(OtherCaveats(*profiled)[0],
            "kv_cache.paged_kernel: profiled times kvprobe's own paged kernel (p.txt), not a "
            "serving engine's");
  // The assumptions: the small kernels, not in this profile, and the engine preset
  // (memory efficiency given, TP 1).
  ASSERT_EQ(profiled->Assumptions().size(), 2u);
  EXPECT_THAT(profiled->Assumptions()[0], HasSubstr("no [small_kernels] rows for tiny"));
  EXPECT_THAT(profiled->Assumptions()[1], HasSubstr("timing.engine: preset none"));

  CostConfig named = own;
  named.paged_kernel = PagedKernel::kFlashInferPaged;
  const auto flashinfer = Model(text, Tiny(), 1, kAsMeasured, Gpu(), named);
  EXPECT_THAT(OtherCaveats(*flashinfer), ::testing::IsEmpty());
  ASSERT_EQ(flashinfer->Assumptions().size(), 3u);
  EXPECT_THAT(flashinfer->Assumptions()[2], HasSubstr("kv_cache.paged_kernel: flashinfer_paged"));
}

TEST(ProfiledModel, AssumptionsListTheGenericMemoryAndPrefillEfficienciesItUses) {
  const std::string text = TinyProfile().Render(Tiny());
  // Gpu() states no efficiency. Prefill from the roofline formula: both generic values
  // are used; measured prefill: only the memory efficiency of the small kernels.
  const auto roofline_prefill = Model(text, Tiny(), 1, ProfiledConfig{});
  ASSERT_EQ(roofline_prefill->Assumptions().size(), 4u);
  EXPECT_EQ(roofline_prefill->Assumptions()[0],
            "memory_efficiency: the test-gpu card states none; the generic 0.85 of peak is "
            "assumed");
  EXPECT_EQ(roofline_prefill->Assumptions()[1],
            "attention_prefill_efficiency: the test-gpu card states none; the generic 0.6 of "
            "peak is assumed");
  ProfiledConfig measured;
  measured.prefill_attention = ProfiledConfig::PrefillAttention::kMeasured;
  const auto measured_prefill = Model(text, Tiny(), 1, measured);
  ASSERT_EQ(measured_prefill->Assumptions().size(), 3u);
  EXPECT_THAT(measured_prefill->Assumptions()[0], HasSubstr("memory_efficiency"));
  EXPECT_THAT(measured_prefill->Assumptions()[1], HasSubstr("no [small_kernels] rows for tiny"));
  // The small kernels then stream at 3.35e12 x 0.85: at 256 tokens
  // 2 x 256 x 48,128 / 2.8475e12 = 8.65374 us.
  EXPECT_NEAR(Us(measured_prefill->IterationTime(LinearOnly(256))),
              80.0 + SmallKernelsUs(256) * 0.8 / 0.85, kTolUs);
  // A card stating its memory efficiency: nothing generic is left with measured prefill.
  GpuSpec card = Gpu();
  card.efficiency.memory = 0.85;
  EXPECT_EQ(Model(text, Tiny(), 1, measured, card)->Assumptions().size(), 2u);
}

// [small_kernels] rows of tiny at TP 1: (tokens, us per layer).
std::string SmallKernelRows(const std::vector<std::pair<int, double>>& rows) {
  std::string s = "[small_kernels]\nmodel,tensor_parallel,tokens,time_us\n";
  for (const auto& [tokens, us] : rows) s += fmt::format("tiny,1,{},{}\n", tokens, us);
  return s;
}

// The tiny profile with [small_kernels] rows of 5, 9 and 90 us at 16, 256 and 4,096 tokens.
std::string TinyWithSmallKernelRows() {
  TinyProfile p;
  p.allreduce = SmallKernelRows({{16, 5}, {256, 9}, {4096, 90}});
  return p.Render(Tiny());
}

TEST(ProfiledModel, MeasuredSmallKernelsReplaceTheirBytesEstimatePlusTheKernelGaps) {
  const auto model = Model(TinyWithSmallKernelRows(), Tiny());
  const auto estimated = Model(TinyProfile().Render(Tiny()), Tiny());
  // Per layer, against the estimate: the measured time instead of the bytes term (the
  // engine preset none has no kernel gap). At 256 tokens 9 us, at 1024 the log-log
  // midpoint of 9 and 90 us: 9 x sqrt(10) = 28.46 us; below the grid, flat (5 us).
  for (const auto& [tokens, us] :
       std::vector<std::pair<int, double>>{{256, 9.0}, {1024, 9 * std::sqrt(10.0)}, {1, 5.0}}) {
    EXPECT_NEAR(Us(model->IterationTime(LinearOnly(tokens))) -
                    Us(estimated->IterationTime(LinearOnly(tokens))),
                2 * us - SmallKernelsUs(tokens), kTolUs)
        << tokens << " tokens";
  }
  // Measured small kernels need no memory efficiency and declare nothing.
  for (const std::string& a : model->Assumptions()) {
    EXPECT_THAT(a, ::testing::Not(HasSubstr("small_kernels")));
    EXPECT_THAT(a, ::testing::Not(HasSubstr("memory_efficiency")));
  }
}

TEST(ProfiledModel, SmallKernelsTimedBackToBackAreACaveatAndThoseTimedAsInAPassAreNot) {
  TinyProfile two;  // decode rows down to one sequence: no decode caveat
  two.decode_kv_heads = 2;
  // kvprobe 0.3.5 and earlier: time_us only, the kernels back to back.
  two.allreduce = SmallKernelRows({{16, 5}, {256, 9}, {4096, 90}});
  EXPECT_THAT(
      Model(two.Render(Tiny()), Tiny())->Caveats(),
      ElementsAre(::testing::AllOf(HasSubstr("[small_kernels] rows time the kernels back to back"),
                                   HasSubstr("no warm_time_us column"))));
  // kvprobe 0.3.6 and later: time_us among the GEMMs' stand-ins, warm_time_us beside it.
  // The model takes time_us: at 256 tokens 9 us a layer, not the 7 us back to back.
  two.allreduce =
      "[small_kernels]\nmodel,tensor_parallel,tokens,time_us,warm_time_us\n"
      "tiny,1,16,5,3\ntiny,1,256,9,7\ntiny,1,4096,90,88\n";
  const auto as_in_pass = Model(two.Render(Tiny()), Tiny());
  EXPECT_THAT(as_in_pass->Caveats(), ::testing::IsEmpty());
  two.allreduce = SmallKernelRows({{16, 5}, {256, 9}, {4096, 90}});
  EXPECT_NEAR(Us(as_in_pass->IterationTime(LinearOnly(256))),
              Us(Model(two.Render(Tiny()), Tiny())->IterationTime(LinearOnly(256))), kTolUs);
}

TEST(ProfiledModel, AnUnfusedEngineAddsItsExtraBytesToTheMeasuredFusedSmallKernels) {
  const std::string text = TinyWithSmallKernelRows();
  CostConfig unfused = NoCpu();
  unfused.engine.fused_kernels = false;
  // kvprobe's rows time fused kernels; the unfused operators move 110,592 B more per
  // token and layer (cost_terms_test): at 256 tokens over 2 layers, at 3.35e12 x 0.8,
  // 2 x 256 x 110,592 / 2.68e12 = 21.128 us more.
  EXPECT_NEAR(
      Us(Model(text, Tiny(), 1, kAsMeasured, Gpu(), unfused)->IterationTime(LinearOnly(256))) -
          Us(Model(text, Tiny(), 1)->IterationTime(LinearOnly(256))),
      SmallKernelsUs(256, 110'592), kTolUs);
  EXPECT_NEAR(SmallKernelsUs(256, 110'592), 21.128, 1e-3);
}

TEST(ProfiledModel, AnEngineRunningMoreKernelsPaysTheirGapsBesideTheMeasuredSmallKernels) {
  const std::string text = TinyWithSmallKernelRows();
  CostConfig more = NoCpu();
  more.engine.kernel_gap_s = 1e-6;
  more.engine.kernels_per_layer = 35;
  // 25 kernels a layer beyond a fused engine's 10, 1 us each: 2 layers x 25 us.
  EXPECT_NEAR(Us(Model(text, Tiny(), 1, kAsMeasured, Gpu(), more)->IterationTime(LinearOnly(256))) -
                  Us(Model(text, Tiny(), 1)->IterationTime(LinearOnly(256))),
              2 * 25.0, kTolUs);
}

TEST(ProfiledModel, MeasuredSmallKernelsGetNoKernelGapEither) {
  const std::string text = TinyWithSmallKernelRows();
  CostConfig gaps = NoCpu();
  gaps.engine.kernel_gap_s = 1e-6;
  for (int64_t tokens : {1, 256, 4096}) {
    EXPECT_EQ(Model(text, Tiny(), 1, kAsMeasured, Gpu(), gaps)->IterationTime(LinearOnly(tokens)),
              Model(text, Tiny(), 1)->IterationTime(LinearOnly(tokens)))
        << tokens;
  }
}

TEST(ProfiledModel, SmallKernelRowsOfOtherModelsOrTensorParallelsLeaveTheEstimate) {
  TinyProfile p;
  p.allreduce =
      "[small_kernels]\nmodel,tensor_parallel,tokens,time_us\n"
      "tiny,2,16,5\ntiny,2,256,9\nother,1,16,5\nother,1,256,9\n";
  const auto model = Model(p.Render(Tiny()), Tiny());
  EXPECT_EQ(model->IterationTime(LinearOnly(256)),
            Model(TinyProfile().Render(Tiny()), Tiny())->IterationTime(LinearOnly(256)));
  EXPECT_THAT(model->Assumptions(), ::testing::Contains(HasSubstr("no [small_kernels] rows for "
                                                                  "tiny at tensor_parallel 1")));
}

// ---- The H100 fixture ------------------------------------------------------------

ModelSpec Llama3_8B() { return LoadModelSpec(KVSIM_SOURCE_DIR "/models/llm/Llama-3-8B.yaml"); }
GpuSpec H100() { return LoadGpuSpec(KVSIM_SOURCE_DIR "/models/gpu/H100-SXM.yaml"); }

std::string FixtureText() {
  std::ifstream in(kFixture);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::unique_ptr<ExecutionTimeModel> H100Model(int64_t tp = 1) {
  return NewProfiledModel(LoadProfile(kFixture), Llama3_8B(), H100(), tp, kAsMeasured, NoCpu());
}

TEST(ProfiledModelOnH100, AtGridPointsTheMeasuredGemmTimesAreReturned) {
  const auto model = H100Model();
  // Fixture lines 64, 79, 94, 109: qkv 29.78, o 21.25, gate_up 123.58, down 63.89 us at
  // 256 tokens; 32 layers.
  // The small kernels add 32 x 256 x 180,224 B / (3.35e12 x 0.8) = 550.8936 us.
  const double small_us = SmallKernelsUs(256, kLlamaSmallBytes, 32);
  EXPECT_NEAR(small_us, 550.8936, 1e-4);
  EXPECT_NEAR(Us(model->IterationTime(LinearOnly(256))),
              32 * (29.78 + 21.25 + 123.58 + 63.89) + small_us, kTolUs);
  BatchWork w = LinearOnly(256);
  w.logit_tokens = 256;  // line 124: lm_head 538.20 us
  EXPECT_NEAR(Us(model->IterationTime(w)),
              32 * (29.78 + 21.25 + 123.58 + 63.89) + small_us + 538.20, kTolUs);
}

TEST(ProfiledModelOnH100, AtGridPointsTheMeasuredDecodeAttentionIsReturned) {
  const auto model = H100Model();
  // Llama-3-8B has the rows' 8 KV heads of 128 at TP 1, so no scaling. Batch 16,
  // context 2048: contiguous 54.83 us (line 218); paged 16-token blocks 66.90 us (line 237).
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(16, 16 * 2048)), 32 * 54.83, 0.01);
  EXPECT_NEAR(DecodeAttentionUs(*model, Decode(16, 16 * 2048, AttentionLayout::kPaged, 16)),
              32 * 66.90, 0.01);
}

TEST(ProfiledModelOnH100, TensorParallelTwoAtBatchTwoBIsOneGpuAtBatchB) {
  const auto tp1 = H100Model(1);
  const auto tp2 = H100Model(2);
  // Each rank holds 4 of Llama-3-8B's 8 KV heads: 64 sequences are 256 units, as 32
  // sequences on one GPU.
  EXPECT_NEAR(DecodeAttentionUs(*tp2, Decode(64, 64 * 3000)),
              DecodeAttentionUs(*tp1, Decode(32, 32 * 3000)), 0.01);
  // One sequence is 4 units, fewer than the profile's smallest row (batch 1 x 8 heads):
  // that row's time, not half of it.
  EXPECT_NEAR(DecodeAttentionUs(*tp2, Decode(1, 3000)), DecodeAttentionUs(*tp1, Decode(1, 3000)),
              0.01);
}

TEST(ProfiledModelOnH100, TimeNeverDecreasesWithTokens) {
  const auto model = H100Model();
  Nanos last{0};
  for (int64_t tokens = 1; tokens <= 65536; tokens += 1 + tokens / 64) {
    const Nanos t = model->IterationTime(LinearOnly(tokens));
    EXPECT_GE(t, last) << tokens << " tokens";
    last = t;
  }
}

TEST(ProfiledModelOnH100, DecodeTimeNeverDecreasesWithContextOrBatch) {
  const auto model = H100Model();
  for (const auto& [layout, block] : std::vector<std::pair<AttentionLayout, int64_t>>{
           {AttentionLayout::kContiguous, 0}, {AttentionLayout::kPaged, 16}}) {
    for (int64_t batch : {1, 3, 16, 100, 256, 400}) {
      Nanos last{0};
      for (int64_t context = 1; context <= 100000; context += 1 + context / 32) {
        const Nanos t = model->IterationTime(Decode(batch, batch * context, layout, block));
        EXPECT_GE(t, last) << batch << " x " << context;
        last = t;
      }
    }
    for (int64_t context : {100, 512, 3000, 32768, 50000}) {
      double last_us = 0;
      for (int64_t batch = 1; batch <= 600; batch += 1 + batch / 16) {
        const double us = DecodeAttentionUs(*model, Decode(batch, batch * context, layout, block));
        EXPECT_GE(us, last_us - 0.002) << batch << " x " << context;
        last_us = us;
      }
    }
  }
}

TEST(ProfiledModelOnH100, PrefillAttentionNeverDecreasesWithPairs) {
  const auto model = H100Model();
  double last = 0;
  for (double pairs = 1; pairs < 1e10; pairs *= 1.3) {
    const double us = PrefillAttentionUs(*model, pairs);
    EXPECT_GE(us, last - 0.002) << pairs;
    last = us;
  }
}

TEST(ProfiledModelOnH100, TheMeasuredAllReduceReplacesTheRingFormula) {
  std::string text = FixtureText();
  const size_t from = text.find("[allreduce]");
  const std::string without = text.substr(0, from) + text.substr(text.find("[vattention]"));
  const auto measured = H100Model(2);
  const auto ring =
      NewProfiledModel(ParseProfile(without, kPath), Llama3_8B(), H100(), 2, kAsMeasured, NoCpu());
  // 64 tokens x 4096 x 2 bytes = 524288 bytes: 11.26 us measured (line 346); the ring
  // gives 8 us + 524288 / 450e9 s. Two all-reduces in each of 32 layers, and the
  // embedding's once per pass (no logits, so no all-gather): 65.
  const double ring_us = 8 + 524288 / 450e9 * 1e6;
  EXPECT_NEAR(Us(measured->IterationTime(LinearOnly(64))) - Us(ring->IterationTime(LinearOnly(64))),
              65 * (11.26 - ring_us), kTolUs);
}

TEST(ProfiledModelOnH100, AnAllReduceBetweenKernelsOfAGraphIsTimedByItsInGraphColumn) {
  // Two [allreduce] sections for 2 GPUs at 1 and 2 MiB: with in_graph_us the model uses
  // it (and says nothing), without it time_us (and a caveat). 64 tokens x 4096 x 2 bytes
  // = 512 KiB, below both sizes: the 1 MiB time. Two all-reduces in each of 32 layers
  // and the embedding's: 65.
  std::string text = FixtureText();
  const std::string head = text.substr(0, text.find("[allreduce]"));
  const std::string tail = text.substr(text.find("[vattention]"));
  const std::string with = head +
                           "[allreduce]\ngpus,bytes,time_us,algbw_gbps,busbw_gbps,in_graph_us\n"
                           "2,1048576,10,1,1,16.5\n2,2097152,20,1,1,27\n\n" +
                           tail;
  const std::string without = head +
                              "[allreduce]\ngpus,bytes,time_us,algbw_gbps,busbw_gbps\n"
                              "2,1048576,10,1,1\n2,2097152,20,1,1\n\n" +
                              tail;
  const auto in_graph =
      NewProfiledModel(ParseProfile(with, kPath), Llama3_8B(), H100(), 2, kAsMeasured, NoCpu());
  const auto back_to_back =
      NewProfiledModel(ParseProfile(without, kPath), Llama3_8B(), H100(), 2, kAsMeasured, NoCpu());
  EXPECT_NEAR(
      Us(in_graph->IterationTime(LinearOnly(64))) - Us(back_to_back->IterationTime(LinearOnly(64))),
      65 * (16.5 - 10), kTolUs);
  EXPECT_THAT(OtherCaveats(*in_graph), ::testing::IsEmpty());
  EXPECT_THAT(OtherCaveats(*back_to_back), ElementsAre(HasSubstr("time all-reduces back to back")));
}

TEST(ProfiledModelOnH100, AnAllReducePlacedAfterKernelsIsPreferredToOneAloneInItsGraph) {
  // in_graph_us (after a bandwidth-bound kernel and one writing its input, as in a pass)
  // over alone_in_graph_us (after a kernel touching no memory): at 512 KiB, below both
  // sizes, the 1 MiB row: 16.5 us, not 12 us, for each of the 65 all-reduces.
  std::string text = FixtureText();
  const std::string head = text.substr(0, text.find("[allreduce]"));
  const std::string tail = text.substr(text.find("[vattention]"));
  auto with = [&](const std::string& header, const std::string& rows) {
    return NewProfiledModel(
        ParseProfile(head + "[allreduce]\n" + header + "\n" + rows + "\n" + tail, kPath),
        Llama3_8B(), H100(), 2, kAsMeasured, NoCpu());
  };
  const std::string cols = "gpus,bytes,time_us,algbw_gbps,busbw_gbps";
  const auto both = with(cols + ",in_graph_us,alone_in_graph_us",
                         "2,1048576,10,1,1,16.5,12\n2,2097152,20,1,1,27,22\n");
  const auto alone =
      with(cols + ",alone_in_graph_us", "2,1048576,10,1,1,12\n2,2097152,20,1,1,22\n");
  const auto back_to_back = with(cols, "2,1048576,10,1,1\n2,2097152,20,1,1\n");
  EXPECT_NEAR(
      Us(both->IterationTime(LinearOnly(64))) - Us(back_to_back->IterationTime(LinearOnly(64))),
      65 * (16.5 - 10), kTolUs);
  EXPECT_NEAR(
      Us(alone->IterationTime(LinearOnly(64))) - Us(back_to_back->IterationTime(LinearOnly(64))),
      65 * (12 - 10), kTolUs);
  EXPECT_THAT(OtherCaveats(*both), ::testing::IsEmpty());
  EXPECT_THAT(OtherCaveats(*alone), ::testing::IsEmpty());
}

TEST(ProfiledModelOnTheCommittedH100Profile, TensorParallelEightExtrapolatesTheMeasuredAllReduce) {
  // The committed profile measured all-reduce on 2, 3 and 4 GPUs. Llama-3-70B at TP 8,
  // 64 tokens: 64 x 8192 x 2 bytes = 1 MiB, one of the measured sizes.
  const char* path = KVSIM_SOURCE_DIR "/models/profiles/H100-SXM/profile.txt";
  const Profile profile = LoadProfile(path);
  const ModelSpec llama70 = LoadModelSpec(KVSIM_SOURCE_DIR "/models/llm/Llama-3-70B.yaml");
  std::vector<double> r, t;  // ring factor 2(n-1)/n and time in us at 1 MiB
  const ProfileTable& rows = profile.Table("allreduce");
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows.Number(i, "bytes") != 1048576) continue;
    const double n = rows.Number(i, "gpus");
    r.push_back(2 * (n - 1) / n);
    t.push_back(rows.Number(i, "time_us"));
  }
  ASSERT_EQ(r.size(), 3u);
  // Least squares t = a + b r, evaluated at r = 1.75, kept at or above the 4-GPU time.
  const double mean_r = (r[0] + r[1] + r[2]) / 3, mean_t = (t[0] + t[1] + t[2]) / 3;
  double srr = 0, srt = 0;
  for (size_t i = 0; i < 3; ++i) {
    srr += (r[i] - mean_r) * (r[i] - mean_r);
    srt += (r[i] - mean_r) * (t[i] - mean_t);
  }
  const double estimate_us = std::max(t[2], mean_t + srt / srr * (1.75 - mean_r));
  EXPECT_GT(estimate_us, t[2]);  // the times grow with the GPU count here

  std::ifstream in(path);
  std::stringstream text_stream;
  text_stream << in.rdbuf();
  const std::string text = text_stream.str();
  const std::string without = text.substr(0, text.find("[allreduce]"));
  const auto extrapolated = NewProfiledModel(profile, llama70, H100(), 8, kAsMeasured, NoCpu());
  const auto ring =
      NewProfiledModel(ParseProfile(without, path), llama70, H100(), 8, kAsMeasured, NoCpu());
  // Ring: 8 us + 2 (7/8) x 1 MiB / 450e9 s. Two all-reduces in each of 80 layers and the
  // embedding's.
  const double ring_us = 8 + 2 * 7.0 / 8 * 1048576 / 450e9 * 1e6;
  EXPECT_NEAR(
      Us(extrapolated->IterationTime(LinearOnly(64))) - Us(ring->IterationTime(LinearOnly(64))),
      (2 * 80 + 1) * (estimate_us - ring_us), 0.05);
  // The H100 profile's rows predate in_graph_us: a second caveat says they are
  // back-to-back times.
  ASSERT_EQ(OtherCaveats(*extrapolated).size(), 2u);
  EXPECT_THAT(OtherCaveats(*extrapolated)[0],
              HasSubstr("all-reduce on 8 GPUs is not in the profile (measured: 2, 3 and 4 GPUs)"));
  EXPECT_THAT(OtherCaveats(*extrapolated)[1], HasSubstr("time all-reduces back to back"));
  EXPECT_THAT(OtherCaveats(*NewProfiledModel(profile, llama70, H100(), 4, kAsMeasured, NoCpu())),
              ElementsAre(HasSubstr("no in_graph_us column")));
}

TEST(ProfiledModelOnKvprobeOutput, AQuickH200ProfileGivesMonotoneTimesAtEveryTensorParallel) {
  const Profile profile = LoadProfile(KVSIM_TEST_DATA_DIR "/timing/h200_kvprobe_quick_profile.txt");
  for (int64_t tp : {1, 2, 4, 8}) {  // no [allreduce] rows: the ring formula for tp > 1
    const auto model = NewProfiledModel(profile, Llama3_8B(),
                                        LoadGpuSpec(KVSIM_SOURCE_DIR "/models/gpu/H200.yaml"), tp,
                                        ProfiledConfig{}, CostConfig{});
    Nanos last{0};
    for (int64_t tokens = 1; tokens <= 20000; tokens += 1 + tokens / 8) {
      BatchWork w = LinearOnly(tokens);
      w.prefill_attention_pairs =
          static_cast<double>(tokens) * (static_cast<double>(tokens) + 1.0) / 2;
      w.logit_tokens = 1;
      const Nanos t = model->IterationTime(w);
      EXPECT_GE(t, last) << "TP " << tp << ", " << tokens << " tokens";
      last = t;
    }
  }
}

TEST(ProfiledModel, AQuickProfileIsACaveatSayingWhatItLacksAndAFullOneIsNot) {
  const auto with_mode = [](const std::string& mode) {
    std::string text = TinyProfile().Render(Tiny());
    const std::string host = "host: test\n";
    return text.insert(text.find(host) + host.size(), "mode: " + mode + "\n");
  };
  EXPECT_THAT(OtherCaveats(*Model(with_mode("quick"), Tiny())),
              ElementsAre(AllOf(
                  HasSubstr("timing.profile p.txt: a quick profile (mode: quick, kvprobe --quick), "
                            "kvprobe's smoke test: its GEMMs go up to 1,024 tokens only"),
                  HasSubstr("0.3 s of GEMM load rather than 1.5 s"),
                  HasSubstr("measure a full profile (tools/kvprobe/calibrate.sh)"))));
  EXPECT_THAT(OtherCaveats(*Model(with_mode("full"), Tiny())), ::testing::IsEmpty());
  // kvprobe's own quick output says so too.
  const auto h200 = NewProfiledModel(
      LoadProfile(KVSIM_TEST_DATA_DIR "/timing/h200_kvprobe_quick_profile.txt"), Llama3_8B(),
      LoadGpuSpec(KVSIM_SOURCE_DIR "/models/gpu/H200.yaml"), 1, ProfiledConfig{}, CostConfig{});
  EXPECT_THAT(h200->Caveats(), Contains(HasSubstr("a quick profile (mode: quick")));
}

// ---- Errors -----------------------------------------------------------------------

std::string ModelError(const std::string& text, const ModelSpec& m, int64_t tp = 1,
                       const GpuSpec& gpu = Gpu()) {
  try {
    Model(text, m, tp, kAsMeasured, gpu);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an InputError";
  return "";
}

TEST(ProfiledModel, AModelOrTensorParallelWithoutGemmRowsListsWhatTheProfileHas) {
  const std::string text = FixtureText();
  GpuSpec h100 = Gpu();
  h100.device_names = {"NVIDIA H100 80GB HBM3"};  // the fixture's gpu_name
  const std::string at_tp4 = ModelError(text, Llama3_8B(), 4, h100);
  EXPECT_THAT(at_tp4, HasSubstr("timing.profile p.txt"));
  EXPECT_THAT(at_tp4, HasSubstr("no [gemm] rows for model Llama-3-8B at tensor_parallel 4"));
  EXPECT_THAT(at_tp4, HasSubstr("it has: Llama-3-8B (tensor_parallel 1, 2)"));
  ModelSpec other = Tiny();
  other.name = "Mistral-7B";
  EXPECT_THAT(ModelError(text, other, 1, h100), HasSubstr("no [gemm] rows for model Mistral-7B"));
}

// Found by fuzzing (tests/fuzz/fuzz_profile): a [gemm] tensor_parallel beyond int64 was
// cast to an integer for the list of what the profile has (undefined behaviour).
TEST(ProfiledModel, AGemmTensorParallelBeyondAnyIntegerIsListedAsWritten) {
  std::string text = TinyProfile().Render(Tiny());
  const std::string header = "model,layer,tensor_parallel,tokens,m,n,k,time_us,tflops\n";
  text.insert(text.find(header) + header.size(), "other,qkv,1e300,16,16,1,1,1,1\n");
  ModelSpec m = Tiny();
  m.name = "Mistral-7B";
  EXPECT_THAT(ModelError(text, m),
              HasSubstr("no [gemm] rows for model Mistral-7B at tensor_parallel 1; it has: other "
                        "(tensor_parallel 1e+300), tiny (tensor_parallel 1)"));
}

// Found by fuzzing (tests/fuzz/fuzz_profile): a paged block_tokens beyond int64 was cast
// to an integer (undefined behaviour).
TEST(ProfiledModel, APagedBlockTokensBeyondAnyIntegerIsAnErrorAtItsLine) {
  std::string text = TinyProfile().Render(Tiny());
  const std::string row = "paged,16,1,256,32,8,128,";
  text.replace(text.find(row), row.size(), "paged,1e300,1,256,32,8,128,");
  EXPECT_THAT(ModelError(text, Tiny()),
              HasSubstr(fmt::format("p.txt:{}: [decode_attention] paged rows need a positive "
                                    "integer block_tokens (at most 1e9), got 1e300",
                                    LineOf(text, "paged,1e300,"))));
}

TEST(ProfiledModel, AGemmLayerWithoutRowsIsAnError) {
  std::string text = TinyProfile().Render(Tiny());
  std::string kept;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(",lm_head,") == std::string::npos) kept += line + "\n";
  }
  const std::string message = ModelError(kept, Tiny());
  EXPECT_THAT(message, HasSubstr(fmt::format("p.txt:{}:", LineOf(kept, "[gemm]"))));
  EXPECT_THAT(message, HasSubstr("'lm_head' rows"));
}

TEST(ProfiledModel, AGemmShapeOtherThanTheModelCardsIsAnErrorAtItsLine) {
  std::string text = TinyProfile().Render(Tiny());
  const std::string row = GemmRow("tiny", "o", 1, 256, 1024, 1024, 10);
  text.replace(text.find(row), row.size(), GemmRow("tiny", "o", 1, 256, 1024, 2048, 10));
  const std::string message = ModelError(text, Tiny());
  EXPECT_THAT(message, HasSubstr(fmt::format("p.txt:{}:", LineOf(text, "tiny,o,1,256,"))));
  EXPECT_THAT(message, HasSubstr("n=1024 k=2048, but the model card gives n=1024 k=1024"));
}

TEST(ProfiledModel, AGemmRowOfAnotherModelIsCheckedForATimeAndAWholeTokenCount) {
  // Rows the run does not read still must be measurements: a zero time or 1.5 tokens is
  // an error at its line, not left for the day another model reads it.
  const std::string base = TinyProfile().Render(Tiny());
  for (const std::string& bad : {std::string("other,o,1,256,256,1024,1024,0,1\n"),
                                 std::string("other,o,1,1.5,256,1024,1024,10,1\n")}) {
    std::string text = base;
    const size_t at = text.find("[decode_attention]");
    text.insert(at, bad);
    const std::string message = ModelError(text, Tiny());
    EXPECT_THAT(message, HasSubstr(fmt::format("p.txt:{}:", LineOf(text, bad.substr(0, 12)))));
    EXPECT_THAT(message, ::testing::AnyOf(HasSubstr("time_us must be positive"),
                                          HasSubstr("tokens must be a positive integer")));
  }
}

TEST(ProfiledModel, ARepeatedGridPointIsAnErrorAtItsLine) {
  std::string text = TinyProfile().Render(Tiny());
  const std::string row = GemmRow("tiny", "qkv", 1, 256, 1536, 1024, 10);
  text.insert(text.find(row), GemmRow("tiny", "qkv", 1, 256, 1536, 1024, 11));
  const std::string message = ModelError(text, Tiny());
  EXPECT_THAT(message, HasSubstr(fmt::format("p.txt:{}:", LineOf(text, row))));
  EXPECT_THAT(message, HasSubstr("repeats tiny qkv"));
}

TEST(ProfiledModel, AProfileWithoutPagedAttentionRowsIsAnError) {
  TinyProfile p;
  p.paged = false;
  const std::string text = p.Render(Tiny());
  const std::string message = ModelError(text, Tiny());
  EXPECT_THAT(message, HasSubstr(fmt::format("p.txt:{}:", LineOf(text, "[decode_attention]"))));
  EXPECT_THAT(message, HasSubstr("needs both contiguous and paged rows"));
}

TEST(ProfiledModel, DecodeRowsAboveOneSequencesKvHeadsPerRankAreACaveat) {
  // Tiny's 2 KV heads against rows that start at 8 units: batches below 4 sequences
  // take the 8-unit rows' time.
  EXPECT_THAT(Model(TinyProfile().Render(Tiny()), Tiny())->Caveats(),
              ElementsAre(HasSubstr(
                  "timing.profile p.txt: its [decode_attention] rows start at 8 sequence-heads "
                  "(batch x kv_heads), and one sequence of tiny at tensor_parallel 1 is 2: decode "
                  "batches of fewer than 4 sequences take the time of 8 (an upper bound")));
  // Rows down to 2 units (batch 1 with 2 KV heads) leave nothing to declare.
  TinyProfile two;
  two.decode_kv_heads = 2;
  EXPECT_THAT(Model(two.Render(Tiny()), Tiny())->Caveats(), ::testing::IsEmpty());
}

TEST(ProfiledModel, TwoRowsOfTheSameSequenceHeadsAndContextAreAnErrorAtTheSecond) {
  std::string text = TinyProfile().Render(Tiny());
  // Batch 2 with 4 KV heads is batch 1 with 8: the same launch measured twice.
  const std::string first = "contiguous,0,1,256,32,8,128";
  text.insert(text.find('\n', text.find(first)) + 1,
              DecodeRow("contiguous", 0, 2, 256, 16, 4, 2.56));
  const std::string message = ModelError(text, Tiny());
  EXPECT_THAT(message, HasSubstr(fmt::format(
                           "p.txt:{}: [decode_attention] repeats a contiguous row at batch x "
                           "kv_heads = 8 and context_tokens 256 (first at line {})",
                           LineOf(text, "contiguous,0,2,256,16,4"), LineOf(text, first))));
}

TEST(ProfiledModel, ASmallKernelRowRepeatedIsAnErrorAtItsLine) {
  TinyProfile p;
  p.allreduce = SmallKernelRows({{16, 5}, {256, 9}, {16, 6}});
  const std::string text = p.Render(Tiny());
  EXPECT_THAT(ModelError(text, Tiny()),
              HasSubstr(fmt::format("p.txt:{}: [small_kernels] repeats tiny at tensor_parallel 1 "
                                    "and 16 tokens (first at line {})",
                                    LineOf(text, "tiny,1,16,6"), LineOf(text, "tiny,1,16,5"))));
}

TEST(ProfiledModel, ANonPositiveTimeIsAnErrorAtItsLine) {
  std::string text = TinyProfile().Render(Tiny());
  const std::string row = DecodeRow("contiguous", 0, 4, 1024, 32, 8, 40.96);
  text.replace(text.find(row), row.size(), "contiguous,0,4,1024,32,8,128,0,1\n");
  const std::string message = ModelError(text, Tiny());
  EXPECT_THAT(message,
              HasSubstr(fmt::format("p.txt:{}:", LineOf(text, "contiguous,0,4,1024,32,8,128,0"))));
  EXPECT_THAT(message, HasSubstr("time_us must be positive"));
}

// The tiny profile's fastest GEMM is lm_head at 4,096 tokens: 2 x 4,096 x 32,000 x 1,024
// FLOPs in 260 us = 1,032.4 TFLOP/s. A card of 830 TFLOP/s allows 1.25 x 830 = 1,037.5;
// one of 820 allows 1,025.
TEST(ProfiledModel, AGemmRowFasterThanTheCardsBf16PeakByMoreThanAQuarterIsAnErrorAtItsLine) {
  const std::string text = TinyProfile().Render(Tiny());
  GpuSpec gpu = Gpu();
  gpu.bf16_flops_per_s = 830e12;
  EXPECT_NO_THROW(Model(text, Tiny(), 1, kAsMeasured, gpu));
  gpu.bf16_flops_per_s = 820e12;
  EXPECT_THAT(
      ModelError(text, Tiny(), 1, gpu),
      HasSubstr(fmt::format(
          "p.txt:{}: [gemm] time_us 260 implies 1032 TFLOP/s (2 x m x n x k FLOPs / time), more "
          "than 1.25 x the test-gpu card's bf16 peak of 820 TFLOP/s (bf16_flops_per_s): not a "
          "measurement on this GPU (a time in other units than microseconds?)",
          LineOf(text, GemmRow("tiny", "lm_head", 1, 4096, 32000, 1024, 260)))));
}

// The review's case: a time divided by 1000, its tflops column left as it was.
TEST(ProfiledModel, AGemmTimeInMillisecondsIsAnErrorAtItsLine) {
  std::string text = TinyProfile().Render(Tiny());
  // gate_up at 4,096 tokens: 2 x 4,096 x 8,192 x 1,024 FLOPs in 130 us = 528.6 TFLOP/s;
  // in 0.13 us, 528,611 TFLOP/s.
  const std::string row = GemmRow("tiny", "gate_up", 1, 4096, 8192, 1024, 130);
  EXPECT_EQ(row, "tiny,gate_up,1,4096,4096,8192,1024,130,528.6\n");
  text.replace(text.find(row), row.size(), "tiny,gate_up,1,4096,4096,8192,1024,0.13,528.6\n");
  EXPECT_THAT(ModelError(text, Tiny()),
              HasSubstr(fmt::format("p.txt:{}: [gemm] time_us 0.13 implies 5.286e+05 TFLOP/s (2 x "
                                    "m x n x k FLOPs / time), more than 1.25 x the test-gpu card's "
                                    "bf16 peak of 989.4 TFLOP/s",
                                    LineOf(text, "tiny,gate_up,1,4096,4096,8192,1024,0.13,"))));
}

// qkv at 256 tokens: 2 x 256 x 1,536 x 1,024 FLOPs in 10 us = 80.53 TFLOP/s; 81.2 is
// 0.83% above it, 81.5 1.2%.
TEST(ProfiledModel, AGemmTflopsColumnMoreThanOnePercentFromItsTimeIsAnErrorAtItsLine) {
  const std::string row = GemmRow("tiny", "qkv", 1, 256, 1536, 1024, 10);
  EXPECT_EQ(row, "tiny,qkv,1,256,256,1536,1024,10,80.53\n");
  const auto with_tflops = [&](const std::string& tflops) {
    std::string text = TinyProfile().Render(Tiny());
    return text.replace(text.find(row), row.size(),
                        "tiny,qkv,1,256,256,1536,1024,10," + tflops + "\n");
  };
  EXPECT_NO_THROW(Model(with_tflops("81.2"), Tiny()));
  const std::string text = with_tflops("81.5");
  EXPECT_THAT(ModelError(text, Tiny()),
              HasSubstr(fmt::format("p.txt:{}: [gemm] tflops 81.5 disagrees with time_us 10, which "
                                    "implies 80.53 TFLOP/s (2 x m x n x k FLOPs / time), by more "
                                    "than 1%: one of them was changed after kvprobe wrote the row",
                                    LineOf(text, "tiny,qkv,1,256,256,1536,1024,10,81.5"))));
}

// Every contiguous decode row reads 2 x 2 bytes x batch x 8 KV heads x context x 128 in
// batch x context / 100 us: 409.6 GB/s. A card of 330 GB/s allows 1.25 x 330 = 412.5;
// one of 320 allows 400, and the first row (batch 1, context 256) is refused.
TEST(ProfiledModel, ADecodeRowReadingFasterThanTheCardsHbmByMoreThanAQuarterIsAnErrorAtItsLine) {
  const std::string text = TinyProfile().Render(Tiny());
  GpuSpec gpu = Gpu();
  gpu.hbm_bandwidth_bytes_per_s = 330e9;
  EXPECT_NO_THROW(Model(text, Tiny(), 1, kAsMeasured, gpu));
  gpu.hbm_bandwidth_bytes_per_s = 320e9;
  EXPECT_THAT(ModelError(text, Tiny(), 1, gpu),
              HasSubstr(fmt::format(
                  "p.txt:{}: [decode_attention] time_us 2.56 implies 409.6 GB/s (2 x 2 bytes x "
                  "batch x kv_heads x context_tokens x head_dim of K and V / time), more than 1.25 "
                  "x the test-gpu card's HBM bandwidth of 320 GB/s (hbm_bandwidth_bytes_per_s)",
                  LineOf(text, "contiguous,0,1,256,32,8,128,2.56,"))));
}

// The review's case: head_dim 1 for 128 in one row, which would scale its time by 128.
TEST(ProfiledModel, AMistypedHeadDimDisagreesWithTheRowsKvGbpsAndIsAnErrorAtItsLine) {
  std::string text = TinyProfile().Render(Tiny());
  const std::string row = DecodeRow("contiguous", 0, 4, 1024, 32, 8, 40.96);
  EXPECT_EQ(row, "contiguous,0,4,1024,32,8,128,40.96,409.6\n");
  text.replace(text.find(row), row.size(), "contiguous,0,4,1024,32,8,1,40.96,409.6\n");
  // 2 x 2 bytes x 4 x 8 x 1,024 x 1 in 40.96 us: 3.2 GB/s.
  EXPECT_THAT(ModelError(text, Tiny()),
              HasSubstr(fmt::format("p.txt:{}: [decode_attention] kv_gbps 409.6 disagrees with "
                                    "time_us 40.96, which implies 3.2 GB/s",
                                    LineOf(text, "contiguous,0,4,1024,32,8,1,"))));
}

// Prefill rows: 4 x 32 q_heads x 128 x pairs FLOPs in pairs / 100 us, 1.638 TFLOP/s.
TEST(ProfiledModel, APrefillRowBeyondTheCardsPeakOrDisagreeingWithItsTflopsIsAnErrorAtItsLine) {
  const std::string row = PrefillRow("contiguous", 0, 1, 255, 32, 326.4);
  EXPECT_EQ(row, "contiguous,0,1,255,32,8,128,326.4,1.638\n");
  const auto with_row = [&](const std::string& replacement) {
    std::string text = TinyProfile().Render(Tiny());
    return text.replace(text.find(row), row.size(), replacement);
  };
  // In 0.3264 us (its tflops made to agree): 1,638 TFLOP/s.
  std::string text = with_row(PrefillRow("contiguous", 0, 1, 255, 32, 0.3264));
  EXPECT_THAT(ModelError(text, Tiny()),
              HasSubstr(fmt::format("p.txt:{}: [prefill_attention] time_us 0.3264 implies 1638 "
                                    "TFLOP/s (4 x q_heads x head_dim x batch x tokens x (tokens + "
                                    "1) / 2 FLOPs / time), more than 1.25 x the test-gpu card's "
                                    "bf16 peak of 989.4 TFLOP/s",
                                    LineOf(text, "contiguous,0,1,255,32,8,128,0.3264,"))));
  // In 326400 us with tflops as written: 0.001638 TFLOP/s.
  text = with_row("contiguous,0,1,255,32,8,128,326400,1.638\n");
  EXPECT_THAT(ModelError(text, Tiny()),
              HasSubstr(fmt::format("p.txt:{}: [prefill_attention] tflops 1.638 disagrees with "
                                    "time_us 326400, which implies 0.001638 TFLOP/s",
                                    LineOf(text, "contiguous,0,1,255,32,8,128,326400,"))));
}

// The review's cases: head_dim 12.8, and 1e-300, which scaled a time to 1e26 s and was
// then blamed on the card's rates or the timing terms.
TEST(ProfiledModel, AnAttentionRowsCountsMustBePositiveIntegersAtTheirLine) {
  const auto error = [](const std::string& row, const std::string& replacement) {
    std::string text = TinyProfile().Render(Tiny());
    text.replace(text.find(row), row.size(), replacement);
    const std::string message = ModelError(text, Tiny());
    EXPECT_THAT(message, HasSubstr(fmt::format("p.txt:{}: ", LineOf(text, replacement))));
    return message;
  };
  const std::string decode = "contiguous,0,4,1024,32,8,128,";
  EXPECT_THAT(error(decode, "contiguous,0,4,1024,32,8,12.8,"),
              HasSubstr("[decode_attention] head_dim must be a positive integer (at most 1e+09), "
                        "got 12.8"));
  EXPECT_THAT(error(decode, "contiguous,0,4,1024,32,8,1e-300,"), HasSubstr("got 1e-300"));
  EXPECT_THAT(error(decode, "contiguous,0,4,1024,32,8,0,"), HasSubstr("head_dim must be"));
  EXPECT_THAT(error(decode, "contiguous,0,4,1024,32,2.5,128,"),
              HasSubstr("[decode_attention] kv_heads must be a positive integer"));
  EXPECT_THAT(error(decode, "contiguous,0,4,1024,32.5,8,128,"), HasSubstr("q_heads must be"));
  EXPECT_THAT(error("contiguous,0,1,255,32,8,128,", "contiguous,0,1,255,32,8,96.5,"),
              HasSubstr("[prefill_attention] head_dim must be a positive integer (at most "
                        "1e+09), got 96.5"));
  EXPECT_THAT(error("contiguous,0,1,255,32,8,128,", "contiguous,0,1,255.5,32,8,128,"),
              HasSubstr("[prefill_attention] tokens must be a positive integer"));
}

// The [step] reader refuses the same names (validate.cc).
TEST(ProfiledModel, AnAttentionLayoutOtherThanContiguousOrPagedIsAnErrorAtItsLine) {
  const auto error = [](const std::string& row, const std::string& replacement) {
    std::string text = TinyProfile().Render(Tiny());
    text.replace(text.find(row), row.size(), replacement);
    const std::string message = ModelError(text, Tiny());
    EXPECT_THAT(message, HasSubstr(fmt::format("p.txt:{}: ", LineOf(text, replacement))));
    return message;
  };
  EXPECT_THAT(error("contiguous,0,4,1024,32,8,128,", "pagd,0,4,1024,32,8,128,"),
              HasSubstr("[decode_attention] layout 'pagd' is not one of contiguous, paged"));
  EXPECT_THAT(error("contiguous,0,4,1024,32,8,128,", "Contiguous,0,4,1024,32,8,128,"),
              HasSubstr("[decode_attention] layout 'Contiguous' is not one of contiguous, paged"));
  EXPECT_THAT(error("contiguous,0,1,255,32,8,128,", "contigous,0,1,255,32,8,128,"),
              HasSubstr("[prefill_attention] layout 'contigous' is not one of contiguous, paged"));
}

TEST(ProfiledModel, AGemmLayerOtherThanTheFiveIsAnErrorAtItsLineInAnyModelsRows) {
  const std::string row = GemmRow("tiny", "gate_up", 1, 256, 8192, 1024, 10);
  std::string text = TinyProfile().Render(Tiny());
  text.replace(text.find(row), row.size(), "tiny,gate-up,1,256,256,8192,1024,10,429.5\n");
  EXPECT_THAT(ModelError(text, Tiny()),
              HasSubstr(fmt::format(
                  "p.txt:{}: [gemm] layer 'gate-up' is not one of qkv, o, gate_up, down, lm_head",
                  LineOf(text, "tiny,gate-up,"))));
  // A row of a model the run does not use is refused too: the name is wrong in any row.
  text = TinyProfile().Render(Tiny());
  const std::string header = "model,layer,tensor_parallel,tokens,m,n,k,time_us,tflops\n";
  text.insert(text.find(header) + header.size(), "other,router,1,16,16,8,1024,3,0.08738\n");
  EXPECT_THAT(ModelError(text, Tiny()),
              HasSubstr(fmt::format("p.txt:{}: [gemm] layer 'router' is not one of",
                                    LineOf(text, "other,router,"))));
}

TEST(ProfiledModel, AllReduceRowsNeedAnIntegerGpuCountOfTwoOrMoreAndTwoSizesEach) {
  const ModelSpec m = TinyFor8();
  TinyProfile p;
  p.allreduce = AllreduceRows({{2, 65536, 10}, {2, 262144, 40}}) + "1,65536,5,0,0,5\n";
  std::string text = p.Render(m, 8);
  EXPECT_THAT(ModelError(text, m, 8),
              HasSubstr(fmt::format("p.txt:{}: [allreduce] gpus must be an integer of 2 or more, "
                                    "got 1",
                                    LineOf(text, "1,65536,5,0,0,5"))));
  p.allreduce = AllreduceRows({{2, 65536, 10}, {2, 262144, 40}}) + "2.5,65536,5,0,0,5\n";
  EXPECT_THAT(ModelError(p.Render(m, 8), m, 8), HasSubstr("got 2.5"));
  p.allreduce = AllreduceRows({{2, 65536, 10}, {2, 262144, 40}, {4, 65536, 12}});
  EXPECT_THAT(ModelError(p.Render(m, 8), m, 8),
              HasSubstr("[allreduce] needs two or more sizes for 4 GPUs, found one"));
  p.allreduce = AllreduceRows({{2, 65536, 10}, {2, 262144, 40}, {2, 65536, 11}});
  EXPECT_THAT(ModelError(p.Render(m, 2), m, 2),
              HasSubstr("[allreduce] repeats 2 GPUs at 65536 bytes"));
}

TEST(ProfiledModel, AProfileOfAnotherGpuThanTheCardNamesIsAnError) {
  GpuSpec other = Gpu();
  other.name = "A100-80GB";
  other.device_names = {"NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe"};
  EXPECT_THAT(ModelError(TinyProfile().Render(Tiny()), Tiny(), 1, other),
              HasSubstr("timing.profile p.txt: measured on 'test', but the A100-80GB card's "
                        "device_names are 'NVIDIA A100-SXM4-80GB', 'NVIDIA A100 80GB PCIe'"));
}

TEST(ProfiledModel, ACardWithoutDeviceNamesRunsWithACaveat) {
  GpuSpec unnamed = Gpu();
  unnamed.device_names.clear();
  const auto model = Model(TinyProfile().Render(Tiny()), Tiny(), 1, kAsMeasured, unnamed);
  ASSERT_EQ(OtherCaveats(*model).size(), 1u);
  EXPECT_EQ(OtherCaveats(*model)[0],
            "timing.profile p.txt: measured on 'test'; the test-gpu card lists no device_names, "
            "so that this is the same GPU was not checked");
}

TEST(ProfiledModel, TensorParallelWithoutAllReduceRowsOrALinkBandwidthIsAnError) {
  ModelSpec m = Tiny();
  m.num_kv_heads = 4;
  EXPECT_THAT(ModelError(TinyProfile().Render(m, 2), m, 2, Gpu(0)),
              HasSubstr("no [allreduce] rows for 2 GPUs"));
}

}  // namespace
}  // namespace kvsim

namespace kvsim {
namespace {

TEST(ProfiledModelOnH100, ByDefaultContiguousPrefillAttentionIsTheRooflineFlopTime) {
  // Llama-3-8B at TP 1 on H100-SXM: 4 x 32 heads x 128 = 16384 FLOPs per causal pair;
  // 1e8 more pairs add 32 layers x 16384 x 1e8 / (989.4e12 x e) s, e the card's
  // attention_prefill efficiency (0.659 in the card: 80.41 ms).
  const Profile profile = LoadProfile(kFixture);
  const GpuSpec h100 = H100();
  const double e = h100.efficiency.attention_prefill;
  ASSERT_GT(e, 0) << "the H100-SXM card states its prefill efficiency";
  const auto model = NewProfiledModel(profile, Llama3_8B(), h100, 1, ProfiledConfig{}, NoCpu());
  BatchWork w = LinearOnly(4096);
  w.prefill_attention_pairs = 1e8;
  const Nanos one = model->IterationTime(w);
  w.prefill_attention_pairs = 2e8;
  const Nanos two = model->IterationTime(w);
  EXPECT_NEAR(Us(two - one), 32 * 16384 * 1e8 / (989.4e12 * e) * 1e6, kTolUs);
  // A configured efficiency wins over the card's: 0.6 gives 88.31 ms.
  ProfiledConfig at_60;
  at_60.attention_prefill_efficiency = 0.6;
  const auto configured = NewProfiledModel(profile, Llama3_8B(), h100, 1, at_60, NoCpu());
  w.prefill_attention_pairs = 1e8;
  const Nanos one_60 = configured->IterationTime(w);
  w.prefill_attention_pairs = 2e8;
  EXPECT_NEAR(Us(configured->IterationTime(w) - one_60), 32 * 16384 * 1e8 / (989.4e12 * 0.6) * 1e6,
              kTolUs);
}

TEST(ProfiledModelOnH100, ByDefaultPagedPrefillAttentionKeepsTheMeasuredPagedToContiguousRatio) {
  const Profile profile = LoadProfile(kFixture);
  ProfiledConfig measured_config;
  measured_config.prefill_attention = ProfiledConfig::PrefillAttention::kMeasured;
  const auto roofline =
      NewProfiledModel(profile, Llama3_8B(), H100(), 1, ProfiledConfig{}, NoCpu());
  const auto measured = NewProfiledModel(profile, Llama3_8B(), H100(), 1, measured_config, NoCpu());
  auto attention_us = [](const ExecutionTimeModel& m, AttentionLayout layout) {
    BatchWork w = LinearOnly(2048);
    w.layout = layout;
    w.block_tokens = layout == AttentionLayout::kPaged ? 16 : 0;
    const Nanos without = m.IterationTime(w);
    w.prefill_attention_pairs = 2048.0 * 2049 / 2;
    return Us(m.IterationTime(w) - without);
  };
  const double measured_ratio = attention_us(*measured, AttentionLayout::kPaged) /
                                attention_us(*measured, AttentionLayout::kContiguous);
  const double roofline_ratio = attention_us(*roofline, AttentionLayout::kPaged) /
                                attention_us(*roofline, AttentionLayout::kContiguous);
  EXPECT_GT(measured_ratio, 1.0);
  EXPECT_NEAR(roofline_ratio, measured_ratio, 1e-3);
}

}  // namespace
}  // namespace kvsim
