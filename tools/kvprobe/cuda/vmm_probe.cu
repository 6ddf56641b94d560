// CUDA virtual-memory call latencies, alone and while attention kernels run.
#include <atomic>
#include <fstream>
#include <thread>
#include <vector>

#include "tools/kvprobe/cuda/attention.cuh"
#include "tools/kvprobe/cuda/common.cuh"
#include "tools/kvprobe/cuda/probes.h"
#include "tools/kvprobe/host/reference.h"

namespace kvprobe {
namespace {

CUmemAllocationProp DeviceProp(int device) {
  CUmemAllocationProp prop = {};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  return prop;
}

CUmemAccessDesc ReadWrite(int device) {
  CUmemAccessDesc access = {};
  access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  access.location.id = device;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  return access;
}

// Samples (microseconds) of one call, kept for the table and the raw file.
struct Samples {
  std::string call;
  size_t handle_bytes = 0;
  std::vector<double> us;
};

template <typename F>
double Timed(F&& f) {
  const double t0 = NowUs();
  f();
  return NowUs() - t0;
}

void AddRows(ProfileWriter::Table& table, std::ofstream& raw, const Samples& s) {
  table.Row({s.call, Num(static_cast<double>(s.handle_bytes)),
             Num(static_cast<double>(s.us.size())), Num(Percentile(s.us, 0.10), 4),
             Num(Percentile(s.us, 0.50), 4), Num(Percentile(s.us, 0.90), 4),
             Num(Percentile(s.us, 0.99), 4)});
  for (double v : s.us) raw << s.call << ',' << s.handle_bytes << ',' << Num(v, 5) << '\n';
}

}  // namespace

size_t AllocationGranularity(int device) {
  CUmemAllocationProp prop = DeviceProp(device);
  size_t gran = 0;
  CU_CHECK(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  return gran;
}

void ProbeVmm(ProbeContext& ctx) {
  const int n = ctx.options.quick ? 100 : ctx.options.vmm_samples;
  const size_t gran = AllocationGranularity(ctx.device);
  const CUmemAllocationProp prop = DeviceProp(ctx.device);
  const CUmemAccessDesc access = ReadWrite(ctx.device);
  auto& table = ctx.profile.AddTable(schema::kVmm);
  std::ofstream raw(RawFilePath(ctx.raw_dir, schema::kVmmSamplesFile));
  raw << HeaderLine(schema::kVmmSamplesFile) << "\n";

  for (size_t mult : {1, 2, 8, 32}) {
    const size_t bytes = mult * gran;
    ctx.log("vmm: handles of " + std::to_string(bytes >> 20) + " MiB");
    Samples create{"cuMemCreate", bytes, {}}, map{"cuMemMap", bytes, {}},
        set{"cuMemSetAccess", bytes, {}}, unmap{"cuMemUnmap", bytes, {}},
        release{"cuMemRelease", bytes, {}};
    CUdeviceptr va = 0;
    CU_CHECK(cuMemAddressReserve(&va, bytes, gran, 0, 0));
    for (int i = 0; i < n; ++i) {
      CUmemGenericAllocationHandle h;
      create.us.push_back(Timed([&] { CU_CHECK(cuMemCreate(&h, bytes, &prop, 0)); }));
      map.us.push_back(Timed([&] { CU_CHECK(cuMemMap(va, bytes, 0, h, 0)); }));
      set.us.push_back(Timed([&] { CU_CHECK(cuMemSetAccess(va, bytes, &access, 1)); }));
      unmap.us.push_back(Timed([&] { CU_CHECK(cuMemUnmap(va, bytes)); }));
      release.us.push_back(Timed([&] { CU_CHECK(cuMemRelease(h)); }));
    }
    CU_CHECK(cuMemAddressFree(va, bytes));

    // Pooled handles, as vAttention uses them: created once, mapped and unmapped
    // into a reserved range many times.
    constexpr int kPool = 16;
    std::vector<CUmemGenericAllocationHandle> pool(kPool);
    for (auto& h : pool) CU_CHECK(cuMemCreate(&h, bytes, &prop, 0));
    CUdeviceptr range = 0;
    CU_CHECK(cuMemAddressReserve(&range, bytes * kPool, gran, 0, 0));
    Samples pooled{"map_set_access_pooled", bytes, {}}, pooled_unmap{"unmap_pooled", bytes, {}};
    for (int i = 0; i < n; ++i) {
      const CUdeviceptr at = range + (i % kPool) * bytes;
      pooled.us.push_back(Timed([&] {
        CU_CHECK(cuMemMap(at, bytes, 0, pool[i % kPool], 0));
        CU_CHECK(cuMemSetAccess(at, bytes, &access, 1));
      }));
      pooled_unmap.us.push_back(Timed([&] { CU_CHECK(cuMemUnmap(at, bytes)); }));
    }
    CU_CHECK(cuMemAddressFree(range, bytes * kPool));
    for (auto h : pool) CU_CHECK(cuMemRelease(h));

    // cudaMalloc / cudaFree of the same size, for comparison.
    Samples malloc_s{"cudaMalloc", bytes, {}}, free_s{"cudaFree", bytes, {}};
    for (int i = 0; i < std::min(n, 500); ++i) {
      void* p = nullptr;
      malloc_s.us.push_back(Timed([&] { CUDA_CHECK(cudaMalloc(&p, bytes)); }));
      free_s.us.push_back(Timed([&] { CUDA_CHECK(cudaFree(p)); }));
    }
    for (const Samples* s :
         {&create, &map, &set, &unmap, &release, &pooled, &pooled_unmap, &malloc_s, &free_s}) {
      AddRows(table, raw, *s);
    }
    if (mult == 1) {
      ctx.headlines.emplace_back("cuMemMap / cuMemSetAccess / cuMemUnmap p50, 2 MiB",
                                 Num(Percentile(map.us, 0.5), 3) + " / " +
                                     Num(Percentile(set.us, 0.5), 3) + " / " +
                                     Num(Percentile(unmap.us, 0.5), 3) + " us");
      ctx.headlines.emplace_back("map + set access, pooled handle, p50",
                                 Num(Percentile(pooled.us, 0.5), 3) + " us");
    }
  }

  // Address reservations from 1 GiB to several TiB.
  for (size_t gib : {size_t{1}, size_t{64}, size_t{1024}, size_t{4096}}) {
    const size_t bytes = gib << 30;
    Samples reserve{"cuMemAddressReserve", bytes, {}}, release{"cuMemAddressFree", bytes, {}};
    bool ok = true;
    for (int i = 0; i < std::min(n, 200) && ok; ++i) {
      CUdeviceptr va = 0;
      const double t0 = NowUs();
      const CUresult r = cuMemAddressReserve(&va, bytes, gran, 0, 0);
      const double t1 = NowUs();
      if (r != CUDA_SUCCESS) {
        ctx.log("vmm: reserving " + std::to_string(gib) + " GiB failed: " + DriverErrorString(r));
        ok = false;
        break;
      }
      reserve.us.push_back(t1 - t0);
      release.us.push_back(Timed([&] { CU_CHECK(cuMemAddressFree(va, bytes)); }));
    }
    if (!reserve.us.empty()) {
      AddRows(table, raw, reserve);
      AddRows(table, raw, release);
    }
  }
}

void ProbeOverlap(ProbeContext& ctx) {
  // A decode-attention kernel in a loop (Llama-3-8B layer shape: 32 query heads,
  // 8 KV heads, batch 64 x 4096 tokens), first alone, then while a host thread maps
  // and unmaps pooled 2 MiB pages into a separate range as fast as it can.
  const int batch = 64, context = 4096, q_heads = 32, kv_heads = 8;
  const size_t kv = static_cast<size_t>(batch) * context * kv_heads * kHeadDim;
  DeviceBuffer<__nv_bfloat16> q(static_cast<size_t>(batch) * q_heads * kHeadDim), k(kv), v(kv),
      out(static_cast<size_t>(batch) * q_heads * kHeadDim);
  const DecodeSizes sizes{batch, q_heads, kv_heads, context, ctx.sm_count};
  DeviceBuffer<float> ws(DecodeWorkspaceFloats(sizes));
  DeviceBuffer<int> lens(batch);
  std::vector<int> host_lens(batch, context);
  CUDA_CHECK(cudaMemcpy(lens.get(), host_lens.data(), batch * sizeof(int), cudaMemcpyHostToDevice));
  FillRandomBf16(q.get(), q.size(), 1, 1.f, ctx.stream);
  FillRandomBf16(k.get(), k.size(), 2, 1.f, ctx.stream);
  FillRandomBf16(v.get(), v.size(), 3, 1.f, ctx.stream);
  DecodeArgs args =
      MakeDecodeArgs(sizes, q.get(), k.get(), v.get(), out.get(), lens.get(), ws.get());
  args.layout.max_context = context;

  const int kernels = ctx.options.quick ? 200 : 2000;
  auto kernel_times = [&]() {
    return TimeEachUs(ctx.stream, kernels, [&] { LaunchDecodeAttention(args, ctx.stream); });
  };

  const size_t gran = AllocationGranularity(ctx.device);
  const CUmemAllocationProp prop = DeviceProp(ctx.device);
  const CUmemAccessDesc access = ReadWrite(ctx.device);
  constexpr int kPool = 64;
  std::vector<CUmemGenericAllocationHandle> pool(kPool);
  for (auto& h : pool) CU_CHECK(cuMemCreate(&h, gran, &prop, 0));
  CUdeviceptr range = 0;
  CU_CHECK(cuMemAddressReserve(&range, gran * kPool, gran, 0, 0));
  CUcontext cu_ctx;
  CU_CHECK(cuCtxGetCurrent(&cu_ctx));

  // Map + set access latency with the GPU idle.
  std::vector<double> idle;
  for (int i = 0; i < 500; ++i) {
    const CUdeviceptr at = range + (i % kPool) * gran;
    idle.push_back(Timed([&] {
      CU_CHECK(cuMemMap(at, gran, 0, pool[i % kPool], 0));
      CU_CHECK(cuMemSetAccess(at, gran, &access, 1));
    }));
    CU_CHECK(cuMemUnmap(at, gran));
  }

  kernel_times();  // warm-up
  const std::vector<double> alone = kernel_times();

  std::atomic<bool> stop{false};
  std::vector<double> loaded;
  std::string thread_error;
  std::thread mapper([&] {
    try {
      CU_CHECK(cuCtxSetCurrent(cu_ctx));
      for (int i = 0; !stop.load(); ++i) {
        const CUdeviceptr at = range + (i % kPool) * gran;
        loaded.push_back(Timed([&] {
          CU_CHECK(cuMemMap(at, gran, 0, pool[i % kPool], 0));
          CU_CHECK(cuMemSetAccess(at, gran, &access, 1));
        }));
        CU_CHECK(cuMemUnmap(at, gran));
      }
    } catch (const std::exception& e) {
      thread_error = e.what();
    }
  });
  const std::vector<double> busy = kernel_times();
  stop = true;
  mapper.join();
  if (!thread_error.empty()) throw std::runtime_error(thread_error);
  CU_CHECK(cuMemAddressFree(range, gran * kPool));
  for (auto h : pool) CU_CHECK(cuMemRelease(h));
  if (loaded.empty()) throw std::runtime_error("overlap probe: the mapping thread made no call");

  auto& table = ctx.profile.AddTable(schema::kVmmUnderLoad);
  const double alone_us = Percentile(alone, 0.5), busy_us = Percentile(busy, 0.5);
  table.Row({"kernel_alone_us", Num(alone_us, 5)});
  table.Row({"kernel_with_mapping_us", Num(busy_us, 5)});
  table.Row({"kernel_slowdown_ratio", Num(busy_us / alone_us, 4)});
  table.Row({"map_set_access_idle_p50_us", Num(Percentile(idle, 0.5), 4)});
  table.Row({"map_set_access_under_load_p50_us", Num(Percentile(loaded, 0.5), 4)});
  table.Row({"map_set_access_under_load_p99_us", Num(Percentile(loaded, 0.99), 4)});
  table.Row({"map_calls_under_load", Num(static_cast<double>(loaded.size()))});
  ctx.headlines.emplace_back("decode kernel with mapping thread / alone",
                             Num(busy_us / alone_us, 4) + "x");
  ctx.headlines.emplace_back(
      "map + set access p50 idle / under load",
      Num(Percentile(idle, 0.5), 3) + " / " + Num(Percentile(loaded, 0.5), 3) + " us");
}

}  // namespace kvprobe
