// Fixed-cost execution time model (linear in tokens).
#include "sim/core/check.h"
#include "sim/timing/execution_time_model.h"

namespace kvsim {
namespace {

class FixedTimeModel final : public ExecutionTimeModel {
 public:
  explicit FixedTimeModel(const FixedTimeConfig& config) : config_(config) {}

  std::string Name() const override { return std::string(kTimingTypes.Name(TimingType::kFixed)); }

  Nanos IterationTime(const BatchWork& work) const override {
    KVSIM_CHECK(work.num_seqs >= 1, "empty batch");
    const Nanos t = config_.per_iteration + config_.per_prefill_token * work.prefill_tokens +
                    config_.per_decode_token * work.decode_tokens;
    return t > Nanos(0) ? t : Nanos(1);
  }

 private:
  FixedTimeConfig config_;
};

}  // namespace

std::unique_ptr<ExecutionTimeModel> NewFixedTimeModel(const FixedTimeConfig& config) {
  KVSIM_CHECK(config.per_iteration >= Nanos(0) && config.per_prefill_token >= Nanos(0) &&
                  config.per_decode_token >= Nanos(0),
              "fixed-time costs must be non-negative");
  return std::make_unique<FixedTimeModel>(config);
}

}  // namespace kvsim
