// ScenarioDelta: a typed change to a decoded scenario, for runs that vary a few
// keys of one base (plan candidates, compare entries, sweep rates, the workload a
// fit replays). Applied by ApplyDelta (scenario_config.h) to the typed config, never
// through YAML text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/batching/batch_scheduler.h"
#include "sim/cluster/router.h"
#include "sim/kvcache/kv_cache_manager.h"
#include "sim/workload/workload.h"

namespace kvsim {

// Each field, when set, replaces the scenario key named in its comment.
struct ScenarioDelta {
  std::optional<std::string> gpu;          // gpu: a card name or path
  std::optional<int64_t> tensor_parallel;  // deployment.tensor_parallel
  std::optional<int64_t> replicas;         // deployment.replicas
  std::optional<RouterType> router;        // deployment.router
  std::optional<KvManagerType> kv_type;    // kv_cache.type
  std::optional<int64_t> block_tokens;     // kv_cache.block_tokens
  std::optional<int64_t> page_bytes;       // kv_cache.page_bytes
  std::optional<bool> prefix_caching;      // kv_cache.prefix_caching
  // kv_cache.vmm.backend; set to nullopt: auto (resolved from the page size).
  std::optional<std::optional<VmmBackend>> vmm_backend;
  std::optional<SchedulerType> scheduler;         // scheduler.type
  std::optional<int64_t> max_num_seqs;            // scheduler.max_num_seqs
  std::optional<int64_t> max_num_batched_tokens;  // scheduler.max_num_batched_tokens
  std::optional<int64_t> chunk_tokens;            // scheduler.chunk_tokens
  // workload: {} when true: every workload key back to its default (the scenario's
  // own workload dropped as a whole) before the workload fields below apply.
  bool replace_workload = false;
  // workload.trace: a trace file, relative to the scenario file's directory. A
  // benchmark_serving trace's recorded arrival process applies when no
  // workload.arrival.process is set, as decoding applies it.
  std::optional<std::string> trace;
  std::optional<ArrivalProcess> arrival;  // workload.arrival.process
  std::optional<double> rate_qps;         // workload.arrival.rate_qps, requests/s
  std::optional<double> cv;               // workload.arrival.cv (gamma gaps)
  std::optional<LengthSource> lengths;    // workload.lengths.source
  std::optional<int64_t> max_requests;    // workload.max_requests
  std::optional<bool> requests_csv;       // output.requests_csv
  std::optional<bool> timeseries_csv;     // output.timeseries_csv

  // The keys it sets as (key path, YAML value), in the order above: what a config
  // file would say to make the same change, for the config.yaml a run writes
  // beside its outputs (DecodeScenario of the base with these set gives the same
  // config as ApplyDelta; a test holds the two together).
  std::vector<std::pair<std::string, std::string>> AsOverrides() const;
};

}  // namespace kvsim
