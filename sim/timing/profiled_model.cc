// Profiled execution time model: iteration times assembled from kvprobe
// measurements; the formulas are stated in execution_time_model.h.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/timing/allreduce_estimate.h"
#include "sim/timing/execution_time_model.h"

namespace kvsim {
namespace {

constexpr double kSecondsPerMicro = 1e-6;
constexpr size_t kFitPoints = 4;  // grid points of a 1-D curve's fit beyond the grid

struct Point {
  double x = 0;        // size: tokens, causal pairs or bytes (> 0)
  double seconds = 0;  // measured time (> 0)
};

// seconds = a + b x.
struct Line {
  double a = 0;
  double b = 0;
  double At(double x) const { return a + b * x; }
};

// The least-squares line through `points` (at least two distinct x), with x scaled
// to [0, 1] for conditioning. A negative slope becomes the least-squares constant (the
// mean), so that extrapolation never decreases.
Line FitLine(const std::vector<Point>& points) {
  KVSIM_CHECK(points.size() >= 2, "a line needs two points");
  double x_max = 0;
  for (const Point& p : points) x_max = std::max(x_max, p.x);
  Eigen::MatrixXd design(static_cast<Eigen::Index>(points.size()), 2);
  Eigen::VectorXd seconds(static_cast<Eigen::Index>(points.size()));
  for (size_t i = 0; i < points.size(); ++i) {
    const auto r = static_cast<Eigen::Index>(i);
    design(r, 0) = 1.0;
    design(r, 1) = points[i].x / x_max;
    seconds(r) = points[i].seconds;
  }
  const Eigen::Vector2d ab = design.colPivHouseholderQr().solve(seconds);
  if (ab(1) < 0) return {.a = seconds.mean(), .b = 0};
  return {.a = ab(0), .b = ab(1) / x_max};
}

// Running maximum, so that a measurement never undercuts one at a smaller size.
void MakeNonDecreasing(std::vector<double>& seconds) {
  for (size_t i = 1; i < seconds.size(); ++i) seconds[i] = std::max(seconds[i], seconds[i - 1]);
}

// Where x falls on a sorted axis of logs: segment index i and fraction f in [0, 1]
// with x = axis[i] + f (axis[i+1] - axis[i]). REQUIRES: axis[0] <= x <= axis.back().
std::pair<size_t, double> Locate(const std::vector<double>& axis, double x) {
  if (axis.size() == 1) return {0, 0.0};
  const auto it = std::upper_bound(axis.begin(), axis.end(), x);
  size_t i = static_cast<size_t>(it - axis.begin());
  i = std::clamp<size_t>(i, 1, axis.size() - 1) - 1;
  const double f = (x - axis[i]) / (axis[i + 1] - axis[i]);
  return {i, std::clamp(f, 0.0, 1.0)};
}

// Time against one size, from measured points: log-log interpolation inside the
// grid, the smallest point's time below it, max(the largest point's time, a + b x)
// above it, with a + b x fitted through the largest kFitPoints points.
class SizeCurve {
 public:
  // REQUIRES: at least two distinct x; every x and time positive. Points at equal x
  // are averaged.
  explicit SizeCurve(std::vector<Point> points) {
    std::sort(points.begin(), points.end(),
              [](const Point& l, const Point& r) { return l.x < r.x; });
    std::vector<Point> merged;
    for (size_t i = 0; i < points.size();) {
      size_t j = i;
      double sum = 0;
      for (; j < points.size() && points[j].x == points[i].x; ++j) sum += points[j].seconds;
      merged.push_back({points[i].x, sum / static_cast<double>(j - i)});
      i = j;
    }
    KVSIM_CHECK(merged.size() >= 2, "a size curve needs two distinct sizes");
    std::vector<double> seconds;
    for (const Point& p : merged) seconds.push_back(p.seconds);
    MakeNonDecreasing(seconds);
    for (size_t i = 0; i < merged.size(); ++i) {
      merged[i].seconds = seconds[i];
      log_x_.push_back(std::log(merged[i].x));
      log_seconds_.push_back(std::log(seconds[i]));
    }
    x_min_ = merged.front().x;
    x_max_ = merged.back().x;
    first_s_ = seconds.front();
    last_s_ = seconds.back();
    const size_t fit_from = merged.size() - std::min(kFitPoints, merged.size());
    beyond_ = FitLine(
        std::vector<Point>(merged.begin() + static_cast<std::ptrdiff_t>(fit_from), merged.end()));
  }

