// NCCL all-reduce across the GPUs of one host, one process per GPU as serving engines
// run tensor parallelism. The probe (in the main kvprobe process) starts a fresh
// kvprobe per rank for each GPU count, hands them an NCCL unique id on the command
// line, waits for them, and turns the slowest rank's time at each size into rows.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tools/kvprobe/cuda/common.cuh"
#include "tools/kvprobe/cuda/nccl_rank.cuh"
#include "tools/kvprobe/cuda/probes.h"
#include "tools/kvprobe/host/allreduce_merge.h"
#include "tools/kvprobe/host/allreduce_plan.h"
#include "tools/kvprobe/host/rank_processes.h"
#include "tools/kvprobe/host/reference.h"
#include "tools/kvprobe/host/text.h"

namespace kvprobe {

#ifdef KVPROBE_HAVE_NCCL
namespace {

constexpr int kTrials = 3;          // timed trials per size; each rank keeps the median
constexpr int kWarmup = 5;          // untimed all-reduces per size
constexpr int kRankTimeoutS = 600;  // a rank set that has not finished by then is killed
// In-graph timing: a graph of kGraphSteps x (a kDelayNs kernel, then the all-reduce)
// against the same graph without the all-reduces.
constexpr int kGraphSteps = 8;
constexpr unsigned long long kDelayNs = 20000;

// One thread that waits until `ns` nanoseconds of the GPU's global timer have passed.
__global__ void DelayKernel(unsigned long long ns) {
  unsigned long long start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < ns);
}

constexpr size_t kStreamBytes = size_t{64} << 20;  // read by StreamKernel: ~16 us on an H200
// A GEMM-like shared-memory footprint per block (at most what the device allows).
constexpr int kLargeSmemBytes = 200 * 1024;

// Every SM reads its share of `data` (16-byte loads) and one thread per block writes
// a sum: a bandwidth-bound kernel over the whole GPU, as a decode step's GEMMs are
// (they stream their weights), that the all-reduce after it waits for.
__global__ void StreamKernel(const uint4* data, size_t count, unsigned* sink) {
  unsigned acc = 0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const uint4 v = data[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;  // keeps the loads; never true for zeros
}

// Enqueue the kernels above on `stream` (launches kept out of lambdas).
void LaunchDelay(cudaStream_t stream, unsigned threads, unsigned long long ns) {
  DelayKernel<<<1, threads, 0, stream>>>(ns);
}
void LaunchStream(cudaStream_t stream, unsigned blocks, unsigned threads, int smem,
                  const unsigned char* data, unsigned* sink) {
  StreamKernel<<<blocks, threads, smem, stream>>>(reinterpret_cast<const uint4*>(data),
                                                  kStreamBytes / sizeof(uint4), sink);
}

}  // namespace
#endif

void ProbeAllReduce(ProbeContext& ctx) {
  int devices = 0;
  CUDA_CHECK(cudaGetDeviceCount(&devices));
  std::vector<int> counts = ctx.options.allreduce_gpus.empty() ? DefaultAllreduceGpuCounts(devices)
                                                               : ctx.options.allreduce_gpus;
  for (int n : counts) {
    if (n > devices) {
      throw std::runtime_error("--allreduce-gpus: " + std::to_string(n) + " GPUs asked for, " +
                               std::to_string(devices) + " present");
    }
  }
  const std::string& merge_path = ctx.options.merge_allreduce_into;
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, ctx.device));
  if (!merge_path.empty()) {  // check the target before spending time measuring
    if (!std::filesystem::is_regular_file(merge_path)) {
      throw std::runtime_error("--merge-allreduce-into: " + merge_path + ": no such file");
    }
    const std::string text = ReadFileText(merge_path);
    // Every count this run measures replaces its rows; the rows kept must merge.
    if (!counts.empty()) CheckAllreduceMergeTarget(text, merge_path, counts);
    if (ProfileGpuName(text) != prop.name) {
      throw std::runtime_error("--merge-allreduce-into: " + merge_path + " was measured on '" +
                               ProfileGpuName(text) + "', this GPU is '" + prop.name + "'");
    }
  }
  if (counts.empty()) {
    if (!merge_path.empty()) {
      throw std::runtime_error("--merge-allreduce-into: one GPU present, nothing to merge");
    }
    ctx.log("allreduce: one GPU present, skipped");
    return;
  }
#ifndef KVPROBE_HAVE_NCCL
  if (!merge_path.empty()) throw std::runtime_error("--merge-allreduce-into: built without NCCL");
  ctx.log("allreduce: built without NCCL, skipped");
