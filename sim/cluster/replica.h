// Replica: one serving-engine instance over tensor_parallel GPUs. It owns its
// sequences, its KV manager and its batch scheduler, and runs at most one
// iteration at a time.
#pragma once

#include <cstdint>
#include <memory>

#include "sim/batching/batch_scheduler.h"
#include "sim/cluster/router.h"
#include "sim/kvcache/kv_cache_manager.h"
#include "sim/metrics/metrics.h"
#include "sim/timing/execution_time_model.h"

namespace kvsim {

class Replica {
 public:
  // `timing` and `metrics` are shared by the replicas of a cluster and must
  // outlive the replica.
  // `request_finish`: the engine's work per request after its last token
  // (timing.engine.request_finish_s), added to the recorded finish time.
  // `skip_ahead`: let StartIteration advance over a run of decode iterations at
  // once (below); the results are those of stepping one iteration at a time.
  Replica(int64_t index, std::unique_ptr<KvCacheManager> kv,
          std::unique_ptr<BatchScheduler> scheduler, const ExecutionTimeModel& timing,
          Metrics& metrics, Nanos request_finish = Nanos(0), bool skip_ahead = false);

  // Queues an arrived request (counted queued in the metrics' Backlog until its first
  // iteration starts).
  void Enqueue(RequestSpec spec);

  // Plans and starts an iteration at `now`. Returns its duration (compute plus
  // exposed KV mapping time), or 0 when there is nothing to run.
  //
  // Exposed KV time = the manager's synchronous work + max(0, background - behind).
  // Background work (vAttention with overlap: decode growth, reclamation) runs on a
  // thread that starts with the previous iteration and can work until this one
  // starts, through any idle gap between them: behind = now - start of the previous
  // iteration (its duration + the idle gap); 0 before the first iteration.
  //
  // Skip-ahead: when the scheduler would plan every running sequence for one decode
  // token (BatchScheduler::SchedulesAllDecodes) and the KV manager promises the
  // growth (KvCacheManager::CertainDecodeRounds), the iterations from `now` on are
  // known in advance: each grows every sequence by one token, costs IterationTime of
  // a batch whose contexts are one token longer than the last, maps nothing and
  // finishes nobody until the last. StartIteration then runs them at once, up to
  // the first iteration in which a sequence emits its last token, never one that
  // starts at or after `horizon` (the next arrival anywhere, which may change the
  // queues): it records every iteration and token as stepping would and returns the
  // run's whole duration, its last iteration left in flight for CompleteIteration.
  // Metrics see the run's iterations at its start.
  // REQUIRES: !busy().
  Nanos StartIteration(Nanos now, Nanos horizon = Nanos::max());

  // Completes the iteration in flight at `now`: advances tokens, emits tokens,
  // finishes and releases requests. REQUIRES: busy().
  void CompleteIteration(Nanos now);

  bool busy() const { return !batch_.empty(); }
  ReplicaLoad load() const {
    return {static_cast<int64_t>(queues_.running.size()),
            static_cast<int64_t>(queues_.waiting.size())};
  }
  const KvCacheManager& kv() const { return *kv_; }

 private:
  BatchWork Describe() const;
  // Skip-ahead: plans and runs a run of decode iterations from `now` when the
  // queues allow one (StartIteration); returns its whole duration, 0 for none (then
  // nothing changed).
  Nanos StartDecodeRun(Nanos now, Nanos horizon);
  // Records, for every sequence in the batch, the gap from its previous token to
  // `now`. REQUIRES: every sequence in the batch emitted a token before.
  void RecordTokenGaps(Nanos now);

  int64_t index_;
  std::unique_ptr<KvCacheManager> kv_;
  std::unique_ptr<BatchScheduler> scheduler_;
  const ExecutionTimeModel& timing_;
  Metrics& metrics_;
  Nanos request_finish_;
  SequenceQueues queues_;
  Batch batch_;
  Nanos last_start_{-1};  // start of the previous iteration; -1 before the first
  bool skip_ahead_;
  // RunDecodes' reused buffers (no state between calls).
  std::vector<int64_t> run_ids_, run_tokens_;
  std::vector<Nanos> run_durations_;
  std::vector<KvUsage> run_usage_;
};

}  // namespace kvsim