  double Seconds(double x) const {
    if (x <= x_min_) return first_s_;
    if (x >= x_max_) return std::max(last_s_, beyond_.At(x));
    const auto [i, f] = Locate(log_x_, std::log(x));
    return std::exp(log_seconds_[i] + f * (log_seconds_[i + 1] - log_seconds_[i]));
  }

 private:
  std::vector<double> log_x_, log_seconds_;
  double x_min_ = 0, x_max_ = 0, first_s_ = 0, last_s_ = 0;
  Line beyond_;
};

// All-reduce time against message bytes for the replica's GPU count, and, when it is
// estimated rather than measured, one sentence saying how (empty when measured).
struct AllreduceCurve {
  SizeCurve curve;
  std::string estimate;
};

// One decode-attention measurement, already scaled to the model's KV heads per rank.
struct DecodePoint {
  double batch = 0;
  double context = 0;
  double seconds = 0;
};

// Decode attention time against (batch, mean context) for one layout: bilinear in
// (log batch, log context) of log time on the grid, the grid's edge below it,
// max(clamped grid value, a + b x batch x context) beyond it.
class DecodeSurface {
 public:
  // REQUIRES: points have distinct (batch, context), at least two distinct products.
  explicit DecodeSurface(const std::vector<DecodePoint>& points) {
    std::set<double> batches, contexts;
    std::vector<Point> products;
    for (const DecodePoint& p : points) {
      batches.insert(p.batch);
      contexts.insert(p.context);
      products.push_back({p.batch * p.context, p.seconds});
    }
    fit_ = FitLine(products);
    double min_s = points.front().seconds;
    for (const DecodePoint& p : points) min_s = std::min(min_s, p.seconds);

    const std::vector<double> b(batches.begin(), batches.end());
    const std::vector<double> c(contexts.begin(), contexts.end());
    // Cells the profile lacks come from the fit (never below the fastest measurement).
    std::vector<std::optional<double>> measured(b.size() * c.size());
    for (const DecodePoint& p : points) {
      const size_t i =
          static_cast<size_t>(std::lower_bound(b.begin(), b.end(), p.batch) - b.begin());
      const size_t j =
          static_cast<size_t>(std::lower_bound(c.begin(), c.end(), p.context) - c.begin());
      measured[i * c.size() + j] = p.seconds;
    }
    std::vector<double> grid(measured.size());
    for (size_t i = 0; i < b.size(); ++i) {
      for (size_t j = 0; j < c.size(); ++j) {
        double s = measured[i * c.size() + j].value_or(std::max(min_s, fit_.At(b[i] * c[j])));
        if (i > 0) s = std::max(s, grid[(i - 1) * c.size() + j]);
        if (j > 0) s = std::max(s, grid[i * c.size() + j - 1]);
        grid[i * c.size() + j] = s;
      }
    }
    for (double x : b) log_batch_.push_back(std::log(x));
    for (double x : c) log_context_.push_back(std::log(x));
    for (double s : grid) log_seconds_.push_back(std::log(s));
    batch_min_ = b.front();
    batch_max_ = b.back();
    context_min_ = c.front();
    context_max_ = c.back();
  }

  double Seconds(double batch, double context) const {
    const double bc = std::clamp(batch, batch_min_, batch_max_);
    const double cc = std::clamp(context, context_min_, context_max_);
    const auto [i, fi] = Locate(log_batch_, std::log(bc));
    const auto [j, fj] = Locate(log_context_, std::log(cc));
    const size_t n = log_context_.size();
    const auto at = [&](size_t bi, size_t cj) {
      return log_seconds_[std::min(bi, log_batch_.size() - 1) * n + std::min(cj, n - 1)];
    };
    const double log_s = (1 - fi) * ((1 - fj) * at(i, j) + fj * at(i, j + 1)) +
                         fi * ((1 - fj) * at(i + 1, j) + fj * at(i + 1, j + 1));
    const double grid_s = std::exp(log_s);
    if (batch > batch_max_ || context > context_max_) {
      return std::max(grid_s, fit_.At(batch * context));
    }
    return grid_s;
  }

