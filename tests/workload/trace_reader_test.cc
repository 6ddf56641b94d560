// Tests for the trace readers: the bundled traces in every format, format detection,
// timestamp conversion, and errors that name file:line for malformed input.
#include "sim/workload/trace_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "sim/core/check.h"
#include "tests/testing/input_error.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

using ::kvsim::testing::InputErrorMessage;
using ::kvsim::testing::TempDir;
using ::testing::HasSubstr;

std::string BundledTrace(const std::string& name) {
  return std::string(KVSIM_SOURCE_DIR "/traces/") + name;
}

// Writes `contents` verbatim (no newline translation) to a file named after the running
// test and `name`, in a temporary directory that this executable's tests share and
// that is removed when it exits; returns the file's path.
std::string WriteTempFile(const std::string& name, const std::string& contents) {
  static const TempDir dir;
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return dir.Write(std::string(info->test_suite_name()) + "_" + info->name() + "_" + name,
                   contents);
}

std::vector<TraceRecord> ReadAll(TraceReader& reader) {
  std::vector<TraceRecord> records;
  while (std::optional<TraceRecord> r = reader.Next()) records.push_back(std::move(*r));
  return records;
}

std::vector<TraceRecord> ReadAll(const std::string& path, TraceFormat format) {
  std::unique_ptr<TraceReader> reader = OpenTrace(path, format);
  return ReadAll(*reader);
}

