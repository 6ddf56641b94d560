// Tests for the capacity planner on the bundled Azure conversation trace: fleet sizing
// and costs, ranking and the Pareto set, whole-fleet verification, determinism across
// thread counts, plan-file errors, infeasible candidates and SLOs, peak-window targets,
// and the files `kvsim plan` writes.
#include "sim/planner/planner.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "sim/app/commands.h"
#include "sim/config/plan_config.h"
#include "sim/core/check.h"
#include "tests/testing/input_error.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;
using ::kvsim::testing::InputErrorMessage;
using ::kvsim::testing::TempDir;
using ::testing::HasSubstr;

constexpr const char* kQuickstart = KVSIM_SOURCE_DIR "/configs/quickstart.yaml";
constexpr const char* kTrace = KVSIM_SOURCE_DIR "/traces/AzureLLMInferenceTrace_conv.csv";

// The SLOs, prices and target of the default plan below.
constexpr double kTtftP99 = 2.0;
constexpr double kE2eP99 = 30.0;
constexpr double kH100Price = 3.0;
constexpr double kA100Price = 2.0;
constexpr double kTargetQps = 100.0;

// The parts of a plan file; an empty part leaves its key out. The default: Llama-3-8B
// on the Azure conversation trace (the quickstart scenario), 2 GPUs x 1 TP x 2 KV
// managers x 1 scheduler, 300 requests per probe.
struct PlanParts {
  std::string scenario = kQuickstart;
  std::string set = "{workload.arrival.process: trace}";
  std::string slo = "{ttft_s: {p99: 2.0}, e2e_s: {p99: 30}}";
  std::string target = "{qps: 100}";
  std::string search = "{initial_qps: 4, tolerance: 0.05, max_qps: 500, probe_requests: 300}";
  std::string gpus = "[H100-SXM, A100-80GB]";
  std::string tensor_parallel = "[1]";
  std::string kv_managers = "[{type: static}, {type: paged, block_tokens: 16}]";
  std::string schedulers = "[{type: vllm, max_num_seqs: 256}]";
  std::string prices = "{H100-SXM: 3.0, A100-80GB: 2.0}";
  std::string extra;  // further top-level lines
};

std::string PlanYaml(const PlanParts& p) {
  std::string out;
  auto line = [&out](const std::string& key, const std::string& value, const char* indent = "") {
    if (!value.empty()) out += std::string(indent) + key + ": " + value + "\n";
  };
  line("scenario", p.scenario);
  line("set", p.set);
  line("slo", p.slo);
  line("target", p.target);
  line("search", p.search);
  out += "candidates:\n";
  line("gpus", p.gpus, "  ");
  line("tensor_parallel", p.tensor_parallel, "  ");
  line("kv_managers", p.kv_managers, "  ");
  line("schedulers", p.schedulers, "  ");
  line("prices", p.prices);
  return out + p.extra;
}

// Writes the plan into `dir` and loads it.
PlanConfig Load(const TempDir& dir, const PlanParts& parts) {
  return LoadPlan(dir.Write("plan.yaml", PlanYaml(parts)));
}

PlanResult RunWithJobs(const PlanConfig& plan, int jobs) {
  PlanOptions options;
  options.jobs = jobs;
  return RunPlan(plan, options);
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The fields of one CSV line: quoted fields ("a, ""b""") unquoted, empty ones kept.
std::vector<std::string> SplitCsvLine(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      cells.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      cells.emplace_back();
    } else {
      cells.back() += c;
    }
  }
  return cells;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// --- The default plan, run once for the suite -------------------------------------

class BundledTracePlan : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    TempDir dir;
    plan_ = new PlanConfig(Load(dir, PlanParts{}));
    result_ = new PlanResult(RunWithJobs(*plan_, 1));
  }
  static void TearDownTestSuite() {
    delete result_;
    delete plan_;
    result_ = nullptr;
    plan_ = nullptr;
  }

  static PlanConfig* plan_;
  static PlanResult* result_;
};

PlanConfig* BundledTracePlan::plan_ = nullptr;
PlanResult* BundledTracePlan::result_ = nullptr;

TEST_F(BundledTracePlan, EvaluatesEveryCandidateOfTheSpaceInOrder) {
  const PlanResult& r = *result_;
  ASSERT_EQ(r.candidates.size(), 4u);
  EXPECT_EQ(r.candidates[0].name, "H100-SXM/tp1/static/vllm-256seqs");
  EXPECT_EQ(r.candidates[1].name, "H100-SXM/tp1/paged16/vllm-256seqs");
  EXPECT_EQ(r.candidates[2].name, "A100-80GB/tp1/static/vllm-256seqs");
  EXPECT_EQ(r.candidates[3].name, "A100-80GB/tp1/paged16/vllm-256seqs");
  EXPECT_THAT(r.target_qps, ::testing::ElementsAre(kTargetQps));
  EXPECT_GT(r.simulations, 4);
}

TEST_F(BundledTracePlan, EveryCandidateFindsAMaxRateThatMeetsTheSlos) {
  for (const CandidateResult& c : result_->candidates) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(c.feasible) << c.note;
    EXPECT_TRUE(c.meets_slo);
    EXPECT_EQ(kSearchStatuses.Name(c.search.status), "found");
    EXPECT_GT(c.max_qps_per_replica, 0);
    EXPECT_DOUBLE_EQ(c.max_qps_per_replica, c.search.max_qps);
    EXPECT_DOUBLE_EQ(c.max_qps_per_gpu,
                     c.max_qps_per_replica / static_cast<double>(c.tensor_parallel));
    EXPECT_GT(c.search.first_fail_qps, c.max_qps_per_replica);
    // The run at the max rate is the one the SLOs were met in.
    EXPECT_GT(c.at_max.requests_completed, 0);
    EXPECT_LE(c.at_max.ttft_s.p99, kTtftP99);
    EXPECT_LE(c.at_max.e2e_s.p99, kE2eP99);
  }
}

TEST_F(BundledTracePlan, ReplicasAreTheTargetOverTheMaxRatePerReplicaRoundedUp) {
  for (const CandidateResult& c : result_->candidates) {
    SCOPED_TRACE(c.name);
    const auto expected = static_cast<int64_t>(std::ceil(kTargetQps / c.max_qps_per_replica));
    EXPECT_EQ(c.replicas, expected) << "max QPS per replica " << c.max_qps_per_replica;
    // Enough replicas for the target, and one fewer would not be.
    EXPECT_GE(static_cast<double>(c.replicas) * c.max_qps_per_replica, kTargetQps);
    EXPECT_LT(static_cast<double>(c.replicas - 1) * c.max_qps_per_replica, kTargetQps);
  }
}

TEST_F(BundledTracePlan, GpusAreReplicasTimesTensorParallelism) {
  for (const CandidateResult& c : result_->candidates) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(c.gpus, c.replicas * c.tensor_parallel);
  }
}

TEST_F(BundledTracePlan, CostPerHourIsGpusTimesThePlansPrice) {
  for (const CandidateResult& c : result_->candidates) {
    SCOPED_TRACE(c.name);
    const double price = c.gpu == "H100-SXM" ? kH100Price : kA100Price;
    EXPECT_DOUBLE_EQ(c.price_per_gpu_hour, price);
    EXPECT_DOUBLE_EQ(c.cost_per_hour, static_cast<double>(c.gpus) * price);
  }
}

TEST_F(BundledTracePlan, CostPerMillionOutputTokensIsTheHourlyCostOverTheTargetsTokens) {
  for (const CandidateResult& c : result_->candidates) {
    SCOPED_TRACE(c.name);
    ASSERT_GT(c.at_max.requests_per_s, 0);
    const double tokens_per_request = c.at_max.output_tokens_per_s / c.at_max.requests_per_s;
    const double million_tokens_per_hour = kTargetQps * tokens_per_request * 3600 / 1e6;
    EXPECT_NEAR(c.cost_per_million_output_tokens, c.cost_per_hour / million_tokens_per_hour,
                1e-9 * c.cost_per_million_output_tokens);
  }
}

TEST_F(BundledTracePlan, RanksTheMeetingCandidatesCheapestFirst) {
  const PlanResult& r = *result_;
  std::set<size_t> meeting;
  for (size_t i = 0; i < r.candidates.size(); ++i) {
    if (r.candidates[i].meets_slo) meeting.insert(i);
  }
  EXPECT_EQ(std::set<size_t>(r.ranking.begin(), r.ranking.end()), meeting);
  EXPECT_EQ(r.ranking.size(), meeting.size()) << "a candidate is ranked twice";
  for (size_t k = 1; k < r.ranking.size(); ++k) {
    EXPECT_LE(r.candidates[r.ranking[k - 1]].cost_per_hour,
              r.candidates[r.ranking[k]].cost_per_hour)
        << "rank " << k;
  }
}

