// Hand-computed scenarios: the fixed-time model makes every time a sum that is
// written out in a comment and recomputed in the test.
//
// Throughout: t_iter = 10 ms per iteration, t_prefill = 0.1 ms per prompt token,
// t_decode = 1 ms per decode token; Llama-3-8B on an H100, paged KV with 16-token
// blocks and no watermark, vllm scheduling unless a test says otherwise.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sim/config/scenario_config.h"
#include "sim/config/yaml_tree.h"
#include "sim/core/check.h"
#include "sim/simulator/builder.h"
#include "sim/simulator/simulator.h"
#include "tests/testing/temp_dir.h"

namespace kvsim {
namespace {

using ::kvsim::testing::TempDir;
using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr Nanos kIter = milliseconds(10);
constexpr Nanos kPrefill = microseconds(100);  // per prompt token
constexpr Nanos kDecode = milliseconds(1);     // per decode token
constexpr int64_t kBytesPerToken = 131072;     // Llama-3-8B: 2 x 32 x 8 x 128 x 2

struct TraceRow {
  Nanos arrival;
  int64_t prompt;
  int64_t output;
};

std::string Seconds(Nanos t) { return fmt::format("{:.9f}", ToSeconds(t)); }

class SimulationTest : public ::testing::Test {
 protected:
  // Writes `rows` as a splitwise trace, builds the scenario with `overrides`
  // (key path, YAML value) and runs it.
  void Run(const std::vector<TraceRow>& rows,
           const std::vector<std::pair<std::string, std::string>>& overrides = {}) {
    std::string text = "arrived_at,num_prefill_tokens,num_decode_tokens\n";
    for (const TraceRow& r : rows) {
      text += fmt::format("{},{},{}\n", Seconds(r.arrival), r.prompt, r.output);
    }
    const std::string trace = dir_.Write("trace.csv", text);
    const std::string yaml = fmt::format(
        R"(seed: 1
model: Llama-3-8B
gpu: H100-SXM
deployment:
  max_model_len: 512
workload:
  trace: {}
  arrival:
    process: trace
scheduler:
  type: vllm
  max_num_seqs: 16
kv_cache:
  type: paged
  block_tokens: 16
  watermark: 0
timing:
  type: fixed
  fixed:
    per_iteration_s: {}
    per_prefill_token_s: {}
    per_decode_token_s: {}
)",
        trace, Seconds(kIter), Seconds(kPrefill), Seconds(kDecode));
    ConfigTree tree = ConfigTree::Parse(yaml, dir_.PathOf("scenario.yaml"));
    for (const auto& [key, value] : overrides) tree.Set(key, value);
    sim_ = BuildSimulation(DecodeScenario(tree, KVSIM_SOURCE_DIR "/models"));
    sim_->KeepRequestRecords();
    sim_->AddObserver(&log_);
    RunResult result = sim_->Run();
    summary_ = result.summary;
    records_ = std::move(result.records);
  }

  const RequestRecord& Record(int64_t id) const {
    for (const RequestRecord& r : records_) {
      if (r.id == id) return r;
    }
    ADD_FAILURE() << "no record for request " << id;
    static const RequestRecord kNone;
    return kNone;
  }

  const std::vector<IterationSample>& Samples() const { return log_.samples; }

  // Keeps every iteration sample of the run.
  struct SampleLog : MetricsObserver {
    std::vector<IterationSample> samples;
    void OnRequest(const RequestRecord&) override {}
    void OnIteration(const IterationSample& x) override { samples.push_back(x); }
  };

