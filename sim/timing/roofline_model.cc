// Roofline execution time model; the formulas are stated in execution_time_model.h.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/timing/execution_time_model.h"

namespace kvsim {
namespace {

class RooflineModel final : public ExecutionTimeModel {
 public:
  RooflineModel(const ModelSpec& model, const GpuSpec& gpu, int64_t tp,
                const RooflineConfig& config, const CostConfig& costs,
                std::vector<std::string> assumed)
      : config_(config),
        costs_(model, gpu, tp, costs, config.memory_efficiency),
        tp_(static_cast<double>(tp)),
        weight_bytes_(static_cast<double>(model.weight_dtype_bytes)),
        lm_head_bytes_(static_cast<double>(model.dtype_bytes)),
        layers_(static_cast<double>(model.num_layers)),
        hidden_(static_cast<double>(model.hidden_size)),
        vocab_(static_cast<double>(model.vocab_size)),
        attn_params_(static_cast<double>(model.AttentionParamsPerLayer())),
        expert_params_(static_cast<double>(model.MlpParamsPerExpert())),
        experts_per_token_(static_cast<double>(model.experts_per_token)),
        kv_bytes_per_token_per_layer_(
            static_cast<double>(model.KvBytesPerTokenPerLayerPerRank(tp))),
        flops_(GemmFlopsPerSecond(model, gpu)),
        bf16_flops_(gpu.bf16_flops_per_s),
        hbm_(gpu.hbm_bandwidth_bytes_per_s),
        assumed_(std::move(assumed)) {
    for (std::string& a : costs_.Assumptions()) assumed_.push_back(std::move(a));
  }

  std::string Name() const override {
    return std::string(kTimingTypes.Name(TimingType::kRoofline));
  }
  std::vector<std::string> Assumptions() const override { return assumed_; }

  Nanos IterationTime(const BatchWork& w) const override {
    KVSIM_CHECK(w.num_seqs >= 1, "empty batch");
    return Finish(Prepare(w), ToCostInputs(w));
  }

  std::optional<KernelClassSeconds> GpuSecondsByClass(const BatchWork& w) const override {
    KVSIM_CHECK(w.num_seqs >= 1, "empty batch");
    return Classes(Prepare(w), ToCostInputs(w));
  }

  // One Prepare for the whole run; each iteration only re-finishes with longer
  // contexts, so the result is IterationTime's to the bit.
  void DecodeRunTimes(const BatchWork& first, Nanos start, Nanos horizon, int64_t max_steps,
                      std::vector<Nanos>& out) const override {
    KVSIM_CHECK(first.num_seqs >= 1, "empty batch");
    const Terms terms = Prepare(first);
    BatchWork w = first;
    for (int64_t j = 0; j < max_steps && start < horizon; ++j) {
      w.decode_context_tokens += w.decode_tokens;
      ++w.max_context_tokens;
      const Nanos d = Finish(terms, ToCostInputs(w));
      out.push_back(d);
      start += d;
    }
  }

 private:
  // The terms of one iteration that do not depend on its decode contexts.
  struct Terms {
    double linear_s = 0, prefill_s = 0, allreduce_s = 0, kernels_s = 0, lm_head_s = 0;
    double pass_collectives_s = 0;  // the embedding's all-reduce, the logits' all-gather
    bool paged = false;
    bool decodes = false;
  };