TEST_F(BundledTracePlan, MarksExactlyTheUndominatedCandidatesAsPareto) {
  const PlanResult& r = *result_;
  // b dominates a: no worse in cost and p99 TTFT at the target, better in one.
  auto dominates = [](const CandidateResult& b, const CandidateResult& a) {
    const bool no_worse =
        b.cost_per_hour <= a.cost_per_hour && b.at_target.ttft_s.p99 <= a.at_target.ttft_s.p99;
    const bool better =
        b.cost_per_hour < a.cost_per_hour || b.at_target.ttft_s.p99 < a.at_target.ttft_s.p99;
    return no_worse && better;
  };
  int flagged = 0;
  for (const CandidateResult& a : r.candidates) {
    SCOPED_TRACE(a.name);
    if (!a.meets_slo) {
      EXPECT_FALSE(a.pareto);
      continue;
    }
    bool dominated = false;
    for (const CandidateResult& b : r.candidates) {
      if (&a != &b && b.meets_slo && dominates(b, a)) dominated = true;
    }
    EXPECT_EQ(a.pareto, !dominated);
    flagged += a.pareto ? 1 : 0;
  }
  // Ranked cheapest first, then fastest at the target: the first is never dominated.
  ASSERT_FALSE(r.ranking.empty());
  EXPECT_TRUE(r.candidates[r.ranking.front()].pareto);
  EXPECT_GE(flagged, 1);
}

TEST_F(BundledTracePlan, ReportsEachCandidatesLatenciesAtItsFleetsShareOfTheTarget) {
  for (const CandidateResult& c : result_->candidates) {
    if (!c.meets_slo) continue;
    SCOPED_TRACE(c.name);
    // One replica offered target / replicas (the trace time-scaled to that rate), on a
    // probe's requests: a load no higher than the highest that passed.
    const double share_qps = kTargetQps / static_cast<double>(c.replicas);
    ASSERT_LE(share_qps, c.max_qps_per_replica * (1 + 1e-12));
    EXPECT_EQ(c.at_target.requests_total, plan_->probe_requests);
    EXPECT_NEAR(c.at_target.offered_qps, share_qps, 0.1 * share_qps);
    EXPECT_GT(c.at_target.ttft_s.p99, 0);
  }
}

TEST_F(BundledTracePlan, RecommendsTheCheapestCandidate) {
  const PlanResult& r = *result_;
  ASSERT_TRUE(r.recommendation.has_value());
  ASSERT_FALSE(r.ranking.empty());
  EXPECT_EQ(r.recommendation->candidate, r.ranking.front());
}

TEST_F(BundledTracePlan, VerifiesTheRecommendedFleetWithinTheSlos) {
  const PlanResult& r = *result_;
  ASSERT_TRUE(r.recommendation.has_value());
  const Recommendation& rec = *r.recommendation;
  const CandidateResult& c = r.candidates[rec.candidate];
  ASSERT_GT(c.replicas, 1) << "the target should need a fleet behind the router";
  ASSERT_EQ(rec.checks.size(), 1u) << "one scenario, one check";
  const FleetCheck& check = rec.checks.front();
  EXPECT_TRUE(rec.verified) << "the whole-fleet run missed " << check.verdict.binding;
  EXPECT_TRUE(check.verdict.meets);
  // The fleet run served the target load with every replica and met the thresholds.
  EXPECT_GT(check.fleet.requests_completed, 0);
  EXPECT_EQ(check.fleet.requests_completed, check.fleet.requests_total);
  EXPECT_GT(check.fleet.ttft_s.p99, 0);
  EXPECT_LE(check.fleet.ttft_s.p99, kTtftP99);
  EXPECT_GT(check.fleet.e2e_s.p99, 0);
  EXPECT_LE(check.fleet.e2e_s.p99, kE2eP99);
  // Verification may only add replicas (at most three) to the estimate.
  EXPECT_GE(rec.replicas, c.replicas);
  EXPECT_LE(rec.replicas, c.replicas + 3);
  EXPECT_EQ(rec.gpus, rec.replicas * c.tensor_parallel);
  EXPECT_DOUBLE_EQ(rec.cost_per_hour, static_cast<double>(rec.gpus) * c.price_per_gpu_hour);
}

TEST_F(BundledTracePlan, CsvHasOneRowPerCandidateWithItsSizingAndCost) {
  const PlanResult& r = *result_;
  const std::vector<std::string> lines = Lines(PlanCsv(r));
  ASSERT_EQ(lines.size(), r.candidates.size() + 1);
  const std::vector<std::string> header = SplitCsvLine(lines[0]);
  auto column = [&header](const std::string& name) {
    return static_cast<size_t>(std::find(header.begin(), header.end(), name) - header.begin());
  };
  for (size_t i = 0; i < r.candidates.size(); ++i) {
    const CandidateResult& c = r.candidates[i];
    SCOPED_TRACE(c.name);
    const std::vector<std::string> row = SplitCsvLine(lines[i + 1]);
    ASSERT_EQ(row.size(), header.size());
    EXPECT_EQ(row[column("candidate")], c.name);
    EXPECT_EQ(row[column("gpu")], c.gpu);
    EXPECT_EQ(row[column("status")], "found");
    EXPECT_EQ(row[column("replicas")], std::to_string(c.replicas));
    EXPECT_EQ(row[column("gpus")], std::to_string(c.gpus));
    EXPECT_NEAR(std::stod(row[column("cost_per_hour")]), c.cost_per_hour, 1e-5 * c.cost_per_hour);
    EXPECT_EQ(row[column("meets_slo")], "true");
    EXPECT_EQ(row[column("pareto")], c.pareto ? "true" : "false");
  }
}

TEST_F(BundledTracePlan, FormatEndsWithTheVerifiedRecommendation) {
  const std::string text = FormatPlan(*result_, *plan_);
  const CandidateResult& c = result_->candidates[result_->recommendation->candidate];
  EXPECT_THAT(text, HasSubstr("recommendation: " +
                              std::to_string(result_->recommendation->replicas) + " x " + c.name));
  EXPECT_THAT(text, HasSubstr("verified: the whole fleet"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("NOT verified")));
}

TEST_F(BundledTracePlan, ListsEverySloItAppliedTheDefaultStabilityOneIncluded) {
  const std::string text = FormatPlan(*result_, *plan_);
  EXPECT_THAT(text, HasSubstr("SLOs applied:\n  ttft_s p99 <= 2 s\n  e2e_s p99 <= 30 s\n"
                              "  stability: the mean queueing delay of the last quarter"));
  EXPECT_THAT(text, HasSubstr("(on unless slo.stability: false)"));
  EXPECT_THAT(text, HasSubstr("\n  admitted >= 1: the fraction of requests admitted"));
  const YAML::Node json = YAML::Load(PlanJson(*result_, *plan_));
  ASSERT_EQ(json["slo_applied"].size(), 4u);
  EXPECT_EQ(json["slo_applied"][0].as<std::string>(), "ttft_s p99 <= 2 s");
  EXPECT_EQ(json["ranking_rule"].as<std::string>(), kRankingRule);
}

// Three candidates that meet the SLOs at the same cost: the rule decides, and says so.
TEST(PlanRanking, EqualCostsAreBrokenByTtftAtTheTargetThenHeadroomThenOrderAndTheTieIsNamed) {
  PlanResult r;
  auto add = [&r](const char* name, double cost, double qps, double ttft_p99) {
    CandidateResult c;
    c.name = name;
    c.meets_slo = true;
    c.cost_per_hour = cost;
    c.max_qps_per_replica = qps;
    c.at_target.ttft_s.p99 = ttft_p99;
    c.at_max.ttft_s.p99 = 1.0 - ttft_p99;  // ranks by the target's, not the max load's
    r.candidates.push_back(c);
  };
  add("a", 7.9, 10, 0.4);
  add("b", 7.9, 12, 0.4);  // as fast at the target as a, more headroom
  add("c", 7.9, 12, 0.3);  // faster at the target than both
  add("d", 5.0, 1, 3.0);   // cheapest: first whatever else
  add("e", 7.9, 12, 0.3);  // c's twin, listed later
  add("f", 7.9, 20, 0.9);  // the most headroom, the slowest at the target
  RankCandidates(r);
  EXPECT_EQ(r.ranking, (std::vector<size_t>{3, 2, 4, 1, 0, 5}));
  EXPECT_EQ(r.tie_note, "");  // d alone at its cost
  r.candidates[3].meets_slo = false;
  RankCandidates(r);
  EXPECT_EQ(r.ranking, (std::vector<size_t>{2, 4, 1, 0, 5}));
  EXPECT_EQ(r.tie_note,
            "5 candidates cost $7.90/hour (c, e, b, a, f); c ranks first by the plan's candidate "
            "order");
  r.candidates[2].max_qps_per_replica = 13;
  RankCandidates(r);
  EXPECT_THAT(r.tie_note, HasSubstr("c ranks first by its higher max QPS per replica"));
  r.candidates[4].at_target.ttft_s.p99 = 0.35;
  RankCandidates(r);
  EXPECT_THAT(r.tie_note, HasSubstr("c ranks first by its lower p99 TTFT at the target"));
}