  TempDir dir_;
  SampleLog log_;
  std::unique_ptr<Simulation> sim_;
  Summary summary_;
  std::vector<RequestRecord> records_;  // the run's, in completion order
};

TEST_F(SimulationTest, LoneRequestFirstTokenArrivesAfterOnePrefillIteration) {
  constexpr int64_t P = 100, O = 5;
  Run({{Nanos(0), P, O}});
  // TTFT = t_iter + P x t_prefill = 10 + 100 x 0.1 = 20 ms.
  const Nanos ttft = kIter + P * kPrefill;
  // E2E = TTFT + (O - 1) x (t_iter + t_decode) = 20 + 4 x 11 = 64 ms.
  const Nanos e2e = ttft + (O - 1) * (kIter + kDecode);
  const RequestRecord& r = Record(0);
  EXPECT_EQ(r.first_scheduled, Nanos(0));
  EXPECT_EQ(r.first_token, ttft);
  EXPECT_EQ(r.finish, e2e);
  EXPECT_EQ(r.output_tokens, O);
  EXPECT_EQ(summary_.requests_completed, 1);
  EXPECT_EQ(summary_.iterations, O);  // one prefill, O - 1 decodes
  EXPECT_DOUBLE_EQ(summary_.ttft_s.p50, ToSeconds(ttft));
  EXPECT_DOUBLE_EQ(summary_.e2e_s.p99, ToSeconds(e2e));
  EXPECT_DOUBLE_EQ(summary_.makespan_s, ToSeconds(e2e));
  // TPOT = (E2E - TTFT) / (O - 1) = 11 ms.
  EXPECT_NEAR(summary_.tpot_s.mean, ToSeconds(kIter + kDecode), 1e-12);
}

TEST_F(SimulationTest, EnginePerRequestWorkDelaysSchedulingAndTheRecordedFinish) {
  constexpr int64_t P = 100, O = 5;
  // 3 ms of API and tokenization before the scheduler sees request 0, 2 ms of
  // detokenization after its last token; request 1 arrives 1 ms later.
  Run({{Nanos(0), P, O}, {milliseconds(1), P, O}},
      {{"timing.engine.request_arrival_s", "0.003"}, {"timing.engine.request_finish_s", "0.002"}});
  // Request 0 is scheduled at 3 ms; request 1 becomes ready at 4 ms, while the
  // prefill of request 0 (10 + 100 x 0.1 = 20 ms) runs until 23 ms.
  const Nanos prefill = kIter + P * kPrefill;
  const RequestRecord& r0 = Record(0);
  EXPECT_EQ(r0.arrival, Nanos(0));
  EXPECT_EQ(r0.first_scheduled, milliseconds(3));
  EXPECT_EQ(r0.first_token, milliseconds(3) + prefill);
  // At 23 ms request 1's prefill runs alone (vllm prefill-first): 23 -> 43 ms; then
  // 4 decodes of both: 4 x (10 + 2 x 1) = 48 ms -> 91 ms, + 2 ms of finishing work.
  const Nanos decodes = 4 * (kIter + 2 * kDecode);
  EXPECT_EQ(r0.finish, milliseconds(3) + 2 * prefill + decodes + milliseconds(2));
  const RequestRecord& r1 = Record(1);
  EXPECT_EQ(r1.first_scheduled, milliseconds(3) + prefill);
  EXPECT_EQ(r1.first_token, milliseconds(3) + 2 * prefill);
  EXPECT_EQ(r1.finish, r0.finish);
}

TEST_F(SimulationTest, TwoRequestsArrivingTogetherArePrefilledInOneIteration) {
  Run({{Nanos(0), 100, 3}, {Nanos(0), 60, 3}});
  // One prefill of 100 + 60 tokens: 10 + 160 x 0.1 = 26 ms; both first tokens then.
  const Nanos prefill = kIter + 160 * kPrefill;
  // Two decode iterations of two tokens: 2 x (10 + 2 x 1) = 24 ms -> 50 ms.
  const Nanos finish = prefill + 2 * (kIter + 2 * kDecode);
  for (int64_t id : {0, 1}) {
    EXPECT_EQ(Record(id).first_token, prefill) << "request " << id;
    EXPECT_EQ(Record(id).finish, finish) << "request " << id;
  }
  ASSERT_EQ(Samples().size(), 3u);
  EXPECT_EQ(Samples()[0].prefill_tokens, 160);
  EXPECT_EQ(Samples()[0].running, 2);
  EXPECT_EQ(Samples()[1].decode_tokens, 2);
}

TEST_F(SimulationTest, RequestArrivingMidDecodeWaitsForTheIterationThenIsPrefilledAlone) {
  // Request 0: P = 100, O = 4 at 0. Request 1: P = 50, O = 2 at 25 ms.
  Run({{Nanos(0), 100, 4}, {milliseconds(25), 50, 2}});
  // [0, 20]   prefill request 0 (10 + 100 x 0.1)          -> request 0 token 1
  // [20, 31]  decode request 0 (10 + 1); request 1 arrives at 25 and waits
  // [31, 46]  prefill request 1 alone (10 + 50 x 0.1)     -> request 1 token 1
  // [46, 58]  both decode (10 + 2 x 1)                    -> 0: token 3; 1: token 2, done
  // [58, 69]  request 0 decodes alone (10 + 1)            -> token 4, done
  const Nanos t1 = kIter + 100 * kPrefill;
  const Nanos t2 = t1 + kIter + kDecode;
  const Nanos t3 = t2 + kIter + 50 * kPrefill;
  const Nanos t4 = t3 + kIter + 2 * kDecode;
  const Nanos t5 = t4 + kIter + kDecode;
  EXPECT_EQ(Record(0).first_token, t1);
  EXPECT_EQ(Record(0).finish, t5);
  EXPECT_EQ(Record(1).arrival, milliseconds(25));
  EXPECT_EQ(Record(1).first_scheduled, t2);
  EXPECT_EQ(Record(1).first_token, t3);  // TTFT = 46 - 25 = 21 ms
  EXPECT_EQ(Record(1).finish, t4);
  ASSERT_EQ(Samples().size(), 5u);
  EXPECT_EQ(Samples()[2].start, t2);
  EXPECT_EQ(Samples()[2].running, 1) << "the prefill runs without request 0's decode";
  EXPECT_EQ(Samples()[2].decode_tokens, 0);
  EXPECT_EQ(Samples()[2].prefill_tokens, 50);
}

TEST_F(SimulationTest, SarathiNeedsCeilPromptOverChunkIterationsToTheFirstToken) {
  constexpr int64_t P = 100, O = 3, kChunk = 32;
  Run({{Nanos(0), P, O}}, {{"scheduler.type", "sarathi"}, {"scheduler.chunk_tokens", "32"}});
  // ceil(100 / 32) = 4 iterations of 32, 32, 32 and 4 prompt tokens:
  // TTFT = 4 x 10 + 100 x 0.1 = 50 ms; then 2 decodes of 11 ms: E2E = 72 ms.
  const int64_t iterations = (P + kChunk - 1) / kChunk;
  ASSERT_EQ(iterations, 4);
  const Nanos ttft = iterations * kIter + P * kPrefill;
  EXPECT_EQ(Record(0).first_token, ttft);
  EXPECT_EQ(Record(0).finish, ttft + (O - 1) * (kIter + kDecode));
  ASSERT_EQ(Samples().size(), static_cast<size_t>(iterations + O - 1));
  int64_t left = P;
  for (int64_t i = 0; i < iterations; ++i) {
    EXPECT_EQ(Samples()[i].prefill_tokens, std::min(left, kChunk)) << "iteration " << i + 1;
    left -= kChunk;
  }
}

TEST_F(SimulationTest, StaticBatchingHoldsANewArrivalUntilTheWholeBatchFinishes) {
  // Requests 0 (P = 100, O = 2) and 1 (P = 100, O = 4) at 0; request 2 (P = 50,
  // O = 1) at 5 ms.
  Run({{Nanos(0), 100, 2}, {Nanos(0), 100, 4}, {milliseconds(5), 50, 1}},
      {{"scheduler.type", "static_batching"}});
  // [0, 30]   prefill 0 and 1 (10 + 200 x 0.1)
  // [30, 42]  both decode (10 + 2 x 1)        -> request 0 done
  // [42, 53]  request 1 alone (10 + 1); request 2 may not join the batch in flight
  // [53, 64]  request 1 alone                 -> done, the batch is over
  // [64, 79]  request 2 prefill (10 + 50 x 0.1) -> done
  const Nanos t1 = kIter + 200 * kPrefill;
  const Nanos t2 = t1 + kIter + 2 * kDecode;
  const Nanos t4 = t2 + 2 * (kIter + kDecode);
  const Nanos t5 = t4 + kIter + 50 * kPrefill;
  EXPECT_EQ(Record(0).finish, t2);
  EXPECT_EQ(Record(1).finish, t4);
  EXPECT_EQ(Record(2).first_scheduled, t4);
  EXPECT_EQ(Record(2).finish, t5);
}

TEST_F(SimulationTest, TinyKvCacheForcesOnePreemptionOfTheNewerRequest) {
  // KV for 100 tokens = 6 blocks of 16 (96 tokens); max_model_len 96.
  // Requests 0 and 1: P = 32, O = 40, both at 0 (at most 32 + 39 = 71 tokens each).
  Run({{Nanos(0), 32, 40}, {Nanos(0), 32, 40}},
      {{"deployment.kv_capacity_bytes", std::to_string(100 * kBytesPerToken)},
       {"deployment.max_model_len", "96"}});
  // Iteration 1: both prompts (2 + 2 blocks), 10 + 64 x 0.1 = 16.4 ms; tokens 1.
  // Iteration k = 2..17: both decode, growing to 31 + k tokens; at k = 2 each takes
  //   a third block (6 of 6 used). 16 x (10 + 2) ms. Each has 17 tokens after k = 17.
  // Iteration 18: request 0 grows to 49 tokens and needs a 4th block: none free, so
  //   request 1 (the newer) is preempted (its 3 blocks freed, 49 tokens to recompute).
  //   Request 0 decodes alone to token 40: iterations 18..40, 23 x (10 + 1) ms; it
  //   never leaves the 4 blocks request 1 needs (it holds 4 to 5 of 6).
  // Iteration 41: request 1 recomputes 32 + 17 = 49 tokens: 10 + 49 x 0.1 = 14.9 ms,
  //   emitting its token 18. Then 22 decodes alone to token 40: 22 x 11 ms.
  const Nanos prefill = kIter + 64 * kPrefill;
  const Nanos both = kIter + 2 * kDecode;
  const Nanos alone = kIter + kDecode;
  const Nanos finish0 = prefill + 16 * both + 23 * alone;                // 461.4 ms
  const Nanos finish1 = finish0 + (kIter + 49 * kPrefill) + 22 * alone;  // 718.3 ms
  EXPECT_EQ(summary_.preemptions, 1);
  EXPECT_EQ(Record(0).preemptions, 0);
  EXPECT_EQ(Record(0).finish, finish0);
  EXPECT_EQ(Record(1).preemptions, 1);
  EXPECT_EQ(Record(1).first_token, prefill) << "the first token was already out";
  EXPECT_EQ(Record(1).finish, finish1);
  EXPECT_EQ(summary_.iterations, 1 + 16 + 23 + 1 + 22);
  EXPECT_LE(summary_.peak_allocated_bytes, 6 * 16 * kBytesPerToken);
}

TEST_F(SimulationTest, TwoReplicasTakeRequestsInRoundRobinTurn) {
  Run({{Nanos(0), 100, 2}, {Nanos(0), 100, 2}, {Nanos(0), 100, 2}, {Nanos(0), 100, 2}},
      {{"deployment.replicas", "2"}, {"deployment.router", "round_robin"}});
  // Requests 0, 2 go to replica 0 and 1, 3 to replica 1. Each replica prefills two
  // prompts (10 + 200 x 0.1 = 30 ms), then decodes both (10 + 2 x 1 = 12 ms).
  const Nanos ttft = kIter + 200 * kPrefill;
  const Nanos finish = ttft + kIter + 2 * kDecode;
  for (int64_t id = 0; id < 4; ++id) {
    EXPECT_EQ(Record(id).replica, id % 2) << "request " << id;
    EXPECT_EQ(Record(id).first_token, ttft) << "request " << id;
    EXPECT_EQ(Record(id).finish, finish) << "request " << id;
  }
  EXPECT_DOUBLE_EQ(summary_.makespan_s, ToSeconds(finish));
}

TEST_F(SimulationTest, OneReplicaPrefillsAllFourTogether) {
  Run({{Nanos(0), 100, 2}, {Nanos(0), 100, 2}, {Nanos(0), 100, 2}, {Nanos(0), 100, 2}});
  // 10 + 400 x 0.1 = 50 ms to the first tokens (against 30 ms on two replicas).
  for (int64_t id = 0; id < 4; ++id) {
    EXPECT_EQ(Record(id).replica, 0);
    EXPECT_EQ(Record(id).first_token, kIter + 400 * kPrefill);
  }
}

TEST_F(SimulationTest, PromptsReachingMaxModelLenAreRejectedAndLongOutputsTruncated) {
  // max_model_len 128:
  //   request 0: P = 128 >= 128             -> rejected, never served
  //   request 1: P = 100, O = 50 -> 150 > 128 -> output truncated to 128 - 100 = 28
  //   request 2: P = 127, O = 1  -> 128       -> served as is
  Run({{Nanos(0), 128, 5}, {Nanos(0), 100, 50}, {Nanos(0), 127, 1}},
      {{"deployment.max_model_len", "128"}});
  EXPECT_EQ(summary_.requests_total, 3);
  EXPECT_EQ(summary_.requests_rejected, 1);
  EXPECT_EQ(summary_.requests_truncated, 1);
  EXPECT_EQ(summary_.requests_completed, 2);
  for (const RequestRecord& r : records_) EXPECT_NE(r.id, 0);
  EXPECT_EQ(Record(1).output_tokens, 128 - 100);
  EXPECT_EQ(Record(2).output_tokens, 1);
  // One prefill of 100 + 127 tokens (10 + 22.7 = 32.7 ms) finishes request 2; request 1
  // then decodes its other 27 tokens alone: 27 x 11 ms.
  const Nanos prefill = kIter + 227 * kPrefill;
  EXPECT_EQ(Record(2).finish, prefill);
  EXPECT_EQ(Record(1).finish, prefill + 27 * (kIter + kDecode));
}

TEST_F(SimulationTest, ArrivalAtTheEndOfAnIterationJoinsTheNextPlan) {
  // Request 0: P = 100, O = 3 at 0; its prefill ends at 10 + 100 x 0.1 = 20 ms, the
  // instant request 1 (P = 50, O = 1) arrives. Arrivals are handled before the
  // completion and the plan at equal times, so the next plan admits request 1:
  // prefill [20, 35] (10 + 50 x 0.1), then request 0 decodes [35, 46], [46, 57].
  const Nanos end1 = kIter + 100 * kPrefill;
  Run({{Nanos(0), 100, 3}, {end1, 50, 1}});
  const Nanos end2 = end1 + kIter + 50 * kPrefill;
  EXPECT_EQ(Record(1).first_scheduled, end1);
  EXPECT_EQ(Record(1).finish, end2);
  EXPECT_EQ(Record(0).finish, end2 + 2 * (kIter + kDecode));
}

TEST_F(SimulationTest, ArrivalJustAfterTheEndOfAnIterationWaitsForTheNextOne) {
  // As above with request 1 arriving 1 us later: the plan at 20 ms runs request 0's
  // decode [20, 31] without it; request 1 is prefilled [31, 46].
  const Nanos end1 = kIter + 100 * kPrefill;
  Run({{Nanos(0), 100, 3}, {end1 + microseconds(1), 50, 1}});
  const Nanos end2 = end1 + kIter + kDecode;
  EXPECT_EQ(Record(1).first_scheduled, end2);
  EXPECT_EQ(Record(1).finish, end2 + kIter + 50 * kPrefill);
}

TEST_F(SimulationTest, IdleGapBetweenRequestsLeavesTheReplicaIdle) {
  // Request 1 arrives at 1 s, long after request 0 finished (20 + 11 = 31 ms): it is
  // served as if alone, from its arrival.
  Run({{Nanos(0), 100, 2}, {milliseconds(1000), 100, 2}});
  const Nanos alone = kIter + 100 * kPrefill + kIter + kDecode;
  EXPECT_EQ(Record(0).finish, alone);
  EXPECT_EQ(Record(1).first_scheduled, milliseconds(1000));
  EXPECT_EQ(Record(1).finish, milliseconds(1000) + alone);
  EXPECT_EQ(summary_.iterations, 4);
}

}  // namespace
}  // namespace kvsim

