// Workload: the stream of requests a simulation serves, built from a trace and/or
// synthetic arrival and length processes, with optional synthetic prefix sharing
// (shared system prompts, multi-turn sessions). Streams: only the current trace row,
// (for resampling) the pool of trace lengths and (for sessions) the turns of started
// sessions that have not arrived yet are held.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/core/enum_table.h"
#include "sim/core/rng.h"
#include "sim/workload/request.h"
#include "sim/workload/trace_reader.h"

namespace kvsim {

enum class ArrivalProcess {
  kTrace,    // the trace's own timestamps; time-scaled when rate_qps > 0
  kPoisson,  // exponential gaps with mean 1 / rate_qps
  kGamma,    // gamma gaps with mean 1 / rate_qps and coefficient of variation cv
};
// workload.arrival.process.
inline constexpr auto kArrivalProcesses =
    MakeEnumTable<ArrivalProcess>({{"trace", ArrivalProcess::kTrace},
                                   {"poisson", ArrivalProcess::kPoisson},
                                   {"gamma", ArrivalProcess::kGamma}});
// kArrivalProcesses' name, as a C string (kept for its many call sites).
inline const char* ArrivalProcessName(ArrivalProcess process) {
  return kArrivalProcesses.CName(process);
}

enum class LengthSource {
  kTrace,     // prompt and output lengths of the trace rows, in order
  kFixed,     // fixed_prompt_tokens / fixed_output_tokens for every request
  kUniform,   // uniform integers in [min, max] for prompt and output independently
  kResample,  // rows drawn uniformly with replacement from the trace
};
// workload.lengths.source.
inline constexpr auto kLengthSources =
    MakeEnumTable<LengthSource>({{"trace", LengthSource::kTrace},
                                 {"fixed", LengthSource::kFixed},
                                 {"uniform", LengthSource::kUniform},
                                 {"resample", LengthSource::kResample}});

// Bounds of the prefix-sharing keys (the config decoder and ValidateWorkloadConfig).
constexpr int64_t kMaxSharedPrefixTokens = int64_t{1} << 24;
constexpr int64_t kMaxSharedPrefixGroups = int64_t{1} << 20;
constexpr int64_t kMaxSessionTurns = 10000;
constexpr double kMaxThinkTimeSeconds = 1e6;

// A shared system prompt (workload.shared_prefix). Each request (with sessions: each
// session) independently carries one with probability `fraction`, drawn from its own
// seeded random stream (arrivals and lengths stay as they are without it); the group is
// drawn uniformly. A request carrying group g's prompt gets prompt_tokens += tokens,
// stream = group g's stream id, stream_tokens = tokens; other requests get stream 0.
// Trace hash_ids of a request that carries one are dropped (the prompt no longer starts
// where they do).
struct SharedPrefixConfig {
  int64_t tokens = 0;     // length of each shared prompt; 0: off
  double fraction = 1.0;  // probability that a request (a session) carries one, [0, 1]
  int64_t groups = 1;     // distinct shared prompts, each its own stream
};

// Multi-turn sessions (workload.sessions). Consecutive length rows (trace rows or drawn
// pairs, one per turn) form sessions of `turns` turns (the last may be shorter when the
// rows run out). Turn 1's prompt is its row's prompt; turn k+1's prompt is turn k's
// prompt + turn k's output + its own row's prompt (the new user message). Turn 1 arrives
// when the arrival process says (Poisson and gamma gaps are stretched by `turns`, and
// trace arrivals take the timestamp of the session's first row, so rate_qps stays the
// mean request rate); turn k+1 arrives think_time_s after turn k's arrival, whenever
// turn k finishes: the workload is generated ahead of the simulation (open loop). Every
// turn names the session's stream with stream_tokens = prompt + output. With a shared
// prefix, the session draws it once; it precedes turn 1 and so every turn, and
// hash_ids = {the group's prompt id} with hash_block_tokens = its length says so to
// requests of other sessions. Without one, every turn keeps the hash_ids of turn 1's
// row that cover whole blocks. max_requests counts turns in session order, not arrival
// order: the first sessions whole, the last cut short when max_requests is not a
// multiple of turns, so the requests are the same at any rate_qps. Their arrivals span
// about max_requests / rate_qps + (turns - 1) x think_time_s seconds: the rate_qps of
// overlapping sessions, lower while the first sessions begin and the last ones end.
struct SessionConfig {
  int64_t turns = 0;        // turns per session; 0: off
  double think_time_s = 0;  // from one turn's arrival to the next turn's, seconds
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
  int64_t max_requests = 0;  // 0 = the whole trace; required (> 0) without trace lengths;
                             // with sessions: turns, whole sessions first (SessionConfig)
  SharedPrefixConfig shared_prefix;
  SessionConfig sessions;
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
  // or nullopt when the workload is exhausted. Trace errors surface here as InputError,
  // among them a trace that gives no request at all (TraceReader::NoRequestsMessage:
  // "trace.csv:1: no requests after the header"), whatever its format.
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
