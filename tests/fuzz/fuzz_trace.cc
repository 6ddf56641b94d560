// Fuzz target: the trace readers (sim/workload/trace_reader.h). The input is written
// to a file and read to the end with every format, auto-detection included; a second
// copy named .json reaches the detection of benchmark_serving results. The csv format
// reads it with a column mapping taken from the input itself: the first three cells of
// its first line name the arrival, prompt and output columns, and the input's length
// picks the arrival unit (or no arrival column), so that mutations of the header keep
// reaching the rows.
#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/workload/trace_reader.h"
#include "tests/fuzz/fuzz_common.h"

namespace kvsim::fuzz {
namespace {

void ReadAll(const std::string& path, TraceFormat format, const TraceColumns& columns = {}) {
  const std::unique_ptr<TraceReader> reader = OpenTrace(path, format, columns);
  KVSIM_FUZZ_EXPECT(reader != nullptr, "OpenTrace returned null");
  KVSIM_FUZZ_EXPECT(reader->format() != TraceFormat::kAuto, "a reader of format auto");
  KVSIM_FUZZ_EXPECT(format == TraceFormat::kAuto || reader->format() == format,
                    "a reader of another format than asked for");
  KVSIM_FUZZ_EXPECT(reader->format() != TraceFormat::kCsv || format == TraceFormat::kCsv,
                    "csv detected without a column mapping");
  // A benchmark_serving result gives each request the line of its input_lens entry, so
  // lines repeat there; every other reader moves on one line or more per row.
  const bool lines_repeat = reader->format() == TraceFormat::kBenchmarkServing;
  std::optional<double> previous;
  int64_t previous_line = 0;
  while (std::optional<TraceRecord> r = reader->Next()) {
    KVSIM_FUZZ_EXPECT(r->prompt_tokens >= 1, "a row with prompt_tokens < 1");
    KVSIM_FUZZ_EXPECT(r->output_tokens >= 1, "a row with output_tokens < 1");
    KVSIM_FUZZ_EXPECT(
        lines_repeat ? r->line >= previous_line && r->line >= 1 : r->line > previous_line,
        "row lines not increasing");
    previous_line = r->line;
    KVSIM_FUZZ_EXPECT(r->arrival_s.has_value() == reader->has_arrivals(),
                      "arrival present in a length-only trace or missing in a timed one");
    if (r->arrival_s) {
      KVSIM_FUZZ_EXPECT(!std::isnan(*r->arrival_s) && *r->arrival_s >= 0,
                        "a NaN or negative arrival");
      KVSIM_FUZZ_EXPECT(!previous || *r->arrival_s >= *previous, "arrivals going backwards");
      previous = r->arrival_s;
    }
  }
  KVSIM_FUZZ_EXPECT(!reader->Next(), "a reader that resumes after the end");
  KVSIM_FUZZ_EXPECT(reader->skipped_rows() >= 0, "a negative count of skipped rows");
  KVSIM_FUZZ_EXPECT(reader->skipped_rows_reason() != nullptr, "a null reason for skipped rows");
}

// The mapping of the csv format for `text`: arrival, prompt and output columns named by
// the first three cells of its first line (quotes and spaces around them removed; "t",
// "p", "o" where a cell is missing or empty), the unit chosen by the text's length.
TraceColumns ColumnsFrom(std::string_view text) {
  std::string_view first = text.substr(0, text.find('\n'));
  if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
  std::vector<std::string> cells;
  while (cells.size() < 3) {
    const size_t comma = first.find(',');
    std::string_view cell = first.substr(0, comma);
    while (!cell.empty() && (cell.front() == ' ' || cell.front() == '"')) cell.remove_prefix(1);
    while (!cell.empty() && (cell.back() == ' ' || cell.back() == '"')) cell.remove_suffix(1);
    cells.emplace_back(cell);
    if (comma == std::string_view::npos) break;
    first.remove_prefix(comma + 1);
  }
  cells.resize(3);
  const char* defaults[] = {"t", "p", "o"};
  for (size_t i = 0; i < 3; ++i) {
    if (cells[i].empty()) cells[i] = defaults[i];
  }
  TraceColumns columns;
  constexpr ArrivalUnit kUnits[] = {ArrivalUnit::kSeconds, ArrivalUnit::kMilliseconds,
                                    ArrivalUnit::kMicroseconds, ArrivalUnit::kTimestamp};
  const size_t pick = text.size() % 5;  // 4: no arrival column
  if (pick < 4) {
    columns.arrival = cells[0];
    columns.arrival_unit = kUnits[pick];
  }
  columns.prompt_tokens = cells[1];
  columns.output_tokens = cells[2];
  return columns;
}

}  // namespace
}  // namespace kvsim::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvsim;
  using namespace kvsim::fuzz;
  if (size > kMaxInputBytes) return 0;
  const std::string_view text = AsText(data, size);
  const std::string path = WriteScratchFile("trace.txt", text);
  for (TraceFormat format :
       {TraceFormat::kAuto, TraceFormat::kAzure, TraceFormat::kSplitwise, TraceFormat::kLengths,
        TraceFormat::kMooncake, TraceFormat::kBurstGpt, TraceFormat::kBenchmarkServing}) {
    ExpectOnlyInputErrors(TraceFormatName(format), [&] { ReadAll(path, format); });
  }
  ExpectOnlyInputErrors("csv", [&] { ReadAll(path, TraceFormat::kCsv, ColumnsFrom(text)); });
  const std::string json_path = WriteScratchFile("trace.json", text);
  ExpectOnlyInputErrors("auto (.json)", [&] { ReadAll(json_path, TraceFormat::kAuto); });
  return 0;
}
