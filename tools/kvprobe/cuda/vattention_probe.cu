// The vAttention mechanism run for real: per-layer K and V virtual buffers reserved
// for max_slots x max context, physical pages from a pool created up front, mapped
// on demand when a request's length crosses a page boundary, reclaimed lazily (a
// finished request's pages stay with its slot for the next request). A fixed decode
// schedule runs twice: mapping synchronously before each iteration (overlap off),
// and mapping the next iteration's pages on a host thread while the current
// iteration's kernels run (overlap on). Model shape: Llama-3-8B at TP 1.
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "tools/kvprobe/cuda/attention.cuh"
#include "tools/kvprobe/cuda/common.cuh"
#include "tools/kvprobe/cuda/probes.h"
#include "tools/kvprobe/host/reference.h"

namespace kvprobe {
namespace {

struct Request {
  int len = 0;     // tokens with KV (context of the next decode step, before it)
  int target = 0;  // length at which it finishes
};

class VirtualKvCache {
 public:
  VirtualKvCache(int device, int layers, int slots, size_t slot_bytes, size_t page_bytes)
      : buffers_(2 * layers),
        slots_(slots),
        slot_bytes_(slot_bytes),
        page_bytes_(page_bytes),
        pages_per_slot_(static_cast<int>(slot_bytes / page_bytes)),
        mapped_(slots, 0) {
    access_.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    access_.location.id = device;
    access_.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    CU_CHECK(cuMemAddressReserve(&base_, BufferBytes() * buffers_, page_bytes, 0, 0));
    CUmemAllocationProp prop = {};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = device;
    const int handles = buffers_ * slots_ * pages_per_slot_;
    free_.resize(handles);
    for (auto& h : free_) CU_CHECK(cuMemCreate(&h, page_bytes, &prop, 0));
    owner_.assign(static_cast<size_t>(buffers_) * slots_ * pages_per_slot_, 0);
  }

  ~VirtualKvCache() {
    for (int s = 0; s < slots_; ++s) UnmapAll(s);
    for (auto h : free_) cuMemRelease(h);
    cuMemAddressFree(base_, BufferBytes() * buffers_);
  }

  size_t BufferBytes() const { return slot_bytes_ * slots_; }
  const __nv_bfloat16* Buffer(int i) const {
    return reinterpret_cast<const __nv_bfloat16*>(base_ + BufferBytes() * i);
  }
  int mapped(int slot) const { return mapped_[slot]; }

  // Maps pages [mapped, pages) of `slot` in every buffer; returns map calls made.
  int64_t Grow(int slot, int pages) {
    int64_t calls = 0;
    for (int p = mapped_[slot]; p < pages; ++p) {
      for (int b = 0; b < buffers_; ++b) {
        const CUdeviceptr at = base_ + BufferBytes() * b + slot_bytes_ * slot + page_bytes_ * p;
        const CUmemGenericAllocationHandle h = free_.back();
        free_.pop_back();
        CU_CHECK(cuMemMap(at, page_bytes_, 0, h, 0));
        CU_CHECK(cuMemSetAccess(at, page_bytes_, &access_, 1));
        owner_[Index(b, slot, p)] = h;
        calls += 2;
      }
    }
    if (pages > mapped_[slot]) mapped_[slot] = pages;
    return calls;
  }

  void UnmapAll(int slot) {
    for (int p = 0; p < mapped_[slot]; ++p) {
      for (int b = 0; b < buffers_; ++b) {
        const CUdeviceptr at = base_ + BufferBytes() * b + slot_bytes_ * slot + page_bytes_ * p;
        CU_CHECK(cuMemUnmap(at, page_bytes_));
        free_.push_back(owner_[Index(b, slot, p)]);
      }
    }
    mapped_[slot] = 0;
  }

