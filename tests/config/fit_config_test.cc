// DecodeFitConfig: runs (per-request files, aggregates, load stages), free terms with
// their bounds, metrics and solver settings, and strict rejection naming file:line.
#include "sim/config/fit_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sim/config/calibration.h"
#include "sim/core/check.h"
#include "tests/testing/input_error.h"

namespace kvsim {
namespace {

using ::kvsim::testing::InputErrorMessage;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

// A fit file that need not exist: only its directory (relative paths) and stem (the
// default name) matter.
constexpr const char* kOrigin = "/fits/rtx4090_fit.yaml";

FitConfig Decode(const std::string& yaml, const std::string& origin = kOrigin) {
  return DecodeFitConfig(ConfigTree::Parse(yaml, origin));
}

std::string DecodeError(const std::string& yaml) {
  return InputErrorMessage([&] { Decode(yaml); });
}

// "metric.stat" of each entry, for readable comparisons.
std::vector<std::string> Names(const std::vector<FitMetric>& metrics) {
  std::vector<std::string> names;
  for (const FitMetric& m : metrics) names.push_back(m.Name());
  return names;
}

std::vector<std::string> Names(const std::vector<std::pair<FitMetric, double>>& aggregates) {
  std::vector<std::string> names;
  for (const auto& [m, value] : aggregates) names.push_back(m.Name());
  return names;
}

// ---------------------------------------------------------------------------
// A full fit file

constexpr const char* kFull =
    "runs:\n"                                                                     // 1
    "  - name: rtx4090\n"                                                         // 2
    "    scenario: rtx4090.yaml\n"                                                // 3
    "    set: {scheduler.max_num_seqs: 128}\n"                                    // 4
    "    requests: data/requests.jsonl\n"                                         // 5
    "    format: vllm_requests_jsonl\n"                                           // 6
    "  - name: h100\n"                                                            // 7
    "    scenario: /abs/h100.yaml\n"                                              // 8
    "    aggregates: {ttft_s: {p99: 0.9, mean: 0.2}, tpot_s: {mean: 0.031}}\n"    // 9
    "  - name: sweep\n"                                                           // 10
    "    scenario: sweep.yaml\n"                                                  // 11
    "    stages:\n"                                                               // 12
    "      - set: {workload.arrival.rate_qps: 2}\n"                               // 13
    "        aggregates: {e2e_s: {p50: 4.5}}\n"                                   // 14
    "      - set: {workload.arrival.rate_qps: 8}\n"                               // 15
    "        aggregates: {e2e_s: {p50: 7.25}, itl_s: {p90: 0.05}}\n"              // 16
    "free:\n"                                                                     // 17
    "  timing.engine.per_iteration_s: {min: 0.0001, max: 0.01, start: 0.0002}\n"  // 18
    "  timing.engine.per_seq_s: {}\n"                                             // 19
    "  timing.roofline.gemm_efficiency: {min: 0.3}\n"                             // 20
    "metrics: [ttft_s.mean, e2e_s.p90, itl_s.p50]\n"                              // 21
    "solver: {method: pattern, max_iterations: 12, difference_step: 0.01,\n"      // 22
    "         max_mean_error: 0.2}\n";                                            // 23

TEST(FitConfigTest, AFullFitFileDecodesItsRuns) {
  const FitConfig c = Decode(kFull);
  EXPECT_EQ(c.file, kOrigin);
  EXPECT_EQ(c.name, "rtx4090_fit");  // the file's stem
  ASSERT_EQ(c.runs.size(), 3u);

  const FitRun& requests = c.runs[0];
  EXPECT_EQ(requests.name, "rtx4090");
  EXPECT_EQ(requests.scenario_path, "/fits/rtx4090.yaml");
  EXPECT_THAT(requests.overrides, ElementsAre(Pair("scheduler.max_num_seqs", "128")));
  EXPECT_EQ(requests.requests_path, "/fits/data/requests.jsonl");
  EXPECT_EQ(requests.requests_format, "vllm_requests_jsonl");
  EXPECT_THAT(requests.stages, IsEmpty());
  EXPECT_EQ(requests.where, "/fits/rtx4090_fit.yaml:2: runs[0]");

  // Aggregates: one stage labelled with the run's name, statistics in the order
  // mean, p50, p90, p99 within each metric.
  const FitRun& aggregates = c.runs[1];
  EXPECT_EQ(aggregates.name, "h100");
  EXPECT_EQ(aggregates.scenario_path, "/abs/h100.yaml");
  EXPECT_EQ(aggregates.requests_path, "");
  EXPECT_EQ(aggregates.requests_format, "");
  EXPECT_THAT(aggregates.overrides, IsEmpty());
  ASSERT_EQ(aggregates.stages.size(), 1u);
  EXPECT_EQ(aggregates.stages[0].label, "h100");
  EXPECT_THAT(aggregates.stages[0].overrides, IsEmpty());
  EXPECT_THAT(Names(aggregates.stages[0].aggregates),
              ElementsAre("ttft_s.mean", "ttft_s.p99", "tpot_s.mean"));
  EXPECT_DOUBLE_EQ(aggregates.stages[0].aggregates[0].second, 0.2);
  EXPECT_DOUBLE_EQ(aggregates.stages[0].aggregates[1].second, 0.9);
  EXPECT_DOUBLE_EQ(aggregates.stages[0].aggregates[2].second, 0.031);
  EXPECT_EQ(aggregates.stages[0].where, "/fits/rtx4090_fit.yaml:7: runs[1]");

  const FitRun& stages = c.runs[2];
  EXPECT_EQ(stages.name, "sweep");
  EXPECT_EQ(stages.scenario_path, "/fits/sweep.yaml");
  ASSERT_EQ(stages.stages.size(), 2u);
  EXPECT_EQ(stages.stages[0].label, "stage1");
  EXPECT_THAT(stages.stages[0].overrides, ElementsAre(Pair("workload.arrival.rate_qps", "2")));
  EXPECT_THAT(Names(stages.stages[0].aggregates), ElementsAre("e2e_s.p50"));
  EXPECT_DOUBLE_EQ(stages.stages[0].aggregates[0].second, 4.5);
  EXPECT_EQ(stages.stages[0].where, "/fits/rtx4090_fit.yaml:13: runs[2].stages[0]");
  EXPECT_EQ(stages.stages[1].label, "stage2");
  EXPECT_THAT(stages.stages[1].overrides, ElementsAre(Pair("workload.arrival.rate_qps", "8")));
  EXPECT_THAT(Names(stages.stages[1].aggregates), ElementsAre("e2e_s.p50", "itl_s.p90"));
  EXPECT_DOUBLE_EQ(stages.stages[1].aggregates[0].second, 7.25);
  EXPECT_DOUBLE_EQ(stages.stages[1].aggregates[1].second, 0.05);
}

TEST(FitConfigTest, AFullFitFileDecodesFreeTermsMetricsAndSolver) {
  const FitConfig c = Decode(kFull);
  ASSERT_EQ(c.free.size(), 3u);

  EXPECT_EQ(c.free[0].key, "timing.engine.per_iteration_s");
  EXPECT_DOUBLE_EQ(c.free[0].min_value, 1e-4);
  EXPECT_DOUBLE_EQ(c.free[0].max_value, 0.01);
  EXPECT_TRUE(c.free[0].has_start);
  EXPECT_DOUBLE_EQ(c.free[0].start, 2e-4);
  EXPECT_EQ(c.free[0].where, "/fits/rtx4090_fit.yaml:18: free.timing.engine.per_iteration_s");

  // {}: the term's default bounds, from FittableTerms().
  const FittableTerm* per_seq = FindFittableTerm("timing.engine.per_seq_s");
  ASSERT_NE(per_seq, nullptr);
  EXPECT_EQ(c.free[1].key, "timing.engine.per_seq_s");
  EXPECT_DOUBLE_EQ(c.free[1].min_value, per_seq->min_value);
  EXPECT_DOUBLE_EQ(c.free[1].max_value, per_seq->max_value);
  EXPECT_DOUBLE_EQ(c.free[1].min_value, 0);
  EXPECT_DOUBLE_EQ(c.free[1].max_value, 1e-3);
  EXPECT_FALSE(c.free[1].has_start);

  // Only min given: max is the term's default.
  EXPECT_EQ(c.free[2].key, "timing.roofline.gemm_efficiency");
  EXPECT_DOUBLE_EQ(c.free[2].min_value, 0.3);
  EXPECT_DOUBLE_EQ(c.free[2].max_value, 1.0);
  EXPECT_FALSE(c.free[2].has_start);

  EXPECT_THAT(Names(c.metrics), ElementsAre("ttft_s.mean", "e2e_s.p90", "itl_s.p50"));
  EXPECT_EQ(c.solver.method, "pattern");
  EXPECT_EQ(c.solver.max_iterations, 12);
  EXPECT_DOUBLE_EQ(c.solver.difference_step, 0.01);
  EXPECT_DOUBLE_EQ(c.solver.max_mean_error, 0.2);
}

// The smallest valid fit file: one run, one free term (lines 1-6).
constexpr const char* kMinimal =
    "runs:\n"
    "  - name: a\n"
    "    scenario: a.yaml\n"
    "    requests: a.jsonl\n"
    "free:\n"
    "  timing.engine.per_seq_s: {}\n";

TEST(FitConfigTest, AbsentMetricsAreTheDefaultMetrics) {
  const FitConfig c = Decode(kMinimal);
  EXPECT_EQ(c.metrics, DefaultFitMetrics());
  EXPECT_THAT(Names(c.metrics), ElementsAre("ttft_s.mean", "ttft_s.p99", "tpot_s.mean",
                                            "tpot_s.p99", "e2e_s.mean", "e2e_s.p99"));
}

TEST(FitConfigTest, AbsentKeysTakeTheirDefaults) {
  const FitConfig c = Decode(kMinimal, "/fits/sub/my.fit.yaml");
  EXPECT_EQ(c.name, "my.fit");
  ASSERT_EQ(c.runs.size(), 1u);
  EXPECT_EQ(c.runs[0].scenario_path, "/fits/sub/a.yaml");
  EXPECT_EQ(c.runs[0].requests_path, "/fits/sub/a.jsonl");
  EXPECT_EQ(c.runs[0].requests_format, "");  // from the file's extension
  EXPECT_THAT(c.runs[0].overrides, IsEmpty());
  const FitSolverConfig solver;  // the struct's own defaults
  EXPECT_EQ(c.solver.method, "lm");
  EXPECT_EQ(c.solver.method, solver.method);
  EXPECT_EQ(c.solver.max_iterations, solver.max_iterations);
  EXPECT_DOUBLE_EQ(c.solver.difference_step, solver.difference_step);
  EXPECT_DOUBLE_EQ(c.solver.max_mean_error, 0.1);  // 10%: the acceptance rule's default
  EXPECT_DOUBLE_EQ(c.solver.max_mean_error, solver.max_mean_error);
}

TEST(FitConfigTest, AGivenNameReplacesTheFileStem) {
  const FitConfig c = Decode(std::string("name: first_try\n") + kMinimal);
  EXPECT_EQ(c.name, "first_try");
}

TEST(FitConfigTest, ATermWithNoValueTakesItsDefaultBounds) {
  const FitConfig c = Decode(
      "runs:\n"
      "  - {name: a, scenario: a.yaml, requests: a.jsonl}\n"
      "free:\n"
      "  timing.allreduce.bus_efficiency:\n");
  ASSERT_EQ(c.free.size(), 1u);
  EXPECT_DOUBLE_EQ(c.free[0].min_value, 0.05);
  EXPECT_DOUBLE_EQ(c.free[0].max_value, 1);
}

// ---------------------------------------------------------------------------
// Errors in runs

TEST(FitConfigTest, ARunWithRequestsAndAggregatesIsAnError) {
  const std::string message = DecodeError(
      "runs:\n"
      "  - name: a\n"
      "    scenario: a.yaml\n"
      "    requests: a.jsonl\n"
      "    aggregates: {ttft_s: {mean: 0.2}}\n"
      "free:\n"
      "  timing.engine.per_seq_s: {}\n");
  EXPECT_THAT(message, HasSubstr("/fits/rtx4090_fit.yaml:4: runs[0].requests: a run gives exactly "
                                 "one of requests"));
}

TEST(FitConfigTest, ARunWithAggregatesAndStagesIsAnError) {
  const std::string message = DecodeError(
      "runs:\n"
      "  - name: a\n"
      "    scenario: a.yaml\n"
      "    aggregates: {ttft_s: {mean: 0.2}}\n"
      "    stages: [{aggregates: {ttft_s: {mean: 0.3}}}]\n"
      "free:\n"
      "  timing.engine.per_seq_s: {}\n");
  EXPECT_THAT(message, HasSubstr("/fits/rtx4090_fit.yaml:4: runs[0].aggregates: a run gives "
                                 "exactly one of"));
}

TEST(FitConfigTest, ARunWithNoMeasurementsIsAnError) {
  const std::string message = DecodeError(
      "runs:\n"
      "  - name: a\n"
      "    scenario: a.yaml\n"
      "free:\n"
      "  timing.engine.per_seq_s: {}\n");
  // Nothing to point at: the message names the run without a line.
  EXPECT_THAT(message, HasSubstr("/fits/rtx4090_fit.yaml: runs[0]."));
  EXPECT_THAT(message, HasSubstr("a run gives exactly one of requests (a per-request file), "
                                 "aggregates or stages"));
}

TEST(FitConfigTest, DuplicateRunNamesAreAnErrorNamingTheSecond) {
  const std::string message = DecodeError(
      "runs:\n"
      "  - name: a\n"
      "    scenario: a.yaml\n"
      "    requests: a.jsonl\n"
      "  - name: a\n"
      "    scenario: b.yaml\n"
      "    requests: b.jsonl\n"
      "free:\n"
      "  timing.engine.per_seq_s: {}\n");
  EXPECT_THAT(message, HasSubstr("/fits/rtx4090_fit.yaml:5: runs[1].name: duplicate run name 'a'"));
}

TEST(FitConfigTest, ARunNameWithASlashIsAnError) {
  const std::string message = DecodeError(
      "runs:\n"
      "  - name: h100/low\n"
      "    scenario: a.yaml\n"
      "    requests: a.jsonl\n"
      "free:\n"
      "  timing.engine.per_seq_s: {}\n");
  EXPECT_THAT(message, HasSubstr("/fits/rtx4090_fit.yaml:2: runs[0].name: must be usable as a "
                                 "directory name"));
}

TEST(FitConfigTest, ARunWithoutANameOrScenarioIsAnError) {
  EXPECT_THAT(DecodeError("runs:\n"
                          "  - scenario: a.yaml\n"
                          "    requests: a.jsonl\n"
                          "free:\n"
                          "  timing.engine.per_seq_s: {}\n"),
              HasSubstr("/fits/rtx4090_fit.yaml: runs[0].name: required"));
  EXPECT_THAT(DecodeError("runs:\n"
                          "  - name: a\n"
                          "    requests: a.jsonl\n"
                          "free:\n"
                          "  timing.engine.per_seq_s: {}\n"),
              HasSubstr("/fits/rtx4090_fit.yaml: runs[0].scenario: required"));
}

TEST(FitConfigTest, AZeroAggregateIsAnErrorNamingItsLine) {
  const std::string message = DecodeError(
      "runs:\n"
      "  - name: a\n"
      "    scenario: a.yaml\n"
      "    aggregates:\n"
      "      ttft_s:\n"
      "        mean: 0.2\n"
      "        p99: 0\n"
      "free:\n"
      "  timing.engine.per_seq_s: {}\n");
  EXPECT_THAT(message,
              HasSubstr("/fits/rtx4090_fit.yaml:7: runs[0].aggregates.ttft_s.p99: must be > 0"));
  EXPECT_THAT(DecodeError("runs:\n"
                          "  - name: a\n"
                          "    scenario: a.yaml\n"
                          "    aggregates: {ttft_s: {mean: -0.2}}\n"
                          "free:\n"
                          "  timing.engine.per_seq_s: {}\n"),
              HasSubstr("/fits/rtx4090_fit.yaml:4: runs[0].aggregates.ttft_s.mean: must be in "
                        "[0, 1000000000], got -0.2"));
}

TEST(FitConfigTest, AnUnknownAggregateMetricOrStatisticIsAnError) {
  EXPECT_THAT(DecodeError("runs:\n"
                          "  - name: a\n"
                          "    scenario: a.yaml\n"
                          "    aggregates:\n"
                          "      ttfb_s: {mean: 0.2}\n"
                          "free:\n"
                          "  timing.engine.per_seq_s: {}\n"),
              HasSubstr("/fits/rtx4090_fit.yaml:5: runs[0].aggregates.ttfb_s: unknown metric"));
  EXPECT_THAT(DecodeError("runs:\n"
                          "  - name: a\n"
                          "    scenario: a.yaml\n"
                          "    aggregates:\n"
                          "      ttft_s: {p95: 0.2}\n"
                          "free:\n"
                          "  timing.engine.per_seq_s: {}\n"),
              HasSubstr("/fits/rtx4090_fit.yaml:5: runs[0].aggregates.ttft_s.p95: unknown key"));
}

TEST(FitConfigTest, AStageAggregateErrorNamesTheStage) {
  const std::string message = DecodeError(
      "runs:\n"
      "  - name: a\n"
      "    scenario: a.yaml\n"
      "    stages:\n"
      "      - aggregates: {ttft_s: {mean: 0.2}}\n"
      "      - aggregates: {ttft_s: {mean: 0}}\n"
      "free:\n"
      "  timing.engine.per_seq_s: {}\n");
  EXPECT_THAT(message, HasSubstr("/fits/rtx4090_fit.yaml:6: runs[0].stages[1].aggregates.ttft_s."
                                 "mean: must be > 0"));
}

TEST(FitConfigTest, AnUnknownKeyInARunIsAnErrorNamingItsLine) {
  const std::string message = DecodeError(
      "runs:\n"
      "  - name: a\n"
      "    scenario: a.yaml\n"
      "    requests: a.jsonl\n"
      "    replicas: 2\n"
      "free:\n"
      "  timing.engine.per_seq_s: {}\n");
  EXPECT_THAT(message, HasSubstr("/fits/rtx4090_fit.yaml:5: runs[0].replicas: unknown key"));
}

TEST(FitConfigTest, AFormatWithAggregatesIsAnError) {
  const std::string message = DecodeError(
      "runs:\n"
      "  - name: a\n"
      "    scenario: a.yaml\n"
      "    aggregates: {ttft_s: {mean: 0.2}}\n"
      "    format: vllm_requests_jsonl\n"
      "free:\n"
      "  timing.engine.per_seq_s: {}\n");
  EXPECT_THAT(message, HasSubstr("/fits/rtx4090_fit.yaml:5: runs[0].format: only with requests"));
}

TEST(FitConfigTest, AnEmptyRunsListIsAnError) {
  const std::string message = DecodeError(
      "runs: []\n"
      "free:\n"
      "  timing.engine.per_seq_s: {}\n");
  EXPECT_THAT(message, HasSubstr("/fits/rtx4090_fit.yaml:1: runs: required: a list of measured "
                                 "runs"));
}

TEST(FitConfigTest, MissingRunsAreAnError) {
  const std::string message = DecodeError(
      "free:\n"
      "  timing.engine.per_seq_s: {}\n");
  EXPECT_THAT(message, HasSubstr("/fits/rtx4090_fit.yaml: runs: required"));
}

// ---------------------------------------------------------------------------
// Errors in free terms, metrics and the solver

// kMinimal's run (lines 1-4) with `free` from line 5 on.
std::string WithFree(const std::string& free) {
  return "runs:\n"
         "  - name: a\n"
         "    scenario: a.yaml\n"
         "    requests: a.jsonl\n" +
         free;
}

TEST(FitConfigTest, MissingFreeTermsAreAnError) {
  EXPECT_THAT(DecodeError(WithFree("")),
              HasSubstr("/fits/rtx4090_fit.yaml: free: required: the timing terms to fit"));
  EXPECT_THAT(DecodeError(WithFree("free: {}\n")),
              HasSubstr("/fits/rtx4090_fit.yaml:5: free: required"));
}

TEST(FitConfigTest, AnUnknownFreeTermIsAnErrorListingTheFittableOnes) {
  const std::string message =
      DecodeError(WithFree("free:\n"
                           "  timing.engine.per_seq_s: {}\n"
                           "  timing.engine.preset: {}\n"));
  EXPECT_THAT(message, HasSubstr("/fits/rtx4090_fit.yaml:7: free.timing.engine.preset: not a term "
                                 "kvsim fit can calibrate; fittable: "
                                 "timing.engine.per_iteration_s, timing.engine.per_seq_s"));
  EXPECT_THAT(message, HasSubstr("timing.profiled.memory_efficiency"));
}

TEST(FitConfigTest, MinNotBelowMaxIsAnError) {
  EXPECT_THAT(DecodeError(WithFree("free:\n"
                                   "  timing.engine.per_seq_s: {min: 0.0005, max: 0.0005}\n")),
              HasSubstr("/fits/rtx4090_fit.yaml:6: free.timing.engine.per_seq_s.max: must be "
                        "greater than min"));
  EXPECT_THAT(DecodeError(WithFree("free:\n"
                                   "  timing.engine.per_seq_s: {min: 0.0006, max: 0.0002}\n")),
              HasSubstr("/fits/rtx4090_fit.yaml:6: free.timing.engine.per_seq_s.max: must be "
                        "greater than min"));
}

TEST(FitConfigTest, BoundsOutsideTheTermsDefaultRangeAreAnError) {
  EXPECT_THAT(DecodeError(WithFree("free:\n"
                                   "  timing.roofline.gemm_efficiency: {max: 1.2}\n")),
              HasSubstr("/fits/rtx4090_fit.yaml:6: free.timing.roofline.gemm_efficiency.max: must "
                        "be in [0.05, 1], got 1.2"));
}

TEST(FitConfigTest, AStartOutsideTheBoundsIsAnError) {
  EXPECT_THAT(DecodeError(WithFree(
                  "free:\n"
                  "  timing.engine.per_seq_s: {min: 0.0001, max: 0.0005, start: 0.0006}\n")),
              HasSubstr("/fits/rtx4090_fit.yaml:6: free.timing.engine.per_seq_s.start: must be in "
                        "[0.0001, 0.0005], got 0.0006"));
}

TEST(FitConfigTest, AnUnknownKeyInAFreeTermIsAnError) {
  EXPECT_THAT(
      DecodeError(WithFree("free:\n"
                           "  timing.engine.per_seq_s: {min: 0, step: 0.1}\n")),
      HasSubstr("/fits/rtx4090_fit.yaml:6: free.timing.engine.per_seq_s.step: unknown key"));
}

TEST(FitConfigTest, AnUnknownMetricIsAnErrorNamingItsLine) {
  const std::string p95 =
      DecodeError(std::string(kMinimal) + "metrics: [ttft_s.mean, ttft_s.p95]\n");
  EXPECT_THAT(p95, HasSubstr("/fits/rtx4090_fit.yaml:7: metrics: unknown metric 'ttft_s.p95'"));
  EXPECT_THAT(p95, HasSubstr("then .mean, .p50, .p90 or .p99"));

  const std::string foo = DecodeError(std::string(kMinimal) +
                                      "metrics:\n"
                                      "  - e2e_s.p99\n"
                                      "  - foo\n");
  EXPECT_THAT(foo, HasSubstr("/fits/rtx4090_fit.yaml:9: metrics: unknown metric 'foo'"));
}

TEST(FitConfigTest, ADuplicateMetricIsAnError) {
  const std::string message =
      DecodeError(std::string(kMinimal) + "metrics:\n  - tpot_s.p99\n  - tpot_s.p99\n");
  EXPECT_THAT(message, HasSubstr("/fits/rtx4090_fit.yaml:9: metrics: tpot_s.p99 twice"));
}

TEST(FitConfigTest, AnEmptyMetricsListIsAnError) {
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "metrics: []\n"),
              HasSubstr("/fits/rtx4090_fit.yaml:7: metrics: expected a list"));
}

