// Tests for generic CSV traces (format csv): columns found by the names a TraceColumns
// mapping gives, in any order among other columns, quoted fields, each arrival unit worked
// out by hand, and errors that name path:line (or the mapping's key for a missing column).
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
using ::testing::Not;

TraceColumns Columns(const std::string& arrival, ArrivalUnit unit, const std::string& prompt,
                     const std::string& output) {
  TraceColumns c;
  c.arrival = arrival;
  c.arrival_unit = unit;
  c.prompt_tokens = prompt;
  c.output_tokens = output;
  return c;
}

// The mapping of the small files below: arrival t, prompt p, output o.
TraceColumns Tpo(ArrivalUnit unit) { return Columns("t", unit, "p", "o"); }

std::vector<double> Arrivals(const std::vector<TraceRecord>& records) {
  std::vector<double> s;
  for (const TraceRecord& r : records) s.push_back(*r.arrival_s);
  return s;
}

TEST(CsvColumnsTrace, FindsTheMappedColumnsInAnyOrderAmongQuotedAndExtraColumns) {
  const std::string path = WriteTraceFile("mapped.csv",
                                          "note,n_out,extra,ts,n_in\n"
                                          "\"hello, world\",20,x,100.5,10\n"
                                          "\"say \"\"hi\"\", twice\",7,,101,\"14\"\n"
                                          "plain,3,\"a,b,c\", 103.25 ,5\n");
  std::unique_ptr<TraceReader> reader =
      OpenTrace(path, TraceFormat::kCsv, Columns("ts", ArrivalUnit::kSeconds, "n_in", "n_out"));
  EXPECT_EQ(reader->format(), TraceFormat::kCsv);
  EXPECT_TRUE(reader->has_arrivals());
  const std::vector<TraceRecord> r = ReadRecords(*reader);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].prompt_tokens, 10);
  EXPECT_EQ(r[0].output_tokens, 20);
  EXPECT_EQ(r[1].prompt_tokens, 14);
  EXPECT_EQ(r[1].output_tokens, 7);
  EXPECT_EQ(r[2].prompt_tokens, 5);
  EXPECT_EQ(r[2].output_tokens, 3);
  // 100.5 s is the first row: 101 - 100.5 = 0.5 s, 103.25 - 100.5 = 2.75 s.
  EXPECT_EQ(Arrivals(r), (std::vector<double>{0.0, 0.5, 2.75}));
  EXPECT_EQ(r[0].line, 2);
  EXPECT_EQ(r[2].line, 4);
  EXPECT_EQ(reader->skipped_rows(), 0);
}

TEST(CsvColumnsTrace, MatchesQuotedHeaderNamesWithCommasAndEscapedQuotes) {
  const std::string path = WriteTraceFile("quoted_header.csv",
                                          "\"prompt, tokens\",\"say \"\"out\"\"\"\n"
                                          "12,\"3\"\n");
  const std::vector<TraceRecord> r = ReadRecords(
      path, TraceFormat::kCsv, Columns("", ArrivalUnit::kSeconds, "prompt, tokens", "say \"out\""));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].prompt_tokens, 12);
  EXPECT_EQ(r[0].output_tokens, 3);
}

TEST(CsvColumnsTrace, ReadsSecondsRelativeToTheFirstRowWhetherRelativeOrAbsolute) {
  const std::string relative =
      WriteTraceFile("s.csv", "t,p,o\n-2,1,1\n-1.5,1,1\n0.25,1,1\n0.25,1,1\n");
  // -1.5 - (-2) = 0.5 s; 0.25 - (-2) = 2.25 s; equal times are allowed.
  EXPECT_EQ(Arrivals(ReadRecords(relative, TraceFormat::kCsv, Tpo(ArrivalUnit::kSeconds))),
            (std::vector<double>{0.0, 0.5, 2.25, 2.25}));
  const std::string epoch =
      WriteTraceFile("epoch_s.csv", "t,p,o\n1714560000.25,1,1\n1714560001.75,1,1\n");
  EXPECT_EQ(Arrivals(ReadRecords(epoch, TraceFormat::kCsv, Tpo(ArrivalUnit::kSeconds))),
            (std::vector<double>{0.0, 1.5}));
}

