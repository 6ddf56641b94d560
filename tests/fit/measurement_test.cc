// Tests for the measured-run loaders: each format's values worked out by hand from small
// files, arrival handling and ordering, the real vLLM request log when it is present, and
// errors that name file:line for malformed input.
#include "sim/fit/measurement.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
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
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string DataFile(const std::string& name) {
  return std::string(KVSIM_TEST_DATA_DIR "/fit/") + name;
}

// Writes `text` verbatim to a file named after the running test and `name` in a temporary
// directory shared by this executable's tests; returns its path.
std::string WriteTempFile(const std::string& name, const std::string& text) {
  static const TempDir dir;
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string file = std::string(info->name()) + "_" + name;
  for (char& c : file) {
    if (c == '/') c = '_';  // parameterized tests are named "Test/0"
  }
  return dir.Write(file, text);
}

// The InputError message of loading `path` as `format`.
std::string LoadError(const std::string& path, MeasurementFormat format) {
  return InputErrorMessage([&] { LoadMeasuredRequests(path, format); });
}

// ---------------------------------------------------------------------------------------
// Format names

TEST(MeasurementFormatTest, ParsesEveryNameAndRoundTripsThroughItsName) {
  for (MeasurementFormat f :
       {MeasurementFormat::kVllmRequestsJsonl, MeasurementFormat::kBenchmarkServingJson,
        MeasurementFormat::kRequestsCsv}) {
    EXPECT_EQ(ParseMeasurementFormat(std::string(kMeasurementFormats.Name(f)), "fit.format"), f);
  }
  EXPECT_EQ(ParseMeasurementFormat("vllm_requests_jsonl", "w"),
            MeasurementFormat::kVllmRequestsJsonl);
  EXPECT_EQ(ParseMeasurementFormat("benchmark_serving_json", "w"),
            MeasurementFormat::kBenchmarkServingJson);
  EXPECT_EQ(ParseMeasurementFormat("requests_csv", "w"), MeasurementFormat::kRequestsCsv);
}

TEST(MeasurementFormatTest, RejectsAnUnknownNameListingTheKnownOnes) {
  const std::string message =
      InputErrorMessage([] { ParseMeasurementFormat("jsonl", "fit.yaml:3: measured.format"); });
  EXPECT_THAT(message, HasSubstr("fit.yaml:3: measured.format: unknown measurement format "
                                 "'jsonl' (expected one of vllm_requests_jsonl, "
                                 "benchmark_serving_json, requests_csv)"));
}

TEST(MeasurementFormatTest, GuessesTheFormatFromTheFileExtension) {
  EXPECT_EQ(FormatFromExtension("runs/requests.jsonl"), MeasurementFormat::kVllmRequestsJsonl);
  EXPECT_EQ(FormatFromExtension("bench/vllm-4.0qps.json"),
            MeasurementFormat::kBenchmarkServingJson);
  EXPECT_EQ(FormatFromExtension("m.CSV"), MeasurementFormat::kRequestsCsv);
  EXPECT_EQ(FormatFromExtension("m.txt"), std::nullopt);
  EXPECT_EQ(FormatFromExtension("jsonl"), std::nullopt);
  EXPECT_EQ(FormatFromExtension("dir.json/file"), std::nullopt);
}

TEST(MeasurementTest, RejectsAFileThatCannotBeOpened) {
  const std::string path = DataFile("no_such_file.jsonl");
  EXPECT_THAT(LoadError(path, MeasurementFormat::kVllmRequestsJsonl),
              HasSubstr(path + ": cannot open"));
}

// ---------------------------------------------------------------------------------------
// vLLM engine request log