 private:
  size_t Index(int buffer, int slot, int page) const {
    return (static_cast<size_t>(buffer) * slots_ + slot) * pages_per_slot_ + page;
  }
  int buffers_, slots_;
  size_t slot_bytes_, page_bytes_;
  int pages_per_slot_;
  CUdeviceptr base_ = 0;
  CUmemAccessDesc access_ = {};
  std::vector<CUmemGenericAllocationHandle> free_, owner_;
  std::vector<int> mapped_;
};

// A host thread that maps the pages of the next iteration while this one runs.
class BackgroundMapper {
 public:
  BackgroundMapper(CUcontext ctx, VirtualKvCache& cache) : cache_(cache) {
    thread_ = std::thread([this, ctx] { Run(ctx); });
  }
  ~BackgroundMapper() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  // Hands over (slot, pages) growth jobs.
  void Post(std::vector<std::pair<int, int>> jobs) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_ = std::move(jobs);
      done_ = false;
    }
    cv_.notify_all();
  }
  // Waits for the posted jobs; returns the map calls they made.
  int64_t Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
    if (!error_.empty()) throw std::runtime_error(error_);
    return calls_;
  }

 private:
  void Run(CUcontext ctx) {
    try {
      CU_CHECK(cuCtxSetCurrent(ctx));
    } catch (const std::exception& e) {
      error_ = e.what();
    }
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return quit_ || !done_; });
      if (quit_) return;
      auto jobs = std::move(jobs_);
      lock.unlock();
      int64_t calls = 0;
      try {
        if (error_.empty()) {
          for (auto [slot, pages] : jobs) calls += cache_.Grow(slot, pages);
        }
      } catch (const std::exception& e) {
        error_ = e.what();
      }
      lock.lock();
      calls_ = calls;
      done_ = true;
      cv_.notify_all();
    }
  }
  VirtualKvCache& cache_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<int, int>> jobs_;
  bool done_ = true, quit_ = false;
  int64_t calls_ = 0;
  std::string error_;
};

}  // namespace

