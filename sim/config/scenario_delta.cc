// ApplyDelta: typed changes to a decoded scenario.
#include <fmt/format.h>

#include "sim/config/map_reader.h"
#include "sim/config/scenario_config.h"
#include "sim/config/scenario_resolve.h"
#include "sim/config/yaml_tree.h"
#include "sim/core/check.h"

namespace kvsim {
namespace {

// Sets `field` from `value` when the delta sets it.
template <typename T, typename U>
void Take(const std::optional<U>& value, T& field) {
  if (value) field = *value;
}

void ApplyKvCache(const ScenarioDelta& d, KvCacheConfig& k, ScenarioSources& s) {
  Take(d.kv_type, k.type);
  Take(d.block_tokens, k.paged.block_tokens);
  if (d.page_bytes) {
    if (!IsVAttentionPageSize(*d.page_bytes)) {
      throw InputError(
          fmt::format("kv_cache.page_bytes: {} bytes is not a vAttention page size; "
                      "valid: 64KiB, 128KiB, 256KiB, 2MiB",
                      *d.page_bytes));
    }
    k.vattention.page_bytes = *d.page_bytes;
  }
  if (d.prefix_caching) k.paged.prefix_caching = k.vattention.prefix_caching = *d.prefix_caching;
  Take(d.vmm_backend, s.vmm_backend);
  k.vattention.backend = s.vmm_backend.value_or(AutoVmmBackend(k.vattention.page_bytes));
  if (const std::optional<VmmConfigError> e = CheckKvCache(k)) {
    throw InputError(fmt::format("kv_cache.{}: {}", e->key, e->what));
  }
}

// Drops the arrival process a benchmark_serving trace recorded, when the trace or
// the process changes: the arrival keys the file did not set go back to their
// defaults, as decoding leaves them where no recorded process applies. (A recorded
// process means the file set no workload.arrival.process.)
void DropRecordedArrivals(ScenarioSources& s, WorkloadConfig& w) {
  if (!s.recorded_arrivals) return;
  s.recorded_arrivals.reset();
  const WorkloadConfig defaults;
  w.arrival = defaults.arrival;
  if (!s.rate_set) w.rate_qps = defaults.rate_qps;
  if (!s.cv_set) w.cv = defaults.cv;
}

// Every workload key back to its default, as `workload: {}` decodes (the seed is
// the scenario's, not a workload key).
void ResetWorkload(WorkloadConfig& w, ScenarioSources& s) {
  const uint64_t seed = w.seed;
  w = WorkloadConfig();
  w.seed = seed;
  s.process_set = s.rate_set = s.cv_set = false;
  s.recorded_arrivals.reset();
  s.trace_where.clear();
  s.workload_unread = false;
}

void ApplyWorkload(const ScenarioDelta& d, WorkloadConfig& w, ScenarioSources& s) {
  KVSIM_CHECK(!s.workload_unread || d.replace_workload,
              "a scenario decoded without its workload needs a delta that replaces it");
  if (d.replace_workload) ResetWorkload(w, s);
  if (d.trace) {
    DropRecordedArrivals(s, w);
    w.trace_path = Resolve(s.base_dir, *d.trace);
    s.trace_where = "workload.trace";
  }
  if (d.arrival) {
    DropRecordedArrivals(s, w);  // a process set by the change replaces the file's
    w.arrival = *d.arrival;
    s.process_set = true;
  }
  if (d.rate_qps) {
    w.rate_qps = *d.rate_qps;
    s.rate_set = true;
  }
  if (d.cv) {
    w.cv = *d.cv;
    s.cv_set = true;
  }
  Take(d.lengths, w.lengths);
  Take(d.max_requests, w.max_requests);
  if (d.trace && !s.process_set && IsBenchmarkServingTrace(w)) {
    ReadRecordedArrivals(s, w);  // the new trace's
  } else if (s.recorded_arrivals) {
    ApplyRecordedArrivals(s, w);
  }
  ValidateWorkloadConfig(w, "workload");
}

}  // namespace

ScenarioConfig ApplyDelta(const ScenarioConfig& base, const ScenarioDelta& d) {
  ScenarioConfig c = base;
  if (d.gpu) {
    try {
      c.gpu_path = ResolveCardPath(*d.gpu, c.sources.models_dir, "gpu", c.sources.base_dir);
    } catch (const InputError& e) {
      throw InputError(fmt::format("gpu: {}", e.what()));
    }
  }
  Take(d.tensor_parallel, c.deployment.tensor_parallel);
  Take(d.replicas, c.deployment.replicas);
  Take(d.router, c.deployment.router);
  ApplyKvCache(d, c.kv_cache, c.sources);
  Take(d.scheduler, c.scheduler.type);
  ApplySchedulerWatermark(c);
  Take(d.max_num_seqs, c.scheduler.max_num_seqs);
  Take(d.max_num_batched_tokens, c.scheduler.max_num_batched_tokens);
  Take(d.chunk_tokens, c.scheduler.chunk_tokens);
  ApplyWorkload(d, c.workload, c.sources);
  Take(d.requests_csv, c.output.requests_csv);
  Take(d.timeseries_csv, c.output.timeseries_csv);
  // Per-GPU calibration terms follow the card.
  if (d.gpu && c.gpu_path != base.gpu_path && c.sources.calibration) ApplyCalibrationTerms(c);
  return c;
}

std::vector<std::pair<std::string, std::string>> ScenarioDelta::AsOverrides() const {
  std::vector<std::pair<std::string, std::string>> out;
  const auto add = [&](const char* key, std::string value) {
    out.emplace_back(key, std::move(value));
  };
  const auto boolean = [](bool b) { return std::string(b ? "true" : "false"); };
  if (gpu) add("gpu", QuotedYamlScalar(*gpu));
  if (tensor_parallel) add("deployment.tensor_parallel", std::to_string(*tensor_parallel));
  if (replicas) add("deployment.replicas", std::to_string(*replicas));
  if (router) add("deployment.router", std::string(kRouterTypes.Name(*router)));
  if (kv_type) add("kv_cache.type", std::string(kKvManagerTypes.Name(*kv_type)));
  if (block_tokens) add("kv_cache.block_tokens", std::to_string(*block_tokens));
  if (page_bytes) add("kv_cache.page_bytes", std::to_string(*page_bytes));
  if (prefix_caching) add("kv_cache.prefix_caching", boolean(*prefix_caching));
  if (vmm_backend) add("kv_cache.vmm.backend", std::string(kVmmBackendSettings.Name(*vmm_backend)));
  if (scheduler) add("scheduler.type", std::string(kSchedulerTypes.Name(*scheduler)));
  if (max_num_seqs) add("scheduler.max_num_seqs", std::to_string(*max_num_seqs));
  if (max_num_batched_tokens) {
    add("scheduler.max_num_batched_tokens", std::to_string(*max_num_batched_tokens));
  }
  if (chunk_tokens) add("scheduler.chunk_tokens", std::to_string(*chunk_tokens));
  if (replace_workload) add("workload", "{}");
  if (trace) add("workload.trace", QuotedYamlScalar(*trace));
  if (arrival) add("workload.arrival.process", std::string(kArrivalProcesses.Name(*arrival)));
  // The shortest text that reads back as the same double.
  if (rate_qps) add("workload.arrival.rate_qps", fmt::format("{}", *rate_qps));
  if (cv) add("workload.arrival.cv", fmt::format("{}", *cv));
  if (lengths) add("workload.lengths.source", std::string(kLengthSources.Name(*lengths)));
  if (max_requests) add("workload.max_requests", std::to_string(*max_requests));
  if (requests_csv) add("output.requests_csv", boolean(*requests_csv));
  if (timeseries_csv) add("output.timeseries_csv", boolean(*timeseries_csv));
  return out;
}

}  // namespace kvsim
