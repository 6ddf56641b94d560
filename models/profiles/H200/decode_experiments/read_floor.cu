// What a kernel that only reads N bytes from HBM, and does nothing else, takes per
// launch when launches are replayed back to back as CUDA graphs: the floor under any
// decode attention kernel that reads the same K and V. A standalone program, not part
// of kvprobe; built with `nvcc -O3 -arch=sm_90 -o read_floor read_floor.cu` and run once
// on one H200 (read_floor.txt).
//
// Each launch reads a different slice of a 4 GiB pool (consecutive launches at least
// 256 MiB apart), so no launch finds its bytes in the 50 MB L2. Two ways to cut
// the work: `chunk`, each block streams one contiguous share (as a decode block reads
// its sequence's K and V), and `stride`, a grid-stride loop. Every configuration is
// timed three times and the best is kept. The 64 MiB device-to-device copy
// (cudaMemcpyAsync, 64 MiB read + 64 MiB written) is timed the same way for reference.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#define CHECK(x)                                                                    \
  do {                                                                              \
    cudaError_t e = (x);                                                            \
    if (e != cudaSuccess) {                                                         \
      std::printf("%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e)); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

// Block b reads uint4s [b * per_block, (b + 1) * per_block) of `data`, kUnroll
// independent 16-byte loads in flight per thread; the XOR of what it read is written
// only if it equals a value random data never gives, which keeps every load.
template <int kUnroll>
__global__ void ReadChunk(const uint4* __restrict__ data, size_t per_block, int* out) {
  const uint4* p = data + blockIdx.x * per_block;
  unsigned acc = 0;
  for (size_t i = threadIdx.x; i < per_block; i += static_cast<size_t>(blockDim.x) * kUnroll) {
    uint4 v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const size_t j = i + static_cast<size_t>(u) * blockDim.x;
      v[u] = j < per_block ? __ldg(p + j) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  if (acc == 0x9e3779b9u) out[0] = static_cast<int>(acc);
}

// A grid-stride loop over n uint4s, kUnroll loads in flight per thread.
template <int kUnroll>
__global__ void ReadStride(const uint4* __restrict__ data, size_t n, int* out) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  unsigned acc = 0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += stride * kUnroll) {
    uint4 v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const size_t j = i + u * stride;
      v[u] = j < n ? __ldg(data + j) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  if (acc == 0x9e3779b9u) out[0] = static_cast<int>(acc);
}

// Microseconds per launch: a graph of n launches, replayed 10 times to warm and 20
// times timed.
template <typename Launch>
float TimeGraph(cudaStream_t s, int n, Launch launch) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  for (int i = 0; i < n; ++i) launch(i);
  CHECK(cudaStreamEndCapture(s, &graph));
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < 10; ++i) CHECK(cudaGraphLaunch(exec, s));
  cudaEvent_t begin, end;
  CHECK(cudaEventCreate(&begin));
  CHECK(cudaEventCreate(&end));
  CHECK(cudaEventRecord(begin, s));
  constexpr int kReps = 20;
  for (int i = 0; i < kReps; ++i) CHECK(cudaGraphLaunch(exec, s));
  CHECK(cudaEventRecord(end, s));
  CHECK(cudaEventSynchronize(end));
  float ms = 0;
  CHECK(cudaEventElapsedTime(&ms, begin, end));
  CHECK(cudaEventDestroy(begin));
  CHECK(cudaEventDestroy(end));
  CHECK(cudaGraphExecDestroy(exec));
  CHECK(cudaGraphDestroy(graph));
  return ms * 1000.f / (kReps * n);
}

template <typename Launch>
float Best3(cudaStream_t s, int n, Launch launch) {
  float best = 1e30f;
  for (int r = 0; r < 3; ++r) best = std::min(best, TimeGraph(s, n, launch));
  return best;
}

// The ring-column reader (`columns`): block (sequence, head) of `heads` reads rows
// [0, rows) of its pair from K and from V, 256 bytes a row from each; warp w takes the
// 32-row steps w, w + 4, ... into its kSlots slots (K then V, 16 KB a slot).
constexpr int kColumnWarps = 4;
constexpr int kSlotChunks = 1024;  // 16-byte chunks a slot: 32 rows x 16, for K and for V

__device__ __forceinline__ void CpAsync16(unsigned dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src));
}

