// TraceReader: streams request records from a trace file, one format per
// implementation. Readers hold one row at a time: memory does not grow with the file,
// except for benchmark_serving results, whose one JSON document is read whole (only its
// token counts are kept: 24 bytes per request).
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/core/enum_table.h"

namespace kvsim {

// One row of a trace, as read.
struct TraceRecord {
  // Arrival in seconds relative to the trace's first row; absent in length-only traces.
  std::optional<double> arrival_s;
  int64_t prompt_tokens = 0;       // >= 1
  int64_t output_tokens = 0;       // >= 1
  std::vector<uint64_t> hash_ids;  // Mooncake prefix-block hashes; empty elsewhere
  // 1-based line in the file, for messages: increasing from row to row, except in a
  // benchmark_serving result, where it is the line of the request's input_lens entry
  // (non-decreasing; one line for every request of a file written on one line).
  int64_t line = 0;
};

enum class TraceFormat {
  kAuto,       // detect from the header / first line (a .json file: from its top-level keys)
  kAzure,      // CSV: TIMESTAMP (date-time), ContextTokens, GeneratedTokens
  kSplitwise,  // CSV: arrived_at (s), num_prefill_tokens, num_decode_tokens (Vidur)
  kLengths,    // CSV: num_prefill_tokens, num_decode_tokens (no arrival column)
  kMooncake,   // JSONL: timestamp (ms), input_length, output_length, hash_ids (optional:
               // ceil(input_length / 512) ids, or none)
  kCsv,        // CSV: any columns, named by a TraceColumns mapping (workload.columns)
  kBurstGpt,   // CSV: Timestamp (s), Request tokens, Response tokens (BurstGPT)
  // JSON: vLLM benchmark_serving result: input_lens, output_lens, request_rate, burstiness
  kBenchmarkServing,
};

// workload.format.
inline constexpr auto kTraceFormats =
    MakeEnumTable<TraceFormat>({{"auto", TraceFormat::kAuto},
                                {"azure", TraceFormat::kAzure},
                                {"splitwise", TraceFormat::kSplitwise},
                                {"lengths", TraceFormat::kLengths},
                                {"mooncake", TraceFormat::kMooncake},
                                {"csv", TraceFormat::kCsv},
                                {"burstgpt", TraceFormat::kBurstGpt},
                                {"benchmark_serving", TraceFormat::kBenchmarkServing}});
// kTraceFormats' name, as a C string (kept for its many call sites).
inline const char* TraceFormatName(TraceFormat format) { return kTraceFormats.CName(format); }

// How the arrival column of a generic CSV trace is written.
enum class ArrivalUnit {
  kSeconds,       // a number of seconds
  kMilliseconds,  // a number of milliseconds
  kMicroseconds,  // a number of microseconds
  // a date-time "YYYY-MM-DD HH:MM:SS[.f]" ('T' may replace the space; 1 to 9 fraction
  // digits; optional offset "Z", "+HH:MM", "+HHMM", "+HH" or with '-'). Without an offset
  // the time is taken as written (no time zone or daylight-saving change is applied).
  kTimestamp,
};
// workload.columns.arrival_unit.
inline constexpr auto kArrivalUnits =
    MakeEnumTable<ArrivalUnit>({{"s", ArrivalUnit::kSeconds},
                                {"ms", ArrivalUnit::kMilliseconds},
                                {"us", ArrivalUnit::kMicroseconds},
                                {"timestamp", ArrivalUnit::kTimestamp}});

// The columns of a generic CSV trace (format csv), found by header name; other columns
// are ignored. Numbers may be relative or absolute: arrivals are reported relative to
// the first row.
struct TraceColumns {
  std::string arrival;  // header name of the arrival column; empty: none (a lengths trace)
  ArrivalUnit arrival_unit = ArrivalUnit::kSeconds;
  std::string prompt_tokens;  // header name of the prompt length column (required)
  std::string output_tokens;  // header name of the output length column (required)
};

class TraceReader {
 public:
  virtual ~TraceReader() = default;

  // Returns the next record, or nullopt at the end of the file.
  // Throws InputError "path:line: what" on a malformed row, a negative or zero token
  // count, a non-monotone timestamp, a missing column or (mooncake) a hash_ids list
  // whose length is not ceil(input_length / 512). A file without records is not an
  // error here: the caller decides (Workload refuses it with NoRequestsMessage()).
  virtual std::optional<TraceRecord> Next() = 0;

  // The format being read (never kAuto).
  virtual TraceFormat format() const = 0;

