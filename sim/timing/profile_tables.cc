// Reading a kvprobe profile's tables into curves (profile_tables.h).
#include "sim/timing/profile_tables.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/hardware/layer_gemms.h"
#include "sim/kvcache/kv_cache_manager.h"
#include "sim/timing/allreduce_estimate.h"
#include "sim/timing/profile_schema.h"

namespace kvsim {
namespace {

namespace col = profile_schema::column;
namespace section = profile_schema::section;

constexpr double kSecondsPerMicro = 1e-6;
constexpr double kBf16Bytes = 2;  // bytes of a bf16 element, as kvprobe's K and V caches hold
// The largest count (tokens, heads, head_dim) a row may hold: beyond it no GPU's memory
// holds the shape, and products of counts stay exact.
constexpr double kMaxCount = 1e9;

// The GEMM layers of one transformer layer (and the LM head), in kvprobe's order.
constexpr std::array<LayerGemm, 5> kGemmLayers = LayerGemmShapes(LayerDims{}, 1);

// "qkv, o, gate_up, down, lm_head".
std::string GemmLayerNames() {
  std::string out;
  for (const LayerGemm& g : kGemmLayers) {
    out += fmt::format("{}{}", out.empty() ? "" : ", ", g.layer);
  }
  return out;
}

// What a kernel row's time_us implies: `work` per second, work counted as `counted`
// says, against the card's `peak` (`peak_name`, its key); both shown in `unit` per
// second (`unit_scale` of them), as the row's rate column `column` holds it.
struct ImpliedRate {
  double work = 0;
  std::string_view counted;
  std::string_view column;
  std::string_view unit;
  double unit_scale = 0;
  double peak = 0;
  std::string_view peak_name;
  std::string_view peak_key;
};

// Reads profile rows into curves, throwing InputError "path:line: what".
class ProfileReader {
 public:
  ProfileReader(const Profile& profile, const ModelSpec& model, const GpuSpec& gpu, int64_t tp)
      : profile_(profile), model_(model), gpu_(gpu), tp_(tp) {}

  [[noreturn]] void Fail(int line, const std::string& what) const {
    throw InputError(fmt::format("{}:{}: {}", profile_.path(), line, what));
  }

  // A positive number in `column` of `row`.
  double Positive(const ProfileTable& t, size_t row, std::string_view column) const {
    const double v = t.Number(row, column);
    if (!(v > 0))
      Fail(t.line(row), fmt::format("[{}] {} must be positive, got {}", t.name(), column, v));
    return v;
  }

  // A positive integer of at most kMaxCount in `column` of `row`: a count of sequences,
  // tokens or heads, or head_dim.
  double Count(const ProfileTable& t, size_t row, std::string_view column) const {
    const double v = t.Number(row, column);
    if (!(v >= 1) || v != std::floor(v) || v > kMaxCount) {
      Fail(t.line(row), fmt::format("[{}] {} must be a positive integer (at most {:g}), got {}",
                                    t.name(), column, kMaxCount, t.Text(row, column)));
    }
    return v;
  }

  // Fails at `row` (its time_us positive) when the rate its time implies is more than
  // kPeakMargin x the card's peak, or its rate column differs from that rate by more
  // than kRateColumnTolerance of it: a time in other units, or an edited row.
  void CheckRate(const ProfileTable& t, size_t row, const ImpliedRate& r) const {
    const double time_us = t.Number(row, col::kTimeUs);
    const double implied = r.work / (time_us * kSecondsPerMicro) / r.unit_scale;
    const double peak = r.peak / r.unit_scale;
    if (implied > kPeakMargin * peak) {
      Fail(t.line(row),
           fmt::format("[{}] {} {} implies {:.4g} {} ({} / time), more than {:g} x the {} card's "
                       "{} of {:.4g} {} ({}): not a measurement on this GPU (a time in other "
                       "units than microseconds?)",
                       t.name(), col::kTimeUs, t.Text(row, col::kTimeUs), implied, r.unit,
                       r.counted, kPeakMargin, gpu_.name, r.peak_name, peak, r.unit, r.peak_key));
    }
    const double written = t.Number(row, r.column);
    if (!(std::abs(written - implied) <= kRateColumnTolerance * implied)) {
      Fail(t.line(row),
           fmt::format("[{}] {} {} disagrees with {} {}, which implies {:.4g} {} ({} / time), by "
                       "more than {:g}%: one of them was changed after kvprobe wrote the row (a "
                       "unit slip, a mistyped count)",
                       t.name(), r.column, t.Text(row, r.column), col::kTimeUs,
                       t.Text(row, col::kTimeUs), implied, r.unit, r.counted,
                       100 * kRateColumnTolerance));
    }
  }

