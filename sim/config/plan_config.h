// PlanConfig: the typed form of a capacity-planning YAML (kvsim plan): a base
// scenario, service-level objectives, a target load and a space of candidate
// deployments. Decoded strictly, like scenarios.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sim/batching/batch_scheduler.h"
#include "sim/config/yaml_tree.h"
#include "sim/core/enum_table.h"
#include "sim/kvcache/kv_cache_manager.h"

namespace kvsim {

// Percentile thresholds, in seconds; an absent one is not checked.
struct PercentileSlo {
  std::optional<double> p50, p90, p99;
};

struct SloSpec {
  PercentileSlo ttft_s, tbt_s, tpot_s, e2e_s;
  // Attainment: the fraction of requests that meet EVERY per-request threshold below
  // must be at least `attainment` (checked when attainment and a threshold are set).
  std::optional<double> attainment;
  std::optional<double> request_ttft_s, request_tpot_s, request_e2e_s;
  // Stability: the run must not be overloaded by the rule of every kvsim output
  // (TestOverload, sim/metrics/metrics.h) with stability_slack_s (s) as the growth of
  // the mean queueing delay, last quarter of the arrivals against the first, that it
  // lets pass.
  bool stability = true;
  double stability_slack_s = 1.0;
  // Admission: the fraction of offered requests admitted must be at least `admitted`.
  // A request whose prompt reaches deployment.max_model_len is refused: never served
  // and in no latency, so by default (1) every request must be admitted.
  double admitted = 1.0;
  bool admitted_set = false;  // the plan wrote slo.admitted (else the default above)

  bool empty() const;  // no objective at all
};

// One KV-manager choice of the candidate space (scenario overrides).
struct KvChoice {
  KvManagerType type = KvManagerType::kPaged;
  int64_t block_tokens = 0;   // paged (0: the scenario's)
  int64_t page_bytes = 0;     // vattention (0: the scenario's)
  std::string Label() const;  // "paged16", "vattention2MiB", "static"
};

// One scheduler choice (scenario overrides; 0 keeps the scenario's value).
struct SchedulerChoice {
  SchedulerType type = SchedulerType::kVllm;
  int64_t max_num_seqs = 0;
  int64_t max_num_batched_tokens = 0;
  int64_t chunk_tokens = 0;
  std::string Label() const;  // "vllm", "sarathi512"
};

// One workload a plan sizes for: a scenario, its target load and its SLOs.
struct PlanScenario {
  // Unique within the plan; empty for the one scenario of a plan that gives
  // `scenario:` rather than `scenarios:` (its outputs name no scenario).
  std::string name;
  std::string where;  // "file:line: scenarios[i]" (the plan file for `scenario:`)
  ConfigTree tree;    // the scenario file with its `set:` overrides applied
  // Target load: a rate, or the peak of the scenario's trace over a window.
  double target_qps = 0;
  double trace_peak_window_s = 0;
  SloSpec slo;  // its own `slo:`, else the plan's
};

// How the fleets of several scenarios combine into one cost (plan key `combine`).
enum class FleetRule {
  // One fleet serves every scenario (the same service under different loads or
  // mixes, in turn): its size is the largest any scenario needs.
  kOneFleet,
  // Each scenario gets its own fleet of the same deployment: sizes and costs add.
  kSeparateFleets,
};
inline constexpr auto kFleetRules = MakeEnumTable<FleetRule>(
    {{"one_fleet", FleetRule::kOneFleet}, {"separate_fleets", FleetRule::kSeparateFleets}});

struct PlanConfig {
  std::string plan_file;
  // At least one; a deployment is sized for each and the sizes combine by `combine`.
  std::vector<PlanScenario> scenarios;
  FleetRule combine = FleetRule::kOneFleet;
  SloSpec slo;  // the plan's `slo:` (each scenario holds the SLOs it is sized for)
  // Search.
  double initial_qps = 1.0;
  double tolerance = 0.05;
  double max_qps = 2000;
  int max_probes = 40;
  int64_t probe_requests = 1000;  // requests per probe (workload.max_requests)
  // Candidates: the product of these lists.
  std::vector<std::string> gpus;
  std::vector<std::string> gpu_where;  // "file:line: candidates.gpus[i]", for errors
  std::vector<int64_t> tensor_parallel;
  std::vector<KvChoice> kv_managers;
  std::vector<SchedulerChoice> schedulers;
  std::map<std::string, double> prices;            // GPU card name -> USD per GPU-hour override
  std::map<std::string, std::string> price_where;  // card name -> "file:line: prices.NAME"
  bool verify = true;                              // simulate the recommended fleet as a whole
  int jobs = 0;                                    // threads; 0 = all cores
  // Values that parse but look like a mistake ("file:line: key: why"), e.g. an SLO
  // of 2000 s that was meant as 2000 ms. Printed on stderr and kept in plan.json.
  std::vector<std::string> warnings;
};

// The most searches (candidates x scenarios) one plan may ask for: each candidate's
// result is held in memory until the plan is ranked, about a kilobyte each. Larger
// spaces are a typo in a range, or several plans.
inline constexpr int64_t kMaxPlanSearches = 1'000'000;

// Reads a plan file. Throws InputError "file:line: key.path: what" on unknown keys,
// bad values, an empty candidate list, a missing scenario, target or SLO, both
// `scenario:` and `scenarios:`, two scenarios of one name, several scenarios without
// `combine`, or more than kMaxPlanSearches searches. Whether each
// GPU card exists is checked by RunPlan, which knows where the cards are.
PlanConfig LoadPlan(const std::string& path);

}  // namespace kvsim
