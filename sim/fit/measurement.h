// Measured runs of a real serving engine, per request, for `kvsim fit`: the loaders for
// vLLM's engine request log, vLLM's benchmark_serving result JSON and a plain CSV. Every
// format becomes the same MeasuredRequests: token counts, TTFT and end-to-end latency per
// request, with arrivals relative to the run's first arrival where the format records them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/core/enum_table.h"

namespace kvsim {

// Formats of a measured run's per-request results.
enum class MeasurementFormat {
  kVllmRequestsJsonl,     // engine request log: one JSON object per line
  kBenchmarkServingJson,  // vLLM benchmark_serving.py / `vllm bench serve --save-result` JSON
  kRequestsCsv,           // arrival_s,prompt_tokens,output_tokens,ttft_s,e2e_s
};

// A fit run's format key.
inline constexpr auto kMeasurementFormats = MakeEnumTable<MeasurementFormat>(
    {{"vllm_requests_jsonl", MeasurementFormat::kVllmRequestsJsonl},
     {"benchmark_serving_json", MeasurementFormat::kBenchmarkServingJson},
     {"requests_csv", MeasurementFormat::kRequestsCsv}});

// The format kMeasurementFormats names `name`; throws InputError "where: ..." listing
// the names otherwise.
MeasurementFormat ParseMeasurementFormat(const std::string& name, const std::string& where);
// From the file extension (case-insensitive): .jsonl -> kVllmRequestsJsonl, .json ->
// kBenchmarkServingJson, .csv -> kRequestsCsv; nullopt otherwise.
std::optional<MeasurementFormat> FormatFromExtension(const std::string& path);

struct MeasuredRequest {
  // Since the run's first arrival (the first is 0); 0 for every request when not recorded.
  double arrival_s = 0;
  int64_t prompt_tokens = 0;  // > 0
  int64_t output_tokens = 0;  // > 0, the first token included
  double ttft_s = 0;          // arrival to first token, >= 0
  double e2e_s = 0;           // arrival to last token, >= ttft_s
  // Gaps between consecutive output tokens (or streamed chunks) when the format records
  // them, else empty.
  std::vector<double> itls_s;
};

struct MeasuredRequests {
  std::string path;
  MeasurementFormat format = MeasurementFormat::kVllmRequestsJsonl;
  // Sorted by arrival_s (stable: file order for ties).
  std::vector<MeasuredRequest> requests;
  // False for benchmark_serving JSON: the tool records no send times.
  bool arrivals_recorded = true;
  // benchmark_serving's request_rate (requests/s); +infinity = all sent at once; 0 for
  // formats that do not record it.
  double request_rate_qps = 0;
  // benchmark_serving's burstiness, the shape of its gamma inter-arrival times (1: Poisson).
  double burstiness = 1;
};

// Reads `path` in `format`. Throws InputError "path:line: what" for anything malformed
// ("path: cannot open ..." when the file cannot be read). Never returns an empty run.
//
// kVllmRequestsJsonl: each non-empty line is an object with input_toks and output_toks
// (integers > 0) and queued_ts, first_token_ts, last_token_ts (seconds on the engine's
// clock); other keys are ignored but request_id, which, where a line has it, must be a
// non-empty string that no other line repeats (a repeat means a log concatenated or a line
// duplicated). Arrivals are queued_ts, TTFT is first_token_ts - queued_ts and E2E is
// last_token_ts - queued_ts.
//
// kBenchmarkServingJson: one object with equal-length arrays input_lens, output_lens,
// ttfts (s) and itls (arrays of s), optional errors, and request_rate (a number, Infinity
// or "inf"); optional burstiness. E2E is ttft + sum(itls). A failed request, or a run
// limited by max_concurrency (closed loop) or with a ramped rate, is an error. No
// arrivals: every arrival_s is 0 and file order is kept.
//
// kRequestsCsv: a header naming at least arrival_s, prompt_tokens, output_tokens, ttft_s
// and e2e_s in any order (other columns are ignored but an optional request_id, whose
// cells must be non-empty and unique), then one row per request; blank lines and lines
// starting with '#' are skipped.
//
// benchmark_serving JSON names no request ids (its arrays are indexed by position), and a
// second result appended to one file is already malformed JSON.
MeasuredRequests LoadMeasuredRequests(const std::string& path, MeasurementFormat format);

}  // namespace kvsim
