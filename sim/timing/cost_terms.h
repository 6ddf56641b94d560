// Cost terms every timing model shares: the serving engine's work outside the GPU
// kernels, tensor-parallel all-reduces, the small per-layer kernels (norms, RoPE,
// activation, KV writes), paged-attention kernels against contiguous ones, and how
// CPU and GPU time combine into one iteration. The roofline and profiled models
// differ only in how they time GEMMs and contiguous attention; everything here is
// written once.
//
// Every default names its source; terms that no measurement backs are listed by
// CostTerms::Assumptions() and printed with every result.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sim/core/enum_table.h"
#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/kvcache/kv_cache_manager.h"

namespace kvsim {

// The tensor-core rate the linear layers' GEMMs run at, FLOP/s: the GPU's fp8 rate
// when the weights are fp8 (weight_dtype_bytes 1) and the card gives one (W8A8: fp8
// weights and activations, as vLLM's fp8 quantization on Hopper and Ada); else the
// bf16 rate (16-bit weights, or fp8 weights dequantized to 16 bits, W8A16). The
// embeddings and the LM head stay 16-bit either way.
double GemmFlopsPerSecond(const ModelSpec& model, const GpuSpec& gpu);

// The serving engine's costs outside the GPU kernels (timing.engine). A preset
// fills every field; config keys override single fields.
struct EngineConfig {
  enum class Preset { kVllmV1, kVllmV0, kEager, kNone };
  Preset preset = Preset::kVllmV1;
  // Exposed CPU time per iteration between GPU forward passes: scheduling, input
  // preparation, sampling, output processing that the engine does not overlap.
  double per_iteration_s = 0;
  double per_seq_s = 0;            // per sequence in the batch, per iteration
  double per_prefill_token_s = 0;  // per prompt token computed (input preparation)
  // Per request before it reaches the scheduler (API server, tokenization): delays
  // its admission, so it adds to TTFT.
  double request_arrival_s = 0;
  double request_finish_s = 0;  // per request after its last token (detokenize, respond)
  // Paged layouts: CPU cost per block-table entry prepared each iteration, for a
  // table padded to the widest sequence (seqs x ceil(max_context / block_tokens)).
  double block_table_entry_s = 0;
  // true: the forward pass replays as CUDA graphs (launch cost amortized). false:
  // kernels are launched one by one from the CPU; launch_per_layer_s is that CPU
  // time per layer. Launches are asynchronous (the CPU queues kernels and runs ahead
  // until the step's sampling waits for the GPU), so the forward pass takes the
  // longer of the CPU's launching and the GPU's kernels, not their sum: a GPU faster
  // than the launches waits for them (CPU-bound), a slower one hides them.
  bool cuda_graphs = true;
  double launch_per_layer_s = 0;
  // GPU time lost at each kernel boundary (launch latency inside a graph, ramp-up
  // and tail of small kernels), charged for KernelsPerLayer() kernels per layer by the
  // roofline; the profiled model charges it only to the kSmallKernelsPerLayer small
  // kernels it estimates from their bytes and to the kernels beyond kKernelsPerLayer
  // (its measured rows hold their own boundaries).
  double kernel_gap_s = 0;
  // Kernels the engine runs per decoder layer, each charged kernel_gap_s; 0: a fused
  // engine's kKernelsPerLayer. An engine running PyTorch operators one by one (eager)
  // runs one kernel per operator, so more kernels than a fused engine.
  int64_t kernels_per_layer = 0;
  // true: the small kernels are fused (one add+RMSNorm, one RoPE, one SiLU-and-mul
  // kernel), moving each activation once. false: each PyTorch operator runs alone and
  // reads and writes whole tensors (RMSNorm in FP32, RoPE by halves and cat, separate
  // SiLU and multiply): CostTerms::UnfusedExtraBytesPerToken more per token and layer.
  bool fused_kernels = true;
  // The host CPU the engine runs on: its single-thread speed relative to the
  // reference core every CPU term above is stated for (a Xeon Platinum 8480C, the
  // DGX H100's), and its name ("" only for an engine BuildSimulation did not place:
  // fixed timing, or one built in code). BuildSimulation divides the CPU terms (all
  // but kernel_gap_s) by the speed: dispatching Python and CUDA launches is
  // single-thread work.
  double host_cpu_speed = 1;
  std::string host_cpu;
  // The fields above that `kvsim fit` fitted to measured runs (timing.calibration),
  // by key name, e.g. "per_seq_s"; the others keep the preset's sourced values.
  std::vector<std::string> fitted;
  // The fields the config (or --set, or a compare entry's set:) states over the
  // preset, by key name with the value as written, e.g. {"per_iteration_s", "0.001"}.
  std::vector<std::pair<std::string, std::string>> configured;
};

// The engine terms the config sets and no calibration replaced, as "key value, ..."
// (empty when none).
std::string ConfiguredEngineTerms(const EngineConfig& engine);

// timing.engine.preset.
inline constexpr auto kEnginePresets =
    MakeEnumTable<EngineConfig::Preset>({{"vllm_v1", EngineConfig::Preset::kVllmV1},
                                         {"vllm_v0", EngineConfig::Preset::kVllmV0},
                                         {"eager", EngineConfig::Preset::kEager},
                                         {"none", EngineConfig::Preset::kNone}});
// kEnginePresets' name, as a C string (kept for its many call sites).
inline const char* EnginePresetName(EngineConfig::Preset preset) {
  return kEnginePresets.CName(preset);
}

// The defaults of a preset (sources in cost_terms.cc).
EngineConfig EnginePresetDefaults(EngineConfig::Preset preset);

// `engine` on a host whose CPU runs at `speed` of the reference core, named `host`:
// every CPU term divided by `speed` (kernel_gap_s, GPU time, unchanged).
// REQUIRES: speed > 0.
EngineConfig EngineOnHost(EngineConfig engine, double speed, std::string host);
// EngineOnHost's `host` for a speed the config set (deployment.host_cpu_speed).
inline constexpr std::string_view kHostFromDeployment = "deployment.host_cpu_speed";

// Tensor-parallel all-reduce (timing.allreduce), two per layer (after attention and
// after the MLP), ring algorithm:
//   t(S) = latency_s + 2 (tp-1)/tp x S / (link_bandwidth x bus_efficiency)
// latency_s < 0 or bus_efficiency <= 0 means "the GPU card's value"
// (GpuSpec::Efficiencies allreduce_base_latency_s + 2 (n-1) allreduce_hop_latency_s,
// allreduce_bus_efficiency), else a generic NVLink value listed as an assumption.
// Profiled timing uses the profile's measured [allreduce] curve instead, when it
// has one.
struct AllreduceConfig {
  double latency_s = -1;
  double bus_efficiency = 0;
};

// Which paged-attention kernel a paged KV cache runs (kv_cache.paged_kernel).
enum class PagedKernel {
  kFlashPaged,       // FlashAttention-2/3 reading KV through a block table (vLLM V1 default)
  kFlashInferPaged,  // FlashInfer's paged (block-sparse) kernels
  kVllmPaged,        // vLLM's own paged_attention v1/v2 decode kernel (vLLM <= 0.5)
  kProfiled,         // the kvprobe profile's own measured paged kernel (profiled timing)
};
// kv_cache.paged_kernel.
inline constexpr auto kPagedKernels =
    MakeEnumTable<PagedKernel>({{"flash_paged", PagedKernel::kFlashPaged},
                                {"flashinfer_paged", PagedKernel::kFlashInferPaged},
                                {"vllm_paged", PagedKernel::kVllmPaged},
                                {"profiled", PagedKernel::kProfiled}});
// kPagedKernels' name, as a C string (kept for its many call sites).
inline const char* PagedKernelName(PagedKernel kernel) { return kPagedKernels.CName(kernel); }

// Inputs of the shared terms, one iteration.
struct CostInputs {
  double tokens = 0;          // prefill + decode query tokens
  double prefill_tokens = 0;  // prefill query tokens
  int64_t num_seqs = 0;       // sequences in the batch
  double decode_seqs = 0;     // decoding sequences
  double decode_context = 0;  // KV tokens decode attention reads (sum over sequences)
  int64_t max_context = 0;    // longest context (block-table width)
  AttentionLayout layout = AttentionLayout::kContiguous;
  int64_t block_tokens = 0;  // paged: tokens per block
};

// What a run chose for the shared terms (the builder fills it from the config).
struct CostConfig {
  EngineConfig engine = EnginePresetDefaults(EngineConfig::Preset::kVllmV1);
  AllreduceConfig allreduce;
  PagedKernel paged_kernel = PagedKernel::kFlashPaged;
  bool paged = false;  // the KV manager is paged (its kernel's terms apply)
};

class CostTerms {
 public:
  // `memory_efficiency`: the fraction of the card's bandwidth the caller's model
  // uses for streaming kernels (the per-layer kernels' bytes). REQUIRES: tp >= 1.
  CostTerms(const ModelSpec& model, const GpuSpec& gpu, int64_t tp, const CostConfig& config,
            double memory_efficiency);