template <int kSlots>
__global__ void __launch_bounds__(kColumnWarps * 32, 1)
    RingColumns(const uint4* k, const uint4* v, int rows, int heads, bool head_major, int* out) {
  extern __shared__ uint4 ring[];
  const int seq = blockIdx.x / heads, head = blockIdx.x % heads;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const uint4* slots = ring + warp * kSlots * kSlotChunks;
  const unsigned slots_shared = static_cast<unsigned>(__cvta_generic_to_shared(slots));
  auto chunk = [&](int r, int c) {
    return head_major ? ((static_cast<size_t>(seq) * heads + head) * rows + r) * 16 + c
                      : ((static_cast<size_t>(seq) * rows + r) * heads + head) * 16 + c;
  };
  auto enqueue = [&](int step, int slot) {
    const unsigned base = slots_shared + 16u * static_cast<unsigned>(slot * kSlotChunks);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const size_t at = chunk(step + 2 * i + (lane >> 4), lane & 15);
      CpAsync16(base + 16u * static_cast<unsigned>(i * 32 + lane), k + at);
      CpAsync16(base + 16u * static_cast<unsigned>(512 + i * 32 + lane), v + at);
    }
  };
  const int step0 = warp * 32, stride = kColumnWarps * 32;
#pragma unroll
  for (int p = 0; p < kSlots; ++p) {
    if (step0 + p * stride < rows) enqueue(step0 + p * stride, p);
    asm volatile("cp.async.commit_group;\n" ::);
  }
  unsigned acc = 0;
  int slot = 0;
  for (int step = step0; step < rows; step += stride) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kSlots - 1) : "memory");
    __syncwarp();
    const uint4* mine = slots + slot * kSlotChunks;
#pragma unroll 8
    for (int i = 0; i < 32; ++i) {
      const uint4 x = mine[i * 32 + lane];
      acc ^= x.x ^ x.y ^ x.z ^ x.w;
    }
    __syncwarp();
    if (step + kSlots * stride < rows) enqueue(step + kSlots * stride, slot);
    asm volatile("cp.async.commit_group;\n" ::);
    slot = slot + 1 == kSlots ? 0 : slot + 1;
  }
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
  if (acc == 0x9e3779b9u) out[0] = static_cast<int>(acc);
}

