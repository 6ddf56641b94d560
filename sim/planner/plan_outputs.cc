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

}  // namespace

std::string PlanCsv(const PlanResult& r) {
  std::string out =
      "candidate,gpu,tensor_parallel,kv_manager,block_tokens,page_bytes,scheduler,status,"
      "max_qps_per_replica,max_qps_per_gpu,binding_slo,replicas,gpus,cost_per_hour,"
      "cost_per_million_output_tokens,ttft_p99_s,tbt_p99_s,e2e_p99_s,meets_slo,pareto,note\n";
  for (const CandidateResult& c : r.candidates) {
    const std::string_view status =
        !c.feasible ? std::string_view("infeasible") : kSearchStatuses.Name(c.search.status);
    // A candidate that meets the SLOs at no load has no sizing: empty cells, not zeros.
    std::string sizing;
    if (c.meets_slo) {
      sizing = fmt::format("{:.6g},{:.6g},{},{},{},{:.6g},{:.6g},{},{},{}", c.max_qps_per_replica,
                           c.max_qps_per_gpu, CsvField(c.search.binding), c.replicas, c.gpus,
                           c.cost_per_hour, c.cost_per_million_output_tokens,
                           CsvNumber(c.at_max.ttft_s.OrNaN(&Percentiles::p99)),
                           CsvNumber(c.at_max.tbt_s.OrNaN(&Percentiles::p99)),
                           CsvNumber(c.at_max.e2e_s.OrNaN(&Percentiles::p99)));
    } else {
      sizing = fmt::format(",,{},,,,,,,", CsvField(c.search.binding));
    }
    out +=
        fmt::format("{},{},{},{},{},{},{},{},{},{},{},{}\n", CsvField(c.name), CsvField(c.gpu),
                    c.tensor_parallel, kKvManagerTypes.Name(c.kv.type), c.kv.block_tokens,
                    c.kv.page_bytes, CsvField(c.scheduler.Label()), status, sizing,
                    c.meets_slo ? "true" : "false", c.pareto ? "true" : "false", CsvField(c.note));
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
  j.BeginArray("timing_caveats");
  for (const std::string& caveat : c.timing_caveats) j.Field({}, caveat);
  j.EndArray();
  j.BeginArray("timing_assumptions");
  for (const std::string& a : c.timing_assumptions) j.Field({}, a);
  j.EndArray();
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
}

}  // namespace

