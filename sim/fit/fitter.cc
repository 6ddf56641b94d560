// The fitter (see fitter.h).
#include "sim/fit/fitter.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "sim/core/check.h"
#include "sim/core/file_writer.h"
#include "sim/core/parallel.h"
#include "sim/fit/fit_verdict.h"
#include "sim/fit/measurement.h"
#include "sim/metrics/metrics.h"
#include "sim/simulator/builder.h"
#include "sim/timing/execution_time_model.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;

double Stat(const Percentiles& p, const std::string& stat) {
  if (stat == "mean") return p.mean;
  if (stat == "p50") return p.p50;
  if (stat == "p90") return p.p90;
  return p.p99;
}

// The measured value of `m` over the requests; NaN when the format does not record
// it (inter-token gaps).
double MeasuredValue(const MeasuredRequests& run, const FitMetric& m) {
  std::vector<double> xs;
  for (const MeasuredRequest& r : run.requests) {
    if (m.metric == "ttft_s") xs.push_back(r.ttft_s);
    if (m.metric == "e2e_s") xs.push_back(r.e2e_s);
    if (m.metric == "tpot_s" && r.output_tokens > 1) {
      xs.push_back((r.e2e_s - r.ttft_s) / static_cast<double>(r.output_tokens - 1));
    }
    if (m.metric == "itl_s") xs.insert(xs.end(), r.itls_s.begin(), r.itls_s.end());
  }
  if (xs.empty()) return std::nan("");
  return Stat(PercentilesOf(std::move(xs)), m.stat);
}

double SimulatedValue(const Summary& s, const FitMetric& m) {
  if (m.metric == "ttft_s") return Stat(s.ttft_s, m.stat);
  if (m.metric == "tpot_s") return Stat(s.tpot_s, m.stat);
  if (m.metric == "e2e_s") return Stat(s.e2e_s, m.stat);
  return Stat(s.tbt_s, m.stat);  // itl_s: every gap between consecutive tokens
}

// Writes the measured requests as a splitwise-format trace (arrived_at,
// num_prefill_tokens, num_decode_tokens), arrivals at nanosecond precision.
void WriteReplayTrace(const MeasuredRequests& run, const std::string& path) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  FileWriter f(path);
  f.Text("arrived_at,num_prefill_tokens,num_decode_tokens\n");
  for (const MeasuredRequest& r : run.requests) {
    f.Text(fmt::format("{:.9f},{},{}\n", r.arrival_s, r.prompt_tokens, r.output_tokens));
  }
  f.Commit();
}

// The typed workload that replays `run` from the trace at `trace_path` (absolute),
// replacing the scenario's whole workload. Throws InputError naming `where` (the fit
// file's run) for a recorded rate or burstiness no workload can take.
ScenarioDelta ReplayDelta(const MeasuredRequests& run, const std::string& trace_path,
                          const std::string& where) {
  ScenarioDelta d;
  d.replace_workload = true;
  d.trace = trace_path;
  d.lengths = LengthSource::kTrace;
  if (run.arrivals_recorded || !std::isfinite(run.request_rate_qps)) {
    // Recorded arrivals, or everything sent at once (the trace holds zeros).
    d.arrival = ArrivalProcess::kTrace;
    return d;
  }
  // The bounds decoding puts on workload.arrival.rate_qps and workload.arrival.cv.
  constexpr double kMaxRateQps = 1e9, kMinCv = 1e-3, kMaxCv = 1e3;
  if (!(run.request_rate_qps > 0 && run.request_rate_qps <= kMaxRateQps)) {
    throw InputError(
        fmt::format("{}: requests: {}: request_rate {} requests/s is outside (0, {:g}]", where,
                    run.path, run.request_rate_qps, kMaxRateQps));
  }
  d.rate_qps = run.request_rate_qps;
  // benchmark_serving draws gaps from a gamma distribution of shape `burstiness`
  // (1: exponential) at the request rate: coefficient of variation 1 / sqrt(shape).
  if (run.burstiness == 1.0) {
    d.arrival = ArrivalProcess::kPoisson;
    return d;
  }
  const double cv = 1.0 / std::sqrt(run.burstiness);
  if (!(cv >= kMinCv && cv <= kMaxCv)) {
    throw InputError(fmt::format(
        "{}: requests: {}: burstiness {} gives gamma arrivals a coefficient of variation of {:g}, "
        "outside [{:g}, {:g}]",
        where, run.path, run.burstiness, cv, kMinCv, kMaxCv));
  }
  d.arrival = ArrivalProcess::kGamma;
  d.cv = cv;
  return d;
}

