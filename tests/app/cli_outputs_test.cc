// What kvsim leaves in --out when a run is killed, when the disk fills, when a
// second run starts beside it and when --out holds other files: the earlier
// complete outputs or the new complete ones, never a mix, and never a user's files
// replaced. Through the real binary.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sim/core/file_writer.h"
#include "sim/core/json_value.h"
#include "tests/testing/kvsim_process.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ReadFileText;
using testing::Result;
using testing::RunKvsim;
using testing::SpawnKvsim;
using testing::TempDir;
using testing::WaitKvsim;

// A run of `requests` resampled requests with one timeseries row per iteration (about
// 2.7 KB per request), so that writing takes a while; `seed` tells two runs apart.
std::vector<std::string> LongRun(const TempDir& dir, const fs::path& out, int seed,
                                 int requests = 10'000) {
  const std::string config =
      dir.Write("long.yaml",
                "model: Llama-2-7B\ngpu: H100-SXM\n"
                "workload:\n  trace: " KVSIM_SOURCE_DIR
                "/traces/splitwise_conv.csv\n"
                "  arrival: {process: poisson, rate_qps: 4}\n  lengths: {source: resample}\n"
                "scheduler: {type: sarathi, chunk_tokens: 512, max_num_seqs: 128}\n"
                "kv_cache: {type: paged}\n"
                "output: {timeseries_interval_s: 0}\n");
  return {"run",     config,
          "--set",   fmt::format("seed={}", seed),
          "--set",   fmt::format("workload.max_requests={}", requests),
          "--out",   out.string(),
          "--force", "-q"};
}

// Checks that `out` holds one run's outputs whole: a manifest listing exactly the
// other files, each of the listed size and CRC-32. Returns the run's seed (from its
// config.yaml), or -1 after recording a failure.
int WholeRunSeed(const fs::path& out) {
  const std::string manifest_text = ReadFileText(out / "manifest.json");
  if (manifest_text.empty()) {
    ADD_FAILURE() << out << ": no manifest.json";
    return -1;
  }
  const JsonValue manifest = ParseJson(manifest_text, "manifest.json");
  std::set<std::string> listed = {"manifest.json"};
  const JsonValue& files = manifest.At("files");
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string name = files.Element(i).At("name").AsString();
    listed.insert(name);
    const std::string text = ReadFileText(out / name);
    const uint32_t crc = Crc32Update(0xFFFFFFFFu, text) ^ 0xFFFFFFFFu;
    if (static_cast<double>(text.size()) != files.Element(i).At("bytes").AsNumber() ||
        fmt::format("{:08x}", crc) != files.Element(i).At("crc32").AsString()) {
      ADD_FAILURE() << out / name << " does not match the manifest";
      return -1;
    }
  }
  std::set<std::string> present;
  for (const auto& e : fs::directory_iterator(out)) present.insert(e.path().filename().string());
  if (present != listed) {
    ADD_FAILURE() << out << " holds files the manifest does not list, or lacks some";
    return -1;
  }
  const std::string config = ReadFileText(out / "config.yaml");
  const size_t at = config.find("seed: ");
  return at == std::string::npos ? -1 : std::stoi(config.substr(at + 6));
}

