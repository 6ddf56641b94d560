// A Hugging Face config.json read as a model card (LoadModelSpec of a .json file or a
// model directory). Field names are those of transformers' configuration classes
// (LlamaConfig, MistralConfig, MixtralConfig, Qwen2Config, Qwen3Config,
// Qwen3MoeConfig, GemmaConfig, Phi3Config); what kvsim cannot model is refused by name.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "sim/core/check.h"
#include "sim/core/json_value.h"
#include "sim/core/utf8.h"
#include "sim/hardware/model_spec.h"

namespace kvsim {
namespace {

namespace fs = std::filesystem;

// The families whose blocks kvsim's cost model describes: attention with (grouped)
// query heads, a gated MLP (SwiGLU/GeGLU, three matrices) or top-k routed experts of
// one, no shared experts, full attention in every layer.
constexpr std::array<std::string_view, 9> kFamilies = {
    "llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "gemma", "phi3", "granite"};

// A positive integer field, required.
int64_t Positive(const JsonValue& root, std::string_view key) {
  const JsonValue& v = root.At(key);
  const int64_t n = v.AsInt();
  if (n <= 0) v.Fail(fmt::format("expected a positive integer, got {}", n));
  return n;
}

// A positive integer field, or `fallback` when absent or null.
int64_t PositiveOr(const JsonValue& root, std::string_view key, int64_t fallback) {
  const JsonValue* v = root.Find(key);
  return v == nullptr || v->IsNull() ? fallback : Positive(root, key);
}

// Bytes per weight element of torch_dtype (or dtype, its newer name). vLLM serves a
// float32 checkpoint in 16-bit ("--dtype auto"), so float32 counts as 2 as well.
int64_t DtypeBytes(const JsonValue& root) {
  const JsonValue* v = root.Find("torch_dtype");
  if (v == nullptr || v->IsNull()) v = root.Find("dtype");
  if (v == nullptr || v->IsNull()) return 2;
  const std::string& name = v->AsString();
  if (name == "bfloat16" || name == "float16" || name == "float32") return 2;
  v->Fail(fmt::format("'{}' is not a dtype kvsim models (bfloat16, float16, float32)", name));
}

// The JSON object in the file at `path`; throws InputError when it cannot be read, is
// not UTF-8 text, does not parse or is not an object.
JsonValue ReadConfigJson(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open the model's config.json", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  if (const std::optional<TextError> bad = FindNonUtf8Text(text.view())) {
    throw InputError(fmt::format("{}:{}: byte 0x{:02X} at column {} is not UTF-8 text",
                                 path.string(), bad->line, bad->byte, bad->column));
  }
  JsonValue root = ParseJson(text.view(), path.string());
  if (!root.IsObject()) root.Fail("expected an object (a Hugging Face config.json)");
  return root;
}

// The config's model_type; throws InputError when it is missing or not in kFamilies.
std::string ModelFamily(const JsonValue& root) {
  const JsonValue* type_value = root.Find("model_type");
  if (type_value == nullptr) {
    root.Fail("no model_type: not a Hugging Face model config");
  }
  std::string model_type = type_value->AsString();
  if (std::find(kFamilies.begin(), kFamilies.end(), model_type) == kFamilies.end()) {
    type_value->Fail(
        fmt::format("model_type '{}' is not a family kvsim models; it reads {} (dense or top-k MoE "
                    "decoders with full attention); write a kvsim card (models/llm/) for others",
                    model_type, fmt::join(kFamilies, ", ")));
  }
  return model_type;
}

// Throws InputError naming the key of anything these families may switch on that
// kvsim's block does not have: sliding windows, quantization, shared experts, layers
// without experts.
void RefuseUnmodelled(const JsonValue& root) {
  if (const JsonValue* w = root.Find("sliding_window"); w != nullptr && !w->IsNull()) {
    const JsonValue* use = root.Find("use_sliding_window");
    bool used = use == nullptr || use->IsNull() || use->AsBool();
    // Qwen2's window applies to the layers from max_window_layers on: none when it
    // reaches the layer count (Hugging Face's Qwen2Attention).
    if (const JsonValue* from = root.Find("max_window_layers");
        from != nullptr && !from->IsNull() &&
        from->AsInt() >= PositiveOr(root, "num_hidden_layers", 0)) {
      used = false;
    }
    if (used && w->AsInt() < PositiveOr(root, "max_position_embeddings", 0)) {
      w->Fail(
          "sliding-window attention (a KV cache bounded by the window) is not modelled; kvsim "
          "would overstate this model's KV cache. To plan with full attention anyway (its KV an "
          "upper bound), set sliding_window to null in a copy of this config.json");
    }
  }
  if (const JsonValue* q = root.Find("quantization_config"); q != nullptr && !q->IsNull()) {
    q->Fail(
        "quantized checkpoints are not read from config.json; use the unquantized config and "
        "set deployment.weight_dtype (fp8) and kv_cache.dtype in the scenario");
  }
  for (const char* key : {"shared_expert_intermediate_size", "n_shared_experts"}) {
    if (const JsonValue* v = root.Find(key); v != nullptr && !v->IsNull() && v->AsNumber() > 0) {
      v->Fail("shared experts are not modelled");
    }
  }
  if (const JsonValue* v = root.Find("mlp_only_layers");
      v != nullptr && v->IsArray() && v->size() > 0) {
    v->Fail("layers without experts in an MoE model are not modelled");
  }
  if (PositiveOr(root, "decoder_sparse_step", 1) != 1) {
    root.At("decoder_sparse_step").Fail("MoE layers every few layers are not modelled");
  }
}

// Sets the layer and attention sizes (elements), vocabulary, context (tokens), dtype
// bytes and embedding tying of `m` from the config of family `model_type`.
void DecodeAttentionShape(const JsonValue& root, const std::string& model_type, ModelSpec& m) {
  m.num_layers = Positive(root, "num_hidden_layers");
  m.hidden_size = Positive(root, "hidden_size");
  m.num_heads = Positive(root, "num_attention_heads");
  m.num_kv_heads = PositiveOr(root, "num_key_value_heads", m.num_heads);
  if (m.hidden_size % m.num_heads != 0 && root.Find("head_dim") == nullptr) {
    root.At("hidden_size").Fail("does not split over num_attention_heads and no head_dim is given");
  }
  m.head_dim = PositiveOr(root, "head_dim", m.hidden_size / m.num_heads);
  m.vocab_size = Positive(root, "vocab_size");
  m.max_context_tokens = Positive(root, "max_position_embeddings");
  m.dtype_bytes = DtypeBytes(root);
  m.weight_dtype_bytes = m.kv_dtype_bytes = m.dtype_bytes;
  const JsonValue* tied = root.Find("tie_word_embeddings");
  // transformers' defaults: Gemma ties its embeddings, the others do not.
  m.tied_embeddings = tied != nullptr && !tied->IsNull() ? tied->AsBool() : model_type == "gemma";
}

// Sets the MLP width (elements per expert) and, for the MoE families, the experts and
// experts per token of `m`; then checks the head and expert counts divide and fit.
void DecodeFeedForward(const JsonValue& root, const std::string& model_type, ModelSpec& m) {
  if (model_type == "mixtral") {
    m.num_experts = Positive(root, "num_local_experts");
    m.experts_per_token = Positive(root, "num_experts_per_tok");
    m.ffn_size = Positive(root, "intermediate_size");
  } else if (model_type == "qwen3_moe") {
    m.num_experts = Positive(root, "num_experts");
    m.experts_per_token = Positive(root, "num_experts_per_tok");
    m.ffn_size = Positive(root, "moe_intermediate_size");
  } else {
    m.ffn_size = Positive(root, "intermediate_size");
  }
  if (m.num_heads % m.num_kv_heads != 0) {
    root.At("num_key_value_heads")
        .Fail(fmt::format("{} does not divide num_attention_heads ({})", m.num_kv_heads,
                          m.num_heads));
  }
  if (m.experts_per_token > m.num_experts) {
    root.At("num_experts_per_tok")
        .Fail(fmt::format("{} exceeds the {} experts", m.experts_per_token, m.num_experts));
  }
}

}  // namespace

ModelSpec LoadHuggingFaceConfig(const std::string& given_path) {
  std::error_code ec;
  const fs::path path = fs::is_directory(given_path, ec) ? fs::path(given_path) / "config.json"
                                                         : fs::path(given_path);
  const JsonValue root = ReadConfigJson(path);
  const std::string model_type = ModelFamily(root);
  RefuseUnmodelled(root);

  ModelSpec m;
  // The model's directory names it (".../Meta-Llama-3-8B/config.json").
  const fs::path dir = fs::absolute(path, ec).parent_path();
  m.name = path.filename() == "config.json" && !dir.filename().empty() ? dir.filename().string()
                                                                       : path.stem().string();
  DecodeAttentionShape(root, model_type, m);
  DecodeFeedForward(root, model_type, m);
  CheckModelSizes(m, path.string());
  return m;
}

}  // namespace kvsim
