// Replica: iteration timing, token emission, request records and KV release, with
// a fixed-time model so that every duration is written out by hand.
#include "sim/cluster/replica.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>

#include "sim/batching/batch_scheduler.h"
#include "sim/core/check.h"
#include "sim/kvcache/kv_cache_manager.h"
#include "sim/metrics/metrics.h"
#include "sim/timing/execution_time_model.h"

namespace kvsim {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

// Llama-3-8B, one rank: K and V of 32 layers x 8 KV heads x 128 x 2 bytes.
constexpr int64_t kLayers = 32;
constexpr int64_t kBytesPerTokenPerLayer = 8 * 128 * 2;                   // 2048
constexpr int64_t kBytesPerToken = 2 * kLayers * kBytesPerTokenPerLayer;  // 131072
constexpr int64_t kBlockTokens = 16;
constexpr int64_t kMaxModelLen = 256;

KvGeometry Geometry(int64_t capacity_bytes) {
  return {.capacity_bytes = capacity_bytes,
          .bytes_per_token = kBytesPerToken,
          .bytes_per_token_per_layer = kBytesPerTokenPerLayer,
          .num_layers = kLayers,
          .max_model_len = kMaxModelLen};
}

RequestSpec Request(int64_t id, int64_t prompt, int64_t output, Nanos arrival = Nanos(0)) {
  return {.id = id,
          .arrival = arrival,
          .prompt_tokens = prompt,
          .output_tokens = output,
          .hash_ids = {}};
}

// The fixed-time model used throughout: t_iter = 1 ms, 10 us per prompt token,
// 100 us per decode token.
constexpr Nanos kIter = milliseconds(1);
constexpr Nanos kPrefillToken = microseconds(10);
constexpr Nanos kDecodeToken = microseconds(100);

// Keeps every iteration sample the replica records.
struct SampleLog : MetricsObserver {
  std::vector<IterationSample> samples;
  void OnRequest(const RequestRecord&) override {}
  void OnIteration(const IterationSample& x) override { samples.push_back(x); }
};

class ReplicaTest : public testing::Test {
 protected:
  ReplicaTest() { metrics_.AddObserver(&log_); }

  void Build(std::unique_ptr<KvCacheManager> kv, std::unique_ptr<BatchScheduler> scheduler,
             int64_t index = 0,
             FixedTimeConfig timing = {.per_iteration = kIter,
                                       .per_prefill_token = kPrefillToken,
                                       .per_decode_token = kDecodeToken},
             bool skip_ahead = false) {
    timing_ = NewFixedTimeModel(timing);
    replica_ = std::make_unique<Replica>(index, std::move(kv), std::move(scheduler), *timing_,
                                         metrics_, Nanos(0), skip_ahead);
  }

  // A paged cache of 1024 tokens (nothing here runs out) and a vllm scheduler.
  void BuildPagedVllm(int64_t index = 0, int64_t max_num_seqs = 8) {
    Build(NewPagedKvManager(Geometry(1024 * kBytesPerToken),
                            {.block_tokens = kBlockTokens, .watermark = 0}),
          NewVllmScheduler({.max_num_seqs = max_num_seqs, .max_num_batched_tokens = 512}), index);
  }

  // One iteration from `now`; returns its end.
  Nanos Step(Nanos now) {
    const Nanos d = replica_->StartIteration(now);
    EXPECT_GT(d, Nanos(0));
    replica_->CompleteIteration(now + d);
    return now + d;
  }

