// Bounded least squares (see least_squares.h). The search runs in the unit box
// u = (x - lo) / (hi - lo), so steps, differences and tolerances are fractions of
// each term's range whatever its units.
#include "sim/fit/least_squares.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string_view>

#include "sim/core/check.h"

namespace kvsim {
namespace {

// LevenbergMarquardt's stop reason when no free term moves any residual.
constexpr std::string_view kNoEffect = "the residuals do not move with any free term";

// The index of the lowest of `costs` (the first on ties). REQUIRES: not empty.
size_t Cheapest(const std::vector<double>& costs) {
  size_t best = 0;
  for (size_t i = 1; i < costs.size(); ++i) {
    if (costs[i] < costs[best]) best = i;
  }
  return best;
}

constexpr double kInf = std::numeric_limits<double>::infinity();

class Search {
 public:
  Search(const ResidualBatch& residuals, const Eigen::VectorXd& lo, const Eigen::VectorXd& hi)
      : residuals_(residuals), lo_(lo), span_(hi - lo) {}

  Eigen::VectorXd ToX(const Eigen::VectorXd& u) const {
    return lo_ + span_.cwiseProduct(u.cwiseMax(0.0).cwiseMin(1.0));
  }

  // Residuals at unit points; cost +infinity where a residual is not finite.
  void Evaluate(const std::vector<Eigen::VectorXd>& us, std::vector<Eigen::VectorXd>* rs,
                std::vector<double>* costs) {
    std::vector<Eigen::VectorXd> xs;
    xs.reserve(us.size());
    for (const Eigen::VectorXd& u : us) xs.push_back(ToX(u));
    *rs = residuals_(xs);
    KVSIM_CHECK(rs->size() == us.size(), "residual batch returned the wrong number of vectors");
    evaluations_ += static_cast<int>(us.size());
    costs->assign(us.size(), kInf);
    for (size_t i = 0; i < us.size(); ++i) {
      const Eigen::VectorXd& r = (*rs)[i];
      if (m_ < 0) m_ = r.size();
      if (r.size() != m_) {
        throw InputError(
            fmt::format("least squares: {} residuals at one point, {} at another", r.size(), m_));
      }
      if (r.allFinite()) (*costs)[i] = 0.5 * r.squaredNorm();
    }
  }

  int evaluations() const { return evaluations_; }