// Opens `path` as `format`, reads it to the end and returns the InputError message
// (from opening or from any row), or "" when the whole file reads cleanly.
std::string ErrorReading(const std::string& path, TraceFormat format) {
  try {
    ReadAll(path, format);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// Expects reading `path` to fail with a message that starts at "path:line: " and contains
// `what`.
void ExpectErrorAt(const std::string& path, TraceFormat format, int line, const std::string& what) {
  const std::string message = ErrorReading(path, format);
  ASSERT_FALSE(message.empty()) << path << " read without error";
  EXPECT_THAT(message, HasSubstr(path + ":" + std::to_string(line) + ": ")) << message;
  EXPECT_THAT(message, HasSubstr(what)) << message;
}

// ---------------------------------------------------------------------------------------
// Bundled traces

struct BundledCase {
  const char* file;
  TraceFormat format;
  int64_t rows;
  int64_t prompt_token_sum;
  int64_t output_token_sum;
  double last_arrival_s;  // < 0: the trace has no arrivals
};

void PrintTo(const BundledCase& c, std::ostream* os) { *os << c.file; }

class BundledTraceTest : public ::testing::TestWithParam<BundledCase> {};

TEST_P(BundledTraceTest, DetectsItsFormatAndParsesEveryRow) {
  const BundledCase& c = GetParam();
  std::unique_ptr<TraceReader> reader = OpenTrace(BundledTrace(c.file), TraceFormat::kAuto);
  EXPECT_EQ(reader->format(), c.format);
  EXPECT_EQ(reader->has_arrivals(), c.last_arrival_s >= 0);

  int64_t rows = 0, prompt_sum = 0, output_sum = 0;
  double prev_arrival = 0;
  const int64_t header_lines = c.format == TraceFormat::kMooncake ? 0 : 1;
  std::optional<TraceRecord> last;
  while (std::optional<TraceRecord> r = reader->Next()) {
    ++rows;
    ASSERT_EQ(r->line, rows + header_lines) << "one record per line after any header";
    ASSERT_GE(r->prompt_tokens, 1);
    ASSERT_GE(r->output_tokens, 1);
    prompt_sum += r->prompt_tokens;
    output_sum += r->output_tokens;
    ASSERT_EQ(r->arrival_s.has_value(), reader->has_arrivals());
    if (r->arrival_s) {
      if (rows == 1) {
        EXPECT_EQ(*r->arrival_s, 0.0);
      }
      ASSERT_GE(*r->arrival_s, prev_arrival) << "line " << r->line;
      prev_arrival = *r->arrival_s;
    }
    last = std::move(r);
  }
  EXPECT_EQ(rows, c.rows);
  EXPECT_EQ(prompt_sum, c.prompt_token_sum);
  EXPECT_EQ(output_sum, c.output_token_sum);
  ASSERT_TRUE(last.has_value());
  if (c.last_arrival_s >= 0) {
    EXPECT_NEAR(*last->arrival_s, c.last_arrival_s, 1e-6);
  }
  EXPECT_FALSE(reader->Next().has_value()) << "stays at the end";
}

TEST_P(BundledTraceTest, ParsesTheSameWithTheFormatNamedExplicitly) {
  const BundledCase& c = GetParam();
  const std::vector<TraceRecord> detected = ReadAll(BundledTrace(c.file), TraceFormat::kAuto);
  const std::vector<TraceRecord> named = ReadAll(BundledTrace(c.file), c.format);
  ASSERT_EQ(detected.size(), named.size());
  for (size_t i = 0; i < named.size(); ++i) {
    ASSERT_EQ(detected[i].prompt_tokens, named[i].prompt_tokens);
    ASSERT_EQ(detected[i].output_tokens, named[i].output_tokens);
    ASSERT_EQ(detected[i].arrival_s, named[i].arrival_s);
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllFormats, BundledTraceTest,
    ::testing::Values(BundledCase{"AzureLLMInferenceTrace_code.csv", TraceFormat::kAzure, 8819,
                                  18059974, 245896, 3435.948056},
                      BundledCase{"AzureLLMInferenceTrace_conv.csv", TraceFormat::kAzure, 19366,
                                  22361870, 4088665, 3501.721937},
                      BundledCase{"splitwise_code.csv", TraceFormat::kSplitwise, 8819, 18059974,
                                  245896, 3435.948056},
                      BundledCase{"splitwise_conv.csv", TraceFormat::kSplitwise, 19366, 22361870,
                                  4088665, 3501.721937},
                      BundledCase{"arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv",
                                  TraceFormat::kLengths, 28257, 73131321, 8234948, -1},
                      BundledCase{"sharegpt_8k_filtered_stats_llama2_tokenizer.csv",
                                  TraceFormat::kLengths, 30731, 71911571, 13481988, -1},
                      BundledCase{"synthetic_trace.jsonl", TraceFormat::kMooncake, 3993, 61194628,
                                  595432, 1022.025}));

TEST(ReadTraceLine, ReturnsEachLineWithoutItsNewlineAndTheLastWithoutOne) {
  // Lines around the 4,096-byte chunk the reader reads in.
  const std::string a(4095, 'a'), b(4096, 'b'), c(9000, 'c');
  std::istringstream in(a + "\n" + b + "\n\n" + c);
  std::string line;
  std::vector<std::string> lines;
  while (ReadTraceLine(in, line, "t.csv", static_cast<int64_t>(lines.size()) + 1)) {
    lines.push_back(line);
  }
  EXPECT_EQ(lines, (std::vector<std::string>{a, b, "", c}));
}

TEST(ReadTraceLine, RefusesALineLongerThanOneMebibyteNamingIt) {
  std::istringstream in("short\n" + std::string((size_t{1} << 20) + 10, '1') + ",5\n");
  std::string line;
  ASSERT_TRUE(ReadTraceLine(in, line, "t.csv", 1));
  EXPECT_EQ(InputErrorMessage([&] { ReadTraceLine(in, line, "t.csv", 2); }),
            "t.csv:2: line longer than 1 MiB");
  EXPECT_LE(line.capacity(), size_t{2} << 20);  // bounded, whatever the line's length
}

TEST(Excerpt, CutsLongFieldsForMessages) {
  EXPECT_EQ(Excerpt("12"), "12");
  EXPECT_EQ(Excerpt(std::string(100, 'x')), std::string(64, 'x') + "...");
  EXPECT_EQ(Excerpt("abcdef", 4), "abcd...");
}

TEST(Excerpt, WritesControlBytesVisiblySoThatTheMessageIsWhole) {
  EXPECT_EQ(Excerpt(std::string("10") + '\0' + "5"), "10\\x005");
  EXPECT_EQ(Excerpt(std::string("a\tb\r\n") + '\x7f' + "c"), "a\\x09b\\x0d\\x0a\\x7fc");
  EXPECT_EQ(Excerpt("caf\xc3\xa9"), "caf\xc3\xa9");  // UTF-8 text stays as it is
  // The cut comes first, so an escape is never cut in half.
  EXPECT_EQ(Excerpt(std::string(63, 'x') + std::string(2, '\0')),
            std::string(63, 'x') + "\\x00...");
}

TEST(CsvTraceReader, QuotesAFieldHoldingANulByteWhole) {
  const std::string path =
      WriteTempFile("nul.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,10" +
                                   std::string(1, '\0') + "5,1\n");
  const std::string message = ErrorReading(path, TraceFormat::kSplitwise);
  EXPECT_EQ(message, path + ":2: column 'num_prefill_tokens': '10\\x005' is not a number");
  EXPECT_EQ(message.find('\0'), std::string::npos);
}

TEST(DetectTraceFormat, QuotesAHeaderHoldingANulByteWhole) {
  const std::string path = WriteTempFile("nul_header.csv", std::string("a") + '\0' + "b,c\n1,2\n");
  EXPECT_THAT(ErrorReading(path, TraceFormat::kAuto),
              HasSubstr(path + ":1: cannot detect trace format; header 'a\\x00b,c'; expected"));
}

TEST(AzureTraceReader, ConvertsWallClockTimestampsToSecondsSinceFirstRow) {
  // First rows: 2023-11-16 18:15:46.6805900 and 18:15:50.9951690, so the second request
  // arrives 4 s + (0.9951690 - 0.6805900) s = 4.314579 s after the first.
  std::unique_ptr<TraceReader> reader =
      NewAzureTraceReader(BundledTrace("AzureLLMInferenceTrace_conv.csv"));
  const std::optional<TraceRecord> first = reader->Next();
  const std::optional<TraceRecord> second = reader->Next();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->arrival_s, 0.0);
  EXPECT_EQ(first->prompt_tokens, 374);
  EXPECT_EQ(first->output_tokens, 44);
  EXPECT_NEAR(*second->arrival_s, 4.314579, 1e-9);
  EXPECT_EQ(second->prompt_tokens, 396);
  EXPECT_EQ(second->output_tokens, 109);
}

TEST(AzureTraceReader, AgreesRowForRowWithTheSplitwiseCopyOfTheSameData) {
  for (const auto& [azure, splitwise] :
       {std::pair{"AzureLLMInferenceTrace_code.csv", "splitwise_code.csv"},
        std::pair{"AzureLLMInferenceTrace_conv.csv", "splitwise_conv.csv"}}) {
    const std::vector<TraceRecord> a = ReadAll(BundledTrace(azure), TraceFormat::kAzure);
    const std::vector<TraceRecord> s = ReadAll(BundledTrace(splitwise), TraceFormat::kSplitwise);
    ASSERT_EQ(a.size(), s.size()) << azure;
    EXPECT_EQ(*a[1].arrival_s, *s[1].arrival_s) << "hand-checked second row of " << azure;
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].prompt_tokens, s[i].prompt_tokens) << azure << " row " << i;
      ASSERT_EQ(a[i].output_tokens, s[i].output_tokens) << azure << " row " << i;
      // The Splitwise file rounds arrivals to microseconds.
      ASSERT_NEAR(*a[i].arrival_s, *s[i].arrival_s, 5e-7) << azure << " row " << i;
    }
  }
}

