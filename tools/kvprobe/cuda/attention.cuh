// Attention kernels written for kvprobe: decode (one query token per sequence,
// grouped-query heads) and causal prefill, each over contiguous KV or paged KV
// reached through a block table; the kernel code is shared, only the address of a
// cached token differs. Head dimension 128, bf16 data, fp32 accumulation.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <utility>
#include <vector>

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

// How each warp of the decode kernel schedules its loads of K and V.
enum class DecodeLoads {
  kRotated,    // the next step's K once this step is scored, its V once P.V is done, so that
               // loads are in flight while the warp computes (the default)
  kWholeStep,  // all of a step's K and V loads first, then the step's arithmetic
  kStaged,     // K and V through a ring of shared-memory slots (cp.async), the next three
               // steps requested while the warp computes on one; one block of 8 warps per
               // SM, only where a block may have 224 KB of shared memory (Hopper)
  kStagedW4,   // staged with blocks of 4 warps, each taking steps of 32 tokens (the same
               // ring; kvprobe 0.3.5-0.3.9's staged kernel)
  kBulk,       // staged's ring filled by the Tensor Memory Accelerator's bulk tensor copies
               // (one lane issues 4-8 a step); only in a kvprobe built with
               // -DKVPROBE_DECODE_BULK=1, on Hopper and later, over contiguous KV or blocks
               // of a power of two >= 16 tokens
};

// "rotated", "whole_step", "staged", "staged_w4" or "bulk" (decode_splits.csv's `loads`
// column).
const char* DecodeLoadsName(DecodeLoads loads);

// The load schedules of the decode kernel on the current device (the tuner times each,
// the check runs each), the default first; the staged two only where their shared memory fits a
// block, `bulk` only in a build with -DKVPROBE_DECODE_BULK=1 where it fits too and the GPU
// has the Tensor Memory Accelerator.
std::vector<DecodeLoads> DecodeLoadSchedules();

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
  // Splits of the context: 0 takes the kernel's split plan; n > 0 cuts max_len into
  // about n equal splits (at most MaxDecodeSplits(max_len); TuneDecodeSplits picks n).
  int splits = 0;
  DecodeLoads loads = DecodeLoads::kRotated;
  // Only in a kvprobe built with -DKVPROBE_DECODE_TRACE=1, and then only if set: the
  // staged kernel's timestamps (DecodeTraceIndex); ignored otherwise.
  unsigned long long* trace = nullptr;
};

// Where -DKVPROBE_DECODE_TRACE=1 builds of the staged decode kernel write their timestamps:
// element 0 of the buffer counts finished blocks (launch n's blocks see n x blocks to (n +
// 1) x blocks - 1 of them, as long as launches do not overlap: not so in a
// -DKVPROBE_DECODE_PDL=1 build); stamp s of warp w of block `block` (blockIdx flattened, x
// fastest) in launch n lies at DecodeTraceIndex(n, block, w, s), the last
// kDecodeTraceLaunches launches kept. Stamps (DecodeTraceStamp): global timer readings (ns),
// the SM and cycle counts.
constexpr int kDecodeTraceLaunches = 8, kDecodeTraceMaxBlocks = 1024, kDecodeTraceMaxWarps = 8;
enum DecodeTraceStamp {
  kTraceEntryNs,       // the warp's first instruction
  kTraceSmId,          // the SM it ran on
  kTraceLensNs,        // its sequence's context length arrived
  kTraceEnqueuedNs,    // its first steps' copies all issued
  kTraceFirstDataNs,   // its first step's K and V landed in shared memory
  kTraceLastDataNs,    // its last step's landed
  kTraceLoopEndNs,     // its last step's arithmetic issued
  kTraceComputedNs,    // its last step's results in registers (a read that waits on them)
  kTraceMergeStartNs,  // its block's warps all past the barrier before the merge
  kTraceExitNs,        // its block's merged result's stores issued
  kTraceWaitCycles,    // SM cycles spent waiting for steps' data, summed over its steps
  kTraceStepCycles,    // SM cycles from entry to loop end
  kTraceSteps,         // steps it ran
  kDecodeTraceStamps
};
inline constexpr size_t DecodeTraceIndex(int launch, int block, int warp, int stamp) {
  return 1 +
         ((static_cast<size_t>(launch % kDecodeTraceLaunches) * kDecodeTraceMaxBlocks + block) *
              kDecodeTraceMaxWarps +
          warp) *
             kDecodeTraceStamps +
         stamp;
}
constexpr size_t kDecodeTraceElems = 1 + static_cast<size_t>(kDecodeTraceLaunches) *
                                             kDecodeTraceMaxBlocks * kDecodeTraceMaxWarps *
                                             kDecodeTraceStamps;

