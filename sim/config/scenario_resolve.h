// Resolution steps DecodeScenario and ApplyDelta share: values one key derives from
// others, and the checks across keys. Internal to sim/config/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sim/config/scenario_config.h"

namespace kvsim {

// Whether `bytes` is a vAttention page size (64 KiB, 128 KiB, 256 KiB or 2 MiB).
bool IsVAttentionPageSize(int64_t bytes);

// kv_cache's checks across keys: static reservation with a prefix cache, a page
// size the VMM backend cannot map (vattention only). nullopt when it is fine; else
// the key to blame, relative to kv_cache ("prefix_caching", "page_bytes",
// "vmm.backend"), and why.
std::optional<VmmConfigError> CheckKvCache(const KvCacheConfig& k);

// deployment.kv_capacity_bytes (when set, > 0) against the least KV any manager needs
// to admit one request of max_model_len tokens (deployment.max_model_len, else the
// model card's max context) on one GPU: max_model_len x the model's KV bytes per token
// per rank (K and V of every layer, at kv_cache.dtype, split by tensor_parallel).
// nullopt when it holds that much, when the key is unset, or when building the run
// refuses the scenario for another reason first (the model card cannot be read, the
// heads do not split over tensor_parallel, max_model_len exceeds the card's context);
// else why not, for an error naming deployment.kv_capacity_bytes (whose value
// overrides gpu_memory_utilization, so the remedies are that key and max_model_len).
std::optional<std::string> CheckKvCapacity(const ScenarioConfig& c);

// Gives `w` the arrival process a benchmark_serving trace records (the config does
// not set workload.arrival.process): Poisson at its request_rate when burstiness is
// 1, else Gamma with shape burstiness; request_rate inf sends every request at 0 s.
// A rate or cv the config set (s.rate_set, s.cv_set: w holds them) wins. Throws
// InputError naming s.trace_where.
void ApplyRecordedArrivals(const ScenarioSources& s, WorkloadConfig& w);

// Whether the workload's trace is a vLLM benchmark_serving result: named so, or a
// .json file that format auto detects as one. Other files are not opened here (the
// workload reports their errors when it reads them).
bool IsBenchmarkServingTrace(const WorkloadConfig& w);

// Reads the arrival process w's benchmark_serving trace records into
// s.recorded_arrivals and applies it (ApplyRecordedArrivals), for a workload that
// leaves workload.arrival.process unset. Throws InputError "s.trace_where: what"
// when the file cannot be read. REQUIRES: IsBenchmarkServingTrace(w).
void ReadRecordedArrivals(ScenarioSources& s, WorkloadConfig& w);

// Sets c.timing to c.sources.uncalibrated_timing with the calibration's shared terms
// and its terms for c's GPU card applied, except those an override set; fills
// c.timing.calibration and engine.fitted. Throws InputError when the file sets a
// term the calibration also sets, when the calibration was fitted under another
// timing type or engine preset, or (roofline and profiled timing) when c's engine runs
// its kernels otherwise than Calibration::engine_kernels says (a file without them is
// taken to have run its preset's kernels; one fitted on the eager preset is refused).
// REQUIRES: c.sources.calibration.
void ApplyCalibrationTerms(ScenarioConfig& c);

}  // namespace kvsim
