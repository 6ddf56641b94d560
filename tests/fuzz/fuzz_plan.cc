// Fuzz target: capacity-planning files (LoadPlan, sim/config/plan_config.h), then the
// plan's base scenario decoded as `kvsim plan` does before its search, and the
// scenario of each of the first candidates (the overrides of the planner's
// CandidateTree) decoded too.
//
// The input is written to configs/plans/fuzz.yaml of a scratch copy of the repository
// layout (configs/*.yaml, models/ and traces/ linked), so the bundled plans'
// `scenario: ../quickstart.yaml` resolves as it does in the repository.
#include <filesystem>

#include "sim/config/plan_config.h"
#include "sim/config/scenario_config.h"
#include "sim/metrics/json_writer.h"
#include "sim/simulator/builder.h"
#include "tests/fuzz/fuzz_common.h"

namespace kvsim::fuzz {
namespace {

namespace fs = std::filesystem;

// The scratch repository layout; returns the directory the plan is written to.
fs::path PlanDir() {
  static const fs::path dir = [] {
    const fs::path root = ScratchDir() / "repo";
    const fs::path source = SourceDir();
    fs::create_directories(root / "configs" / "plans");
    fs::create_directory_symlink(source / "models", root / "models");
    fs::create_directory_symlink(source / "traces", root / "traces");
    for (const fs::directory_entry& e : fs::directory_iterator(source / "configs")) {
      if (e.path().filename() == "plans") continue;
      fs::create_symlink(e.path(), root / "configs" / e.path().filename());
    }
    return root / "configs" / "plans";
  }();
  return dir;
}

void DecodeCandidate(const PlanConfig& plan, const std::string& gpu, int64_t tp, const KvChoice& kv,
                     const SchedulerChoice& s) {
  ConfigTree t = plan.scenarios.front().tree;
  t.Set("gpu", JsonWriter::Quote(gpu));
  t.Set("deployment.tensor_parallel", std::to_string(tp));
  t.Set("kv_cache.type", std::string(kKvManagerTypes.Name(kv.type)));
  if (kv.block_tokens > 0) t.Set("kv_cache.block_tokens", std::to_string(kv.block_tokens));
  if (kv.page_bytes > 0) t.Set("kv_cache.page_bytes", std::to_string(kv.page_bytes));
  t.Set("scheduler.type", std::string(kSchedulerTypes.Name(s.type)));
  if (s.max_num_seqs > 0) t.Set("scheduler.max_num_seqs", std::to_string(s.max_num_seqs));
  if (s.max_num_batched_tokens > 0) {
    t.Set("scheduler.max_num_batched_tokens", std::to_string(s.max_num_batched_tokens));
  }
  if (s.chunk_tokens > 0) t.Set("scheduler.chunk_tokens", std::to_string(s.chunk_tokens));
  t.Set("workload.arrival.rate_qps", "1");
  t.Set("workload.max_requests", std::to_string(plan.probe_requests));
  DecodeScenario(t, DefaultModelsDir());
}

}  // namespace
}  // namespace kvsim::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvsim;
  using namespace kvsim::fuzz;
  if (size > kMaxInputBytes) return 0;
  const std::string_view text = AsText(data, size);
  if (MayNameSpecialFile(text)) return 0;
  const std::string path = (PlanDir() / "fuzz.yaml").string();
  WriteScratchFile("repo/configs/plans/fuzz.yaml", text);
  ExpectOnlyInputErrors("plan", [&] {
    const PlanConfig plan = LoadPlan(path);
    KVSIM_FUZZ_EXPECT(!plan.scenarios.empty(), "a plan without a scenario");
    KVSIM_FUZZ_EXPECT(!plan.gpus.empty() && !plan.tensor_parallel.empty() &&
                          !plan.kv_managers.empty() && !plan.schedulers.empty(),
                      "an empty candidate list");
    for (const PlanScenario& sc : plan.scenarios) {
      KVSIM_FUZZ_EXPECT((sc.target_qps > 0) != (sc.trace_peak_window_s > 0),
                        "not exactly one target");
      KVSIM_FUZZ_EXPECT(!sc.slo.empty(), "a scenario without an objective");
    }
    KVSIM_FUZZ_EXPECT(plan.initial_qps > 0 && plan.initial_qps <= plan.max_qps,
                      "search bounds out of order");
    KVSIM_FUZZ_EXPECT(plan.max_probes >= 2, "search.max_probes below 2");
    KVSIM_FUZZ_EXPECT(plan.probe_requests >= 10, "search.probe_requests below 10");
    KVSIM_FUZZ_EXPECT(plan.jobs >= 0, "negative jobs");
    for (const KvChoice& kv : plan.kv_managers) (void)kv.Label();
    for (const SchedulerChoice& s : plan.schedulers) (void)s.Label();
    for (const PlanScenario& sc : plan.scenarios) DecodeScenario(sc.tree, DefaultModelsDir());
    int candidates = 0;
    for (const std::string& gpu : plan.gpus) {
      for (int64_t tp : plan.tensor_parallel) {
        for (const KvChoice& kv : plan.kv_managers) {
          for (const SchedulerChoice& s : plan.schedulers) {
            if (++candidates > 8) return;
            ExpectOnlyInputErrors("plan candidate", [&] { DecodeCandidate(plan, gpu, tp, kv, s); });
          }
        }
      }
    }
  });
  return 0;
}