 private:
  std::vector<double> log_batch_, log_context_, log_seconds_;  // grid, row-major by batch
  double batch_min_ = 0, batch_max_ = 0, context_min_ = 0, context_max_ = 0;
  Line fit_;
};

// The attention measurements of one table, by layout: contiguous, and paged by
// block size. T is DecodeSurface or SizeCurve.
template <typename T>
struct LayoutCurves {
  std::optional<T> contiguous;
  std::vector<std::pair<int64_t, T>> paged;  // by block_tokens, ascending

  // The curve for `layout`; paged: the measured block size nearest to block_tokens
  // in log distance, the smaller on a tie.
  const T& For(AttentionLayout layout, int64_t block_tokens) const {
    if (layout == AttentionLayout::kContiguous) return *contiguous;
    const double want = std::log(static_cast<double>(std::max<int64_t>(block_tokens, 1)));
    const T* best = &paged.front().second;
    double best_distance = std::abs(std::log(static_cast<double>(paged.front().first)) - want);
    for (const auto& [tokens, curve] : paged) {
      const double d = std::abs(std::log(static_cast<double>(tokens)) - want);
      if (d < best_distance) {
        best_distance = d;
        best = &curve;
      }
    }
    return *best;
  }
};

// Reads profile rows into curves, throwing InputError "path:line: what".
class ProfileReader {
 public:
  ProfileReader(const Profile& profile, const ModelSpec& model, int64_t tp)
      : profile_(profile), model_(model), tp_(tp) {}

  [[noreturn]] void Fail(int line, const std::string& what) const {
    throw InputError(fmt::format("{}:{}: {}", profile_.path(), line, what));
  }

  // A positive number in `column` of `row`.
  double Positive(const ProfileTable& t, size_t row, const char* column) const {
    const double v = t.Number(row, column);
    if (!(v > 0))
      Fail(t.line(row), fmt::format("[{}] {} must be positive, got {}", t.name(), column, v));
    return v;
  }

  // The GEMM curves of this model and tensor_parallel, by layer.
  std::map<std::string, SizeCurve> Gemms() const {
    const ProfileTable& t = profile_.Table("gemm");
    std::map<std::string, std::set<int64_t>> available;  // model -> tensor_parallel values
    std::map<std::string, std::vector<Point>> points;
    std::map<std::pair<std::string, double>, int> seen;  // (layer, tokens) -> line
    for (size_t r = 0; r < t.size(); ++r) {
      const std::string& name = t.Text(r, "model");
      const double tp = t.Number(r, "tensor_parallel");
      available[name].insert(static_cast<int64_t>(tp));
      if (name != model_.name || tp != static_cast<double>(tp_)) continue;
      const std::string& layer = t.Text(r, "layer");
      const auto shape = ExpectedShape(layer);
      if (!shape) continue;  // a layer this version does not use
      const double tokens = Positive(t, r, "tokens");
      const double n = t.Number(r, "n");
      const double k = t.Number(r, "k");
      if (std::abs(n - shape->first) >= 1 || std::abs(k - shape->second) >= 1) {
        Fail(t.line(r), fmt::format("[gemm] {} {} at tensor_parallel {} has n={} k={}, but the "
                                    "model card gives n={} k={}: the profile was measured for "
                                    "other shapes",
                                    name, layer, tp_, n, k, shape->first, shape->second));
      }
      if (const auto [it, fresh] = seen.emplace(std::pair(layer, tokens), t.line(r)); !fresh) {
        Fail(t.line(r), fmt::format("[gemm] repeats {} {} at tensor_parallel {} and {} tokens "
                                    "(first at line {})",
                                    name, layer, tp_, tokens, it->second));
      }
      points[layer].push_back({tokens, Positive(t, r, "time_us") * kSecondsPerMicro});
    }
    if (points.empty()) {
      std::string have;
      for (const auto& [name, tps] : available) {
        have += fmt::format("{}{} (tensor_parallel {})", have.empty() ? "" : ", ", name,
                            fmt::join(tps, ", "));
      }
      throw InputError(fmt::format(
          "timing.profile {}: no [gemm] rows for model {} at tensor_parallel {}; it has: {}",
          profile_.path(), model_.name, tp_, have.empty() ? "none" : have));
    }
    std::map<std::string, SizeCurve> curves;
    for (const char* layer : {"qkv", "o", "gate_up", "down", "lm_head"}) {
      const auto it = points.find(layer);
      if (it == points.end() || it->second.size() < 2) {
        Fail(t.section_line(),
             fmt::format("[gemm] needs '{}' rows at two or more token counts for {} at "
                         "tensor_parallel {}, found {}",
                         layer, model_.name, tp_, it == points.end() ? 0 : it->second.size()));
      }
      curves.emplace(layer, SizeCurve(it->second));
    }
    return curves;
  }

