// Sarathi-style chunked prefill under a per-iteration token budget.
#include <algorithm>

#include "sim/batching/batch_scheduler.h"
#include "sim/core/check.h"

namespace kvsim {
namespace {

class SarathiScheduler final : public BatchScheduler {
 public:
  explicit SarathiScheduler(const SarathiSchedulerConfig& config)
      : config_(config), budget_(std::min(config.chunk_tokens, config.max_num_batched_tokens)) {}

  void Schedule(SequenceQueues& queues, KvCacheManager& kv, Batch& batch) override {
    // The budget left is recomputed from the batch, so tokens of a sequence that a
    // later step preempts out of the batch are given back.
    const auto left = [&] { return budget_ - batch.prefill_tokens - batch.decode_tokens; };
    // 1. Decodes first, oldest first.
    for (size_t i = 0; i < queues.running.size() && left() > 0; ++i) {
      if (!queues.running[i]->IsDecode() || queues.running[i]->scheduled_tokens > 0) continue;
      GrowOrPreempt(queues, i, 1, GrowthPhase::kDecode, kv, batch);
    }
    // 2. Running partial prefills continue, one chunk each, inside the KV they
    // were admitted with.
    for (size_t i = 0; i < queues.running.size() && left() > 0; ++i) {
      Sequence& seq = *queues.running[i];
      if (seq.IsDecode() || seq.scheduled_tokens > 0) continue;
      const int64_t chunk = std::min({seq.PendingTokens(), left(), config_.chunk_tokens});
      GrowOrPreempt(queues, i, chunk, GrowthPhase::kPrefill, kv, batch);
    }
    // 3. New admissions, FCFS, with the budget that is left, unless this plan
    // preempted: a victim would be re-admitted into the memory it just gave up.
    // The KV of the whole pending prompt must fit and is held from now on, so the
    // step above never needs memory for a later chunk; the head of the queue
    // blocks the rest when it does not fit.
    while (batch.preempted == 0 && left() > 0 && !queues.waiting.empty() &&
           static_cast<int64_t>(queues.running.size()) < config_.max_num_seqs) {
      const int64_t prompt = queues.waiting.front()->PendingTokens();
      const int64_t chunk =
          std::min({prompt - CachedPrefix(queues, kv), left(), config_.chunk_tokens});
      if (!AdmitFront(queues, /*hold_tokens=*/prompt, /*compute_tokens=*/chunk, kv, batch)) {
        break;
      }
    }
  }

  // Decodes come first and all fit the budget; there are no partial prefills and
  // nothing waits.
  bool SchedulesAllDecodes(const SequenceQueues& queues) const override {
    return queues.waiting.empty() && static_cast<int64_t>(queues.running.size()) <= budget_ &&
           AllRunningDecode(queues);
  }

 private:
  SarathiSchedulerConfig config_;
  int64_t budget_;
};

}  // namespace

std::unique_ptr<BatchScheduler> NewSarathiScheduler(const SarathiSchedulerConfig& config) {
  KVSIM_CHECK(
      config.max_num_seqs >= 1 && config.max_num_batched_tokens >= 1 && config.chunk_tokens >= 1,
      "scheduler limits must be positive");
  return std::make_unique<SarathiScheduler>(config);
}

}  // namespace kvsim
