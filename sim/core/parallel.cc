// ParallelFor (see parallel.h).
#include "sim/core/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace kvsim {

void ParallelFor(size_t n, int threads, const std::function<void(size_t)>& task,
                 const std::function<void(size_t done)>& done) {
  const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t width = std::min(n, threads > 0 ? static_cast<size_t>(threads) : cores);
  std::vector<std::exception_ptr> errors(n);
  std::atomic<size_t> next{0};
  std::mutex done_mutex;
  size_t finished = 0;  // guarded by done_mutex
  {
    std::vector<std::jthread> pool;
    for (size_t t = 0; t < width; ++t) {
      pool.emplace_back([&] {
        for (size_t i = next++; i < n; i = next++) {
          try {
            task(i);
            if (done) {
              std::lock_guard<std::mutex> lock(done_mutex);
              done(++finished);
            }
          } catch (...) {
            errors[i] = std::current_exception();
          }
        }
      });
    }
  }
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace kvsim
