// A small dense model card and a round-number GPU card built in code, for timing
// tests whose figures are worked out by hand. Model: 2 layers, hidden 1024, 8 query
// heads and 2 KV heads of 128, FFN 4096, vocab 32000, bf16. GPU: 1 PFLOP/s, 2 TB/s,
// 400 GB/s links, 50 GB/s to the host, 80 GiB, no efficiencies stated.
#pragma once

#include <string>

#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"

namespace kvsim::testing {

inline ModelSpec TinyDenseModel(const std::string& name) {
  ModelSpec m;
  m.name = name;
  m.num_layers = 2;
  m.hidden_size = 1024;
  m.num_heads = 8;
  m.num_kv_heads = 2;
  m.head_dim = 128;
  m.ffn_size = 4096;
  m.vocab_size = 32000;
  m.max_context_tokens = 32768;
  m.dtype_bytes = 2;
  return m;
}

inline GpuSpec TinyGpu() {
  GpuSpec g;
  g.name = "tiny-gpu";
  g.memory_bytes = int64_t{80} << 30;
  g.bf16_flops_per_s = 1e15;
  g.hbm_bandwidth_bytes_per_s = 2e12;
  g.link_bandwidth_bytes_per_s = 4e11;
  return g;
}

}  // namespace kvsim::testing
