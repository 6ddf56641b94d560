// The GEMMs of one transformer layer (and the LM head) on one tensor-parallel rank:
// C[tokens, n] = X[tokens, k] x W[k, n]. One definition for kvprobe, which times them
// (its [gemm] rows), and for kvsim's profiled model, which reads those rows back.
// Header-only and dependency-free, so kvprobe's standalone build includes it too.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>

namespace kvsim {

// The model-card sizes the shapes depend on (ffn per expert for MoE cards).
struct LayerDims {
  int64_t hidden = 0, heads = 0, kv_heads = 0, head_dim = 0, ffn = 0, vocab = 0;
};

struct LayerGemm {
  std::string_view layer;  // qkv, o, gate_up, down, lm_head
  int64_t n = 0;           // output width on one rank
  int64_t k = 0;           // input width on one rank
};

// Per-rank widths at tensor parallelism `tp`: qkv n = (heads/tp + 2 max(1,
// kv_heads/tp)) head_dim, k = hidden; o n = hidden, k = heads head_dim / tp; gate_up
// n = 2 ffn / tp, k = hidden; down n = hidden, k = ffn / tp; lm_head n = vocab / tp,
// k = hidden (integer division). REQUIRES: tp >= 1 divides heads.
constexpr std::array<LayerGemm, 5> LayerGemmShapes(const LayerDims& d, int64_t tp) {
  const int64_t kv_per_rank = std::max<int64_t>(1, d.kv_heads / tp);
  return {{{"qkv", (d.heads / tp + 2 * kv_per_rank) * d.head_dim, d.hidden},
           {"o", d.hidden, d.heads * d.head_dim / tp},
           {"gate_up", 2 * d.ffn / tp, d.hidden},
           {"down", d.hidden, d.ffn / tp},
           {"lm_head", d.vocab / tp, d.hidden}}};
}

}  // namespace kvsim
