// The time per launch of near-empty kernels replayed as CUDA graphs: what a decode
// attention launch costs before it reads its KV. A standalone program, not part of
// kvprobe; built with `nvcc -O2 -arch=sm_90 -o launch_floor launch_floor.cu` and run
// once on one H200 (launch_floor.txt).
#include <cuda_runtime.h>

#include <cstdio>

#define CHECK(x)                                     \
  do {                                               \
    cudaError_t e = (x);                             \
    if (e != cudaSuccess) {                          \
      printf("%s: %s\n", #x, cudaGetErrorString(e)); \
      return 1;                                      \
    }                                                \
  } while (0)

__global__ void Empty() {}

// Each block reads one word (a context length), as a decode block does first.
__global__ void ReadOne(const int* lens, int* out) {
  const int v = lens[blockIdx.y];
  if (v == -12345) out[0] = v;  // never true: keeps the read
}

// Each thread reads 16 bytes.
__global__ void ReadData(const int4* data, int* out) {
  const int4 d = data[blockIdx.x * 128 + threadIdx.x];
  if (d.x == -12345) out[0] = d.y;
}

// Each thread reads 16 bytes at an address that depends on a word read first.
__global__ void ReadTwo(const int* lens, const int4* data, int* out) {
  const int v = lens[blockIdx.x % 16];
  const int4 d = data[static_cast<size_t>(v) + blockIdx.x * 128 + threadIdx.x];
  if (d.x == -12345) out[0] = d.y;
}

// Microseconds per launch of a graph of n launches, over 50 replays after 20.
template <typename Launch>
float TimeGraph(cudaStream_t s, int n, Launch launch) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal);
  for (int i = 0; i < n; ++i) launch();
  cudaStreamEndCapture(s, &graph);
  cudaGraphInstantiate(&exec, graph, 0);
  for (int i = 0; i < 20; ++i) cudaGraphLaunch(exec, s);
  cudaEvent_t begin, end;
  cudaEventCreate(&begin);
  cudaEventCreate(&end);
  cudaEventRecord(begin, s);
  constexpr int kReps = 50;
  for (int i = 0; i < kReps; ++i) cudaGraphLaunch(exec, s);
  cudaEventRecord(end, s);
  cudaEventSynchronize(end);
  float ms = 0;
  cudaEventElapsedTime(&ms, begin, end);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return ms * 1000.f / (kReps * n);
}

int main() {
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  int *lens, *out;
  CHECK(cudaMalloc(&lens, 64 * sizeof(int)));
  CHECK(cudaMemset(lens, 0, 64 * sizeof(int)));
  CHECK(cudaMalloc(&out, 64));
  int4* data;
  // Launches cycle through 1 GiB; a graph of 200 launches reads 50 MiB of it per replay,
  // about the L2's size, so its reads are served partly by the L2.
  const size_t bytes = size_t{1} << 30;
  CHECK(cudaMalloc(&data, bytes));
  CHECK(cudaMemset(data, 1, bytes));
  const size_t per_launch = 128 * 128;  // int4s one launch reads
  const size_t slices = bytes / sizeof(int4) / per_launch;
  for (int n : {20, 200}) {
    printf("graph of %d launches, us per launch:\n", n);
    printf("  empty <<<1,32>>>                 %.3f\n",
           TimeGraph(s, n, [&] { Empty<<<1, 32, 0, s>>>(); }));
    printf("  empty <<<128,128>>>              %.3f\n",
           TimeGraph(s, n, [&] { Empty<<<128, 128, 0, s>>>(); }));
    printf("  read lens <<<(8,16),128>>>       %.3f\n",
           TimeGraph(s, n, [&] { ReadOne<<<dim3(8, 16), 128, 0, s>>>(lens, out); }));
    size_t i = 0;
    printf("  read 16 B/thread <<<128,128>>>   %.3f\n", TimeGraph(s, n, [&] {
             ReadData<<<128, 128, 0, s>>>(data + (i++ % slices) * per_launch, out);
           }));
    i = 0;
    printf("  lens then 16 B <<<128,128>>>     %.3f\n", TimeGraph(s, n, [&] {
             ReadTwo<<<128, 128, 0, s>>>(lens, data + (i++ % slices) * per_launch, out);
           }));
  }
  return 0;
}
