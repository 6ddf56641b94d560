// Tests for vLLM benchmark_serving results as traces (format benchmark_serving): token
// counts in file order, detection from a .json file's top-level keys, failed requests
// skipped and counted, "inf" rates as arrivals at 0 s, the recorded arrival process, and
// errors that name path:line and the JSON key.
#include "sim/workload/benchmark_serving_trace.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
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

// A result as `vllm bench serve --save-result --save-detailed` writes it: one line.
constexpr const char* kResult =
    R"({"date": "20250101-120000", "backend": "vllm", "num_prompts": 3, "request_rate": 4.0, )"
    R"("burstiness": 0.5, "max_concurrency": null, "duration": 2.5, "completed": 3, )"
    R"("input_lens": [512, 64, 1000], "output_lens": [4, 1, 3], )"
    R"("ttfts": [0.25, 0.0625, 0.25], "itls": [[0.03125, 0.03125, 0.0625], [], [0.125]], )"
    R"("generated_texts": ["a b c d", "x", "p q r"], "errors": ["", "", ""]})"
    "\n";

// A result of `lens` (the JSON text of input_lens and output_lens) and `rest` (more
// members, each followed by ", ").
std::string Result(const std::string& input_lens, const std::string& output_lens,
                   const std::string& rest = R"("request_rate": 2, )") {
  return "{" + rest + R"("input_lens": )" + input_lens + R"(, "output_lens": )" + output_lens +
         "}\n";
}

TEST(BenchmarkServingTrace, ReadsTokenCountsInFileOrderWithoutArrivals) {
  const std::string path = WriteTraceFile("result.json", kResult);
  std::unique_ptr<TraceReader> reader = OpenTrace(path, TraceFormat::kBenchmarkServing);
  EXPECT_EQ(reader->format(), TraceFormat::kBenchmarkServing);
  EXPECT_FALSE(reader->has_arrivals());
  const std::vector<TraceRecord> r = ReadRecords(*reader);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].prompt_tokens, 512);
  EXPECT_EQ(r[0].output_tokens, 4);
  EXPECT_EQ(r[1].prompt_tokens, 64);
  EXPECT_EQ(r[1].output_tokens, 1);
  EXPECT_EQ(r[2].prompt_tokens, 1000);
  EXPECT_EQ(r[2].output_tokens, 3);
  for (const TraceRecord& record : r) {
    EXPECT_FALSE(record.arrival_s.has_value());
    EXPECT_EQ(record.line, 1);  // the whole result is one line
  }
  EXPECT_EQ(reader->skipped_rows(), 0);
  EXPECT_FALSE(reader->Next().has_value()) << "stays at the end";
}

TEST(BenchmarkServingTrace, IsDetectedFromTheTopLevelKeysOfAJsonFile) {
  for (const char* name : {"result.json", "RESULT.JSON"}) {
    const std::string path = WriteTraceFile(name, kResult);
    EXPECT_EQ(DetectTraceFormat(path), TraceFormat::kBenchmarkServing) << name;
    EXPECT_EQ(ReadRecords(path, TraceFormat::kAuto).size(), 3u) << name;
  }
  // Not from other extensions, nor from keys one level down.
  const std::string txt = WriteTraceFile("result.txt", kResult);
  EXPECT_THAT(TraceError(txt, TraceFormat::kAuto), HasSubstr(":1: cannot detect trace format"));
  const std::string nested = WriteTraceFile(
      "nested.json", R"({"run": {"input_lens": [1], "output_lens": [1], "request_rate": 1}})");
  EXPECT_THAT(TraceError(nested, TraceFormat::kAuto), HasSubstr(":1: cannot detect trace format"));
}

TEST(BenchmarkServingTrace, DetectionStillFindsJsonLinesNamedDotJson) {
  const std::string path =
      WriteTraceFile("mooncake.json",
                     "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 2}\n"
                     "{\"timestamp\": 10, \"input_length\": 6, \"output_length\": 3}\n");
  EXPECT_EQ(DetectTraceFormat(path), TraceFormat::kMooncake);
}

