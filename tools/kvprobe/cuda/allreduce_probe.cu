// NCCL all-reduce across the GPUs of one host, one process per GPU as serving engines
// run tensor parallelism. The probe (in the main kvprobe process) starts a fresh
// kvprobe per rank for each GPU count, hands them an NCCL unique id on the command
// line, waits for them, and turns the slowest rank's time at each size into rows.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tools/kvprobe/cuda/common.cuh"
#include "tools/kvprobe/cuda/probes.h"
#include "tools/kvprobe/host/allreduce_merge.h"
#include "tools/kvprobe/host/allreduce_plan.h"

#ifdef KVPROBE_HAVE_NCCL
#include <nccl.h>
#endif

extern char** environ;

namespace kvprobe {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

#ifdef KVPROBE_HAVE_NCCL
namespace {

constexpr int kTrials = 3;          // timed trials per size; each rank keeps the median
constexpr int kWarmup = 5;          // untimed all-reduces per size
constexpr int kRankTimeoutS = 600;  // a rank set that has not finished by then is killed

void Nccl(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw std::runtime_error(std::string(what) + ": " + ncclGetErrorString(r));
}

// Starts `argv` as a child process with this process's environment.
pid_t Spawn(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ);
  if (err != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(err));
  return pid;
}

// Waits for every child. When one fails or the time runs out, kills the others (a
// rank whose peer died would wait in NCCL forever) and throws.
void WaitAll(std::vector<pid_t> pids, int gpus) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kRankTimeoutS);
  std::string failure;
  while (!pids.empty() && failure.empty()) {
    for (size_t i = 0; i < pids.size();) {
      int status = 0;
      const pid_t done = waitpid(pids[i], &status, WNOHANG);
      if (done == 0) {
        ++i;
        continue;
      }
      pids.erase(pids.begin() + static_cast<std::ptrdiff_t>(i));
      if (done < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        failure = "a rank process of the " + std::to_string(gpus) + "-GPU all-reduce failed (" +
                  (done < 0            ? std::string("lost")
                   : WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                       : "signal " + std::to_string(WTERMSIG(status))) +
                  "); see its messages above";
        break;
      }
    }
    if (failure.empty() && !pids.empty()) {
      if (std::chrono::steady_clock::now() > deadline) {
        failure = "the " + std::to_string(gpus) + "-GPU all-reduce did not finish in " +
                  std::to_string(kRankTimeoutS) + " s";
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
  for (pid_t pid : pids) kill(pid, SIGKILL);
  for (pid_t pid : pids) waitpid(pid, nullptr, 0);
  if (!failure.empty()) throw std::runtime_error(failure);
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
    const std::string text = ReadFile(merge_path);
    MergeAllreduceRows(text, merge_path, {{"2", "65536", "1", "1", "1"}}, "");
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
  // No NVLink multicast (NVLS): it needs a fabric manager set-up that shared hosts
  // may not have, and serving engines commonly run without it.
  setenv("NCCL_NVLS_ENABLE", "0", 1);
  int version = 0;
  Nccl(ncclGetVersion(&version), "ncclGetVersion");
  ctx.profile.Meta(schema::meta::kNcclVersion, std::to_string(version));
  ctx.profile.Meta(schema::meta::kAllreduceLaunch, "one-process-per-GPU");
  ctx.profile.Meta(schema::meta::kNcclNvlsEnable, "0");
  ctx.profile.Meta(schema::meta::kGpusPresent, std::to_string(devices));
  char self[4096] = {};
  const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) throw std::runtime_error("allreduce: cannot find this program's path");
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
      std::vector<std::string> argv = {self,
                                       "--allreduce-rank",
                                       std::to_string(r),
                                       "--allreduce-ranks",
                                       std::to_string(gpus),
                                       "--nccl-id",
                                       id_hex,
                                       "--rank-out",
                                       files.back()};
      if (ctx.options.quick) argv.push_back("--quick");
      pids.push_back(Spawn(argv));
    }
    WaitAll(pids, gpus);
    std::vector<std::string> texts;
    for (const std::string& f : files) texts.push_back(ReadFile(f));
    const std::map<size_t, double> times = CombineRankTimes(texts, names);
    double busbw_at_largest = 0;
    for (const auto& [bytes, us] : times) {
      const double algbw = static_cast<double>(bytes) / (us * 1e-6) / 1e9;
      busbw_at_largest = algbw * BusBandwidthFactor(gpus);
      rows.push_back({Num(gpus), Num(static_cast<double>(bytes)), Num(us, 5), Num(algbw, 4),
                      Num(busbw_at_largest, 4)});
      table.Row(rows.back());
    }
    ctx.log("allreduce: " + std::to_string(gpus) + " GPUs, " + Num(times.begin()->second, 4) +
            " us at " + std::to_string(times.begin()->first >> 10) + " KiB, bus bandwidth " +
            Num(busbw_at_largest, 4) + " GB/s at " + std::to_string(times.rbegin()->first >> 20) +
            " MiB");
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
    const std::string merged = MergeAllreduceRows(ReadFile(merge_path), merge_path, rows, note);
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
  const AllreduceRank& me = *o.rank;
  ncclUniqueId id;
  if (!HexDecode(me.nccl_id_hex, id.internal, sizeof id.internal)) {
    throw std::runtime_error("--nccl-id: expected " + std::to_string(2 * sizeof id.internal) +
                             " hex digits");
  }
  setenv("NCCL_NVLS_ENABLE", "0", 1);  // also when a rank is started by hand
  CUDA_CHECK(cudaSetDevice(me.rank));
  ncclComm_t comm;
  Nccl(ncclCommInitRank(&comm, me.ranks, id, me.rank), "ncclCommInitRank");
  const std::vector<size_t> sizes = AllreduceSizes(o.quick);
  DeviceBuffer<unsigned char> buffer(sizes.back());
  DeviceBuffer<float> token(1);
  CUDA_CHECK(cudaMemset(buffer.get(), 0, buffer.bytes()));
  CUDA_CHECK(cudaMemset(token.get(), 0, token.bytes()));
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreate(&stream));
  // Every rank returns from this only after every rank has entered it.
  auto barrier = [&] {
    Nccl(ncclAllReduce(token.get(), token.get(), 1, ncclFloat, ncclSum, comm, stream),
         "ncclAllReduce");
    CUDA_CHECK(cudaStreamSynchronize(stream));
  };
  std::map<size_t, double> times;
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
    std::sort(trials.begin(), trials.end());
    times[bytes] = trials[trials.size() / 2];
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
