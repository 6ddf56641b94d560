// ModelSpec: the architecture facts of one LLM (a card in models/llm/), and the
// sizes derived from them (weights, KV bytes per token).
#pragma once

#include <cstdint>
#include <string>

namespace kvsim {

struct ModelSpec {
  std::string name;          // e.g. "Llama-3-8B"
  int64_t num_layers = 0;    // transformer blocks
  int64_t hidden_size = 0;   // model width
  int64_t num_heads = 0;     // query heads
  int64_t num_kv_heads = 0;  // key/value heads (GQA: < num_heads)
  int64_t head_dim = 0;      // per head
  int64_t ffn_size = 0;      // intermediate size (per expert for MoE)
  int64_t vocab_size = 0;
  int64_t max_context_tokens = 0;  // max_position_embeddings
  int64_t dtype_bytes = 2;         // the checkpoint's element size: activations
  // What the deployment stores, as served: weights and KV cache elements (fp8: 1).
  // Loaded as dtype_bytes; the builder applies deployment.weight_dtype and
  // kv_cache.dtype.
  int64_t weight_dtype_bytes = 2;
  int64_t kv_dtype_bytes = 2;
  int64_t num_experts = 1;        // 1 for dense models
  int64_t experts_per_token = 1;  // top-k routing (1 for dense models)
  bool tied_embeddings = false;   // LM head shares the embedding matrix

  // Parameters of one transformer block that every token touches: QKV and output
  // projections (+ router for MoE). Gated MLP weights are counted by MlpParamsPerExpert.
  //   hidden x (heads x head_dim)          [Q]
  // + 2 x hidden x (kv_heads x head_dim)   [K, V]
  // + (heads x head_dim) x hidden          [O]
  // + hidden x num_experts                 [router, only when num_experts > 1]
  // Norm weights and biases (e.g. Qwen2.5's QKV bias) are ignored: < 0.1% of any card.
  int64_t AttentionParamsPerLayer() const;
  // Gated MLP (gate, up, down) of one expert: 3 x hidden x ffn.
  int64_t MlpParamsPerExpert() const;
  // Embedding plus LM head: vocab x hidden, times 2 when untied (one matrix when tied).
  int64_t EmbeddingParams() const;
  // All parameters: layers x (attention + num_experts x mlp) + embeddings.
  int64_t TotalParams() const;

  // Weight bytes held by one tensor-parallel rank (layers and LM head split by tp,
  // input embedding split by tp as vLLM's VocabParallelEmbedding does):
  // ceil(((TotalParams() - EmbeddingParams()) x weight_dtype_bytes + EmbeddingParams()
  // x dtype_bytes) / tp): embeddings and LM head stay 16-bit under fp8 weights.
  // Requires tp >= 1 (InvariantError otherwise).
  int64_t WeightBytesPerRank(int64_t tensor_parallel) const;

  // Why the heads do not split evenly over `tensor_parallel` GPUs, "" when they do:
  // each rank holds num_heads / tp query heads, and num_kv_heads / tp KV heads or, with
  // more GPUs than KV heads, a copy of one (vLLM's rule); anything else leaves ranks
  // with unequal shares. Requires tp >= 1 (InvariantError otherwise).
  std::string HeadSplitProblem(int64_t tensor_parallel) const;

  // KV heads held by one rank: kv_heads / tp (integer division), at least 1 (heads are
  // replicated when tp > kv_heads). Requires tp >= 1 (InvariantError otherwise).
  int64_t KvHeadsPerRank(int64_t tensor_parallel) const;

  // Bytes of ONE of K or V, for one token, in one layer, on one rank:
  // kv_heads_per_rank x head_dim x kv_dtype_bytes.
  int64_t KvBytesPerTokenPerLayerPerRank(int64_t tensor_parallel) const;

  // K and V of all layers for one token on one rank:
  // 2 x layers x kv_heads_per_rank x head_dim x kv_dtype_bytes.
  int64_t KvBytesPerTokenPerRank(int64_t tensor_parallel) const;
};

// Loads a model card: a kvsim card (YAML, models/llm/), or a Hugging Face
// config.json given as the file (PATH.json) or as the model directory holding it
// (LoadHuggingFaceConfig). Throws InputError naming the file and key on a missing,
// unknown or invalid field.
// Every key above plus `source` (a non-empty string) is required; integers must be
// positive plain decimals, tied_embeddings true/false, dtype_bytes 1 (fp8), 2 (bf16,
// fp16) or 4 (fp32). Also checked: num_kv_heads divides num_heads, experts_per_token
// <= num_experts. Messages read
// "path:line: key 'k': what, got 'v'" (no line for a missing key or file).
ModelSpec LoadModelSpec(const std::string& path);

// A Hugging Face config.json (PATH, or PATH/config.json for a directory) as a model
// card, for the families kvsim models (llama, mistral, mixtral, qwen2, qwen3,
// qwen3_moe, gemma, phi3, granite): num_hidden_layers, hidden_size,
// num_attention_heads, num_key_value_heads (default: the heads), head_dim (default:
// hidden / heads), intermediate_size (moe_intermediate_size for qwen3_moe),
// vocab_size, max_position_embeddings, torch_dtype (bf16/fp16 = 2 bytes; float32
// checkpoints are served in 16 bits), tie_word_embeddings, and for MoE the experts
// and top-k. The name is the model directory's. Refused with the key named: other
// families, sliding-window attention, shared experts, quantized checkpoints.
ModelSpec LoadHuggingFaceConfig(const std::string& path);

// Throws InputError "path: ..." when the sizes derived from `m` could overflow.
void CheckModelSizes(const ModelSpec& m, const std::string& path);

}  // namespace kvsim