TEST(AzureTraceReader, CountsDaysAcrossMidnightMonthsAndLeapYears) {
  const std::string path = WriteTempFile("dates.csv",
                                         "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                         "2023-12-31 23:59:59.5,1,1\n"
                                         "2024-01-01 00:00:00.25,1,1\n"
                                         "2024-02-28 23:59:59.25,1,1\n"
                                         "2024-03-01 00:00:00,1,1\n"
                                         "2024-03-01 00:00:00.000000001,1,1\n"
                                         "2025-03-01 00:00:00.123456789,1,1\n");
  const std::vector<TraceRecord> r = ReadAll(path, TraceFormat::kAzure);
  ASSERT_EQ(r.size(), 6u);
  const double day = 86400;
  EXPECT_DOUBLE_EQ(*r[0].arrival_s, 0.0);
  EXPECT_DOUBLE_EQ(*r[1].arrival_s, 0.75);
  // 2024-01-01 00:00:00.25 + 58 days + 23:59:59 = 2024-02-28 23:59:59.25.
  EXPECT_DOUBLE_EQ(*r[2].arrival_s, 0.75 + 58 * day + 86399.0);
  // 2024 is a leap year: Feb 29 lies between Feb 28 and Mar 1.
  EXPECT_DOUBLE_EQ(*r[3].arrival_s - *r[2].arrival_s, day + 0.75);
  EXPECT_GT(*r[4].arrival_s, *r[3].arrival_s);
  // Mar 1 2024 to Mar 1 2025 is 365 days.
  EXPECT_DOUBLE_EQ(*r[5].arrival_s - *r[3].arrival_s, 365 * day + 0.123456789);
}

TEST(AzureTraceReader, KeepsFractionsOfOneToNineDigits) {
  const std::string path = WriteTempFile("fractions.csv",
                                         "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                         "2023-11-16 18:15:46,1,1\n"
                                         "2023-11-16 18:15:46.000000001,1,1\n"
                                         "2023-11-16 18:15:46.123456789,1,1\n"
                                         "2023-11-16 18:15:46.5,1,1\n"
                                         "2023-11-16 18:15:47.0000001,1,1\n");
  const std::vector<TraceRecord> r = ReadAll(path, TraceFormat::kAzure);
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(*r[1].arrival_s, 1e-9);
  EXPECT_EQ(*r[2].arrival_s, 0.123456789);
  EXPECT_EQ(*r[3].arrival_s, 0.5);
  EXPECT_EQ(*r[4].arrival_s, 1.0000001);
}

