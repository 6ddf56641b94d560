// Conformance suite run against every batch scheduler (vllm, sarathi,
// static_batching, vllm_v1), each with a paged and a static KV manager, plus the
// rules that belong to one scheduler only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sim/batching/batch_scheduler.h"
#include "sim/batching/sequence.h"
#include "sim/kvcache/kv_cache_manager.h"

namespace kvsim {
namespace {

// A toy geometry: one byte per token, so capacities read in tokens.
constexpr int64_t kMaxModelLen = 32;
constexpr int64_t kBlockTokens = 4;
// Paged: 32 tokens = 8 blocks of 4, no watermark: one max_model_len request fits
// an empty cache, two long ones do not fit together.
constexpr int64_t kPagedCapacityTokens = 32;
// Static: room for 4 reservations of max_model_len tokens.
constexpr int64_t kStaticCapacityTokens = 4 * kMaxModelLen;

constexpr int64_t kMaxNumSeqs = 3;
constexpr int64_t kVllmMaxBatchedTokens = 32;  // >= max_model_len, as the builder requires
constexpr int64_t kSarathiChunkTokens = 16;
constexpr int64_t kSarathiMaxBatchedTokens = 64;  // budget = min(16, 64) = 16
constexpr int64_t kVllmV1MaxBatchedTokens = 20;   // the one budget; no chunk cap
constexpr int64_t kRoomyTokens = 1024;            // a paged cache that never runs out here

KvGeometry Geometry(int64_t capacity_tokens) {
  return {.capacity_bytes = capacity_tokens,
          .bytes_per_token = 1,
          .bytes_per_token_per_layer = 1,
          .num_layers = 1,
          .max_model_len = kMaxModelLen};
}

std::unique_ptr<KvCacheManager> MakeKv(KvManagerType type, int64_t paged_capacity_tokens) {
  if (type == KvManagerType::kStatic) {
    return NewStaticKvManager(Geometry(kStaticCapacityTokens), StaticKvConfig{});
  }
  return NewPagedKvManager(Geometry(paged_capacity_tokens),
                           {.block_tokens = kBlockTokens, .watermark = 0});
}

std::unique_ptr<BatchScheduler> MakeScheduler(SchedulerType type) {
  switch (type) {
    case SchedulerType::kVllm:
      return NewVllmScheduler(
          {.max_num_seqs = kMaxNumSeqs, .max_num_batched_tokens = kVllmMaxBatchedTokens});
    case SchedulerType::kSarathi:
      return NewSarathiScheduler({.max_num_seqs = kMaxNumSeqs,
                                  .max_num_batched_tokens = kSarathiMaxBatchedTokens,
                                  .chunk_tokens = kSarathiChunkTokens});
    case SchedulerType::kStaticBatching:
      return NewStaticBatchingScheduler({.max_num_seqs = kMaxNumSeqs});
    case SchedulerType::kVllmV1:
      return NewVllmV1Scheduler(
          {.max_num_seqs = kMaxNumSeqs, .max_num_batched_tokens = kVllmV1MaxBatchedTokens});
  }
  return nullptr;
}

// Tokens one iteration may compute; static batching has no token budget.
int64_t TokenBudget(SchedulerType type) {
  switch (type) {
    case SchedulerType::kVllm:
      return kVllmMaxBatchedTokens;
    case SchedulerType::kSarathi:
      return std::min(kSarathiChunkTokens, kSarathiMaxBatchedTokens);
    case SchedulerType::kStaticBatching:
      return std::numeric_limits<int64_t>::max();
    case SchedulerType::kVllmV1:
      return kVllmV1MaxBatchedTokens;
  }
  return 0;
}

struct SeqState {
  int64_t id;
  int64_t computed;
  int64_t preemptions;
};

std::vector<SeqState> Snapshot(const auto& container) {
  std::vector<SeqState> out;
  for (const auto& s : container) out.push_back({s->spec.id, s->computed, s->preemptions});
  return out;
}

std::vector<int64_t> Ids(const auto& container) {
  std::vector<int64_t> out;
  for (const auto& s : container) out.push_back(s->spec.id);
  return out;
}

// One planned iteration: the queues before planning, and (through pointers) the
// queues and batch after it.
struct PlannedStep {
  std::vector<SeqState> running_before;
  std::vector<SeqState> waiting_before;
  const SequenceQueues* queues;
  const Batch* batch;
};

// Drives a scheduler and a KV manager the way a replica does, applying the token
// rule at the end of every iteration.
class Harness {
 public:
  Harness(SchedulerType scheduler, KvManagerType kv,
          int64_t paged_capacity_tokens = kPagedCapacityTokens)
      : scheduler_(MakeScheduler(scheduler)), kv_(MakeKv(kv, paged_capacity_tokens)) {}
  Harness(std::unique_ptr<BatchScheduler> scheduler, std::unique_ptr<KvCacheManager> kv)
      : scheduler_(std::move(scheduler)), kv_(std::move(kv)) {}

  void Arrive(int64_t prompt, int64_t output) {
    auto seq = std::make_unique<Sequence>();
    seq->spec.id = next_id_++;
    seq->spec.prompt_tokens = prompt;
    seq->spec.output_tokens = output;
    queues_.waiting.push_back(std::move(seq));
  }

  // Plans one iteration, hands it to `check`, and returns the batch.
  const Batch& Plan(const std::function<void(const PlannedStep&)>& check = nullptr) {
    PlannedStep step{Snapshot(queues_.running), Snapshot(queues_.waiting), &queues_, &batch_};
    scheduler_->Schedule(queues_, *kv_, batch_);
    preemptions_ += batch_.preempted;
    for (const Sequence* seq : batch_.seqs) {
      if (seq->computed == 0 && seq->preemptions == 0 && !admitted_.contains(seq->spec.id)) {
        admitted_.insert(seq->spec.id);
        admission_order_.push_back(seq->spec.id);
      }
    }
    if (check) check(step);
    return batch_;
  }

