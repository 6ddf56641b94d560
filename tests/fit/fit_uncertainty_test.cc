// The uncertainty of a least-squares solution on straight-line fits worked out by
// hand: standard errors, the correlation of the terms, and terms at a bound.
#include "sim/fit/fit_uncertainty.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kvsim {
namespace {

// Residuals x0 + x1 * z_i - y_i of a straight line through the points (z_i, y_i).
ResidualBatch Line(std::vector<double> z, std::vector<double> y) {
  return [z, y](const std::vector<Eigen::VectorXd>& points) {
    std::vector<Eigen::VectorXd> out;
    for (const Eigen::VectorXd& x : points) {
      Eigen::VectorXd r(static_cast<Eigen::Index>(z.size()));
      for (size_t i = 0; i < z.size(); ++i)
        r[static_cast<Eigen::Index>(i)] = x[0] + x[1] * z[i] - y[i];
      out.push_back(r);
    }
    return out;
  };
}

Eigen::VectorXd Vec(double a, double b) { return Eigen::Vector2d(a, b); }

TEST(FitUncertaintyTest, ALineThroughThreePointsHasTheTextbookStandardErrors) {
  // Points (-1, 1), (0, 2), (1, 4): the least-squares line is 7/3 + 1.5 z, residuals
  // (-1/6, 1/3, -1/6), |r|^2 = 1/6 over 3 - 2 = 1 degree of freedom. J = [1 z] gives
  // J^T J = diag(3, 2): standard errors sqrt(1/6 / 3) and sqrt(1/6 / 2), uncorrelated.
  const ResidualBatch residuals = Line({-1, 0, 1}, {1, 2, 4});
  const Eigen::VectorXd x = Vec(7.0 / 3, 1.5);
  const Eigen::VectorXd r = residuals({x})[0];
  const SolutionUncertainty u =
      EstimateUncertainty(residuals, x, r, Vec(-10, -10), Vec(10, 10), 1e-3);
  EXPECT_EQ(u.degrees_of_freedom, 1);
  EXPECT_EQ(u.evaluations, 4);  // two central differences
  EXPECT_NEAR(u.terms[0].standard_error, std::sqrt(1.0 / 18), 1e-9);
  EXPECT_NEAR(u.terms[1].standard_error, std::sqrt(1.0 / 12), 1e-9);
  // One degree of freedom: Student's t at 97.5% is 12.706, not the normal 1.96.
  EXPECT_NEAR(u.terms[1].half_width_95, 12.706 * std::sqrt(1.0 / 12), 1e-9);
  EXPECT_NEAR(u.correlation(0, 1), 0.0, 1e-9);
  EXPECT_NEAR(u.eigen_ratio, 1.0, 1e-9);  // the columns (1, 1, 1) and (-1, 0, 1) are orthogonal
}

TEST(FitUncertaintyTest, PointsAtNearlyOneAbscissaDoNotTellInterceptFromSlope) {
  // z = 1, 1.01, 0.99: J = [1 z] has nearly parallel columns. With sum z = 3 and
  // sum z^2 = 3.0002, the estimates correlate at -sum z / sqrt(3 sum z^2) = -0.99997.
  const ResidualBatch residuals = Line({1, 1.01, 0.99}, {2, 2.02, 1.98});
  const Eigen::VectorXd x = Vec(0, 2);  // an exact fit: residuals zero
  const SolutionUncertainty u =
      EstimateUncertainty(residuals, x, residuals({x})[0], Vec(-10, -10), Vec(10, 10), 1e-3);
  EXPECT_NEAR(u.correlation(0, 1), -3 / std::sqrt(3 * 3.0002), 1e-6);
  EXPECT_GT(std::abs(u.correlation(0, 1)), kMaxTermCorrelation);
  EXPECT_LT(u.eigen_ratio, kMinEigenRatio);
}

TEST(FitUncertaintyTest, ATermAtABoundIsNotEstimatedAndTheOtherIsAlone) {
  // The slope held at its lower bound 1.5: only the intercept is estimated, from
  // the column of ones: standard error sqrt(s^2 / 3), s^2 = |r|^2 / (3 - 1).
  const ResidualBatch residuals = Line({-1, 0, 1}, {1, 2, 4});
  const Eigen::VectorXd x = Vec(7.0 / 3, 1.5);
  const SolutionUncertainty u =
      EstimateUncertainty(residuals, x, residuals({x})[0], Vec(-10, 1.5), Vec(10, 10), 1e-3);
  EXPECT_TRUE(u.terms[1].at_bound);
  EXPECT_TRUE(std::isnan(u.terms[1].standard_error));
  EXPECT_TRUE(std::isnan(u.correlation(0, 1)));
  EXPECT_EQ(u.degrees_of_freedom, 2);
  EXPECT_NEAR(u.terms[0].standard_error, std::sqrt(1.0 / 6 / 2 / 3), 1e-9);
}

TEST(FitUncertaintyTest, StudentsTWidensTheIntervalOverFewDegreesOfFreedom) {
  EXPECT_DOUBLE_EQ(StudentT975(1), 12.706);
  EXPECT_DOUBLE_EQ(StudentT975(10), 2.228);
  EXPECT_DOUBLE_EQ(StudentT975(30), 2.042);
  // Beyond the table: 1.96 + (1.96^3 + 1.96) / (4 x 60) = 2.0004 (tables: 2.000).
  EXPECT_NEAR(StudentT975(60), 2.000, 1e-3);
  EXPECT_NEAR(StudentT975(100000), 1.96, 1e-4);
}

TEST(FitUncertaintyTest, AsManyTermsAsResidualsLeaveNoDegreeOfFreedomAndNoInterval) {
  // A line through two points: exact, so nothing is known of the spread.
  const ResidualBatch residuals = Line({0, 1}, {1, 3});
  const Eigen::VectorXd x = Vec(1, 2);
  const SolutionUncertainty u =
      EstimateUncertainty(residuals, x, residuals({x})[0], Vec(-10, -10), Vec(10, 10), 1e-3);
  EXPECT_EQ(u.degrees_of_freedom, 0);
  EXPECT_TRUE(std::isnan(u.terms[0].half_width_95));
  EXPECT_TRUE(std::isnan(u.terms[1].half_width_95));
}

TEST(FitUncertaintyTest, ATermWhoseStepGivesANonFiniteResidualIsNotEstimated) {
  // The residuals are NaN wherever the slope moves off 2: its column is not finite.
  const ResidualBatch residuals = [](const std::vector<Eigen::VectorXd>& points) {
    std::vector<Eigen::VectorXd> out;
    for (const Eigen::VectorXd& x : points) {
      const double bad = x[1] != 2 ? std::nan("") : 0.0;
      out.push_back(Eigen::Vector3d(x[0] - 1 + bad, x[0] - 1.1 + bad, x[0] - 0.9 + bad));
    }
    return out;
  };
  const Eigen::VectorXd x = Vec(1, 2);
  const SolutionUncertainty u =
      EstimateUncertainty(residuals, x, residuals({x})[0], Vec(-10, -10), Vec(10, 10), 1e-3);
  EXPECT_TRUE(u.terms[1].not_finite);
  EXPECT_FALSE(u.terms[1].no_effect);
  EXPECT_FALSE(u.terms[0].not_finite);
  EXPECT_EQ(u.degrees_of_freedom, 2);  // three residuals, the intercept alone
  EXPECT_GT(u.terms[0].standard_error, 0);
}

}  // namespace
}  // namespace kvsim
