// FitConfig: the typed form of a `kvsim fit` file: which measured runs to fit, the
// scenario each was measured under, which timing terms are free (with bounds), which
// metrics to match and how to solve. Decoding is strict, like scenarios'.
//
//   runs:
//     - name: rtx4090
//       scenario: rtx4090.yaml            # a kvsim scenario (relative to this file)
//       set: {scheduler.max_num_seqs: 256}  # optional overrides of the scenario
//       requests: requests.jsonl           # per-request results (the workload is
//       format: vllm_requests_jsonl        #   replayed from them), or
//       aggregates: {ttft_s: {mean: 0.2, p99: 0.9}, tpot_s: {mean: 0.031}}, or
//       stages: [{set: {workload.arrival.rate_qps: 2}, aggregates: {...}}, ...]
//   free:
//     timing.engine.per_iteration_s: {min: 0, max: 0.01, start: 0.0002}
//     timing.engine.per_seq_s: {}          # the term's default bounds
//   metrics: [ttft_s.mean, ttft_s.p99, tpot_s.mean, tpot_s.p99, e2e_s.mean, e2e_s.p99]
//   solver: {method: lm, max_iterations: 40, difference_step: 0.001, max_mean_error: 0.1}
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "sim/config/yaml_tree.h"

namespace kvsim {

// A metric and statistic, e.g. {"ttft_s", "p99"}; printed "ttft_s.p99".
struct FitMetric {
  std::string metric;  // ttft_s | tpot_s | itl_s | e2e_s
  std::string stat;    // mean | p50 | p90 | p99
  std::string Name() const { return metric + "." + stat; }
  bool operator==(const FitMetric&) const = default;
};
// Parses "ttft_s.mean"; throws InputError "where: ..." listing the valid names.
FitMetric ParseFitMetric(const std::string& text, const std::string& where);

// One load stage of a run measured as aggregates only.
struct FitStage {
  std::string label;  // "stage 1", ... (or the run's name for a single stage)
  std::vector<std::pair<std::string, std::string>> overrides;  // key path, YAML value
  std::vector<std::pair<FitMetric, double>> aggregates;        // measured values, > 0
  std::string where;  // "file:line: runs[i]..." for messages
};

struct FitRun {
  std::string name;
  std::string scenario_path;  // resolved
  std::vector<std::pair<std::string, std::string>> overrides;
  std::string requests_path;     // resolved; empty when the run gives aggregates
  std::string requests_format;   // empty: from the file's extension
  std::vector<FitStage> stages;  // aggregates (one stage per load level)
  std::string where;             // "file:line: runs[i]"
};

struct FreeTerm {
  std::string key;  // a FittableTerms() key path
  double min_value = 0, max_value = 0;
  bool has_start = false;
  double start = 0;
  std::string where;
};

struct FitSolverConfig {
  std::string method = "lm";  // lm (Levenberg-Marquardt, then a compass search) | pattern
  int max_iterations = 40;
  double difference_step = 3e-3;  // fraction of each term's range
  // The acceptance rule's bound (JudgeFit): a fit whose mean |relative error| over its
  // metrics after the fit exceeds this fraction is refused (0.1: 10%).
  double max_mean_error = 0.1;
};

struct FitConfig {
  std::string file;
  std::string name;  // default: the file's stem
  std::vector<FitRun> runs;
  std::vector<FreeTerm> free;
  // Matched for runs measured per request (aggregate runs match what they give; a
  // file whose runs are all aggregates may not set metrics).
  std::vector<FitMetric> metrics;
  FitSolverConfig solver;
};

// The metrics matched when the fit file names none.
std::vector<FitMetric> DefaultFitMetrics();

// Decodes `tree` strictly. Throws InputError "file:line: key.path: what" for unknown
// keys, a run with none or two of requests/aggregates/stages, duplicate run names, a
// free term kvsim cannot fit or with min >= max or a start outside its bounds, an
// unknown metric, `metrics` in a file whose runs all give aggregates or stages (they
// match the aggregates they list, so it would be ignored), or a non-positive aggregate.
FitConfig DecodeFitConfig(const ConfigTree& tree);

}  // namespace kvsim