  // Decode attention surfaces by layout, scaled to the model's KV heads per rank.
  LayoutCurves<DecodeSurface> DecodeAttention() const {
    const ProfileTable& t = profile_.Table("decode_attention");
    const double heads = static_cast<double>(model_.KvHeadsPerRank(tp_));
    std::map<int64_t, std::vector<DecodePoint>> groups;  // block_tokens (0: contiguous)
    std::map<std::array<double, 3>, int> seen;
    for (size_t r = 0; r < t.size(); ++r) {
      const std::optional<int64_t> block = LayoutKey(t, r);
      if (!block) continue;
      const double batch = Positive(t, r, "batch");
      const double context = Positive(t, r, "context_tokens");
      const double scale = heads * static_cast<double>(model_.head_dim) /
                           (Positive(t, r, "kv_heads") * Positive(t, r, "head_dim"));
      CheckFresh(seen, {static_cast<double>(*block), batch, context}, t, r,
                 "batch and context_tokens");
      groups[*block].push_back(
          {batch, context, Positive(t, r, "time_us") * kSecondsPerMicro * scale});
    }
    LayoutCurves<DecodeSurface> curves;
    for (auto& [block, points] : groups) {
      std::set<double> products;
      for (const DecodePoint& p : points) products.insert(p.batch * p.context);
      if (products.size() < 2) {
        Fail(t.section_line(), fmt::format("[decode_attention] {} needs two or more sizes "
                                           "(batch x context_tokens)",
                                           LayoutName(block)));
      }
      AddCurve(curves, block, DecodeSurface(points));
    }
    RequireBothLayouts(curves, t);
    return curves;
  }

  // Prefill attention curves (time against causal pairs) by layout, scaled to the
  // model's query heads per rank.
  LayoutCurves<SizeCurve> PrefillAttention() const {
    const ProfileTable& t = profile_.Table("prefill_attention");
    const double heads = static_cast<double>(model_.num_heads) / static_cast<double>(tp_);
    std::map<int64_t, std::vector<Point>> groups;
    std::map<std::array<double, 3>, int> seen;
    for (size_t r = 0; r < t.size(); ++r) {
      const std::optional<int64_t> block = LayoutKey(t, r);
      if (!block) continue;
      const double batch = Positive(t, r, "batch");
      const double tokens = Positive(t, r, "tokens");
      const double scale = heads * static_cast<double>(model_.head_dim) /
                           (Positive(t, r, "q_heads") * Positive(t, r, "head_dim"));
      CheckFresh(seen, {static_cast<double>(*block), batch, tokens}, t, r, "batch and tokens");
      groups[*block].push_back({batch * tokens * (tokens + 1) / 2,
                                Positive(t, r, "time_us") * kSecondsPerMicro * scale});
    }
    LayoutCurves<SizeCurve> curves;
    for (auto& [block, points] : groups) {
      std::set<double> pairs;
      for (const Point& p : points) pairs.insert(p.x);
      if (pairs.size() < 2) {
        Fail(t.section_line(), fmt::format("[prefill_attention] {} needs two or more prompt sizes",
                                           LayoutName(block)));
      }
      AddCurve(curves, block, SizeCurve(points));
    }
    RequireBothLayouts(curves, t);
    return curves;
  }

