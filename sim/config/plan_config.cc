// Strict decoding of plan YAML into PlanConfig.
#include "sim/config/plan_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <utility>

#include "sim/config/map_reader.h"
#include "sim/config/plan_candidates.h"
#include "sim/core/check.h"

namespace kvsim {
namespace {

// Latency limits above these (seconds) are far beyond any interactive SLO: most
// likely milliseconds written where kvsim reads seconds.
constexpr double kLikelyMsFirstTokenS = 600;  // TTFT, E2E: 10 minutes
constexpr double kLikelyMsPerTokenS = 10;     // TBT, TPOT: 10 s between two tokens

// What `slo:` takes, for the error on one written with no value.
constexpr const char* kSloExpected = "a mapping of service-level objectives";

// A latency limit in seconds under `key`, with a warning when it looks like ms.
double LatencyLimit(MapReader& r, const std::string& key, double likely_ms_above,
                    std::vector<std::string>& warnings) {
  const double v = r.Double(key, 0, 1e-9, 1e9);
  if (v > likely_ms_above) {
    warnings.push_back(fmt::format(
        "{}: {:g} s is above {:g} s; SLOs are in seconds (if you meant {:g} ms, write {:g})",
        r.Where(r.Value(key), r.KeyPath(key)), v, likely_ms_above, v, v / 1000));
  }
  return v;
}

void DecodePercentiles(MapReader r, PercentileSlo& p, double likely_ms_above,
                       std::vector<std::string>& warnings) {
  for (const char* key : {"p50", "p90", "p99"}) {
    if (!r.HasScalar(key, "a number of seconds")) continue;
    const double v = LatencyLimit(r, key, likely_ms_above, warnings);
    (std::string(key) == "p50" ? p.p50 : std::string(key) == "p90" ? p.p90 : p.p99) = v;
  }
  r.Finish();
}

void DecodeSlo(MapReader r, SloSpec& s, std::vector<std::string>& warnings) {
  DecodePercentiles(r.Child("ttft_s"), s.ttft_s, kLikelyMsFirstTokenS, warnings);
  DecodePercentiles(r.Child("tbt_s"), s.tbt_s, kLikelyMsPerTokenS, warnings);
  DecodePercentiles(r.Child("tpot_s"), s.tpot_s, kLikelyMsPerTokenS, warnings);
  DecodePercentiles(r.Child("e2e_s"), s.e2e_s, kLikelyMsFirstTokenS, warnings);
  if (r.HasScalar("attainment", "a number")) s.attainment = r.Double("attainment", 0, 1e-6, 1.0);
  {
    MapReader q = r.Child("request");
    constexpr const char* kSeconds = "a number of seconds";
    if (q.HasScalar("ttft_s", kSeconds))
      s.request_ttft_s = LatencyLimit(q, "ttft_s", kLikelyMsFirstTokenS, warnings);
    if (q.HasScalar("tpot_s", kSeconds))
      s.request_tpot_s = LatencyLimit(q, "tpot_s", kLikelyMsPerTokenS, warnings);
    if (q.HasScalar("e2e_s", kSeconds))
      s.request_e2e_s = LatencyLimit(q, "e2e_s", kLikelyMsFirstTokenS, warnings);
    q.Finish();
  }
  s.stability = r.Bool("stability", s.stability);
  s.stability_slack_s = r.Double("stability_slack_s", s.stability_slack_s, 0, 1e6);
  s.admitted_set = s.admitted_set || r.Has("admitted");  // a scenario's over the plan's
  s.admitted = r.Double("admitted", s.admitted, 0, 1);
  r.Finish();
  if (s.attainment && !s.request_ttft_s && !s.request_tpot_s && !s.request_e2e_s) {
    r.Fail("attainment", "needs at least one per-request threshold under slo.request");
  }
}

}  // namespace

bool SloSpec::empty() const {
  const auto none = [](const PercentileSlo& p) { return !p.p50 && !p.p90 && !p.p99; };
  return none(ttft_s) && none(tbt_s) && none(tpot_s) && none(e2e_s) && !attainment && !stability;
}

std::string KvChoice::Label() const {
  std::string label(kKvManagerTypes.Name(type));
  if (type == KvManagerType::kPaged && block_tokens > 0) label += std::to_string(block_tokens);
  if (type == KvManagerType::kVAttention && page_bytes > 0) {
    label += PageSizeText(page_bytes, "");
  }
  return label;
}

std::string SchedulerChoice::Label() const {
  std::string label(kSchedulerTypes.Name(type));
  if (type == SchedulerType::kSarathi && chunk_tokens > 0) label += std::to_string(chunk_tokens);
  if (type != SchedulerType::kSarathi && chunk_tokens > 0) {
    label += fmt::format("-chunk{}", chunk_tokens);
  }
  if (max_num_batched_tokens > 0) label += fmt::format("-{}tokens", max_num_batched_tokens);
  if (max_num_seqs > 0) label += fmt::format("-{}seqs", max_num_seqs);
  return label;
}

namespace {

// Scenario keys every plan candidate or probe sets itself, with where the plan sets them:
// a value in `set:` would be replaced without a word.
const std::map<std::string, std::string>& CandidateSetKeys() {
  static const std::map<std::string, std::string> keys = {
      {"gpu", "candidates.gpus"},
      {"deployment.tensor_parallel", "candidates.tensor_parallel"},
      {"deployment.replicas",
       "the plan's sizing (one replica per probe, the fleet's in the check)"},
      {"deployment.router", "the plan's fleet check (least outstanding)"},
      {"kv_cache.type", "candidates.kv_managers"},
      {"scheduler.type", "candidates.schedulers"},
      {"workload.arrival.rate_qps", "the rate search (search:) and target:"}};
  return keys;
}

// Throws, naming `where` (the plan's `set:` line), for an override of `key` = `value`
// (a key path; a mapping value is looked into) that the candidates replace.
void RefuseCandidateKey(const std::string& key, const std::string& value,
                        const std::string& where) {
  if (const auto it = CandidateSetKeys().find(key); it != CandidateSetKeys().end()) {
    throw InputError(fmt::format("{}: {}: every candidate sets it ({}); the plan's set: cannot",
                                 where, key, it->second));
  }
  const YAML::Node map = YAML::Load(value);  // a mapping in flow or block style
  if (!map.IsMap()) return;
  for (const auto& kv : map) {
    YAML::Emitter out;
    out << YAML::Flow << kv.second;
    RefuseCandidateKey(key + "." + kv.first.as<std::string>(), out.c_str(), where);
  }
}

// The scenario file under `scenario:` of `r` (a path relative to `base_dir`) with
// `common` (the plan's top-level `set:`, written at `common_where`) and then `r`'s own
// `set:` overrides applied, each remembering where it was written so that an error
// about it names the plan's line; a scenario that fails to load is the plan's error.
ConfigTree LoadScenarioTree(MapReader& r, const std::string& base_dir,
                            const std::vector<std::pair<std::string, std::string>>& common,
                            const std::string& common_where) {
  if (!r.HasScalar("scenario", "the path of a scenario config")) {
    r.Fail("scenario", "required: the scenario config to size");
  }
  const std::string scenario_path = Resolve(base_dir, r.String("scenario", ""));
  std::optional<ConfigTree> tree;
  try {
    tree = ConfigTree::Load(scenario_path);
  } catch (const InputError& e) {
    r.Fail("scenario", e.what());
  }
  for (const auto& [key, value] : common) tree->Set(key, value, common_where);
  const std::string where = r.Where(r.Value("set"), r.KeyPath("set"));
  for (const auto& [key, value] : r.Child("set").Overrides()) {
    RefuseCandidateKey(key, value, where);
    tree->Set(key, value, where);
  }
  return *tree;
}

// `target:` of `parent`: exactly one of the load to serve (qps, requests/s) and the
// window (seconds) whose busiest stretch of the trace sets it.
void DecodeTarget(MapReader& parent, PlanScenario& s) {
  parent.HasValue("target", "a mapping {qps} or {trace_peak_window_s}");
  MapReader t = parent.Child("target");
  if (!t.IsMap()) t.Fail("qps", "required: target.qps or target.trace_peak_window_s");
  s.target_qps = t.Double("qps", 0, 0, 1e9);
  s.trace_peak_window_s = t.Double("trace_peak_window_s", 0, 0, 1e9);
  if ((s.target_qps > 0) == (s.trace_peak_window_s > 0)) {
    t.Fail("qps", "give exactly one of target.qps and target.trace_peak_window_s");
  }
  t.Finish();
}

void RequireObjective(MapReader& r, const SloSpec& slo) {
  if (slo.empty()) r.Fail("slo", "no objective given: set a percentile, attainment or stability");
}

// `scenario:` with `set:` and `target:` at the top level: the plan's one scenario.
void DecodeOneScenario(MapReader& r, const std::string& base_dir, PlanConfig& c) {
  PlanScenario s{"", c.plan_file, LoadScenarioTree(r, base_dir, {}, ""), 0, 0, {}};
  DecodeTarget(r, s);
  if (!r.Has("slo")) r.Fail("slo", "required: the service-level objectives to meet");
  s.slo = c.slo;
  if (r.Present("combine")) r.Fail("combine", "applies to a plan with several scenarios:");
  c.scenarios.push_back(std::move(s));
}

// `scenarios:`: a non-empty list of {name, scenario, set, target, slo}, each entry's
// slo replacing the plan's, the plan's top-level `set:` applied to every scenario.
void DecodeScenarioList(MapReader& r, const std::string& base_dir, PlanConfig& c) {
  const auto common = r.Child("set").Overrides();
  const std::string common_where = r.Where(r.Value("set"), r.KeyPath("set"));
  for (const auto& [key, value] : common) RefuseCandidateKey(key, value, common_where);
  const YAML::Node list = r.Value("scenarios");
  if (!list.IsSequence() || list.size() == 0) r.Fail("scenarios", "expected a non-empty list");
  std::map<std::string, std::string> first_at;  // name -> where
  for (size_t i = 0; i < list.size(); ++i) {
    MapReader m(list[i], fmt::format("scenarios[{}]", i), r.context());
    const std::string where = m.Where(list[i], fmt::format("scenarios[{}]", i));
    if (!m.HasScalar("name", "a name") || m.String("name", "").empty()) {
      m.Fail("name", "required: a name for this scenario in the plan's outputs");
    }
    const std::string name = m.String("name", "");
    if (const auto [it, fresh] = first_at.emplace(name, where); !fresh) {
      m.Fail("name", fmt::format("'{}' is already the name of {}", name, it->second));
    }
    PlanScenario s{name, where, LoadScenarioTree(m, base_dir, common, common_where), 0, 0, {}};
    DecodeTarget(m, s);
    if (m.HasValue("slo", kSloExpected)) {
      DecodeSlo(m.Child("slo"), s.slo, c.warnings);
      RequireObjective(m, s.slo);
    } else if (r.Has("slo")) {
      s.slo = c.slo;
    } else {
      m.Fail("slo", "required: this scenario's SLOs, or a plan-wide slo:");
    }
    m.Finish();
    c.scenarios.push_back(std::move(s));
  }
  if (c.scenarios.size() > 1 && !r.HasScalar("combine", "one of " + kFleetRules.NameList())) {
    r.Fail("scenarios",
           "several scenarios need combine: one_fleet (one fleet serves each scenario in turn: its "
           "size is the largest any needs) or separate_fleets (each scenario its own fleet: sizes "
           "and costs add)");
  }
  c.combine = r.Enum("combine", FleetRule::kOneFleet, kFleetRules);
}

// `search:`: the rate search's start and limit (requests/s), tolerance, probe count
// and requests per probe; unset keys keep their defaults.
void DecodeSearch(MapReader s, PlanConfig& c) {
  c.initial_qps = s.Double("initial_qps", c.initial_qps, 1e-6, 1e9);
  c.tolerance = s.Double("tolerance", c.tolerance, 1e-4, 1.0);
  c.max_qps = s.Double("max_qps", c.max_qps, 1e-6, 1e9);
  c.max_probes = static_cast<int>(s.Int("max_probes", c.max_probes, 2, 10000));
  c.probe_requests = s.Int("probe_requests", c.probe_requests, 10, int64_t{1} << 32);
  if (c.initial_qps > c.max_qps) s.Fail("initial_qps", "must not exceed search.max_qps");
  s.Finish();
}

// `prices:`: $/GPU-hour by GPU card name, overriding the cards' own prices.
void DecodePrices(MapReader prices, PlanConfig& c) {
  if (!prices.IsMap()) return;
  for (const auto& kv : prices.node()) {
    const std::string gpu = kv.first.as<std::string>();
    c.prices[gpu] = prices.Double(gpu, 0, 0, 1e6);
    c.price_where[gpu] = prices.Where(kv.first, prices.KeyPath(gpu));
  }
}

}  // namespace

PlanConfig LoadPlan(const std::string& path) {
  const ConfigTree tree = ConfigTree::Load(path);
  PlanConfig c;
  c.plan_file = path;
  const DecodeContext ctx{c.plan_file, tree.overridden()};
  MapReader r(tree.root(), "", ctx);

  if (r.HasValue("slo", kSloExpected)) {
    DecodeSlo(r.Child("slo"), c.slo, c.warnings);
    RequireObjective(r, c.slo);
  }
  const bool one = r.HasScalar("scenario", "the path of a scenario config");
  const bool list = r.HasValue("scenarios", "a non-empty list of {name, scenario, target, slo}");
  if (one && list) r.Fail("scenarios", "give either scenario: (one) or scenarios: (a list)");
  if (!one && !list) r.Fail("scenario", "required: the scenario config to size");
  if (one) {
    DecodeOneScenario(r, tree.base_dir(), c);
  } else {
    DecodeScenarioList(r, tree.base_dir(), c);
  }
  DecodeSearch(r.Child("search"), c);
  r.HasValue("candidates", "a mapping of gpus, tensor_parallel, kv_managers and schedulers");
  DecodeCandidates(r.Child("candidates"), ctx, c);
  DecodePrices(r.Child("prices"), c);
  c.verify = r.Bool("verify", c.verify);
  c.jobs = static_cast<int>(r.Int("jobs", 0, 0, 1024));
  r.Finish();
  // In doubles: the product of four lists and the scenarios may pass 2^63.
  const double searches =
      static_cast<double>(c.gpus.size()) * static_cast<double>(c.tensor_parallel.size()) *
      static_cast<double>(c.kv_managers.size()) * static_cast<double>(c.schedulers.size()) *
      static_cast<double>(c.scenarios.size());
  if (searches > static_cast<double>(kMaxPlanSearches)) {
    r.Fail("candidates",
           fmt::format("{} GPUs x {} tensor-parallel degrees x {} KV managers x {} schedulers x "
                       "{} scenarios = {:.4g} searches, more than the {} one plan may hold; "
                       "narrow the lists and ranges, or split the space over several plans",
                       c.gpus.size(), c.tensor_parallel.size(), c.kv_managers.size(),
                       c.schedulers.size(), c.scenarios.size(), searches, kMaxPlanSearches));
  }
  return c;
}

}  // namespace kvsim
