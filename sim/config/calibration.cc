// Calibration files (see calibration.h).
#include "sim/config/calibration.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <set>

#include "sim/config/map_reader.h"
#include "sim/core/check.h"
#include "sim/timing/cost_terms.h"
#include "sim/timing/execution_time_model.h"

namespace kvsim {

const std::vector<FittableTerm>& FittableTerms() {
  // Default bounds span every published or measured value kvsim knows of by a wide
  // margin (cost_terms.cc lists them); the fit file may narrow them.
  static const std::vector<FittableTerm> kTerms = {
      {"timing.engine.per_iteration_s", 0, 0.05, false, "CPU time per iteration"},
      {"timing.engine.per_seq_s", 0, 1e-3, false, "CPU time per sequence per iteration"},
      {"timing.engine.per_prefill_token_s", 0, 1e-4, false, "CPU time per prompt token computed"},
      {"timing.engine.request_arrival_s", 0, 1.0, false, "per request before scheduling"},
      {"timing.engine.request_finish_s", 0, 1.0, false, "per request after its last token"},
      {"timing.engine.block_table_entry_s", 0, 1e-5, false, "CPU time per block-table entry"},
      {"timing.engine.launch_per_layer_s", 0, 1e-3, false, "eager launch time per layer"},
      {"timing.engine.kernel_gap_s", 0, 1e-4, true, "GPU time lost per kernel boundary"},
      {"timing.allreduce.latency_s", 0, 1e-3, true, "all-reduce latency"},
      {"timing.allreduce.bus_efficiency", 0.05, 1, true, "all-reduce fraction of link bandwidth"},
      {"timing.roofline.gemm_efficiency", 0.05, 1, true, "GEMM fraction of peak FLOP/s"},
      {"timing.roofline.memory_efficiency", 0.05, 1, true, "weight reads' fraction of bandwidth"},
      {"timing.roofline.attention_prefill_efficiency", 0.05, 1, true,
       "prefill attention fraction of peak FLOP/s"},
      {"timing.roofline.attention_decode_efficiency", 0.05, 1, true,
       "decode attention fraction of bandwidth"},
      {"timing.profiled.attention_prefill_efficiency", 0.05, 1, true,
       "prefill attention fraction of peak FLOP/s (profiled, roofline prefill)"},
      {"timing.profiled.memory_efficiency", 0.05, 1, true, "small kernels' fraction of bandwidth"},
  };
  return kTerms;
}

EngineKernels EngineKernelsOf(const EngineConfig& engine) {
  return {.cuda_graphs = engine.cuda_graphs,
          .fused_kernels = engine.fused_kernels,
          .kernels_per_layer = engine.kernels_per_layer > 0 ? engine.kernels_per_layer
                                                            : CostTerms::kKernelsPerLayer};
}

std::string DescribeEngineKernels(const EngineKernels& k) {
  return fmt::format("{}, {} kernels, {} kernels per layer",
                     k.cuda_graphs ? "CUDA graphs" : "eager launches",
                     k.fused_kernels ? "fused" : "unfused", k.kernels_per_layer);
}

const FittableTerm* FindFittableTerm(const std::string& key) {
  for (const FittableTerm& t : FittableTerms()) {
    if (key == t.key) return &t;
  }
  return nullptr;
}

namespace {

std::vector<std::string> Strings(MapReader& r, const std::string& key) {
  std::vector<std::string> out;
  if (!r.Has(key)) return out;
  const YAML::Node list = r.Value(key);
  if (!list.IsSequence()) r.Fail(key, "expected a list of names");
  for (const YAML::Node& n : list) {
    if (!n.IsScalar()) r.Fail(key, "expected a list of names");
    out.push_back(n.as<std::string>());
  }
  return out;
}

std::string YamlText(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "";
  YAML::Emitter e;
  e << node;
  return e.c_str();
}

// Indents every line of `text` by `spaces`.
std::string Indent(const std::string& text, int spaces) {
  std::string out, pad(static_cast<size_t>(spaces), ' ');
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    out +=
        pad + text.substr(start, end == std::string::npos ? std::string::npos : end - start) + "\n";
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

std::string FlowList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + QuotedYamlScalar(items[i]);
  return out + "]";
}

// fitted_on.engine_kernels of `fitted_on`; nullopt when the key is absent (a file
// written before kvsim recorded it). kernels_per_layer 0 means a fused engine's
// CostTerms::kKernelsPerLayer, as in a scenario.
std::optional<EngineKernels> ReadEngineKernels(MapReader& fitted_on) {
  constexpr const char* kKey = "engine_kernels";
  const bool present = fitted_on.Has(kKey);
  if (!present && !fitted_on.Value(kKey).IsDefined()) return std::nullopt;
  constexpr const char* kExpected =
      "expected a mapping (cuda_graphs, fused_kernels, "
      "kernels_per_layer)";
  if (!present) {
    // An empty value has no position of its own (yaml-cpp gives the next token's): name
    // the key's line.
    for (const auto& kv : fitted_on.node()) {
      if (kv.first.as<std::string>() == kKey) {
        throw InputError(fitted_on.Where(kv.first, fitted_on.KeyPath(kKey)) + ": " + kExpected);
      }
    }
  }
  MapReader k = fitted_on.Child(kKey);
  if (!k.IsMap()) fitted_on.Fail(kKey, kExpected);
  for (const char* key : {"cuda_graphs", "fused_kernels", "kernels_per_layer"}) {
    if (!k.Has(key)) k.Fail(key, "required");
  }
  EngineKernels e;
  e.cuda_graphs = k.Bool("cuda_graphs", true);
  e.fused_kernels = k.Bool("fused_kernels", true);
  e.kernels_per_layer = k.Int("kernels_per_layer", 0, 0, 1000);
  if (e.kernels_per_layer == 0) e.kernels_per_layer = CostTerms::kKernelsPerLayer;
  if (e.kernels_per_layer < CostTerms::kKernelsPerLayer) {
    k.Fail("kernels_per_layer", fmt::format("0 (a fused engine's {}) or at least {}, got {}",
                                            CostTerms::kKernelsPerLayer,
                                            CostTerms::kKernelsPerLayer, e.kernels_per_layer));
  }
  k.Finish();
  return e;
}

}  // namespace

Calibration LoadCalibration(const std::string& path) {
  const ConfigTree tree = ConfigTree::Load(path);
  const std::set<std::string> none;
  const DecodeContext ctx{tree.origin(), none};
  MapReader r(tree.root(), "", ctx);
  Calibration c;
  c.path = path;
  const int64_t version = r.Int("kvsim_calibration", 0, 0);
  if (version != 1) {
    r.Fail("kvsim_calibration", "required, and 1 (the only calibration format there is)");
  }
  {
    MapReader f = r.Child("fitted_on");
    c.fit_file = f.String("fit", "");
    c.runs = Strings(f, "runs");
    c.models = Strings(f, "models");
    c.gpus = Strings(f, "gpus");
    // Calibrations list the timing types in this order.
    constexpr auto kTypes =
        kTimingTypes.Select({TimingType::kRoofline, TimingType::kProfiled, TimingType::kFixed});
    if (!f.Has("timing_type")) {
      f.Fail("timing_type", fmt::format("required ({})", kTypes.NameList(", ", " or ")));
    }
    c.timing_type = kTypes.Name(f.Enum("timing_type", kTypes));
    if (!f.Has("engine_preset")) {
      f.Fail("engine_preset", fmt::format("required ({})", kEnginePresets.NameList()));
    }
    c.engine_preset = kEnginePresets.Name(f.Enum("engine_preset", kEnginePresets));
    c.engine_kernels = ReadEngineKernels(f);
    c.hosts = Strings(f, "hosts");
    f.Finish();
  }
  const auto read_terms = [](MapReader& parent, const std::string& key, bool per_gpu) {
    std::vector<std::pair<std::string, double>> out;
    MapReader t = parent.Child(key);
    if (!t.IsMap()) parent.Fail(key, "expected a mapping of timing key paths to values");
    for (const auto& kv : t.node()) {
      const std::string term_key = kv.first.as<std::string>();
      const FittableTerm* term = FindFittableTerm(term_key);
      if (term == nullptr) t.Fail(term_key, "not a term kvsim fit can calibrate");
      if (term->per_gpu != per_gpu) {
        t.Fail(term_key, per_gpu ? "an engine term, shared by every GPU: list it under terms"
                                 : "a per-GPU term: list it under gpu_terms.<GPU card name>");
      }
      // A key without a value would read as Double's default, outside the range check.
      if (!t.Has(term_key)) {
        throw InputError(t.Where(kv.first, t.KeyPath(term_key)) +
                         fmt::format(": expected a number in [{}, {}], got no value",
                                     term->min_value, term->max_value));
      }
      out.emplace_back(term_key, t.Double(term_key, 0, term->min_value, term->max_value));
    }
    t.Finish();
    return out;
  };
  if (r.Has("terms")) c.terms = read_terms(r, "terms", false);
  if (r.Has("gpu_terms")) {
    MapReader g = r.Child("gpu_terms");
    if (!g.IsMap()) r.Fail("gpu_terms", "expected a mapping of GPU card names to terms");
    for (const auto& kv : g.node()) {
      const std::string gpu = kv.first.as<std::string>();
      c.gpu_terms.emplace_back(gpu, read_terms(g, gpu, true));
    }
    g.Finish();
  }
  if (c.terms.empty() && c.gpu_terms.empty()) r.Fail("terms", "the calibration holds no terms");
  r.Has("residuals");
  c.residuals_yaml = YamlText(r.Value("residuals"));
  r.Has("holdout");
  c.holdout_yaml = YamlText(r.Value("holdout"));
  r.Finish();
  return c;
}

std::string CalibrationYaml(const Calibration& c) {
  std::string out;
  out += "# kvsim calibration, written by `kvsim fit`: timing terms fitted to measured runs.\n";
  out += "# Use it from a scenario with `timing.calibration: <this file>`; the scenario must run\n";
  out += "# the timing model, engine preset and engine kernels named under fitted_on.\n";
  out += "kvsim_calibration: 1\n";
  out += "fitted_on:\n";
  if (!c.fit_file.empty()) out += fmt::format("  fit: {}\n", QuotedYamlScalar(c.fit_file));
  out += fmt::format("  runs: {}\n", FlowList(c.runs));
  out += fmt::format("  models: {}\n", FlowList(c.models));
  out += fmt::format("  gpus: {}\n", FlowList(c.gpus));
  out += fmt::format("  timing_type: {}\n", c.timing_type);
  out += fmt::format("  engine_preset: {}\n", c.engine_preset);
  if (c.engine_kernels) {
    const EngineKernels& k = *c.engine_kernels;
    out += fmt::format(
        "  engine_kernels: {{cuda_graphs: {}, fused_kernels: {}, kernels_per_layer: {}}}\n",
        k.cuda_graphs, k.fused_kernels, k.kernels_per_layer);
  }
  if (!c.hosts.empty()) out += fmt::format("  hosts: {}\n", FlowList(c.hosts));
  const auto write_terms = [&out](const std::vector<std::pair<std::string, double>>& terms,
                                  const char* indent) {
    for (const auto& [key, value] : terms) {
      const FittableTerm* term = FindFittableTerm(key);
      out += fmt::format("{}{}: {:.17g}{}\n", indent, key, value,
                         term ? fmt::format("  # {}", term->meaning) : std::string());
    }
  };
  if (!c.terms.empty()) {
    out += "# The engine's terms, shared by every GPU it runs on.\n";
    out += "terms:\n";
    write_terms(c.terms, "  ");
  }
  if (!c.gpu_terms.empty()) {
    out += "# Terms of the kernels on one GPU, used only on that GPU card.\n";
    out += "gpu_terms:\n";
    for (const auto& [gpu, terms] : c.gpu_terms) {
      out += fmt::format("  {}:\n", QuotedYamlScalar(gpu));
      write_terms(terms, "    ");
    }
  }
  if (!c.residuals_yaml.empty()) {
    out +=
        "# Relative error of the simulated metrics after the fit ((kvsim - measured) / "
        "measured).\n";
    out += "residuals:\n" + Indent(c.residuals_yaml, 2);
  }
  if (!c.holdout_yaml.empty()) {
    out += "# Leave-one-run-out: each run predicted by terms fitted on the others.\n";
    out += "holdout:\n" + Indent(c.holdout_yaml, 2);
  }
  return out;
}

}  // namespace kvsim