  // The all-reduce curve for tensor_parallel GPUs: the [allreduce] rows measured on
  // that many GPUs, else one estimated at every measured size from the other GPU
  // counts (allreduce_estimate.h) with a sentence saying how; nothing without rows.
  std::optional<AllreduceCurve> Allreduce() const {
    const ProfileTable* t = profile_.Find("allreduce");
    if (t == nullptr) return std::nullopt;
    std::map<int64_t, std::vector<Point>> by_gpus;
    std::map<std::pair<int64_t, double>, int> seen;
    for (size_t r = 0; r < t->size(); ++r) {
      const double gpus = t->Number(r, "gpus");
      if (!(gpus >= 2) || gpus != std::floor(gpus) || gpus > 1e6) {
        Fail(t->line(r), fmt::format("[allreduce] gpus must be an integer of 2 or more, got {}",
                                     t->Text(r, "gpus")));
      }
      const auto n = static_cast<int64_t>(gpus);
      const double bytes = Positive(*t, r, "bytes");
      if (const auto [it, fresh] = seen.emplace(std::pair(n, bytes), t->line(r)); !fresh) {
        Fail(t->line(r), fmt::format("[allreduce] repeats {} GPUs at {} bytes (first at line {})",
                                     n, bytes, it->second));
      }
      by_gpus[n].push_back({bytes, Positive(*t, r, "time_us") * kSecondsPerMicro});
    }
    if (by_gpus.empty()) return std::nullopt;
    std::map<int64_t, SizeCurve> curves;
    std::set<double> sizes;
    for (const auto& [n, points] : by_gpus) {
      if (points.size() < 2) {
        Fail(t->section_line(),
             fmt::format("[allreduce] needs two or more sizes for {} GPUs, found one", n));
      }
      curves.emplace(n, SizeCurve(points));
      for (const Point& p : points) sizes.insert(p.x);
    }
    if (const auto it = curves.find(tp_); it != curves.end()) return AllreduceCurve{it->second, {}};
    std::vector<Point> estimated;
    std::map<int64_t, double> at_size;
    for (double bytes : sizes) {
      for (const auto& [n, curve] : curves) at_size[n] = curve.Seconds(bytes);
      estimated.push_back({bytes, EstimateAllreduceSeconds(at_size, tp_)});
    }
    return AllreduceCurve{SizeCurve(estimated),
                          fmt::format("timing.profile {}: {}", profile_.path(),
                                      DescribeAllreduceEstimate(at_size, tp_))};
  }

 private:
  // (n, k) of `layer` on one rank as the format defines them, or nothing for a
  // layer the model does not use.
  std::optional<std::pair<double, double>> ExpectedShape(const std::string& layer) const {
    const double tp = static_cast<double>(tp_);
    const auto d = [](int64_t v) { return static_cast<double>(v); };
    const double hidden = d(model_.hidden_size);
    if (layer == "qkv") {
      return std::pair(
          (d(model_.num_heads) / tp + 2 * d(model_.KvHeadsPerRank(tp_))) * d(model_.head_dim),
          hidden);
    }
    if (layer == "o") return std::pair(hidden, d(model_.num_heads * model_.head_dim) / tp);
    if (layer == "gate_up") return std::pair(2 * d(model_.ffn_size) / tp, hidden);
    if (layer == "down") return std::pair(hidden, d(model_.ffn_size) / tp);
    if (layer == "lm_head") return std::pair(d(model_.vocab_size) / tp, hidden);
    return std::nullopt;
  }

  // 0 for contiguous rows, block_tokens for paged ones, nothing for other layouts.
  std::optional<int64_t> LayoutKey(const ProfileTable& t, size_t row) const {
    const std::string& layout = t.Text(row, "layout");
    if (layout == "contiguous") return 0;
    if (layout != "paged") return std::nullopt;
    const double block = t.Number(row, "block_tokens");
    if (!(block >= 1) || block != std::floor(block)) {
      Fail(t.line(row), fmt::format("[{}] paged rows need a positive integer block_tokens, got {}",
                                    t.name(), block));
    }
    return static_cast<int64_t>(block);
  }

  static std::string LayoutName(int64_t block) {
    return block == 0 ? std::string("contiguous") : fmt::format("paged (block_tokens {})", block);
  }