  // Ends the iteration: computed += scheduled; a sequence whose computed tokens
  // reach its known tokens emits one; finished sequences release their KV.
  void Complete() {
    for (Sequence* seq : batch_.seqs) {
      seq->computed += seq->scheduled_tokens;
      seq->scheduled_tokens = 0;
      if (seq->computed == seq->KnownTokens()) ++seq->generated;
      if (seq->Finished()) {
        kv_->Release(seq->spec.id);
        seq->admitted = false;
      }
    }
    for (auto it = queues_.running.begin(); it != queues_.running.end();) {
      if ((*it)->Finished()) {
        finished_.push_back((*it)->spec.id);
        it = queues_.running.erase(it);
      } else {
        ++it;
      }
    }
    batch_.Clear();
  }

  SequenceQueues& queues() { return queues_; }
  const KvCacheManager& kv() const { return *kv_; }
  bool SchedulesAllDecodes() const { return scheduler_->SchedulesAllDecodes(queues_); }
  int64_t preemptions() const { return preemptions_; }
  const std::vector<int64_t>& admission_order() const { return admission_order_; }
  const std::vector<int64_t>& finished() const { return finished_; }
  int64_t arrived() const { return next_id_; }

 private:
  std::unique_ptr<BatchScheduler> scheduler_;
  std::unique_ptr<KvCacheManager> kv_;
  SequenceQueues queues_;
  Batch batch_;
  int64_t next_id_ = 0;
  int64_t preemptions_ = 0;
  std::set<int64_t> admitted_;
  std::vector<int64_t> admission_order_;
  std::vector<int64_t> finished_;
};

// The conformance workload: eight requests, one arriving before every second
// iteration, with lengths mixed so that (on the 32-token paged cache) two long
// requests cannot grow side by side.
struct Arrival {
  int64_t prompt, output;
};
constexpr Arrival kWorkload[] = {{8, 14}, {12, 6}, {5, 12}, {16, 9},
                                 {9, 3},  {3, 11}, {14, 4}, {7, 8}};
constexpr int64_t kWorkloadSize = std::size(kWorkload);

// Runs the workload until every request finished (or a generous iteration cap),
// calling `check` after each plan (and `before_plan`, if any, before it). Returns
// the number of iterations. With `all_at_once`, every request is queued before the
// first plan.
int64_t RunWorkload(Harness& h, const std::function<void(const PlannedStep&)>& check,
                    bool all_at_once = false, const std::function<void()>& before_plan = nullptr) {
  constexpr int64_t kMaxIterations = 10'000;
  int64_t iteration = 0;
  for (; iteration < kMaxIterations; ++iteration) {
    while ((all_at_once || iteration % 2 == 0) && h.arrived() < kWorkloadSize) {
      const Arrival& a = kWorkload[h.arrived()];
      h.Arrive(a.prompt, a.output);
      if (!all_at_once) break;
    }
    if (before_plan) before_plan();
    const Batch& batch = h.Plan(check);
    if (batch.empty()) {
      // Every request fits an empty cache, so an empty plan means nothing is queued.
      EXPECT_TRUE(h.queues().running.empty());
      EXPECT_TRUE(h.queues().waiting.empty());
      if (h.arrived() == kWorkloadSize) break;
      continue;
    }
    h.Complete();
  }
  return iteration;
}

struct ConformanceCase {
  SchedulerType scheduler;
  KvManagerType kv;
};

void PrintTo(const ConformanceCase& c, std::ostream* os) {
  *os << SchedulerTypeName(c.scheduler) << " scheduler, " << kKvManagerTypes.Name(c.kv)
      << " KV manager";
}

std::string CaseName(const testing::TestParamInfo<ConformanceCase>& info) {
  return std::string(SchedulerTypeName(info.param.scheduler)) + "_" +
         std::string(kKvManagerTypes.Name(info.param.kv));
}

class SchedulerConformance : public testing::TestWithParam<ConformanceCase> {
 protected:
  Harness MakeHarness() const { return Harness(GetParam().scheduler, GetParam().kv); }
  SchedulerType type() const { return GetParam().scheduler; }
};

// Skip-ahead's contract: whenever the scheduler says it would plan every running
// sequence for one decode token, the plan (with memory to spare) is exactly that.
TEST_P(SchedulerConformance, WhenItPromisesAllDecodesThePlanIsEveryRunningSequenceForOneToken) {
  Harness h(GetParam().scheduler, GetParam().kv, kRoomyTokens);
  bool promised = false;
  int64_t promises = 0;
  RunWorkload(
      h,
      [&](const PlannedStep& step) {
        if (!promised) return;
        ++promises;
        const Batch& b = *step.batch;
        std::vector<int64_t> running_before;
        for (const SeqState& s : step.running_before) running_before.push_back(s.id);
        EXPECT_EQ(Ids(b.seqs), running_before);
        EXPECT_EQ(Ids(step.queues->running), running_before);  // nobody admitted or preempted
        EXPECT_EQ(step.queues->waiting.size(), step.waiting_before.size());
        for (const Sequence* seq : b.seqs) {
          EXPECT_EQ(seq->scheduled_tokens, 1);
          EXPECT_TRUE(seq->IsDecode());
        }
        EXPECT_EQ(b.decode_tokens, static_cast<int64_t>(running_before.size()));
        EXPECT_EQ(b.prefill_tokens, 0);
        EXPECT_EQ(b.preempted, 0);
      },
      /*all_at_once=*/false, [&] { promised = h.SchedulesAllDecodes(); });
  EXPECT_GT(promises, 0) << "the scheduler never promised a decode-only plan";
}

TEST_P(SchedulerConformance, BatchRespectsMaxNumSeqsAndTheTokenBudget) {
  Harness h = MakeHarness();
  const int64_t budget = TokenBudget(type());
  RunWorkload(h, [&](const PlannedStep& s) {
    const Batch& b = *s.batch;
    EXPECT_LE(static_cast<int64_t>(b.seqs.size()), kMaxNumSeqs);
    EXPECT_LE(static_cast<int64_t>(s.queues->running.size()), kMaxNumSeqs);
    EXPECT_LE(b.prefill_tokens + b.decode_tokens, budget);
    int64_t prefill = 0, decode = 0;
    std::set<const Sequence*> distinct;
    for (const Sequence* seq : b.seqs) {
      EXPECT_TRUE(distinct.insert(seq).second) << "sequence " << seq->spec.id << " planned twice";
      EXPECT_GE(seq->scheduled_tokens, 1);
      EXPECT_LE(seq->scheduled_tokens, seq->PendingTokens());
      (seq->IsDecode() ? decode : prefill) += seq->scheduled_tokens;
      const bool in_running =
          std::any_of(s.queues->running.begin(), s.queues->running.end(),
                      [seq](const std::unique_ptr<Sequence>& r) { return r.get() == seq; });
      EXPECT_TRUE(in_running) << "sequence " << seq->spec.id << " planned but not running";
    }
    EXPECT_EQ(b.prefill_tokens, prefill);
    EXPECT_EQ(b.decode_tokens, decode);
  });
}

TEST_P(SchedulerConformance, EveryRunningSequenceComputesAtLeastOneTokenWhenItsRuleSaysSo) {
  Harness h = MakeHarness();
  int64_t checked = 0;
  RunWorkload(h, [&](const PlannedStep& s) {
    const Batch& b = *s.batch;
    bool all_must_run = false;
    switch (type()) {
      case SchedulerType::kVllm:
        all_must_run = b.prefill_tokens == 0;  // a decode step
        break;
      case SchedulerType::kSarathi:
        // One token each fits the budget.
        all_must_run = static_cast<int64_t>(s.running_before.size()) <= TokenBudget(type());
        break;
      case SchedulerType::kStaticBatching:
        all_must_run = true;  // the batch in flight runs whole
        break;
      case SchedulerType::kVllmV1: {
        // Running sequences take the budget in order, each up to its pending
        // tokens: all of them run when those of the survivors fit it together.
        std::set<int64_t> before;
        for (const SeqState& r : s.running_before) before.insert(r.id);
        int64_t pending = 0;
        for (const auto& seq : s.queues->running) {
          if (before.contains(seq->spec.id)) pending += seq->PendingTokens();
        }
        all_must_run = pending <= TokenBudget(type());
        break;
      }
    }
    if (!all_must_run) return;
    for (const auto& seq : s.queues->running) {
      ++checked;
      EXPECT_GE(seq->scheduled_tokens, 1) << "running sequence " << seq->spec.id << " left out";
      EXPECT_NE(std::find(b.seqs.begin(), b.seqs.end(), seq.get()), b.seqs.end());
    }
  });
  EXPECT_GT(checked, 0);
}

TEST_P(SchedulerConformance, AdmitsFirstComeFirstServed) {
  std::vector<int64_t> expected(kWorkloadSize);
  for (int64_t i = 0; i < kWorkloadSize; ++i) expected[i] = i;
  for (bool all_at_once : {false, true}) {
    Harness h = MakeHarness();
    RunWorkload(h, nullptr, all_at_once);
    EXPECT_EQ(h.admission_order(), expected) << (all_at_once ? "queued together" : "staggered");
  }
}

// Preemption and admission in one plan, as one queue rule: the sequences
// preempted (a suffix of the running list: the most recently admitted) go to the
// front of the waiting queue in their running order, ahead of those that were
// waiting; admissions take from the front of that queue, in order; what is not
// admitted is the new waiting queue. Survivors keep their running order.
TEST_P(SchedulerConformance, PreemptsTheMostRecentlyAdmittedToTheFrontOfTheWaitingQueue) {
  Harness h = MakeHarness();
  RunWorkload(h, [&](const PlannedStep& s) {
    const std::vector<int64_t> running_after = Ids(s.queues->running);
    const std::vector<int64_t> waiting_after = Ids(s.queues->waiting);
    auto find_seq = [&](int64_t id) -> const Sequence* {
      for (const auto& seq : s.queues->running) {
        if (seq->spec.id == id) return seq.get();
      }
      for (const auto& seq : s.queues->waiting) {
        if (seq->spec.id == id) return seq.get();
      }
      return nullptr;
    };

    std::vector<int64_t> survivors, preempted;
    for (const SeqState& before : s.running_before) {
      const Sequence* seq = find_seq(before.id);
      ASSERT_NE(seq, nullptr) << "sequence " << before.id << " vanished while planning";
      if (seq->preemptions == before.preemptions) {
        survivors.push_back(before.id);
        EXPECT_EQ(seq->computed, before.computed);
      } else {
        EXPECT_EQ(seq->preemptions, before.preemptions + 1);
        EXPECT_EQ(seq->computed, 0) << "a preempted sequence keeps no KV";
        preempted.push_back(before.id);
      }
    }
    EXPECT_EQ(s.batch->preempted, static_cast<int64_t>(preempted.size()));
    // Victims are the most recently admitted: a suffix of the running list.
    ASSERT_LE(survivors.size(), s.running_before.size());
    for (size_t i = 0; i < survivors.size(); ++i) {
      EXPECT_EQ(survivors[i], s.running_before[i].id) << "a victim was not the newest";
    }

    std::vector<int64_t> queue = preempted;
    for (const SeqState& w : s.waiting_before) queue.push_back(w.id);
    ASSERT_GE(running_after.size(), survivors.size());
    const std::vector<int64_t> kept(running_after.begin(),
                                    running_after.begin() + static_cast<long>(survivors.size()));
    EXPECT_EQ(kept, survivors);
    const std::vector<int64_t> admitted(running_after.begin() + static_cast<long>(survivors.size()),
                                        running_after.end());
    ASSERT_LE(admitted.size(), queue.size());
    EXPECT_EQ(admitted, std::vector<int64_t>(queue.begin(),
                                             queue.begin() + static_cast<long>(admitted.size())));
    EXPECT_EQ(waiting_after, std::vector<int64_t>(
                                 queue.begin() + static_cast<long>(admitted.size()), queue.end()));
    for (const auto& seq : s.queues->waiting) {
      EXPECT_FALSE(seq->admitted);
      EXPECT_EQ(seq->computed, 0);
      EXPECT_EQ(seq->scheduled_tokens, 0);
    }
  });
  if (GetParam().kv == KvManagerType::kPaged) {
    // The 32-token paged cache cannot hold two long requests: the rule above was exercised.
    EXPECT_GT(h.preemptions(), 0);
  } else {
    // A static reservation covers a request's whole life: growth never fails.
    EXPECT_EQ(h.preemptions(), 0);
  }
}

// A victim is recomputed later, never in the plan that preempted it: memory freed
// by a preemption goes to the running sequences that needed it, and a plan that
// had to preempt admits nobody (vLLM's scheduler skips the waiting queue in a
// step with preemptions). Admitting there would hand the victim, now the most
// recently admitted, a chunk that the next growth preempts again.
TEST_P(SchedulerConformance, AdmitsNobodyInAPlanThatPreempted) {
  Harness h = MakeHarness();
  int64_t plans_with_preemption = 0;
  RunWorkload(h, [&](const PlannedStep& s) {
    if (s.batch->preempted == 0) return;
    ++plans_with_preemption;
    // Running after the plan without having been admitted by it: running before,
    // and not preempted (a preempted sequence still running was re-admitted).
    std::map<int64_t, int64_t> preemptions_before;
    for (const SeqState& r : s.running_before) preemptions_before[r.id] = r.preemptions;
    for (const auto& seq : s.queues->running) {
      const auto it = preemptions_before.find(seq->spec.id);
      EXPECT_TRUE(it != preemptions_before.end() && it->second == seq->preemptions)
          << "sequence " << seq->spec.id << " (preemptions " << seq->preemptions
          << ") admitted in a plan that preempted " << s.batch->preempted;
    }
  });
  if (GetParam().kv == KvManagerType::kPaged) {
    EXPECT_GT(plans_with_preemption, 0);
  }
}

TEST_P(SchedulerConformance, EverySequenceFinishesAndReleasesItsMemory) {
  Harness h = MakeHarness();
  const int64_t iterations = RunWorkload(h, nullptr);
  EXPECT_LT(iterations, 10'000);
  std::vector<int64_t> finished = h.finished();
  std::sort(finished.begin(), finished.end());
  std::vector<int64_t> expected(kWorkloadSize);
  for (int64_t i = 0; i < kWorkloadSize; ++i) expected[i] = i;
  EXPECT_EQ(finished, expected);
  EXPECT_EQ(h.kv().Usage().allocated_bytes, 0);
  EXPECT_EQ(h.kv().Usage().live_bytes, 0);
}

TEST_P(SchedulerConformance, EmptyQueuesGiveAnEmptyBatch) {
  Harness h = MakeHarness();
  EXPECT_TRUE(h.Plan().empty());
}

TEST_P(SchedulerConformance, LoneRequestIsAdmittedWithItsWholePromptOrFirstChunk) {
  Harness h = MakeHarness();
  h.Arrive(/*prompt=*/30, /*output=*/2);
  const Batch& b = h.Plan();
  ASSERT_EQ(b.seqs.size(), 1u);
  // Sarathi: a chunk of min(30, budget 16); vllm_v1: min(30, budget 20); the
  // others: the whole prompt.
  const int64_t expected = type() == SchedulerType::kSarathi  ? 16
                           : type() == SchedulerType::kVllmV1 ? 20
                                                              : 30;
  EXPECT_EQ(b.prefill_tokens, expected);
  EXPECT_EQ(b.decode_tokens, 0);
  EXPECT_TRUE(b.seqs[0]->admitted);
}

INSTANTIATE_TEST_SUITE_P(
    AllSchedulersAndManagers, SchedulerConformance,
    testing::Values(ConformanceCase{SchedulerType::kVllm, KvManagerType::kPaged},
                    ConformanceCase{SchedulerType::kVllm, KvManagerType::kStatic},
                    ConformanceCase{SchedulerType::kSarathi, KvManagerType::kPaged},
                    ConformanceCase{SchedulerType::kSarathi, KvManagerType::kStatic},
                    ConformanceCase{SchedulerType::kStaticBatching, KvManagerType::kPaged},
                    ConformanceCase{SchedulerType::kStaticBatching, KvManagerType::kStatic},
                    ConformanceCase{SchedulerType::kVllmV1, KvManagerType::kPaged},
                    ConformanceCase{SchedulerType::kVllmV1, KvManagerType::kStatic}),
    CaseName);

// ---- vllm ----------------------------------------------------------------

TEST(VllmScheduler, AdmittedPromptsRunInAPrefillOnlyIteration) {
  Harness h(SchedulerType::kVllm, KvManagerType::kPaged, kRoomyTokens);
  h.Arrive(8, 5);
  h.Plan();  // prefill of request 0
  h.Complete();
  const Batch& decode = h.Plan();  // request 0 decodes
  EXPECT_EQ(decode.decode_tokens, 1);
  h.Complete();

  h.Arrive(12, 3);
  const Batch& mixed = h.Plan();
  ASSERT_EQ(mixed.seqs.size(), 1u);
  EXPECT_EQ(mixed.seqs[0]->spec.id, 1);
  EXPECT_EQ(mixed.prefill_tokens, 12);
  EXPECT_EQ(mixed.decode_tokens, 0) << "prefills must not be mixed with decodes";
  EXPECT_EQ(h.queues().running[0]->scheduled_tokens, 0) << "the decoding request sits out";
  h.Complete();

  const Batch& both = h.Plan();
  EXPECT_EQ(both.seqs.size(), 2u);
  EXPECT_EQ(both.decode_tokens, 2);
  EXPECT_EQ(both.prefill_tokens, 0);
}

TEST(VllmScheduler, StopsAdmittingAtTheTokenBudgetWithoutReordering) {
  Harness h(SchedulerType::kVllm, KvManagerType::kPaged, kRoomyTokens);
  // Budget 32: 20 fits; 20 + 20 = 40 does not; the 5 behind it must wait its turn.
  h.Arrive(20, 2);
  h.Arrive(20, 2);
  h.Arrive(5, 2);
  const Batch& first = h.Plan();
  ASSERT_EQ(first.seqs.size(), 1u);
  EXPECT_EQ(first.seqs[0]->spec.id, 0);
  EXPECT_EQ(first.prefill_tokens, 20);
  h.Complete();
  // Next: 20 + 5 = 25 <= 32, both admitted, prefill only.
  const Batch& second = h.Plan();
  ASSERT_EQ(second.seqs.size(), 2u);
  EXPECT_EQ(second.seqs[0]->spec.id, 1);
  EXPECT_EQ(second.seqs[1]->spec.id, 2);
  EXPECT_EQ(second.prefill_tokens, 25);
  EXPECT_EQ(second.decode_tokens, 0);
}

TEST(VllmScheduler, StopsAdmittingAtMaxNumSeqs) {
  Harness h(SchedulerType::kVllm, KvManagerType::kPaged, kRoomyTokens);
  for (int i = 0; i < 5; ++i) h.Arrive(2, 4);
  const Batch& b = h.Plan();
  EXPECT_EQ(static_cast<int64_t>(b.seqs.size()), kMaxNumSeqs);
  EXPECT_EQ(h.queues().waiting.size(), 2u);
}

// ---- sarathi -------------------------------------------------------------

TEST(SarathiScheduler, SplitsALongPromptIntoChunksOfAtMostChunkTokens) {
  Harness h(SchedulerType::kSarathi, KvManagerType::kPaged, kRoomyTokens);
  h.Arrive(30, 2);
  // 30 = 16 + 14: two iterations, the token appears after the second.
  const Batch& first = h.Plan();
  EXPECT_EQ(first.prefill_tokens, kSarathiChunkTokens);
  h.Complete();
  EXPECT_EQ(h.queues().running[0]->generated, 0);
  const Batch& second = h.Plan();
  EXPECT_EQ(second.prefill_tokens, 30 - kSarathiChunkTokens);
  h.Complete();
  EXPECT_EQ(h.queues().running[0]->generated, 1);
}

TEST(SarathiScheduler, SchedulesDecodesFirstAndGivesPrefillsTheRestOfTheBudget) {
  Harness h(SchedulerType::kSarathi, KvManagerType::kPaged, kRoomyTokens);
  h.Arrive(4, 10);
  h.Plan();
  h.Complete();  // request 0 now decodes
  h.Arrive(30, 2);
  // Budget 16: 1 decode token, then a 15-token chunk of request 1.
  const Batch& b = h.Plan();
  ASSERT_EQ(b.seqs.size(), 2u);
  EXPECT_EQ(b.seqs[0]->spec.id, 0);
  EXPECT_EQ(b.seqs[0]->scheduled_tokens, 1);
  EXPECT_EQ(b.seqs[1]->spec.id, 1);
  EXPECT_EQ(b.seqs[1]->scheduled_tokens, kSarathiChunkTokens - 1);
  EXPECT_EQ(b.decode_tokens, 1);
  EXPECT_EQ(b.prefill_tokens, kSarathiChunkTokens - 1);
  h.Complete();
  // Then 1 + 15 again: 15 + 15 = 30 completes the prompt.
  const Batch& next = h.Plan();
  EXPECT_EQ(next.decode_tokens, 1);
  EXPECT_EQ(next.prefill_tokens, 15);
  h.Complete();
  EXPECT_EQ(h.queues().running[1]->generated, 1);
}

TEST(SarathiScheduler, DecodesComeBeforePrefillsInEveryBatch) {
  Harness h(SchedulerType::kSarathi, KvManagerType::kPaged);
  RunWorkload(h, [](const PlannedStep& s) {
    bool seen_prefill = false;
    for (const Sequence* seq : s.batch->seqs) {
      if (seq->IsDecode()) {
        EXPECT_FALSE(seen_prefill) << "decode " << seq->spec.id << " planned after a prefill";
      } else {
        seen_prefill = true;
        EXPECT_LE(seq->scheduled_tokens, kSarathiChunkTokens);
      }
    }
  });
}

TEST(SarathiScheduler, BudgetIsTheSmallerOfChunkTokensAndMaxNumBatchedTokens) {
  auto scheduler =
      NewSarathiScheduler({.max_num_seqs = 4, .max_num_batched_tokens = 8, .chunk_tokens = 16});
  auto kv =
      NewPagedKvManager(Geometry(kRoomyTokens), {.block_tokens = kBlockTokens, .watermark = 0});
  SequenceQueues q;
  auto seq = std::make_unique<Sequence>();
  seq->spec = {
      .id = 0, .arrival = Nanos(0), .prompt_tokens = 30, .output_tokens = 1, .hash_ids = {}};
  q.waiting.push_back(std::move(seq));
  Batch b;
  scheduler->Schedule(q, *kv, b);
  EXPECT_EQ(b.prefill_tokens, 8);
}

// Sarathi admits a prompt only when the KV of all of it fits, and holds that KV
// from admission on. Chunks of 8 (budget min(8, 64) = 8) on the 32-token paged
// cache (8 blocks of 4): request 0 (prompt 12, output 10) runs; request 1 (prompt
// 24 = 3 chunks) arrives with room for its first chunk but not its whole prompt;
// request 2 (prompt 4) behind it would fit but must not pass it.
TEST(SarathiScheduler, WaitsUntilTheWholePromptFitsAndTheHeadOfTheQueueBlocksTheRest) {
  Harness h(NewSarathiScheduler({.max_num_seqs = kMaxNumSeqs,
                                 .max_num_batched_tokens = kSarathiMaxBatchedTokens,
                                 .chunk_tokens = 8}),
            MakeKv(KvManagerType::kPaged, kPagedCapacityTokens));
  h.Arrive(12, 10);
  EXPECT_EQ(h.Plan().prefill_tokens, 8);
  // The whole prompt is held at admission: ceil(12 / 4) = 3 blocks, 12 bytes.
  EXPECT_EQ(h.kv().Usage().allocated_bytes, 12);
  h.Complete();
  EXPECT_EQ(h.Plan().prefill_tokens, 4);  // the last chunk needs no new memory
  EXPECT_EQ(h.kv().Usage().allocated_bytes, 12);
  h.Complete();  // request 0 emits its first token

  h.Arrive(24, 2);
  h.Arrive(4, 2);
  // Iterations 3 to 11: request 0 decodes, growing from 13 to 21 tokens (4 to 6
  // blocks), so 2 to 4 blocks stay free: request 1's first chunk (2 blocks) would
  // fit, its whole prompt (6 blocks) does not; request 2 (1 block) waits behind it.
  for (int iteration = 3; iteration <= 11; ++iteration) {
    const Batch& b = h.Plan();
    ASSERT_EQ(b.seqs.size(), 1u) << "iteration " << iteration;
    EXPECT_EQ(b.seqs[0]->spec.id, 0) << "iteration " << iteration;
    EXPECT_EQ(b.decode_tokens, 1) << "iteration " << iteration;
    EXPECT_EQ(b.prefill_tokens, 0) << "iteration " << iteration;
    EXPECT_EQ(Ids(h.queues().waiting), (std::vector<int64_t>{1, 2})) << "iteration " << iteration;
    h.Complete();
  }
  EXPECT_EQ(h.finished(), std::vector<int64_t>{0});  // 1 + 9 decodes = 10 tokens
  EXPECT_EQ(h.preemptions(), 0);

  // Iteration 12: the empty cache takes request 1 whole (6 blocks, 24 bytes); its
  // first chunk uses the budget of 8, so request 2 still waits.
  const Batch& b = h.Plan();
  ASSERT_EQ(b.seqs.size(), 1u);
  EXPECT_EQ(b.seqs[0]->spec.id, 1);
  EXPECT_EQ(b.prefill_tokens, 8);
  EXPECT_EQ(h.kv().Usage().allocated_bytes, 24);
  EXPECT_EQ(Ids(h.queues().waiting), std::vector<int64_t>{2});
}

// Two prompts of 24 (output 2) on the 32-token paged cache (8 blocks of 4), chunks
// of 16. Their first chunks fit together (4 + 2 blocks) but their whole prompts do
// not (6 + 6 blocks). Admitting on the first chunk alone, request 1 took the last
// 2 blocks in iteration 2 and was preempted in iteration 3 when request 0's first
// decode needed a 7th block. Admitting whole prompts, request 1 waits instead:
//   iteration 1: admit 0 holding 24 (6 blocks), compute 16
//   iteration 2: 0 computes 8 inside its blocks (token 1); 1 needs 6 blocks, 2 free
//   iteration 3: 0 decodes, growing to 25 (7 blocks) (token 2, done, releases 7)
//   iteration 4: admit 1 holding 24 (6 blocks), compute 16
//   iteration 5: 1 computes 8 (token 1)
//   iteration 6: 1 decodes (token 2, done)
TEST(SarathiScheduler, TwoLongPromptsWhoseFirstChunksFitTogetherRunWithoutPreemption) {
  Harness h(SchedulerType::kSarathi, KvManagerType::kPaged);
  h.Arrive(24, 2);
  h.Arrive(24, 2);
  struct Expected {
    int64_t id, prefill, decode, allocated;
  };
  constexpr Expected kPlans[] = {{0, 16, 0, 24}, {0, 8, 0, 24}, {0, 0, 1, 28},
                                 {1, 16, 0, 24}, {1, 8, 0, 24}, {1, 0, 1, 28}};
  for (size_t i = 0; i < std::size(kPlans); ++i) {
    const Batch& b = h.Plan();
    ASSERT_EQ(b.seqs.size(), 1u) << "iteration " << i + 1;
    EXPECT_EQ(b.seqs[0]->spec.id, kPlans[i].id) << "iteration " << i + 1;
    EXPECT_EQ(b.prefill_tokens, kPlans[i].prefill) << "iteration " << i + 1;
    EXPECT_EQ(b.decode_tokens, kPlans[i].decode) << "iteration " << i + 1;
    EXPECT_EQ(h.kv().Usage().allocated_bytes, kPlans[i].allocated) << "iteration " << i + 1;
    EXPECT_EQ(b.preempted, 0) << "iteration " << i + 1;
    h.Complete();
  }
  EXPECT_EQ(h.finished(), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(h.preemptions(), 0);
  EXPECT_TRUE(h.Plan().empty());
}

// ---- static batching -----------------------------------------------------

TEST(StaticBatchingScheduler, AdmitsNobodyWhileABatchIsInFlight) {
  Harness h(SchedulerType::kStaticBatching, KvManagerType::kPaged, kRoomyTokens);
  h.Arrive(8, 2);  // finishes after iteration 2
  h.Arrive(8, 4);  // finishes after iteration 4
  EXPECT_EQ(h.Plan().seqs.size(), 2u);
  h.Complete();
  h.Arrive(4, 1);
  for (int iteration = 2; iteration <= 4; ++iteration) {
    const Batch& b = h.Plan();
    for (const Sequence* seq : b.seqs) EXPECT_NE(seq->spec.id, 2) << "iteration " << iteration;
    EXPECT_EQ(h.queues().waiting.size(), 1u) << "iteration " << iteration;
    EXPECT_EQ(b.prefill_tokens, 0);
    h.Complete();
  }
  // Iterations 3 and 4 ran request 1 alone; now the batch is done and request 2 starts.
  EXPECT_TRUE(h.queues().running.empty());
  const Batch& next = h.Plan();
  ASSERT_EQ(next.seqs.size(), 1u);
  EXPECT_EQ(next.seqs[0]->spec.id, 2);
}

TEST(StaticBatchingScheduler, FormsABatchOfAtMostMaxNumSeqs) {
  Harness h(SchedulerType::kStaticBatching, KvManagerType::kPaged, kRoomyTokens);
  for (int i = 0; i < 5; ++i) h.Arrive(6, 1);
  const Batch& b = h.Plan();
  EXPECT_EQ(static_cast<int64_t>(b.seqs.size()), kMaxNumSeqs);
  EXPECT_EQ(b.prefill_tokens, kMaxNumSeqs * 6);
  h.Complete();  // one output token each: all three finish
  EXPECT_EQ(h.Plan().seqs.size(), 2u);
}

TEST(StaticBatchingScheduler, StaticReservationLimitsTheBatchToWhatFits) {
  // 4 reservations of max_model_len fit, but max_num_seqs is 3; with a cache of
  // two reservations the batch holds two.
  auto scheduler = NewStaticBatchingScheduler({.max_num_seqs = 8});
  auto kv = NewStaticKvManager(Geometry(2 * kMaxModelLen), StaticKvConfig{});
  SequenceQueues q;
  for (int64_t id = 0; id < 4; ++id) {
    auto seq = std::make_unique<Sequence>();
    seq->spec = {
        .id = id, .arrival = Nanos(0), .prompt_tokens = 3, .output_tokens = 3, .hash_ids = {}};
    q.waiting.push_back(std::move(seq));
  }
  Batch b;
  scheduler->Schedule(q, *kv, b);
  EXPECT_EQ(b.seqs.size(), 2u);
  EXPECT_EQ(q.waiting.size(), 2u);
}

// ---- vllm_v1 -------------------------------------------------------------

// Each entry of a plan: which sequence, how many tokens, decode or prefill.
struct PlanEntry {
  int64_t id;
  int64_t tokens;
  bool decode;
  bool operator==(const PlanEntry&) const = default;
};

void PrintTo(const PlanEntry& e, std::ostream* os) {
  *os << "{" << e.id << ", " << e.tokens << (e.decode ? ", decode}" : ", prefill}");
}

std::vector<PlanEntry> Entries(const Batch& batch) {
  std::vector<PlanEntry> out;
  for (const Sequence* seq : batch.seqs) {
    out.push_back({seq->spec.id, seq->scheduled_tokens, seq->IsDecode()});
  }
  return out;
}

// One budget of 20 tokens per iteration: running requests first, in running
// order, then waiting ones FCFS, each given min(pending tokens, budget left), with
// at most 3 running.
TEST(VllmV1Scheduler, SharesOneTokenBudgetRunningRequestsFirstThenWaitingOnesInOrder) {
  Harness h(SchedulerType::kVllmV1, KvManagerType::kPaged, kRoomyTokens);
  h.Arrive(8, 5);   // request 0
  h.Arrive(28, 3);  // request 1
  h.Arrive(6, 4);   // request 2
  h.Arrive(4, 2);   // request 3

  // Iteration 1, nothing running: 0 takes its whole prompt of 8 (12 left), 1 a
  // chunk of 12 of its 28 (0 left); 2 and 3 wait. Request 0 emits its first token.
  const Batch& first = h.Plan();
  EXPECT_EQ(Entries(first), (std::vector<PlanEntry>{{0, 8, false}, {1, 12, false}}));
  EXPECT_EQ(first.prefill_tokens, 20);
  EXPECT_EQ(first.decode_tokens, 0);
  EXPECT_EQ(Ids(h.queues().waiting), (std::vector<int64_t>{2, 3}));
  h.Complete();

  // Iteration 2: 0 decodes 1 (19 left); 1 continues with its last 16 (3 left);
  // 2 is admitted with a chunk of 3 of its 6 (0 left). Request 1 emits a token.
  const Batch& second = h.Plan();
  EXPECT_EQ(Entries(second), (std::vector<PlanEntry>{{0, 1, true}, {1, 16, false}, {2, 3, false}}));
  EXPECT_EQ(second.decode_tokens, 1);
  EXPECT_EQ(second.prefill_tokens, 19);
  EXPECT_EQ(Ids(h.queues().waiting), std::vector<int64_t>{3});
  h.Complete();

  // Iteration 3: 0 and 1 decode 1 each (18 left); 2 finishes its prompt with its
  // last 3 (15 left); 3 would fit the budget but 3 requests already run.
  const Batch& third = h.Plan();
  EXPECT_EQ(Entries(third), (std::vector<PlanEntry>{{0, 1, true}, {1, 1, true}, {2, 3, false}}));
  EXPECT_EQ(third.decode_tokens, 2);
  EXPECT_EQ(third.prefill_tokens, 3);
  EXPECT_EQ(Ids(h.queues().waiting), std::vector<int64_t>{3});
  EXPECT_EQ(h.preemptions(), 0);
}

// V1 allocates KV for the tokens it schedules, not for the whole prompt: a prompt
// of 30 on the paged cache (blocks of 4) computes 20 tokens first and holds
// ceil(20 / 4) = 5 blocks (20 bytes), then grows to ceil(30 / 4) = 8 blocks (32
// bytes) with its last 10.
TEST(VllmV1Scheduler, AllocatesKvOnlyForTheChunkItSchedules) {
  Harness h(SchedulerType::kVllmV1, KvManagerType::kPaged, kRoomyTokens);
  h.Arrive(30, 2);
  EXPECT_EQ(h.Plan().prefill_tokens, 20);
  EXPECT_EQ(h.kv().Usage().allocated_bytes, 20);
  EXPECT_EQ(h.kv().Usage().live_bytes, 20);
  h.Complete();
  EXPECT_EQ(h.Plan().prefill_tokens, 10);
  EXPECT_EQ(h.kv().Usage().allocated_bytes, 32);
  EXPECT_EQ(h.kv().Usage().live_bytes, 30);
}

// vLLM 0.19's scheduler_reserve_full_isl: a waiting prompt is admitted only when all
// of it would fit, though it gets KV for its first chunk only. On the 32-token paged
// cache (8 blocks of 4, budget 20) request 0 (prompt 8) takes 2 blocks; request 1
// (prompt 28) needs ceil(28 / 4) = 7 blocks whole, but only 6 are free, so it waits,
// although its first chunk of 20 - 8 = 12 tokens (3 blocks) would fit. Without the
// check it is admitted with those 12 tokens.
TEST(VllmV1Scheduler, AdmitsAWaitingPromptOnlyWhenAllOfItFitsWithReserveFullIsl) {
  for (const bool reserve_full_isl : {true, false}) {
    Harness h(NewVllmV1Scheduler({.max_num_seqs = kMaxNumSeqs,
                                  .max_num_batched_tokens = kVllmV1MaxBatchedTokens,
                                  .reserve_full_isl = reserve_full_isl}),
              MakeKv(KvManagerType::kPaged, kPagedCapacityTokens));
    h.Arrive(8, 10);
    h.Arrive(28, 2);
    const Batch& b = h.Plan();
    if (reserve_full_isl) {
      EXPECT_EQ(b.prefill_tokens, 8);
      EXPECT_EQ(b.seqs.size(), 1u);
      EXPECT_EQ(h.kv().Usage().allocated_bytes, 8);  // 2 blocks of 4 bytes
    } else {
      EXPECT_EQ(b.prefill_tokens, 8 + 12);
      EXPECT_EQ(b.seqs.size(), 2u);
      EXPECT_EQ(h.kv().Usage().allocated_bytes, 8 + 12);  // 2 + 3 blocks
    }
  }
}

// With prefix caching, a preempted request admitted again reuses its whole blocks
// still cached and computes only the rest. Request 7 held 20 tokens (blocks of 4:
// five whole blocks) before its preemption and has generated 1 token after its
// prompt of 20, so 21 tokens are pending: (21 - 1) / 4 = 5 blocks hit, 20 tokens
// are reused and 1 is computed.
TEST(SharedSteps, AnAdmissionReusesThePreemptedRequestsCachedBlocks) {
  PagedKvConfig config{.block_tokens = 4, .watermark = 0, .prefix_caching = true};
  auto kv = NewPagedKvManager(Geometry(64), config);
  ASSERT_TRUE(kv->Admit(7, 20, 28));
  kv->Release(7);  // the preemption
  SequenceQueues queues;
  auto seq = std::make_unique<Sequence>();
  seq->spec.id = 7;
  seq->spec.prompt_tokens = 20;
  seq->spec.output_tokens = 8;
  seq->generated = 1;
  seq->preemptions = 1;
  queues.waiting.push_back(std::move(seq));
  EXPECT_EQ(CachedPrefix(queues, *kv), 20);
  // vLLM V1 schedules the 1 token left to compute, holding all 21.
  Batch batch;
  NewVllmV1Scheduler({.max_num_seqs = 4, .max_num_batched_tokens = 20})
      ->Schedule(queues, *kv, batch);
  ASSERT_EQ(batch.seqs.size(), 1u);
  EXPECT_EQ(batch.seqs[0]->computed, 20);
  EXPECT_EQ(batch.seqs[0]->scheduled_tokens, 1);
  EXPECT_EQ(batch.prefill_tokens + batch.decode_tokens, 1);
  EXPECT_EQ(kv->Usage().allocated_bytes, 24);  // ceil(21 / 4) = 6 blocks of 4 bytes
}

// A request preempted in the middle of its chunked prefill holds its whole prompt
// under sarathi but wrote only the chunks computed; with prefix caching it must
// find only those again, so every token's KV is still computed at least once:
// summed over the run, computed tokens >= prompt + output - 1 per request. The
// cache of 20 blocks of 16 tokens cannot hold request 1's prompt of 288 tokens
// (18 blocks) beside request 0's growing context, so request 1 is preempted.
TEST(SarathiScheduler, WithPrefixCachingAPreemptedPartialPrefillComputesEveryUnwrittenToken) {
  const KvGeometry g{.capacity_bytes = 20 * 16,
                     .bytes_per_token = 1,
                     .bytes_per_token_per_layer = 1,
                     .num_layers = 1,
                     .max_model_len = 512};
  Harness h(
      NewSarathiScheduler({.max_num_seqs = 4, .max_num_batched_tokens = 64, .chunk_tokens = 64}),
      NewPagedKvManager(g, {.block_tokens = 16, .watermark = 0, .prefix_caching = true}));
  h.Arrive(31, 40);
  h.Arrive(288, 4);
  int64_t computed = 0;
  for (int i = 0; i < 1000 && h.finished().size() < 2; ++i) {
    const Batch& b = h.Plan();
    computed += b.prefill_tokens + b.decode_tokens;
    h.Complete();
  }
  ASSERT_EQ(h.finished().size(), 2u);
  EXPECT_GT(h.preemptions(), 0);
  EXPECT_GE(computed, (31 + 40 - 1) + (288 + 4 - 1));
}

}  // namespace
}  // namespace kvsim
