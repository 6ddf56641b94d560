// Tests for a plan's candidate space: lists and ranges for tensor parallelism and
// for every dimension of a KV-manager or scheduler entry, the order they expand in,
// and the errors for bad ranges, duplicates and names given twice.
#include "sim/config/plan_candidates.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sim/config/plan_config.h"
#include "tests/testing/input_error.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

using ::kvsim::testing::InputErrorMessage;
using ::kvsim::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kQuickstart = KVSIM_SOURCE_DIR "/configs/quickstart.yaml";

// A plan whose `candidates:` section holds `candidates` (indented YAML lines).
std::string PlanWith(const std::string& candidates) {
  return std::string("scenario: ") + kQuickstart +
         "\nslo: {ttft_s: {p99: 2.0}}\ntarget: {qps: 10}\ncandidates:\n" + candidates;
}

// The default lists, with `replace` as the line of the key it names.
std::string Candidates(const std::string& tp, const std::string& kv, const std::string& sched) {
  return "  gpus: [H100-SXM]\n  tensor_parallel: " + tp + "\n  kv_managers: " + kv +
         "\n  schedulers: " + sched + "\n";
}

PlanConfig Load(TempDir& dir, const std::string& candidates) {
  return LoadPlan(dir.Write("plan.yaml", PlanWith(candidates)));
}

std::vector<std::string> KvLabels(const PlanConfig& p) {
  std::vector<std::string> labels;
  for (const KvChoice& kv : p.kv_managers) labels.push_back(kv.Label());
  return labels;
}

std::vector<std::string> SchedulerLabels(const PlanConfig& p) {
  std::vector<std::string> labels;
  for (const SchedulerChoice& s : p.schedulers) labels.push_back(s.Label());
  return labels;
}

constexpr const char* kOneKv = "[{type: static}]";
constexpr const char* kOneScheduler = "[{type: vllm}]";

TEST(PlanCandidates, AListOfBlockSizesGivesOnePagedManagerEach) {
  TempDir dir;
  const PlanConfig p =
      Load(dir, Candidates("[1]", "[{type: paged, block_tokens: [8, 16, 32]}]", kOneScheduler));
  EXPECT_THAT(KvLabels(p), ElementsAre("paged8", "paged16", "paged32"));
}

TEST(PlanCandidates, AGeometricRangeOfPageSizesReadsByteSizes) {
  TempDir dir;
  const PlanConfig p =
      Load(dir, Candidates("[1]",
                           "[{type: vattention, page_bytes: {from: 64KiB, to: 256KiB, times: 2}}]",
                           kOneScheduler));
  ASSERT_EQ(p.kv_managers.size(), 3u);
  EXPECT_EQ(p.kv_managers[0].page_bytes, 64 * 1024);
  EXPECT_EQ(p.kv_managers[1].page_bytes, 128 * 1024);
  EXPECT_EQ(p.kv_managers[2].page_bytes, 256 * 1024);
}

TEST(PlanCandidates, AnArithmeticRangeStopsAtOrBeforeItsEnd) {
  TempDir dir;
  // 256, 768, 1280, 1792: the next (2304) is past 2048.
  const PlanConfig p =
      Load(dir, Candidates("[1]", kOneKv,
                           "[{type: sarathi, chunk_tokens: {from: 256, to: 2048, step: 512}}]"));
  EXPECT_THAT(SchedulerLabels(p),
              ElementsAre("sarathi256", "sarathi768", "sarathi1280", "sarathi1792"));
}

TEST(PlanCandidates, ARangeMayEndExactlyOnItsLastValue) {
  TempDir dir;
  const PlanConfig p = Load(dir, Candidates("{from: 1, to: 8, times: 2}", kOneKv, kOneScheduler));
  EXPECT_THAT(p.tensor_parallel, ElementsAre(1, 2, 4, 8));
}

TEST(PlanCandidates, ASchedulerEntryExpandsToTheProductWithMaxNumSeqsInnermost) {
  TempDir dir;
  const PlanConfig p = Load(
      dir,
      Candidates("[1]", kOneKv,
                 "[{type: sarathi, chunk_tokens: [512, 1024], max_num_seqs: [128, 256, 512]}]"));
  EXPECT_THAT(SchedulerLabels(p),
              ElementsAre("sarathi512-128seqs", "sarathi512-256seqs", "sarathi512-512seqs",
                          "sarathi1024-128seqs", "sarathi1024-256seqs", "sarathi1024-512seqs"));
}