// The value a scenario resolves for a fittable key, or NaN when it leaves it to
// something the fitter cannot see (e.g. an all-reduce curve of a profile). Engine
// terms are the decoded config's, stated for the reference host: the simulation runs
// them divided by its host's speed, as it will run the fitted ones.
double ResolvedValue(const ScenarioConfig& decoded, const Simulation& sim, const std::string& key) {
  const TimingConfig& t = decoded.timing;
  const EngineConfig& e = t.engine;
  static const std::map<std::string, double EngineConfig::*> kEngine = {
      {"per_iteration_s", &EngineConfig::per_iteration_s},
      {"per_seq_s", &EngineConfig::per_seq_s},
      {"per_prefill_token_s", &EngineConfig::per_prefill_token_s},
      {"request_arrival_s", &EngineConfig::request_arrival_s},
      {"request_finish_s", &EngineConfig::request_finish_s},
      {"block_table_entry_s", &EngineConfig::block_table_entry_s},
      {"launch_per_layer_s", &EngineConfig::launch_per_layer_s},
      {"kernel_gap_s", &EngineConfig::kernel_gap_s}};
  const std::string engine_prefix = "timing.engine.";
  if (key.starts_with(engine_prefix)) {
    const auto it = kEngine.find(key.substr(engine_prefix.size()));
    return it == kEngine.end() ? std::nan("") : e.*(it->second);
  }
  if (key.starts_with("timing.roofline.")) {
    const RooflineConfig r = ResolveEfficiencies(t.roofline, sim.gpu(), nullptr);
    if (key.ends_with(".gemm_efficiency")) return r.gemm_efficiency;
    if (key.ends_with(".memory_efficiency")) return r.memory_efficiency;
    if (key.ends_with(".attention_prefill_efficiency")) return r.attention_prefill_efficiency;
    if (key.ends_with(".attention_decode_efficiency")) return r.attention_decode_efficiency;
  }
  if (key == "timing.profiled.attention_prefill_efficiency" ||
      key == "timing.profiled.memory_efficiency") {
    const double own = key.ends_with("prefill_efficiency") ? t.profiled.attention_prefill_efficiency
                                                           : t.profiled.memory_efficiency;
    if (own > 0) return own;
    const RooflineConfig r = ResolveEfficiencies(t.roofline, sim.gpu(), nullptr);
    return key.ends_with("prefill_efficiency") ? r.attention_prefill_efficiency
                                               : r.memory_efficiency;
  }
  if (key == "timing.allreduce.latency_s" && t.allreduce.latency_s >= 0) {
    return t.allreduce.latency_s;
  }
  if (key == "timing.allreduce.bus_efficiency" && t.allreduce.bus_efficiency > 0) {
    return t.allreduce.bus_efficiency;
  }
  return std::nan("");
}

// Simulates one case with the free terms at `x`.
CaseMetrics SimulateCase(const FitCase& c, const std::vector<FreeTerm>& free,
                         const std::vector<FitParam>& params, const Eigen::VectorXd& x) {
  KVSIM_CHECK(c.config != nullptr, "case " + c.label + " not resolved");
  ScenarioConfig config = *c.config;
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i].gpu.empty() || params[i].gpu == c.gpu) {
      double* field = TimingTermField(config.timing, free[params[i].term].key);
      KVSIM_CHECK(field != nullptr, "free term without a field: " + free[params[i].term].key);
      *field = x[static_cast<Eigen::Index>(i)];
    }
  }
  config.compare.clear();
  config.output.requests_csv = false;
  config.output.timeseries_csv = false;
  std::unique_ptr<Simulation> sim = BuildSimulation(config);
  const Summary s = sim->Run().summary;
  if (c.requests > 0 && (s.requests_total != c.requests || s.requests_completed != c.requests ||
                         s.requests_rejected > 0 || s.requests_truncated > 0)) {
    throw InputError(fmt::format(
        "run {}: the measurement has {} requests, the simulation offered {} and completed {} "
        "({} rejected, {} truncated by max_model_len {}); the scenario does not match the "
        "measured run (check deployment.max_model_len and the KV capacity)",
        c.label, c.requests, s.requests_total, s.requests_completed, s.requests_rejected,
        s.requests_truncated, sim->memory().max_model_len));
  }
  if (s.requests_completed < s.requests_total) {
    throw InputError(fmt::format("run {}: only {} of {} requests completed", c.label,
                                 s.requests_completed, s.requests_total));
  }
  CaseMetrics m;
  m.model = sim->model().name;
  m.gpu = sim->gpu().name;
  m.tensor_parallel = sim->config().deployment.tensor_parallel;
  for (const auto& [metric, measured] : c.targets) m.simulated.push_back(SimulatedValue(s, metric));
  return m;
}

