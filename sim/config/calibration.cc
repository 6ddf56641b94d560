// Calibration files (see calibration.h).
#include "sim/config/calibration.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

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

// fitted_on.tensor_parallel: a list of positive integers; empty when absent.
std::vector<int64_t> TensorParallels(MapReader& r) {
  std::vector<int64_t> out;
  for (const std::string& s : Strings(r, "tensor_parallel")) {
    int64_t tp = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), tp);
    if (ec != std::errc() || end != s.data() + s.size() || tp < 1) {
      r.Fail("tensor_parallel", "expected a list of positive integers");
    }
    out.push_back(tp);
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

// The terms under `parent`.`key` (`per_gpu`: a GPU card's, under gpu_terms), each
// a fittable term of that kind with a value in its range.
std::vector<std::pair<std::string, double>> ReadTerms(MapReader& parent, const std::string& key,
                                                      bool per_gpu) {
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
                       fmt::format(": expected a number in [{}, {}], got no value", term->min_value,
                                   term->max_value));
    }
    out.emplace_back(term_key, t.Double(term_key, 0, term->min_value, term->max_value));
  }
  t.Finish();
  return out;
}

// fitted_on: what the terms were fitted on and under which timing model and engine.
void ReadFittedOn(MapReader& r, Calibration& c) {
  MapReader f = r.Child("fitted_on");
  c.fit_file = f.String("fit", "");
  c.runs = Strings(f, "runs");
  c.models = Strings(f, "models");
  c.gpus = Strings(f, "gpus");
  c.tensor_parallel = TensorParallels(f);
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

// What a fitted_terms entry calls a term: its key, with " @ <GPU card>" for a
// per-GPU term (as kvsim fit names its parameters).
std::string FittedTermName(const std::string& key, const std::string& gpu) {
  return gpu.empty() ? key : key + " @ " + gpu;
}

// Every term `c` carries, by its fitted_terms name, with its key path in the file.
std::vector<std::pair<std::string, std::string>> CarriedTerms(const Calibration& c) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, value] : c.terms) out.emplace_back(key, "terms." + key);
  for (const auto& [gpu, terms] : c.gpu_terms) {
    for (const auto& [key, value] : terms) {
      out.emplace_back(FittedTermName(key, gpu), fmt::format("gpu_terms.{}.{}", gpu, key));
    }
  }
  return out;
}

// The key path in the file of the term a fitted_terms entry `name` names.
std::string TermPath(const std::string& name) {
  const size_t at = name.find(" @ ");
  return at == std::string::npos
             ? "terms." + name
             : fmt::format("gpu_terms.{}.{}", name.substr(at + 3), name.substr(0, at));
}

// Format 2: `fitted_terms` (under `r`) names exactly the terms `c` carries, each once.
void CheckFittedTerms(MapReader& r, const Calibration& c) {
  constexpr const char* kKey = "fitted_terms";
  if (!r.Has(kKey)) {
    r.Fail(kKey, "required (the terms this calibration carries); run kvsim fit again");
  }
  std::set<std::string> listed, carried;
  for (const std::string& name : Strings(r, kKey)) {
    if (!listed.insert(name).second) r.Fail(kKey, fmt::format("lists {} twice", name));
  }
  for (const auto& [name, path] : CarriedTerms(c)) {
    carried.insert(name);
    if (!listed.contains(name)) {
      r.Fail(kKey, fmt::format("does not list {}, which the file sets ({}): the file was edited; "
                               "run kvsim fit again",
                               name, path));
    }
  }
  for (const std::string& name : listed) {
    if (!carried.contains(name)) {
      r.Fail(kKey, fmt::format("lists {}, but the file has no {}: the calibration is incomplete "
                               "(cut short or edited); run kvsim fit again",
                               name, TermPath(name)));
    }
  }
}

