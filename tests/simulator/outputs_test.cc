// The printed verdict under a comparison, and how every output names the timing
// model and the terms it assumed.
#include "sim/simulator/outputs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "sim/config/scenario_config.h"
#include "sim/config/yaml_tree.h"
#include "sim/simulator/builder.h"
#include "sim/simulator/compare_outputs.h"

namespace kvsim {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kGiBBytes = int64_t{1} << 30;

LabeledRun Labelled(const std::string& label, const std::string& manager, double ttft_p50,
                    double e2e_p50, int64_t max_running, int64_t peak_gib) {
  LabeledRun r;
  r.label = label;
  r.summary.kv_manager = manager;
  r.summary.requests_completed = 1;
  r.summary.ttft_s.p50 = ttft_p50;
  r.summary.e2e_s.p50 = e2e_p50;
  r.summary.max_running = max_running;
  r.summary.peak_allocated_bytes = peak_gib * kGiBBytes;
  return r;
}

// Splits a table line into its cells at runs of two or more spaces.
std::vector<std::string> Cells(const std::string& line) {
  std::vector<std::string> cells;
  size_t at = 0;
  while (at < line.size()) {
    const size_t gap = line.find("  ", at);
    const std::string cell = line.substr(at, gap == std::string::npos ? gap : gap - at);
    if (!cell.empty()) cells.push_back(cell.substr(cell.find_first_not_of(' ')));
    if (gap == std::string::npos) break;
    at = line.find_first_not_of(' ', gap);
    if (at == std::string::npos) break;
  }
  return cells;
}

TEST(FormatCompareTable, KeepsWideCellsAndLongLabelsApart) {
  // TTFT p50 32.9 ms against 46,082.8 ms: 18 characters with its ratio, a column's
  // default width.
  const std::vector<LabeledRun> runs = {
      Labelled("paged", "paged", 0.0329, 4.0, 200, 34),
      Labelled("a_very_long_label_name_here", "paged", 46.0828, 50.0, 10, 34)};
  std::vector<LabeledRun> counted = runs;
  for (LabeledRun& r : counted) r.summary.ttft_s.count = 1;
  const std::string table = FormatCompareTable(counted);
  const std::string header = table.substr(0, table.find('\n'));
  EXPECT_EQ(Cells(header), (std::vector<std::string>{"paged", "a_very_long_label_name_here"}));
  const size_t at = table.find("TTFT p50 (ms)");
  ASSERT_NE(at, std::string::npos) << table;
  const std::string row = table.substr(at, table.find('\n', at) - at);
  EXPECT_EQ(Cells(row), (std::vector<std::string>{"TTFT p50 (ms)", "32.9", "46082.8 (1400.69x)"}));
}

TEST(FormatCompareTable, GivesNoRatioForAPercentage) {
  // 84.5% against paged's 0.6% is 140.83x: a number that says nothing, so none is shown.
  std::vector<LabeledRun> runs = {Labelled("paged", "paged", 0.03, 3.0, 80, 14),
                                  Labelled("static", "static", 0.04, 3.2, 54, 54)};
  runs[0].summary.fragmentation = 0.006;
  runs[1].summary.fragmentation = 0.845;
  const std::string table = FormatCompareTable(runs);
  const size_t at = table.find("KV fragmentation (%)");
  ASSERT_NE(at, std::string::npos) << table;
  const std::string row = table.substr(at, table.find('\n', at) - at);
  EXPECT_EQ(Cells(row), (std::vector<std::string>{"KV fragmentation (%)", "0.6", "84.5"}));
  // A quantity keeps its ratio.
  EXPECT_NE(table.find("54 (0.68x)"), std::string::npos) << table;
}

TEST(FormatVerdict, NamesTheFastestTheLeanestTheWidestAndWhoQueues) {
  const std::vector<LabeledRun> runs = {
      Labelled("static", "static", 20.0, 25.0, 54, 54),
      Labelled("paged", "paged", 0.04, 4.0, 200, 34),
      Labelled("vattention_2MiB", "vattention", 0.03, 3.0, 180, 46)};
  // Fastest: 3.0 s = 0.75 x paged's 4.0 s. Static's TTFT p50 of 20 s is over 1 s and
  // over 10 x the best 0.03 s, so it is the one that queues.
  EXPECT_EQ(FormatVerdict(runs),
            "verdict: lowest E2E p50 vattention_2MiB (3.000 s, 0.75x paged); least KV at peak "
            "paged (34.00 GiB); largest batch paged (200 running); static queues (TTFT p50 > 1 s "
            "and 10x the best)\n");
}

TEST(FormatVerdict, NamesRunsWithinHalfAPercentOfTheBestTogether) {
  // E2E p50 3.000 s and 3.010 s (0.33% apart) tie; 3.100 s (3.3%) does not. Every run has
  // the same batch: alike. KV 1,000 GiB against 1,004 GiB (0.4%) tie, 1,100 does not.
  const std::vector<LabeledRun> runs = {Labelled("paged", "paged", 0.04, 3.1, 200, 1004),
                                        Labelled("a", "vattention", 0.04, 3.0, 200, 1000),
                                        Labelled("b", "vattention", 0.04, 3.01, 200, 1100)};
  EXPECT_THAT(FormatVerdict(runs),
              HasSubstr("verdict: lowest E2E p50 a, b (3.000 s, 0.97x paged); least KV at peak "
                        "a, paged (1000.00 GiB); largest batch alike in every run (200 running)"));
}

TEST(FormatVerdict, NamesTheBestOfATieFirstSinceItsFigureIsPrinted) {
  // paged 5.634 s, va 5.620 s (the best), va2 5.636 s: all within 0.5% of 5.620.
  const std::vector<LabeledRun> runs = {Labelled("paged", "paged", 0.04, 5.634, 10, 30),
                                        Labelled("va", "vattention", 0.04, 5.620, 11, 31),
                                        Labelled("va2", "vattention", 0.04, 5.636, 12, 32)};
  EXPECT_THAT(FormatVerdict(runs), HasSubstr("lowest E2E p50 alike in every run (5.620 s)"));
  const std::vector<LabeledRun> two = {runs[0], runs[1],
                                       Labelled("static", "static", 0.04, 9.0, 5, 30)};
  EXPECT_THAT(FormatVerdict(two), HasSubstr("lowest E2E p50 va, paged (5.620 s)"));
}

TEST(FormatVerdict, SaysTheCacheFilledInEveryRunRatherThanNamingTheLeastPeak) {
  // Capacity 4.05 GiB: static and vattention peak at 3.75 (93%), paged at 4.0 (99%):
  // the lower peaks are granularity stranding memory, not a saving.
  std::vector<LabeledRun> runs = {Labelled("static", "static", 5.0, 60.0, 3, 0),
                                  Labelled("paged", "paged", 0.5, 2.0, 16, 0),
                                  Labelled("vattention_2MiB", "vattention", 0.6, 2.2, 12, 0)};
  const int64_t capacity = 4348654387;  // 4.05 GiB
  const int64_t peaks[] = {4026531840, 4294967296, 4026531840};
  for (size_t i = 0; i < runs.size(); ++i) {
    runs[i].summary.kv_capacity_bytes = capacity;
    runs[i].summary.peak_allocated_bytes = peaks[i];
  }
  const std::string full = FormatVerdict(runs);
  EXPECT_THAT(full, HasSubstr("; the KV cache filled in every run (peak within 10% of its "
                              "capacity: memory binds); largest batch paged (16 running)"));
  EXPECT_THAT(full, Not(HasSubstr("least KV at peak")));
  // One run with room left: the least peak is named again.
  runs[2].summary.peak_allocated_bytes = capacity / 2;
  EXPECT_THAT(FormatVerdict(runs), HasSubstr("least KV at peak vattention_2MiB (2.02 GiB)"));
}

TEST(FormatVerdict, SaysEveryRunKeepsUpWhenNoneQueues) {
  const std::vector<LabeledRun> runs = {Labelled("paged", "paged", 0.04, 4.0, 200, 34),
                                        Labelled("paged32", "paged", 0.9, 4.5, 190, 35)};
  // 0.9 s is 22x the best TTFT p50 but under 1 s: not queueing. The fastest is paged
  // itself, so no ratio is printed.
  const std::string v = FormatVerdict(runs);
  EXPECT_THAT(v, HasSubstr("lowest E2E p50 paged (4.000 s); "));
  EXPECT_THAT(v, HasSubstr("every run keeps up with the load"));
}

TEST(FormatVerdict, NamesOverloadedRunsAndNeverSaysEveryRunKeepsUpWhenAllAre) {
  std::vector<LabeledRun> runs = {Labelled("paged", "paged", 90.0, 100.0, 57, 24),
                                  Labelled("vattention_2MiB", "vattention", 65.0, 75.0, 57, 27)};
  // Both queues grew through the trace: neither 90 s nor 65 s is 10x the other, so
  // only the overload flag tells that no run keeps up.
  runs[0].summary.overloaded = runs[1].summary.overloaded = true;
  std::string v = FormatVerdict(runs);
  EXPECT_THAT(v, HasSubstr("no run keeps up with the load"));
  EXPECT_THAT(v, Not(HasSubstr("every run keeps up")));
  // One overloaded run is named; the other keeps up.
  runs[1].summary.overloaded = false;
  v = FormatVerdict(runs);
  EXPECT_THAT(v, HasSubstr("; paged does not keep up with the load"));
  EXPECT_THAT(v, HasSubstr("(57 running); paged does not keep up"));
  EXPECT_THAT(v, Not(HasSubstr("every run keeps up")));
}

TEST(FormatVerdict, NamesRunsWhoseMedianRequestWaitsOverASecondEvenWhenAllDo) {
  // Every run's TTFT p50 is 18-26 s, none 10x another's, and no queue grew through the
  // trace (a load that rises and falls): the median waits of 18.0 and 25.7 s before a
  // first iteration still say neither keeps up.
  std::vector<LabeledRun> runs = {Labelled("paged", "paged", 18.03, 60.0, 57, 24),
                                  Labelled("vattention_2MiB", "vattention", 25.74, 70.0, 57, 27)};
  runs[0].summary.queue_s.p50 = 18.0;
  runs[1].summary.queue_s.p50 = 25.7;
  const std::string v = FormatVerdict(runs);
  EXPECT_THAT(v, HasSubstr("; paged, vattention_2MiB queue (median wait before the first "
                           "iteration 18 s, 25.7 s, over 1 s)"));
  EXPECT_THAT(v, Not(HasSubstr("keeps up")));
}

TEST(FormatVerdict, SaysHowManyRequestsEachRunRefused) {
  std::vector<LabeledRun> runs = {Labelled("paged", "paged", 0.04, 4.0, 200, 34),
                                  Labelled("static", "static", 0.05, 4.1, 50, 60)};
  for (LabeledRun& r : runs) {
    r.summary.requests_total = 1000;
    r.summary.requests_rejected = 547;
  }
  EXPECT_THAT(FormatVerdict(runs), HasSubstr("; every run refuses 547 of 1000 requests (prompt "
                                             "at or past max_model_len: in no latency above"));
  runs[1].summary.requests_rejected = 0;
  const std::string one = FormatVerdict(runs);
  EXPECT_THAT(one, HasSubstr("; paged refuses 547 of 1000 requests (prompt"));
  EXPECT_THAT(one, Not(HasSubstr("static refuses")));
  runs[0].summary.requests_rejected = 0;
  EXPECT_THAT(FormatVerdict(runs), Not(HasSubstr("refuses")));
  // A run that refused every request completed none, and is still named.
  runs[1].summary.requests_completed = 0;
  runs[1].summary.requests_rejected = 1000;
  EXPECT_THAT(FormatVerdict(runs), HasSubstr("; static refuses 1000 of 1000 requests (prompt"));
}

TEST(FormatCompareTable, ShowsRefusedAndTruncatedRowsOnlyWhenARunHasThem) {
  std::vector<LabeledRun> runs = {Labelled("paged", "paged", 0.04, 4.0, 200, 34),
                                  Labelled("static", "static", 0.05, 4.1, 50, 60)};
  EXPECT_THAT(FormatCompareTable(runs), Not(HasSubstr("requests refused")));
  runs[1].summary.requests_truncated = 3;
  const std::string table = FormatCompareTable(runs);
  const size_t at = table.find("requests truncated");
  ASSERT_NE(at, std::string::npos) << table;
  EXPECT_EQ(Cells(table.substr(at, table.find('\n', at) - at)),
            (std::vector<std::string>{"requests truncated", "0", "3"}));
  EXPECT_THAT(table, HasSubstr("requests refused"));
}

TEST(FormatVerdict, IsEmptyWithoutRuns) { EXPECT_EQ(FormatVerdict({}), ""); }

TEST(FormatVerdict, IgnoresARunThatCompletedNothing) {
  std::vector<LabeledRun> runs = {Labelled("paged", "paged", 0.04, 4.0, 200, 34),
                                  Labelled("broken", "static", 0, 0, 0, 0)};
  runs[1].summary.requests_completed = 0;  // its zero latencies are no result
  EXPECT_THAT(FormatVerdict(runs), HasSubstr("lowest E2E p50 paged (4.000 s)"));
  runs[0].summary.requests_completed = 0;
  EXPECT_EQ(FormatVerdict(runs), "verdict: no run completed a request\n");
}

TEST(FormatVerdict, ComparesWithTheRunLabelledPagedAsTheTableDoes) {
  // paged32 comes first, but the table's ratios are to 'paged'.
  const std::vector<LabeledRun> runs = {Labelled("paged32", "paged", 0.05, 5.0, 180, 35),
                                        Labelled("paged", "paged", 0.04, 4.0, 200, 34),
                                        Labelled("vattention", "vattention", 0.03, 2.0, 150, 40)};
  EXPECT_THAT(FormatVerdict(runs), HasSubstr("(2.000 s, 0.50x paged)"));
}

std::unique_ptr<Simulation> Build(const std::vector<std::string>& sets) {
  ConfigTree tree = ConfigTree::Parse(R"(model: Llama-3-8B
gpu: H100-SXM
workload:
  trace: ../traces/splitwise_conv.csv
  max_requests: 4
)",
                                      KVSIM_SOURCE_DIR "/configs/outputs_test.yaml");
  for (const std::string& s : sets) tree.Set(s);
  return BuildSimulation(DecodeScenario(tree, KVSIM_SOURCE_DIR "/models"));
}

