// Tests for Workload: synthetic and trace arrival processes, length sources, truncation,
// determinism, and configuration errors that name their key path.
#include "sim/workload/workload.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
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

std::string TestData(const std::string& name) {
  return std::string(KVSIM_TEST_DATA_DIR "/workload/") + name;
}

std::vector<RequestSpec> Drain(const WorkloadConfig& config) {
  Workload workload(config);
  std::vector<RequestSpec> requests;
  while (std::optional<RequestSpec> r = workload.Next()) requests.push_back(std::move(*r));
  return requests;
}

std::vector<double> ArrivalSeconds(const std::vector<RequestSpec>& requests) {
  std::vector<double> s;
  for (const RequestSpec& r : requests) s.push_back(ToSeconds(r.arrival));
  return s;
}

// Mean rate over a run: (n - 1) requests after the first, over the time they span.
double MeasuredRate(const std::vector<RequestSpec>& requests) {
  return static_cast<double>(requests.size() - 1) /
         ToSeconds(requests.back().arrival - requests.front().arrival);
}

struct GapStats {
  double mean;  // seconds
  double cv;    // standard deviation / mean
};

// Mean and coefficient of variation of the gaps between consecutive arrivals `t`.
GapStats Gaps(const std::vector<double>& t) {
  double sum = 0, sum_sq = 0;
  for (size_t i = 1; i < t.size(); ++i) {
    const double gap = t[i] - t[i - 1];
    sum += gap;
    sum_sq += gap * gap;
  }
  const double n = static_cast<double>(t.size() - 1);
  const double mean = sum / n;
  return {mean, std::sqrt(sum_sq / n - mean * mean) / mean};
}

// The InputError message of constructing a Workload from `c` (fails the test if it
// constructs).
std::string ConstructionError(const WorkloadConfig& c) {
  return InputErrorMessage([&] { Workload w(c); });
}

void ExpectWellFormed(const std::vector<RequestSpec>& requests) {
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_EQ(requests[i].id, static_cast<int64_t>(i));
    ASSERT_GE(requests[i].prompt_tokens, 1);
    ASSERT_GE(requests[i].output_tokens, 1);
    if (i > 0) {
      ASSERT_GE(requests[i].arrival, requests[i - 1].arrival) << "request " << i;
    }
  }
}

WorkloadConfig SyntheticConfig(ArrivalProcess arrival, double rate_qps, int64_t n) {
  WorkloadConfig c;
  c.arrival = arrival;
  c.rate_qps = rate_qps;
  c.lengths = LengthSource::kFixed;
  c.fixed_prompt_tokens = 128;
  c.fixed_output_tokens = 16;
  c.max_requests = n;
  c.seed = 1;
  return c;
}

// ---------------------------------------------------------------------------------------
// Arrival processes

