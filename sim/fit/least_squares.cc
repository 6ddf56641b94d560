// Bounded least squares (see least_squares.h). The search runs in the unit box
// u = (x - lo) / (hi - lo), so steps, differences and tolerances are fractions of
// each term's range whatever its units.
#include "sim/fit/least_squares.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "sim/core/check.h"

namespace kvsim {
namespace {

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

// One Levenberg-Marquardt run from `p`; returns whether a tolerance stopped it.
bool LevenbergMarquardt(Search& s, const LeastSquaresOptions& o, Point& p, int* iterations,
                        std::string* reason) {
  const Eigen::Index n = p.u.size();
  double lambda = 1e-3;
  for (int it = 0; it < o.max_iterations; ++it) {
    ++*iterations;
    if (p.cost <= o.cost_tolerance) {
      *reason = "cost below tolerance";
      return true;
    }
    // Forward differences (backward at the upper bound), one batch.
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
    Eigen::MatrixXd jac(p.r.size(), n);
    for (Eigen::Index j = 0; j < n; ++j) {
      if (!std::isfinite(costs[static_cast<size_t>(j)])) {
        *reason = "a difference point gave non-finite residuals";
        return false;
      }
      jac.col(j) = (rs[static_cast<size_t>(j)] - p.r) / steps[static_cast<size_t>(j)];
    }
    const Eigen::VectorXd grad = jac.transpose() * p.r;
    // Terms held at a bound that the gradient pushes outwards stay there.
    std::vector<Eigen::Index> free;
    for (Eigen::Index j = 0; j < n; ++j) {
      const bool pinned = (p.u[j] <= 0.0 && grad[j] > 0) || (p.u[j] >= 1.0 && grad[j] < 0);
      if (!pinned) free.push_back(j);
    }
    if (free.empty()) {
      *reason = "every term is at a bound the gradient pushes against";
      return true;
    }
    const auto k = static_cast<Eigen::Index>(free.size());
    Eigen::MatrixXd a(k, k);
    Eigen::VectorXd g(k);
    for (Eigen::Index i = 0; i < k; ++i) {
      g[i] = grad[free[static_cast<size_t>(i)]];
      for (Eigen::Index j = 0; j < k; ++j) {
        a(i, j) = jac.col(free[static_cast<size_t>(i)]).dot(jac.col(free[static_cast<size_t>(j)]));
      }
    }
    const double diag_max = a.diagonal().maxCoeff();
    if (!(diag_max > 0)) {
      *reason = "the residuals do not move with any free term";
      return false;
    }
    // Trial steps at three damping levels, one batch; then stronger damping until one
    // lowers the cost.
    bool accepted = false;
    for (int attempt = 0; attempt < 6 && !accepted; ++attempt) {
      const double levels[3] = {lambda * 0.1, lambda, lambda * 10.0};
      std::vector<Eigen::VectorXd> trials;
      for (double l : levels) {
        Eigen::MatrixXd m = a;
        for (Eigen::Index i = 0; i < k; ++i) {
          m(i, i) += l * std::max(a(i, i), 1e-9 * diag_max);
        }
        const Eigen::VectorXd step = m.ldlt().solve(-g);
        Eigen::VectorXd q = p.u;
        for (Eigen::Index i = 0; i < k; ++i) q[free[static_cast<size_t>(i)]] += step[i];
        trials.push_back(q.cwiseMax(0.0).cwiseMin(1.0));
      }
      s.Evaluate(trials, &rs, &costs);
      size_t best = 0;
      for (size_t i = 1; i < costs.size(); ++i) {
        if (costs[i] < costs[best]) best = i;
      }
      if (costs[best] < p.cost) {
        const double moved = (trials[best] - p.u).cwiseAbs().maxCoeff();
        const double decrease = (p.cost - costs[best]) / p.cost;
        p.u = trials[best];
        p.r = rs[best];
        p.cost = costs[best];
        lambda = std::max(levels[best] * 0.3, 1e-9);
        accepted = true;
        if (moved < o.step_tolerance) {
          *reason = "step below tolerance";
          return true;
        }
        if (decrease < o.relative_decrease) {
          *reason = "cost decrease below tolerance";
          return true;
        }
      } else {
        lambda *= 1000.0;
      }
    }
    if (!accepted) {
      *reason = "no damped step lowers the cost";
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
    size_t best = 0;
    for (size_t i = 1; i < costs.size(); ++i) {
      if (costs[i] < costs[best]) best = i;
    }
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
  result.converged = converged;
  result.stop_reason = reason;
  return result;
}

}  // namespace kvsim