TEST(TimingOutputs, TheTimingLineNamesTheModelTheEngineAndThePagedKernel) {
  EXPECT_EQ(Build({})->TimingLine(), "timing: roofline; engine vllm_v1; paged kernel flash_paged");
  EXPECT_EQ(
      Build({"kv_cache.paged_kernel=vllm_paged", "timing.engine.preset=vllm_v0"})->TimingLine(),
      "timing: roofline; engine vllm_v0; paged kernel vllm_paged");
  EXPECT_EQ(Build({"kv_cache.type=vattention", "kv_cache.page_bytes=64KiB"})->TimingLine(),
            "timing: roofline; engine vllm_v1; VMM backend uvm");
  EXPECT_EQ(Build({"timing.type=fixed"})->TimingLine(), "timing: fixed");
}

TEST(TimingOutputs, AssumptionsListTheEnginePresetThePagedKernelAndTheUvmCost) {
  const auto joined = [](const std::vector<std::string>& v) {
    std::string all;
    for (const std::string& s : v) all += s + "\n";
    return all;
  };
  const std::string paged = joined(Build({})->timing_assumptions());
  EXPECT_THAT(paged, HasSubstr("timing.engine: preset vllm_v1"));
  EXPECT_THAT(paged, HasSubstr("kv_cache.paged_kernel: flash_paged"));
  // The H100 card states all four efficiencies, so no generic one is assumed.
  EXPECT_THAT(paged, Not(HasSubstr("generic")));
  const std::string small_pages = joined(
      Build({"kv_cache.type=vattention", "kv_cache.page_bytes=64KiB"})->timing_assumptions());
  EXPECT_THAT(small_pages, HasSubstr("uvm backend"));
  EXPECT_THAT(small_pages, Not(HasSubstr("paged_kernel")));
  // The RTX 4090 card states its memory and GEMM efficiencies: the attention ones are
  // generic.
  const std::string rtx = joined(Build({"gpu=RTX-4090"})->timing_assumptions());
  EXPECT_THAT(rtx, HasSubstr("attention_decode_efficiency: the RTX-4090 card states none"));
  EXPECT_THAT(rtx, Not(HasSubstr("memory_efficiency")));
  EXPECT_THAT(rtx, Not(HasSubstr("gemm_efficiency")));
}

TEST(TimingOutputs, SummaryJsonCarriesTheTimingModelAndItsAssumptions) {
  std::unique_ptr<Simulation> sim = Build({});
  const Summary s = sim->Run().summary;
  const std::string json = SummaryJson(s, *sim);
  EXPECT_THAT(json, HasSubstr("\"timing\": {"));
  EXPECT_THAT(json, HasSubstr("\"model\": \"roofline\""));
  EXPECT_THAT(json, HasSubstr("\"engine_preset\": \"vllm_v1\""));
  EXPECT_THAT(json, HasSubstr("\"paged_kernel\": \"flash_paged\""));
  EXPECT_THAT(json, HasSubstr("\"assumptions\": ["));
  EXPECT_THAT(FormatSummary(s, *sim), HasSubstr("  assumed: timing.engine: preset vllm_v1"));
}

}  // namespace
}  // namespace kvsim
