// ExecutionTimeModel: how long one iteration (one forward pass of a replica over
// its batch) takes on the GPUs of one replica.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/core/enum_table.h"
#include "sim/core/time.h"
#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/kvcache/kv_cache_manager.h"
#include "sim/timing/cost_terms.h"
#include "sim/timing/profile.h"

namespace kvsim {

// Which ExecutionTimeModel a run uses (timing.type).
enum class TimingType { kRoofline, kFixed, kProfiled };
inline constexpr auto kTimingTypes =
    MakeEnumTable<TimingType>({{"roofline", TimingType::kRoofline},
                               {"fixed", TimingType::kFixed},
                               {"profiled", TimingType::kProfiled}});

// What one iteration computes, in aggregates the replica builds in O(batch).
struct BatchWork {
  int64_t num_seqs = 0;        // sequences in the batch
  int64_t prefill_seqs = 0;    // sequences computing a prompt (or a chunk of it)
  int64_t prefill_tokens = 0;  // query tokens of prefill chunks
  int64_t decode_tokens = 0;   // one per decoding sequence
  int64_t logit_tokens = 0;    // sequences that emit a token at the end (LM head rows)
  // Causal query-key pairs of the prefill chunks: for a chunk of c tokens after
  // p tokens already cached, c*p + c*(c+1)/2.
  double prefill_attention_pairs = 0;
  int64_t decode_context_tokens = 0;  // KV tokens read by decode attention (sum of contexts)
  int64_t max_context_tokens = 0;     // longest context in the batch (block-table width)
  AttentionLayout layout = AttentionLayout::kContiguous;
  int64_t block_tokens = 0;  // paged layout: tokens per block
};

// The shared terms' view of a batch.
CostInputs ToCostInputs(const BatchWork& work);

// An iteration's duration in nanoseconds. Throws InputError when it is not finite or
// exceeds kMaxSimulatedSeconds: the GPU card's rates or the timing terms are out of
// range.
Nanos IterationNanos(double seconds);

// A forward pass's GPU time by kernel class, seconds, as kvprobe's [step] rows time
// each class alone: the layers' GEMMs and the LM head; decode and prefill attention;
// the other kernels (norms, RoPE, KV writes, activation, kernel gaps); the
// tensor-parallel collectives (0 at TP 1). No CPU time.
struct KernelClassSeconds {
  double gemm_s = 0;
  double attention_s = 0;
  double other_s = 0;
  double collective_s = 0;
  double Sum() const { return gemm_s + attention_s + other_s + collective_s; }
};

class ExecutionTimeModel {
 public:
  virtual ~ExecutionTimeModel() = default;
  // Duration of one iteration running `work`, excluding KV-mapping stalls (the
  // replica adds those). REQUIRES: work.num_seqs >= 1. Result > 0.
  virtual Nanos IterationTime(const BatchWork& work) const = 0;
  // Skip-ahead (Replica): the iterations after `first` in a run of decodes, where
  // iteration j (j = 1, 2, ...) is `first` with decode_context_tokens + j x
  // decode_tokens and max_context_tokens + j. Appends IterationTime of each to `out`
  // while fewer than `max_steps` were appended and the next would start (from
  // `start`, the end of `first`) before `horizon`. Bit for bit IterationTime's; a
  // model may compute the terms the iterations share once.
  virtual void DecodeRunTimes(const BatchWork& first, Nanos start, Nanos horizon, int64_t max_steps,
                              std::vector<Nanos>& out) const;
  // The model's name in kTimingTypes.
  virtual std::string Name() const = 0;
  // Where the model stands in for a measurement its inputs lack (say, an all-reduce
  // on more GPUs than the profile measured), one sentence each, shown with the
  // results. Empty when the model has nothing to declare.
  virtual std::vector<std::string> Caveats() const { return {}; }
  // The terms this run uses that were assumed rather than measured (an engine
  // preset, a generic efficiency, a published kernel slowdown), one sentence each.
  virtual std::vector<std::string> Assumptions() const { return {}; }
  // The GPU time of the forward pass IterationTime(work) is built from, by kernel
  // class; its Sum() is that GPU time. nullopt for a model without classes (fixed).
  // REQUIRES: work.num_seqs >= 1.
  virtual std::optional<KernelClassSeconds> GpuSecondsByClass(const BatchWork& /*work*/) const {
    return std::nullopt;
  }
};

// Roofline model of one iteration on one replica of `tensor_parallel` GPUs.
// Per layer, per rank (P = params touched, tp = tensor_parallel, b = dtype bytes):
//   linear    = max(2 T P_active / tp / (F e_gemm),  P_read b / tp / (B e_mem))
//   prefill   = 4 (heads/tp) head_dim pairs / (F e_attn_prefill)     [paged: the kernel's curve]
//   decode    = 2 ctx_tokens kv_bytes_per_token_per_layer / (B e_attn_decode)   [paged: curve]
//   small     = CostTerms::PerLayerKernelsSeconds(T)   (norms, RoPE, activation, KV write)
//   allreduce = 2 CostTerms::AllreduceSeconds(T hidden b)                (tp > 1 only)
// plus, once per iteration:
//   lm_head   = max(2 logits hidden vocab / tp / (F e_gemm), vocab hidden b / tp / (B e_mem)),
//               0 when no sequence emits a token
//   pass      = sum of CostTerms::AllreduceSeconds over CostTerms::PassAllreduceBytes(T,
//               logits): the embedding's all-reduce and the logits' all-gather (tp > 1)
// iteration = CostTerms::IterationSeconds(layers (linear + prefill + decode + small +
//             allreduce) + lm_head + pass): engine CPU terms, eager launches, block table.
// T = prefill + decode tokens; F = dense bf16 FLOP/s, B = memory bytes/s of the GPU card.
// MoE: P_active counts experts_per_token experts; P_read counts the distinct
// experts E (1 - (1 - k/E)^T) that T tokens touch in expectation.
// Efficiencies: a value <= 0 takes the GPU card's (GpuSpec::Efficiencies), else the
// generic default of RooflineDefaults, which Assumptions() then lists.
struct RooflineConfig {
  double gemm_efficiency = -1;    // fraction of peak FLOP/s reached by GEMMs
  double memory_efficiency = -1;  // fraction of peak bandwidth for weight reads
  double attention_prefill_efficiency = -1;
  double attention_decode_efficiency = -1;
};
// The generic efficiencies for a card that states none: 0.7, 0.85, 0.6, 0.8.
RooflineConfig RooflineDefaults();
// `config` with every value < 0 taken from the card, else from RooflineDefaults();
// `assumed` (if not null) receives one sentence per generic default used.
RooflineConfig ResolveEfficiencies(const RooflineConfig& config, const GpuSpec& gpu,
                                   std::vector<std::string>* assumed);
std::unique_ptr<ExecutionTimeModel> NewRooflineModel(const ModelSpec& model, const GpuSpec& gpu,
                                                     int64_t tensor_parallel,
                                                     const RooflineConfig& config,
                                                     const CostConfig& costs);

// Profiled model: times measured by kvprobe on the GPU (a Profile, see profile.h),
// for the model card's shapes at this tensor_parallel. T = prefill + decode tokens;
// per layer, per rank:
//   linear    = G_qkv(T) + G_o(T) + E_r x (G_gate_up(T k / E_r) + G_down(T k / E_r))
//               E_r = E x (1 - (1 - k/E)^T) experts read in expectation, each at T k / E_r
//               tokens (E experts, top-k; dense: E_r = 1, each at T). The MoE router GEMM
//               is not profiled and not charged.
//   decode    = D(B x kv_heads/tp, C) x head_dim / head_dim_p
//               B = decode seqs, C = decode_context_tokens / B (mean context)
//   prefill   = P(pairs) x (heads/tp x head_dim) / (q_heads_p x head_dim_p)      (kMeasured)
//             = 4 (heads/tp) head_dim pairs / (F e_prefill) x P_layout(pairs) / P_contiguous(pairs)
//                                                                              (kRoofline)
//               pairs = prefill_attention_pairs (profile rows: batch x tokens (tokens+1) / 2),
//               F = the GPU card's dense bf16 FLOP/s
//   small     = K(T), the profile's [small_kernels] rows (norms, RoPE, KV write, activation)
//               where it has them, plus CostTerms::BeyondFusedSeconds(T) for an engine
//               that runs unfused or more kernels; else
//               CostTerms::PerLayerSmallKernelsSeconds(T)
//   No kernel gap is added to a measured row: kvprobe times each as CUDA graph replays
//   of that kernel, so the boundary between two launches is inside its time.
//   allreduce = 2 x R(T x hidden x dtype_bytes)                          (tp > 1 only)
// plus, once per iteration:
//   lm_head   = G_lm_head(logit_tokens), 0 when no sequence emits a token
//   pass      = sum of R over CostTerms::PassAllreduceBytes(T, logit_tokens): the
//               embedding's all-reduce and the logits' all-gather (tp > 1)
// iteration = CostTerms::IterationSeconds(layers x (linear + decode + prefill + small +
//             allreduce) + lm_head + pass): engine CPU terms, eager launches, block table.
// Paged layouts: with kv_cache.paged_kernel: profiled, D and P of the profile's own
//   paged kernel rows; with a named kernel, the contiguous rows through that kernel's
//   curve (CostTerms::PagedDecodeSeconds / PagedPrefillSeconds).
// G_layer(x): the [gemm] rows of this model (ModelSpec.name) and tensor_parallel, time
//   against tokens, interpolated linearly in (log tokens, log time) between grid points;
//   below the smallest grid point its time (a GEMM never gets faster with fewer
//   tokens); above the largest, the time there plus b (x - x_max), b the slope of the
//   least-squares line a + b x through the largest 4 grid points (b >= 0; continuous at
//   x_max). The same curve, in causal pairs,
//   is P (beyond: the largest 4 pair counts; below the grid, the first segment's
//   log-log line continued, since attention work shrinks with the pairs), and in
//   bytes R, from the [allreduce] rows' in_graph_us (one all-reduce between two
//   dependent kernels of a CUDA graph, as a forward pass runs it), else their
//   alone_in_graph_us (after a kernel touching no memory), else time_us (the
//   back-to-back time, with a caveat)
//   with gpus = tensor_parallel, else estimated at each measured size from the rows
//   of the other GPU counts (allreduce_estimate.h; a caveat says so); without any
//   [allreduce] rows R is CostTerms::AllreduceSeconds (also a caveat).
// D(U, C): the [decode_attention] rows of the batch's layout (paged: the measured
//   block_tokens nearest to the manager's in log distance, the smaller on a tie) over
//   U = batch x kv_heads of each row (sequence-heads: the kernel's units of work, so
//   that rows measured with 8, 4 or 1 KV heads all apply) and context, interpolated
//   bilinearly in (log U, log C) of log time on the grid; below the grid, the grid's
//   edge; beyond it in U or C, the clamped grid value plus b x (U x C - U' x C'), U' and
//   C' the clamped values (a dimension below the grid counts at its edge), b the slope
//   of a + b x U x C least-squares over all that layout's rows (b >= 0). Grid cells the
//   profile lacks are filled from that fit. A rank's decode attention is thus not
//   half of one GPU's when tensor parallelism halves its KV heads and the GPU was not
//   full (one 16K-token sequence on the lent H200, kvprobe 0.3.14: 21.9 us with 8 KV heads,
//   15.4 with 4; models/profiles/H200/profile.txt, [decode_attention]).
// P uses the [prefill_attention] rows of the layout chosen the same way (rows of equal
//   pair counts are averaged) and of the query-head count q_heads_p equal to heads/tp,
//   else the nearest measured one in log distance (the smaller on a tie). Prefill
//   attention is compute-bound: time scales with the query heads where the kernel fills
//   the GPU, hence measured rows at the rank's heads where it does not.
// Measured times are made non-decreasing before use, so the model is monotone in tokens,
// batch and context: a 1-D curve (G, P, R) by its least-squares non-decreasing fit (a run
// of points whose times fall with the size takes their mean: a larger GEMM may run a
// faster cuBLASLt algorithm than a smaller one), D by a running maximum along each axis;
// at grid points the model returns the measurement whenever the measurements already
// are non-decreasing.
struct ProfiledConfig {
  // Where contiguous prefill attention time comes from. kRoofline (default): the
  // roofline FLOP formula at attention_prefill_efficiency of the GPU card's peak,
  // times the profile's measured paged/contiguous ratio for paged layouts (kvprobe's
  // own prefill kernel is far slower than production FlashAttention kernels, so its
  // absolute times would overstate prefill). kMeasured: the profile's times as they are.
  enum class PrefillAttention { kRoofline, kMeasured };
  PrefillAttention prefill_attention = PrefillAttention::kRoofline;
  // Fraction of peak FLOP/s (kRoofline); < 0: the GPU card's, else the roofline default.
  double attention_prefill_efficiency = -1;
  // Fraction of peak bandwidth the small per-layer kernels stream at where the profile
  // has no [small_kernels] rows, and an unfused engine's extra bytes; < 0: the card's.
  double memory_efficiency = -1;
};
// timing.profiled.prefill_attention.
inline constexpr auto kPrefillAttentions = MakeEnumTable<ProfiledConfig::PrefillAttention>(
    {{"roofline", ProfiledConfig::PrefillAttention::kRoofline},
     {"measured", ProfiledConfig::PrefillAttention::kMeasured}});
// Throws InputError when the profile lacks what the model needs: "timing.profile ...:
// no [gemm] rows for model M at tensor_parallel N; it has: ..." listing the models and
// tensor_parallel values present, and "path:line: what" for a missing GEMM layer, a
// layout without attention rows, a repeated grid point, a non-positive size or time,
// a GEMM shape (n, k) that differs from the model card's, and a kernel row that is not
// physical on the card or not a shape kvprobe names (ReadProfileCurves,
// profile_tables.h); and, for tensor_parallel > 1 without [allreduce] rows, when the GPU
// card has no link bandwidth. A quick profile ([meta] mode: quick) is a caveat.
std::unique_ptr<ExecutionTimeModel> NewProfiledModel(const Profile& profile, const ModelSpec& model,
                                                     const GpuSpec& gpu, int64_t tensor_parallel,
                                                     const ProfiledConfig& config,
                                                     const CostConfig& costs);

// A fixed-cost model for what-if studies and hand-computable tests:
//   time = per_iteration + per_prefill_token x prefill_tokens
//          + per_decode_token x decode_tokens.
struct FixedTimeConfig {
  Nanos per_iteration{1'000'000};
  Nanos per_prefill_token{0};
  Nanos per_decode_token{0};
};
std::unique_ptr<ExecutionTimeModel> NewFixedTimeModel(const FixedTimeConfig& config);

}  // namespace kvsim