TEST(CsvColumnsTrace, ReadsMillisecondsAsThousandthsOfASecond) {
  const std::string path = WriteTraceFile("ms.csv", "t,p,o\n1000,1,1\n1500,1,1\n2750,1,1\n");
  // (1500 - 1000) / 1000 = 0.5 s; (2750 - 1000) / 1000 = 1.75 s.
  EXPECT_EQ(Arrivals(ReadRecords(path, TraceFormat::kCsv, Tpo(ArrivalUnit::kMilliseconds))),
            (std::vector<double>{0.0, 0.5, 1.75}));
  const std::string epoch =
      WriteTraceFile("epoch_ms.csv", "t,p,o\n1714560000000,1,1\n1714560000250,1,1\n");
  EXPECT_EQ(Arrivals(ReadRecords(epoch, TraceFormat::kCsv, Tpo(ArrivalUnit::kMilliseconds))),
            (std::vector<double>{0.0, 0.25}));
}

TEST(CsvColumnsTrace, ReadsMicrosecondsAsMillionthsOfASecond) {
  const std::string path =
      WriteTraceFile("us.csv", "t,p,o\n5000000,1,1\n5250000,1,1\n7000001,1,1\n");
  // (5250000 - 5000000) / 1e6 = 0.25 s; (7000001 - 5000000) / 1e6 = 2.000001 s.
  EXPECT_EQ(Arrivals(ReadRecords(path, TraceFormat::kCsv, Tpo(ArrivalUnit::kMicroseconds))),
            (std::vector<double>{0.0, 0.25, 2.000001}));
}

TEST(CsvColumnsTrace, ReadsDateTimesWithOrWithoutTheIsoSeparatorAndUtcOffsets) {
  const std::string path = WriteTraceFile("timestamp.csv",
                                          "t,p,o\n"
                                          "2024-05-01T12:00:00.5Z,1,1\n"
                                          "2024-05-01 12:00:01.25,1,1\n"
                                          "2024-05-01T14:00:03+02:00,1,1\n"
                                          "2024-05-01 12:00:04.1234567,1,1\n"
                                          "2024-05-02T00:00:00.5-12:00,1,1\n");
  const std::vector<double> s =
      Arrivals(ReadRecords(path, TraceFormat::kCsv, Tpo(ArrivalUnit::kTimestamp)));
  // 12:00:01.25 (no offset: as written) is 0.75 s after 12:00:00.5Z; 14:00:03+02:00 is
  // 12:00:03Z, 2.5 s after; 12:00:04.1234567 is 3.6234567 s after; 00:00:00.5-12:00 on
  // May 2nd is 12:00:00.5Z on May 2nd, one day after the first row.
  EXPECT_EQ(s, (std::vector<double>{0.0, 0.75, 2.5, 3.6234567, 86400.0}));
}

TEST(CsvColumnsTrace, WithoutAnArrivalColumnIsALengthsTrace) {
  const std::string path = WriteTraceFile("lengths.csv", "id,in,out\na,10,20\nb,30,40\n");
  std::unique_ptr<TraceReader> reader =
      OpenTrace(path, TraceFormat::kCsv, Columns("", ArrivalUnit::kSeconds, "in", "out"));
  EXPECT_FALSE(reader->has_arrivals());
  const std::vector<TraceRecord> r = ReadRecords(*reader);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_FALSE(r[0].arrival_s.has_value());
  EXPECT_EQ(r[1].prompt_tokens, 30);
  EXPECT_EQ(r[1].output_tokens, 40);
}