TEST(BenchmarkServingTrace, DetectionOfMalformedJsonReportsTheJsonError) {
  const std::string path = WriteTraceFile("broken.json", "{\"input_lens\": [1, 2,\n\"x\"");
  const std::string message = TraceError(path, TraceFormat::kAuto);
  EXPECT_THAT(message, HasSubstr(path + ":2: malformed JSON at column"));
  EXPECT_THAT(message, HasSubstr("read as a vLLM benchmark_serving result"));
}

TEST(BenchmarkServingTrace, GivesEachRequestTheLineOfItsInputLength) {
  const std::string path = WriteTraceFile("pretty.json",
                                          "{\n"
                                          "  \"request_rate\": 2,\n"
                                          "  \"input_lens\": [\n"
                                          "    10,\n"
                                          "    20\n"
                                          "  ],\n"
                                          "  \"output_lens\": [1, 2]\n"
                                          "}\n");
  const std::vector<TraceRecord> r = ReadRecords(path, TraceFormat::kAuto);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].line, 4);
  EXPECT_EQ(r[1].line, 5);
}

TEST(BenchmarkServingTrace, SkipsFailedRequestsCountingThem) {
  const std::string path = WriteTraceFile(
      "failed.json",
      Result("[10, 20, 30, 40]", "[1, 5, 0, 4]",
             R"("request_rate": 2, "errors": ["", "Traceback:\nTimeout", null, ""], )"));
  std::unique_ptr<TraceReader> reader = OpenTrace(path, TraceFormat::kAuto);
  const std::vector<TraceRecord> r = ReadRecords(*reader);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].prompt_tokens, 10);
  EXPECT_EQ(r[1].prompt_tokens, 40);
  EXPECT_EQ(r[1].output_tokens, 4);
  EXPECT_EQ(reader->skipped_rows(), 2);
  EXPECT_STREQ(reader->skipped_rows_reason(), "failed requests (an error or 0 output tokens)");
}

TEST(BenchmarkServingTrace, AnInfiniteRateSendsEveryRequestAtZeroSeconds) {
  for (const char* rate : {R"("inf")", R"("Infinity")", "Infinity"}) {
    SCOPED_TRACE(rate);
    const std::string path = WriteTraceFile(
        "inf.json", Result("[3, 4]", "[5, 6]", std::string(R"("request_rate": )") + rate + ", "));
    std::unique_ptr<TraceReader> reader = OpenTrace(path, TraceFormat::kBenchmarkServing);
    EXPECT_TRUE(reader->has_arrivals());
    const std::vector<TraceRecord> r = ReadRecords(*reader);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].arrival_s, 0.0);
    EXPECT_EQ(r[1].arrival_s, 0.0);
  }
}

TEST(BenchmarkServingTrace, ChecksTheKeysItDoesNotKeepAsJsonAllTheSame) {
  const std::string bad = WriteTraceFile(
      "bad_itls.json", Result("[1]", "[1]", "\"request_rate\": 2, \"itls\": [[0.1,]], "));
  EXPECT_THAT(TraceError(bad, TraceFormat::kBenchmarkServing),
              HasSubstr(bad + ":1: malformed JSON at column"));
  const std::string twice = WriteTraceFile(
      "twice.json", Result("[1]", "[1]", R"("request_rate": 2, "meta": {"a": 1, "a": 2}, )"));
  EXPECT_THAT(TraceError(twice, TraceFormat::kBenchmarkServing),
              HasSubstr(twice + ":1: duplicate key 'a'"));
}

