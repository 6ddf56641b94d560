// The whole-fleet check of a plan's recommendation.
#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "sim/planner/plan_runs.h"

namespace kvsim::plan_internal {
namespace {

// The requests a whole-fleet run of `replicas` offers on scenario `s`: the scenario's
// workload as written (workload.max_requests; 0, the whole trace), and at least a probe's
// requests per replica. A probe samples the workload's first rows for a short span; the
// check holds the fleet against all of it, which a short probe can miss (a load a
// little past capacity builds its queue slowly; a trace's later rows may be heavier).
int64_t FleetRequests(const PlanConfig& plan, const PreparedPlan& prepared, int64_t s,
                      int64_t replicas) {
  const int64_t written = prepared.scenarios[static_cast<size_t>(s)].base.workload.max_requests;
  return written == 0 ? 0 : std::max(written, plan.probe_requests * replicas);
}

// The objectives `run` missed other than slo.admitted, comma-separated ("" when none).
std::string OtherMisses(const Run& run) {
  std::string out;
  for (const SloCheck& check : run.verdict.checks) {
    if (check.name != "admitted" && !check.met) out += (out.empty() ? "" : ", ") + check.name;
  }
  return out;
}

// Why `run` missed slo.admitted: its refusals, which no replica changes.
std::string RefusalNote(const Run& run) {
  const Summary& f = run.result.summary;
  const std::string others = OtherMisses(run);
  return fmt::format(
      "{} of {} requests ({:.2f}%) {} prompts reaching max_model_len {} and {} refused at any load "
      "({}); raise deployment.max_model_len, or lower slo.admitted to plan without them",
      f.requests_rejected, f.requests_total,
      100.0 * static_cast<double>(f.requests_rejected) / static_cast<double>(f.requests_total),
      f.requests_rejected == 1 ? "has" : "have", run.max_model_len,
      f.requests_rejected == 1 ? "is" : "are",
      others.empty() ? "every other SLO was met" : "missed too: " + others);
}

// Runs candidate `c`'s whole fleet on scenario `s` at its target load behind the
// router, starting from `replicas` and adding replicas until it meets the SLOs (at
// most three more; none for refusals, which no replica changes); falls back to
// `replicas` when none is verified. Counts the simulations run.
FleetCheck VerifyFleet(const PlanConfig& plan, const PreparedPlan& prepared,
                       const PlanOptions& options, const CandidateResult& c, int64_t s,
                       int64_t replicas, int64_t& simulations) {
  const double target_qps = prepared.scenarios[static_cast<size_t>(s)].target_qps;
  const std::string& name = plan.scenarios[static_cast<size_t>(s)].name;
  const std::string on = name.empty() ? "" : " on " + name;
  FleetCheck check;
  check.scenario = s;
  check.replicas = replicas;
  for (int extra = 0; extra <= 3; ++extra, ++check.replicas) {
    const Run run = Simulate(plan, prepared, s,
                             CandidateDelta(c, check.replicas, target_qps,
                                            FleetRequests(plan, prepared, s, check.replicas)));
    ++simulations;
    check.fleet = run.result.summary;
    check.verdict = run.verdict;
    check.fleet_replicas = check.replicas;
    check.fleet_requests_per_replica = run.result.summary.requests_total / check.replicas;
    // A trace that runs out leaves each replica a handful of requests: their
    // latencies say nothing about the fleet at load.
    if (check.fleet_requests_per_replica * 2 < plan.probe_requests) {
      check.too_few_requests = true;
      Log(options, fmt::format("verify: {} x {}{}: the trace held {} requests, {} per replica, "
                               "fewer than half of a probe's {}: not verified",
                               check.replicas, c.name, on, run.result.summary.requests_total,
                               check.fleet_requests_per_replica, plan.probe_requests));
      break;
    }
    Log(options,
        fmt::format("verify: {} x {}{} at {:.3g} QPS, {} requests: {}", check.replicas, c.name, on,
                    target_qps, run.result.summary.requests_total,
                    run.verdict.meets ? "meets the SLOs" : "misses " + run.verdict.binding));
    if (run.verdict.meets) {
      check.verified = true;
      break;
    }
    if (run.verdict.binding == "admitted") {
      // More replicas admit no more; they may still mend a latency the run missed.
      check.refused_at_any_load = true;
      check.refusal = RefusalNote(run);
      if (OtherMisses(run).empty()) break;
    } else {
      check.refused_at_any_load = false;
      check.refusal.clear();
    }
  }
  if (!check.verified) check.replicas = replicas;
  return check;
}

// Candidate `index` (into r.candidates) with its fleet verified on every scenario when
// the plan asks. One fleet: each scenario starts from the replicas the previous ones
// verified (a fleet that meets a scenario's SLOs is assumed to meet them with more
// replicas); separate fleets: each from its own estimate, the replicas added. Its GPUs
// and cost ($/hour) are those of the replicas recommended.
Recommendation VerifyCandidate(const PlanConfig& plan, const PreparedPlan& prepared,
                               const PlanOptions& options, const PlanResult& r, size_t index,
                               int64_t& simulations) {
  Recommendation rec;
  rec.candidate = index;
  const CandidateResult& c = r.candidates[index];
  rec.replicas = c.replicas;
  if (plan.verify) {
    const size_t n = plan.scenarios.size();
    const bool separate = n > 1 && plan.combine == FleetRule::kSeparateFleets;
    int64_t fleet = c.replicas, total = 0;
    rec.verified = true;
    for (size_t s = 0; s < n; ++s) {
      const int64_t start = separate ? r.by_scenario[index * n + s].replicas : fleet;
      rec.checks.push_back(
          VerifyFleet(plan, prepared, options, c, static_cast<int64_t>(s), start, simulations));
      rec.verified = rec.verified && rec.checks.back().verified;
      fleet = std::max(fleet, rec.checks.back().replicas);
      total += rec.checks.back().replicas;
    }
    rec.replicas = separate ? total : fleet;
  }
  rec.gpus = rec.replicas * c.tensor_parallel;
  rec.cost_per_hour = static_cast<double>(rec.gpus) * c.price_per_gpu_hour;
  return rec;
}

// Whether some check of `rec` missed for refusals, which every candidate of the scenario
// shares (the same prompts and max_model_len).
bool Refused(const Recommendation& rec) {
  return std::any_of(rec.checks.begin(), rec.checks.end(),
                     [](const FleetCheck& check) { return check.refused_at_any_load; });
}

// Why the check of `rec` (not recommended) passed it over, for Recommendation::passed_over.
std::string PassedOver(const PlanResult& r, const Recommendation& rec) {
  const CandidateResult& c = r.candidates[rec.candidate];
  if (!rec.verified) return fmt::format("{}: not verified in its fleet check", c.name);
  return fmt::format("{}: its fleet check needed {} replicas (${:.2f}/hour) against {} estimated",
                     c.name, rec.replicas, rec.cost_per_hour, c.replicas);
}

}  // namespace

Recommendation Recommend(const PlanConfig& plan, const PreparedPlan& prepared,
                         const PlanOptions& options, const PlanResult& r, int64_t& simulations) {
  Recommendation best = VerifyCandidate(plan, prepared, options, r, r.ranking.front(), simulations);
  if (!plan.verify) return best;
  std::vector<std::string> passed_over;
  for (size_t k = 1; k < r.ranking.size() && k < kMaxCandidatesVerified; ++k) {
    const CandidateResult& next = r.candidates[r.ranking[k]];
    // Worth a check: the next one's estimate undercuts the best verified fleet, or
    // nothing is verified yet for a reason another candidate may not share.
    const bool worth = best.verified ? next.cost_per_hour < best.cost_per_hour : !Refused(best);
    if (!worth) break;
    Recommendation other = VerifyCandidate(plan, prepared, options, r, r.ranking[k], simulations);
    const bool better =
        other.verified && (!best.verified || other.cost_per_hour < best.cost_per_hour);
    passed_over.push_back(PassedOver(r, better ? best : other));
    if (better) best = std::move(other);
  }
  best.passed_over = std::move(passed_over);
  return best;
}

}  // namespace kvsim::plan_internal
