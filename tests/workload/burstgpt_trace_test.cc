// Tests for BurstGPT traces (format burstgpt): detection from the dataset's header,
// Timestamp seconds relative to the first kept row, failed requests (0 Response tokens)
// skipped and counted, and errors that name path:line, with a hint for unsorted files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sim/core/check.h"
#include "sim/workload/trace_reader.h"
#include "sim/workload/workload.h"
#include "tests/testing/input_error.h"
#include "tests/workload/trace_test_files.h"

namespace kvsim {
namespace {

using ::kvsim::testing::ExpectTraceErrorAt;
using ::kvsim::testing::InputErrorMessage;
using ::kvsim::testing::ReadRecords;
using ::kvsim::testing::TraceError;
using ::kvsim::testing::WriteTraceFile;
using ::testing::HasSubstr;

// The header of the BurstGPT data files (https://github.com/HPMLL/BurstGPT, README "Schema").
constexpr const char* kHeader =
    "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n";

TEST(BurstGptTrace, IsDetectedFromItsHeaderAndSkipsFailedRequestsCountingThem) {
  const std::string path =
      WriteTraceFile("burst.csv", std::string(kHeader) +
                                      "5,ChatGPT,472,18,490,Conversation log\n"
                                      "45,ChatGPT,1087,0,1087,Conversation log\n"
                                      "110.5,GPT-4,417,505,922,API log\n");
  std::unique_ptr<TraceReader> reader = OpenTrace(path, TraceFormat::kAuto);
  EXPECT_EQ(reader->format(), TraceFormat::kBurstGpt);
  EXPECT_TRUE(reader->has_arrivals());
  const std::vector<TraceRecord> r = ReadRecords(*reader);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(*r[0].arrival_s, 0.0);
  EXPECT_EQ(r[0].prompt_tokens, 472);
  EXPECT_EQ(r[0].output_tokens, 18);
  EXPECT_EQ(*r[1].arrival_s, 105.5);  // 110.5 s - 5 s
  EXPECT_EQ(r[1].prompt_tokens, 417);
  EXPECT_EQ(r[1].output_tokens, 505);
  EXPECT_EQ(r[1].line, 4);
  EXPECT_EQ(reader->skipped_rows(), 1);
  EXPECT_STREQ(reader->skipped_rows_reason(), "failed requests (0 Response tokens)");
}

TEST(BurstGptTrace, TimesArrivalsFromTheFirstRowThatIsKept) {
  const std::string path = WriteTraceFile("first_failed.csv", std::string(kHeader) +
                                                                  "3,ChatGPT,10,0,10,API log\n"
                                                                  "7,ChatGPT,10,2,12,API log\n"
                                                                  "9.25,ChatGPT,10,2,12,API log\n");
  const std::vector<TraceRecord> r = ReadRecords(path, TraceFormat::kBurstGpt);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(*r[0].arrival_s, 0.0);
  EXPECT_EQ(*r[1].arrival_s, 2.25);
}

TEST(BurstGptTrace, RefusesRowsOutOfTimeOrderWithAHintToSortTheFile) {
  const std::string path = WriteTraceFile("unsorted.csv", std::string(kHeader) +
                                                              "10,ChatGPT,10,2,12,API log\n"
                                                              "12,ChatGPT,10,2,12,API log\n"
                                                              "11,GPT-4,10,2,12,API log\n");
  ExpectTraceErrorAt(path, TraceFormat::kAuto, 4,
                     "timestamp goes backwards: 11 is before the previous row's 12");
  EXPECT_THAT(TraceError(path, TraceFormat::kBurstGpt),
              HasSubstr("BurstGPT files are not always sorted by Timestamp"));
  EXPECT_THAT(TraceError(path, TraceFormat::kBurstGpt), HasSubstr("sort -t, -k1,1g"));
}

TEST(BurstGptTrace, RefusesBadRowsNamingTheirLine) {
  const struct {
    const char* row;
    const char* what;
  } cases[] = {
      {"20,ChatGPT,0,5,5,API log", "column 'Request tokens': token count must be >= 1, got 0"},
      {"20,ChatGPT,5,-1,4,API log", "column 'Response tokens': negative token count -1"},
      {"later,ChatGPT,5,1,6,API log",
       "column 'Timestamp': 'later' is not a finite number of "
       "seconds"},
      {"20,ChatGPT,5,1,6", "expected 6 columns as in the header, got 5"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.row);
    const std::string path = WriteTraceFile(
        "bad.csv", std::string(kHeader) + "10,ChatGPT,10,2,12,API log\n" + c.row + "\n");
    ExpectTraceErrorAt(path, TraceFormat::kBurstGpt, 3, c.what);
  }
}

TEST(BurstGptTrace, NamedExplicitlyNeedsItsColumns) {
  const std::string path = WriteTraceFile("other.csv", "Timestamp,Request tokens\n1,2\n");
  ExpectTraceErrorAt(path, TraceFormat::kBurstGpt, 1,
                     "has no column 'Response tokens'; burstgpt traces need columns Timestamp,"
                     "Request tokens,Response tokens");
}

TEST(BurstGptTrace, AWorkloadReportsTheRowsItsTraceSkipped) {
  WorkloadConfig c;
  c.trace_path = WriteTraceFile("workload.csv", std::string(kHeader) +
                                                    "0,ChatGPT,10,0,10,API log\n"
                                                    "1,ChatGPT,10,2,12,API log\n"
                                                    "2,ChatGPT,10,0,10,API log\n"
                                                    "4,ChatGPT,30,4,34,API log\n");
  Workload workload(c);
  std::vector<RequestSpec> requests;
  while (std::optional<RequestSpec> r = workload.Next()) requests.push_back(*r);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].arrival, Nanos(3'000'000'000));
  EXPECT_EQ(workload.SkippedRowsNote(),
            c.trace_path + ": 2 rows skipped: failed requests (0 Response tokens)");
}

TEST(BurstGptTrace, ResampledLengthsCountTheRowsSkippedWhileLoadingThePool) {
  WorkloadConfig c;
  c.trace_path = WriteTraceFile("pool.csv", std::string(kHeader) +
                                                "0,ChatGPT,10,0,10,API log\n"
                                                "1,ChatGPT,10,2,12,API log\n");
  c.arrival = ArrivalProcess::kPoisson;
  c.rate_qps = 1;
  c.lengths = LengthSource::kResample;
  c.max_requests = 3;
  Workload workload(c);
  while (std::optional<RequestSpec> r = workload.Next()) EXPECT_EQ(r->output_tokens, 2);
  EXPECT_EQ(workload.SkippedRowsNote(),
            c.trace_path + ": 1 row skipped: failed requests (0 Response tokens)");
}

TEST(BurstGptTrace, AWorkloadWhoseRowsAllFailedIsAnErrorNamingTheFileAndTheSkippedRows) {
  WorkloadConfig c;
  c.trace_path = WriteTraceFile("all_failed.csv", std::string(kHeader) +
                                                      "0,ChatGPT,10,0,10,API log\n"
                                                      "1,ChatGPT,12,0,12,API log\n");
  const std::string message = InputErrorMessage([&] {
    Workload workload(c);
    while (workload.Next()) {
    }
  });
  EXPECT_EQ(message, c.trace_path +
                         ":1: no requests after the header; all 2 rows were skipped as failed "
                         "requests (0 Response tokens)");
}

TEST(BurstGptTrace, AWorkloadOfOneFailedRowSaysItsOneRowWasSkipped) {
  WorkloadConfig c;
  c.trace_path =
      WriteTraceFile("one_failed.csv", std::string(kHeader) + "0,ChatGPT,10,0,10,API log\n");
  EXPECT_THAT(InputErrorMessage([&] { Workload(c).Next(); }),
              HasSubstr(":1: no requests after the header; its one row was skipped"));
}

}  // namespace
}  // namespace kvsim
