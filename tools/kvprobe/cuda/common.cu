// Shared kvprobe helpers.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "tools/kvprobe/cuda/common.cuh"
#include "tools/kvprobe/host/reference.h"

#ifdef KVPROBE_HAVE_NVML
#include <nvml.h>
#endif

namespace kvprobe {
namespace {

__global__ void FillKernel(__nv_bfloat16* data, size_t count, uint64_t seed, float scale) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ULL ^ seed * 0xd1b54a32d192ed03ULL;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 29;
    const float u = static_cast<float>(x >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    data[i] = __float2bfloat16((2.f * u - 1.f) * scale);
  }
}

}  // namespace

void FillRandomBf16(__nv_bfloat16* data, size_t count, uint64_t seed, float scale,
                    cudaStream_t stream) {
  if (count == 0) return;
  FillKernel<<<1024, 256, 0, stream>>>(data, count, seed, scale);
  CUDA_CHECK(cudaGetLastError());
}

DeviceBuffer<__nv_bfloat16> ToDevice(const std::vector<float>& values) {
  std::vector<uint16_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i) bits[i] = FloatToBf16(values[i]);
  DeviceBuffer<__nv_bfloat16> d(values.size());
  CUDA_CHECK(cudaMemcpy(d.get(), bits.data(), bits.size() * 2, cudaMemcpyHostToDevice));
  return d;
}

std::vector<float> ToHost(const DeviceBuffer<__nv_bfloat16>& d) {
  std::vector<uint16_t> bits(d.size());
  CUDA_CHECK(cudaMemcpy(bits.data(), d.get(), d.bytes(), cudaMemcpyDeviceToHost));
  std::vector<float> v(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) v[i] = Bf16ToFloat(bits[i]);
  return v;
}

DeviceBuffer<int> IntsToDevice(const std::vector<int>& values) {
  DeviceBuffer<int> d(values.size());
  CUDA_CHECK(
      cudaMemcpy(d.get(), values.data(), values.size() * sizeof(int), cudaMemcpyHostToDevice));
  return d;
}

std::vector<int> ShuffledBlocks(size_t count, std::mt19937_64& rng) {
  std::vector<int> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  return order;
}

double TimeUs(cudaStream_t stream, int warmup, int reps, const std::function<void()>& launch) {
  for (int i = 0; i < warmup; ++i) launch();
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  CUDA_CHECK(cudaEventRecord(start, stream));
  for (int i = 0; i < reps; ++i) launch();
  CUDA_CHECK(cudaEventRecord(stop, stream));
  CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  return 1000.0 * ms / reps;
}

std::vector<double> TimeEachUs(cudaStream_t stream, int reps, const std::function<void()>& launch) {
  std::vector<cudaEvent_t> events;
  struct Destroy {
    std::vector<cudaEvent_t>& events;
    ~Destroy() {
      for (cudaEvent_t e : events) cudaEventDestroy(e);
    }
  } destroy{events};
  for (int i = 0; i <= reps; ++i) {
    cudaEvent_t e;
    CUDA_CHECK(cudaEventCreate(&e));
    events.push_back(e);
  }
  CUDA_CHECK(cudaEventRecord(events[0], stream));
  for (int i = 0; i < reps; ++i) {
    launch();
    CUDA_CHECK(cudaEventRecord(events[i + 1], stream));
  }
  CUDA_CHECK(cudaEventSynchronize(events[reps]));
  std::vector<double> us(static_cast<size_t>(reps));
  for (int i = 0; i < reps; ++i) {
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, events[i], events[i + 1]));
    us[i] = 1000.0 * ms;
  }
  return us;
}

double TimeGraphUs(cudaStream_t stream, int per_graph, int reps,
                   const std::function<void()>& launch, SmClock* clock, LoadWindow* window) {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < per_graph; ++i) launch();
  CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  CUDA_CHECK(cudaGraphLaunch(exec, stream));  // untimed: uploads the graph, warms caches
  // The window opens while the untimed replay may still run: the same kernels, so the
  // same clock; synchronizing first would put a launch latency inside the timed replays.
  const double us = TimeInWindow(clock, window, [&] {
    return TimeUs(stream, 0, reps, [&] { CUDA_CHECK(cudaGraphLaunch(exec, stream)); });
  });
  CUDA_CHECK(cudaGraphExecDestroy(exec));
  CUDA_CHECK(cudaGraphDestroy(graph));
  return us / per_graph;
}

double ReplayUntilSteady(cudaStream_t stream, const std::function<void()>& launch, double launch_us,
                         double warmed_us, const SteadyWarmLimits& limits, double chunk_us,
                         const std::function<bool(bool)>& any_more) {
  const int chunk = std::max(1, static_cast<int>(std::ceil(chunk_us / std::max(launch_us, 1.0))));
  SteadyWarm warm(limits, warmed_us);
  auto more = [&] { return any_more ? any_more(warm.More()) : warm.More(); };
  while (more()) warm.Record(TimeUs(stream, 0, chunk, launch), chunk);
  return warm.warmed_ms();
}

int RepsFor(double trial_us, double target_us, int min_reps, int max_reps) {
  if (trial_us <= 0) return max_reps;
  const double reps = target_us / trial_us;
  if (reps < min_reps) return min_reps;
  if (reps > max_reps) return max_reps;
  return static_cast<int>(reps);
}

double NowUs() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