TEST(PlanConfigWarnings, AnSloThatLooksLikeMillisecondsIsWarnedAboutWithItsLine) {
  TempDir dir;
  PlanParts parts;
  parts.slo = "{ttft_s: {p99: 2000}, tbt_s: {p99: 0.2}, request: {tpot_s: 50}, attainment: 0.9}";
  const PlanConfig plan = Load(dir, parts);
  ASSERT_EQ(plan.warnings.size(), 2u);
  EXPECT_THAT(plan.warnings[0], HasSubstr("plan.yaml:3: slo.ttft_s.p99: 2000 s is above 600 s; "
                                          "SLOs are in seconds (if you meant 2000 ms, write 2)"));
  EXPECT_THAT(plan.warnings[1], HasSubstr("slo.request.tpot_s: 50 s is above 10 s"));
}

// --- Determinism -------------------------------------------------------------------

TEST(PlanVerification, AFleetRunTheTraceCannotFeedIsNotVerified) {
  // The 300-request vLLM trace at 1,000 QPS: the fleet needs many replicas, and the
  // whole-fleet run gets 300 requests in all, far fewer per replica than a probe's 200.
  TempDir dir;
  PlanParts parts;
  parts.set = std::string("{workload.arrival.process: trace, workload.trace: ") + KVSIM_SOURCE_DIR +
              "/traces/vllm019_sharegpt_rtx4090.csv}";
  parts.target = "{qps: 1000}";
  parts.search = "{initial_qps: 4, tolerance: 0.1, max_qps: 500, probe_requests: 200}";
  parts.gpus = "[H100-SXM]";
  parts.kv_managers = "[{type: paged, block_tokens: 16}]";
  parts.prices = "{H100-SXM: 3.0}";
  parts.slo = "{ttft_s: {p99: 5.0}}";
  const PlanConfig plan = Load(dir, parts);
  const PlanResult r = RunWithJobs(plan, 1);
  ASSERT_TRUE(r.recommendation.has_value());
  const Recommendation& rec = *r.recommendation;
  ASSERT_EQ(rec.checks.size(), 1u);
  const FleetCheck& check = rec.checks.front();
  ASSERT_GT(check.fleet_replicas, 3);
  EXPECT_FALSE(rec.verified);
  EXPECT_TRUE(check.too_few_requests);
  EXPECT_EQ(check.fleet.requests_total, 300);
  EXPECT_EQ(check.fleet_requests_per_replica, 300 / check.fleet_replicas);
  EXPECT_THAT(FormatPlan(r, plan), HasSubstr("NOT verified: the trace held 300 requests"));
}

// The plan of PlanVerification's tests: the quickstart scenario (3,000 requests of the
// Azure conversation trace) with 300-request probes on one candidate, at 5 QPS, which
// one H100 replica carries; `set` replaces the plan's set.
PlanConfig SmallTargetPlan(const TempDir& dir, const std::string& set) {
  PlanParts parts;
  parts.set = set;
  parts.target = "{qps: 5}";
  parts.gpus = "[H100-SXM]";
  parts.kv_managers = "[{type: paged, block_tokens: 16}]";
  parts.prices = "{H100-SXM: 3.0}";
  return Load(dir, parts);
}

TEST(PlanVerification, TheFleetCheckRunsTheScenariosWholeWorkloadNotOneProbesSample) {
  TempDir dir;
  const PlanConfig plan = SmallTargetPlan(dir, "{workload.arrival.process: trace}");
  ASSERT_EQ(plan.probe_requests, 300);
  const PlanResult r = RunWithJobs(plan, 1);
  ASSERT_TRUE(r.recommendation.has_value());
  const FleetCheck& check = r.recommendation->checks.front();
  ASSERT_EQ(check.fleet_replicas, 1);
  // The scenario's workload.max_requests (3,000), not 300 x 1 replica.
  EXPECT_EQ(check.fleet.requests_total, 3000);
  EXPECT_THAT(FormatPlan(r, plan), HasSubstr("(3000 requests, "));
}

TEST(PlanVerification, AScenarioSmallerThanAProbePerReplicaIsCheckedOnAProbePerReplica) {
  TempDir dir;
  const PlanConfig plan =
      SmallTargetPlan(dir, "{workload.arrival.process: trace, workload.max_requests: 100}");
  const PlanResult r = RunWithJobs(plan, 1);
  ASSERT_TRUE(r.recommendation.has_value());
  const FleetCheck& check = r.recommendation->checks.front();
  EXPECT_EQ(check.fleet.requests_total, 300 * check.fleet_replicas);
}

TEST(PlanVerification, ARefusalTheProbesNeverSawIsReportedNotAnsweredWithReplicas) {
  // The trace's one prompt of 8,192 tokens or more is row 5,442: no 300-request probe
  // reaches it; the fleet check of the scenario's first 6,000 rows does, and no replica
  // admits it.
  TempDir dir;
  const PlanConfig plan =
      SmallTargetPlan(dir, "{workload.arrival.process: trace, workload.max_requests: 6000}");
  const PlanResult r = RunWithJobs(plan, 1);
  ASSERT_TRUE(r.recommendation.has_value());
  const Recommendation& rec = *r.recommendation;
  const FleetCheck& check = rec.checks.front();
  EXPECT_FALSE(rec.verified);
  EXPECT_TRUE(check.refused_at_any_load);
  EXPECT_EQ(check.fleet_replicas, r.candidates[rec.candidate].replicas) << "no replica added";
  EXPECT_EQ(rec.replicas, r.candidates[rec.candidate].replicas);
  EXPECT_EQ(check.fleet.requests_rejected, 1);
  EXPECT_THAT(FormatPlan(r, plan),
              HasSubstr("run with 1 replica missed admitted: 1 of 6000 requests (0.02%) has "
                        "prompts reaching max_model_len 8192 and is refused at any load (every "
                        "other SLO was met); raise deployment.max_model_len, or lower "
                        "slo.admitted"));
}

TEST(PlanVerification, ACheaperCandidateIsCheckedWhenTheFirstsFleetCheckAddsReplicas) {
  // Multi-turn sessions at 40 QPS: the H100 fleet's check needs more replicas than its
  // 500-request probes estimated, past the A100 fleet's estimated cost; the A100 fleet is
  // then checked too (and misses), and the recommendation says so.
  TempDir dir;
  PlanParts parts;
  parts.scenario = KVSIM_SOURCE_DIR "/configs/multiturn_sessions.yaml";
  parts.set = "";
  parts.slo = "{ttft_s: {p99: 1.0}, tbt_s: {p99: 0.1}, admitted: 0.95}";
  parts.target = "{qps: 40}";
  parts.search = "{initial_qps: 4, tolerance: 0.05, max_qps: 500, probe_requests: 500}";
  parts.kv_managers = "[{type: paged, block_tokens: 16}]";
  parts.schedulers = "[{type: vllm_v1}]";
  parts.prices = "{H100-SXM: 3.95, A100-80GB: 2.50}";
  const PlanConfig plan = Load(dir, parts);
  const PlanResult r = RunWithJobs(plan, 1);
  ASSERT_TRUE(r.recommendation.has_value());
  const Recommendation& rec = *r.recommendation;
  ASSERT_EQ(r.ranking.size(), 2u);
  const CandidateResult& first = r.candidates[r.ranking[0]];
  const CandidateResult& second = r.candidates[r.ranking[1]];
  ASSERT_GT(rec.replicas, first.replicas) << "the check added replicas";
  ASSERT_LT(second.cost_per_hour, rec.cost_per_hour) << "so the second's estimate undercuts it";
  ASSERT_EQ(rec.passed_over.size(), 1u);
  EXPECT_TRUE(rec.verified);
  EXPECT_EQ(rec.candidate, r.ranking[0]);
  EXPECT_EQ(rec.passed_over.front(), second.name + ": not verified in its fleet check");
  EXPECT_THAT(FormatPlan(r, plan), HasSubstr("  passed over: " + second.name));
}