TEST(AzureTraceReader, AppliesUtcOffsetsAndAcceptsTheIsoSeparator) {
  const std::string path = WriteTempFile("offsets.csv",
                                         "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                         "2024-05-10 00:00:00.009930+00:00,5,6\n"
                                         "2024-05-10T02:00:01.009930+02:00,5,6\n"
                                         "2024-05-10 00:00:02.5Z,5,6\n"
                                         "2024-05-09 19:00:03-0500,5,6\n");
  const std::vector<TraceRecord> r = ReadAll(path, TraceFormat::kAuto);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_NEAR(*r[1].arrival_s, 1.0, 1e-12);
  EXPECT_NEAR(*r[2].arrival_s, 2.49007, 1e-12);
  EXPECT_NEAR(*r[3].arrival_s, 2.99007, 1e-12);
}

TEST(CsvTraceReader, HandlesCrlfBlankLinesAndAMissingFinalNewline) {
  const std::string path = WriteTempFile("crlf.csv",
                                         "TIMESTAMP,ContextTokens,GeneratedTokens\r\n"
                                         "2023-11-16 18:15:46.6805900,374,44\r\n"
                                         "\r\n"
                                         "2023-11-16 18:15:50.9951690,396,109\r\n"
                                         "\r\n"
                                         "   \r\n"
                                         "2023-11-16 18:15:51.2224670,879,55");
  const std::vector<TraceRecord> r = ReadAll(path, TraceFormat::kAuto);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].line, 2);
  EXPECT_EQ(r[1].line, 4);
  EXPECT_EQ(r[2].line, 7);
  EXPECT_EQ(r[2].prompt_tokens, 879);
  EXPECT_EQ(r[2].output_tokens, 55);
  EXPECT_NEAR(*r[2].arrival_s, 4.541877, 1e-9);
}

TEST(CsvTraceReader, SkipsTrailingBlankLines) {
  const std::string path =
      WriteTempFile("trailing.csv", "num_prefill_tokens,num_decode_tokens\n10,20\n30,40\n\n\n \n");
  const std::vector<TraceRecord> r = ReadAll(path, TraceFormat::kLengths);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].prompt_tokens, 30);
  EXPECT_EQ(r[1].output_tokens, 40);
}

TEST(CsvTraceReader, FindsColumnsByNameInAnyOrder) {
  const std::string path = WriteTempFile("reordered.csv",
                                         "pd_ratio,num_decode_tokens,num_total_tokens,"
                                         "num_prefill_tokens\n"
                                         "0.5,20,30,10\n"
                                         "2.0, 7 ,21,\"14\"\n");
  std::unique_ptr<TraceReader> reader = OpenTrace(path, TraceFormat::kAuto);
  EXPECT_EQ(reader->format(), TraceFormat::kLengths);
  EXPECT_FALSE(reader->has_arrivals());
  const std::vector<TraceRecord> r = ReadAll(*reader);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].prompt_tokens, 10);
  EXPECT_EQ(r[0].output_tokens, 20);
  EXPECT_FALSE(r[0].arrival_s.has_value());
  EXPECT_EQ(r[1].prompt_tokens, 14);
  EXPECT_EQ(r[1].output_tokens, 7);
}

TEST(SplitwiseTraceReader, ReportsArrivalsRelativeToTheFirstRow) {
  const std::string path = WriteTempFile("offset.csv",
                                         "num_decode_tokens,arrived_at,num_prefill_tokens\n"
                                         "5,100.25,50\n"
                                         "6,100.75,60\n"
                                         "7,100.75,70\n"
                                         "8,103.0,80\n");
  std::unique_ptr<TraceReader> reader = OpenTrace(path, TraceFormat::kAuto);
  EXPECT_EQ(reader->format(), TraceFormat::kSplitwise);
  const std::vector<TraceRecord> r = ReadAll(*reader);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_DOUBLE_EQ(*r[0].arrival_s, 0.0);
  EXPECT_DOUBLE_EQ(*r[1].arrival_s, 0.5);
  EXPECT_DOUBLE_EQ(*r[2].arrival_s, 0.5);
  EXPECT_DOUBLE_EQ(*r[3].arrival_s, 2.75);
  EXPECT_EQ(r[3].prompt_tokens, 80);
  EXPECT_EQ(r[3].output_tokens, 8);
}