namespace {

// The "scenario" object: the plan's base scenario (config file, model, trace,
// arrival process, seed) and the requests per probe.
void ScenarioSection(JsonWriter& j, const PlanConfig& plan) {
  const ScenarioConfig sc = DecodeScenario(*plan.scenario, DefaultModelsDir());
  j.BeginObject("scenario")
      .Field("config", plan.scenario->origin())
      .Field("model", LoadModelSpec(sc.model_path).name)
      .Field("model_card", sc.model_path)
      .Field("trace", sc.workload.trace_path)
      .Field("arrival_process", ArrivalProcessName(sc.workload.arrival))
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
  j.EndObject();
}

// The array `key` of strings.
void StringArray(JsonWriter& j, const char* key, const std::vector<std::string>& lines) {
  j.BeginArray(key);
  for (const std::string& line : lines) j.Field({}, line);
  j.EndArray();
}

// The "candidates" array (every candidate, in plan order) and the "pareto" array
// (the names of the Pareto-optimal ones, in ranking order).
void CandidateSections(JsonWriter& j, const PlanResult& r) {
  j.BeginArray("candidates");
  for (const CandidateResult& c : r.candidates) {
    j.BeginObject();
    CandidateFields(j, c);
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

// The "recommendation" object: the recommended candidate's fields with its verified
// fleet and the verification run; a string saying it is infeasible when none is.
void RecommendationSection(JsonWriter& j, const PlanResult& r) {
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
  j.Field("verify_replicas", rec.fleet_replicas);
  j.Field("verify_requests_per_replica", rec.fleet_requests_per_replica);
  j.Field("verify_too_few_requests", rec.too_few_requests);
  j.Field("verify_binding_slo", rec.verdict.binding);
  j.Field("verify_requests_completed", rec.fleet.requests_completed);
  Latencies(j, "verify_latencies", rec.fleet);
  j.EndObject();
}

}  // namespace

std::string PlanJson(const PlanResult& r, const PlanConfig& plan) {
  JsonWriter j;
  j.BeginObject();
  j.Field("plan", plan.plan_file).Field("target_qps", r.target_qps);
  ScenarioSection(j, plan);
  SloSection(j, plan.slo);
  StringArray(j, "slo_applied", DescribeSlo(plan.slo));
  StringArray(j, "warnings", plan.warnings);
  j.Field("ranking_rule", kRankingRule);
  j.Field("tie", r.tie_note);
  CandidateSections(j, r);
  SavingsSection(j, r.savings);
  RecommendationSection(j, r);
  j.BeginObject("sim").Field("simulations", r.simulations).Field("wall_s", r.wall_s).EndObject();
  j.EndObject();
  return j.str();
}

std::string FormatPlan(const PlanResult& r, const PlanConfig& plan) {
  std::string out = "SLOs applied:\n";
  for (const std::string& line : DescribeSlo(plan.slo)) out += "  " + line + "\n";
  out += fmt::format("target load {:.4g} QPS; ranked: {}\n", r.target_qps, kRankingRule);
  out += fmt::format("{:<44}{:>10}{:>9}{:>7}{:>10}{:>10}{:>13}  {}\n", "candidate", "QPS/repl",
                     "replicas", "GPUs", "$/hour", "$/Mtok", "TTFT p99 ms", "binding SLO");
  auto row = [&](const CandidateResult& c) {
    out += fmt::format("{:<44}{:>10.3g}{:>9}{:>7}{:>10.2f}{:>10.3f}{:>13}  {}{}\n", c.name,
                       c.max_qps_per_replica, c.replicas, c.gpus, c.cost_per_hour,
                       c.cost_per_million_output_tokens,
                       FormatOrNa(1e3 * c.at_max.ttft_s.OrNaN(&Percentiles::p99), "{:.1f}"),
                       c.search.binding, c.pareto ? "  (pareto)" : "");
  };
  for (size_t i : r.ranking) row(r.candidates[i]);
  for (const CandidateResult& c : r.candidates) {
    if (!c.meets_slo)
      out += fmt::format("{:<44}  {}\n", c.name, c.feasible ? c.note : "infeasible: " + c.note);
  }
  for (const KvSaving& s : r.savings) {
    if (s.saving > 0) {
      out += fmt::format("KV manager {} is {:.0f}% cheaper than {} at these SLOs\n", s.manager,
                         100 * s.saving, s.versus);
    }
  }
  if (!r.tie_note.empty()) out += "tie: " + r.tie_note + "\n";
  if (!r.recommendation) {
    out += "recommendation: infeasible, no candidate meets the SLOs at any load tried\n";
  } else {
    const Recommendation& rec = *r.recommendation;
    const CandidateResult& c = r.candidates[rec.candidate];
    out += fmt::format(
        "recommendation: {} x {} ({} GPUs, ${:.2f}/hour){}\n", rec.replicas, c.name, rec.gpus,
        rec.cost_per_hour,
        rec.verified
            ? fmt::format(", verified: the whole fleet at {:.4g} QPS has TTFT p99 {:.1f} ms, "
                          "E2E p99 {:.3f} s",
                          r.target_qps, 1e3 * rec.fleet.ttft_s.p99, rec.fleet.e2e_s.p99)
        : rec.too_few_requests
            ? fmt::format(", NOT verified: the trace held {} requests for the whole-fleet run, "
                          "{} per replica, fewer than half of a probe's",
                          rec.fleet.requests_total, rec.fleet_requests_per_replica)
            : fmt::format(", NOT verified: the whole-fleet run with {} replicas missed {}",
                          rec.fleet_replicas, rec.verdict.binding));
    if (!c.timing_line.empty()) out += "  " + c.timing_line + "\n";
  }
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