TEST(MeasurementTest, VllmRequestLogGivesTtftFromQueuedToFirstToken) {
  const std::string path = DataFile("vllm_requests_small.jsonl");
  const MeasuredRequests run = LoadMeasuredRequests(path, MeasurementFormat::kVllmRequestsJsonl);
  EXPECT_EQ(run.path, path);
  EXPECT_EQ(run.format, MeasurementFormat::kVllmRequestsJsonl);
  EXPECT_TRUE(run.arrivals_recorded);
  ASSERT_EQ(run.requests.size(), 4u);
  // Sorted by queued_ts (500.0, 500.25, 500.25, 501.0); r0 and r3 tie and keep file order.
  const MeasuredRequest& r1 = run.requests[0];
  EXPECT_EQ(r1.arrival_s, 0.0);
  EXPECT_EQ(r1.prompt_tokens, 2048);
  EXPECT_EQ(r1.output_tokens, 1);
  EXPECT_EQ(r1.ttft_s, 1.5);  // 501.5 - 500.0
  EXPECT_EQ(r1.e2e_s, 1.5);
  const MeasuredRequest& r0 = run.requests[1];
  EXPECT_EQ(r0.arrival_s, 0.25);
  EXPECT_EQ(r0.prompt_tokens, 100);
  EXPECT_EQ(r0.output_tokens, 8);
  EXPECT_EQ(r0.ttft_s, 0.5);  // 500.75 - 500.25
  EXPECT_EQ(r0.e2e_s, 1.75);  // 502.0 - 500.25
  const MeasuredRequest& r3 = run.requests[2];
  EXPECT_EQ(r3.arrival_s, 0.25);
  EXPECT_EQ(r3.prompt_tokens, 50);
  EXPECT_EQ(r3.ttft_s, 1.0);  // 501.25 - 500.25, not from scheduled_ts
  EXPECT_EQ(r3.e2e_s, 1.25);
  const MeasuredRequest& r2 = run.requests[3];
  EXPECT_EQ(r2.arrival_s, 1.0);
  EXPECT_EQ(r2.prompt_tokens, 7);
  EXPECT_EQ(r2.output_tokens, 300);
  EXPECT_EQ(r2.ttft_s, 0.0625);
  EXPECT_EQ(r2.e2e_s, 9.5);
  for (const MeasuredRequest& r : run.requests) EXPECT_THAT(r.itls_s, IsEmpty());
}

TEST(MeasurementTest, VllmRequestLogAcceptsCrlfAndMissingFinalNewline) {
  const std::string path = WriteTempFile(
      "log.jsonl",
      "{\"input_toks\": 3, \"output_toks\": 2, \"queued_ts\": 8, \"first_token_ts\": 9, "
      "\"last_token_ts\": 10}\r\n"
      "   \r\n"
      "{\"input_toks\": 4, \"output_toks\": 5, \"queued_ts\": 6, \"first_token_ts\": 6, "
      "\"last_token_ts\": 7.5}");
  const MeasuredRequests run = LoadMeasuredRequests(path, MeasurementFormat::kVllmRequestsJsonl);
  ASSERT_EQ(run.requests.size(), 2u);
  EXPECT_EQ(run.requests[0].arrival_s, 0.0);
  EXPECT_EQ(run.requests[0].prompt_tokens, 4);
  EXPECT_EQ(run.requests[0].ttft_s, 0.0);
  EXPECT_EQ(run.requests[0].e2e_s, 1.5);
  EXPECT_EQ(run.requests[1].arrival_s, 2.0);
  EXPECT_EQ(run.requests[1].ttft_s, 1.0);
  EXPECT_EQ(run.requests[1].e2e_s, 2.0);
}

// A vLLM request-log line of request `id` with the given fields (values are JSON text).
std::string LogLine(const std::string& id, const std::string& input_toks,
                    const std::string& output_toks, const std::string& queued,
                    const std::string& first, const std::string& last) {
  return "{\"request_id\": \"" + id + "\", \"input_toks\": " + input_toks +
         ", \"output_toks\": " + output_toks + ", \"queued_ts\": " + queued +
         ", \"first_token_ts\": " + first + ", \"last_token_ts\": " + last + "}\n";
}

struct BadLogCase {
  const char* name;
  std::string third_line;  // lines 1, 2 and 4 are good, of requests r1, r2 and r4
  const char* message;     // expected after "path:3: "
};

void PrintTo(const BadLogCase& c, std::ostream* os) { *os << c.name; }

class VllmRequestLogErrorTest : public ::testing::TestWithParam<BadLogCase> {};

TEST_P(VllmRequestLogErrorTest, NamesFileAndLine) {
  const BadLogCase& c = GetParam();
  auto good = [](const std::string& id) { return LogLine(id, "10", "2", "1.0", "1.5", "2.0"); };
  const std::string path = WriteTempFile(std::string(c.name) + ".jsonl",
                                         good("r1") + good("r2") + c.third_line + good("r4"));
  EXPECT_THAT(LoadError(path, MeasurementFormat::kVllmRequestsJsonl),
              HasSubstr(path + ":3: " + c.message));
}