TEST(CsvTraceReader, AcceptsIntegralTokenCountsWrittenAsDecimals) {
  const std::string path =
      WriteTempFile("decimal.csv", "num_prefill_tokens,num_decode_tokens\n12.0,3\n");
  const std::vector<TraceRecord> r = ReadAll(path, TraceFormat::kLengths);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].prompt_tokens, 12);
}

// ---------------------------------------------------------------------------------------
// Mooncake JSONL

TEST(MooncakeTraceReader, KeepsOneHashIdPerStartedBlockOf512Tokens) {
  std::unique_ptr<TraceReader> reader =
      NewMooncakeTraceReader(BundledTrace("synthetic_trace.jsonl"));
  std::optional<TraceRecord> first = reader->Next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->prompt_tokens, 40160);
  EXPECT_EQ(first->output_tokens, 6);
  ASSERT_EQ(first->hash_ids.size(), 79u);  // ceil(40160 / 512)
  for (uint64_t i = 0; i < 79; ++i) EXPECT_EQ(first->hash_ids[i], i);

  int64_t rows = 1;
  while (std::optional<TraceRecord> r = reader->Next()) {
    ++rows;
    const auto blocks = static_cast<size_t>((r->prompt_tokens + 511) / 512);
    ASSERT_EQ(r->hash_ids.size(), blocks) << "line " << r->line;
    if (rows == 6) {
      // {"timestamp": 529, "input_length": 28, "output_length": 445, "hash_ids": [298]}
      EXPECT_EQ(r->hash_ids, std::vector<uint64_t>{298});
      EXPECT_DOUBLE_EQ(*r->arrival_s, 0.529);
      EXPECT_EQ(r->output_tokens, 445);
    }
  }
  EXPECT_EQ(rows, 3993);
}

TEST(MooncakeTraceReader, ConvertsMillisecondsRelativeToTheFirstRowAndSkipsUnknownKeys) {
  const std::string path = WriteTempFile(
      "extra.jsonl",
      "{\"chat_id\": 7, \"timestamp\": 1000, \"input_length\": 600, \"output_length\": 2, "
      "\"hash_ids\": [5, 6], \"type\": \"text\", \"score\": -1.5e3, \"tags\": [1, \"a\"], "
      "\"parent\": null}\r\n"
      "\n"
      "  {\"output_length\":3,\"input_length\":1,\"timestamp\":2500,\"ok\":true,"
      "\"ti\\u006De\":\"x\\\"y\"}  \n"
      "{\"timestamp\": 2500, \"input_length\": 9, \"output_length\": 1, \"hash_ids\": []}");
  std::unique_ptr<TraceReader> reader = OpenTrace(path, TraceFormat::kAuto);
  EXPECT_EQ(reader->format(), TraceFormat::kMooncake);
  const std::vector<TraceRecord> r = ReadAll(*reader);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_DOUBLE_EQ(*r[0].arrival_s, 0.0);
  EXPECT_EQ(r[0].hash_ids, (std::vector<uint64_t>{5, 6}));
  EXPECT_EQ(r[0].prompt_tokens, 600);
  EXPECT_DOUBLE_EQ(*r[1].arrival_s, 1.5);
  EXPECT_EQ(r[1].line, 3);
  EXPECT_EQ(r[1].prompt_tokens, 1);
  EXPECT_EQ(r[1].output_tokens, 3);
  EXPECT_TRUE(r[1].hash_ids.empty());
  EXPECT_DOUBLE_EQ(*r[2].arrival_s, 1.5);
  EXPECT_TRUE(r[2].hash_ids.empty());
}

// ---------------------------------------------------------------------------------------
// Format names and detection

TEST(TraceFormat, ParsesEveryNameAndRoundTripsThroughTraceFormatName) {
  for (TraceFormat f : {TraceFormat::kAuto, TraceFormat::kAzure, TraceFormat::kSplitwise,
                        TraceFormat::kLengths, TraceFormat::kMooncake, TraceFormat::kCsv,
                        TraceFormat::kBurstGpt, TraceFormat::kBenchmarkServing}) {
    EXPECT_EQ(kTraceFormats.Parse(TraceFormatName(f)), f);
  }
  EXPECT_STREQ(TraceFormatName(TraceFormat::kMooncake), "mooncake");
  EXPECT_STREQ(TraceFormatName(TraceFormat::kCsv), "csv");
  EXPECT_STREQ(TraceFormatName(TraceFormat::kBurstGpt), "burstgpt");
  EXPECT_STREQ(TraceFormatName(TraceFormat::kBenchmarkServing), "benchmark_serving");
}