TEST(CliOutputs, AKillAtAnyPointLeavesTheEarlierOrTheNewOutputsWholeNeverAMix) {
  TempDir dir;
  const fs::path out = dir.path() / "out";
  ASSERT_EQ(RunKvsim(LongRun(dir, out, 1)).exit_code, 0);
  ASSERT_EQ(WholeRunSeed(out), 1);

  // How long a whole run takes here, so the kills fall across all of it: reading,
  // simulating while the CSVs stream, and committing.
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(WaitKvsim(SpawnKvsim(LongRun(dir, out, 2))), 0);
  const auto whole_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - start)
                            .count();
  ASSERT_EQ(WholeRunSeed(out), 2);

  std::mt19937 rng(7);
  std::uniform_int_distribution<int64_t> delay_us(0, whole_us * 5 / 4);
  int seed = 2, killed = 0, replaced = 0;
  for (int trial = 0; trial < 24; ++trial) {
    const int next_seed = 3 + trial;
    const pid_t pid = SpawnKvsim(LongRun(dir, out, next_seed));
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    ::kill(pid, SIGKILL);
    const int status = WaitKvsim(pid);
    killed += status == 128 + SIGKILL;
    const int found = WholeRunSeed(out);
    ASSERT_TRUE(found == seed || (found == next_seed && (status == 0 || status == 128 + SIGKILL)))
        << "trial " << trial << ": exit " << status << ", outputs of seed " << found;
    replaced += found != seed;
    seed = found;
  }
  std::cout << "kills: " << killed << " of 24 runs killed part-way; " << replaced
            << " left new outputs, the rest the earlier ones\n";
  EXPECT_GT(killed, 0) << "no run was killed part-way: the trial says nothing";
  // The next run is not refused: the lock went with the killed process, and what it
  // left beside --out is cleared.
  ASSERT_EQ(RunKvsim(LongRun(dir, out, 99, 100)).exit_code, 0);
  EXPECT_EQ(WholeRunSeed(out), 99);
  std::set<std::string> beside;
  for (const auto& e : fs::directory_iterator(dir.path())) beside.insert(e.path().filename());
  EXPECT_EQ(beside, (std::set<std::string>{".out.kvsim-lock", "long.yaml", "out"}));
}

