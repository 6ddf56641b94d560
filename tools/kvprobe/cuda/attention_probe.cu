// Attention kernels: verification against the float64 reference, then the decode
// and prefill grids over contiguous and paged KV.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <vector>

#include "tools/kvprobe/cuda/attention.cuh"
#include "tools/kvprobe/cuda/common.cuh"
#include "tools/kvprobe/cuda/probes.h"
#include "tools/kvprobe/host/kernel_plan.h"
#include "tools/kvprobe/host/reference.h"

namespace kvprobe {
namespace {

using bf16 = __nv_bfloat16;

constexpr int kBlockSizes[] = {16, 32, 128, 256};
// The check runs every decode load schedule over every block size, the bulk schedule too
// (in a build that has it), so each must be one the bulk schedule reads.
constexpr bool BulkReadsEveryBlockSize() {
  for (int bs : kBlockSizes) {
    if (BulkBoxRows(bs) == 0) return false;
  }
  return true;
}
static_assert(BulkReadsEveryBlockSize(), "a block size the bulk schedule does not read");

// Random values already rounded to bf16, so host and device see the same numbers.
std::vector<float> RandomBf16Values(size_t n, std::mt19937_64& rng, float scale) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = Bf16ToFloat(FloatToBf16(dist(rng)));
  return v;
}

// The layout of `batch` sequences of `context` tokens: contiguous when block_tokens is
// 0, else paged over a shared pool in shuffled order, its block table put in `table`.
KvLayout GridLayout(int block_tokens, int batch, int context, std::mt19937_64& rng,
                    DeviceBuffer<int>& table) {
  KvLayout layout;
  if (block_tokens == 0) {
    layout.max_context = context;
    return layout;
  }
  const int max_blocks = (context + block_tokens - 1) / block_tokens;
  table = IntsToDevice(ShuffledBlocks(static_cast<size_t>(batch) * max_blocks, rng));
  return KvLayout{table.get(), block_tokens, max_blocks, 0};
}

// A paged copy of contiguous KV rows ([batch][max_context][kv_heads][128]): blocks
// handed out in a shuffled order, as an engine's allocator would after churn.
struct PagedKv {
  DeviceBuffer<bf16> k, v;
  DeviceBuffer<int> table;
  KvLayout layout;
};

PagedKv MakePaged(const std::vector<float>& k, const std::vector<float>& v, int batch,
                  int max_context, int kv_heads, int block_tokens, std::mt19937_64& rng) {
  const int max_blocks = (max_context + block_tokens - 1) / block_tokens;
  const int blocks = batch * max_blocks;
  const std::vector<int> order = ShuffledBlocks(blocks, rng);
  const size_t row = static_cast<size_t>(kv_heads) * kHeadDim;
  std::vector<float> pk(static_cast<size_t>(blocks) * block_tokens * row, 0.f), pv(pk.size(), 0.f);
  for (int b = 0; b < batch; ++b) {
    for (int t = 0; t < max_context; ++t) {
      const size_t src = (static_cast<size_t>(b) * max_context + t) * row;
      const int block = order[b * max_blocks + t / block_tokens];
      const size_t dst = (static_cast<size_t>(block) * block_tokens + t % block_tokens) * row;
      std::copy(k.begin() + src, k.begin() + src + row, pk.begin() + dst);
      std::copy(v.begin() + src, v.begin() + src + row, pv.begin() + dst);
    }
  }
  PagedKv p{ToDevice(pk), ToDevice(pv), IntsToDevice(order), {}};
  p.layout.block_table = p.table.get();
  p.layout.block_tokens = block_tokens;
  p.layout.max_blocks = max_blocks;
  return p;
}

// Runs `launch(k, v, layout)` over the contiguous rows and over a paged copy for
// every block size, comparing `out` with `want` each time; throws when a relative
// error reaches `tolerance`. Returns the worst error.
template <typename Launch>
double CheckEveryLayout(ProbeContext& ctx, const std::vector<float>& k, const std::vector<float>& v,
                        int batch, int max_context, int kv_heads, std::mt19937_64& rng,
                        DeviceBuffer<bf16>& out, const std::vector<double>& want, double tolerance,
                        const std::string& label, Launch launch) {
  double worst = 0;
  auto run = [&](const bf16* kp, const bf16* vp, const KvLayout& layout, const std::string& what) {
    CUDA_CHECK(cudaMemset(out.get(), 0, out.bytes()));
    launch(kp, vp, layout);
    CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    const double err = MaxRelativeError(ToHost(out), want);
    ctx.log("verify " + label + " " + what + ": max relative error " + Num(err, 3));
    if (!(err < tolerance)) {
      throw std::runtime_error(label + " (" + what + ") is wrong: error " + Num(err, 3));
    }
    worst = std::max(worst, err);
  };
  auto dk = ToDevice(k), dv = ToDevice(v);
  KvLayout contiguous;
  contiguous.max_context = max_context;
  run(dk.get(), dv.get(), contiguous, "contiguous");
  for (int bs : kBlockSizes) {
    PagedKv p = MakePaged(k, v, batch, max_context, kv_heads, bs, rng);
    run(p.k.get(), p.v.get(), p.layout, "paged/" + std::to_string(bs));
  }
  return worst;
}

double CheckDecode(ProbeContext& ctx, int batch, int q_heads, int kv_heads, int max_context,
                   std::mt19937_64& rng) {
  std::vector<int> lens(batch);
  std::uniform_int_distribution<int> len_dist(1, max_context);
  for (int& l : lens) l = len_dist(rng);
  lens[0] = max_context;
  const size_t kv = static_cast<size_t>(batch) * max_context * kv_heads * kHeadDim;
  const auto q = RandomBf16Values(static_cast<size_t>(batch) * q_heads * kHeadDim, rng, 1.f);
  auto k = RandomBf16Values(kv, rng, 1.f);
  auto v = RandomBf16Values(kv, rng, 1.f);
  const std::vector<double> want =
      DecodeAttentionReference({batch, q_heads, kv_heads, kHeadDim}, max_context, lens, q, k, v);
  // The cache past each sequence's length holds NaN, as a cache may hold anything there:
  // a kernel that lets one of those rows reach its output fails the check.
  const size_t row = static_cast<size_t>(kv_heads) * kHeadDim;
  for (int b = 0; b < batch; ++b) {
    const size_t from = (static_cast<size_t>(b) * max_context + lens[b]) * row;
    const size_t to = (static_cast<size_t>(b) + 1) * max_context * row;
    std::fill(k.begin() + static_cast<std::ptrdiff_t>(from),
              k.begin() + static_cast<std::ptrdiff_t>(to), std::numeric_limits<float>::quiet_NaN());
    std::fill(v.begin() + static_cast<std::ptrdiff_t>(from),
              v.begin() + static_cast<std::ptrdiff_t>(to), std::numeric_limits<float>::quiet_NaN());
  }

  auto dq = ToDevice(q);
  auto dlens = IntsToDevice(lens);
  DeviceBuffer<bf16> out(q.size());
  const DecodeSizes sizes{batch, q_heads, kv_heads, max_context, ctx.sm_count};
  DeviceBuffer<float> ws(DecodeWorkspaceFloats(sizes));
  // K and V (and their layout) are set for each layout checked.
  DecodeArgs a =
      MakeDecodeArgs(sizes, dq.get(), nullptr, nullptr, out.get(), dlens.get(), ws.get());
  double worst = 0;
  for (DecodeLoads loads : DecodeLoadSchedules()) {  // the tuner may pick any of them
    a.loads = loads;
    const std::string label = "decode attention, batch " + std::to_string(batch) + ", heads " +
                              std::to_string(q_heads) + "/" + std::to_string(kv_heads) +
                              ", loads " + DecodeLoadsName(loads);
    worst = std::max(
        worst, CheckEveryLayout(ctx, k, v, batch, max_context, kv_heads, rng, out, want, 1e-2,
                                label, [&](const bf16* kp, const bf16* vp, const KvLayout& layout) {
                                  a.k = kp;
                                  a.v = vp;
                                  a.layout = layout;
                                  LaunchDecodeAttention(a, ctx.stream);
                                }));
  }
  return worst;
}

double CheckPrefill(ProbeContext& ctx, int batch, int tokens, int q_heads, int kv_heads,
                    std::mt19937_64& rng) {
  const size_t kv = static_cast<size_t>(batch) * tokens * kv_heads * kHeadDim;
  const auto q =
      RandomBf16Values(static_cast<size_t>(batch) * tokens * q_heads * kHeadDim, rng, 1.f);
  const auto k = RandomBf16Values(kv, rng, 1.f);
  const auto v = RandomBf16Values(kv, rng, 1.f);
  const std::vector<double> want =
      PrefillAttentionReference({batch, q_heads, kv_heads, kHeadDim}, tokens, q, k, v);
  auto dq = ToDevice(q);
  DeviceBuffer<bf16> out(q.size());
  PrefillArgs a;
  a.q = dq.get();
  a.out = out.get();
  a.batch = batch;
  a.tokens = tokens;
  a.q_heads = q_heads;
  a.kv_heads = kv_heads;
  // Every block shape the kernel can choose (PrefillArgs::m_tiles), whatever it
  // would choose for these sizes.
  double worst = 0;
  for (int m_tiles : {1, 2}) {
    a.m_tiles = m_tiles;
    const std::string label = "prefill attention, " + std::to_string(tokens) + " tokens, " +
                              std::to_string(m_tiles) + " m-tile(s) per warp";
    worst = std::max(
        worst, CheckEveryLayout(ctx, k, v, batch, tokens, kv_heads, rng, out, want, 2e-2, label,
                                [&](const bf16* kp, const bf16* vp, const KvLayout& layout) {
                                  a.k = kp;
                                  a.v = vp;
                                  a.layout = layout;
                                  LaunchPrefillAttention(a, ctx.stream);
                                }));
  }
  return worst;
}

}  // namespace

