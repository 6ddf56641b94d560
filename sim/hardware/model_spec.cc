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

namespace kvsim {
namespace {

// Reads the flat mapping of one card file. Every read names the file, the key and
// (where yaml-cpp knows it) the 1-based line in its InputError.
class CardReader {
 public:
  // Loads `path` and checks that its top level is a mapping whose keys are all in
  // `allowed` and appear once. Throws InputError otherwise.
  CardReader(std::string path, std::span<const std::string_view> allowed) : path_(std::move(path)) {
    if (!std::filesystem::is_regular_file(path_)) {
      throw InputError(fmt::format("{}: cannot open card file (no such regular file)", path_));
    }
    YAML::Node root;
    try {
      root = YAML::LoadFile(path_);
    } catch (const YAML::ParserException& e) {
      throw InputError(fmt::format("{}:{}: not valid YAML: {}", path_, e.mark.line + 1, e.msg));
    } catch (const YAML::Exception& e) {
      throw InputError(fmt::format("{}: cannot read card: {}", path_, e.what()));
    }
    if (!root.IsMap()) {
      throw InputError(fmt::format("{}: expected a mapping of keys at the top level", path_));
    }
    for (auto it = root.begin(); it != root.end(); ++it) {
      const int key_line = LineOf(it->first);
      if (!it->first.IsScalar()) {
        throw InputError(fmt::format("{}:{}: expected a plain key", path_, key_line));
      }
      const std::string key = it->first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        throw InputError(fmt::format("{}:{}: key '{}': unknown key (expected one of: {})", path_,
                                     key_line, key, fmt::join(allowed, ", ")));
      }
      if (entries_.count(key) != 0) {
        throw InputError(fmt::format("{}:{}: key '{}': given twice (first at line {})", path_,
                                     key_line, key, entries_.at(key).key_line));
      }
      entries_.emplace(key, Entry{it->second, key_line});
    }
  }

  // A positive integer written as a plain decimal scalar.
  int64_t PositiveInt(const std::string& key) const {
    const Entry& e = Get(key);
    const std::optional<int64_t> v = ParseInt(e);
    if (!v || *v <= 0) Fail(key, e, "expected a positive integer");
    return *v;
  }

  // A finite double (integers accepted) that is > 0, or >= 0 when `allow_zero`.
  double PositiveDouble(const std::string& key, bool allow_zero = false) const {
    const Entry& e = Get(key);
    const std::optional<double> v = ParseDouble(e);
    if (allow_zero) {
      if (!v || *v < 0) Fail(key, e, "expected a non-negative number");
    } else if (!v || *v <= 0) {
      Fail(key, e, "expected a positive number");
    }
    return *v;
  }

  // true/false (YAML 1.2 core spellings), unquoted.
  bool Bool(const std::string& key) const {
    const Entry& e = Get(key);
    if (e.value.IsScalar() && e.value.Tag() != "!") {
      const std::string& s = e.value.Scalar();
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    Fail(key, e, "expected true or false");
  }

  // A non-empty string scalar (quoted or plain).
  std::string String(const std::string& key) const {
    const Entry& e = Get(key);
    if (!e.value.IsScalar() || e.value.Scalar().empty())
      Fail(key, e, "expected a non-empty string");
    return e.value.Scalar();
  }

  // 1-based line of `key` in the file.
  int LineOfKey(const std::string& key) const { return Get(key).key_line; }

  const std::string& path() const { return path_; }

 private:
  struct Entry {
    YAML::Node value;
    int key_line = 0;  // 1-based; 0 when unknown
  };

  static int LineOf(const YAML::Node& node) {
    const YAML::Mark mark = node.Mark();
    return mark.is_null() ? 0 : mark.line + 1;
  }

  const Entry& Get(const std::string& key) const {
    const auto it = entries_.find(key);
    if (it == entries_.end()) {
      throw InputError(fmt::format("{}: key '{}': missing (required)", path_, key));
    }
    return it->second;
  }

  [[noreturn]] void Fail(const std::string& key, const Entry& e, std::string_view what) const {
    // A null value's mark points past it, so the key's line is the reliable one.
    std::string got = "nothing";
    if (e.value.IsScalar()) {
      got = fmt::format("'{}'", e.value.Scalar());
    } else if (e.value.IsSequence()) {
      got = "a list";
    } else if (e.value.IsMap()) {
      got = "a mapping";
    }
    throw InputError(fmt::format("{}:{}: key '{}': {}, got {}", path_, e.key_line, key, what, got));
  }

  // Text of a plain (unquoted) scalar with a leading '+' removed; nullopt otherwise.
  static std::optional<std::string_view> NumberText(const Entry& e) {
    if (!e.value.IsScalar() || e.value.Tag() == "!") return std::nullopt;
    std::string_view s = e.value.Scalar();
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    if (s.empty()) return std::nullopt;
    return s;
  }

  static std::optional<int64_t> ParseInt(const Entry& e) {
    const std::optional<std::string_view> s = NumberText(e);
    if (!s) return std::nullopt;
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (ec != std::errc() || end != s->data() + s->size()) return std::nullopt;
    return v;
  }

  static std::optional<double> ParseDouble(const Entry& e) {
    const std::optional<std::string_view> s = NumberText(e);
    if (!s) return std::nullopt;
    double v = 0;
    const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (ec != std::errc() || end != s->data() + s->size() || !std::isfinite(v)) return std::nullopt;
    return v;
  }

  std::string path_;
  std::map<std::string, Entry> entries_;
};

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
  const int64_t bytes = Mul(TotalParams(), dtype_bytes);
  return bytes / tensor_parallel + (bytes % tensor_parallel != 0 ? 1 : 0);
}

int64_t ModelSpec::KvHeadsPerRank(int64_t tensor_parallel) const {
  CheckTensorParallel(tensor_parallel);
  return std::max<int64_t>(1, num_kv_heads / tensor_parallel);
}

int64_t ModelSpec::KvBytesPerTokenPerLayerPerRank(int64_t tensor_parallel) const {
  return Mul(Mul(KvHeadsPerRank(tensor_parallel), head_dim), dtype_bytes);
}

int64_t ModelSpec::KvBytesPerTokenPerRank(int64_t tensor_parallel) const {
  return Mul(Mul(2, num_layers), KvBytesPerTokenPerLayerPerRank(tensor_parallel));
}

ModelSpec LoadModelSpec(const std::string& path) {
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
  m.dtype_bytes = card.PositiveInt("dtype_bytes");
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
  // Keep every derived size well inside int64 (9.2e18).
  if (ApproxWeightBytes(m) > 1e18) {
    throw InputError(fmt::format(
        "{}: model sizes are implausibly large (weights would exceed 1e18 bytes)", path));
  }
  return m;
}

}  // namespace kvsim
