// Fuzz target: GPU cards (LoadGpuSpec, sim/hardware/gpu_spec.h) from a file. A card
// that loads then plans Llama-3-8B's memory and times one iteration with the roofline
// model at tensor-parallel 1 and 2.
#include "tests/fuzz/fuzz_card_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvsim;
  using namespace kvsim::fuzz;
  if (size > kMaxInputBytes) return 0;
  static const ModelSpec model = LoadModelSpec(SourceDir() + "/models/llm/Llama-3-8B.yaml");
  const std::string path = WriteScratchFile("gpu.yaml", AsText(data, size));
  ExpectOnlyInputErrors("GPU card", [&] {
    const GpuSpec gpu = LoadGpuSpec(path);
    KVSIM_FUZZ_EXPECT(gpu.memory_bytes > 0, "no memory");
    KVSIM_FUZZ_EXPECT(gpu.hbm_bandwidth_bytes_per_s > 0 && gpu.bf16_flops_per_s > 0,
                      "a rate that is not positive");
    for (int64_t tp : {1, 2}) {
      PlanAndTimeOneIteration(model, gpu, tp);
    }
  });
  return 0;
}