template <int kSlots>
void LaunchColumns(const uint4* k, const uint4* v, int seqs, int rows, int heads, bool head_major,
                   int* out, cudaStream_t s) {
  const int smem = kColumnWarps * kSlots * kSlotChunks * 16;
  CHECK(
      cudaFuncSetAttribute(RingColumns<kSlots>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  RingColumns<kSlots>
      <<<seqs * heads, kColumnWarps * 32, smem, s>>>(k, v, rows, heads, head_major, out);
}

// `columns`: batch 16 and 64 x 1,024 rows x 8 heads, K and V each from its own slice of
// the pool.
int Columns(cudaStream_t s, const char* data, size_t pool, int* out) {
  constexpr int kRows = 1024, kHeads = 8;
  std::printf(
      "ring columns: 4 warps per (sequence, head), 32 rows a step; us per launch (best "
      "of 3 graphs), GB/s of K and V read\n");
  for (int seqs : {16, 64}) {
    const size_t half = static_cast<size_t>(seqs) * kRows * kHeads * 256;  // K, or V
    const size_t slots = pool / std::max(2 * half, size_t{256} << 20);
    const size_t gap = pool / slots;
    const int n = std::clamp(static_cast<int>(2000.0 / (2.0 * half / 4.0e6)), 4, 200);
    auto k = [&](int i) {
      return reinterpret_cast<const uint4*>(data + (static_cast<size_t>(i) % slots) * gap);
    };
    auto v = [&](int i) { return k(i) + half / sizeof(uint4); };
    for (bool head_major : {false, true}) {
      const float us2 = Best3(s, n, [&](int i) {
        LaunchColumns<2>(k(i), v(i), seqs, kRows, kHeads, head_major, out, s);
      });
      const float us3 = Best3(s, n, [&](int i) {
        LaunchColumns<3>(k(i), v(i), seqs, kRows, kHeads, head_major, out, s);
      });
      std::printf("  %2d x %d, %-12s: 2 slots %8.2f us %6.0f GB/s, 3 slots %8.2f us %6.0f GB/s\n",
                  seqs, kRows, head_major ? "head-major" : "interleaved", us2,
                  2.0 * half / us2 / 1e3, us3, 2.0 * half / us3 / 1e3);
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  int sms = 0;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  int* out;
  CHECK(cudaMalloc(&out, 64));
  const size_t pool = size_t{4} << 30;
  char* data;
  CHECK(cudaMalloc(&data, pool));
  CHECK(cudaMemset(data, 0x5a, pool));
  char* dst;
  CHECK(cudaMalloc(&dst, size_t{1} << 30));
  if (argc > 1 && std::string(argv[1]) == "columns") return Columns(s, data, pool, out);
  std::printf("read_floor on %d SMs; us per launch (best of 3 graphs), GB/s of bytes read\n", sms);

  for (size_t mib : {16, 64, 256, 1024}) {
    const size_t bytes = mib << 20;
    // Consecutive launches at least 256 MiB apart; at least 15 slices pass between two
    // reads of one (>= 240 MiB, far more than the L2 holds).
    const size_t slots = pool / std::max(bytes, size_t{256} << 20);
    const size_t gap = pool / slots;
    // Graphs of about 2 ms of launches (at 4 TB/s), 4 to 200 of them.
    const int n = std::clamp(static_cast<int>(2000.0 / (bytes / 4.0e6)), 4, 200);
    auto src = [&](int i) {
      return reinterpret_cast<const uint4*>(data + (static_cast<size_t>(i) % slots) * gap);
    };
    float best = 1e30f;
    std::printf("%zu MiB:\n", mib);
    for (int per_sm : {1, 2, 4, 8}) {
      for (int threads : {128, 256, 512}) {
        if (per_sm * threads > 2048) continue;
        const int blocks = sms * per_sm;
        const size_t per_block = bytes / sizeof(uint4) / blocks;  // remainder left unread
        const double read = static_cast<double>(per_block) * blocks * sizeof(uint4);
        float us8 = Best3(
            s, n, [&](int i) { ReadChunk<8><<<blocks, threads, 0, s>>>(src(i), per_block, out); });
        float us16 = Best3(
            s, n, [&](int i) { ReadChunk<16><<<blocks, threads, 0, s>>>(src(i), per_block, out); });
        float us_s = Best3(s, n, [&](int i) {
          ReadStride<8><<<blocks, threads, 0, s>>>(src(i), bytes / sizeof(uint4), out);
        });
        std::printf(
            "  %4d blocks x %3d threads: chunk/8 %8.2f us %6.0f GB/s, chunk/16 %8.2f us "
            "%6.0f GB/s, stride/8 %8.2f us %6.0f GB/s\n",
            blocks, threads, us8, read / us8 / 1e3, us16, read / us16 / 1e3, us_s,
            bytes / us_s / 1e3);
        best = std::min({best, us8, us16, us_s});
      }
    }
    const float copy = Best3(s, n, [&](int i) {
      CHECK(cudaMemcpyAsync(dst, src(i), bytes, cudaMemcpyDeviceToDevice, s));
    });
    std::printf("  best read %.2f us = %.0f GB/s; copy %.2f us = %.0f GB/s (read + written)\n",
                best, bytes / best / 1e3, copy, 2.0 * bytes / copy / 1e3);
  }
  return 0;
}
