// vLLM-style continuous batching: whole-prompt admission, prefill-prioritized.
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
      if (tokens + need > config_.max_num_batched_tokens) break;
      if (!AdmitFront(queues, need, kv, batch)) break;
      tokens += need;
    }
    if (!batch.empty()) return;

    // Decode: every running sequence computes one token, oldest first; a refused
    // growth preempts the most recently admitted.
    for (size_t i = 0; i < queues.running.size(); ++i) {
      if (!GrowOrPreempt(queues, i, 1, GrowthPhase::kDecode, kv, batch)) break;
    }
  }

 private:
  VllmSchedulerConfig config_;
};

}  // namespace

std::unique_ptr<BatchScheduler> NewVllmScheduler(const VllmSchedulerConfig& config) {
  KVSIM_CHECK(config.max_num_seqs >= 1 && config.max_num_batched_tokens >= 1,
              "scheduler limits must be positive");
  return std::make_unique<VllmScheduler>(config);
}

}  // namespace kvsim
