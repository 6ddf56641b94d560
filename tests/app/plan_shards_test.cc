// kvsim plan --shard I/N and kvsim plan merge: shards merged give the outputs of one
// unsharded run, and merge names what is wrong with a set of shards.
#include "sim/app/plan_shards.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/testing/input_error.h"
#include "tests/testing/kvsim_process.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::InputErrorMessage;
using testing::ReadFileText;
using testing::RunKvsim;
using testing::TempDir;

TEST(ParseShard, ReadsIOfN) {
  const ShardSpec s = ParseShard("2/3");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 3);
  EXPECT_EQ(ParseShard("0/1").count, 1);
}

TEST(ParseShard, RefusesAnythingButIBelowN) {
  for (const char* bad : {"3/3", "-1/2", "a/b", "1/0", "1", "1/2/3", "", "/2", "1/", " 1/2"}) {
    EXPECT_THAT(InputErrorMessage([&] { ParseShard(bad); }),
                HasSubstr(fmt::format("--shard: '{}' is not I/N", bad)))
        << bad;
  }
}

TEST(ShardIndices, StrideFromTheShardsIndexAndTogetherCoverEveryCandidateOnce) {
  EXPECT_THAT(ShardIndices(10, {1, 3}), ElementsAre(1u, 4u, 7u));
  EXPECT_TRUE(ShardIndices(2, {2, 3}).empty());
  std::multiset<size_t> all;
  for (int64_t i = 0; i < 4; ++i) {
    for (size_t k : ShardIndices(11, {i, 4})) all.insert(k);
  }
  EXPECT_EQ(all.size(), 11u);
  for (size_t k = 0; k < 11; ++k) EXPECT_EQ(all.count(k), 1u) << k;
}

// A 12-candidate plan on the quickstart scenario (fast: small probes), in `dir`.
std::string WritePlan(const TempDir& dir, const std::string& target = "qps: 12") {
  return dir.Write("plan.yaml", fmt::format(R"(scenario: {}/configs/quickstart.yaml
slo:
  ttft_s: {{p99: 2.0}}
  tbt_s: {{p99: 0.25}}
target:
  {}
search: {{initial_qps: 4, tolerance: 0.1, max_qps: 200, probe_requests: 200}}
candidates:
  gpus: [H100-SXM, A100-80GB]
  tensor_parallel: [1]
  kv_managers:
    - {{type: static}}
    - {{type: paged, block_tokens: 16}}
    - {{type: vattention, page_bytes: 2MiB}}
  schedulers:
    - {{type: vllm, max_num_seqs: 128}}
    - {{type: sarathi, chunk_tokens: 512}}
)",
                                            KVSIM_SOURCE_DIR, target));
}

// plan.json without its wall time (the one line that differs between any two runs).
std::string PlanJsonWithoutWallTime(const std::string& dir) {
  return std::regex_replace(ReadFileText(dir + "/plan.json"), std::regex("\"wall_s\": [-0-9.e+]+"),
                            "\"wall_s\": _");
}

void ExpectOk(const testing::Result& r) { ASSERT_EQ(r.exit_code, 0) << r.err; }

// Runs the plan whole into DIR/whole and as `n` shards into DIR/shardI.
void RunWholeAndShards(const TempDir& dir, const std::string& plan, int n) {
  ExpectOk(RunKvsim({"plan", plan, "--out", dir.PathOf("whole"), "-q", "--jobs", "2"}));
  for (int i = 0; i < n; ++i) {
    ExpectOk(RunKvsim({"plan", plan, "--shard", fmt::format("{}/{}", i, n), "--out",
                       dir.PathOf(fmt::format("shard{}", i)), "-q", "--jobs", "2"}));
  }
}

TEST(PlanMerge, ShardsMergedWriteTheOutputsOfOneUnshardedRun) {
  const TempDir dir;
  const std::string plan = WritePlan(dir);
  RunWholeAndShards(dir, plan, 3);
  // Any order of the directories.
  ExpectOk(RunKvsim({"plan", "merge", dir.PathOf("shard2"), dir.PathOf("shard0"),
                     dir.PathOf("shard1"), "--out", dir.PathOf("merged"), "-q"}));
  EXPECT_EQ(ReadFileText(dir.PathOf("merged/plan.csv")),
            ReadFileText(dir.PathOf("whole/plan.csv")));
  EXPECT_EQ(PlanJsonWithoutWallTime(dir.PathOf("merged")),
            PlanJsonWithoutWallTime(dir.PathOf("whole")));
  // And the printed plan is the same too, but for its wall time.
  const auto printed = [&](const std::vector<std::string>& args) {
    const testing::Result r = RunKvsim(args);
    return std::regex_replace(r.out, std::regex("simulations in [0-9.]+ s"), "simulations")
        .substr(0, r.out.find("outputs written to"));
  };
  EXPECT_EQ(printed({"plan", "merge", dir.PathOf("shard0"), dir.PathOf("shard1"),
                     dir.PathOf("shard2"), "--out", dir.PathOf("merged2")}),
            printed({"plan", plan, "--out", dir.PathOf("whole2"), "--jobs", "2"}));
}

