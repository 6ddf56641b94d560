// Fuzz target: `kvsim fit` files (DecodeFitConfig, sim/config/fit_config.h). A file that
// decodes then has, for its first runs, the scenario loaded with the run's and each
// stage's overrides applied and decoded, and the requests format parsed, as the fitter
// does before fitting.
//
// The input is read as if it were configs/fit/fuzz.yaml, so the bundled fit file's
// relative scenario and measurement paths resolve.
#include <filesystem>

#include "sim/config/fit_config.h"
#include "sim/config/scenario_config.h"
#include "sim/fit/measurement.h"
#include "sim/simulator/builder.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvsim;
  using namespace kvsim::fuzz;
  if (size > kMaxInputBytes) return 0;
  const std::string_view text = AsText(data, size);
  if (MayNameSpecialFile(text)) return 0;
  ExpectOnlyInputErrors("fit config", [&] {
    const ConfigTree tree =
        ConfigTree::Parse(std::string(text), SourceDir() + "/configs/fit/fuzz.yaml");
    const FitConfig fit = DecodeFitConfig(tree);
    KVSIM_FUZZ_EXPECT(!fit.runs.empty() && !fit.free.empty() && !fit.metrics.empty(),
                      "a fit without runs, free terms or metrics");
    KVSIM_FUZZ_EXPECT(fit.solver.max_iterations >= 1, "solver.max_iterations below 1");
    for (const FreeTerm& t : fit.free) {
      KVSIM_FUZZ_EXPECT(t.min_value < t.max_value, t.key + ": min not below max");
      KVSIM_FUZZ_EXPECT(!t.has_start || (t.start >= t.min_value && t.start <= t.max_value),
                        t.key + ": start outside its bounds");
    }
    size_t runs = 0;
    for (const FitRun& run : fit.runs) {
      if (++runs > 4) break;
      for (const FitStage& stage : run.stages) {
        for (const auto& [metric, value] : stage.aggregates) {
          KVSIM_FUZZ_EXPECT(value > 0, stage.where + ": a non-positive aggregate");
        }
      }
      ExpectOnlyInputErrors("fit run", [&] {
        if (!run.requests_format.empty()) ParseMeasurementFormat(run.requests_format, run.where);
        std::error_code ec;
        if (!std::filesystem::is_regular_file(run.scenario_path, ec)) return;
        ConfigTree base = ConfigTree::Load(run.scenario_path);
        for (const auto& [key, value] : run.overrides) base.Set(key, value);
        DecodeScenario(base, DefaultModelsDir());
        for (const FitStage& stage : run.stages) {
          ExpectOnlyInputErrors("fit stage", [&] {
            ConfigTree t = base;
            for (const auto& [key, value] : stage.overrides) t.Set(key, value);
            DecodeScenario(t, DefaultModelsDir());
          });
        }
      });
    }
  });
  return 0;
}
