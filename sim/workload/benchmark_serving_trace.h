// vLLM benchmark_serving results as traces. `vllm bench serve --save-result --save-detailed`
// (benchmarks/benchmark_serving.py --save-result in older vLLM) writes one JSON object
// holding, per request, input_lens and output_lens (tokens) and errors ("" or null when the
// request succeeded), and, for the run, request_rate (requests/s; "inf": every request sent
// at once) and burstiness (the shape of its gamma inter-arrival times; 1: Poisson). It
// records no send times.
//
// As a trace it is a lengths trace whose records carry no arrival, except when request_rate
// is "inf": then every record arrives at 0 s. Its arrival process is what the file records
// (ReadBenchmarkServingArrivals) unless the scenario sets workload.arrival.process. Failed
// requests (a non-empty error, or 0 output tokens) are skipped and counted. The document is
// read whole (at most kMaxJsonTraceBytes); of it only the keys named above (and
// max_concurrency, ramp_up_strategy) are kept, and of those only the token counts, 24 bytes
// per request, once the reader is open.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "sim/core/json_value.h"

namespace kvsim {

// The largest JSON trace kvsim reads whole.
constexpr size_t kMaxJsonTraceBytes = size_t{1} << 30;

// The bytes of the file at `path`. Throws InputError "path:1: ..." when it cannot be read
// or is larger than kMaxJsonTraceBytes.
std::string ReadJsonTraceFile(const std::string& path);

// Whether `text` (the file `path`) is a JSON object with the keys input_lens and
// output_lens. Throws InputError "path:line: ..." when it is not JSON.
bool IsBenchmarkServingResult(std::string_view text, const std::string& path);

// Pieces of a result that every reader of it checks the same way (the trace reader
// here, and `kvsim fit`'s loader of measured runs).
//
// request_rate: a number > 0, or the string "inf" or "Infinity" or Python's Infinity
// token (+infinity). Throws InputError "path:line: 'request_rate': what" otherwise.
double BenchmarkServingRequestRate(const JsonValue& request_rate);
// burstiness: a finite number > 0; 1 when `burstiness` is null or absent (nullptr).
double BenchmarkServingBurstiness(const JsonValue* burstiness);
// Throws InputError "path:line: 'key': what; REMEDY" when the run was not open-loop at one
// rate: limited to max_concurrency requests in flight (a closed loop), or with its rate
// ramped (ramp_up_strategy). Null or absent keys pass.
void CheckBenchmarkServingOpenLoop(const JsonValue& root, std::string_view remedy);

// The arrival process a result records.
struct BenchmarkServingArrivals {
  double request_rate_qps = 0;  // > 0; +infinity: every request at 0 s
  double burstiness = 1;        // gamma shape of the inter-arrival times (1: Poisson)
  int burstiness_line = 0;      // line of the burstiness key (0: absent), for messages
};

// Reads the arrival process of the result at `path`. Throws InputError "path:line: ..."
// when the file is not a result, has no request_rate, or ran closed-loop or with a ramped
// rate (the message then says to set workload.arrival.process instead).
BenchmarkServingArrivals ReadBenchmarkServingArrivals(const std::string& path);

}  // namespace kvsim
