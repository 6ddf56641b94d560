// Tests for FindMaxRate against fake probes with a known threshold: bracketing up and
// down, bisection to tolerance, the edge statuses, the probe budget and config checks.
#include "sim/planner/search.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "sim/core/check.h"

namespace kvsim {
namespace {

constexpr double kThreshold = 7.3;  // qps; the fake probes meet at or below this rate

// Meets iff qps <= threshold; a failure binds on "ttft_s.p99".
std::function<ProbeOutcome(double)> MonotoneProbe(double threshold) {
  return [threshold](double qps) {
    if (qps <= threshold) return ProbeOutcome{true, ""};
    return ProbeOutcome{false, "ttft_s.p99"};
  };
}

SearchConfig DefaultConfig() { return SearchConfig{}; }

// Most probes the search may spend: bracketing from `initial` by `growth` until the outcome
// flips at `threshold` (no clamping), then bisection shrinking a ratio of `growth` to
// 1 + tolerance, halving its logarithm per probe.
int ProbeBound(double initial, double growth, double tolerance, double threshold) {
  const double steps = std::log(threshold / initial) / std::log(growth);
  // Up: initial meets, then the first rate above threshold fails. Down: initial fails,
  // then the first rate at or below threshold meets.
  const int bracketing = steps >= 0 ? static_cast<int>(std::floor(steps)) + 2
                                    : static_cast<int>(std::ceil(-steps)) + 1;
  const int bisection =
      static_cast<int>(std::ceil(std::log2(std::log(growth) / std::log1p(tolerance))));
  return bracketing + bisection;
}

void ExpectEveryPassBelowEveryFailure(const SearchResult& result) {
  for (const SearchStep& pass : result.steps) {
    if (!pass.meets) continue;
    for (const SearchStep& fail : result.steps) {
      if (fail.meets) continue;
      EXPECT_LT(pass.qps, fail.qps) << "pass at " << pass.qps << " vs failure at " << fail.qps;
    }
  }
}

TEST(FindMaxRateSearch, FindsTheBoundaryWithinTolerance) {
  const SearchConfig config = DefaultConfig();
  const SearchResult result = FindMaxRate(config, MonotoneProbe(kThreshold));
  EXPECT_EQ(result.status, SearchStatus::kFound);
  EXPECT_LE(result.max_qps, kThreshold);
  EXPECT_GT(result.first_fail_qps, kThreshold);
  EXPECT_LE((result.first_fail_qps - result.max_qps) / result.max_qps, config.tolerance);
  EXPECT_EQ(result.binding, "ttft_s.p99");
}

TEST(FindMaxRateSearch, FindsTheBoundaryForThresholdsAcrossTheWholeRange) {
  const SearchConfig config = DefaultConfig();
  for (double threshold : {0.0011, 0.37, 1.0, 7.3, 123.4, 9876.5}) {
    SCOPED_TRACE(threshold);
    const SearchResult result = FindMaxRate(config, MonotoneProbe(threshold));
    EXPECT_EQ(result.status, SearchStatus::kFound);
    EXPECT_LE(result.max_qps, threshold);
    EXPECT_GT(result.first_fail_qps, threshold);
    EXPECT_LE((result.first_fail_qps - result.max_qps) / result.max_qps, config.tolerance);
  }
}

TEST(FindMaxRateSearch, EveryPassingStepIsBelowEveryFailingStep) {
  for (double initial : {0.01, 1.0, 50.0, 9000.0}) {
    SCOPED_TRACE(initial);
    SearchConfig config = DefaultConfig();
    config.initial_qps = initial;
    const SearchResult result = FindMaxRate(config, MonotoneProbe(kThreshold));
    ASSERT_FALSE(result.steps.empty());
    ExpectEveryPassBelowEveryFailure(result);
    // The result is the bracket of the recorded steps.
    for (const SearchStep& step : result.steps) {
      if (step.meets) {
        EXPECT_LE(step.qps, result.max_qps);
      } else {
        EXPECT_GE(step.qps, result.first_fail_qps);
      }
    }
  }
}

TEST(FindMaxRateSearch, ReportsNoLoadMeetsWhenEvenMinQpsFails) {
  SearchConfig config = DefaultConfig();
  config.min_qps = 0.3;
  config.initial_qps = 1.0;
  config.growth = 2.0;
  const SearchResult result = FindMaxRate(config, MonotoneProbe(0.1));
  EXPECT_EQ(result.status, SearchStatus::kNoLoadMeets);
  EXPECT_EQ(result.max_qps, 0);
  EXPECT_EQ(result.first_fail_qps, 0.3);
  EXPECT_EQ(result.binding, "ttft_s.p99");
  // 1, 0.5, then min_qps itself as the last bracket point.
  ASSERT_EQ(result.steps.size(), 3u);
  EXPECT_EQ(result.steps[0].qps, 1.0);
  EXPECT_EQ(result.steps[1].qps, 0.5);
  EXPECT_EQ(result.steps[2].qps, 0.3);
  for (const SearchStep& step : result.steps) EXPECT_FALSE(step.meets);
}

TEST(FindMaxRateSearch, AFailureAtAnyLoadEndsTheSearchAtThatProbe) {
  // Refused requests fail at every rate: no lower rate is tried.
  int probes = 0;
  const SearchResult result = FindMaxRate(DefaultConfig(), [&probes](double) {
    ++probes;
    return ProbeOutcome{false, "admitted", true};
  });
  EXPECT_EQ(probes, 1);
  EXPECT_EQ(result.status, SearchStatus::kNoLoadMeets);
  EXPECT_EQ(result.max_qps, 0);
  EXPECT_EQ(result.first_fail_qps, DefaultConfig().initial_qps);
  EXPECT_EQ(result.binding, "admitted");
}

TEST(FindMaxRateSearch, AFailureAtAnyLoadAfterAPassIsAContradiction) {
  EXPECT_THROW(
      FindMaxRate(
          DefaultConfig(),
          [](double qps) {
            return qps <= 1.0 ? ProbeOutcome{true, ""} : ProbeOutcome{false, "admitted", true};
          }),
      InvariantError);
}

TEST(FindMaxRateSearch, ReportsMeetsAtEveryLoadTriedWhenEvenMaxQpsMeets) {
  SearchConfig config = DefaultConfig();
  config.initial_qps = 1.0;
  config.growth = 2.0;
  config.max_qps = 100.0;
  const SearchResult result = FindMaxRate(config, MonotoneProbe(1e6));
  EXPECT_EQ(result.status, SearchStatus::kMeetsAtAllTried);
  EXPECT_EQ(result.max_qps, 100.0);
  EXPECT_EQ(result.first_fail_qps, 0);
  EXPECT_EQ(result.binding, "");
  // 1, 2, 4, ..., 64, then max_qps itself as the last bracket point.
  ASSERT_EQ(result.steps.size(), 8u);
  EXPECT_EQ(result.steps[6].qps, 64.0);
  EXPECT_EQ(result.steps[7].qps, 100.0);
  for (const SearchStep& step : result.steps) EXPECT_TRUE(step.meets);
}

// Distinct by construction (kSearchStatuses would not compile otherwise); these are the
// names plan.csv and plan.json write.
TEST(FindMaxRateSearch, StatusesHaveThePlanOutputsNames) {
  EXPECT_EQ(kSearchStatuses.Name(SearchStatus::kFound), "found");
  EXPECT_EQ(kSearchStatuses.Name(SearchStatus::kNoLoadMeets), "no_load_meets");
  EXPECT_EQ(kSearchStatuses.Name(SearchStatus::kMeetsAtAllTried), "meets_at_all_tried");
}

TEST(FindMaxRateSearch, BisectsBelowMaxQpsWhenMaxQpsFails) {
  SearchConfig config = DefaultConfig();
  config.initial_qps = 1.0;
  config.growth = 2.0;
  config.max_qps = 100.0;
  const SearchResult result = FindMaxRate(config, MonotoneProbe(90.0));
  EXPECT_EQ(result.status, SearchStatus::kFound);
  EXPECT_EQ(result.steps[7].qps, 100.0);
  EXPECT_FALSE(result.steps[7].meets);
  EXPECT_LE(result.max_qps, 90.0);
  EXPECT_GT(result.first_fail_qps, 90.0);
  EXPECT_LE(result.first_fail_qps, 100.0);
}

TEST(FindMaxRateSearch, BracketsDownwardFromAnInitialRateAboveTheThreshold) {
  SearchConfig config = DefaultConfig();
  config.initial_qps = 100.0;
  config.growth = 2.0;
  const SearchResult result = FindMaxRate(config, MonotoneProbe(kThreshold));
  EXPECT_EQ(result.status, SearchStatus::kFound);
  // 100, 50, 25, 12.5 fail; 6.25 meets and closes the bracket.
  ASSERT_GE(result.steps.size(), 5u);
  const std::vector<double> expected = {100.0, 50.0, 25.0, 12.5, 6.25};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(result.steps[i].qps, expected[i]);
    EXPECT_EQ(result.steps[i].meets, i == 4);
  }
  EXPECT_LE(result.max_qps, kThreshold);
  EXPECT_GT(result.first_fail_qps, kThreshold);
  EXPECT_LE((result.first_fail_qps - result.max_qps) / result.max_qps, config.tolerance);
}

TEST(FindMaxRateSearch, BisectsAtTheGeometricMidpoint) {
  SearchConfig config = DefaultConfig();
  config.initial_qps = 1.0;
  config.growth = 4.0;
  const SearchResult result = FindMaxRate(config, MonotoneProbe(kThreshold));
  // 1 and 4 meet, 16 fails; the first bisection probe is sqrt(4 * 16) = 8.
  ASSERT_GE(result.steps.size(), 4u);
  EXPECT_EQ(result.steps[2].qps, 16.0);
  EXPECT_DOUBLE_EQ(result.steps[3].qps, 8.0);
}

TEST(FindMaxRateSearch, ReportsTheBindingSloOfTheProbeAtTheFirstFailingRate) {
  // Above 10 qps the end-to-end SLO fails first; between 7.3 and 10 only TTFT fails.
  auto probe = [](double qps) {
    if (qps <= kThreshold) return ProbeOutcome{true, ""};
    return ProbeOutcome{false, qps >= 10.0 ? "e2e_s.p99" : "ttft_s.p99"};
  };
  SearchConfig config = DefaultConfig();
  config.initial_qps = 1.0;
  config.growth = 4.0;
  const SearchResult result = FindMaxRate(config, probe);
  // The first failing probe in time (16 qps) bound on e2e; the lowest failing rate on TTFT.
  ASSERT_GE(result.steps.size(), 3u);
  EXPECT_EQ(result.steps[2].binding, "e2e_s.p99");
  EXPECT_LT(result.first_fail_qps, 10.0);
  EXPECT_EQ(result.binding, "ttft_s.p99");
  for (const SearchStep& step : result.steps) {
    if (step.qps == result.first_fail_qps) {
      EXPECT_EQ(step.binding, result.binding);
    }
  }
}

TEST(FindMaxRateSearch, ReportsTheBindingSloWhenTheInitialProbeIsTheOnlyFailure) {
  SearchConfig config = DefaultConfig();
  config.initial_qps = 8.0;
  config.growth = 2.0;
  const SearchResult result = FindMaxRate(config, MonotoneProbe(kThreshold));
  EXPECT_EQ(result.steps[0].qps, 8.0);
  EXPECT_FALSE(result.steps[0].meets);
  EXPECT_EQ(result.binding, "ttft_s.p99");
}

TEST(FindMaxRateSearch, ANonMonotoneProbeIsOnlyEverProbedInsideItsBracket) {
  // Meets below 3 qps, fails on [3, 8), meets again from 8 qps. Every rate the search
  // picks lies strictly inside the bracket of the probes before it, so the search never
  // probes 8 after failing at 4 and its record stays consistent: it reports the lower
  // boundary and throws nothing.
  auto probe = [](double qps) {
    if (qps < 3.0 || qps >= 8.0) return ProbeOutcome{true, ""};
    return ProbeOutcome{false, "ttft_s.p99"};
  };
  SearchConfig config = DefaultConfig();
  config.initial_qps = 1.0;
  config.growth = 2.0;
  SearchResult result;
  ASSERT_NO_THROW(result = FindMaxRate(config, probe));
  EXPECT_EQ(result.status, SearchStatus::kFound);
  EXPECT_LT(result.max_qps, 3.0);
  EXPECT_GE(result.first_fail_qps, 3.0);
  EXPECT_LE(result.first_fail_qps, 4.0);
  ExpectEveryPassBelowEveryFailure(result);
  for (const SearchStep& step : result.steps) EXPECT_LE(step.qps, 4.0);
}

TEST(FindMaxRateSearch, TheNumberOfProbesIsBoundedByBracketingPlusLogBisection) {
  const SearchConfig config = DefaultConfig();
  int calls = 0;
  auto counting = [&calls, inner = MonotoneProbe(kThreshold)](double qps) {
    ++calls;
    return inner(qps);
  };
  const SearchResult result = FindMaxRate(config, counting);
  EXPECT_EQ(static_cast<size_t>(calls), result.steps.size());
  // 1, 2, 4, 8 bracket; then ceil(log2(ln 2 / ln 1.02)) = 6 bisection probes at most.
  EXPECT_EQ(ProbeBound(1.0, 2.0, 0.02, kThreshold), 4 + 6);
  EXPECT_LE(calls, 4 + 6);
  EXPECT_GE(calls, 4 + 1);
}

TEST(FindMaxRateSearch, TheProbeBoundHoldsForManyThresholdsAndStartingRates) {
  for (double initial : {0.01, 1.0, 300.0}) {
    for (double threshold : {0.023, 0.55, 7.3, 42.0, 777.0}) {
      SCOPED_TRACE(testing::Message() << "initial " << initial << " threshold " << threshold);
      SearchConfig config = DefaultConfig();
      config.initial_qps = initial;
      const SearchResult result = FindMaxRate(config, MonotoneProbe(threshold));
      EXPECT_EQ(result.status, SearchStatus::kFound);
      EXPECT_LE(static_cast<int>(result.steps.size()),
                ProbeBound(initial, config.growth, config.tolerance, threshold));
    }
  }
}

TEST(FindMaxRateSearch, StopsBisectingAtMaxProbes) {
  SearchConfig config = DefaultConfig();
  config.max_probes = 6;  // 4 bracketing probes leave 2 for bisection
  const SearchResult result = FindMaxRate(config, MonotoneProbe(kThreshold));
  EXPECT_EQ(result.steps.size(), 6u);
  EXPECT_EQ(result.status, SearchStatus::kFound);
  EXPECT_LE(result.max_qps, kThreshold);
  EXPECT_GT(result.first_fail_qps, kThreshold);
  EXPECT_GT((result.first_fail_qps - result.max_qps) / result.max_qps, config.tolerance);
}

TEST(FindMaxRateSearch, StopsBracketingAtMaxProbesAndReportsEveryLoadTriedAsMeeting) {
  SearchConfig config = DefaultConfig();
  config.max_probes = 3;
  const SearchResult result = FindMaxRate(config, MonotoneProbe(kThreshold));
  EXPECT_EQ(result.steps.size(), 3u);
  EXPECT_EQ(result.status, SearchStatus::kMeetsAtAllTried);
  EXPECT_EQ(result.max_qps, 4.0);
  EXPECT_EQ(result.first_fail_qps, 0);
}

TEST(FindMaxRateSearch, StopsWhenTheBracketCannotBeSplitInDoublePrecision) {
  SearchConfig config = DefaultConfig();
  config.tolerance = 1e-300;  // never reached: the bracket runs out of doubles first
  config.max_probes = 1000;
  const SearchResult result = FindMaxRate(config, MonotoneProbe(kThreshold));
  EXPECT_EQ(result.status, SearchStatus::kFound);
  EXPECT_LT(result.steps.size(), 1000u);
  EXPECT_LE(result.max_qps, kThreshold);
  EXPECT_GT(result.first_fail_qps, kThreshold);
  EXPECT_EQ(std::nextafter(result.max_qps, 1e300), result.first_fail_qps);
}

TEST(FindMaxRateSearch, TwoRunsRecordIdenticalSteps) {
  SearchConfig config = DefaultConfig();
  config.initial_qps = 3.0;
  config.growth = 1.7;
  config.tolerance = 0.005;
  const SearchResult a = FindMaxRate(config, MonotoneProbe(kThreshold));
  const SearchResult b = FindMaxRate(config, MonotoneProbe(kThreshold));
  ASSERT_EQ(a.steps.size(), b.steps.size());
  for (size_t i = 0; i < a.steps.size(); ++i) {
    EXPECT_EQ(a.steps[i].qps, b.steps[i].qps) << "step " << i;
    EXPECT_EQ(a.steps[i].meets, b.steps[i].meets) << "step " << i;
    EXPECT_EQ(a.steps[i].binding, b.steps[i].binding) << "step " << i;
  }
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.max_qps, b.max_qps);
  EXPECT_EQ(a.first_fail_qps, b.first_fail_qps);
  EXPECT_EQ(a.binding, b.binding);
}