INSTANTIATE_TEST_SUITE_P(
    MalformedLines, VllmRequestLogErrorTest,
    ::testing::Values(
        BadLogCase{"NotAnObject", "[1, 2]\n", "expected one JSON object per line, got an array"},
        BadLogCase{"SyntaxError", "{\"input_toks\": 1,}\n", "malformed JSON at column 18"},
        BadLogCase{"MissingKey",
                   "{\"input_toks\": 1, \"output_toks\": 1, \"queued_ts\": 1, "
                   "\"last_token_ts\": 2}\n",
                   "missing key 'first_token_ts'"},
        BadLogCase{"NullTimestamp", LogLine("r3", "10", "2", "1.0", "null", "2.0"),
                   "'first_token_ts': expected a number, got null"},
        BadLogCase{"StringCount", LogLine("r3", "\"10\"", "2", "1.0", "1.5", "2.0"),
                   "'input_toks': expected an integer, got a string"},
        BadLogCase{"FractionalCount", LogLine("r3", "10", "2.5", "1.0", "1.5", "2.0"),
                   "'output_toks': expected an integer literal"},
        BadLogCase{"ZeroCount", LogLine("r3", "10", "0", "1.0", "1.5", "2.0"),
                   "'output_toks': a token count must be > 0, got 0"},
        BadLogCase{"NegativeCount", LogLine("r3", "-3", "2", "1.0", "1.5", "2.0"),
                   "'input_toks': a token count must be > 0, got -3"},
        // The replay would refuse it too, but naming a file kvsim wrote, not this one.
        BadLogCase{"CountBeyondAnyContext", LogLine("r3", "1000000000", "2", "1.0", "1.5", "2.0"),
                   "'input_toks': 1000000000 tokens: beyond any model's context (at most "
                   "16777216 tokens per request)"},
        BadLogCase{"FirstTokenBeforeQueued", LogLine("r3", "10", "2", "5.5", "5.25", "6"),
                   "first_token_ts 5.25 is before queued_ts 5.5"},
        BadLogCase{"LastTokenBeforeFirst", LogLine("r3", "10", "2", "5", "6", "5.75"),
                   "last_token_ts 5.75 is before first_token_ts 6"},
        BadLogCase{"NanTimestamp", LogLine("r3", "10", "2", "NaN", "1.5", "2.0"),
                   "'queued_ts': expected a finite number, got nan"},
        BadLogCase{"InfiniteTimestamp", LogLine("r3", "10", "2", "1.0", "1.5", "Infinity"),
                   "'last_token_ts': expected a finite number, got inf"},
        BadLogCase{"RepeatedRequestId", LogLine("r1", "10", "2", "1.0", "1.5", "2.0"),
                   "request_id 'r1' repeats the request of line 1: the log was concatenated or "
                   "a line duplicated"},
        BadLogCase{"EmptyRequestId", LogLine("", "10", "2", "1.0", "1.5", "2.0"),
                   "'request_id': an empty request id"},
        BadLogCase{"NumericRequestId",
                   "{\"request_id\": 3, \"input_toks\": 1, \"output_toks\": 1, \"queued_ts\": "
                   "1, \"first_token_ts\": 1, \"last_token_ts\": 2}\n",
                   "'request_id': expected a string, got a number"}));