 private:
  const ResidualBatch& residuals_;
  Eigen::VectorXd lo_, span_;
  Eigen::Index m_ = -1;
  int evaluations_ = 0;
};

struct Point {
  Eigen::VectorXd u, r;
  double cost = kInf;
};

// The Jacobian of the residuals at `p` (per unit-box coordinate) by forward
// differences (backward at the upper bound), one batch. False, with `reason`, when a
// difference point gives non-finite residuals.
bool Jacobian(Search& s, const LeastSquaresOptions& o, const Point& p, Eigen::MatrixXd* jac,
              std::string* reason) {
  const Eigen::Index n = p.u.size();
  std::vector<Eigen::VectorXd> probes;
  std::vector<double> steps;
  for (Eigen::Index j = 0; j < n; ++j) {
    const double h = p.u[j] + o.difference_step <= 1.0 ? o.difference_step : -o.difference_step;
    Eigen::VectorXd q = p.u;
    q[j] += h;
    probes.push_back(q);
    steps.push_back(h);
  }
  std::vector<Eigen::VectorXd> rs;
  std::vector<double> costs;
  s.Evaluate(probes, &rs, &costs);
  jac->resize(p.r.size(), n);
  for (Eigen::Index j = 0; j < n; ++j) {
    if (!std::isfinite(costs[static_cast<size_t>(j)])) {
      *reason = "a difference point gave non-finite residuals";
      return false;
    }
    jac->col(j) = (rs[static_cast<size_t>(j)] - p.r) / steps[static_cast<size_t>(j)];
  }
  return true;
}

// The Gauss-Newton system J^T J a = -g restricted to the free terms: those not held
// at a bound that the gradient pushes outwards (the others stay there).
struct NormalEquations {
  std::vector<Eigen::Index> free;  // indices of the free terms
  Eigen::MatrixXd a;               // J^T J over the free terms
  Eigen::VectorXd g;               // J^T r over the free terms
};

// The normal equations of `jac` at `p` over its free terms (none: every term pinned).
NormalEquations FreeNormalEquations(const Eigen::MatrixXd& jac, const Point& p) {
  const Eigen::VectorXd grad = jac.transpose() * p.r;
  NormalEquations e;
  for (Eigen::Index j = 0; j < p.u.size(); ++j) {
    const bool pinned = (p.u[j] <= 0.0 && grad[j] > 0) || (p.u[j] >= 1.0 && grad[j] < 0);
    if (!pinned) e.free.push_back(j);
  }
  const auto k = static_cast<Eigen::Index>(e.free.size());
  e.a.resize(k, k);
  e.g.resize(k);
  for (Eigen::Index i = 0; i < k; ++i) {
    e.g[i] = grad[e.free[static_cast<size_t>(i)]];
    for (Eigen::Index j = 0; j < k; ++j) {
      e.a(i, j) =
          jac.col(e.free[static_cast<size_t>(i)]).dot(jac.col(e.free[static_cast<size_t>(j)]));
    }
  }
  return e;
}

// The point `p` moved by the step of the system damped by `lambda` (Marquardt's
// diagonal scaling, floored at 1e-9 of `diag_max`), clamped into the unit box.
Eigen::VectorXd DampedPoint(const Point& p, const NormalEquations& e, double lambda,
                            double diag_max) {
  const auto k = static_cast<Eigen::Index>(e.free.size());
  Eigen::MatrixXd m = e.a;
  for (Eigen::Index i = 0; i < k; ++i) {
    m(i, i) += lambda * std::max(e.a(i, i), 1e-9 * diag_max);
  }
  const Eigen::VectorXd step = m.ldlt().solve(-e.g);
  Eigen::VectorXd q = p.u;
  for (Eigen::Index i = 0; i < k; ++i) q[e.free[static_cast<size_t>(i)]] += step[i];
  return q.cwiseMax(0.0).cwiseMin(1.0);
}

// How one damped step of Levenberg-Marquardt ended.
enum class StepEnd {
  kMoved,      // accepted; no tolerance met
  kConverged,  // accepted, and the step or the cost decrease fell below tolerance
  kStuck,      // no damping level lowered the cost
};

// Trial steps from `p` at three damping levels around `lambda`, one batch; then
// stronger damping until one lowers the cost. Moves `p` to the best trial that does
// and adapts `lambda`; sets `reason` unless it returns kMoved.
StepEnd DampedStep(Search& s, const LeastSquaresOptions& o, const NormalEquations& e,
                   double diag_max, Point& p, double& lambda, std::string* reason) {
  for (int attempt = 0; attempt < 6; ++attempt) {
    const double levels[3] = {lambda * 0.1, lambda, lambda * 10.0};
    std::vector<Eigen::VectorXd> trials;
    for (double l : levels) trials.push_back(DampedPoint(p, e, l, diag_max));
    std::vector<Eigen::VectorXd> rs;
    std::vector<double> costs;
    s.Evaluate(trials, &rs, &costs);
    const size_t best = Cheapest(costs);
    if (!(costs[best] < p.cost)) {
      lambda *= 1000.0;
      continue;
    }
    const double moved = (trials[best] - p.u).cwiseAbs().maxCoeff();
    const double decrease = (p.cost - costs[best]) / p.cost;
    p.u = trials[best];
    p.r = rs[best];
    p.cost = costs[best];
    lambda = std::max(levels[best] * 0.3, 1e-9);
    if (moved < o.step_tolerance) {
      *reason = "step below tolerance";
      return StepEnd::kConverged;
    }
    if (decrease < o.relative_decrease) {
      *reason = "cost decrease below tolerance";
      return StepEnd::kConverged;
    }
    return StepEnd::kMoved;
  }
  *reason = "no damped step lowers the cost";
  return StepEnd::kStuck;
}

// One Levenberg-Marquardt run from `p`; returns whether a tolerance stopped it.
bool LevenbergMarquardt(Search& s, const LeastSquaresOptions& o, Point& p, int* iterations,
                        std::string* reason) {
  double lambda = 1e-3;
  for (int it = 0; it < o.max_iterations; ++it) {
    ++*iterations;
    if (p.cost <= o.cost_tolerance) {
      *reason = "cost below tolerance";
      return true;
    }
    Eigen::MatrixXd jac;
    if (!Jacobian(s, o, p, &jac, reason)) return false;
    const NormalEquations e = FreeNormalEquations(jac, p);
    if (e.free.empty()) {
      *reason = "every term is at a bound the gradient pushes against";
      return true;
    }
    const double diag_max = e.a.diagonal().maxCoeff();
    if (!(diag_max > 0)) {
      *reason = std::string(kNoEffect);
      return false;
    }
    switch (DampedStep(s, o, e, diag_max, p, lambda, reason)) {
      case StepEnd::kMoved:
        break;
      case StepEnd::kConverged:
        return true;
      case StepEnd::kStuck:
        return false;
    }
  }
  *reason = "iteration limit";
  return false;
}

// Compass search from `p` with initial step `step` (unit box); returns whether the
// step fell below tolerance.
bool CompassSearch(Search& s, const LeastSquaresOptions& o, Point& p, double step, int* iterations,
                   std::string* reason) {
  const Eigen::Index n = p.u.size();
  for (int round = 0; round < o.max_pattern_rounds; ++round) {
    if (step < o.step_tolerance) {
      *reason = "pattern step below tolerance";
      return true;
    }
    if (p.cost <= o.cost_tolerance) {
      *reason = "cost below tolerance";
      return true;
    }
    ++*iterations;
    std::vector<Eigen::VectorXd> polls;
    for (Eigen::Index j = 0; j < n; ++j) {
      for (double sign : {1.0, -1.0}) {
        Eigen::VectorXd q = p.u;
        q[j] = std::clamp(q[j] + sign * step, 0.0, 1.0);
        if (q[j] != p.u[j]) polls.push_back(q);
      }
    }
    if (polls.empty()) {
      step *= 0.5;
      continue;
    }
    std::vector<Eigen::VectorXd> rs;
    std::vector<double> costs;
    s.Evaluate(polls, &rs, &costs);
    const size_t best = Cheapest(costs);
    if (costs[best] < p.cost) {
      p.u = polls[best];
      p.r = rs[best];
      p.cost = costs[best];
    } else {
      step *= 0.5;
    }
  }
  *reason = "pattern round limit";
  return false;
}

}  // namespace

LeastSquaresResult SolveBoundedLeastSquares(const ResidualBatch& residuals,
                                            const Eigen::VectorXd& x0, const Eigen::VectorXd& lo,
                                            const Eigen::VectorXd& hi,
                                            const LeastSquaresOptions& options) {
  KVSIM_CHECK(x0.size() == lo.size() && lo.size() == hi.size() && x0.size() > 0,
              "least squares: x0, lo and hi differ in length");
  KVSIM_CHECK((hi - lo).minCoeff() > 0, "least squares: empty bounds");
  Search search(residuals, lo, hi);
  Point p;
  p.u = ((x0 - lo).cwiseQuotient(hi - lo)).cwiseMax(0.0).cwiseMin(1.0);
  {
    std::vector<Eigen::VectorXd> rs;
    std::vector<double> costs;
    search.Evaluate({p.u}, &rs, &costs);
    if (!std::isfinite(costs[0])) {
      throw InputError("least squares: the residuals at the starting point are not finite");
    }
    p.r = rs[0];
    p.cost = costs[0];
  }
  LeastSquaresResult result;
  result.initial_cost = p.cost;
  int iterations = 0;
  std::string reason;
  bool converged = false;
  double pattern_step = 0.125;
  if (options.method == LeastSquaresMethod::kLevenbergMarquardt) {
    converged = LevenbergMarquardt(search, options, p, &iterations, &reason);
    // Polish without derivatives, starting at a few difference steps: the
    // simulated metrics move in small jumps that can stall the derivative steps.
    pattern_step = std::max(0.02, 8 * options.difference_step);
  }
  if (p.cost > options.cost_tolerance) {
    std::string pattern_reason;
    const bool pattern_converged =
        CompassSearch(search, options, p, pattern_step, &iterations, &pattern_reason);
    reason = reason.empty() ? pattern_reason : reason + "; then " + pattern_reason;
    converged = converged || pattern_converged;
  }
  result.x = search.ToX(p.u);
  result.residuals = p.r;
  result.cost = p.cost;
  result.iterations = iterations;
  result.evaluations = search.evaluations();
  // Derivatives that saw no effect and a polish that found no better point: the
  // free terms do not act on these metrics, and no value of them is a fit.
  result.no_effect = reason.starts_with(kNoEffect) && !(p.cost < result.initial_cost);
  result.converged = converged && !result.no_effect;
  result.stop_reason = reason;
  return result;
}

}  // namespace kvsim
