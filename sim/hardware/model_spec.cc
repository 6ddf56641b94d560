// ModelSpec: strict loading of LLM cards (models/llm/*.yaml) and the weight and
// KV-cache sizes derived from the architecture.
#include "sim/hardware/model_spec.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "sim/core/check.h"
#include "sim/hardware/card_reader.h"

namespace kvsim {
namespace {

// a * b, failing the invariant check on int64 overflow.
int64_t Mul(int64_t a, int64_t b) {
  int64_t r = 0;
  KVSIM_CHECK(!__builtin_mul_overflow(a, b, &r), "model size overflows int64");
  return r;
}

// a + b, failing the invariant check on int64 overflow.
int64_t Add(int64_t a, int64_t b) {
  int64_t r = 0;
  KVSIM_CHECK(!__builtin_add_overflow(a, b, &r), "model size overflows int64");
  return r;
}

void CheckTensorParallel(int64_t tensor_parallel) {
  KVSIM_CHECK(tensor_parallel >= 1,
              fmt::format("tensor_parallel must be >= 1, got {}", tensor_parallel));
}

// Total weight bytes estimated in floating point, to reject cards whose sizes
// cannot be represented before any int64 arithmetic runs on them.
double ApproxWeightBytes(const ModelSpec& m) {
  const double h = static_cast<double>(m.hidden_size);
  const double q = static_cast<double>(m.num_heads) * static_cast<double>(m.head_dim);
  const double kv = static_cast<double>(m.num_kv_heads) * static_cast<double>(m.head_dim);
  const double e = static_cast<double>(m.num_experts);
  const double attention = 2 * h * q + 2 * h * kv + h * e;
  const double mlp = 3 * h * static_cast<double>(m.ffn_size);
  const double embeddings = static_cast<double>(m.vocab_size) * h * 2;
  return (static_cast<double>(m.num_layers) * (attention + e * mlp) + embeddings) *
         static_cast<double>(m.dtype_bytes);
}

}  // namespace

int64_t ModelSpec::AttentionParamsPerLayer() const {
  const int64_t q_width = Mul(num_heads, head_dim);
  const int64_t kv_width = Mul(num_kv_heads, head_dim);
  int64_t params = Mul(hidden_size, q_width);                                // Q
  params = Add(params, Mul(2, Mul(hidden_size, kv_width)));                  // K, V
  params = Add(params, Mul(q_width, hidden_size));                           // O
  if (num_experts > 1) params = Add(params, Mul(hidden_size, num_experts));  // router
  return params;
}

int64_t ModelSpec::MlpParamsPerExpert() const { return Mul(3, Mul(hidden_size, ffn_size)); }

int64_t ModelSpec::EmbeddingParams() const {
  const int64_t one = Mul(vocab_size, hidden_size);
  return tied_embeddings ? one : Mul(2, one);
}

int64_t ModelSpec::TotalParams() const {
  const int64_t per_layer = Add(AttentionParamsPerLayer(), Mul(num_experts, MlpParamsPerExpert()));
  return Add(Mul(num_layers, per_layer), EmbeddingParams());
}

int64_t ModelSpec::WeightBytesPerRank(int64_t tensor_parallel) const {
  CheckTensorParallel(tensor_parallel);
  // Embeddings and LM head stay in the checkpoint's 16 bits when the layers are fp8.
  const int64_t embeddings = EmbeddingParams();
  const int64_t bytes =
      Add(Mul(TotalParams() - embeddings, weight_dtype_bytes), Mul(embeddings, dtype_bytes));
  return bytes / tensor_parallel + (bytes % tensor_parallel != 0 ? 1 : 0);
}

std::string ModelSpec::HeadSplitProblem(int64_t tensor_parallel) const {
  CheckTensorParallel(tensor_parallel);
  if (num_heads % tensor_parallel != 0) {
    return fmt::format("{} attention heads of {} do not split over {} GPUs", num_heads, name,
                       tensor_parallel);
  }
  if (num_kv_heads % tensor_parallel != 0 && tensor_parallel % num_kv_heads != 0) {
    return fmt::format("{} KV heads of {} neither split over {} GPUs nor copy evenly onto them",
                       num_kv_heads, name, tensor_parallel);
  }
  return "";
}

int64_t ModelSpec::KvHeadsPerRank(int64_t tensor_parallel) const {
  CheckTensorParallel(tensor_parallel);
  return std::max<int64_t>(1, num_kv_heads / tensor_parallel);
}

int64_t ModelSpec::KvBytesPerTokenPerLayerPerRank(int64_t tensor_parallel) const {
  return Mul(Mul(KvHeadsPerRank(tensor_parallel), head_dim), kv_dtype_bytes);
}

int64_t ModelSpec::KvBytesPerTokenPerRank(int64_t tensor_parallel) const {
  return Mul(Mul(2, num_layers), KvBytesPerTokenPerLayerPerRank(tensor_parallel));
}

ModelSpec LoadModelSpec(const std::string& path) {
  std::error_code ec;
  if (path.ends_with(".json") || std::filesystem::is_directory(path, ec)) {
    return LoadHuggingFaceConfig(path);
  }
  static constexpr std::array<std::string_view, 14> kKeys = {"name",
                                                             "num_layers",
                                                             "hidden_size",
                                                             "num_heads",
                                                             "num_kv_heads",
                                                             "head_dim",
                                                             "ffn_size",
                                                             "vocab_size",
                                                             "max_context_tokens",
                                                             "dtype_bytes",
                                                             "num_experts",
                                                             "experts_per_token",
                                                             "tied_embeddings",
                                                             "source"};
  const CardReader card(path, kKeys);
  ModelSpec m;
  m.name = card.String("name");
  m.num_layers = card.PositiveInt("num_layers");
  m.hidden_size = card.PositiveInt("hidden_size");
  m.num_heads = card.PositiveInt("num_heads");
  m.num_kv_heads = card.PositiveInt("num_kv_heads");
  m.head_dim = card.PositiveInt("head_dim");
  m.ffn_size = card.PositiveInt("ffn_size");
  m.vocab_size = card.PositiveInt("vocab_size");
  m.max_context_tokens = card.PositiveInt("max_context_tokens");
  // The element size the engine serves the model in: bf16/fp16, or fp32. An fp8
  // checkpoint keeps its embeddings, activations and logits in 16 bits: it is a
  // deployment choice (deployment.weight_dtype: fp8; kv_cache.dtype for the KV), not
  // a card whose every element is 1 byte.
  static constexpr std::array<int64_t, 2> kDtypeBytes = {2, 4};
  m.dtype_bytes = card.IntOneOf(
      "dtype_bytes", kDtypeBytes,
      "the bytes of one element the model is served in: 2 (bf16, fp16) or 4 (fp32); for fp8 "
      "weights keep 2 and set deployment.weight_dtype: fp8 (embeddings stay 16-bit), for an fp8 "
      "KV cache kv_cache.dtype: fp8");
  m.weight_dtype_bytes = m.kv_dtype_bytes = m.dtype_bytes;
  m.num_experts = card.PositiveInt("num_experts");
  m.experts_per_token = card.PositiveInt("experts_per_token");
  m.tied_embeddings = card.Bool("tied_embeddings");
  card.String("source");  // required for provenance; not used by the simulator

  if (m.num_heads % m.num_kv_heads != 0) {
    throw InputError(fmt::format("{}:{}: key 'num_kv_heads': {} does not divide num_heads ({})",
                                 path, card.LineOfKey("num_kv_heads"), m.num_kv_heads,
                                 m.num_heads));
  }
  if (m.experts_per_token > m.num_experts) {
    throw InputError(fmt::format("{}:{}: key 'experts_per_token': {} exceeds num_experts ({})",
                                 path, card.LineOfKey("experts_per_token"), m.experts_per_token,
                                 m.num_experts));
  }
  CheckModelSizes(m, path);
  return m;
}

void CheckModelSizes(const ModelSpec& m, const std::string& path) {
  // Keep every derived size well inside int64 (9.2e18).
  if (ApproxWeightBytes(m) > 1e18) {
    throw InputError(fmt::format(
        "{}: model sizes are implausibly large (weights would exceed 1e18 bytes)", path));
  }
}

}  // namespace kvsim