  void CheckFresh(std::map<std::array<double, 3>, int>& seen, const std::array<double, 3>& key,
                  const ProfileTable& t, size_t row, const char* what) const {
    if (const auto [it, fresh] = seen.emplace(key, t.line(row)); !fresh) {
      Fail(t.line(row),
           fmt::format("[{}] repeats a {} row at these {} (first at line {})", t.name(),
                       LayoutName(static_cast<int64_t>(key[0])), what, it->second));
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
  int64_t tp_;
};

class ProfiledModel final : public ExecutionTimeModel {
 public:
  // `gemm` holds the curves of the five layers; `allreduce` is nothing for the ring
  // formula; `caveats` are what Caveats() returns.
  ProfiledModel(const std::map<std::string, SizeCurve>& gemm, LayoutCurves<DecodeSurface> decode,
                LayoutCurves<SizeCurve> prefill, std::optional<SizeCurve> allreduce,
                const ModelSpec& model, const GpuSpec& gpu, int64_t tp,
                const ProfiledConfig& config, std::vector<std::string> caveats)
      : config_(config),
        qkv_(gemm.at("qkv")),
        o_(gemm.at("o")),
        gate_up_(gemm.at("gate_up")),
        down_(gemm.at("down")),
        lm_head_(gemm.at("lm_head")),
        decode_(std::move(decode)),
        prefill_(std::move(prefill)),
        allreduce_(std::move(allreduce)),
        tp_(static_cast<double>(tp)),
        layers_(static_cast<double>(model.num_layers)),
        activation_bytes_per_token_(static_cast<double>(model.hidden_size * model.dtype_bytes)),
        experts_(static_cast<double>(model.num_experts)),
        experts_per_token_(static_cast<double>(model.experts_per_token)),
        link_(gpu.link_bandwidth_bytes_per_s),
        prefill_flops_per_pair_(4.0 * static_cast<double>(model.num_heads) /
                                static_cast<double>(tp) * static_cast<double>(model.head_dim)),
        peak_flops_(gpu.bf16_flops_per_s),
        caveats_(std::move(caveats)) {}

  std::vector<std::string> Caveats() const override { return caveats_; }

  Nanos IterationTime(const BatchWork& w) const override {
    KVSIM_CHECK(w.num_seqs >= 1, "empty batch");
    const double tokens = static_cast<double>(w.prefill_tokens + w.decode_tokens);

    // Linear layers of one block on one rank.
    double linear_s = 0;
    if (tokens > 0) {
      const double experts_read =
          experts_ > 1 ? experts_ * (1.0 - std::pow(1.0 - experts_per_token_ / experts_, tokens))
                       : 1.0;
      const double expert_tokens = tokens * experts_per_token_ / experts_read;
      linear_s = qkv_.Seconds(tokens) + o_.Seconds(tokens) +
                 experts_read * (gate_up_.Seconds(expert_tokens) + down_.Seconds(expert_tokens));
    }

    // Attention of one layer on one rank.
    double attention_s = 0;
    if (w.decode_tokens > 0) {
      const double batch = static_cast<double>(w.decode_tokens);
      const double context = static_cast<double>(w.decode_context_tokens) / batch;
      attention_s += decode_.For(w.layout, w.block_tokens).Seconds(batch, context);
    }
    if (w.prefill_attention_pairs > 0) {
      const double measured =
          prefill_.For(w.layout, w.block_tokens).Seconds(w.prefill_attention_pairs);
      if (config_.prefill_attention == ProfiledConfig::PrefillAttention::kMeasured) {
        attention_s += measured;
      } else {
        const double contiguous =
            prefill_.For(AttentionLayout::kContiguous, 0).Seconds(w.prefill_attention_pairs);
        attention_s += prefill_flops_per_pair_ * w.prefill_attention_pairs /
                       (peak_flops_ * config_.attention_prefill_efficiency) *
                       (measured / contiguous);
      }
    }

    // Two all-reduces per layer (after attention and after the MLP).
    double allreduce_s = 0;
    if (tp_ > 1 && tokens > 0) {
      const double bytes = tokens * activation_bytes_per_token_;
      allreduce_s = 2.0 * (allreduce_ ? allreduce_->Seconds(bytes)
                                      : config_.allreduce_latency_s +
                                            2.0 * (tp_ - 1.0) / tp_ * bytes / link_);
    }

    const double lm_head_s =
        w.logit_tokens > 0 ? lm_head_.Seconds(static_cast<double>(w.logit_tokens)) : 0.0;

    double cpu_s = config_.cpu_overhead_s + config_.cpu_per_seq_s * static_cast<double>(w.num_seqs);
    if (w.layout == AttentionLayout::kPaged && w.block_tokens > 0) {
      const double width = static_cast<double>(CeilDiv(w.max_context_tokens, w.block_tokens));
      cpu_s += config_.block_table_entry_s * static_cast<double>(w.num_seqs) * width;
    }

    return SecondsToNanos(layers_ * (linear_s + attention_s + allreduce_s) + lm_head_s + cpu_s);
  }

 private:
  ProfiledConfig config_;
  SizeCurve qkv_, o_, gate_up_, down_, lm_head_;  // GEMM time against tokens
  LayoutCurves<DecodeSurface> decode_;
  LayoutCurves<SizeCurve> prefill_;
  std::optional<SizeCurve> allreduce_;  // nothing: the ring formula
  double tp_, layers_, activation_bytes_per_token_, experts_, experts_per_token_, link_;
  double prefill_flops_per_pair_;  // 4 x query heads per rank x head_dim
  double peak_flops_;              // GPU card's dense bf16 FLOP/s
  std::vector<std::string> caveats_;
};

}  // namespace

std::unique_ptr<ExecutionTimeModel> NewProfiledModel(const Profile& profile, const ModelSpec& model,
                                                     const GpuSpec& gpu, int64_t tensor_parallel,
                                                     const ProfiledConfig& config) {
  KVSIM_CHECK(tensor_parallel >= 1, "tensor_parallel must be positive");
  std::vector<std::string> caveats;
  const std::string& measured_on = profile.MetaText("gpu_name");
  if (gpu.device_names.empty()) {
    caveats.push_back(fmt::format(
        "timing.profile {}: measured on '{}'; the {} card lists no device_names, so that this is "
        "the same GPU was not checked",
        profile.path(), measured_on, gpu.name));
  } else if (std::find(gpu.device_names.begin(), gpu.device_names.end(), measured_on) ==
             gpu.device_names.end()) {
    throw InputError(fmt::format(
        "timing.profile {}: measured on '{}', but the {} card's device_names are '{}'; use a "
        "profile measured on this GPU (tools/kvprobe/calibrate.sh), or add the name to the card "
        "if it is the same GPU",
        profile.path(), measured_on, gpu.name, fmt::join(gpu.device_names, "', '")));
  }
  const ProfileReader reader(profile, model, tensor_parallel);
  std::map<std::string, SizeCurve> gemm = reader.Gemms();
  LayoutCurves<DecodeSurface> decode = reader.DecodeAttention();
  LayoutCurves<SizeCurve> prefill = reader.PrefillAttention();
  std::optional<SizeCurve> allreduce;
  if (tensor_parallel > 1) {
    if (std::optional<AllreduceCurve> found = reader.Allreduce()) {
      allreduce = std::move(found->curve);
      if (!found->estimate.empty()) caveats.push_back(std::move(found->estimate));
    } else if (gpu.link_bandwidth_bytes_per_s > 0) {
      caveats.push_back(fmt::format(
          "timing.profile {}: all-reduce on {} GPUs is not in the profile (no [allreduce] rows); "
          "it is the ring formula at the {} card's link bandwidth and a {} us latency",
          profile.path(), tensor_parallel, gpu.name, config.allreduce_latency_s * 1e6));
    } else {
      throw InputError(fmt::format(
          "timing.profile {}: no [allreduce] rows for {} GPUs, and the {} card has no GPU-GPU "
          "link bandwidth to estimate them",
          profile.path(), tensor_parallel, gpu.name));
    }
  }
  return std::make_unique<ProfiledModel>(gemm, std::move(decode), std::move(prefill),
                                         std::move(allreduce), model, gpu, tensor_parallel, config,
                                         std::move(caveats));
}

}  // namespace kvsim