TEST(FitConfigTest, BadSolverSettingsAreErrorsNamingTheirLine) {
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "solver: {method: bfgs}\n"),
              HasSubstr("/fits/rtx4090_fit.yaml:7: solver.method: unknown value 'bfgs'; valid: "
                        "lm, pattern"));
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "solver: {max_iterations: 0}\n"),
              HasSubstr("/fits/rtx4090_fit.yaml:7: solver.max_iterations: must be >= 1"));
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "solver: {difference_step: 0.5}\n"),
              HasSubstr("/fits/rtx4090_fit.yaml:7: solver.difference_step: must be in"));
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "solver: {max_mean_error: 0}\n"),
              HasSubstr("/fits/rtx4090_fit.yaml:7: solver.max_mean_error: must be in"));
}

// Runs given as aggregates match the aggregates they list; `metrics` picks what runs
// measured per request match, so in a file of aggregates alone it would do nothing.
TEST(FitConfigTest, MetricsInAFileWhoseRunsAreAllAggregatesAreAnErrorNamingTheirLine) {
  const std::string message = DecodeError(
      "runs:\n"
      "  - name: a\n"
      "    scenario: a.yaml\n"
      "    aggregates: {ttft_s: {mean: 0.0456}}\n"
      "  - name: b\n"
      "    scenario: b.yaml\n"
      "    stages: [{set: {workload.arrival.rate_qps: 2}, aggregates: {e2e_s: {p50: 4.5}}}]\n"
      "free:\n"
      "  timing.engine.per_iteration_s: {}\n"
      "metrics: [e2e_s.p99]\n");
  EXPECT_THAT(message, HasSubstr("/fits/rtx4090_fit.yaml:10: metrics: applies only to runs "
                                 "measured per request (requests:), and every run here gives "
                                 "aggregates or stages"));
}

