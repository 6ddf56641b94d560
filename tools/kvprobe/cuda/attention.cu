// Decode and prefill attention kernels (see attention.cuh).
//
// Decode: a block of 128 threads serves one (sequence, KV head, split of the
// context). Sixteen lanes share a cached token (8 elements of the 128 each), so a
// warp reads two tokens' K and V rows per step with 16-byte loads, and each lane
// loads four steps ahead to keep enough bytes in flight. Every query head of the KV
// head's group is scored against each token (online softmax in base 2); partial
// results merge across lanes, warps and, when the context is split over several
// blocks (few sequences), in a second kernel.
//
// Prefill: a block of 4 warps serves 64 query rows of one head; key/value tiles of
// 64 tokens are staged in shared memory, S = Q K^T and O += P V run on tensor cores
// (WMMA bf16 16x16x16), and the running softmax state lives in shared memory.
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "tools/kvprobe/cuda/attention.cuh"
#include "tools/kvprobe/cuda/bf16x8.cuh"
#include "tools/kvprobe/cuda/check.h"

namespace kvprobe {
namespace {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ size_t RowOf(const KvLayout& l, int b, int t) {
  if (l.block_table == nullptr) return static_cast<size_t>(b) * l.max_context + t;
  const int block = l.block_table[b * l.max_blocks + t / l.block_tokens];
  return static_cast<size_t>(block) * l.block_tokens + t % l.block_tokens;
}

// Merges softmax state (m2, l2, acc2) into (m, l, acc). m = -inf means empty.
template <int N>
__device__ __forceinline__ void MergeState(float& m, float& l, float* acc, float m2, float l2,
                                           const float* acc2) {
  const float mn = fmaxf(m, m2);
  const float c1 = (m == -INFINITY) ? 0.f : exp2f(m - mn);
  const float c2 = (m2 == -INFINITY) ? 0.f : exp2f(m2 - mn);
  l = l * c1 + l2 * c2;
#pragma unroll
  for (int i = 0; i < N; ++i) acc[i] = acc[i] * c1 + acc2[i] * c2;
  m = mn;
}

constexpr int kDecodeThreads = 128;
constexpr int kLanesPerToken = 16;                               // 16 lanes x 8 elements
constexpr int kTokensPerStep = kDecodeThreads / kLanesPerToken;  // 8 per block step
constexpr int kDecodeWarps = kDecodeThreads / 32;
#ifndef KVPROBE_DECODE_UNROLL
#define KVPROBE_DECODE_UNROLL 4
#endif
constexpr int kUnroll = KVPROBE_DECODE_UNROLL;  // tokens each lane has in flight

template <int G>
__global__ void __launch_bounds__(kDecodeThreads)
    DecodeKernel(DecodeArgs a, int split_tokens, int splits, float scale_log2) {
  const int kvh = blockIdx.x, b = blockIdx.y, split = blockIdx.z;
  const int len = a.context_lens[b];
  const int t_begin = split * split_tokens;
  const int t_end = min(len, t_begin + split_tokens);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int sub = lane % kLanesPerToken;          // which 8 elements of the row
  const int slot = threadIdx.x / kLanesPerToken;  // which token of the block step

  float q[G][8];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const bf16* qp = a.q + (static_cast<size_t>(b) * a.q_heads + kvh * G + g) * kHeadDim + sub * 8;
    Unpack8(*reinterpret_cast<const uint4*>(qp), q[g]);
#pragma unroll
    for (int i = 0; i < 8; ++i) q[g][i] *= scale_log2;
  }
  float m[G], l[G], acc[G][8];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[g][i] = 0.f;
  }