TEST(PoissonArrivals, MatchTheNominalRateWithinTwoPercent) {
  const std::vector<RequestSpec> r = Drain(SyntheticConfig(ArrivalProcess::kPoisson, 50.0, 20'000));
  ASSERT_EQ(r.size(), 20'000u);
  ExpectWellFormed(r);
  EXPECT_NEAR(MeasuredRate(r), 50.0, 1.0);
  // The first request arrives after one gap, not at time zero.
  EXPECT_GT(r.front().arrival, Nanos(0));
  EXPECT_EQ(r[7].prompt_tokens, 128);
  EXPECT_EQ(r[7].output_tokens, 16);
}

TEST(PoissonArrivals, HaveExponentialGapsWithUnitCoefficientOfVariation) {
  const GapStats gaps =
      Gaps(ArrivalSeconds(Drain(SyntheticConfig(ArrivalProcess::kPoisson, 10.0, 50'000))));
  EXPECT_NEAR(gaps.cv, 1.0, 0.03);
}

TEST(GammaArrivals, MatchTheRequestedRateAndCoefficientOfVariation) {
  for (double cv : {0.5, 2.0}) {
    SCOPED_TRACE(cv);
    WorkloadConfig c = SyntheticConfig(ArrivalProcess::kGamma, 20.0, 50'000);
    c.cv = cv;
    const std::vector<RequestSpec> r = Drain(c);
    ExpectWellFormed(r);
    const GapStats gaps = Gaps(ArrivalSeconds(r));
    EXPECT_NEAR(1 / gaps.mean, 20.0, 0.05 * 20.0);
    EXPECT_NEAR(gaps.cv, cv, 0.05 * cv);
  }
}

TEST(TraceArrivals, ReplayTheRecordedTimesFromZero) {
  WorkloadConfig c;
  c.trace_path = TestData("five_rows_splitwise.csv");
  const std::vector<RequestSpec> r = Drain(c);
  ASSERT_EQ(r.size(), 5u);
  ExpectWellFormed(r);
  const std::vector<int64_t> expected_ms = {0, 500, 1000, 2000, 4000};
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].arrival, std::chrono::milliseconds(expected_ms[i])) << i;
    EXPECT_EQ(r[i].prompt_tokens, 100 * static_cast<int64_t>(i + 1));
    EXPECT_EQ(r[i].output_tokens, 10 * static_cast<int64_t>(i + 1));
  }
}

TEST(TraceArrivals, ReplayAzureWallClockTimes) {
  WorkloadConfig c;
  c.trace_path = BundledTrace("AzureLLMInferenceTrace_conv.csv");
  c.max_requests = 3;
  const std::vector<RequestSpec> r = Drain(c);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].arrival, Nanos(0));
  EXPECT_EQ(r[1].arrival, Nanos(4'314'579'000));
  EXPECT_EQ(r[2].arrival, Nanos(4'541'877'000));
  EXPECT_EQ(r[2].prompt_tokens, 879);
}

TEST(TraceArrivals, AreTimeScaledToTheTargetRate) {
  WorkloadConfig c;
  c.trace_path = TestData("five_rows_splitwise.csv");
  c.rate_qps = 2.0;  // recorded: 4 gaps over 4 s = 1 req/s
  const std::vector<RequestSpec> r = Drain(c);
  ASSERT_EQ(r.size(), 5u);
  const std::vector<int64_t> expected_ms = {0, 250, 500, 1000, 2000};
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].arrival, std::chrono::milliseconds(expected_ms[i])) << i;
  }
}

TEST(TraceArrivals, ScaledWholeTraceRunsAtTheTargetRate) {
  WorkloadConfig c;
  c.trace_path = BundledTrace("splitwise_conv.csv");
  c.rate_qps = 20.0;  // recorded: about 5.53 req/s
  const std::vector<RequestSpec> r = Drain(c);
  ASSERT_EQ(r.size(), 19'366u);
  ExpectWellFormed(r);
  EXPECT_EQ(r.front().arrival, Nanos(0));
  EXPECT_NEAR(MeasuredRate(r), 20.0, 20.0 * 1e-6);
}

TEST(TraceArrivals, ScalingMeasuresTheRateOfOnlyTheRowsUsed) {
  WorkloadConfig c;
  c.trace_path = BundledTrace("splitwise_conv.csv");
  c.max_requests = 1000;
  const double recorded_rate = MeasuredRate(Drain(c));
  // The first 1000 rows do not arrive at the whole trace's 5.53 req/s.
  ASSERT_GT(std::fabs(recorded_rate - 5.53), 0.2);

  c.rate_qps = 12.0;
  const std::vector<RequestSpec> r = Drain(c);
  ASSERT_EQ(r.size(), 1000u);
  EXPECT_NEAR(MeasuredRate(r), 12.0, 12.0 * 1e-6);
}

TEST(TraceArrivals, CannotBeScaledWhenTheUsedRowsSpanNoTime) {
  WorkloadConfig c;
  c.trace_path = TestData("five_rows_splitwise.csv");
  c.rate_qps = 3.0;
  c.max_requests = 1;
  EXPECT_THAT(ConstructionError(c), HasSubstr("workload.arrival.rate_qps"));
}

TEST(TraceArrivals, AreRejectedForALengthOnlyTrace) {
  WorkloadConfig c;
  c.trace_path = BundledTrace("sharegpt_8k_filtered_stats_llama2_tokenizer.csv");
  const std::string message = ConstructionError(c);
  EXPECT_THAT(message, HasSubstr("workload.arrival.process"));
  EXPECT_THAT(message, HasSubstr("length-only"));
}

TEST(TraceArrivals, CanCarrySyntheticLengths) {
  WorkloadConfig c;
  c.trace_path = TestData("five_rows_splitwise.csv");
  c.lengths = LengthSource::kUniform;
  c.min_prompt_tokens = 7;
  c.max_prompt_tokens = 9;
  c.min_output_tokens = 1;
  c.max_output_tokens = 2;
  c.max_requests = 10;
  const std::vector<RequestSpec> r = Drain(c);
  ASSERT_EQ(r.size(), 5u) << "the trace's rows end the arrivals";
  EXPECT_EQ(r[4].arrival, std::chrono::seconds(4));
  for (const RequestSpec& q : r) {
    EXPECT_GE(q.prompt_tokens, 7);
    EXPECT_LE(q.prompt_tokens, 9);
    EXPECT_TRUE(q.hash_ids.empty());
  }
}

// ---------------------------------------------------------------------------------------
// Length sources and truncation

TEST(TraceLengths, ComeInOrderAndEndTheWorkload) {
  WorkloadConfig c;
  c.trace_path = TestData("three_rows_lengths.csv");
  c.arrival = ArrivalProcess::kPoisson;
  c.rate_qps = 4.0;
  const std::vector<RequestSpec> r = Drain(c);
  ASSERT_EQ(r.size(), 3u);
  ExpectWellFormed(r);
  EXPECT_EQ(r[0].prompt_tokens, 100);
  EXPECT_EQ(r[1].prompt_tokens, 200);
  EXPECT_EQ(r[2].prompt_tokens, 300);
  EXPECT_EQ(r[2].output_tokens, 30);
}

TEST(TraceLengths, CarryMooncakeHashIds) {
  WorkloadConfig c;
  c.trace_path = TestData("three_rows_mooncake.jsonl");
  const std::vector<RequestSpec> r = Drain(c);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].hash_ids, (std::vector<uint64_t>{11, 12}));
  EXPECT_EQ(r[1].hash_ids, (std::vector<uint64_t>{11}));
  EXPECT_EQ(r[2].hash_ids, (std::vector<uint64_t>{11, 12, 13}));
  EXPECT_EQ(r[1].arrival, std::chrono::milliseconds(250));
  EXPECT_EQ(r[2].arrival, std::chrono::milliseconds(1000));
  EXPECT_EQ(r[2].prompt_tokens, 1025);
  EXPECT_EQ(r[2].output_tokens, 1);
}

TEST(MaxRequests, TruncatesTheTrace) {
  WorkloadConfig c;
  c.trace_path = BundledTrace("splitwise_conv.csv");
  c.max_requests = 100;
  const std::vector<RequestSpec> r = Drain(c);
  ASSERT_EQ(r.size(), 100u);
  ExpectWellFormed(r);
  EXPECT_EQ(r.back().id, 99);
}

TEST(MaxRequests, BoundsSyntheticWorkloads) {
  EXPECT_EQ(Drain(SyntheticConfig(ArrivalProcess::kPoisson, 5.0, 37)).size(), 37u);
  EXPECT_EQ(Drain(SyntheticConfig(ArrivalProcess::kGamma, 5.0, 1)).size(), 1u);
}

TEST(UniformLengths, StayWithinTheirInclusiveBoundsAndReachBothEnds) {
  WorkloadConfig c = SyntheticConfig(ArrivalProcess::kPoisson, 5.0, 5000);
  c.lengths = LengthSource::kUniform;
  c.min_prompt_tokens = 10;
  c.max_prompt_tokens = 20;
  c.min_output_tokens = 3;
  c.max_output_tokens = 5;
  std::set<int64_t> prompts, outputs;
  for (const RequestSpec& r : Drain(c)) {
    prompts.insert(r.prompt_tokens);
    outputs.insert(r.output_tokens);
  }
  EXPECT_EQ(prompts.size(), 11u);
  EXPECT_EQ(*prompts.begin(), 10);
  EXPECT_EQ(*prompts.rbegin(), 20);
  EXPECT_EQ(outputs, (std::set<int64_t>{3, 4, 5}));
}

TEST(ResampledLengths, DrawOnlyPairsPresentInTheTrace) {
  const std::string trace = BundledTrace("sharegpt_8k_filtered_stats_llama2_tokenizer.csv");
  std::set<std::pair<int64_t, int64_t>> in_trace;
  {
    std::unique_ptr<TraceReader> reader = OpenTrace(trace, TraceFormat::kAuto);
    while (std::optional<TraceRecord> r = reader->Next()) {
      in_trace.emplace(r->prompt_tokens, r->output_tokens);
    }
  }
  WorkloadConfig c = SyntheticConfig(ArrivalProcess::kPoisson, 5.0, 5000);
  c.trace_path = trace;
  c.lengths = LengthSource::kResample;
  std::set<std::pair<int64_t, int64_t>> drawn;
  for (const RequestSpec& r : Drain(c)) {
    ASSERT_TRUE(in_trace.count({r.prompt_tokens, r.output_tokens}))
        << r.prompt_tokens << "," << r.output_tokens;
    drawn.emplace(r.prompt_tokens, r.output_tokens);
  }
  // 5000 draws with replacement from ~24k distinct pairs: mostly distinct.
  EXPECT_GT(drawn.size(), 4000u);
}

TEST(ResampledLengths, CanFollowTraceArrivals) {
  WorkloadConfig c;
  c.trace_path = TestData("five_rows_splitwise.csv");
  c.lengths = LengthSource::kResample;
  c.max_requests = 3;
  const std::vector<RequestSpec> r = Drain(c);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[2].arrival, std::chrono::seconds(1));
  for (const RequestSpec& q : r) EXPECT_EQ(q.prompt_tokens, 10 * q.output_tokens);
}

// ---------------------------------------------------------------------------------------
// Determinism

TEST(Workload, SameSeedGivesIdenticalRequests) {
  WorkloadConfig c = SyntheticConfig(ArrivalProcess::kGamma, 8.0, 2000);
  c.cv = 1.7;
  c.lengths = LengthSource::kUniform;
  c.max_prompt_tokens = 4096;
  c.max_output_tokens = 512;
  c.seed = 99;
  const std::vector<RequestSpec> a = Drain(c);
  const std::vector<RequestSpec> b = Drain(c);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].arrival, b[i].arrival) << i;
    ASSERT_EQ(a[i].prompt_tokens, b[i].prompt_tokens) << i;
    ASSERT_EQ(a[i].output_tokens, b[i].output_tokens) << i;
  }
  c.seed = 100;
  const std::vector<RequestSpec> other = Drain(c);
  int same_arrivals = 0, same_prompts = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    same_arrivals += a[i].arrival == other[i].arrival;
    same_prompts += a[i].prompt_tokens == other[i].prompt_tokens;
  }
  EXPECT_LT(same_arrivals, 10);
  EXPECT_LT(same_prompts, 10);
}