TEST(PlanDeterminism, TwoRunsOfThePlanGiveIdenticalCsv) {
  TempDir dir;
  const PlanConfig plan = Load(dir, PlanParts{});
  EXPECT_EQ(PlanCsv(RunWithJobs(plan, 1)), PlanCsv(RunWithJobs(plan, 1)));
}

TEST(PlanDeterminism, TheParallelPlanEqualsTheSerialOne) {
  TempDir dir;
  const PlanConfig plan = Load(dir, PlanParts{});
  const PlanResult serial = RunWithJobs(plan, 1);
  ASSERT_TRUE(serial.recommendation.has_value());
  for (int jobs : {2, 4}) {
    SCOPED_TRACE(jobs);
    const PlanResult parallel = RunWithJobs(plan, jobs);
    EXPECT_EQ(PlanCsv(parallel), PlanCsv(serial));
    EXPECT_EQ(parallel.ranking, serial.ranking);
    EXPECT_EQ(parallel.simulations, serial.simulations);
    ASSERT_TRUE(parallel.recommendation.has_value());
    const Recommendation &p = *parallel.recommendation, &s = *serial.recommendation;
    EXPECT_EQ(p.candidate, s.candidate);
    EXPECT_EQ(p.replicas, s.replicas);
    EXPECT_EQ(p.gpus, s.gpus);
    EXPECT_EQ(p.cost_per_hour, s.cost_per_hour);
    EXPECT_EQ(p.verified, s.verified);
    EXPECT_EQ(p.Binding().fleet.ttft_s.p99, s.Binding().fleet.ttft_s.p99);
    EXPECT_EQ(p.Binding().fleet.e2e_s.p99, s.Binding().fleet.e2e_s.p99);
  }
}

// --- Plan-file errors --------------------------------------------------------------

TEST(PlanFileErrors, AnEmptyCandidateListNamesItsKeyPath) {
  for (const char* list : {"gpus", "tensor_parallel", "kv_managers", "schedulers"}) {
    SCOPED_TRACE(list);
    TempDir dir;
    PlanParts parts;
    const std::string key = list;
    if (key == "gpus") parts.gpus = "[]";
    if (key == "tensor_parallel") parts.tensor_parallel = "[]";
    if (key == "kv_managers") parts.kv_managers = "[]";
    if (key == "schedulers") parts.schedulers = "[]";
    const std::string path = dir.Write("plan.yaml", PlanYaml(parts));
    const std::string message = InputErrorMessage([&] { LoadPlan(path); });
    EXPECT_THAT(message, HasSubstr(path));
    EXPECT_THAT(message, HasSubstr("candidates." + key + ": expected a non-empty list"));
  }
}

TEST(PlanFileErrors, AMissingCandidateListNamesItsKeyPath) {
  TempDir dir;
  PlanParts parts;
  parts.schedulers = "";
  const std::string path = dir.Write("plan.yaml", PlanYaml(parts));
  EXPECT_THAT(InputErrorMessage([&] { LoadPlan(path); }), HasSubstr("candidates.schedulers"));
}

TEST(PlanFileErrors, AnUnknownTopLevelKeyIsNamed) {
  TempDir dir;
  PlanParts parts;
  parts.extra = "budget_usd: 100\n";
  const std::string path = dir.Write("plan.yaml", PlanYaml(parts));
  const std::string message = InputErrorMessage([&] { LoadPlan(path); });
  EXPECT_THAT(message, HasSubstr(path));
  EXPECT_THAT(message, HasSubstr("budget_usd: unknown key"));
}

TEST(PlanFileErrors, AnUnknownKeyInsideTheSloIsNamedWithItsPath) {
  TempDir dir;
  PlanParts parts;
  parts.slo = "{ttft_s: {p95: 2.0}}";
  const std::string path = dir.Write("plan.yaml", PlanYaml(parts));
  EXPECT_THAT(InputErrorMessage([&] { LoadPlan(path); }), HasSubstr("slo.ttft_s.p95"));
}

TEST(PlanFileErrors, ASetKeyEveryCandidateReplacesIsAnErrorNotIgnored) {
  TempDir dir;
  PlanParts parts;
  parts.set = "{workload.arrival.process: trace, gpu: L40S}";
  const std::string path = dir.Write("plan.yaml", PlanYaml(parts));
  EXPECT_THAT(InputErrorMessage([&] { LoadPlan(path); }),
              HasSubstr(path + ":2: set: gpu: every candidate sets it (candidates.gpus)"));
  // Inside a mapping too, and in a plan of several scenarios' common set.
  parts.set = "{kv_cache: {type: static, block_tokens: 32}}";
  dir.Write("plan.yaml", PlanYaml(parts));
  EXPECT_THAT(InputErrorMessage([&] { LoadPlan(path); }),
              HasSubstr("set: kv_cache.type: every candidate sets it (candidates.kv_managers)"));
  parts.set = "{workload: {arrival: {rate_qps: 3}}}";
  dir.Write("plan.yaml", PlanYaml(parts));
  EXPECT_THAT(InputErrorMessage([&] { LoadPlan(path); }),
              HasSubstr("set: workload.arrival.rate_qps: every candidate sets it"));
  // Block style as well as flow style.
  parts.set = "";
  parts.extra = "set:\n  deployment:\n    tensor_parallel: 8\n";
  dir.Write("plan.yaml", PlanYaml(parts));
  EXPECT_THAT(InputErrorMessage([&] { LoadPlan(path); }),
              HasSubstr("set: deployment.tensor_parallel: every candidate sets it"));
  parts.extra = "";
  // What no candidate sets is applied.
  parts.set = "{workload.arrival.process: trace, kv_cache.block_tokens: 32}";
  dir.Write("plan.yaml", PlanYaml(parts));
  EXPECT_EQ(LoadPlan(path).scenarios.size(), 1u);
}

TEST(PlanFileErrors, AMissingTargetIsReported) {
  TempDir dir;
  PlanParts parts;
  parts.target = "";
  const std::string path = dir.Write("plan.yaml", PlanYaml(parts));
  const std::string message = InputErrorMessage([&] { LoadPlan(path); });
  EXPECT_THAT(message, HasSubstr("target.qps"));
  EXPECT_THAT(message, HasSubstr("target.trace_peak_window_s"));
}

TEST(PlanFileErrors, BothTargetRateAndPeakWindowAreRejected) {
  TempDir dir;
  PlanParts parts;
  parts.target = "{qps: 10, trace_peak_window_s: 60}";
  const std::string path = dir.Write("plan.yaml", PlanYaml(parts));
  const std::string message = InputErrorMessage([&] { LoadPlan(path); });
  EXPECT_THAT(message, HasSubstr("target.qps: give exactly one of target.qps and "
                                 "target.trace_peak_window_s"));
}

TEST(PlanFileErrors, APlanWithoutAnyObjectiveIsRejected) {
  TempDir dir;
  PlanParts parts;
  parts.slo = "{stability: false}";
  const std::string path = dir.Write("plan.yaml", PlanYaml(parts));
  const std::string message = InputErrorMessage([&] { LoadPlan(path); });
  EXPECT_THAT(message, HasSubstr(path));
  EXPECT_THAT(message, HasSubstr("slo: no objective given"));
}

TEST(PlanFileErrors, AnUnknownKvManagerTypeNamesTheListItem) {
  TempDir dir;
  PlanParts parts;
  parts.kv_managers = "[{type: paged}, {type: radix}]";
  const std::string path = dir.Write("plan.yaml", PlanYaml(parts));
  const std::string message = InputErrorMessage([&] { LoadPlan(path); });
  EXPECT_THAT(message, HasSubstr("candidates.kv_managers[1].type: unknown value 'radix'"));
  EXPECT_THAT(message, HasSubstr("static, paged, vattention"));
}

TEST(PlanFileErrors, AnUnknownSchedulerTypeNamesTheListItem) {
  TempDir dir;
  PlanParts parts;
  parts.schedulers = "[{type: orca}]";
  const std::string path = dir.Write("plan.yaml", PlanYaml(parts));
  EXPECT_THAT(InputErrorMessage([&] { LoadPlan(path); }),
              HasSubstr("candidates.schedulers[0].type: unknown value 'orca'"));
}

