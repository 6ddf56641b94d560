// Values derived across scenario keys, shared by decoding and typed deltas.
#include "sim/config/scenario_resolve.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <set>
#include <utility>
#include <vector>

#include "sim/config/map_reader.h"
#include "sim/core/check.h"
#include "sim/core/units.h"
#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/workload/benchmark_serving_trace.h"

namespace kvsim {

namespace fs = std::filesystem;

std::string ResolveCardPath(const std::string& value, const std::string& models_dir,
                            const std::string& kind, const std::string& base_dir) {
  const bool is_path = value.find('/') != std::string::npos || value.ends_with(".yaml");
  std::string path = is_path ? Resolve(base_dir, value)
                             : (fs::path(models_dir) / kind / (value + ".yaml")).string();
  // Error-code overloads: a name the file system refuses (say, longer than a file
  // name may be) is a card that is not there, not an exception.
  std::error_code ec;
  if (fs::exists(path, ec)) return path;
  std::string available;
  if (!is_path && fs::is_directory(fs::path(models_dir) / kind, ec)) {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(fs::path(models_dir) / kind)) {
      if (e.path().extension() == ".yaml") names.insert(e.path().stem().string());
    }
    for (const std::string& n : names) available += available.empty() ? n : ", " + n;
  }
  throw InputError(available.empty()
                       ? fmt::format("card '{}' not found ({})", value, path)
                       : fmt::format("unknown {} card '{}' in {}; available: {}", kind, value,
                                     (fs::path(models_dir) / kind).string(), available));
}

bool IsVAttentionPageSize(int64_t bytes) {
  constexpr int64_t kAllowed[] = {64 << 10, 128 << 10, 256 << 10, 2 << 20};
  return std::find(std::begin(kAllowed), std::end(kAllowed), bytes) != std::end(kAllowed);
}

std::optional<VmmConfigError> CheckKvCache(const KvCacheConfig& k) {
  if (k.type == KvManagerType::kStatic && k.paged.prefix_caching) {
    return VmmConfigError{
        "prefix_caching",
        "static reservation shares nothing: engines that reserve each request's maximum up "
        "front (FasterTransformer, Orca) keep no prefix cache; set prefix_caching: false, or "
        "type: paged or vattention"};
  }
  if (k.type != KvManagerType::kVAttention) return std::nullopt;
  return CheckVmmBackend(k.vattention);
}

std::optional<std::string> CheckKvCapacity(const ScenarioConfig& c) {
  const DeploymentConfig& d = c.deployment;
  if (d.kv_capacity_bytes <= 0) return std::nullopt;
  ModelSpec model;
  try {
    model = LoadModelSpec(c.model_path);
  } catch (const InputError&) {
    return std::nullopt;  // building the run names the card's error
  }
  const int64_t tp = d.tensor_parallel;
  const int64_t max_model_len = d.max_model_len > 0 ? d.max_model_len : model.max_context_tokens;
  // Building the run names an uneven split or a max_model_len beyond the card.
  if (!model.HeadSplitProblem(tp).empty() || max_model_len > model.max_context_tokens) {
    return std::nullopt;
  }
  model.kv_dtype_bytes = DtypeBytes(c.kv_cache.dtype, model.dtype_bytes);
  const int64_t per_token = model.KvBytesPerTokenPerRank(tp);
  const int64_t tokens = d.kv_capacity_bytes / per_token;
  if (tokens >= max_model_len) return std::nullopt;
  // In floating point: a card's max context is not bounded, so the product may not fit.
  const double needed = static_cast<double>(max_model_len) * static_cast<double>(per_token);
  return fmt::format(
      "{} bytes ({:.3f} GiB) per GPU hold the KV of {} tokens of {} ({} bytes per token per "
      "GPU at tensor_parallel {}), fewer than max_model_len {}{}, which needs {:.0f} bytes "
      "({:.3f} GiB); raise deployment.kv_capacity_bytes or lower deployment.max_model_len",
      d.kv_capacity_bytes, ToGiB(d.kv_capacity_bytes), tokens, model.name, per_token, tp,
      max_model_len, d.max_model_len > 0 ? "" : " (the model card's max context)", needed,
      ToGiB(needed));
}

