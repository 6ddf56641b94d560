// Tests for plans with several scenarios: decoding `scenarios:` and `combine:`,
// combining a candidate's results by hand-computed rules, and whole plans whose
// per-scenario results equal the same plans run one scenario at a time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sim/config/plan_config.h"
#include "sim/planner/planner.h"
#include "tests/testing/input_error.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

using ::kvsim::testing::InputErrorMessage;
using ::kvsim::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kQuickstart = KVSIM_SOURCE_DIR "/configs/quickstart.yaml";
constexpr const char* kCodeTrace = KVSIM_SOURCE_DIR "/traces/AzureLLMInferenceTrace_code.csv";

// One GPU, one KV manager, one scheduler, short probes.
constexpr const char* kSmallSpace =
    "search: {initial_qps: 4, tolerance: 0.1, max_qps: 500, probe_requests: 200}\n"
    "candidates:\n"
    "  gpus: [H100-SXM]\n"
    "  tensor_parallel: [1]\n"
    "  kv_managers: [{type: paged, block_tokens: 16}]\n"
    "  schedulers: [{type: vllm, max_num_seqs: 256}]\n";

// A scenarios: entry named `name` on the quickstart scenario at `qps`, with `extra`
// (further flow-mapping entries, e.g. ", slo: {...}").
std::string Entry(const std::string& name, double qps, const std::string& extra = "") {
  return "  - {name: " + name + ", scenario: " + kQuickstart +
         ", target: {qps: " + std::to_string(qps) + "}" + extra + "}\n";
}

PlanConfig LoadText(TempDir& dir, const std::string& text) {
  return LoadPlan(dir.Write("plan.yaml", text));
}

std::string ErrorOf(const std::string& text) {
  TempDir dir;
  const std::string path = dir.Write("plan.yaml", text);
  return InputErrorMessage([&] { LoadPlan(path); });
}

constexpr const char* kSlo = "slo: {ttft_s: {p99: 2.0}}\n";

// --- Decoding ------------------------------------------------------------------------

TEST(PlanScenarioFile, AListOfScenariosKeepsTheirNamesTargetsAndOwnSlos) {
  TempDir dir;
  const PlanConfig p = LoadText(
      dir, std::string(kSlo) + "combine: separate_fleets\nscenarios:\n" + Entry("chat", 30) +
               Entry("code", 10, ", slo: {ttft_s: {p99: 4.0}}") + kSmallSpace);
  ASSERT_EQ(p.scenarios.size(), 2u);
  EXPECT_EQ(p.scenarios[0].name, "chat");
  EXPECT_EQ(p.scenarios[1].name, "code");
  EXPECT_DOUBLE_EQ(p.scenarios[0].target_qps, 30);
  EXPECT_DOUBLE_EQ(p.scenarios[1].target_qps, 10);
  EXPECT_EQ(p.scenarios[0].slo.ttft_s.p99, 2.0) << "the plan's slo";
  EXPECT_EQ(p.scenarios[1].slo.ttft_s.p99, 4.0) << "its own slo";
  EXPECT_EQ(p.combine, FleetRule::kSeparateFleets);
}

TEST(PlanScenarioFile, ThePlansSetAppliesToEveryScenarioBeforeItsOwn) {
  TempDir dir;
  const PlanConfig p = LoadText(
      dir, std::string(kSlo) + "combine: one_fleet\nset: {seed: 7, workload.max_requests: 50}\n" +
               "scenarios:\n" + Entry("a", 1) + Entry("b", 1, ", set: {seed: 9}") + kSmallSpace);
  ASSERT_EQ(p.scenarios.size(), 2u);
  EXPECT_EQ(p.scenarios[0].tree.root()["seed"].as<int>(), 7);
  EXPECT_EQ(p.scenarios[1].tree.root()["seed"].as<int>(), 9);
  EXPECT_EQ(p.scenarios[1].tree.root()["workload"]["max_requests"].as<int>(), 50);
}

TEST(PlanScenarioFile, OneScenarioGivenAsAListNeedsNoCombineRule) {
  TempDir dir;
  const PlanConfig p =
      LoadText(dir, std::string(kSlo) + "scenarios:\n" + Entry("only", 5) + kSmallSpace);
  ASSERT_EQ(p.scenarios.size(), 1u);
  EXPECT_EQ(p.scenarios[0].name, "only");
}

TEST(PlanScenarioErrors, SeveralScenariosWithoutACombineRuleAreRejected) {
  EXPECT_THAT(
      ErrorOf(std::string(kSlo) + "scenarios:\n" + Entry("a", 1) + Entry("b", 1) + kSmallSpace),
      HasSubstr("several scenarios need combine: one_fleet"));
}

