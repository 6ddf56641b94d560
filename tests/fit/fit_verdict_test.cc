// The acceptance rule of kvsim fit on fits built by hand: converged, and the mean
// |relative error| after the fit within solver.max_mean_error; a refusal says why.
#include "sim/fit/fit_verdict.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kvsim {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// One case measured at TTFT mean 2 s and TPOT mean 0.5 s.
std::vector<FitCase> OneCase() {
  return {{"run",
           "run",
           ConfigTree::Parse("{}", "/fits/none.yaml"),  // not simulated here
           std::nullopt,
           {{{"ttft_s", "mean"}, 2.0}, {{"tpot_s", "mean"}, 0.5}},
           0,
           "H200",
           {},
           nullptr}};
}

// per_iteration_s free in [0, 0.05] (its default bounds), per_seq_s in [0, 0.001].
FitConfig TwoFreeTerms() {
  FitConfig config;
  config.free = {{"timing.engine.per_iteration_s", 0, 0.05, false, 0, ""},
                 {"timing.engine.per_seq_s", 0, 0.001, false, 0, ""}};
  return config;
}

// A converged fit of both terms to `fitted`, simulating `before` and `after` (TTFT,
// TPOT) at its start and end.
FitOutcome Outcome(std::vector<double> before, std::vector<double> after,
                   std::initializer_list<double> fitted) {
  FitOutcome fit;
  fit.cases = {0};
  fit.params = {{0, ""}, {1, ""}};
  fit.fitted.resize(2);
  Eigen::Index i = 0;
  for (double x : fitted) fit.fitted[i++] = x;
  fit.before = {{std::move(before), "Llama-3-8B", "H200"}};
  fit.after = {{std::move(after), "Llama-3-8B", "H200"}};
  fit.solve.converged = true;
  fit.solve.stop_reason = "pattern step below tolerance";
  return fit;
}

TEST(FitVerdictTest, AFitWithinTheMeanErrorBoundIsAccepted) {
  // Errors +5% (2.1 s against 2) and -10% (0.45 against 0.5): mean 7.5%, within 10%.
  const FitVerdict v =
      JudgeFit(TwoFreeTerms(), OneCase(), Outcome({1, 0.2}, {2.1, 0.45}, {0.001, 0}));
  EXPECT_TRUE(v.accepted);
  EXPECT_THAT(v.reason, IsEmpty());
}

TEST(FitVerdictTest, AMeanErrorEqualToTheBoundIsAccepted) {
  // Errors +25% (2.5 against 2) and -25% (0.375 against 0.5): mean exactly 25%.
  FitConfig config = TwoFreeTerms();
  config.solver.max_mean_error = 0.25;
  EXPECT_TRUE(JudgeFit(config, OneCase(), Outcome({1, 0.2}, {2.5, 0.375}, {0.001, 1e-5})).accepted);
  config.solver.max_mean_error = 0.24;
  EXPECT_FALSE(
      JudgeFit(config, OneCase(), Outcome({1, 0.2}, {2.5, 0.375}, {0.001, 1e-5})).accepted);
}

TEST(FitVerdictTest, AConvergedFitFarFromTheMeasurementsIsRefusedNamingTheTermsAtTheirBounds) {
  // Errors -80% (0.4 against 2) and -60% (0.2 against 0.5): mean 70%. Before the fit
  // the measured times were 2 / 1 and 0.5 / 0.25 = twice the simulated ones.
  const FitVerdict v =
      JudgeFit(TwoFreeTerms(), OneCase(), Outcome({1, 0.25}, {0.4, 0.2}, {0.05, 0}));
  EXPECT_FALSE(v.accepted);
  EXPECT_THAT(v.reason, HasSubstr("after the fit the mean |error| is 70.0%, above "
                                  "solver.max_mean_error 10%"));
  EXPECT_THAT(v.reason, HasSubstr("timing.engine.per_iteration_s ended at its upper bound 0.05, "
                                  "timing.engine.per_seq_s ended at its lower bound 0"));
  EXPECT_THAT(v.reason, HasSubstr("check that the scenario is the measured run's"));
  EXPECT_THAT(v.reason, Not(HasSubstr("milliseconds")));
}

TEST(FitVerdictTest, MeasuredTimesAThousandTimesTheSimulatedOnesLookLikeMilliseconds) {
  // Before the fit: 2 / 0.002 = 1000 and 0.5 / 0.0005 = 1000; after, -90% and -98%.
  const FitVerdict v =
      JudgeFit(TwoFreeTerms(), OneCase(), Outcome({0.002, 0.0005}, {0.2, 0.01}, {0.05, 0.001}));
  EXPECT_FALSE(v.accepted);
  EXPECT_THAT(v.reason, HasSubstr("mean |error| is 94.0%"));
  EXPECT_THAT(v.reason, HasSubstr("before the fit the measured times were about 1000 times the "
                                  "simulated ones: times look like milliseconds"));
}

TEST(FitVerdictTest, MeasuredTimesAThousandthOfTheSimulatedOnesAskForTheirUnits) {
  // Before the fit: 2 / 2000 and 0.5 / 500, a thousandth; after, +400% and +100%.
  const FitVerdict v = JudgeFit(TwoFreeTerms(), OneCase(), Outcome({2000, 500}, {10, 1}, {0, 0}));
  EXPECT_FALSE(v.accepted);
  EXPECT_THAT(v.reason, HasSubstr("about 1/1000 of the simulated ones: check that they are in "
                                  "seconds"));
}

TEST(FitVerdictTest, AFitThatDidNotConvergeIsRefusedWithTheSolversReason) {
  FitOutcome fit = Outcome({1, 0.2}, {2, 0.5}, {0.001, 0});
  fit.solve.converged = false;
  fit.solve.stop_reason = "iteration limit; then pattern round limit";
  const FitVerdict v = JudgeFit(TwoFreeTerms(), OneCase(), fit);
  EXPECT_FALSE(v.accepted);
  EXPECT_EQ(v.reason, "the solver did not converge (iteration limit; then pattern round limit)");
}

}  // namespace
}  // namespace kvsim
