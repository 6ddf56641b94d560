// Tests for EvaluateSlo and SloSpec::empty on hand-made summaries and request
// records whose latencies, attainment and queueing delays are worked out below.
#include "sim/planner/slo.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace kvsim {
namespace {

Nanos Ms(int64_t ms) { return Nanos(ms * 1'000'000); }

// A finished request; every time is in ms and all but the arrival are relative to it.
RequestRecord Request(int64_t id, int64_t arrival_ms, int64_t queue_ms, int64_t ttft_ms,
                      int64_t e2e_ms, int64_t output_tokens) {
  RequestRecord r;
  r.id = id;
  r.arrival = Ms(arrival_ms);
  r.first_scheduled = r.arrival + Ms(queue_ms);
  r.first_token = r.arrival + Ms(ttft_ms);
  r.finish = r.arrival + Ms(e2e_ms);
  r.prompt_tokens = 100;
  r.output_tokens = output_tokens;
  return r;
}

// One ordinary request, for checks that only need a run to have completed something.
std::vector<RequestRecord> OneRequest() { return {Request(1, 0, 10, 100, 1100, 11)}; }

// An SLO with no objective; tests switch on the ones they need.
SloSpec NoObjectives() {
  SloSpec slo;
  slo.stability = false;
  return slo;
}

std::vector<std::string> Names(const SloVerdict& verdict) {
  std::vector<std::string> names;
  for (const SloCheck& c : verdict.checks) names.push_back(c.name);
  return names;
}

// The check named `name`. Fails the test (and returns an empty check) when absent.
SloCheck Check(const SloVerdict& verdict, const std::string& name) {
  for (const SloCheck& c : verdict.checks) {
    if (c.name == name) return c;
  }
  ADD_FAILURE() << "no check named " << name;
  return SloCheck{};
}

bool HasCheck(const SloVerdict& verdict, const std::string& name) {
  const std::vector<std::string> names = Names(verdict);
  return std::find(names.begin(), names.end(), name) != names.end();
}

// --- Percentile objectives ---------------------------------------------------

// One of the twelve percentile objectives: where its threshold lives in SloSpec
// and where its measured value lives in Summary.
struct PercentileCase {
  const char* check_name;
  PercentileSlo SloSpec::*metric;
  std::optional<double> PercentileSlo::*threshold;
  Percentiles Summary::*measured;
  double Percentiles::*value;
};

class SloPercentileTest : public testing::TestWithParam<PercentileCase> {
 protected:
  // A verdict where only this objective is set, its measured value is 0.25 s
  // (exact in binary, so margins are exact too) and its limit is `limit_s`.
  SloVerdict Evaluate(double limit_s) const {
    const PercentileCase& c = GetParam();
    SloSpec slo = NoObjectives();
    (slo.*c.metric).*c.threshold = limit_s;
    Summary summary;
    (summary.*c.measured).*c.value = 0.25;
    return EvaluateSlo(slo, summary, OneRequest());
  }
};

TEST_P(SloPercentileTest, IsMetWhenTheValueEqualsTheLimit) {
  const SloVerdict v = Evaluate(0.25);
  ASSERT_EQ(v.checks.size(), 1u);
  const SloCheck& c = v.checks[0];
  EXPECT_EQ(c.name, GetParam().check_name);
  EXPECT_EQ(c.value, 0.25);
  EXPECT_EQ(c.limit, 0.25);
  EXPECT_TRUE(c.met);
  EXPECT_EQ(c.margin, 0.0);
  EXPECT_TRUE(v.meets);
  EXPECT_EQ(v.binding, GetParam().check_name);
}

TEST_P(SloPercentileTest, IsMissedWhenTheValueExceedsTheLimit) {
  const SloVerdict v = Evaluate(0.125);  // margin (0.125 - 0.25) / 0.125 = -1
  ASSERT_EQ(v.checks.size(), 1u);
  EXPECT_FALSE(v.checks[0].met);
  EXPECT_EQ(v.checks[0].margin, -1.0);
  EXPECT_FALSE(v.meets);
  EXPECT_EQ(v.binding, GetParam().check_name);
}

TEST_P(SloPercentileTest, MarginIsTheRelativeRoomBelowTheLimit) {
  const SloVerdict v = Evaluate(0.5);  // (0.5 - 0.25) / 0.5
  ASSERT_EQ(v.checks.size(), 1u);
  EXPECT_TRUE(v.checks[0].met);
  EXPECT_EQ(v.checks[0].margin, 0.5);
}

INSTANTIATE_TEST_SUITE_P(
    EveryPercentile, SloPercentileTest,
    testing::Values(PercentileCase{"ttft_s.p50", &SloSpec::ttft_s, &PercentileSlo::p50,
                                   &Summary::ttft_s, &Percentiles::p50},
                    PercentileCase{"ttft_s.p90", &SloSpec::ttft_s, &PercentileSlo::p90,
                                   &Summary::ttft_s, &Percentiles::p90},
                    PercentileCase{"ttft_s.p99", &SloSpec::ttft_s, &PercentileSlo::p99,
                                   &Summary::ttft_s, &Percentiles::p99},
                    PercentileCase{"tbt_s.p50", &SloSpec::tbt_s, &PercentileSlo::p50,
                                   &Summary::tbt_s, &Percentiles::p50},
                    PercentileCase{"tbt_s.p90", &SloSpec::tbt_s, &PercentileSlo::p90,
                                   &Summary::tbt_s, &Percentiles::p90},
                    PercentileCase{"tbt_s.p99", &SloSpec::tbt_s, &PercentileSlo::p99,
                                   &Summary::tbt_s, &Percentiles::p99},
                    PercentileCase{"tpot_s.p50", &SloSpec::tpot_s, &PercentileSlo::p50,
                                   &Summary::tpot_s, &Percentiles::p50},
                    PercentileCase{"tpot_s.p90", &SloSpec::tpot_s, &PercentileSlo::p90,
                                   &Summary::tpot_s, &Percentiles::p90},
                    PercentileCase{"tpot_s.p99", &SloSpec::tpot_s, &PercentileSlo::p99,
                                   &Summary::tpot_s, &Percentiles::p99},
                    PercentileCase{"e2e_s.p50", &SloSpec::e2e_s, &PercentileSlo::p50,
                                   &Summary::e2e_s, &Percentiles::p50},
                    PercentileCase{"e2e_s.p90", &SloSpec::e2e_s, &PercentileSlo::p90,
                                   &Summary::e2e_s, &Percentiles::p90},
                    PercentileCase{"e2e_s.p99", &SloSpec::e2e_s, &PercentileSlo::p99,
                                   &Summary::e2e_s, &Percentiles::p99}),
    [](const testing::TestParamInfo<PercentileCase>& param_info) {
      std::string name = param_info.param.check_name;
      std::replace(name.begin(), name.end(), '.', '_');
      return name;
    });

TEST(SloPercentiles, OnlyTheThresholdsThatAreSetAreChecked) {
  SloSpec slo = NoObjectives();
  slo.ttft_s.p99 = 1.0;
  slo.tbt_s.p50 = 0.05;
  const SloVerdict v = EvaluateSlo(slo, Summary{}, OneRequest());
  EXPECT_EQ(Names(v), (std::vector<std::string>{"ttft_s.p99", "tbt_s.p50"}));
}

TEST(SloPercentiles, ReadTheSummaryNotTheRecords) {
  // The one record has a 0.1 s TTFT; the summary says 2 s, and that is what counts.
  SloSpec slo = NoObjectives();
  slo.ttft_s.p50 = 1.0;
  Summary summary;
  summary.ttft_s.p50 = 2.0;
  const SloVerdict v = EvaluateSlo(slo, summary, OneRequest());
  EXPECT_EQ(Check(v, "ttft_s.p50").value, 2.0);
  EXPECT_FALSE(v.meets);
}

// --- Attainment --------------------------------------------------------------

// Ten requests against per-request limits TTFT 500 ms, TPOT 100 ms, E2E 3000 ms.
//   id  TTFT   E2E  output  TPOT = (E2E - TTFT) / (output - 1)  attains
//    1   200  1200      11  1000 / 10 = 100                     yes
//    2   500  1500      11  1000 / 10 = 100                     yes (TTFT at its limit)
//    3   300  3000      28  2700 / 27 = 100                     yes (E2E at its limit)
//    4   400   400       1  none: a single token                yes
//    5   100  2100      21  2000 / 20 = 100                     yes
//    6   450  1450      21  1000 / 20 =  50                     yes
//    7   250  2250      41  2000 / 40 =  50                     yes
//    8   501  1501      11  1000 / 10 = 100                     no: TTFT 501 > 500
//    9   200  1201      11  1001 / 10 = 100.1                   no: TPOT 100.1 > 100
//   10   301  3001      31  2700 / 30 =  90                     no: E2E 3001 > 3000
// All times in ms. 7 of 10 attain: 0.7. Each threshold alone fails exactly one: 0.9.
std::vector<RequestRecord> TenRequests() {
  return {
      Request(1, 0, 0, 200, 1200, 11),    Request(2, 1000, 0, 500, 1500, 11),
      Request(3, 2000, 0, 300, 3000, 28), Request(4, 3000, 0, 400, 400, 1),
      Request(5, 4000, 0, 100, 2100, 21), Request(6, 5000, 0, 450, 1450, 21),
      Request(7, 6000, 0, 250, 2250, 41), Request(8, 7000, 0, 501, 1501, 11),
      Request(9, 8000, 0, 200, 1201, 11), Request(10, 9000, 0, 301, 3001, 31),
  };
}

SloSpec AttainmentSlo(double target) {
  SloSpec slo = NoObjectives();
  slo.attainment = target;
  slo.request_ttft_s = 0.5;
  slo.request_tpot_s = 0.1;
  slo.request_e2e_s = 3.0;
  return slo;
}

TEST(SloAttainment, SevenOfTenAttainingMeetsATargetOfSeventyPercent) {
  const SloVerdict v = EvaluateSlo(AttainmentSlo(0.7), Summary{}, TenRequests());
  ASSERT_EQ(Names(v), std::vector<std::string>{"attainment"});
  const SloCheck& c = v.checks[0];
  EXPECT_EQ(c.value, 0.7);
  EXPECT_EQ(c.limit, 0.7);
  EXPECT_TRUE(c.met);
  EXPECT_EQ(c.margin, 0.0);
  EXPECT_TRUE(v.meets);
  EXPECT_EQ(v.binding, "attainment");
}

TEST(SloAttainment, SevenOfTenAttainingMissesATargetOfEightyPercent) {
  const SloVerdict v = EvaluateSlo(AttainmentSlo(0.8), Summary{}, TenRequests());
  const SloCheck c = Check(v, "attainment");
  EXPECT_EQ(c.value, 0.7);
  EXPECT_FALSE(c.met);
  EXPECT_DOUBLE_EQ(c.margin, (0.7 - 0.8) / 0.8);  // -0.125
  EXPECT_FALSE(v.meets);
  EXPECT_EQ(v.binding, "attainment");
}

TEST(SloAttainment, EachPerRequestThresholdAloneFailsItsOneRequest) {
  SloSpec ttft_only = NoObjectives();
  ttft_only.attainment = 0.9;
  ttft_only.request_ttft_s = 0.5;
  SloSpec tpot_only = NoObjectives();
  tpot_only.attainment = 0.9;
  tpot_only.request_tpot_s = 0.1;
  SloSpec e2e_only = NoObjectives();
  e2e_only.attainment = 0.9;
  e2e_only.request_e2e_s = 3.0;
  for (const SloSpec& slo : {ttft_only, tpot_only, e2e_only}) {
    const SloVerdict v = EvaluateSlo(slo, Summary{}, TenRequests());
    EXPECT_EQ(Check(v, "attainment").value, 0.9);
    EXPECT_TRUE(v.meets);
  }
}

TEST(SloAttainment, SingleTokenRequestsMeetAnyTpotThreshold) {
  // One output token: 10 s between first token and finish, but no inter-token gap.
  // Two output tokens with the same 10 s give a TPOT of 10 s and fail.
  SloSpec slo = NoObjectives();
  slo.attainment = 0.5;
  slo.request_tpot_s = 0.001;
  const std::vector<RequestRecord> records = {
      Request(1, 0, 0, 100, 10'100, 1),
      Request(2, 0, 0, 100, 10'100, 1),
      Request(3, 0, 0, 100, 10'100, 2),
      Request(4, 0, 0, 100, 10'100, 2),
  };
  const SloVerdict v = EvaluateSlo(slo, Summary{}, records);
  EXPECT_EQ(Check(v, "attainment").value, 0.5);
  EXPECT_TRUE(v.meets);
}

TEST(SloAttainment, IsNotCheckedWithoutAPerRequestThreshold) {
  SloSpec slo = NoObjectives();
  slo.attainment = 0.99;
  const SloVerdict v = EvaluateSlo(slo, Summary{}, TenRequests());
  EXPECT_TRUE(v.checks.empty());
  EXPECT_TRUE(v.meets);
}

TEST(SloAttainment, IsNotCheckedWithoutATarget) {
  SloSpec slo = AttainmentSlo(0.9);
  slo.attainment.reset();
  const SloVerdict v = EvaluateSlo(slo, Summary{}, TenRequests());
  EXPECT_TRUE(v.checks.empty());
}

// --- Stability ---------------------------------------------------------------
// The check reads the summary's load figures through TestOverload (the rule of every
// kvsim output, sim/metrics/overload_test.cc); the records only need to be 8 or more.

// `delays_ms.size()` requests arriving one second apart, request i queued delays_ms[i].
std::vector<RequestRecord> QueuedRequests(const std::vector<int64_t>& delays_ms) {
  std::vector<RequestRecord> records;
  for (size_t i = 0; i < delays_ms.size(); ++i) {
    const int64_t id = static_cast<int64_t>(i) + 1;
    const int64_t queue = delays_ms[i];
    records.push_back(
        Request(id, 1000 * static_cast<int64_t>(i), queue, queue + 50, queue + 1050, 11));
  }
  return records;
}

SloSpec StabilitySlo(double slack_s) {
  SloSpec slo = NoObjectives();
  slo.stability = true;
  slo.stability_slack_s = slack_s;
  return slo;
}

// A summary of twelve requests over `span_s` whose first and last quarters waited
// `first_s` and `last_s` on average and whose waiting queue had held a request without
// a break for `age_s` when the last one arrived.
Summary LoadSummary(double first_s, double last_s, double span_s, double age_s) {
  Summary s;
  s.requests_total = s.requests_completed = 12;
  s.queue_first_quarter_s = first_s;
  s.queue_last_quarter_s = last_s;
  s.arrival_span_s = span_s;
  s.backlog_age_s = age_s;
  s.overloaded = TestOverload(s).overloaded();
  return s;
}

const std::vector<RequestRecord> kTwelve = QueuedRequests(std::vector<int64_t>(12, 100));

TEST(SloStability, FailsWhenTheWaitGrowsAndTheQueueNeverDrains) {
  // Growth 4.5 - 0.2 = 4.3 s against a 1 s slack: margin -3.3. Backlog 9 s old against
  // a quarter of 12 s: margin (3 - 9) / 3 = -2, the nearer to met, so it is reported.
  const Summary summary = LoadSummary(0.2, 4.5, 12, 9);
  ASSERT_TRUE(summary.overloaded);
  const SloVerdict v = EvaluateSlo(StabilitySlo(1.0), summary, kTwelve);
  ASSERT_EQ(Names(v), (std::vector<std::string>{"stability", "stability.median_wait"}));
  const SloCheck& c = v.checks[0];
  EXPECT_DOUBLE_EQ(c.value, 9);
  EXPECT_DOUBLE_EQ(c.limit, 3);
  EXPECT_FALSE(c.met);
  EXPECT_DOUBLE_EQ(c.margin, -2);
  EXPECT_FALSE(v.meets);
  EXPECT_EQ(v.binding, "stability");
}

TEST(SloStability, PassesWhenTheQueueDrainedInTheLastQuarterThoughTheWaitGrew) {
  // The same growth, but the queue was empty 2 s before the last arrival: a burst that
  // drained. Backlog margin (3 - 2) / 3 = 1/3 (the growth's is -3.3).
  const Summary summary = LoadSummary(0.2, 4.5, 12, 2);
  ASSERT_FALSE(summary.overloaded);
  const SloCheck c = Check(EvaluateSlo(StabilitySlo(1.0), summary, kTwelve), "stability");
  EXPECT_DOUBLE_EQ(c.value, 2);
  EXPECT_DOUBLE_EQ(c.limit, 3);
  EXPECT_TRUE(c.met);
  EXPECT_DOUBLE_EQ(c.margin, 1.0 / 3);
}

TEST(SloStability, PassesWhenTheWaitIsFlatThoughTheQueueNeverDrains) {
  // Every quarter waits about 2 s (growth 0.5 s, margin 0.5) with a backlog as old as
  // the arrivals (margin -1): at capacity, not past it.
  const SloVerdict v = EvaluateSlo(StabilitySlo(1.0), LoadSummary(2, 2.5, 11, 11), kTwelve);
  const SloCheck c = Check(v, "stability");
  EXPECT_DOUBLE_EQ(c.value, 0.5);
  EXPECT_DOUBLE_EQ(c.limit, 1.0);
  EXPECT_TRUE(c.met);
  EXPECT_DOUBLE_EQ(c.margin, 0.5);
  EXPECT_TRUE(v.meets);
}

TEST(SloStability, TheSlackIsTheGrowthLetPass) {
  // A 0.9 s growth with a backlog 11 s old (of 11 s): within a 1 s slack (margin 0.1),
  // not within a 0.5 s one (margin (0.5 - 0.9) / 0.5 = -0.8, the backlog's being -1).
  const Summary summary = LoadSummary(0, 0.9, 11, 11);
  const SloVerdict covered = EvaluateSlo(StabilitySlo(1.0), summary, kTwelve);
  EXPECT_DOUBLE_EQ(Check(covered, "stability").limit, 1.0);
  EXPECT_NEAR(Check(covered, "stability").margin, 0.1, 1e-12);
  EXPECT_TRUE(covered.meets);

  const SloVerdict exceeded = EvaluateSlo(StabilitySlo(0.5), summary, kTwelve);
  EXPECT_DOUBLE_EQ(Check(exceeded, "stability").limit, 0.5);
  EXPECT_NEAR(Check(exceeded, "stability").margin, -0.8, 1e-12);
  EXPECT_FALSE(exceeded.meets);
}

TEST(SloStability, AGrowthOfExactlyTheSlackIsMet) {
  // 1 s to 2 s with a 1 s slack: value 1, limit 1, margin 0 (the backlog's is -1).
  const SloCheck c =
      Check(EvaluateSlo(StabilitySlo(1.0), LoadSummary(1, 2, 11, 11), kTwelve), "stability");
  EXPECT_EQ(c.value, 1.0);
  EXPECT_EQ(c.limit, 1.0);
  EXPECT_TRUE(c.met);
  EXPECT_EQ(c.margin, 0.0);
}

TEST(SloStability, AgreesWithTheSummarysOverloadFlagAtTheDefaultSlack) {
  for (const Summary& summary :
       {LoadSummary(0.2, 4.5, 11, 9), LoadSummary(0.2, 4.5, 11, 2), LoadSummary(2, 2.5, 11, 11),
        LoadSummary(1, 2, 11, 11), LoadSummary(10, 18, 100, 90), LoadSummary(0, 5, 0, 0)}) {
    const SloCheck c = Check(EvaluateSlo(StabilitySlo(1.0), summary, kTwelve), "stability");
    EXPECT_EQ(c.met, !summary.overloaded) << summary.queue_last_quarter_s;
  }
}

TEST(SloStability, IsSkippedAsMetWithFewerThanEightRequests) {
  const std::vector<int64_t> growing = {0, 0, 0, 0, 5000, 5000, 5000};
  const SloVerdict v =
      EvaluateSlo(StabilitySlo(1.0), LoadSummary(0, 5, 6, 6), QueuedRequests(growing));
  EXPECT_FALSE(HasCheck(v, "stability"));
  EXPECT_TRUE(v.meets);
}

TEST(SloStability, IsNotCheckedWhenDisabled) {
  const SloVerdict v = EvaluateSlo(NoObjectives(), LoadSummary(0.2, 4.5, 11, 9), kTwelve);
  EXPECT_TRUE(v.checks.empty());
  EXPECT_TRUE(v.meets);
}

// --- Verdict -----------------------------------------------------------------

TEST(SloVerdict, ChecksComeInAFixedOrder) {
  SloSpec slo = AttainmentSlo(0.5);
  slo.stability = true;
  for (PercentileSlo* p : {&slo.e2e_s, &slo.tpot_s, &slo.tbt_s, &slo.ttft_s}) {
    p->p99 = 10.0;
    p->p50 = 10.0;
    p->p90 = 10.0;
  }
  const SloVerdict v = EvaluateSlo(slo, Summary{}, TenRequests());
  EXPECT_EQ(Names(v),
            (std::vector<std::string>{"ttft_s.p50", "ttft_s.p90", "ttft_s.p99", "tbt_s.p50",
                                      "tbt_s.p90", "tbt_s.p99", "tpot_s.p50", "tpot_s.p90",
                                      "tpot_s.p99", "e2e_s.p50", "e2e_s.p90", "e2e_s.p99",
                                      "attainment", "stability", "stability.median_wait"}));
}

TEST(SloStability, AMedianWaitAboveTheSlackFailsThoughTheQueueDidNotGrow) {
  // Ten requests each waiting 10 s: the last quarter waits no longer than the first,
  // but the median request waits 10 s against a 1 s slack (margin -9): a load that
  // rises and falls past what the deployment serves.
  Summary summary = LoadSummary(10, 10, 9, 9);
  summary.queue_s.p50 = 10.0;
  const SloVerdict v =
      EvaluateSlo(StabilitySlo(1.0), summary, QueuedRequests(std::vector<int64_t>(10, 10'000)));
  EXPECT_TRUE(Check(v, "stability").met);
  const SloCheck c = Check(v, "stability.median_wait");
  EXPECT_FALSE(c.met);
  EXPECT_DOUBLE_EQ(c.margin, -9.0);
  EXPECT_EQ(v.binding, "stability.median_wait");
}

TEST(SloVerdict, BindingIsTheWorstFailure) {
  // Margins: ttft p50 +0.5 (met), tbt p99 -0.25, e2e p99 -1, attainment -0.125.
  SloSpec slo = AttainmentSlo(0.8);
  slo.ttft_s.p50 = 0.5;
  slo.tbt_s.p99 = 0.2;
  slo.e2e_s.p99 = 0.125;
  Summary summary;
  summary.ttft_s.p50 = 0.25;
  summary.tbt_s.p99 = 0.25;
  summary.e2e_s.p99 = 0.25;
  const SloVerdict v = EvaluateSlo(slo, summary, TenRequests());
  EXPECT_DOUBLE_EQ(Check(v, "tbt_s.p99").margin, -0.25);
  EXPECT_EQ(Check(v, "e2e_s.p99").margin, -1.0);
  EXPECT_FALSE(v.meets);
  EXPECT_EQ(v.binding, "e2e_s.p99");
}

TEST(SloVerdict, BindingIsTheTightestMetCheckWhenAllAreMet) {
  // Margins: ttft p50 0.5, tbt p99 (0.3125 - 0.25) / 0.3125 = 0.2,
  // attainment (0.7 - 0.5) / 0.5 = 0.4, stability 0.5 (the wait grew 0.5 s of 1).
  SloSpec slo = NoObjectives();
  slo.ttft_s.p50 = 0.5;
  slo.tbt_s.p99 = 0.3125;
  slo.attainment = 0.5;
  slo.request_ttft_s = 0.5;
  slo.stability = true;
  Summary summary;
  summary.ttft_s.p50 = 0.25;
  summary.tbt_s.p99 = 0.25;
  summary.queue_first_quarter_s = 2.0;
  summary.queue_last_quarter_s = 2.5;
  const SloVerdict v = EvaluateSlo(slo, summary, TenRequests());
  EXPECT_DOUBLE_EQ(Check(v, "tbt_s.p99").margin, 0.2);
  EXPECT_DOUBLE_EQ(Check(v, "attainment").margin, 0.8);  // 9 of 10 by TTFT alone
  EXPECT_DOUBLE_EQ(Check(v, "stability").margin, 0.5);
  EXPECT_TRUE(v.meets);
  EXPECT_EQ(v.binding, "tbt_s.p99");
}

TEST(SloVerdict, EqualMarginsBindTheEarlierCheck) {
  SloSpec slo = NoObjectives();
  slo.ttft_s.p99 = 0.125;
  slo.e2e_s.p50 = 0.125;
  Summary summary;
  summary.ttft_s.p99 = 0.25;
  summary.e2e_s.p50 = 0.25;
  EXPECT_EQ(EvaluateSlo(slo, summary, OneRequest()).binding, "ttft_s.p99");
}

TEST(SloVerdict, NoObjectivesMeansMetWithNoBinding) {
  const SloVerdict v = EvaluateSlo(NoObjectives(), Summary{}, OneRequest());
  EXPECT_TRUE(v.checks.empty());
  EXPECT_TRUE(v.meets);
  EXPECT_EQ(v.binding, "");
}

TEST(SloVerdict, ZeroCompletedRequestsFailEveryCheck) {
  SloSpec slo = AttainmentSlo(0.5);
  slo.stability = true;
  slo.ttft_s.p99 = 10.0;
  Summary summary;
  summary.ttft_s.p99 = 1.0;  // would be met, but nothing completed
  const SloVerdict v = EvaluateSlo(slo, summary, {});
  EXPECT_EQ(Names(v), (std::vector<std::string>{"ttft_s.p99", "attainment", "stability"}));
  for (const SloCheck& c : v.checks) {
    EXPECT_FALSE(c.met) << c.name;
    EXPECT_EQ(c.value, 0.0) << c.name;
    EXPECT_LT(c.margin, 0.0) << c.name;
  }
  EXPECT_EQ(Check(v, "ttft_s.p99").limit, 10.0);
  EXPECT_EQ(Check(v, "attainment").limit, 0.5);
  EXPECT_FALSE(v.meets);
  EXPECT_EQ(v.binding, "no completed requests");
}

TEST(SloVerdict, ZeroCompletedRequestsFailEvenWithNoObjective) {
  const SloVerdict v = EvaluateSlo(NoObjectives(), Summary{}, {});
  EXPECT_TRUE(v.checks.empty());
  EXPECT_FALSE(v.meets);
  EXPECT_EQ(v.binding, "no completed requests");
}

// --- Admission ----------------------------------------------------------------

// A summary of `total` offered requests of which `rejected` were refused.
Summary Offered(int64_t total, int64_t rejected) {
  Summary s;
  s.requests_total = total;
  s.requests_rejected = rejected;
  s.requests_completed = total - rejected;
  return s;
}

TEST(SloAdmitted, EveryRequestAdmittedAddsNoCheckAndBindsNothing) {
  SloSpec slo = NoObjectives();
  slo.ttft_s.p99 = 10.0;
  const SloVerdict v = EvaluateSlo(slo, Offered(1, 0), OneRequest());
  EXPECT_EQ(Names(v), std::vector<std::string>{"ttft_s.p99"});
  EXPECT_EQ(v.binding, "ttft_s.p99");
}

TEST(SloAdmitted, OneRefusedRequestOfTenFailsTheDefaultAndBindsAheadOfWorseFailures) {
  // 9 of 10 admitted: 0.9 < 1, margin -0.1; the TTFT check fails by more (-0.5), yet
  // admission binds, since no load can pass it.
  SloSpec slo = NoObjectives();
  slo.ttft_s.p99 = 2.0;
  Summary summary = Offered(10, 1);
  summary.ttft_s.p99 = 3.0;
  const SloVerdict v = EvaluateSlo(slo, summary, OneRequest());
  EXPECT_EQ(Names(v), (std::vector<std::string>{"ttft_s.p99", "admitted"}));
  const SloCheck c = Check(v, "admitted");
  EXPECT_DOUBLE_EQ(c.value, 0.9);
  EXPECT_EQ(c.limit, 1.0);
  EXPECT_FALSE(c.met);
  EXPECT_NEAR(c.margin, -0.1, 1e-12);
  EXPECT_FALSE(v.meets);
  EXPECT_EQ(v.binding, "admitted");
}

TEST(SloAdmitted, ALoweredLimitIsMetYetNeverTheBindingCheck) {
  // 9 of 10 admitted against 0.9: met with margin 0, tighter than the TTFT check's 0.5,
  // but a load-independent check binds nothing.
  SloSpec slo = NoObjectives();
  slo.admitted = 0.9;
  slo.ttft_s.p99 = 2.0;
  Summary summary = Offered(10, 1);
  summary.ttft_s.p99 = 1.0;
  const SloVerdict v = EvaluateSlo(slo, summary, OneRequest());
  EXPECT_TRUE(Check(v, "admitted").met);
  EXPECT_TRUE(v.meets);
  EXPECT_EQ(v.binding, "ttft_s.p99");
}

TEST(SloAdmitted, EveryRequestRefusedBindsAdmittedNotNoCompletedRequests) {
  const SloVerdict v = EvaluateSlo(NoObjectives(), Offered(4, 4), {});
  EXPECT_EQ(Check(v, "admitted").value, 0.0);
  EXPECT_FALSE(v.meets);
  EXPECT_EQ(v.binding, "admitted");
}

TEST(SloAdmitted, IsDescribedAsTheDefaultOnlyWhenThePlanDidNotWriteIt) {
  SloSpec slo = NoObjectives();
  EXPECT_EQ(DescribeSlo(slo).back(),
            "admitted >= 1: the fraction of requests admitted (a prompt reaching "
            "deployment.max_model_len is refused, never served) (default; slo.admitted lowers it)");
  slo.admitted_set = true;  // `admitted: 1` written
  EXPECT_EQ(DescribeSlo(slo).back(),
            "admitted >= 1: the fraction of requests admitted (a prompt reaching "
            "deployment.max_model_len is refused, never served)");
}

TEST(SloAttainment, IsOverTheRequestsServedRefusedOnesBeingTheAdmittedChecks) {
  // Seven of the ten completed requests attain; two more were refused: 7 / 10, and the
  // refusals (10 of 12 admitted) are held to slo.admitted alone.
  SloSpec slo = AttainmentSlo(0.5);
  slo.admitted = 0.8;
  const SloVerdict v = EvaluateSlo(slo, Offered(12, 2), TenRequests());
  EXPECT_DOUBLE_EQ(Check(v, "attainment").value, 0.7);
  EXPECT_DOUBLE_EQ(Check(v, "admitted").value, 10.0 / 12.0);
  EXPECT_TRUE(v.meets);
}

// --- SloSpec::empty ----------------------------------------------------------

TEST(SloSpecEmpty, TheDefaultSpecChecksStability) {
  EXPECT_FALSE(SloSpec{}.empty());
  EXPECT_TRUE(NoObjectives().empty());
}

TEST(SloSpecEmpty, AnyPercentileThresholdIsAnObjective) {
  for (PercentileSlo SloSpec::*metric :
       {&SloSpec::ttft_s, &SloSpec::tbt_s, &SloSpec::tpot_s, &SloSpec::e2e_s}) {
    for (std::optional<double> PercentileSlo::*threshold :
         {&PercentileSlo::p50, &PercentileSlo::p90, &PercentileSlo::p99}) {
      SloSpec slo = NoObjectives();
      (slo.*metric).*threshold = 1.0;
      EXPECT_FALSE(slo.empty());
    }
  }
}

TEST(SloSpecEmpty, AnAttainmentTargetIsAnObjective) {
  SloSpec slo = NoObjectives();
  slo.attainment = 0.9;
  EXPECT_FALSE(slo.empty());
}

TEST(SloSpecEmpty, PerRequestThresholdsWithoutATargetAreNoObjective) {
  SloSpec slo = NoObjectives();
  slo.request_ttft_s = 0.5;
  slo.request_tpot_s = 0.1;
  slo.request_e2e_s = 3.0;
  EXPECT_TRUE(slo.empty());
}

}  // namespace
}  // namespace kvsim
