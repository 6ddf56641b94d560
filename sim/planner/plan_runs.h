// The planner's runs, for its own files: the change that makes a plan scenario one
// candidate's deployment, one simulation of it with its SLO verdict, and the whole-fleet
// check of a recommendation. Not part of the planner's interface (planner.h).
#pragma once

#include <cstdint>
#include <string>

#include "sim/config/scenario_delta.h"
#include "sim/planner/planner.h"
#include "sim/simulator/simulator.h"

namespace kvsim::plan_internal {

// One probe or fleet run: what the simulation produced, the SLO verdict on it and
// the GPU's price ($/GPU-hour, the plan's override or the card's).
struct Run {
  RunResult result;
  SloVerdict verdict;
  double gpu_price = 0;
  int64_t max_model_len = 0;  // the run's (deployment.max_model_len or the card's)
};

// The change that makes the plan's scenario candidate `c` with `replicas` replicas
// at `qps`, offered `requests` requests (0: the whole trace), writing no per-request
// outputs.
ScenarioDelta CandidateDelta(const CandidateResult& c, int64_t replicas, double qps,
                             int64_t requests);

// Runs scenario `s` of the plan with `delta` and checks the scenario's SLOs.
Run Simulate(const PlanConfig& plan, const PreparedPlan& prepared, int64_t s,
             const ScenarioDelta& delta);

// Passes `line` to the caller's progress log, if it gave one.
void Log(const PlanOptions& options, const std::string& line);

// The recommendation for a ranked plan (at least one candidate meets the SLOs): the
// first-ranked candidate with its fleet verified on every scenario when the plan asks
// (fleet_check.cc). Adds the simulations it runs to `simulations`.
Recommendation Recommend(const PlanConfig& plan, const PreparedPlan& prepared,
                         const PlanOptions& options, const PlanResult& r, int64_t& simulations);

}  // namespace kvsim::plan_internal
