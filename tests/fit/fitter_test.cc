// The fitter against runs kvsim itself generated with known terms: a fit must find
// those terms again, and the workload it replays must be the measured one.
#include "sim/fit/fitter.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "sim/config/scenario_config.h"
#include "sim/core/check.h"
#include "sim/core/time.h"
#include "sim/simulator/builder.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FitterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           fmt::format("kvsim_fitter_test_{}", ::testing::UnitTest::GetInstance()->random_seed());
    dir_ /= ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  // A scenario: 300 requests of the bundled conversation trace at `rate_qps` on
  // `gpu`, vLLM V1 scheduling with `max_num_seqs`, roofline timing.
  std::string Scenario(const std::string& name, const std::string& gpu, double rate_qps = 6,
                       int64_t max_num_seqs = 64) {
    return Write(name, fmt::format(R"(seed: 7
models_dir: {0}/models
model: Llama-3.1-8B
gpu: {1}
deployment: {{max_model_len: 8192}}
workload:
  trace: {0}/traces/splitwise_conv.csv
  arrival: {{process: poisson, rate_qps: {2}}}
  max_requests: 300
scheduler: {{type: vllm_v1, max_num_seqs: {3}, max_num_batched_tokens: 2048}}
kv_cache: {{type: paged, block_tokens: 16}}
timing: {{type: roofline, engine: {{preset: vllm_v1}}}}
output: {{requests_csv: false, timeseries_csv: false}}
)",
                                   KVSIM_SOURCE_DIR, gpu, rate_qps, max_num_seqs));
  }

  // Simulates `scenario` with `truth` (key path -> value) and writes every request
  // as a measured requests CSV, the "measurement" a fit gets; its TTFT and latency in
  // units of `unit_s` seconds (1: seconds, as the format says; 1e-3: milliseconds).
  std::string Measure(const std::string& scenario, const std::map<std::string, double>& truth,
                      const std::string& name, double unit_s = 1) {
    ConfigTree tree = ConfigTree::Load(scenario);
    for (const auto& [key, value] : truth) tree.Set(key, fmt::format("{:.17g}", value));
    auto sim = BuildSimulation(DecodeScenario(tree, DefaultModelsDir()));
    sim->KeepRequestRecords();
    const RunResult result = sim->Run();
    std::string csv = "arrival_s,prompt_tokens,output_tokens,ttft_s,e2e_s\n";
    for (const RequestRecord& r : result.records) {
      csv += fmt::format("{:.9f},{},{},{:.9f},{:.9f}\n", ToSeconds(r.arrival), r.prompt_tokens,
                         r.output_tokens, ToSeconds(r.first_token - r.arrival) / unit_s,
                         ToSeconds(r.finish - r.arrival) / unit_s);
    }
    return Write(name, csv);
  }

  FitConfig Decode(const std::string& fit_yaml) {
    return DecodeFitConfig(ConfigTree::Parse(fit_yaml, (dir_ / "fit.yaml").string()));
  }

  fs::path dir_;
};