  // The GEMM curves of this model and tensor_parallel, by layer.
  std::map<std::string, SizeCurve> Gemms() const {
    const ProfileTable& t = profile_.Table(section::kGemm);
    // model -> tensor_parallel values, as written: rows of other models are not checked,
    // and any finite number must be listed without a cast that could overflow.
    std::map<std::string, std::set<double>> available;
    std::map<std::string, std::vector<Point>> points;
    std::map<std::pair<std::string, double>, int> seen;  // (layer, tokens) -> line
    for (size_t r = 0; r < t.size(); ++r) {
      const std::string& name = t.Text(r, col::kModel);
      const double tp = t.Number(r, col::kTensorParallel);
      available[name].insert(tp);
      const std::string& layer = t.Text(r, col::kLayer);
      const auto shape = ExpectedShape(layer);
      if (!shape) {
        Fail(t.line(r), fmt::format("[{}] {} '{}' is not one of {}", t.name(), col::kLayer, layer,
                                    GemmLayerNames()));
      }
      // What holds of any row, whatever its model: a time, a whole token count.
      Positive(t, r, col::kTimeUs);
      Count(t, r, col::kTokens);
      if (name != model_.name || tp != static_cast<double>(tp_)) continue;
      const double tokens = Positive(t, r, col::kTokens);
      const double n = t.Number(r, col::kN);
      const double k = t.Number(r, col::kK);
      if (std::abs(n - shape->first) >= 1 || std::abs(k - shape->second) >= 1) {
        Fail(t.line(r), fmt::format("[{}] {} {} at {} {} has {}={} {}={}, but the model card "
                                    "gives {}={} {}={}: the profile was measured for other shapes",
                                    t.name(), name, layer, col::kTensorParallel, tp_, col::kN, n,
                                    col::kK, k, col::kN, shape->first, col::kK, shape->second));
      }
      if (const auto [it, fresh] = seen.emplace(std::pair(layer, tokens), t.line(r)); !fresh) {
        Fail(t.line(r),
             fmt::format("[{}] repeats {} {} at {} {} and {} tokens (first at line {})", t.name(),
                         name, layer, col::kTensorParallel, tp_, tokens, it->second));
      }
      const double seconds = Positive(t, r, col::kTimeUs) * kSecondsPerMicro;
      CheckRate(t, r,
                {.work = 2 * t.Number(r, col::kM) * n * k,
                 .counted = "2 x m x n x k FLOPs",
                 .column = col::kTflops,
                 .unit = "TFLOP/s",
                 .unit_scale = 1e12,
                 .peak = gpu_.bf16_flops_per_s,
                 .peak_name = "bf16 peak",
                 .peak_key = "bf16_flops_per_s"});
      points[layer].push_back({tokens, seconds});
    }
    if (points.empty()) {
      std::string have;
      for (const auto& [name, tps] : available) {
        have += fmt::format("{}{} ({} {})", have.empty() ? "" : ", ", name, col::kTensorParallel,
                            fmt::join(tps, ", "));
      }
      throw InputError(fmt::format(
          "timing.profile {}: no [{}] rows for model {} at {} {}; it has: {}", profile_.path(),
          t.name(), model_.name, col::kTensorParallel, tp_, have.empty() ? "none" : have));
    }
    std::map<std::string, SizeCurve> curves;
    for (const char* layer : {"qkv", "o", "gate_up", "down", "lm_head"}) {
      const auto it = points.find(layer);
      if (it == points.end() || it->second.size() < 2) {
        Fail(t.section_line(),
             fmt::format("[{}] needs '{}' rows at two or more token counts for {} at {} {}, "
                         "found {}",
                         t.name(), layer, model_.name, col::kTensorParallel, tp_,
                         it == points.end() ? 0 : it->second.size()));
      }
      curves.emplace(layer, SizeCurve(it->second));
    }
    return curves;
  }

