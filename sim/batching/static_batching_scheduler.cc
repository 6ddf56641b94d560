// Request-level static batching (FasterTransformer style).
#include "sim/batching/batch_scheduler.h"
#include "sim/core/check.h"

namespace kvsim {
namespace {

class StaticBatchingScheduler final : public BatchScheduler {
 public:
  explicit StaticBatchingScheduler(const StaticBatchingSchedulerConfig& config) : config_(config) {}

  void Schedule(SequenceQueues& queues, KvCacheManager& kv, Batch& batch) override {
    if (queues.running.empty()) {
      // Form a new batch: whole prompts, FCFS, up to max_num_seqs that fit.
      while (!queues.waiting.empty() &&
             static_cast<int64_t>(queues.running.size()) < config_.max_num_seqs) {
        const int64_t prompt = queues.waiting.front()->PendingTokens();
        if (!AdmitFront(queues, prompt, prompt - CachedPrefix(queues, kv), kv, batch)) break;
      }
      return;
    }
    // The batch in flight: each member computes what it still needs (a member
    // preempted and re-admitted recomputes its prompt here), nobody joins.
    for (size_t i = 0; i < queues.running.size(); ++i) {
      Sequence& seq = *queues.running[i];
      const GrowthPhase phase = seq.IsDecode() ? GrowthPhase::kDecode : GrowthPhase::kPrefill;
      if (!GrowOrPreempt(queues, i, seq.PendingTokens(), phase, kv, batch)) break;
    }
  }

  // A batch in flight whose members all decode: nobody joins, whatever waits.
  bool SchedulesAllDecodes(const SequenceQueues& queues) const override {
    return AllRunningDecode(queues);
  }

 private:
  StaticBatchingSchedulerConfig config_;
};

}  // namespace

std::unique_ptr<BatchScheduler> NewStaticBatchingScheduler(
    const StaticBatchingSchedulerConfig& config) {
  KVSIM_CHECK(config.max_num_seqs >= 1, "max_num_seqs must be positive");
  return std::make_unique<StaticBatchingScheduler>(config);
}

}  // namespace kvsim
