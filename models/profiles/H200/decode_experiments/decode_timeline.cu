// Where the time of one decode attention launch goes: kvprobe's staged decode kernel,
// built with -DKVPROBE_DECODE_TRACE=1, records per warp when it starts, when its first
// steps' copies are issued and land, when its last step lands, when its arithmetic ends
// and when its block's result is written (DecodeTraceStamp in
// tools/kvprobe/cuda/attention.cuh). A standalone program, not part of kvprobe; from the
// repository root:
//
//   nvcc -O3 -std=c++17 -arch=sm_90 --expt-relaxed-constexpr -DKVPROBE_DECODE_TRACE=1 \
//     -I. -Itools/kvprobe -o decode_timeline \
//     models/profiles/H200/decode_experiments/decode_timeline.cu \
//     tools/kvprobe/cuda/attention.cu tools/kvprobe/cuda/common.cu \
//     tools/kvprobe/host/kernel_plan.cc tools/kvprobe/host/reference.cc \
//     tools/kvprobe/host/steady_warm.cc tools/kvprobe/host/timing_plan.cc \
//     tools/kvprobe/host/profile_writer.cc tools/kvprobe/host/args.cc -lcuda
//   ./decode_timeline BATCH CONTEXT OUT.csv
//
// Llama-3-8B's heads (32 query, 8 KV), contiguous KV, one split, the staged schedule
// (-DKVPROBE_TIMELINE_STAGED_WARPS=4: its 4-warp blocks).
// Launches are replayed as CUDA graphs of 40, cycling through 8 copies of the KV so
// that none finds its bytes in the L2, as kvprobe times its cells. It prints the time
// per launch with the trace buffer unset (the kernel as timed, bar a branch) and set,
// then writes the stamps of the last 8 traced launches, one row per warp.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "tools/kvprobe/cuda/attention.cuh"
#include "tools/kvprobe/cuda/common.cuh"

using namespace kvprobe;

// The staged kernel's block shape: 8 warps (DecodeLoads::kStaged) or 4 (kStagedW4), from
// kvprobe 0.3.11 both in every build (before, -DKVPROBE_DECODE_STAGED_WARPS chose one).
#ifndef KVPROBE_TIMELINE_STAGED_WARPS
#define KVPROBE_TIMELINE_STAGED_WARPS 8
#endif
static_assert(KVPROBE_TIMELINE_STAGED_WARPS == 4 || KVPROBE_TIMELINE_STAGED_WARPS == 8,
              "staged blocks have 4 or 8 warps");

namespace {

double GraphUsPerLaunch(cudaStream_t stream, DecodeArgs a, const KvCopies& copies, int per_graph,
                        int replays) {
  int next = 0;
  return TimeGraphUs(stream, per_graph, replays,
                     [&] { LaunchDecodeOnCopy(a, copies, next++, stream); });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: decode_timeline BATCH CONTEXT OUT.csv\n");
    return 2;
  }
  const int batch = std::atoi(argv[1]), context = std::atoi(argv[2]);
  constexpr int kQHeads = 32, kKvHeads = 8, kPerGraph = 40, kReplays = 20;
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreate(&stream));
  int sms = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));

  const size_t row = static_cast<size_t>(kKvHeads) * kHeadDim;
  const size_t rows = static_cast<size_t>(batch) * context;
  const size_t copy_bytes = rows * row * sizeof(__nv_bfloat16);
  KvCopies copies;
  copies.count = static_cast<int>(std::clamp<size_t>((size_t{1} << 30) / copy_bytes, 2, 8));
  copies.stride_elems = rows * row;
  DeviceBuffer<__nv_bfloat16> k(copies.count * rows * row), v(copies.count * rows * row);
  DeviceBuffer<__nv_bfloat16> q(static_cast<size_t>(batch) * kQHeads * kHeadDim);
  DeviceBuffer<__nv_bfloat16> out(q.size());
  FillRandomBf16(k.get(), k.size(), 21, 1.f, stream);
  FillRandomBf16(v.get(), v.size(), 22, 1.f, stream);
  FillRandomBf16(q.get(), q.size(), 23, 1.f, stream);
  DeviceBuffer<int> lens = IntsToDevice(std::vector<int>(static_cast<size_t>(batch), context));
  const DecodeSizes sizes{batch, kQHeads, kKvHeads, context, sms};
  DeviceBuffer<float> ws(DecodeWorkspaceFloats(sizes));
  DecodeArgs a = MakeDecodeArgs(sizes, q.get(), k.get(), v.get(), out.get(), lens.get(), ws.get());
  a.layout.max_context = context;
  a.splits = 1;
  a.loads = KVPROBE_TIMELINE_STAGED_WARPS == 4 ? DecodeLoads::kStagedW4 : DecodeLoads::kStaged;

  DeviceBuffer<unsigned long long> trace(kDecodeTraceElems);
  CUDA_CHECK(cudaMemsetAsync(trace.get(), 0, trace.bytes(), stream));
  const double plain_us = GraphUsPerLaunch(stream, a, copies, kPerGraph, kReplays);
  a.trace = trace.get();
  const double traced_us = GraphUsPerLaunch(stream, a, copies, kPerGraph, kReplays);
  CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<unsigned long long> host(kDecodeTraceElems);
  CUDA_CHECK(cudaMemcpy(host.data(), trace.get(), trace.bytes(), cudaMemcpyDeviceToHost));

  const int blocks = kKvHeads * batch;
  const unsigned long long launches = host[0] / static_cast<unsigned long long>(blocks);
  const double mib = 2.0 * copy_bytes / (1 << 20);
  std::printf("batch %d x %d tokens, %d KV copies, %d SMs, %.1f MiB of K and V a launch\n", batch,
              context, copies.count, sms, mib);
  std::printf("us per launch, graphs of %d: trace unset %.3f, set %.3f (%llu traced launches)\n",
              kPerGraph, plain_us, traced_us, launches);

  FILE* f = std::fopen(argv[3], "w");
  if (f == nullptr) {
    std::perror(argv[3]);
    return 1;
  }
  // Columns: the stamps in DecodeTraceStamp's order.
  std::fprintf(f,
               "launch,block,warp,entry_ns,sm,lens_ns,enqueued_ns,first_data_ns,last_data_ns,"
               "loop_end_ns,computed_ns,merge_start_ns,exit_ns,wait_cycles,step_cycles,steps\n");
  static_assert(kDecodeTraceStamps == 13, "one column per stamp");
  for (unsigned long long n = launches >= kDecodeTraceLaunches ? launches - kDecodeTraceLaunches
                                                               : 0;
       n < launches; ++n) {
    for (int b = 0; b < std::min(blocks, kDecodeTraceMaxBlocks); ++b) {
      for (int w = 0; w < kDecodeTraceMaxWarps; ++w) {
        const unsigned long long* s = &host[DecodeTraceIndex(static_cast<int>(n), b, w, 0)];
        if (s[kTraceSteps] == 0 && s[kTraceEntryNs] == 0) continue;  // no such warp
        std::fprintf(f, "%llu,%d,%d", n, b, w);
        for (int i = 0; i < kDecodeTraceStamps; ++i) std::fprintf(f, ",%llu", s[i]);
        std::fprintf(f, "\n");
      }
    }
  }
  std::fclose(f);
  return 0;
}
