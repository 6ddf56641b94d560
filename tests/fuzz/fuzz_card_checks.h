// What the card fuzzers do with a card that loads: plan a deployment's memory and
// time one mixed iteration with the roofline model, so that a card the loader
// accepts cannot overflow, divide by zero or take no time in what is derived from it.
#pragma once

#include <algorithm>
#include <cstdint>

#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/simulator/builder.h"
#include "sim/timing/execution_time_model.h"
#include "tests/fuzz/fuzz_common.h"

namespace kvsim::fuzz {

// Plans `model` on `gpu` at tensor parallelism `tp` (max_model_len at most 4,096)
// and times an iteration of one 100-token prefill and two decodes; input errors
// (the model does not fit, say) are expected, anything else is a finding.
inline void PlanAndTimeOneIteration(const ModelSpec& model, const GpuSpec& gpu, int64_t tp) {
  ExpectOnlyInputErrors("card on a deployment", [&] {
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

}  // namespace kvsim::fuzz