double VerifyAttention(ProbeContext& ctx) {
  std::random_device seed_source;  // fresh inputs on every run
  std::mt19937_64 rng((static_cast<uint64_t>(seed_source()) << 32) ^ seed_source());
  double worst = 0;
  worst = std::max(worst, CheckDecode(ctx, 3, 32, 8, 700, rng));   // split context
  worst = std::max(worst, CheckDecode(ctx, 40, 32, 8, 300, rng));  // one block per head
  worst = std::max(worst, CheckDecode(ctx, 5, 8, 8, 257, rng));    // multi-head attention
  worst = std::max(worst, CheckDecode(ctx, 4, 64, 8, 129, rng));   // 8 queries per KV head
  worst = std::max(worst, CheckDecode(ctx, 2, 16, 4, 700, rng));   // a TP-2 rank's heads
  worst = std::max(worst, CheckDecode(ctx, 1, 4, 1, 700, rng));    // one KV head
  worst = std::max(worst, CheckDecode(ctx, 3, 8, 4, 300, rng));    // 2 queries per KV head
  worst = std::max(worst, CheckDecode(ctx, 2, 14, 2, 300, rng));   // 7 (Yi-34B's groups)
  worst = std::max(worst, CheckPrefill(ctx, 2, 200, 8, 2, rng));
  worst = std::max(worst, CheckPrefill(ctx, 1, 64, 4, 4, rng));
  return worst;
}

