// Fuzz target: the trace readers (sim/workload/trace_reader.h). The input is written
// to a file and read to the end with every format, auto-detection included.
#include <cmath>
#include <optional>

#include "sim/workload/trace_reader.h"
#include "tests/fuzz/fuzz_common.h"

namespace kvsim::fuzz {
namespace {

void ReadAll(const std::string& path, TraceFormat format) {
  const std::unique_ptr<TraceReader> reader = OpenTrace(path, format);
  KVSIM_FUZZ_EXPECT(reader != nullptr, "OpenTrace returned null");
  KVSIM_FUZZ_EXPECT(reader->format() != TraceFormat::kAuto, "a reader of format auto");
  KVSIM_FUZZ_EXPECT(format == TraceFormat::kAuto || reader->format() == format,
                    "a reader of another format than asked for");
  std::optional<double> previous;
  int64_t previous_line = 0;
  while (std::optional<TraceRecord> r = reader->Next()) {
    KVSIM_FUZZ_EXPECT(r->prompt_tokens >= 1, "a row with prompt_tokens < 1");
    KVSIM_FUZZ_EXPECT(r->output_tokens >= 1, "a row with output_tokens < 1");
    KVSIM_FUZZ_EXPECT(r->line > previous_line, "row lines not increasing");
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
}

}  // namespace
}  // namespace kvsim::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvsim;
  using namespace kvsim::fuzz;
  if (size > kMaxInputBytes) return 0;
  const std::string path = WriteScratchFile("trace.txt", AsText(data, size));
  for (TraceFormat format : {TraceFormat::kAuto, TraceFormat::kAzure, TraceFormat::kSplitwise,
                             TraceFormat::kLengths, TraceFormat::kMooncake}) {
    ExpectOnlyInputErrors(TraceFormatName(format), [&] { ReadAll(path, format); });
  }
  return 0;
}