TEST(PlanScenarioErrors, AnUnknownCombineRuleListsTheValidOnes) {
  EXPECT_THAT(ErrorOf(std::string(kSlo) + "combine: cheapest\nscenarios:\n" + Entry("a", 1) +
                      Entry("b", 1) + kSmallSpace),
              HasSubstr("combine: unknown value 'cheapest'; valid: one_fleet, separate_fleets"));
}

TEST(PlanScenarioErrors, TwoScenariosOfOneNameAreRejectedNamingTheFirst) {
  const std::string message = ErrorOf(std::string(kSlo) + "combine: one_fleet\nscenarios:\n" +
                                      Entry("a", 1) + Entry("a", 2) + kSmallSpace);
  EXPECT_THAT(message, HasSubstr("scenarios[1].name: 'a' is already the name of"));
  EXPECT_THAT(message, HasSubstr("scenarios[0]"));
}

TEST(PlanScenarioErrors, BothScenarioAndScenariosAreRejected) {
  EXPECT_THAT(ErrorOf(std::string(kSlo) + "scenario: " + kQuickstart + "\ntarget: {qps: 1}\n" +
                      "scenarios:\n" + Entry("a", 1) + kSmallSpace),
              HasSubstr("give either scenario: (one) or scenarios: (a list)"));
}

TEST(PlanScenarioErrors, AScenarioWithoutSlosWhenThePlanHasNoneIsRejected) {
  EXPECT_THAT(ErrorOf("scenarios:\n" + Entry("a", 1) + kSmallSpace),
              HasSubstr("scenarios[0].slo: required: this scenario's SLOs, or a plan-wide slo:"));
}

TEST(PlanScenarioErrors, AScenarioWithoutANameIsRejected) {
  EXPECT_THAT(ErrorOf(std::string(kSlo) + "scenarios:\n  - {scenario: " + kQuickstart +
                      ", target: {qps: 1}}\n" + kSmallSpace),
              HasSubstr("scenarios[0].name: required"));
}

TEST(PlanScenarioErrors, AScenarioWithoutATargetIsRejected) {
  EXPECT_THAT(ErrorOf(std::string(kSlo) + "scenarios:\n  - {name: a, scenario: " + kQuickstart +
                      "}\n" + kSmallSpace),
              HasSubstr("scenarios[0].target.qps: required"));
}

TEST(PlanScenarioErrors, ACombineRuleWithOneTopLevelScenarioIsRejected) {
  EXPECT_THAT(ErrorOf(std::string(kSlo) + "scenario: " + kQuickstart +
                      "\ntarget: {qps: 1}\ncombine: one_fleet\n" + kSmallSpace),
              HasSubstr("combine: applies to a plan with several scenarios"));
}

// --- Combining by hand ---------------------------------------------------------------

// Two scenarios of a plan (targets 30 and 10 requests/s) and a candidate on each.
struct TwoScenarios {
  PlanConfig plan;
  PreparedPlan prepared;
  std::vector<CandidateResult> units;

  explicit TwoScenarios(FleetRule rule) {
    plan.combine = rule;
    for (const char* name : {"chat", "code"}) {
      plan.scenarios.push_back(
          {name, name, ConfigTree::Parse("{}", std::string(name) + ".yaml"), 0, 0, {}});
    }
    prepared.scenarios.resize(2);
    prepared.scenarios[0].target_qps = 30;
    prepared.scenarios[1].target_qps = 10;
    for (int64_t s = 0; s < 2; ++s) {
      CandidateResult c;
      c.name = "H100-SXM/tp2/paged16/vllm";
      c.scenario = s;
      c.tensor_parallel = 2;
      c.price_per_gpu_hour = 2.0;
      c.meets_slo = true;
      c.search.binding = "ttft_s p99";
      units.push_back(c);
    }
    // chat: 3 replicas, 100 output tokens per request; code: 5 replicas, 20 per request.
    units[0].replicas = 3;
    units[0].max_qps_per_replica = 10;
    units[0].at_max.requests_per_s = 10;
    units[0].at_max.output_tokens_per_s = 1000;
    units[1].replicas = 5;
    units[1].max_qps_per_replica = 2;
    units[1].at_max.requests_per_s = 2;
    units[1].at_max.output_tokens_per_s = 40;
  }
  CandidateResult Combined() const { return CombineScenarios(plan, prepared, units); }
};

TEST(CombineScenarios, OneFleetIsSizedForTheScenarioNeedingTheMostReplicas) {
  const CandidateResult c = TwoScenarios(FleetRule::kOneFleet).Combined();
  EXPECT_TRUE(c.meets_slo);
  EXPECT_EQ(c.replicas, 5);
  EXPECT_EQ(c.gpus, 10);
  EXPECT_DOUBLE_EQ(c.cost_per_hour, 20.0);
  EXPECT_EQ(c.scenario, 1) << "code binds";
  EXPECT_DOUBLE_EQ(c.max_qps_per_replica, 2) << "the binding scenario's";
  EXPECT_EQ(c.search.binding, "code: ttft_s p99");
  // Code's 10 req/s x 20 tokens = 720,000 tokens/hour costs more per token than chat's
  // 30 x 100 = 10.8M: $20 / 0.72 M tokens.
  EXPECT_DOUBLE_EQ(c.cost_per_million_output_tokens, 20.0 / 0.72);
}