// The run's scenario tree with the run's overrides applied; errors name the run.
ConfigTree RunScenario(const FitRun& run) {
  try {
    ConfigTree t = ConfigTree::Load(run.scenario_path);
    for (const auto& [key, value] : run.overrides) t.Set(key, value);
    return t;
  } catch (const InputError& e) {
    throw InputError(fmt::format("{}: scenario: {}", run.where, e.what()));
  }
}

// The format of the run's measured requests: the one named, else the one its file
// extension implies (an error when it implies none).
MeasurementFormat RequestsFormat(const FitRun& run) {
  if (!run.requests_format.empty()) {
    return ParseMeasurementFormat(run.requests_format, run.where + ": format");
  }
  const std::optional<MeasurementFormat> f = FormatFromExtension(run.requests_path);
  if (!f) {
    throw InputError(
        fmt::format("{}: requests: cannot tell the format of {} from its extension; set format: "
                    "vllm_requests_jsonl, benchmark_serving_json or requests_csv",
                    run.where, run.requests_path));
  }
  return *f;
}

// The measured value of each metric over the run's requests, in the metrics'
// order; an error for a metric the format does not record or that is not positive.
std::vector<std::pair<FitMetric, double>> MeasuredTargets(const FitRun& run,
                                                          MeasurementFormat format,
                                                          const MeasuredRequests& measured,
                                                          const std::vector<FitMetric>& metrics) {
  std::vector<std::pair<FitMetric, double>> targets;
  for (const FitMetric& m : metrics) {
    const double v = MeasuredValue(measured, m);
    if (std::isnan(v)) {
      throw InputError(fmt::format(
          "{}: metric {}: {} ({}) records no inter-token times; remove {} from metrics", run.where,
          m.Name(), run.requests_path, kMeasurementFormats.Name(format), m.Name()));
    }
    if (!(v > 0)) {
      throw InputError(fmt::format(
          "{}: metric {}: the measured value is {} in {}; a relative error needs a positive "
          "measurement, remove it from metrics",
          run.where, m.Name(), v, run.requests_path));
    }
    targets.push_back({m, v});
  }
  return targets;
}

// The case of a run measured per request: `base` with its workload replaced by a
// replay of the measurement from the CSV trace written to
// `out_dir`/workloads/<run>.csv (what was replayed, for the user), with the measured
// metrics.
FitCase MeasuredCase(const FitRun& run, const ConfigTree& base,
                     const std::vector<FitMetric>& metrics, const std::string& out_dir) {
  const MeasurementFormat format = RequestsFormat(run);
  const MeasuredRequests measured = [&] {
    try {
      return LoadMeasuredRequests(run.requests_path, format);
    } catch (const InputError& e) {  // named as the fit file's run that gives the path
      throw InputError(fmt::format("{}.requests: {}", run.where, e.what()));
    }
  }();
  const std::string trace = (fs::absolute(out_dir) / "workloads" / (run.name + ".csv")).string();
  WriteReplayTrace(measured, trace);
  return {run.name,
          run.name,
          base,
          ReplayDelta(measured, trace, run.where),
          MeasuredTargets(run, format, measured, metrics),
          static_cast<int64_t>(measured.requests.size()),
          "",
          {},
          nullptr};
}

