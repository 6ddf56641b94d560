// Attention kernels written for kvprobe: decode (one query token per sequence,
// grouped-query heads) and causal prefill, each over contiguous KV or paged KV
// reached through a block table; the kernel code is shared, only the address of a
// cached token differs. Head dimension 128, bf16 data, fp32 accumulation.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace kvprobe {

constexpr int kHeadDim = 128;

// Where cached token t of sequence b lives. KV rows are [row][kv_heads][kHeadDim].
struct KvLayout {
  // Contiguous: row = b * max_context + t. Paged: row = block_table[b * max_blocks +
  // t / block_tokens] * block_tokens + t % block_tokens.
  const int* block_table = nullptr;  // device; null selects the contiguous layout
  int block_tokens = 0;
  int max_blocks = 0;
  int max_context = 0;
};

struct DecodeArgs {
  const __nv_bfloat16* q = nullptr;  // [batch][q_heads][128]
  const __nv_bfloat16* k = nullptr;  // rows as KvLayout says
  const __nv_bfloat16* v = nullptr;
  const int* context_lens = nullptr;  // device [batch], each >= 1
  __nv_bfloat16* out = nullptr;       // [batch][q_heads][128]
  float* workspace = nullptr;         // split partials: DecodeWorkspaceFloats(...) floats
  KvLayout layout;
  int batch = 0, q_heads = 0, kv_heads = 0;
  int max_len = 0;  // longest context in the batch (for the split plan)
  int sm_count = 132;
};

// Floats of workspace a decode launch may need.
size_t DecodeWorkspaceFloats(int batch, int q_heads, int max_len, int kv_heads, int sm_count);

// Enqueues decode attention on `stream`. Supported q_heads / kv_heads: 1, 2, 4, 7, 8.
void LaunchDecodeAttention(const DecodeArgs& args, cudaStream_t stream);

struct PrefillArgs {
  const __nv_bfloat16* q = nullptr;  // [batch][tokens][q_heads][128]
  const __nv_bfloat16* k = nullptr;  // rows as KvLayout says (contiguous: max_context = tokens)
  const __nv_bfloat16* v = nullptr;
  __nv_bfloat16* out = nullptr;  // [batch][tokens][q_heads][128]
  KvLayout layout;
  int batch = 0, tokens = 0, q_heads = 0, kv_heads = 0;
};

// Enqueues causal prefill attention on `stream` (tensor cores (mma.sync), 64-row query blocks over
// 64-token K/V tiles).
void LaunchPrefillAttention(const PrefillArgs& args, cudaStream_t stream);

}  // namespace kvprobe