// Each case breaks one REQUIRES of FindMaxRate; the probe must never run.
struct InvalidConfigCase {
  const char* name;
  SearchConfig config;
};

class FindMaxRateInvalidConfig : public testing::TestWithParam<InvalidConfigCase> {};

TEST_P(FindMaxRateInvalidConfig, ThrowsInvariantErrorBeforeProbing) {
  int calls = 0;
  auto probe = [&calls](double) {
    ++calls;
    return ProbeOutcome{true, ""};
  };
  EXPECT_THROW(FindMaxRate(GetParam().config, probe), InvariantError);
  EXPECT_EQ(calls, 0);
}

SearchConfig With(void (*edit)(SearchConfig&)) {
  SearchConfig c;
  edit(c);
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    RateSearch, FindMaxRateInvalidConfig,
    testing::Values(
        InvalidConfigCase{"GrowthOfOne", With([](SearchConfig& c) { c.growth = 1.0; })},
        InvalidConfigCase{"GrowthBelowOne", With([](SearchConfig& c) { c.growth = 0.5; })},
        InvalidConfigCase{"ZeroTolerance", With([](SearchConfig& c) { c.tolerance = 0; })},
        InvalidConfigCase{"NegativeTolerance", With([](SearchConfig& c) { c.tolerance = -0.1; })},
        InvalidConfigCase{"MinAboveInitial", With([](SearchConfig& c) { c.min_qps = 2.0; })},
        InvalidConfigCase{"InitialAboveMax", With([](SearchConfig& c) { c.max_qps = 0.5; })},
        InvalidConfigCase{"ZeroMin", With([](SearchConfig& c) { c.min_qps = 0; })},
        InvalidConfigCase{"NanInitial",
                          With([](SearchConfig& c) { c.initial_qps = std::nan(""); })},
        InvalidConfigCase{"OneProbe", With([](SearchConfig& c) { c.max_probes = 1; })}),
    [](const testing::TestParamInfo<InvalidConfigCase>& param_info) {
      return param_info.param.name;
    });

TEST(FindMaxRateSearch, ThrowsInvariantErrorForAnEmptyProbe) {
  EXPECT_THROW(FindMaxRate(DefaultConfig(), nullptr), InvariantError);
}

}  // namespace
}  // namespace kvsim
