// The kvsim command line, run as a separate process: exit codes, messages on
// stderr, and the files written by `run`, `compare`, `sweep` and `validate`.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/testing/kvsim_process.h"
#include "tests/testing/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using ::kvsim::testing::ReadFileText;
using ::kvsim::testing::Result;
using ::kvsim::testing::RunKvsim;
using ::kvsim::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kQuickstart = KVSIM_SOURCE_DIR "/configs/quickstart.yaml";
// A profile with [step] rows (their times set from the profiled model's predictions),
// and one without.
constexpr const char* kStepProfile = KVSIM_SOURCE_DIR "/tests/data/timing/step_profile.txt";
constexpr const char* kNoStepProfile =
    KVSIM_SOURCE_DIR "/tests/data/timing/h200_kvprobe_quick_profile.txt";

// A splitwise trace whose `bad_row` (1-based, the header being line 1) is `row`.
std::string SplitwiseTrace(int bad_line, const std::string& row) {
  const std::vector<std::string> rows = {"0.0,100,10", "0.5,200,20", "1.0,150,15", "1.5,120,12",
                                         "2.0,80,8"};
  std::string text = "arrived_at,num_prefill_tokens,num_decode_tokens\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const int line = static_cast<int>(i) + 2;
    text += (line == bad_line ? row : rows[i]) + "\n";
  }
  return text;
}

// A small scenario next to `trace_name` in the same directory.
std::string ScenarioFor(const std::string& trace_name) {
  return "seed: 1\n"
         "model: Llama-3-8B\n"
         "gpu: H100-SXM\n"
         "workload:\n"
         "  trace: " +
         trace_name +
         "\n"
         "  arrival:\n"
         "    process: trace\n"
         "scheduler:\n"
         "  type: vllm\n"
         "  max_num_seqs: 16\n"
         "kv_cache:\n"
         "  type: paged\n";
}

// Writes `trace_text` to `trace_name` and a scenario replaying it to scenario.yaml in
// `dir`, then runs the scenario quietly into dir/run with `args` before --out.
Result RunOnTrace(const TempDir& dir, const std::string& trace_name, const std::string& trace_text,
                  const std::vector<std::string>& args = {}) {
  dir.Write(trace_name, trace_text);
  std::vector<std::string> command = {"run", dir.Write("scenario.yaml", ScenarioFor(trace_name))};
  command.insert(command.end(), args.begin(), args.end());
  command.insert(command.end(), {"--out", dir.PathOf("run"), "-q"});
  return RunKvsim(command);
}

// A scenario of 20 requests of the bundled splitwise_conv trace whose compare list is
// `entries`.
std::string CompareScenario(const std::string& entries) {
  return "seed: 1\n"
         "model: Llama-3-8B\n"
         "gpu: H100-SXM\n"
         "workload:\n"
         "  trace: " KVSIM_SOURCE_DIR
         "/traces/splitwise_conv.csv\n"
         "  max_requests: 20\n"
         "compare:\n" +
         entries;
}

// ---------------------------------------------------------------------------
// Usage

TEST(Cli, NoArgumentsPrintsUsageAndFails) {
  const Result r = RunKvsim({});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.out + r.err, HasSubstr("usage: kvsim"));
}

TEST(Cli, HelpPrintsUsageAndSucceeds) {
  const Result r = RunKvsim({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("usage: kvsim"));
}

TEST(Cli, UnknownCommandFailsNamingIt) {
  const Result r = RunKvsim({"simulate", kQuickstart});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("simulate"));
}

TEST(Cli, VersionPrintsTheVersion) {
  const Result r = RunKvsim({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, ::testing::MatchesRegex("kvsim [0-9]+\\.[0-9]+\\.[0-9]+\n"));
}

TEST(Cli, AWordAfterVersionOrHelpIsAnErrorNotIgnored) {
  const Result version = RunKvsim({"--version", "foo"});
  EXPECT_EQ(version.exit_code, 2);
  EXPECT_THAT(version.err, HasSubstr("kvsim --version: takes nothing after it, got 'foo'"));
  EXPECT_EQ(version.out, "");
  const Result help = RunKvsim({"--help", "run"});
  EXPECT_EQ(help.exit_code, 2);
  EXPECT_THAT(help.err, HasSubstr("unexpected 'run' (kvsim help COMMAND"));
  const Result unknown = RunKvsim({"help", "simulate"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("kvsim help: unknown command 'simulate'"));
  const Result merge = RunKvsim({"help", "plan", "merge"});  // a command of two words
  EXPECT_EQ(merge.exit_code, 0);
  EXPECT_THAT(merge.out, HasSubstr("usage: kvsim plan merge"));
  const Result extra = RunKvsim({"help", "run", "now"});
  EXPECT_EQ(extra.exit_code, 2);
  EXPECT_THAT(extra.err, HasSubstr("unexpected 'now'"));
}

TEST(Cli, EachCommandsHelpListsItsOwnOptionsOnly) {
  const Result run = RunKvsim({"run", "--help"});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_THAT(run.out, HasSubstr("usage: kvsim run CONFIG"));
  EXPECT_THAT(run.out, HasSubstr("--force"));
  EXPECT_THAT(run.out, Not(HasSubstr("--rates")));
  EXPECT_THAT(run.out, Not(HasSubstr("--jobs")));
  const Result sweep = RunKvsim({"help", "sweep"});
  EXPECT_EQ(sweep.exit_code, 0);
  EXPECT_THAT(sweep.out, HasSubstr("--rates"));
  EXPECT_THAT(sweep.out, Not(HasSubstr("--holdout")));
}

// Boost would take --rate for --rates, which run ignores: the run went at the config's
// rate with exit 0. No option is abbreviated, and none another command owns is taken.
TEST(Cli, AnAbbreviatedOrForeignOptionIsAnErrorNeverIgnored) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"run", kQuickstart, "--rate", "10"},
        std::vector<std::string>{"run", kQuickstart, "--r", "5"},
        std::vector<std::string>{"sweep", kQuickstart, "--rate", "10"}}) {
    const Result r = RunKvsim(args);
    EXPECT_EQ(r.exit_code, 2) << args[2];
    EXPECT_THAT(r.err, HasSubstr("unknown option '" + args[2] + "'; did you mean --rates"));
  }
  const Result report = RunKvsim({"report", KVSIM_SOURCE_DIR "/reports", "--out", "x"});
  EXPECT_EQ(report.exit_code, 2);
  EXPECT_THAT(report.err, HasSubstr("kvsim report: unknown option '--out'"));
  const Result plan = RunKvsim({"plan", kQuickstart, "--set", "seed=2"});
  EXPECT_EQ(plan.exit_code, 2);
  EXPECT_THAT(plan.err, HasSubstr("kvsim plan: unknown option '--set' (an option of kvsim run"));
}

TEST(Cli, ASetWithoutAnEqualsSignIsExplained) {
  const Result r = RunKvsim({"run", kQuickstart, "--set", "workload.max_requests", "10"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--set 'workload.max_requests 10': expected key.path=value in one "
                               "word, e.g. --set workload.max_requests=10"));
}

// `--set kv_cache.type = paged` printed the example "--set kv_cache.type==".
TEST(Cli, ASetWithSpacesAroundTheEqualsSignNamesTheWordsGivenAndTheOneWordMeant) {
  const Result spaced = RunKvsim({"run", kQuickstart, "--set", "kv_cache.type", "=", "paged"});
  EXPECT_EQ(spaced.exit_code, 2);
  EXPECT_THAT(spaced.err, HasSubstr("--set 'kv_cache.type = paged': expected key.path=value in "
                                    "one word, e.g. --set kv_cache.type=paged\n"));
  const Result before = RunKvsim({"run", kQuickstart, "--set", "kv_cache.type", "=paged"});
  EXPECT_EQ(before.exit_code, 2);
  EXPECT_THAT(before.err, HasSubstr("--set 'kv_cache.type =paged': expected key.path=value in one "
                                    "word, e.g. --set kv_cache.type=paged\n"));
  const Result alone = RunKvsim({"run", kQuickstart, "--set", "kv_cache.type", "="});
  EXPECT_EQ(alone.exit_code, 2);
  EXPECT_THAT(alone.err, HasSubstr("--set 'kv_cache.type =': expected key.path=value in one word, "
                                   "e.g. --set kv_cache.type=VALUE\n"));
}