void ApplyRecordedArrivals(const ScenarioSources& s, WorkloadConfig& w) {
  KVSIM_CHECK(s.recorded_arrivals.has_value(), "no recorded arrivals");
  const BenchmarkServingArrivals& recorded = *s.recorded_arrivals;
  const double rate = s.rate_set ? w.rate_qps : recorded.request_rate_qps;
  if (std::isinf(rate)) {
    w.arrival = ArrivalProcess::kTrace;
    w.rate_qps = 0;
    return;
  }
  // A cv the config sets shapes gamma gaps whatever the file's burstiness.
  w.arrival =
      recorded.burstiness == 1 && !s.cv_set ? ArrivalProcess::kPoisson : ArrivalProcess::kGamma;
  w.rate_qps = rate;
  if (s.cv_set) return;
  const double cv = 1 / std::sqrt(recorded.burstiness);
  if (!(cv >= 1e-3 && cv <= 1e3)) {
    throw InputError(fmt::format(
        "{}: {}:{}: 'burstiness': {} gives gamma arrivals a coefficient of variation of {:g}, "
        "outside [0.001, 1000]; set workload.arrival.cv or workload.arrival.process",
        s.trace_where, w.trace_path, recorded.burstiness_line, recorded.burstiness, cv));
  }
  w.cv = cv;
}

