// Tests for Workload: synthetic and trace arrival processes, length sources, truncation,
// determinism, and configuration errors that name their key path.
#include "sim/workload/workload.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
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
    if (i > 0) ASSERT_GE(requests[i].arrival, requests[i - 1].arrival) << "request " << i;
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

}  // namespace
}  // namespace kvsim
