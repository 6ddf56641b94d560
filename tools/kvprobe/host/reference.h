// Float64 CPU reference for the attention kernels kvprobe measures, and the bf16
// conversions used to feed both with identical inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvprobe {

// bf16 <-> float, round to nearest even (NaN stays NaN).
uint16_t FloatToBf16(float value);
float Bf16ToFloat(uint16_t bits);

// Shapes shared by the references. Attention heads are grouped: query head h reads
// KV head h / (q_heads / kv_heads). REQUIRES: kv_heads divides q_heads.
struct AttentionShape {
  int batch = 1;
  int q_heads = 1;
  int kv_heads = 1;
  int head_dim = 1;
};

// Decode attention, one query token per sequence, softmax(q.K^T / sqrt(d)) V over
// the first context_lens[b] cached tokens of sequence b.
// q: [batch][q_heads][head_dim]; k, v: [batch][max_context][kv_heads][head_dim];
// returns [batch][q_heads][head_dim]. REQUIRES: 1 <= context_lens[b] <= max_context.
std::vector<double> DecodeAttentionReference(const AttentionShape& shape, int max_context,
                                             const std::vector<int>& context_lens,
                                             const std::vector<float>& q,
                                             const std::vector<float>& k,
                                             const std::vector<float>& v);

// Causal prefill attention: token i attends to tokens 0..i of its own sequence.
// q: [batch][tokens][q_heads][head_dim]; k, v: [batch][tokens][kv_heads][head_dim];
// returns [batch][tokens][q_heads][head_dim].
std::vector<double> PrefillAttentionReference(const AttentionShape& shape, int tokens,
                                              const std::vector<float>& q,
                                              const std::vector<float>& k,
                                              const std::vector<float>& v);

// max |got - want| / max |want| (0 when both are all zero).
double MaxRelativeError(const std::vector<float>& got, const std::vector<double>& want);

// Nearest-rank percentile of `values` (q in [0, 1]). REQUIRES: non-empty.
double Percentile(std::vector<double> values, double q);

}  // namespace kvprobe