TEST(BenchmarkServingTrace, RefusesBadContentNamingTheLineAndKey) {
  const struct {
    std::string text;
    const char* what;
  } cases[] = {
      {R"({"request_rate": 2, "input_lens": [1]})", "missing key 'output_lens'"},
      {R"({"request_rate": 2, "output_lens": [1]})", "missing key 'input_lens'"},
      {Result("[1, 2, 3]", "[1, 2]"), "'output_lens': has 2 entries but 'input_lens' has 3"},
      {Result("[1, 0]", "[1, 2]"), "'input_lens[1]': token count must be >= 1, got 0"},
      {Result("[-3]", "[1]"), "'input_lens[0]': negative token count -3"},
      {Result("[1]", "[-1]"), "'output_lens[0]': negative token count -1"},
      {Result("[1.5]", "[1]"), "'input_lens[0]': expected an integer literal"},
      {Result("[1]", "[1]", R"("request_rate": 2, "errors": [7], )"),
       "'errors[0]': expected a string, got a number"},
      {Result("[1]", "[1]", R"("request_rate": 2, "errors": [], )"),
       "'errors': has 0 entries but 'input_lens' has 1"},
      {Result("[1]", "[1]", R"("request_rate": "fast", )"),
       "'request_rate': expected a number or \"inf\", got \"fast\""},
      {Result("[1]", "[1]", R"("request_rate": 0, )"),
       "'request_rate': expected a rate > 0 requests/s, got 0"},
      {"[1, 2]", "expected an object, got an array"},
      {Result("\"many\"", "[1]"), "'input_lens': expected an array, got a string"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    const std::string path = WriteTraceFile("bad.json", c.text);
    ExpectTraceErrorAt(path, TraceFormat::kBenchmarkServing, 1, c.what);
  }
  const std::string pretty = WriteTraceFile("pretty_bad.json",
                                            "{\"request_rate\": 2,\n\"input_lens\": [\n5,\n-3],\n"
                                            "\"output_lens\": [1, 1]}\n");
  ExpectTraceErrorAt(pretty, TraceFormat::kBenchmarkServing, 4,
                     "'input_lens[1]': negative token count -3");
}

TEST(BenchmarkServingTrace, WithoutARequestRateIsALengthsTrace) {
  const std::string path = WriteTraceFile("no_rate.json", Result("[7]", "[8]", ""));
  std::unique_ptr<TraceReader> reader = OpenTrace(path, TraceFormat::kAuto);
  EXPECT_FALSE(reader->has_arrivals());
  EXPECT_EQ(ReadRecords(*reader).size(), 1u);
}

// ---------------------------------------------------------------------------------------
// The arrival process a result records

TEST(BenchmarkServingArrivals, AreTheRequestRateAndBurstinessOfTheRun) {
  const BenchmarkServingArrivals a =
      ReadBenchmarkServingArrivals(WriteTraceFile("result.json", kResult));
  EXPECT_EQ(a.request_rate_qps, 4.0);
  EXPECT_EQ(a.burstiness, 0.5);
  EXPECT_EQ(a.burstiness_line, 1);
  const BenchmarkServingArrivals poisson =
      ReadBenchmarkServingArrivals(WriteTraceFile("poisson.json", Result("[1]", "[1]")));
  EXPECT_EQ(poisson.request_rate_qps, 2.0);
  EXPECT_EQ(poisson.burstiness, 1.0);  // absent: Poisson
  const BenchmarkServingArrivals at_once = ReadBenchmarkServingArrivals(
      WriteTraceFile("inf.json", Result("[1]", "[1]", R"("request_rate": "inf", )")));
  EXPECT_TRUE(std::isinf(at_once.request_rate_qps));
}

TEST(BenchmarkServingArrivals, RefuseARunThatWasNotOpenLoopAtOneRate) {
  const std::string closed = WriteTraceFile(
      "closed.json", Result("[1]", "[1]", R"("request_rate": 2, "max_concurrency": 8, )"));
  const std::string message = InputErrorMessage([&] { ReadBenchmarkServingArrivals(closed); });
  EXPECT_THAT(message, HasSubstr(closed + ":1: 'max_concurrency': the run was limited to 8 "
                                          "concurrent requests"));
  EXPECT_THAT(message, HasSubstr("set workload.arrival.process"));
  const std::string ramped = WriteTraceFile(
      "ramped.json", Result("[1]", "[1]", R"("request_rate": 2, "ramp_up_strategy": "linear", )"));
  EXPECT_THAT(InputErrorMessage([&] { ReadBenchmarkServingArrivals(ramped); }),
              HasSubstr("'ramp_up_strategy': the request rate was ramped"));
}

TEST(BenchmarkServingArrivals, RefuseADirectoryOrAMissingFile) {
  const kvsim::testing::TempDir dir;
  EXPECT_THAT(InputErrorMessage([&] { ReadBenchmarkServingArrivals(dir.path().string()); }),
              HasSubstr(dir.path().string() + ": is a directory, not a trace file"));
  const std::string missing = dir.PathOf("missing.json");
  EXPECT_THAT(InputErrorMessage([&] { ReadBenchmarkServingArrivals(missing); }),
              HasSubstr(missing + ":1: cannot open trace file"));
}

TEST(BenchmarkServingArrivals, NeedARequestRateAndAPositiveBurstiness) {
  const std::string no_rate = WriteTraceFile("no_rate.json", Result("[1]", "[1]", ""));
  EXPECT_THAT(InputErrorMessage([&] { ReadBenchmarkServingArrivals(no_rate); }),
              HasSubstr(no_rate + ":1: missing key 'request_rate'"));
  const std::string zero =
      WriteTraceFile("zero.json", Result("[1]", "[1]", R"("request_rate": 2, "burstiness": 0, )"));
  EXPECT_THAT(InputErrorMessage([&] { ReadBenchmarkServingArrivals(zero); }),
              HasSubstr("'burstiness': expected > 0, got 0"));
}

// ---------------------------------------------------------------------------------------
// Through a Workload

TEST(BenchmarkServingTrace, GivesAWorkloadItsLengthsWithSyntheticArrivals) {
  WorkloadConfig c;
  c.trace_path = WriteTraceFile("result.json", kResult);
  c.trace_format = TraceFormat::kBenchmarkServing;
  c.arrival = ArrivalProcess::kPoisson;
  c.rate_qps = 4;
  Workload workload(c);
  std::vector<RequestSpec> requests;
  while (std::optional<RequestSpec> r = workload.Next()) requests.push_back(*r);
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[2].prompt_tokens, 1000);
  EXPECT_GT(requests[2].arrival, requests[0].arrival);
}