TEST_F(FitterTest, FitRecoversTheEngineTermsRunsWereGeneratedWith) {
  // Two batch limits under overload tell a per-iteration cost from a per-sequence one.
  const std::map<std::string, double> truth = {{"timing.engine.per_iteration_s", 1.5e-3},
                                               {"timing.engine.per_seq_s", 2.0e-5}};
  const std::string light = Scenario("light.yaml", "H100-SXM", 60, 8);
  const std::string heavy = Scenario("heavy.yaml", "H100-SXM", 60, 64);
  const Fitter fitter(Decode(fmt::format(R"(runs:
  - {{name: light, scenario: {}, requests: {}}}
  - {{name: heavy, scenario: {}, requests: {}}}
free:
  timing.engine.per_iteration_s: {{max: 0.01}}
  timing.engine.per_seq_s: {{max: 1.0e-4}}
metrics: [ttft_s.mean, ttft_s.p50, tpot_s.mean, tpot_s.p50, e2e_s.mean, e2e_s.p50]
)",
                                         light, Measure(light, truth, "light.csv"), heavy,
                                         Measure(heavy, truth, "heavy.csv"))),
                      (dir_ / "out").string(), 2);
  const FitOutcome fit = fitter.Fit({});
  ASSERT_TRUE(fit.solve.converged) << fit.solve.stop_reason;
  EXPECT_TRUE(fit.verdict.accepted) << fit.verdict.reason;
  ASSERT_EQ(fit.params.size(), 2u);
  // Started from the preset (0.2 ms, 0): far from the truth.
  EXPECT_DOUBLE_EQ(fit.start[0], 2e-4);
  EXPECT_DOUBLE_EQ(fit.start[1], 0.0);
  EXPECT_NEAR(fit.fitted[0], 1.5e-3, 0.01 * 1.5e-3);
  EXPECT_NEAR(fit.fitted[1], 2.0e-5, 0.01 * 2.0e-5);
  for (double r : RelativeErrors(fitter.cases(), fit.cases, fit.after))
    EXPECT_LT(std::abs(r), 0.01);
  // Two loads determine both terms: no caveat, and each interval holds the truth.
  EXPECT_THAT(fit.verdict.caveats, ::testing::IsEmpty());
  EXPECT_LT(std::abs(fit.uncertainty.correlation(0, 1)), kMaxTermCorrelation);
  EXPECT_LT(fit.uncertainty.terms[0].half_width_95, kMaxRelativeHalfWidth * fit.fitted[0]);
}

// The review's case: both terms from one run overloaded at 200 requests/s, where
// nearly every iteration carries max_num_seqs = 8 sequences, so about
// per_iteration_s + 8 per_seq_s is all the run shows. The fit matches the metrics, but it is
// accepted only with the caveat that the two terms are not told apart.
TEST_F(FitterTest, TwoTermsFromOneLoadAreReportedAsNotToldApart) {
  const std::map<std::string, double> truth = {{"timing.engine.per_iteration_s", 1.5e-3},
                                               {"timing.engine.per_seq_s", 2.0e-5}};
  const std::string heavy = Scenario("heavy.yaml", "H100-SXM", 200, 8);
  const Fitter fitter(Decode(fmt::format(R"(runs:
  - {{name: heavy, scenario: {}, requests: {}}}
free:
  timing.engine.per_iteration_s: {{max: 0.01}}
  timing.engine.per_seq_s: {{max: 1.0e-4}}
metrics: [ttft_s.mean, ttft_s.p50, tpot_s.mean, tpot_s.p50, e2e_s.mean, e2e_s.p50]
)",
                                         heavy, Measure(heavy, truth, "heavy.csv"))),
                      (dir_ / "out").string(), 2);
  const FitOutcome fit = fitter.Fit({});
  EXPECT_TRUE(fit.verdict.accepted) << fit.verdict.reason;
  EXPECT_GT(std::abs(fit.uncertainty.correlation(0, 1)), kMaxTermCorrelation);
  ASSERT_FALSE(fit.verdict.caveats.empty());
  EXPECT_THAT(fit.verdict.caveats[0],
              HasSubstr("timing.engine.per_iteration_s and timing.engine.per_seq_s are not told "
                        "apart by these runs (correlation -"));
  EXPECT_THAT(fit.verdict.caveats[0], HasSubstr("fit runs at more than one load"));
}