TEST(Workload, ArrivalsDoNotDependOnTheLengthSource) {
  WorkloadConfig fixed = SyntheticConfig(ArrivalProcess::kPoisson, 3.0, 500);
  WorkloadConfig uniform = fixed;
  uniform.lengths = LengthSource::kUniform;
  uniform.max_prompt_tokens = 100;
  uniform.max_output_tokens = 100;
  EXPECT_EQ(ArrivalSeconds(Drain(fixed)), ArrivalSeconds(Drain(uniform)));
}

TEST(Workload, SurfacesTraceErrorsFromNext) {
  const TempDir dir;
  const std::string path = dir.Write(
      "bad_row.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,5,1\n1.0,five,1\n");
  WorkloadConfig c;
  c.trace_path = path;
  Workload w(c);
  ASSERT_TRUE(w.Next().has_value());
  EXPECT_THAT(InputErrorMessage([&] { w.Next(); }), HasSubstr(path + ":3: "));
}

// The InputError message of draining a Workload from `c`, from its construction or from
// any Next() (fails the test if it drains cleanly).
std::string DrainError(const WorkloadConfig& c) {
  return InputErrorMessage([&] { Drain(c); });
}

TEST(Workload, RefusesATraceWithOnlyAHeaderNamingItsFileAndLine) {
  const TempDir dir;
  WorkloadConfig c;
  c.trace_path =
      dir.Write("header_only.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n\n");
  EXPECT_EQ(DrainError(c), c.trace_path + ":1: no requests after the header");
}

TEST(Workload, RefusesAnEmptyTraceWhateverReadsIt) {
  const TempDir dir;
  WorkloadConfig scaled;  // trace arrivals time-scaled: the rate is measured first
  scaled.trace_path = dir.Write("scaled.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n");
  scaled.rate_qps = 2;
  EXPECT_EQ(DrainError(scaled), scaled.trace_path + ":1: no requests after the header");

  WorkloadConfig resampled = SyntheticConfig(ArrivalProcess::kPoisson, 1, 5);
  resampled.lengths = LengthSource::kResample;
  resampled.trace_path = dir.Write("pool.csv", "num_prefill_tokens,num_decode_tokens\n");
  EXPECT_EQ(DrainError(resampled), resampled.trace_path + ":1: no requests after the header");

  WorkloadConfig sessions;
  sessions.trace_path = dir.Write("sessions.csv", "num_prefill_tokens,num_decode_tokens\n");
  sessions.arrival = ArrivalProcess::kPoisson;
  sessions.rate_qps = 1;
  sessions.sessions = {.turns = 2, .think_time_s = 1};
  EXPECT_EQ(DrainError(sessions), sessions.trace_path + ":1: no requests after the header");
}

TEST(Workload, RefusesAMooncakeTraceOfBlankLinesNamingTheFile) {
  const TempDir dir;
  WorkloadConfig c;
  c.trace_path = dir.Write("blank.jsonl", "\n  \n");
  c.trace_format = TraceFormat::kMooncake;
  EXPECT_EQ(DrainError(c), c.trace_path + ":1: no requests (the file has no JSON lines)");
}

TEST(Workload, StillEndsATraceThatRunsOutAfterItsFirstRequest) {
  const TempDir dir;
  WorkloadConfig c;
  c.trace_path =
      dir.Write("one_row.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n0.5,5,1\n");
  EXPECT_EQ(Drain(c).size(), 1u);
}

// ---------------------------------------------------------------------------------------
// Validation