// The 1-based number of the line of `text` that starts with `prefix`; 0 when none does.
int LineStartingWith(const std::string& text, const std::string& prefix) {
  std::istringstream lines(text);
  std::string line;
  for (int line_no = 1; std::getline(lines, line); ++line_no) {
    if (line.starts_with(prefix)) return line_no;
  }
  return 0;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(MeasurementTest, VllmRequestLogConcatenatedWithItselfNamesTheRepeatAndTheFirstLine) {
  const std::string log = ReadText(DataFile("vllm_requests_small.jsonl"));
  ASSERT_EQ(log.back(), '\n');
  const int lines = static_cast<int>(std::count(log.begin(), log.end(), '\n'));
  const int first_r0 = LineStartingWith(log, "{\"request_id\": \"r0\"");
  ASSERT_GT(first_r0, 0);
  const std::string path = WriteTempFile("twice.jsonl", log + log);
  EXPECT_THAT(LoadError(path, MeasurementFormat::kVllmRequestsJsonl),
              HasSubstr(fmt::format("{}:{}: request_id 'r0' repeats the request of line {}", path,
                                    lines + first_r0, first_r0)));
}

TEST(MeasurementTest, VllmRequestLogWithoutRequestIdsIsNotCheckedForRepeats) {
  // Two requests of the same shape, timed alike, are possible: only an id tells a repeat.
  const std::string line =
      "{\"input_toks\": 3, \"output_toks\": 2, \"queued_ts\": 8, \"first_token_ts\": 9, "
      "\"last_token_ts\": 10}\n";
  const std::string path = WriteTempFile("no_ids.jsonl", line + line);
  EXPECT_EQ(LoadMeasuredRequests(path, MeasurementFormat::kVllmRequestsJsonl).requests.size(), 2u);
}

TEST(MeasurementTest, VllmRequestLogWithNoRequestsIsAnError) {
  const std::string empty = WriteTempFile("empty.jsonl", "");
  EXPECT_THAT(LoadError(empty, MeasurementFormat::kVllmRequestsJsonl),
              HasSubstr(empty + ":1: no requests"));
  const std::string blank = WriteTempFile("blank.jsonl", "\n  \n\n");
  EXPECT_THAT(LoadError(blank, MeasurementFormat::kVllmRequestsJsonl),
              HasSubstr(blank + ":1: no requests"));
}

TEST(MeasurementTest, RealVllmRequestLogMatchesTheEnginesOwnMeanTtft) {
  const std::string path =
      KVSIM_SOURCE_DIR "/../shared/ground-truth/vllm-0.19-llama-3.1-8b/RTX4090/vllm/requests.jsonl";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is not present";
  const MeasuredRequests run = LoadMeasuredRequests(path, MeasurementFormat::kVllmRequestsJsonl);
  ASSERT_EQ(run.requests.size(), 300u);
  EXPECT_EQ(run.requests.front().arrival_s, 0.0);
  double ttft_sum_s = 0;
  double prev_arrival_s = 0;
  for (const MeasuredRequest& r : run.requests) {
    ttft_sum_s += r.ttft_s;
    EXPECT_GE(r.arrival_s, prev_arrival_s);
    EXPECT_GE(r.e2e_s, r.ttft_s);
    EXPECT_GT(r.prompt_tokens, 0);
    EXPECT_GT(r.output_tokens, 0);
    prev_arrival_s = r.arrival_s;
  }
  EXPECT_NEAR(ttft_sum_s / 300, 65.4566, 1e-3);
}

// ---------------------------------------------------------------------------------------
// benchmark_serving result JSON

TEST(MeasurementTest, BenchmarkServingGivesE2eAsTtftPlusTheInterTokenLatencies) {
  const std::string path = DataFile("benchmark_serving_small.json");
  const MeasuredRequests run = LoadMeasuredRequests(path, MeasurementFormat::kBenchmarkServingJson);
  EXPECT_EQ(run.format, MeasurementFormat::kBenchmarkServingJson);
  EXPECT_FALSE(run.arrivals_recorded);
  EXPECT_EQ(run.request_rate_qps, 4.0);
  EXPECT_EQ(run.burstiness, 0.5);
  ASSERT_EQ(run.requests.size(), 3u);
  // File order, no arrivals.
  EXPECT_EQ(run.requests[0].prompt_tokens, 512);
  EXPECT_EQ(run.requests[0].output_tokens, 4);
  EXPECT_EQ(run.requests[0].ttft_s, 0.25);
  EXPECT_THAT(run.requests[0].itls_s, ElementsAre(0.03125, 0.03125, 0.0625));
  EXPECT_EQ(run.requests[0].e2e_s, 0.375);  // 0.25 + 0.125
  EXPECT_EQ(run.requests[1].prompt_tokens, 64);
  EXPECT_EQ(run.requests[1].output_tokens, 1);
  EXPECT_THAT(run.requests[1].itls_s, IsEmpty());
  EXPECT_EQ(run.requests[1].e2e_s, 0.0625);
  // Three tokens streamed in two chunks: one gap recorded.
  EXPECT_EQ(run.requests[2].prompt_tokens, 1000);
  EXPECT_EQ(run.requests[2].output_tokens, 3);
  EXPECT_THAT(run.requests[2].itls_s, ElementsAre(0.125));
  EXPECT_EQ(run.requests[2].e2e_s, 0.375);
  for (const MeasuredRequest& r : run.requests) EXPECT_EQ(r.arrival_s, 0.0);
}

// A benchmark_serving result with the given request_rate text and extra members (JSON
// text ending in ",\n" or empty), and two good requests; the arrays start on line 4.
std::string BenchmarkJson(const std::string& request_rate, const std::string& extra = "") {
  return "{\n"  // 1
         "  \"request_rate\": " +
         request_rate + ",\n" +                       // 2
         "  " + extra + "\"backend\": \"vllm\",\n" +  // 3
         "  \"input_lens\": [10, 20],\n"              // 4
         "  \"output_lens\": [2, 3],\n"               // 5
         "  \"ttfts\": [0.5, 0.75],\n"                // 6
         "  \"itls\": [[0.25], [0.125, 0.125]],\n"    // 7
         "  \"errors\": [\"\", \"\"]\n"               // 8
         "}\n";                                       // 9
}

TEST(MeasurementTest, BenchmarkServingInfinityRequestRateMeansAllSentAtOnce) {
  const std::string path = WriteTempFile("inf.json", BenchmarkJson("Infinity"));
  const MeasuredRequests run = LoadMeasuredRequests(path, MeasurementFormat::kBenchmarkServingJson);
  EXPECT_EQ(run.request_rate_qps, kInf);
  EXPECT_EQ(run.burstiness, 1.0) << "default when absent";
  ASSERT_EQ(run.requests.size(), 2u);
  EXPECT_EQ(run.requests[1].e2e_s, 1.0);  // 0.75 + 0.125 + 0.125
}

TEST(MeasurementTest, BenchmarkServingAcceptsTheInfStringThatVllmWrites) {
  const std::string path = WriteTempFile("inf_string.json", BenchmarkJson("\"inf\""));
  EXPECT_EQ(LoadMeasuredRequests(path, MeasurementFormat::kBenchmarkServingJson).request_rate_qps,
            kInf);
}

TEST(MeasurementTest, BenchmarkServingRejectsABadOrMissingRequestRate) {
  const std::string text = BenchmarkJson("1");
  const std::string missing =
      WriteTempFile("missing.json", text.substr(0, 2) + text.substr(text.find('\n', 2) + 1));
  EXPECT_THAT(LoadError(missing, MeasurementFormat::kBenchmarkServingJson),
              HasSubstr(missing + ":1: missing key 'request_rate'"));
  const std::string zero = WriteTempFile("zero.json", BenchmarkJson("0"));
  EXPECT_THAT(LoadError(zero, MeasurementFormat::kBenchmarkServingJson),
              HasSubstr(zero + ":2: 'request_rate': expected a rate > 0 requests/s, got 0"));
  const std::string nan = WriteTempFile("nan.json", BenchmarkJson("NaN"));
  EXPECT_THAT(LoadError(nan, MeasurementFormat::kBenchmarkServingJson),
              HasSubstr(nan + ":2: 'request_rate': expected a rate > 0"));
  const std::string word = WriteTempFile("word.json", BenchmarkJson("\"fast\""));
  EXPECT_THAT(LoadError(word, MeasurementFormat::kBenchmarkServingJson),
              HasSubstr(word + ":2: 'request_rate': expected a number or \"inf\", got \"fast\""));
}

TEST(MeasurementTest, BenchmarkServingRejectsARunLimitedByMaxConcurrency) {
  const std::string path =
      WriteTempFile("mc.json", BenchmarkJson("8", "\"max_concurrency\": 16,\n  "));
  const std::string message = LoadError(path, MeasurementFormat::kBenchmarkServingJson);
  EXPECT_THAT(message, HasSubstr(path + ":3: 'max_concurrency': the run was limited to 16 "
                                        "concurrent requests, a closed loop"));
  EXPECT_THAT(message, HasSubstr("kvsim replays open-loop arrivals"));
  EXPECT_THAT(message, HasSubstr("without --max-concurrency"));

  const std::string unlimited =
      WriteTempFile("mc_null.json", BenchmarkJson("8", "\"max_concurrency\": null,\n  "));
  EXPECT_EQ(
      LoadMeasuredRequests(unlimited, MeasurementFormat::kBenchmarkServingJson).requests.size(),
      2u);
}

TEST(MeasurementTest, BenchmarkServingRejectsARampedRequestRate) {
  const std::string path =
      WriteTempFile("ramp.json", BenchmarkJson("8", "\"ramp_up_strategy\": \"linear\",\n  "));
  EXPECT_THAT(LoadError(path, MeasurementFormat::kBenchmarkServingJson),
              HasSubstr(path + ":3: 'ramp_up_strategy': the request rate was ramped"));
}

TEST(MeasurementTest, BenchmarkServingRejectsAFailedRequestNamingItsIndex) {
  const std::string path = WriteTempFile("failed.json",
                                         "{\"request_rate\": 2,\n"
                                         " \"input_lens\": [5, 6, 7],\n"
                                         " \"output_lens\": [1, 0, 1],\n"
                                         " \"ttfts\": [0.1, 0, 0.1],\n"
                                         " \"itls\": [[], [], []],\n"
                                         " \"errors\": [\"\",\n"
                                         "   \"Traceback:\\nConnection reset\", \"\"]}\n");
  EXPECT_THAT(LoadError(path, MeasurementFormat::kBenchmarkServingJson),
              HasSubstr(path + ":7: request 1 failed ('Traceback:'): kvsim cannot replay a "
                               "failed request; rerun the benchmark or drop it"));
}

TEST(MeasurementTest, BenchmarkServingTreatsZeroOutputTokensAsAFailedRequest) {
  const std::string path = WriteTempFile("zero_out.json",
                                         "{\"request_rate\": 2,\n"
                                         " \"input_lens\": [5, 6],\n"
                                         " \"output_lens\": [1,\n"
                                         "   0],\n"
                                         " \"ttfts\": [0.1, 0.1],\n"
                                         " \"itls\": [[], []]}\n");
  EXPECT_THAT(LoadError(path, MeasurementFormat::kBenchmarkServingJson),
              HasSubstr(path + ":4: request 1 failed (no output tokens): kvsim cannot replay"));
}

TEST(MeasurementTest, BenchmarkServingRejectsArraysOfDifferentLengths) {
  std::string text = BenchmarkJson("2");
  text.replace(text.find("[0.5, 0.75]"), 11, "[0.5]");
  const std::string path = WriteTempFile("lengths.json", text);
  EXPECT_THAT(LoadError(path, MeasurementFormat::kBenchmarkServingJson),
              HasSubstr(path + ":6: 'ttfts': has 1 entries but 'input_lens' has 2"));

  std::string errors = BenchmarkJson("2");
  errors.replace(errors.find("[\"\", \"\"]"), 8, "[\"\"]");
  const std::string errors_path = WriteTempFile("errors.json", errors);
  EXPECT_THAT(LoadError(errors_path, MeasurementFormat::kBenchmarkServingJson),
              HasSubstr(errors_path + ":8: 'errors': has 1 entries but 'input_lens' has 2"));
}

TEST(MeasurementTest, BenchmarkServingWithoutPerRequestArraysPointsAtSaveDetailed) {
  const std::string path = WriteTempFile(
      "summary_only.json", "{\"request_rate\": 2, \"burstiness\": 1.0, \"mean_ttft_ms\": 12.5}");
  const std::string message = LoadError(path, MeasurementFormat::kBenchmarkServingJson);
  EXPECT_THAT(message, HasSubstr(path + ":1: missing key 'input_lens'"));
  EXPECT_THAT(message, HasSubstr("--save-detailed"));
}

TEST(MeasurementTest, BenchmarkServingRejectsMalformedValuesNamingTheElement) {
  auto error_with = [](const std::string& name, const std::string& from, const std::string& to) {
    std::string text = BenchmarkJson("2");
    text.replace(text.find(from), from.size(), to);
    return LoadError(WriteTempFile(name, text), MeasurementFormat::kBenchmarkServingJson);
  };
  EXPECT_THAT(error_with("neg_itl.json", "[0.125, 0.125]", "[0.125, -0.125]"),
              HasSubstr(":7: 'itls[1][1]': a time in seconds must be >= 0, got -0.125"));
  EXPECT_THAT(error_with("nan_ttft.json", "[0.5, 0.75]", "[NaN, 0.75]"),
              HasSubstr(":6: 'ttfts[0]': expected a finite number, got nan"));
  EXPECT_THAT(error_with("neg_ttft.json", "[0.5, 0.75]", "[0.5, -1]"),
              HasSubstr(":6: 'ttfts[1]': a time in seconds must be >= 0, got -1"));
  EXPECT_THAT(error_with("zero_in.json", "[10, 20]", "[10, 0]"),
              HasSubstr(":4: 'input_lens[1]': a token count must be > 0, got 0"));
  EXPECT_THAT(error_with("itl_scalar.json", "[[0.25], [0.125, 0.125]]", "[0.25, [0.125]]"),
              HasSubstr(":7: 'itls[0]': expected an array, got a number"));
  EXPECT_THAT(error_with("burst.json", "\"backend\"", "\"burstiness\": 0, \"backend\""),
              HasSubstr(":3: 'burstiness': expected > 0, got 0"));
  EXPECT_THAT(error_with("duplicate.json", "\"backend\"", "\"input_lens\": [], \"backend\""),
              HasSubstr(":4: duplicate key 'input_lens'"));
}

TEST(MeasurementTest, BenchmarkServingWithNoRequestsIsAnError) {
  const std::string path = WriteTempFile(
      "none.json",
      "{\"request_rate\": 2,\n \"input_lens\": [], \"output_lens\": [], \"ttfts\": [], "
      "\"itls\": []}");
  EXPECT_THAT(LoadError(path, MeasurementFormat::kBenchmarkServingJson),
              HasSubstr(path + ":2: 'input_lens': no requests (the array is empty)"));
}

TEST(MeasurementTest, BenchmarkServingRejectsAnythingButOneObject) {
  const std::string array = WriteTempFile("array.json", "[1, 2]");
  EXPECT_THAT(LoadError(array, MeasurementFormat::kBenchmarkServingJson),
              HasSubstr(array + ":1: expected an object, got an array"));
  const std::string appended =
      WriteTempFile("appended.json", BenchmarkJson("2") + BenchmarkJson("4"));
  EXPECT_THAT(LoadError(appended, MeasurementFormat::kBenchmarkServingJson),
              HasSubstr(appended + ":10: malformed JSON at column 1: unexpected characters"));
}

// ---------------------------------------------------------------------------------------
// Per-request CSV

TEST(MeasurementTest, RequestsCsvFindsColumnsByNameAndSortsByRelativeArrival) {
  const MeasuredRequests run =
      LoadMeasuredRequests(DataFile("requests_small.csv"), MeasurementFormat::kRequestsCsv);
  EXPECT_EQ(run.format, MeasurementFormat::kRequestsCsv);
  EXPECT_TRUE(run.arrivals_recorded);
  ASSERT_EQ(run.requests.size(), 4u);
  // Arrivals 10.5, 10.0, 10.5, 12.0 become 0 (r1), 0.5 (r0), 0.5 (r2), 2.0 (r3).
  EXPECT_EQ(run.requests[0].arrival_s, 0.0);
  EXPECT_EQ(run.requests[0].prompt_tokens, 64);
  EXPECT_EQ(run.requests[0].output_tokens, 1);
  EXPECT_EQ(run.requests[0].ttft_s, 0.25);
  EXPECT_EQ(run.requests[0].e2e_s, 0.25);
  EXPECT_EQ(run.requests[1].arrival_s, 0.5);
  EXPECT_EQ(run.requests[1].prompt_tokens, 128);
  EXPECT_EQ(run.requests[1].output_tokens, 16);
  EXPECT_EQ(run.requests[1].ttft_s, 0.5);
  EXPECT_EQ(run.requests[1].e2e_s, 2.5);
  EXPECT_EQ(run.requests[2].arrival_s, 0.5);
  EXPECT_EQ(run.requests[2].prompt_tokens, 32) << "ties keep file order";
  EXPECT_EQ(run.requests[2].output_tokens, 40);
  EXPECT_EQ(run.requests[2].e2e_s, 4.0);
  EXPECT_EQ(run.requests[3].arrival_s, 2.0);
  EXPECT_EQ(run.requests[3].prompt_tokens, 256);
  EXPECT_EQ(run.requests[3].ttft_s, 0.125);
  EXPECT_EQ(run.requests[3].e2e_s, 1.125);
  for (const MeasuredRequest& r : run.requests) EXPECT_THAT(r.itls_s, IsEmpty());
}

TEST(MeasurementTest, RequestsCsvAcceptsCrlfSpacesAndIntegralDecimals) {
  const std::string path = WriteTempFile(
      "crlf.csv", "arrival_s, prompt_tokens ,output_tokens,ttft_s,e2e_s\r\n 3 , 12.0 ,4,0.5,1\r\n");
  const MeasuredRequests run = LoadMeasuredRequests(path, MeasurementFormat::kRequestsCsv);
  ASSERT_EQ(run.requests.size(), 1u);
  EXPECT_EQ(run.requests[0].arrival_s, 0.0);
  EXPECT_EQ(run.requests[0].prompt_tokens, 12);
  EXPECT_EQ(run.requests[0].output_tokens, 4);
  EXPECT_EQ(run.requests[0].e2e_s, 1.0);
}

TEST(MeasurementTest, RequestsCsvRejectsAHeaderWithoutARequiredColumn) {
  const std::string path =
      WriteTempFile("no_ttft.csv", "arrival_s,prompt_tokens,output_tokens,e2e_s\n0,1,1,1\n");
  EXPECT_THAT(LoadError(path, MeasurementFormat::kRequestsCsv),
              HasSubstr(path + ":1: missing column 'ttft_s' in the header"));
  const std::string commented = WriteTempFile(
      "commented.csv", "# run 7\narrival,prompt_tokens,output_tokens,ttft_s,e2e_s\n0,1,1,1,1\n");
  EXPECT_THAT(LoadError(commented, MeasurementFormat::kRequestsCsv),
              HasSubstr(commented + ":2: missing column 'arrival_s'"));
  const std::string twice = WriteTempFile(
      "twice.csv", "arrival_s,prompt_tokens,output_tokens,ttft_s,e2e_s,ttft_s\n0,1,1,1,1,1\n");
  EXPECT_THAT(LoadError(twice, MeasurementFormat::kRequestsCsv),
              HasSubstr(twice + ":1: column 'ttft_s' appears twice in the header"));
}

struct BadCsvCase {
  const char* name;
  const char* row;      // line 3; line 1 is the header and line 2 a good row
  const char* message;  // expected after "path:3: "
};

void PrintTo(const BadCsvCase& c, std::ostream* os) { *os << c.name; }

class RequestsCsvErrorTest : public ::testing::TestWithParam<BadCsvCase> {};

TEST_P(RequestsCsvErrorTest, NamesFileLineAndColumn) {
  const BadCsvCase& c = GetParam();
  const std::string path =
      WriteTempFile(std::string(c.name) + ".csv",
                    std::string("arrival_s,prompt_tokens,output_tokens,ttft_s,e2e_s\n"
                                "0,10,2,0.5,1\n") +
                        c.row + "\n1,10,2,0.5,1\n");
  EXPECT_THAT(LoadError(path, MeasurementFormat::kRequestsCsv),
              HasSubstr(path + ":3: " + c.message));
}

INSTANTIATE_TEST_SUITE_P(
    MalformedRows, RequestsCsvErrorTest,
    ::testing::Values(
        BadCsvCase{"NotANumber", "0,10,2,abc,1", "column 'ttft_s': 'abc' is not a number"},
        BadCsvCase{"EmptyField", "0,10,2,,1", "column 'ttft_s': '' is not a number"},
        BadCsvCase{"TrailingText", "0,10,2,0.5s,1", "column 'ttft_s': '0.5s' is not a number"},
        BadCsvCase{"TooFewFields", "0,10,2,0.5",
                   "expected 5 fields as in the header (line 1), got 4"},
        BadCsvCase{"TooManyFields", "0,10,2,0.5,1,9",
                   "expected 5 fields as in the header (line 1), got 6"},
        BadCsvCase{"NegativeArrival", "-1,10,2,0.5,1", "column 'arrival_s': '-1' is negative"},
        BadCsvCase{"NegativeTtft", "0,10,2,-0.5,1", "column 'ttft_s': '-0.5' is negative"},
        BadCsvCase{"InfiniteE2e", "0,10,2,0.5,inf", "column 'e2e_s': 'inf' is not a finite number"},
        BadCsvCase{"E2eBeforeTtft", "0,10,2,0.5,0.25", "e2e_s 0.25 is less than ttft_s 0.5"},
        BadCsvCase{"ZeroPrompt", "0,0,2,0.5,1",
                   "column 'prompt_tokens': a token count must be > 0, got '0'"},
        BadCsvCase{"NegativeOutput", "0,10,-2,0.5,1",
                   "column 'output_tokens': a token count must be > 0, got '-2'"},
        BadCsvCase{"FractionalTokens", "0,10.5,2,0.5,1",
                   "column 'prompt_tokens': '10.5' is not an integer token count"},
        BadCsvCase{"WordTokens", "0,ten,2,0.5,1",
                   "column 'prompt_tokens': 'ten' is not a number"}));

TEST(MeasurementTest, RequestsCsvRejectsARepeatedRequestIdNamingTheFirstLine) {
  const std::string csv = ReadText(DataFile("requests_small.csv"));
  ASSERT_EQ(csv.back(), '\n');
  const int lines = static_cast<int>(std::count(csv.begin(), csv.end(), '\n'));
  const int first_r2 = LineStartingWith(csv, "r2,");
  ASSERT_GT(first_r2, 0);
  const std::string path = WriteTempFile("repeat.csv", csv + "r2,1.0,4.0,32,40,10.5\n");
  EXPECT_THAT(LoadError(path, MeasurementFormat::kRequestsCsv),
              HasSubstr(fmt::format("{}:{}: request_id 'r2' repeats the request of line {}", path,
                                    lines + 1, first_r2)));
}

TEST(MeasurementTest, RequestsCsvRejectsAnEmptyRequestId) {
  const std::string path =
      WriteTempFile("empty_id.csv",
                    "request_id,arrival_s,prompt_tokens,output_tokens,ttft_s,e2e_s\n,0,1,1,1,1\n");
  EXPECT_THAT(LoadError(path, MeasurementFormat::kRequestsCsv),
              HasSubstr(path + ":2: column 'request_id': an empty request id"));
}

TEST(MeasurementTest, RequestsCsvWithoutARequestIdColumnAcceptsIdenticalRows) {
  const std::string path = WriteTempFile(
      "no_ids.csv", "arrival_s,prompt_tokens,output_tokens,ttft_s,e2e_s\n0,1,1,1,1\n0,1,1,1,1\n");
  EXPECT_EQ(LoadMeasuredRequests(path, MeasurementFormat::kRequestsCsv).requests.size(), 2u);
}

TEST(MeasurementTest, RequestsCsvRejectsARequestIdColumnNamedTwice) {
  const std::string path = WriteTempFile(
      "id_twice.csv",
      "request_id,arrival_s,prompt_tokens,output_tokens,ttft_s,e2e_s,request_id\na,0,1,1,1,1,a\n");
  EXPECT_THAT(LoadError(path, MeasurementFormat::kRequestsCsv),
              HasSubstr(path + ":1: column 'request_id' appears twice in the header"));
}

TEST(MeasurementTest, RequestsCsvWithoutRowsIsAnError) {
  const std::string header_only =
      WriteTempFile("header_only.csv",
                    "# nothing measured\n\narrival_s,prompt_tokens,output_tokens,ttft_s,e2e_s\n");
  EXPECT_THAT(LoadError(header_only, MeasurementFormat::kRequestsCsv),
              HasSubstr(header_only + ":3: no requests after the header"));
  const std::string empty = WriteTempFile("empty.csv", "");
  EXPECT_THAT(LoadError(empty, MeasurementFormat::kRequestsCsv),
              HasSubstr(empty + ":1: no header row"));
}

}  // namespace
}  // namespace kvsim