// Floats of workspace a decode launch may need, with the plan's splits or any
// forced number of them.
size_t DecodeWorkspaceFloats(int batch, int q_heads, int max_len, int kv_heads, int sm_count);

// The sizes of a decode launch: `batch` sequences of at most `max_len` cached tokens,
// q_heads query heads over kv_heads KV heads, on a GPU of `sm_count` SMs.
struct DecodeSizes {
  int batch = 0, q_heads = 0, kv_heads = 0;
  int max_len = 0;
  int sm_count = 132;
};

inline size_t DecodeWorkspaceFloats(const DecodeSizes& s) {
  return DecodeWorkspaceFloats(s.batch, s.q_heads, s.max_len, s.kv_heads, s.sm_count);
}

// The arguments of a decode launch of `sizes` over these device buffers; `workspace`
// holds DecodeWorkspaceFloats(sizes) floats. The layout (contiguous, max_context 0)
// and splits (the plan's) keep their defaults for the caller to set.
inline DecodeArgs MakeDecodeArgs(const DecodeSizes& sizes, const __nv_bfloat16* q,
                                 const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* out,
                                 const int* context_lens, float* workspace) {
  DecodeArgs a;
  a.q = q;
  a.k = k;
  a.v = v;
  a.context_lens = context_lens;
  a.out = out;
  a.workspace = workspace;
  a.batch = sizes.batch;
  a.q_heads = sizes.q_heads;
  a.kv_heads = sizes.kv_heads;
  a.max_len = sizes.max_len;
  a.sm_count = sizes.sm_count;
  return a;
}

// Most splits a context of max_len tokens is cut into (each split >= 128 tokens).
int MaxDecodeSplits(int max_len);

// Decode launches of one configuration, each timed as CUDA graph replays.
struct DecodeTuning {
  struct Candidate {
    int splits = 1;
    DecodeLoads loads = DecodeLoads::kRotated;
    double us = 0;  // per launch
  };
  int planned_splits = 1;  // what the split plan picks
  double planned_us = 0;   // its time per launch, with the default loads
  int splits = 1;          // the fastest candidate's number of splits
  int args_splits = 0;     // the DecodeArgs::splits value that launches it (0: the plan)
  DecodeLoads loads = DecodeLoads::kRotated;  // the fastest candidate's load schedule
  double us = 0;                              // its time per launch
  std::vector<Candidate> tried;               // every candidate, the plan's first
};

// Copies of a decode launch's KV cache that consecutive timed launches cycle through,
// so that a small cache is read from HBM as in a pass (where every other layer's
// weights and KV stream through the L2 between two uses of a layer's KV), not from the
// L2 its previous launch left it in. Copy c is the cache at k + c x stride_elems and
// v + c x stride_elems, with the same layout and block table.
struct KvCopies {
  int count = 1;
  size_t stride_elems = 0;
};

// Enqueues decode attention for `args` over copy `i` (mod copies.count) of its KV.
void LaunchDecodeOnCopy(DecodeArgs args, const KvCopies& copies, int i, cudaStream_t stream);

// Times decode attention for `args` (its buffers must be valid) with the plan's
// splits and with each distinct number of splits from 1 to MaxDecodeSplits(max_len),
// each with every load schedule (DecodeLoadSchedules), and returns the fastest, as an
// engine's kernel selection would (FlashDecoding and FlashAttention's num_splits heuristics aim at
// the same choice). Each timed graph cycles through `copies` of the KV. Enqueues and
// synchronizes on `stream`.
DecodeTuning TuneDecodeSplits(DecodeArgs args, cudaStream_t stream, const KvCopies& copies = {});

// Enqueues decode attention on `stream`. Supported q_heads / kv_heads: 1, 2, 4, 7, 8.
void LaunchDecodeAttention(const DecodeArgs& args, cudaStream_t stream);

struct PrefillArgs {
  const __nv_bfloat16* q = nullptr;  // [batch][tokens][q_heads][128]
  const __nv_bfloat16* k = nullptr;  // rows as KvLayout says (contiguous: max_context = tokens)
  const __nv_bfloat16* v = nullptr;
  __nv_bfloat16* out = nullptr;  // [batch][tokens][q_heads][128]
  KvLayout layout;
  int batch = 0, tokens = 0, q_heads = 0, kv_heads = 0;
  // 16-row m-tiles per warp (64 or 128 query rows per block): 0 lets the kernel
  // choose for the launch's sizes; 1 or 2 forces one.
  int m_tiles = 0;
};

// Enqueues causal prefill attention on `stream` (tensor cores (mma.sync), query blocks of 64 or
// 128 rows (PrefillArgs::m_tiles) over 64-token K/V tiles).
void LaunchPrefillAttention(const PrefillArgs& args, cudaStream_t stream);

}  // namespace kvprobe