TEST(CombineScenarios, SeparateFleetsAddTheirReplicasAndCosts) {
  const CandidateResult c = TwoScenarios(FleetRule::kSeparateFleets).Combined();
  EXPECT_EQ(c.replicas, 8);
  EXPECT_EQ(c.gpus, 16);
  EXPECT_DOUBLE_EQ(c.cost_per_hour, 32.0);
  // $32 over 10.8M + 0.72M tokens an hour.
  EXPECT_DOUBLE_EQ(c.cost_per_million_output_tokens, 32.0 / 11.52);
}

TEST(CombineScenarios, ACandidateMissingOneScenarioMissesThePlanAndSaysWhere) {
  TwoScenarios two(FleetRule::kOneFleet);
  two.units[0].meets_slo = false;
  two.units[0].note = "no load meets the SLOs (binding: ttft_s p99)";
  const CandidateResult c = two.Combined();
  EXPECT_FALSE(c.meets_slo);
  EXPECT_EQ(c.scenario, 0);
  EXPECT_EQ(c.note, "chat: no load meets the SLOs (binding: ttft_s p99)");
}

TEST(CombineScenarios, ACandidateThatCannotBeBuiltForOneScenarioIsInfeasible) {
  TwoScenarios two(FleetRule::kSeparateFleets);
  two.units[1].feasible = false;
  two.units[1].meets_slo = false;
  two.units[1].note = "the model does not fit";
  const CandidateResult c = two.Combined();
  EXPECT_FALSE(c.feasible);
  EXPECT_EQ(c.scenario, 1);
  EXPECT_EQ(c.note, "code: the model does not fit");
}

TEST(CombineScenarios, CaveatsOfEveryScenarioAreKeptOnce) {
  TwoScenarios two(FleetRule::kOneFleet);
  two.units[0].timing_caveats = {"a", "b"};
  two.units[1].timing_caveats = {"b", "c"};
  EXPECT_THAT(two.Combined().timing_caveats, ElementsAre("a", "b", "c"));
}

// --- Whole plans ---------------------------------------------------------------------

PlanResult RunOnOneThread(const PlanConfig& plan) {
  PlanOptions options;
  options.jobs = 1;
  return RunPlan(plan, options);
}

// The plan `scenarios` (entries) with `rule`, verifying its fleet.
PlanConfig TwoScenarioPlan(TempDir& dir, const std::string& rule, const std::string& scenarios) {
  return LoadText(dir, std::string(kSlo) + "set: {workload.arrival.process: trace}\ncombine: " +
                           rule + "\nscenarios:\n" + scenarios + kSmallSpace);
}

class TwoTracePlan : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    TempDir dir;
    const std::string code = std::string(", set: {workload.trace: ") + kCodeTrace + "}";
    one_fleet_ = new PlanResult(RunOnOneThread(
        TwoScenarioPlan(dir, "one_fleet", Entry("chat", 30) + Entry("code", 8, code))));
    separate_ = new PlanResult(RunOnOneThread(
        TwoScenarioPlan(dir, "separate_fleets", Entry("chat", 30) + Entry("code", 8, code))));
    // Each scenario alone, as a plan of one.
    chat_ = new PlanResult(RunOnOneThread(
        LoadText(dir, std::string(kSlo) + "set: {workload.arrival.process: trace}\nscenarios:\n" +
                          Entry("chat", 30) + kSmallSpace)));
    code_ = new PlanResult(RunOnOneThread(
        LoadText(dir, std::string(kSlo) + "set: {workload.arrival.process: trace}\nscenarios:\n" +
                          Entry("code", 8, code) + kSmallSpace)));
  }
  static void TearDownTestSuite() {
    for (PlanResult* r : {one_fleet_, separate_, chat_, code_}) delete r;
  }
  static PlanResult *one_fleet_, *separate_, *chat_, *code_;
};

PlanResult* TwoTracePlan::one_fleet_ = nullptr;
PlanResult* TwoTracePlan::separate_ = nullptr;
PlanResult* TwoTracePlan::chat_ = nullptr;
PlanResult* TwoTracePlan::code_ = nullptr;

