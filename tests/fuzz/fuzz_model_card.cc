// Fuzz target: model cards (LoadModelSpec, sim/hardware/model_spec.h) from a file: a
// kvsim card, or a Hugging Face config.json when the input starts with '{'. A card that
// loads then has its derived sizes computed at several tensor-parallel
// degrees, its memory planned on an H100 and one iteration timed by the roofline
// model, so that a card the loader accepts cannot overflow what is derived from it.
#include "tests/fuzz/fuzz_card_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvsim;
  using namespace kvsim::fuzz;
  if (size > kMaxInputBytes) return 0;
  static const GpuSpec gpu = LoadGpuSpec(SourceDir() + "/models/gpu/H100-SXM.yaml");
  const std::string text(AsText(data, size));
  const bool json = !text.empty() && text.front() == '{';
  const std::string path = WriteScratchFile(json ? "config.json" : "model.yaml", text);
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
      PlanAndTimeOneIteration(model, gpu, tp);
    }
  });
  return 0;
}