TEST(PlanFile, AVllmV1SchedulerCandidateIsLabelledWithItsTokenBudget) {
  TempDir dir;
  PlanParts parts;
  parts.schedulers = "[{type: vllm_v1, max_num_batched_tokens: 8192, max_num_seqs: 128}]";
  const PlanConfig plan = Load(dir, parts);
  ASSERT_EQ(plan.schedulers.size(), 1u);
  EXPECT_EQ(plan.schedulers[0].Label(), "vllm_v1-8192tokens-128seqs");
}

TEST(PlanFileErrors, AMissingScenarioKeyIsReported) {
  TempDir dir;
  PlanParts parts;
  parts.scenario = "";
  const std::string path = dir.Write("plan.yaml", PlanYaml(parts));
  EXPECT_THAT(InputErrorMessage([&] { LoadPlan(path); }), HasSubstr("scenario: required"));
}

// A key the plan's `set:` puts into the scenario is the plan's: its error names the
// plan's line, and the scenario file it was applied to.
TEST(PlanFileErrors, AMisspeltKeyInThePlansSetNamesThePlansLine) {
  TempDir dir;
  PlanParts parts;
  parts.set = "{workload.arrival.proces: trace}";
  const std::string path = dir.Write("plan.yaml", PlanYaml(parts));
  const PlanConfig plan = LoadPlan(path);
  EXPECT_THAT(InputErrorMessage([&] { RunWithJobs(plan, 1); }),
              HasSubstr(path + ":2: set (applied to " + kQuickstart +
                        "): workload.arrival.proces: unknown key"));
}

TEST(PlanFileErrors, AMissingScenarioFileNamesTheFileAndTheScenarioKey) {
  TempDir dir;
  PlanParts parts;
  parts.scenario = dir.PathOf("absent.yaml");
  const std::string path = dir.Write("plan.yaml", PlanYaml(parts));
  const std::string message = InputErrorMessage([&] { LoadPlan(path); });
  EXPECT_THAT(message, HasSubstr(dir.PathOf("absent.yaml")));
  // Like every other plan error: "plan.yaml:line: scenario: ...".
  EXPECT_THAT(message, HasSubstr(path));
  EXPECT_THAT(message, HasSubstr("scenario: "));
}

// A key written with no value (`key:`, `~`, `null`) used to read as absent: an SLO
// limit went unchecked, a scenario took the plan's SLOs. Each names its key and line.
TEST(PlanFileErrors, AnSloLimitWithNoValueIsAnErrorNamingItsKeyPathAndLine) {
  const struct {
    const char* slo;  // `slo:` is line 3
    const char* message;
  } cases[] = {
      {"\n  ttft_s:\n    p99:\n  e2e_s: {p99: 30}",
       ":5: slo.ttft_s.p99: expected a number of seconds, got no value"},
      {"{ttft_s: {p50: 1.0, p90: ~}}", ":3: slo.ttft_s.p90: expected a number of seconds"},
      {"{tbt_s: {p99: null}}", ":3: slo.tbt_s.p99: expected a number of seconds, got no value"},
      {"{attainment: ~, request: {ttft_s: 1.0}}",
       ":3: slo.attainment: expected a number, got no value"},
      {"{attainment: 0.9, request: {ttft_s: 1.0, tpot_s: ~}}",
       ":3: slo.request.tpot_s: expected a number of seconds, got no value"},
      {"\n  attainment: 0.9\n  request:\n    e2e_s:\n    ttft_s: 1.0",
       ":6: slo.request.e2e_s: expected a number of seconds, got no value"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.slo);
    TempDir dir;
    PlanParts parts;
    parts.slo = c.slo;
    const std::string path = dir.Write("plan.yaml", PlanYaml(parts));
    EXPECT_THAT(InputErrorMessage([&] { LoadPlan(path); }), HasSubstr(path + c.message));
  }
}

TEST(PlanFileErrors, AScenarioTargetSloOrCandidatesWithNoValueIsAnErrorNamingItsLine) {
  PlanParts scenario, slo, target, candidates, combine;
  scenario.scenario = "~";
  slo.slo = "null";
  target.target = "~";
  candidates.gpus = candidates.tensor_parallel = candidates.kv_managers = candidates.schedulers =
      "";
  combine.extra = "combine:\n";  // refused in a plan of one scenario whatever its value
  const struct {
    PlanParts parts;
    const char* message;
  } cases[] = {
      {scenario, ":1: scenario: expected the path of a scenario config, got no value"},
      {slo, ":3: slo: expected a mapping of service-level objectives, got no value"},
      {target, ":4: target: expected a mapping {qps} or {trace_peak_window_s}, got no value"},
      {candidates,
       ":6: candidates: expected a mapping of gpus, tensor_parallel, kv_managers and schedulers, "
       "got no value"},
      {combine, ":12: combine: applies to a plan with several scenarios"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    TempDir dir;
    const std::string path = dir.Write("plan.yaml", PlanYaml(c.parts));
    EXPECT_THAT(InputErrorMessage([&] { LoadPlan(path); }), HasSubstr(path + c.message));
  }
}

TEST(PlanFileErrors, AListedScenarioWithNoSloValueIsAnErrorNotThePlansSlo) {
  TempDir dir;
  const std::string path = dir.Write("plan.yaml", std::string("slo: {ttft_s: {p99: 2.0}}\n"  // 1
                                                              "scenarios:\n"                 // 2
                                                              "  - name: a\n"                // 3
                                                              "    scenario: ") +
                                                      kQuickstart +                // 4
                                                      "\n    target: {qps: 10}\n"  // 5
                                                      "    slo:\n"                 // 6
                                                      "candidates:\n"
                                                      "  gpus: [H100-SXM]\n"
                                                      "  tensor_parallel: [1]\n"
                                                      "  kv_managers: [{type: static}]\n"
                                                      "  schedulers: [{type: vllm}]\n");
  EXPECT_THAT(InputErrorMessage([&] { LoadPlan(path); }),
              HasSubstr(path + ":6: scenarios[0].slo: expected a mapping of service-level "
                               "objectives, got no value"));
}

TEST(PlanFileErrors, AListedScenarioNameOrCombineWithNoValueIsAnErrorNamingItsLine) {
  TempDir dir;
  const std::string entries = std::string("slo: {ttft_s: {p99: 2.0}}\n") +  // 1
                              "scenarios:\n" +                              // 2
                              "  - {name: ~, scenario: " + kQuickstart +    // 3
                              ", target: {qps: 10}}\n" +
                              "  - {name: b, scenario: " + kQuickstart +  // 4
                              ", target: {qps: 20}}\n";
  const std::string candidates =
      "candidates: {gpus: [H100-SXM], tensor_parallel: [1], kv_managers: [{type: static}], "
      "schedulers: [{type: vllm}]}\n";
  const std::string unnamed = dir.Write("unnamed.yaml", entries + candidates);
  EXPECT_THAT(InputErrorMessage([&] { LoadPlan(unnamed); }),
              HasSubstr(unnamed + ":3: scenarios[0].name: expected a name, got no value"));
  std::string named = entries;
  named.replace(named.find("name: ~"), 7, "name: a");
  const std::string combine = dir.Write("combine.yaml", named + candidates + "combine:\n");
  EXPECT_THAT(InputErrorMessage([&] { LoadPlan(combine); }),
              HasSubstr(combine + ":6: combine: expected one of one_fleet, separate_fleets, got "
                                  "no value"));
}

// --- Infeasible candidates and SLOs ------------------------------------------------

// A typo in a card name used to read as "infeasible, no candidate meets the SLOs".
TEST(InfeasiblePlans, AnUnknownGpuCardIsAnErrorNamingThePlanLineAndTheCards) {
  TempDir dir;
  PlanParts parts;
  parts.gpus = "[H100-SXM, H100]";
  const PlanConfig plan = Load(dir, parts);
  try {
    RunWithJobs(plan, 1);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("plan.yaml:7: candidates.gpus[1]: unknown gpu card 'H100'"));
    EXPECT_THAT(e.what(), HasSubstr("H100-SXM"));  // the cards there are
  }
}