  // One all-reduce of `bytes` on tp GPUs by the ring formula (0 when tp == 1).
  double AllreduceSeconds(double bytes) const;
  // What one layer all-reduces for `tokens` tokens: their activations,
  // tokens x hidden x b bytes, kAllreducesPerLayer times (after attention, after the
  // MLP).
  double AllreduceBytes(double tokens) const { return tokens * activation_bytes_per_token_; }
  static constexpr int kAllreducesPerLayer = 2;
  // kAllreducesPerLayer x AllreduceSeconds(AllreduceBytes(tokens)); 0 for no tokens.
  double LayerAllreduceSeconds(double tokens) const;
  // The collectives of one forward pass outside its layers (tp > 1), as the sizes of
  // the all-reduces that cost the same, in bytes:
  //   - the embedding's all-reduce, tokens x hidden x b: the embedding is sharded by
  //     vocabulary, each rank looks up the rows of its shard and zeros the others,
  //     and the ranks sum (vLLM's VocabParallelEmbedding);
  //   - the all-gather of the logits' vocabulary shards, logit_tokens x vocab x b bytes
  //     in all (vLLM's LogitsProcessor, as kvprobe's step passes do it), as an
  //     all-reduce of half those bytes: a ring all-gather moves (tp-1)/tp of the
  //     gathered bytes through each GPU, a ring all-reduce 2 (tp-1)/tp of its own.
  // Empty when tp == 1; no all-gather when no sequence emits a token, no all-reduce
  // without tokens.
  std::vector<double> PassAllreduceBytes(double tokens, double logit_tokens) const;
  // Causal prefill attention of one layer on one rank by its FLOPs at `efficiency`
  // of the card's bf16 peak: 4 (heads/tp) head_dim pairs / (F efficiency).
  double PrefillFlopSeconds(double pairs, double efficiency) const;
  // Per layer, per rank: the small memory-bound kernels (two fused add+RMSNorms,
  // RoPE, SiLU-and-multiply, the KV-cache write) over `tokens` tokens plus
  // kKernelsPerLayer kernel gaps, plus BeyondFusedSeconds(tokens):
  //   tokens x bytes_per_token / (B x e_mem) + 10 kernel_gap_s + beyond fused
  // bytes_per_token = b x (8 hidden + 2 (heads + kv_heads)/tp head_dim
  //                        + 3 k ffn/tp + 4 kv_heads/tp head_dim)   (k: experts per token)
  double PerLayerKernelsSeconds(double tokens) const;
  // The small kernels for a model whose other kernels come from rows timed as CUDA
  // graph replays, each launch's boundary inside its time: their bytes as above plus
  // kSmallKernelsPerLayer kernel gaps (the GEMMs' and attention's are in their rows),
  // plus BeyondFusedSeconds(tokens).
  double PerLayerSmallKernelsSeconds(double tokens) const;
  // What this engine adds per layer and rank to a fused engine's kernels (kvprobe's
  // rows are fused kernels too): UnfusedExtraSeconds(tokens) + ExtraKernelGapsSeconds();
  // 0 without tokens and for a fused engine of kKernelsPerLayer kernels.
  double BeyondFusedSeconds(double tokens) const;
  // Without fused kernels (EngineConfig::fused_kernels false), the bytes per token and
  // layer the unfused operators move beyond the fused kernels' (b: activation bytes;
  // H hidden, Q = heads/tp head_dim, K = kv_heads/tp head_dim, F = k ffn/tp):
  //   two RMSNorms in FP32: to-FP32 (b+4), pow (8), mean (4), scale (8), to-dtype (4+b),
  //     weight (2b): 2 (28 + 4b) H;  two residual adds: 2 x 3b H;
  //   RoPE on q and k: neg (b), cat (2b), x cos (2b), x sin (2b), add (3b): 10b (Q + K);
  //   attention output made contiguous: 2b Q;  KV write into a preallocated cache:
  //   4b K;  SiLU (2b), mul (3b): 5b F
  // minus the fused bytes above (b (8 H + 2 (Q + K) + 3 F + 4 K)); 0 when fused.
  // (Operator by operator as Hugging Face transformers' eager Llama layer runs them,
  // but for its cache, which concatenates the whole KV each step: not modelled.)
  double UnfusedExtraBytesPerToken() const { return unfused_extra_bytes_per_token_; }
  // Those bytes over `tokens` tokens at the effective bandwidth, per layer and rank.
  double UnfusedExtraSeconds(double tokens) const;
  // The kernel gaps of the kernels an engine runs per layer beyond a fused engine's
  // kKernelsPerLayer: max(0, KernelsPerLayer() - kKernelsPerLayer) x kernel_gap_s.
  double ExtraKernelGapsSeconds() const;