  // Decode attention surfaces by layout over (sequence_heads = batch x KV heads,
  // context), with time scaled to the model's head_dim: rows measured with any number
  // of KV heads are the same kernel's launches over that many units (DecodePoint), and
  // the model asks at batch x its KV heads per rank.
  LayoutCurves<DecodeSurface> DecodeAttention() const {
    const ProfileTable& t = profile_.Table(section::kDecodeAttention);
    std::map<int64_t, std::vector<DecodePoint>> groups;  // block_tokens (0: contiguous)
    std::map<std::array<double, 3>, int> seen;
    for (size_t r = 0; r < t.size(); ++r) {
      const int64_t block = LayoutKey(t, r);
      const double units = Count(t, r, col::kBatch) * Count(t, r, col::kKvHeads);
      const double context = Count(t, r, col::kContextTokens);
      Count(t, r, col::kQHeads);
      const double head_dim = Count(t, r, col::kHeadDim);
      const double scale = static_cast<double>(model_.head_dim) / head_dim;
      if (const auto [it, fresh] =
              seen.emplace(std::array{static_cast<double>(block), units, context}, t.line(r));
          !fresh) {
        Fail(t.line(r), fmt::format("[{}] repeats a {} row at {} x {} = {} and {} {} (first at "
                                    "line {}): the same launch measured twice",
                                    t.name(), LayoutName(block), col::kBatch, col::kKvHeads, units,
                                    col::kContextTokens, context, it->second));
      }
      const double seconds = Positive(t, r, col::kTimeUs) * kSecondsPerMicro;
      CheckRate(t, r,
                {.work = 2 * kBf16Bytes * units * context * head_dim,
                 .counted = "2 x 2 bytes x batch x kv_heads x context_tokens x head_dim of K and V",
                 .column = col::kKvGbps,
                 .unit = "GB/s",
                 .unit_scale = 1e9,
                 .peak = gpu_.hbm_bandwidth_bytes_per_s,
                 .peak_name = "HBM bandwidth",
                 .peak_key = "hbm_bandwidth_bytes_per_s"});
      groups[block].push_back({units, context, seconds * scale});
    }
    LayoutCurves<DecodeSurface> curves;
    for (auto& [block, points] : groups) {
      std::set<double> products;
      for (const DecodePoint& p : points) products.insert(p.sequence_heads * p.context);
      if (products.size() < 2) {
        Fail(t.section_line(),
             fmt::format("[{}] {} needs two or more sizes ({} x {} x {})", t.name(),
                         LayoutName(block), col::kBatch, col::kKvHeads, col::kContextTokens));
      }
      AddCurve(curves, block, DecodeSurface(points));
    }
    RequireBothLayouts(curves, t);
    return curves;
  }