TEST(CsvColumnsTrace, IsNeverDetectedWithoutItsMapping) {
  const std::string path = WriteTraceFile("plain.csv", "ts,n_in,n_out\n1,2,3\n");
  const std::string message = TraceError(path, TraceFormat::kAuto);
  EXPECT_THAT(message, HasSubstr(path + ":1: cannot detect trace format"));
  EXPECT_THAT(message, HasSubstr("format csv with workload.columns"));
}

TEST(CsvColumnsTrace, ReadsTheBundledSyntheticExampleWithItsMapping) {
  const std::vector<TraceRecord> r =
      ReadRecords(KVSIM_SOURCE_DIR "/traces/synthetic_custom_columns.csv", TraceFormat::kCsv,
                  Columns("sent_at", ArrivalUnit::kTimestamp, "input_tokens", "output_tokens"));
  ASSERT_EQ(r.size(), 20u);
  int64_t prompt_sum = 0, output_sum = 0;
  for (const TraceRecord& record : r) {
    prompt_sum += record.prompt_tokens;
    output_sum += record.output_tokens;
  }
  EXPECT_EQ(prompt_sum, 17344);
  EXPECT_EQ(output_sum, 3706);
  EXPECT_EQ(*r[1].arrival_s, 0.35);    // 12:00:00.350Z after 12:00:00.000Z
  EXPECT_EQ(*r[19].arrival_s, 8.125);  // 12:00:08.125Z
}

// ---------------------------------------------------------------------------------------
// Errors

TEST(CsvColumnsTrace, AMissingColumnNamesItsConfigKeyAndListsTheHeader) {
  const std::string path = WriteTraceFile("missing.csv", "ts,a,b\n1,2,3\n");
  ExpectTraceErrorAt(path, TraceFormat::kCsv, 1,
                     "workload.columns.prompt_tokens: no column 'n_in' in the header; its "
                     "columns are 'ts', 'a', 'b'",
                     Columns("ts", ArrivalUnit::kSeconds, "n_in", "b"));
  ExpectTraceErrorAt(path, TraceFormat::kCsv, 1,
                     "workload.columns.output_tokens: no column 'n_out'",
                     Columns("ts", ArrivalUnit::kSeconds, "a", "n_out"));
  ExpectTraceErrorAt(path, TraceFormat::kCsv, 1, "workload.columns.arrival: no column 'time'",
                     Columns("time", ArrivalUnit::kSeconds, "a", "b"));
}

TEST(CsvColumnsTrace, ListsAtMostTwentyColumnsOfAWideHeader) {
  std::string header;
  for (int i = 0; i < 30; ++i) header += (i ? ",c" : "c") + std::to_string(i);
  const std::string path = WriteTraceFile("wide.csv", header + "\n");
  const std::string message =
      TraceError(path, TraceFormat::kCsv, Columns("", ArrivalUnit::kSeconds, "x", "c1"));
  EXPECT_THAT(message, HasSubstr("'c18', 'c19' and 10 more"));
  EXPECT_THAT(message, Not(HasSubstr("'c20'")));
}

TEST(CsvColumnsTrace, RefusesAMappedColumnThatAppearsTwice) {
  const std::string path = WriteTraceFile("twice.csv", "ts,n,n\n1,2,3\n");
  ExpectTraceErrorAt(path, TraceFormat::kCsv, 1,
                     "column 'n' appears twice in the header (columns 2 and 3)",
                     Columns("ts", ArrivalUnit::kSeconds, "n", "n"));
}

