// Calibration: timing terms fitted to measured runs of a real engine by `kvsim fit`,
// stored as calibration.yaml and used by a scenario through
// `timing.calibration: PATH`. A calibration is a set of config key paths with values
// (the same keys a scenario could set by hand) plus what they were fitted on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/config/yaml_tree.h"
#include "sim/timing/cost_terms.h"

namespace kvsim {

// A timing key `kvsim fit` may treat as free, with the bounds it uses when the fit
// file gives none (in the key's own unit).
struct FittableTerm {
  const char* key;  // e.g. "timing.engine.per_seq_s"
  double min_value, max_value;
  // true: a property of the kernels on one GPU (efficiencies, all-reduce, kernel
  // gaps): fitted once per GPU card and used only on that card. false: the engine's
  // own CPU work, shared by every GPU the engine runs on.
  bool per_gpu;
  const char* meaning;
};
// Every fittable key: the engine's named overheads (timing.engine.*), the
// all-reduce terms (timing.allreduce.*) and the efficiencies (timing.roofline.*,
// timing.profiled.*).
const std::vector<FittableTerm>& FittableTerms();
// The term for `key`, or nullptr.
const FittableTerm* FindFittableTerm(const std::string& key);

// How the fitted runs' engine ran its kernels: the fitted terms make up for the model
// of these too (an eager engine's launches, unfused bytes and extra kernel gaps), so a
// scenario using the calibration must run its kernels the same way.
struct EngineKernels {
  bool cuda_graphs = true;    // timing.engine.cuda_graphs
  bool fused_kernels = true;  // timing.engine.fused_kernels
  // Kernels per layer as run: timing.engine.kernels_per_layer, its 0 resolved to
  // CostTerms::kKernelsPerLayer.
  int64_t kernels_per_layer = CostTerms::kKernelsPerLayer;
  bool operator==(const EngineKernels&) const = default;
};
// The kernels `engine` runs.
EngineKernels EngineKernelsOf(const EngineConfig& engine);
// "CUDA graphs, fused kernels, 10 kernels per layer".
std::string DescribeEngineKernels(const EngineKernels& kernels);

struct Calibration {
  std::string path;  // the file it was read from (empty when built in memory)
  // What the terms were fitted on (informational, printed with results).
  std::vector<std::string> runs, models, gpus;
  // Their tensor parallelism (GPUs per replica); empty in a file written before kvsim
  // recorded it.
  std::vector<int64_t> tensor_parallel;
  std::string fit_file;
  // The timing model and engine preset the fit ran under; a scenario using the
  // calibration must run the same (other terms then keep the values the fit saw).
  std::string timing_type;    // roofline | profiled | fixed
  std::string engine_preset;  // vllm_v1 | vllm_v0 | eager | none
  // How the runs' engine ran its kernels; absent for fixed timing (which reads none)
  // and in a file written before kvsim recorded it (ApplyCalibrationTerms then takes
  // the preset's, except for eager, whose model has changed since: such a calibration
  // is refused).
  std::optional<EngineKernels> engine_kernels;
  // The hosts the runs were placed on, one entry per GPU card and host, as
  // "GPU card: host (speed x)"
  // (informational: the fitted CPU terms are stated for the reference core, as a
  // scenario's are, and a scenario divides them by its own host's speed).
  std::vector<std::string> hosts;
  std::vector<std::pair<std::string, double>> terms;  // shared terms: key path, value
  // Per-GPU terms (FittableTerm::per_gpu) by GPU card name; applied only to
  // scenarios on that card.
  std::vector<std::pair<std::string, std::vector<std::pair<std::string, double>>>> gpu_terms;
  // The fit's figures, kept as YAML text so a reader sees them in the file.
  std::string residuals_yaml;
  std::string holdout_yaml;
  // What the fitted runs left undetermined (FitVerdict::caveats), written as comments:
  // LoadCalibration does not read them back.
  std::vector<std::string> caveats;
};

// The calibration format CalibrationYaml writes (`kvsim_calibration: 2`). Format 2
// checks itself: `fitted_terms` lists every term the file carries and the file ends
// with kCalibrationEndMarker. Format 1 (earlier kvsim fits) had neither.
inline constexpr int64_t kCalibrationFormat = 2;
// The last line of a format-2 calibration.
inline constexpr std::string_view kCalibrationEndMarker = "# end of kvsim calibration";

// Reads a calibration file strictly. Throws InputError "path:line: key: what" for a
// missing file, bad YAML, an unknown key, a term that is not fittable, or a value
// outside its term's valid range; and for an incomplete file: in format 2, one that
// does not end with kCalibrationEndMarker (cut short) or whose terms differ from its
// `fitted_terms` (naming the missing key path); in format 1, one without `residuals`
// (which kvsim fit always wrote after the terms).
Calibration LoadCalibration(const std::string& path);

// The calibration as YAML text in format kCalibrationFormat (what LoadCalibration
// reads back): a header comment saying what wrote it and how to use it, the
// `fitted_terms` list, and kCalibrationEndMarker as the last line.
std::string CalibrationYaml(const Calibration& calibration);

}  // namespace kvsim