// Returns the InputError message of ValidateWorkloadConfig, or "" when it accepts.
std::string ValidationError(const WorkloadConfig& c) {
  try {
    ValidateWorkloadConfig(c, "sim.workload");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(ValidateWorkloadConfig, AcceptsConsistentConfigs) {
  WorkloadConfig trace;
  trace.trace_path = "any.csv";
  EXPECT_EQ(ValidationError(trace), "");
  EXPECT_EQ(ValidationError(SyntheticConfig(ArrivalProcess::kGamma, 1.0, 10)), "");
  WorkloadConfig resample = SyntheticConfig(ArrivalProcess::kPoisson, 1.0, 10);
  resample.trace_path = "any.csv";
  resample.lengths = LengthSource::kResample;
  EXPECT_EQ(ValidationError(resample), "");
}

TEST(ValidateWorkloadConfig, NamesTheKeyPathOfEachProblem) {
  const struct {
    const char* key;
    std::function<void(WorkloadConfig&)> mutate;
  } cases[] = {
      {"sim.workload.arrival.rate_qps: ", [](WorkloadConfig& c) { c.rate_qps = 0; }},
      {"sim.workload.arrival.rate_qps: ",
       [](WorkloadConfig& c) {
         c.arrival = ArrivalProcess::kGamma;
         c.rate_qps = -1;
       }},
      {"sim.workload.arrival.cv: ",
       [](WorkloadConfig& c) {
         c.arrival = ArrivalProcess::kGamma;
         c.cv = 0;
       }},
      {"sim.workload.trace: ", [](WorkloadConfig& c) { c.arrival = ArrivalProcess::kTrace; }},
      {"sim.workload.arrival.rate_qps: ",
       [](WorkloadConfig& c) {
         c.arrival = ArrivalProcess::kTrace;
         c.trace_path = "t.csv";
         c.rate_qps = -2;
       }},
      {"sim.workload.arrival.process: ",
       [](WorkloadConfig& c) {
         c.arrival = ArrivalProcess::kTrace;
         c.trace_path = "t.csv";
         c.trace_format = TraceFormat::kLengths;
       }},
      {"sim.workload.trace: ", [](WorkloadConfig& c) { c.lengths = LengthSource::kTrace; }},
      {"sim.workload.trace: ", [](WorkloadConfig& c) { c.lengths = LengthSource::kResample; }},
      {"sim.workload.lengths.prompt_tokens: ",
       [](WorkloadConfig& c) { c.fixed_prompt_tokens = 0; }},
      {"sim.workload.lengths.output_tokens: ",
       [](WorkloadConfig& c) { c.fixed_output_tokens = -1; }},
      {"sim.workload.lengths.min_prompt_tokens: ",
       [](WorkloadConfig& c) {
         c.lengths = LengthSource::kUniform;
         c.min_prompt_tokens = 0;
         c.max_prompt_tokens = 10;
         c.max_output_tokens = 10;
       }},
      {"sim.workload.lengths.max_prompt_tokens: ",
       [](WorkloadConfig& c) {
         c.lengths = LengthSource::kUniform;
         c.min_prompt_tokens = 20;
         c.max_prompt_tokens = 10;
         c.max_output_tokens = 10;
       }},
      {"sim.workload.lengths.min_output_tokens: ",
       [](WorkloadConfig& c) {
         c.lengths = LengthSource::kUniform;
         c.max_prompt_tokens = 10;
         c.min_output_tokens = 0;
         c.max_output_tokens = 10;
       }},
      {"sim.workload.lengths.max_output_tokens: ",
       [](WorkloadConfig& c) {
         c.lengths = LengthSource::kUniform;
         c.max_prompt_tokens = 10;
         c.max_output_tokens = 0;  // below min_output_tokens = 1
       }},
      {"sim.workload.max_requests: ", [](WorkloadConfig& c) { c.max_requests = 0; }},
      {"sim.workload.max_requests: ",
       [](WorkloadConfig& c) {
         c.lengths = LengthSource::kTrace;
         c.trace_path = "t.csv";
         c.max_requests = -5;
       }},
  };
  for (const auto& c : cases) {
    WorkloadConfig config = SyntheticConfig(ArrivalProcess::kPoisson, 2.0, 10);
    c.mutate(config);
    const std::string message = ValidationError(config);
    EXPECT_THAT(message, ::testing::StartsWith(c.key)) << "got: '" << message << "'";
  }
}

TEST(ValidateWorkloadConfig, IsAppliedByTheWorkloadConstructor) {
  WorkloadConfig c = SyntheticConfig(ArrivalProcess::kPoisson, 0.0, 10);
  EXPECT_THAT(ConstructionError(c), HasSubstr("workload.arrival.rate_qps"));
}

// ---------------------------------------------------------------------------------------
// Multi-turn sessions

// A splitwise trace of `rows` {arrival s, prompt tokens, output tokens}, written to `dir`.
std::string SplitwiseTrace(const TempDir& dir, const std::vector<std::vector<double>>& rows) {
  std::string text = "arrived_at,num_prefill_tokens,num_decode_tokens\n";
  for (const std::vector<double>& r : rows) {
    text += fmt::format("{},{},{}\n", r[0], static_cast<int64_t>(r[1]), static_cast<int64_t>(r[2]));
  }
  return dir.Write("trace.csv", text);
}

WorkloadConfig SessionConfigFor(const std::string& trace, int64_t turns, double think_time_s) {
  WorkloadConfig c;
  c.trace_path = trace;
  c.sessions.turns = turns;
  c.sessions.think_time_s = think_time_s;
  return c;
}

TEST(Sessions, GrowEachPromptByThePreviousAnswerAndTheNewMessage) {
  const TempDir dir;
  // Rows: prompts 100, 50, 70; outputs 10, 20, 30. One session of three turns.
  const std::string trace = SplitwiseTrace(dir, {{0, 100, 10}, {1, 50, 20}, {2, 70, 30}});
  const std::vector<RequestSpec> r = Drain(SessionConfigFor(trace, 3, 5.0));
  ASSERT_EQ(r.size(), 3u);
  ExpectWellFormed(r);
  // 100; 100 + 10 + 50 = 160; 160 + 20 + 70 = 250.
  EXPECT_EQ(r[0].prompt_tokens, 100);
  EXPECT_EQ(r[1].prompt_tokens, 160);
  EXPECT_EQ(r[2].prompt_tokens, 250);
  EXPECT_EQ(r[0].output_tokens, 10);
  EXPECT_EQ(r[1].output_tokens, 20);
  EXPECT_EQ(r[2].output_tokens, 30);
  // Each turn's answer is part of the next turn's prompt: prompt + output.
  EXPECT_EQ(r[0].stream_tokens, 110);
  EXPECT_EQ(r[1].stream_tokens, 180);
  EXPECT_EQ(r[2].stream_tokens, 280);
  // Turn 1 at the first row's time; then 5 s apart (rows 2 and 3's times are unused).
  EXPECT_EQ(r[0].arrival, Nanos(0));
  EXPECT_EQ(r[1].arrival, std::chrono::seconds(5));
  EXPECT_EQ(r[2].arrival, std::chrono::seconds(10));
  EXPECT_NE(r[0].stream, 0u);
  EXPECT_EQ(r[1].stream, r[0].stream);
  EXPECT_EQ(r[2].stream, r[0].stream);
}

TEST(Sessions, InterleaveTwoOverlappingSessionsByArrival) {
  const TempDir dir;
  // Session A: rows 1-3 from 0 s; session B: rows 4-6, starting at row 4's 3 s.
  const std::string trace = SplitwiseTrace(
      dir, {{0, 100, 10}, {1, 50, 20}, {2, 70, 30}, {3, 200, 1}, {4, 20, 2}, {5, 40, 3}});
  const std::vector<RequestSpec> r = Drain(SessionConfigFor(trace, 3, 5.0));
  ASSERT_EQ(r.size(), 6u);
  ExpectWellFormed(r);
  // A at 0, 5, 10 s and B at 3, 8, 13 s: A1 B1 A2 B2 A3 B3.
  const std::vector<int64_t> expected_s = {0, 3, 5, 8, 10, 13};
  // B: 200; 200 + 1 + 20 = 221; 221 + 2 + 40 = 263.
  const std::vector<int64_t> expected_prompt = {100, 200, 160, 221, 250, 263};
  const std::vector<int64_t> expected_stream_tokens = {110, 201, 180, 223, 280, 266};
  for (size_t i = 0; i < r.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(r[i].arrival, std::chrono::seconds(expected_s[i]));
    EXPECT_EQ(r[i].prompt_tokens, expected_prompt[i]);
    EXPECT_EQ(r[i].stream_tokens, expected_stream_tokens[i]);
    EXPECT_EQ(r[i].stream, r[i % 2].stream);
  }
  EXPECT_NE(r[0].stream, r[1].stream);
}

TEST(Sessions, EndShortWhenTheTraceRunsOut) {
  // Five rows in sessions of two turns: 2 + 2 + 1 requests.
  const std::vector<RequestSpec> r =
      Drain(SessionConfigFor(TestData("five_rows_splitwise.csv"), 2, 0.5));
  ASSERT_EQ(r.size(), 5u);
  ExpectWellFormed(r);
  std::map<uint64_t, int> turns;
  for (const RequestSpec& q : r) ++turns[q.stream];
  ASSERT_EQ(turns.size(), 3u);
  EXPECT_EQ(turns[r.back().stream], 1);  // the last session: row 5 alone, at 4 s
  EXPECT_EQ(r.back().arrival, std::chrono::seconds(4));
  EXPECT_EQ(r.back().prompt_tokens, 500);
}

TEST(Sessions, MaxRequestsCountsTurnsNotSessions) {
  WorkloadConfig c = SyntheticConfig(ArrivalProcess::kPoisson, 5.0, 10);
  c.sessions = {.turns = 4, .think_time_s = 30};
  const std::vector<RequestSpec> r = Drain(c);
  EXPECT_EQ(r.size(), 10u);
  ExpectWellFormed(r);
}

TEST(Sessions, MaxRequestsTakesTheSameWholeSessionsAtEveryRate) {
  // 40 turns of 4-turn sessions, every message 100 tokens answered in 10: the first 10
  // sessions, whole. A session's prompts: 100; 100 + 10 + 100 = 210; 320; 430. At 10
  // req/s all 10 sessions start within seconds, before any second turn (30 s later), so
  // the first 40 arrivals would be 40 first turns.
  for (const double rate_qps : {0.1, 10.0}) {
    SCOPED_TRACE(rate_qps);
    WorkloadConfig c = SyntheticConfig(ArrivalProcess::kPoisson, rate_qps, 40);
    c.fixed_prompt_tokens = 100;
    c.fixed_output_tokens = 10;
    c.sessions = {.turns = 4, .think_time_s = 30};
    const std::vector<RequestSpec> r = Drain(c);
    ExpectWellFormed(r);
    std::map<int64_t, int> requests_by_prompt_tokens;
    std::set<uint64_t> streams;
    for (const RequestSpec& q : r) {
      ++requests_by_prompt_tokens[q.prompt_tokens];
      streams.insert(q.stream);
    }
    EXPECT_EQ(requests_by_prompt_tokens,
              (std::map<int64_t, int>{{100, 10}, {210, 10}, {320, 10}, {430, 10}}));
    EXPECT_EQ(streams.size(), 10u);
  }
}

TEST(Sessions, MaxRequestsCutsOnlyTheLastSessionShortInRowOrder) {
  // Rows: prompts 100, 200, 300, 400, 500; outputs 10, 20, 30, 40, 50. Three turns of
  // 2-turn sessions: rows 1-2 (100; 100 + 10 + 200 = 310) and row 3 alone (300), at a
  // session every 200 s on average or every 0.02 s (then the first three arrivals would
  // be the first turns of rows 1, 3 and 5: 100, 300, 500).
  for (const double rate_qps : {0.01, 100.0}) {
    SCOPED_TRACE(rate_qps);
    WorkloadConfig c = SessionConfigFor(TestData("five_rows_splitwise.csv"), 2, 30.0);
    c.arrival = ArrivalProcess::kPoisson;
    c.rate_qps = rate_qps;
    c.max_requests = 3;
    const std::vector<RequestSpec> r = Drain(c);
    ExpectWellFormed(r);
    std::map<uint64_t, std::vector<int64_t>> prompt_tokens_by_session;
    for (const RequestSpec& q : r) prompt_tokens_by_session[q.stream].push_back(q.prompt_tokens);
    std::multiset<std::vector<int64_t>> sessions;
    for (const auto& [stream, prompts] : prompt_tokens_by_session) sessions.insert(prompts);
    EXPECT_EQ(sessions, (std::multiset<std::vector<int64_t>>{{100, 310}, {300}}));
  }
}

TEST(Sessions, ComeInArrivalOrderWhenManyOverlap) {
  // Sessions start every 4 / 20 = 0.2 s on average and last 3 s: about 15 at once.
  WorkloadConfig c = SyntheticConfig(ArrivalProcess::kPoisson, 20.0, 2000);
  c.fixed_prompt_tokens = 100;
  c.fixed_output_tokens = 10;
  c.sessions = {.turns = 4, .think_time_s = 1.0};
  const std::vector<RequestSpec> r = Drain(c);
  ASSERT_EQ(r.size(), 2000u);
  ExpectWellFormed(r);
  std::map<uint64_t, std::vector<const RequestSpec*>> by_session;
  for (const RequestSpec& q : r) by_session[q.stream].push_back(&q);
  int interleaved = 0;
  for (const auto& [stream, turns] : by_session) {
    ASSERT_NE(stream, 0u);
    ASSERT_LE(turns.size(), 4u);
    for (size_t k = 0; k < turns.size(); ++k) {
      // 100; 100 + 10 + 100 = 210; 320; 430.
      EXPECT_EQ(turns[k]->prompt_tokens, 100 + 110 * static_cast<int64_t>(k));
      EXPECT_EQ(turns[k]->stream_tokens, turns[k]->prompt_tokens + 10);
      if (k > 0) {
        EXPECT_EQ(turns[k]->arrival - turns[k - 1]->arrival, std::chrono::seconds(1));
        interleaved += turns[k]->id - turns[k - 1]->id > 1;
      }
    }
  }
  EXPECT_GT(interleaved, 1000) << "other sessions' turns arrive between a session's turns";
}

TEST(Sessions, KeepRateQpsTheMeanRequestRate) {
  for (ArrivalProcess process : {ArrivalProcess::kPoisson, ArrivalProcess::kGamma}) {
    SCOPED_TRACE(ArrivalProcessName(process));
    WorkloadConfig c = SyntheticConfig(process, 10.0, 20'000);
    c.cv = 2.0;
    c.sessions = {.turns = 4, .think_time_s = 3.0};
    EXPECT_NEAR(MeasuredRate(Drain(c)), 10.0, 0.3);
  }
}

TEST(Sessions, KeepTraceTimeScalingAtTheRequestRate) {
  // The 8,000 rows used are scaled to span 7,999 / 12 = 666.6 s, and 2,000 whole
  // sessions start at every fourth row's time; the last one's turns 2-4 follow its
  // start (about 666.6 s) by 10, 20 and 30 s: 7,999 gaps over about 696.6 s.
  WorkloadConfig c = SessionConfigFor(BundledTrace("splitwise_conv.csv"), 4, 10.0);
  c.rate_qps = 12.0;
  c.max_requests = 8000;
  EXPECT_NEAR(MeasuredRate(Drain(c)), 7999 / 696.6, 0.05);
}

TEST(Sessions, OfOneTurnAreTheSameRequestsEachWithItsOwnStream) {
  WorkloadConfig single = SyntheticConfig(ArrivalProcess::kGamma, 4.0, 500);
  single.lengths = LengthSource::kUniform;
  single.max_prompt_tokens = 1000;
  single.max_output_tokens = 100;
  WorkloadConfig sessions = single;
  sessions.sessions = {.turns = 1, .think_time_s = 30};
  const std::vector<RequestSpec> a = Drain(single);
  const std::vector<RequestSpec> b = Drain(sessions);
  ASSERT_EQ(a.size(), b.size());
  std::set<uint64_t> streams;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].arrival, b[i].arrival) << i;
    ASSERT_EQ(a[i].prompt_tokens, b[i].prompt_tokens) << i;
    ASSERT_EQ(a[i].output_tokens, b[i].output_tokens) << i;
    EXPECT_EQ(a[i].stream, 0u);
    EXPECT_EQ(b[i].stream_tokens, b[i].prompt_tokens + b[i].output_tokens);
    streams.insert(b[i].stream);
  }
  EXPECT_EQ(streams.size(), a.size());
}

