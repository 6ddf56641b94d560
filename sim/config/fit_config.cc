// Fit file decoding (see fit_config.h).
#include "sim/config/fit_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "sim/config/calibration.h"
#include "sim/config/map_reader.h"
#include "sim/core/check.h"

namespace kvsim {
namespace {

constexpr const char* kMetrics[] = {"ttft_s", "tpot_s", "itl_s", "e2e_s"};
constexpr const char* kStats[] = {"mean", "p50", "p90", "p99"};

bool OneOf(const std::string& s, const auto& names) {
  for (const char* n : names) {
    if (s == n) return true;
  }
  return false;
}

std::vector<std::pair<FitMetric, double>> DecodeAggregates(MapReader& parent,
                                                           const std::string& key) {
  std::vector<std::pair<FitMetric, double>> out;
  MapReader a = parent.Child(key);
  if (!a.IsMap()) parent.Fail(key, "expected a mapping like {ttft_s: {mean: 0.2, p99: 0.9}}");
  for (const auto& kv : a.node()) {
    const std::string metric = kv.first.as<std::string>();
    if (!OneOf(metric, kMetrics)) {
      a.Fail(metric, "unknown metric; valid: ttft_s, tpot_s, itl_s, e2e_s");
    }
    MapReader m = a.Child(metric);
    if (!m.IsMap()) a.Fail(metric, "expected a mapping of statistics, e.g. {mean: 0.2, p99: 0.9}");
    for (const char* stat : kStats) {
      if (!m.HasScalar(stat, "a number")) continue;
      const double v = m.Double(stat, 0, 0, 1e9);
      if (!(v > 0)) m.Fail(stat, "must be > 0 (errors are relative to it)");
      out.push_back({{metric, stat}, v});
    }
    m.Finish();
  }
  a.Finish();
  if (out.empty()) parent.Fail(key, "holds no measured values");
  return out;
}

// The stages of the run read by `e` (at key path `path`): a non-empty list of
// {set, aggregates}, labelled stage1, stage2, ...
std::vector<FitStage> DecodeStages(MapReader& e, const std::string& path,
                                   const DecodeContext& ctx) {
  std::vector<FitStage> stages;
  const YAML::Node list = e.Value("stages");
  if (!list.IsSequence() || list.size() == 0) {
    e.Fail("stages", "expected a list of {set, aggregates}");
  }
  for (size_t k = 0; k < list.size(); ++k) {
    const std::string sp = fmt::format("{}.stages[{}]", path, k);
    MapReader st(list[k], sp, ctx);
    if (!st.IsMap()) throw InputError(e.Where(list[k], sp) + ": expected {set, aggregates}");
    FitStage s;
    s.label = fmt::format("stage{}", k + 1);
    s.where = st.Where(list[k], sp);
    s.overrides = st.Child("set").Overrides();
    s.aggregates = DecodeAggregates(st, "aggregates");
    st.Finish();
    stages.push_back(std::move(s));
  }
  return stages;
}

// Sets what run `run` (read by `e`) was measured as: exactly one of requests (a
// per-request file, resolved against `base`, with its format), aggregates or stages,
// none of them written with no value.
void DecodeMeasured(MapReader& e, const std::string& path, const std::string& base,
                    const DecodeContext& ctx, FitRun& run) {
  const bool has_requests = e.HasScalar("requests", "the path of a per-request file");
  const bool has_aggregates =
      e.HasValue("aggregates", "a mapping like {ttft_s: {mean: 0.2, p99: 0.9}}");
  const bool has_stages = e.HasValue("stages", "a list of {set, aggregates}");
  if (has_requests + has_aggregates + has_stages != 1) {
    e.Fail(has_requests     ? "requests"
           : has_aggregates ? "aggregates"
                            : "stages",
           "a run gives exactly one of requests (a per-request file), aggregates or stages");
  }
  if (has_requests) {
    run.requests_path = Resolve(base, e.String("requests", ""));
    run.requests_format = e.String("format", "");
  } else {
    if (e.Present("format")) e.Fail("format", "only with requests");
  }
  if (has_aggregates) {
    FitStage s;
    s.label = run.name;
    s.where = run.where;
    s.aggregates = DecodeAggregates(e, "aggregates");
    run.stages.push_back(std::move(s));
  }
  if (has_stages) run.stages = DecodeStages(e, path, ctx);
}

// Run `i` of the list `runs` under `r`: a name usable as a directory and not in
// `names` (added to it), its scenario (resolved against `base`), overrides and
// measurements.
FitRun DecodeRun(const MapReader& r, const YAML::Node& runs, size_t i, const std::string& base,
                 const DecodeContext& ctx, std::set<std::string>& names) {
  const std::string path = fmt::format("runs[{}]", i);
  MapReader e(runs[i], path, ctx);
  if (!e.IsMap()) throw InputError(r.Where(runs[i], path) + ": expected a mapping");
  FitRun run;
  run.where = e.Where(runs[i], path);
  run.name = e.String("name", "");
  if (run.name.empty()) e.Fail("name", "required");
  if (run.name.find_first_of("/\\ ") != std::string::npos || run.name.starts_with(".")) {
    e.Fail("name", "must be usable as a directory name (no '/', '\\', spaces or leading '.')");
  }
  if (!names.insert(run.name).second) e.Fail("name", "duplicate run name '" + run.name + "'");
  run.scenario_path = Resolve(base, e.String("scenario", ""));
  if (run.scenario_path.empty()) e.Fail("scenario", "required: the kvsim scenario of this run");
  run.overrides = e.Child("set").Overrides();
  DecodeMeasured(e, path, base, ctx, run);
  e.Finish();
  return run;
}

// The required, non-empty list `runs` under `r`, with unique names.
std::vector<FitRun> DecodeRuns(MapReader& r, const std::string& base, const DecodeContext& ctx) {
  r.HasValue("runs", "a list of measured runs ({name, scenario, requests | aggregates | stages})");
  const YAML::Node runs = r.Value("runs");
  if (!runs.IsDefined() || !runs.IsSequence() || runs.size() == 0) {
    r.Fail("runs",
           "required: a list of measured runs ({name, scenario, requests | aggregates "
           "| stages})");
  }
  std::vector<FitRun> out;
  out.reserve(runs.size());
  std::set<std::string> names;
  for (size_t i = 0; i < runs.size(); ++i) out.push_back(DecodeRun(r, runs, i, base, ctx, names));
  return out;
}

// The required, non-empty map `free` under `r`: fittable term keys, each with bounds
// {min, max} (the term's defaults when absent, in its units) and an optional start.
std::vector<FreeTerm> DecodeFreeTerms(MapReader& r) {
  std::vector<FreeTerm> out;
  r.HasValue("free", "a mapping of the timing terms to fit, e.g. {timing.engine.per_seq_s: {}}");
  MapReader f = r.Child("free");
  if (!f.IsMap() || f.node().size() == 0) {
    r.Fail("free", "required: the timing terms to fit, e.g. {timing.engine.per_seq_s: {}}");
  }
  for (const auto& kv : f.node()) {
    const std::string key = kv.first.as<std::string>();
    const FittableTerm* term = FindFittableTerm(key);
    if (term == nullptr) {
      std::string valid;
      for (const FittableTerm& t : FittableTerms())
        valid += (valid.empty() ? "" : ", ") + std::string(t.key);
      f.Fail(key, "not a term kvsim fit can calibrate; fittable: " + valid);
    }
    MapReader b = f.Child(key);
    FreeTerm t;
    t.key = key;
    t.where = f.Where(kv.first, f.KeyPath(key));
    t.min_value = b.Double("min", term->min_value, term->min_value, term->max_value);
    t.max_value = b.Double("max", term->max_value, term->min_value, term->max_value);
    if (!(t.min_value < t.max_value)) b.Fail("max", "must be greater than min");
    t.has_start = b.Has("start");
    t.start = b.Double("start", 0, t.min_value, t.max_value);
    b.Finish();
    out.push_back(std::move(t));
  }
  f.Finish();
  return out;
}

// The list `metrics` under `r`, each named once; DefaultFitMetrics() when absent (not
// when written with no value). An error when no run of `runs` is measured per request:
// aggregate runs match the aggregates they list, so the list would be ignored.
std::vector<FitMetric> DecodeMetrics(MapReader& r, const std::vector<FitRun>& runs) {
  if (!r.HasValue("metrics", "a list like [ttft_s.mean]")) return DefaultFitMetrics();
  if (std::none_of(runs.begin(), runs.end(),
                   [](const FitRun& run) { return !run.requests_path.empty(); })) {
    r.Fail("metrics",
           "applies only to runs measured per request (requests:), and every run here gives "
           "aggregates or stages, which match the aggregates they list; remove metrics, or "
           "list what to match under each run's aggregates");
  }
  std::vector<FitMetric> out;
  const YAML::Node list = r.Value("metrics");
  if (!list.IsSequence() || list.size() == 0)
    r.Fail("metrics", "expected a list like [ttft_s.mean]");
  for (const YAML::Node& n : list) {
    const FitMetric m = ParseFitMetric(n.IsScalar() ? n.Scalar() : "?", r.Where(n, "metrics"));
    for (const FitMetric& seen : out) {
      if (seen == m) throw InputError(r.Where(n, "metrics") + ": " + m.Name() + " twice");
    }
    out.push_back(m);
  }
  return out;
}

// The optional map `solver` under `r`: method, iteration limit, difference step (a
// fraction of each term's range) and the acceptance bound on the mean |relative
// error| (a fraction), each defaulting to FitSolverConfig's.
FitSolverConfig DecodeSolver(MapReader& r) {
  FitSolverConfig c;
  MapReader s = r.Child("solver");
  c.method = s.Enum<std::string>("method", c.method, {{"lm", "lm"}, {"pattern", "pattern"}});
  c.max_iterations = static_cast<int>(s.Int("max_iterations", c.max_iterations, 1, 100000));
  c.difference_step = s.Double("difference_step", c.difference_step, 1e-7, 0.1);
  c.max_mean_error = s.Double("max_mean_error", c.max_mean_error, 1e-6, 100);
  s.Finish();
  return c;
}

}  // namespace

FitMetric ParseFitMetric(const std::string& text, const std::string& where) {
  const size_t dot = text.find('.');
  FitMetric m{text.substr(0, dot), dot == std::string::npos ? "" : text.substr(dot + 1)};
  if (!OneOf(m.metric, kMetrics) || !OneOf(m.stat, kStats)) {
    throw InputError(fmt::format(
        "{}: unknown metric '{}'; valid: ttft_s, tpot_s, itl_s or e2e_s, then .mean, .p50, .p90 "
        "or .p99 (e.g. ttft_s.p99)",
        where, text));
  }
  return m;
}

std::vector<FitMetric> DefaultFitMetrics() {
  return {{"ttft_s", "mean"}, {"ttft_s", "p99"}, {"tpot_s", "mean"},
          {"tpot_s", "p99"},  {"e2e_s", "mean"}, {"e2e_s", "p99"}};
}

FitConfig DecodeFitConfig(const ConfigTree& tree) {
  FitConfig c;
  c.file = tree.origin();
  const std::string base = tree.base_dir();
  const DecodeContext ctx{c.file, tree.overridden()};
  MapReader r(tree.root(), "", ctx);
  c.name = r.String("name", std::filesystem::path(c.file).stem().string());
  c.runs = DecodeRuns(r, base, ctx);
  c.free = DecodeFreeTerms(r);
  c.metrics = DecodeMetrics(r, c.runs);
  c.solver = DecodeSolver(r);
  r.Finish();
  return c;
}

}  // namespace kvsim