TEST(CsvColumnsTrace, RefusesANonNumericArrivalNamingItsUnit) {
  const std::string path = WriteTraceFile("soon.csv", "t,p,o\n1,1,1\nsoon,1,1\n");
  ExpectTraceErrorAt(path, TraceFormat::kCsv, 3,
                     "column 't': 'soon' is not a finite number of milliseconds",
                     Tpo(ArrivalUnit::kMilliseconds));
  ExpectTraceErrorAt(path, TraceFormat::kCsv, 3, "not a finite number of microseconds",
                     Tpo(ArrivalUnit::kMicroseconds));
  const std::string inf = WriteTraceFile("inf.csv", "t,p,o\n1,1,1\ninf,1,1\n");
  ExpectTraceErrorAt(inf, TraceFormat::kCsv, 3, "'inf' is not a finite number of seconds",
                     Tpo(ArrivalUnit::kSeconds));
}

TEST(CsvColumnsTrace, RefusesABadDateTimeSayingWhatIsWrong) {
  const std::string path =
      WriteTraceFile("date.csv", "t,p,o\n2024-01-01 00:00:00,1,1\n2024-13-01 00:00:00,1,1\n");
  ExpectTraceErrorAt(path, TraceFormat::kCsv, 3,
                     "column 't': bad date-time '2024-13-01 00:00:00': month out of range",
                     Tpo(ArrivalUnit::kTimestamp));
  const std::string number = WriteTraceFile("number.csv", "t,p,o\n1714560000,1,1\n");
  ExpectTraceErrorAt(number, TraceFormat::kCsv, 2, "expected a date YYYY-MM-DD",
                     Tpo(ArrivalUnit::kTimestamp));
}

TEST(CsvColumnsTrace, RefusesArrivalsGoingBackwardsWithAHintToSort) {
  const std::string path = WriteTraceFile("back.csv", "t,p,o\n10,1,1\n20,1,1\n\n10,1,1\n");
  ExpectTraceErrorAt(path, TraceFormat::kCsv, 5,
                     "timestamp goes backwards: 10 is before the previous row's 20; kvsim "
                     "replays rows in file order: sort the file by column 't' first",
                     Tpo(ArrivalUnit::kMicroseconds));
  const std::string wall = WriteTraceFile(
      "back_wall.csv", "t,p,o\n2024-05-01T12:00:00Z,1,1\n2024-05-01T13:00:00+02:00,1,1\n");
  ExpectTraceErrorAt(wall, TraceFormat::kCsv, 3,
                     "timestamp goes backwards: '2024-05-01T13:00:00+02:00' is before the "
                     "previous row's '2024-05-01T12:00:00Z'",
                     Tpo(ArrivalUnit::kTimestamp));
}

TEST(CsvColumnsTrace, RefusesAnUnterminatedQuote) {
  const std::string path = WriteTraceFile("quote.csv", "t,p,o\n1,1,1\n2,\"1,1\n");
  ExpectTraceErrorAt(path, TraceFormat::kCsv, 3, "unterminated quoted field",
                     Tpo(ArrivalUnit::kSeconds));
  const std::string header = WriteTraceFile("quote_header.csv", "t,\"p,o\n1,1,1\n");
  ExpectTraceErrorAt(header, TraceFormat::kCsv, 1, "unterminated quoted field in the header",
                     Tpo(ArrivalUnit::kSeconds));
}

TEST(CsvColumnsTrace, RefusesARowWithAnotherNumberOfColumnsThanTheHeader) {
  const std::string path = WriteTraceFile("count.csv", "t,p,o,extra\n1,1,1,x\n2,1,1\n");
  ExpectTraceErrorAt(path, TraceFormat::kCsv, 3, "expected 4 columns as in the header, got 3",
                     Tpo(ArrivalUnit::kSeconds));
}

TEST(CsvColumnsTrace, RefusesBadTokenCountsNamingTheColumn) {
  const struct {
    const char* row;
    const char* what;
  } cases[] = {
      {"1,5,0", "column 'o': token count must be >= 1, got 0"},
      {"1,-5,2", "column 'p': negative token count -5"},
      {"1,,2", "column 'p' is empty; expected a token count"},
      {"1,12x,2", "column 'p': '12x' is not a number"},
      {"1,2.5,2", "column 'p': token count '2.5' is not an integer"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.row);
    const std::string path = WriteTraceFile("tokens.csv", std::string("t,p,o\n0,1,1\n") + c.row);
    ExpectTraceErrorAt(path, TraceFormat::kCsv, 3, c.what, Tpo(ArrivalUnit::kSeconds));
  }
}