// So did a misspelt price, which kept the card's own price without a word.
TEST(InfeasiblePlans, APriceForAGpuThatIsNoCardIsAnErrorNamingThePlanLine) {
  TempDir dir;
  PlanParts parts;
  parts.gpus = "[H100-SXM]";
  parts.prices = "{H100-SXX: 3.0}";
  const PlanConfig plan = Load(dir, parts);
  const std::string message = InputErrorMessage([&] { RunWithJobs(plan, 1); });
  EXPECT_THAT(message, HasSubstr("plan.yaml:11: prices.H100-SXX: no GPU card is named 'H100-SXX'"));
  EXPECT_THAT(message, HasSubstr("H100-SXM"));  // the candidates' cards
}

// A card priced 0 (the RTX cards: no public price) beside a priced one would rank as
// free; the plan must state its price, and may state 0 for hardware already paid for.
TEST(InfeasiblePlans, ACardPricedZeroBesideAnotherNeedsItsPriceInThePlan) {
  TempDir dir;
  PlanParts parts;
  parts.gpus = "[H100-SXM, RTX-4090]";
  parts.prices = "{H100-SXM: 3.0}";
  const std::string message = InputErrorMessage([&] { RunWithJobs(Load(dir, parts), 1); });
  EXPECT_THAT(message, HasSubstr("plan.yaml:"));
  EXPECT_THAT(message, HasSubstr("candidates.gpus[1]"));
  EXPECT_THAT(message, HasSubstr("the RTX-4090 card's price_per_hour is 0"));
  EXPECT_THAT(message, HasSubstr("rank as free against H100-SXM"));

  parts.prices = "{H100-SXM: 3.0, RTX-4090: 0}";  // stated: paid for
  parts.kv_managers = "[{type: paged, block_tokens: 16}]";
  parts.extra = "verify: false\n";
  const PlanResult r = RunWithJobs(Load(dir, parts), 1);
  ASSERT_EQ(r.candidates.size(), 2u);
  EXPECT_EQ(r.candidates[1].price_per_gpu_hour, 0.0);
}

TEST(InfeasiblePlans, ACardPricedZeroAloneIsRankedByItsOwnFleets) {
  TempDir dir;
  PlanParts parts;
  parts.gpus = "[RTX-4090]";
  parts.prices = "";
  parts.kv_managers = "[{type: paged, block_tokens: 16}]";
  parts.extra = "verify: false\n";
  const PlanResult r = RunWithJobs(Load(dir, parts), 1);
  ASSERT_EQ(r.candidates.size(), 1u);
  EXPECT_EQ(r.candidates[0].price_per_gpu_hour, 0.0);
}

TEST(InfeasiblePlans, APriceMayNameACardThatIsNotACandidate) {
  TempDir dir;
  PlanParts parts;
  parts.gpus = "[H100-SXM]";
  parts.kv_managers = "[{type: paged, block_tokens: 16}]";
  parts.prices = "{H100-SXM: 3.0, A100-80GB: 2.0}";
  parts.extra = "verify: false\n";
  const PlanResult r = RunWithJobs(Load(dir, parts), 1);
  ASSERT_EQ(r.candidates.size(), 1u);
  EXPECT_TRUE(r.candidates[0].feasible) << r.candidates[0].note;
}

// A trace that cannot be read fails every candidate alike: the plan's error, not
// "no candidate meets the SLOs".
TEST(InfeasiblePlans, AScenarioWhoseTraceCannotBeReadIsAnErrorNamingTheTraceLine) {
  TempDir dir;
  const std::string trace = dir.Write(
      "bad.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n0.5,100,10\n1.0,abc,10\n");
  const std::string scenario = dir.Write("scenario.yaml", fmt::format(R"(model: Llama-3-8B
gpu: H100-SXM
workload: {{trace: {}, arrival: {{process: trace}}}}
)",
                                                                      trace));
  PlanParts parts;
  parts.scenario = scenario;
  parts.set = "";
  parts.gpus = "[H100-SXM]";
  parts.kv_managers = "[{type: paged, block_tokens: 16}]";
  const PlanConfig plan = Load(dir, parts);
  EXPECT_THAT(InputErrorMessage([&] { RunWithJobs(plan, 1); }), HasSubstr(trace + ":3:"));
  std::filesystem::remove(trace);
  EXPECT_THAT(InputErrorMessage([&] { RunWithJobs(plan, 1); }),
              HasSubstr(trace + ":1: cannot open trace file"));
}

// With a peak-window target the whole trace is read once, as recorded; a bad row
// past the probes' requests is the plan's error too.
TEST(InfeasiblePlans, APeakWindowTargetNamesABadTraceRowAnywhereInTheTrace) {
  TempDir dir;
  std::string rows = "arrived_at,num_prefill_tokens,num_decode_tokens\n";
  for (int i = 0; i < 50; ++i) rows += fmt::format("{},100,10\n", 0.5 * i);
  rows += "30.0,abc,10\n";  // line 52
  const std::string trace = dir.Write("late_bad.csv", rows);
  const std::string scenario = dir.Write("scenario.yaml", fmt::format(R"(model: Llama-3-8B
gpu: H100-SXM
workload: {{trace: {}, arrival: {{process: trace}}}}
)",
                                                                      trace));
  PlanParts parts;
  parts.scenario = scenario;
  parts.set = "";
  parts.target = "{trace_peak_window_s: 10}";
  parts.search = "{initial_qps: 4, tolerance: 0.2, max_qps: 500, probe_requests: 20}";
  parts.gpus = "[H100-SXM]";
  parts.kv_managers = "[{type: paged, block_tokens: 16}]";
  const PlanConfig plan = Load(dir, parts);
  EXPECT_THAT(InputErrorMessage([&] { RunWithJobs(plan, 1); }), HasSubstr(trace + ":52:"));
  // The peak read stops at workload.max_requests (30 rows, 14.5 s of arrivals); the
  // probes read 80, past the bad row, and the plan reads them before any search.
  parts.set = "{workload.max_requests: 30}";
  parts.search = "{initial_qps: 4, tolerance: 0.2, max_qps: 500, probe_requests: 80}";
  const PlanConfig limited = Load(dir, parts);
  EXPECT_THAT(InputErrorMessage([&] { RunWithJobs(limited, 1); }), HasSubstr(trace + ":52:"));
}

TEST(InfeasiblePlans, ACandidateThatCannotBeBuiltIsInfeasibleWithItsReasonInTheCsv) {
  TempDir dir;
  PlanParts parts;
  parts.gpus = "[H100-SXM]";
  parts.tensor_parallel = "[1, 3]";  // Llama-3-8B's 8 KV heads do not split 3 ways
  parts.kv_managers = "[{type: paged, block_tokens: 16}]";
  const PlanConfig plan = Load(dir, parts);
  const PlanResult r = RunWithJobs(plan, 2);
  ASSERT_EQ(r.candidates.size(), 2u);
  const CandidateResult& tp3 = r.candidates[1];
  EXPECT_FALSE(tp3.feasible);
  EXPECT_FALSE(tp3.meets_slo);
  EXPECT_FALSE(tp3.note.empty());
  EXPECT_EQ(r.ranking, std::vector<size_t>{0});

  const std::vector<std::string> lines = Lines(PlanCsv(r));
  ASSERT_EQ(lines.size(), 3u);
  const std::vector<std::string> header = SplitCsvLine(lines[0]);
  const std::vector<std::string> row = SplitCsvLine(lines[2]);
  ASSERT_EQ(row.size(), header.size());
  auto cell = [&](const std::string& name) {
    return row[static_cast<size_t>(std::find(header.begin(), header.end(), name) - header.begin())];
  };
  EXPECT_EQ(cell("status"), "infeasible");
  EXPECT_EQ(cell("note"), tp3.note);
  // No sizing exists for it: empty cells, not zeros that read as a free fleet.
  for (const char* name :
       {"max_qps_per_replica", "replicas", "gpus", "cost_per_hour", "ttft_p99_s"}) {
    EXPECT_EQ(cell(name), "") << name;
  }
  EXPECT_THAT(FormatPlan(r, plan), HasSubstr("infeasible: " + tp3.note));
}