  // Prefill attention curves (time against causal pairs) by layout, each from that
  // layout's rows measured with the model's query heads per rank, or, where it has no
  // such rows, with the query-head count nearest to it in log distance (the smaller on
  // a tie), scaled to the model's heads per rank and head_dim. With few heads the
  // kernel leaves SMs idle, so its time is not proportional to the heads: on the lent
  // H200 a 512-token prompt took 14.1 us with 32 query heads and 11.2 with 16
  // (models/profiles/H200/profile.txt, [prefill_attention]).
  LayoutCurves<SizeCurve> PrefillAttention() const {
    const ProfileTable& t = profile_.Table(section::kPrefillAttention);
    const double heads = static_cast<double>(model_.num_heads) / static_cast<double>(tp_);
    std::map<int64_t, double> group;  // block_tokens -> the q_heads its rows are read at
    for (size_t r = 0; r < t.size(); ++r) {
      const int64_t block = LayoutKey(t, r);
      const double h = Count(t, r, col::kQHeads);
      const auto [it, fresh] = group.emplace(block, h);
      if (!fresh && NearerInLogDistance(h, it->second, heads)) it->second = h;
    }
    std::map<int64_t, std::vector<Point>> groups;
    std::map<std::array<double, 3>, int> seen;
    for (size_t r = 0; r < t.size(); ++r) {
      const int64_t block = LayoutKey(t, r);
      const double q_heads = t.Number(r, col::kQHeads);
      if (q_heads != group.at(block)) continue;
      const double batch = Count(t, r, col::kBatch);
      const double tokens = Count(t, r, col::kTokens);
      Count(t, r, col::kKvHeads);
      const double head_dim = Count(t, r, col::kHeadDim);
      const double scale = heads * static_cast<double>(model_.head_dim) / (q_heads * head_dim);
      CheckFresh(seen, {static_cast<double>(block), batch, tokens}, t, r, col::kBatch,
                 col::kTokens);
      const double pairs = batch * tokens * (tokens + 1) / 2;
      const double seconds = Positive(t, r, col::kTimeUs) * kSecondsPerMicro;
      CheckRate(t, r,
                {.work = 4 * q_heads * head_dim * pairs,
                 .counted = "4 x q_heads x head_dim x batch x tokens x (tokens + 1) / 2 FLOPs",
                 .column = col::kTflops,
                 .unit = "TFLOP/s",
                 .unit_scale = 1e12,
                 .peak = gpu_.bf16_flops_per_s,
                 .peak_name = "bf16 peak",
                 .peak_key = "bf16_flops_per_s"});
      groups[block].push_back({pairs, seconds * scale});
    }
    LayoutCurves<SizeCurve> curves;
    for (auto& [block, points] : groups) {
      std::set<double> pairs;
      for (const Point& p : points) pairs.insert(p.x);
      if (pairs.size() < 2) {
        Fail(t.section_line(),
             fmt::format("[{}] {} needs two or more prompt sizes", t.name(), LayoutName(block)));
      }
      AddCurve(curves, block, SizeCurve(points, SizeCurve::Below::kExtendFirstSegment));
    }
    RequireBothLayouts(curves, t);
    return curves;
  }

  // The [small_kernels] curve of this model and tensor_parallel (time per layer
  // against tokens, flat below the grid), or nothing when the profile has no such rows.
  std::optional<SizeCurve> SmallKernels() const {
    const ProfileTable* t = profile_.Find(section::kSmallKernels);
    if (t == nullptr) return std::nullopt;
    std::vector<Point> points;
    std::map<double, int> seen;  // tokens -> line
    for (size_t r = 0; r < t->size(); ++r) {
      if (t->Text(r, col::kModel) != model_.name ||
          t->Number(r, col::kTensorParallel) != static_cast<double>(tp_)) {
        continue;
      }
      const double tokens = Positive(*t, r, col::kTokens);
      if (const auto [it, fresh] = seen.emplace(tokens, t->line(r)); !fresh) {
        Fail(t->line(r),
             fmt::format("[{}] repeats {} at {} {} and {} tokens (first at line {})", t->name(),
                         model_.name, col::kTensorParallel, tp_, tokens, it->second));
      }
      points.push_back({tokens, Positive(*t, r, col::kTimeUs) * kSecondsPerMicro});
    }
    if (points.empty()) return std::nullopt;
    if (seen.size() < 2) {
      Fail(t->section_line(), fmt::format("[{}] needs {} at two or more token counts at {} {}",
                                          t->name(), model_.name, col::kTensorParallel, tp_));
    }
    return SizeCurve(points);
  }

