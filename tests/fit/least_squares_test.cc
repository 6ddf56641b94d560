// Bounded least squares on problems whose minimum is known by hand.
#include "sim/fit/least_squares.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "sim/core/check.h"

namespace kvsim {
namespace {

using ::testing::HasSubstr;

Eigen::VectorXd Vec(std::initializer_list<double> v) {
  Eigen::VectorXd out(static_cast<Eigen::Index>(v.size()));
  Eigen::Index i = 0;
  for (double x : v) out[i++] = x;
  return out;
}

// Applies `f` to every point of a batch, counting points and batches.
struct Counted {
  std::function<Eigen::VectorXd(const Eigen::VectorXd&)> f;
  int points = 0, batches = 0;
  ResidualBatch Batch() {
    return [this](const std::vector<Eigen::VectorXd>& xs) {
      ++batches;
      std::vector<Eigen::VectorXd> out;
      for (const Eigen::VectorXd& x : xs) {
        ++points;
        out.push_back(f(x));
      }
      return out;
    };
  }
};

// y = 2 t - 1 at t = 0..4: the line through the points is a = 2, b = -1, cost 0.
Eigen::VectorXd LineResiduals(const Eigen::VectorXd& x) {
  Eigen::VectorXd r(5);
  for (int t = 0; t < 5; ++t) r[t] = x[0] * t + x[1] - (2.0 * t - 1.0);
  return r;
}

TEST(LeastSquaresTest, LevenbergMarquardtRecoversTheLineThroughExactPoints) {
  Counted c{LineResiduals};
  const LeastSquaresResult res =
      SolveBoundedLeastSquares(c.Batch(), Vec({0.5, 0.5}), Vec({-5, -5}), Vec({5, 5}), {});
  EXPECT_NEAR(res.x[0], 2.0, 1e-6);
  EXPECT_NEAR(res.x[1], -1.0, 1e-6);
  EXPECT_LT(res.cost, 1e-10);
  EXPECT_TRUE(res.converged) << res.stop_reason;
  EXPECT_EQ(res.evaluations, c.points);
  // The start point costs 1/2 sum 2.25 (t - 1)^2 over t = 0..4 = 1/2 x 2.25 x 15.
  EXPECT_DOUBLE_EQ(res.initial_cost, 0.5 * 2.25 * 15);
}

TEST(LeastSquaresTest, JacobianPointsOfOneIterationArriveInOneBatch) {
  Counted c{LineResiduals};
  LeastSquaresOptions o;
  o.max_iterations = 1;
  o.method = LeastSquaresMethod::kLevenbergMarquardt;
  o.max_pattern_rounds = 0;
  SolveBoundedLeastSquares(c.Batch(), Vec({0.5, 0.5}), Vec({-5, -5}), Vec({5, 5}), o);
  // Start point, one Jacobian (2 points), one batch of 3 damped trials.
  EXPECT_EQ(c.batches, 3);
  EXPECT_EQ(c.points, 1 + 2 + 3);
}

TEST(LeastSquaresTest, MinimumOutsideTheBoxEndsOnTheBound) {
  // The unconstrained minimum is a = 2; the box stops a at 1.5, and b = -1 + 2 x 0.5
  // (the mean of y - 1.5 t over t = 0..4 is -1 + 0.5 x 2) is then optimal.
  Counted c{LineResiduals};
  const LeastSquaresResult res =
      SolveBoundedLeastSquares(c.Batch(), Vec({0, 0}), Vec({-5, -5}), Vec({1.5, 5}), {});
  EXPECT_DOUBLE_EQ(res.x[0], 1.5);
  EXPECT_NEAR(res.x[1], 0.0, 1e-5);
}

TEST(LeastSquaresTest, RosenbrockValleyIsFollowedToItsMinimum) {
  Counted c{[](const Eigen::VectorXd& x) { return Vec({10 * (x[1] - x[0] * x[0]), 1 - x[0]}); }};
  LeastSquaresOptions o;
  o.max_iterations = 200;
  o.difference_step = 1e-6;
  const LeastSquaresResult res =
      SolveBoundedLeastSquares(c.Batch(), Vec({-1.2, 1.0}), Vec({-2, -2}), Vec({2, 2}), o);
  EXPECT_NEAR(res.x[0], 1.0, 1e-3);
  EXPECT_NEAR(res.x[1], 1.0, 2e-3);
}

TEST(LeastSquaresTest, PatternSearchFindsTheMinimumOfAStepFunction) {
  // Residual floor(1000 x) / 1000 - 0.37: flat almost everywhere, so derivatives are
  // zero; the compass search halves its step down to the grid and lands on [0.37, 0.371).
  Counted c{[](const Eigen::VectorXd& x) { return Vec({std::floor(1000 * x[0]) / 1000 - 0.37}); }};
  LeastSquaresOptions o;
  o.method = LeastSquaresMethod::kPatternSearch;
  const LeastSquaresResult res =
      SolveBoundedLeastSquares(c.Batch(), Vec({0.9}), Vec({0}), Vec({1}), o);
  EXPECT_GE(res.x[0], 0.37 - 1e-12);
  EXPECT_LT(res.x[0], 0.371);
  EXPECT_LT(res.cost, 1e-20);
}

// Residuals that no value of x moves: nothing is fitted, whatever the polish finds.
TEST(LeastSquaresTest, ResidualsNoTermMovesAreNoFitAndSayWhy) {
  Counted c{[](const Eigen::VectorXd&) { return Vec({0.25, -0.5}); }};
  const LeastSquaresResult res =
      SolveBoundedLeastSquares(c.Batch(), Vec({0.5}), Vec({0}), Vec({1}), {});
  EXPECT_TRUE(res.no_effect);
  EXPECT_FALSE(res.converged);
  EXPECT_THAT(res.stop_reason, HasSubstr("do not move with any free term"));
  EXPECT_DOUBLE_EQ(res.cost, 0.5 * (0.0625 + 0.25));  // 1/2 |r|^2, as it started
}

// Flat derivatives but a polish that finds a better point: a fit after all.
TEST(LeastSquaresTest, FlatDerivativesThatThePolishGetsPastAreAFit) {
  Counted c{[](const Eigen::VectorXd& x) { return Vec({std::floor(1000 * x[0]) / 1000 - 0.37}); }};
  const LeastSquaresResult res =
      SolveBoundedLeastSquares(c.Batch(), Vec({0.9}), Vec({0}), Vec({1}), {});
  EXPECT_FALSE(res.no_effect);
  EXPECT_LT(res.cost, res.initial_cost);
}

TEST(LeastSquaresTest, SameInputsGiveTheSameIterates) {
  Counted a{LineResiduals}, b{LineResiduals};
  const LeastSquaresResult ra =
      SolveBoundedLeastSquares(a.Batch(), Vec({4, 4}), Vec({-5, -5}), Vec({5, 5}), {});
  const LeastSquaresResult rb =
      SolveBoundedLeastSquares(b.Batch(), Vec({4, 4}), Vec({-5, -5}), Vec({5, 5}), {});
  EXPECT_EQ(ra.x, rb.x);
  EXPECT_EQ(ra.evaluations, rb.evaluations);
}

TEST(LeastSquaresTest, NonFiniteResidualsAtTheStartAreAnError) {
  Counted c{[](const Eigen::VectorXd& x) { return Vec({std::log(x[0])}); }};
  try {
    SolveBoundedLeastSquares(c.Batch(), Vec({0}), Vec({0}), Vec({1}), {});
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("starting point are not finite"));
  }
}

TEST(LeastSquaresTest, NonFinitePointsAreAvoided) {
  // sqrt(x - 0.2) - 0.5 is NaN below 0.2; the minimum is at x = 0.45.
  Counted c{[](const Eigen::VectorXd& x) { return Vec({std::sqrt(x[0] - 0.2) - 0.5}); }};
  const LeastSquaresResult res =
      SolveBoundedLeastSquares(c.Batch(), Vec({0.9}), Vec({0}), Vec({1}), {});
  EXPECT_NEAR(res.x[0], 0.45, 1e-5);
}

}  // namespace
}  // namespace kvsim