TEST(TraceFormat, AnUnknownNameParsesToNothingAndTheNamesListInOrder) {
  EXPECT_EQ(kTraceFormats.Parse("parquet"), std::nullopt);
  EXPECT_EQ(kTraceFormats.NameList(),
            "auto, azure, splitwise, lengths, mooncake, csv, burstgpt, benchmark_serving");
}

TEST(OpenTrace, RejectsAnUnrecognisedHeaderQuotingIt) {
  const std::string path = WriteTempFile("unknown.csv", "Timestamp,Model,Request tokens\n1,a,2\n");
  const std::string message = ErrorReading(path, TraceFormat::kAuto);
  EXPECT_THAT(message, HasSubstr(path + ":1: cannot detect trace format"));
  EXPECT_THAT(message, HasSubstr("header 'Timestamp,Model,Request tokens'"));
  EXPECT_THAT(message, HasSubstr("expected one of"));
}

TEST(OpenTrace, RejectsJsonWithoutTheMooncakeKeys) {
  const std::string path = WriteTempFile("other.jsonl", "{\"time\": 1, \"tokens\": 2}\n");
  EXPECT_THAT(ErrorReading(path, TraceFormat::kAuto),
              HasSubstr(path + ":1: cannot detect trace format"));
}

TEST(OpenTrace, RejectsAnEmptyFile) {
  const std::string path = WriteTempFile("empty.csv", "");
  EXPECT_THAT(ErrorReading(path, TraceFormat::kAuto), HasSubstr(path + ":1: "));
  EXPECT_THAT(ErrorReading(path, TraceFormat::kAzure), HasSubstr(path + ":1: empty file"));
}

TEST(OpenTrace, RejectsAMissingFile) {
  const TempDir dir;
  const std::string path = dir.PathOf("no_such_trace.csv");
  for (TraceFormat f : {TraceFormat::kAuto, TraceFormat::kAzure, TraceFormat::kMooncake}) {
    EXPECT_THAT(ErrorReading(path, f), HasSubstr(path + ":1: cannot open"));
  }
}

TEST(OpenTrace, RejectsAHeaderThatLacksAColumnOfTheNamedFormat) {
  const std::string message = ErrorReading(BundledTrace("splitwise_conv.csv"), TraceFormat::kAzure);
  EXPECT_THAT(message, HasSubstr("splitwise_conv.csv:1: "));
  EXPECT_THAT(message, HasSubstr("no column 'TIMESTAMP'"));
  const std::string lengths =
      WriteTempFile("lengths.csv", "num_prefill_tokens,num_decode_tokens\n");
  EXPECT_THAT(ErrorReading(lengths, TraceFormat::kSplitwise), HasSubstr("no column 'arrived_at'"));
}

// ---------------------------------------------------------------------------------------
// Malformed rows: each error names file:line.

constexpr const char* kAzureHeader = "TIMESTAMP,ContextTokens,GeneratedTokens\n";
constexpr const char* kAzureRow = "2023-11-16 18:15:46.6805900,374,44\n";

TEST(CsvTraceReader, RejectsARowWithTheWrongColumnCount) {
  const std::string path =
      WriteTempFile("columns.csv", std::string(kAzureHeader) + kAzureRow + kAzureRow +
                                       "2023-11-16 18:15:47.0,5\n");
  ExpectErrorAt(path, TraceFormat::kAuto, 4, "expected 3 columns as in the header, got 2");
  const std::string extra =
      WriteTempFile("extra.csv", "num_prefill_tokens,num_decode_tokens\n1,2\n3,4,\n");
  ExpectErrorAt(extra, TraceFormat::kLengths, 3, "got 3");
}

TEST(CsvTraceReader, RejectsANonNumericTokenCount) {
  const std::string path = WriteTempFile(
      "text.csv", std::string(kAzureHeader) + kAzureRow + "2023-11-16 18:15:47.0,12x,5\n");
  ExpectErrorAt(path, TraceFormat::kAzure, 3, "column 'ContextTokens': '12x' is not a number");
  const std::string empty =
      WriteTempFile("empty_field.csv", "num_prefill_tokens,num_decode_tokens\n1,\n");
  ExpectErrorAt(empty, TraceFormat::kLengths, 2, "column 'num_decode_tokens' is empty");
}

TEST(CsvTraceReader, RejectsAFractionalTokenCount) {
  const std::string path =
      WriteTempFile("fraction.csv", "num_prefill_tokens,num_decode_tokens\n1,2\n12.5,3\n");
  ExpectErrorAt(path, TraceFormat::kLengths, 3, "token count '12.5' is not an integer");
}