TEST(FitConfigTest, MetricsWithOneRunMeasuredPerRequestApplyToThatRun) {
  // kFull has a per-request run beside its aggregate and staged runs.
  EXPECT_THAT(Names(Decode(kFull).metrics), ElementsAre("ttft_s.mean", "e2e_s.p90", "itl_s.p50"));
}

TEST(FitConfigTest, AnUnknownTopLevelKeyIsAnErrorNamingItsLine) {
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "tolerance: 0.01\n"),
              HasSubstr("/fits/rtx4090_fit.yaml:7: tolerance: unknown key"));
}

// ---------------------------------------------------------------------------
// Keys written with no value (`key:`, `~`, `null`): an error at the key's line, where
// they used to read as absent (a statistic not matched, the default metrics, a run's
// measurement taken from its other key).

// A run (lines 1-3) measured by `measured` (lines 4-), then the free terms.
std::string RunMeasuredBy(const std::string& measured) {
  return "runs:\n"
         "  - name: a\n"
         "    scenario: a.yaml\n" +
         measured +
         "free:\n"
         "  timing.engine.per_seq_s: {}\n";
}

TEST(FitConfigTest, AnAggregateStatisticWithNoValueIsAnErrorNamingItsLine) {
  EXPECT_THAT(DecodeError(RunMeasuredBy("    aggregates: {ttft_s: {mean: ~, p99: 0.9}}\n")),
              HasSubstr("/fits/rtx4090_fit.yaml:4: runs[0].aggregates.ttft_s.mean: expected a "
                        "number, got no value"));
  EXPECT_THAT(DecodeError(RunMeasuredBy("    aggregates:\n"
                                        "      tpot_s:\n"
                                        "        p99:\n"
                                        "        mean: 0.03\n")),
              HasSubstr("/fits/rtx4090_fit.yaml:6: runs[0].aggregates.tpot_s.p99: expected a "
                        "number, got no value"));
  EXPECT_THAT(DecodeError(RunMeasuredBy("    stages: [{aggregates: {e2e_s: {p50: null}}}]\n")),
              HasSubstr("/fits/rtx4090_fit.yaml:4: runs[0].stages[0].aggregates.e2e_s.p50: "
                        "expected a number, got no value"));
}