  const size_t head_off = static_cast<size_t>(kvh) * kHeadDim + sub * 8;
  const size_t row_stride = static_cast<size_t>(a.kv_heads) * kHeadDim;
  // kUnroll tokens per lane per iteration (t0, t0 + kTokensPerStep, ...), all loaded
  // before any is used so that enough bytes are in flight. The loop is the same for
  // every thread (shuffles need the whole warp); tokens past the end are read from a
  // valid row and then ignored.
  for (int base = t_begin; base < t_end; base += kUnroll * kTokensPerStep) {
    uint4 kr[kUnroll], vr[kUnroll];
    bool has[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int t = base + slot + u * kTokensPerStep;
      has[u] = t < t_end;
      const size_t r = RowOf(a.layout, b, has[u] ? t : t_begin) * row_stride + head_off;
      kr[u] = __ldg(reinterpret_cast<const uint4*>(a.k + r));
      vr[u] = __ldg(reinterpret_cast<const uint4*>(a.v + r));
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float kf[8], vf[8];
      Unpack8(kr[u], kf);
      Unpack8(vr[u], vf);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < 8; ++i) s = fmaf(q[g][i], kf[i], s);
#pragma unroll
        for (int off = kLanesPerToken / 2; off > 0; off /= 2) {
          s += __shfl_xor_sync(0xffffffffu, s, off);
        }
        if (!has[u]) continue;
        const float mn = fmaxf(m[g], s);
        const float corr = exp2f(m[g] - mn);  // m = -inf gives 0
        const float p = exp2f(s - mn);
        l[g] = l[g] * corr + p;
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[g][i] = fmaf(acc[g][i], corr, p * vf[i]);
        m[g] = mn;
      }
    }
  }

  // The two half-warps hold the same elements for different tokens: merge them.
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m[g], 16);
    const float l2 = __shfl_xor_sync(0xffffffffu, l[g], 16);
    float acc2[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) acc2[i] = __shfl_xor_sync(0xffffffffu, acc[g][i], 16);
    MergeState<8>(m[g], l[g], acc[g], m2, l2, acc2);
  }

  __shared__ float sm_m[kDecodeWarps][G], sm_l[kDecodeWarps][G];
  __shared__ float sm_acc[kDecodeWarps][G][kHeadDim];
  if (lane < kLanesPerToken) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
#pragma unroll
      for (int i = 0; i < 8; ++i) sm_acc[warp][g][sub * 8 + i] = acc[g][i];
      if (sub == 0) {
        sm_m[warp][g] = m[g];
        sm_l[warp][g] = l[g];
      }
    }
  }
  __syncthreads();

  const int d = threadIdx.x;  // one output element per thread
  for (int g = 0; g < G; ++g) {
    float mm = sm_m[0][g], ll = sm_l[0][g], aa = sm_acc[0][g][d];
    for (int w = 1; w < kDecodeWarps; ++w) {
      MergeState<1>(mm, ll, &aa, sm_m[w][g], sm_l[w][g], &sm_acc[w][g][d]);
    }
    const int h = kvh * G + g;
    if (splits == 1) {
      a.out[(static_cast<size_t>(b) * a.q_heads + h) * kHeadDim + d] =
          __float2bfloat16(ll > 0.f ? aa / ll : 0.f);
    } else {
      const size_t part = (static_cast<size_t>(b) * a.q_heads + h) * splits + split;
      a.workspace[part * (kHeadDim + 2) + d] = aa;
      if (d == 0) {
        a.workspace[part * (kHeadDim + 2) + kHeadDim] = mm;
        a.workspace[part * (kHeadDim + 2) + kHeadDim + 1] = ll;
      }
    }
  }
}

__global__ void __launch_bounds__(kHeadDim) DecodeCombineKernel(DecodeArgs a, int splits) {
  const int h = blockIdx.x, b = blockIdx.y, d = threadIdx.x;
  const size_t base = (static_cast<size_t>(b) * a.q_heads + h) * splits;
  float m = -INFINITY, l = 0.f, acc = 0.f;
  for (int s = 0; s < splits; ++s) {
    const float* p = a.workspace + (base + s) * (kHeadDim + 2);
    MergeState<1>(m, l, &acc, p[kHeadDim], p[kHeadDim + 1], &p[d]);
  }
  a.out[(static_cast<size_t>(b) * a.q_heads + h) * kHeadDim + d] =
      __float2bfloat16(l > 0.f ? acc / l : 0.f);
}

// Splits the context over enough blocks to fill the GPU twice over, in pieces of
// at least 256 tokens.
void PlanSplits(int batch, int kv_heads, int max_len, int sm_count, int* splits,
                int* split_tokens) {
  const int blocks = std::max(1, batch * kv_heads);
  int s = std::max(1, (2 * sm_count + blocks - 1) / blocks);
  s = std::min(s, std::max(1, (max_len + 255) / 256));
  s = std::min(s, 64);
  int per = (max_len + s - 1) / s;
  per = (per + 31) / 32 * 32;
  *splits = (max_len + per - 1) / per;
  *split_tokens = per;
}

template <int G>
void LaunchDecodeG(const DecodeArgs& a, cudaStream_t stream) {
  int splits = 1, split_tokens = 0;
  PlanSplits(a.batch, a.kv_heads, a.max_len, a.sm_count, &splits, &split_tokens);
  if (splits > 1 && a.workspace == nullptr) throw std::invalid_argument("decode needs workspace");
  const float scale_log2 = 1.4426950408889634f / std::sqrt(static_cast<float>(kHeadDim));
  DecodeKernel<G><<<dim3(a.kv_heads, a.batch, splits), kDecodeThreads, 0, stream>>>(
      a, split_tokens, splits, scale_log2);
  CUDA_CHECK(cudaGetLastError());
  if (splits > 1) {
    DecodeCombineKernel<<<dim3(a.q_heads, a.batch), kHeadDim, 0, stream>>>(a, splits);
    CUDA_CHECK(cudaGetLastError());
  }
}

// ---------------------------------------------------------------------------
// Prefill

namespace wmma = nvcuda::wmma;

constexpr int kTile = 64;            // query rows per block and keys per tile
constexpr int kPrefillWarps = 4;     // each owns 16 query rows
constexpr int kLdBf = kHeadDim + 8;  // padded bf16 row (Q, K, V tiles)
constexpr int kLdS = kTile + 4;      // padded float row of scores
constexpr int kLdP = kTile + 8;      // padded bf16 row of probabilities
constexpr int kLdO = kHeadDim + 4;   // padded float row of outputs

struct PrefillSmem {
  bf16 q[kTile * kLdBf];
  bf16 k[kTile * kLdBf];
  bf16 v[kTile * kLdBf];
  float s[kPrefillWarps][16 * kLdS];
  bf16 p[kPrefillWarps][16 * kLdP];
  float o[kPrefillWarps][16 * kLdO];
  float m[kPrefillWarps][16];
  float l[kPrefillWarps][16];
};

// Copies 64 rows x 128 bf16 into a padded shared tile; rows at or beyond `valid`
// become zeros. `row_ptr(i)` gives the global address of row i.
template <typename RowPtr>
__device__ void LoadTile(bf16* tile, int valid, RowPtr row_ptr) {
  constexpr int kChunks = kTile * (kHeadDim / 8);  // 16-byte chunks
  for (int c = threadIdx.x; c < kChunks; c += blockDim.x) {
    const int row = c / (kHeadDim / 8), col = (c % (kHeadDim / 8)) * 8;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (row < valid) val = *reinterpret_cast<const uint4*>(row_ptr(row) + col);
    *reinterpret_cast<uint4*>(tile + row * kLdBf + col) = val;
  }
}

