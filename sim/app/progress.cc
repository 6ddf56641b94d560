#include "sim/app/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <ostream>
#include <utility>

namespace kvsim {

Progress::Progress(std::string what, std::string unit, int64_t total, bool enabled,
                   std::ostream& out, std::chrono::milliseconds delay, Clock clock)
    : what_(std::move(what)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(enabled),
      out_(out),
      delay_(delay),
      clock_(std::move(clock)),
      start_(clock_()) {}

Progress::~Progress() { Finish(); }

void Progress::Add(int64_t n) {
  const int64_t done = done_.fetch_add(n) + n;
  if (!enabled_) return;
  const auto now = clock_();
  if (now - start_ < delay_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_ || (shown_ && now - last_draw_ < std::chrono::milliseconds(100))) return;
  const double elapsed_s = std::chrono::duration<double>(now - start_).count();
  std::string line =
      total_ > 0 ? fmt::format("{}: {}/{} {}, {:.0f} s", what_, done, total_, unit_, elapsed_s)
                 : fmt::format("{}: {} {}, {:.0f} s", what_, done, unit_, elapsed_s);
  if (total_ > 0 && done > 0 && done < total_) {
    const double left_s =
        elapsed_s * static_cast<double>(total_ - done) / static_cast<double>(done);
    line += fmt::format(", about {:.0f} s left", left_s);
  }
  const size_t width = line.size();
  if (width < last_width_) line.append(last_width_ - width, ' ');  // cover the longer line
  out_ << '\r' << line << std::flush;
  last_width_ = width;
  last_draw_ = now;
  shown_ = true;
}

void Progress::Finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  if (shown_) out_ << '\r' << std::string(last_width_, ' ') << '\r' << std::flush;
}

bool StderrIsTerminal() { return isatty(STDERR_FILENO) == 1; }

std::chrono::milliseconds ProgressDelay() {
  const char* env = std::getenv("KVSIM_PROGRESS_DELAY_S");
  if (env != nullptr && *env != '\0') {
    char* end = nullptr;
    const double s = std::strtod(env, &end);
    if (*end == '\0' && s >= 0 && s <= 1e6) return std::chrono::milliseconds(std::llround(s * 1e3));
  }
  return std::chrono::milliseconds(2000);
}

}  // namespace kvsim