TEST(InfeasiblePlans, AnUnreachableSloGivesNoRecommendation) {
  TempDir dir;
  PlanParts parts;
  parts.slo = "{ttft_s: {p99: 1.0e-6}}";
  const PlanConfig plan = Load(dir, parts);
  const PlanResult r = RunWithJobs(plan, 2);
  ASSERT_EQ(r.candidates.size(), 4u);
  for (const CandidateResult& c : r.candidates) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(c.feasible) << c.note;
    EXPECT_FALSE(c.meets_slo);
    EXPECT_FALSE(c.pareto);
    EXPECT_EQ(kSearchStatuses.Name(c.search.status), "no_load_meets");
    EXPECT_EQ(c.max_qps_per_replica, 0);
    EXPECT_EQ(c.replicas, 0);
    EXPECT_EQ(c.search.binding, "ttft_s.p99");
    EXPECT_THAT(c.note, HasSubstr("no load meets the SLOs"));
  }
  EXPECT_TRUE(r.ranking.empty());
  EXPECT_FALSE(r.recommendation.has_value());
  for (const std::string& row : Lines(PlanCsv(r))) {
    if (row.starts_with("candidate,")) continue;
    EXPECT_THAT(row, HasSubstr(",no_load_meets,"));
  }
  EXPECT_THAT(FormatPlan(r, plan), HasSubstr("recommendation: infeasible"));
  const YAML::Node json = YAML::Load(PlanJson(r, plan));
  ASSERT_TRUE(json["recommendation"].IsScalar());
  EXPECT_THAT(json["recommendation"].as<std::string>(), HasSubstr("infeasible"));
}

// --- Peak-window targets -----------------------------------------------------------

// Arrival times of the first `rows` rows of the Azure trace, in nanoseconds since the
// first row, parsed here independently of kvsim's trace reader.
std::vector<int64_t> AzureArrivalsNs(const std::string& path, size_t rows) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  std::vector<int64_t> arrivals;
  int64_t first = 0;
  while (arrivals.size() < rows && std::getline(in, line)) {
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    char fraction[16] = {};
    EXPECT_EQ(std::sscanf(line.c_str(), "%d-%d-%d %d:%d:%d.%15[0-9]", &year, &month, &day, &hour,
                          &minute, &second, fraction),
              7)
        << line;
    std::string nanos = fraction;
    nanos.resize(9, '0');
    const std::chrono::sys_days date{std::chrono::year(year) / month / day};
    const int64_t t = (static_cast<int64_t>(date.time_since_epoch().count()) * 86400 + hour * 3600 +
                       minute * 60 + second) *
                          1'000'000'000 +
                      std::stoll(nanos);
    if (arrivals.empty()) first = t;
    arrivals.push_back(t - first);
  }
  return arrivals;
}

// The most arrivals in any window (t - window, t] ending at an arrival.
size_t PeakCount(const std::vector<int64_t>& arrivals, int64_t window_ns) {
  size_t peak = 0, begin = 0;
  for (size_t end = 0; end < arrivals.size(); ++end) {
    while (arrivals[begin] <= arrivals[end] - window_ns) ++begin;
    peak = std::max(peak, end - begin + 1);
  }
  return peak;
}

TEST(PlanCandidates, ACardGivenAsAPathIsNamedAsTheCardNamesItselfAndListedOnlyOnce) {
  TempDir dir;
  PlanParts parts;
  const std::string path = KVSIM_SOURCE_DIR "/models/gpu/H200.yaml";
  parts.gpus = "[" + path + "]";
  parts.prices = "{H200: 3.5}";
  parts.kv_managers = "[{type: paged, block_tokens: 16}]";
  parts.search = "{initial_qps: 4, tolerance: 0.5, max_qps: 500, probe_requests: 100}";
  parts.extra = "verify: false\n";
  const PlanResult r = RunWithJobs(Load(dir, parts), 1);
  ASSERT_EQ(r.candidates.size(), 1u);
  EXPECT_EQ(r.candidates[0].name, "H200/tp1/paged16/vllm-256seqs");
  EXPECT_EQ(r.candidates[0].gpu, path);  // what the scenario is given

  parts.gpus = "[H200, " + path + "]";
  const PlanConfig twice = Load(dir, parts);
  const std::string message = InputErrorMessage([&] { RunWithJobs(twice, 1); });
  EXPECT_THAT(message, HasSubstr(":7: candidates.gpus[1]: names a card called H200, as "));
  EXPECT_THAT(message, HasSubstr(":7: candidates.gpus[0] does: candidates and prices go by a "
                                 "card's name"));
  EXPECT_EQ(message.find("candidates.gpus[1]"), message.rfind("candidates.gpus[1]"))
      << "the card's place once: " << message;
}

TEST(PlanCandidates, ACardPathNamingAnotherCardFromAnotherScenariosFolderIsAnError) {
  // card.yaml beside each scenario: the H100-SXM card renamed CardA in a/, CardB in b/.
  TempDir dir;
  const std::string card = ReadFile(KVSIM_SOURCE_DIR "/models/gpu/H100-SXM.yaml");
  const std::string scenario = std::string("model: Llama-3-8B\ngpu: H100-SXM\nworkload: {trace: ") +
                               KVSIM_SOURCE_DIR +
                               "/traces/AzureLLMInferenceTrace_conv.csv, max_requests: 50}\n";
  for (const char* folder : {"a", "b"}) {
    fs::create_directories(dir.PathOf(folder));
    std::string renamed = card;
    renamed.replace(renamed.find("name: H100-SXM"), 14,
                    std::string("name: Card") + (folder[0] == 'a' ? "A" : "B"));
    dir.Write(std::string(folder) + "/card.yaml", renamed);
    dir.Write(std::string(folder) + "/scenario.yaml", scenario);
  }
  const std::string path =
      dir.Write("plan.yaml",
                "slo: {ttft_s: {p99: 2.0}}\n"
                "scenarios:\n"
                "  - {name: a, scenario: a/scenario.yaml, target: {qps: 1}}\n"
                "  - {name: b, scenario: b/scenario.yaml, target: {qps: 1}}\n"
                "combine: one_fleet\n"
                "candidates: {gpus: [card.yaml], tensor_parallel: [1], kv_managers: [{type: "
                "static}], schedulers: [{type: vllm}]}\n"
                "prices: {CardA: 1, CardB: 1}\n");
  const PlanConfig plan = LoadPlan(path);
  EXPECT_THAT(InputErrorMessage([&] { RunWithJobs(plan, 1); }),
              HasSubstr(":6: candidates.gpus[0]: is the CardA card for scenario a but the CardB "
                        "card for scenario b"));
}

TEST(PeakWindowTarget, AWindowLongerThanTheTraceIsAnError) {
  TempDir dir;
  PlanParts parts;
  parts.set = "{workload.arrival.process: trace, workload.max_requests: 100}";
  parts.target = "{trace_peak_window_s: 1e6}";
  parts.gpus = "[H100-SXM]";
  const PlanConfig plan = Load(dir, parts);
  const std::string message = InputErrorMessage([&] { RunWithJobs(plan, 1); });
  EXPECT_THAT(message, HasSubstr("target.trace_peak_window_s: 1e+06 s is longer than the trace"));
}

TEST(PeakWindowTarget, IsThePeakArrivalCountInAnyWindowOverTheWindow) {
  constexpr size_t kRows = 2000;
  constexpr double kWindowS = 60;
  TempDir dir;
  PlanParts parts;
  parts.set = "{workload.arrival.process: trace, workload.max_requests: 2000}";
  parts.target = "{trace_peak_window_s: 60}";
  parts.gpus = "[H100-SXM]";
  parts.kv_managers = "[{type: paged, block_tokens: 16}]";
  parts.search = "{initial_qps: 4, tolerance: 0.2, max_qps: 500, probe_requests: 300}";
  parts.extra = "verify: false\n";
  const PlanConfig plan = Load(dir, parts);
  const PlanResult r = RunWithJobs(plan, 1);

  const std::vector<int64_t> arrivals = AzureArrivalsNs(kTrace, kRows);
  ASSERT_EQ(arrivals.size(), kRows);
  const size_t peak = PeakCount(arrivals, static_cast<int64_t>(kWindowS * 1e9));
  EXPECT_DOUBLE_EQ(r.target_qps.front(), static_cast<double>(peak) / kWindowS);

  const double mean_qps =
      static_cast<double>(kRows - 1) / (static_cast<double>(arrivals.back()) * 1e-9);
  EXPECT_GE(r.target_qps.front(), mean_qps);

  // The candidate is sized for that target.
  ASSERT_EQ(r.candidates.size(), 1u);
  const CandidateResult& c = r.candidates[0];
  ASSERT_TRUE(c.meets_slo) << c.note;
  EXPECT_EQ(c.replicas,
            static_cast<int64_t>(std::ceil(r.target_qps.front() / c.max_qps_per_replica)));
  ASSERT_TRUE(r.recommendation.has_value());
  EXPECT_FALSE(r.recommendation->verified) << "verify: false runs no fleet";
  EXPECT_TRUE(r.recommendation->checks.empty());
  EXPECT_THAT(FormatPlan(r, plan), HasSubstr(", not verified (verify: false)"));
}

