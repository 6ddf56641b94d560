// Strict decoding of plan YAML into PlanConfig.
#include "sim/config/plan_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "sim/config/map_reader.h"
#include "sim/config/plan_candidates.h"
#include "sim/core/check.h"

namespace kvsim {
namespace {

// Latency limits above these (seconds) are far beyond any interactive SLO: most
// likely milliseconds written where kvsim reads seconds.
constexpr double kLikelyMsFirstTokenS = 600;  // TTFT, E2E: 10 minutes
constexpr double kLikelyMsPerTokenS = 10;     // TBT, TPOT: 10 s between two tokens

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
    if (!r.Has(key)) continue;
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
  if (r.Has("attainment")) s.attainment = r.Double("attainment", 0, 1e-6, 1.0);
  {
    MapReader q = r.Child("request");
    if (q.Has("ttft_s"))
      s.request_ttft_s = LatencyLimit(q, "ttft_s", kLikelyMsFirstTokenS, warnings);
    if (q.Has("tpot_s")) s.request_tpot_s = LatencyLimit(q, "tpot_s", kLikelyMsPerTokenS, warnings);
    if (q.Has("e2e_s")) s.request_e2e_s = LatencyLimit(q, "e2e_s", kLikelyMsFirstTokenS, warnings);
    q.Finish();
  }
  s.stability = r.Bool("stability", s.stability);
  s.stability_slack_s = r.Double("stability_slack_s", s.stability_slack_s, 0, 1e6);
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
    label += page_bytes % (1 << 20) == 0 ? fmt::format("{}MiB", page_bytes >> 20)
                                         : fmt::format("{}KiB", page_bytes >> 10);
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

// The plan's base scenario (`scenario:`, a path relative to `base_dir`) with the
// plan's `set:` overrides applied; a scenario that fails to load is the plan's error.
void LoadPlanScenario(MapReader& r, const std::string& base_dir, PlanConfig& c) {
  if (!r.Has("scenario")) r.Fail("scenario", "required: the scenario config to size");
  const std::string scenario_path = Resolve(base_dir, r.String("scenario", ""));
  try {
    c.scenario = ConfigTree::Load(scenario_path);
  } catch (const InputError& e) {
    r.Fail("scenario", e.what());
  }
  for (const auto& [key, value] : r.Child("set").Overrides()) c.scenario->Set(key, value);
}

// `target:`: exactly one of the load to serve (qps, requests/s) and the window
// (seconds) whose busiest stretch of the trace sets it.
void DecodeTarget(MapReader t, PlanConfig& c) {
  c.target_qps = t.Double("qps", 0, 0, 1e9);
  c.trace_peak_window_s = t.Double("trace_peak_window_s", 0, 0, 1e9);
  if ((c.target_qps > 0) == (c.trace_peak_window_s > 0)) {
    t.Fail("qps", "give exactly one of target.qps and target.trace_peak_window_s");
  }
  t.Finish();
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
  }
}

}  // namespace

PlanConfig LoadPlan(const std::string& path) {
  const ConfigTree tree = ConfigTree::Load(path);
  PlanConfig c;
  c.plan_file = path;
  const DecodeContext ctx{c.plan_file, tree.overridden()};
  MapReader r(tree.root(), "", ctx);

  LoadPlanScenario(r, tree.base_dir(), c);
  if (!r.Has("slo")) r.Fail("slo", "required: the service-level objectives to meet");
  DecodeSlo(r.Child("slo"), c.slo, c.warnings);
  DecodeTarget(r.Child("target"), c);
  DecodeSearch(r.Child("search"), c);
  DecodeCandidates(r.Child("candidates"), ctx, c);
  DecodePrices(r.Child("prices"), c);
  c.verify = r.Bool("verify", c.verify);
  c.jobs = static_cast<int>(r.Int("jobs", 0, 0, 1024));
  r.Finish();
  if (c.slo.empty()) r.Fail("slo", "no objective given: set a percentile, attainment or stability");
  return c;
}

}  // namespace kvsim
