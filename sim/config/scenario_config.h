// ScenarioConfig: the typed form of a scenario YAML. Defaults live here, one
// comment per field; decoding is strict (unknown keys are errors naming their path).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/batching/batch_scheduler.h"
#include "sim/cluster/router.h"
#include "sim/config/calibration.h"
#include "sim/config/scenario_delta.h"
#include "sim/config/yaml_tree.h"
#include "sim/core/enum_table.h"
#include "sim/kvcache/kv_cache_manager.h"
#include "sim/timing/execution_time_model.h"
#include "sim/workload/benchmark_serving_trace.h"
#include "sim/workload/workload.h"

namespace kvsim {

// Element size a deployment stores weights or KV cache in: kAuto keeps the
// checkpoint's (ModelSpec::dtype_bytes), the others are 2, 2 and 1 bytes.
enum class Dtype { kAuto, kBf16, kFp16, kFp8 };
// deployment.weight_dtype and kv_cache.dtype.
inline constexpr auto kDtypes = MakeEnumTable<Dtype>(
    {{"auto", Dtype::kAuto}, {"bf16", Dtype::kBf16}, {"fp16", Dtype::kFp16}, {"fp8", Dtype::kFp8}});

// Bytes per element of `d`, or `checkpoint_bytes` for kAuto.
int64_t DtypeBytes(Dtype d, int64_t checkpoint_bytes);

struct DeploymentConfig {
  int64_t tensor_parallel = 1;  // GPUs per replica
  int64_t replicas = 1;         // engine instances behind the router
  RouterType router = RouterType::kRoundRobin;
  double gpu_memory_utilization = 0.9;                  // fraction of GPU memory the engine may use
  int64_t activation_reserve_bytes = int64_t{1} << 30;  // activations and workspace, per GPU
  int64_t framework_reserve_bytes = int64_t{512} << 20;  // CUDA context, graphs, per GPU
  int64_t kv_capacity_bytes = 0;      // > 0: KV budget per GPU, overriding the formula
  int64_t max_model_len = 0;          // longest request in tokens; 0: the model's max context
  Dtype weight_dtype = Dtype::kAuto;  // the layers' weights as served (fp8: W8A8 or W8A16)
  // > 0: the host CPU's single-thread speed relative to a Xeon Platinum 8480C core,
  // overriding the GPU card's host_cpu_speed (EngineConfig::host_cpu_speed).
  double host_cpu_speed = 0;
};

struct SchedulerConfig {
  SchedulerType type = SchedulerType::kVllm;
  int64_t max_num_seqs = 256;          // sequences per iteration
  int64_t max_num_batched_tokens = 0;  // tokens per iteration; 0: vllm max(max_model_len,
                                       // 2048), sarathi chunk_tokens, vllm_v1 2048
  int64_t chunk_tokens = 512;          // sarathi: token budget and largest prefill chunk
  bool reserve_full_isl = true;        // vllm_v1: admit only when the whole prompt fits
};

struct KvCacheConfig {
  KvManagerType type = KvManagerType::kPaged;
  Dtype dtype = Dtype::kAuto;  // KV cache elements (vLLM --kv-cache-dtype)
  // The attention kernel a paged cache runs (vLLM V1's default: FlashAttention
  // through a block table); profiled: the kvprobe profile's own paged kernel.
  PagedKernel paged_kernel = PagedKernel::kFlashPaged;
  StaticKvConfig static_kv;
  PagedKvConfig paged;
  // max_slots 0 here means max_num_seqs. backend is resolved: kv_cache.vmm.backend
  // auto becomes uvm for pages below 2 MiB, stock otherwise. kv_cache.prefix_caching
  // sets both paged.prefix_caching and vattention.prefix_caching (static: an error).
  VAttentionKvConfig vattention;
  // Which kv_cache.vmm latencies of the stock backend the config sets. With profiled
  // timing, the others come from the profile's [vmm] rows instead of
  // VAttentionKvConfig's defaults. (uvm_map_s has no profile row: the uvm driver is
  // not profiled.)
  struct VmmKeysSet {
    bool map_s = false;
    bool set_access_s = false;
    bool unmap_s = false;
  };
  VmmKeysSet vmm_set;
  // Set by BuildSimulation: the stock latencies the config does not set came from the
  // profile's [vmm] rows (measured on the run's GPU), not from the defaults.
  bool vmm_from_profile = false;
};

struct TimingConfig {
  TimingType type = TimingType::kRoofline;
  EngineConfig engine = EnginePresetDefaults(EngineConfig::Preset::kVllmV1);  // every model
  AllreduceConfig allreduce;                                                  // every model
  RooflineConfig roofline;
  FixedTimeConfig fixed;
  std::string profile_path;  // kvprobe profile (resolved); required for kProfiled
  ProfiledConfig profiled;
  // timing.calibration: terms fitted by `kvsim fit` (sim/config/calibration.h),
  // already applied to the fields above. Empty path: none.
  struct Calibrated {
    std::string path;                 // resolved calibration.yaml
    std::vector<std::string> keys;    // key paths it set (overrides win over it)
    std::vector<std::string> runs;    // the measured runs it was fitted on
    std::vector<std::string> gpus;    // their GPU cards
    std::vector<std::string> models;  // their models
    // Their tensor parallelism; empty in a calibration that does not record it.
    std::vector<int64_t> tensor_parallel;
  };
  Calibrated calibration;
};

struct OutputConfig {
  bool requests_csv = true;    // write requests.csv (one row per finished request)
  bool timeseries_csv = true;  // write timeseries.csv
  // timeseries.csv granularity: 0 = one row per iteration; > 0 = one row per replica
  // per interval of this length in which an iteration starts, with the interval's
  // aggregates (README: Outputs).
  Nanos timeseries_interval{Nanos(1'000'000'000)};
};

// How the event loop advances (not what it models: results do not depend on it).
struct SimulationConfig {
  // Advance over runs of decode iterations at once (Replica::StartIteration);
  // false steps one iteration at a time, for checking.
  bool skip_ahead = true;
};

// What the scenario file said where a derived value depends on keys a typed change
// (ScenarioDelta, scenario_delta.h) may set: kept so that the change resolves them
// again exactly as decoding did, without going back to the file's text.
struct ScenarioSources {
  std::string models_dir;  // where card names resolve
  std::string base_dir;    // the config file's directory (relative paths)
  // kv_cache.vmm.backend as written (nullopt: auto, resolved from the page size).
  std::optional<VmmBackend> vmm_backend;
  // Whether the file (or an override) wrote kv_cache.block_tokens / kv_cache.page_bytes:
  // compare's default entries keep them (DefaultCompareEntries).
  bool block_tokens_set = false, page_bytes_set = false;
  // Whether kv_cache.watermark was written: unwritten, it follows the scheduler
  // (ApplySchedulerWatermark).
  bool watermark_set = false;
  // The config has a compare list: its entries may switch the arrival process, length
  // source or timing model, so keys of other types are kept for them, not refused.
  bool has_compare_entries = false;
  // Which workload.arrival keys the file (or an override) set.
  bool process_set = false, rate_set = false, cv_set = false;
  // A benchmark_serving trace without workload.arrival.process: the arrival process
  // its file records, read once; "file:line: workload.trace" for messages about it.
  std::optional<BenchmarkServingArrivals> recorded_arrivals;
  std::string trace_where;
  // Decoded with WorkloadDecoding::kSkip, and no delta has replaced the workload yet.
  bool workload_unread = false;
  // timing.calibration (null: none): its terms, the timing as decoded before them,
  // where the key was ("file:line: timing.calibration"), the calibration keys an
  // override set (they win) and those the file sets itself ("file:line", an error).
  std::shared_ptr<const Calibration> calibration;
  std::shared_ptr<const TimingConfig> uncalibrated_timing;
  std::string calibration_where;
  std::set<std::string> calibration_overridden;
  std::map<std::string, std::string> calibration_in_file;
};

// One run of a `kvsim compare`: a label and the change it makes to the base: key
// paths and YAML values as a user's compare entry writes them, or a typed delta
// (the default entries). Overrides apply first.
struct CompareEntry {
  std::string label;
  std::vector<std::pair<std::string, std::string>> overrides;  // key path, YAML value
  std::string overrides_where;  // "file:line: compare[i].set", for errors about them
  ScenarioDelta delta;
};

struct ScenarioConfig {
  std::string config_file;  // where it was read from
  uint64_t seed = 0;
  std::string model_path;  // resolved path of the model card
  std::string gpu_path;    // resolved path of the GPU card
  DeploymentConfig deployment;
  WorkloadConfig workload;
  SchedulerConfig scheduler;
  KvCacheConfig kv_cache;
  TimingConfig timing;
  OutputConfig output;
  SimulationConfig simulation;
  std::vector<CompareEntry> compare;  // empty: the default four
  ScenarioSources sources;
};

// Whether DecodeScenario reads the file's workload mapping.
enum class WorkloadDecoding {
  kRead,
  // Left unread, for a caller that replaces the whole workload with a typed delta
  // (ScenarioDelta::replace_workload), as `kvsim fit` replays a measurement: the file
  // may leave it out or name a trace that is not there. Until then config.workload
  // holds the defaults, and ApplyDelta refuses (KVSIM_CHECK) a delta that keeps it.
  kSkip,
};

// Decodes `tree` strictly. Cards named without a path resolve in
// `<models_dir>/llm/<name>.yaml` and `<models_dir>/gpu/<name>.yaml`, where
// models_dir is the config key `models_dir` (relative to the config file) or
// `default_models_dir`. Relative paths resolve against the config file's directory.
// Throws InputError "file:line: key.path: what" on any problem.
ScenarioConfig DecodeScenario(const ConfigTree& tree, const std::string& default_models_dir,
                              WorkloadDecoding workload = WorkloadDecoding::kRead);

// `base` with `delta` applied, every value derived from a changed key resolved
// again as DecodeScenario resolves it (the VMM backend, a new trace's or process's
// recorded arrivals, the GPU's calibration terms) and the cross-key checks run
// again. Throws InputError "key.path: what" (the caller adds whose change it was)
// for a card that does not exist, a benchmark_serving trace that cannot be read or a
// combination decoding would refuse; range checks on the delta's values are the
// caller's (they come from a decoded plan or from code).
ScenarioConfig ApplyDelta(const ScenarioConfig& base, const ScenarioDelta& delta);

// The path of a card given as a name ("Llama-3-8B": <models_dir>/<kind>/<name>.yaml)
// or as a path (with a '/' or ending .yaml: relative to base_dir). Throws InputError
// "what" (no location: the caller names the key) when it does not exist, listing the
// cards of that kind when given a name.
std::string ResolveCardPath(const std::string& value, const std::string& models_dir,
                            const std::string& kind, const std::string& base_dir);

// The field of `t` a fittable timing key ("timing.engine.per_seq_s", FittableTerms)
// names, or nullptr for any other key: how a calibration or a fit sets a term.
double* TimingTermField(TimingConfig& t, std::string_view key);

// The KV managers that read the kv_cache key `key` (relative to kv_cache:
// "block_tokens", "vmm.map_s"): every manager for type, dtype and prefix_caching (static
// reads it too: it must be off); "paged", "vattention" or "static" for a key of one
// manager's own.
std::vector<KvManagerType> KvCacheKeyReaders(std::string_view key);

// The compare list used when a config has none, built from the config's kv_cache:
// static; paged at the block size it wrote (16 when none; labelled "paged", or
// "paged32" for another size); vattention with 2 MiB and 64 KiB pages, and with the
// page size it wrote when that is neither ("vattention_256KiB"), each with the VMM
// backend it wrote where that backend maps the page size, else auto. Every other
// kv_cache key carries to every entry.
std::vector<CompareEntry> DefaultCompareEntries(const ScenarioConfig& base);

// An unwritten kv_cache.watermark follows the scheduler: vLLM V1 keeps no admission
// watermark (0), the V0-style schedulers vLLM's 1% (the managers' default).
void ApplySchedulerWatermark(ScenarioConfig& c);

}  // namespace kvsim