bool IsBenchmarkServingTrace(const WorkloadConfig& w) {
  if (w.trace_format == TraceFormat::kBenchmarkServing) return true;
  if (w.trace_format != TraceFormat::kAuto || w.trace_path.empty()) return false;
  std::string ext = fs::path(w.trace_path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::error_code ec;
  if (ext != ".json" || !fs::is_regular_file(w.trace_path, ec)) return false;
  try {
    return DetectTraceFormat(w.trace_path) == TraceFormat::kBenchmarkServing;
  } catch (const InputError&) {
    return false;
  }
}

void ReadRecordedArrivals(ScenarioSources& s, WorkloadConfig& w) {
  try {
    s.recorded_arrivals = ReadBenchmarkServingArrivals(w.trace_path);
  } catch (const InputError& e) {
    throw InputError(fmt::format(
        "{}: {} (its arrival process is used because workload.arrival.process is not set)",
        s.trace_where, e.what()));
  }
  ApplyRecordedArrivals(s, w);
}

double* TimingTermField(TimingConfig& t, std::string_view key) {
  const std::pair<std::string_view, double*> fields[] = {
      {"timing.engine.per_iteration_s", &t.engine.per_iteration_s},
      {"timing.engine.per_seq_s", &t.engine.per_seq_s},
      {"timing.engine.per_prefill_token_s", &t.engine.per_prefill_token_s},
      {"timing.engine.request_arrival_s", &t.engine.request_arrival_s},
      {"timing.engine.request_finish_s", &t.engine.request_finish_s},
      {"timing.engine.block_table_entry_s", &t.engine.block_table_entry_s},
      {"timing.engine.launch_per_layer_s", &t.engine.launch_per_layer_s},
      {"timing.engine.kernel_gap_s", &t.engine.kernel_gap_s},
      {"timing.allreduce.latency_s", &t.allreduce.latency_s},
      {"timing.allreduce.bus_efficiency", &t.allreduce.bus_efficiency},
      {"timing.roofline.gemm_efficiency", &t.roofline.gemm_efficiency},
      {"timing.roofline.memory_efficiency", &t.roofline.memory_efficiency},
      {"timing.roofline.attention_prefill_efficiency", &t.roofline.attention_prefill_efficiency},
      {"timing.roofline.attention_decode_efficiency", &t.roofline.attention_decode_efficiency},
      {"timing.profiled.attention_prefill_efficiency", &t.profiled.attention_prefill_efficiency},
      {"timing.profiled.memory_efficiency", &t.profiled.memory_efficiency},
  };
  for (const auto& [name, field] : fields) {
    if (name == key) return field;
  }
  return nullptr;
}

namespace {

// A calibration applies only to an engine that runs its kernels as the fitted runs'
// did (Calibration::engine_kernels); a file that does not say is taken to have run the
// preset's, except under eager, whose unfused bytes and extra kernels kvsim charges
// since such files were written. Throws InputError otherwise.
void CheckEngineKernels(const ScenarioConfig& c, const Calibration& cal) {
  // Fixed timing reads no kernel settings: there is nothing for fitted terms to make up for.
  if (c.timing.type == TimingType::kFixed) return;
  const ScenarioSources& s = c.sources;
  const EngineKernels run = EngineKernelsOf(c.timing.engine);
  if (cal.engine_kernels) {
    if (*cal.engine_kernels == run) return;
    throw InputError(fmt::format(
        "{}: {} was fitted on an engine running {}; this scenario's engine runs {} "
        "(timing.engine.cuda_graphs, fused_kernels, kernels_per_layer, after any --set). Fitted "
        "terms make up for how the kernels run too: refit, or set those keys to match",
        s.calibration_where, cal.path, DescribeEngineKernels(*cal.engine_kernels),
        DescribeEngineKernels(run)));
  }
  if (c.timing.engine.preset == EngineConfig::Preset::kEager) {
    throw InputError(fmt::format(
        "{}: {} does not record how its engine ran its kernels (written by an earlier kvsim), "
        "and the eager preset now charges unfused operators and 35 kernels per layer that its "
        "terms were not fitted with: refit it with kvsim fit",
        s.calibration_where, cal.path));
  }
  const EngineKernels preset = EngineKernelsOf(EnginePresetDefaults(c.timing.engine.preset));
  if (run != preset) {
    throw InputError(fmt::format(
        "{}: {} does not record how its engine ran its kernels (written by an earlier kvsim), "
        "so it is taken to be the {} preset's ({}); this scenario's engine runs {}: refit it "
        "with kvsim fit, or run the preset's kernels",
        s.calibration_where, cal.path, cal.engine_preset, DescribeEngineKernels(preset),
        DescribeEngineKernels(run)));
  }
}

}  // namespace

void ApplyCalibrationTerms(ScenarioConfig& c) {
  const ScenarioSources& s = c.sources;
  KVSIM_CHECK(s.calibration && s.uncalibrated_timing, "no calibration to apply");
  const Calibration& cal = *s.calibration;
  // The GPU card decides which per-GPU terms apply.
  const std::string gpu_name = LoadGpuSpec(c.gpu_path).name;
  std::vector<std::pair<std::string, double>> terms = cal.terms;
  for (const auto& [gpu, gpu_terms] : cal.gpu_terms) {
    if (gpu == gpu_name) terms.insert(terms.end(), gpu_terms.begin(), gpu_terms.end());
  }
  c.timing = *s.uncalibrated_timing;
  std::vector<std::string> applied;
  for (const auto& [key, value] : terms) {
    if (s.calibration_overridden.contains(key)) continue;  // a what-if override wins
    if (auto in_file = s.calibration_in_file.find(key); in_file != s.calibration_in_file.end()) {
      throw InputError(
          fmt::format("{}: {}: also set by the calibration {} ({:g}); remove one of the two",
                      in_file->second, key, cal.path, value));
    }
    double* field = TimingTermField(c.timing, key);
    KVSIM_CHECK(field != nullptr, "calibration term without a field: " + key);
    *field = value;
    applied.push_back(key);
  }
  const std::string_view type = kTimingTypes.Name(c.timing.type);
  const std::string_view preset = kEnginePresets.Name(c.timing.engine.preset);
  if (type != cal.timing_type || preset != cal.engine_preset) {
    throw InputError(fmt::format(
        "{}: {} was fitted with timing.type {} and engine preset {}; this scenario runs {} with "
        "{}. Fitted terms make up for one model's errors: refit with this scenario's timing "
        "model, or set timing.type and timing.engine.preset to match",
        s.calibration_where, cal.path, cal.timing_type, cal.engine_preset, type, preset));
  }
  CheckEngineKernels(c, cal);
  for (const std::string& key : applied) {
    if (key.starts_with("timing.engine.")) {
      c.timing.engine.fitted.push_back(key.substr(std::string("timing.engine.").size()));
    }
  }
  c.timing.calibration = {cal.path, std::move(applied), cal.runs,
                          cal.gpus, cal.models,         cal.tensor_parallel};
}

}  // namespace kvsim
