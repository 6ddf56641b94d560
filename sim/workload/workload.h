// Workload: the stream of requests a simulation serves, built from a trace and/or
// synthetic arrival and length processes. Streams: only the current trace row and
// (for resampling) the pool of trace lengths are held.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/core/rng.h"
#include "sim/workload/request.h"
#include "sim/workload/trace_reader.h"

namespace kvsim {

enum class ArrivalProcess {
  kTrace,    // the trace's own timestamps; time-scaled when rate_qps > 0
  kPoisson,  // exponential gaps with mean 1 / rate_qps
  kGamma,    // gamma gaps with mean 1 / rate_qps and coefficient of variation cv
};

// "trace", "poisson" or "gamma".
const char* ArrivalProcessName(ArrivalProcess process);

enum class LengthSource {
  kTrace,     // prompt and output lengths of the trace rows, in order
  kFixed,     // fixed_prompt_tokens / fixed_output_tokens for every request
  kUniform,   // uniform integers in [min, max] for prompt and output independently
  kResample,  // rows drawn uniformly with replacement from the trace
};

struct WorkloadConfig {
  std::string trace_path;  // required for kTrace arrivals and kTrace/kResample lengths
  TraceFormat trace_format = TraceFormat::kAuto;
  TraceColumns columns;  // kCsv only: where the arrival and token counts are
  ArrivalProcess arrival = ArrivalProcess::kTrace;
  double rate_qps = 0;  // > 0 for poisson/gamma; for trace: target mean rate (0 = as recorded)
  double cv = 1.0;      // gamma inter-arrival coefficient of variation (> 0)
  LengthSource lengths = LengthSource::kTrace;
  int64_t fixed_prompt_tokens = 0;
  int64_t fixed_output_tokens = 0;
  int64_t min_prompt_tokens = 1, max_prompt_tokens = 0;
  int64_t min_output_tokens = 1, max_output_tokens = 0;
  int64_t max_requests = 0;  // 0 = the whole trace; required (> 0) without trace lengths
  uint64_t seed = 0;
};

// Checks a WorkloadConfig for impossible combinations (e.g. trace arrivals from a
// length-only trace, poisson without a rate). Throws InputError naming the key path
// under `key_prefix` (e.g. "workload.arrival.rate_qps").
void ValidateWorkloadConfig(const WorkloadConfig& config, const std::string& key_prefix);

class Workload {
 public:
  // Opens the trace (if any). Time-scaling a trace to rate_qps reads the arrival
  // column once in advance to measure the recorded rate (still streaming).
  // Throws InputError for bad files or impossible configurations.
  explicit Workload(const WorkloadConfig& config);
  ~Workload();
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  // The next request in arrival order (ids 0, 1, 2, ...; arrivals non-decreasing),
  // or nullopt when the workload is exhausted. Trace errors surface here as InputError.
  std::optional<RequestSpec> Next();

  // Trace rows the reader left out so far by its format's rules (burstgpt and
  // benchmark_serving: failed requests), as one sentence naming the trace, the count and
  // the reason ("trace.csv: 3 rows skipped: failed requests (0 Response tokens)"); empty
  // when none. For resampled lengths it counts the rows skipped while loading the pool.
  std::string SkippedRowsNote() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvsim
