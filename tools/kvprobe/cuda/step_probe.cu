// [step]: whole-model forward passes ("iterations") timed on the GPU, to validate
// kvsim's profiled model against real full-model iterations.
//
// One pass over a batch of T = decode_seqs + prefill_tokens tokens (decode tokens
// first, then the prefill chunk's), for each of the card's num_layers layers in order:
//   residual += x; x = RMSNorm(residual)          (fused, one block per row)
//   qkv = x Wqkv                                  (cuBLASLt, the [gemm] qkv shape)
//   RoPE (rotate half) on Q and K; Q to a contiguous buffer, K in place
//   new K and V of every token -> KV cache rows   (slot per token, as an engine's)
//   attention: kvprobe's decode kernel for the decode sequences (context_tokens cached
//              + the new one), its prefill kernel for the chunk (causal, 0 cached)
//   x = attn Wo
//   residual += x; x = RMSNorm(residual)
//   gu = x Wgate_up; act = SiLU(gate) * up; x = act Wdown
// then residual += x; x = RMSNorm(residual); the logit rows (one per decode sequence
// and the chunk's last token) are gathered and multiplied by the LM head.
//
// Tensor parallelism (TP > 1): one process per GPU (rank_processes.h), each running
// its rank's share as vLLM shards a Llama layer: the [gemm] per-rank shapes at that
// TP (QKV and gate_up split by columns, O and down by rows), num_heads / TP query heads
// and max(1, num_kv_heads / TP) KV heads, an NCCL all-reduce of the hidden states
// after the embedding lookup (a vocabulary-sharded embedding) and after each layer's O
// and down GEMMs, and an all-gather of the LM head's vocabulary shards. The
// collectives are captured in the pass's CUDA graph, as engines capture them.
//
// Memory: ONE layer's weights and ONE layer's KV cache are allocated and every layer
// uses them. This does not flatter the timing: a layer's weights (436 MB for
// Llama-3-8B) far exceed the H200's 50 MB L2, and between two uses of the same weight
// or KV row all of a layer's other weights stream through the L2 and evict it, so every
// layer reads its weights and KV from HBM as a full model would. It does let
// compositions run whose full-model KV would not fit on the GPU; their progress line
// says so (kvsim would never schedule them there, but their times are still real).
//
// Values: random bf16 weights scaled so every GEMM keeps its input's RMS, norm
// weights 1, embeddings and cached KV uniform in [-1, 1): activations stay O(1) over
// all layers. The embedding lookup is a copy of fixed input rows into x (and a zeroed
// residual, so the first fused add-norm is a plain RMSNorm); it is part of the pass.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "tools/kvprobe/cuda/attention.cuh"
#include "tools/kvprobe/cuda/bf16x8.cuh"
#include "tools/kvprobe/cuda/common.cuh"
#include "tools/kvprobe/cuda/gemm.cuh"
#include "tools/kvprobe/cuda/nccl_rank.cuh"
#include "tools/kvprobe/cuda/probes.h"
#include "tools/kvprobe/host/allreduce_plan.h"
#include "tools/kvprobe/host/model_card.h"
#include "tools/kvprobe/host/rank_processes.h"
#include "tools/kvprobe/host/reference.h"
#include "tools/kvprobe/host/step_ranks.h"
#include "tools/kvprobe/host/text.h"

namespace kvprobe {
namespace {

using bf16 = __nv_bfloat16;

constexpr float kRmsEps = 1e-5f;
constexpr double kRopeBase = 500000.0;  // Llama 3's; the frequencies do not change the time
constexpr int kPagedBlockTokens = 16;
constexpr size_t kGemmWorkspaceBytes = 64 << 20;
constexpr int kWarmups = 3;
constexpr int kMinReps = 10;
constexpr int kMaxReps = 1000;
constexpr double kMinTimedUs = 2000;  // the timed repetitions together span at least this
constexpr int kClassMinReps = 5;
constexpr double kMemoryFraction = 0.8;  // of free device memory one allocation may take
constexpr int kRanksTimeoutS = 3600;     // a TP rank set that has not finished by then is killed

// ---------------------------------------------------------------------------
// Kernels. Rows are 16-byte aligned (every width is a multiple of 8 bf16) and each
// thread moves 16 bytes (8 bf16) per load or store.

__device__ __forceinline__ uint4 Pack8(const float* in) {
  uint4 raw;
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(in[2 * i], in[2 * i + 1]);
  return raw;
}

__device__ __forceinline__ uint4 Load16(const bf16* p) {
  return *reinterpret_cast<const uint4*>(p);
}
__device__ __forceinline__ void Store16(bf16* p, const uint4& v) {
  *reinterpret_cast<uint4*>(p) = v;
}

constexpr int kNormThreads = 256;
constexpr int kNormMaxChunks = 8;  // 16-byte chunks per thread: hidden <= 256 x 8 x 8
constexpr int kMaxHidden = kNormThreads * kNormMaxChunks * 8;

// One block per row r of [rows][hidden]: residual[r] += x[r] (rounded to bf16), then
// x[r] = residual[r] / sqrt(mean(residual[r]^2) + eps) * weight. The row stays in
// registers between the two halves. REQUIRES: hidden % 8 == 0, hidden <= kMaxHidden.
__global__ void __launch_bounds__(kNormThreads)
    AddRmsNormKernel(bf16* x, bf16* residual, const bf16* weight, int hidden, float eps) {
  const int chunks = hidden / 8;
  const size_t base = static_cast<size_t>(blockIdx.x) * hidden;
  uint4 sum[kNormMaxChunks];
  float sq = 0.f;
#pragma unroll
  for (int i = 0; i < kNormMaxChunks; ++i) {
    const int c = threadIdx.x + i * kNormThreads;
    if (c < chunks) {
      float a[8], b[8];
      Unpack8(Load16(x + base + c * 8), a);
      Unpack8(Load16(residual + base + c * 8), b);
#pragma unroll
      for (int e = 0; e < 8; ++e) a[e] += b[e];
      sum[i] = Pack8(a);
      Store16(residual + base + c * 8, sum[i]);
      Unpack8(sum[i], a);  // the norm of the stored (rounded) residual
#pragma unroll
      for (int e = 0; e < 8; ++e) sq = fmaf(a[e], a[e], sq);
    }
  }
  __shared__ float warp_sums[kNormThreads / 32];
#pragma unroll
  for (int off = 16; off > 0; off /= 2) sq += __shfl_xor_sync(0xffffffffu, sq, off);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = sq;
  __syncthreads();
  float total = 0.f;
#pragma unroll
  for (int w = 0; w < kNormThreads / 32; ++w) total += warp_sums[w];
  const float inv = rsqrtf(total / hidden + eps);
#pragma unroll
  for (int i = 0; i < kNormMaxChunks; ++i) {
    const int c = threadIdx.x + i * kNormThreads;
    if (c < chunks) {
      float a[8], w[8];
      Unpack8(sum[i], a);
      Unpack8(Load16(weight + c * 8), w);
#pragma unroll
      for (int e = 0; e < 8; ++e) a[e] = a[e] * inv * w[e];
      Store16(x + base + c * 8, Pack8(a));
    }
  }
}

constexpr int kRopeThreads = 128;

// One block per token t. Row t of qkv is [q_heads + kv_heads + kv_heads][kHeadDim] (Q,
// K, V heads). Each Q and K head is rotated (rotate half): elements i and i + 64 by
// angle positions[t] x freq_i, cos_sin[p * 64 + i] = (cos, sin) of p x freq_i. Q heads
// go to q_out[t] ([q_heads][kHeadDim], contiguous), K heads are rotated in place, V is
// untouched. A thread handles 8 pairs (two 16-byte loads) of one head at a time.
__global__ void __launch_bounds__(kRopeThreads)
    RopeKernel(bf16* qkv, bf16* q_out, const int* positions, const float2* cos_sin, int qkv_n,
               int q_heads, int kv_heads) {
  constexpr int kHalf = kHeadDim / 2;
  constexpr int kPartsPerHead = kHalf / 8;
  const int t = blockIdx.x;
  const float2* cs = cos_sin + static_cast<size_t>(positions[t]) * kHalf;
  bf16* row = qkv + static_cast<size_t>(t) * qkv_n;
  const int items = (q_heads + kv_heads) * kPartsPerHead;
  for (int it = threadIdx.x; it < items; it += blockDim.x) {
    const int h = it / kPartsPerHead, j = (it % kPartsPerHead) * 8;
    const bf16* src = row + h * kHeadDim;
    float lo[8], hi[8], c[8], s[8];
    Unpack8(Load16(src + j), lo);
    Unpack8(Load16(src + kHalf + j), hi);
#pragma unroll
    for (int e = 0; e < 8; e += 2) {
      const float4 v = *reinterpret_cast<const float4*>(cs + j + e);  // two (cos, sin)
      c[e] = v.x;
      s[e] = v.y;
      c[e + 1] = v.z;
      s[e + 1] = v.w;
    }
    float out_lo[8], out_hi[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      out_lo[e] = lo[e] * c[e] - hi[e] * s[e];
      out_hi[e] = hi[e] * c[e] + lo[e] * s[e];
    }
    bf16* dst = h < q_heads ? q_out + (static_cast<size_t>(t) * q_heads + h) * kHeadDim
                            : row + h * kHeadDim;
    Store16(dst + j, Pack8(out_lo));
    Store16(dst + kHalf + j, Pack8(out_hi));
  }
}

constexpr int kKvWriteThreads = 256;

// One block per token t: copies the K and V heads of qkv row t (layout as RopeKernel)
// to row slots[t] of k_cache and v_cache ([row][kv_heads][kHeadDim]).
__global__ void __launch_bounds__(kKvWriteThreads)
    KvWriteKernel(const bf16* qkv, bf16* k_cache, bf16* v_cache, const int* slots, int qkv_n,
                  int q_heads, int kv_heads) {
  const int t = blockIdx.x;
  const int kv_dim = kv_heads * kHeadDim, chunks = kv_dim / 8;
  const bf16* k_src = qkv + static_cast<size_t>(t) * qkv_n + q_heads * kHeadDim;
  const size_t dst = static_cast<size_t>(slots[t]) * kv_dim;
  for (int c = threadIdx.x; c < 2 * chunks; c += blockDim.x) {
    const bool is_v = c >= chunks;
    const int off = (is_v ? c - chunks : c) * 8;
    Store16((is_v ? v_cache : k_cache) + dst + off, Load16(k_src + (is_v ? kv_dim : 0) + off));
  }
}

constexpr int kSiluThreads = 256;

// out[r][j] = silu(gu[r][j]) x gu[r][ffn + j] for r < rows, j < ffn (gu is
// [rows][2 ffn], gate half first); grid-stride over 8-element chunks.
__global__ void __launch_bounds__(kSiluThreads)
    SiluMulKernel(const bf16* gu, bf16* out, int rows, int ffn) {
  const int per_row = ffn / 8;
  const size_t total = static_cast<size_t>(rows) * per_row;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t r = i / per_row;
    const int c = static_cast<int>(i % per_row) * 8;
    float g[8], u[8];
    Unpack8(Load16(gu + r * 2 * ffn + c), g);
    Unpack8(Load16(gu + r * 2 * ffn + ffn + c), u);
#pragma unroll
    for (int e = 0; e < 8; ++e) g[e] = g[e] / (1.f + __expf(-g[e])) * u[e];
    Store16(out + r * ffn + c, Pack8(g));
  }
}

constexpr int kGatherThreads = 256;

// One block per output row r: dst[r] = src[rows[r]], rows of `width` bf16.
__global__ void __launch_bounds__(kGatherThreads)
    GatherRowsKernel(const bf16* src, const int* rows, bf16* dst, int width) {
  const bf16* from = src + static_cast<size_t>(rows[blockIdx.x]) * width;
  bf16* to = dst + static_cast<size_t>(blockIdx.x) * width;
  for (int c = threadIdx.x * 8; c < width; c += blockDim.x * 8) Store16(to + c, Load16(from + c));
}

// counts[0] += values of data[0, n) that are not finite, counts[1] += non-zero ones.
__global__ void CountValuesKernel(const bf16* data, size_t n, unsigned long long* counts) {
  unsigned long long bad = 0, nonzero = 0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float v = __bfloat162float(data[i]);
    bad += isfinite(v) ? 0 : 1;
    nonzero += v != 0.f ? 1 : 0;
  }
#pragma unroll
  for (int off = 16; off > 0; off /= 2) {
    bad += __shfl_xor_sync(0xffffffffu, bad, off);
    nonzero += __shfl_xor_sync(0xffffffffu, nonzero, off);
  }
  if (threadIdx.x % 32 == 0) {
    atomicAdd(&counts[0], bad);
    atomicAdd(&counts[1], nonzero);
  }
}

// What one of a pass's GEMMs does to the L2 around the small kernels, without its
// arithmetic: reads `chunks` 16-byte words of `weights` (as the GEMM streams its weight
// matrix, evicting older lines) and writes `out_values` values to `out` (as the GEMM
// writes the activations the next small kernel reads, leaving them in the L2). The
// values written are 1/4, so the norms fed by them stay finite. `sink` is written only
// if the words a thread read XOR to a value random weights practically never give; it
// keeps the reads. With 8 blocks of 256 threads per SM, each thread's one 16-byte load
// in flight keeps about 32 KB per SM requested, enough to stream at the HBM's rate.
__global__ void GemmStandInKernel(const uint4* weights, size_t chunks, bf16* out, size_t out_values,
                                  unsigned* sink) {
  const size_t first = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  uint32_t acc = 0;
#pragma unroll 8
  for (size_t i = first; i < chunks; i += stride) {
    const uint4 w = weights[i];
    acc ^= w.x ^ w.y ^ w.z ^ w.w;
  }
  const bf16 quarter = __float2bfloat16(0.25f);
  for (size_t i = first; i < out_values; i += stride) out[i] = quarter;
  if (acc == 0x9e3779b9u) atomicAdd(sink, 1u);
}

// table[p * 64 + i] = (cos, sin) of p x kRopeBase^(-2i / kHeadDim), p < positions.
__global__ void RopeTableKernel(float2* table, int positions) {
  constexpr int kHalf = kHeadDim / 2;
  const size_t n = static_cast<size_t>(positions) * kHalf;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const double freq = pow(kRopeBase, -2.0 * static_cast<double>(i % kHalf) / kHeadDim);
    double s, c;
    sincos(static_cast<double>(i / kHalf) * freq, &s, &c);
    table[i] = make_float2(static_cast<float>(c), static_cast<float>(s));
  }
}

// ---------------------------------------------------------------------------
// Launchers: each enqueues on `stream` and throws if the launch fails.

void AddRmsNorm(bf16* x, bf16* residual, const bf16* weight, int rows, int hidden,
                cudaStream_t stream) {
  AddRmsNormKernel<<<rows, kNormThreads, 0, stream>>>(x, residual, weight, hidden, kRmsEps);
  CUDA_CHECK(cudaGetLastError());
}

void Rope(bf16* qkv, bf16* q_out, const int* positions, const float2* cos_sin, int tokens,
          int qkv_n, int q_heads, int kv_heads, cudaStream_t stream) {
  RopeKernel<<<tokens, kRopeThreads, 0, stream>>>(qkv, q_out, positions, cos_sin, qkv_n, q_heads,
                                                  kv_heads);
  CUDA_CHECK(cudaGetLastError());
}

void KvWrite(const bf16* qkv, bf16* k_cache, bf16* v_cache, const int* slots, int tokens, int qkv_n,
             int q_heads, int kv_heads, cudaStream_t stream) {
  KvWriteKernel<<<tokens, kKvWriteThreads, 0, stream>>>(qkv, k_cache, v_cache, slots, qkv_n,
                                                        q_heads, kv_heads);
  CUDA_CHECK(cudaGetLastError());
}

void SiluMul(const bf16* gu, bf16* out, int rows, int ffn, int sm_count, cudaStream_t stream) {
  const size_t chunks = static_cast<size_t>(rows) * (ffn / 8);
  const size_t blocks = std::min<size_t>((chunks + kSiluThreads - 1) / kSiluThreads,
                                         static_cast<size_t>(sm_count) * 16);
  SiluMulKernel<<<static_cast<unsigned>(std::max<size_t>(blocks, 1)), kSiluThreads, 0, stream>>>(
      gu, out, rows, ffn);
  CUDA_CHECK(cudaGetLastError());
}

void GatherRows(const bf16* src, const int* rows, bf16* dst, int count, int width,
                cudaStream_t stream) {
  GatherRowsKernel<<<count, kGatherThreads, 0, stream>>>(src, rows, dst, width);
  CUDA_CHECK(cudaGetLastError());
}

constexpr int kStandInThreads = 256;

// A GEMM's stand-in (GemmStandInKernel): reads `weight_bytes` from `weights`, writes
// `out_values` values to `out`; 8 blocks per SM. REQUIRES: `weights` 16-byte aligned and
// `weight_bytes` a multiple of 16 (throws std::invalid_argument otherwise).
void GemmStandIn(const void* weights, size_t weight_bytes, bf16* out, size_t out_values,
                 unsigned* sink, int sm_count, cudaStream_t stream) {
  if (weight_bytes % 16 != 0 || reinterpret_cast<uintptr_t>(weights) % 16 != 0) {
    throw std::invalid_argument(
        "GemmStandIn: weights must be 16-byte aligned and a multiple of "
        "16 bytes, got " +
        std::to_string(weight_bytes) + " bytes");
  }
  GemmStandInKernel<<<static_cast<unsigned>(sm_count) * 8, kStandInThreads, 0, stream>>>(
      static_cast<const uint4*>(weights), weight_bytes / 16, out, out_values, sink);
  CUDA_CHECK(cudaGetLastError());
}

// (non-finite, non-zero) value counts of data[0, n); synchronizes `stream`.
std::pair<unsigned long long, unsigned long long> CountValues(const bf16* data, size_t n,
                                                              cudaStream_t stream) {
  DeviceBuffer<unsigned long long> counts(2);
  CUDA_CHECK(cudaMemsetAsync(counts.get(), 0, counts.bytes(), stream));
  CountValuesKernel<<<1024, 256, 0, stream>>>(data, n, counts.get());
  CUDA_CHECK(cudaGetLastError());
  unsigned long long host[2] = {0, 0};
  CUDA_CHECK(cudaMemcpyAsync(host, counts.get(), sizeof host, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return {host[0], host[1]};
}

DeviceBuffer<float2> RopeTable(int positions, cudaStream_t stream) {
  DeviceBuffer<float2> table(static_cast<size_t>(positions) * (kHeadDim / 2));
  RopeTableKernel<<<1024, 256, 0, stream>>>(table.get(), positions);
  CUDA_CHECK(cudaGetLastError());
  return table;
}

// ---------------------------------------------------------------------------
// Self-test of the small kernels against host computations on random inputs.

std::vector<float> RandomValues(size_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = Bf16ToFloat(FloatToBf16(dist(rng)));
  return v;
}

void Expect(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("step: kernel self-test failed: " + what);
}

void ExpectClose(const std::vector<float>& got, const std::vector<double>& want, double tolerance,
                 const std::string& what) {
  const double err = MaxRelativeError(got, want);
  Expect(err < tolerance, what + " (max relative error " +
                              (std::isfinite(err) ? Num(err, 3) : std::string("not finite")) + ")");
}

void VerifyStepKernels(ProbeContext& ctx) {
  std::mt19937_64 rng(99);
  cudaStream_t s = ctx.stream;
  {  // Fused residual add + RMSNorm; 600 chunks: 2 or 3 per thread.
    const int rows = 3, hidden = 4800;
    const auto x = RandomValues(rows * hidden, rng), r = RandomValues(rows * hidden, rng);
    const auto w = RandomValues(hidden, rng);
    auto dx = ToDevice(x), dr = ToDevice(r), dw = ToDevice(w);
    AddRmsNorm(dx.get(), dr.get(), dw.get(), rows, hidden, s);
    CUDA_CHECK(cudaStreamSynchronize(s));
    std::vector<double> want_r(x.size()), want_x(x.size());
    for (int i = 0; i < rows; ++i) {
      double sq = 0;
      for (int j = 0; j < hidden; ++j) {
        const size_t k = static_cast<size_t>(i) * hidden + j;
        want_r[k] = Bf16ToFloat(FloatToBf16(x[k] + r[k]));
        sq += want_r[k] * want_r[k];
      }
      const double inv = 1.0 / std::sqrt(sq / hidden + kRmsEps);
      for (int j = 0; j < hidden; ++j) {
        const size_t k = static_cast<size_t>(i) * hidden + j;
        want_x[k] = want_r[k] * inv * w[j];
      }
    }
    ExpectClose(ToHost(dr), want_r, 1e-6, "residual add");
    ExpectClose(ToHost(dx), want_x, 1e-2, "RMSNorm");
  }
  {  // RoPE on Q and K, V untouched.
    const int q_heads = 4, kv_heads = 2, qkv_n = (q_heads + 2 * kv_heads) * kHeadDim;
    const std::vector<int> positions = {0, 1, 777, 8191};
    const int tokens = static_cast<int>(positions.size());
    const auto qkv = RandomValues(static_cast<size_t>(tokens) * qkv_n, rng);
    auto dqkv = ToDevice(qkv);
    DeviceBuffer<bf16> dq(static_cast<size_t>(tokens) * q_heads * kHeadDim);
    auto dpos = IntsToDevice(positions);
    auto table = RopeTable(8192, s);
    Rope(dqkv.get(), dq.get(), dpos.get(), table.get(), tokens, qkv_n, q_heads, kv_heads, s);
    CUDA_CHECK(cudaStreamSynchronize(s));
    std::vector<double> want_q(dq.size()), want_qkv(qkv.begin(), qkv.end());
    for (int t = 0; t < tokens; ++t) {
      for (int h = 0; h < q_heads + kv_heads; ++h) {
        const float* src = &qkv[static_cast<size_t>(t) * qkv_n + h * kHeadDim];
        double* dst = h < q_heads ? &want_q[(static_cast<size_t>(t) * q_heads + h) * kHeadDim]
                                  : &want_qkv[static_cast<size_t>(t) * qkv_n + h * kHeadDim];
        for (int i = 0; i < kHeadDim / 2; ++i) {
          const double a = positions[t] * std::pow(kRopeBase, -2.0 * i / kHeadDim);
          dst[i] = src[i] * std::cos(a) - src[i + kHeadDim / 2] * std::sin(a);
          dst[i + kHeadDim / 2] = src[i + kHeadDim / 2] * std::cos(a) + src[i] * std::sin(a);
        }
      }
    }
    ExpectClose(ToHost(dq), want_q, 1e-2, "RoPE on Q");
    ExpectClose(ToHost(dqkv), want_qkv, 1e-2, "RoPE on K (V unchanged)");
  }
  {  // KV write to scattered slots; other rows stay zero.
    const int q_heads = 4, kv_heads = 2, qkv_n = (q_heads + 2 * kv_heads) * kHeadDim;
    const int kv_dim = kv_heads * kHeadDim, rows = 12;
    const std::vector<int> slots = {5, 0, 11, 2};
    const int tokens = static_cast<int>(slots.size());
    const auto qkv = RandomValues(static_cast<size_t>(tokens) * qkv_n, rng);
    auto dqkv = ToDevice(qkv);
    auto dslots = IntsToDevice(slots);
    DeviceBuffer<bf16> k(static_cast<size_t>(rows) * kv_dim), v(k.size());
    CUDA_CHECK(cudaMemsetAsync(k.get(), 0, k.bytes(), s));
    CUDA_CHECK(cudaMemsetAsync(v.get(), 0, v.bytes(), s));
    KvWrite(dqkv.get(), k.get(), v.get(), dslots.get(), tokens, qkv_n, q_heads, kv_heads, s);
    CUDA_CHECK(cudaStreamSynchronize(s));
    std::vector<double> want_k(k.size(), 0.0), want_v(v.size(), 0.0);
    for (int t = 0; t < tokens; ++t) {
      for (int i = 0; i < kv_dim; ++i) {
        const size_t src = static_cast<size_t>(t) * qkv_n + q_heads * kHeadDim + i;
        want_k[static_cast<size_t>(slots[t]) * kv_dim + i] = qkv[src];
        want_v[static_cast<size_t>(slots[t]) * kv_dim + i] = qkv[src + kv_dim];
      }
    }
    ExpectClose(ToHost(k), want_k, 1e-6, "KV write (K)");
    ExpectClose(ToHost(v), want_v, 1e-6, "KV write (V)");
  }
  {  // SiLU(gate) x up.
    const int rows = 3, ffn = 1000;
    const auto gu = RandomValues(static_cast<size_t>(rows) * 2 * ffn, rng);
    auto dgu = ToDevice(gu);
    DeviceBuffer<bf16> out(static_cast<size_t>(rows) * ffn);
    SiluMul(dgu.get(), out.get(), rows, ffn, ctx.sm_count, s);
    CUDA_CHECK(cudaStreamSynchronize(s));
    std::vector<double> want(out.size());
    for (int r = 0; r < rows; ++r) {
      for (int j = 0; j < ffn; ++j) {
        const double g = gu[static_cast<size_t>(r) * 2 * ffn + j];
        const double u = gu[static_cast<size_t>(r) * 2 * ffn + ffn + j];
        want[static_cast<size_t>(r) * ffn + j] = g / (1.0 + std::exp(-g)) * u;
      }
    }
    ExpectClose(ToHost(out), want, 1e-2, "SiLU x up");
  }
  {  // Row gather, and the value counter.
    const int width = 4104;
    const std::vector<int> rows = {3, 0, 3};
    auto src = RandomValues(4 * width, rng);
    src[width + 5] = 0.f;  // row 1, which is not gathered
    src[width + 6] = std::nanf("");
    src[width + 7] = INFINITY;
    auto dsrc = ToDevice(src);
    auto drows = IntsToDevice(rows);
    DeviceBuffer<bf16> dst(rows.size() * width);
    GatherRows(dsrc.get(), drows.get(), dst.get(), static_cast<int>(rows.size()), width, s);
    CUDA_CHECK(cudaStreamSynchronize(s));
    std::vector<double> want(dst.size());
    for (size_t r = 0; r < rows.size(); ++r) {
      for (int j = 0; j < width; ++j) want[r * width + j] = src[rows[r] * width + j];
    }
    ExpectClose(ToHost(dst), want, 1e-6, "row gather");
    size_t zeros = 0;
    for (float v : src) zeros += v == 0.f ? 1 : 0;
    const auto [bad, nonzero] = CountValues(dsrc.get(), src.size(), s);
    Expect(bad == 2 && nonzero == src.size() - zeros, "value count (" + std::to_string(bad) +
                                                          " non-finite, " +
                                                          std::to_string(nonzero) + " non-zero)");
  }
}

// ---------------------------------------------------------------------------
// The tensor-parallel group a pass runs in. At TP 1 (the default-constructed group)
// every collective is a no-op and Max returns its argument.

class TpGroup {
 public:
  TpGroup() = default;
#ifdef KVPROBE_HAVE_NCCL
  TpGroup(ncclComm_t comm, int rank, int size)
      : rank_(rank), size_(size), comm_(comm), scalar_(1) {}
#endif
  int rank() const { return rank_; }
  int size() const { return size_; }

  // data[0, count) summed over the ranks, in place; enqueued on `stream`.
  void AllReduce(bf16* data, size_t count, cudaStream_t stream) const {
#ifdef KVPROBE_HAVE_NCCL
    if (size_ > 1) {
      Nccl(ncclAllReduce(data, data, count, ncclBfloat16, ncclSum, comm_, stream), "ncclAllReduce");
    }
#else
    (void)data, (void)count, (void)stream;
#endif
  }
  // recv[r * count, (r + 1) * count) = rank r's send[0, count); enqueued on `stream`.
  void AllGather(const bf16* send, bf16* recv, size_t count, cudaStream_t stream) const {
#ifdef KVPROBE_HAVE_NCCL
    if (size_ > 1) {
      Nccl(ncclAllGather(send, recv, count, ncclBfloat16, comm_, stream), "ncclAllGather");
    }
#else
    (void)send, (void)recv, (void)count, (void)stream;
#endif
  }
  // The largest `value` over the ranks; synchronizes `stream`. Every rank must call
  // it at the same point: the ranks derive repetition counts from it, and each must
  // issue the same collectives.
  double Max(double value, cudaStream_t stream) const {
#ifdef KVPROBE_HAVE_NCCL
    if (size_ > 1) {
      CUDA_CHECK(
          cudaMemcpyAsync(scalar_.get(), &value, sizeof value, cudaMemcpyHostToDevice, stream));
      Nccl(ncclAllReduce(scalar_.get(), scalar_.get(), 1, ncclDouble, ncclMax, comm_, stream),
           "ncclAllReduce");
      CUDA_CHECK(
          cudaMemcpyAsync(&value, scalar_.get(), sizeof value, cudaMemcpyDeviceToHost, stream));
      CUDA_CHECK(cudaStreamSynchronize(stream));
    }
#else
    (void)stream;
#endif
    return value;
  }

 private:
  int rank_ = 0, size_ = 1;
#ifdef KVPROBE_HAVE_NCCL
  ncclComm_t comm_ = nullptr;
  DeviceBuffer<double> scalar_;
#endif
};

// ---------------------------------------------------------------------------
// Compositions.

struct Composition {
  int block_tokens = 0;  // 0: contiguous KV; else paged in blocks of this many tokens
  int decode_seqs = 0;
  int context_tokens = 0;  // cached tokens of each decode sequence before this step
  int prefill_tokens = 0;  // one prompt chunk, 0 cached before it

  int tokens() const { return decode_seqs + prefill_tokens; }
  int logit_rows() const { return decode_seqs + (prefill_tokens > 0 ? 1 : 0); }
  // Every pass is timed as a CUDA graph replay, as engines run steps (vLLM V1: full
  // graphs for decode-only steps, piecewise graphs around attention for the others),
  // so the host's launch rate never stands in for the GPU's work.
  bool graph() const { return true; }
  // Tokens each decode sequence holds in the cache during the step (with the new one).
  int decode_capacity() const { return decode_seqs > 0 ? context_tokens + 1 : 0; }
  int decode_blocks() const { return Blocks(decode_capacity()); }
  int prefill_blocks() const { return Blocks(prefill_tokens); }
  // Blocks of `tokens` tokens in the paged layout; 0 in the contiguous one.
  int Blocks(int tokens) const {
    return block_tokens > 0 ? (tokens + block_tokens - 1) / block_tokens : 0;
  }
  // KV cache rows of one layer: contiguous sequences of decode_capacity() rows, then
  // the chunk's; paged: whole blocks.
  size_t cache_rows() const {
    if (block_tokens == 0)
      return static_cast<size_t>(decode_seqs) * decode_capacity() + prefill_tokens;
    return (static_cast<size_t>(decode_seqs) * decode_blocks() + prefill_blocks()) * block_tokens;
  }
  int max_position() const {
    return std::max(decode_seqs > 0 ? context_tokens : 0, prefill_tokens - 1);
  }

  std::string Label() const {
    std::string s = block_tokens == 0 ? "contiguous" : "paged/" + std::to_string(block_tokens);
    if (decode_seqs > 0) {
      s += ", decode " + std::to_string(decode_seqs) + " x " + std::to_string(context_tokens);
    }
    if (prefill_tokens > 0) s += ", prefill " + std::to_string(prefill_tokens);
    return s;
  }
};

std::vector<Composition> StepGrid(bool quick) {
  const std::vector<int> seqs =
      quick ? std::vector<int>{1, 32} : std::vector<int>{1, 8, 32, 64, 128, 256};
  const std::vector<int> contexts =
      quick ? std::vector<int>{512} : std::vector<int>{512, 2048, 8192};
  const std::vector<int> prefills =
      quick ? std::vector<int>{512}
            : std::vector<int>{128, 256, 512, 1024, 2048, 4096, 8192, 16384};
  // Mixed (chunked-prefill) batches: decode sequences x their context + a chunk.
  struct Mixed {
    int seqs, context, chunk;
  };
  const std::vector<Mixed> mixed = quick ? std::vector<Mixed>{{32, 2048, 512}}
                                         : std::vector<Mixed>{{32, 2048, 512},
                                                              {32, 2048, 2048},
                                                              {8, 8192, 256},
                                                              {128, 1024, 1024},
                                                              {64, 4096, 512}};
  std::vector<Composition> grid;
  for (int d : seqs) {
    for (int c : contexts) {
      for (int bt : {0, kPagedBlockTokens}) grid.push_back({bt, d, c, 0});
    }
  }
  for (int p : prefills) {
    for (int bt : {0, kPagedBlockTokens}) grid.push_back({bt, 0, 0, p});
  }
  for (const Mixed& m : mixed) {
    for (int bt : {0, kPagedBlockTokens}) grid.push_back({bt, m.seqs, m.context, m.chunk});
  }
  return grid;
}

// KV heads on one rank at tensor parallelism `tp` (replicated below one per rank).
int64_t KvHeadsPerRank(const CardShapes& c, int tp) {
  return std::max<int64_t>(1, c.num_kv_heads / tp);
}

// Why `card` cannot be run by this probe at tensor parallelism `tp`, or "" when it can.
std::string Unsupported(const CardShapes& c, int tp) {
  if (c.num_experts > 1) return "MoE card (num_experts " + std::to_string(c.num_experts) + ")";
  if (c.head_dim != kHeadDim) return "head_dim " + std::to_string(c.head_dim) + " is not 128";
  if (!SplitsOver(c, tp)) {
    return "heads, ffn_size or vocab_size do not split over " + std::to_string(tp) + " ranks";
  }
  const int64_t q = c.num_heads / tp, kv = KvHeadsPerRank(c, tp);
  if (q % kv != 0) return "KV heads per rank do not divide query heads per rank";
  const int64_t g = q / kv;
  if (g != 1 && g != 2 && g != 4 && g != 7 && g != 8) {
    return "decode kernel has no query group of " + std::to_string(g);
  }
  if (c.hidden_size % 8 != 0 || c.hidden_size > kMaxHidden) {
    return "hidden_size " + std::to_string(c.hidden_size) +
           " (needs a multiple of 8, <= " + std::to_string(kMaxHidden) + ")";
  }
  if (c.ffn_size % 8 != 0)
    return "ffn_size " + std::to_string(c.ffn_size) + " is not a multiple of 8";
  return "";
}

size_t FreeBytes() {
  size_t free_bytes = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  return free_bytes;
}

std::string GiB(double bytes) { return Num(bytes / (1 << 30), 3) + " GiB"; }

// Whole passes replay until steady (steady_warm.h): under its power cap the H200's
// clock keeps moving for seconds after a change of load (measured on the lent H200:
// decode passes of 128-256 sequences and a 256-token prefill timed 0.8 s after a
// low-power load ran 5-12% slower, at 1,320-1,500 MHz, than after 3 s, at 1,530-1,860
// MHz; a 1,024-token prefill 3% faster; models/profiles/H200/README.md).
constexpr SteadyWarmLimits kPassWarm{800, 2500, 0.015};  // ms, ms, relative
// One class of a pass's kernels alone: at least 200 ms (in whole chunks), no steadiness test.
constexpr SteadyWarmLimits kClassWarm{200, 200, 0};
constexpr double kSteadyChunkUs = 150000;

// Replays `pass` kWarmups times and then on as `warm` says, then times repetitions (at
// least min_reps, together at least kMinTimedUs) back to back, each between two CUDA
// events on `stream`. Returns each repetition's time in microseconds; `warmed_ms` (if
// not null) receives how long it replayed before. Every decision follows all ranks of
// `group` (their slowest trial; replays go on while one rank's clock still moves),
// so every rank replays the pass equally often.
std::vector<double> TimePasses(cudaStream_t stream, const std::function<void()>& pass,
                               const SteadyWarmLimits& warm, int min_reps, const TpGroup& group,
                               double* warmed_ms = nullptr, SmClock* clock = nullptr,
                               LoadWindow* window = nullptr) {
  const double trial = std::max(group.Max(TimeUs(stream, 0, kWarmups, pass), stream), 1.0);
  const double ms =
      ReplayUntilSteady(stream, pass, trial, trial * kWarmups, warm, kSteadyChunkUs,
                        [&](bool more) { return group.Max(more ? 1.0 : 0.0, stream) > 0; });
  if (warmed_ms) *warmed_ms = ms;
  const int reps =
      static_cast<int>(std::clamp<double>(std::ceil(kMinTimedUs / trial), min_reps, kMaxReps));
  return TimeInWindow(clock, window, [&] { return TimeEachUs(stream, reps, pass); });
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Kernel classes of a pass, for timing them apart.
constexpr unsigned kGemmClass = 1;        // the layers' GEMMs and the LM head
constexpr unsigned kAttentionClass = 2;   // decode and prefill attention
constexpr unsigned kOtherClass = 4;       // norms, RoPE, KV writes, SiLU-mul, copies, gathers
constexpr unsigned kCollectiveClass = 8;  // TP > 1: all-reduces and the logits' all-gather
constexpr unsigned kAllClasses = kGemmClass | kAttentionClass | kOtherClass | kCollectiveClass;
#ifdef KVPROBE_STEP_CLASS_PAIRS
// Experiment builds (-DKVPROBE_STEP_CLASS_PAIRS) also time, at TP 1, graphs of each pair
// of kernel classes and of the GEMMs with an empty kernel in each place of an `other`
// kernel (kEmptyClass), and log one line per composition: what interleaving costs
// beyond the classes' own times (models/profiles/H200/pass_experiments/).
constexpr unsigned kEmptyClass = 16;
__global__ void EmptyKernel() {}
#endif

// One composition's timings, in microseconds.
struct Measured {
  std::vector<double> us;  // each timed pass
  // Medians of graphs of one class of kernels alone (0 when not measured).
  double gemm_us = 0, attention_us = 0, other_us = 0;
  double collective_us = 0;  // TP > 1 only
  int decode_splits = 0;     // splits of the decode attention launches (0: no decode)
  double warmed_ms = 0;      // how long the pass replayed before it was timed (kPassWarm)
  // The SM clock and power while the passes and the GEMMs alone were timed (TP 1).
  LoadWindow pass_load, gemm_load;
};

// ---------------------------------------------------------------------------
// The model: one layer's weights, the LM head, and activations for up to
// max_tokens tokens and max_logit_rows logit rows, on one rank of `group` (its
// share of every weight: per-rank heads, ffn and vocabulary).

class StepModel {
 public:
  StepModel(ProbeContext& ctx, const CardShapes& card, const TpGroup& group, int max_tokens,
            int max_logit_rows, int max_positions)
      : ctx_(ctx),
        card_(card),
        group_(group),
        tp_(group.size()),
        hidden_(static_cast<int>(card.hidden_size)),
        q_heads_(static_cast<int>(card.num_heads / tp_)),
        kv_heads_(static_cast<int>(KvHeadsPerRank(card, tp_))),
        ffn_(static_cast<int>(card.ffn_size / tp_)),
        vocab_(static_cast<int>(card.vocab_size / tp_)),
        q_dim_(q_heads_ * kHeadDim),
        kv_dim_(kv_heads_ * kHeadDim),
        qkv_n_(q_dim_ + 2 * kv_dim_),
        max_tokens_(max_tokens),
        max_logit_rows_(max_logit_rows),
        max_positions_(max_positions) {
    // The GEMM shapes are [gemm]'s at this TP; check they match this probe's layout.
    for (const GemmShape& g : LayerGemms(card, tp_)) {
      int64_t n = vocab_, k = hidden_;  // lm_head
      if (g.layer == "qkv") n = qkv_n_;
      if (g.layer == "o") n = hidden_, k = q_dim_;
      if (g.layer == "gate_up") n = 2 * int64_t{ffn_};
      if (g.layer == "down") n = hidden_, k = ffn_;
      if (g.n != n || g.k != k) {
        throw std::runtime_error("step: " + card.name + ": GEMM " + g.layer +
                                 " shape differs from the [gemm] probe's");
      }
    }
  }

  // Bytes Allocate() takes.
  size_t Bytes() const {
    const size_t h = hidden_, t = max_tokens_, r = max_logit_rows_;
    const size_t weights =
        h * qkv_n_ + size_t(q_dim_) * h + h * 2 * ffn_ + size_t(ffn_) * h + h * vocab_ + 3 * h;
    const size_t acts = 3 * t * h + t * qkv_n_ + 2 * t * q_dim_ + t * 3 * ffn_ + r * h +
                        r * vocab_ * (tp_ > 1 ? tp_ + 1 : 1);
    return 2 * (weights + acts) + size_t(max_positions_) * (kHeadDim / 2) * sizeof(float2) +
           kGemmWorkspaceBytes;
  }

  void Allocate() {
    const size_t h = hidden_, t = max_tokens_, r = max_logit_rows_;
    cudaStream_t s = ctx_.stream;
    auto weight = [&](size_t k, size_t n, uint64_t seed) {
      DeviceBuffer<bf16> w(k * n);
      // Uniform in [-a, a) has RMS a / sqrt(3): a = sqrt(3 / k) keeps the input's RMS.
      FillRandomBf16(w.get(), w.size(), seed, static_cast<float>(std::sqrt(3.0 / k)), s);
      return w;
    };
    w_qkv_ = weight(h, qkv_n_, 101);
    w_o_ = weight(q_dim_, h, 102);
    w_gate_up_ = weight(h, 2 * size_t(ffn_), 103);
    w_down_ = weight(ffn_, h, 104);
    w_lm_head_ = weight(h, vocab_, 105);
    norm_ = ToDevice(std::vector<float>(h, 1.f));  // shared by the three norms
    input_ = DeviceBuffer<bf16>(t * h);
    FillRandomBf16(input_.get(), input_.size(), 106, 1.f, s);
    x_ = DeviceBuffer<bf16>(t * h);
    residual_ = DeviceBuffer<bf16>(t * h);
    qkv_ = DeviceBuffer<bf16>(t * qkv_n_);
    q_ = DeviceBuffer<bf16>(t * q_dim_);
    attn_ = DeviceBuffer<bf16>(t * q_dim_);
    gate_up_ = DeviceBuffer<bf16>(t * 2 * ffn_);
    act_ = DeviceBuffer<bf16>(t * ffn_);
    logit_x_ = DeviceBuffer<bf16>(r * h);
    logits_ = DeviceBuffer<bf16>(r * vocab_);
    if (tp_ > 1) logits_all_ = DeviceBuffer<bf16>(r * vocab_ * tp_);
    rope_ = RopeTable(max_positions_, s);
    workspace_ = DeviceBuffer<unsigned char>(kGemmWorkspaceBytes);
    CUDA_CHECK(cudaStreamSynchronize(s));
  }

  // The sizes of the composition's decode attention.
  DecodeSizes DecodeSizesOf(const Composition& c) const {
    return {c.decode_seqs, q_heads_, kv_heads_, c.decode_capacity(), ctx_.sm_count};
  }

  // Bytes a composition's own buffers (KV cache, tables, decode workspace) take.
  size_t CompositionBytes(const Composition& c) const {
    const size_t kv = 2 * c.cache_rows() * kv_dim_ * sizeof(bf16);
    const size_t table =
        (static_cast<size_t>(c.decode_seqs) * c.decode_blocks() + c.prefill_blocks()) * sizeof(int);
    const size_t ws =
        c.decode_seqs > 0 ? DecodeWorkspaceFloats(DecodeSizesOf(c)) * sizeof(float) : 0;
    return kv + table + ws + 3 * static_cast<size_t>(c.tokens()) * sizeof(int);
  }

  // Bytes a full model's KV cache for the composition takes (all layers, one rank).
  double FullKvBytes(const Composition& c) const {
    return 2.0 * card_.num_layers * kv_dim_ * sizeof(bf16) *
           (static_cast<double>(c.decode_seqs) * c.decode_capacity() + c.prefill_tokens);
  }

  // Bytes of a full model's weights on one rank: every layer, embeddings, final norm,
  // LM head.
  double FullWeightBytes() const {
    const double h = hidden_;
    return 2.0 * (card_.num_layers * (h * qkv_n_ + q_dim_ * h + 3.0 * h * ffn_ + 2 * h) +
                  2 * h * vocab_ + h);
  }

  // Runs the composition: one eager pass checked for finite logits, then the timed
  // passes (graph replays), checked again, then each class of kernels alone.
  Measured Measure(const Composition& c, std::mt19937_64& rng) {
    Measured result;
    if (c.tokens() < 1 || c.tokens() > max_tokens_ || c.logit_rows() > max_logit_rows_ ||
        c.max_position() >= max_positions_) {
      throw std::logic_error("step: composition " + c.Label() + " exceeds the model's buffers");
    }
    cudaStream_t s = ctx_.stream;
    const int d = c.decode_seqs, p = c.prefill_tokens, t = c.tokens();

    // KV cache of one layer, filled with random "cached" tokens.
    DeviceBuffer<bf16> k_cache(c.cache_rows() * kv_dim_), v_cache(k_cache.size());
    FillRandomBf16(k_cache.get(), k_cache.size(), 201, 1.f, s);
    FillRandomBf16(v_cache.get(), v_cache.size(), 202, 1.f, s);

    // Where each sequence's tokens live. Decode sequence b holds tokens 0..context
    // (the new one at position context); the chunk holds tokens 0..p-1.
    KvLayout decode_layout, prefill_layout;
    const bf16* prefill_k = k_cache.get();
    const bf16* prefill_v = v_cache.get();
    std::vector<int> table;
    DeviceBuffer<int> table_dev;
    if (c.block_tokens == 0) {
      decode_layout.max_context = c.decode_capacity();
      prefill_layout.max_context = p;
      const size_t first = static_cast<size_t>(d) * c.decode_capacity() * kv_dim_;
      prefill_k += first;
      prefill_v += first;
    } else {
      // One pool of blocks in shuffled order: decode sequence b's table row first,
      // then the chunk's.
      table = ShuffledBlocks(static_cast<size_t>(d) * c.decode_blocks() + c.prefill_blocks(), rng);
      table_dev = IntsToDevice(table);
      decode_layout = KvLayout{table_dev.get(), c.block_tokens, c.decode_blocks(), 0};
      prefill_layout = KvLayout{table_dev.get() + static_cast<size_t>(d) * c.decode_blocks(),
                                c.block_tokens, c.prefill_blocks(), 0};
    }
    // Host mirror of RowOf (attention.cu), giving each new token's cache row.
    auto row_of = [&](const KvLayout& l, size_t table_offset, size_t first_row, int seq, int tok) {
      if (c.block_tokens == 0) return first_row + static_cast<size_t>(seq) * l.max_context + tok;
      const int block =
          table[table_offset + static_cast<size_t>(seq) * l.max_blocks + tok / l.block_tokens];
      return static_cast<size_t>(block) * l.block_tokens + tok % l.block_tokens;
    };
    std::vector<int> positions(t), slots(t), logit_rows;
    for (int b = 0; b < d; ++b) {
      positions[b] = c.context_tokens;
      slots[b] = static_cast<int>(row_of(decode_layout, 0, 0, b, c.context_tokens));
      logit_rows.push_back(b);
    }
    for (int i = 0; i < p; ++i) {
      positions[d + i] = i;
      slots[d + i] =
          static_cast<int>(row_of(prefill_layout, static_cast<size_t>(d) * c.decode_blocks(),
                                  static_cast<size_t>(d) * c.decode_capacity(), 0, i));
    }
    if (p > 0) logit_rows.push_back(t - 1);
    for (int slot : slots) {
      if (slot < 0 || static_cast<size_t>(slot) >= c.cache_rows()) {
        throw std::logic_error("step: " + c.Label() + ": a KV slot is outside the cache");
      }
    }
    auto positions_dev = IntsToDevice(positions);
    auto slots_dev = IntsToDevice(slots);
    auto logit_rows_dev = IntsToDevice(logit_rows);
    auto lens_dev = IntsToDevice(std::vector<int>(d, c.decode_capacity()));
    const DecodeSizes decode_sizes = DecodeSizesOf(c);
    DeviceBuffer<float> decode_ws(d > 0 ? DecodeWorkspaceFloats(decode_sizes) : 0);

    DecodeArgs da = MakeDecodeArgs(decode_sizes, q_.get(), k_cache.get(), v_cache.get(),
                                   attn_.get(), lens_dev.get(), decode_ws.get());
    da.layout = decode_layout;
    PrefillArgs pa;
    pa.q = q_.get() + static_cast<size_t>(d) * q_dim_;
    pa.k = prefill_k;
    pa.v = prefill_v;
    pa.out = attn_.get() + static_cast<size_t>(d) * q_dim_;
    pa.layout = prefill_layout;
    pa.batch = 1;
    pa.tokens = p;
    pa.q_heads = q_heads_;
    pa.kv_heads = kv_heads_;

    const LtHandle& lt = lt_;
    const LtGemm qkv_gemm(lt.get(), t, qkv_n_, hidden_, kGemmWorkspaceBytes);
    const LtGemm o_gemm(lt.get(), t, hidden_, q_dim_, kGemmWorkspaceBytes);
    const LtGemm gate_up_gemm(lt.get(), t, 2 * int64_t{ffn_}, hidden_, kGemmWorkspaceBytes);
    const LtGemm down_gemm(lt.get(), t, hidden_, ffn_, kGemmWorkspaceBytes);
    const LtGemm lm_head_gemm(lt.get(), static_cast<int64_t>(logit_rows.size()), vocab_, hidden_,
                              kGemmWorkspaceBytes);
    const int r = static_cast<int>(logit_rows.size());
    // Decode attention with the split of the context that runs fastest for this batch
    // (as the [decode_attention] rows are timed).
    if (d > 0) {
      const DecodeTuning tuning = TuneDecodeSplits(da, s);
      da.splits = tuning.args_splits;
      da.loads = tuning.loads;
      result.decode_splits = tuning.splits;
    }

    // The pass, or only the kernels of the classes in `mask` (kAll: the whole pass).
    auto forward_classes = [&](unsigned mask) {
      const bool gemm = mask & kGemmClass, attention = mask & kAttentionClass,
                 other = mask & kOtherClass, collective = mask & kCollectiveClass;
#ifdef KVPROBE_STEP_CLASS_PAIRS
      const bool empty = (mask & kEmptyClass) && !other;
      auto empties = [&](int n) {
        for (int i = 0; i < n && empty; ++i) {
          EmptyKernel<<<1, 32, 0, s>>>();
          CUDA_CHECK(cudaGetLastError());
        }
      };
#else
      auto empties = [](int) {};
#endif
      const size_t hidden_values = size_t(t) * hidden_;
      if (other) {
        CUDA_CHECK(cudaMemcpyAsync(x_.get(), input_.get(), hidden_values * sizeof(bf16),
                                   cudaMemcpyDeviceToDevice, s));
        CUDA_CHECK(cudaMemsetAsync(residual_.get(), 0, hidden_values * sizeof(bf16), s));
      }
      if (collective) group_.AllReduce(x_.get(), hidden_values, s);  // embedding shards
      for (int64_t layer = 0; layer < card_.num_layers; ++layer) {
        // Every layer uses the same weights and KV cache (see the top of this file).
        if (other) AddRmsNorm(x_.get(), residual_.get(), norm_.get(), t, hidden_, s);
        empties(1);
        if (gemm) qkv_gemm.Run(x_.get(), w_qkv_.get(), qkv_.get(), workspace_.get(), s);
        if (other) {
          Rope(qkv_.get(), q_.get(), positions_dev.get(), rope_.get(), t, qkv_n_, q_heads_,
               kv_heads_, s);
          KvWrite(qkv_.get(), k_cache.get(), v_cache.get(), slots_dev.get(), t, qkv_n_, q_heads_,
                  kv_heads_, s);
        }
        empties(2);
        if (attention && d > 0) LaunchDecodeAttention(da, s);
        if (attention && p > 0) LaunchPrefillAttention(pa, s);
        if (gemm) o_gemm.Run(attn_.get(), w_o_.get(), x_.get(), workspace_.get(), s);
        if (collective) group_.AllReduce(x_.get(), hidden_values, s);
        if (other) AddRmsNorm(x_.get(), residual_.get(), norm_.get(), t, hidden_, s);
        empties(1);
        if (gemm) gate_up_gemm.Run(x_.get(), w_gate_up_.get(), gate_up_.get(), workspace_.get(), s);
        if (other) SiluMul(gate_up_.get(), act_.get(), t, ffn_, ctx_.sm_count, s);
        empties(1);
        if (gemm) down_gemm.Run(act_.get(), w_down_.get(), x_.get(), workspace_.get(), s);
        if (collective) group_.AllReduce(x_.get(), hidden_values, s);
      }
      if (other) {
        AddRmsNorm(x_.get(), residual_.get(), norm_.get(), t, hidden_, s);
        GatherRows(x_.get(), logit_rows_dev.get(), logit_x_.get(), r, hidden_, s);
      }
      if (gemm)
        lm_head_gemm.Run(logit_x_.get(), w_lm_head_.get(), logits_.get(), workspace_.get(), s);
      if (collective && tp_ > 1) {
        group_.AllGather(logits_.get(), logits_all_.get(), size_t(r) * vocab_, s);
      }
    };
    auto forward = [&] { forward_classes(kAllClasses); };
    auto check = [&](const std::string& when) {
      CUDA_CHECK(cudaStreamSynchronize(s));
      for (const auto& [what, ptr, n] :
           {std::make_tuple("final hidden state", logit_x_.get(), size_t(r) * hidden_),
            std::make_tuple("logits", logits_.get(), size_t(r) * vocab_)}) {
        const auto [bad, nonzero] = CountValues(ptr, n, s);
        if (bad > 0 || nonzero < n / 2) {
          throw std::runtime_error("step: " + card_.name + " " + c.Label() + ", " + when + ": " +
                                   std::to_string(bad) + " of " + std::to_string(n) + " " + what +
                                   " values are not finite, " + std::to_string(nonzero) +
                                   " are non-zero");
        }
      }
    };

    // Captures the kernels of `mask` as one graph and times its replays after `warm`.
    // At TP 1 the clock is sampled while the graph is timed (`window`).
    auto time_graph = [&](unsigned mask, const SteadyWarmLimits& warm, int min_reps,
                          double* warmed_ms, LoadWindow* window = nullptr) {
      const CapturedGraph g(s, [&] { forward_classes(mask); });
      return TimePasses(
          s, [&] { g.Launch(s); }, warm, min_reps, group_, warmed_ms,
          tp_ == 1 && window ? &ctx_.clock : nullptr, window);
    };

    forward();
    check("first pass");
    if (c.graph()) {
      // Each class of kernels alone, as a graph of all layers: where the pass's time
      // goes (the classes' sum exceeds the pass by what the pass overlaps). The GEMMs
      // go last, so that the pass starts from about its own power draw rather than
      // from the low draw of the small kernels (see kPassWarm).
      result.other_us = Median(time_graph(kOtherClass, kClassWarm, kClassMinReps, nullptr));
      result.attention_us = Median(time_graph(kAttentionClass, kClassWarm, kClassMinReps, nullptr));
      if (tp_ > 1) {
        result.collective_us =
            Median(time_graph(kCollectiveClass, kClassWarm, kClassMinReps, nullptr));
      }
      result.gemm_us =
          Median(time_graph(kGemmClass, kClassWarm, kClassMinReps, nullptr, &result.gemm_load));
      result.us =
          time_graph(kAllClasses, kPassWarm, kMinReps, &result.warmed_ms, &result.pass_load);
      ctx_.clock.SampleUnderLoad();
      check("after the graph replays");
#ifdef KVPROBE_STEP_CLASS_PAIRS
      if (tp_ == 1) {
        std::ostringstream line;
        line << "step class pairs: " << card_.name << " " << c.Label()
             << " pass=" << Median(result.us);
        const std::pair<const char*, unsigned> masks[] = {
            {"G", kGemmClass},
            {"A", kAttentionClass},
            {"O", kOtherClass},
            {"E", kEmptyClass},
            {"GA", kGemmClass | kAttentionClass},
            {"GO", kGemmClass | kOtherClass},
            {"AO", kAttentionClass | kOtherClass},
            {"GE", kGemmClass | kEmptyClass},
            {"GAE", kGemmClass | kAttentionClass | kEmptyClass},
            {"GAO", kAllClasses}};
        for (const auto& [name, mask] : masks) {
          line << " " << name << "="
               << Median(time_graph(mask, kClassWarm, kClassMinReps, nullptr));
        }
        ctx_.log(line.str());
      }
#endif
    } else {
      result.us = TimePasses(s, forward, kPassWarm, kMinReps, group_, &result.warmed_ms,
                             tp_ == 1 ? &ctx_.clock : nullptr, &result.pass_load);
      check("after the timed passes");
    }
    return result;
  }

 private:
  ProbeContext& ctx_;
  const CardShapes card_;
  const TpGroup& group_;
  const int tp_;
  const int hidden_, q_heads_, kv_heads_, ffn_, vocab_, q_dim_, kv_dim_, qkv_n_;
  const int max_tokens_, max_logit_rows_, max_positions_;
  LtHandle lt_;
  DeviceBuffer<bf16> w_qkv_, w_o_, w_gate_up_, w_down_, w_lm_head_, norm_;
  DeviceBuffer<bf16> input_, x_, residual_, qkv_, q_, attn_, gate_up_, act_, logit_x_, logits_,
      logits_all_;
  DeviceBuffer<float2> rope_;
  DeviceBuffer<unsigned char> workspace_;
};

void Skip(ProbeContext& ctx, const std::string& what) {
  std::cerr << "kvprobe: step: skipping " << what << "\n";
  ctx.log("step: skipping " + what);
}

// The [step] row of a measured composition (the schema's kStep columns, in order).
StepFields RowOf(const std::string& model, int tp, const Composition& c, const Measured& m) {
  return {model,
          Num(tp),
          c.block_tokens == 0 ? "contiguous" : "paged",
          Num(c.block_tokens),
          Num(c.decode_seqs),
          Num(c.context_tokens),
          Num(c.prefill_tokens),
          Num(Median(m.us), 6),
          c.graph() ? "1" : "0",
          Num(m.gemm_us, 6),
          Num(m.attention_us, 6),
          Num(m.other_us, 6),
          Num(m.decode_splits),
          Num(m.collective_us, 6)};
}

// The step_passes.csv lines of a measured composition, timed by rank `rank`.
std::string PassLines(const std::string& model, int tp, int rank, const Composition& c,
                      const Measured& m) {
  std::string out;
  const std::string layout = c.block_tokens == 0 ? "contiguous" : "paged";
  for (size_t i = 0; i < m.us.size(); ++i) {
    out += model + "," + std::to_string(tp) + "," + std::to_string(rank) + "," + layout + "," +
           std::to_string(c.block_tokens) + "," + std::to_string(c.decode_seqs) + "," +
           std::to_string(c.context_tokens) + "," + std::to_string(c.prefill_tokens) + "," +
           (c.graph() ? "1" : "0") + "," + std::to_string(i) + "," + Num(m.us[i], 6) + "\n";
  }
  return out;
}

// The --model names, each once (a repeated --model would repeat its rows); default
// Llama-3-8B.
std::vector<std::string> StepModels(const ProbeOptions& o) {
  std::vector<std::string> names;
  for (const std::string& m : o.models) {
    if (std::find(names.begin(), names.end(), m) == names.end()) names.push_back(m);
  }
  if (names.empty()) names.push_back("Llama-3-8B");
  return names;
}

// What one rank measured: the rows and their passes' lines.
struct RankRows {
  std::vector<StepFields> rows;
  std::string pass_lines;
};

// Measures the grid for every step model on this rank of `group`. Every rank takes
// the same decisions (skips agree through group.Max), so the ranks' collectives
// match. `on_row` sees each row as it is measured.
// `full_bytes`: what the full model's weights and KV take on one rank.
using OnRow =
    std::function<void(const CardShapes&, const Composition&, const Measured&, double full_bytes)>;

RankRows MeasureModels(ProbeContext& ctx, const TpGroup& group, const OnRow& on_row) {
  const int tp = group.size();
  cudaStream_t s = ctx.stream;
  const std::vector<Composition> grid = StepGrid(ctx.options.quick);
  int max_tokens = 0, max_rows = 0, max_positions = 0;
  for (const Composition& c : grid) {
    max_tokens = std::max(max_tokens, c.tokens());
    max_rows = std::max(max_rows, c.logit_rows());
    max_positions = std::max(max_positions, c.max_position() + 1);
  }
  RankRows out;
  std::mt19937_64 rng(7);
  for (const std::string& name : StepModels(ctx.options)) {
    const CardShapes card = ReadModelCard(ctx.options.models_dir + "/" + name + ".yaml");
    const std::string why = Unsupported(card, tp);
    if (!why.empty()) {
      Skip(ctx, card.name + " at TP " + std::to_string(tp) + ": " + why);
      continue;
    }
    StepModel model(ctx, card, group, max_tokens, max_rows, max_positions);
    const size_t free_bytes = FreeBytes();
    if (group.Max(model.Bytes() > kMemoryFraction * free_bytes ? 1 : 0, s) > 0) {
      Skip(ctx, card.name + " at TP " + std::to_string(tp) +
                    ": one layer's weights and the activations need " + GiB(model.Bytes()) +
                    " of a rank, more than 80% of the free " + GiB(free_bytes));
      continue;
    }
    model.Allocate();
    ctx.log("step: " + card.name + " at TP " + std::to_string(tp) + " (" +
            std::to_string(card.num_layers) + " layers, " + std::to_string(grid.size()) +
            " compositions)");
    for (const Composition& c : grid) {
      const size_t need = model.CompositionBytes(c), avail = FreeBytes();
      if (group.Max(need > kMemoryFraction * avail ? 1 : 0, s) > 0) {
        Skip(ctx, card.name + " " + c.Label() + ": needs " + GiB(need) +
                      ", more than 80% of the free " + GiB(avail));
        continue;
      }
      const Measured m = model.Measure(c, rng);
      out.rows.push_back(RowOf(card.name, tp, c, m));
      out.pass_lines += PassLines(card.name, tp, group.rank(), c, m);
      if (on_row) on_row(card, c, m, model.FullKvBytes(c) + model.FullWeightBytes());
      ctx.clock.Sample();
    }
  }
  return out;
}

// "; replayed N ms before timing" for a progress line (see kPassWarm).
std::string WarmedNote(const Measured& m) {
  return "; replayed " + std::to_string(static_cast<int>(std::lround(m.warmed_ms))) +
         " ms before timing";
}

// The progress line of a row (`too_big`: the full model's weights and KV of a rank
// would not fit this GPU).
std::string RowLine(const StepFields& row, bool too_big) {
  namespace col = schema::column;
  auto field = [&](std::string_view name) {
    for (size_t i = 0; i < schema::kStep.fields.size(); ++i) {
      if (schema::kStep.fields[i].name == name) return row[i];
    }
    throw std::logic_error("step: no [step] column " + std::string(name));
  };
  const Composition c{std::stoi(field(col::kBlockTokens)), std::stoi(field(col::kDecodeSeqs)),
                      std::stoi(field(col::kContextTokens)), std::stoi(field(col::kPrefillTokens))};
  return "step: " + field(col::kModel) + " TP " + field(col::kTensorParallel) + " " + c.Label() +
         ": " + field(col::kTimeUs) + " us (alone: GEMMs " + field(col::kGemmUs) + ", attention " +
         field(col::kAttentionUs) + ", other " + field(col::kOtherUs) +
         (field(col::kTensorParallel) == "1" ? "" : ", collectives " + field(col::kAllreduceUs)) +
         " us)" +
         (too_big ? "; note: the full model's weights and KV of a rank exceed this GPU" : "");
}

// Runs the grid at TP `tp` on GPUs 0..tp-1, one kvprobe rank process each, and adds
// the combined rows to `table` and every rank's passes to `raw`.
void MeasureWithRanks(ProbeContext& ctx, int tp, ProfileWriter::Table& table, std::ostream& raw) {
#ifndef KVPROBE_HAVE_NCCL
  (void)table, (void)raw;
  Skip(ctx, "TP " + std::to_string(tp) + ": this kvprobe was built without NCCL");
#else
  DisableNvlinkMulticast();
  ncclUniqueId id;
  Nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  const std::string dir = ctx.raw_dir + "/step_ranks";
  std::filesystem::create_directories(dir);
  const std::string self = SelfExecutablePath();
  std::vector<pid_t> pids;
  std::vector<std::string> files;
  for (int r = 0; r < tp; ++r) {
    files.push_back(dir + "/tp" + std::to_string(tp) + "_rank" + std::to_string(r) + ".csv");
    std::filesystem::remove(files.back());
    std::vector<std::string> argv = {self,
                                     "--rank-task",
                                     "step",
                                     "--rank",
                                     std::to_string(r),
                                     "--ranks",
                                     std::to_string(tp),
                                     "--nccl-id",
                                     HexEncode(id.internal, sizeof id.internal),
                                     "--rank-out",
                                     files.back(),
                                     "--models",
                                     ctx.options.models_dir};
    for (const std::string& m : ctx.options.models) {
      argv.push_back("--model");
      argv.push_back(m);
    }
    if (ctx.options.quick) argv.push_back("--quick");
    pids.push_back(SpawnProcess(argv));
  }
  WaitForRanks(pids, "the TP " + std::to_string(tp) + " [step] passes", kRanksTimeoutS);
  std::vector<std::string> texts;
  for (const std::string& f : files) texts.push_back(ReadFileText(f));
  for (const StepFields& row : CombineStepRanks(texts, files)) {
    table.Row(row);
    ctx.log(RowLine(row, false) + " (slowest rank)");
  }
  for (const std::string& f : files) {
    raw << ReadFileText(f + ".passes");
    std::filesystem::remove(f);
    std::filesystem::remove(f + ".passes");
  }
  std::filesystem::remove(dir);
#endif
}

}  // namespace

void ProbeStep(ProbeContext& ctx) {
  VerifyStepKernels(ctx);
  ctx.log("step: small kernels verified against host references");
  ctx.profile.Meta(schema::meta::kStepLayersReuse,
                   "one layer's weights and KV reused for all layers");
  auto& table = ctx.profile.AddTable(schema::kStep);
  const std::string raw_path = RawFilePath(ctx.raw_dir, schema::kStepPassesFile);
  std::ofstream raw(raw_path);
  raw << HeaderLine(schema::kStepPassesFile) << "\n";
  int devices = 0;
  CUDA_CHECK(cudaGetDeviceCount(&devices));
  const std::vector<int> tps =
      ctx.options.step_tp.empty() ? DefaultStepTensorParallel(devices) : ctx.options.step_tp;
  size_t free_bytes_at_start = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes_at_start, &total_bytes));
  for (int tp : tps) {
    if (tp > devices) {
      throw std::runtime_error("--step-tp: TP " + std::to_string(tp) + " needs " +
                               std::to_string(tp) + " GPUs, " + std::to_string(devices) +
                               " present");
    }
    if (tp > 1) {
      MeasureWithRanks(ctx, tp, table, raw);
      continue;
    }
    // TP 1 in this process. Headlines: the first composition and the longest
    // contiguous prefill.
    int rows_seen = 0, longest_prefill = 0;
    for (const Composition& c : StepGrid(ctx.options.quick)) {
      if (c.block_tokens == 0 && c.decode_seqs == 0) {
        longest_prefill = std::max(longest_prefill, c.prefill_tokens);
      }
    }
    const TpGroup one;
    // Each pass's SM clock and power while timed, and the GEMMs' alone (raw).
    std::ofstream clocks(RawFilePath(ctx.raw_dir, schema::kStepClocksFile));
    clocks << HeaderLine(schema::kStepClocksFile) << "\n";
    const RankRows rows = MeasureModels(
        ctx, one,
        [&](const CardShapes& card, const Composition& c, const Measured& m, double full_bytes) {
          const StepFields row = RowOf(card.name, 1, c, m);
          table.Row(row);
          clocks << card.name << ",1," << (c.block_tokens == 0 ? "contiguous" : "paged") << ","
                 << c.block_tokens << "," << c.decode_seqs << "," << c.context_tokens << ","
                 << c.prefill_tokens << "," << Num(Median(m.us), 6) << ","
                 << LoadWindowFields(m.pass_load) << "," << Num(m.gemm_us, 6) << ","
                 << LoadWindowFields(m.gemm_load) << std::endl;
          ctx.log(RowLine(row, full_bytes > total_bytes) + WarmedNote(m));
          const bool first = rows_seen++ == 0;
          if (first ||
              (c.block_tokens == 0 && c.decode_seqs == 0 && c.prefill_tokens == longest_prefill)) {
            ctx.headlines.emplace_back("step " + card.name + ", " + c.Label(),
                                       Num(Median(m.us) / 1000, 4) + " ms");
          }
        });
    raw << rows.pass_lines;
  }
  if (!raw) throw std::runtime_error(raw_path + ": cannot write");
}

int RunStepRank(const ProbeOptions& o) {
#ifndef KVPROBE_HAVE_NCCL
  (void)o;
  throw std::runtime_error("this kvprobe was built without NCCL");
#else
  const RankProcess& me = *o.rank;
  const ncclComm_t comm = JoinRankCommunicator(me);
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, me.rank));
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreate(&stream));
  ProfileWriter unused_profile;
  SmClock clock(me.rank);
  std::vector<std::pair<std::string, std::string>> unused_headlines;
  auto log = [&](const std::string& line) {
    if (me.rank == 0) std::cout << "rank 0: " << line << std::endl;
  };
  ProbeContext ctx{o,
                   me.rank,
                   prop.multiProcessorCount,
                   static_cast<size_t>(std::max(0, prop.l2CacheSize)),
                   stream,
                   unused_profile,
                   "",
                   log,
                   clock,
                   unused_headlines};
  RankRows rows;
  {
    const TpGroup group(comm, me.rank, me.ranks);
    size_t free_bytes = 0, total_bytes = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    rows = MeasureModels(
        ctx, group,
        [&](const CardShapes& card, const Composition& c, const Measured& m, double full_bytes) {
          log(RowLine(RowOf(card.name, me.ranks, c, m), full_bytes > total_bytes) + WarmedNote(m));
        });
  }
  Nccl(ncclCommDestroy(comm), "ncclCommDestroy");
  CUDA_CHECK(cudaStreamDestroy(stream));
  std::ofstream out(me.out_path);
  out << StepRankCsv(rows.rows);
  std::ofstream passes(me.out_path + ".passes");
  passes << rows.pass_lines;
  if (!out || !passes) throw std::runtime_error("cannot write " + me.out_path);
  return 0;
#endif
}

// Layers of small kernels captured per timed graph (a layer's five kernels each), at
// least and at most (LaunchesPerGraph).
constexpr int kMinSmallKernelLayersPerGraph = 8;
constexpr int kMaxSmallKernelLayersPerGraph = 128;
// Each cell replays alone until two consecutive chunks agree (steady_warm.h), the first
// longer: right after the GEMM section's compute-bound cells, without it, the cells of the
// lent H200 came out 4-10% slower than the same kernels in the graphs of whole passes
// (`other_us` of [step]; models/profiles/H200/README.md).
constexpr SteadyWarmLimits kFirstSmallKernelWarm{40, 300, 0.015};  // ms, ms, relative
constexpr SteadyWarmLimits kSmallKernelWarm{20, 100, 0.015};
constexpr SteadyWarmLimits kQuickSmallKernelWarm{5, 5, 0};
constexpr double kSmallKernelChunkUs = 10000;
// In a pass a layer's GEMMs run between its small kernels; at small batches their
// weight streams evict from the L2 what the small kernels read besides the GEMM output
// just written (the residual stream, norm weights, RoPE table, positions and slots),
// and each small kernel then waits on HBM. time_us times the small kernels so: between
// them, a stand-in of each GEMM (GemmStandIn) reads as many bytes as the GEMM's weights,
// at most kStandInL2Multiple L2 sizes (more evicts nothing more), and writes the GEMM's
// output; the stand-ins' own graph, timed alone, is subtracted. The stand-ins read a
// pool of kStandInPoolL2Multiple L2 sizes in turn, each where the one before stopped,
// so that, as a model's layers read different weights, none reads bytes the L2 may
// still hold, however small a layer's weights. A difference that is not positive
// (noise where the stand-ins' own time dominates) is timed again, up to
// kStandInTries times in all; after that the row keeps the back-to-back time and the
// log says so. Measured on one H200 (2026-12-01,
// models/profiles/H200/pass_experiments/): in Llama-3-8B passes at 1-64 decode
// sequences, the GEMMs and small kernels together took 100-143 us (3-4.5 us a layer)
// more than the two graphed apart, while empty kernels in the small kernels' places
// added nothing beyond their own time. warm_time_us keeps the five kernels replayed
// back to back, their inputs in the L2 (time_us up to kvprobe 0.3.5).
constexpr double kStandInL2Multiple = 2;
constexpr double kStandInPoolL2Multiple = 8;
constexpr int kStandInTries = 3;

void ProbeSmallKernels(ProbeContext& ctx) {
  VerifyStepKernels(ctx);
  const bool quick = ctx.options.quick;
  const std::vector<CardShapes> cards = ReadModelCards(ctx.options.models_dir, ctx.options.models);
  std::vector<int> token_grid;
  for (int t = 1; t <= (quick ? 1024 : 16384); t *= (quick ? 4 : 2)) token_grid.push_back(t);
  const int max_tokens = token_grid.back();
  // One rank's widths: hidden, query and KV heads, FFN (SplitsOver: they divide).
  struct Shape {
    int64_t hidden, q_heads, kv_heads, ffn;
    std::tuple<int64_t, int64_t, int64_t, int64_t> Key() const {
      return {hidden, q_heads, kv_heads, ffn};
    }
  };
  std::vector<std::pair<const CardShapes*, int64_t>> plan;  // (card, tp)
  Shape largest{0, 0, 0, 0};
  for (const CardShapes& card : cards) {
    if (card.head_dim != kHeadDim || card.num_experts > 1) {
      ctx.log("small_kernels: " + card.name + " skipped (head_dim " +
              std::to_string(card.head_dim) + ", " + std::to_string(card.num_experts) +
              " experts; the kernels serve dense models with head_dim " + std::to_string(kHeadDim) +
              ")");
      continue;
    }
    for (int64_t tp : {1, 2, 4, 8}) {
      if (!SplitsOver(card, tp)) continue;
      plan.emplace_back(&card, tp);
      largest.hidden = std::max(largest.hidden, card.hidden_size);
      largest.q_heads = std::max(largest.q_heads, card.num_heads / tp);
      largest.kv_heads = std::max(largest.kv_heads, std::max<int64_t>(1, card.num_kv_heads / tp));
      largest.ffn = std::max(largest.ffn, card.ffn_size / tp);
    }
  }
  const size_t t_max = static_cast<size_t>(max_tokens);
  const size_t qkv_max = static_cast<size_t>(largest.q_heads + 2 * largest.kv_heads) * kHeadDim;
  DeviceBuffer<bf16> x(t_max * largest.hidden), residual(x.size()), norm(largest.hidden),
      qkv(t_max * qkv_max), q(t_max * largest.q_heads * kHeadDim),
      k_cache(t_max * largest.kv_heads * kHeadDim), v_cache(k_cache.size()),
      gate_up(t_max * 2 * largest.ffn), act(t_max * largest.ffn);
  FillRandomBf16(x.get(), x.size(), 301, 1.f, ctx.stream);
  FillRandomBf16(residual.get(), residual.size(), 302, 1.f, ctx.stream);
  FillRandomBf16(norm.get(), norm.size(), 303, 1.f, ctx.stream);
  FillRandomBf16(qkv.get(), qkv.size(), 304, 1.f, ctx.stream);
  FillRandomBf16(gate_up.get(), gate_up.size(), 305, 1.f, ctx.stream);
  constexpr int kPositions = 8192;
  const DeviceBuffer<float2> rope = RopeTable(kPositions, ctx.stream);
  std::vector<int> positions(t_max), slots(t_max);
  for (size_t i = 0; i < t_max; ++i) {
    positions[i] = static_cast<int>(i % kPositions);
    slots[i] = static_cast<int>(i);
  }
  const DeviceBuffer<int> positions_dev = IntsToDevice(positions), slots_dev = IntsToDevice(slots);
  // The stand-ins' weight pool, read in turn from `pool_next_byte`; each stand-in reads
  // at most `stand_in_max_bytes`.
  const size_t stand_in_max_bytes =
      std::max<size_t>(16, static_cast<size_t>(kStandInL2Multiple * ctx.l2_bytes) / 16 * 16);
  const size_t pool_bytes = std::max(
      2 * stand_in_max_bytes, static_cast<size_t>(kStandInPoolL2Multiple * ctx.l2_bytes) / 16 * 16);
  DeviceBuffer<bf16> pool(pool_bytes / sizeof(bf16));
  FillRandomBf16(pool.get(), pool.size(), 306, 1.f, ctx.stream);
  size_t pool_next_byte = 0;
  DeviceBuffer<unsigned> sink(1);
  CUDA_CHECK(cudaMemsetAsync(sink.get(), 0, sink.bytes(), ctx.stream));

  auto& table = ctx.profile.AddTable(schema::kSmallKernels);
  // (shape, tokens) -> (us per layer as in a pass, us per layer back to back)
  std::map<std::pair<std::tuple<int64_t, int64_t, int64_t, int64_t>, int>,
           std::pair<double, double>>
      cache;
  for (const auto& [card, tp] : plan) {
    const Shape shape{card->hidden_size, card->num_heads / tp,
                      std::max<int64_t>(1, card->num_kv_heads / tp), card->ffn_size / tp};
    const int h = static_cast<int>(shape.hidden), qh = static_cast<int>(shape.q_heads),
              kvh = static_cast<int>(shape.kv_heads), ffn = static_cast<int>(shape.ffn);
    const int qkv_n = (qh + 2 * kvh) * kHeadDim;
    for (int tokens : token_grid) {
      auto it = cache.find({shape.Key(), tokens});
      if (it == cache.end()) {
        const size_t t = static_cast<size_t>(tokens);
        // The stand-in of a GEMM of an n x k bf16 weight matrix writing `out`
        // (tokens x n), reading the pool's next bytes.
        auto stand_in = [&](int64_t n, int64_t k, bf16* out) {
          const size_t bytes =
              std::clamp<size_t>(static_cast<size_t>(n * k) * 2 / 16 * 16, 16, stand_in_max_bytes);
          if (pool_next_byte + bytes > pool_bytes) pool_next_byte = 0;
          GemmStandIn(reinterpret_cast<const char*>(pool.get()) + pool_next_byte, bytes, out,
                      t * static_cast<size_t>(n), sink.get(), ctx.sm_count, ctx.stream);
          pool_next_byte += bytes;
        };
        // One layer in pass order: the small kernels (`small`), the GEMMs' stand-ins
        // (`gemms`), or both. Attention (with the O GEMM's stand-in after it) reads the
        // Q and KV just written; [decode_attention] and [prefill_attention] time it.
        auto layer = [&](bool small, bool gemms) {
          if (small) AddRmsNorm(x.get(), residual.get(), norm.get(), tokens, h, ctx.stream);
          if (gemms) stand_in(qkv_n, h, qkv.get());
          if (small) {
            Rope(qkv.get(), q.get(), positions_dev.get(), rope.get(), tokens, qkv_n, qh, kvh,
                 ctx.stream);
            KvWrite(qkv.get(), k_cache.get(), v_cache.get(), slots_dev.get(), tokens, qkv_n, qh,
                    kvh, ctx.stream);
          }
          if (gemms) stand_in(h, static_cast<int64_t>(qh) * kHeadDim, x.get());
          if (small) AddRmsNorm(x.get(), residual.get(), norm.get(), tokens, h, ctx.stream);
          if (gemms) stand_in(2 * static_cast<int64_t>(ffn), h, gate_up.get());
          if (small) SiluMul(gate_up.get(), act.get(), tokens, ffn, ctx.sm_count, ctx.stream);
          if (gemms) stand_in(h, ffn, x.get());
        };
        auto time_layers = [&](bool small, bool gemms, bool first) {
          const std::function<void()> launch = [&, small, gemms] { layer(small, gemms); };
          const double trial = TimeUs(ctx.stream, 1, 2, launch);
          // Memory-bound: timed at the clock its own load settles at, not the one the
          // previous section (the GEMMs' compute-bound cells) left.
          ReplayUntilSteady(ctx.stream, launch, trial, 3 * trial,
                            quick   ? kQuickSmallKernelWarm
                            : first ? kFirstSmallKernelWarm
                                    : kSmallKernelWarm,
                            kSmallKernelChunkUs);
          const int per_graph =
              LaunchesPerGraph(trial, kMinSmallKernelLayersPerGraph, kMaxSmallKernelLayersPerGraph);
          const int reps = RepsFor(trial * per_graph, quick ? 2000 : 10000, 3, 200);
          return TimeGraphUs(ctx.stream, per_graph, reps, launch);
        };
        const double warm_us = time_layers(true, false, cache.empty());
        double in_pass_us = 0;
        for (int attempt = 0; attempt < kStandInTries && !(in_pass_us > 0); ++attempt) {
          const double with_gemms_us = time_layers(true, true, false);
          in_pass_us = with_gemms_us - time_layers(false, true, false);
        }
        if (!(in_pass_us > 0)) {
          ctx.log("small_kernels: " + card->name + " TP " + std::to_string(tp) + ", " +
                  std::to_string(tokens) + " tokens: the stand-ins' difference came out " +
                  Num(in_pass_us, 4) + " us " + std::to_string(kStandInTries) +
                  " times; time_us keeps the back-to-back time");
          in_pass_us = warm_us;
        }
        it = cache.emplace(std::pair(shape.Key(), tokens), std::pair(in_pass_us, warm_us)).first;
      }
      table.Row(
          {card->name, Num(tp), Num(tokens), Num(it->second.first, 5), Num(it->second.second, 5)});
    }
    ctx.clock.Sample();
  }
  ctx.log("small_kernels: " + std::to_string(cache.size()) + " cells");
}

}  // namespace kvprobe
