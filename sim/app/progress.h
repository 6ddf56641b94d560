// Progress: how far a long command has got, on one line of stderr rewritten in place.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <mutex>
#include <string>

namespace kvsim {

// Counts units of work done out of `total` (0: not known) and, when enabled, shows
// "\r<what>: <done>/<total> <unit>, <elapsed> s[, about <left> s left]" on `out`:
// first once `delay` has passed (short commands print nothing), then at most every
// 100 ms; Finish() (or the destructor) erases the line. Add may be called from any
// thread. A command enables it only when stderr is a terminal (StderrIsTerminal)
// and not quiet, so pipes, files and logs never get it.
class Progress {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  Progress(std::string what, std::string unit, int64_t total, bool enabled, std::ostream& out,
           std::chrono::milliseconds delay = std::chrono::milliseconds(2000),
           Clock clock = std::chrono::steady_clock::now);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `n` more units done; may redraw the line.
  void Add(int64_t n = 1);
  // Erases the line if one was shown. Idempotent.
  void Finish();

  bool shown() const { return shown_; }

 private:
  const std::string what_, unit_;
  const int64_t total_;
  const bool enabled_;
  std::ostream& out_;
  const std::chrono::milliseconds delay_;
  const Clock clock_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<int64_t> done_{0};
  std::mutex mutex_;  // guards the fields below and writing to out_
  std::chrono::steady_clock::time_point last_draw_;
  size_t last_width_ = 0;
  bool shown_ = false, finished_ = false;
};

// Whether standard error is a terminal (isatty(2)).
bool StderrIsTerminal();

// How long a command runs before it shows progress: $KVSIM_PROGRESS_DELAY_S seconds
// when set to a number >= 0, else 2 s.
std::chrono::milliseconds ProgressDelay();

}  // namespace kvsim