  // The all-reduce curve for tensor_parallel GPUs: the [allreduce] rows measured on
  // that many GPUs, else one estimated at every measured size from the other GPU
  // counts (allreduce_estimate.h) with a sentence saying how; nothing without rows.
  std::optional<AllreduceCurve> Allreduce() const {
    const ProfileTable* t = profile_.Find(section::kAllreduce);
    if (t == nullptr) return std::nullopt;
    // In-pass cost: in_graph_us where measured (an all-reduce inside a graph after a
    // bandwidth-bound kernel and one writing its input, as it sits in a forward pass),
    // else alone_in_graph_us (after a kernel that touches no memory), else the
    // back-to-back time. On the lent H200, TP 2 decode passes exceeded the sum of their
    // kernel classes by 8.8-14 us per layer where TP 1 passes did by -0.2 to 8 us: what
    // in_graph_us adds to the two all-reduces of a layer (models/profiles/H200/README.md).
    const bool placed = t->HasColumn(col::kInGraphUs);
    const bool in_graph = placed || t->HasColumn(col::kAloneInGraphUs);
    const std::string_view time_column = placed     ? col::kInGraphUs
                                         : in_graph ? col::kAloneInGraphUs
                                                    : col::kTimeUs;
    std::map<int64_t, std::vector<Point>> by_gpus;
    std::map<std::pair<int64_t, double>, int> seen;
    for (size_t r = 0; r < t->size(); ++r) {
      const double gpus = t->Number(r, col::kGpus);
      if (!(gpus >= 2) || gpus != std::floor(gpus) || gpus > 1e6) {
        Fail(t->line(r), fmt::format("[{}] {} must be an integer of 2 or more, got {}", t->name(),
                                     col::kGpus, t->Text(r, col::kGpus)));
      }
      const auto n = static_cast<int64_t>(gpus);
      const double bytes = Positive(*t, r, col::kBytes);
      if (const auto [it, fresh] = seen.emplace(std::pair(n, bytes), t->line(r)); !fresh) {
        Fail(t->line(r), fmt::format("[{}] repeats {} GPUs at {} bytes (first at line {})",
                                     t->name(), n, bytes, it->second));
      }
      by_gpus[n].push_back({bytes, Positive(*t, r, time_column) * kSecondsPerMicro});
    }
    if (by_gpus.empty()) return std::nullopt;
    std::map<int64_t, SizeCurve> curves;
    std::set<double> sizes;
    for (const auto& [n, points] : by_gpus) {
      if (points.size() < 2) {
        Fail(t->section_line(),
             fmt::format("[{}] needs two or more sizes for {} GPUs, found one", t->name(), n));
      }
      curves.emplace(n, SizeCurve(points));
      for (const Point& p : points) sizes.insert(p.x);
    }
    if (const auto it = curves.find(tp_); it != curves.end()) {
      return AllreduceCurve{it->second, {}, in_graph};
    }
    std::vector<Point> estimated;
    std::map<int64_t, double> at_size;
    for (double bytes : sizes) {
      for (const auto& [n, curve] : curves) at_size[n] = curve.Seconds(bytes);
      estimated.push_back({bytes, EstimateAllreduceSeconds(at_size, tp_)});
    }
    return AllreduceCurve{SizeCurve(estimated),
                          fmt::format("timing.profile {}: {}", profile_.path(),
                                      DescribeAllreduceEstimate(at_size, tp_)),
                          in_graph};
  }