TEST(PlanCandidates, EntriesExpandInTheOrderTheyAreWritten) {
  TempDir dir;
  const PlanConfig p =
      Load(dir, Candidates("[2, 1]", "[{type: paged, block_tokens: [32, 16]}, {type: static}]",
                           kOneScheduler));
  EXPECT_THAT(p.tensor_parallel, ElementsAre(2, 1));
  EXPECT_THAT(KvLabels(p), ElementsAre("paged32", "paged16", "static"));
}

TEST(PlanCandidates, ASingleValueStaysOneCandidate) {
  TempDir dir;
  const PlanConfig p = Load(dir, Candidates("2", "[{type: paged, block_tokens: 16}]",
                                            "[{type: vllm, max_num_seqs: 64}]"));
  EXPECT_THAT(p.tensor_parallel, ElementsAre(2));
  EXPECT_THAT(KvLabels(p), ElementsAre("paged16"));
  EXPECT_THAT(SchedulerLabels(p), ElementsAre("vllm-64seqs"));
}

TEST(PlanCandidates, RangesSpanTheSameSpaceAsTheListsTheyReplace) {
  TempDir dir;
  const PlanConfig lists =
      Load(dir, Candidates("[1, 2, 4]", "[{type: paged, block_tokens: [8, 16, 32, 64]}]",
                           "[{type: vllm, max_num_seqs: [32, 64, 128]}]"));
  const PlanConfig ranges =
      Load(dir, Candidates("{from: 1, to: 4, times: 2}",
                           "[{type: paged, block_tokens: {from: 8, to: 64, times: 2}}]",
                           "[{type: vllm, max_num_seqs: {from: 32, to: 128, times: 2}}]"));
  EXPECT_EQ(lists.tensor_parallel, ranges.tensor_parallel);
  EXPECT_EQ(KvLabels(lists), KvLabels(ranges));
  EXPECT_EQ(SchedulerLabels(lists), SchedulerLabels(ranges));
}

TEST(PlanCandidates, SchedulerNamesShowEveryDimensionThatWasSet) {
  SchedulerChoice s;
  s.type = SchedulerType::kVllm;
  s.chunk_tokens = 512;
  s.max_num_batched_tokens = 4096;
  s.max_num_seqs = 64;
  EXPECT_EQ(s.Label(), "vllm-chunk512-4096tokens-64seqs");
  s.type = SchedulerType::kSarathi;
  EXPECT_EQ(s.Label(), "sarathi512-4096tokens-64seqs");
}

// Errors, each naming the file, line and key path.

std::string ErrorOf(const std::string& candidates, std::string* path_out = nullptr) {
  TempDir dir;
  const std::string path = dir.Write("plan.yaml", PlanWith(candidates));
  if (path_out) *path_out = path;
  return InputErrorMessage([&] { LoadPlan(path); });
}

TEST(PlanCandidateErrors, ARangeWithBothStepAndTimesIsRejected) {
  std::string path;
  const std::string message =
      ErrorOf(Candidates("{from: 1, to: 8, step: 1, times: 2}", kOneKv, kOneScheduler), &path);
  EXPECT_THAT(message, HasSubstr(path + ":6: candidates.tensor_parallel.from"));
  EXPECT_THAT(message, HasSubstr("exactly one of step"));
}

TEST(PlanCandidateErrors, ARangeWithNeitherStepNorTimesIsRejected) {
  EXPECT_THAT(ErrorOf(Candidates("{from: 1, to: 8}", kOneKv, kOneScheduler)),
              HasSubstr("exactly one of step"));
}

TEST(PlanCandidateErrors, ARangeThatEndsBeforeItStartsIsRejected) {
  EXPECT_THAT(
      ErrorOf(
          Candidates("[1]", kOneKv, "[{type: vllm, max_num_seqs: {from: 256, to: 128, step: 1}}]")),
      HasSubstr("candidates.schedulers[0].max_num_seqs.to: must be >= from (256), got 128"));
}

TEST(PlanCandidateErrors, ARangeMissingItsEndIsRejected) {
  EXPECT_THAT(ErrorOf(Candidates("{from: 1, times: 2}", kOneKv, kOneScheduler)),
              HasSubstr("candidates.tensor_parallel.to: required"));
}

TEST(PlanCandidateErrors, ATimesBelowTwoIsRejected) {
  EXPECT_THAT(ErrorOf(Candidates("{from: 1, to: 8, times: 1}", kOneKv, kOneScheduler)),
              HasSubstr("candidates.tensor_parallel.times: must be >= 2"));
}

