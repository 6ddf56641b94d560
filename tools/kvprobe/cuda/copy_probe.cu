// HBM bandwidth (device-to-device copies) and NCCL all-reduce across local GPUs.
#include <algorithm>
#include <vector>

#include "tools/kvprobe/cuda/common.cuh"
#include "tools/kvprobe/cuda/probes.h"

#ifdef KVPROBE_HAVE_NCCL
#include <nccl.h>
#endif

namespace kvprobe {

void ProbeCopy(ProbeContext& ctx) {
  auto& table = ctx.profile.AddTable("copy", {"bytes", "time_us", "gbps"});
  for (size_t mib : {64, 256, 1024}) {
    const size_t bytes = mib << 20;
    DeviceBuffer<unsigned char> src(bytes), dst(bytes);
    CUDA_CHECK(cudaMemsetAsync(src.get(), 1, bytes, ctx.stream));
    const double us = TimeUs(ctx.stream, 2, ctx.options.quick ? 5 : 20, [&] {
      CUDA_CHECK(
          cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice, ctx.stream));
    });
    const double gbps = 2.0 * bytes / (us * 1e-6) / 1e9;
    table.Row({Num(static_cast<double>(bytes)), Num(us, 5), Num(gbps, 4)});
    ctx.copy_gbps = std::max(ctx.copy_gbps, gbps);
  }
  ctx.headlines.emplace_back("device copy bandwidth (read + write)",
                             Num(ctx.copy_gbps, 4) + " GB/s");
}

void ProbeAllReduce(ProbeContext& ctx) {
  int gpus = 0;
  CUDA_CHECK(cudaGetDeviceCount(&gpus));
  if (gpus < 2) {
    ctx.log("allreduce: one GPU present, skipped");
    return;
  }
#ifndef KVPROBE_HAVE_NCCL
  ctx.log("allreduce: built without NCCL, skipped");
#else
  setenv("NCCL_NVLS_ENABLE", "0", 1);  // no NVLink multicast on shared hosts
  std::vector<ncclComm_t> comms(gpus);
  std::vector<int> devs(gpus);
  for (int i = 0; i < gpus; ++i) devs[i] = i;
  auto nccl = [](ncclResult_t r, const char* what) {
    if (r != ncclSuccess)
      throw std::runtime_error(std::string(what) + ": " + ncclGetErrorString(r));
  };
  nccl(ncclCommInitAll(comms.data(), gpus, devs.data()), "ncclCommInitAll");
  const size_t max_bytes = size_t{256} << 20;
  std::vector<void*> bufs(gpus);
  std::vector<cudaStream_t> streams(gpus);
  for (int i = 0; i < gpus; ++i) {
    CUDA_CHECK(cudaSetDevice(i));
    CUDA_CHECK(cudaMalloc(&bufs[i], max_bytes));
    CUDA_CHECK(cudaMemset(bufs[i], 0, max_bytes));
    CUDA_CHECK(cudaStreamCreate(&streams[i]));
  }
  auto& table =
      ctx.profile.AddTable("allreduce", {"gpus", "bytes", "time_us", "algbw_gbps", "busbw_gbps"});
  for (size_t bytes = 64 << 10; bytes <= max_bytes; bytes *= 4) {
    auto run = [&] {
      nccl(ncclGroupStart(), "ncclGroupStart");
      for (int i = 0; i < gpus; ++i) {
        nccl(
            ncclAllReduce(bufs[i], bufs[i], bytes / 2, ncclBfloat16, ncclSum, comms[i], streams[i]),
            "ncclAllReduce");
      }
      nccl(ncclGroupEnd(), "ncclGroupEnd");
    };
    for (int w = 0; w < 3; ++w) run();
    for (int i = 0; i < gpus; ++i) {
      CUDA_CHECK(cudaSetDevice(i));
      CUDA_CHECK(cudaStreamSynchronize(streams[i]));
    }
    const int reps = 20;
    const double t0 = NowUs();
    for (int r = 0; r < reps; ++r) run();
    for (int i = 0; i < gpus; ++i) {
      CUDA_CHECK(cudaSetDevice(i));
      CUDA_CHECK(cudaStreamSynchronize(streams[i]));
    }
    const double us = (NowUs() - t0) / reps;
    const double algbw = bytes / (us * 1e-6) / 1e9;
    table.Row({Num(gpus), Num(static_cast<double>(bytes)), Num(us, 5), Num(algbw, 4),
               Num(algbw * 2.0 * (gpus - 1) / gpus, 4)});
  }
  for (int i = 0; i < gpus; ++i) {
    CUDA_CHECK(cudaSetDevice(i));
    CUDA_CHECK(cudaFree(bufs[i]));
    CUDA_CHECK(cudaStreamDestroy(streams[i]));
    ncclCommDestroy(comms[i]);
  }
  CUDA_CHECK(cudaSetDevice(ctx.device));
#endif
}

}  // namespace kvprobe
