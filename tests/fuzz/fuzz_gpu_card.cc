// Fuzz target: GPU cards (LoadGpuSpec, sim/hardware/gpu_spec.h) from a file. A card
// that loads then plans Llama-3-8B's memory and times one iteration with the roofline
// model at tensor-parallel 1 and 2.
#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/simulator/builder.h"
#include "sim/timing/execution_time_model.h"
#include "tests/fuzz/fuzz_common.h"

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
      ExpectOnlyInputErrors("GPU card timing", [&] {
        ScenarioConfig config;
        config.deployment.tensor_parallel = tp;
        PlanMemory(model, gpu, config);
        CostConfig costs;
        const auto timing = NewRooflineModel(model, gpu, tp, RooflineConfig{}, costs);
        BatchWork work;
        work.num_seqs = 3;
        work.prefill_seqs = 1;
        work.prefill_tokens = 100;
        work.decode_tokens = 2;
        work.logit_tokens = 3;
        work.prefill_attention_pairs = 100.0 * 101 / 2;
        work.decode_context_tokens = 2000;
        work.max_context_tokens = 1000;
        KVSIM_FUZZ_EXPECT(timing->IterationTime(work) > Nanos(0), "an iteration of no time");
      });
    }
  });
  return 0;
}