void ProbeVAttention(ProbeContext& ctx) {
  const bool quick = ctx.options.quick;
  const int layers = quick ? 8 : 32, slots = quick ? 8 : 32, q_heads = 32, kv_heads = 8;
  const int max_context = 4096;
  const int iterations = quick ? 200 : 1500;
  const size_t page_bytes = AllocationGranularity(ctx.device);
  const size_t token_bytes = static_cast<size_t>(kv_heads) * kHeadDim * sizeof(__nv_bfloat16);
  const int tokens_per_page = static_cast<int>(page_bytes / token_bytes);
  const size_t slot_bytes = (max_context * token_bytes + page_bytes - 1) / page_bytes * page_bytes;
  auto pages_for = [&](int tokens) { return (tokens + tokens_per_page - 1) / tokens_per_page; };

  CUcontext cu_ctx;
  CU_CHECK(cuCtxGetCurrent(&cu_ctx));
  DeviceBuffer<__nv_bfloat16> q(static_cast<size_t>(slots) * q_heads * kHeadDim), out(q.size());
  FillRandomBf16(q.get(), q.size(), 31, 1.f, ctx.stream);
  const DecodeSizes sizes{slots, q_heads, kv_heads, max_context, ctx.sm_count};
  DeviceBuffer<float> ws(DecodeWorkspaceFloats(sizes));
  DeviceBuffer<int> lens_dev(slots);
  int* lens_host = nullptr;
  CUDA_CHECK(cudaMallocHost(&lens_host, slots * sizeof(int)));

  auto& table = ctx.profile.AddTable(schema::kVattention);
  std::ofstream raw(RawFilePath(ctx.raw_dir, schema::kVattentionIterationsFile));
  raw << HeaderLine(schema::kVattentionIterationsFile) << "\n";

  for (bool overlap : {false, true}) {
    VirtualKvCache cache(ctx.device, layers, slots, slot_bytes, page_bytes);
    std::vector<Request> reqs(slots);
    int next_request = 0;
    // A deterministic stream of requests: prompts of 200..2999 tokens, outputs of
    // 256..1279, capped at the context.
    auto new_request = [&](Request& r) {
      const int i = next_request++;
      r.len = 200 + (i * 997) % 2800;
      r.target = std::min(max_context - 1, r.len + 256 + (i * 379) % 1024);
    };
    for (auto& r : reqs) new_request(r);
    for (int s = 0; s < slots; ++s) cache.Grow(s, pages_for(reqs[s].len + 1));

    std::unique_ptr<BackgroundMapper> mapper;
    if (overlap) mapper = std::make_unique<BackgroundMapper>(cu_ctx, cache);
    // Growth the coming iteration needs: each request's new token at index len.
    auto needs = [&]() {
      std::vector<std::pair<int, int>> jobs;
      for (int s = 0; s < slots; ++s) {
        const int pages = pages_for(reqs[s].len + 1);
        if (pages > cache.mapped(s)) jobs.emplace_back(s, pages);
      }
      return jobs;
    };

    std::vector<double> iter_us, exposed_us;
    int64_t total_calls = 0;
    bool posted = false;
    for (int it = 0; it < iterations; ++it) {
      const double t0 = NowUs();
      int64_t calls = 0;
      // Finished requests leave; new ones take their slots (deferred reclamation:
      // the slot keeps its pages) and their prompt pages are mapped synchronously.
      for (int s = 0; s < slots; ++s) {
        if (reqs[s].len >= reqs[s].target) {
          new_request(reqs[s]);
          if (overlap && posted) calls += mapper->Wait(), posted = false;
          calls += cache.Grow(s, pages_for(reqs[s].len));
        }
      }
      if (overlap) {
        if (posted) calls += mapper->Wait();
        posted = false;
        // Anything the background thread could not know about (new prompts) is
        // mapped here, synchronously.
        for (auto [s, pages] : needs()) calls += cache.Grow(s, pages);
      } else {
        for (auto [s, pages] : needs()) calls += cache.Grow(s, pages);
      }
      const double exposed = NowUs() - t0;

      for (int s = 0; s < slots; ++s) lens_host[s] = reqs[s].len + 1;
      CUDA_CHECK(cudaMemcpyAsync(lens_dev.get(), lens_host, slots * sizeof(int),
                                 cudaMemcpyHostToDevice, ctx.stream));
      for (int l = 0; l < layers; ++l) {
        DecodeArgs a = MakeDecodeArgs(sizes, q.get(), cache.Buffer(2 * l), cache.Buffer(2 * l + 1),
                                      out.get(), lens_dev.get(), ws.get());
        a.layout.max_context = static_cast<int>(slot_bytes / token_bytes);
        LaunchDecodeAttention(a, ctx.stream);
      }
      for (auto& r : reqs) ++r.len;
      // With overlap, the next iteration's pages are mapped while these kernels run.
      if (overlap) {
        mapper->Post(needs());
        posted = true;
      }
      CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
      const double t1 = NowUs();
      iter_us.push_back(t1 - t0);
      exposed_us.push_back(exposed);
      total_calls += calls;
      raw << (overlap ? 1 : 0) << ',' << it << ',' << Num(t1 - t0, 5) << ',' << Num(exposed, 5)
          << ',' << calls << '\n';
    }
    if (overlap && posted) total_calls += mapper->Wait();
    mapper.reset();
    double mean_iter = 0, mean_exp = 0, max_exp = 0;
    for (double v : iter_us) mean_iter += v / iter_us.size();
    for (double v : exposed_us) {
      mean_exp += v / exposed_us.size();
      max_exp = std::max(max_exp, v);
    }
    table.Row({overlap ? "1" : "0", Num(static_cast<double>(page_bytes)), Num(slots),
               Num(iterations), Num(mean_iter, 5), Num(Percentile(iter_us, 0.5), 5),
               Num(Percentile(iter_us, 0.99), 5), Num(mean_exp, 4), Num(max_exp, 5),
               Num(static_cast<double>(total_calls))});
    const std::string line = "mean iteration " + Num(mean_iter, 5) + " us, exposed mapping mean " +
                             Num(mean_exp, 4) + " us, max " + Num(max_exp, 5) + " us";
    ctx.log(std::string("vattention: overlap ") + (overlap ? "on: " : "off: ") + line);
    ctx.headlines.emplace_back(
        std::string("vAttention decode, overlap ") + (overlap ? "on" : "off"), line);
  }
  CUDA_CHECK(cudaFreeHost(lens_host));
}

}  // namespace kvprobe
