// Capacity planning: per-candidate rate search, fleet sizing, costs, verification.
#include "sim/planner/planner.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <span>
#include <string_view>

#include "sim/core/check.h"
#include "sim/core/parallel.h"
#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/metrics/json_writer.h"
#include "sim/planner/plan_runs.h"
#include "sim/simulator/builder.h"
#include "sim/simulator/outputs.h"
#include "sim/workload/workload.h"

namespace kvsim {
namespace {

using plan_internal::CandidateDelta;
using plan_internal::Log;
using plan_internal::Recommend;
using plan_internal::Run;
using plan_internal::Simulate;

// Rethrows a trace error `e` named as the plan scenario's (its plan line and name, when
// it has one).
[[noreturn]] void RethrowAsScenarios(const PlanScenario& scenario, const InputError& e) {
  if (scenario.name.empty()) throw e;
  throw InputError(fmt::format("{} ({}): {}", scenario.where, scenario.name, e.what()));
}

// Reads every request of `workload`, calling `visit` on each; a trace error is named
// as the plan scenario's.
void ReadThrough(const PlanScenario& scenario, Workload& workload,
                 const std::function<void(const RequestSpec&)>& visit = {}) {
  try {
    while (std::optional<RequestSpec> r = workload.Next()) {
      if (visit) visit(*r);
    }
  } catch (const InputError& e) {
    RethrowAsScenarios(scenario, e);
  }
}

// The same for `config`'s workload, opened here.
void ReadThrough(const PlanScenario& scenario, const ScenarioConfig& config) {
  std::unique_ptr<Workload> workload;
  try {
    workload = std::make_unique<Workload>(config.workload);
  } catch (const InputError& e) {
    RethrowAsScenarios(scenario, e);
  }
  ReadThrough(scenario, *workload);
}

// The highest arrival rate in any window of the scenario's trace_peak_window_s of its
// trace, as recorded (requests / window_s).
double TracePeakQps(const PlanScenario& scenario, const ScenarioConfig& base) {
  ScenarioDelta as_recorded;
  as_recorded.arrival = ArrivalProcess::kTrace;
  as_recorded.rate_qps = 0;
  std::unique_ptr<Workload> recorded;
  try {
    recorded = std::make_unique<Workload>(ApplyDelta(base, as_recorded).workload);
  } catch (const InputError& e) {
    if (base.workload.arrival == ArrivalProcess::kTrace) RethrowAsScenarios(scenario, e);
    // The scenario's own arrivals are not the trace's: a trace without arrival times
    // is then this target's error, not the scenario's arrival process.
    throw InputError(
        fmt::format("{}: target.trace_peak_window_s: the peak is found in the scenario's trace as "
                    "recorded, which cannot be read with its arrival times ({}); give target.qps",
                    scenario.where, e.what()));
  }
  const Nanos window = SecondsToNanos(scenario.trace_peak_window_s);
  std::deque<Nanos> in_window;
  size_t peak = 0;
  Nanos first{-1}, last{0};
  ReadThrough(scenario, *recorded, [&](const RequestSpec& r) {
    if (first < Nanos(0)) first = r.arrival;
    last = r.arrival;
    in_window.push_back(r.arrival);
    while (in_window.front() <= r.arrival - window) in_window.pop_front();
    peak = std::max(peak, in_window.size());
  });
  if (peak == 0) throw InputError(scenario.where + ": target.trace_peak_window_s: empty trace");
  // A window longer than the trace would spread its requests over time it does not
  // span and call that its peak.
  if (window > last - first) {
    throw InputError(fmt::format(
        "{}: target.trace_peak_window_s: {:g} s is longer than the trace, whose arrivals span "
        "{:g} s; give a window inside it, or target.qps",
        scenario.where, scenario.trace_peak_window_s, ToSeconds(last - first)));
  }
  return static_cast<double>(peak) / scenario.trace_peak_window_s;
}

}  // namespace

void EvaluateCandidate(const PlanConfig& plan, const PreparedPlan& prepared, CandidateResult& c) {
  const double target_qps = prepared.scenarios[static_cast<size_t>(c.scenario)].target_qps;
  SearchConfig search;
  search.initial_qps = plan.initial_qps;
  search.max_qps = plan.max_qps;
  search.min_qps = plan.initial_qps / 1024;
  search.tolerance = plan.tolerance;
  search.max_probes = plan.max_probes;
  std::map<double, Run> runs;
  try {
    c.search = FindMaxRate(search, [&](double qps) {
      Run run =
          Simulate(plan, prepared, c.scenario, CandidateDelta(c, 1, qps, plan.probe_requests));
      ProbeOutcome outcome{run.verdict.meets, run.verdict.meets ? "" : run.verdict.binding,
                           !run.verdict.meets && run.verdict.binding == "admitted"};
      c.timing_caveats = run.result.timing_caveats;  // the same at every load
      c.timing_assumptions = run.result.timing_assumptions;
      c.timing_line = run.result.timing_line;
      runs.emplace(qps, std::move(run));
      return outcome;
    });
  } catch (const InputError& e) {
    c.feasible = false;
    c.note = e.what();
    return;
  }
  c.meets_slo = c.search.max_qps > 0;
  if (!c.meets_slo) {
    c.note = "no load meets the SLOs (binding: " + c.search.binding + ")";
    const auto failed = runs.find(c.search.first_fail_qps);
    if (c.search.binding == "admitted" && failed != runs.end()) {
      // Refusals depend on the prompts and max_model_len, not on the load.
      const Summary& s = failed->second.result.summary;
      c.note += fmt::format(
          ": {} of {} requests ({:.1f}%) have prompts reaching max_model_len {} and are refused "
          "at any load; raise deployment.max_model_len, or lower slo.admitted to plan without them",
          s.requests_rejected, s.requests_total,
          100.0 * static_cast<double>(s.requests_rejected) / static_cast<double>(s.requests_total),
          failed->second.max_model_len);
    }
    return;
  }
  if (c.search.status == SearchStatus::kMeetsAtAllTried) {
    c.note = fmt::format("meets the SLOs at every load tried, up to {} QPS", plan.max_qps);
  }
  const Run& best = runs.at(c.search.max_qps);
  c.at_max = best.result.summary;
  c.max_qps_per_replica = c.search.max_qps;
  c.max_qps_per_gpu = c.max_qps_per_replica / static_cast<double>(c.tensor_parallel);
  c.replicas = static_cast<int64_t>(std::ceil(target_qps / c.max_qps_per_replica - 1e-9));
  c.replicas = std::max<int64_t>(c.replicas, 1);
  c.gpus = c.replicas * c.tensor_parallel;
  c.price_per_gpu_hour = best.gpu_price;
  c.cost_per_hour = static_cast<double>(c.gpus) * c.price_per_gpu_hour;
  // The fleet's per-replica share of the target, on the probes' requests.
  const double share_qps = target_qps / static_cast<double>(c.replicas);
  if (const auto probed = runs.find(share_qps); probed != runs.end()) {
    c.at_target = probed->second.result.summary;
  } else {
    c.at_target =
        Simulate(plan, prepared, c.scenario, CandidateDelta(c, 1, share_qps, plan.probe_requests))
            .result.summary;
    c.target_probes = 1;
  }
  const double tokens_per_hour = OutputTokensPerHour(best.result.summary, target_qps);
  c.cost_per_million_output_tokens =
      tokens_per_hour > 0 ? c.cost_per_hour / (tokens_per_hour / 1e6) : 0;
}

namespace {

void MarkPareto(PlanResult& r) {
  for (size_t i : r.ranking) {
    const CandidateResult& a = r.candidates[i];
    bool dominated = false;
    for (size_t j : r.ranking) {
      const CandidateResult& b = r.candidates[j];
      if (i == j) continue;
      const bool no_worse =
          b.cost_per_hour <= a.cost_per_hour && b.at_target.ttft_s.p99 <= a.at_target.ttft_s.p99;
      const bool better =
          b.cost_per_hour < a.cost_per_hour || b.at_target.ttft_s.p99 < a.at_target.ttft_s.p99;
      if (no_worse && better) dominated = true;
    }
    r.candidates[i].pareto = !dominated;
  }
}

void ComputeSavings(PlanResult& r) {
  std::map<std::string, double> cheapest;  // KV manager label -> lowest cost per hour
  for (size_t i : r.ranking) {
    const CandidateResult& c = r.candidates[i];
    const std::string label = c.kv.Label();
    auto it = cheapest.find(label);
    if (it == cheapest.end() || c.cost_per_hour < it->second) cheapest[label] = c.cost_per_hour;
  }
  for (const auto& [a, cost_a] : cheapest) {
    for (const auto& [b, cost_b] : cheapest) {
      if (a == b || cost_b <= 0) continue;
      r.savings.push_back({a, b, cost_a, cost_b, 1.0 - cost_a / cost_b});
    }
  }
}

}  // namespace

namespace {

// p99 TTFT at the target (s) for ranking; +inf when the run completed nothing.
double TtftAtTarget(const CandidateResult& c) {
  const double t = c.at_target.ttft_s.p99;
  return std::isnan(t) ? std::numeric_limits<double>::infinity() : t;
}

}  // namespace

void RankCandidates(PlanResult& r) {
  r.ranking.clear();
  r.tie_note.clear();
  for (size_t i = 0; i < r.candidates.size(); ++i) {
    if (r.candidates[i].meets_slo) r.ranking.push_back(i);
  }
  std::stable_sort(r.ranking.begin(), r.ranking.end(), [&](size_t a, size_t b) {
    const CandidateResult &x = r.candidates[a], &y = r.candidates[b];
    if (x.cost_per_hour != y.cost_per_hour) return x.cost_per_hour < y.cost_per_hour;
    if (TtftAtTarget(x) != TtftAtTarget(y)) return TtftAtTarget(x) < TtftAtTarget(y);
    return x.max_qps_per_replica > y.max_qps_per_replica;  // then candidate order (stable)
  });
  if (r.ranking.size() > 1) {
    const CandidateResult& first = r.candidates[r.ranking[0]];
    std::vector<std::string> tied;
    for (size_t i : r.ranking) {
      if (r.candidates[i].cost_per_hour == first.cost_per_hour)
        tied.push_back(r.candidates[i].name);
    }
    if (tied.size() > 1) {
      const CandidateResult& second = r.candidates[r.ranking[1]];
      const char* decided = TtftAtTarget(first) != TtftAtTarget(second)
                                ? "its lower p99 TTFT at the target"
                            : first.max_qps_per_replica != second.max_qps_per_replica
                                ? "its higher max QPS per replica"
                                : "the plan's candidate order";
      r.tie_note =
          fmt::format("{} candidates cost ${:.2f}/hour ({}); {} ranks first by {}", tied.size(),
                      first.cost_per_hour, fmt::join(tied, ", "), first.name, decided);
    }
  }
}

const char* const kRankingRule =
    "cheapest $/hour first; at equal cost the lower p99 TTFT at the target (one replica at "
    "target / replicas), then the higher max QPS per replica, then the order of the plan's "
    "candidate lists";

namespace {

// Scenario `s` of the plan, decoded, with its target load; throws InputError unless
// it decodes on its own and with each of the plan's GPU cards: those are the plan's
// errors, not a candidate's (a typo would otherwise read as "infeasible"). A card's
// error names the plan's line.
PreparedScenario PrepareScenario(const PlanConfig& plan, const PlanScenario& s) {
  PreparedScenario p;
  try {
    p.base = DecodeScenario(s.tree, DefaultModelsDir());
  } catch (const InputError& e) {
    if (s.name.empty()) throw;
    throw InputError(fmt::format("{} ({}): {}", s.where, s.name, e.what()));
  }
  for (size_t i = 0; i < plan.gpus.size(); ++i) {
    ScenarioDelta on_gpu;
    on_gpu.gpu = plan.gpus[i];
    const std::string where = i < plan.gpu_where.size() ? plan.gpu_where[i] : "gpus";
    GpuSpec gpu;
    try {
      gpu = LoadGpuSpec(ApplyDelta(p.base, on_gpu).gpu_path);
    } catch (const InputError& e) {
      // "gpu: what" gives way to the plan's line.
      const std::string what = e.what();
      throw InputError(
          fmt::format("{}: {}", where, what.starts_with("gpu: ") ? what.substr(5) : what));
    }
    // Candidates and prices go by a card's name: two cards of one name would be one.
    for (size_t j = 0; j < p.gpu_card_names.size(); ++j) {
      if (p.gpu_card_names[j] == gpu.name) {
        throw InputError(fmt::format(
            "{}: names a card called {}, as {} does: candidates and prices go by a card's "
            "name, so list each card once, and give a modified copy a name of its own",
            where, gpu.name, j < plan.gpu_where.size() ? plan.gpu_where[j] : "gpus"));
      }
    }
    p.gpu_card_names.push_back(gpu.name);
    p.gpu_names.insert(gpu.name);
    if (gpu.price_per_hour == 0) p.unpriced_where.emplace(gpu.name, where);
  }
  // What a probe reads, read through once: a trace that cannot be read is the plan's
  // error, not every candidate's "infeasible". A peak window's read of the trace as
  // recorded (TracePeakQps, up to workload.max_requests) covers it unless that limit
  // stops short of probe_requests.
  p.target_qps = s.target_qps > 0 ? s.target_qps : TracePeakQps(s, p.base);
  if (s.trace_peak_window_s > 0 && p.base.workload.arrival == ArrivalProcess::kTrace) {
    // The target already holds the trace's burstiness (its busiest window): the trace
    // time-scaled to each probe's rate would count it again, sizing for peaks of the
    // peak. The fleet is sized to carry the peak rate as a steady load instead.
    ScenarioDelta steady;
    steady.arrival = ArrivalProcess::kPoisson;
    steady.rate_qps = p.target_qps;
    p.base = ApplyDelta(p.base, steady);
  }
  const int64_t peak_rows = p.base.workload.max_requests;
  if (s.target_qps > 0 || (peak_rows > 0 && peak_rows < plan.probe_requests)) {
    ScenarioDelta probe;
    probe.rate_qps = plan.initial_qps;
    probe.max_requests = plan.probe_requests;
    ReadThrough(s, ApplyDelta(p.base, probe));
  }
  return p;
}

// Throws InputError, naming the plan's line, for a price given for a GPU that is no
// card (a misspelt name would silently keep the card's own price), and for a
// candidate card priced 0 beside another card when prices: does not state its price:
// ranked by cost it would count as free, whether its card has no price known or the
// hardware is paid for. A price may name a card that is not a candidate (one price
// list for several plans).
void CheckPrices(const PlanConfig& plan, const ScenarioConfig& base,
                 const std::set<std::string>& gpu_names,
                 const std::map<std::string, std::string>& unpriced_where) {
  for (const auto& [name, where] : unpriced_where) {
    if (gpu_names.size() < 2 || plan.prices.contains(name)) continue;
    std::set<std::string> others = gpu_names;
    others.erase(name);
    throw InputError(fmt::format(
        "{}: the {} card's price_per_hour is 0 (no price known, or hardware already paid for), "
        "so its fleets would rank as free against {}; state its USD per GPU-hour under "
        "prices: ({}: RATE; 0 ranks it as paid for)",
        where, name, fmt::join(others, ", "), name));
  }
  for (const auto& [name, price] : plan.prices) {
    if (gpu_names.contains(name)) continue;
    const auto at = plan.price_where.find(name);
    const std::string where = at != plan.price_where.end() ? at->second : "prices." + name;
    ScenarioDelta on_gpu;
    on_gpu.gpu = name;
    std::string card_name;
    try {
      card_name = LoadGpuSpec(ApplyDelta(base, on_gpu).gpu_path).name;
    } catch (const InputError&) {
      throw InputError(fmt::format("{}: no GPU card is named '{}' (the candidates' cards: {})",
                                   where, name, fmt::join(gpu_names, ", ")));
    }
    if (card_name != name) {
      throw InputError(fmt::format("{}: the card '{}' is named '{}'; prices are by card name",
                                   where, name, card_name));
    }
  }
}

// Every combination of the plan's GPUs, tensor-parallel degrees, KV managers and
// schedulers, in that nesting order, named "card/tpN/kv/scheduler" (`card_names`: the
// name of each of plan.gpus' cards, a card given as a path named as the card names
// itself), once per scenario (the innermost loop); not yet evaluated.
std::vector<CandidateResult> EnumerateCandidates(const PlanConfig& plan,
                                                 const std::vector<std::string>& card_names) {
  std::vector<CandidateResult> candidates;
  for (size_t g = 0; g < plan.gpus.size(); ++g) {
    const std::string& gpu = plan.gpus[g];
    const std::string& card = g < card_names.size() ? card_names[g] : gpu;
    for (int64_t tp : plan.tensor_parallel) {
      for (const KvChoice& kv : plan.kv_managers) {
        for (const SchedulerChoice& s : plan.schedulers) {
          CandidateResult c;
          c.gpu = gpu;
          c.tensor_parallel = tp;
          c.kv = kv;
          c.scheduler = s;
          c.name = fmt::format("{}/tp{}/{}/{}", card, tp, kv.Label(), s.Label());
          for (size_t k = 0; k < plan.scenarios.size(); ++k) {
            c.scenario = static_cast<int64_t>(k);
            candidates.push_back(c);
          }
        }
      }
    }
  }
  return candidates;
}

}  // namespace

PreparedPlan PreparePlan(const PlanConfig& plan, const PlanOptions& options) {
  KVSIM_CHECK(!plan.scenarios.empty(), "plan without a scenario");
  PreparedPlan p;
  std::vector<std::string> targets;
  std::set<std::string> gpu_names;
  std::map<std::string, std::string> unpriced_where;
  for (const PlanScenario& s : plan.scenarios) {
    p.scenarios.push_back(PrepareScenario(plan, s));
    gpu_names.insert(p.scenarios.back().gpu_names.begin(), p.scenarios.back().gpu_names.end());
    unpriced_where.insert(p.scenarios.back().unpriced_where.begin(),
                          p.scenarios.back().unpriced_where.end());
    targets.push_back(fmt::format("{}{:.3g} QPS", s.name.empty() ? "" : s.name + " ",
                                  p.scenarios.back().target_qps));
    // A candidate is one card on every scenario: a card path relative to the scenarios'
    // folders must name the same card from each.
    const std::vector<std::string>& first = p.scenarios.front().gpu_card_names;
    const std::vector<std::string>& these = p.scenarios.back().gpu_card_names;
    for (size_t i = 0; i < first.size() && i < these.size(); ++i) {
      if (first[i] != these[i]) {
        throw InputError(fmt::format(
            "{}: is the {} card for scenario {} but the {} card for scenario {} (a relative "
            "path is read from each scenario's folder); give a card name or an absolute path",
            i < plan.gpu_where.size() ? plan.gpu_where[i] : "gpus", first[i],
            plan.scenarios.front().name, these[i], s.name));
      }
    }
  }
  CheckPrices(plan, p.scenarios.front().base, gpu_names, unpriced_where);
  p.candidates = EnumerateCandidates(plan, p.scenarios.front().gpu_card_names);
  Log(options, fmt::format("plan: {} candidates, target {}",
                           p.candidates.size() / plan.scenarios.size(), fmt::join(targets, ", ")));
  return p;
}

void EvaluateOnThreads(const PlanConfig& plan, const PreparedPlan& prepared,
                       const PlanOptions& options, std::span<const size_t> indices,
                       std::vector<CandidateResult>& candidates) {
  const auto total = static_cast<int64_t>(indices.size());
  if (options.progress) options.progress(0, total);
  ParallelFor(
      indices.size(), options.jobs > 0 ? options.jobs : plan.jobs,
      [&](size_t k) { EvaluateCandidate(plan, prepared, candidates[indices[k]]); },
      [&](size_t) {
        if (options.progress) options.progress(1, total);
      });
}

PlanResult FinishPlan(const PlanConfig& plan, const PreparedPlan& prepared,
                      std::vector<CandidateResult> evaluated, const PlanOptions& options) {
  PlanResult r;
  for (const PreparedScenario& s : prepared.scenarios) r.target_qps.push_back(s.target_qps);
  KVSIM_CHECK(evaluated.size() == prepared.candidates.size(), "candidates missing");
  // One simulation per probe of each search, then those of the verification.
  for (const CandidateResult& c : evaluated) {
    r.simulations += static_cast<int64_t>(c.search.steps.size()) + c.target_probes;
  }
  const size_t n = prepared.scenarios.size();
  if (n == 1) {
    r.candidates = std::move(evaluated);
  } else {
    r.by_scenario = std::move(evaluated);
    for (size_t k = 0; k < r.by_scenario.size(); k += n) {
      r.candidates.push_back(
          CombineScenarios(plan, prepared, std::span(r.by_scenario).subspan(k, n)));
    }
  }
  RankCandidates(r);
  MarkPareto(r);
  ComputeSavings(r);
  if (!r.ranking.empty()) r.recommendation = Recommend(plan, prepared, options, r, r.simulations);
  return r;
}

PlanResult RunPlan(const PlanConfig& plan, const PlanOptions& options) {
  const auto wall_start = std::chrono::steady_clock::now();
  const PreparedPlan prepared = PreparePlan(plan, options);
  std::vector<CandidateResult> candidates = prepared.candidates;
  std::vector<size_t> all(candidates.size());
  std::iota(all.begin(), all.end(), size_t{0});
  EvaluateOnThreads(plan, prepared, options, all, candidates);
  PlanResult r = FinishPlan(plan, prepared, std::move(candidates), options);
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return r;
}

}  // namespace kvsim
