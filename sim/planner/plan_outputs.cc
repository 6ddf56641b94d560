// Capacity planning outputs: plan.csv and plan.json, and the printed summary, from a
// PlanResult (planner.cc runs the plan).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "sim/core/check.h"
#include "sim/metrics/json_writer.h"
#include "sim/planner/planner.h"
#include "sim/simulator/builder.h"
#include "sim/simulator/outputs.h"

namespace kvsim {

namespace {

// `text` as one CSV field: quoted when it holds a comma, a quote or a line break.
std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// A number as a CSV field; empty for NaN (a statistic of no values).
std::string CsvNumber(double v) { return std::isnan(v) ? "" : fmt::format("{:.6g}", v); }

constexpr const char* kCsvColumns =
    "tensor_parallel,kv_manager,block_tokens,page_bytes,scheduler,status,"
    "max_qps_per_replica,max_qps_per_gpu,binding_slo,replicas,gpus,cost_per_hour,"
    "cost_per_million_output_tokens,ttft_p99_s,tbt_p99_s,e2e_p99_s,ttft_p99_at_target_s,"
    "tbt_p99_at_target_s,e2e_p99_at_target_s,meets_slo,pareto,note\n";

// The p99 TTFT, TBT and E2E of `s` (s) as three CSV fields.
std::string CsvP99s(const Summary& s) {
  return fmt::format("{},{},{}", CsvNumber(s.ttft_s.OrNaN(&Percentiles::p99)),
                     CsvNumber(s.tbt_s.OrNaN(&Percentiles::p99)),
                     CsvNumber(s.e2e_s.OrNaN(&Percentiles::p99)));
}

// The columns of `c` after "candidate" (and "scenario", when there is one) and "gpu".
std::string CsvRowTail(const CandidateResult& c) {
  const std::string_view status =
      !c.feasible ? std::string_view("infeasible") : kSearchStatuses.Name(c.search.status);
  // A candidate that meets the SLOs at no load has no sizing: empty cells, not zeros.
  std::string sizing;
  if (c.meets_slo) {
    sizing = fmt::format("{:.6g},{:.6g},{},{},{},{:.6g},{:.6g},{},{}", c.max_qps_per_replica,
                         c.max_qps_per_gpu, CsvField(c.search.binding), c.replicas, c.gpus,
                         c.cost_per_hour, c.cost_per_million_output_tokens, CsvP99s(c.at_max),
                         CsvP99s(c.at_target));
  } else {
    sizing = fmt::format(",,{},,,,,,,,,,", CsvField(c.search.binding));
  }
  return fmt::format("{},{},{},{},{},{},{},{},{},{}\n", c.tensor_parallel,
                     kKvManagerTypes.Name(c.kv.type), c.kv.block_tokens, c.kv.page_bytes,
                     CsvField(c.scheduler.Label()), status, sizing, c.meets_slo ? "true" : "false",
                     c.pareto ? "true" : "false", CsvField(c.note));
}

}  // namespace

std::string PlanCsv(const PlanResult& r) {
  std::string out = std::string("candidate,gpu,") + kCsvColumns;
  for (const CandidateResult& c : r.candidates) {
    out += fmt::format("{},{},{}", CsvField(c.name), CsvField(c.gpu), CsvRowTail(c));
  }
  return out;
}

std::string PlanScenariosCsv(const PlanResult& r, const PlanConfig& plan) {
  std::string out = std::string("candidate,scenario,gpu,") + kCsvColumns;
  for (const CandidateResult& c : r.by_scenario) {
    out += fmt::format("{},{},{},{}", CsvField(c.name),
                       CsvField(plan.scenarios[static_cast<size_t>(c.scenario)].name),
                       CsvField(c.gpu), CsvRowTail(c));
  }
  return out;
}

namespace {

// TTFT, TBT, TPOT and E2E percentiles of a run under `key`.
void Latencies(JsonWriter& j, const char* key, const Summary& s) {
  j.BeginObject(key);
  WritePercentiles(j, "ttft_s", s.ttft_s);
  WritePercentiles(j, "tbt_s", s.tbt_s);
  WritePercentiles(j, "tpot_s", s.tpot_s);
  WritePercentiles(j, "e2e_s", s.e2e_s);
  j.EndObject();
}

// The array `key` of strings.
void StringArray(JsonWriter& j, const char* key, const std::vector<std::string>& lines) {
  j.BeginArray(key);
  for (const std::string& line : lines) j.Field({}, line);
  j.EndArray();
}

void CandidateFields(JsonWriter& j, const CandidateResult& c) {
  j.Field("candidate", c.name)
      .Field("gpu", c.gpu)
      .Field("tensor_parallel", c.tensor_parallel)
      .Field("kv_manager", kKvManagerTypes.Name(c.kv.type))
      .Field("kv_label", c.kv.Label())
      .Field("scheduler", c.scheduler.Label())
      .Field("status",
             !c.feasible ? std::string_view("infeasible") : kSearchStatuses.Name(c.search.status))
      .Field("note", c.note);
  j.Field("timing", c.timing_line);
  StringArray(j, "timing_caveats", c.timing_caveats);
  StringArray(j, "timing_assumptions", c.timing_assumptions);
  j.Field("max_qps_per_replica", c.max_qps_per_replica)
      .Field("max_qps_per_gpu", c.max_qps_per_gpu)
      .Field("binding_slo", c.search.binding)
      .Field("replicas", c.replicas)
      .Field("gpus", c.gpus)
      .Field("cost_per_hour", c.cost_per_hour)
      .Field("cost_per_million_output_tokens", c.cost_per_million_output_tokens)
      .Field("meets_slo", c.meets_slo)
      .Field("pareto", c.pareto)
      .Field("probes", static_cast<int64_t>(c.search.steps.size()));
  Latencies(j, "latencies_at_max", c.at_max);
  Latencies(j, "latencies_at_target", c.at_target);
}

// The "scenario" object: a scenario of the plan (config file, model, trace, arrival
// process as probed, seed) and the requests per probe.
void ScenarioSection(JsonWriter& j, const PlanConfig& plan, const PlanScenario& s) {
  const ScenarioConfig sc = DecodeScenario(s.tree, DefaultModelsDir());
  // A peak-window target probes trace arrivals as Poisson ones (PrepareScenario).
  const ArrivalProcess probed =
      s.trace_peak_window_s > 0 && sc.workload.arrival == ArrivalProcess::kTrace
          ? ArrivalProcess::kPoisson
          : sc.workload.arrival;
  j.BeginObject("scenario")
      .Field("config", s.tree.origin())
      .Field("model", LoadModelSpec(sc.model_path).name)
      .Field("model_card", sc.model_path)
      .Field("trace", sc.workload.trace_path)
      .Field("arrival_process", ArrivalProcessName(probed))
      .Field("seed", static_cast<int64_t>(sc.seed))
      .Field("probe_requests", plan.probe_requests)
      .EndObject();
}

// The object `name` of the percentile bounds set (seconds); nothing when none is.
void PercentileBounds(JsonWriter& j, const char* name, const PercentileSlo& p) {
  if (!p.p50 && !p.p90 && !p.p99) return;
  j.BeginObject(name);
  if (p.p50) j.Field("p50", *p.p50);
  if (p.p90) j.Field("p90", *p.p90);
  if (p.p99) j.Field("p99", *p.p99);
  j.EndObject();
}

// The "slo" object: the SLOs as the plan sets them (bounds in seconds), unset ones
// left out.
void SloSection(JsonWriter& j, const SloSpec& slo) {
  j.BeginObject("slo");
  PercentileBounds(j, "ttft_s", slo.ttft_s);
  PercentileBounds(j, "tbt_s", slo.tbt_s);
  PercentileBounds(j, "tpot_s", slo.tpot_s);
  PercentileBounds(j, "e2e_s", slo.e2e_s);
  if (slo.attainment) j.Field("attainment", *slo.attainment);
  if (slo.request_ttft_s) j.Field("request_ttft_s", *slo.request_ttft_s);
  if (slo.request_tpot_s) j.Field("request_tpot_s", *slo.request_tpot_s);
  if (slo.request_e2e_s) j.Field("request_e2e_s", *slo.request_e2e_s);
  j.Field("stability", slo.stability);
  j.Field("stability_slack_s", slo.stability_slack_s);
  j.Field("admitted", slo.admitted);
  j.EndObject();
}

// The "candidates" array (every candidate, in plan order) and the "pareto" array
// (the names of the Pareto-optimal ones, in ranking order).
// With several scenarios each candidate also names its binding scenario and holds
// its result on every scenario ("by_scenario").
void CandidateSections(JsonWriter& j, const PlanResult& r, const PlanConfig& plan) {
  const size_t n = plan.scenarios.size();
  j.BeginArray("candidates");
  for (size_t k = 0; k < r.candidates.size(); ++k) {
    const CandidateResult& c = r.candidates[k];
    j.BeginObject();
    CandidateFields(j, c);
    if (n > 1) {
      j.Field("scenario", plan.scenarios[static_cast<size_t>(c.scenario)].name);
      j.BeginArray("by_scenario");
      for (size_t s = 0; s < n; ++s) {
        j.BeginObject().Field("scenario", plan.scenarios[s].name);
        CandidateFields(j, r.by_scenario[k * n + s]);
        j.EndObject();
      }
      j.EndArray();
    }
    j.EndObject();
  }
  j.EndArray();
  j.BeginArray("pareto");
  for (size_t i : r.ranking) {
    if (r.candidates[i].pareto) j.Field("", r.candidates[i].name);
  }
  j.EndArray();
}

// The "kv_savings" array: each KV manager's cheapest cost ($/hour) against another's.
void SavingsSection(JsonWriter& j, const std::vector<KvSaving>& savings) {
  j.BeginArray("kv_savings");
  for (const KvSaving& s : savings) {
    j.BeginObject()
        .Field("manager", s.manager)
        .Field("versus", s.versus)
        .Field("cost_per_hour", s.cost_per_hour)
        .Field("versus_cost_per_hour", s.versus_cost_per_hour)
        .Field("saving", s.saving)
        .EndObject();
  }
  j.EndArray();
}

// The verify_* fields of one whole-fleet check.
void CheckFields(JsonWriter& j, const FleetCheck& check) {
  j.Field("verify_replicas", check.fleet_replicas);
  j.Field("verify_requests_per_replica", check.fleet_requests_per_replica);
  j.Field("verify_too_few_requests", check.too_few_requests);
  j.Field("verify_refused_at_any_load", check.refused_at_any_load);
  if (check.refused_at_any_load) j.Field("verify_refusal", check.refusal);
  j.Field("verify_binding_slo", check.verdict.binding);
  j.Field("verify_requests_completed", check.fleet.requests_completed);
  Latencies(j, "verify_latencies", check.fleet);
}

// The "scenarios" array of a plan with several: each scenario's name, target load,
// scenario object and SLOs.
void ScenariosSection(JsonWriter& j, const PlanResult& r, const PlanConfig& plan) {
  j.Field("combine", kFleetRules.Name(plan.combine));
  j.BeginArray("scenarios");
  for (size_t s = 0; s < plan.scenarios.size(); ++s) {
    const PlanScenario& ps = plan.scenarios[s];
    j.BeginObject().Field("name", ps.name).FieldExact("target_qps", r.target_qps[s]);
    ScenarioSection(j, plan, ps);
    SloSection(j, ps.slo);
    StringArray(j, "slo_applied", DescribeSlo(ps.slo));
    j.EndObject();
  }
  j.EndArray();
}

// The "recommendation" object: the recommended candidate's fields with its verified
// fleet and the verification run; a string saying it is infeasible when none is.
void RecommendationSection(JsonWriter& j, const PlanResult& r, const PlanConfig& plan) {
  if (!r.recommendation) {
    j.Field("recommendation", "infeasible: no candidate meets the SLOs");
    return;
  }
  const Recommendation& rec = *r.recommendation;
  j.BeginObject("recommendation");
  // The candidate's fields with the fleet that was verified (replicas may exceed the
  // estimate by division, kept as estimated_replicas).
  CandidateResult fleet = r.candidates[rec.candidate];
  if (fleet.cost_per_hour > 0) {
    fleet.cost_per_million_output_tokens *= rec.cost_per_hour / fleet.cost_per_hour;
  }
  fleet.replicas = rec.replicas;
  fleet.gpus = rec.gpus;
  fleet.cost_per_hour = rec.cost_per_hour;
  CandidateFields(j, fleet);
  j.Field("estimated_replicas", r.candidates[rec.candidate].replicas);
  j.Field("verified", rec.verified);
  StringArray(j, "passed_over", rec.passed_over);
  // The binding check's run (none when the plan does not verify: zeros).
  CheckFields(j, rec.checks.empty() ? FleetCheck() : rec.Binding());
  if (plan.scenarios.size() > 1) {
    j.BeginArray("checks");
    for (const FleetCheck& check : rec.checks) {
      j.BeginObject()
          .Field("scenario", plan.scenarios[static_cast<size_t>(check.scenario)].name)
          .Field("replicas", check.replicas)
          .Field("verified", check.verified);
      CheckFields(j, check);
      j.EndObject();
    }
    j.EndArray();
  }
  j.EndObject();
}

}  // namespace

std::string PlanJson(const PlanResult& r, const PlanConfig& plan) {
  JsonWriter j;
  j.BeginObject();
  j.Field("kvsim_version", KvsimVersion()).Field("plan", plan.plan_file);
  if (plan.scenarios.size() == 1) {
    j.FieldExact("target_qps", r.target_qps.front());
    ScenarioSection(j, plan, plan.scenarios.front());
    SloSection(j, plan.scenarios.front().slo);
    StringArray(j, "slo_applied", DescribeSlo(plan.scenarios.front().slo));
  } else {
    ScenariosSection(j, r, plan);
  }
  StringArray(j, "warnings", plan.warnings);
  j.Field("ranking_rule", kRankingRule);
  j.Field("tie", r.tie_note);
  CandidateSections(j, r, plan);
  SavingsSection(j, r.savings);
  RecommendationSection(j, r, plan);
  j.BeginObject("sim").Field("simulations", r.simulations).Field("wall_s", r.wall_s).EndObject();
  j.EndObject();
  return j.str();
}

namespace {

// How a peak-window target was found and is sized; "" for a target rate.
std::string PeakNote(const PlanScenario& s) {
  if (!(s.trace_peak_window_s > 0)) return "";
  return fmt::format(
      " (the trace's busiest {:g} s as recorded, sized as a steady load: a scenario with trace "
      "arrivals is probed with Poisson arrivals at each rate, so that the trace's burstiness, "
      "already in the target, is not counted twice)",
      s.trace_peak_window_s);
}

// The SLOs and target of each scenario, and how their fleets combine.
std::string FormatTargets(const PlanResult& r, const PlanConfig& plan) {
  if (plan.scenarios.size() == 1) {
    std::string out = "SLOs applied:\n";
    for (const std::string& line : DescribeSlo(plan.scenarios.front().slo)) {
      out += "  " + line + "\n";
    }
    return out + fmt::format("target load {:.4g} QPS{}; ranked: {}\n", r.target_qps.front(),
                             PeakNote(plan.scenarios.front()), kRankingRule);
  }
  std::string out =
      fmt::format("{} scenarios, {}:\n", plan.scenarios.size(),
                  plan.combine == FleetRule::kOneFleet
                      ? "one fleet serves each (its size: the largest any scenario needs)"
                      : "each its own fleet (replicas and costs added)");
  for (size_t s = 0; s < plan.scenarios.size(); ++s) {
    out += fmt::format("  {}: target load {:.4g} QPS{}; SLOs applied:\n", plan.scenarios[s].name,
                       r.target_qps[s], PeakNote(plan.scenarios[s]));
    for (const std::string& line : DescribeSlo(plan.scenarios[s].slo)) {
      out += "    " + line + "\n";
    }
  }
  return out + fmt::format("ranked: {}\n", kRankingRule);
}

// The ranked table, then the candidates that meet the SLOs at no load, with why.
std::string FormatRanking(const PlanResult& r) {
  size_t width = 44;  // the candidate column: the longest name and two spaces
  for (const CandidateResult& c : r.candidates) width = std::max(width, c.name.size() + 2);
  std::string out = fmt::format("{:<{}}{:>10} {:>8} {:>6} {:>9} {:>9} {:>12} {:>12}  {}\n",
                                "candidate", width, "QPS/repl", "replicas", "GPUs", "$/hour",
                                "$/Mtok", "TTFT p99 ms", "at target", "binding SLO");
  bool any_unbounded = false;
  for (size_t i : r.ranking) {
    const CandidateResult& c = r.candidates[i];
    // ">=": no load tried missed the SLOs, so the search ceiling is a lower bound on
    // the candidate's load and its replicas an upper bound.
    const bool unbounded = c.search.status == SearchStatus::kMeetsAtAllTried;
    any_unbounded = any_unbounded || unbounded;
    // A space before every column, so that no value, however wide, runs into the
    // one before it.
    out += fmt::format("{:<{}}{:>10} {:>8} {:>6} {:>9.2f} {:>9.4g} {:>12} {:>12}  {}{}\n", c.name,
                       width, fmt::format("{}{:.3g}", unbounded ? ">=" : "", c.max_qps_per_replica),
                       c.replicas, c.gpus, c.cost_per_hour, c.cost_per_million_output_tokens,
                       FormatOrNa(1e3 * c.at_max.ttft_s.OrNaN(&Percentiles::p99), "{:.1f}"),
                       FormatOrNa(1e3 * c.at_target.ttft_s.OrNaN(&Percentiles::p99), "{:.1f}"),
                       unbounded ? "none up to search.max_qps" : c.search.binding,
                       c.pareto ? "  (pareto)" : "");
  }
  if (!r.ranking.empty()) {
    out +=
        "TTFT p99 ms: one replica at QPS/repl (near the SLO by construction); at target: one "
        "replica at its fleet's share of the target (the binding scenario's, with several); "
        "(pareto): no other candidate is as cheap and as fast at the target\n";
  }
  if (any_unbounded) {
    out +=
        ">=: met the SLOs at every load tried, up to search.max_qps: QPS/repl is a lower bound, "
        "and replicas, GPUs and cost above one replica upper bounds; raise search.max_qps to size "
        "them\n";
  }
  for (const CandidateResult& c : r.candidates) {
    if (!c.meets_slo) {
      out +=
          fmt::format("{:<{}}  {}\n", c.name, width, c.feasible ? c.note : "infeasible: " + c.note);
    }
  }
  for (const KvSaving& s : r.savings) {
    if (s.saving > 0) {
      out += fmt::format("KV manager {} is {:.0f}% cheaper than {} at these SLOs\n", s.manager,
                         100 * s.saving, s.versus);
    }
  }
  if (!r.tie_note.empty()) out += "tie: " + r.tie_note + "\n";
  return out;
}

// What one whole-fleet check found, after ", " (at `target_qps`).
std::string FormatCheck(const FleetCheck& check, double target_qps) {
  if (check.verified) {
    return fmt::format(
        "verified: the whole fleet at {:.4g} QPS ({} requests, {:.0f} s of arrivals) has TTFT p99 "
        "{:.1f} ms, E2E p99 {:.3f} s",
        target_qps, check.fleet.requests_total, check.fleet.arrival_span_s,
        1e3 * check.fleet.ttft_s.p99, check.fleet.e2e_s.p99);
  }
  if (check.refused_at_any_load) {
    return fmt::format("NOT verified: the whole-fleet run with {} replica{} missed admitted: {}",
                       check.fleet_replicas, check.fleet_replicas == 1 ? "" : "s", check.refusal);
  }
  if (check.too_few_requests) {
    return fmt::format(
        "NOT verified: the trace held {} requests for the whole-fleet run, {} per "
        "replica, fewer than half of a probe's",
        check.fleet.requests_total, check.fleet_requests_per_replica);
  }
  return fmt::format("NOT verified: the whole-fleet run with {} replica{} missed {}",
                     check.fleet_replicas, check.fleet_replicas == 1 ? "" : "s",
                     check.verdict.binding);
}

std::string FormatRecommendation(const PlanResult& r, const PlanConfig& plan) {
  if (!r.recommendation) {
    return "recommendation: infeasible, no candidate meets the SLOs at any load tried\n";
  }
  const Recommendation& rec = *r.recommendation;
  const CandidateResult& c = r.candidates[rec.candidate];
  std::string out = fmt::format("recommendation: {} x {} ({} GPU{}, ${:.2f}/hour)", rec.replicas,
                                c.name, rec.gpus, rec.gpus == 1 ? "" : "s", rec.cost_per_hour);
  if (rec.checks.empty()) {
    out += ", not verified (verify: false)\n";
  } else if (plan.scenarios.size() == 1) {
    out += ", " + FormatCheck(rec.checks.front(), r.target_qps.front()) + "\n";
  } else {
    out += rec.verified ? ", verified on every scenario:\n" : ", NOT verified on every scenario:\n";
    for (const FleetCheck& check : rec.checks) {
      const auto s = static_cast<size_t>(check.scenario);
      out += fmt::format("  {}: {} replicas, {}\n", plan.scenarios[s].name, check.replicas,
                         FormatCheck(check, r.target_qps[s]));
    }
  }
  if (c.search.status == SearchStatus::kMeetsAtAllTried) {
    out += fmt::format(
        "  {}: {} met the SLOs at every load tried, up to {:.4g} QPS per replica "
        "(search.max_qps){}\n",
        rec.replicas > 1 ? "an upper bound" : "a lower bound on its headroom", c.name,
        c.max_qps_per_replica, rec.replicas > 1 ? "; fewer replicas may do" : "");
  }
  for (const std::string& other : rec.passed_over) out += "  passed over: " + other + "\n";
  if (!c.timing_line.empty()) out += "  " + c.timing_line + "\n";
  return out;
}

}  // namespace

std::string FormatPlan(const PlanResult& r, const PlanConfig& plan) {
  std::string out = FormatTargets(r, plan) + FormatRanking(r) + FormatRecommendation(r, plan);
  std::vector<std::pair<std::string, std::vector<std::string>>> caveats;
  for (const CandidateResult& c : r.candidates) caveats.emplace_back(c.name, c.timing_caveats);
  out += FormatCaveats(caveats);
  std::vector<std::pair<std::string, std::vector<std::string>>> assumed;
  for (const CandidateResult& c : r.candidates) assumed.emplace_back(c.name, c.timing_assumptions);
  out += FormatCaveats(assumed, "assumed");
  out += fmt::format("{} simulations in {:.1f} s\n", r.simulations, r.wall_s);
  return out;
}

}  // namespace kvsim
