// kvprobe: measures the costs kvsim models on the GPU it runs on and writes a
// profile (tools/kvprobe/PROFILE_FORMAT.md) plus raw outputs.
#include <cuda.h>
#include <cuda_runtime.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "tools/kvprobe/cuda/common.cuh"
#include "tools/kvprobe/cuda/probes.h"
#include "tools/kvprobe/host/args.h"

#ifndef KVPROBE_VERSION
#define KVPROBE_VERSION "0.0.0"
#endif

namespace kvprobe {
namespace {

// The kernel module's version (e.g. 580.159.04): the first word of
// /proc/driver/nvidia/version made of digits and at least one dot.
std::string DriverVersion() {
  std::ifstream in("/proc/driver/nvidia/version");
  std::string line;
  if (std::getline(in, line)) {
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
      const bool version = word.find('.') != std::string::npos &&
                           word.find_first_not_of("0123456789.") == std::string::npos &&
                           std::isdigit(static_cast<unsigned char>(word[0]));
      if (version) return word;
    }
  }
  int v = 0;
  cuDriverGetVersion(&v);
  return "cuda-driver-" + std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

std::string UtcNow() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string Row(const std::string& a, const std::string& b) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "  %-44s %s\n", a.c_str(), b.c_str());
  return buf;
}

int Run(const ProbeOptions& o) {
  CUDA_CHECK(cudaSetDevice(o.device));
  CUDA_CHECK(cudaFree(nullptr));  // creates the primary context
  CU_CHECK(cuInit(0));
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, o.device));
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const std::string out_dir = OutputDir(o, prop.name);
  // Before anything is written (kvprobe.log is truncated below) or measured.
  if (const std::string conflict = OutputConflict(o, out_dir); !conflict.empty()) {
    std::cerr << "kvprobe: error: " << conflict << "\n";
    return 2;
  }
  std::filesystem::create_directories(out_dir);

  ProfileWriter profile;
  SmClock clock(o.device);
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreate(&stream));
  std::ofstream log_file(out_dir + "/kvprobe.log");
  auto log = [&](const std::string& line) {
    std::cout << line << std::endl;
    log_file << line << std::endl;
  };
  std::vector<std::pair<std::string, std::string>> headlines;
  ProbeContext ctx{o,
                   o.device,
                   prop.multiProcessorCount,
                   static_cast<size_t>(std::max(0, prop.l2CacheSize)),
                   stream,
                   profile,
                   out_dir,
                   log,
                   clock,
                   headlines};

  int runtime_version = 0, driver_api = 0;
  CUDA_CHECK(cudaRuntimeGetVersion(&runtime_version));
  CU_CHECK(cuDriverGetVersion(&driver_api));
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  profile.Meta(schema::meta::kFormatVersion, "1");
  profile.Meta(schema::meta::kKvprobeVersion, KVPROBE_VERSION);
  profile.Meta(schema::meta::kGpuName, prop.name);
  profile.Meta(schema::meta::kGpuMemoryBytes, std::to_string(total_bytes));
  profile.Meta(schema::meta::kSmCount, std::to_string(prop.multiProcessorCount));
  profile.Meta(schema::meta::kSmClockMhz, "0");
  profile.Meta(schema::meta::kDriverVersion, DriverVersion());
  profile.Meta(schema::meta::kCudaDriverApiVersion,
               std::to_string(driver_api / 1000) + "." + std::to_string(driver_api % 1000 / 10));
  profile.Meta(schema::meta::kCudaRuntimeVersion, std::to_string(runtime_version / 1000) + "." +
                                                      std::to_string(runtime_version % 1000 / 10));
  profile.Meta(schema::meta::kDateUtc, UtcNow());
  profile.Meta(schema::meta::kAllocationGranularityBytes,
               std::to_string(AllocationGranularity(o.device)));
  profile.Meta(schema::meta::kHost, host);
  profile.Meta(schema::meta::kMode, o.quick ? "quick" : "full");
  log(std::string("kvprobe ") + KVPROBE_VERSION + " on " + prop.name + ", " +
      std::to_string(total_bytes >> 20) + " MiB, " + std::to_string(prop.multiProcessorCount) +
      " SMs; writing " + out_dir);

  // The attention kernels are checked before anything is measured: a wrong kernel
  // stops the run.
  double attention_error = -1;
  if (o.Runs("attention") || o.Runs("overlap") || o.Runs("vattention") || o.Runs("step")) {
    attention_error = VerifyAttention(ctx);
    log("attention kernels verified: worst relative error " + Num(attention_error, 3));
    profile.Meta(schema::meta::kAttentionVerifiedMaxRelativeError, Num(attention_error, 3));
  }
  const auto started = std::chrono::steady_clock::now();
  auto timed = [&](const std::string& name, void (*probe)(ProbeContext&)) {
    if (!o.Runs(name)) return;
    const auto t0 = std::chrono::steady_clock::now();
    probe(ctx);
    clock.Sample();
    log(name + ": done in " +
        Num(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 3) +
        " s");
  };
  timed("copy", ProbeCopy);
  timed("vmm", ProbeVmm);
  timed("overlap", ProbeOverlap);
  timed("gemm", ProbeGemm);
  timed("small_kernels", ProbeSmallKernels);
  timed("attention", ProbeAttention);
  timed("step", ProbeStep);
  timed("allreduce", ProbeAllReduce);
  timed("vattention", ProbeVAttention);
  profile.Meta(schema::meta::kSmClockMhz, std::to_string(clock.max_mhz()));
  // Median SM clock right after timing compute-bound work under sustained load.
  profile.Meta(schema::meta::kSmClockMhzUnderLoad, std::to_string(clock.median_under_load_mhz()));
  profile.Meta(
      schema::meta::kProbeSeconds,
      Num(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), 4));
  profile.WriteTo(out_dir + "/profile.txt");
  CUDA_CHECK(cudaStreamDestroy(stream));

  std::cout << "\nkvprobe summary (" << prop.name << ")\n"
            << Row("profile", out_dir + "/profile.txt")
            << Row("attention check, worst relative error",
                   attention_error < 0 ? "not run" : Num(attention_error, 3))
            << Row("highest SM clock seen", std::to_string(clock.max_mhz()) + " MHz")
            << Row("SM clock under sustained load (median)",
                   std::to_string(clock.median_under_load_mhz()) + " MHz");
  for (const auto& [what, value] : headlines) std::cout << Row(what, value);
  std::cout << "  full tables: " << out_dir << "/profile.txt\n";
  return 0;
}

}  // namespace
}  // namespace kvprobe

int main(int argc, char** argv) {
  kvprobe::ProbeOptions options;
  try {
    options = kvprobe::ParseArgs(argc, argv);
  } catch (const kvprobe::ArgsError& e) {
    std::cerr << "kvprobe: " << e.what() << "\n" << kvprobe::Usage();
    return 2;
  }
  if (options.help) {
    std::cout << kvprobe::Usage();
    return 0;
  }
  try {
    if (!options.rank) return kvprobe::Run(options);
    return options.rank->task == kvprobe::RankProcess::Task::kStep
               ? kvprobe::RunStepRank(options)
               : kvprobe::RunAllreduceRank(options);
  } catch (const std::exception& e) {
    std::cerr << "kvprobe" << (options.rank ? " rank " + std::to_string(options.rank->rank) : "")
              << ": error: " << e.what() << "\n";
    return 1;
  }
}