// The review's case: the same measurement with TTFT and latency written in
// milliseconds. The search ends converged, per_iteration_s pinned at its upper bound
// and every metric far too low: refused, and the reason says why.
TEST_F(FitterTest, MeasuredTimesInMillisecondsAreARefusedFitThatSaysSo) {
  const std::string light = Scenario("light.yaml", "H100-SXM", 60, 8);
  const Fitter fitter(Decode(fmt::format(R"(runs:
  - {{name: light, scenario: {}, requests: {}}}
free:
  timing.engine.per_iteration_s: {{max: 0.01}}
metrics: [ttft_s.mean, tpot_s.mean, e2e_s.mean]
)",
                                         light,
                                         Measure(light, {{"timing.engine.per_iteration_s", 1.5e-3}},
                                                 "light_ms.csv", 1e-3))),
                      (dir_ / "out").string(), 2);
  const FitOutcome fit = fitter.Fit({});
  EXPECT_FALSE(fit.verdict.accepted);
  EXPECT_THAT(fit.verdict.reason, HasSubstr("timing.engine.per_iteration_s ended at its upper "
                                            "bound 0.01"));
  EXPECT_THAT(fit.verdict.reason, HasSubstr("times look like milliseconds"));
}

TEST_F(FitterTest, OnACardWithASlowerHostTheTermsAreStartedAndFittedForTheReferenceCore) {
  // The A100 card's host runs at 0.81 of the reference core: runs generated with a
  // 1.5 ms step there take 1.5 / 0.81 ms a step, and the fit, which runs its trials on
  // the same host, finds 1.5 ms again, started from the preset's 0.2 ms (not 0.2 / 0.81).
  const std::map<std::string, double> truth = {{"timing.engine.per_iteration_s", 1.5e-3}};
  const std::string a100 = Scenario("a100.yaml", "A100-80GB", 60, 8);
  const Fitter fitter(Decode(fmt::format(R"(runs:
  - {{name: a100, scenario: {}, requests: {}}}
free:
  timing.engine.per_iteration_s: {{max: 0.01}}
metrics: [ttft_s.mean, tpot_s.mean, tpot_s.p50, e2e_s.mean]
)",
                                         a100, Measure(a100, truth, "a100.csv"))),
                      (dir_ / "out").string(), 2);
  const FitOutcome fit = fitter.Fit({});
  ASSERT_TRUE(fit.solve.converged) << fit.solve.stop_reason;
  EXPECT_DOUBLE_EQ(fit.start[0], 2e-4);
  EXPECT_NEAR(fit.fitted[0], 1.5e-3, 0.01 * 1.5e-3);
}

TEST_F(FitterTest, PerGpuTermsAreFittedOncePerGpuAndEngineTermsOnceForAll) {
  const std::map<std::string, double> engine = {{"timing.engine.per_seq_s", 3.0e-5}};
  std::map<std::string, double> on_a100 = engine, on_h100 = engine;
  on_a100["timing.roofline.memory_efficiency"] = 0.70;
  on_h100["timing.roofline.memory_efficiency"] = 0.90;
  std::string runs;
  for (const auto& [gpu, truth] :
       {std::pair{"A100-80GB", on_a100}, std::pair{"H100-SXM", on_h100}}) {
    for (int64_t seqs : {8, 64}) {
      const std::string name = fmt::format("{}_{}", gpu, seqs);
      const std::string scenario = Scenario(name + ".yaml", gpu, 60, seqs);
      runs += fmt::format("  - {{name: {}, scenario: {}, requests: {}}}\n", name, scenario,
                          Measure(scenario, truth, name + ".csv"));
    }
  }
  const Fitter fitter(Decode("runs:\n" + runs + R"(free:
  timing.engine.per_seq_s: {max: 1.0e-4}
  timing.roofline.memory_efficiency: {min: 0.5, max: 1}
metrics: [ttft_s.mean, ttft_s.p50, tpot_s.mean, tpot_s.p50, e2e_s.mean, e2e_s.p50]
)"),
                      (dir_ / "out").string(), 2);
  const FitOutcome fit = fitter.Fit({});
  ASSERT_TRUE(fit.solve.converged) << fit.solve.stop_reason;
  ASSERT_EQ(fit.params.size(), 3u);
  EXPECT_EQ(fitter.ParamName(fit.params[0]), "timing.engine.per_seq_s");
  EXPECT_EQ(fitter.ParamName(fit.params[1]), "timing.roofline.memory_efficiency @ A100-80GB");
  EXPECT_EQ(fitter.ParamName(fit.params[2]), "timing.roofline.memory_efficiency @ H100-SXM");
  EXPECT_NEAR(fit.fitted[0], 3.0e-5, 0.01 * 3.0e-5);
  EXPECT_NEAR(fit.fitted[1], 0.70, 0.01 * 0.70);
  EXPECT_NEAR(fit.fitted[2], 0.90, 0.01 * 0.90);

  // The calibration keeps the engine term shared and each efficiency with its GPU.
  const Calibration cal = fitter.ToCalibration(fit, nullptr);
  ASSERT_EQ(cal.terms.size(), 1u);
  EXPECT_EQ(cal.terms[0].first, "timing.engine.per_seq_s");
  ASSERT_EQ(cal.gpu_terms.size(), 2u);
  EXPECT_EQ(cal.gpu_terms[0].first, "A100-80GB");
  EXPECT_EQ(cal.gpu_terms[1].first, "H100-SXM");
  EXPECT_THAT(cal.residuals_yaml, HasSubstr("A100-80GB_8: {ttft_s.mean: "));
  // It records how the runs' engine ran its kernels (vllm_v1's) and each card's host.
  ASSERT_TRUE(cal.engine_kernels.has_value());
  EXPECT_EQ(*cal.engine_kernels,
            (EngineKernels{.cuda_graphs = true, .fused_kernels = true, .kernels_per_layer = 10}));
  EXPECT_THAT(cal.hosts,
              ElementsAre("A100-80GB: 2 x AMD EPYC 7742 (DGX A100), the A100-80GB card's host "
                          "(speed 0.81)",
                          "H100-SXM: 2 x Intel Xeon Platinum 8480C (DGX H100), the H100-SXM "
                          "card's host (speed 1)"));
}