TEST(Sessions, KeepTheWholeHashBlocksOfTheFirstRowInEveryTurn) {
  // Rows: 1000 tokens [11, 12], output 7; 100 [11], output 3; 1025 [11, 12, 13], output 1.
  const std::vector<RequestSpec> r =
      Drain(SessionConfigFor(TestData("three_rows_mooncake.jsonl"), 3, 2.0));
  ASSERT_EQ(r.size(), 3u);
  // 1000; 1000 + 7 + 100 = 1107; 1107 + 3 + 1025 = 2135.
  EXPECT_EQ(r[0].prompt_tokens, 1000);
  EXPECT_EQ(r[1].prompt_tokens, 1107);
  EXPECT_EQ(r[2].prompt_tokens, 2135);
  EXPECT_EQ(r[2].stream_tokens, 2136);
  EXPECT_EQ(r[2].arrival, std::chrono::seconds(4));
  // Turn 1's 1000 tokens hold one whole 512-token block; block 2 is partial.
  for (const RequestSpec& q : r) {
    EXPECT_EQ(q.hash_ids, (std::vector<uint64_t>{11}));
    EXPECT_EQ(q.hash_block_tokens, 512);
  }
}

TEST(Sessions, ThatWouldArrivePastTheSimulatedSpanAreAnErrorNamingTheThinkTime) {
  // Turns 1e6 s apart: turn 1001 of the first session arrives 1e9 s after its start,
  // past the 1e9 s kvsim simulates.
  WorkloadConfig c = SyntheticConfig(ArrivalProcess::kPoisson, 1.0, kMaxSessionTurns);
  c.sessions = {.turns = kMaxSessionTurns, .think_time_s = kMaxThinkTimeSeconds};
  Workload w(c);
  const std::string message = InputErrorMessage([&] { w.Next(); });
  EXPECT_THAT(message, HasSubstr("workload.sessions.think_time_s: turn 1001 of session 0"));
}