// A plan of two scenarios (the conversation and code traces), 3 candidates each.
std::string WriteTwoScenarioPlan(const TempDir& dir) {
  return dir.Write("plan2.yaml", fmt::format(R"(slo: {{ttft_s: {{p99: 4.0}}, tbt_s: {{p99: 0.25}}}}
combine: separate_fleets
scenarios:
  - {{name: chat, scenario: {0}/configs/quickstart.yaml, target: {{qps: 12}}}}
  - name: code
    scenario: {0}/configs/quickstart.yaml
    set: {{workload.trace: {0}/traces/AzureLLMInferenceTrace_code.csv}}
    target: {{qps: 4}}
search: {{initial_qps: 2, tolerance: 0.1, max_qps: 200, probe_requests: 200}}
candidates:
  gpus: [H100-SXM]
  tensor_parallel: [1]
  kv_managers: [{{type: static}}, {{type: paged, block_tokens: 16}}, {{type: vattention, page_bytes: 2MiB}}]
  schedulers: [{{type: vllm, max_num_seqs: 128}}]
)",
                                             KVSIM_SOURCE_DIR));
}

TEST(PlanMerge, ShardsOfAPlanOfSeveralScenariosMergeToItsOutputs) {
  const TempDir dir;
  const std::string plan = WriteTwoScenarioPlan(dir);
  RunWholeAndShards(dir, plan, 4);  // 6 evaluations over 4 shards
  ExpectOk(
      RunKvsim({"plan", "merge", dir.PathOf("shard3"), dir.PathOf("shard1"), dir.PathOf("shard0"),
                dir.PathOf("shard2"), "--out", dir.PathOf("merged"), "-q"}));
  for (const char* file : {"plan.csv", "plan_scenarios.csv"}) {
    SCOPED_TRACE(file);
    EXPECT_EQ(ReadFileText(dir.PathOf("merged/") + file),
              ReadFileText(dir.PathOf("whole/") + file));
  }
  EXPECT_EQ(PlanJsonWithoutWallTime(dir.PathOf("merged")),
            PlanJsonWithoutWallTime(dir.PathOf("whole")));
  EXPECT_NE(ReadFileText(dir.PathOf("whole/plan_scenarios.csv")).find(",code,H100-SXM,"),
            std::string::npos);
}

TEST(PlanMerge, AMissingOrKilledShardIsNamed) {
  const TempDir dir;
  const std::string plan = WritePlan(dir);
  RunWholeAndShards(dir, plan, 3);
  const testing::Result missing = RunKvsim(
      {"plan", "merge", dir.PathOf("shard0"), dir.PathOf("shard2"), "--out", dir.PathOf("m")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("shard 1/3 missing: merge needs all 3 shards' directories"));
  EXPECT_FALSE(fs::exists(dir.PathOf("m")));

  // A shard killed before it finished leaves no shard.json (its outputs are staged).
  fs::create_directory(dir.PathOf("killed"));
  const testing::Result killed =
      RunKvsim({"plan", "merge", dir.PathOf("shard0"), dir.PathOf("killed"), dir.PathOf("shard2"),
                "--out", dir.PathOf("m")});
  EXPECT_EQ(killed.exit_code, 2);
  EXPECT_THAT(killed.err, HasSubstr(dir.PathOf("killed") + ": no shard.json: the shard did not "
                                                           "finish"));
}

TEST(PlanMerge, ATruncatedShardFileIsAnErrorNamingIt) {
  const TempDir dir;
  const std::string plan = WritePlan(dir);
  RunWholeAndShards(dir, plan, 2);
  const std::string path = dir.PathOf("shard1/shard.json");
  const std::string text = ReadFileText(path);
  dir.Write("shard1/shard.json", text.substr(0, text.size() / 2));
  const testing::Result r = RunKvsim(
      {"plan", "merge", dir.PathOf("shard0"), dir.PathOf("shard1"), "--out", dir.PathOf("m")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(path));
}

TEST(PlanMerge, ShardsOfAnEditedPlanOrTheSameShardTwiceAreRefused) {
  const TempDir dir;
  const std::string plan = WritePlan(dir);
  RunWholeAndShards(dir, plan, 2);
  const testing::Result twice = RunKvsim(
      {"plan", "merge", dir.PathOf("shard0"), dir.PathOf("shard0"), "--out", dir.PathOf("m")});
  EXPECT_EQ(twice.exit_code, 2);
  EXPECT_THAT(twice.err, HasSubstr("both hold shard 0/2"));

  WritePlan(dir, "qps: 13");  // the plan edited after the shards ran
  const testing::Result edited = RunKvsim(
      {"plan", "merge", dir.PathOf("shard0"), dir.PathOf("shard1"), "--out", dir.PathOf("m")});
  EXPECT_EQ(edited.exit_code, 2);
  EXPECT_THAT(edited.err, HasSubstr("a shard of another plan, or of this plan before an edit"));
}

TEST(PlanShard, UnderMpirunOrWithSetIsRefusedAndMergeNeedsOut) {
  const TempDir dir;
  const std::string plan = WritePlan(dir);
  const testing::Result no_out = RunKvsim({"plan", "merge", dir.PathOf("shard0")});
  EXPECT_EQ(no_out.exit_code, 2);
  EXPECT_THAT(no_out.err, HasSubstr("--out DIR is required"));
  const testing::Result bad = RunKvsim({"plan", plan, "--shard", "2/2"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--shard: '2/2' is not I/N"));
}

}  // namespace
}  // namespace kvsim