TEST_F(FitterTest, RunsWhoseEnginesRunTheirKernelsDifferentlyAreAnError) {
  // One calibration serves one way of running kernels: here one run has CUDA graphs
  // and the other launches eagerly, under the same preset.
  const std::string graphs = Scenario("graphs.yaml", "H100-SXM");
  ConfigTree eager_tree = ConfigTree::Load(graphs);
  eager_tree.Set("timing.engine.cuda_graphs", "false");
  const std::string eager = Write("eager.yaml", eager_tree.Dump());
  const std::string aggregates = "aggregates: {tpot_s: {mean: 0.02}}";
  try {
    Fitter(Decode(fmt::format(R"(runs:
  - {{name: graphs, scenario: {0}, {2}}}
  - {{name: eager, scenario: {1}, {2}}}
free: {{timing.engine.per_seq_s: {{}}}}
)",
                              graphs, eager, aggregates)),
           (dir_ / "out").string(), 1);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("fit.yaml:3: runs[1] (eager): runs an engine with eager "
                                    "launches, fused kernels, 10 kernels per layer, the first run "
                                    "one with CUDA graphs, fused kernels, 10 kernels per layer"));
  }
}

TEST_F(FitterTest, HoldoutPredictsEachRunFromTheOtherRunsTerms) {
  // Both runs share one engine: terms fitted on either predict the other.
  const std::string a100 = Scenario("a100.yaml", "A100-80GB", 40);
  const std::string h100 = Scenario("h100.yaml", "H100-SXM", 40);
  const std::map<std::string, double> truth = {{"timing.engine.per_iteration_s", 2e-3}};
  const Fitter fitter(
      Decode(fmt::format(R"(runs:
  - {{name: a100, scenario: {}, requests: {}}}
  - {{name: h100, scenario: {}, requests: {}}}
free: {{timing.engine.per_iteration_s: {{max: 0.01}}}}
metrics: [ttft_s.mean, ttft_s.p50, tpot_s.mean, tpot_s.p50, e2e_s.mean, e2e_s.p50]
)",
                         a100, Measure(a100, truth, "a.csv"), h100, Measure(h100, truth, "h.csv"))),
      (dir_ / "out").string(), 1);
  const std::vector<HoldoutOutcome> holdout = fitter.Holdout();
  ASSERT_EQ(holdout.size(), 2u);
  EXPECT_EQ(holdout[0].run, "a100");
  EXPECT_EQ(holdout[0].fit.runs, std::vector<std::string>{"h100"});
  for (const HoldoutOutcome& h : holdout) {
    EXPECT_NEAR(h.fit.fitted[0], 2e-3, 0.01 * 2e-3);
    for (double r : RelativeErrors(fitter.cases(), h.cases, h.predicted)) {
      EXPECT_LT(std::abs(r), 0.01) << h.run;
    }
  }
}