TEST(Sessions, CutByMaxRequestsHaveNoTurnPastTheCutToArrivePastTheSimulatedSpan) {
  // The same sessions cut at 1,000 turns: turn 1000 arrives 999e6 s after the start,
  // within the span, and turn 1001 is not in the workload.
  WorkloadConfig c = SyntheticConfig(ArrivalProcess::kPoisson, 1.0, 1000);
  c.sessions = {.turns = kMaxSessionTurns, .think_time_s = kMaxThinkTimeSeconds};
  const std::vector<RequestSpec> r = Drain(c);
  ASSERT_EQ(r.size(), 1000u);
  EXPECT_EQ(r.back().arrival - r.front().arrival, std::chrono::seconds(999'000'000));
}

// ---------------------------------------------------------------------------------------
// Shared system prompts

WorkloadConfig SharedPrefixConfigFor(int64_t tokens, double fraction, int64_t groups) {
  WorkloadConfig c = SyntheticConfig(ArrivalProcess::kPoisson, 10.0, 2000);
  c.lengths = LengthSource::kUniform;
  c.max_prompt_tokens = 500;
  c.max_output_tokens = 50;
  c.shared_prefix = {.tokens = tokens, .fraction = fraction, .groups = groups};
  return c;
}

TEST(SharedPrefix, AtFractionOnePrefixesEveryPromptWithOneStream) {
  WorkloadConfig c = SyntheticConfig(ArrivalProcess::kPoisson, 10.0, 100);
  c.shared_prefix = {.tokens = 1000, .fraction = 1.0, .groups = 1};
  const std::vector<RequestSpec> r = Drain(c);
  ASSERT_EQ(r.size(), 100u);
  for (const RequestSpec& q : r) {
    EXPECT_EQ(q.prompt_tokens, 1128);  // 1000 + 128
    EXPECT_EQ(q.output_tokens, 16);
    EXPECT_EQ(q.stream, r[0].stream);
    EXPECT_EQ(q.stream_tokens, 1000);
  }
  EXPECT_NE(r[0].stream, 0u);
}