TEST(FitConfigTest, ARunsMeasurementWithNoValueIsAnErrorNotTheOtherMeasurement) {
  EXPECT_THAT(DecodeError(RunMeasuredBy("    requests:\n"
                                        "    aggregates: {ttft_s: {mean: 0.2}}\n")),
              HasSubstr("/fits/rtx4090_fit.yaml:4: runs[0].requests: expected the path of a "
                        "per-request file, got no value"));
  EXPECT_THAT(DecodeError(RunMeasuredBy("    requests: a.jsonl\n"
                                        "    aggregates: ~\n")),
              HasSubstr("/fits/rtx4090_fit.yaml:5: runs[0].aggregates: expected a mapping like "
                        "{ttft_s: {mean: 0.2, p99: 0.9}}, got no value"));
  EXPECT_THAT(DecodeError(RunMeasuredBy("    stages:\n"
                                        "    requests: a.jsonl\n")),
              HasSubstr("/fits/rtx4090_fit.yaml:4: runs[0].stages: expected a list of {set, "
                        "aggregates}, got no value"));
  EXPECT_THAT(DecodeError(RunMeasuredBy("    aggregates: {ttft_s: {mean: 0.2}}\n"
                                        "    format:\n")),
              HasSubstr("/fits/rtx4090_fit.yaml:5: runs[0].format: only with requests"));
}

