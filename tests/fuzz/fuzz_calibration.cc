// Fuzz target: calibration files (LoadCalibration, sim/config/calibration.h). A file that
// loads must survive a round trip through CalibrationYaml (what `kvsim fit` writes) and
// is then applied to the quickstart scenario (timing.calibration) on its GPU and decoded.
#include "sim/config/calibration.h"
#include "sim/config/scenario_config.h"
#include "sim/simulator/builder.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvsim;
  using namespace kvsim::fuzz;
  if (size > kMaxInputBytes) return 0;
  static const ConfigTree scenario = ConfigTree::Load(SourceDir() + "/configs/quickstart.yaml");
  const std::string path = WriteScratchFile("calibration.yaml", AsText(data, size));
  ExpectOnlyInputErrors("calibration", [&] {
    const Calibration cal = LoadCalibration(path);
    KVSIM_FUZZ_EXPECT(!cal.terms.empty() || !cal.gpu_terms.empty(), "a calibration without terms");
    for (const auto& [key, value] : cal.terms) {
      const FittableTerm* term = FindFittableTerm(key);
      KVSIM_FUZZ_EXPECT(term != nullptr && !term->per_gpu, key + ": not a shared fittable term");
      KVSIM_FUZZ_EXPECT(value >= term->min_value && value <= term->max_value,
                        key + ": value outside the term's range");
    }
    for (const auto& [gpu, terms] : cal.gpu_terms) {
      for (const auto& [key, value] : terms) {
        const FittableTerm* term = FindFittableTerm(key);
        KVSIM_FUZZ_EXPECT(term != nullptr && term->per_gpu, key + ": not a per-GPU fittable term");
        KVSIM_FUZZ_EXPECT(value >= term->min_value && value <= term->max_value,
                          key + ": value outside the term's range");
      }
    }
    // What `kvsim fit` would write for it reads back to the same terms.
    const std::string again = WriteScratchFile("calibration_again.yaml", CalibrationYaml(cal));
    Calibration back;
    try {
      back = LoadCalibration(again);
    } catch (const InputError& e) {
      Die(std::string("CalibrationYaml's output does not load: ") + e.what() + "\n--- written:\n" +
          CalibrationYaml(cal));
    }
    KVSIM_FUZZ_EXPECT(back.terms == cal.terms && back.gpu_terms == cal.gpu_terms &&
                          back.timing_type == cal.timing_type &&
                          back.engine_preset == cal.engine_preset && back.runs == cal.runs &&
                          back.models == cal.models && back.gpus == cal.gpus &&
                          back.fit_file == cal.fit_file &&
                          back.engine_kernels == cal.engine_kernels && back.hosts == cal.hosts,
                      "CalibrationYaml does not round-trip");
    ConfigTree calibrated = scenario;
    calibrated.Set("timing.calibration", "\"" + path + "\"");
    DecodeScenario(calibrated, DefaultModelsDir());
  });
  return 0;
}
