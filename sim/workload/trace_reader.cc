// Trace format names and OpenTrace: picks a reader from the requested format, or
// detects the format from a CSV header row, a JSONL first line or a JSON document's
// top-level keys.
#include "sim/workload/trace_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <utility>

#include "sim/core/check.h"
#include "sim/core/text.h"
#include "sim/workload/benchmark_serving_trace.h"

namespace kvsim {
namespace {

constexpr const char* kExpectedFormats =
    "azure (CSV: TIMESTAMP,ContextTokens,GeneratedTokens), "
    "splitwise (CSV: arrived_at,num_prefill_tokens,num_decode_tokens), "
    "lengths (CSV: num_prefill_tokens,num_decode_tokens), "
    "burstgpt (CSV: Timestamp,Model,Request tokens,Response tokens,...), "
    "mooncake (JSONL: {\"timestamp\", \"input_length\", \"output_length\", ...}), "
    "benchmark_serving (a .json file with \"input_lens\" and \"output_lens\"); "
    "any other CSV: format csv with workload.columns";

// Spaces and tabs around a cell, and the carriage return of a CRLF line.
std::string_view TrimCell(std::string_view s) { return Trim(s, " \t\r"); }

// Header cells, trimmed and with surrounding double quotes removed.
std::vector<std::string_view> SplitHeader(std::string_view line) {
  std::vector<std::string_view> cells;
  size_t start = 0;
  for (;;) {
    const size_t comma = line.find(',', start);
    std::string_view cell =
        TrimCell(line.substr(start, comma == std::string_view::npos ? line.npos : comma - start));
    if (cell.size() >= 2 && cell.front() == '"' && cell.back() == '"') {
      cell = cell.substr(1, cell.size() - 2);
    }
    cells.push_back(cell);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return cells;
}

bool HasCell(const std::vector<std::string_view>& cells, std::string_view name) {
  return std::find(cells.begin(), cells.end(), name) != cells.end();
}

// Detects the format from the first line of the file (BOM and CR already removed).
// Returns kAuto when nothing matches.
TraceFormat DetectFromFirstLine(std::string_view first) {
  first = TrimCell(first);
  if (!first.empty() && first.front() == '{') {
    const bool has_keys = first.find("\"timestamp\"") != first.npos &&
                          first.find("\"input_length\"") != first.npos &&
                          first.find("\"output_length\"") != first.npos;
    return has_keys ? TraceFormat::kMooncake : TraceFormat::kAuto;
  }
  const std::vector<std::string_view> cells = SplitHeader(first);
  if (HasCell(cells, "TIMESTAMP") && HasCell(cells, "ContextTokens") &&
      HasCell(cells, "GeneratedTokens")) {
    return TraceFormat::kAzure;
  }
  if (HasCell(cells, "num_prefill_tokens") && HasCell(cells, "num_decode_tokens")) {
    return HasCell(cells, "arrived_at") ? TraceFormat::kSplitwise : TraceFormat::kLengths;
  }
  if (HasCell(cells, "Timestamp") && HasCell(cells, "Request tokens") &&
      HasCell(cells, "Response tokens")) {
    return TraceFormat::kBurstGpt;
  }
  return TraceFormat::kAuto;
}

// Detects the format from the first line of `path`; throws when nothing matches.
TraceFormat DetectFromFirstLineOf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw InputError(fmt::format("{}:1: cannot open trace file ({})", path, std::strerror(errno)));
  }
  std::string first;
  const bool empty = !ReadTraceLine(in, first, path, 1);
  const std::string_view view = WithoutByteOrderMark(first);
  const TraceFormat format = empty ? TraceFormat::kAuto : DetectFromFirstLine(view);
  if (format != TraceFormat::kAuto) return format;
  if (empty) {
    throw InputError(
        fmt::format("{}:1: cannot detect trace format; the file is empty; expected one of {}", path,
                    kExpectedFormats));
  }
  throw InputError(fmt::format("{}:1: cannot detect trace format; header '{}'; expected one of {}",
                               path, Excerpt(TrimCell(view), 120), kExpectedFormats));
}

bool HasJsonExtension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".json";
}

}  // namespace

