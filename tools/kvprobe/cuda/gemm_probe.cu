// Linear layers: cuBLASLt bf16 GEMMs with the shapes of each model card's layers.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "tools/kvprobe/cuda/common.cuh"
#include "tools/kvprobe/cuda/gemm.cuh"
#include "tools/kvprobe/cuda/probes.h"
#include "tools/kvprobe/host/model_card.h"

namespace kvprobe {
namespace {

// Times C[m, n] = X[m, k] W[k, n] (row-major) planned by LtGemm (gemm.cuh):
// cuBLASLt's best heuristic algorithm for the shape.
class GemmTimer {
 public:
  GemmTimer(cudaStream_t stream, size_t max_x, size_t max_w, size_t max_c)
      : stream_(stream), x_(max_x), w_(max_w), c_(max_c), workspace_(kWorkspaceBytes) {
    FillRandomBf16(x_.get(), x_.size(), 11, 1.f, stream);
    FillRandomBf16(w_.get(), w_.size(), 12, 0.05f, stream);
  }

  // `own_warm_ms` > 0: the GEMM first runs alone for about that long, so that it is
  // timed at the clock its own load settles towards, not at the previous one's.
  double TimeUs(int64_t m, int64_t n, int64_t k, bool quick, double own_warm_ms) {
    const LtGemm gemm(lt_.get(), m, n, k, kWorkspaceBytes);
    auto launch = [&] { gemm.Run(x_.get(), w_.get(), c_.get(), workspace_.get(), stream_); };
    const double trial = kvprobe::TimeUs(stream_, 1, 1, launch);
    if (own_warm_ms > 0) {
      const int warm = static_cast<int>(std::ceil(own_warm_ms * 1000.0 / std::max(trial, 1.0)));
      kvprobe::TimeUs(stream_, 0, warm, launch);
    }
    const int reps = RepsFor(trial, quick ? 2000 : 20000, 3, 200);
    // As graph replays (engines replay decode steps as graphs): the kernel's time,
    // not the host's launch rate, which bounds an eager loop of small-batch GEMMs.
    return TimeGraphUs(stream_, kLaunchesPerGraph, std::max(1, reps / kLaunchesPerGraph), launch);
  }

 private:
  static constexpr size_t kWorkspaceBytes = 64 << 20;
  static constexpr int kLaunchesPerGraph = 10;
  cudaStream_t stream_;
  LtHandle lt_;
  DeviceBuffer<__nv_bfloat16> x_, w_, c_;
  DeviceBuffer<unsigned char> workspace_;
};

// Sustained load before the first shape (see Heater); then each compute-bound shape
// (from kHeatFromTokens tokens) runs alone for kOwnWarmMs before it is timed, so that it
// carries its own clock rather than the heater's. Timed right after 100 ms of the heater
// instead, Llama-3-8B shapes of 512-1,024 tokens came out 5-9% slower than the same GEMMs
// inside whole passes on the lent H200 (models/profiles/H200/README.md). The shapes keep
// the cards' order, so a shape's small-token (memory-bound) cells follow the previous
// shape's large ones, as a loaded GPU runs them: timed first on a GPU without that load
// they came out 5-17% faster than inside passes.
constexpr double kSustainMs = 1500;
constexpr double kOwnWarmMs = 100;
constexpr int64_t kHeatFromTokens = 256;

}  // namespace

void ProbeGemm(ProbeContext& ctx) {
  const std::vector<CardShapes> cards = ReadModelCards(ctx.options.models_dir, ctx.options.models);
  std::vector<int64_t> token_grid;
  for (int64_t t = 1; t <= (ctx.options.quick ? 1024 : 16384); t *= (ctx.options.quick ? 4 : 2)) {
    token_grid.push_back(t);
  }
  constexpr int64_t kMaxLmHeadTokens = 1024;  // logits are computed for sampled rows only
  size_t max_x = 0, max_w = 0, max_c = 0;
  for (const CardShapes& card : cards) {
    for (int64_t tp : {1, 2, 4, 8}) {
      if (!SplitsOver(card, tp)) continue;
      for (const GemmShape& g : LayerGemms(card, tp)) {
        const int64_t m = g.layer == "lm_head" ? std::min(token_grid.back(), kMaxLmHeadTokens)
                                               : token_grid.back();
        max_x = std::max<size_t>(max_x, m * g.k);
        max_w = std::max<size_t>(max_w, g.n * g.k);
        max_c = std::max<size_t>(max_c, m * g.n);
      }
    }
  }
  GemmTimer timer(ctx.stream, max_x, max_w, max_c);
  // Compute-bound shapes are timed at the clock of a GPU under sustained load: the
  // heater brings the GPU to its power-limited clock first, and each such shape then
  // runs alone for kOwnWarmMs.
  Heater heater(ctx.stream);
  heater.Run(ctx.options.quick ? 300 : kSustainMs);
  std::map<std::tuple<int64_t, int64_t, int64_t>, double> cache;  // (m, n, k) -> us
  double best_tflops = 0;
  auto& table = ctx.profile.AddTable(schema::kGemm);
  for (const CardShapes& card : cards) {
    ctx.log("gemm: " + card.name);
    for (int64_t tp : {1, 2, 4, 8}) {
      if (!SplitsOver(card, tp)) continue;
      for (const GemmShape& g : LayerGemms(card, tp)) {
        for (int64_t tokens : token_grid) {
          if (g.layer == "lm_head" && tokens > kMaxLmHeadTokens) continue;
          const auto key = std::make_tuple(tokens, g.n, g.k);
          auto it = cache.find(key);
          if (it == cache.end()) {
            const bool loaded = tokens >= kHeatFromTokens;
            it = cache
                     .emplace(key, timer.TimeUs(tokens, g.n, g.k, ctx.options.quick,
                                                loaded ? kOwnWarmMs : 0))
                     .first;
            if (loaded) {
              ctx.clock.SampleUnderLoad();
            } else {
              ctx.clock.Sample();
            }
          }
          const double us = it->second;
          const double tflops = 2.0 * tokens * g.n * g.k / (us * 1e-6) / 1e12;
          best_tflops = std::max(best_tflops, tflops);
          table.Row({card.name, g.layer, Num(tp), Num(tokens), Num(tokens), Num(g.n), Num(g.k),
                     Num(us, 5), Num(tflops, 4)});
        }
      }
    }
  }
  ctx.headlines.emplace_back(
      "GEMM best (bf16, cuBLASLt), " + std::to_string(cache.size()) + " shapes",
      Num(best_tflops, 4) + " TFLOP/s");
}

}  // namespace kvprobe