TEST(FitConfigTest, RunsFreeOrMetricsWithNoValueAreErrorsNamingTheirLine) {
  EXPECT_THAT(DecodeError("runs:\nfree:\n  timing.engine.per_seq_s: {}\n"),
              HasSubstr("/fits/rtx4090_fit.yaml:1: runs: expected a list of measured runs"));
  EXPECT_THAT(DecodeError(WithFree("free: ~\n")),
              HasSubstr("/fits/rtx4090_fit.yaml:5: free: expected a mapping of the timing terms "
                        "to fit"));
  EXPECT_THAT(DecodeError(std::string(kMinimal) + "metrics:\nsolver: {method: lm}\n"),
              HasSubstr("/fits/rtx4090_fit.yaml:7: metrics: expected a list like [ttft_s.mean], "
                        "got no value"));
}

// ---------------------------------------------------------------------------
// ParseFitMetric

TEST(FitConfigTest, ParseFitMetricSplitsMetricAndStatistic) {
  const FitMetric m = ParseFitMetric("e2e_s.p90", "here");
  EXPECT_EQ(m.metric, "e2e_s");
  EXPECT_EQ(m.stat, "p90");
  EXPECT_EQ(m, (FitMetric{"e2e_s", "p90"}));
  EXPECT_EQ(m.Name(), "e2e_s.p90");
}

TEST(FitConfigTest, EveryMetricAndStatisticRoundTripsThroughItsName) {
  for (const char* metric : {"ttft_s", "tpot_s", "itl_s", "e2e_s"}) {
    for (const char* stat : {"mean", "p50", "p90", "p99"}) {
      const FitMetric m{metric, stat};
      EXPECT_EQ(ParseFitMetric(m.Name(), "here"), m) << m.Name();
    }
  }
}

TEST(FitConfigTest, ParseFitMetricRejectsIncompleteOrUnknownNames) {
  for (const char* text :
       {"ttft_s", "ttft_s.", ".mean", "ttft_s.p95", "ttft_s.mean.x", "foo", ""}) {
    EXPECT_THAT(InputErrorMessage([&] { ParseFitMetric(text, "cli: --metric"); }),
                HasSubstr(std::string("cli: --metric: unknown metric '") + text + "'"))
        << text;
  }
}

}  // namespace
}  // namespace kvsim
