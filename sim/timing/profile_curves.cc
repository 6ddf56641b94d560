// Curves built from kvprobe measurements (profile_curves.h).
#include "sim/timing/profile_curves.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <set>

#include "sim/core/check.h"

namespace kvsim {
namespace {
constexpr size_t kFitPoints = 4;  // grid points of a 1-D curve's fit beyond the grid

// The least-squares non-decreasing fit (pool adjacent violators): a run of points whose
// times fall with the size takes their mean. Neither point of a drop is taken as the
// truth: a running maximum lifts the larger size to the smaller one's time, although a
// drop is often the larger size's faster kernel (cuBLASLt's heuristic algorithm for
// Llama-3-8B's gate_up GEMM took 102.6 us at 128 tokens and 93.9 at 256 on the lent
// H200, models/profiles/H200/README.md), and a pass of that size runs it.
void PoolAdjacentViolators(std::vector<double>& seconds) {
  struct Block {
    double sum;
    size_t count;
    double Mean() const { return sum / static_cast<double>(count); }
  };
  std::vector<Block> blocks;
  for (double s : seconds) {
    blocks.push_back({s, 1});
    while (blocks.size() >= 2 && blocks[blocks.size() - 2].Mean() > blocks.back().Mean()) {
      blocks[blocks.size() - 2].sum += blocks.back().sum;
      blocks[blocks.size() - 2].count += blocks.back().count;
      blocks.pop_back();
    }
  }
  size_t i = 0;
  for (const Block& b : blocks) {
    for (size_t k = 0; k < b.count; ++k) seconds[i++] = b.Mean();
  }
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

}  // namespace

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

SizeCurve::SizeCurve(std::vector<Point> points, Below below) : below_(below) {
  std::sort(points.begin(), points.end(), [](const Point& l, const Point& r) { return l.x < r.x; });
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
  seconds.reserve(merged.size());
  for (const Point& p : merged) seconds.push_back(p.seconds);
  PoolAdjacentViolators(seconds);
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

double SizeCurve::Seconds(double x) const {
  if (x <= x_min_) {
    if (below_ == Below::kFlat || x <= 0) return first_s_;
    // Slope of the first segment, at least 0 (the grid is non-decreasing).
    const double slope = (log_seconds_[1] - log_seconds_[0]) / (log_x_[1] - log_x_[0]);
    return std::exp(log_seconds_[0] + slope * (std::log(x) - log_x_[0]));
  }
  // Continuous at x_max: the largest point's time, then the fit's marginal cost (b >= 0).
  if (x >= x_max_) return last_s_ + beyond_.b * (x - x_max_);
  const auto [i, f] = Locate(log_x_, std::log(x));
  return std::exp(log_seconds_[i] + f * (log_seconds_[i + 1] - log_seconds_[i]));
}

DecodeSurface::DecodeSurface(const std::vector<DecodePoint>& points) {
  std::set<double> units, contexts;
  std::vector<Point> products;
  for (const DecodePoint& p : points) {
    units.insert(p.sequence_heads);
    contexts.insert(p.context);
    products.push_back({p.sequence_heads * p.context, p.seconds});
  }
  fit_ = FitLine(products);
  double min_s = points.front().seconds;
  for (const DecodePoint& p : points) min_s = std::min(min_s, p.seconds);

  const std::vector<double> b(units.begin(), units.end());
  const std::vector<double> c(contexts.begin(), contexts.end());
  // Cells the profile lacks come from the fit (never below the fastest measurement).
  std::vector<std::optional<double>> measured(b.size() * c.size());
  for (const DecodePoint& p : points) {
    const size_t i =
        static_cast<size_t>(std::lower_bound(b.begin(), b.end(), p.sequence_heads) - b.begin());
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
  for (double x : b) log_units_.push_back(std::log(x));
  for (double x : c) log_context_.push_back(std::log(x));
  for (double s : grid) log_seconds_.push_back(std::log(s));
  units_min_ = b.front();
  units_max_ = b.back();
  context_min_ = c.front();
  context_max_ = c.back();
}

double DecodeSurface::Seconds(double sequence_heads, double context) const {
  const double bc = std::clamp(sequence_heads, units_min_, units_max_);
  const double cc = std::clamp(context, context_min_, context_max_);
  const auto [i, fi] = Locate(log_units_, std::log(bc));
  const auto [j, fj] = Locate(log_context_, std::log(cc));
  const size_t n = log_context_.size();
  const auto at = [&](size_t bi, size_t cj) {
    return log_seconds_[std::min(bi, log_units_.size() - 1) * n + std::min(cj, n - 1)];
  };
  const double log_s = (1 - fi) * ((1 - fj) * at(i, j) + fj * at(i, j + 1)) +
                       fi * ((1 - fj) * at(i + 1, j) + fj * at(i + 1, j + 1));
  const double grid_s = std::exp(log_s);
  // Beyond the grid: the nearest edge cell's time, plus the fit's marginal cost of the
  // units x context past that cell (b >= 0), continuous at the edge.
  if (sequence_heads > units_max_ || context > context_max_) {
    // A dimension below the grid counts at the grid's edge (the smallest row's time
    // holds there), so the amount past the cell is never negative.
    return grid_s + fit_.b * (std::max(sequence_heads, bc) * std::max(context, cc) - bc * cc);
  }
  return grid_s;
}

}  // namespace kvsim