// Appends one case per load stage of a run measured as aggregates: `base` with the
// stage's overrides, labelled "run/stage" (just "run" when it has one stage).
void AppendStageCases(const FitRun& run, const ConfigTree& base, std::vector<FitCase>* cases) {
  for (const FitStage& stage : run.stages) {
    ConfigTree t = base;
    try {
      for (const auto& [key, value] : stage.overrides) t.Set(key, value);
    } catch (const InputError& e) {
      throw InputError(fmt::format("{}: set: {}", stage.where, e.what()));
    }
    const std::string label = run.stages.size() == 1 ? run.name : run.name + "/" + stage.label;
    cases->push_back({run.name, label, t, std::nullopt, stage.aggregates, 0, "", {}, nullptr});
  }
}

// Decodes the case's scenario (once: each trial sets its terms on a copy) with the
// replayed workload applied typed, and builds it, recording its GPU and its own value
// of each free term; the first case sets the timing type, engine preset and engine
// kernels in `ran_on`, a later case under others is an error. Adds the case's host.
void ResolveCase(const std::vector<FreeTerm>& free, FitCase& c, Calibration* ran_on) {
  c.config = std::make_shared<const ScenarioConfig>(
      c.replay ? ApplyDelta(DecodeScenario(c.tree, DefaultModelsDir(), WorkloadDecoding::kSkip),
                            *c.replay)
               : DecodeScenario(c.tree, DefaultModelsDir()));
  const ScenarioConfig& sc = *c.config;
  const std::string type(kTimingTypes.Name(sc.timing.type));
  const std::string preset(kEnginePresets.Name(sc.timing.engine.preset));
  const EngineKernels kernels = EngineKernelsOf(sc.timing.engine);
  std::unique_ptr<Simulation> sim = BuildSimulation(sc);
  c.gpu = sim->gpu().name;
  for (const FreeTerm& t : free) c.resolved.push_back(ResolvedValue(sc, *sim, t.key));
  // Fixed timing reads no kernel settings (the calibration records none then).
  const bool fixed = sc.timing.type == TimingType::kFixed;
  if (ran_on->timing_type.empty()) {
    ran_on->timing_type = type;
    ran_on->engine_preset = preset;
    if (!fixed) ran_on->engine_kernels = kernels;
  } else if (type != ran_on->timing_type || preset != ran_on->engine_preset) {
    throw InputError(fmt::format(
        "runs under timing.type {} with engine preset {}, the first run under {} with {}: "
        "one calibration serves one timing model and preset",
        type, preset, ran_on->timing_type, ran_on->engine_preset));
  } else if (!fixed && kernels != *ran_on->engine_kernels) {
    throw InputError(fmt::format(
        "runs an engine with {}, the first run one with {}: one calibration serves one way of "
        "running the kernels",
        DescribeEngineKernels(kernels), DescribeEngineKernels(*ran_on->engine_kernels)));
  }
  // The engine as the run placed it (BuildSimulation's host).
  const EngineConfig& placed = sim->config().timing.engine;
  if (placed.host_cpu.empty()) return;  // fixed timing: no CPU terms on a host
  const std::string host =
      fmt::format("{}: {} (speed {:g})", c.gpu,
                  placed.host_cpu == kHostFromDeployment ? "the host deployment.host_cpu_speed sets"
                                                         : placed.host_cpu,
                  placed.host_cpu_speed);
  if (std::find(ran_on->hosts.begin(), ran_on->hosts.end(), host) == ran_on->hosts.end()) {
    ran_on->hosts.push_back(host);
  }
}

}  // namespace

Eigen::VectorXd RelativeErrors(const std::vector<FitCase>& all, const std::vector<size_t>& cases,
                               const std::vector<CaseMetrics>& metrics) {
  size_t n = 0;
  for (size_t c : cases) n += all[c].targets.size();
  Eigen::VectorXd r(static_cast<Eigen::Index>(n));
  Eigen::Index k = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const FitCase& c = all[cases[i]];
    for (size_t t = 0; t < c.targets.size(); ++t) {
      const double measured = c.targets[t].second;
      r[k++] = (metrics[i].simulated[t] - measured) / measured;
    }
  }
  return r;
}