__global__ void __launch_bounds__(kPrefillWarps * 32)
    PrefillKernel(PrefillArgs a, float scale_log2) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  PrefillSmem& sm = *reinterpret_cast<PrefillSmem*>(smem_raw);
  const int q0 = blockIdx.x * kTile, h = blockIdx.y, b = blockIdx.z;
  const int kvh = h / (a.q_heads / a.kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const size_t kv_stride = static_cast<size_t>(a.kv_heads) * kHeadDim;

  LoadTile(sm.q, a.tokens - q0, [&](int i) {
    return a.q + ((static_cast<size_t>(b) * a.tokens + q0 + i) * a.q_heads + h) * kHeadDim;
  });
  float* o = sm.o[warp];
  for (int i = lane; i < 16 * kLdO; i += 32) o[i] = 0.f;
  if (lane < 16) {
    sm.m[warp][lane] = -INFINITY;
    sm.l[warp][lane] = 0.f;
  }

  // This lane's share of the softmax work: row r, half `half` of the columns.
  const int r = lane / 2, half = lane % 2;
  const int row_global = q0 + warp * 16 + r;
  const int last_key = min(a.tokens, q0 + kTile);  // causal: keys < last_key matter
  const int tiles = (last_key + kTile - 1) / kTile;

  // This warp's 16 query rows stay in registers for the whole key loop.
  __syncthreads();  // the Q tile is in shared memory
  wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> qf[kHeadDim / 16];
#pragma unroll
  for (int kk = 0; kk < kHeadDim / 16; ++kk) {
    wmma::load_matrix_sync(qf[kk], sm.q + (warp * 16) * kLdBf + kk * 16, kLdBf);
  }

  for (int kt = 0; kt < tiles; ++kt) {
    const int k0 = kt * kTile;
    __syncthreads();  // previous tile fully used
    LoadTile(sm.k, a.tokens - k0, [&](int i) {
      return a.k + RowOf(a.layout, b, k0 + i) * kv_stride + static_cast<size_t>(kvh) * kHeadDim;
    });
    LoadTile(sm.v, a.tokens - k0, [&](int i) {
      return a.v + RowOf(a.layout, b, k0 + i) * kv_stride + static_cast<size_t>(kvh) * kHeadDim;
    });
    __syncthreads();

    // S = Q_w K^T (16 x 64).
    float* s = sm.s[warp];
    for (int nt = 0; nt < kTile / 16; ++nt) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> c;
      wmma::fill_fragment(c, 0.f);
#pragma unroll
      for (int kk = 0; kk < kHeadDim / 16; ++kk) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb;
        wmma::load_matrix_sync(fb, sm.k + (nt * 16) * kLdBf + kk * 16, kLdBf);
        wmma::mma_sync(c, qf[kk], fb, c);
      }
      wmma::store_matrix_sync(s + nt * 16, c, kLdS, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax for row r over this tile (each lane: 32 of the 64 columns).
    float tile_max = -INFINITY;
    float* srow = s + r * kLdS + half * 32;
    for (int c = 0; c < 32; ++c) {
      const int key = k0 + half * 32 + c;
      const bool valid = key <= row_global && key < a.tokens;
      const float x = valid ? srow[c] * scale_log2 : -INFINITY;
      srow[c] = x;
      tile_max = fmaxf(tile_max, x);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    const float m_old = sm.m[warp][r];
    const float m_new = fmaxf(m_old, tile_max);
    const float corr = (m_old == -INFINITY) ? 0.f : exp2f(m_old - m_new);
    float sum = 0.f;
    bf16* prow = sm.p[warp] + r * kLdP + half * 32;
    for (int c = 0; c < 32; ++c) {
      const float p = (m_new == -INFINITY) ? 0.f : exp2f(srow[c] - m_new);
      const bf16 pb = __float2bfloat16(p);
      prow[c] = pb;
      sum += __bfloat162float(pb);  // normalize by what the P.V product really sums
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    __syncwarp();
    if (half == 0) {
      sm.m[warp][r] = m_new;
      sm.l[warp][r] = sm.l[warp][r] * corr + sum;
    }
    float* orow = o + r * kLdO + half * 64;
    for (int c = 0; c < 64; ++c) orow[c] *= corr;
    __syncwarp();

    // O_w += P V (16 x 128).
    for (int nt = 0; nt < kHeadDim / 16; ++nt) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> c;
      wmma::load_matrix_sync(c, o + nt * 16, kLdO, wmma::mem_row_major);
      for (int kk = 0; kk < kTile / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, sm.p[warp] + kk * 16, kLdP);
        wmma::load_matrix_sync(fb, sm.v + (kk * 16) * kLdBf + nt * 16, kLdBf);
        wmma::mma_sync(c, fa, fb, c);
      }
      wmma::store_matrix_sync(o + nt * 16, c, kLdO, wmma::mem_row_major);
    }
    __syncwarp();
  }

  if (row_global < a.tokens) {
    const float l = sm.l[warp][r];
    const float inv = l > 0.f ? 1.f / l : 0.f;
    bf16* out = a.out +
                ((static_cast<size_t>(b) * a.tokens + row_global) * a.q_heads + h) * kHeadDim +
                half * 64;
    const float* orow = o + r * kLdO + half * 64;
    for (int c = 0; c < 64; c += 2) {
      *reinterpret_cast<__nv_bfloat162*>(out + c) =
          __floats2bfloat162_rn(orow[c] * inv, orow[c + 1] * inv);
    }
  }
}

}  // namespace

size_t DecodeWorkspaceFloats(int batch, int q_heads, int max_len, int kv_heads, int sm_count) {
  int splits = 1, split_tokens = 0;
  PlanSplits(batch, kv_heads, max_len, sm_count, &splits, &split_tokens);
  return static_cast<size_t>(batch) * q_heads * splits * (kHeadDim + 2);
}

void LaunchDecodeAttention(const DecodeArgs& a, cudaStream_t stream) {
  if (a.kv_heads < 1 || a.q_heads % a.kv_heads != 0) throw std::invalid_argument("bad heads");
  switch (a.q_heads / a.kv_heads) {
    case 1:
      return LaunchDecodeG<1>(a, stream);
    case 2:
      return LaunchDecodeG<2>(a, stream);
    case 4:
      return LaunchDecodeG<4>(a, stream);
    case 7:
      return LaunchDecodeG<7>(a, stream);
    case 8:
      return LaunchDecodeG<8>(a, stream);
    default:
      throw std::invalid_argument("decode attention: unsupported group size " +
                                  std::to_string(a.q_heads / a.kv_heads));
  }
}

void LaunchPrefillAttention(const PrefillArgs& a, cudaStream_t stream) {
  if (a.kv_heads < 1 || a.q_heads % a.kv_heads != 0) throw std::invalid_argument("bad heads");
  const int smem = static_cast<int>(sizeof(PrefillSmem));
  CUDA_CHECK(
      cudaFuncSetAttribute(PrefillKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const float scale_log2 = 1.4426950408889634f / std::sqrt(static_cast<float>(kHeadDim));
  PrefillKernel<<<dim3((a.tokens + kTile - 1) / kTile, a.q_heads, a.batch), kPrefillWarps * 32,
                  smem, stream>>>(a, scale_log2);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace kvprobe
