// ExecutionTimeModel: how long one iteration (one forward pass of a replica over
// its batch) takes on the GPUs of one replica.
#pragma once

#include <cstdint>
#include <memory>

#include "sim/core/time.h"
#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/kvcache/kv_cache_manager.h"

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
