// Float64 attention reference and helpers.
#include "tools/kvprobe/host/reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace kvprobe {

uint16_t FloatToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) {
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN
  }
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float Bf16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

namespace {

void CheckShape(const AttentionShape& s) {
  if (s.batch < 1 || s.q_heads < 1 || s.kv_heads < 1 || s.head_dim < 1 ||
      s.q_heads % s.kv_heads != 0) {
    throw std::invalid_argument("bad attention shape");
  }
}

// softmax(scores) . values for one query, in double.
void Attend(const float* q, int n, int head_dim, double scale,
            const std::vector<const float*>& keys, const std::vector<const float*>& values,
            double* out) {
  std::vector<double> scores(n);
  double max_score = -INFINITY;
  for (int t = 0; t < n; ++t) {
    double dot = 0;
    for (int d = 0; d < head_dim; ++d) dot += static_cast<double>(q[d]) * keys[t][d];
    scores[t] = dot * scale;
    max_score = std::max(max_score, scores[t]);
  }
  double total = 0;
  for (double& s : scores) total += (s = std::exp(s - max_score));
  for (int d = 0; d < head_dim; ++d) out[d] = 0;
  for (int t = 0; t < n; ++t) {
    const double p = scores[t] / total;
    for (int d = 0; d < head_dim; ++d) out[d] += p * values[t][d];
  }
}

}  // namespace

std::vector<double> DecodeAttentionReference(const AttentionShape& s, int max_context,
                                             const std::vector<int>& context_lens,
                                             const std::vector<float>& q,
                                             const std::vector<float>& k,
                                             const std::vector<float>& v) {
  CheckShape(s);
  const size_t kv_size = static_cast<size_t>(s.batch) * max_context * s.kv_heads * s.head_dim;
  if (static_cast<int>(context_lens.size()) != s.batch ||
      q.size() != static_cast<size_t>(s.batch) * s.q_heads * s.head_dim || k.size() != kv_size ||
      v.size() != kv_size) {
    throw std::invalid_argument("decode reference: input sizes do not match the shape");
  }
  const int group = s.q_heads / s.kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  std::vector<double> out(q.size());
  for (int b = 0; b < s.batch; ++b) {
    const int n = context_lens[b];
    if (n < 1 || n > max_context) throw std::invalid_argument("decode reference: bad length");
    for (int h = 0; h < s.q_heads; ++h) {
      const int kvh = h / group;
      std::vector<const float*> keys(n), values(n);
      for (int t = 0; t < n; ++t) {
        const size_t off =
            ((static_cast<size_t>(b) * max_context + t) * s.kv_heads + kvh) * s.head_dim;
        keys[t] = &k[off];
        values[t] = &v[off];
      }
      const size_t qo = (static_cast<size_t>(b) * s.q_heads + h) * s.head_dim;
      Attend(&q[qo], n, s.head_dim, scale, keys, values, &out[qo]);
    }
  }
  return out;
}

std::vector<double> PrefillAttentionReference(const AttentionShape& s, int tokens,
                                              const std::vector<float>& q,
                                              const std::vector<float>& k,
                                              const std::vector<float>& v) {
  CheckShape(s);
  const size_t q_size = static_cast<size_t>(s.batch) * tokens * s.q_heads * s.head_dim;
  const size_t kv_size = static_cast<size_t>(s.batch) * tokens * s.kv_heads * s.head_dim;
  if (tokens < 1 || q.size() != q_size || k.size() != kv_size || v.size() != kv_size) {
    throw std::invalid_argument("prefill reference: input sizes do not match the shape");
  }
  const int group = s.q_heads / s.kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  std::vector<double> out(q_size);
  for (int b = 0; b < s.batch; ++b) {
    for (int h = 0; h < s.q_heads; ++h) {
      const int kvh = h / group;
      std::vector<const float*> keys(tokens), values(tokens);
      for (int t = 0; t < tokens; ++t) {
        const size_t off = ((static_cast<size_t>(b) * tokens + t) * s.kv_heads + kvh) * s.head_dim;
        keys[t] = &k[off];
        values[t] = &v[off];
      }
      for (int i = 0; i < tokens; ++i) {
        const size_t qo = ((static_cast<size_t>(b) * tokens + i) * s.q_heads + h) * s.head_dim;
        Attend(&q[qo], i + 1, s.head_dim, scale, keys, values, &out[qo]);
      }
    }
  }
  return out;
}

double MaxRelativeError(const std::vector<float>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) throw std::invalid_argument("size mismatch");
  double max_diff = 0, max_want = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(got[i]) - want[i]));
    max_want = std::max(max_want, std::fabs(want[i]));
  }
  if (max_want == 0) return max_diff == 0 ? 0 : INFINITY;
  return max_diff / max_want;
}

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) throw std::invalid_argument("percentile of nothing");
  std::sort(values.begin(), values.end());
  const auto n = static_cast<double>(values.size());
  // The epsilon keeps q * n that should be whole (0.07 * 100 = 7.000000000000001)
  // from rounding up to the next rank.
  const auto rank = static_cast<size_t>(std::clamp(std::ceil(q * n - 1e-9), 1.0, n));
  return values[rank - 1];
}

}  // namespace kvprobe