  // MoE: the distinct experts `tokens` tokens touch in expectation with top-k routing
  // over E experts, E (1 - (1 - k/E)^tokens); 1 for dense models.
  double ExpertsRead(double tokens) const;

  // Paged decode attention of one layer from the contiguous time `contiguous_s` of
  // the same work (see cost_terms.cc for each kernel's curve and its source).
  double PagedDecodeSeconds(double contiguous_s, const CostInputs& in) const;
  // Paged prefill attention of one layer from the contiguous time.
  double PagedPrefillSeconds(double contiguous_s) const;

  // The iteration from the GPU time of the forward pass (all layers + LM head):
  //   forward + per_iteration + per_seq x seqs
  //   + per_prefill_token x prefill_tokens + block table (paged)
  // forward = gpu with CUDA graphs, else max(gpu, layers x launch_per_layer_s).
  double IterationSeconds(double gpu_s, const CostInputs& in) const;

  // Sentences naming each term this run uses that no measurement backs.
  // The engine terms and where each comes from: the preset's sourced estimates,
  // fitted (timing.calibration) or set by the config.
  std::string EngineAssumption() const;
  std::vector<std::string> Assumptions() const;

  const EngineConfig& engine() const { return engine_; }
  PagedKernel paged_kernel() const { return paged_kernel_; }
  double allreduce_latency_s() const { return allreduce_latency_s_; }
  double bus_efficiency() const { return bus_efficiency_; }