TEST(CsvTraceReader, RejectsANegativeTokenCount) {
  const std::string path =
      WriteTempFile("negative.csv", std::string(kAzureHeader) + kAzureRow + kAzureRow + kAzureRow +
                                        "2023-11-16 18:15:47.0,-5,5\n");
  ExpectErrorAt(path, TraceFormat::kAzure, 5, "negative token count -5");
}

TEST(CsvTraceReader, RejectsAZeroOutputLength) {
  const std::string path = WriteTempFile(
      "zero.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,5,1\n0.5,5,0\n");
  ExpectErrorAt(path, TraceFormat::kSplitwise, 3,
                "column 'num_decode_tokens': token count must be >= 1, got 0");
}

TEST(CsvTraceReader, RejectsTimestampsGoingBackwards) {
  const std::string azure =
      WriteTempFile("azure_back.csv", std::string(kAzureHeader) + kAzureRow +
                                          "2023-11-16 18:15:50.9951690,396,109\n"
                                          "2023-11-16 18:15:50.9951689,396,109\n");
  ExpectErrorAt(azure, TraceFormat::kAzure, 4, "timestamp goes backwards");
  const std::string splitwise = WriteTempFile(
      "splitwise_back.csv",
      "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,5,1\n2.0,5,1\n\n1.5,5,1\n");
  ExpectErrorAt(splitwise, TraceFormat::kAuto, 5, "timestamp goes backwards");
}

TEST(AzureTraceReader, RejectsABadDateTime) {
  const struct {
    const char* timestamp;
    const char* what;
  } cases[] = {
      {"2023-02-29 00:00:00.0", "day out of range"},  // 2023 is not a leap year
      {"2023-13-01 00:00:00.0", "month out of range"},
      {"2023-11-16 24:00:00.0", "hour out of range"},
      {"2023-11-16 18:61:00.0", "minute out of range"},
      {"16/11/2023 18:15:46", "expected a date YYYY-MM-DD"},
      {"2023-11-16", "expected ' ' or 'T'"},
      {"2023-11-16 18:15", "expected a time HH:MM:SS"},
      {"2023-11-16 18:15:46.", "expected digits after '.'"},
      {"2023-11-16 18:15:46.1234567890", "more than 9 fractional"},
      {"2023-11-16 18:15:46.5 UTC", "unexpected characters"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.timestamp);
    const std::string path =
        WriteTempFile("date.csv", std::string(kAzureHeader) + kAzureRow + c.timestamp + ",1,1\n");
    ExpectErrorAt(path, TraceFormat::kAzure, 3, "bad date-time");
    ExpectErrorAt(path, TraceFormat::kAzure, 3, c.what);
  }
}

TEST(SplitwiseTraceReader, RejectsANonNumericArrival) {
  const std::string path = WriteTempFile(
      "arrival.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,5,1\nsoon,5,1\n");
  ExpectErrorAt(path, TraceFormat::kSplitwise, 3, "'soon' is not a finite number of seconds");
}

constexpr const char* kMooncakeRow =
    "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 2, \"hash_ids\": [0, 1]}\n";

TEST(MooncakeTraceReader, RejectsMalformedJsonLines) {
  const struct {
    const char* line;
    const char* what;
  } cases[] = {
      {"{\"timestamp\": 1, \"input_length\" 5, \"output_length\": 2}", "expected ':' after a key"},
      {"{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 2,}", "expected a key string"},
      {"{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 2", "expected ',' or '}'"},
      {"{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 2, \"hash_ids\": [1, 2}",
       "expected ',' or ']'"},
      {"{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 2} x",
       "unexpected characters after the JSON value"},
      {"{\"timestamp\": 1, \"input_length\": 05, \"output_length\": 2}", "leading zeros"},
      {"{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 2, \"note\": \"abc}",
       "unterminated string"},
      {"{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 2, \"meta\": {\"a\": [}}",
       "unexpected character '}', expected a value"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line);
    const std::string path =
        WriteTempFile("bad.jsonl", std::string(kMooncakeRow) + kMooncakeRow + c.line + "\n");
    ExpectErrorAt(path, TraceFormat::kMooncake, 3, "malformed JSON at column");
    ExpectErrorAt(path, TraceFormat::kMooncake, 3, c.what);
  }
}

