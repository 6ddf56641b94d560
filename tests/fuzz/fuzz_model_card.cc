// Fuzz target: model cards (LoadModelSpec, sim/hardware/model_spec.h) from a file. A
// card that loads then has its derived sizes computed at several tensor-parallel
// degrees, its memory planned on an H100 and one iteration timed by the roofline
// model, so that a card the loader accepts cannot overflow what is derived from it.
#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/simulator/builder.h"
#include "sim/timing/execution_time_model.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvsim;
  using namespace kvsim::fuzz;
  if (size > kMaxInputBytes) return 0;
  static const GpuSpec gpu = LoadGpuSpec(SourceDir() + "/models/gpu/H100-SXM.yaml");
  const std::string path = WriteScratchFile("model.yaml", AsText(data, size));
  ExpectOnlyInputErrors("model card", [&] {
    const ModelSpec model = LoadModelSpec(path);
    KVSIM_FUZZ_EXPECT(model.num_heads % model.num_kv_heads == 0, "kv heads do not divide heads");
    KVSIM_FUZZ_EXPECT(model.experts_per_token <= model.num_experts, "top-k above the experts");
    (void)model.TotalParams();
    for (int64_t tp : {1, 2, 3, 8, 64}) {
      KVSIM_FUZZ_EXPECT(model.WeightBytesPerRank(tp) > 0, "no weights");
      KVSIM_FUZZ_EXPECT(model.KvBytesPerTokenPerRank(tp) > 0, "no KV bytes per token");
    }
    for (int64_t tp : {1, 2, 8}) {
      ExpectOnlyInputErrors("model card on a GPU", [&] {
        ScenarioConfig config;
        config.deployment.tensor_parallel = tp;
        config.deployment.max_model_len = std::min<int64_t>(model.max_context_tokens, 4096);
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