TEST(CliOutputs, AFullDiskIsAnErrorNamingTheFileAndTheEarlierOutputsStay) {
  TempDir dir;
  const fs::path out = dir.path() / "out";
  ASSERT_EQ(RunKvsim(LongRun(dir, out, 1, 100)).exit_code, 0);
  // No file may grow past 64 KiB: the timeseries cannot be written.
  const std::string err = dir.PathOf("stderr.txt");
  const int status = WaitKvsim(SpawnKvsim(LongRun(dir, out, 2, 2'000), err, 64 * 1024));
  EXPECT_EQ(status, 2);
  EXPECT_THAT(ReadFileText(err), HasSubstr("timeseries.csv: cannot write: File too large"));
  EXPECT_EQ(WholeRunSeed(out), 1);
  EXPECT_FALSE(fs::exists(dir.path() / ".out.kvsim-staging"));
}

TEST(CliOutputs, ASecondRunIntoTheSameOutIsRefusedWhileTheFirstWrites) {
  TempDir dir;
  const fs::path out = dir.path() / "out";
  const pid_t first = SpawnKvsim(LongRun(dir, out, 1, 20'000));
  // The first run holds the lock once its staging directory exists.
  for (int i = 0; i < 2000 && !fs::exists(dir.path() / ".out.kvsim-staging"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const Result second = RunKvsim(LongRun(dir, out, 2, 100));
  const int first_status = WaitKvsim(first);
  ASSERT_EQ(first_status, 0);
  if (second.exit_code == 0) GTEST_SKIP() << "the first run ended before the second started";
  EXPECT_EQ(second.exit_code, 2);
  EXPECT_THAT(second.err, HasSubstr("another kvsim run is writing its outputs here"));
  EXPECT_EQ(WholeRunSeed(out), 1);
}

TEST(CliOutputs, AnOutThatHoldsOtherFilesIsRefusedAndLeftAlone) {
  TempDir dir;
  const std::string notes = dir.Write("notes.txt", "mine\n");
  const Result r = RunKvsim(LongRun(dir, dir.path(), 1, 10));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("holds files kvsim did not write (no manifest.json)"));
  EXPECT_EQ(ReadFileText(notes), "mine\n");
}

TEST(CliOutputs, ARerunWithTheCsvsOffLeavesNoCsvOfTheEarlierRun) {
  TempDir dir;
  const fs::path out = dir.path() / "out";
  ASSERT_EQ(RunKvsim(LongRun(dir, out, 1, 50)).exit_code, 0);
  ASSERT_TRUE(fs::exists(out / "requests.csv"));
  std::vector<std::string> args = LongRun(dir, out, 2, 50);
  args.insert(args.end(),
              {"--set", "output.requests_csv=false", "--set", "output.timeseries_csv=false"});
  ASSERT_EQ(RunKvsim(args).exit_code, 0);
  EXPECT_EQ(WholeRunSeed(out), 2);
  EXPECT_FALSE(fs::exists(out / "requests.csv"));
  EXPECT_FALSE(fs::exists(out / "timeseries.csv"));
}

// A compare entry may change any key: the header states what every entry shares,
// and each fact that differs gets a line naming every entry's value.
TEST(CliOutputs, TheCompareHeaderStatesWhatEntriesShareAndListsWhatDiffers) {
  TempDir dir;
  const std::string config =
      dir.Write("compare.yaml",
                "seed: 1\nmodel: Llama-3-8B\ngpu: H100-SXM\nworkload:\n  trace: " KVSIM_SOURCE_DIR
                "/traces/splitwise_conv.csv\n  max_requests: 5\n"
                "kv_cache: {type: paged}\n"
                "compare:\n"
                "  - {label: a}\n"
                "  - {label: b, set: {gpu: A100-80GB}}\n"
                "  - {label: c, set: {model: Yi-6B, workload.max_requests: 7}}\n");
  const Result r = RunKvsim({"compare", config, "--out", dir.PathOf("cmp")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out,
              HasSubstr("models per entry on GPUs per entry, scheduler vllm, requests per "
                        "entry; timing: roofline; engine vllm_v1; paged kernel flash_paged\n"));
  EXPECT_THAT(r.out, HasSubstr("model per entry: a: Llama-3-8B; b: Llama-3-8B; c: Yi-6B\n"));
  EXPECT_THAT(r.out,
              HasSubstr("deployment per entry: a: on 1 replica(s) x 1 H100-SXM (TP 1); b: on 1 "
                        "replica(s) x 1 A100-80GB (TP 1); c: on 1 replica(s) x 1 H100-SXM "
                        "(TP 1)\n"));
  EXPECT_THAT(r.out,
              HasSubstr("requests per entry: a: 5 requests; b: 5 requests; c: 7 requests\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("trace per entry")));  // the same trace throughout
}

// The default four share the model, GPU and load; their timing lines differ only in
// each manager's own part (the paged kernel, the VMM backend).
TEST(CliOutputs, TheDefaultCompareHeaderNamesEachManagersOwnTimingPart) {
  TempDir dir;
  const Result r = RunKvsim({"compare", KVSIM_SOURCE_DIR "/configs/quickstart.yaml", "--set",
                             "workload.max_requests=20", "--out", dir.PathOf("cmp")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(
      r.out,
      HasSubstr("Llama-3-8B on 1 replica(s) x 1 H100-SXM (TP 1), scheduler vllm, 20 requests; "
                "timing: roofline; engine vllm_v1\n"
                "timing per entry: paged: paged kernel flash_paged; "
                "vattention_2MiB: VMM backend stock; vattention_64KiB: VMM backend "
                "uvm\n"));
}

TEST(CliOutputs, AMisspeltKeyInACompareEntrysSetNamesTheEntrysLine) {
  TempDir dir;
  const std::string config =
      dir.Write("compare.yaml",
                "seed: 1\nmodel: Llama-3-8B\ngpu: H100-SXM\nworkload:\n  trace: " KVSIM_SOURCE_DIR
                "/traces/splitwise_conv.csv\n  max_requests: 5\n"
                "compare:\n"
                "  - {label: a}\n"
                "  - {label: x, set: {kv_cache.typo: 1}}\n");
  const Result r = RunKvsim({"compare", config, "--out", dir.PathOf("cmp")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("compare entry 'x': " + config + ":9: compare[1].set (applied to " +
                               config + "): kv_cache.typo: unknown key"));
}

}  // namespace
}  // namespace kvsim