// Format 2: the last line of `text` that is not blank is kCalibrationEndMarker, which
// kvsim fit writes last; else the file at `path` was cut short (or added to).
void CheckEndMarker(const std::string& text, const std::string& path) {
  int line_no = 0, last_no = 0, marker_no = 0;
  std::string_view last;
  for (size_t at = 0; at < text.size(); ++line_no) {
    const size_t end = std::min(text.find('\n', at), text.size());
    std::string_view line(text.data() + at, end - at);
    at = end + 1;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
      line.remove_suffix(1);
    }
    if (line.empty()) continue;
    last = line;
    last_no = line_no + 1;
    if (line == kCalibrationEndMarker) marker_no = last_no;
  }
  if (last == kCalibrationEndMarker) return;
  if (marker_no > 0) {
    throw InputError(fmt::format(
        "{}:{}: lines after the end marker of line {} ('{}'), which kvsim fit writes last: "
        "another file appended?",
        path, last_no, marker_no, kCalibrationEndMarker));
  }
  throw InputError(fmt::format(
      "{}: ends without the line '{}' that kvsim fit writes last: the calibration is cut short "
      "(it ends at line {}); run kvsim fit again",
      path, kCalibrationEndMarker, last_no));
}

}  // namespace

Calibration LoadCalibration(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("{}: cannot open calibration file", path));
  std::stringstream text;
  text << in.rdbuf();
  const ConfigTree tree = ConfigTree::Parse(text.str(), path);
  const std::set<std::string> none;
  const DecodeContext ctx{tree.origin(), none};
  MapReader r(tree.root(), "", ctx);
  Calibration c;
  c.path = path;
  const int64_t version = r.Int("kvsim_calibration", 0, 0);
  if (version != 1 && version != kCalibrationFormat) {
    r.Fail("kvsim_calibration",
           fmt::format("required, and {} (or 1, written by an earlier kvsim fit)",
                       kCalibrationFormat));
  }
  if (version == kCalibrationFormat) CheckEndMarker(text.str(), path);
  ReadFittedOn(r, c);
  if (r.Has("terms")) c.terms = ReadTerms(r, "terms", false);
  if (r.Has("gpu_terms")) {
    MapReader g = r.Child("gpu_terms");
    if (!g.IsMap()) r.Fail("gpu_terms", "expected a mapping of GPU card names to terms");
    for (const auto& kv : g.node()) {
      const std::string gpu = kv.first.as<std::string>();
      c.gpu_terms.emplace_back(gpu, ReadTerms(g, gpu, true));
    }
    g.Finish();
  }
  if (c.terms.empty() && c.gpu_terms.empty()) r.Fail("terms", "the calibration holds no terms");
  if (version == kCalibrationFormat) CheckFittedTerms(r, c);
  const bool has_residuals = r.Has("residuals");
  c.residuals_yaml = YamlText(r.Value("residuals"));
  r.Has("holdout");
  c.holdout_yaml = YamlText(r.Value("holdout"));
  r.Finish();
  // Format 1 has no end marker, but kvsim fit always wrote the residuals after the
  // terms: a file without them lost its end, and perhaps terms.
  if (version == 1 && !has_residuals) {
    r.Fail("residuals",
           "missing: kvsim fit writes them after the terms, so this format-1 calibration is cut "
           "short (and may have lost terms); run kvsim fit again");
  }
  return c;
}

std::string CalibrationYaml(const Calibration& c) {
  std::string out;
  out += "# kvsim calibration, written by `kvsim fit`: timing terms fitted to measured runs.\n";
  out += "# Use it from a scenario with `timing.calibration: <this file>`; the scenario must run\n";
  out += "# the timing model, engine preset and engine kernels named under fitted_on.\n";
  out += fmt::format("kvsim_calibration: {}\n", kCalibrationFormat);
  out += "fitted_on:\n";
  if (!c.fit_file.empty()) out += fmt::format("  fit: {}\n", QuotedYamlScalar(c.fit_file));
  out += fmt::format("  runs: {}\n", FlowList(c.runs));
  out += fmt::format("  models: {}\n", FlowList(c.models));
  out += fmt::format("  gpus: {}\n", FlowList(c.gpus));
  if (!c.tensor_parallel.empty()) {
    out += fmt::format("  tensor_parallel: [{}]\n", fmt::join(c.tensor_parallel, ", "));
  }
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
  std::vector<std::string> names;
  for (const auto& [name, path] : CarriedTerms(c)) names.push_back(name);
  out += "# Every term below (a per-GPU one as 'key @ GPU card'); a file missing one is refused.\n";
  out += fmt::format("fitted_terms: {}\n", FlowList(names));
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
  if (!c.caveats.empty()) {
    out += "# kvsim fit accepted this calibration with caveats (fit.txt): its terms may not\n";
    out += "# carry over to other loads.\n";
    for (const std::string& caveat : c.caveats) out += "#   - " + caveat + "\n";
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
  out += std::string(kCalibrationEndMarker) + "\n";
  return out;
}

}  // namespace kvsim