TEST(BenchmarkServingTrace, GivesNoTraceArrivalsAtAFiniteRate) {
  WorkloadConfig c;
  c.trace_path = WriteTraceFile("result.json", kResult);
  EXPECT_THAT(InputErrorMessage([&] { Workload w(c); }),
              HasSubstr("is a length-only (benchmark_serving) trace"));
}

TEST(BenchmarkServingTrace, GivesTraceArrivalsAllAtZeroAtAnInfiniteRate) {
  WorkloadConfig c;
  c.trace_path =
      WriteTraceFile("inf.json", Result("[3, 4, 5]", "[1, 1, 1]", R"("request_rate": "inf", )"));
  Workload workload(c);
  int n = 0;
  while (std::optional<RequestSpec> r = workload.Next()) {
    EXPECT_EQ(r->arrival, Nanos(0));
    ++n;
  }
  EXPECT_EQ(n, 3);
}

// Drains a Workload of the result at `path`, at Poisson arrivals; returns its InputError.
std::string PoissonWorkloadError(const std::string& path) {
  WorkloadConfig c;
  c.trace_path = path;
  c.arrival = ArrivalProcess::kPoisson;
  c.rate_qps = 4;
  return InputErrorMessage([&] {
    Workload workload(c);
    while (workload.Next()) {
    }
  });
}

TEST(BenchmarkServingTrace, WithEmptyLengthListsIsAnErrorNamingTheFileAndLine) {
  const std::string path = WriteTraceFile(
      "empty.json", "{\"request_rate\": 2,\n \"input_lens\": [],\n \"output_lens\": []}\n");
  EXPECT_EQ(PoissonWorkloadError(path),
            path + ":2: 'input_lens': no requests (the array is empty)");
}

TEST(BenchmarkServingTrace, WhoseRequestsAllFailedIsAnErrorSayingSo) {
  const std::string path = WriteTraceFile(
      "all_failed.json",
      Result("[10, 20]", "[0, 5]", R"("request_rate": 2, "errors": ["", "Timeout"], )"));
  EXPECT_EQ(PoissonWorkloadError(path),
            path +
                ":1: 'input_lens': no requests; all 2 rows were skipped as failed requests (an "
                "error or 0 output tokens)");
}

}  // namespace
}  // namespace kvsim
