// A small dense model card built in code, for timing tests whose figures are worked
// out by hand: 2 layers, hidden 1024, 8 query heads and 2 KV heads of 128, FFN 4096,
// vocab 32000, bf16.
#pragma once

#include <string>

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

}  // namespace kvsim::testing