TEST(PlanCandidateErrors, AnUnknownKeyInARangeIsNamed) {
  EXPECT_THAT(ErrorOf(Candidates("{from: 1, to: 8, times: 2, by: 3}", kOneKv, kOneScheduler)),
              HasSubstr("candidates.tensor_parallel.by: unknown key"));
}

TEST(PlanCandidateErrors, ARangeOfTooManyValuesIsRejected) {
  EXPECT_THAT(ErrorOf(Candidates("[1]", kOneKv,
                                 "[{type: vllm, max_num_seqs: {from: 1, to: 100000, step: 1}}]")),
              HasSubstr(fmt::format("more than {} values", kMaxValuesPerDimension)));
}

TEST(PlanCandidateErrors, AnEntryExpandingPastThePlansLimitIsRejectedBeforeItExpands) {
  // 4,096 x 4,096 = 16.8 million schedulers from one entry.
  const std::string message = ErrorOf(Candidates(
      "[1]", kOneKv,
      "[{type: sarathi, chunk_tokens: {from: 1, to: 4096, step: 1}, max_num_seqs: {from: 1, to: "
      "4096, step: 1}}]"));
  EXPECT_THAT(message, HasSubstr("candidates.schedulers[0]: expands to 1.678e+07 schedulers"));
  EXPECT_THAT(message, HasSubstr(fmt::format("more than the {}", kMaxPlanSearches)));
}

TEST(PlanCandidateErrors, ListsWhoseProductPassesThePlansLimitAreRejected) {
  // 1,024 tensor-parallel degrees x 1,000 block sizes = 1,024,000 searches.
  const std::string message = ErrorOf(
      Candidates("{from: 1, to: 1024, step: 1}",
                 "[{type: paged, block_tokens: {from: 1, to: 1000, step: 1}}]", kOneScheduler));
  EXPECT_THAT(message, HasSubstr("candidates: 1 GPUs x 1024 tensor-parallel degrees x 1000 KV "
                                 "managers x 1 schedulers x 1 scenarios = 1.024e+06 searches"));
}

TEST(PlanCandidateErrors, AValueListedTwiceIsNamedAtItsPosition) {
  EXPECT_THAT(
      ErrorOf(Candidates("[1]", "[{type: paged, block_tokens: [16, 32, 16]}]", kOneScheduler)),
      HasSubstr("candidates.kv_managers[0].block_tokens[2]: 16 is listed twice"));
}

TEST(PlanCandidateErrors, APageSizeVAttentionCannotUseIsRejectedAtItsLine) {
  EXPECT_THAT(
      ErrorOf(Candidates("[1]", "[{type: vattention, page_bytes: [64KiB, 3KiB]}]", kOneScheduler)),
      HasSubstr("candidates.kv_managers[0].page_bytes: 3072 is not a vAttention page size "
                "(64KiB, 128KiB, 256KiB or 2MiB)"));
}

TEST(PlanCandidateErrors, AValueOutOfBoundsInARangeIsRejected) {
  EXPECT_THAT(ErrorOf(Candidates("{from: 0, to: 8, times: 2}", kOneKv, kOneScheduler)),
              HasSubstr("candidates.tensor_parallel.from: must be >= 1, got 0"));
}

TEST(PlanCandidateErrors, ANonIntegerInAListIsRejected) {
  EXPECT_THAT(ErrorOf(Candidates("[1, two]", kOneKv, kOneScheduler)),
              HasSubstr("candidates.tensor_parallel[1]: expected an integer, got 'two'"));
}

TEST(PlanCandidateErrors, TwoEntriesGivingTheSameCandidateNameNameBoth) {
  const std::string message = ErrorOf(
      Candidates("[1]", "[{type: paged, block_tokens: [16, 32]}, {type: paged, block_tokens: 32}]",
                 kOneScheduler));
  EXPECT_THAT(message,
              HasSubstr("candidates.kv_managers[1]: gives the KV manager 'paged32' again"));
  EXPECT_THAT(message, HasSubstr("candidates.kv_managers[0]"));
}

TEST(PlanCandidateErrors, AGpuListedTwiceIsRejected) {
  const std::string message = ErrorOf(
      "  gpus: [H100-SXM, H100-SXM]\n  tensor_parallel: [1]\n  kv_managers: [{type: static}]\n"
      "  schedulers: [{type: vllm}]\n");
  EXPECT_THAT(message, HasSubstr("candidates.gpus[1]: gives the GPU 'H100-SXM' again"));
}