TEST(MooncakeTraceReader, SkipsUnknownKeysWhateverTheyHold) {
  const std::string path = WriteTempFile(
      "nested.jsonl",
      "{\"timestamp\": 5, \"meta\": {\"a\": [1, {\"b\": null}]}, \"input_length\": 7, "
      "\"output_length\": 2, \"text\": \"caf\\u00e9\"}\n");
  const std::vector<TraceRecord> r = ReadAll(path, TraceFormat::kAuto);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].prompt_tokens, 7);
  EXPECT_EQ(r[0].output_tokens, 2);
}

TEST(MooncakeTraceReader, RejectsInvalidFieldValues) {
  const struct {
    const char* line;
    const char* what;
  } cases[] = {
      {"{\"timestamp\": 1, \"input_length\": 5}", "missing key 'output_length'"},
      {"{\"input_length\": 5, \"output_length\": 2}", "missing key 'timestamp'"},
      {"{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 0}",
       "'output_length': token count must be >= 1"},
      {"{\"timestamp\": 1, \"input_length\": -3, \"output_length\": 2}",
       "'input_length': negative token count -3"},
      {"{\"timestamp\": 1, \"input_length\": 2.5, \"output_length\": 2}", "is not an integer"},
      {"{\"timestamp\": 1, \"input_length\": \"5\", \"output_length\": 2}",
       "'input_length': expected a number, got a string"},
      {"{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 2, \"hash_ids\": [1, -2]}",
       "'hash_ids[1]': hash id -2 is negative"},
      {"{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 2, \"hash_ids\": [1.5]}",
       "'hash_ids[0]': expected an integer literal"},
      {"{\"timestamp\": 1, \"timestamp\": 2, \"input_length\": 5, \"output_length\": 2}",
       "duplicate key 'timestamp'"},
      {"{\"timestamp\": Infinity, \"input_length\": 5, \"output_length\": 2}",
       "'timestamp': expected a finite number of milliseconds"},
      {"[1, 2, 3]", "expected one JSON object per line, got an array"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line);
    const std::string path =
        WriteTempFile("invalid.jsonl", std::string(kMooncakeRow) + "\n" + c.line + "\n");
    ExpectErrorAt(path, TraceFormat::kMooncake, 3, c.what);
  }
}

TEST(MooncakeTraceReader, RejectsHashIdsThatDoNotCoverThePromptBlockForBlock) {
  const struct {
    const char* line;
    const char* what;
  } cases[] = {
      {"{\"timestamp\": 1, \"input_length\": 600, \"output_length\": 2, \"hash_ids\": [0]}",
       "'hash_ids': 1 hash id for input_length 600, which needs 2 (one per 512-token block, "
       "the last one partial: ceil(600 / 512))"},
      {"{\"timestamp\": 1, \"input_length\": 512, \"output_length\": 2, \"hash_ids\": [0, 1]}",
       "'hash_ids': 2 hash ids for input_length 512, which needs 1"},
      {"{\"timestamp\": 1, \"input_length\": 1025, \"output_length\": 2, \"hash_ids\": [0, 1]}",
       "'hash_ids': 2 hash ids for input_length 1025, which needs 3"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line);
    const std::string path =
        WriteTempFile("hash_ids.jsonl", std::string(kMooncakeRow) + c.line + "\n");
    ExpectErrorAt(path, TraceFormat::kMooncake, 2, c.what);
  }
}

TEST(MooncakeTraceReader, AcceptsOneHashIdPerStartedBlockOrNone) {
  const std::string path =
      WriteTempFile("blocks.jsonl",
                    "{\"timestamp\": 0, \"input_length\": 512, \"output_length\": 1, "
                    "\"hash_ids\": [7]}\n"
                    "{\"timestamp\": 1, \"input_length\": 513, \"output_length\": 1, "
                    "\"hash_ids\": [7, 8]}\n"
                    "{\"timestamp\": 2, \"input_length\": 900, \"output_length\": 1, "
                    "\"hash_ids\": []}\n");
  const std::vector<TraceRecord> r = ReadAll(path, TraceFormat::kMooncake);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1].hash_ids, (std::vector<uint64_t>{7, 8}));
  EXPECT_TRUE(r[2].hash_ids.empty());
}

TEST(MooncakeTraceReader, RejectsTimestampsGoingBackwards) {
  const std::string path =
      WriteTempFile("back.jsonl",
                    "{\"timestamp\": 40, \"input_length\": 5, \"output_length\": 2}\n"
                    "{\"timestamp\": 39, \"input_length\": 5, \"output_length\": 2}\n");
  ExpectErrorAt(path, TraceFormat::kAuto, 2, "timestamp goes backwards: 39 ms");
}

}  // namespace
}  // namespace kvsim
