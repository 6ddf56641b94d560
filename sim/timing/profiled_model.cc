// Profiled execution time model: iteration times assembled from kvprobe
// measurements (profile_tables.h) and the shared cost terms (cost_terms.h); the
// formulas are stated in execution_time_model.h.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/core/check.h"
#include "sim/timing/execution_time_model.h"
#include "sim/timing/profile_schema.h"
#include "sim/timing/profile_tables.h"

namespace kvsim {
namespace {

namespace schema = profile_schema;

class ProfiledModel final : public ExecutionTimeModel {
 public:
  // `allreduce` is nothing for the shared ring formula; `caveats` and `assumed` are
  // what Caveats() and Assumptions() return (the shared terms' assumptions added).
  ProfiledModel(ProfileCurves curves, const ModelSpec& model, const GpuSpec& gpu, int64_t tp,
                const ProfiledConfig& config, const CostConfig& costs,
                std::vector<std::string> caveats, std::vector<std::string> assumed)
      : config_(config),
        costs_(model, gpu, tp, costs, config.memory_efficiency),
        qkv_(curves.gemm.at("qkv")),
        o_(curves.gemm.at("o")),
        gate_up_(curves.gemm.at("gate_up")),
        down_(curves.gemm.at("down")),
        lm_head_(curves.gemm.at("lm_head")),
        decode_(std::move(curves.decode)),
        prefill_(std::move(curves.prefill)),
        small_kernels_(std::move(curves.small_kernels)),
        layers_(static_cast<double>(model.num_layers)),
        kv_heads_per_rank_(static_cast<double>(model.KvHeadsPerRank(tp))),
        experts_per_token_(static_cast<double>(model.experts_per_token)),
        caveats_(std::move(caveats)),
        assumed_(std::move(assumed)) {
    if (curves.allreduce) {
      allreduce_.emplace(std::move(curves.allreduce->curve));
      costs_.UseMeasuredAllreduce();
    }
    for (std::string& a : costs_.Assumptions()) assumed_.push_back(std::move(a));
  }

  std::string Name() const override {
    return std::string(kTimingTypes.Name(TimingType::kProfiled));
  }
  std::vector<std::string> Caveats() const override { return caveats_; }
  std::vector<std::string> Assumptions() const override { return assumed_; }

  Nanos IterationTime(const BatchWork& w) const override {
    KVSIM_CHECK(w.num_seqs >= 1, "empty batch");
    return IterationNanos(costs_.IterationSeconds(Classes(w).Sum(), ToCostInputs(w)));
  }

  std::optional<KernelClassSeconds> GpuSecondsByClass(const BatchWork& w) const override {
    KVSIM_CHECK(w.num_seqs >= 1, "empty batch");
    return Classes(w);
  }

 private:
  KernelClassSeconds Classes(const BatchWork& w) const {
    const CostInputs in = ToCostInputs(w);
    const double tokens = in.tokens;
    // The profile's own paged rows, or the contiguous rows through a named kernel.
    const bool own_paged =
        w.layout == AttentionLayout::kPaged && costs_.paged_kernel() == PagedKernel::kProfiled;
    const bool named_paged = w.layout == AttentionLayout::kPaged && !own_paged;
    const AttentionLayout rows = named_paged ? AttentionLayout::kContiguous : w.layout;

    // Linear layers of one block on one rank.
    double linear_s = 0;
    if (tokens > 0) {
      const double experts_read = costs_.ExpertsRead(tokens);
      const double expert_tokens = tokens * experts_per_token_ / experts_read;
      linear_s = qkv_.Seconds(tokens) + o_.Seconds(tokens) +
                 experts_read * (gate_up_.Seconds(expert_tokens) + down_.Seconds(expert_tokens));
    }

    // Attention of one layer on one rank.
    double attention_s = 0;
    if (w.decode_tokens > 0) {
      const double batch = static_cast<double>(w.decode_tokens);
      const double context = static_cast<double>(w.decode_context_tokens) / batch;
      // The kernel's units: one per sequence and KV head on this rank (DecodePoint).
      const double measured =
          decode_.For(rows, w.block_tokens).Seconds(batch * kv_heads_per_rank_, context);
      attention_s += named_paged ? costs_.PagedDecodeSeconds(measured, in) : measured;
    }
    if (w.prefill_attention_pairs > 0) {
      const double measured = prefill_.For(rows, w.block_tokens).Seconds(w.prefill_attention_pairs);
      double prefill_s = measured;
      if (config_.prefill_attention == ProfiledConfig::PrefillAttention::kRoofline) {
        const double contiguous =
            prefill_.For(AttentionLayout::kContiguous, 0).Seconds(w.prefill_attention_pairs);
        prefill_s = costs_.PrefillFlopSeconds(w.prefill_attention_pairs,
                                              config_.attention_prefill_efficiency) *
                    (measured / contiguous);
      }
      attention_s += named_paged ? costs_.PagedPrefillSeconds(prefill_s) : prefill_s;
    }

    // The layer's all-reduces.
    const double allreduce_s = tokens > 0 ? CostTerms::kAllreducesPerLayer *
                                                AllreduceSeconds(costs_.AllreduceBytes(tokens))
                                          : 0.0;

    const double logits = static_cast<double>(w.logit_tokens);
    const double lm_head_s = logits > 0 ? lm_head_.Seconds(logits) : 0.0;
    // Once per pass: the embedding's all-reduce and the logits' all-gather (tp > 1).
    double pass_collectives_s = 0;
    for (const double bytes : costs_.PassAllreduceBytes(tokens, logits)) {
      pass_collectives_s += AllreduceSeconds(bytes);
    }
    // The layer's small kernels: measured where the profile has them, else the bytes
    // they move plus their kernel gaps. kvprobe times every kernel row as CUDA graph
    // replays of that kernel, so each launch's boundary is inside the row's time and no
    // kernel gap is added to a measured row: with the 1 us gap added to every kernel,
    // the TP 1 passes of the lent H200 came out 4% slow on average where the rows alone
    // came out within 0.1% (models/profiles/H200/README.md).
    double small_s = 0;
    if (tokens > 0) {
      // kvprobe's small kernels are fused, five a layer: an engine running more kernels
      // pays their boundaries, an unfused one moves more bytes.
      small_s = small_kernels_ ? small_kernels_->Seconds(tokens) + costs_.BeyondFusedSeconds(tokens)
                               : costs_.PerLayerSmallKernelsSeconds(tokens);
    }
    return {.gemm_s = layers_ * linear_s + lm_head_s,
            .attention_s = layers_ * attention_s,
            .other_s = layers_ * small_s,
            .collective_s = layers_ * allreduce_s + pass_collectives_s};
  }