  // Whether records carry arrival times: all but lengths traces, csv traces without an
  // arrival column and benchmark_serving results of a finite request_rate.
  virtual bool has_arrivals() const { return format() != TraceFormat::kLengths; }

  // Rows read so far that the format says to leave out, and which those are ("failed
  // requests (0 Response tokens)"). burstgpt and benchmark_serving skip failed requests;
  // the other formats skip nothing (0, "").
  virtual int64_t skipped_rows() const { return 0; }
  virtual const char* skipped_rows_reason() const { return ""; }

  // The InputError message for a trace that gave no record at all: it names the file
  // (and the line it refers to, where one means something) and, when every row was
  // skipped, how many and why: "trace.csv:1: no requests after the header; all 3 rows
  // were skipped as failed requests (0 Response tokens)". Workload refuses an empty
  // trace with it, whatever the format.
  std::string NoRequestsMessage() const;

 protected:
  // NoRequestsMessage's first part, without the skipped rows, worded as `kvsim fit` words
  // its own files: "path:1: no requests after the header" (CSV formats), "path:1: no
  // requests (the file has no JSON lines)" (mooncake), "path:LINE: 'input_lens': no
  // requests (the array is empty)" (benchmark_serving, LINE the list's).
  virtual std::string NoRequestsWhat() const = 0;
};

// One factory per format. Each opens `path` and checks its header.
// Throws InputError "path:1: ..." when the file cannot be opened or the header is wrong.
std::unique_ptr<TraceReader> NewAzureTraceReader(const std::string& path);
std::unique_ptr<TraceReader> NewSplitwiseTraceReader(const std::string& path);
std::unique_ptr<TraceReader> NewLengthsTraceReader(const std::string& path);
std::unique_ptr<TraceReader> NewMooncakeTraceReader(const std::string& path);
// Generic CSV: a column that `columns` names but the header lacks is an error naming its
// key (workload.columns.prompt_tokens, ...) and listing the header's columns.
std::unique_ptr<TraceReader> NewCsvTraceReader(const std::string& path,
                                               const TraceColumns& columns);
// BurstGPT (https://github.com/HPMLL/BurstGPT): Timestamp is seconds since the start of
// the collection. Rows with 0 Response tokens are the dataset's failed requests: they are
// skipped and counted (skipped_rows()). Rows must be sorted by Timestamp: a row earlier
// than the one before is an error naming its line, with a hint to sort the file.
std::unique_ptr<TraceReader> NewBurstGptTraceReader(const std::string& path);
// vLLM benchmark_serving result JSON (sim/workload/benchmark_serving_trace.h).
std::unique_ptr<TraceReader> NewBenchmarkServingTraceReader(const std::string& path);

// The format of the trace at `path`: a .json file (any case) whose top level is an object
// with input_lens and output_lens is benchmark_serving; otherwise the format follows from
// the CSV header or the JSONL first line (csv is never detected: it needs a mapping).
// Throws InputError "path:line: ..." when the file cannot be read or nothing matches.
TraceFormat DetectTraceFormat(const std::string& path);

// Opens `path` and returns a reader for `format`, detecting the format with
// DetectTraceFormat when `format` is kAuto. `columns` is used by kCsv only, which needs
// its prompt_tokens and output_tokens (else InputError naming workload.columns).
// Throws InputError when the file cannot be opened or its format is not recognised.
std::unique_ptr<TraceReader> OpenTrace(const std::string& path, TraceFormat format,
                                       const TraceColumns& columns = {});

// The most tokens a trace row may give a prompt or an output: 2^24, beyond any
// model's context (a larger count would overflow what is derived from it).
constexpr int64_t kMaxTraceTokens = int64_t{1} << 24;

// Throws InputError "path:line: ..." when `record`'s prompt or output exceeds
// kMaxTraceTokens. Every trace row passes through it before it becomes a request.
void CheckTraceTokens(const TraceRecord& record, const std::string& path);

// The longest trace line kvsim reads: a longer one is refused before it is read whole.
constexpr size_t kMaxTraceLineBytes = size_t{1} << 20;

// Reads the next line of `in` into `line`, without its '\n'. False at the end of the
// input. Throws InputError "path:line_no: line longer than 1 MiB" for a longer line,
// having held no more than that of it in memory.
bool ReadTraceLine(std::istream& in, std::string& line, const std::string& path, int64_t line_no);

// `text` for an error message: cut to `max_bytes` bytes, "..." marking the cut, with
// every control byte (below 0x20, and 0x7F) written as \xNN, so that a NUL or a line
// break in a field neither ends nor splits the message.
std::string Excerpt(std::string_view text, size_t max_bytes = 64);

}  // namespace kvsim