  Terms Prepare(const BatchWork& w) const {
    const CostInputs in = ToCostInputs(w);
    Terms t;
    t.paged = w.layout == AttentionLayout::kPaged;
    t.decodes = w.decode_tokens > 0;

    // Linear layers of one block on one rank.
    const double experts_read = costs_.ExpertsRead(in.tokens);
    const double active_params = attn_params_ + experts_per_token_ * expert_params_;
    const double read_params = attn_params_ + experts_read * expert_params_;
    t.linear_s =
        std::max(2.0 * in.tokens * active_params / tp_ / (flops_ * config_.gemm_efficiency),
                 read_params * weight_bytes_ / tp_ / (hbm_ * config_.memory_efficiency));

    // Prefill attention of one layer on one rank.
    t.prefill_s =
        costs_.PrefillFlopSeconds(w.prefill_attention_pairs, config_.attention_prefill_efficiency);
    if (t.paged) t.prefill_s = costs_.PagedPrefillSeconds(t.prefill_s);

    t.allreduce_s = costs_.LayerAllreduceSeconds(in.tokens);
    t.kernels_s = costs_.PerLayerKernelsSeconds(in.tokens);

    const double logits = static_cast<double>(w.logit_tokens);
    for (const double bytes : costs_.PassAllreduceBytes(in.tokens, logits)) {
      t.pass_collectives_s += costs_.AllreduceSeconds(bytes);
    }
    // No LM head when no sequence emits a token (a step of prefill chunks only).
    t.lm_head_s =
        logits > 0
            ? std::max(
                  2.0 * logits * hidden_ * vocab_ / tp_ / (bf16_flops_ * config_.gemm_efficiency),
                  vocab_ * hidden_ * lm_head_bytes_ / tp_ / (hbm_ * config_.memory_efficiency))
            : 0.0;
    return t;
  }

  // Decode attention of one layer on one rank, then the pass by kernel class (the
  // kernel gaps of all ten kernels in `other`).
  KernelClassSeconds Classes(const Terms& t, const CostInputs& in) const {
    double decode_s = 2.0 * in.decode_context * kv_bytes_per_token_per_layer_ /
                      (hbm_ * config_.attention_decode_efficiency);
    if (t.paged && t.decodes) decode_s = costs_.PagedDecodeSeconds(decode_s, in);
    return {.gemm_s = layers_ * t.linear_s + t.lm_head_s,
            .attention_s = layers_ * (t.prefill_s + decode_s),
            .other_s = layers_ * t.kernels_s,
            .collective_s = layers_ * t.allreduce_s + t.pass_collectives_s};
  }

  Nanos Finish(const Terms& t, const CostInputs& in) const {
    return IterationNanos(costs_.IterationSeconds(Classes(t, in).Sum(), in));
  }

