// Capacity planning: for each candidate deployment (GPU, tensor parallelism, KV
// manager, scheduler) the highest per-replica load that meets the SLOs, the replicas
// and GPUs a target load needs, and what they cost; then the cheapest fleet is
// simulated as a whole at the target load to confirm it meets the SLOs.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "sim/config/plan_config.h"
#include "sim/config/scenario_config.h"
#include "sim/metrics/metrics.h"
#include "sim/planner/search.h"
#include "sim/planner/slo.h"

namespace kvsim {

// One candidate deployment evaluated on one scenario of the plan, or (in a plan with
// several scenarios) combined over all of them by the plan's FleetRule.
struct CandidateResult {
  std::string name;  // "H100-SXM/tp1/paged16/vllm-256seqs"
  // The scenario evaluated (index into PlanConfig::scenarios); in a combined result,
  // the binding one: the scenario whose search, sizing and latencies it reports.
  int64_t scenario = 0;
  std::string gpu;
  int64_t tensor_parallel = 1;
  KvChoice kv;
  SchedulerChoice scheduler;
  bool feasible = true;  // false: the deployment cannot be built (see note)
  std::string note;
  std::vector<std::string> timing_caveats;      // Simulation::timing_caveats of its runs
  std::vector<std::string> timing_assumptions;  // Simulation::timing_assumptions of its runs
  std::string timing_line;                      // Simulation::TimingLine of its runs
  SearchResult search;
  bool meets_slo = false;  // some rate met the SLOs
  double max_qps_per_replica = 0;
  double max_qps_per_gpu = 0;
  int64_t replicas = 0;  // ceil(target / max_qps_per_replica)
  int64_t gpus = 0;
  double price_per_gpu_hour = 0;
  double cost_per_hour = 0;
  double cost_per_million_output_tokens = 0;
  Summary at_max;  // one replica at max_qps_per_replica
  // One replica at its fleet's share of the target, target / replicas: the latencies
  // the fleet's users would see (at_max's sit near the SLO by construction).
  Summary at_target;
  int64_t target_probes = 0;  // simulations run for at_target (0: a probe's rate)
  bool pareto = false;        // on the frontier of cost vs p99 TTFT at the target
};

// The whole-fleet verification of a recommendation on one scenario: its fleet run
// at the scenario's target load, replicas added until it meets the SLOs.
struct FleetCheck {
  int64_t scenario = 0;        // index into PlanConfig::scenarios
  int64_t replicas = 0;        // what the scenario needs after verification
  bool verified = false;       // a whole-fleet run met the SLOs
  int64_t fleet_replicas = 0;  // replicas of the last whole-fleet run (the one below)
  // Requests offered per replica in that run; when the trace runs out, fewer than
  // half a probe's (PlanConfig::probe_requests), and the fleet is not verified.
  int64_t fleet_requests_per_replica = 0;
  bool too_few_requests = false;
  // The last run refused more requests than slo.admitted allows (prompts reaching
  // max_model_len): a refusal at any load, so no replica was added for it; `refusal`
  // says how many and what would change it.
  bool refused_at_any_load = false;
  std::string refusal;
  Summary fleet;  // that run
  SloVerdict verdict;
};

struct Recommendation {
  size_t candidate = 0;  // index into PlanResult::candidates
  int64_t replicas = 0;  // after verification (may exceed the candidate's estimate)
  int64_t gpus = 0;
  double cost_per_hour = 0;
  bool verified = false;  // every check met the SLOs
  // One per scenario, in plan order, when the plan verifies (PlanConfig::verify);
  // empty otherwise.
  std::vector<FleetCheck> checks;
  // Candidates ranked above it, or checked after it, whose fleet checks lost: each
  // "name: why". Those ranked below are checked (up to kMaxCandidatesVerified in all)
  // while their estimated cost undercuts the best verified fleet's.
  std::vector<std::string> passed_over;
  // The check the outputs report first: the first that failed, else the one with the
  // most replicas. REQUIRES: !checks.empty().
  const FleetCheck& Binding() const;
};

// The most candidates whose fleets a plan checks before recommending one.
inline constexpr size_t kMaxCandidatesVerified = 4;

struct KvSaving {
  std::string manager, versus;  // KV manager labels
  double cost_per_hour = 0, versus_cost_per_hour = 0;
  double saving = 0;  // 1 - cost / versus_cost
};

// How candidates that meet the SLOs are ranked (kRankingRule says it in words):
// cheapest per hour first; at equal cost, the lower p99 TTFT at the target (so the
// first is on the Pareto frontier); then the higher max QPS per replica (more
// headroom); then the order of the plan's candidate lists.
extern const char* const kRankingRule;

struct PlanResult {
  std::vector<double> target_qps;  // by scenario, in plan order
  // In candidate-space order: the results on the plan's one scenario, or with several
  // scenarios each candidate's combined result (CombineScenarios).
  std::vector<CandidateResult> candidates;
  // With several scenarios: every candidate on every scenario, candidate-major
  // (candidate k on scenario s at k * scenarios + s); empty with one.
  std::vector<CandidateResult> by_scenario;
  std::vector<size_t> ranking;  // meeting candidates, by kRankingRule
  // When the first-ranked candidate shares its cost with others: which, and what
  // decided between them. Empty otherwise.
  std::string tie_note;
  std::optional<Recommendation> recommendation;
  std::vector<KvSaving> savings;
  int64_t simulations = 0;
  double wall_s = 0;
};

struct PlanOptions {
  int jobs = 0;                                 // threads; 0: the plan's jobs, else all cores
  std::function<void(const std::string&)> log;  // progress lines (may be empty)
  // Called (from any thread, one call at a time) with (0, candidates) first, then
  // (1, candidates) as each candidate's search ends. May be empty.
  std::function<void(int64_t done, int64_t total)> progress;
};

// One scenario of a plan, decoded once, with its target load (requests/s).
struct PreparedScenario {
  ScenarioConfig base;
  double target_qps = 0;
  std::set<std::string> gpu_names;          // the card names of the plan's candidate GPUs
  std::vector<std::string> gpu_card_names;  // the same, in the order of plan.gpus
  // Of those, the cards whose price_per_hour is 0 (no price known, or hardware already
  // paid for), by name, with the plan's line that names them.
  std::map<std::string, std::string> unpriced_where;
};

// A plan ready to evaluate: its scenarios decoded once with their target loads, and
// every (candidate, scenario) evaluation enumerated, candidate-major (name, choices
// and scenario set, not yet evaluated). The same on every process that prepares the
// same plan.
struct PreparedPlan {
  std::vector<PreparedScenario> scenarios;
  std::vector<CandidateResult> candidates;
};

// Decodes the plan's scenario (with each GPU card, so that a typo is the plan's
// error), finds the target load and enumerates the candidates. Throws InputError as
// RunPlan does.
PreparedPlan PreparePlan(const PlanConfig& plan, const PlanOptions& options);

// Searches candidate `c` (a copy of one of prepared.candidates) for its highest rate
// meeting its scenario's SLOs and sizes it for that scenario's target. Deterministic: the result
// depends on nothing but the plan and the candidate, so any process may evaluate any candidate. A
// candidate that cannot be built is marked infeasible with the reason.
void EvaluateCandidate(const PlanConfig& plan, const PreparedPlan& prepared, CandidateResult& c);

// Evaluates candidates[i] for each i of `indices` on up to options.jobs threads (0:
// the plan's jobs, else all cores), calling options.progress (0, n) then (1, n) as
// each ends.
void EvaluateOnThreads(const PlanConfig& plan, const PreparedPlan& prepared,
                       const PlanOptions& options, std::span<const size_t> indices,
                       std::vector<CandidateResult>& candidates);

// The plan's result from every candidate evaluated (in prepared.candidates' order):
// each candidate's scenarios combined, ranking, Pareto front, savings, and the
// recommendation with its fleet verified on every scenario (simulated here). simulations counts
// each search's probes and the verification's runs; wall_s is left for the caller.
PlanResult FinishPlan(const PlanConfig& plan, const PreparedPlan& prepared,
                      std::vector<CandidateResult> evaluated, const PlanOptions& options);

// Runs the plan: PreparePlan, EvaluateOnThreads over every candidate, FinishPlan.
// Candidates run in parallel; the result does not depend on the
// number of threads. Throws InputError for a plan that cannot start (bad scenario, a
// GPU card that does not exist, trace without arrivals for a peak-window target); a
// candidate that cannot be built (the model does not fit, say) is reported
// infeasible instead, with the reason.
PlanResult RunPlan(const PlanConfig& plan, const PlanOptions& options);

// Fills result.ranking with the candidates that meet the SLOs, by kRankingRule, and
// result.tie_note when the first shares its cost with others. Part of RunPlan.
void RankCandidates(PlanResult& result);

// Candidate k's result on each scenario of a plan with several, combined by
// plan.combine: one fleet sized for the scenario needing the most replicas, or one
// fleet per scenario with replicas and costs added. Meets the SLOs when every
// scenario does; reports the binding scenario's search and latencies (the one needing
// the most replicas, the first on a tie), its binding SLO prefixed "name: ". Its $ per
// million output tokens: separate fleets, the cost over all scenarios' output tokens
// at their targets; one fleet, the highest of the scenarios' (cost / that scenario's
// tokens).
// `units` holds the candidate's results in scenario order.
CandidateResult CombineScenarios(const PlanConfig& plan, const PreparedPlan& prepared,
                                 std::span<const CandidateResult> units);

// Output tokens per hour of `target_qps` requests/s with the mean output length of
// the run `at_max` (0 when it completed nothing).
double OutputTokensPerHour(const Summary& at_max, double target_qps);

std::string PlanCsv(const PlanResult& result);
// With several scenarios: plan.csv's columns with the scenario after the candidate,
// one row per candidate per scenario (PlanResult::by_scenario).
std::string PlanScenariosCsv(const PlanResult& result, const PlanConfig& plan);
std::string PlanJson(const PlanResult& result, const PlanConfig& plan);
// The printed plan: SLOs applied, the ranked table, infeasible candidates with
// their reasons, the ranking rule and any tie, the recommendation.
std::string FormatPlan(const PlanResult& result, const PlanConfig& plan);

}  // namespace kvsim