TEST(SharedPrefix, AtFractionZeroLeavesEveryRequestAsItWas) {
  const std::vector<RequestSpec> off = Drain(SharedPrefixConfigFor(0, 1.0, 1));
  const std::vector<RequestSpec> zero = Drain(SharedPrefixConfigFor(1000, 0.0, 8));
  ASSERT_EQ(off.size(), zero.size());
  for (size_t i = 0; i < off.size(); ++i) {
    ASSERT_EQ(off[i].arrival, zero[i].arrival) << i;
    ASSERT_EQ(off[i].prompt_tokens, zero[i].prompt_tokens) << i;
    ASSERT_EQ(zero[i].stream, 0u) << i;
    ASSERT_EQ(zero[i].stream_tokens, 0) << i;
  }
}

TEST(SharedPrefix, ReachesItsFractionAndMovesNoArrivalOrLength) {
  const std::vector<RequestSpec> base = Drain(SharedPrefixConfigFor(0, 1.0, 1));
  WorkloadConfig c = SharedPrefixConfigFor(1000, 0.5, 1);
  c.max_requests = 20'000;
  const std::vector<RequestSpec> r = Drain(c);
  int carrying = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    const bool carries = r[i].stream != 0;
    carrying += carries;
    if (i < base.size()) {
      ASSERT_EQ(r[i].arrival, base[i].arrival) << i;
      ASSERT_EQ(r[i].output_tokens, base[i].output_tokens) << i;
      ASSERT_EQ(r[i].prompt_tokens, base[i].prompt_tokens + (carries ? 1000 : 0)) << i;
    }
  }
  EXPECT_NEAR(carrying / 20'000.0, 0.5, 0.02);
}

TEST(SharedPrefix, SpreadsRequestsEvenlyOverItsGroupsEachItsOwnStream) {
  WorkloadConfig c = SharedPrefixConfigFor(300, 1.0, 4);
  c.max_requests = 20'000;
  std::map<uint64_t, int> per_stream;
  for (const RequestSpec& r : Drain(c)) ++per_stream[r.stream];
  ASSERT_EQ(per_stream.size(), 4u);
  for (const auto& [stream, n] : per_stream) {
    EXPECT_NE(stream, 0u);
    EXPECT_NEAR(n, 5000, 300);
  }
}

TEST(SharedPrefix, DropsTheTraceHashIdsOfTheRequestsThatCarryIt) {
  WorkloadConfig c;
  c.trace_path = TestData("three_rows_mooncake.jsonl");
  c.shared_prefix = {.tokens = 100, .fraction = 1.0, .groups = 1};
  const std::vector<RequestSpec> r = Drain(c);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].prompt_tokens, 1100);
  EXPECT_EQ(r[1].prompt_tokens, 200);
  EXPECT_EQ(r[2].prompt_tokens, 1125);
  for (const RequestSpec& q : r) EXPECT_TRUE(q.hash_ids.empty());
}

TEST(SharedPrefix, IsTheSameForASeedAndDiffersAcrossSeeds) {
  const WorkloadConfig c = SharedPrefixConfigFor(256, 0.5, 3);
  const std::vector<RequestSpec> a = Drain(c);
  const std::vector<RequestSpec> b = Drain(c);
  WorkloadConfig other_seed = c;
  other_seed.seed = 2;
  const std::vector<RequestSpec> other = Drain(other_seed);
  ASSERT_EQ(a.size(), b.size());
  int same_as_other = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].stream, b[i].stream) << i;
    ASSERT_EQ(a[i].prompt_tokens, b[i].prompt_tokens) << i;
    same_as_other += a[i].stream == other[i].stream;
  }
  // Independent draws agree with probability 1/4 + 1/4 x 1/3 = 1/3.
  EXPECT_LT(same_as_other, 1000);
}

// ---------------------------------------------------------------------------------------
// Sessions with a shared system prompt