TEST(CsvColumnsTrace, CutsALongFieldInItsMessage) {
  const std::string field(200, 'x');
  const std::string path = WriteTraceFile("long_field.csv", "t,p,o\n0," + field + ",1\n");
  const std::string message = TraceError(path, TraceFormat::kCsv, Tpo(ArrivalUnit::kSeconds));
  EXPECT_THAT(message, HasSubstr(std::string(64, 'x') + "..."));
  EXPECT_THAT(message, Not(HasSubstr(std::string(65, 'x'))));
}

TEST(CsvColumnsTrace, RefusesALineLongerThanOneMebibyte) {
  const std::string path =
      WriteTraceFile("long_line.csv", "t,p,o\n0,1," + std::string(kMaxTraceLineBytes, '1') + "\n");
  ExpectTraceErrorAt(path, TraceFormat::kCsv, 2, "line longer than 1 MiB",
                     Tpo(ArrivalUnit::kSeconds));
}

TEST(CsvColumnsTrace, RefusesAnEmptyFileNamingTheColumnsItExpected) {
  const std::string path = WriteTraceFile("empty.csv", "");
  ExpectTraceErrorAt(path, TraceFormat::kCsv, 1,
                     "empty file; expected a csv header with columns t,p,o",
                     Tpo(ArrivalUnit::kSeconds));
}

TEST(CsvColumnsTrace, NeedsItsPromptAndOutputColumnsNamed) {
  const std::string path = WriteTraceFile("unnamed.csv", "t,p,o\n1,1,1\n");
  EXPECT_THAT(TraceError(path, TraceFormat::kCsv), HasSubstr("workload.columns"));
}

// ---------------------------------------------------------------------------------------
// Through a Workload

TEST(CsvColumnsTrace, GivesAWorkloadItsArrivalsAndLengths) {
  WorkloadConfig c;
  c.trace_path = WriteTraceFile("workload.csv", "p,t,o\n100,2000,10\n200,2500,20\n300,4000,30\n");
  c.trace_format = TraceFormat::kCsv;
  c.columns = Tpo(ArrivalUnit::kMilliseconds);
  Workload workload(c);
  std::vector<RequestSpec> requests;
  while (std::optional<RequestSpec> r = workload.Next()) requests.push_back(*r);
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].arrival, Nanos(500'000'000));
  EXPECT_EQ(requests[2].arrival, Nanos(2'000'000'000));
  EXPECT_EQ(requests[2].prompt_tokens, 300);
  EXPECT_EQ(requests[2].output_tokens, 30);
  EXPECT_EQ(workload.SkippedRowsNote(), "");
}

TEST(CsvColumnsTrace, WithoutAnArrivalColumnNeedsSyntheticArrivals) {
  WorkloadConfig c;
  c.trace_path = "t.csv";
  c.trace_format = TraceFormat::kCsv;
  c.columns = Columns("", ArrivalUnit::kSeconds, "p", "o");
  EXPECT_THAT(InputErrorMessage([&] { ValidateWorkloadConfig(c, "workload"); }),
              HasSubstr("workload.arrival.process: 'trace' arrivals need a trace with "
                        "timestamps, but workload.columns names no arrival column"));
  c.columns = {};
  c.arrival = ArrivalProcess::kPoisson;
  c.rate_qps = 1;
  EXPECT_THAT(InputErrorMessage([&] { ValidateWorkloadConfig(c, "workload"); }),
              HasSubstr("workload.columns: format csv needs the header names of its columns"));
}

}  // namespace
}  // namespace kvsim
