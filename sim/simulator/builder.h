// The one builder: typed ScenarioConfig -> cards, memory plan, factories, Simulation.
#pragma once

#include <memory>
#include <string>

#include "sim/simulator/simulator.h"

namespace kvsim {

// Where kvsim's bundled files are (models/, configs/, traces/, tools/report/):
// $KVSIM_DATA_DIR when set; else PREFIX/share/kvsim when this executable is
// PREFIX/bin/kvsim of an installed kvsim (cmake --install); else the source tree
// it was built from.
std::string DataDir();

// The model card of `c` with the weight and KV dtypes the deployment serves it in
// (deployment.weight_dtype, kv_cache.dtype). Throws InputError for a dtype the
// timing model cannot time (fp8 with a bf16 kvprobe profile).
ModelSpec ServedModel(const ScenarioConfig& c);

// Where cards named without a path are looked up: DataDir()/models.
std::string DefaultModelsDir();

// Splits one GPU's memory: KV capacity = memory x gpu_memory_utilization
// - weights on the rank - activation reserve - framework reserve, unless
// deployment.kv_capacity_bytes overrides it. Throws InputError naming the key path
// when the model does not fit or the deployment is impossible.
MemoryPlan PlanMemory(const ModelSpec& model, const GpuSpec& gpu, const ScenarioConfig& config);

// Loads the cards and builds every component. Throws InputError (file:line or key
// path) for impossible configurations, e.g. a model that does not fit the GPU or a
// KV cache too small for one max_model_len request.
std::unique_ptr<Simulation> BuildSimulation(const ScenarioConfig& config);

}  // namespace kvsim
