// The uncertainty of a least-squares solution (see fit_uncertainty.h).
#include "sim/fit/fit_uncertainty.h"

#include <cmath>
#include <limits>

#include "sim/core/check.h"

namespace kvsim {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The Jacobian of the residuals at `x` (columns per term, in the term's unit) over
// the terms `cols`, by central differences where both points lie in [lo, hi], else
// one-sided towards the interior; one batch. Adds to `evaluations`.
Eigen::MatrixXd CentralJacobian(const ResidualBatch& residuals, const Eigen::VectorXd& x,
                                const Eigen::VectorXd& r, const Eigen::VectorXd& lo,
                                const Eigen::VectorXd& hi, double difference_step,
                                const std::vector<Eigen::Index>& cols, int* evaluations) {
  std::vector<Eigen::VectorXd> probes;
  std::vector<double> steps;  // the step of each column, in the term's unit
  std::vector<bool> central;
  for (Eigen::Index j : cols) {
    const double h = difference_step * (hi[j] - lo[j]);
    Eigen::VectorXd up = x, down = x;
    const bool both = x[j] + h <= hi[j] && x[j] - h >= lo[j];
    if (both) {
      up[j] += h;
      down[j] -= h;
      probes.push_back(up);
      probes.push_back(down);
    } else {
      up[j] += x[j] + h <= hi[j] ? h : -h;
      probes.push_back(up);
    }
    steps.push_back(both ? 2 * h : up[j] - x[j]);
    central.push_back(both);
  }
  const std::vector<Eigen::VectorXd> rs = residuals(probes);
  KVSIM_CHECK(rs.size() == probes.size(), "residual batch returned the wrong number of vectors");
  *evaluations += static_cast<int>(probes.size());
  Eigen::MatrixXd jac(r.size(), static_cast<Eigen::Index>(cols.size()));
  size_t p = 0;
  for (size_t c = 0; c < cols.size(); ++c) {
    const Eigen::VectorXd& first = rs[p++];
    const Eigen::VectorXd& second = central[c] ? rs[p++] : r;
    KVSIM_CHECK(first.size() == r.size() && second.size() == r.size(),
                "residual vectors differ in length");
    jac.col(static_cast<Eigen::Index>(c)) = (first - second) / steps[c];
  }
  return jac;
}

}  // namespace

double StudentT975(int dof) {
  KVSIM_CHECK(dof > 0, "Student's t needs a positive number of degrees of freedom");
  static constexpr double kTable[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                                        2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                                        2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                                        2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
  if (dof <= 30) return kTable[dof - 1];
  constexpr double z = 1.959964;
  return z + (z * z * z + z) / (4.0 * dof);
}

SolutionUncertainty EstimateUncertainty(const ResidualBatch& residuals, const Eigen::VectorXd& x,
                                        const Eigen::VectorXd& r, const Eigen::VectorXd& lo,
                                        const Eigen::VectorXd& hi, double difference_step) {
  KVSIM_CHECK(x.size() == lo.size() && lo.size() == hi.size(), "uncertainty: lengths differ");
  const Eigen::Index n = x.size();
  SolutionUncertainty u;
  u.terms.resize(static_cast<size_t>(n));
  u.correlation = Eigen::MatrixXd::Constant(n, n, kNaN);
  u.weakest = Eigen::VectorXd::Zero(n);
  u.eigen_ratio = kNaN;
  std::vector<Eigen::Index> inside;
  for (Eigen::Index j = 0; j < n; ++j) {
    TermUncertainty& t = u.terms[static_cast<size_t>(j)];
    t.at_bound = x[j] <= lo[j] || x[j] >= hi[j];
    t.standard_error = t.half_width_95 = kNaN;
    if (!t.at_bound) inside.push_back(j);
  }
  if (inside.empty()) return u;
  const Eigen::MatrixXd all =
      CentralJacobian(residuals, x, r, lo, hi, difference_step, inside, &u.evaluations);
  // The terms that move some residual: only they can be estimated.
  std::vector<Eigen::Index> est;
  std::vector<Eigen::Index> est_col;  // their columns in `all`
  for (size_t c = 0; c < inside.size(); ++c) {
    const double norm = all.col(static_cast<Eigen::Index>(c)).norm();
    if (!std::isfinite(norm)) {
      u.terms[static_cast<size_t>(inside[c])].not_finite = true;
    } else if (norm > 0) {
      est.push_back(inside[c]);
      est_col.push_back(static_cast<Eigen::Index>(c));
    } else {
      u.terms[static_cast<size_t>(inside[c])].no_effect = true;
    }
  }
  if (est.empty()) return u;
  const auto k = static_cast<Eigen::Index>(est.size());
  Eigen::MatrixXd jac(r.size(), k);
  for (Eigen::Index c = 0; c < k; ++c) jac.col(c) = all.col(est_col[static_cast<size_t>(c)]);
  // Unit-length columns: J = Js D with D = diag(|J_j|), so (J^T J)^-1 = D^-1 C^-1 D^-1.
  const Eigen::VectorXd norms = jac.colwise().norm().transpose();
  const Eigen::MatrixXd scaled = jac * norms.cwiseInverse().asDiagonal();
  const Eigen::MatrixXd c = scaled.transpose() * scaled;
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(c);
  const Eigen::VectorXd values = eig.eigenvalues();  // ascending
  u.eigen_ratio = values[k - 1] > 0 ? std::max(values[0], 0.0) / values[k - 1] : 0.0;
  for (Eigen::Index c2 = 0; c2 < k; ++c2)
    u.weakest[est[static_cast<size_t>(c2)]] = eig.eigenvectors()(c2, 0);
  u.degrees_of_freedom = static_cast<int>(r.size() - k);
  const double variance = u.degrees_of_freedom > 0 ? r.squaredNorm() / u.degrees_of_freedom : kNaN;
  // C^-1 from the eigen-decomposition; a zero eigenvalue makes it infinite.
  const bool singular = !(values[0] > 1e-14 * values[k - 1]);
  const Eigen::MatrixXd c_inv =
      singular ? Eigen::MatrixXd::Constant(k, k, kInf)
               : Eigen::MatrixXd(eig.eigenvectors() * values.cwiseInverse().asDiagonal() *
                                 eig.eigenvectors().transpose());
  for (Eigen::Index a = 0; a < k; ++a) {
    TermUncertainty& t = u.terms[static_cast<size_t>(est[static_cast<size_t>(a)])];
    t.standard_error = singular ? kInf : std::sqrt(variance * c_inv(a, a)) / norms[a];
    t.half_width_95 =
        u.degrees_of_freedom > 0 ? StudentT975(u.degrees_of_freedom) * t.standard_error : kNaN;
    for (Eigen::Index b = 0; b < k; ++b) {
      u.correlation(est[static_cast<size_t>(a)], est[static_cast<size_t>(b)]) =
          singular ? (a == b ? 1.0 : kNaN) : c_inv(a, b) / std::sqrt(c_inv(a, a) * c_inv(b, b));
    }
  }
  return u;
}

}  // namespace kvsim
