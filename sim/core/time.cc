#include "sim/core/time.h"

#include <cmath>

#include "sim/core/check.h"

namespace kvsim {

Nanos SecondsToNanos(double seconds) {
  KVSIM_CHECK(std::isfinite(seconds) && std::fabs(seconds) < 9.2e9, "time out of range");
  const auto ns = static_cast<int64_t>(std::llround(seconds * 1e9));
  if (seconds > 0 && ns == 0) return Nanos(1);
  return Nanos(ns);
}

}  // namespace kvsim
