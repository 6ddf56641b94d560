// Linear layers: cuBLASLt bf16 GEMMs with the shapes of each model card's layers.
#include <algorithm>
#include <cmath>
#include <deque>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "tools/kvprobe/cuda/common.cuh"
#include "tools/kvprobe/cuda/gemm.cuh"
#include "tools/kvprobe/cuda/probes.h"
#include "tools/kvprobe/host/model_card.h"
#include "tools/kvprobe/host/timing_plan.h"

namespace kvprobe {
namespace {

// A GEMM's weights are read again only after kColdCopiesL2Multiple L2 sizes of other
// copies have streamed through, so that they come from HBM, as in a pass (a layer's weights
// far exceed the L2, and every other layer's weights pass through it between two uses).
// Replaying one weight buffer instead let shapes that fit the H200's 50 MB L2 partly hit
// it: Llama-3-8B's TP 2 decode GEMMs (QKV 25 MB, O 16 MB) came out 8% faster than the same
// GEMMs inside passes (models/profiles/H200/gemm_settle_experiment).
constexpr int kMaxWeightCopies = 512;

// Times C[m, n] = X[m, k] W[k, n] (row-major) planned by LtGemm (gemm.cuh):
// cuBLASLt's best heuristic algorithm for the shape. Consecutive launches read
// different copies of W (see kColdCopiesL2Multiple); X and C stay put, as a pass's
// activations, just written by the kernel before, stay in L2.
class GemmTimer {
 public:
  // max_w: the most weight elements of one GEMM or of one round (TimeRoundUs).
  GemmTimer(cudaStream_t stream, size_t max_x, size_t max_w, size_t max_c, size_t l2_bytes)
      : stream_(stream),
        x_(max_x),
        w_(std::max(
            2 * max_w,
            static_cast<size_t>(kColdCopiesL2Multiple * l2_bytes / sizeof(__nv_bfloat16)) + max_w)),
        c_(max_c),
        workspace_(kWorkspaceBytes),
        l2_bytes_(l2_bytes) {
    FillRandomBf16(x_.get(), x_.size(), 11, 1.f, stream);
    FillRandomBf16(w_.get(), w_.size(), 12, 0.05f, stream);
  }

  // Copies of `elements` weights (one matrix, or a round's) that consecutive launches
  // cycle through.
  int WeightCopies(size_t elements) const {
    const double w_bytes = static_cast<double>(elements) * sizeof(__nv_bfloat16);
    return ColdCopies(w_bytes, l2_bytes_, kColdCopiesL2Multiple, w_.size() / elements, 2,
                      kMaxWeightCopies);
  }

  // `warm`: how long the GEMM first replays alone, so that it is timed at the clock its
  // own load settles towards, not at the previous one's (steady_warm.h).
  // `clock` samples the timed replays' SM clock and power into `*window`.
  double TimeUs(int64_t m, int64_t n, int64_t k, bool quick, const SteadyWarmLimits& warm,
                SmClock& clock, LoadWindow* window) {
    const LtGemm gemm(lt_.get(), m, n, k, kWorkspaceBytes);
    const int copies = WeightCopies(static_cast<size_t>(n * k));
    int next = 0;
    auto launch = [&] {
      const __nv_bfloat16* w = w_.get() + static_cast<size_t>(next) * n * k;
      next = (next + 1) % copies;
      gemm.Run(x_.get(), w, c_.get(), workspace_.get(), stream_);
    };
    return TimeLaunchUs(launch, copies, quick, warm, clock, window);
  }

  // The time of one round of `shapes` (n, k) at m tokens: each GEMM once, one after the
  // other, as a pass runs a layer's GEMMs; consecutive rounds read different copies of
  // the round's weights (laid out one after the other), as TimeUs's launches do.
  double TimeRoundUs(int64_t m, const std::vector<std::pair<int64_t, int64_t>>& shapes, bool quick,
                     const SteadyWarmLimits& warm, SmClock& clock, LoadWindow* window) {
    std::deque<LtGemm> gemms;
    std::vector<size_t> offsets;
    size_t round_elements = 0;
    for (const auto& [n, k] : shapes) {
      gemms.emplace_back(lt_.get(), m, n, k, kWorkspaceBytes);
      offsets.push_back(round_elements);
      round_elements += static_cast<size_t>(n * k);
    }
    const int copies = WeightCopies(round_elements);
    int next = 0;
    auto launch = [&] {
      const __nv_bfloat16* w = w_.get() + static_cast<size_t>(next) * round_elements;
      next = (next + 1) % copies;
      for (size_t i = 0; i < gemms.size(); ++i) {
        gemms[i].Run(x_.get(), w + offsets[i], c_.get(), workspace_.get(), stream_);
      }
    };
    return TimeLaunchUs(launch, copies, quick, warm, clock, window);
  }

