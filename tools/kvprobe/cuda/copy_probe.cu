// HBM bandwidth: device-to-device copies.
#include <algorithm>
#include <vector>

#include "tools/kvprobe/cuda/common.cuh"
#include "tools/kvprobe/cuda/probes.h"

namespace kvprobe {

void ProbeCopy(ProbeContext& ctx) {
  auto& table = ctx.profile.AddTable(schema::kCopy);
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

}  // namespace kvprobe
