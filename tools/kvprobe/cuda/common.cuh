// Shared pieces of the kvprobe measurements: device buffers, random bf16 data,
// event timing, and the context every probe receives.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <condition_variable>
#include <cstdint>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tools/kvprobe/cuda/check.h"
#include "tools/kvprobe/host/args.h"
#include "tools/kvprobe/host/profile_writer.h"
#include "tools/kvprobe/host/steady_warm.h"
#include "tools/kvprobe/host/timing_plan.h"

namespace kvprobe {

// An owning device allocation (cudaMalloc), freed on destruction.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count) CUDA_CHECK(cudaMalloc(&ptr_, count * sizeof(T)));
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), count_(o.count_) {
    o.ptr_ = nullptr;
    o.count_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
    return *this;
  }
  T* get() const { return ptr_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

// Fills `data` with uniform bf16 values in [-scale, scale) from a counter-based hash
// of (seed, index): deterministic for a seed, different across seeds.
void FillRandomBf16(__nv_bfloat16* data, size_t count, uint64_t seed, float scale,
                    cudaStream_t stream);

// Host values to device bf16 (round to nearest even) and back, synchronously.
DeviceBuffer<__nv_bfloat16> ToDevice(const std::vector<float>& values);
std::vector<float> ToHost(const DeviceBuffer<__nv_bfloat16>& d);
DeviceBuffer<int> IntsToDevice(const std::vector<int>& values);

// Block indices 0..count-1 in shuffled order, as an engine's allocator hands them
// out after churn.
std::vector<int> ShuffledBlocks(size_t count, std::mt19937_64& rng);

// Mean time in microseconds of `launch` enqueued `reps` times on `stream`, after
// `warmup` untimed launches, measured with CUDA events.
double TimeUs(cudaStream_t stream, int warmup, int reps, const std::function<void()>& launch);

// The time in microseconds of each of `reps` back-to-back `launch`es enqueued on
// `stream` (no warm-up), each between two CUDA events, all created before the first
// launch. Synchronizes on the last event.
std::vector<double> TimeEachUs(cudaStream_t stream, int reps, const std::function<void()>& launch);

// Mean time in microseconds of one `launch` as a CUDA graph replays it: `per_graph`
// launches captured into one graph, replayed `reps` times after one untimed
// replay, measured with CUDA events. Serving engines replay decode steps as graphs,
// so this leaves out the host's launch cost, which an eager loop of short kernels
// measures instead of the kernels. `clock` (if set) samples the timed replays as a
// window (SmClock::BeginWindow) into `*window`.
class SmClock;
struct LoadWindow;
double TimeGraphUs(cudaStream_t stream, int per_graph, int reps,
                   const std::function<void()>& launch, SmClock* clock = nullptr,
                   LoadWindow* window = nullptr);

// Replays `launch` on `stream` in chunks of about `chunk_us` (at least one launch;
// `launch_us` is one launch's time from a trial) until `limits` say the clock has
// settled (steady_warm.h), counting `warmed_us` already replayed. `any_more` (if set)
// is told whether this replayer wants more and answers whether any of its peers does
// (the ranks of a tensor-parallel group replay together). Returns the milliseconds
// replayed, `warmed_us` included.
double ReplayUntilSteady(cudaStream_t stream, const std::function<void()>& launch, double launch_us,
                         double warmed_us, const SteadyWarmLimits& limits, double chunk_us,
                         const std::function<bool(bool)>& any_more = {});

// Picks repetitions so that the timed loop lasts about `target_us` given one
// trial's time; at least `min_reps`, at most `max_reps`.
int RepsFor(double trial_us, double target_us, int min_reps, int max_reps);

// What a window of SmClock saw, as means over its samples; all 0 without NVML. power_w
// is NVML's power reading, which on recent GPUs is itself averaged over up to a second
// (nvmlDeviceGetPowerUsage), so only sm_mhz follows a window of tens of milliseconds.
struct LoadWindow {
  double sm_mhz = 0, power_w = 0;
  int samples = 0;
  // The board's energy counter's difference over the window divided by its length
  // (nvmlDeviceGetTotalEnergyConsumption; 0 where unsupported or unchanged). The
  // counter moves in coarse steps: meaningless over tens of milliseconds (0 or
  // thousands of watts on the H200), roughly right over a second or more.
  double energy_power_w = 0;
};

// Samples the SM clock through NVML and keeps the highest value seen (0 without NVML),
// and, apart, the clocks seen right after timing compute-bound work under sustained
// load (see Heater in gemm.cuh). Over a window (BeginWindow .. EndWindow) a thread of
// its own reads the SM clock and the board's power draw every millisecond: the means
// of what ran in the window, to hold a kernel row's clock against a pass's.
class SmClock {
 public:
  explicit SmClock(int device);
  ~SmClock();
  SmClock(const SmClock&) = delete;
  SmClock& operator=(const SmClock&) = delete;
  void Sample();
  void BeginWindow();
  LoadWindow EndWindow();
  // Samples the clock as one seen under load (and as Sample does).
  void SampleUnderLoad();
  int max_mhz() const { return max_mhz_; }
  // Median of the SampleUnderLoad clocks; 0 when none was taken or without NVML.
  int median_under_load_mhz() const;

 private:
  int CurrentMhz() const;  // 0 without NVML

  void* nvml_device_ = nullptr;
  bool nvml_ = false;
  int max_mhz_ = 0;
  std::vector<int> under_load_mhz_;
  // The window sampler (started with NVML only).
  void SampleWindows();
  double EnergyMj() const;
  double window_start_us_ = 0, window_start_mj_ = 0;
  std::mutex mu_;
  std::condition_variable wake_;
  bool open_ = false, stop_ = false;
  double mhz_sum_ = 0, w_sum_ = 0;
  int samples_ = 0, power_samples_ = 0;
  std::thread sampler_;
};

// A window's clock columns as one CSV field run: sm_mhz,power_w,samples,energy_power_w.
std::string LoadWindowFields(const LoadWindow& w);

// Returns `timed()`, with `clock` (if set) sampling it as a window into `*window` (if set).
template <typename Timed>
auto TimeInWindow(SmClock* clock, LoadWindow* window, Timed&& timed) {
  if (clock) clock->BeginWindow();
  auto result = timed();
  if (clock) {
    const LoadWindow w = clock->EndWindow();
    if (window) *window = w;
  }
  return result;
}

// What every probe gets: options, the device, the profile under construction, and a
// directory for raw outputs.
struct ProbeContext {
  const ProbeOptions& options;
  int device = 0;
  int sm_count = 0;
  size_t l2_bytes = 0;  // the device's L2 cache
  cudaStream_t stream = nullptr;
  ProfileWriter& profile;
  std::string raw_dir;
  std::function<void(const std::string&)> log;  // one progress line
  SmClock& clock;
  // Key figures for the summary printed at the end: (what, value with unit).
  std::vector<std::pair<std::string, std::string>>& headlines;
  double copy_gbps = 0;  // set by ProbeCopy, used to rate the decode kernel
};

// A CUDA graph captured from what `body` enqueues on `stream` (thread-local capture
// mode), instantiated; both destroyed with it. If `body` throws, the capture is ended
// and its partial graph destroyed before the exception propagates.
class CapturedGraph {
 public:
  CapturedGraph(cudaStream_t stream, const std::function<void()>& body);
  ~CapturedGraph();
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;
  // Enqueues one replay on `stream`.
  void Launch(cudaStream_t stream) const;

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

// Wall-clock microseconds since an arbitrary epoch (steady clock).
double NowUs();

}  // namespace kvprobe