  // One all-reduce of `bytes` on this model's ranks: the measured curve, else the shared
  // ring formula.
  double AllreduceSeconds(double bytes) const {
    return allreduce_ ? allreduce_->Seconds(bytes) : costs_.AllreduceSeconds(bytes);
  }

  ProfiledConfig config_;
  CostTerms costs_;
  SizeCurve qkv_, o_, gate_up_, down_, lm_head_;  // GEMM time against tokens
  LayoutCurves<DecodeSurface> decode_;
  LayoutCurves<SizeCurve> prefill_;
  std::optional<SizeCurve> allreduce_;      // nothing: the shared ring formula
  std::optional<SizeCurve> small_kernels_;  // nothing: CostTerms::PerLayerSmallKernelsSeconds
  double layers_, kv_heads_per_rank_, experts_per_token_;
  std::vector<std::string> caveats_, assumed_;
};

// What the profile's rows leave to estimates for this model: no [small_kernels] rows
// (appended to `assumed`), a quick profile (kvprobe --quick, [meta] mode: quick),
// [small_kernels] rows timed back to back rather than among the GEMMs (kvprobe 0.3.5 and
// earlier), decode rows that start above one sequence's KV heads per rank (appended to
// `caveats`).
void AddCoverageNotes(const Profile& profile, const ModelSpec& model, const GpuSpec& gpu,
                      int64_t tensor_parallel, const ProfileCurves& curves,
                      std::vector<std::string>* caveats, std::vector<std::string>* assumed) {
  // kvprobe's quick grids and warm-ups: tools/kvprobe/cuda/gemm_probe.cu (ProbeGemm) and
  // attention_probe.cu.
  if (const auto mode = profile.meta().find(std::string(schema::meta::kMode));
      mode != profile.meta().end() && mode->second == "quick") {
    caveats->push_back(fmt::format(
        "timing.profile {}: a quick profile ({}: quick, kvprobe --quick), kvprobe's smoke test: "
        "its GEMMs go up to 1,024 tokens only (larger batches and prompt chunks are "
        "extrapolated), its decode attention covers batches 1, 16 and 64 at contexts of 512 and "
        "2,048 tokens, its prefill attention prompts of 512 and 2,048 tokens, and its kernels "
        "were warmed for less time than a full profile's (0.3 s of GEMM load rather than 1.5 s), "
        "so compute-bound ones may have run at a higher clock than a loaded GPU keeps; measure a "
        "full profile (tools/kvprobe/calibrate.sh) for numbers to rely on",
        profile.path(), schema::meta::kMode));
  }
  if (!curves.small_kernels) {
    assumed->push_back(fmt::format(
        "timing.profile {}: no [small_kernels] rows for {} at tensor_parallel {}; each layer's "
        "norms, RoPE, KV write and activation are timed as the bytes they move at the {} card's "
        "memory efficiency, not measured",
        profile.path(), model.name, tensor_parallel, gpu.name));
  } else if (const ProfileTable* t = profile.Find(schema::section::kSmallKernels);
             t != nullptr && !t->HasColumn(schema::column::kWarmTimeUs)) {
    caveats->push_back(fmt::format(
        "timing.profile {}: its [small_kernels] rows time the kernels back to back, their inputs "
        "in the L2 (no {} column, an earlier kvprobe's); in a pass the GEMMs between them evict "
        "those inputs, which on an H200 took about 4 us a layer more at 1-64 tokens "
        "(models/profiles/H200/README.md)",
        profile.path(), schema::column::kWarmTimeUs));
  }
  const double units = static_cast<double>(model.KvHeadsPerRank(tensor_parallel));
  if (const double least = curves.decode.contiguous->MinSequenceHeads(); units < least) {
    caveats->push_back(fmt::format(
        "timing.profile {}: its [decode_attention] rows start at {} sequence-heads (batch x "
        "kv_heads), and one sequence of {} at tensor_parallel {} is {}: decode batches of fewer "
        "than {} sequences take the time of {} (an upper bound; kvprobe 0.3.0 and later also "
        "time one sequence with 4, 2 and 1 KV heads)",
        profile.path(), least, model.name, tensor_parallel, units, least / units, least));
  }
}

}  // namespace

std::unique_ptr<ExecutionTimeModel> NewProfiledModel(const Profile& profile, const ModelSpec& model,
                                                     const GpuSpec& gpu, int64_t tensor_parallel,
                                                     const ProfiledConfig& config,
                                                     const CostConfig& costs) {
  KVSIM_CHECK(tensor_parallel >= 1, "tensor_parallel must be positive");
  std::vector<std::string> caveats;
  const std::string& measured_on = profile.MetaText(std::string(schema::meta::kGpuName));
  if (gpu.device_names.empty()) {
    caveats.push_back(fmt::format(
        "timing.profile {}: measured on '{}'; the {} card lists no device_names, so that this is "
        "the same GPU was not checked",
        profile.path(), measured_on, gpu.name));
  } else if (std::find(gpu.device_names.begin(), gpu.device_names.end(), measured_on) ==
             gpu.device_names.end()) {
    throw InputError(fmt::format(
        "timing.profile {}: measured on '{}', but the {} card's device_names are '{}'; use a "
        "profile measured on this GPU (tools/kvprobe/calibrate.sh), or add the name to the card "
        "if it is the same GPU",
        profile.path(), measured_on, gpu.name, fmt::join(gpu.device_names, "', '")));
  }
  ProfileCurves curves = ReadProfileCurves(profile, model, gpu, tensor_parallel);
  std::vector<std::string> small_note;
  AddCoverageNotes(profile, model, gpu, tensor_parallel, curves, &caveats, &small_note);
  if (tensor_parallel > 1) {
    if (curves.allreduce) {
      if (!curves.allreduce->estimate.empty()) caveats.push_back(curves.allreduce->estimate);
      if (!curves.allreduce->in_graph) {
        caveats.push_back(fmt::format(
            "timing.profile {}: its [{}] rows time all-reduces back to back (no {} column, an "
            "earlier kvprobe's); inside a forward pass each one waits for the kernel before it, "
            "which on 2 x H200 took -2.9 to +5.4 us more per all-reduce than back to back "
            "(models/profiles/H200/README.md)",
            profile.path(), schema::section::kAllreduce, schema::column::kInGraphUs));
      }
    } else if (gpu.link_bandwidth_bytes_per_s > 0) {
      caveats.push_back(fmt::format(
          "timing.profile {}: all-reduce on {} GPUs is not in the profile (no [{}] rows); it is "
          "the ring formula at the {} card's link bandwidth (timing.allreduce)",
          profile.path(), tensor_parallel, schema::section::kAllreduce, gpu.name));
    } else {
      throw InputError(fmt::format(
          "timing.profile {}: no [{}] rows for {} GPUs, and the {} card has no GPU-GPU link "
          "bandwidth to estimate them",
          profile.path(), schema::section::kAllreduce, tensor_parallel, gpu.name));
    }
  }
  // The efficiencies the profile does not measure: the bandwidth of the small
  // per-layer kernels (without [small_kernels] rows) or of an unfused engine's extra
  // bytes (beside them), and, with kRoofline, prefill
  // attention. Those the model does not use are set to 1 here, so they are neither
  // looked up nor declared assumed.
  const bool roofline_prefill =
      config.prefill_attention == ProfiledConfig::PrefillAttention::kRoofline;
  const RooflineConfig wanted{
      .gemm_efficiency = 1,
      .memory_efficiency =
          curves.small_kernels && costs.engine.fused_kernels ? 1 : config.memory_efficiency,
      .attention_prefill_efficiency = roofline_prefill ? config.attention_prefill_efficiency : 1,
      .attention_decode_efficiency = 1};
  std::vector<std::string> assumed;
  const RooflineConfig resolved = ResolveEfficiencies(wanted, gpu, &assumed);
  for (std::string& note : small_note) assumed.push_back(std::move(note));
  ProfiledConfig c = config;
  c.memory_efficiency = resolved.memory_efficiency;
  if (roofline_prefill) c.attention_prefill_efficiency = resolved.attention_prefill_efficiency;
  if (costs.paged && costs.paged_kernel == PagedKernel::kProfiled) {
    caveats.push_back(fmt::format(
        "kv_cache.paged_kernel: profiled times kvprobe's own paged kernel ({}), not a serving "
        "engine's",
        profile.path()));
  }
  return std::make_unique<ProfiledModel>(std::move(curves), model, gpu, tensor_parallel, c, costs,
                                         std::move(caveats), std::move(assumed));
}

}  // namespace kvsim
