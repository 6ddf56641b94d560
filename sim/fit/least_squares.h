// Bounded nonlinear least squares for fits with a simulation in the loop:
//   minimise cost(x) = 1/2 sum_i r_i(x)^2   subject to   lo <= x <= hi.
// The residuals come from a black box (a batch of simulations), so derivatives are
// forward differences, and every batch of points the method needs at once (the n
// points of a Jacobian, the trial steps of one iteration, the poll points of a
// pattern search) is handed to the caller together, to be evaluated in parallel.
// Deterministic: the same inputs give the same iterates whatever the parallelism.
#pragma once

#include <Eigen/Dense>
#include <functional>
#include <string>
#include <vector>

namespace kvsim {

// Evaluates the residual vector at each point; every result has the same length.
using ResidualBatch =
    std::function<std::vector<Eigen::VectorXd>(const std::vector<Eigen::VectorXd>& points)>;

enum class LeastSquaresMethod {
  // Levenberg-Marquardt projected onto the box (Marquardt's diagonal scaling), then
  // a compass search from its end point. The compass search needs no derivatives, so
  // it still makes progress where the simulated metrics are not smooth.
  kLevenbergMarquardt,
  kPatternSearch,  // compass search alone
};

struct LeastSquaresOptions {
  LeastSquaresMethod method = LeastSquaresMethod::kLevenbergMarquardt;
  int max_iterations = 40;          // Levenberg-Marquardt iterations (each one Jacobian)
  int max_pattern_rounds = 60;      // compass-search polls
  double difference_step = 3e-3;    // forward-difference step, as a fraction of hi - lo
  double cost_tolerance = 1e-10;    // stop when the cost falls below this
  double relative_decrease = 1e-6;  // Levenberg-Marquardt stops when an accepted step
                                    // lowers the cost by less than this fraction
  double step_tolerance = 1e-5;     // stop when steps shrink below this fraction of hi - lo
};

struct LeastSquaresResult {
  Eigen::VectorXd x;          // the best point found
  Eigen::VectorXd residuals;  // at x
  double cost = 0;            // 1/2 |residuals|^2
  double initial_cost = 0;
  int iterations = 0;   // Levenberg-Marquardt iterations plus compass polls
  int evaluations = 0;  // residual vectors computed
  // A tolerance was met (not the iteration limits): a point in the box that no step
  // improves. Not a judgement of the fit: it holds too with terms pinned at bounds and
  // large residuals (kvsim fit's acceptance rule is JudgeFit, fit_verdict.h).
  bool converged = false;
  // The residuals moved with no free term, at the start or anywhere the search went
  // (then converged is false: nothing was fitted).
  bool no_effect = false;
  std::string stop_reason;
};

// Minimises from x0 (clamped into the box). REQUIRES: lo < hi elementwise, and the
// same length for x0, lo, hi. A point whose residuals are not finite costs +infinity
// (the search steps away from it). Throws InputError when the residuals at x0 are not
// finite or residual vectors differ in length; errors of `residuals` propagate.
LeastSquaresResult SolveBoundedLeastSquares(const ResidualBatch& residuals,
                                            const Eigen::VectorXd& x0, const Eigen::VectorXd& lo,
                                            const Eigen::VectorXd& hi,
                                            const LeastSquaresOptions& options);

}  // namespace kvsim
