// vLLM-style continuous batching: the V0-style scheduler (whole-prompt admission,
// prefill-prioritized) and the V1-style one (one token budget, chunked prefill).
#include <algorithm>

#include "sim/batching/batch_scheduler.h"
#include "sim/core/check.h"

namespace kvsim {
namespace {

class VllmScheduler final : public BatchScheduler {
 public:
  explicit VllmScheduler(const VllmSchedulerConfig& config) : config_(config) {}

  void Schedule(SequenceQueues& queues, KvCacheManager& kv, Batch& batch) override {
    // Prefill: admit waiting prompts whole, FCFS, while limits and memory allow.
    // The head of the queue blocks the rest (no reordering).
    int64_t tokens = 0;
    while (!queues.waiting.empty() &&
           static_cast<int64_t>(queues.running.size()) < config_.max_num_seqs) {
      const int64_t need = queues.waiting.front()->PendingTokens();
      const int64_t compute = need - CachedPrefix(queues, kv);
      if (tokens + compute > config_.max_num_batched_tokens) break;
      if (!AdmitFront(queues, need, compute, kv, batch)) break;
      tokens += compute;
    }
    if (!batch.empty()) return;

    // Decode: every running sequence computes one token, oldest first; a refused
    // growth preempts the most recently admitted.
    for (size_t i = 0; i < queues.running.size(); ++i) {
      if (!GrowOrPreempt(queues, i, 1, GrowthPhase::kDecode, kv, batch)) break;
    }
  }

  // Nothing waits, so nothing is admitted and every running sequence decodes.
  bool SchedulesAllDecodes(const SequenceQueues& queues) const override {
    return queues.waiting.empty() && AllRunningDecode(queues);
  }

 private:
  VllmSchedulerConfig config_;
};

class VllmV1Scheduler final : public BatchScheduler {
 public:
  explicit VllmV1Scheduler(const VllmV1SchedulerConfig& config) : config_(config) {}

  void Schedule(SequenceQueues& queues, KvCacheManager& kv, Batch& batch) override {
    // Tokens of the budget not yet given out, recomputed from the batch so that a
    // preempted victim's tokens (if it was planned already) are given back.
    const auto left = [&] {
      return config_.max_num_batched_tokens - batch.prefill_tokens - batch.decode_tokens;
    };
    // 1. Running requests in running order: a decode gets 1 token, a partial
    // prefill the budget left up to its pending tokens, with KV grown by exactly
    // that. A refused growth preempts from the back; when this request is itself
    // the victim, the requests behind it are gone too and the step stops.
    for (size_t i = 0; i < queues.running.size() && left() > 0; ++i) {
      Sequence& seq = *queues.running[i];
      const int64_t tokens = std::min(seq.PendingTokens(), left());
      const GrowthPhase phase = seq.IsDecode() ? GrowthPhase::kDecode : GrowthPhase::kPrefill;
      if (!GrowOrPreempt(queues, i, tokens, phase, kv, batch)) break;
    }
    // 2. Waiting requests FCFS, unless step 1 preempted, each with KV for the
    // chunk it computes now only; the first that does not fit blocks the rest.
    while (batch.preempted == 0 && left() > 0 && !queues.waiting.empty() &&
           static_cast<int64_t>(queues.running.size()) < config_.max_num_seqs) {
      const Sequence& next = *queues.waiting.front();
      if (config_.reserve_full_isl &&
          !kv.CanAdmit(next.spec.id, next.PendingTokens(), next.MaxTokens())) {
        break;
      }
      const int64_t cached = CachedPrefix(queues, kv);
      const int64_t chunk = std::min(next.PendingTokens() - cached, left());
      if (!AdmitFront(queues, /*hold_tokens=*/cached + chunk, /*compute_tokens=*/chunk, kv,
                      batch)) {
        break;
      }
    }
  }

  // Step 1 gives each of the running decodes 1 token while the budget lasts; nothing
  // waits for step 2.
  bool SchedulesAllDecodes(const SequenceQueues& queues) const override {
    return queues.waiting.empty() &&
           static_cast<int64_t>(queues.running.size()) <= config_.max_num_batched_tokens &&
           AllRunningDecode(queues);
  }

 private:
  VllmV1SchedulerConfig config_;
};

}  // namespace

std::unique_ptr<BatchScheduler> NewVllmScheduler(const VllmSchedulerConfig& config) {
  KVSIM_CHECK(config.max_num_seqs >= 1 && config.max_num_batched_tokens >= 1,
              "scheduler limits must be positive");
  return std::make_unique<VllmScheduler>(config);
}

std::unique_ptr<BatchScheduler> NewVllmV1Scheduler(const VllmV1SchedulerConfig& config) {
  KVSIM_CHECK(config.max_num_seqs >= 1 && config.max_num_batched_tokens >= 1,
              "scheduler limits must be positive");
  return std::make_unique<VllmV1Scheduler>(config);
}

}  // namespace kvsim