Fitter::Fitter(FitConfig config, const std::string& out_dir, int jobs)
    : config_(std::move(config)), jobs_(jobs) {
  for (const FitRun& run : config_.runs) {
    const ConfigTree base = RunScenario(run);
    if (!run.requests_path.empty()) {
      cases_.push_back(MeasuredCase(run, base, config_.metrics, out_dir));
    } else {
      AppendStageCases(run, base, &cases_);
    }
  }
  // Every case decodes and builds, under one timing model and engine preset.
  for (FitCase& c : cases_) {
    try {
      ResolveCase(config_.free, c, &ran_on_);
    } catch (const InputError& e) {
      const FitRun& run = *std::find_if(config_.runs.begin(), config_.runs.end(),
                                        [&](const FitRun& r) { return r.name == c.run; });
      throw InputError(fmt::format("{} ({}): {}", run.where, c.label, e.what()));
    }
  }
}

std::vector<size_t> Fitter::CasesOf(const std::vector<std::string>& runs) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < cases_.size(); ++i) {
    if (runs.empty() || std::find(runs.begin(), runs.end(), cases_[i].run) != runs.end()) {
      out.push_back(i);
    }
  }
  return out;
}

std::string Fitter::ParamName(const FitParam& p) const {
  const std::string& key = config_.free[p.term].key;
  return p.gpu.empty() ? key : key + " @ " + p.gpu;
}

std::vector<std::vector<CaseMetrics>> Fitter::SimulateBatch(
    const std::vector<size_t>& cases, const std::vector<FitParam>& params,
    const std::vector<Eigen::VectorXd>& points) const {
  std::vector<std::vector<CaseMetrics>> out(points.size(), std::vector<CaseMetrics>(cases.size()));
  ParallelFor(points.size() * cases.size(), jobs_, [&](size_t task) {
    const size_t p = task / cases.size(), c = task % cases.size();
    out[p][c] = SimulateCase(cases_[cases[c]], config_.free, params, points[p]);
  });
  return out;
}

std::vector<CaseMetrics> Fitter::Simulate(const std::vector<size_t>& cases,
                                          const std::vector<FitParam>& params,
                                          const Eigen::VectorXd& x) const {
  return SimulateBatch(cases, params, {x})[0];
}