// A dimension written with no value (`key:`, `~`, `null`) used to read as absent: the
// scenario's value, one candidate, silently. Lines: gpus 5, tensor_parallel 6,
// kv_managers 7, schedulers 8.
TEST(PlanCandidateErrors, ADimensionItsTypeDoesNotReadIsAnErrorNotCandidatesThatDifferInName) {
  const struct {
    std::string kv, sched, message;
  } cases[] = {
      {"[{type: static, block_tokens: 32}]", kOneScheduler,
       ":7: candidates.kv_managers[0].block_tokens: does not apply to the static KV manager "
       "(block_tokens: paged only)"},
      {"[{type: paged, page_bytes: 2MiB}]", kOneScheduler,
       ":7: candidates.kv_managers[0].page_bytes: does not apply to the paged KV manager "
       "(page_bytes: vattention only)"},
      {kOneKv, "[{type: vllm, chunk_tokens: [256, 512, 2048]}]",
       ":8: candidates.schedulers[0].chunk_tokens: does not apply to the vllm scheduler "
       "(chunk_tokens: sarathi only), whose candidates it would only rename; leave it out"},
      {kOneKv, "[{type: static_batching, max_num_batched_tokens: 4096}]",
       ":8: candidates.schedulers[0].max_num_batched_tokens: does not apply to the "
       "static_batching scheduler (max_num_batched_tokens: vllm, sarathi and vllm_v1 only)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    std::string path;
    EXPECT_THAT(ErrorOf(Candidates("[1]", c.kv, c.sched), &path), HasSubstr(path + c.message));
  }
}

TEST(PlanCandidateErrors, ADimensionWithNoValueIsAnErrorNamingItsKeyPathAndLine) {
  const std::string kRange = ", a list or a range {from, to, step or times}, got no value";
  const struct {
    std::string tp, kv, sched, message;
  } cases[] = {
      {"[1]", "[{type: paged, block_tokens: ~}]", kOneScheduler,
       ":7: candidates.kv_managers[0].block_tokens: expected an integer" + kRange},
      {"[1]", "[{type: vattention, page_bytes: null}]", kOneScheduler,
       ":7: candidates.kv_managers[0].page_bytes: expected a byte size" + kRange},
      {"[1]", kOneKv, "[{type: sarathi, chunk_tokens: ~}]",
       ":8: candidates.schedulers[0].chunk_tokens: expected an integer" + kRange},
      {"[1]", kOneKv, "[{type: vllm_v1, max_num_batched_tokens: ~}]",
       ":8: candidates.schedulers[0].max_num_batched_tokens: expected an integer" + kRange},
      {"[1]", kOneKv, "[{type: sarathi, max_num_seqs: [128, 256], chunk_tokens: ~}]",
       ":8: candidates.schedulers[0].chunk_tokens: expected an integer" + kRange},
      {"[1]", kOneKv, "\n    - type: sarathi\n      max_num_seqs:\n      chunk_tokens: 512",
       ":10: candidates.schedulers[0].max_num_seqs: expected an integer" + kRange},
      {"~", kOneKv, kOneScheduler, ":6: candidates.tensor_parallel: expected an integer" + kRange},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    std::string path;
    EXPECT_THAT(ErrorOf(Candidates(c.tp, c.kv, c.sched), &path), HasSubstr(path + c.message));
  }
}

TEST(PlanCandidateErrors, ARangeBoundOrListValueWithNoValueIsAnErrorNamingIt) {
  const struct {
    std::string tp, message;
  } cases[] = {
      // step: ~ beside times: read as absent, the range took times silently.
      {"{from: 1, to: 8, times: 2, step: ~}",
       ":6: candidates.tensor_parallel.step: expected an integer, got no value"},
      {"{from: 1, to: 8, step: 1, times: null}",
       ":6: candidates.tensor_parallel.times: expected an integer, got no value"},
      {"{from: ~, to: 8, times: 2}",
       ":6: candidates.tensor_parallel.from: expected an integer, got no value"},
      {"[1, ~]", ":6: candidates.tensor_parallel[1]: expected an integer, got no value"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.tp);
    std::string path;
    EXPECT_THAT(ErrorOf(Candidates(c.tp, kOneKv, kOneScheduler), &path),
                HasSubstr(path + c.message));
  }
}

TEST(PlanCandidateErrors, AGpuListWithNoValueIsAnErrorNamingItsLine) {
  std::string path;
  const std::string message = ErrorOf(
      "  gpus:\n  tensor_parallel: [1]\n  kv_managers: [{type: static}]\n"
      "  schedulers: [{type: vllm}]\n",
      &path);
  EXPECT_THAT(message, HasSubstr(path + ":5: candidates.gpus: expected a non-empty list, got no "
                                        "value"));
}

}  // namespace
}  // namespace kvsim
