// ExecutionTimeModel: how long one iteration (one forward pass of a replica over
// its batch) takes on the GPUs of one replica.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim/core/time.h"
#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/kvcache/kv_cache_manager.h"
#include "sim/timing/profile.h"

namespace kvsim {

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

class ExecutionTimeModel {
 public:
  virtual ~ExecutionTimeModel() = default;
  // Duration of one iteration running `work`, excluding KV-mapping stalls (the
  // replica adds those). REQUIRES: work.num_seqs >= 1. Result > 0.
  virtual Nanos IterationTime(const BatchWork& work) const = 0;
  // Where the model stands in for a measurement its inputs lack (say, an all-reduce
  // on more GPUs than the profile measured), one sentence each, shown with the
  // results. Empty when the model has nothing to declare.
  virtual std::vector<std::string> Caveats() const { return {}; }
};

// Roofline model of one iteration on one replica of `tensor_parallel` GPUs.
// Per layer, per rank (P = params touched, tp = tensor_parallel, b = dtype bytes):
//   linear    = max(2 x T x P_active / tp / (F x e_gemm),  P_read x b / tp / (B x e_mem))
//   prefill   = 4 x (heads/tp) x head_dim x pairs / (F x e_attn_prefill)   [x
//   paged_prefill_slowdown] decode    = 2 x ctx_tokens x kv_bytes_per_token_per_layer / (B x
//   e_attn_decode)
//               [x paged_decode_slowdown]
//   allreduce = 2 x (latency + 2 (tp-1)/tp x T x hidden x b / link_bw)   (tp > 1 only)
// plus, once per iteration:
//   lm_head   = max(2 x logits x hidden x vocab / tp / (F x e_gemm), vocab x hidden x b / tp / (B x
//   e_mem)) cpu       = cpu_overhead + cpu_per_seq x seqs block table (paged only) =
//   block_table_entry x seqs x ceil(max_context / block_tokens)
// T = prefill + decode tokens; F = dense bf16 FLOP/s, B = HBM bytes/s of the GPU card.
// MoE: P_active counts experts_per_token experts; P_read counts the distinct
// experts E x (1 - (1 - k/E)^T) that T tokens touch in expectation.
struct RooflineConfig {
  double gemm_efficiency = 0.7;     // fraction of peak FLOP/s reached by GEMMs
  double memory_efficiency = 0.85;  // fraction of peak HBM bandwidth for weight reads
  double attention_prefill_efficiency = 0.6;
  double attention_decode_efficiency = 0.8;
  double paged_prefill_slowdown = 1.1;  // paged / contiguous prefill attention time
  double paged_decode_slowdown = 1.25;  // paged / contiguous decode attention time
  double block_table_entry_s = 5e-9;    // CPU cost per block-table entry per iteration
  double allreduce_latency_s = 8e-6;    // fixed cost of one all-reduce
  double cpu_overhead_s = 1e-3;         // per-iteration scheduler/launch overhead
  double cpu_per_seq_s = 5e-6;          // per-sequence CPU work per iteration
};
std::unique_ptr<ExecutionTimeModel> NewRooflineModel(const ModelSpec& model, const GpuSpec& gpu,
                                                     int64_t tensor_parallel,
                                                     const RooflineConfig& config);

// Profiled model: times measured by kvprobe on the GPU (a Profile, see profile.h),
// for the model card's shapes at this tensor_parallel. T = prefill + decode tokens;
// per layer, per rank:
//   linear    = G_qkv(T) + G_o(T) + E_r x (G_gate_up(T k / E_r) + G_down(T k / E_r))
//               E_r = E x (1 - (1 - k/E)^T) experts read in expectation, each at T k / E_r
//               tokens (E experts, top-k; dense: E_r = 1, each at T). The MoE router GEMM
//               is not profiled and not charged.
//   decode    = D(B, C) x (kv_heads/tp x head_dim) / (kv_heads_p x head_dim_p)
//               B = decode seqs, C = decode_context_tokens / B (mean context)
//   prefill   = P(pairs) x (heads/tp x head_dim) / (q_heads_p x head_dim_p)      (kMeasured)
//             = 4 (heads/tp) head_dim pairs / (F e_prefill) x P_layout(pairs) / P_contiguous(pairs)
//                                                                              (kRoofline)
//               pairs = prefill_attention_pairs (profile rows: batch x tokens (tokens+1) / 2),
//               F = the GPU card's dense bf16 FLOP/s
//   allreduce = 2 x R(T x hidden x dtype_bytes)                          (tp > 1 only)
// plus, once per iteration:
//   lm_head   = G_lm_head(logit_tokens), 0 when no sequence emits a token
//   cpu       = cpu_overhead + cpu_per_seq x seqs
//               [+ block_table_entry x seqs x ceil(max_context / block_tokens), paged only]
// iteration = layers x (linear + decode + prefill + allreduce) + lm_head + cpu.
// G_layer(x): the [gemm] rows of this model (ModelSpec.name) and tensor_parallel, time
//   against tokens, interpolated linearly in (log tokens, log time) between grid points;
//   below the smallest grid point its time (a GEMM never gets faster with fewer
//   tokens); above the largest, max(time there, a + b x) with a + b x the least-squares
//   line through the largest 4 grid points (b >= 0). The same curve, in causal pairs,
//   is P (beyond: the largest 4 pair counts), and in bytes R, from the [allreduce] rows
//   with gpus = tensor_parallel, else estimated at each measured size from the rows
//   of the other GPU counts (allreduce_estimate.h; a caveat says so); without any
//   [allreduce] rows R is the roofline ring latency + 2 (tp-1)/tp x bytes / link_bw
//   with the GPU card's link bandwidth (also a caveat).
// D(B, C): the [decode_attention] rows of the batch's layout (paged: the measured
//   block_tokens nearest to the manager's in log distance, the smaller on a tie),
//   interpolated bilinearly in (log batch, log context) of log time on the grid;
//   below the grid, the grid's edge; beyond it in batch or context, max(the clamped
//   grid value, a + b x B x C) with a + b x B x C least-squares over all that layout's
//   rows (b >= 0). Grid cells the profile lacks are filled from that fit.
// P uses the [prefill_attention] rows of the layout chosen the same way (rows of equal
//   pair counts are averaged). Attention rows are scaled to this model's heads per rank
//   first (_p: the row's heads and head_dim): decode attention is memory-bound (KV
//   bytes), prefill compute-bound (query heads).
// Measured times are made non-decreasing (running maximum over smaller sizes) before
// use, so the model is monotone in tokens, batch and context; at grid points it returns
// the measurement whenever the measurements already are non-decreasing.
struct ProfiledConfig {
  // Where contiguous prefill attention time comes from. kRoofline (default): the
  // roofline FLOP formula at attention_prefill_efficiency of the GPU card's peak,
  // times the profile's measured paged/contiguous ratio for paged layouts (kvprobe's
  // own prefill kernel is far slower than production FlashAttention kernels, so its
  // absolute times would overstate prefill). kMeasured: the profile's times as they are.
  enum class PrefillAttention { kRoofline, kMeasured };
  PrefillAttention prefill_attention = PrefillAttention::kRoofline;
  double attention_prefill_efficiency = 0.6;  // fraction of peak FLOP/s (kRoofline)
  double block_table_entry_s = 5e-9;          // CPU cost per block-table entry per iteration
  double allreduce_latency_s = 8e-6;          // fixed cost of one all-reduce (ring fallback only)
  double cpu_overhead_s = 1e-3;               // per-iteration scheduler/launch overhead
  double cpu_per_seq_s = 5e-6;                // per-sequence CPU work per iteration
};
// Throws InputError when the profile lacks what the model needs: "timing.profile ...:
// no [gemm] rows for model M at tensor_parallel N; it has: ..." listing the models and
// tensor_parallel values present, and "path:line: what" for a missing GEMM layer, a
// layout without attention rows, a repeated grid point, a non-positive size or time,
// or a GEMM shape (n, k) that differs from the model card's; and, for tensor_parallel
// > 1 without [allreduce] rows, when the GPU card has no link bandwidth.
std::unique_ptr<ExecutionTimeModel> NewProfiledModel(const Profile& profile, const ModelSpec& model,
                                                     const GpuSpec& gpu, int64_t tensor_parallel,
                                                     const ProfiledConfig& config);

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