TEST(PeakWindowTarget, ATraceArrivalScenarioIsSizedAsASteadyLoadAtThePeakRate) {
  // The trace time-scaled to each probe's rate would carry its bursts on top of a target
  // that is already its busiest window: the probes run Poisson arrivals instead, as a
  // plan with that rate as its target and Poisson arrivals does, probe for probe.
  TempDir dir;
  PlanParts parts;
  parts.set = "{workload.arrival.process: trace, workload.max_requests: 2000}";
  parts.target = "{trace_peak_window_s: 60}";
  parts.gpus = "[H100-SXM]";
  parts.kv_managers = "[{type: paged, block_tokens: 16}]";
  parts.search = "{initial_qps: 4, tolerance: 0.2, max_qps: 500, probe_requests: 300}";
  parts.extra = "verify: false\n";
  const PlanConfig peak_plan = Load(dir, parts);
  const PlanResult peak = RunWithJobs(peak_plan, 1);
  ASSERT_TRUE(peak.candidates[0].meets_slo) << peak.candidates[0].note;
  EXPECT_THAT(FormatPlan(peak, peak_plan),
              HasSubstr("(the trace's busiest 60 s as recorded, sized as a steady load"));
  EXPECT_THAT(PlanJson(peak, peak_plan), HasSubstr("\"arrival_process\": \"poisson\""));

  parts.set = "{workload.arrival.process: poisson, workload.max_requests: 2000}";
  parts.target = fmt::format("{{qps: {}}}", peak.target_qps.front());
  const PlanResult steady = RunWithJobs(Load(dir, parts), 1);
  ASSERT_EQ(steady.candidates[0].search.steps.size(), peak.candidates[0].search.steps.size());
  EXPECT_EQ(steady.candidates[0].max_qps_per_replica, peak.candidates[0].max_qps_per_replica);
  EXPECT_EQ(steady.candidates[0].replicas, peak.candidates[0].replicas);

  // The same trace time-scaled (target.qps with trace arrivals) probes other loads.
  parts.set = "{workload.arrival.process: trace, workload.max_requests: 2000}";
  const PlanResult bursty = RunWithJobs(Load(dir, parts), 1);
  EXPECT_NE(bursty.candidates[0].max_qps_per_replica, peak.candidates[0].max_qps_per_replica);
}

TEST(PeakWindowTarget, ATraceWithoutArrivalTimesIsThisTargetsErrorNotTheArrivalProcesss) {
  TempDir dir;
  dir.Write("lengths.csv", "n_in,n_out\n100,20\n200,30\n300,40\n");
  PlanParts parts;
  parts.set = fmt::format(
      "{{workload.trace: {}, workload.format: csv, workload.columns: {{prompt_tokens: n_in, "
      "output_tokens: n_out}}, workload.arrival.process: poisson}}",
      dir.PathOf("lengths.csv"));
  parts.target = "{trace_peak_window_s: 60}";
  parts.gpus = "[H100-SXM]";
  const PlanConfig plan = Load(dir, parts);
  const std::string message = InputErrorMessage([&] { RunWithJobs(plan, 1); });
  EXPECT_THAT(message, HasSubstr("target.trace_peak_window_s: the peak is found in the "
                                 "scenario's trace as recorded, which cannot be read with its "
                                 "arrival times ("));
  EXPECT_THAT(message, HasSubstr("give target.qps"));
}

// A candidate that meets the SLOs at the search ceiling has more capacity than the
// search saw: its QPS is a lower bound and its fleet an upper bound, and the table and
// recommendation say so.
TEST(PlanOutput, ACandidateMeetingTheSlosAtTheCeilingIsMarkedAsABound) {
  TempDir dir;
  PlanParts parts;
  parts.slo = "{ttft_s: {p99: 100}}";
  parts.target = "{qps: 30}";
  parts.search = "{initial_qps: 4, tolerance: 0.05, max_qps: 8, probe_requests: 200}";
  parts.gpus = "[H100-SXM]";
  parts.kv_managers = "[{type: paged, block_tokens: 16}]";
  parts.extra = "verify: false\n";
  const PlanConfig plan = Load(dir, parts);
  const PlanResult r = RunWithJobs(plan, 1);
  ASSERT_EQ(r.candidates.size(), 1u);
  const CandidateResult& c = r.candidates[0];
  ASSERT_EQ(c.search.status, SearchStatus::kMeetsAtAllTried);
  EXPECT_EQ(c.max_qps_per_replica, 8.0);
  EXPECT_EQ(c.replicas, 4);  // ceil(30 / 8), an upper bound
  const std::string text = FormatPlan(r, plan);
  EXPECT_THAT(text, HasSubstr(">=8 "));
  EXPECT_THAT(text, HasSubstr("none up to search.max_qps"));
  EXPECT_THAT(text, HasSubstr("QPS/repl is a lower bound"));
  EXPECT_THAT(text, HasSubstr("an upper bound: " + c.name + " met the SLOs at every load tried"));

  // At a target one replica serves, the fleet is the least there is: only its
  // headroom is unknown.
  parts.target = "{qps: 5}";
  const PlanConfig small = Load(dir, parts);
  const PlanResult one = RunWithJobs(small, 1);
  ASSERT_EQ(one.candidates[0].replicas, 1);
  const std::string one_text = FormatPlan(one, small);
  EXPECT_THAT(one_text, HasSubstr("a lower bound on its headroom: " + c.name));
  EXPECT_THAT(one_text, Not(HasSubstr("fewer replicas may do")));
}

// --- kvsim plan --------------------------------------------------------------------

TEST(PlanCommandOutputs, WritesPlanCsvAndPlanJsonWithTheRecommendation) {
  TempDir dir;
  PlanParts parts;
  parts.gpus = "[H100-SXM]";
  CommandOptions options;
  options.config_path = dir.Write("plan.yaml", PlanYaml(parts));
  options.out_dir = dir.PathOf("out");
  options.jobs = 2;
  std::ostringstream out;
  ASSERT_EQ(PlanCommand(options, out), 0);

  const fs::path csv_path = fs::path(options.out_dir) / "plan.csv";
  const fs::path json_path = fs::path(options.out_dir) / "plan.json";
  ASSERT_TRUE(fs::exists(csv_path));
  ASSERT_TRUE(fs::exists(json_path));

  const std::vector<std::string> lines = Lines(ReadFile(csv_path));
  ASSERT_EQ(lines.size(), 3u);  // header and two candidates
  const std::vector<std::string> header = SplitCsvLine(lines[0]);
  for (const char* column :
       {"candidate", "gpu", "tensor_parallel", "kv_manager", "max_qps_per_replica", "replicas",
        "gpus", "cost_per_hour", "cost_per_million_output_tokens", "meets_slo"}) {
    EXPECT_THAT(header, ::testing::Contains(column));
  }

  const YAML::Node json = YAML::LoadFile(json_path.string());
  ASSERT_TRUE(json["candidates"].IsSequence());
  EXPECT_EQ(json["candidates"].size(), 2u);
  EXPECT_DOUBLE_EQ(json["target_qps"].as<double>(), kTargetQps);
  const YAML::Node rec = json["recommendation"];
  ASSERT_TRUE(rec.IsMap());
  ASSERT_TRUE(rec["verified"].IsDefined());
  EXPECT_TRUE(rec["verified"].as<bool>());
  EXPECT_EQ(rec["gpu"].as<std::string>(), "H100-SXM");
  EXPECT_DOUBLE_EQ(rec["cost_per_hour"].as<double>(), rec["gpus"].as<double>() * kH100Price);
  EXPECT_LE(rec["verify_latencies"]["ttft_s"]["p99"].as<double>(), kTtftP99);

  // The printed table ends with the recommendation and where the outputs went.
  EXPECT_THAT(out.str(), HasSubstr("recommendation: "));
  EXPECT_THAT(out.str(), HasSubstr("outputs written to " + options.out_dir + "/"));
}

TEST(PlanCommandOutputs, RejectsCommandLineOverrides) {
  TempDir dir;
  CommandOptions options;
  options.config_path = dir.Write("plan.yaml", PlanYaml(PlanParts{}));
  options.out_dir = dir.PathOf("out");
  options.overrides = {"seed=1"};
  std::ostringstream out;
  EXPECT_THAT(InputErrorMessage([&] { PlanCommand(options, out); }), HasSubstr("set:"));
  EXPECT_FALSE(fs::exists(options.out_dir));
}

}  // namespace
}  // namespace kvsim