// Decode launches captured per timed graph (kernel time, not the host's launch rate).
constexpr int kMinDecodeLaunchesPerGraph = 20;
constexpr int kMaxDecodeLaunchesPerGraph = 200;
// Prefill launches per timed graph, at most (LaunchesPerGraph).
constexpr int kMaxPrefillLaunchesPerGraph = 100;
// Each prefill cell replays its own kernel until its clock settles before it is timed
// (steady_warm.h). Timed right after a GEMM heater instead (Heater in gemm.cuh), it
// carried the heater's lower clock: on the lent H200, 4,096-token cells took 577 us
// per layer where the same kernel inside whole passes took 434 us
// (models/profiles/H200/README.md).
constexpr SteadyWarmLimits kPrefillWarm{300, 1500, 0.015};  // ms, ms, relative
constexpr double kPrefillChunkUs = 50000;
constexpr SteadyWarmLimits kQuickPrefillWarm{100, 100, 0};  // --quick: a fixed 100 ms

// Llama-3-8B's attention shape, and the KV heads one rank keeps at tensor parallel 2,
// 4 and 8.
constexpr int kModelKvHeads = 8;
constexpr int kModelGroup = 4;  // query heads per KV head
constexpr int kRankKvHeads[] = {4, 2, 1};

// Copies of a decode cell's KV (block_tokens 0: contiguous) that its timed launches cycle
// through: enough that kColdCopiesL2Multiple L2 sizes of other KV pass between two uses
// of one (two copies at least), as far as the buffers of `max_tokens` rows of `row`
// elements hold them, so that each launch reads its KV from HBM, as a pass does. With one
// copy, one sequence of 512 cached tokens (2 MB) took 5.6-5.9 us per layer on the lent
// H200 where the same kernels took 6.6 us inside whole passes (`attention_us` of [step]).
KvCopies ColdKvCopies(int block_tokens, int batch, int context, double kv_bytes, size_t row,
                      size_t max_tokens, size_t l2_bytes) {
  const int unit = std::max(1, block_tokens);
  const size_t rows = static_cast<size_t>(batch) * ((context + unit - 1) / unit) * unit;
  KvCopies copies;
  copies.count = ColdCopies(kv_bytes, static_cast<double>(l2_bytes), kColdCopiesL2Multiple,
                            max_tokens / rows, 1, std::numeric_limits<int>::max());
  copies.stride_elems = rows * row;
  return copies;
}