  // Kernels per layer charged a kernel gap: two norms, QKV, RoPE, KV write,
  // attention, O, gate_up, activation, down.
  static constexpr int kKernelsPerLayer = 10;
  // Of those, the small memory-bound ones: two norms, RoPE, KV write, activation.
  static constexpr int kSmallKernelsPerLayer = 5;
  // The engine's kernels per layer: EngineConfig::kernels_per_layer, else kKernelsPerLayer.
  int64_t KernelsPerLayer() const;

  // The caller times all-reduces from measurements (a profile's [allreduce] rows):
  // the ring terms are not used and not listed as assumptions.
  void UseMeasuredAllreduce() { uses_ring_ = false; }

 private:
  // The small kernels' bytes over `tokens` tokens at the effective bandwidth plus `gaps`
  // kernel gaps; 0 without tokens.
  double SmallKernelBytesPlusGapsSeconds(double tokens, int gaps) const;

  EngineConfig engine_;
  PagedKernel paged_kernel_;
  bool paged_;
  double tp_, layers_, dtype_bytes_;
  double link_bytes_per_s_, allreduce_latency_s_, bus_efficiency_;
  double per_layer_bytes_per_token_, unfused_extra_bytes_per_token_ = 0, hbm_effective_;
  double heads_per_rank_, head_dim_, fp32_flops_, bf16_flops_;
  double activation_bytes_per_token_, logit_bytes_per_token_;
  double experts_, experts_per_token_;
  std::string gpu_name_;
  bool latency_from_card_, efficiency_from_card_;
  double fit_max_gpus_ = -1;          // the card's allreduce_fit_max_gpus; < 0: not stated
  bool card_allreduce_used_ = false;  // a card term is used (not replaced by timing.allreduce)
  bool latency_generic_, efficiency_generic_;  // neither the config nor the card gives it
  bool uses_ring_ = true;
};

}  // namespace kvsim
