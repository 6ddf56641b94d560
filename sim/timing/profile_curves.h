// Curves built from kvprobe measurements: time against one size (GEMM tokens,
// attention pairs, all-reduce bytes) and decode-attention time against
// sequence-heads (batch x KV heads) and context, with the interpolation and extrapolation rules
// that execution_time_model.h states for the profiled model.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "sim/kvcache/kv_cache_manager.h"

namespace kvsim {

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
Line FitLine(const std::vector<Point>& points);

// Time against one size, from measured points made non-decreasing by their
// least-squares non-decreasing fit (a run of points whose times fall with the size
// takes their mean): log-log interpolation inside the grid; above it the largest point's time plus
// b (x - x_max), b the slope of a + b x fitted through the largest four points (continuous at
// x_max: a fit lying above the largest point does not replace its measurement); and below it:
// - kFlat: the smallest point's time (a GEMM or an all-reduce never gets faster with
//   less work: launch and latency bound it);
// - kExtendFirstSegment: the first grid segment's log-log line continued downward
//   (work that shrinks with the size, as causal attention's pairs do, where the grid
//   starts above the sizes a model asks for).
class SizeCurve {
 public:
  enum class Below { kFlat, kExtendFirstSegment };
  // REQUIRES: at least two distinct x; every x and time positive. Points at equal x
  // are averaged.
  explicit SizeCurve(std::vector<Point> points, Below below = Below::kFlat);
  double Seconds(double x) const;

 private:
  std::vector<double> log_x_, log_seconds_;
  double x_min_ = 0, x_max_ = 0, first_s_ = 0, last_s_ = 0;
  Below below_;
  Line beyond_;
};

// One decode-attention measurement. sequence_heads = batch x KV heads: a decode
// kernel's independent units of work (each reads one sequence's K and V of one KV head
// for its query group), so that batch 1 with 4 KV heads per rank is the same launch as
// batch 2 with 2. seconds are already scaled to the model's head_dim.
struct DecodePoint {
  double sequence_heads = 0;
  double context = 0;
  double seconds = 0;
};

// Decode attention time against (sequence_heads, mean context) for one layout:
// bilinear in (log sequence_heads, log context) of log time on the grid, the grid's
// edge below it (fewer units than the smallest row leave the GPU at least as idle, so
// the time stays that row's), and beyond it the nearest edge cell's time plus b x the
// sequence_heads x context past that cell, b the slope of a + b x sequence_heads x
// context fitted through every row (continuous at the edge).
class DecodeSurface {
 public:
  // REQUIRES: points have distinct (sequence_heads, context), at least two distinct
  // products.
  explicit DecodeSurface(const std::vector<DecodePoint>& points);
  double Seconds(double sequence_heads, double context) const;
  // The smallest measured sequence_heads: fewer take its time.
  double MinSequenceHeads() const { return units_min_; }

 private:
  std::vector<double> log_units_, log_context_, log_seconds_;  // grid, row-major by units
  double units_min_ = 0, units_max_ = 0, context_min_ = 0, context_max_ = 0;
  Line fit_;
};

// Whether `x` is nearer `want` than `best` in log distance, the smaller of the two on a
// tie; exact for whole numbers (the ratios are compared by cross-multiplying, not
// through rounded logs). REQUIRES: x, best, want > 0.
inline bool NearerInLogDistance(double x, double best, double want) {
  const double lhs = std::max(x, want) * std::min(best, want);
  const double rhs = std::max(best, want) * std::min(x, want);
  return lhs < rhs || (lhs == rhs && x < best);
}

template <typename T>
struct LayoutCurves {
  std::optional<T> contiguous;
  std::vector<std::pair<int64_t, T>> paged;  // by block_tokens, ascending

  // The curve for `layout`; paged: the measured block size nearest to block_tokens
  // in log distance, the smaller on a tie.
  const T& For(AttentionLayout layout, int64_t block_tokens) const {
    if (layout == AttentionLayout::kContiguous) return *contiguous;
    const double want = static_cast<double>(std::max<int64_t>(block_tokens, 1));
    const std::pair<int64_t, T>* best = &paged.front();
    for (const auto& candidate : paged) {
      if (NearerInLogDistance(static_cast<double>(candidate.first),
                              static_cast<double>(best->first), want)) {
        best = &candidate;
      }
    }
    return best->second;
  }
};

// Reads profile rows into curves, throwing InputError "path:line: what".

}  // namespace kvsim
