// Cost terms shared by every timing model; the formulas are stated in cost_terms.h.
#include "sim/timing/cost_terms.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "sim/core/check.h"

namespace kvsim {
namespace {

// Generic defaults for a GPU card that does not state its own (each is then listed
// as an assumption): NCCL ring over NVLink, fitted to the DGX-A100 small-message
// latencies of nccl-tests issue #123 (10 us on 2 GPUs, 33.7 us on 8: base 6 us +
// 2 (n-1) x 2 us), and a bus efficiency of 0.7, between the 0.68 measured on
// 8 x A100 (nccl-tests issues #149, #178: ~200-208 of 300 GB/s) and the 0.82 of
// 8 x H100 with the ring algorithm (nccl-tests issue #212: 370 of 450 GB/s).
constexpr double kDefaultBaseLatencyS = 6e-6;
constexpr double kDefaultHopLatencyS = 2e-6;
constexpr double kDefaultBusEfficiency = 0.7;

// Paged kernels against the contiguous one (sources in PagedDecodeSeconds).
// FlashAttention-2/3 with a block table: one indirect block lookup per KV tile;
// close to its non-paged decode, which is memory-bound (vAttention paper section
// 3; vLLM PR #3010 measured FlashAttention 10+% faster than vLLM's own kernel).
// Modelled as `block_overhead_tokens` extra tokens of KV traffic per block.
constexpr double kFlashBlockOverheadTokens = 2.0;       // assumed: 12.5% at 16, 0.8% at 256
constexpr double kFlashInferBlockOverheadTokens = 1.0;  // assumed: 6% at 16 (page size 1 works)
// Paged prefill, upper bounds published in the vAttention paper (section 3, Fig. 2:
// FA2 with a 256-token block table and FlashInfer with 16-token pages, against
// their non-paged kernels, prompts 1K-32K): up to 37% and 42% slower.
constexpr double kFlashPrefillSlowdown = 1.37;
constexpr double kFlashInferPrefillSlowdown = 1.42;
// vLLM's own paged_attention decode kernel (v0.2.7, the vAttention paper's
// baseline) computes every query head of a GQA group separately, in FP32 on CUDA
// cores: per KV token and layer 4 x g x head_dim FLOPs against 4 x head_dim bytes of
// K and V, so g FLOP per byte. Where g is large, that arithmetic bounds it. Its
// fraction of the FP32 peak is set from the paper's one stated point, 2.85x slower
// than FlashAttention for Yi-6B (g = 8) at batch 16 x 16K on an A100, with
// contiguous decode at 0.8 of the card's bandwidth:
//   2.85 = 8 x 2.039e12 x 0.8 / (19.5e12 x e)  ->  e = 0.235.
// The paper's other figures (1.45x for Llama-3-8B at TP 2, g = 4; 2.6-2.85x for
// Yi-34B, g = 7) are then predictions, checked by the fidelity benchmark.
constexpr double kVllmScalarEfficiency = 0.235;
// vLLM's kernel is "much slower" at blocks of 64 and 128 than 16 (vAttention
// paper, Fig. 3 of the artifact); the size is not published: assumed +25% per
// doubling above 16 tokens.
constexpr double kVllmSlowdownPerDoubling = 0.25;

}  // namespace

EngineConfig EnginePresetDefaults(EngineConfig::Preset preset) {
  EngineConfig e;
  e.preset = preset;
  switch (preset) {
    case EngineConfig::Preset::kVllmV1:
      // vLLM V1 (0.8 to 0.19): scheduling overlaps the GPU (async scheduling, on in
      // the 0.19 ground-truth runs), a persistent batch keeps block tables on the
      // GPU (appending new blocks only), CUDA graphs replay decode batches (vLLM
      // blog "vLLM V1: A Major Upgrade", 2025-01-27). What is left between steps is
      // assumed to be ~0.2 ms (xLLM's async-scheduling note measures ~200 us of
      // device idle between steps). vLLM's request timestamps start after
      // tokenization, so nothing is added before or after a request.
      e.per_iteration_s = 2e-4;
      e.kernel_gap_s = 1e-6;  // assumed: ~1 us per kernel boundary inside a CUDA graph
      break;
    case EngineConfig::Preset::kVllmV0:
      // vLLM V0 (0.2 to 0.5): synchronous scheduling, so the CPU's share of a step
      // adds to the GPU's. Vidur's profile of that engine family on an A100
      // (microsoft/vidur, data/profiling/a100/cpu_overheads.csv: Llama-2-7B, TP 1,
      // batches 8-64) measured, per step, scheduling + sampling + input preparation
      // + output processing (means) of 2.98 ms at batch 8 rising to 12.56 ms at 64; a
      // least-squares line through the eight batches gives 2.02 ms + 0.171 ms per
      // sequence: output processing (detokenizing, appending each sequence's token)
      // is most of the per-sequence part. Stated at the reference core as measured
      // x 0.81, the A100 card's host speed (the profile's host is taken to be such a
      // server: assumed), so an A100 run charges what was measured. vLLM's v0.6.0
      // performance blog (2024-09-05) agrees in size: 29% of a Llama-3-8B step on an
      // H100 went to scheduling and input preparation. Block tables were rebuilt in
      // Python each step, padded to the longest sequence: assumed 0.1 us per entry
      // (the vAttention paper puts block-table preparation at 10% of a decode
      // iteration after vLLM's fix).
      e.per_iteration_s = 1.64e-3;
      e.per_seq_s = 1.39e-4;
      e.block_table_entry_s = 1e-7;
      e.kernel_gap_s = 1e-6;
      break;
    case EngineConfig::Preset::kEager:
      // An engine without CUDA graphs or fused kernels (a Hugging Face transformers
      // style loop, research prototypes): a
      // decoder layer's ~35 PyTorch operators are dispatched from Python at roughly
      // 10 us each (assumed) on the reference host; the pass takes the longer of
      // those launches and the GPU's kernels; 2 ms per step of scheduling (assumed).
      // Each operator is its own kernel on the GPU too (no fusion), each paying a
      // kernel boundary: 35 kernels per layer where a fused engine runs 10.
      e.per_iteration_s = 2e-3;
      e.cuda_graphs = false;
      e.launch_per_layer_s = 3.5e-4;
      e.kernels_per_layer = 35;
      e.fused_kernels = false;
      e.kernel_gap_s = 2e-6;
      break;
    case EngineConfig::Preset::kNone:
      break;  // GPU kernels only
  }
  return e;
}

EngineConfig EngineOnHost(EngineConfig engine, double speed, std::string host) {
  KVSIM_CHECK(speed > 0, "a host CPU speed must be positive");
  for (double* cpu_s : {&engine.per_iteration_s, &engine.per_seq_s, &engine.per_prefill_token_s,
                        &engine.request_arrival_s, &engine.request_finish_s,
                        &engine.block_table_entry_s, &engine.launch_per_layer_s}) {
    *cpu_s /= speed;
  }
  engine.host_cpu_speed = speed;
  engine.host_cpu = std::move(host);
  return engine;
}

double GemmFlopsPerSecond(const ModelSpec& model, const GpuSpec& gpu) {
  return model.weight_dtype_bytes == 1 && gpu.fp8_flops_per_s > 0 ? gpu.fp8_flops_per_s
                                                                  : gpu.bf16_flops_per_s;
}

CostTerms::CostTerms(const ModelSpec& model, const GpuSpec& gpu, int64_t tp,
                     const CostConfig& config, double memory_efficiency)
    : engine_(config.engine),
      paged_kernel_(config.paged_kernel),
      paged_(config.paged),
      gpu_name_(gpu.name) {
  const AllreduceConfig& allreduce = config.allreduce;
  KVSIM_CHECK(tp >= 1, "tensor_parallel must be positive");
  const auto d = [](int64_t v) { return static_cast<double>(v); };
  tp_ = d(tp);
  layers_ = d(model.num_layers);
  dtype_bytes_ = d(model.dtype_bytes);
  link_bytes_per_s_ = gpu.link_bandwidth_bytes_per_s;
  const GpuSpec::Efficiencies& e = gpu.efficiency;
  latency_from_card_ = e.allreduce_base_latency_s >= 0 && e.allreduce_hop_latency_s >= 0;
  efficiency_from_card_ = e.allreduce_bus_efficiency > 0;
  fit_max_gpus_ = e.allreduce_fit_max_gpus;
  card_allreduce_used_ = (latency_from_card_ && allreduce.latency_s < 0) ||
                         (efficiency_from_card_ && !(allreduce.bus_efficiency > 0));
  latency_generic_ = allreduce.latency_s < 0 && !latency_from_card_;
  efficiency_generic_ = !(allreduce.bus_efficiency > 0) && !efficiency_from_card_;
  const double base = latency_from_card_ ? e.allreduce_base_latency_s : kDefaultBaseLatencyS;
  const double hop = latency_from_card_ ? e.allreduce_hop_latency_s : kDefaultHopLatencyS;
  allreduce_latency_s_ =
      allreduce.latency_s >= 0 ? allreduce.latency_s : base + 2.0 * (tp_ - 1.0) * hop;
  bus_efficiency_ =
      allreduce.bus_efficiency > 0
          ? allreduce.bus_efficiency
          : (efficiency_from_card_ ? e.allreduce_bus_efficiency : kDefaultBusEfficiency);
  const double kv_heads = d(model.KvHeadsPerRank(tp));
  const double heads = d(model.num_heads) / tp_;
  const double hd = d(model.head_dim);
  per_layer_bytes_per_token_ =
      dtype_bytes_ *
      (8.0 * d(model.hidden_size) + 2.0 * (heads + kv_heads) * hd +
       3.0 * d(model.experts_per_token) * d(model.ffn_size) / tp_ + 4.0 * kv_heads * hd);
  if (!engine_.fused_kernels) {
    const double b = dtype_bytes_, h = d(model.hidden_size), q = heads * hd, k = kv_heads * hd;
    const double f = d(model.experts_per_token) * d(model.ffn_size) / tp_;
    const double unfused = 2.0 * (28.0 + 4.0 * b) * h + 2.0 * 3.0 * b * h + 10.0 * b * (q + k) +
                           2.0 * b * q + 4.0 * b * k + 5.0 * b * f;
    unfused_extra_bytes_per_token_ = std::max(0.0, unfused - per_layer_bytes_per_token_);
  }
  hbm_effective_ = gpu.hbm_bandwidth_bytes_per_s * memory_efficiency;
  heads_per_rank_ = heads;
  bf16_flops_ = gpu.bf16_flops_per_s;
  activation_bytes_per_token_ = d(model.hidden_size) * dtype_bytes_;
  logit_bytes_per_token_ = d(model.vocab_size) * dtype_bytes_;
  experts_ = d(model.num_experts);
  experts_per_token_ = d(model.experts_per_token);
  head_dim_ = hd;
  fp32_flops_ = gpu.fp32_flops_per_s;
}

double CostTerms::AllreduceSeconds(double bytes) const {
  if (tp_ <= 1) return 0;
  return allreduce_latency_s_ +
         2.0 * (tp_ - 1.0) / tp_ * bytes / (link_bytes_per_s_ * bus_efficiency_);
}

double CostTerms::LayerAllreduceSeconds(double tokens) const {
  if (tokens <= 0) return 0;
  return kAllreducesPerLayer * AllreduceSeconds(AllreduceBytes(tokens));
}

std::vector<double> CostTerms::PassAllreduceBytes(double tokens, double logit_tokens) const {
  std::vector<double> bytes;
  if (tp_ <= 1) return bytes;
  if (tokens > 0) bytes.push_back(AllreduceBytes(tokens));
  if (logit_tokens > 0) bytes.push_back(0.5 * logit_tokens * logit_bytes_per_token_);
  return bytes;
}

double CostTerms::PrefillFlopSeconds(double pairs, double efficiency) const {
  return 4.0 * heads_per_rank_ * head_dim_ * pairs / (bf16_flops_ * efficiency);
}

double CostTerms::ExpertsRead(double tokens) const {
  if (experts_ <= 1) return 1.0;
  return experts_ * (1.0 - std::pow(1.0 - experts_per_token_ / experts_, tokens));
}

int64_t CostTerms::KernelsPerLayer() const {
  return engine_.kernels_per_layer > 0 ? engine_.kernels_per_layer : kKernelsPerLayer;
}

double CostTerms::PerLayerKernelsSeconds(double tokens) const {
  return SmallKernelBytesPlusGapsSeconds(tokens, kKernelsPerLayer);
}

double CostTerms::PerLayerSmallKernelsSeconds(double tokens) const {
  return SmallKernelBytesPlusGapsSeconds(tokens, kSmallKernelsPerLayer);
}

double CostTerms::SmallKernelBytesPlusGapsSeconds(double tokens, int gaps) const {
  if (tokens <= 0) return 0;
  return tokens * per_layer_bytes_per_token_ / hbm_effective_ + gaps * engine_.kernel_gap_s +
         BeyondFusedSeconds(tokens);
}

double CostTerms::BeyondFusedSeconds(double tokens) const {
  return tokens > 0 ? UnfusedExtraSeconds(tokens) + ExtraKernelGapsSeconds() : 0.0;
}

double CostTerms::ExtraKernelGapsSeconds() const {
  return static_cast<double>(std::max<int64_t>(0, KernelsPerLayer() - kKernelsPerLayer)) *
         engine_.kernel_gap_s;
}

double CostTerms::UnfusedExtraSeconds(double tokens) const {
  return tokens > 0 ? tokens * unfused_extra_bytes_per_token_ / hbm_effective_ : 0.0;
}

double CostTerms::PagedDecodeSeconds(double contiguous_s, const CostInputs& in) const {
  const double block = static_cast<double>(std::max<int64_t>(in.block_tokens, 1));
  switch (paged_kernel_) {
    case PagedKernel::kFlashPaged:
      return contiguous_s * (1.0 + kFlashBlockOverheadTokens / block);
    case PagedKernel::kFlashInferPaged:
      return contiguous_s * (1.0 + kFlashInferBlockOverheadTokens / block);
    case PagedKernel::kVllmPaged: {
      // FP32 floor: 4 x heads_per_rank x head_dim FLOPs per KV token per layer.
      double t = contiguous_s;
      if (fp32_flops_ > 0) {
        const double flops = 4.0 * heads_per_rank_ * head_dim_ * in.decode_context;
        t = std::max(t, flops / (fp32_flops_ * kVllmScalarEfficiency));
      }
      const double doublings = std::max(0.0, std::log2(block / 16.0));
      return t * (1.0 + kVllmSlowdownPerDoubling * doublings);
    }
    case PagedKernel::kProfiled:
      break;
  }
  KVSIM_CHECK(false, "the profiled paged kernel is timed by the profiled model");
}

double CostTerms::PagedPrefillSeconds(double contiguous_s) const {
  switch (paged_kernel_) {
    case PagedKernel::kFlashPaged:
      return contiguous_s * kFlashPrefillSlowdown;
    case PagedKernel::kFlashInferPaged:
      return contiguous_s * kFlashInferPrefillSlowdown;
    case PagedKernel::kVllmPaged:
      // vLLM <= 0.5 ran prompt attention on the contiguous prompt tensors
      // (xformers / FlashAttention) and only then wrote the KV into blocks.
      return contiguous_s;
    case PagedKernel::kProfiled:
      break;
  }
  KVSIM_CHECK(false, "the profiled paged kernel is timed by the profiled model");
}

double CostTerms::IterationSeconds(double gpu_s, const CostInputs& in) const {
  // Eager launches run ahead of the GPU (CUDA kernel launches return before the
  // kernel runs: CUDA C++ Programming Guide, "Asynchronous Concurrent Execution"), so
  // the pass is bound by whichever is slower; PyTorch's "GPT, Fast" blog (2023-11-30)
  // shows eager decoding of a 7B model bound by that CPU overhead.
  const double forward_s =
      engine_.cuda_graphs ? gpu_s : std::max(gpu_s, layers_ * engine_.launch_per_layer_s);
  double cpu_s = engine_.per_iteration_s + engine_.per_seq_s * static_cast<double>(in.num_seqs) +
                 engine_.per_prefill_token_s * in.prefill_tokens;
  if (in.layout == AttentionLayout::kPaged && in.block_tokens > 0) {
    const double width = static_cast<double>(CeilDiv(in.max_context, in.block_tokens));
    cpu_s += engine_.block_table_entry_s * static_cast<double>(in.num_seqs) * width;
  }
  return forward_s + cpu_s;
}

std::string ConfiguredEngineTerms(const EngineConfig& engine) {
  std::string out;
  for (const auto& [key, value] : engine.configured) {
    if (std::find(engine.fitted.begin(), engine.fitted.end(), key) != engine.fitted.end()) {
      continue;  // the calibration's value replaced the config's
    }
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", key, value);
  }
  return out;
}

std::string CostTerms::EngineAssumption() const {
  std::string fitted;
  for (const std::string& f : engine_.fitted) fitted += (fitted.empty() ? "" : ", ") + f;
  const std::string configured = ConfiguredEngineTerms(engine_);
  const bool several = configured.find(", ") != std::string::npos;
  // Where the terms come from: the preset's sourced estimates unless fitted or set.
  std::string whence;
  if (!fitted.empty()) {
    whence = fmt::format("has {} fitted to measured runs (timing.calibration)", fitted);
  }
  if (!configured.empty()) {
    whence += fmt::format("{}has {} as the config sets {}", whence.empty() ? "" : "; ", configured,
                          several ? "them" : "it");
  }
  const bool none = engine_.preset == EngineConfig::Preset::kNone;
  if (whence.empty()) {
    whence = none ? "charges no engine CPU time at all: an idealisation, not an estimate"
                  : "is a sourced estimate, not fitted to this engine";
  } else {
    whence += none ? "; the other terms are the preset's zeros"
                   : "; the other terms are the preset's sourced estimates";
  }
  return fmt::format(
      "timing.engine: preset {} (per iteration {:.4g} ms, per sequence {:.4g} us, per prefill "
      "token {:.4g} us, block-table entry {:.4g} us, kernel gap {:.4g} us{}) {}",
      EnginePresetName(engine_.preset), engine_.per_iteration_s * 1e3, engine_.per_seq_s * 1e6,
      engine_.per_prefill_token_s * 1e6, engine_.block_table_entry_s * 1e6,
      engine_.kernel_gap_s * 1e6,
      (engine_.cuda_graphs ? std::string()
                           : fmt::format(", eager launch {:.4g} us per layer, {} kernels per layer",
                                         engine_.launch_per_layer_s * 1e6, KernelsPerLayer())) +
          (engine_.fused_kernels ? "" : ", unfused operators"),
      whence);
}

std::vector<std::string> CostTerms::Assumptions() const {
  std::vector<std::string> out;
  out.push_back(EngineAssumption());
  if (engine_.host_cpu == kHostFromDeployment) {
    out.push_back(fmt::format(
        "timing.engine: the CPU terms above are the preset's (or config's) divided by the host "
        "CPU's single-thread speed {:g} relative to a Xeon Platinum 8480C core, as "
        "deployment.host_cpu_speed sets it",
        engine_.host_cpu_speed));
  } else if (!engine_.host_cpu.empty() && engine_.host_cpu_speed == 1) {
    out.push_back(fmt::format(
        "timing.engine: the CPU terms are stated for a Xeon Platinum 8480C core, the host "
        "assumed ({}); deployment.host_cpu_speed sets another host's single-thread speed",
        engine_.host_cpu));
  } else if (!engine_.host_cpu.empty()) {
    out.push_back(fmt::format(
        "timing.engine: the CPU terms above are the preset's (or config's) divided by the host "
        "CPU's single-thread speed {:g} relative to a Xeon Platinum 8480C core ({}), an "
        "estimate from published single-thread scores, not measured",
        engine_.host_cpu_speed, engine_.host_cpu));
  }
  if (tp_ > 1 && uses_ring_ && (latency_generic_ || efficiency_generic_)) {
    out.push_back(fmt::format(
        "timing.allreduce: the {} card states no NCCL {}; generic NVLink values are used "
        "(latency {:g} us, bus efficiency {:g})",
        gpu_name_,
        latency_generic_ && efficiency_generic_ ? "latency or bus efficiency"
        : latency_generic_                      ? "latency"
                                                : "bus efficiency",
        allreduce_latency_s_ * 1e6, bus_efficiency_));
  }
  if (tp_ > 1 && uses_ring_ && card_allreduce_used_ && fit_max_gpus_ > 0 && tp_ > fit_max_gpus_) {
    out.push_back(fmt::format(
        "timing.allreduce: the {} card's NCCL terms were measured on up to {:g} GPUs; at tensor "
        "parallelism {:g} they are extrapolated (latency base + 2 (n-1) hop = {:g} us, bus "
        "efficiency {:g})",
        gpu_name_, fit_max_gpus_, tp_, allreduce_latency_s_ * 1e6, bus_efficiency_));
  }
  if (tp_ > 1) {
    out.push_back(
        "timing: the logits' all-gather across tensor-parallel ranks is timed as an all-reduce "
        "of half its bytes (the same bytes through each GPU of a ring); no all-gather was "
        "measured");
  }
  if (paged_ && paged_kernel_ != PagedKernel::kProfiled) {
    out.push_back(fmt::format(
        "kv_cache.paged_kernel: {} is timed from published figures against the contiguous kernel "
        "(decode {}; prefill {}), not measured on this GPU",
        PagedKernelName(paged_kernel_),
        paged_kernel_ == PagedKernel::kVllmPaged
            ? "bounded by FP32 arithmetic at 0.235 of the card's FP32 peak, +25% per block-size "
              "doubling above 16"
            : fmt::format("+{:g} tokens of KV traffic per block",
                          paged_kernel_ == PagedKernel::kFlashPaged
                              ? kFlashBlockOverheadTokens
                              : kFlashInferBlockOverheadTokens),
        paged_kernel_ == PagedKernel::kVllmPaged    ? "contiguous"
        : paged_kernel_ == PagedKernel::kFlashPaged ? "x1.37, the paper's upper bound"
                                                    : "x1.42, the paper's upper bound"));
    if (paged_kernel_ == PagedKernel::kVllmPaged && !(fp32_flops_ > 0)) {
      out.push_back(fmt::format(
          "kv_cache.paged_kernel: vllm_paged: the {} card states no fp32_flops_per_s, so its FP32 "
          "bound is not applied (decode is timed as the contiguous kernel, +25% per block-size "
          "doubling above 16)",
          gpu_name_));
    }
  }
  return out;
}

}  // namespace kvsim
