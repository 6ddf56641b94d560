// Plans with several scenarios: a candidate's results on each, combined into one
// (see CombineScenarios in planner.h).
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "sim/core/check.h"
#include "sim/planner/planner.h"

namespace kvsim {
namespace {

// The unit the combined result reports: the first that cannot be built, else the
// first that meets the SLOs at no load, else the one needing the most replicas (the
// first on a tie).
size_t BindingUnit(std::span<const CandidateResult> units) {
  for (size_t s = 0; s < units.size(); ++s) {
    if (!units[s].feasible) return s;
  }
  for (size_t s = 0; s < units.size(); ++s) {
    if (!units[s].meets_slo) return s;
  }
  size_t binding = 0;
  for (size_t s = 1; s < units.size(); ++s) {
    if (units[s].replicas > units[binding].replicas) binding = s;
  }
  return binding;
}

// `lines` with each of `more` appended unless already there.
void AppendNew(std::vector<std::string>& lines, const std::vector<std::string>& more) {
  for (const std::string& line : more) {
    if (std::find(lines.begin(), lines.end(), line) == lines.end()) lines.push_back(line);
  }
}

}  // namespace

double OutputTokensPerHour(const Summary& at_max, double target_qps) {
  const double per_request =
      at_max.requests_per_s > 0 ? at_max.output_tokens_per_s / at_max.requests_per_s : 0;
  return target_qps * per_request * 3600;
}

const FleetCheck& Recommendation::Binding() const {
  KVSIM_CHECK(!checks.empty(), "Binding() of a recommendation without checks");
  for (const FleetCheck& check : checks) {
    if (!check.verified) return check;
  }
  const FleetCheck* most = &checks.front();
  for (const FleetCheck& check : checks) {
    if (check.replicas > most->replicas) most = &check;
  }
  return *most;
}

CandidateResult CombineScenarios(const PlanConfig& plan, const PreparedPlan& prepared,
                                 std::span<const CandidateResult> units) {
  KVSIM_CHECK(!units.empty() && units.size() == plan.scenarios.size(),
              "CombineScenarios needs one result per scenario");
  const size_t b = BindingUnit(units);
  CandidateResult c = units[b];
  const auto name_of = [&](const CandidateResult& u) {
    return plan.scenarios[static_cast<size_t>(u.scenario)].name;
  };
  if (!c.search.binding.empty()) c.search.binding = name_of(c) + ": " + c.search.binding;
  std::vector<std::string> notes;
  c.timing_caveats.clear();
  c.timing_assumptions.clear();
  for (const CandidateResult& u : units) {
    c.feasible = c.feasible && u.feasible;
    c.meets_slo = c.meets_slo && u.meets_slo;
    if (!u.note.empty()) notes.push_back(name_of(u) + ": " + u.note);
    AppendNew(c.timing_caveats, u.timing_caveats);
    AppendNew(c.timing_assumptions, u.timing_assumptions);
  }
  c.note = fmt::format("{}", fmt::join(notes, "; "));
  if (!c.meets_slo) return c;
  const bool separate = plan.combine == FleetRule::kSeparateFleets;
  c.replicas = 0;
  double total_tokens = 0;   // output tokens per hour, all scenarios together
  double fewest_tokens = 0;  // the scenario with the fewest (> 0); 0 when none has any
  for (const CandidateResult& u : units) {
    c.replicas = separate ? c.replicas + u.replicas : std::max(c.replicas, u.replicas);
    const double tokens = OutputTokensPerHour(
        u.at_max, prepared.scenarios[static_cast<size_t>(u.scenario)].target_qps);
    total_tokens += tokens;
    if (tokens > 0 && (fewest_tokens == 0 || tokens < fewest_tokens)) fewest_tokens = tokens;
  }
  c.gpus = c.replicas * c.tensor_parallel;
  c.cost_per_hour = static_cast<double>(c.gpus) * c.price_per_gpu_hour;
  // Separate fleets: the cost over every scenario's tokens; one fleet: the highest cost
  // per token of any scenario, that of the one with the fewest.
  const double tokens = separate ? total_tokens : fewest_tokens;
  c.cost_per_million_output_tokens = tokens > 0 ? c.cost_per_hour / (tokens / 1e6) : 0;
  return c;
}

}  // namespace kvsim