 private:
  RooflineConfig config_;
  CostTerms costs_;
  double tp_, weight_bytes_, lm_head_bytes_, layers_, hidden_, vocab_;
  double attn_params_, expert_params_, experts_per_token_;
  double kv_bytes_per_token_per_layer_;
  double flops_, bf16_flops_, hbm_;  // linear layers' GEMM rate; the LM head's (16-bit)
  std::vector<std::string> assumed_;
};

}  // namespace

RooflineConfig RooflineDefaults() {
  // Generic fractions of peak for a card that states none (assumed): cuBLAS GEMMs
  // reach 80-90% of peak on A100-class GPUs and ~70% on H100 (FlashAttention-2 paper
  // section 1; this project's H100 reference 684 of 989 TFLOP/s), streaming copies
  // ~85-90% of bandwidth, FlashAttention-2 prefill 50-73% on an A100.
  return {.gemm_efficiency = 0.7,
          .memory_efficiency = 0.85,
          .attention_prefill_efficiency = 0.6,
          .attention_decode_efficiency = 0.8};
}

RooflineConfig ResolveEfficiencies(const RooflineConfig& config, const GpuSpec& gpu,
                                   std::vector<std::string>* assumed) {
  const RooflineConfig d = RooflineDefaults();
  const GpuSpec::Efficiencies& card = gpu.efficiency;
  RooflineConfig out = config;
  const auto pick = [&](double& v, double from_card, double fallback, const char* key) {
    if (v > 0) return;
    if (from_card > 0) {
      v = from_card;
      return;
    }
    v = fallback;
    if (assumed != nullptr) {
      assumed->push_back(
          fmt::format("{}: the {} card states none; the generic {:g} of peak is assumed", key,
                      gpu.name, fallback));
    }
  };
  pick(out.gemm_efficiency, card.gemm, d.gemm_efficiency, "gemm_efficiency");
  pick(out.memory_efficiency, card.memory, d.memory_efficiency, "memory_efficiency");
  pick(out.attention_prefill_efficiency, card.attention_prefill, d.attention_prefill_efficiency,
       "attention_prefill_efficiency");
  pick(out.attention_decode_efficiency, card.attention_decode, d.attention_decode_efficiency,
       "attention_decode_efficiency");
  return out;
}

void ExecutionTimeModel::DecodeRunTimes(const BatchWork& first, Nanos start, Nanos horizon,
                                        int64_t max_steps, std::vector<Nanos>& out) const {
  BatchWork w = first;
  for (int64_t j = 0; j < max_steps && start < horizon; ++j) {
    w.decode_context_tokens += w.decode_tokens;
    ++w.max_context_tokens;
    const Nanos d = IterationTime(w);
    out.push_back(d);
    start += d;
  }
}

Nanos IterationNanos(double seconds) {
  if (!(seconds > 0 && seconds <= kMaxSimulatedSeconds)) {
    throw InputError(fmt::format(
        "one iteration would take {:g} s, outside (0, {:g}] s: the GPU card's rates or the "
        "timing terms (timing.*) are out of range",
        seconds, kMaxSimulatedSeconds));
  }
  return SecondsToNanos(seconds);
}

CostInputs ToCostInputs(const BatchWork& w) {
  return {.tokens = static_cast<double>(w.prefill_tokens + w.decode_tokens),
          .prefill_tokens = static_cast<double>(w.prefill_tokens),
          .num_seqs = w.num_seqs,
          .decode_seqs = static_cast<double>(w.decode_tokens),
          .decode_context = static_cast<double>(w.decode_context_tokens),
          .max_context = w.max_context_tokens,
          .layout = w.layout,
          .block_tokens = w.block_tokens};
}

std::unique_ptr<ExecutionTimeModel> NewRooflineModel(const ModelSpec& model, const GpuSpec& gpu,
                                                     int64_t tensor_parallel,
                                                     const RooflineConfig& config,
                                                     const CostConfig& costs) {
  KVSIM_CHECK(tensor_parallel >= 1, "tensor_parallel must be positive");
  KVSIM_CHECK(gpu.bf16_flops_per_s > 0 && gpu.hbm_bandwidth_bytes_per_s > 0, "bad GPU card");
  KVSIM_CHECK(tensor_parallel == 1 || gpu.link_bandwidth_bytes_per_s > 0,
              "tensor parallelism needs a GPU-GPU link bandwidth");
  std::vector<std::string> assumed;
  const RooflineConfig resolved = ResolveEfficiencies(config, gpu, &assumed);
  if (model.weight_dtype_bytes == 1) {
    assumed.push_back(
        gpu.fp8_flops_per_s > 0
            ? fmt::format("deployment.weight_dtype: fp8 GEMMs are timed at the card's fp8 peak "
                          "({:.0f} TFLOP/s) x the bf16 GEMM efficiency, and by one byte per "
                          "weight read; not measured",
                          gpu.fp8_flops_per_s * 1e-12)
            : fmt::format("deployment.weight_dtype: fp8 on {}, whose card gives no fp8 rate: GEMMs "
                          "are timed at the bf16 rate (weight-only fp8), weight reads at one byte "
                          "per weight; not measured",
                          gpu.name));
  }
  if (model.kv_dtype_bytes == 1) {
    assumed.push_back(
        "kv_cache.dtype: fp8 decode attention is timed as half the KV bytes at the bf16 kernel's "
        "bandwidth efficiency; not measured");
  }
  return std::make_unique<RooflineModel>(model, gpu, tensor_parallel, resolved, costs,
                                         std::move(assumed));
}

}  // namespace kvsim