FitOutcome Fitter::Fit(const std::vector<std::string>& runs) const {
  const auto t0 = std::chrono::steady_clock::now();
  FitOutcome out;
  out.cases = CasesOf(runs);
  for (size_t c : out.cases) {
    if (out.runs.empty() || out.runs.back() != cases_[c].run) out.runs.push_back(cases_[c].run);
  }
  // Shared terms once; per-GPU terms once per GPU among these cases (first seen first).
  std::vector<std::string> gpus;
  for (size_t c : out.cases) {
    if (std::find(gpus.begin(), gpus.end(), cases_[c].gpu) == gpus.end()) {
      gpus.push_back(cases_[c].gpu);
    }
  }
  for (size_t t = 0; t < config_.free.size(); ++t) {
    const FittableTerm* term = FindFittableTerm(config_.free[t].key);
    KVSIM_CHECK(term != nullptr, "free terms are checked when the fit file is read");
    if (!term->per_gpu) {
      out.params.push_back({t, ""});
    } else {
      for (const std::string& g : gpus) out.params.push_back({t, g});
    }
  }
  const auto n = static_cast<Eigen::Index>(out.params.size());
  Eigen::VectorXd lo(n), hi(n);
  out.start.resize(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const FitParam& p = out.params[static_cast<size_t>(i)];
    const FreeTerm& t = config_.free[p.term];
    lo[i] = t.min_value;
    hi[i] = t.max_value;
    // The scenario's own value on (the first case of) the parameter's GPU.
    double own = std::nan("");
    for (size_t c : out.cases) {
      if (p.gpu.empty() || cases_[c].gpu == p.gpu) {
        own = cases_[c].resolved[p.term];
        break;
      }
    }
    out.start[i] = t.has_start       ? t.start
                   : std::isnan(own) ? 0.5 * (t.min_value + t.max_value)
                                     : std::clamp(own, t.min_value, t.max_value);
  }
  const ResidualBatch residuals = [&](const std::vector<Eigen::VectorXd>& points) {
    const std::vector<std::vector<CaseMetrics>> sims = SimulateBatch(out.cases, out.params, points);
    std::vector<Eigen::VectorXd> rs;
    rs.reserve(sims.size());
    for (const std::vector<CaseMetrics>& m : sims)
      rs.push_back(RelativeErrors(cases_, out.cases, m));
    return rs;
  };
  LeastSquaresOptions options;
  options.method = config_.solver.method == "pattern" ? LeastSquaresMethod::kPatternSearch
                                                      : LeastSquaresMethod::kLevenbergMarquardt;
  options.max_iterations = config_.solver.max_iterations;
  options.difference_step = config_.solver.difference_step;
  out.solve = SolveBoundedLeastSquares(residuals, out.start, lo, hi, options);
  out.fitted = out.solve.x;
  out.uncertainty = EstimateUncertainty(residuals, out.fitted, out.solve.residuals, lo, hi,
                                        options.difference_step);
  const std::vector<std::vector<CaseMetrics>> both =
      SimulateBatch(out.cases, out.params, {out.start, out.fitted});
  out.before = both[0];
  out.after = both[1];
  out.verdict = JudgeFit(config_, cases_, out);
  out.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

std::vector<HoldoutOutcome> Fitter::Holdout() const {
  std::vector<std::string> names;
  for (const FitRun& r : config_.runs) names.push_back(r.name);
  if (names.size() < 2) {
    throw InputError(fmt::format("{}: --holdout needs at least two runs (it fits on all but one)",
                                 config_.file));
  }
  std::vector<HoldoutOutcome> out;
  for (const std::string& held : names) {
    std::vector<std::string> others;
    for (const std::string& n : names) {
      if (n != held) others.push_back(n);
    }
    HoldoutOutcome h;
    h.run = held;
    h.fit = Fit(others);
    h.cases = CasesOf({held});
    h.predicted = Simulate(h.cases, h.fit.params, h.fit.fitted);
    out.push_back(std::move(h));
  }
  return out;
}

Calibration Fitter::ToCalibration(const FitOutcome& fit,
                                  const std::vector<HoldoutOutcome>* holdout) const {
  Calibration c;
  c.fit_file = config_.file;
  c.runs = fit.runs;
  for (const CaseMetrics& m : fit.after) {
    if (std::find(c.models.begin(), c.models.end(), m.model) == c.models.end()) {
      c.models.push_back(m.model);
    }
    if (std::find(c.gpus.begin(), c.gpus.end(), m.gpu) == c.gpus.end()) c.gpus.push_back(m.gpu);
    const auto& tps = c.tensor_parallel;
    if (std::find(tps.begin(), tps.end(), m.tensor_parallel) == tps.end()) {
      c.tensor_parallel.push_back(m.tensor_parallel);
    }
  }
  c.caveats = fit.verdict.caveats;
  c.timing_type = ran_on_.timing_type;
  c.engine_preset = ran_on_.engine_preset;
  c.engine_kernels = ran_on_.engine_kernels;
  c.hosts = ran_on_.hosts;
  for (size_t i = 0; i < fit.params.size(); ++i) {
    const FitParam& p = fit.params[i];
    const std::pair<std::string, double> term{config_.free[p.term].key,
                                              fit.fitted[static_cast<Eigen::Index>(i)]};
    if (p.gpu.empty()) {
      c.terms.push_back(term);
      continue;
    }
    auto it = std::find_if(c.gpu_terms.begin(), c.gpu_terms.end(),
                           [&](const auto& g) { return g.first == p.gpu; });
    if (it == c.gpu_terms.end()) it = c.gpu_terms.insert(c.gpu_terms.end(), {p.gpu, {}});
    it->second.push_back(term);
  }
  const auto errors_yaml = [&](const std::vector<size_t>& cases,
                               const std::vector<CaseMetrics>& metrics) {
    const Eigen::VectorXd r = RelativeErrors(cases_, cases, metrics);
    std::string out;
    Eigen::Index k = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      const FitCase& fc = cases_[cases[i]];
      std::string row;
      for (const auto& [metric, measured] : fc.targets) {
        row += fmt::format("{}{}: {:.4f}", row.empty() ? "" : ", ", metric.Name(), r[k++]);
      }
      out += fmt::format("{}: {{{}}}\n", fc.label, row);
    }
    return out;
  };
  c.residuals_yaml = errors_yaml(fit.cases, fit.after);
  if (holdout != nullptr) {
    for (const HoldoutOutcome& h : *holdout) c.holdout_yaml += errors_yaml(h.cases, h.predicted);
  }
  return c;
}

}  // namespace kvsim
