// RunOutputWriter: the rows it streams, worked out by hand from made-up iterations and
// requests, in both timeseries layouts; files appear only when complete.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "sim/config/yaml_tree.h"
#include "sim/core/check.h"
#include "sim/core/file_writer.h"
#include "sim/core/json_value.h"
#include "sim/simulator/builder.h"
#include "sim/simulator/outputs.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileText;
using testing::TempDir;

Nanos Ms(int64_t ms) { return Nanos(ms * 1'000'000); }

IterationSample Iteration(int64_t replica, int64_t start_ms, int64_t duration_ms, int64_t running,
                          int64_t waiting, int64_t allocated, int64_t live) {
  IterationSample x;
  x.replica = replica;
  x.start = Ms(start_ms);
  x.duration = Ms(duration_ms);
  x.running = running;
  x.waiting = waiting;
  x.prefill_tokens = 10 * running;
  x.decode_tokens = running;
  x.allocated_bytes = allocated;
  x.live_bytes = live;
  x.cached_bytes = 0;
  x.exposed_overhead = Ms(duration_ms > 20 ? 1 : 0);
  return x;
}

// A one-request run to hand to Finish (its summary and config are not checked here).
struct Finisher {
  Finisher() {
    ConfigTree tree = ConfigTree::Parse(
        "model: Llama-3-8B\ngpu: H100-SXM\nworkload: {trace: ../traces/splitwise_conv.csv, "
        "max_requests: 1}\n",
        KVSIM_SOURCE_DIR "/configs/run_output_writer_test.yaml");
    sim = BuildSimulation(DecodeScenario(tree, KVSIM_SOURCE_DIR "/models"));
    summary = sim->Run().summary;
  }
  std::unique_ptr<Simulation> sim;
  Summary summary;
};

TEST(RunOutputWriter, OneRowPerIterationWhenTheIntervalIsZero) {
  TempDir dir;
  OutputConfig out;
  out.timeseries_interval = Nanos(0);
  RunOutputWriter w(dir.path(), out);
  w.OnIteration(Iteration(0, 0, 10, 2, 1, 4096, 2048));
  w.OnIteration(Iteration(0, 10, 30, 3, 0, 8192, 6000));
  Finisher f;
  w.Finish(*f.sim, f.summary, "seed: 1\n");
  EXPECT_EQ(ReadFileText(dir.path() / "timeseries.csv"),
            "time_s,replica,duration_s,running,waiting,prefill_tokens,decode_tokens,"
            "allocated_bytes,live_bytes,cached_bytes,exposed_overhead_s\n"
            "0.000000000,0,0.010000000,2,1,20,2,4096,2048,0,0.000000000\n"
            "0.010000000,0,0.030000000,3,0,30,3,8192,6000,0,0.001000000\n");
}

TEST(RunOutputWriter, IntervalRowsAggregateTheIterationsThatStartInThem) {
  TempDir dir;
  OutputConfig out;
  out.timeseries_interval = Ms(100);
  RunOutputWriter w(dir.path(), out);
  // Replica 0: two iterations start in [0, 100) ms, one in [200, 300) (none in
  // [100, 200): no row). Replica 1: one iteration in [0, 100), starting at 90 ms
  // and running past 100 ms; it counts wholly in its start interval.
  w.OnIteration(Iteration(0, 0, 10, 2, 1, 1000, 500));
  w.OnIteration(Iteration(0, 10, 30, 4, 3, 2000, 1000));
  w.OnIteration(Iteration(1, 90, 40, 1, 0, 700, 700));
  w.OnIteration(Iteration(0, 250, 20, 1, 0, 300, 100));
  Finisher f;
  w.Finish(*f.sim, f.summary, "seed: 1\n");
  // Replica 0, [0, 100): busy 40 ms; mean running (10 x 2 + 30 x 4) / 40 = 3.5;
  // max running 4, max waiting 3; prefill 20 + 40, decode 2 + 4; mean allocated
  // (10 x 1000 + 30 x 2000) / 40 = 1750, peak 2000; mean live (5000 + 30000) / 40 =
  // 875; exposed 0 + 1 ms. Replica 0's iteration at 250 ms opens a later interval,
  // so every replica's rows of [0, 100) are written, by replica; the row still open
  // at Finish follows.
  EXPECT_EQ(ReadFileText(dir.path() / "timeseries.csv"),
            "time_s,replica,interval_s,iterations,busy_s,mean_running,max_running,max_waiting,"
            "prefill_tokens,decode_tokens,mean_allocated_bytes,peak_allocated_bytes,"
            "mean_live_bytes,mean_cached_bytes,exposed_overhead_s\n"
            "0.000000000,0,0.100000000,2,0.040000000,3.5,4,3,60,6,1750,2000,875,0,0.001000000\n"
            "0.000000000,1,0.100000000,1,0.040000000,1,1,0,10,1,700,700,700,0,0.001000000\n"
            "0.200000000,0,0.100000000,1,0.020000000,1,1,0,10,1,300,300,100,0,0.000000000\n");
}