SmClock::SmClock(int device) {
#ifdef KVPROBE_HAVE_NVML
  // NVML numbers devices by PCI order and ignores CUDA_VISIBLE_DEVICES: find CUDA's
  // device by its PCI bus id, falling back to the index.
  nvmlDevice_t dev;
  char bus_id[32] = {};
  nvml_ = nvmlInit_v2() == NVML_SUCCESS;
  if (nvml_) {
    nvml_ = (cudaDeviceGetPCIBusId(bus_id, sizeof bus_id, device) == cudaSuccess &&
             nvmlDeviceGetHandleByPciBusId_v2(bus_id, &dev) == NVML_SUCCESS) ||
            nvmlDeviceGetHandleByIndex_v2(static_cast<unsigned>(device), &dev) == NVML_SUCCESS;
  }
  if (nvml_) nvml_device_ = dev;
  if (nvml_) sampler_ = std::thread([this] { SampleWindows(); });
#else
  (void)device;
#endif
}

SmClock::~SmClock() {
  if (sampler_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    sampler_.join();
  }
#ifdef KVPROBE_HAVE_NVML
  if (nvml_) nvmlShutdown();
#endif
}

void SmClock::SampleWindows() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (!open_) {
      wake_.wait(lock, [this] { return open_ || stop_; });
      continue;
    }
    lock.unlock();
    const double mhz = CurrentMhz();
    double watts = 0;
#ifdef KVPROBE_HAVE_NVML
    unsigned int mw = 0;
    if (nvmlDeviceGetPowerUsage(static_cast<nvmlDevice_t>(nvml_device_), &mw) == NVML_SUCCESS) {
      watts = mw / 1000.0;
    }
#endif
    lock.lock();
    if (open_ && mhz > 0) {
      mhz_sum_ += mhz;
      ++samples_;
    }
    if (open_ && watts > 0) {
      w_sum_ += watts;
      ++power_samples_;
    }
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    lock.lock();
  }
}

// The board's energy counter in millijoules (0 without NVML or where unsupported).
double SmClock::EnergyMj() const {
#ifdef KVPROBE_HAVE_NVML
  unsigned long long mj = 0;
  if (nvml_ && nvmlDeviceGetTotalEnergyConsumption(static_cast<nvmlDevice_t>(nvml_device_), &mj) ==
                   NVML_SUCCESS) {
    return static_cast<double>(mj);
  }
#endif
  return 0;
}

void SmClock::BeginWindow() {
  std::lock_guard<std::mutex> lock(mu_);
  mhz_sum_ = w_sum_ = 0;
  samples_ = power_samples_ = 0;
  window_start_us_ = NowUs();
  window_start_mj_ = EnergyMj();
  open_ = true;
  wake_.notify_all();
}

LoadWindow SmClock::EndWindow() {
  std::lock_guard<std::mutex> lock(mu_);
  open_ = false;
  if (samples_ == 0) return {};
  LoadWindow w;
  w.sm_mhz = mhz_sum_ / samples_;
  w.power_w = power_samples_ > 0 ? w_sum_ / power_samples_ : 0;
  w.samples = samples_;
  const double mj = EnergyMj(), us = NowUs() - window_start_us_;
  if (window_start_mj_ > 0 && mj > window_start_mj_ && us > 0) {
    w.energy_power_w = (mj - window_start_mj_) * 1e3 / us;
  }
  return w;
}

std::string LoadWindowFields(const LoadWindow& w) {
  return Num(w.sm_mhz, 5) + "," + Num(w.power_w, 4) + "," + std::to_string(w.samples) + "," +
         Num(w.energy_power_w, 4);
}

int SmClock::CurrentMhz() const {
#ifdef KVPROBE_HAVE_NVML
  unsigned int mhz = 0;
  if (nvml_ && nvmlDeviceGetClockInfo(static_cast<nvmlDevice_t>(nvml_device_), NVML_CLOCK_SM,
                                      &mhz) == NVML_SUCCESS) {
    return static_cast<int>(mhz);
  }
#endif
  return 0;
}

void SmClock::Sample() { max_mhz_ = std::max(max_mhz_, CurrentMhz()); }

void SmClock::SampleUnderLoad() {
  const int mhz = CurrentMhz();
  max_mhz_ = std::max(max_mhz_, mhz);
  if (mhz > 0) under_load_mhz_.push_back(mhz);
}

int SmClock::median_under_load_mhz() const {
  if (under_load_mhz_.empty()) return 0;
  std::vector<int> v = under_load_mhz_;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

CapturedGraph::CapturedGraph(cudaStream_t stream, const std::function<void()>& body) {
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    body();
  } catch (...) {
    cudaGraph_t partial = nullptr;
    cudaStreamEndCapture(stream, &partial);
    if (partial) cudaGraphDestroy(partial);
    throw;
  }
  CUDA_CHECK(cudaStreamEndCapture(stream, &graph_));
  const cudaError_t err = cudaGraphInstantiate(&exec_, graph_, 0);
  if (err != cudaSuccess) {
    cudaGraphDestroy(graph_);
    CUDA_CHECK(err);
  }
}

CapturedGraph::~CapturedGraph() {
  if (exec_) cudaGraphExecDestroy(exec_);
  if (graph_) cudaGraphDestroy(graph_);
}

void CapturedGraph::Launch(cudaStream_t stream) const {
  CUDA_CHECK(cudaGraphLaunch(exec_, stream));
}

}  // namespace kvprobe