// An empty value reset the key to its default: max_requests= ran the whole trace.
TEST(Cli, AnEmptyOrNullSetValueForAScalarKeyIsAnErrorNamingTheKey) {
  for (const char* value : {"", "~", "null"}) {
    TempDir dir;
    const Result r =
        RunKvsim({"run", kQuickstart, "-q", "--set", std::string("workload.max_requests=") + value,
                  "--out", dir.PathOf("out")});
    EXPECT_EQ(r.exit_code, 2) << "'" << value << "'";
    EXPECT_THAT(r.err, HasSubstr("quickstart.yaml: workload.max_requests (set by an override): "
                                 "expected an integer, got no value"))
        << "'" << value << "'";
    EXPECT_FALSE(fs::exists(dir.PathOf("out")));
  }
}

TEST(Cli, AnEmptyValueInAConfigFileIsAnErrorNamingTheKeyAndLine) {
  TempDir dir;
  dir.Write("trace.csv", SplitwiseTrace(0, ""));
  const std::string config = dir.Write("scenario.yaml", ScenarioFor("trace.csv") +
                                                            "  block_tokens:\n"
                                                            "  watermark: 0.01\n");
  const Result r = RunKvsim({"run", config, "-q", "--out", dir.PathOf("out")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("scenario.yaml:13: kv_cache.block_tokens: expected an integer, got "
                               "no value"));
}

// Every command that takes --out, with the operand each takes (never read: the
// option is refused first).
std::vector<std::vector<std::string>> CommandsTakingOut(const std::string& missing) {
  return {{"run", missing},  {"compare", missing},       {"sweep", missing, "--rates", "1"},
          {"plan", missing}, {"plan", "merge", missing}, {"validate", missing},
          {"fit", missing}};
}

// `--out "$DIR"` with DIR unset wrote to the default reports/runs/<name>.
TEST(Cli, AnEmptyOutIsAUsageErrorNamingTheOptionForEveryCommand) {
  TempDir dir;
  for (const char* form : {"--out", "-o"}) {
    for (std::vector<std::string> args : CommandsTakingOut(dir.PathOf("missing.yaml"))) {
      args.insert(args.end(), {form, ""});
      const Result r = RunKvsim(args);
      EXPECT_EQ(r.exit_code, 2) << args[0] << " " << form;
      EXPECT_THAT(r.err, HasSubstr(": --out is empty: give a directory")) << args[0] << " " << form;
    }
  }
  const Result joined = RunKvsim({"run", dir.PathOf("missing.yaml"), "--out="});
  EXPECT_EQ(joined.exit_code, 2);
  EXPECT_THAT(joined.err, HasSubstr("kvsim run: the argument for option '--out'"));
}

TEST(Cli, ANegativeJobsIsAUsageErrorForEveryCommandThatTakesIt) {
  TempDir dir;
  const std::string missing = dir.PathOf("missing.yaml");
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{"compare", missing},
                                             {"sweep", missing, "--rates", "1"},
                                             {"fit", missing},
                                             {"plan", "merge", missing}}) {
    args.insert(args.end(), {"--jobs", "-1"});
    const Result r = RunKvsim(args);
    EXPECT_EQ(r.exit_code, 2) << args[0];
    EXPECT_THAT(r.err, HasSubstr(": --jobs must be >= 0 (0: all cores), got -1")) << args[0];
  }
  const Result plan = RunKvsim({"plan", missing, "-j", "-3"});
  EXPECT_EQ(plan.exit_code, 2);
  EXPECT_THAT(plan.err,
              HasSubstr("kvsim plan: --jobs must be >= 0 (0: the plan's jobs, else all cores), "
                        "got -3"));
}

TEST(Cli, AnEarlierRunsOutputsAreReplacedOnlyWithForce) {
  TempDir dir;
  const std::string out = dir.PathOf("out");
  const std::vector<std::string> args = {
      "run", kQuickstart, "-q", "--set", "workload.max_requests=20", "--out", out};
  ASSERT_EQ(RunKvsim(args).exit_code, 0);
  const std::string before = ReadFileText(fs::path(out) / "config.yaml");
  std::vector<std::string> again = args;
  again.insert(again.end(), {"--set", "seed=7"});
  const Result refused = RunKvsim(again);
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.err, HasSubstr("holds the outputs of an earlier kvsim run; pass --force"));
  EXPECT_EQ(ReadFileText(fs::path(out) / "config.yaml"), before);
  again.push_back("--force");
  ASSERT_EQ(RunKvsim(again).exit_code, 0);
  EXPECT_THAT(ReadFileText(fs::path(out) / "config.yaml"), HasSubstr("seed: 7"));
}

// On a terminal (script(1) gives the sweep one) progress shows on stderr; in a pipe or
// a file it never does. KVSIM_PROGRESS_DELAY_S=0 shows it at once, however fast the run.
TEST(Cli, ASweepShowsItsProgressOnATerminalAndNeverInAPipe) {
  TempDir dir;
  const std::string sweep = ::kvsim::testing::Quote(KVSIM_BINARY) + " sweep " +
                            ::kvsim::testing::Quote(kQuickstart) +
                            " --rates 4,8 --set workload.max_requests=100 --jobs 1 --out ";
  const std::string capture = dir.PathOf("terminal.txt");
  const std::string command = "KVSIM_PROGRESS_DELAY_S=0 script -qefc " +
                              ::kvsim::testing::Quote(sweep + dir.PathOf("a")) + " /dev/null > " +
                              ::kvsim::testing::Quote(capture) + " 2>&1 </dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0);
  const std::string shown = ReadFileText(capture);
  EXPECT_THAT(shown, ::testing::ContainsRegex("\rkvsim sweep: [1-8]/8 runs, "));
  EXPECT_THAT(shown, HasSubstr("outputs written to"));
  const Result piped = RunKvsim({"sweep", kQuickstart, "--rates", "4,8", "--set",
                                 "workload.max_requests=100", "--out", dir.PathOf("b")});
  EXPECT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.err, "");
}