 private:
  // Settles the clock under `launch` (cycling `copies` weight copies), then times it as
  // graph replays; returns one launch's time.
  double TimeLaunchUs(const std::function<void()>& launch, int copies, bool quick,
                      const SteadyWarmLimits& warm, SmClock& clock, LoadWindow* window) {
    const double trial = kvprobe::TimeUs(stream_, copies, copies, launch);
    ReplayUntilSteady(stream_, launch, trial, 2 * copies * trial, warm, kChunkUs);
    // As graph replays (engines replay decode steps as graphs): the kernel's time,
    // not the host's launch rate, which bounds an eager loop of small-batch GEMMs.
    // Each graph cycles through every weight copy, whole times.
    const int wanted = LaunchesPerGraph(trial, kMinLaunchesPerGraph, kMaxLaunchesPerGraph);
    const int per_graph = LaunchesCyclingCopies(wanted, copies);
    const int reps = RepsFor(trial * per_graph, quick ? 2000 : 20000, 3, 200);
    return TimeGraphUs(stream_, per_graph, reps, launch, &clock, window);
  }

  static constexpr size_t kWorkspaceBytes = 64 << 20;
  static constexpr int kMinLaunchesPerGraph = 10;
  static constexpr int kMaxLaunchesPerGraph = 400;
  static constexpr double kChunkUs = 10000;
  cudaStream_t stream_;
  LtHandle lt_;
  DeviceBuffer<__nv_bfloat16> x_, w_, c_;
  DeviceBuffer<unsigned char> workspace_;
  double l2_bytes_;
};

// Clocks (PROFILE_FORMAT.md "Clocks"). Sustained load before the first shape (see
// Heater); then every cell replays alone until its clock settles before it is timed,
// as inside a pass the GEMMs run at the clock of the pass's own load.
// - Compute-bound cells (from kHeatFromTokens tokens): at least kComputeWarm.min_ms.
//   Timed right after 100 ms of the heater instead, Llama-3-8B shapes of 512-1,024
//   tokens came out 5-9% slower than the same GEMMs inside whole passes on the lent
//   H200 (models/profiles/H200/README.md).
// - Memory-bound cells: until two consecutive chunks agree within 1.5%, longer after
//   a compute-bound cell (whose lower clock the GPU still carries). Timed right after
//   the previous shape's compute-bound cells instead, the same cell moved by up to 9%
//   between runs; settled, within 1-2% (models/profiles/H200/gemm_settle_experiment).
constexpr SteadyWarmLimits kComputeWarm{100, 100, 0};          // ms, ms, relative
constexpr SteadyWarmLimits kAfterComputeWarm{40, 300, 0.015};  // ms, ms, relative
constexpr SteadyWarmLimits kMemoryWarm{20, 100, 0.015};        // ms, ms, relative
constexpr SteadyWarmLimits kQuickWarm{5, 5, 0};
constexpr double kSustainMs = 1500;
constexpr int64_t kMaxLmHeadTokens = 1024;  // logits are computed for sampled rows only
constexpr int64_t kHeatFromTokens = 256;

// The warm-up of a cell of `tokens` tokens after a cell of `previous_tokens` (0: none).
// --quick keeps the compute-bound cells' 100 ms and gives memory-bound ones a fixed 5 ms.
SteadyWarmLimits CellWarm(int64_t tokens, int64_t previous_tokens, bool quick) {
  if (tokens >= kHeatFromTokens) return kComputeWarm;
  if (quick) return kQuickWarm;
  return previous_tokens == 0 || previous_tokens >= kHeatFromTokens ? kAfterComputeWarm
                                                                    : kMemoryWarm;
}

// KVPROBE_GEMM_ROUNDS, 0 (the default) or 1: an experiment build
// (-DCMAKE_CUDA_FLAGS=-DKVPROBE_GEMM_ROUNDS=1) also times, from kHeatFromTokens tokens,
// each layer's GEMMs as one round and writes each cell's share of the round's time
// (ShareRoundUs) as its [gemm] row, and the rounds into gemm_rounds.csv. Measured on an
// H200 (models/profiles/H200/gemm_round_experiment/): the profile with round shares
// predicted 58 and 58 of 62 of its lease's passes, the same run's cells timed alone 60
// and 59, so the default keeps the cells alone.
#ifndef KVPROBE_GEMM_ROUNDS
#define KVPROBE_GEMM_ROUNDS 0
#endif
constexpr bool kGemmRounds = KVPROBE_GEMM_ROUNDS != 0;

// A cell's key: (tokens, n, k).
using CellKey = std::tuple<int64_t, int64_t, int64_t>;

// What ProbeGemm has timed so far, across cards and tensor-parallel degrees (cards
// share shapes): each cell alone, each round, and each cell's [gemm] time.
struct GemmCells {
  std::map<CellKey, LoadWindow> alone_window;
  std::map<CellKey, double> alone_us;
  std::set<std::pair<int64_t, std::vector<std::pair<int64_t, int64_t>>>> rounds;
  std::map<CellKey, double> share_us;  // kGemmRounds: from the first round with the cell