#else
  std::sort(counts.begin(), counts.end());
  DisableNvlinkMulticast();
  int version = 0;
  Nccl(ncclGetVersion(&version), "ncclGetVersion");
  ctx.profile.Meta(schema::meta::kNcclVersion, std::to_string(version));
  ctx.profile.Meta(schema::meta::kAllreduceLaunch, "one-process-per-GPU");
  ctx.profile.Meta(schema::meta::kNcclNvlsEnable, "0");
  ctx.profile.Meta(schema::meta::kGpusPresent, std::to_string(devices));
  const std::string self = SelfExecutablePath();
  std::filesystem::create_directories(
      std::filesystem::path(RawFilePath(ctx.raw_dir, schema::kAllreduceRankFile)).parent_path());

  auto& table = ctx.profile.AddTable(schema::kAllreduce);
  std::vector<AllreduceRow> rows;  // the same rows, for --merge-allreduce-into
  for (int gpus : counts) {
    ncclUniqueId id;
    Nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    const std::string id_hex = HexEncode(id.internal, sizeof id.internal);
    std::vector<pid_t> pids;
    std::vector<std::string> files, names;
    for (int r = 0; r < gpus; ++r) {
      files.push_back(RawFilePath(ctx.raw_dir, schema::kAllreduceRankFile, gpus, r));
      names.push_back(files.back());
      std::filesystem::remove(files.back());
      std::vector<std::string> argv = {
          self,        "--rank-task",        "allreduce", "--rank", std::to_string(r),
          "--ranks",   std::to_string(gpus), "--nccl-id", id_hex,   "--rank-out",
          files.back()};
      if (ctx.options.quick) argv.push_back("--quick");
      pids.push_back(SpawnProcess(argv));
    }
    WaitForRanks(pids, "the " + std::to_string(gpus) + "-GPU all-reduce", kRankTimeoutS);
    std::vector<std::string> texts;
    for (const std::string& f : files) texts.push_back(ReadFileText(f));
    const std::map<size_t, RankTime> times = CombineRankTimes(texts, names);
    double busbw_at_largest = 0;
    for (const auto& [bytes, t] : times) {
      const double algbw = static_cast<double>(bytes) / (t.time_us * 1e-6) / 1e9;
      busbw_at_largest = algbw * BusBandwidthFactor(gpus);
      rows.push_back({Num(gpus), Num(static_cast<double>(bytes)), Num(t.time_us, 5), Num(algbw, 4),
                      Num(busbw_at_largest, 4), Num(t.in_graph_us, 5),
                      Num(t.alone_in_graph_us, 5)});
      table.Row(rows.back());
    }
    ctx.log("allreduce: " + std::to_string(gpus) + " GPUs, " +
            Num(times.begin()->second.time_us, 4) + " us at " +
            std::to_string(times.begin()->first >> 10) + " KiB (" +
            Num(times.begin()->second.in_graph_us, 4) +
            " us between two kernels of a graph), bus bandwidth " + Num(busbw_at_largest, 4) +
            " GB/s at " + std::to_string(times.rbegin()->first >> 20) + " MiB");
    ctx.headlines.emplace_back("all-reduce bus bandwidth, " + std::to_string(gpus) + " GPUs",
                               Num(busbw_at_largest, 4) + " GB/s");
  }
  if (!merge_path.empty()) {
    std::string list;
    for (int n : counts) list += (list.empty() ? "" : ",") + std::to_string(n);
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    const std::string note = "gpus=" + list + " rows: " + prop.name + " x " +
                             std::to_string(devices) + " (host " + host + "), NCCL " +
                             std::to_string(version) +
                             ", one process per GPU, NVLink multicast off; merged by kvprobe "
                             "--merge-allreduce-into from " +
                             ctx.raw_dir + "/profile.txt";
    const std::string merged = MergeAllreduceRows(ReadFileText(merge_path), merge_path, rows, note);
    const std::string tmp = merge_path + ".tmp";
    {
      std::ofstream out(tmp);
      out << merged;
      if (!out) throw std::runtime_error("cannot write " + tmp);
    }
    std::filesystem::rename(tmp, merge_path);
    ctx.log("allreduce: rows for " + list + " GPUs merged into " + merge_path);
  }
#endif
}

