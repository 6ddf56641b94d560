// Skip-ahead changes how fast the event loop goes, never what it computes: every
// bundled trace under every KV manager and scheduler (and a tight KV cache, two
// replicas, the profiled and fixed timing models) gives byte-identical
// summary.json, requests.csv and timeseries.csv (per iteration and per interval)
// with skip-ahead on and off.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "sim/config/yaml_tree.h"
#include "sim/simulator/builder.h"
#include "sim/simulator/outputs.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileText;
using testing::TempDir;

struct Outputs {
  std::string summary, requests, timeseries;
  int64_t events = 0;
};

// Runs `yaml` with `sets` and skip-ahead on or off, timeseries.csv per iteration
// (`interval_s` 0) or per interval; the summary without the event loop's own
// figures (wall time, events handled).
Outputs RunOnce(const std::string& yaml, const std::vector<std::string>& sets, bool skip_ahead,
                const fs::path& dir, double interval_s = 0) {
  ConfigTree tree = ConfigTree::Parse(yaml, KVSIM_SOURCE_DIR "/configs/skip_ahead_test.yaml");
  for (const std::string& s : sets) tree.Set(s);
  tree.Set(fmt::format("simulation.skip_ahead={}", skip_ahead));
  tree.Set(fmt::format("output.timeseries_interval_s={}", interval_s));
  const ScenarioConfig config = DecodeScenario(tree, KVSIM_SOURCE_DIR "/models");
  std::unique_ptr<Simulation> sim = BuildSimulation(config);
  RunOutputWriter writer(dir, config.output);
  sim->AddObserver(&writer);
  Summary summary = sim->Run().summary;
  const int64_t events = summary.events;
  summary.wall_s = 0;
  summary.events = 0;
  writer.Finish(*sim, summary, "");
  return {ReadFileText(dir / "summary.json"), ReadFileText(dir / "requests.csv"),
          ReadFileText(dir / "timeseries.csv"), events};
}

struct Case {
  std::string name;
  std::string trace;  // under traces/
  std::vector<std::string> sets;
  bool expect_skips = true;  // skip-ahead must handle fewer events than stepping
};

// The (time_s, replica) of every row of a timeseries.csv, in file order.
std::vector<std::pair<double, int>> RowKeys(const std::string& csv) {
  std::vector<std::pair<double, int>> keys;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    const size_t a = line.find(',');
    keys.emplace_back(std::stod(line.substr(0, a)), std::stoi(line.substr(a + 1)));
  }
  return keys;
}

std::string Yaml(const std::string& trace) {
  return fmt::format(R"(seed: 7
model: Llama-3-8B
gpu: H100-SXM
workload:
  trace: ../traces/{}
  arrival: {{process: poisson, rate_qps: 6}}
  lengths: {{source: trace}}
  max_requests: 250
)",
                     trace);
}

class SkipAheadTest : public ::testing::TestWithParam<Case> {};

TEST_P(SkipAheadTest, GivesTheSameOutputsAsSteppingEveryIteration) {
  const Case& c = GetParam();
  TempDir dir;
  const Outputs fast = RunOnce(Yaml(c.trace), c.sets, true, dir.path() / "skip");
  const Outputs slow = RunOnce(Yaml(c.trace), c.sets, false, dir.path() / "step");
  EXPECT_EQ(fast.summary, slow.summary);
  EXPECT_TRUE(fast.requests == slow.requests) << "requests.csv differs";
  EXPECT_TRUE(fast.timeseries == slow.timeseries) << "timeseries.csv differs";
  const std::vector<std::pair<double, int>> keys = RowKeys(fast.timeseries);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end())) << "rows out of (time, replica) order";
  EXPECT_GT(slow.requests.size(), 1000u);  // the runs did complete requests
  if (c.expect_skips) {
    EXPECT_LT(fast.events, slow.events) << "skip-ahead never advanced over a run";
  } else {
    EXPECT_EQ(fast.events, slow.events);
  }
}