namespace kvsim {
namespace {

// The quickstart scenario cut to `requests` requests.
std::unique_ptr<Simulation> Quickstart(int64_t requests) {
  ConfigTree tree = ConfigTree::Load(KVSIM_SOURCE_DIR "/configs/quickstart.yaml");
  tree.Set("workload.max_requests", std::to_string(requests));
  tree.Set("output.requests_csv", "false");
  return BuildSimulation(DecodeScenario(tree, KVSIM_SOURCE_DIR "/models"));
}

TEST(RunResult, HoldsEveryFinishedRequestsRecordWhenAskedAndNoneOtherwise) {
  std::unique_ptr<Simulation> kept = Quickstart(40);
  kept->KeepRequestRecords();
  const RunResult with = kept->Run();
  EXPECT_EQ(static_cast<int64_t>(with.records.size()), with.summary.requests_completed);
  EXPECT_GT(with.summary.requests_completed, 0);
  EXPECT_TRUE(kept->metrics().records().empty()) << "handed over, not copied";
  const RunResult without = Quickstart(40)->Run();
  EXPECT_TRUE(without.records.empty());
  EXPECT_EQ(without.summary.requests_completed, with.summary.requests_completed);
}

TEST(RunResult, DescribesTheTimingAsTheSimulationDoes) {
  std::unique_ptr<Simulation> sim = Quickstart(10);
  const RunResult result = sim->Run();
  EXPECT_EQ(result.timing_line, sim->TimingLine());
  EXPECT_EQ(result.timing_caveats, sim->timing_caveats());
  EXPECT_EQ(result.timing_assumptions, sim->timing_assumptions());
  EXPECT_FALSE(result.timing_assumptions.empty()) << "the quickstart's engine preset is assumed";
  EXPECT_EQ(result.summary.kv_manager, "paged");
}

}  // namespace
}  // namespace kvsim