TEST(RunOutputWriter, RequestRowsAreWrittenAsRequestsFinish) {
  TempDir dir;
  RunOutputWriter w(dir.path(), OutputConfig{});
  RequestRecord r;
  r.id = 3;
  r.replica = 1;
  r.arrival = Ms(1500);
  r.first_scheduled = Ms(1510);
  r.first_token = Ms(1600);
  r.finish = Nanos(2'000'000'001);
  r.prompt_tokens = 128;
  r.output_tokens = 7;
  r.preemptions = 2;
  w.OnRequest(r);
  EXPECT_FALSE(fs::exists(dir.path() / "requests.csv"));  // complete only after Finish
  Finisher f;
  w.Finish(*f.sim, f.summary, "seed: 1\n");
  EXPECT_EQ(ReadFileText(dir.path() / "requests.csv"),
            "id,replica,arrival_s,first_scheduled_s,first_token_s,finish_s,prompt_tokens,"
            "output_tokens,preemptions\n"
            "3,1,1.500000000,1.510000000,1.600000000,2.000000001,128,7,2\n");
  EXPECT_EQ(ReadFileText(dir.path() / "config.yaml"), "seed: 1\n");
  EXPECT_THAT(ReadFileText(dir.path() / "summary.json"),
              ::testing::HasSubstr("\"percentiles\": \"exact\""));
}

TEST(RunOutputWriter, ARunThatStopsPartWayLeavesNoCsvThatLooksWhole) {
  TempDir dir;
  {
    RunOutputWriter w(dir.path(), OutputConfig{});
    w.OnIteration(Iteration(0, 0, 10, 1, 0, 10, 10));
  }  // dropped without Finish, as when a trace turns out malformed part-way
  EXPECT_FALSE(fs::exists(dir.path() / "timeseries.csv"));
  EXPECT_FALSE(fs::exists(dir.path() / "requests.csv"));
  // No .partial files left either, and no manifest.
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(RunOutputWriter, TheManifestListsEveryFileWithItsSizeAndCrcAndComesLast) {
  TempDir dir;
  {
    RunOutputWriter w(dir.path(), OutputConfig{});
    w.OnIteration(Iteration(0, 0, 10, 1, 0, 10, 10));
    Finisher f;
    w.Finish(*f.sim, f.summary, "seed: 1\n");
  }
  const JsonValue manifest = ParseJson(ReadFileText(dir.path() / "manifest.json"), "manifest.json");
  const JsonValue& files = manifest.At("files");
  ASSERT_EQ(files.size(), 4u);
  const std::vector<std::string> names = {"timeseries.csv", "requests.csv", "summary.json",
                                          "config.yaml"};
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string text = ReadFileText(dir.path() / names[i]);
    const uint32_t crc = Crc32Update(0xFFFFFFFFu, text) ^ 0xFFFFFFFFu;
    EXPECT_EQ(files.Element(i).At("name").AsString(), names[i]);
    EXPECT_EQ(files.Element(i).At("bytes").AsNumber(), static_cast<double>(text.size()));
    EXPECT_EQ(files.Element(i).At("crc32").AsString(), fmt::format("{:08x}", crc));
  }
}

TEST(RunOutputWriter, ACsvTurnedOffIsNotWritten) {
  TempDir dir;
  OutputConfig out;
  out.requests_csv = false;
  out.timeseries_csv = false;
  RunOutputWriter w(dir.path(), out);
  Finisher f;
  w.Finish(*f.sim, f.summary, "seed: 1\n");
  EXPECT_FALSE(fs::exists(dir.path() / "requests.csv"));
  EXPECT_FALSE(fs::exists(dir.path() / "timeseries.csv"));
  EXPECT_TRUE(fs::exists(dir.path() / "summary.json"));
}

}  // namespace
}  // namespace kvsim