std::vector<Case> Cases() {
  const std::vector<std::string> traces = {
      "AzureLLMInferenceTrace_code.csv",
      "AzureLLMInferenceTrace_conv.csv",
      "arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv",
      "sharegpt_8k_filtered_stats_llama2_tokenizer.csv",
      "splitwise_code.csv",
      "splitwise_conv.csv",
      "synthetic_trace.jsonl",
      "vllm019_sharegpt_rtx4090.csv",
      "vllm019_sharegpt_rtxpro6000.csv"};
  const std::vector<std::pair<std::string, std::vector<std::string>>> managers = {
      {"static", {"kv_cache.type=static"}},
      {"paged", {"kv_cache.type=paged"}},
      {"paged_prefix", {"kv_cache.type=paged", "kv_cache.prefix_caching=true"}},
      {"vattention_2MiB", {"kv_cache.type=vattention", "kv_cache.page_bytes=2MiB"}},
      {"vattention_64KiB", {"kv_cache.type=vattention", "kv_cache.page_bytes=64KiB"}},
      {"vattention_2MiB_prefix",
       {"kv_cache.type=vattention", "kv_cache.page_bytes=2MiB", "kv_cache.prefix_caching=true"}},
      {"vattention_64KiB_prefix",
       {"kv_cache.type=vattention", "kv_cache.page_bytes=64KiB", "kv_cache.prefix_caching=true"}}};
  const std::vector<std::pair<std::string, std::vector<std::string>>> schedulers = {
      {"vllm", {"scheduler.type=vllm"}},
      {"sarathi", {"scheduler.type=sarathi", "scheduler.chunk_tokens=512"}},
      {"static_batching", {"scheduler.type=static_batching", "scheduler.max_num_seqs=32"}},
      {"vllm_v1", {"scheduler.type=vllm_v1", "kv_cache.watermark=0"}}};
  std::vector<Case> cases;
  for (size_t t = 0; t < traces.size(); ++t) {
    for (const auto& [manager, manager_sets] : managers) {
      for (const auto& [scheduler, scheduler_sets] : schedulers) {
        Case c;
        c.name = fmt::format("trace{}_{}_{}", t, manager, scheduler);
        c.trace = traces[t];
        c.sets = manager_sets;
        c.sets.insert(c.sets.end(), scheduler_sets.begin(), scheduler_sets.end());
        cases.push_back(std::move(c));
      }
    }
  }
  // A KV cache too small for the load: preemptions, and runs cut short by the
  // blocks left.
  for (const char* scheduler : {"vllm", "sarathi", "vllm_v1"}) {
    cases.push_back({fmt::format("tight_paged_{}", scheduler),
                     "splitwise_conv.csv",
                     {"kv_cache.type=paged", fmt::format("scheduler.type={}", scheduler),
                      "kv_cache.watermark=0", "deployment.kv_capacity_bytes=2GiB",
                      "workload.arrival.rate_qps=20"}});
  }
  // vAttention's mapping and reclamation modes, with a tight cache so that pages
  // are mapped, reused and reclaimed between runs.
  for (const char* overlap : {"true", "false"}) {
    for (const char* deferred : {"true", "false"}) {
      for (const char* page : {"2MiB", "64KiB"}) {
        cases.push_back(
            {fmt::format("vattention_{}_overlap_{}_deferred_{}", page, overlap, deferred),
             "AzureLLMInferenceTrace_conv.csv",
             {"kv_cache.type=vattention", fmt::format("kv_cache.page_bytes={}", page),
              fmt::format("kv_cache.overlap={}", overlap),
              fmt::format("kv_cache.deferred_reclaim={}", deferred),
              "deployment.kv_capacity_bytes=4GiB", "workload.arrival.rate_qps=16"}});
      }
    }
  }
  // vAttention's prefix cache in each mode, on multi-turn sessions (each turn's prompt
  // holds its session's conversation so far) with a tight cache: page groups shared,
  // mapped into several ranges, evicted, reused in place.
  for (const char* overlap : {"true", "false"}) {
    for (const char* deferred : {"true", "false"}) {
      for (const char* page : {"2MiB", "64KiB"}) {
        cases.push_back(
            {fmt::format("vattention_prefix_{}_overlap_{}_deferred_{}", page, overlap, deferred),
             "AzureLLMInferenceTrace_conv.csv",
             {"kv_cache.type=vattention", "kv_cache.prefix_caching=true",
              fmt::format("kv_cache.page_bytes={}", page),
              fmt::format("kv_cache.overlap={}", overlap),
              fmt::format("kv_cache.deferred_reclaim={}", deferred), "workload.sessions.turns=4",
              "workload.sessions.think_time_s=2", "deployment.kv_capacity_bytes=4GiB",
              "workload.arrival.rate_qps=16"}});
      }
    }
  }
  // Two replicas: runs on one replica while the other steps.
  for (const char* router : {"round_robin", "least_outstanding"}) {
    cases.push_back({fmt::format("two_replicas_{}", router),
                     "AzureLLMInferenceTrace_conv.csv",
                     {"deployment.replicas=2", fmt::format("deployment.router={}", router),
                      "workload.arrival.rate_qps=12"}});
  }
  // Recorded arrivals, an engine delay before scheduling, and the other timing models.
  cases.push_back({"trace_arrivals_with_request_delay",
                   "AzureLLMInferenceTrace_conv.csv",
                   {"workload.arrival.process=trace", "timing.engine.request_arrival_s=0.004"}});
  cases.push_back({"profiled_timing",
                   "splitwise_conv.csv",
                   {"gpu=H100-SXM", "timing.type=profiled",
                    "timing.profile=" KVSIM_SOURCE_DIR "/models/profiles/H100-SXM/profile.txt"}});
  cases.push_back({"fixed_timing", "splitwise_conv.csv", {"timing.type=fixed"}});
  return cases;
}

// Per-interval rows close when a replica starts an iteration in a later interval;
// with skip-ahead a replica may do so long before another finishes the interval.
// Rows still come by (interval, replica), the same either way.
TEST(SkipAheadIntervals, TwoReplicasWriteTheSameIntervalRowsInTimeOrder) {
  TempDir dir;
  const std::vector<std::string> sets = {"deployment.replicas=2",
                                         "deployment.router=least_outstanding",
                                         "workload.arrival.rate_qps=3"};
  const std::string yaml = Yaml("AzureLLMInferenceTrace_code.csv");
  const Outputs fast = RunOnce(yaml, sets, true, dir.path() / "skip", 1.0);
  const Outputs slow = RunOnce(yaml, sets, false, dir.path() / "step", 1.0);
  EXPECT_TRUE(fast.timeseries == slow.timeseries) << "timeseries.csv differs";
  const std::vector<std::pair<double, int>> keys = RowKeys(fast.timeseries);
  EXPECT_GT(keys.size(), 20u);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end())) << "rows out of (time, replica) order";
  EXPECT_LT(fast.events, slow.events);
}

INSTANTIATE_TEST_SUITE_P(EveryTraceManagerAndScheduler, SkipAheadTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           return param_info.param.name;
                         });

}  // namespace
}  // namespace kvsim
