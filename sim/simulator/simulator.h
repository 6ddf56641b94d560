// Simulation: one scenario built and run to completion. The event loop is the only
// place simulated time advances.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "sim/cluster/replica.h"
#include "sim/cluster/router.h"
#include "sim/config/scenario_config.h"
#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/metrics/metrics.h"
#include "sim/timing/execution_time_model.h"
#include "sim/workload/workload.h"

namespace kvsim {

// How one GPU's memory is split, as the builder worked it out (bytes, per GPU).
struct MemoryPlan {
  int64_t gpu_memory_bytes = 0;
  int64_t usable_bytes = 0;  // memory x gpu_memory_utilization
  int64_t weight_bytes = 0;  // weights on one rank
  int64_t activation_reserve_bytes = 0;
  int64_t framework_reserve_bytes = 0;
  int64_t kv_capacity_bytes = 0;  // the KV budget (formula or override)
  int64_t kv_bytes_per_token = 0;
  int64_t max_model_len = 0;
};

// What one run produced, handed back by Simulation::Run as a value.
struct RunResult {
  Summary summary;
  // Every finished request's record, in completion order, when KeepRequestRecords()
  // was called before the run; else empty (observers saw them as they finished).
  std::vector<RequestRecord> records;
  // What the run's timing estimated or assumed rather than measured, and its one-line
  // description (Simulation::timing_caveats, timing_assumptions, TimingLine).
  std::vector<std::string> timing_caveats;
  std::vector<std::string> timing_assumptions;
  std::string timing_line;
};

class Simulation {
 public:
  // Everything a run needs, built by BuildSimulation (builder.h).
  Simulation(ScenarioConfig config, ModelSpec model, GpuSpec gpu, MemoryPlan memory,
             std::unique_ptr<Workload> workload, std::unique_ptr<Router> router,
             std::unique_ptr<ExecutionTimeModel> timing, std::unique_ptr<Metrics> metrics,
             std::vector<std::unique_ptr<Replica>> replicas);
  ~Simulation();

  // Before Run(): retain every finished request's record for RunResult::records
  // (memory then grows with the trace; the planner's SLO checks need them).
  void KeepRequestRecords() { metrics_->KeepRecords(); }
  // Before Run(): `observer` (not owned; it must outlive Run) sees every finished
  // request and every iteration as it happens, e.g. to stream them to disk.
  void AddObserver(MetricsObserver* observer) { metrics_->AddObserver(observer); }

  // Runs until every request has finished and returns what it produced. Call once.
  // Throws InputError if the trace turns out malformed part-way.
  RunResult Run();

  const ScenarioConfig& config() const { return config_; }
  const ModelSpec& model() const { return model_; }
  const GpuSpec& gpu() const { return gpu_; }
  const MemoryPlan& memory() const { return memory_; }
  const Metrics& metrics() const { return *metrics_; }
  const std::string& kv_manager_label() const { return kv_label_; }
  // What the timing model estimated rather than took from measurements (see
  // ExecutionTimeModel::Caveats); empty when nothing.
  std::vector<std::string> timing_caveats() const { return timing_->Caveats(); }
  // The terms the run assumed rather than measured (ExecutionTimeModel::Assumptions,
  // and the KV manager's, e.g. vAttention's uvm driver costs).
  std::vector<std::string> timing_assumptions() const;
  std::string timing_name() const { return timing_->Name(); }
  // "timing: roofline; engine vllm_v1; paged kernel flash_paged" (the profile's
  // path under profiled timing; the VMM backend for vAttention).
  std::string TimingLine() const;

 private:
  // The workload's next request. The workload is read as the run goes: its errors (a
  // trace row, an arrival past the simulated span) name the config file, as those found
  // building the run do.
  std::optional<RequestSpec> NextRequest();

  struct Arrival {};
  struct Step {
    size_t replica;
  };
  struct IterationDone {
    size_t replica;
  };
  // The oldest admitted arrival reaches the engine's scheduler, after the engine's
  // per-request work before scheduling (timing.engine.request_arrival_s).
  struct Ready {};
  using Payload = std::variant<Arrival, Ready, Step, IterationDone>;

  ScenarioConfig config_;
  ModelSpec model_;
  GpuSpec gpu_;
  MemoryPlan memory_;
  std::unique_ptr<Workload> workload_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<ExecutionTimeModel> timing_;  // shared by the replicas
  std::unique_ptr<Metrics> metrics_;            // shared by the replicas
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::string kv_label_;
  bool ran_ = false;
};

}  // namespace kvsim