TEST_F(FitterTest, AggregatesAloneRecoverATerm) {
  const std::string scenario = Scenario("h100.yaml", "H100-SXM");
  ConfigTree tree = ConfigTree::Load(scenario);
  tree.Set("timing.engine.per_iteration_s", "0.003");
  auto sim = BuildSimulation(DecodeScenario(tree, DefaultModelsDir()));
  const Summary s = sim->Run().summary;
  const Fitter fitter(Decode(fmt::format(R"(runs:
  - name: h100
    scenario: {}
    aggregates: {{tpot_s: {{mean: {:.17g}}}, e2e_s: {{mean: {:.17g}, p90: {:.17g}}}}}
free: {{timing.engine.per_iteration_s: {{max: 0.01}}}}
)",
                                         scenario, s.tpot_s.mean, s.e2e_s.mean, s.e2e_s.p90)),
                      (dir_ / "out").string(), 2);
  ASSERT_EQ(fitter.cases().size(), 1u);
  EXPECT_EQ(fitter.cases()[0].targets.size(), 3u);
  const FitOutcome fit = fitter.Fit({});
  EXPECT_NEAR(fit.fitted[0], 3e-3, 0.01 * 3e-3);
}

TEST_F(FitterTest, ReplayedWorkloadIsTheMeasuredRequests) {
  const std::string scenario = Scenario("h100.yaml", "H100-SXM");
  const std::string measured = Write("m.csv",
                                     "arrival_s,prompt_tokens,output_tokens,ttft_s,e2e_s\n"
                                     "10.5,100,20,0.5,1.5\n"
                                     "10.0,300,4,0.25,0.75\n");
  const Fitter fitter(Decode(fmt::format(R"(runs:
  - {{name: two, scenario: {}, requests: {}}}
free: {{timing.engine.per_seq_s: {{}}}}
metrics: [ttft_s.mean, e2e_s.p50, tpot_s.mean]
)",
                                         scenario, measured)),
                      (dir_ / "out").string(), 1);
  std::ifstream f(dir_ / "out" / "workloads" / "two.csv");
  const std::string trace((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // Sorted by arrival, arrivals from the first one.
  EXPECT_EQ(trace,
            "arrived_at,num_prefill_tokens,num_decode_tokens\n"
            "0.000000000,300,4\n"
            "0.500000000,100,20\n");
  const FitCase& c = fitter.cases()[0];
  EXPECT_EQ(c.requests, 2);
  EXPECT_EQ(c.gpu, "H100-SXM");
  ASSERT_EQ(c.targets.size(), 3u);
  EXPECT_DOUBLE_EQ(c.targets[0].second, 0.375);  // (0.5 + 0.25) / 2
  EXPECT_DOUBLE_EQ(c.targets[1].second, 0.75);   // nearest rank: the first of two
  // TPOT (e2e - ttft) / (output - 1): 1 / 19 and 0.5 / 3.
  EXPECT_DOUBLE_EQ(c.targets[2].second, (1.0 / 19 + 0.5 / 3) / 2);
}

TEST_F(FitterTest, TheReplayReplacesTheScenarioWorkloadWholeOrStandsInForAMissingOne) {
  // One scenario says no workload; the other's would cap and share the replayed one.
  const std::string bare = Write(
      "bare.yaml",
      fmt::format("models_dir: {}/models\nmodel: Llama-3.1-8B\ngpu: H100-SXM\n", KVSIM_SOURCE_DIR));
  const std::string capped = Write(
      "capped.yaml",
      fmt::format("models_dir: {}/models\nmodel: Llama-3.1-8B\ngpu: H100-SXM\n"
                  "workload: {{trace: none.csv, max_requests: 1, shared_prefix: {{tokens: 64}}}}\n",
                  KVSIM_SOURCE_DIR));
  const Fitter fitter(Decode(fmt::format(R"(runs:
  - {{name: bare, scenario: {0}, requests: {2}/tests/data/fit/benchmark_serving_small.json}}
  - {{name: capped, scenario: {1}, requests: {2}/tests/data/fit/benchmark_serving_small.json}}
free: {{timing.engine.per_seq_s: {{}}}}
metrics: [ttft_s.mean, e2e_s.mean]
)",
                                         bare, capped, KVSIM_SOURCE_DIR)),
                      (dir_ / "out").string(), 1);
  for (const FitCase& c : fitter.cases()) {
    SCOPED_TRACE(c.label);
    const WorkloadConfig& w = c.config->workload;
    EXPECT_EQ(w.trace_path, (dir_ / "out" / "workloads" / (c.run + ".csv")).string());
    EXPECT_EQ(w.lengths, LengthSource::kTrace);
    // Sent at request_rate 4 with burstiness 0.5: gamma gaps, cv 1 / sqrt(0.5).
    EXPECT_EQ(w.arrival, ArrivalProcess::kGamma);
    EXPECT_DOUBLE_EQ(w.rate_qps, 4);
    EXPECT_DOUBLE_EQ(w.cv, 1 / std::sqrt(0.5));
    EXPECT_EQ(w.max_requests, 0);
    EXPECT_EQ(w.shared_prefix.tokens, 0);
  }
  // Each simulates all three measured requests (Simulate throws otherwise).
  EXPECT_EQ(fitter.Simulate({0, 1}, {}, Eigen::VectorXd()).size(), 2u);
}