int RunAllreduceRank(const ProbeOptions& o) {
#ifndef KVPROBE_HAVE_NCCL
  (void)o;
  throw std::runtime_error("this kvprobe was built without NCCL");
#else
  const RankProcess& me = *o.rank;
  const ncclComm_t comm = JoinRankCommunicator(me);
  const std::vector<size_t> sizes = AllreduceSizes(o.quick);
  DeviceBuffer<unsigned char> buffer(sizes.back());
  DeviceBuffer<float> token(1);
  CUDA_CHECK(cudaMemset(buffer.get(), 0, buffer.bytes()));
  CUDA_CHECK(cudaMemset(token.get(), 0, token.bytes()));
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreate(&stream));
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, me.rank));
  const unsigned stream_blocks = static_cast<unsigned>(prop.multiProcessorCount) * 4;
  DeviceBuffer<unsigned char> stream_data(kStreamBytes);
  DeviceBuffer<unsigned> sink(stream_blocks);
  const int large_smem = std::min(kLargeSmemBytes, static_cast<int>(prop.sharedMemPerBlockOptin));
  CUDA_CHECK(
      cudaFuncSetAttribute(StreamKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, large_smem));
  CUDA_CHECK(cudaMemset(stream_data.get(), 0, stream_data.bytes()));
  // Every rank returns from this only after every rank has entered it.
  auto barrier = [&] {
    Nccl(ncclAllReduce(token.get(), token.get(), 1, ncclFloat, ncclSum, comm, stream),
         "ncclAllReduce");
    CUDA_CHECK(cudaStreamSynchronize(stream));
  };
  std::map<size_t, RankTime> times;
  auto median = [](const std::vector<double>& v) { return Percentile(v, 0.5); };
  for (size_t bytes : sizes) {
    auto run = [&] {
      Nccl(
          ncclAllReduce(buffer.get(), buffer.get(), bytes / 2, ncclBfloat16, ncclSum, comm, stream),
          "ncclAllReduce");
    };
    for (int i = 0; i < kWarmup; ++i) run();
    CUDA_CHECK(cudaStreamSynchronize(stream));
    std::vector<double> trials;
    for (int t = 0; t < kTrials; ++t) {
      barrier();
      trials.push_back(TimeUs(stream, 0, AllreduceRepsFor(bytes), run));
    }
    // As in a forward pass replayed from a graph: each all-reduce starts only when
    // the kernel before it ends, so nothing of it overlaps the previous all-reduce.
    auto in_graph_time = [&](const std::function<void()>& before) {
      auto steps = [&](bool with_allreduce) {
        for (int i = 0; i < kGraphSteps; ++i) {
          before();
          CUDA_CHECK(cudaGetLastError());
          if (with_allreduce) run();
        }
      };
      const CapturedGraph with(stream, [&] { steps(true); });
      const CapturedGraph without(stream, [&] { steps(false); });
      const int replays = std::max(3, AllreduceRepsFor(bytes) / kGraphSteps);
      std::vector<double> per_allreduce;
      for (int t = 0; t < kTrials; ++t) {
        barrier();
        const double both = TimeUs(stream, 1, replays, [&] { with.Launch(stream); });
        const double alone = TimeUs(stream, 1, replays, [&] { without.Launch(stream); });
        per_allreduce.push_back((both - alone) / kGraphSteps);
      }
      return median(per_allreduce);
    };
    // The in-graph time after other kernels, logged by rank 0 for comparison (what a
    // pass's all-reduce costs depends on the kernels around it): a one-thread delay;
    // a bandwidth-bound kernel holding 200 KB of shared memory per block, as GEMMs do;
    // the bandwidth-bound kernel with a one-block kernel right after the all-reduce, as
    // a decode pass's RMSNorm.
    const double after_delay_us = in_graph_time([&] { LaunchDelay(stream, 1, kDelayNs); });
    auto stream_kernel = [&](unsigned blocks, unsigned threads, int smem) {
      LaunchStream(stream, blocks, threads, smem, stream_data.get(), sink.get());
    };
    const double after_stream_us = in_graph_time([&] { stream_kernel(stream_blocks, 512, 0); });
    // As in a forward pass, where the all-reduce sums what the GEMM before it just wrote
    // (so its input sits in L2): the bandwidth-bound kernel, then a kernel over every SM
    // writing the all-reduce's input. This is the time kvsim uses (in_graph_us).
    const double in_graph_us = in_graph_time([&] {
      stream_kernel(stream_blocks, 512, 0);
      FillRandomBf16(reinterpret_cast<__nv_bfloat16*>(buffer.get()), bytes / 2, 3, 0.01f, stream);
    });
    const double after_smem_us = in_graph_time(
        [&] { stream_kernel(static_cast<unsigned>(prop.multiProcessorCount), 1024, large_smem); });
    const double then_small_us = in_graph_time([&] {
      LaunchDelay(stream, 32, 0);
      stream_kernel(stream_blocks, 512, 0);
    });
    if (me.rank == 0) {
      std::cerr << "allreduce rank 0: " << bytes << " bytes: back to back " << median(trials)
                << " us; in a graph after a one-thread delay " << after_delay_us
                << " us, after a bandwidth-bound kernel " << after_stream_us
                << " us, after one with " << large_smem / 1024 << " KB of shared memory per block "
                << after_smem_us
                << " us, after a bandwidth-bound kernel and before a one-block kernel "
                << then_small_us
                << " us, after a bandwidth-bound kernel and a kernel writing its input "
                << in_graph_us << " us (in_graph_us)\n";
    }
    if (!(in_graph_us > 0) || !(after_delay_us > 0)) {
      throw std::runtime_error("allreduce: at " + std::to_string(bytes) +
                               " bytes a graph with all-reduces ran no slower than without (" +
                               Num(in_graph_us, 4) + " and " + Num(after_delay_us, 4) +
                               " us per all-reduce)");
    }
    times[bytes] = {median(trials), in_graph_us, after_delay_us};
  }
  Nccl(ncclCommDestroy(comm), "ncclCommDestroy");
  CUDA_CHECK(cudaStreamDestroy(stream));
  std::ofstream out(me.out_path);
  out << RankTimesCsv(times);
  if (!out) throw std::runtime_error("cannot write " + me.out_path);
  return 0;
#endif
}

}  // namespace kvprobe
