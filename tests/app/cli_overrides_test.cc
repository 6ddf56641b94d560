// Overrides that no run would use are refused, and compare's default entries keep
// what the config's kv_cache says. Through the real binary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/testing/kvsim_process.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::Result;
using testing::RunKvsim;
using testing::TempDir;

// A paged scenario of 20 short requests, small enough to compare in milliseconds.
std::string PagedScenario(const TempDir& dir) {
  return dir.Write("paged.yaml",
                   "model: Llama-3-8B\ngpu: H100-SXM\n"
                   "workload:\n"
                   "  arrival: {process: poisson, rate_qps: 2}\n"
                   "  lengths: {source: fixed, prompt_tokens: 200, output_tokens: 20}\n"
                   "  max_requests: 20\n"
                   "kv_cache: {type: paged, block_tokens: 16}\n");
}

Result Kvsim(const TempDir& dir, std::vector<std::string> args) {
  args.push_back("--out");
  args.push_back(dir.path() / "out");
  args.push_back("--force");
  return RunKvsim(args);
}

TEST(CliOverrides, ACompareKeepsTheBlockSizeTheCommandLineSets) {
  TempDir dir;
  const Result r =
      Kvsim(dir, {"compare", PagedScenario(dir), "--set", "kv_cache.block_tokens=128"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("paged128"));
  EXPECT_THAT(testing::ReadFileText(dir.path() / "out" / "paged128" / "config.yaml"),
              HasSubstr("block_tokens: 128"));
}

TEST(CliOverrides, ACompareAddsThePageSizeTheCommandLineSets) {
  TempDir dir;
  const Result r =
      Kvsim(dir, {"compare", PagedScenario(dir), "--set", "kv_cache.page_bytes=256KiB"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("vattention_256KiB"));
  EXPECT_THAT(r.out, HasSubstr("vattention_64KiB"));
}

TEST(CliOverrides, ACompareRefusesATypeEveryEntrySetsItself) {
  TempDir dir;
  const Result r = Kvsim(dir, {"compare", PagedScenario(dir), "--set", "kv_cache.type=static"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--set kv_cache.type=static: every compare entry sets "
                               "kv_cache.type itself"));
}

TEST(CliOverrides, ARunRefusesAKvKeyItsManagerDoesNotRead) {
  TempDir dir;
  const Result r = Kvsim(dir, {"run", PagedScenario(dir), "--set", "kv_cache.page_bytes=64KiB"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--set kv_cache.page_bytes=64KiB: the paged KV manager does not "
                               "read it (vattention only)"));
  // The same key with the type that reads it runs.
  EXPECT_EQ(Kvsim(dir, {"run", PagedScenario(dir), "--set", "kv_cache.type=vattention", "--set",
                        "kv_cache.page_bytes=64KiB", "-q"})
                .exit_code,
            0);
}

TEST(CliOverrides, ACompareRefusesAKvKeyNoneOfItsEntriesReads) {
  TempDir dir;
  const std::string config = dir.Write(
      "two.yaml",
      testing::ReadFileText(PagedScenario(dir)) +
          "compare:\n  - {label: a, set: {kv_cache.block_tokens: 32}}\n"
          "  - {label: b, set: {kv_cache.type: static, kv_cache.prefix_caching: false}}\n");
  const Result r = Kvsim(dir, {"compare", config, "--set", "kv_cache.overlap=false"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("no run of this compare reads it (vattention only; the runs' KV "
                               "managers: paged, static)"));
}

TEST(CliOverrides, ARunRefusesAnUnknownKeyInACompareEntryItDoesNotRun) {
  TempDir dir;
  const std::string config =
      dir.Write("entries.yaml", testing::ReadFileText(PagedScenario(dir)) +
                                    "compare:\n  - {label: a, set: {kv_cache.foo: 1}}\n");
  const Result r = Kvsim(dir, {"run", config});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("compare entry 'a': "));
  EXPECT_THAT(r.err, HasSubstr("kv_cache.foo: unknown key"));
}

TEST(CliOverrides, ARunSaysWhenMaxRequestsAsksForMoreThanTheTraceHolds) {
  TempDir dir;
  dir.Write("three.csv",
            "arrived_at,num_prefill_tokens,num_decode_tokens\n"
            "0.0,100,10\n0.5,200,20\n1.0,150,15\n");
  const std::string config = dir.Write("three.yaml",
                                       "model: Llama-3-8B\ngpu: H100-SXM\n"
                                       "workload: {trace: three.csv, arrival: {process: trace}, "
                                       "max_requests: 10}\n");
  const Result r = Kvsim(dir, {"run", config});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("requests: 3 completed of 3"));
  EXPECT_THAT(r.out, HasSubstr("workload: max_requests 10 asks for more requests than the "
                               "workload holds; it ran all 3"));
}

TEST(CliOverrides, AStaticRunOfACachingConfigMayTurnTheCacheOff) {
  // Static reads prefix_caching (it must be off), so the override that makes the run
  // possible is not refused as unread.
  TempDir dir;
  const std::string config =
      dir.Write("cache.yaml",
                "model: Llama-3-8B\ngpu: H100-SXM\n"
                "workload:\n  arrival: {process: poisson, rate_qps: 2}\n"
                "  lengths: {source: fixed, prompt_tokens: 200, output_tokens: 20}\n"
                "  max_requests: 20\n"
                "kv_cache: {type: paged, prefix_caching: true}\n");
  EXPECT_THAT(Kvsim(dir, {"run", config, "--set", "kv_cache.type=static"}).err,
              HasSubstr("kv_cache.prefix_caching: static reservation shares nothing"));
  const Result r = Kvsim(dir, {"run", config, "--set", "kv_cache.type=static", "--set",
                               "kv_cache.prefix_caching=false", "-q"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(CliOverrides, ASweepKeepsAnEntryThatSetsTheArrivalMapAboveTheRate) {
  // The entry's map carries the process and cv; its rate gives way to the sweep's.
  TempDir dir;
  const std::string config =
      dir.Write("arrivals.yaml",
                testing::ReadFileText(PagedScenario(dir)) +
                    "compare:\n"
                    "  - {label: p, set: {workload.arrival: {process: poisson, rate_qps: 4}}}\n"
                    "  - {label: g, set: {workload.arrival: {process: gamma, rate_qps: 4, "
                    "cv: 3}}}\n");
  const Result r = Kvsim(dir, {"sweep", config, "--rates", "1,2", "-q"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(CliOverrides, KeysOfATypeACompareEntrySwitchesToAreKeptForIt) {
  // The base's poisson arrivals do not read cv, nor its roofline timing timing.fixed, but
  // its entries switch to gamma arrivals and fixed timing.
  TempDir dir;
  const std::string config =
      dir.Write("switch.yaml",
                "model: Llama-3-8B\ngpu: H100-SXM\n"
                "workload:\n  arrival: {process: poisson, rate_qps: 2, cv: 3}\n"
                "  lengths: {source: fixed, prompt_tokens: 200, output_tokens: 20}\n"
                "  max_requests: 20\n"
                "timing: {type: roofline, fixed: {per_iteration_s: 0.01}}\n"
                "compare:\n"
                "  - {label: gamma, set: {workload.arrival.process: gamma}}\n"
                "  - {label: fixed, set: {timing.type: fixed}}\n");
  EXPECT_EQ(Kvsim(dir, {"compare", config, "-q"}).exit_code, 0);
}

TEST(CliOverrides, ARunIsNotRefusedForACompareEntryItsOverridesWouldNotSuit) {
  // The entry (256 KiB pages, uvm) suits the file; --set of the stock backend for this
  // 2 MiB run would not suit it, but run does not run it.
  TempDir dir;
  const std::string config = dir.Write(
      "entry.yaml",
      testing::ReadFileText(PagedScenario(dir)) +
          "compare:\n  - {label: small, set: {kv_cache.type: vattention, kv_cache.page_bytes: "
          "256KiB}}\n");
  const Result r = Kvsim(dir, {"run", config, "--set", "kv_cache.type=vattention", "--set",
                               "kv_cache.vmm.backend=stock", "-q"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(CliOverrides, ASweepRefusesTheRateItSetsItself) {
  TempDir dir;
  const Result r = Kvsim(
      dir, {"sweep", PagedScenario(dir), "--rates", "1,2", "--set", "workload.arrival.rate_qps=3"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("sweep sets workload.arrival.rate_qps for every run itself"));
  EXPECT_THAT(r.err, Not(HasSubstr("internal error")));
}

}  // namespace
}  // namespace kvsim