bool ReadTraceLine(std::istream& in, std::string& line, const std::string& path, int64_t line_no) {
  line.clear();
  char chunk[4096];
  for (;;) {
    in.getline(chunk, sizeof chunk);
    const auto got = static_cast<size_t>(in.gcount());
    // eof: the last line, without a '\n'; fail: the chunk filled before the '\n';
    // else the '\n' was found (counted in gcount, not stored).
    const bool end = in.eof(), more = !end && in.fail();
    line.append(chunk, end || more ? got : got - 1);
    if (line.size() > kMaxTraceLineBytes) {
      throw InputError(fmt::format("{}:{}: line longer than 1 MiB", path, line_no));
    }
    if (end) return got > 0 || !line.empty();
    if (!more) return true;
    in.clear();
  }
}

std::string Excerpt(std::string_view text, size_t max_bytes) {
  const bool cut = text.size() > max_bytes;
  std::string shown;
  for (const char c : text.substr(0, max_bytes)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F) {
      shown += fmt::format("\\x{:02x}", byte);
    } else {
      shown.push_back(c);
    }
  }
  if (cut) shown += "...";
  return shown;
}

std::string TraceReader::NoRequestsMessage() const {
  const int64_t skipped = skipped_rows();
  if (skipped == 0) return NoRequestsWhat();
  const std::string rows =
      skipped == 1 ? std::string("its one row was") : fmt::format("all {} rows were", skipped);
  return fmt::format("{}; {} skipped as {}", NoRequestsWhat(), rows, skipped_rows_reason());
}

TraceFormat DetectTraceFormat(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw InputError(fmt::format("{}: is a directory, not a trace file", path));
  }
  if (!HasJsonExtension(path)) return DetectFromFirstLineOf(path);
  // A .json file: a benchmark_serving result (one document, often on one long line), or
  // else JSON lines.
  std::string json_error;
  try {
    if (IsBenchmarkServingResult(ReadJsonTraceFile(path), path)) {
      return TraceFormat::kBenchmarkServing;
    }
  } catch (const InputError& e) {
    json_error = e.what();
  }
  try {
    return DetectFromFirstLineOf(path);
  } catch (const InputError& e) {
    if (json_error.empty()) throw;
    throw InputError(
        fmt::format("{} (a .json trace of format auto is read as a vLLM benchmark_serving result)",
                    json_error));
  }
}

std::unique_ptr<TraceReader> OpenTrace(const std::string& path, TraceFormat format,
                                       const TraceColumns& columns) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw InputError(fmt::format("{}: is a directory, not a trace file", path));
  }
  if (format == TraceFormat::kAuto) format = DetectTraceFormat(path);
  switch (format) {
    case TraceFormat::kAzure:
      return NewAzureTraceReader(path);
    case TraceFormat::kSplitwise:
      return NewSplitwiseTraceReader(path);
    case TraceFormat::kLengths:
      return NewLengthsTraceReader(path);
    case TraceFormat::kMooncake:
      return NewMooncakeTraceReader(path);
    case TraceFormat::kCsv:
      return NewCsvTraceReader(path, columns);
    case TraceFormat::kBurstGpt:
      return NewBurstGptTraceReader(path);
    case TraceFormat::kBenchmarkServing:
      return NewBenchmarkServingTraceReader(path);
    case TraceFormat::kAuto:
      break;
  }
  KVSIM_CHECK(false, "unhandled trace format");
  return nullptr;
}

void CheckTraceTokens(const TraceRecord& record, const std::string& path) {
  for (const auto& [what, tokens] :
       {std::pair<const char*, int64_t>{"prompt", record.prompt_tokens},
        {"output", record.output_tokens}}) {
    if (tokens > kMaxTraceTokens) {
      throw InputError(fmt::format(
          "{}:{}: {} of {} tokens: beyond any model's context (at most {} tokens per request)",
          path, record.line, what, tokens, kMaxTraceTokens));
    }
  }
}

}  // namespace kvsim
