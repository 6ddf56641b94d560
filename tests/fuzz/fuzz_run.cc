// Fuzz target: a whole run. The input is decoded as a scenario (as fuzz_scenario does:
// YAML, optionally "#--set" and key.path=value lines), bounded, and simulated
// (BuildSimulation + Simulation::Run, sim/simulator/builder.h).
//
// Bounds, so that one input runs in well under a second: at most 50 requests,
// max_model_len at most 2048, at most 4 replicas and 1024 sequences or slots, token
// budgets and chunks of at least 64 tokens, no output CSVs; the bundled traces are
// replaced by copies of their first 60 rows; cards, profiles and traces must come
// from the repository (models/, traces/, tests/data/). Inputs outside the bounds are
// skipped, not reported.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "sim/config/scenario_config.h"
#include "sim/hardware/model_spec.h"
#include "sim/metrics/json_writer.h"
#include "sim/simulator/builder.h"
#include "sim/simulator/simulator.h"
#include "tests/fuzz/fuzz_common.h"

namespace kvsim::fuzz {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxRequests = 50;
constexpr int64_t kMaxModelLen = 2048;
constexpr int kTraceRows = 60;

// Bundled trace path -> a copy of its header and first kTraceRows rows.
const std::map<std::string, std::string>& ShortTraces() {
  static const std::map<std::string, std::string> traces = [] {
    std::map<std::string, std::string> m;
    for (const fs::directory_entry& e : fs::directory_iterator(fs::path(SourceDir()) / "traces")) {
      const std::string ext = e.path().extension().string();
      if (ext != ".csv" && ext != ".jsonl") continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::string text, line;
      for (int i = 0; i <= kTraceRows && std::getline(in, line); ++i) text += line + "\n";
      m[e.path().lexically_normal().string()] =
          WriteScratchFile("traces/" + e.path().filename().string(), text);
    }
    return m;
  }();
  return traces;
}

bool Under(const std::string& path, const std::string& dir) {
  const std::string p = fs::path(path).lexically_normal().string();
  const std::string d = (fs::path(SourceDir()) / dir).lexically_normal().string() + "/";
  return p.starts_with(d) && p.find("/../") == std::string::npos;
}

bool SafeInputs(const ScenarioConfig& c) {
  for (const std::string& card : {c.model_path, c.gpu_path}) {
    if (!Under(card, "models") && !Under(card, "tests/data/hardware")) return false;
  }
  if (c.timing.type == TimingType::kProfiled && !Under(c.timing.profile_path, "models/profiles") &&
      !Under(c.timing.profile_path, "tests/data/timing")) {
    return false;
  }
  return true;
}

void Run(const ConfigInput& input) {
  ConfigTree tree = ConfigTree::Parse(input.yaml, SourceDir() + "/configs/fuzz.yaml");
  for (const std::string& assignment : input.overrides) tree.Set(assignment);
  tree.Set("output.requests_csv", "false");
  tree.Set("output.timeseries_csv", "false");
  ScenarioConfig c = DecodeScenario(tree, DefaultModelsDir());
  if (!SafeInputs(c)) return;
  const std::string& trace = c.workload.trace_path;
  if (!trace.empty()) {
    const auto it = ShortTraces().find(fs::path(trace).lexically_normal().string());
    if (it != ShortTraces().end()) {
      tree.Set("workload.trace", JsonWriter::Quote(it->second));
    } else if (!Under(trace, "tests/data/workload")) {
      return;
    }
  }
  if (c.workload.max_requests == 0 || c.workload.max_requests > kMaxRequests) {
    tree.Set("workload.max_requests", std::to_string(kMaxRequests));
  }
  const ModelSpec model = LoadModelSpec(c.model_path);
  const int64_t max_len = std::min(model.max_context_tokens, kMaxModelLen);
  if (c.deployment.max_model_len == 0 || c.deployment.max_model_len > max_len) {
    tree.Set("deployment.max_model_len", std::to_string(max_len));
  }
  if (c.deployment.replicas > 4 || c.scheduler.max_num_seqs > 1024 ||
      c.kv_cache.vattention.max_slots > 1024 || c.scheduler.chunk_tokens < 64 ||
      (c.scheduler.max_num_batched_tokens > 0 && c.scheduler.max_num_batched_tokens < 64)) {
    return;
  }
  c = DecodeScenario(tree, DefaultModelsDir());
  KVSIM_FUZZ_EXPECT(c.workload.max_requests >= 1 && c.workload.max_requests <= kMaxRequests,
                    "the request bound did not hold");
  const std::unique_ptr<Simulation> sim = BuildSimulation(c);
  const Summary s = sim->Run().summary;
  KVSIM_FUZZ_EXPECT(s.requests_total <= kMaxRequests, "more requests than max_requests");
  KVSIM_FUZZ_EXPECT(s.requests_completed + s.requests_rejected == s.requests_total,
                    "requests neither completed nor rejected");
  KVSIM_FUZZ_EXPECT(s.peak_allocated_bytes <= s.kv_capacity_bytes || s.is_vattention,
                    "more KV allocated than the capacity");
  if (std::getenv("KVSIM_FUZZ_VERBOSE") != nullptr) {
    std::fprintf(
        stderr,
        "==kvsim-fuzz== run: %lld requests, %lld completed, %lld rejected, %lld iterations\n",
        static_cast<long long>(s.requests_total), static_cast<long long>(s.requests_completed),
        static_cast<long long>(s.requests_rejected), static_cast<long long>(s.iterations));
  }
  (void)sim->TimingLine();
  (void)sim->timing_caveats();
  (void)sim->timing_assumptions();
}

}  // namespace
}  // namespace kvsim::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvsim;
  using namespace kvsim::fuzz;
  if (size > kMaxInputBytes) return 0;
  const std::string_view text = AsText(data, size);
  if (MayNameSpecialFile(text)) return 0;
  const ConfigInput input = SplitConfigInput(text);
  ExpectOnlyInputErrors("run", [&] { Run(input); });
  return 0;
}