void ProbeAttention(ProbeContext& ctx) {
  const bool quick = ctx.options.quick;
  const size_t row = static_cast<size_t>(kModelKvHeads) * kHeadDim;
  const size_t max_tokens = quick ? (size_t{1} << 17) : (size_t{1} << 20);
  DeviceBuffer<bf16> k(max_tokens * row), v(max_tokens * row);
  FillRandomBf16(k.get(), k.size(), 21, 1.f, ctx.stream);
  FillRandomBf16(v.get(), v.size(), 22, 1.f, ctx.stream);
  std::mt19937_64 rng(7);

  // Decode grid.
  auto& decode = ctx.profile.AddTable(schema::kDecodeAttention);
  // Every split count tried for every cell (the profile keeps the fastest).
  const std::string splits_path = RawFilePath(ctx.raw_dir, schema::kDecodeSplitsFile);
  std::ofstream splits_raw(splits_path);
  splits_raw << HeaderLine(schema::kDecodeSplitsFile) << "\n";
  const std::vector<int> batches =
      quick ? std::vector<int>{1, 16, 64} : std::vector<int>{1, 4, 16, 64, 128, 256};
  const std::vector<int> contexts =
      quick ? std::vector<int>{512, 2048} : std::vector<int>{256, 1024, 4096, 16384};
  // (batch, KV heads) cells: Llama-3-8B's 8 KV heads at every batch, then one sequence
  // with the KV heads a rank keeps at tensor parallel 2, 4 and 8 (kvsim reads the rows
  // by batch x KV heads, the kernel's units: fewer than 8 exist only this way).
  std::vector<std::pair<int, int>> cells;
  for (int batch : batches) cells.emplace_back(batch, kModelKvHeads);
  if (!quick) {
    for (int kv_heads : kRankKvHeads) cells.emplace_back(1, kv_heads);
  }
  for (const auto& [batch, kv_heads] : cells) {
    const int q_heads = kv_heads * kModelGroup;
    const std::string cell_name =
        kv_heads == kModelKvHeads ? "" : " (" + std::to_string(kv_heads) + " KV heads)";
    for (int context : contexts) {
      if (static_cast<size_t>(batch) * context > max_tokens) continue;
      DeviceBuffer<bf16> q(static_cast<size_t>(batch) * q_heads * kHeadDim), out(q.size());
      FillRandomBf16(q.get(), q.size(), 23, 1.f, ctx.stream);
      const DecodeSizes sizes{batch, q_heads, kv_heads, context, ctx.sm_count};
      DeviceBuffer<float> ws(DecodeWorkspaceFloats(sizes));
      auto lens = IntsToDevice(std::vector<int>(batch, context));
      DecodeArgs a =
          MakeDecodeArgs(sizes, q.get(), k.get(), v.get(), out.get(), lens.get(), ws.get());
      const double kv_bytes =
          2.0 * batch * context * kv_heads * kHeadDim * static_cast<double>(sizeof(bf16));
      const bool largest =
          static_cast<size_t>(batch) * context == max_tokens && kv_heads == kModelKvHeads;
      for (int bs : {0, 16, 32, 128, 256}) {
        DeviceBuffer<int> table;
        a.layout = GridLayout(bs, batch, context, rng, table);
        // The fastest split of the context for this cell (timed as graph replays),
        // then that launch timed again, as engines run decode; the eager loop's figure
        // is logged beside it.
        a.splits = 0;
        const KvCopies copies =
            ColdKvCopies(bs, batch, context, kv_bytes, row, max_tokens, ctx.l2_bytes);
        const DecodeTuning tuning = TuneDecodeSplits(a, ctx.stream, copies);
        const std::string layout_name = bs == 0 ? "contiguous" : "paged";
        for (size_t i = 0; i < tuning.tried.size(); ++i) {
          const DecodeTuning::Candidate& t = tuning.tried[i];
          splits_raw << layout_name << "," << bs << "," << batch << "," << kv_heads << ","
                     << context << "," << t.splits << "," << DecodeLoadsName(t.loads) << ","
                     << (i == 0 ? 1 : 0) << "," << Num(t.us, 5) << "\n";
        }
        a.splits = tuning.args_splits;
        a.loads = tuning.loads;
        int next = 0;
        auto launch = [&] { LaunchDecodeOnCopy(a, copies, next++, ctx.stream); };
        const double trial = TimeUs(ctx.stream, 2, 3, launch);
        const int reps = RepsFor(trial, quick ? 2000 : 20000, 5, 500);
        const int per_graph = LaunchesCyclingCopies(
            LaunchesPerGraph(trial, kMinDecodeLaunchesPerGraph, kMaxDecodeLaunchesPerGraph),
            copies.count);
        const double us = TimeGraphUs(ctx.stream, per_graph, std::max(1, reps / per_graph), launch);
        const double eager_us = TimeUs(ctx.stream, 2, reps, launch);
        const double gbps = kv_bytes / (us * 1e-6) / 1e9;
        if (bs == 0 || bs == 16) {
          ctx.log("attention: decode " + std::string(bs == 0 ? "contiguous" : "paged/16") + " " +
                  std::to_string(batch) + " x " + std::to_string(context) + cell_name + ": graph " +
                  Num(us, 4) + " us (" + Num(gbps, 4) + " GB/s), " + std::to_string(tuning.splits) +
                  " splits, loads " + DecodeLoadsName(tuning.loads) + " (the plan's " +
                  std::to_string(tuning.planned_splits) + ": " + Num(tuning.planned_us, 4) +
                  " us), eager loop " + Num(eager_us, 4) + " us");
        }
        decode.Row({layout_name, Num(bs), Num(batch), Num(context), Num(q_heads), Num(kv_heads),
                    Num(kHeadDim), Num(us, 5), Num(gbps, 4), Num(tuning.splits)});
        if (largest && (bs == 0 || bs == 16)) {
          std::string pct =
              ctx.copy_gbps > 0 ? ", " + Num(100 * gbps / ctx.copy_gbps, 3) + "% of copy" : "";
          ctx.headlines.emplace_back("decode " + std::string(bs == 0 ? "contiguous" : "paged/16") +
                                         ", batch " + std::to_string(batch) + " x " +
                                         std::to_string(context),
                                     Num(gbps, 4) + " GB/s" + pct);
        }
      }
      ctx.clock.Sample();
    }
    ctx.log("attention: decode batch " + std::to_string(batch) + cell_name + " done");
  }
  if (!splits_raw) throw std::runtime_error(splits_path + ": cannot write");

  // Prefill grid (batch 1).
  auto& prefill = ctx.profile.AddTable(schema::kPrefillAttention);
  const std::vector<int> lengths =
      quick ? std::vector<int>{512, 2048} : std::vector<int>{512, 1024, 2048, 4096, 8192, 16384};
  // Llama-3-8B's heads, then a tensor-parallel-2 rank's (kvsim reads the rows of the
  // rank's query heads where a profile has them: with few heads the kernel leaves SMs
  // idle, and its time is not proportional to the heads).
  std::vector<int> head_groups{kModelKvHeads};
  if (!quick) head_groups.push_back(kModelKvHeads / 2);
  // Each prefill cell's SM clock and power while it was timed (raw).
  std::ofstream clocks(RawFilePath(ctx.raw_dir, schema::kPrefillClocksFile));
  clocks << HeaderLine(schema::kPrefillClocksFile) << "\n";
  for (const int kv_heads : head_groups) {
    const int q_heads = kv_heads * kModelGroup;
    for (int tokens : lengths) {
      DeviceBuffer<bf16> q(static_cast<size_t>(tokens) * q_heads * kHeadDim), out(q.size());
      FillRandomBf16(q.get(), q.size(), 24, 1.f, ctx.stream);
      PrefillArgs a;
      a.q = q.get();
      a.k = k.get();
      a.v = v.get();
      a.out = out.get();
      a.batch = 1;
      a.tokens = tokens;
      a.q_heads = q_heads;
      a.kv_heads = kv_heads;
      const double flops = 4.0 * q_heads * kHeadDim * tokens * (tokens + 1.0) / 2.0;
      for (int bs : {0, 16, 32, 128, 256}) {
        DeviceBuffer<int> table;
        a.layout = GridLayout(bs, 1, tokens, rng, table);
        auto launch = [&] { LaunchPrefillAttention(a, ctx.stream); };
        // Compute-bound: timed at the clock its own sustained load settles at (see
        // kPrefillWarm), as graph replays like the other kernel rows.
        const double trial = TimeUs(ctx.stream, 1, 2, launch);
        ReplayUntilSteady(ctx.stream, launch, trial, 3 * trial,
                          quick ? kQuickPrefillWarm : kPrefillWarm, kPrefillChunkUs);
        const int reps = RepsFor(trial, quick ? 2000 : 20000, 3, 200);
        const int per_graph =
            std::min(reps, LaunchesPerGraph(trial, 1, kMaxPrefillLaunchesPerGraph));
        LoadWindow window;
        const double us = TimeGraphUs(ctx.stream, per_graph, std::max(1, reps / per_graph), launch,
                                      &ctx.clock, &window);
        ctx.clock.SampleUnderLoad();
        const double tflops = flops / (us * 1e-6) / 1e12;
        clocks << bs << "," << tokens << "," << q_heads << "," << kv_heads << "," << Num(us, 5)
               << "," << Num(tflops, 4) << "," << LoadWindowFields(window) << "\n";
        prefill.Row({bs == 0 ? "contiguous" : "paged", Num(bs), "1", Num(tokens), Num(q_heads),
                     Num(kv_heads), Num(kHeadDim), Num(us, 5), Num(tflops, 4)});
        if (tokens == lengths.back() && kv_heads == kModelKvHeads && (bs == 0 || bs == 16)) {
          ctx.headlines.emplace_back("prefill " + std::string(bs == 0 ? "contiguous" : "paged/16") +
                                         ", " + std::to_string(tokens) + " tokens",
                                     Num(tflops, 4) + " TFLOP/s");
        }
      }
      ctx.clock.Sample();
    }
  }
}

}  // namespace kvprobe