  Metrics metrics_{{.keep_records = true}};
  SampleLog log_;
  std::unique_ptr<ExecutionTimeModel> timing_;
  std::unique_ptr<Replica> replica_;
};

TEST_F(ReplicaTest, PrefillIterationLastsPerIterationPlusPerPromptToken) {
  BuildPagedVllm();
  replica_->Enqueue(Request(0, /*prompt=*/100, /*output=*/3));
  // 1 ms + 100 x 10 us = 2 ms.
  EXPECT_EQ(replica_->StartIteration(Nanos(0)), kIter + 100 * kPrefillToken);
  EXPECT_TRUE(replica_->busy());
}

TEST_F(ReplicaTest, DecodeIterationLastsPerIterationPlusPerDecodeToken) {
  BuildPagedVllm();
  replica_->Enqueue(Request(0, 100, 3));
  replica_->Enqueue(Request(1, 50, 3));
  // Both prompts in one iteration: 1 ms + 150 x 10 us = 2.5 ms.
  const Nanos prefill = replica_->StartIteration(Nanos(0));
  EXPECT_EQ(prefill, kIter + 150 * kPrefillToken);
  replica_->CompleteIteration(prefill);
  EXPECT_FALSE(replica_->busy());
  // Two sequences decode one token each: 1 ms + 2 x 100 us = 1.2 ms.
  EXPECT_EQ(replica_->StartIteration(prefill), kIter + 2 * kDecodeToken);
}

// Skip-ahead, worked out by hand with the fixed model: a decode iteration of two
// sequences lasts 1 ms + 2 x 100 us = 1.2 ms.
class SkipAheadReplicaTest : public ReplicaTest {
 protected:
  void BuildSkipping() {
    Build(NewPagedKvManager(Geometry(1024 * kBytesPerToken),
                            {.block_tokens = kBlockTokens, .watermark = 0}),
          NewVllmScheduler({.max_num_seqs = 8, .max_num_batched_tokens = 512}), 0,
          {.per_iteration = kIter,
           .per_prefill_token = kPrefillToken,
           .per_decode_token = kDecodeToken},
          /*skip_ahead=*/true);
    replica_->Enqueue(Request(0, /*prompt=*/20, /*output=*/5));
    replica_->Enqueue(Request(1, /*prompt=*/30, /*output=*/9));
    // Prefill of both (50 tokens): 1 ms + 50 x 10 us = 1.5 ms; each emits token 1.
    prefill_end_ = Step(Nanos(0));
  }
  Nanos prefill_end_{0};
};

TEST_F(SkipAheadReplicaTest, RunsTheDecodesUpToTheIterationInWhichASequenceFinishes) {
  BuildSkipping();
  ASSERT_EQ(prefill_end_, microseconds(1500));
  // Request 0 has 4 tokens to go, request 1 has 8: the run is 4 iterations, the
  // last of which (in flight) emits request 0's last token.
  const Nanos run = replica_->StartIteration(prefill_end_);
  EXPECT_EQ(run, 4 * microseconds(1200));
  ASSERT_EQ(log_.samples.size(), 1u + 4u);  // the prefill, then one sample per iteration
  for (int j = 1; j <= 4; ++j) {
    EXPECT_EQ(log_.samples[j].start, prefill_end_ + (j - 1) * microseconds(1200));
    EXPECT_EQ(log_.samples[j].duration, microseconds(1200));
    EXPECT_EQ(log_.samples[j].decode_tokens, 2);
  }
  // Iteration j grows the prompts' 20 and 30 tokens of KV by j: iteration 4 holds
  // 24 + 34 tokens, in blocks of 16: 2 + 3.
  EXPECT_EQ(log_.samples[4].live_bytes, (24 + 34) * kBytesPerToken);
  EXPECT_EQ(log_.samples[4].allocated_bytes, 5 * kBlockTokens * kBytesPerToken);
  replica_->CompleteIteration(prefill_end_ + run);
  ASSERT_EQ(metrics_.records().size(), 1u);
  EXPECT_EQ(metrics_.records()[0].id, 0);
  EXPECT_EQ(metrics_.records()[0].finish, prefill_end_ + run);
  // TBT: 2 x 4 token gaps of 1.2 ms each (the histogram is within 2^-8).
  EXPECT_NEAR(metrics_.Summarize().tbt_s.p50, 0.0012, 0.0012 / 256);
  EXPECT_NEAR(metrics_.Summarize().tbt_s.mean, 0.0012, 1e-15);
}

TEST_F(SkipAheadReplicaTest, StartsNoIterationAtOrAfterTheHorizon) {
  BuildSkipping();
  // Iterations start at +0, +1.2, +2.4 ms...; a horizon at +2.4 ms stops the run
  // after two.
  const Nanos run = replica_->StartIteration(prefill_end_, prefill_end_ + 2 * microseconds(1200));
  EXPECT_EQ(run, 2 * microseconds(1200));
  EXPECT_EQ(log_.samples.size(), 1u + 2u);
  replica_->CompleteIteration(prefill_end_ + run);
  EXPECT_TRUE(metrics_.records().empty());
}

TEST_F(ReplicaTest, IdleReplicaStartsNothing) {
  BuildPagedVllm();
  EXPECT_EQ(replica_->StartIteration(Nanos(5)), Nanos(0));
  EXPECT_FALSE(replica_->busy());
  EXPECT_TRUE(log_.samples.empty());
}

TEST_F(ReplicaTest, StartingWhileBusyIsAnInvariantError) {
  BuildPagedVllm();
  replica_->Enqueue(Request(0, 10, 2));
  replica_->StartIteration(Nanos(0));
  EXPECT_THROW(replica_->StartIteration(Nanos(0)), InvariantError);
}

TEST_F(ReplicaTest, FinishedRequestRecordCarriesItsTimesAndLengths) {
  BuildPagedVllm(/*index=*/3);
  replica_->Enqueue(Request(7, /*prompt=*/100, /*output=*/3, /*arrival=*/microseconds(400)));
  // Started at 1 ms:
  //   prefill [1, 3] ms       (1 ms + 100 x 10 us)  -> token 1 at 3 ms
  //   decode  [3, 4.1] ms     (1 ms + 100 us)       -> token 2
  //   decode  [4.1, 5.2] ms                         -> token 3, finished
  Nanos t = Step(milliseconds(1));
  EXPECT_TRUE(metrics_.records().empty());
  t = Step(t);
  EXPECT_TRUE(metrics_.records().empty());
  t = Step(t);
  EXPECT_EQ(t, microseconds(5200));
  ASSERT_EQ(metrics_.records().size(), 1u);
  const RequestRecord& r = metrics_.records()[0];
  EXPECT_EQ(r.id, 7);
  EXPECT_EQ(r.replica, 3);
  EXPECT_EQ(r.arrival, microseconds(400));
  EXPECT_EQ(r.first_scheduled, milliseconds(1));
  EXPECT_EQ(r.first_token, milliseconds(3));
  EXPECT_EQ(r.finish, microseconds(5200));
  EXPECT_EQ(r.prompt_tokens, 100);
  EXPECT_EQ(r.output_tokens, 3);
  EXPECT_EQ(r.preemptions, 0);
}

TEST_F(ReplicaTest, SingleTokenOutputFinishesAtTheEndOfItsPrefill) {
  BuildPagedVllm();
  replica_->Enqueue(Request(0, 40, 1));
  const Nanos t = Step(Nanos(0));  // 1 ms + 40 x 10 us = 1.4 ms
  ASSERT_EQ(metrics_.records().size(), 1u);
  EXPECT_EQ(metrics_.records()[0].first_token, kIter + 40 * kPrefillToken);
  EXPECT_EQ(metrics_.records()[0].finish, t);
}

TEST_F(ReplicaTest, PrefillChunkThatDoesNotCompleteThePromptEmitsNoToken) {
  Build(NewPagedKvManager(Geometry(1024 * kBytesPerToken),
                          {.block_tokens = kBlockTokens, .watermark = 0}),
        NewSarathiScheduler({.max_num_seqs = 8, .max_num_batched_tokens = 64, .chunk_tokens = 64}));
  replica_->Enqueue(Request(0, /*prompt=*/100, /*output=*/1));
  // Chunks of 64 and 36: [0, 1.64] ms without a token, then [1.64, 3] ms emits the
  // only token.
  Nanos t = Step(Nanos(0));
  EXPECT_EQ(t, kIter + 64 * kPrefillToken);
  EXPECT_TRUE(metrics_.records().empty());
  t = Step(t);
  EXPECT_EQ(t, 2 * kIter + 100 * kPrefillToken);
  ASSERT_EQ(metrics_.records().size(), 1u);
  EXPECT_EQ(metrics_.records()[0].first_token, t);
  EXPECT_EQ(metrics_.records()[0].first_scheduled, Nanos(0));
}

TEST_F(ReplicaTest, KvIsHeldWhileRunningAndReleasedAtFinish) {
  BuildPagedVllm();
  replica_->Enqueue(Request(0, /*prompt=*/100, /*output=*/2));
  const Nanos d = replica_->StartIteration(Nanos(0));
  // 100 tokens in ceil(100 / 16) = 7 blocks of 16 tokens.
  EXPECT_EQ(replica_->kv().Usage().allocated_bytes, 7 * kBlockTokens * kBytesPerToken);
  EXPECT_EQ(replica_->kv().Usage().live_bytes, 100 * kBytesPerToken);
  ASSERT_EQ(log_.samples.size(), 1u);
  EXPECT_EQ(log_.samples[0].allocated_bytes, 7 * kBlockTokens * kBytesPerToken);
  EXPECT_EQ(log_.samples[0].live_bytes, 100 * kBytesPerToken);
  EXPECT_EQ(log_.samples[0].prefill_tokens, 100);
  EXPECT_EQ(log_.samples[0].running, 1);
  replica_->CompleteIteration(d);
  EXPECT_EQ(replica_->load().running, 1);
  Step(d);  // the second and last token
  EXPECT_EQ(replica_->kv().Usage().allocated_bytes, 0);
  EXPECT_EQ(replica_->kv().Usage().live_bytes, 0);
  EXPECT_EQ(replica_->load().running, 0);
  EXPECT_EQ(replica_->load().waiting, 0);
}

TEST_F(ReplicaTest, APromptHeldWholeButComputedInChunksIsLiveOnlyAsFarAsItsChunksWrote) {
  // Two 200-token prompts, chunks of 128 tokens per iteration; sarathi holds each prompt
  // whole from its admission. Iteration 1 admits request 0 (its chunk takes the budget)
  // and writes its tokens [0, 128): live 128 of the 200 held. Iteration 2 writes [128,
  // 200) of request 0 and, admitting request 1, its [0, 56): live 200 + 56 = 256 of 400.
  Build(
      NewPagedKvManager(Geometry(1024 * kBytesPerToken),
                        {.block_tokens = kBlockTokens, .watermark = 0}),
      NewSarathiScheduler({.max_num_seqs = 8, .max_num_batched_tokens = 128, .chunk_tokens = 128}));
  replica_->Enqueue(Request(0, /*prompt=*/200, /*output=*/4));
  replica_->Enqueue(Request(1, /*prompt=*/200, /*output=*/4));
  Nanos t = Step(Nanos(0));
  t = Step(t);
  ASSERT_EQ(log_.samples.size(), 2u);
  EXPECT_EQ(log_.samples[0].prefill_tokens, 128);
  EXPECT_EQ(log_.samples[1].prefill_tokens, 128);
  // Held: 200 tokens in 13 blocks of 16, then 400 in 26.
  EXPECT_EQ(log_.samples[0].allocated_bytes, 13 * kBlockTokens * kBytesPerToken);
  EXPECT_EQ(log_.samples[0].live_bytes, 128 * kBytesPerToken);
  EXPECT_EQ(log_.samples[1].allocated_bytes, 26 * kBlockTokens * kBytesPerToken);
  EXPECT_EQ(log_.samples[1].live_bytes, 256 * kBytesPerToken);
}

TEST_F(ReplicaTest, LoadCountsRunningAndWaiting) {
  BuildPagedVllm(/*index=*/0, /*max_num_seqs=*/2);
  for (int64_t id = 0; id < 3; ++id) replica_->Enqueue(Request(id, 10, 4));
  EXPECT_EQ(replica_->load().running, 0);
  EXPECT_EQ(replica_->load().waiting, 3);
  replica_->StartIteration(Nanos(0));
  EXPECT_EQ(replica_->load().running, 2);
  EXPECT_EQ(replica_->load().waiting, 1);
  EXPECT_EQ(log_.samples[0].waiting, 1);
}

// ---- vAttention mapping overhead ------------------------------------------
//
// 64 KiB pages (uvm backend, vAttention's driver) hold 64 KiB / 2048 B = 32 tokens
// of one layer's K (or V). A page group (one page in each of the 2 x 32 buffers)
// is 64 map calls; at 20 us per call a group costs 64 x 20 us = 1.28 ms. Compute is
// a flat 1 ms per iteration. Background mapping may run from the start of the
// previous iteration until the next one starts.

constexpr int64_t kPageBytes = 64 << 10;
constexpr int64_t kTokensPerPage = kPageBytes / kBytesPerTokenPerLayer;  // 32
constexpr Nanos kMapCall = microseconds(20);
constexpr Nanos kGroupCost = 2 * kLayers * kMapCall;  // 1.28 ms

class VAttentionReplicaTest : public ReplicaTest {
 protected:
  void BuildVAttention(bool overlap) {
    const int64_t group_bytes = 2 * kLayers * kPageBytes;  // 4 MiB
    Build(NewVAttentionKvManager(Geometry(16 * group_bytes), {.page_bytes = kPageBytes,
                                                              .max_slots = 4,
                                                              .overlap = overlap,
                                                              .deferred_reclaim = true,
                                                              .watermark = 0,
                                                              .backend = VmmBackend::kUvm,
                                                              .uvm_map_latency = kMapCall}),
          NewVllmScheduler({.max_num_seqs = 4, .max_num_batched_tokens = 512}), 0,
          {.per_iteration = kIter});
    // One page of prompt, so the first decode needs a second page group.
    replica_->Enqueue(Request(0, /*prompt=*/kTokensPerPage, /*output=*/40));
  }
};

TEST_F(VAttentionReplicaTest, SynchronousPrefillMappingAddsToTheIteration) {
  BuildVAttention(/*overlap=*/true);
  // The prompt's page group is mapped before the prefill runs: 1 ms + 1.28 ms.
  EXPECT_EQ(replica_->StartIteration(Nanos(0)), kIter + kGroupCost);
  EXPECT_EQ(log_.samples[0].exposed_overhead, kGroupCost);
}

TEST_F(VAttentionReplicaTest, BackgroundMappingHidesBehindTheIterationJustEnded) {
  BuildVAttention(/*overlap=*/true);
  const Nanos t1 = Step(Nanos(0));  // 2.28 ms
  // Token 33 needs page group 2, mapped behind the 2.28 ms prefill that just ended:
  // fully hidden, the decode lasts 1 ms.
  EXPECT_EQ(replica_->StartIteration(t1), kIter);
  EXPECT_EQ(log_.samples[1].exposed_overhead, Nanos(0));
  const Summary s = metrics_.Summarize();
  EXPECT_DOUBLE_EQ(s.hidden_overhead_s, ToSeconds(kGroupCost));
  EXPECT_DOUBLE_EQ(s.exposed_overhead_s, ToSeconds(kGroupCost));  // the prefill's
}

TEST_F(VAttentionReplicaTest, BackgroundMappingHidesBehindThePreviousIterationAndAnIdleGap) {
  // (Until the background thread was allowed to work through idle gaps, this
  // mapping was charged in full: 1 ms + 1.28 ms.)
  BuildVAttention(/*overlap=*/true);
  const Nanos t1 = Step(Nanos(0));  // [0, 2.28] ms
  // The replica sat idle for 3 ms: the thread had 2.28 + 3 = 5.28 ms >= 1.28 ms.
  EXPECT_EQ(replica_->StartIteration(t1 + milliseconds(3)), kIter);
  EXPECT_EQ(log_.samples[1].exposed_overhead, Nanos(0));
  EXPECT_DOUBLE_EQ(metrics_.Summarize().hidden_overhead_s, ToSeconds(kGroupCost));
}

TEST_F(VAttentionReplicaTest, OnlyTheExcessOverThePreviousIterationIsExposed) {
  BuildVAttention(/*overlap=*/true);
  // Iteration k >= 2 grows the request to 31 + k tokens. Group 3 is needed at 65
  // tokens, iteration 34, behind a 1 ms decode: 1.28 - 1 = 0.28 ms exposed.
  Nanos t = Step(Nanos(0));
  for (int k = 2; k <= 33; ++k) {
    const Nanos before = t;
    t = Step(t);
    EXPECT_EQ(t - before, kIter) << "iteration " << k;
  }
  EXPECT_EQ(replica_->StartIteration(t), kIter + (kGroupCost - kIter));
  EXPECT_EQ(log_.samples.back().exposed_overhead, kGroupCost - kIter);
}

TEST_F(VAttentionReplicaTest,
       AnIdleGapPlusThePreviousIterationShorterThanTheMappingExposesTheRest) {
  BuildVAttention(/*overlap=*/true);
  // Iterations 2..33 decode, 1 ms each; the 33rd started 1 ms before t.
  Nanos t = Step(Nanos(0));
  for (int k = 2; k <= 33; ++k) t = Step(t);
  // Iteration 34 needs group 3 (65 tokens) and starts 0.2 ms after iteration 33
  // ended: the thread had 1 ms + 0.2 ms = 1.2 ms for 1.28 ms of mapping; 80 us exposed.
  EXPECT_EQ(replica_->StartIteration(t + microseconds(200)), kIter + Nanos(80'000));
  EXPECT_EQ(log_.samples.back().exposed_overhead, Nanos(80'000));
}

TEST_F(VAttentionReplicaTest, AnIdleGapThatCoversTheExcessHidesTheMappingExactly) {
  BuildVAttention(/*overlap=*/true);
  Nanos t = Step(Nanos(0));
  for (int k = 2; k <= 33; ++k) t = Step(t);
  // 1 ms + 0.28 ms = 1.28 ms: exactly the mapping, nothing exposed.
  EXPECT_EQ(replica_->StartIteration(t + microseconds(280)), kIter);
  EXPECT_EQ(log_.samples.back().exposed_overhead, Nanos(0));
}

TEST_F(VAttentionReplicaTest, WithoutOverlapDecodeMappingIsSynchronous) {
  BuildVAttention(/*overlap=*/false);
  const Nanos t1 = Step(Nanos(0));
  EXPECT_EQ(t1, kIter + kGroupCost);
  // Back to back, yet the second group's mapping stalls the decode.
  EXPECT_EQ(replica_->StartIteration(t1), kIter + kGroupCost);
}

// Without deferred reclamation a finished request's pages are reclaimed by the
// iterations that follow, one page group each, behind the previous iteration.
// Stock backend, 2 MiB pages: 2 MiB / 2048 B = 1024 tokens per page; a group is 64
// pages: 64 x 20 us = 1.28 ms to map (set access free), 64 x 10 us = 0.64 ms to unmap.
TEST_F(ReplicaTest, ReleasedPagesAreUnmappedBehindTheNextIteration) {
  constexpr int64_t kStockPage = 2 << 20;
  const int64_t group_bytes = 2 * kLayers * kStockPage;  // 128 MiB
  Build(NewVAttentionKvManager(Geometry(4 * group_bytes), {.page_bytes = kStockPage,
                                                           .max_slots = 4,
                                                           .overlap = true,
                                                           .deferred_reclaim = false,
                                                           .watermark = 0,
                                                           .backend = VmmBackend::kStock,
                                                           .map_latency = microseconds(20),
                                                           .set_access_latency = Nanos(0),
                                                           .unmap_latency = microseconds(10)}),
        NewVllmScheduler({.max_num_seqs = 4, .max_num_batched_tokens = 512}), 0,
        {.per_iteration = kIter});
  replica_->Enqueue(Request(0, /*prompt=*/10, /*output=*/1));  // done after its prefill
  replica_->Enqueue(Request(1, /*prompt=*/10, /*output=*/3));
  // Prefill: one group each, mapped before it runs: 1 ms + 2 x 1.28 ms = 3.56 ms.
  const Nanos t1 = Step(Nanos(0));
  EXPECT_EQ(t1, kIter + 2 * microseconds(1280));
  EXPECT_EQ(replica_->kv().Usage().cached_bytes, group_bytes);  // request 0's, waiting
  // The decode reclaims request 0's group: 0.64 ms behind the 3.56 ms prefill.
  EXPECT_EQ(replica_->StartIteration(t1), kIter);
  EXPECT_EQ(log_.samples[1].exposed_overhead, Nanos(0));
  EXPECT_EQ(replica_->kv().Usage().cached_bytes, 0);
  EXPECT_DOUBLE_EQ(metrics_.Summarize().hidden_overhead_s, ToSeconds(microseconds(640)));
}

}  // namespace
}  // namespace kvsim