TEST_F(TwoTracePlan, EachScenariosSearchEqualsThatScenarioPlannedAlone) {
  ASSERT_EQ(one_fleet_->by_scenario.size(), 2u);
  ASSERT_EQ(chat_->candidates.size(), 1u);
  ASSERT_EQ(code_->candidates.size(), 1u);
  const CandidateResult &chat = one_fleet_->by_scenario[0], &code = one_fleet_->by_scenario[1];
  ASSERT_TRUE(chat.meets_slo && code.meets_slo) << chat.note << " / " << code.note;
  EXPECT_EQ(chat.max_qps_per_replica, chat_->candidates[0].max_qps_per_replica);
  EXPECT_EQ(chat.replicas, chat_->candidates[0].replicas);
  EXPECT_EQ(code.max_qps_per_replica, code_->candidates[0].max_qps_per_replica);
  EXPECT_EQ(code.replicas, code_->candidates[0].replicas);
  EXPECT_NE(chat.max_qps_per_replica, code.max_qps_per_replica) << "different traces";
}

TEST_F(TwoTracePlan, OneFleetNeedsTheLargerAndSeparateFleetsTheSumOfTheReplicas) {
  const int64_t chat = chat_->candidates[0].replicas, code = code_->candidates[0].replicas;
  EXPECT_EQ(one_fleet_->candidates[0].replicas, std::max(chat, code));
  EXPECT_EQ(separate_->candidates[0].replicas, chat + code);
  EXPECT_THAT(one_fleet_->target_qps, ElementsAre(30, 8));
}

TEST_F(TwoTracePlan, TheRecommendationIsVerifiedOnEveryScenario) {
  for (const PlanResult* r : {one_fleet_, separate_}) {
    ASSERT_TRUE(r->recommendation.has_value());
    const Recommendation& rec = *r->recommendation;
    ASSERT_EQ(rec.checks.size(), 2u);
    EXPECT_EQ(rec.checks[0].scenario, 0);
    EXPECT_EQ(rec.checks[1].scenario, 1);
    bool all = true;
    for (const FleetCheck& check : rec.checks) all = all && check.verified;
    EXPECT_EQ(rec.verified, all);
  }
  // Separate fleets: each check sizes its own fleet and the recommendation adds them.
  const Recommendation& rec = *separate_->recommendation;
  EXPECT_EQ(rec.replicas, rec.checks[0].replicas + rec.checks[1].replicas);
  // One fleet: the recommendation is the largest any check needed.
  const Recommendation& one = *one_fleet_->recommendation;
  EXPECT_EQ(one.replicas, std::max(one.checks[0].replicas, one.checks[1].replicas));
}

TEST_F(TwoTracePlan, SimulationsCountEveryScenariosProbes) {
  int64_t probes = 0;
  for (const CandidateResult& c : separate_->by_scenario) {
    probes += static_cast<int64_t>(c.search.steps.size());
  }
  EXPECT_GE(separate_->simulations, probes + 2) << "plus at least one fleet run per scenario";
}

TEST(PlanScenarioOutputs, TheJsonListsScenariosAndEachCandidatesResultOnEach) {
  TempDir dir;
  const PlanConfig plan = TwoScenarioPlan(dir, "one_fleet", Entry("chat", 20) + Entry("heavy", 80));
  const PlanResult r = RunOnOneThread(plan);
  const YAML::Node json = YAML::Load(PlanJson(r, plan));
  EXPECT_EQ(json["combine"].as<std::string>(), "one_fleet");
  ASSERT_EQ(json["scenarios"].size(), 2u);
  EXPECT_EQ(json["scenarios"][1]["name"].as<std::string>(), "heavy");
  EXPECT_DOUBLE_EQ(json["scenarios"][1]["target_qps"].as<double>(), 80);
  EXPECT_FALSE(json["target_qps"].IsDefined()) << "no single target";
  const YAML::Node c = json["candidates"][0];
  ASSERT_EQ(c["by_scenario"].size(), 2u);
  EXPECT_EQ(c["by_scenario"][0]["scenario"].as<std::string>(), "chat");
  EXPECT_EQ(c["scenario"].as<std::string>(), "heavy") << "four times the load binds";
  // The same trace at four times the load needs more replicas.
  EXPECT_GT(c["by_scenario"][1]["replicas"].as<int64_t>(),
            c["by_scenario"][0]["replicas"].as<int64_t>());
  const std::string csv = PlanScenariosCsv(r, plan);
  EXPECT_THAT(csv, HasSubstr("candidate,scenario,gpu,"));
  EXPECT_THAT(csv, HasSubstr("H100-SXM/tp1/paged16/vllm-256seqs,chat,H100-SXM,"));
  EXPECT_THAT(csv, HasSubstr("H100-SXM/tp1/paged16/vllm-256seqs,heavy,H100-SXM,"));
  const std::string printed = FormatPlan(r, plan);
  EXPECT_THAT(printed, HasSubstr("2 scenarios, one fleet serves each"));
  EXPECT_THAT(printed, HasSubstr("  heavy: target load 80 QPS"));
}

}  // namespace
}  // namespace kvsim
