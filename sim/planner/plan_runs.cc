// The planner's runs: a candidate's scenario change and one simulation of it.
#include "sim/planner/plan_runs.h"

#include <memory>

#include "sim/simulator/builder.h"

namespace kvsim::plan_internal {

ScenarioDelta CandidateDelta(const CandidateResult& c, int64_t replicas, double qps,
                             int64_t requests) {
  ScenarioDelta d;
  d.gpu = c.gpu;
  d.tensor_parallel = c.tensor_parallel;
  d.replicas = replicas;
  if (replicas > 1) d.router = RouterType::kLeastOutstanding;
  d.kv_type = c.kv.type;
  // Static reservation shares nothing (kv_cache.prefix_caching with it is an error):
  // its candidates run without a prefix cache whatever the scenario says.
  if (c.kv.type == KvManagerType::kStatic) d.prefix_caching = false;
  if (c.kv.block_tokens > 0) d.block_tokens = c.kv.block_tokens;
  if (c.kv.page_bytes > 0) d.page_bytes = c.kv.page_bytes;
  d.scheduler = c.scheduler.type;
  if (c.scheduler.max_num_seqs > 0) d.max_num_seqs = c.scheduler.max_num_seqs;
  if (c.scheduler.max_num_batched_tokens > 0) {
    d.max_num_batched_tokens = c.scheduler.max_num_batched_tokens;
  }
  if (c.scheduler.chunk_tokens > 0) d.chunk_tokens = c.scheduler.chunk_tokens;
  d.rate_qps = qps;
  d.max_requests = requests;
  d.requests_csv = false;
  d.timeseries_csv = false;
  return d;
}

Run Simulate(const PlanConfig& plan, const PreparedPlan& prepared, int64_t s,
             const ScenarioDelta& delta) {
  const auto at = static_cast<size_t>(s);
  std::unique_ptr<Simulation> sim = BuildSimulation(ApplyDelta(prepared.scenarios[at].base, delta));
  sim->KeepRequestRecords();  // EvaluateSlo's attainment check
  Run run;
  run.result = sim->Run();
  run.verdict = EvaluateSlo(plan.scenarios[at].slo, run.result.summary, run.result.records);
  run.result.records.clear();  // checked; not kept with the probe
  auto price = plan.prices.find(sim->gpu().name);
  run.gpu_price = price != plan.prices.end() ? price->second : sim->gpu().price_per_hour;
  run.max_model_len = sim->memory().max_model_len;
  return run;
}

void Log(const PlanOptions& options, const std::string& line) {
  if (options.log) options.log(line);
}

}  // namespace kvsim::plan_internal
