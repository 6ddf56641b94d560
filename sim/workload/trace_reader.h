// TraceReader: streams request records from a trace file, one format per
// implementation. Readers hold one row at a time: memory does not grow with the file.
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvsim {

// One row of a trace, as read.
struct TraceRecord {
  // Arrival in seconds relative to the trace's first row; absent in length-only traces.
  std::optional<double> arrival_s;
  int64_t prompt_tokens = 0;       // >= 1
  int64_t output_tokens = 0;       // >= 1
  std::vector<uint64_t> hash_ids;  // Mooncake prefix-block hashes; empty elsewhere
  int64_t line = 0;                // 1-based line in the file, for messages
};

enum class TraceFormat {
  kAuto,       // detect from the header / first line
  kAzure,      // CSV: TIMESTAMP (date-time), ContextTokens, GeneratedTokens
  kSplitwise,  // CSV: arrived_at (s), num_prefill_tokens, num_decode_tokens (Vidur)
  kLengths,    // CSV: num_prefill_tokens, num_decode_tokens (no arrival column)
  kMooncake,   // JSONL: timestamp (ms), input_length, output_length, hash_ids
};

// Parses "auto", "azure", "splitwise", "lengths", "mooncake".
// Throws InputError naming `key_path` and listing the valid names.
TraceFormat ParseTraceFormat(const std::string& name, const std::string& key_path);
const char* TraceFormatName(TraceFormat format);

class TraceReader {
 public:
  virtual ~TraceReader() = default;

  // Returns the next record, or nullopt at the end of the file.
  // Throws InputError "path:line: what" on a malformed row, a negative or zero token
  // count, a non-monotone timestamp or a missing column.
  virtual std::optional<TraceRecord> Next() = 0;

  // The format being read (never kAuto).
  virtual TraceFormat format() const = 0;

  // Whether records carry arrival times.
  bool has_arrivals() const { return format() != TraceFormat::kLengths; }
};

// One factory per format. Each opens `path` and checks its header.
// Throws InputError "path:1: ..." when the file cannot be opened or the header is wrong.
std::unique_ptr<TraceReader> NewAzureTraceReader(const std::string& path);
std::unique_ptr<TraceReader> NewSplitwiseTraceReader(const std::string& path);
std::unique_ptr<TraceReader> NewLengthsTraceReader(const std::string& path);
std::unique_ptr<TraceReader> NewMooncakeTraceReader(const std::string& path);

// Opens `path` and returns a reader for `format`, detecting the format from the
// header (CSV) or first line (JSONL) when `format` is kAuto.
// Throws InputError when the file cannot be opened or its format is not recognised.
std::unique_ptr<TraceReader> OpenTrace(const std::string& path, TraceFormat format);

// The longest trace line kvsim reads: a longer one is refused before it is read whole.
constexpr size_t kMaxTraceLineBytes = size_t{1} << 20;

// Reads the next line of `in` into `line`, without its '\n'. False at the end of the
// input. Throws InputError "path:line_no: line longer than 1 MiB" for a longer line,
// having held no more than that of it in memory.
bool ReadTraceLine(std::istream& in, std::string& line, const std::string& path, int64_t line_no);

// `text` for an error message: cut to 64 bytes, "..." marking the cut.
std::string Excerpt(std::string_view text);

}  // namespace kvsim
