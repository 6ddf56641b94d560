// How well a least-squares solution determines each free term: the Gauss-Newton
// covariance at the solution,
//   cov = s^2 (J^T J)^-1,   s^2 = |r|^2 / (m - k),
// with J the residuals' Jacobian (m residuals by the k terms inside their bounds, by
// central differences), r the residuals and m - k the degrees of freedom. Terms held
// at a bound are left out (the bound, not the residuals, sets them). From it: each
// term's standard error, the correlation between terms, and how near J^T J is to
// singular once its columns are scaled to unit length (two terms whose columns are
// nearly parallel are not told apart: only a combination of them is determined).
#pragma once

#include <Eigen/Dense>
#include <string>
#include <vector>

#include "sim/fit/least_squares.h"

namespace kvsim {

// Thresholds of the caveats kvsim fit prints (fit_verdict.h).
// Two terms whose estimates correlate beyond this are "not told apart".
inline constexpr double kMaxTermCorrelation = 0.998;
// Smallest / largest eigenvalue of the scaled J^T J below which the terms it mixes
// are not told apart: the ratio two terms at correlation kMaxTermCorrelation give,
// (1 - 0.998) / (1 + 0.998).
inline constexpr double kMinEigenRatio = (1 - kMaxTermCorrelation) / (1 + kMaxTermCorrelation);
// A term whose 95% half-width exceeds this fraction of its value is poorly determined.
inline constexpr double kMaxRelativeHalfWidth = 0.5;

// The two-sided 95% quantile of Student's t with `dof` degrees of freedom (> 0):
// tabulated to 30, then z + (z^3 + z) / (4 dof) (Cornish-Fisher), z = 1.96.
double StudentT975(int dof);

struct TermUncertainty {
  bool at_bound = false;    // held at its lower or upper bound: not estimated
  bool no_effect = false;   // moves no residual at the solution: not estimated
  bool not_finite = false;  // a residual was not finite at a step: not estimated
  // Standard error and the 95% half-width (StudentT975(dof) standard errors), in the
  // term's own unit; NaN when not estimated (at a bound, no effect, not finite, or no
  // degrees of freedom), +infinity when J^T J is singular.
  double standard_error = 0;
  double half_width_95 = 0;
};

struct SolutionUncertainty {
  std::vector<TermUncertainty> terms;  // per term, in x's order
  // Correlation of the terms' estimates (n x n, unit diagonal); NaN in the rows and
  // columns of terms not estimated.
  Eigen::MatrixXd correlation;
  // Smallest / largest eigenvalue of J^T J with unit-length columns over the
  // estimated terms (1: independent; 0: some combination moves no residual); NaN with
  // none estimated. `weakest` is the eigenvector of the smallest, per term (0 for
  // terms not estimated): the combination the residuals barely see.
  double eigen_ratio = 0;
  Eigen::VectorXd weakest;
  int degrees_of_freedom = 0;  // residuals minus estimated terms
  int evaluations = 0;         // residual vectors computed for the Jacobian
};

// The uncertainty of the solution `x` (residuals `r` there) of the problem
// `residuals` within [lo, hi]; central differences of `difference_step` (a fraction
// of hi - lo, one-sided where a bound is nearer), one batch. REQUIRES: equal lengths
// of x, lo, hi, and lo < hi. Errors of `residuals` propagate.
SolutionUncertainty EstimateUncertainty(const ResidualBatch& residuals, const Eigen::VectorXd& x,
                                        const Eigen::VectorXd& r, const Eigen::VectorXd& lo,
                                        const Eigen::VectorXd& hi, double difference_step);

}  // namespace kvsim