  // A cell's [gemm] time: its share of a round where it has one, else its time alone.
  double RowUs(const CellKey& key) const {
    const auto share = share_us.find(key);
    return share != share_us.end() ? share->second : alone_us.at(key);
  }
};

// Times cell (tokens, n, k) alone unless it has been timed; logs its clock.
void TimeAlone(ProbeContext& ctx, GemmTimer& timer, int64_t tokens, int64_t n, int64_t k,
               int64_t& previous_tokens, GemmCells& cells, std::ofstream& clocks) {
  const CellKey key{tokens, n, k};
  if (cells.alone_us.count(key)) return;
  const SteadyWarmLimits warm = CellWarm(tokens, previous_tokens, ctx.options.quick);
  LoadWindow window;
  const double us = timer.TimeUs(tokens, n, k, ctx.options.quick, warm, ctx.clock, &window);
  cells.alone_us[key] = us;
  cells.alone_window[key] = window;
  clocks << tokens << "," << n << "," << k << "," << Num(us, 5) << ","
         << Num(2.0 * tokens * n * k / (us * 1e-6) / 1e12, 4) << "," << LoadWindowFields(window)
         << "\n";
  previous_tokens = tokens;
  if (tokens >= kHeatFromTokens) {
    ctx.clock.SampleUnderLoad();
  } else {
    ctx.clock.Sample();
  }
}

// kGemmRounds: times every cell of one card at one TP and token count alone, then, from
// kHeatFromTokens tokens, the layer's GEMMs (lm_head aside) as one round, whose time is
// shared among them by their cycles alone (ShareRoundUs): the first round a cell is in
// gives its [gemm] time.
void TimeCardRound(ProbeContext& ctx, GemmTimer& timer, const CardShapes& card, int64_t tp,
                   int64_t tokens, int64_t& previous_tokens, GemmCells& cells,
                   std::ofstream& clocks, std::ofstream& rounds) {
  std::vector<std::pair<int64_t, int64_t>> round;
  for (const GemmShape& g : LayerGemms(card, tp)) {
    if (g.layer == "lm_head") {
      if (tokens <= kMaxLmHeadTokens) {
        TimeAlone(ctx, timer, tokens, g.n, g.k, previous_tokens, cells, clocks);
      }
      continue;
    }
    round.emplace_back(g.n, g.k);
    TimeAlone(ctx, timer, tokens, g.n, g.k, previous_tokens, cells, clocks);
  }
  if (tokens < kHeatFromTokens || cells.rounds.count({tokens, round})) return;
  cells.rounds.insert({tokens, round});
  LoadWindow window;
  const double round_us =
      timer.TimeRoundUs(tokens, round, ctx.options.quick, kComputeWarm, ctx.clock, &window);
  ctx.clock.SampleUnderLoad();
  std::vector<double> alone_us, alone_mhz;
  for (const auto& [n, k] : round) {
    alone_us.push_back(cells.alone_us.at({tokens, n, k}));
    alone_mhz.push_back(cells.alone_window.at({tokens, n, k}).sm_mhz);
  }
  const std::vector<double> shares = ShareRoundUs(round_us, alone_us, alone_mhz);
  double alone_sum_us = 0;
  for (size_t i = 0; i < round.size(); ++i) {
    alone_sum_us += alone_us[i];
    cells.share_us.emplace(CellKey{tokens, round[i].first, round[i].second}, shares[i]);
  }
  rounds << card.name << "," << tp << "," << tokens << "," << round.size() << ","
         << Num(round_us, 5) << "," << Num(alone_sum_us, 5) << "," << LoadWindowFields(window)
         << "\n";
}

}  // namespace

void ProbeGemm(ProbeContext& ctx) {
  const std::vector<CardShapes> cards = ReadModelCards(ctx.options.models_dir, ctx.options.models);
  std::vector<int64_t> token_grid;
  for (int64_t t = 1; t <= (ctx.options.quick ? 1024 : 16384); t *= (ctx.options.quick ? 4 : 2)) {
    token_grid.push_back(t);
  }
  size_t max_x = 0, max_w = 0, max_c = 0;
  for (const CardShapes& card : cards) {
    for (int64_t tp : {1, 2, 4, 8}) {
      if (!SplitsOver(card, tp)) continue;
      size_t round_w = 0;  // a round's weights: the layer's GEMMs but lm_head
      for (const GemmShape& g : LayerGemms(card, tp)) {
        const int64_t m = g.layer == "lm_head" ? std::min(token_grid.back(), kMaxLmHeadTokens)
                                               : token_grid.back();
        max_x = std::max<size_t>(max_x, m * g.k);
        max_w = std::max<size_t>(max_w, g.n * g.k);
        max_c = std::max<size_t>(max_c, m * g.n);
        if (g.layer != "lm_head") round_w += static_cast<size_t>(g.n * g.k);
      }
      if (kGemmRounds) max_w = std::max(max_w, round_w);
    }
  }
  GemmTimer timer(ctx.stream, max_x, max_w, max_c, ctx.l2_bytes);
  // Compute-bound shapes are timed at the clock of a GPU under sustained load: the
  // heater brings the GPU to its power-limited clock first (see CellWarm).
  Heater heater(ctx.stream);
  heater.Run(ctx.options.quick ? 300 : kSustainMs);
  // Each cell's SM clock and power while it was timed alone (raw, gemm_clocks.csv), and
  // with kGemmRounds each round's (gemm_rounds.csv).
  std::ofstream clocks(RawFilePath(ctx.raw_dir, schema::kGemmClocksFile));
  clocks << HeaderLine(schema::kGemmClocksFile) << "\n";
  std::ofstream rounds;
  if (kGemmRounds) {
    rounds.open(RawFilePath(ctx.raw_dir, schema::kGemmRoundsFile));
    rounds << HeaderLine(schema::kGemmRoundsFile) << "\n";
  }
  GemmCells cells;
  double best_tflops = 0;
  int64_t previous_tokens = 0;  // of the last cell timed
  auto& table = ctx.profile.AddTable(schema::kGemm);
  for (const CardShapes& card : cards) {
    ctx.log("gemm: " + card.name);
    for (int64_t tp : {1, 2, 4, 8}) {
      if (!SplitsOver(card, tp)) continue;
      if (kGemmRounds) {
        for (int64_t tokens : token_grid) {
          TimeCardRound(ctx, timer, card, tp, tokens, previous_tokens, cells, clocks, rounds);
        }
      } else {
        for (const GemmShape& g : LayerGemms(card, tp)) {
          for (int64_t tokens : token_grid) {
            if (g.layer == "lm_head" && tokens > kMaxLmHeadTokens) continue;
            TimeAlone(ctx, timer, tokens, g.n, g.k, previous_tokens, cells, clocks);
          }
        }
      }
      for (const GemmShape& g : LayerGemms(card, tp)) {
        for (int64_t tokens : token_grid) {
          if (g.layer == "lm_head" && tokens > kMaxLmHeadTokens) continue;
          const double us = cells.RowUs({tokens, g.n, g.k});
          const double tflops = 2.0 * tokens * g.n * g.k / (us * 1e-6) / 1e12;
          best_tflops = std::max(best_tflops, tflops);
          table.Row({card.name, g.layer, Num(tp), Num(tokens), Num(tokens), Num(g.n), Num(g.k),
                     Num(us, 5), Num(tflops, 4)});
        }
      }
    }
  }
  ctx.headlines.emplace_back(
      "GEMM best (bf16, cuBLASLt), " + std::to_string(cells.alone_us.size()) + " shapes",
      Num(best_tflops, 4) + " TFLOP/s");
}

}  // namespace kvprobe