TEST(Cli, RunWithoutAConfigFails) {
  const Result r = RunKvsim({"run"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("CONFIG"));
}

TEST(Cli, AnUnknownOptionFails) {
  const Result r = RunKvsim({"run", kQuickstart, "--frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("frobnicate"));
}

// ---------------------------------------------------------------------------
// kvsim run

TEST(Cli, RunWritesTheOutputsAndTheResolvedConfig) {
  TempDir dir;
  const std::string out = dir.PathOf("run");
  const Result r =
      RunKvsim({"run", kQuickstart, "--set", "workload.max_requests=200", "--out", out, "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");  // -q: nothing on success
  for (const char* name : {"summary.json", "requests.csv", "timeseries.csv", "config.yaml"}) {
    EXPECT_TRUE(fs::is_regular_file(fs::path(out) / name)) << name;
    EXPECT_GT(fs::file_size(fs::path(out) / name), 0u) << name;
  }
  // The resolved config carries the override.
  EXPECT_THAT(ReadFileText(fs::path(out) / "config.yaml"), HasSubstr("max_requests: 200"));
  EXPECT_THAT(ReadFileText(fs::path(out) / "summary.json"), HasSubstr("\"requests_total\": 200"));
  // Every latency has values: none is written as missing.
  const YAML::Node summary = YAML::LoadFile(fs::path(out) / "summary.json");
  for (const char* metric : {"ttft_s", "tbt_s", "tpot_s", "e2e_s", "queue_s"}) {
    for (const char* stat : {"mean", "p50", "p90", "p99"}) {
      EXPECT_GT(summary[metric][stat].as<double>(), 0) << metric << "." << stat;
    }
  }
  // One row per request after the header.
  const std::string requests = ReadFileText(fs::path(out) / "requests.csv");
  EXPECT_EQ(std::count(requests.begin(), requests.end(), '\n'), 201);
}

TEST(Cli, RunPrintsASummaryWithoutQuiet) {
  TempDir dir;
  const std::string out = dir.PathOf("run");
  const Result r =
      RunKvsim({"run", kQuickstart, "--set", "workload.max_requests=50", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(out));
}

TEST(Cli, RunAtTensorParallelEightOnTheH100ProfileStatesTheExtrapolatedAllReduce) {
  TempDir dir;
  const std::string out = dir.PathOf("run");
  const Result r = RunKvsim({"run", kQuickstart, "--set", "workload.max_requests=50", "--set",
                             "model=Llama-3-70B", "--set", "deployment.tensor_parallel=8", "--set",
                             "timing.type=profiled", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string what =
      "all-reduce on 8 GPUs is not in the profile (measured: 2, 3 and 4 GPUs); it is extrapolated";
  EXPECT_THAT(r.out, HasSubstr("  caveat: timing.profile "));
  EXPECT_THAT(r.out, HasSubstr(what));
  const std::string summary = ReadFileText(fs::path(out) / "summary.json");
  EXPECT_THAT(summary, HasSubstr("\"timing_caveats\": [\n    \"timing.profile "));
  EXPECT_THAT(summary, HasSubstr(what));
}

TEST(Cli, RunAtATensorParallelMeasuredInGraphHasNoCaveat) {
  // The H200 profile measured 2-GPU all-reduces between kernels of a graph.
  TempDir dir;
  const std::string out = dir.PathOf("run");
  const Result r =
      RunKvsim({"run", kQuickstart, "--set", "workload.max_requests=50", "--set", "gpu=H200",
                "--set", "deployment.tensor_parallel=2", "--set", "timing.type=profiled", "--set",
                "timing.profile=../models/profiles/H200/profile.txt", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("caveat")));
  EXPECT_THAT(ReadFileText(fs::path(out) / "summary.json"), HasSubstr("\"timing_caveats\": []"));
}

TEST(Cli, RunOnAProfileOfBackToBackAllReducesSaysSo) {
  // The committed H100 profile's [allreduce] rows predate in_graph_us.
  TempDir dir;
  const Result r = RunKvsim({"run", kQuickstart, "--set", "workload.max_requests=50", "--set",
                             "deployment.tensor_parallel=4", "--set", "timing.type=profiled",
                             "--out", dir.PathOf("run")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("[allreduce] rows time all-reduces back to back (no in_graph_us "
                               "column"));
}

TEST(Cli, AProfileOfAnotherGpuIsRefusedNamingBoth) {
  TempDir dir;
  const Result r = RunKvsim({"run", kQuickstart, "--set", "gpu=A100-80GB", "--set",
                             "timing.type=profiled", "--out", dir.PathOf("run"), "-q"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("H100-SXM/profile.txt: measured on 'NVIDIA H100 80GB HBM3', but "
                               "the A100-80GB card's device_names are 'NVIDIA A100-SXM4-80GB'"));
  EXPECT_FALSE(fs::exists(dir.PathOf("run")));
}

TEST(Cli, APlanStatesTheExtrapolatedAllReduceForItsTensorParallelEightCandidates) {
  TempDir dir;
  const std::string out = dir.PathOf("plan");
  const Result r = RunKvsim(
      {"plan", KVSIM_SOURCE_DIR "/configs/plans/llama3_70b_h100_profiled.yaml", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out,
              HasSubstr("caveat (H100-SXM/tp8/paged16/vllm-256seqs, "
                        "H100-SXM/tp8/paged16/sarathi1024-256seqs, "
                        "H100-SXM/tp8/vattention2MiB/vllm-256seqs, "
                        "H100-SXM/tp8/vattention2MiB/sarathi1024-256seqs): timing.profile "));
  EXPECT_THAT(r.out, HasSubstr("all-reduce on 8 GPUs is not in the profile"));
  EXPECT_THAT(r.out, Not(HasSubstr("all-reduce on 4 GPUs")));
  const std::string plan = ReadFileText(fs::path(out) / "plan.json");
  // Two KV managers x two schedulers at TP 4 and at TP 8: each states that the H100
  // profile's all-reduces were timed back to back, the TP 8 ones also the
  // extrapolation to 8 GPUs.
  size_t empty = 0, stated = 0, extrapolated = 0;
  for (size_t at = plan.find("\"timing_caveats\": ["); at != std::string::npos;
       at = plan.find("\"timing_caveats\": [", at + 1)) {
    // The array's closing bracket (one inside a caveat, as in "[allreduce] rows", is
    // followed by neither a comma nor a line end).
    size_t end = plan.find(']', at);
    while (end != std::string::npos && end + 1 < plan.size() && plan[end + 1] != ',' &&
           plan[end + 1] != '\n') {
      end = plan.find(']', end + 1);
    }
    const std::string caveats = plan.substr(at, end - at);
    (caveats == "\"timing_caveats\": [" ? empty : stated) += 1;
    if (caveats.find("all-reduce on 8 GPUs") != std::string::npos) ++extrapolated;
    if (caveats != "\"timing_caveats\": [") {
      EXPECT_THAT(caveats, HasSubstr("back to back"));
    }
  }
  // The recommendation, a TP 4 candidate, repeats its candidate's fields.
  EXPECT_THAT(r.out, HasSubstr("recommendation: 3 x H100-SXM/tp4/"));
  EXPECT_EQ(stated, 8u + 1);
  EXPECT_EQ(extrapolated, 4u);
  EXPECT_EQ(empty, 0u);
}

// A small plan next to `dir`'s files: Llama-3-8B on the quickstart trace.
std::string SmallPlan(const TempDir& dir, const std::string& gpus, const std::string& slo) {
  return dir.Write(
      "plan.yaml",
      "scenario: " KVSIM_SOURCE_DIR
      "/configs/quickstart.yaml\n"
      "set: {workload.arrival.process: trace}\n"
      "slo: " +
          slo +
          "\n"
          "target: {qps: 20}\n"
          "search: {initial_qps: 4, tolerance: 0.1, max_qps: 100, probe_requests: 200}\n"
          "candidates:\n"
          "  gpus: " +
          gpus +
          "\n"
          "  tensor_parallel: [1]\n"
          "  kv_managers: [{type: paged, block_tokens: 16}]\n"
          "  schedulers: [{type: vllm, max_num_seqs: 256}]\n");
}

// A mistyped card answered "infeasible, no candidate meets the SLOs" with exit 0.
TEST(Cli, APlanWithAMistypedGpuCardIsAnErrorNamingTheLine) {
  TempDir dir;
  const Result r = RunKvsim(
      {"plan", SmallPlan(dir, "[H100]", "{ttft_s: {p99: 2.0}}"), "--out", dir.PathOf("out")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("plan.yaml:7: candidates.gpus[0]: unknown gpu card 'H100'"));
  EXPECT_FALSE(fs::exists(dir.PathOf("out")));
}

// A TTFT p99 of 1 us: no fleet meets it. The outputs are written, and the status says
// there is nothing to deploy; quiet, stderr says so too.
TEST(Cli, APlanThatNoCandidateMeetsExitsFiveAndSaysSoEvenWhenQuiet) {
  TempDir dir;
  const std::string plan = SmallPlan(dir, "[H100-SXM]", "{ttft_s: {p99: 0.000001}}");
  const Result r = RunKvsim({"plan", plan, "--out", dir.PathOf("out")});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_THAT(r.out, HasSubstr("recommendation: infeasible"));
  EXPECT_TRUE(fs::exists(dir.PathOf("out") + "/plan.json"));
  const Result quiet = RunKvsim({"plan", plan, "-q", "--force", "--out", dir.PathOf("out")});
  EXPECT_EQ(quiet.exit_code, 5);
  EXPECT_EQ(quiet.out, "");
  EXPECT_THAT(quiet.err, HasSubstr("kvsim plan: infeasible: no candidate meets the SLOs at any "
                                   "load tried, or none could be built (exit status 5); see " +
                                   dir.PathOf("out") + "/plan.csv"));
}

TEST(Cli, APlanListsEverySloItAppliesAndWarnsOfOneThatLooksLikeMilliseconds) {
  TempDir dir;
  const Result r = RunKvsim(
      {"plan", SmallPlan(dir, "[H100-SXM]", "{ttft_s: {p99: 2000}}"), "--out", dir.PathOf("out")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("kvsim: warning: " + dir.PathOf("plan.yaml") +
                               ":3: slo.ttft_s.p99: 2000 s is above 600 s; SLOs are in seconds"));
  EXPECT_THAT(r.out, HasSubstr("SLOs applied:\n  ttft_s p99 <= 2000 s\n  stability:"));
  EXPECT_THAT(r.out, HasSubstr("ranked: cheapest $/hour first; at equal cost"));
  EXPECT_THAT(ReadFileText(dir.PathOf("out") + "/plan.json"), HasSubstr("\"warnings\": ["));
}

// Llama-3-8B keeps 2 x 32 layers x 8 KV heads x 128 x 2 bytes = 128 KiB per token; an
// fp8 cache half that. fp8 weights: 6,979,321,856 layer parameters at one byte and the
// 1,050,673,152 embedding and LM-head ones at two = 9,080,668,160 bytes.
TEST(Cli, Fp8WeightsAndKvCacheAreServedDtypesWhoseTimingIsStatedAsAssumed) {
  TempDir dir;
  const Result r = RunKvsim({"run", kQuickstart, "--set", "workload.max_requests=50", "--set",
                             "kv_cache.dtype=fp8", "--set", "deployment.weight_dtype=fp8", "--out",
                             dir.PathOf("out")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("weights 8.46 GiB"));  // 9,080,668,160 / 2^30
  EXPECT_THAT(r.out, HasSubstr("64 KiB/token"));
  EXPECT_THAT(r.out, HasSubstr("assumed: deployment.weight_dtype: fp8 GEMMs are timed at the "
                               "card's fp8 peak (1979 TFLOP/s)"));
  EXPECT_THAT(r.out, HasSubstr("assumed: kv_cache.dtype: fp8 decode attention"));
  const YAML::Node summary = YAML::LoadFile(dir.PathOf("out") + "/summary.json");
  EXPECT_EQ(summary["scenario"]["kv_bytes_per_element"].as<int>(), 1);
  EXPECT_EQ(summary["kv"]["bytes_per_token"].as<int64_t>(), 65536);
  // A kvprobe profile timed 16-bit kernels: it cannot time fp8 ones.
  const Result profiled = RunKvsim({"run", kQuickstart, "--set", "timing.type=profiled", "--set",
                                    "kv_cache.dtype=fp8", "--out", dir.PathOf("p")});
  EXPECT_EQ(profiled.exit_code, 2);
  EXPECT_THAT(profiled.err, HasSubstr("kv_cache.dtype: fp8 with timing.type: profiled"));
}

// What README's "Your own traces" and "Your own models" tell a user to type.
TEST(Cli, AUsersOwnCsvABenchmarkServingJsonAndAHuggingFaceConfigRunEndToEnd) {
  TempDir dir;
  const Result csv = RunKvsim(
      {"run", KVSIM_SOURCE_DIR "/configs/custom_csv_trace.yaml", "--out", dir.PathOf("csv"), "-q"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_THAT(ReadFileText(dir.PathOf("csv") + "/summary.json"),
              HasSubstr("\"requests_completed\": 20"));

  // The benchmark's result as the trace, its arrivals as the benchmark sent them.
  const std::string served_config = dir.Write(
      "served.yaml", "model: Llama-3-8B\ngpu: H100-SXM\nworkload: {trace: " KVSIM_SOURCE_DIR
                     "/tests/data/fit/benchmark_serving_small.json}\n");
  const Result json = RunKvsim({"run", served_config, "--out", dir.PathOf("json"), "-q"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const YAML::Node served = YAML::LoadFile(dir.PathOf("json") + "/summary.json");
  EXPECT_GT(served["requests_completed"].as<int>(), 0);
  EXPECT_EQ(served["requests_completed"].as<int>(), served["requests_total"].as<int>());

  const Result hf = RunKvsim({"run", kQuickstart, "--set", "model=../models/hf/Meta-Llama-3-8B",
                              "--set", "workload.max_requests=50", "--out", dir.PathOf("hf")});
  ASSERT_EQ(hf.exit_code, 0) << hf.err;
  EXPECT_THAT(hf.out, HasSubstr("Meta-Llama-3-8B on 1 replica(s)"));
  EXPECT_THAT(hf.out, HasSubstr("128 KiB/token"));
}

TEST(Cli, UnknownKeySetOnTheCommandLineFailsNamingIt) {
  TempDir dir;
  const Result r =
      RunKvsim({"run", kQuickstart, "--set", "scheduler.typo=1", "--out", dir.PathOf("run"), "-q"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("scheduler.typo"));
  EXPECT_FALSE(fs::exists(dir.PathOf("run")));
}

TEST(Cli, MalformedSetAssignmentFails) {
  TempDir dir;
  const Result r =
      RunKvsim({"run", kQuickstart, "--set", "novalue", "--out", dir.PathOf("run"), "-q"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("novalue"));
}

TEST(Cli, MalformedTraceRowFailsNamingTheFileAndLine) {
  TempDir dir;
  const Result r = RunOnTrace(dir, "bad_trace.csv", SplitwiseTrace(4, "1.0,abc,15"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(dir.PathOf("bad_trace.csv") + ":4"));
}

TEST(Cli, MalformedTraceRowFailsAlsoWhenTheTraceIsTimeScaled) {
  TempDir dir;
  const Result r = RunOnTrace(dir, "bad_trace.csv", SplitwiseTrace(4, "1.0,150"),
                              {"--set", "workload.arrival.rate_qps=10"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(dir.PathOf("bad_trace.csv") + ":4"));
}

TEST(Cli, NegativeTokenCountFailsNamingTheLine) {
  TempDir dir;
  const Result r = RunOnTrace(dir, "negative.csv", SplitwiseTrace(3, "0.5,-200,20"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(dir.PathOf("negative.csv") + ":3"));
  EXPECT_THAT(r.err, HasSubstr("negative"));
}

TEST(Cli, ATraceWithNoUsableRequestsReportsNoLatencyRatherThanZero) {
  TempDir dir;
  // Both prompts exceed the model's context: each request is rejected.
  const Result r = RunOnTrace(dir, "trace.csv",
                              "arrived_at,num_prefill_tokens,num_decode_tokens\n"
                              "0.0,900000,10\n0.5,900000,20\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const YAML::Node summary = YAML::LoadFile(dir.PathOf("run") + "/summary.json");
  EXPECT_EQ(summary["requests_rejected"].as<int>(), 2);
  for (const char* metric : {"ttft_s", "tbt_s", "tpot_s", "e2e_s", "queue_s"}) {
    for (const char* stat : {"mean", "p50", "p90", "p99"}) {
      EXPECT_TRUE(summary[metric][stat].IsNull()) << metric << "." << stat;
    }
  }
  const Result shown =
      RunKvsim({"run", dir.PathOf("scenario.yaml"), "--out", dir.PathOf("run"), "--force"});
  EXPECT_THAT(shown.out, HasSubstr("TTFT  p50      n/a ms  p99      n/a ms"));
  // The report reads it too, saying what is missing rather than drawing zeros.
  const Result report = RunKvsim({"report", dir.PathOf("run")});
  EXPECT_EQ(report.exit_code, 0) << report.err;
}

TEST(Cli, AWellFormedTraceNextToTheConfigRuns) {
  TempDir dir;
  const Result r = RunOnTrace(dir, "good.csv", SplitwiseTrace(0, ""));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(ReadFileText(fs::path(dir.PathOf("run")) / "summary.json"),
              HasSubstr("\"requests_total\": 5"));
}

TEST(Cli, AModelThatDoesNotFitTheGpuFailsNamingTensorParallel) {
  TempDir dir;
  const Result r =
      RunKvsim({"run", kQuickstart, "--set", "model=Llama-2-70B", "--set", "gpu=A100-80GB", "--set",
                "deployment.tensor_parallel=1", "--out", dir.PathOf("run"), "-q"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("deployment.tensor_parallel"));
  EXPECT_THAT(r.err, HasSubstr("Llama-2-70B"));
}

TEST(Cli, AMissingConfigFileFailsNamingIt) {
  TempDir dir;
  const std::string missing = dir.PathOf("no_such_scenario.yaml");
  const Result r = RunKvsim({"run", missing, "--out", dir.PathOf("run"), "-q"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(missing));
}

TEST(Cli, InvalidYamlFailsNamingTheFileAndLine) {
  TempDir dir;
  const std::string config = dir.Write("broken.yaml", "seed: 1\nmodel: [Llama\ngpu: H100-SXM\n");
  const Result r = RunKvsim({"run", config, "--out", dir.PathOf("run"), "-q"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, ::testing::ContainsRegex(config + ":[0-9]+:"));
}

TEST(Cli, BadInputsNeverCrash) {
  TempDir dir;
  const std::string out = dir.PathOf("run");
  const std::string empty_trace = dir.Write("empty.csv", "");
  const std::string config = dir.Write("scenario.yaml", ScenarioFor("empty.csv"));
  const std::string missing_trace_config = dir.Write("missing.yaml", ScenarioFor("nowhere.csv"));
  const std::vector<std::vector<std::string>> invocations = {
      {"run", kQuickstart, "--set"},
      {"run", kQuickstart, "--set", "=x", "--out", out},
      {"run", kQuickstart, "--set", "a..b=1", "--out", out},
      {"run", kQuickstart, "--set", "model.name=x", "--out", out},
      {"run", kQuickstart, "--set", "kv_cache.page_bytes=3000", "--out", out},
      {"run", kQuickstart, "--set", "deployment.replicas=-1", "--out", out},
      {"run", kQuickstart, "--set", "scheduler.type=fcfs", "--out", out},
      {"run", kQuickstart, "--set", "gpu=V100", "--out", out},
      {"compare", kQuickstart, "--jobs", "many", "--out", out},
      {"run", config, "--out", out, "-q"},
      {"run", missing_trace_config, "--out", out, "-q"},
      {"compare", dir.PathOf("nothing.yaml"), "--out", out},
  };
  for (const std::vector<std::string>& args : invocations) {
    const Result r = RunKvsim(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << (args.size() > 3 ? args[3] : "") << "\n"
                              << r.err;
    EXPECT_THAT(r.err, HasSubstr("kvsim"));
  }
}

// ---------------------------------------------------------------------------
// kvsim compare

TEST(Cli, ComparePrintsTheTableAndWritesCompareJson) {
  TempDir dir;
  const std::string out = dir.PathOf("cmp");
  const Result r =
      RunKvsim({"compare", kQuickstart, "--set", "workload.max_requests=100", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* label : {"static", "paged", "vattention_2MiB", "vattention_64KiB"}) {
    EXPECT_THAT(r.out, HasSubstr(label));
    EXPECT_TRUE(fs::exists(fs::path(out) / label / "summary.json")) << label;
  }
  EXPECT_THAT(r.out, HasSubstr("ratios"));
  ASSERT_TRUE(fs::is_regular_file(fs::path(out) / "compare.json"));
  const std::string json = ReadFileText(fs::path(out) / "compare.json");
  EXPECT_THAT(json, HasSubstr("vattention_64KiB"));
}

TEST(Cli, CompareWithABadEntryFailsBeforeRunning) {
  TempDir dir;
  const std::string config =
      dir.Write("scenario.yaml", CompareScenario("  - label: ok\n"
                                                 "    set: {kv_cache.type: paged}\n"
                                                 "  - label: bad\n"
                                                 "    set: {kv_cache.type: radix}\n"));
  const std::string out = dir.PathOf("cmp");
  const Result r = RunKvsim({"compare", config, "--out", out});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("kv_cache.type"));
  EXPECT_FALSE(fs::exists(fs::path(out) / "compare.json"));
}

TEST(Cli, ACompareLabelWithANewlineIsRefusedNamingIt) {
  TempDir dir;
  const std::string config =
      dir.Write("compare.yaml", CompareScenario("  - {label: \"paged\\nstatic\", set: {}}\n"));
  const Result r = RunKvsim({"compare", config, "--out", dir.PathOf("out"), "-q"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("compare.yaml:8: compare[0].label: must be usable as a directory "
                               "name"));
  EXPECT_FALSE(fs::exists(dir.PathOf("out")));
}

TEST(Cli, CompareEntryWithABadOverrideIsNamedInTheError) {
  TempDir dir;
  const std::string config =
      dir.Write("scenario.yaml", CompareScenario("  - label: fine_entry\n"
                                                 "    set: {kv_cache.type: paged}\n"
                                                 "  - label: broken_entry\n"
                                                 "    set: {scheduler.max_num_seqs: 0}\n"));
  const Result r = RunKvsim({"compare", config, "--out", dir.PathOf("cmp")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("scheduler.max_num_seqs"));
  EXPECT_THAT(r.err, HasSubstr("broken_entry"));
}

// ---------------------------------------------------------------------------
// kvsim sweep and kvsim report

TEST(Cli, SweepRunsEveryManagerAtEveryRateAndWritesSweepJson) {
  TempDir dir;
  const std::string out = dir.PathOf("sweep");
  const Result r = RunKvsim(
      {"sweep", kQuickstart, "--rates", "2,8", "--set", "workload.max_requests=100", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const YAML::Node sweep = YAML::LoadFile((fs::path(out) / "sweep.json").string());
  ASSERT_EQ(sweep["rates_qps"].size(), 2u);
  EXPECT_EQ(sweep["rates_qps"][1].as<double>(), 8.0);
  ASSERT_EQ(sweep["runs"].size(), 8u);  // 4 managers x 2 rates
  for (const YAML::Node& run : sweep["runs"]) {
    const std::string label = run["label"].as<std::string>();
    const double rate = run["rate_qps"].as<double>();
    EXPECT_EQ(run["summary"]["scenario"]["rate_qps"].as<double>(), rate);
    EXPECT_EQ(run["summary"]["requests_completed"].as<int>(), 100);
    EXPECT_TRUE(
        fs::exists(fs::path(out) / label / (rate == 2 ? "rate_2" : "rate_8") / "summary.json"))
        << label;
  }
  EXPECT_THAT(r.out, HasSubstr("vattention_64KiB"));
}

TEST(Cli, SweepMarksOverloadedCellsAndNamesRefusedRequests) {
  // At 512 req/s every manager falls behind the quickstart's load; max_model_len 1024
  // refuses the requests whose prompts reach it, the same ones at every rate.
  TempDir dir;
  const Result r =
      RunKvsim({"sweep", kQuickstart, "--rates", "2,512", "--set", "workload.max_requests=300",
                "--set", "deployment.max_model_len=1024", "--out", dir.PathOf("sweep")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(" *\n"));
  EXPECT_THAT(r.out, HasSubstr("*: overloaded, the queue grows through the trace"));
  const YAML::Node sweep = YAML::LoadFile(dir.PathOf("sweep") + "/sweep.json");
  const int64_t refused = sweep["runs"][0]["summary"]["requests_rejected"].as<int64_t>();
  EXPECT_GT(refused, 0);
  EXPECT_THAT(r.out, HasSubstr(fmt::format("every run refuses {} of 300 requests, their prompts at "
                                           "or past max_model_len (in no latency above)",
                                           refused)));
}

TEST(Cli, SweepWithoutRatesOrWithABadRateFails) {
  EXPECT_EQ(RunKvsim({"sweep", kQuickstart}).exit_code, 2);
  const Result bad = RunKvsim({"sweep", kQuickstart, "--rates", "2,fast"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("fast"));
}

TEST(Cli, SweepRatesWithAnEmptyItemAreRefusedNamingTheItem) {
  for (const auto& [rates, item] :
       std::vector<std::pair<std::string, int>>{{"1,,2", 2}, {"1,", 2}, {",1", 1}, {"1,2,", 3}}) {
    const Result r = RunKvsim({"sweep", kQuickstart, "--rates", rates});
    EXPECT_EQ(r.exit_code, 2) << rates;
    EXPECT_THAT(r.err, HasSubstr(fmt::format("--rates '{}': item {} is empty", rates, item)))
        << rates;
  }
}

TEST(Cli, SweepRatesEqualAsNumbersButWrittenApartAreRefusedAsOneRateGivenTwice) {
  const Result r = RunKvsim({"sweep", kQuickstart, "--rates", "1,2,1.0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--rates: 1.0 is given twice (1 is the same rate)"));
}

// Rates alike to 10 significant digits got folders of their own but printed as one
// rate in the table and in sweep.json.
TEST(Cli, SweepRatesAlikeToTenDigitsPrintAndAreWrittenApart) {
  TempDir dir;
  const std::string out = dir.PathOf("sweep");
  const Result r = RunKvsim(
      {"sweep", kQuickstart, "--rates", "3.3333333333,3.3333333334,1.00000001,1,12.5", "--set",
       "workload.max_requests=20", "--set", "compare=[{label: paged}]", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<double> rates = {3.3333333333, 3.3333333334, 1.00000001, 1, 12.5};
  for (const char* row : {"3.3333333333", "3.3333333334", "1.00000001", "1", "12.5"}) {
    EXPECT_THAT(r.out, ::testing::ContainsRegex(fmt::format("\n +{} +[0-9]", row))) << row;
  }
  const YAML::Node sweep = YAML::LoadFile((fs::path(out) / "sweep.json").string());
  ASSERT_EQ(sweep["rates_qps"].size(), rates.size());
  ASSERT_EQ(sweep["runs"].size(), rates.size());
  for (size_t i = 0; i < rates.size(); ++i) {
    EXPECT_EQ(sweep["rates_qps"][i].as<double>(), rates[i]) << i;
    EXPECT_EQ(sweep["runs"][i]["rate_qps"].as<double>(), rates[i]) << i;
  }
  // Ordinary rates print as before.
  EXPECT_EQ(sweep["rates_qps"][3].Scalar(), "1");
  EXPECT_EQ(sweep["rates_qps"][4].Scalar(), "12.5");
}

TEST(Cli, SweepRatesAlikeToSixDigitsGetFoldersOfTheirOwnAndARepeatedRateIsRefused) {
  TempDir dir;
  const std::string out = dir.PathOf("sweep");
  const Result r = RunKvsim({"sweep", kQuickstart, "--rates", "1.0000001,1.0000002", "--set",
                             "workload.max_requests=30", "--set", "compare=[{label: paged}]",
                             "--out", out, "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(fs::path(out) / "paged" / "rate_1.0000001" / "summary.json"));
  EXPECT_TRUE(fs::exists(fs::path(out) / "paged" / "rate_1.0000002" / "summary.json"));
  const Result twice = RunKvsim({"sweep", kQuickstart, "--rates", "2,2"});
  EXPECT_EQ(twice.exit_code, 2);
  EXPECT_THAT(twice.err, HasSubstr("--rates: 2 is given twice"));
}

// Values the config accepts in form but that would overflow, divide by zero or never
// end: each is an input error naming its key, never a crash, a hang or a wrong answer.
TEST(Cli, OutOfRangeValuesAreInputErrorsNamingTheirKey) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"deployment.activation_reserve_bytes=8000000000000000000",
        "deployment.framework_reserve_bytes=8000000000000000000"},
       "deployment.activation_reserve_bytes"},
      {{"kv_cache.block_tokens=140737488355328"}, "kv_cache.block_tokens"},
      {{"kv_cache.block_tokens=100000"}, "exceed max_model_len"},
      {{"workload.arrival.process=gamma", "workload.arrival.rate_qps=4",
        "workload.arrival.cv=1e-160"},
       "workload.arrival.cv"},
      {{"workload.arrival.process=poisson", "workload.arrival.rate_qps=1e-9"},
       "workload.arrival.rate_qps"},
      {{"timing.type=fixed", "timing.fixed.per_prefill_token_s=1e6"},
       "timing.fixed.per_prefill_token_s"},
      {{"deployment.replicas=10000000"}, "deployment.replicas"},
      {{"kv_cache.type=vattention", "kv_cache.max_slots=1000000000000"}, "kv_cache.max_slots"},
  };
  for (const auto& [sets, key] : cases) {
    std::vector<std::string> args = {"run", kQuickstart, "-q", "--set", "workload.max_requests=50"};
    for (const std::string& set : sets) {
      args.push_back("--set");
      args.push_back(set);
    }
    TempDir dir;
    args.push_back("--out");
    args.push_back(dir.PathOf("out"));
    const Result r = RunKvsim(args);
    EXPECT_EQ(r.exit_code, 2) << sets.front() << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(key)) << sets.front();
  }
}

TEST(Cli, MalformedInputsOutsideTheValuesAreInputErrorsNamingFileAndKey) {
  TempDir dir;
  // A key that is a list, not a name.
  const std::string nonscalar = dir.Write(
      "nonscalar.yaml", "seed: 1\nmodel: Llama-3-8B\ngpu: H100-SXM\ndeployment: {? [x]: 1}\n");
  Result r = RunKvsim({"run", nonscalar, "-q", "--out", dir.PathOf("a")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("nonscalar.yaml:4: deployment: a key must be a plain name"));
  // A directory given as the trace.
  r = RunKvsim({"run", kQuickstart, "-q", "--set", "workload.trace=" + dir.path().string(), "--out",
                dir.PathOf("b")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("is a directory, not a trace file"));
  // An unknown trace format names the config and the key.
  r = RunKvsim(
      {"run", kQuickstart, "-q", "--set", "workload.format=bogus", "--out", dir.PathOf("c")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("quickstart.yaml: workload.format"));
}

TEST(Cli, ReportOnAMissingDirectoryFailsNamingIt) {
  TempDir dir;
  const std::string missing = dir.PathOf("no_such_run");
  const Result r = RunKvsim({"report", missing});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("no_such_run"));
}

// ---------------------------------------------------------------------------
// kvsim validate

TEST(Cli, ValidatePrintsEveryStepWithBothErrorsAndTheSummary) {
  TempDir dir;
  const std::string out = dir.PathOf("validate");
  const Result r = RunKvsim({"validate", kStepProfile, "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The card is found by the profile's gpu_name, NVIDIA H200.
  EXPECT_THAT(r.out, HasSubstr("5 [step] rows measured on 'NVIDIA H200', 4 predicted for the "
                               "H200 card"));
  EXPECT_THAT(r.out, HasSubstr("measured us  profiled us    error  roofline us    error"));
  EXPECT_THAT(r.out, HasSubstr("  117  Llama-3-8B       1  contiguous       16 x 2048        0 "
                               "      6062.2       6062.2    +0.0%"));
  EXPECT_THAT(r.out, HasSubstr("   +10.0%"));  // line 119: the prediction / 1.1
  EXPECT_THAT(r.out, HasSubstr("summary"));
  EXPECT_THAT(r.out, HasSubstr("  prefill-only (1 row)"));
  EXPECT_THAT(r.out, HasSubstr("not predictable: Llama-3-70B at TP 1, 1 row (line 121)"));
  const YAML::Node json = YAML::LoadFile((fs::path(out) / "validate.json").string());
  EXPECT_EQ(json["gpu_card"].as<std::string>(), "H200");
  ASSERT_EQ(json["rows"].size(), 4u);
  EXPECT_EQ(json["rows"][2]["line"].as<int>(), 119);
  EXPECT_EQ(json["rows"][2]["kind"].as<std::string>(), "prefill-only");
  EXPECT_NEAR(json["rows"][2]["profiled_error_pct"].as<double>(), 10.0, 1e-4);
  ASSERT_EQ(json["summary"].size(), 4u);
  EXPECT_EQ(json["summary"][3]["group"].as<std::string>(), "Llama-3-8B");
  EXPECT_NEAR(json["summary"][3]["profiled_mean_abs_error_pct"].as<double>(), 5.0, 1e-4);
  EXPECT_EQ(json["not_predictable"][0]["lines"][0].as<int>(), 121);
  // Each model's pass by kernel class, whose sum is its time (no CPU in validation).
  const YAML::Node classes = json["rows"][0]["profiled_classes_us"];
  EXPECT_NEAR(classes["gemm"].as<double>() + classes["attention"].as<double>() +
                  classes["other"].as<double>() + classes["collectives"].as<double>(),
              json["rows"][0]["profiled_us"].as<double>(), 1e-2);
  EXPECT_TRUE(json["rows"][0]["roofline_classes_us"].IsMap());
  // The test profile times no class alone: nothing measured, no class summary.
  EXPECT_FALSE(json["rows"][0]["measured_classes_us"].IsDefined());
  EXPECT_EQ(json["summary_by_class"].size(), 0u);
}

TEST(Cli, ValidateOnAProfileWithoutStepRowsFailsSayingHowToMeasureThem) {
  const Result r = RunKvsim({"validate", kNoStepProfile});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("h200_kvprobe_quick_profile.txt: no [step] rows; measure them "
                               "with kvprobe --only step"));
  EXPECT_EQ(r.out, "");
}

// The test profile's [meta] and [step] sections alone, as kvprobe --only step writes
// another run: its [step] rows start at line 19.
std::string StepRunOf(const std::string& profile_text) {
  const size_t meta = profile_text.find("[meta]\n");
  return profile_text.substr(meta, profile_text.find("\n\n", meta) + 1 - meta) +
         profile_text.substr(profile_text.find("[step]\n"));
}

TEST(Cli, ValidateStepsPredictsAnotherRunsPassesFromTheProfilesKernelRows) {
  TempDir dir;
  std::string text = StepRunOf(ReadFileText(kStepProfile));
  // This run took line 117's pass in 10% more time than the profile's own run.
  const std::string row = "Llama-3-8B,1,contiguous,0,16,2048,0,6062.218,1";
  text.replace(text.find(row), row.size(), "Llama-3-8B,1,contiguous,0,16,2048,0,6668.440,1");
  const std::string steps = dir.Write("steps.txt", text);
  const std::string out = dir.PathOf("validate");
  const Result r = RunKvsim({"validate", kStepProfile, "--steps", steps, "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("steps.txt: 5 [step] rows measured on 'NVIDIA H200', 4 predicted"));
  EXPECT_THAT(r.out, HasSubstr("profiled: the kernel rows of "));
  EXPECT_THAT(r.out, HasSubstr("   19  Llama-3-8B       1  contiguous       16 x 2048        0 "
                               "      6668.4       6062.2    -9.1%"));
  EXPECT_THAT(r.out, HasSubstr("not predictable: Llama-3-70B at TP 1, 1 row (line 23)"));
  const YAML::Node json = YAML::LoadFile((fs::path(out) / "validate.json").string());
  EXPECT_EQ(json["profile"].as<std::string>(), kStepProfile);
  EXPECT_EQ(json["steps"].as<std::string>(), steps);
  EXPECT_EQ(json["rows"][0]["line"].as<int>(), 19);
  // --check judges this run's rows: line 19 (-9.1%) and line 21 (the prefill, +10.0%) are
  // outside their tolerances, line 22 (mixed, -10.0%) within its 10%.
  const Result check = RunKvsim({"validate", kStepProfile, "--steps", steps, "--check", "-q"});
  EXPECT_EQ(check.exit_code, 4);
  EXPECT_THAT(check.err, HasSubstr("steps.txt: 2 of 4 predicted rows outside tolerance"));
}

TEST(Cli, ValidateStepsRefusesAnotherGpusRunAndAFileWithoutStepRows) {
  TempDir dir;
  std::string text = StepRunOf(ReadFileText(kStepProfile));
  const std::string name = "gpu_name: NVIDIA H200";
  text.replace(text.find(name), name.size(), "gpu_name: NVIDIA H100 80GB HBM3");
  const Result other = RunKvsim({"validate", kStepProfile, "--steps", dir.Write("h100.txt", text)});
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_THAT(other.err, HasSubstr("h100.txt: its [step] rows were measured on 'NVIDIA H100 80GB "
                                   "HBM3', but the kernel rows of "));
  const Result none = RunKvsim({"validate", kStepProfile, "--steps", kNoStepProfile});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("h200_kvprobe_quick_profile.txt: no [step] rows"));
}

TEST(Cli, ValidateNamesAModelWithoutACardAndItsLine) {
  TempDir dir;
  std::string text = ReadFileText(kStepProfile);
  const std::string row = "Llama-3-70B,1,";
  text.replace(text.find(row), row.size(), "Foo-1B,1,");
  const Result r = RunKvsim({"validate", dir.Write("profile.txt", text)});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("profile.txt:121: [step] model Foo-1B: unknown llm card 'Foo-1B'"));
}

TEST(Cli, ValidateRefusesAGpuCardOfAnotherDevice) {
  const Result r = RunKvsim({"validate", kStepProfile, "--gpu", "A100-80GB"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("measured on 'NVIDIA H200', but the --gpu card A100-80GB"));
}

TEST(Cli, ValidateFindsNoCardForAnUnknownDeviceAndListsTheCards) {
  TempDir dir;
  std::string text = ReadFileText(kStepProfile);
  const std::string name = "gpu_name: NVIDIA H200";
  text.replace(text.find(name), name.size(), "gpu_name: NVIDIA V100");
  const Result r = RunKvsim({"validate", dir.Write("profile.txt", text)});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("measured on 'NVIDIA V100', which no GPU card in"));
  EXPECT_THAT(r.err, HasSubstr("H200 ('NVIDIA H200')"));
  EXPECT_THAT(r.err, HasSubstr("pass --gpu CARD"));
}

TEST(Cli, ValidateAcceptsTimingKeysAndRefusesOthers) {
  const Result gap =
      RunKvsim({"validate", kStepProfile, "--set", "timing.engine.kernel_gap_s=0", "-q"});
  EXPECT_EQ(gap.exit_code, 0) << gap.err;
  EXPECT_EQ(gap.out, "");
  const Result typo = RunKvsim({"validate", kStepProfile, "--set", "timing.typo=1"});
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_THAT(typo.err, HasSubstr("--set timing.typo: not a key validate uses"));
  const Result bad =
      RunKvsim({"validate", kStepProfile, "--set", "timing.roofline.gemm_efficiency=2"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("'2' is not a number in [0.001, 1]"));
}

TEST(Cli, ValidateCheckExitsFourUnlessEveryRowIsPredictedWithinItsTolerance) {
  // The test profile's prefill row is predicted 10% long and its mixed row 10% short:
  // the prefill is outside the default 5% for passes, the mixed row inside 12%. Its
  // Llama-3-70B row is not predictable (no [gemm] rows): that fails the gate too.
  const Result strict =
      RunKvsim({"validate", kStepProfile, "--check", "--mixed-tolerance", "12", "-q"});
  EXPECT_EQ(strict.exit_code, 4);
  EXPECT_EQ(strict.out, "");
  EXPECT_THAT(strict.err, HasSubstr("step_profile.txt: 1 of 4 predicted rows outside tolerance "
                                    "(profiled model), 1 row not predictable"));
  // Within 11% every predicted row passes; the unpredictable row still fails the gate.
  const Result loose = RunKvsim(
      {"validate", kStepProfile, "--check", "--tolerance", "11", "--mixed-tolerance", "11", "-q"});
  EXPECT_EQ(loose.exit_code, 4);
  EXPECT_THAT(loose.err, HasSubstr("0 of 4 predicted rows outside tolerance (profiled model), 1 "
                                   "row not predictable"));
  // Without that row the profile passes.
  TempDir dir;
  std::string text = ReadFileText(kStepProfile);
  const size_t row = text.find("Llama-3-70B,1,");
  ASSERT_NE(row, std::string::npos);
  text.erase(row, text.find('\n', row) + 1 - row);
  const Result pass = RunKvsim({"validate", dir.Write("profile.txt", text), "--check",
                                "--tolerance", "11", "--mixed-tolerance", "11", "-q"});
  EXPECT_EQ(pass.exit_code, 0) << pass.err;
  // Without --check the errors do not decide the exit code.
  EXPECT_EQ(RunKvsim({"validate", kStepProfile, "-q"}).exit_code, 0);
}

TEST(Cli, ValidatePrintsAndWritesTheRowsWithinTolerance) {
  TempDir dir;
  const std::string out = dir.PathOf("validate");
  const Result r = RunKvsim({"validate", kStepProfile, "--mixed-tolerance", "12", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("within tolerance (|error| <= 5% for decode-only and prefill-only "
                               "passes, 12% for mixed batches): profiled 3 of 4, roofline"));
  const YAML::Node json = YAML::LoadFile((fs::path(out) / "validate.json").string());
  EXPECT_DOUBLE_EQ(json["tolerance_pct"]["passes"].as<double>(), 5);
  EXPECT_DOUBLE_EQ(json["tolerance_pct"]["mixed"].as<double>(), 12);
  EXPECT_EQ(json["within_tolerance"]["rows"].as<int>(), 4);
  EXPECT_EQ(json["within_tolerance"]["profiled"].as<int>(), 3);
  // Per group: both decode rows, not the prefill row, the mixed row.
  EXPECT_EQ(json["summary"][0]["profiled_within_tolerance"].as<int>(), 2);
  EXPECT_EQ(json["summary"][1]["profiled_within_tolerance"].as<int>(), 0);
  EXPECT_EQ(json["summary"][2]["profiled_within_tolerance"].as<int>(), 1);
}

TEST(Cli, ValidateRefusesAToleranceThatIsNotAPercentage) {
  for (const char* option : {"--tolerance", "--mixed-tolerance"}) {
    for (const char* value : {"0", "-1", "101", "nan"}) {
      const Result r = RunKvsim({"validate", kStepProfile, option, value});
      EXPECT_EQ(r.exit_code, 2) << option << " " << value;
      EXPECT_THAT(r.err, HasSubstr(fmt::format("kvsim validate: {}: {} is not a percentage in "
                                               "(0, 100]",
                                               option, value)));
    }
    const Result text = RunKvsim({"validate", kStepProfile, option, "abc"});
    EXPECT_EQ(text.exit_code, 2);
    EXPECT_THAT(text.err, HasSubstr("abc"));
  }
}

TEST(Cli, GpuAndModelsAreOptionsOfValidateOnly) {
  const Result r = RunKvsim({"run", kQuickstart, "--gpu", "H200"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown option '--gpu' (an option of kvsim validate)"));
}

}  // namespace

namespace kvsim {
namespace {

const std::string kFitFile = std::string(KVSIM_SOURCE_DIR) + "/configs/fit/vllm019_llama31_8b.yaml";

TEST(CliFit, FitsTheBundledRunsAndWritesACalibrationAScenarioCanUse) {
  TempDir dir;
  const Result fit = RunKvsim({"fit", kFitFile, "--holdout", "--out", dir.PathOf("fit")});
  ASSERT_EQ(fit.exit_code, 0) << fit.err;
  EXPECT_THAT(fit.out, HasSubstr("timing.engine.per_seq_s"));
  EXPECT_THAT(fit.out, HasSubstr("holdout: mean |error|"));
  const std::string cal = dir.PathOf("fit/calibration.yaml");
  ASSERT_TRUE(fs::exists(cal));
  EXPECT_TRUE(fs::exists(dir.PathOf("fit/fit.json")));
  EXPECT_TRUE(fs::exists(dir.PathOf("fit/workloads/rtx4090.csv")));
  // The scenario of one run, with the calibration: the fitted terms are named.
  const Result run =
      RunKvsim({"run", std::string(KVSIM_SOURCE_DIR) + "/configs/fit/vllm019_rtx4090.yaml", "--set",
                "timing.calibration=" + cal, "--out", dir.PathOf("run")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("timing.calibration: " + cal));
  EXPECT_THAT(run.out, HasSubstr("per_iteration_s, per_seq_s fitted to measured runs"));
  // The calibration on another model at another tensor parallelism: it runs, and says
  // that neither was among the fitted runs (Llama-3.1-8B, one GPU per replica).
  const Result other =
      RunKvsim({"run", kQuickstart, "--set", "timing.calibration=" + cal, "--set",
                "model=Llama-3-70B", "--set", "deployment.tensor_parallel=4", "--set",
                "workload.max_requests=20", "--out", dir.PathOf("other")});
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_THAT(other.out, HasSubstr("this run's model (Llama-3-70B) was not among them "
                                   "(Llama-3.1-8B), so the fitted terms carry over untested"));
  EXPECT_THAT(other.out, HasSubstr("this run's tensor parallelism (4) was not among them (1)"));
}

TEST(CliFit, AMissingCalibrationSetByAnOverrideIsNamedAsTheOverride) {
  TempDir dir;
  const std::string missing = dir.PathOf("no_such_calibration.yaml");
  const Result r = RunKvsim({"run", kQuickstart, "--set", "timing.calibration=" + missing});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(fmt::format("quickstart.yaml: timing.calibration (set by an "
                                           "override): {}: cannot open calibration file",
                                           missing)));
}

// The review's case: aggregates written in milliseconds (this scenario simulates a
// TPOT of about 30 ms, mean, and 55 ms, p99). The solver converges with per_iteration_s
// at its upper bound and the metrics far off: exit 2, fit.txt says why, and no
// calibration.yaml is written.
TEST(CliFit, AFitFarFromItsMeasurementsExitsTwoAndWritesNoCalibration) {
  TempDir dir;
  const std::string path = dir.PathOf("ms.yaml");
  std::ofstream(path) << "runs:\n  - name: a\n    scenario: " << KVSIM_SOURCE_DIR
                      << "/configs/fit/vllm019_rtx4090.yaml\n"
                         "    aggregates: {tpot_s: {mean: 30, p99: 55}}\n"
                         "free:\n  timing.engine.per_iteration_s: {}\n";
  const Result r = RunKvsim({"fit", path, "--out", dir.PathOf("fit")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(path + ": the fit is refused: after the fit the mean |error| is "));
  EXPECT_THAT(r.err, HasSubstr("timing.engine.per_iteration_s ended at its upper bound 0.05"));
  EXPECT_THAT(r.err, HasSubstr("times look like milliseconds"));
  EXPECT_THAT(r.err, HasSubstr("no calibration.yaml written"));
  EXPECT_THAT(r.out, HasSubstr("REFUSED: "));
  EXPECT_TRUE(fs::exists(dir.PathOf("fit/fit.txt")));
  EXPECT_FALSE(fs::exists(dir.PathOf("fit/calibration.yaml")));
}

TEST(CliFit, AFitFileWithAnUnknownTermFailsNamingItsLine) {
  TempDir dir;
  const std::string path = dir.PathOf("bad.yaml");
  std::ofstream(path) << "runs:\n  - {name: a, scenario: s.yaml, requests: r.csv}\nfree:\n"
                         "  timing.engine.preset: {}\n";
  const Result r = RunKvsim({"fit", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(path + ":4: free.timing.engine.preset: not a term kvsim fit"));
}

TEST(CliFit, HoldoutIsAnOptionOfFitOnly) {
  const Result r = RunKvsim({"run", kQuickstart, "--holdout"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown option '--holdout' (an option of kvsim fit)"));
}

}  // namespace
}  // namespace kvsim
