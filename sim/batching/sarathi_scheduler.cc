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
    int64_t budget = budget_;
    // 1. Decodes first, oldest first.
    for (size_t i = 0; i < queues.running.size() && budget > 0; ++i) {
      if (!queues.running[i]->IsDecode() || queues.running[i]->scheduled_tokens > 0) continue;
      if (GrowOrPreempt(queues, i, 1, GrowthPhase::kDecode, kv, batch)) --budget;
    }
    // 2. Running partial prefills continue, one chunk each.
    for (size_t i = 0; i < queues.running.size() && budget > 0; ++i) {
      Sequence& seq = *queues.running[i];
      if (seq.IsDecode() || seq.scheduled_tokens > 0) continue;
      const int64_t chunk = std::min({seq.PendingTokens(), budget, config_.chunk_tokens});
      if (GrowOrPreempt(queues, i, chunk, GrowthPhase::kPrefill, kv, batch)) budget -= chunk;
    }
    // 3. New admissions, FCFS, with the budget that is left, unless this plan
    // preempted: a victim would be re-admitted into the memory it just gave up.
    while (batch.preempted == 0 && budget > 0 && !queues.waiting.empty() &&
           static_cast<int64_t>(queues.running.size()) < config_.max_num_seqs) {
      const int64_t chunk =
          std::min({queues.waiting.front()->PendingTokens(), budget, config_.chunk_tokens});
      if (!AdmitFront(queues, chunk, kv, batch)) break;
      budget -= chunk;
    }
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