TEST_F(FitterTest, RequestsTheScenarioCannotServeAreAnError) {
  const std::string scenario = Scenario("h100.yaml", "H100-SXM");
  // 9,000 prompt tokens exceed the scenario's max_model_len of 8,192.
  const std::string measured = Write("m.csv",
                                     "arrival_s,prompt_tokens,output_tokens,ttft_s,e2e_s\n"
                                     "0,9000,20,0.5,1.5\n");
  const Fitter fitter(Decode(fmt::format(R"(runs:
  - {{name: long, scenario: {}, requests: {}}}
free: {{timing.engine.per_seq_s: {{}}}}
metrics: [ttft_s.mean]
)",
                                         scenario, measured)),
                      (dir_ / "out").string(), 1);
  try {
    fitter.Fit({});
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("run long: the measurement has 1 requests"));
    EXPECT_THAT(e.what(), HasSubstr("1 rejected"));
  }
}

TEST_F(FitterTest, ItlCannotBeMatchedFromAFormatWithoutInterTokenTimes) {
  const std::string scenario = Scenario("h100.yaml", "H100-SXM");
  const std::string measured = Write("m.csv",
                                     "arrival_s,prompt_tokens,output_tokens,ttft_s,e2e_s\n"
                                     "0,100,20,0.5,1.5\n");
  try {
    Fitter(Decode(fmt::format(R"(runs:
  - {{name: r, scenario: {}, requests: {}}}
free: {{timing.engine.per_seq_s: {{}}}}
metrics: [itl_s.mean]
)",
                              scenario, measured)),
           (dir_ / "out").string(), 1);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("fit.yaml:2: runs[0]: metric itl_s.mean"));
    EXPECT_THAT(e.what(), HasSubstr("records no inter-token times"));
  }
}

}  // namespace
}  // namespace kvsim