TEST(SessionsWithASharedPrefix, PutItBeforeTurnOneAndNameItAcrossSessionsWithAHashId) {
  WorkloadConfig c = SyntheticConfig(ArrivalProcess::kPoisson, 2.0, 40);
  c.fixed_prompt_tokens = 100;
  c.fixed_output_tokens = 10;
  c.sessions = {.turns = 2, .think_time_s = 1.0};
  c.shared_prefix = {.tokens = 1000, .fraction = 1.0, .groups = 1};
  const std::vector<RequestSpec> r = Drain(c);
  ASSERT_EQ(r.size(), 40u);
  ExpectWellFormed(r);
  std::map<uint64_t, std::vector<const RequestSpec*>> by_session;
  for (const RequestSpec& q : r) by_session[q.stream].push_back(&q);
  EXPECT_GE(by_session.size(), 20u);
  for (const auto& [stream, turns] : by_session) {
    // 1000 + 100 = 1100; 1100 + 10 + 100 = 1210.
    EXPECT_EQ(turns[0]->prompt_tokens, 1100);
    EXPECT_EQ(turns[0]->stream_tokens, 1110);
    if (turns.size() > 1) {
      EXPECT_EQ(turns[1]->prompt_tokens, 1210);
      EXPECT_EQ(turns[1]->stream_tokens, 1220);
    }
  }
  for (const RequestSpec& q : r) {
    EXPECT_EQ(q.hash_ids, r[0].hash_ids);
    EXPECT_EQ(q.hash_block_tokens, 1000);
  }
  ASSERT_EQ(r[0].hash_ids.size(), 1u);
  EXPECT_FALSE(by_session.contains(r[0].hash_ids[0]));
}

TEST(SessionsWithASharedPrefix, AreTheSameForASeed) {
  WorkloadConfig c = SharedPrefixConfigFor(512, 0.5, 5);
  c.sessions = {.turns = 3, .think_time_s = 2.5};
  const std::vector<RequestSpec> a = Drain(c);
  const std::vector<RequestSpec> b = Drain(c);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].arrival, b[i].arrival) << i;
    ASSERT_EQ(a[i].prompt_tokens, b[i].prompt_tokens) << i;
    ASSERT_EQ(a[i].output_tokens, b[i].output_tokens) << i;
    ASSERT_EQ(a[i].stream, b[i].stream) << i;
    ASSERT_EQ(a[i].stream_tokens, b[i].stream_tokens) << i;
    ASSERT_EQ(a[i].hash_ids, b[i].hash_ids) << i;
  }
}

TEST(StreamIds, AreDistinctNonZeroAndAboveAnyTraceHashId) {
  std::set<uint64_t> ids;
  WorkloadConfig sessions = SyntheticConfig(ArrivalProcess::kPoisson, 100.0, 10'000);
  sessions.sessions = {.turns = 1, .think_time_s = 0};
  sessions.shared_prefix = {.tokens = 8, .fraction = 1.0, .groups = 1000};
  for (const RequestSpec& r : Drain(sessions)) {
    ids.insert(r.stream);
    ids.insert(r.hash_ids.at(0));
  }
  WorkloadConfig groups = SharedPrefixConfigFor(8, 1.0, 1000);
  groups.max_requests = 10'000;
  std::set<uint64_t> group_streams;
  for (const RequestSpec& r : Drain(groups)) group_streams.insert(r.stream);
  EXPECT_EQ(group_streams.size(), 1000u);
  ids.insert(group_streams.begin(), group_streams.end());
  // 10,000 session streams, 1,000 groups as hash ids, 1,000 groups as streams.
  EXPECT_EQ(ids.size(), 12'000u);
  for (uint64_t id : ids) ASSERT_GE(id, uint64_t{1} << 63);
}

TEST(ValidateWorkloadConfig, AcceptsSessionsAndSharedPrefixesAlone) {
  WorkloadConfig c = SyntheticConfig(ArrivalProcess::kPoisson, 2.0, 10);
  c.shared_prefix = {.tokens = 1000, .fraction = 0.5, .groups = 3};
  EXPECT_EQ(ValidationError(c), "");
  c.sessions = {.turns = 4, .think_time_s = 30};
  EXPECT_EQ(ValidationError(c), "");
  c.shared_prefix = {};
  EXPECT_EQ(ValidationError(c), "");
}

TEST(ValidateWorkloadConfig, NamesTheKeyPathOfEachPrefixSharingProblem) {
  const struct {
    const char* key;
    SharedPrefixConfig prefix;
    SessionConfig sessions;
  } cases[] = {
      {"sim.workload.shared_prefix.tokens: ", {.tokens = -1}, {}},
      {"sim.workload.shared_prefix.tokens: ", {.tokens = kMaxSharedPrefixTokens + 1}, {}},
      {"sim.workload.shared_prefix.fraction: ", {.tokens = 10, .fraction = 1.5}, {}},
      {"sim.workload.shared_prefix.fraction: ", {.tokens = 10, .fraction = std::nan("")}, {}},
      {"sim.workload.shared_prefix.groups: ", {.tokens = 10, .groups = 0}, {}},
      {"sim.workload.shared_prefix.groups: ",
       {.tokens = 10, .groups = kMaxSharedPrefixGroups + 1},
       {}},
      {"sim.workload.shared_prefix.tokens: ", {.tokens = 0, .fraction = 0.5}, {}},
      {"sim.workload.shared_prefix.tokens: ", {.tokens = 0, .groups = 2}, {}},
      {"sim.workload.sessions.turns: ", {}, {.turns = -1}},
      {"sim.workload.sessions.turns: ", {}, {.turns = kMaxSessionTurns + 1}},
      {"sim.workload.sessions.think_time_s: ", {}, {.turns = 2, .think_time_s = -1}},
      {"sim.workload.sessions.think_time_s: ", {}, {.turns = 2, .think_time_s = 2e6}},
      {"sim.workload.sessions.think_time_s: ", {}, {.turns = 2, .think_time_s = INFINITY}},
      {"sim.workload.sessions.turns: ", {}, {.turns = 0, .think_time_s = 30}},
  };
  for (const auto& c : cases) {
    WorkloadConfig config = SyntheticConfig(ArrivalProcess::kPoisson, 2.0, 10);
    config.shared_prefix = c.prefix;
    config.sessions = c.sessions;
    const std::string message = ValidationError(config);
    EXPECT_THAT(message, ::testing::StartsWith(c.key)) << "got: '" << message << "'";
  }
}

}  // namespace
}  // namespace kvsim
