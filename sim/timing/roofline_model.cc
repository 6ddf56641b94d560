// Roofline execution time model; the formulas are stated in execution_time_model.h.
#include <algorithm>
#include <cmath>

#include "sim/core/check.h"
#include "sim/timing/execution_time_model.h"

namespace kvsim {
namespace {

class RooflineModel final : public ExecutionTimeModel {
 public:
  RooflineModel(const ModelSpec& model, const GpuSpec& gpu, int64_t tp,
                const RooflineConfig& config)
      : config_(config),
        tp_(static_cast<double>(tp)),
        dtype_bytes_(static_cast<double>(model.dtype_bytes)),
        layers_(static_cast<double>(model.num_layers)),
        hidden_(static_cast<double>(model.hidden_size)),
        vocab_(static_cast<double>(model.vocab_size)),
        attn_params_(static_cast<double>(model.AttentionParamsPerLayer())),
        expert_params_(static_cast<double>(model.MlpParamsPerExpert())),
        experts_(static_cast<double>(model.num_experts)),
        experts_per_token_(static_cast<double>(model.experts_per_token)),
        heads_per_rank_(static_cast<double>(model.num_heads) / static_cast<double>(tp)),
        head_dim_(static_cast<double>(model.head_dim)),
        kv_bytes_per_token_per_layer_(
            static_cast<double>(model.KvBytesPerTokenPerLayerPerRank(tp))),
        flops_(gpu.bf16_flops_per_s),
        hbm_(gpu.hbm_bandwidth_bytes_per_s),
        link_(gpu.link_bandwidth_bytes_per_s) {}

  Nanos IterationTime(const BatchWork& w) const override {
    KVSIM_CHECK(w.num_seqs >= 1, "empty batch");
    const double tokens = static_cast<double>(w.prefill_tokens + w.decode_tokens);
    const bool paged = w.layout == AttentionLayout::kPaged;

    // Linear layers of one block on one rank.
    const double experts_read =
        experts_ > 1 ? experts_ * (1.0 - std::pow(1.0 - experts_per_token_ / experts_, tokens))
                     : 1.0;
    const double active_params = attn_params_ + experts_per_token_ * expert_params_;
    const double read_params = attn_params_ + experts_read * expert_params_;
    const double linear_s =
        std::max(2.0 * tokens * active_params / tp_ / (flops_ * config_.gemm_efficiency),
                 read_params * dtype_bytes_ / tp_ / (hbm_ * config_.memory_efficiency));

    // Attention of one layer on one rank.
    double prefill_s = 4.0 * heads_per_rank_ * head_dim_ * w.prefill_attention_pairs /
                       (flops_ * config_.attention_prefill_efficiency);
    double decode_s = 2.0 * static_cast<double>(w.decode_context_tokens) *
                      kv_bytes_per_token_per_layer_ / (hbm_ * config_.attention_decode_efficiency);
    if (paged) {
      prefill_s *= config_.paged_prefill_slowdown;
      decode_s *= config_.paged_decode_slowdown;
    }

    // Two all-reduces per layer (after attention and after the MLP), ring algorithm.
    double allreduce_s = 0;
    if (tp_ > 1) {
      const double bytes = tokens * hidden_ * dtype_bytes_;
      allreduce_s = 2.0 * (config_.allreduce_latency_s + 2.0 * (tp_ - 1.0) / tp_ * bytes / link_);
    }

    const double logits = static_cast<double>(w.logit_tokens);
    const double lm_head_s =
        std::max(2.0 * logits * hidden_ * vocab_ / tp_ / (flops_ * config_.gemm_efficiency),
                 vocab_ * hidden_ * dtype_bytes_ / tp_ / (hbm_ * config_.memory_efficiency));

    double cpu_s = config_.cpu_overhead_s + config_.cpu_per_seq_s * static_cast<double>(w.num_seqs);
    if (paged && w.block_tokens > 0) {
      const double width = static_cast<double>(CeilDiv(w.max_context_tokens, w.block_tokens));
      cpu_s += config_.block_table_entry_s * static_cast<double>(w.num_seqs) * width;
    }

    const double total_s =
        layers_ * (linear_s + prefill_s + decode_s + allreduce_s) + lm_head_s + cpu_s;
    return SecondsToNanos(total_s);
  }

 private:
  RooflineConfig config_;
  double tp_, dtype_bytes_, layers_, hidden_, vocab_;
  double attn_params_, expert_params_, experts_, experts_per_token_;
  double heads_per_rank_, head_dim_, kv_bytes_per_token_per_layer_;
  double flops_, hbm_, link_;
};

}  // namespace

std::unique_ptr<ExecutionTimeModel> NewRooflineModel(const ModelSpec& model, const GpuSpec& gpu,
                                                     int64_t tensor_parallel,
                                                     const RooflineConfig& config) {
  KVSIM_CHECK(tensor_parallel >= 1, "tensor_parallel must be positive");
  KVSIM_CHECK(gpu.bf16_flops_per_s > 0 && gpu.hbm_bandwidth_bytes_per_s > 0, "bad GPU card");
  KVSIM_CHECK(tensor_parallel == 1 || gpu.link_bandwidth_bytes_per_s > 0,
              "tensor parallelism needs a GPU-GPU link bandwidth");
  return std::make_unique<RooflineModel>(model, gpu, tensor_parallel, config);
}

}  // namespace kvsim