 private:
  // (n, k) of `layer` on one rank (LayerGemmShapes, as kvprobe timed it), or nothing
  // for a name that is no layer.
  std::optional<std::pair<double, double>> ExpectedShape(const std::string& layer) const {
    const LayerDims dims{.hidden = model_.hidden_size,
                         .heads = model_.num_heads,
                         .kv_heads = model_.num_kv_heads,
                         .head_dim = model_.head_dim,
                         .ffn = model_.ffn_size,
                         .vocab = model_.vocab_size};
    for (const LayerGemm& g : LayerGemmShapes(dims, tp_)) {
      if (g.layer == layer) {
        return std::pair(static_cast<double>(g.n), static_cast<double>(g.k));
      }
    }
    return std::nullopt;
  }

  // 0 for contiguous rows, block_tokens for paged ones; fails on another layout.
  int64_t LayoutKey(const ProfileTable& t, size_t row) const {
    const std::string& name = t.Text(row, col::kLayout);
    const std::optional<AttentionLayout> layout = kAttentionLayouts.Parse(name);
    if (!layout) {
      Fail(t.line(row), fmt::format("[{}] {} '{}' is not one of {}", t.name(), col::kLayout, name,
                                    kAttentionLayouts.NameList()));
    }
    if (*layout == AttentionLayout::kContiguous) return 0;
    const double block = t.Number(row, col::kBlockTokens);
    if (!(block >= 1) || block != std::floor(block) || block > 1e9) {
      Fail(t.line(row),
           fmt::format("[{}] paged rows need a positive integer {} (at most 1e9), got {}", t.name(),
                       col::kBlockTokens, t.Text(row, col::kBlockTokens)));
    }
    return static_cast<int64_t>(block);
  }

  static std::string LayoutName(int64_t block) {
    return block == 0 ? std::string(kAttentionLayouts.Name(AttentionLayout::kContiguous))
                      : fmt::format("{} ({} {})", kAttentionLayouts.Name(AttentionLayout::kPaged),
                                    col::kBlockTokens, block);
  }

  // Fails when `seen` has `key`: a row of the same layout, `first` and `second` columns.
  void CheckFresh(std::map<std::array<double, 3>, int>& seen, const std::array<double, 3>& key,
                  const ProfileTable& t, size_t row, std::string_view first,
                  std::string_view second) const {
    if (const auto [it, fresh] = seen.emplace(key, t.line(row)); !fresh) {
      Fail(t.line(row),
           fmt::format("[{}] repeats a {} row at these {} and {} (first at line {})", t.name(),
                       LayoutName(static_cast<int64_t>(key[0])), first, second, it->second));
    }
  }

  template <typename T>
  static void AddCurve(LayoutCurves<T>& curves, int64_t block, T curve) {
    if (block == 0) {
      curves.contiguous.emplace(std::move(curve));
    } else {
      curves.paged.emplace_back(block, std::move(curve));  // groups come in ascending order
    }
  }

  template <typename T>
  void RequireBothLayouts(const LayoutCurves<T>& curves, const ProfileTable& t) const {
    if (!curves.contiguous || curves.paged.empty()) {
      Fail(t.section_line(),
           fmt::format("[{}] needs both contiguous and paged rows (has {}{})", t.name(),
                       curves.contiguous ? "contiguous" : "no contiguous",
                       curves.paged.empty() ? ", no paged" : ", paged"));
    }
  }

  const Profile& profile_;
  const ModelSpec& model_;
  const GpuSpec& gpu_;
  int64_t tp_;
};

}  // namespace

ProfileCurves ReadProfileCurves(const Profile& profile, const ModelSpec& model, const GpuSpec& gpu,
                                int64_t tensor_parallel) {
  const ProfileReader reader(profile, model, gpu, tensor_parallel);
  ProfileCurves curves{.gemm = reader.Gemms(),
                       .decode = reader.DecodeAttention(),
                       .prefill = reader.PrefillAttention(),
                       .allreduce = std::nullopt,
                       .small_kernels = reader.SmallKernels()};
  if (tensor_parallel > 1) curves.allreduce = reader.Allreduce();
  return curves;
}

}  // namespace kvsim
