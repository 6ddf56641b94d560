#include "sim/core/time.h"

#include <cmath>

#include "sim/core/check.h"

namespace kvsim {

Nanos SecondsToNanos(double seconds) {
  KVSIM_CHECK(std::isfinite(seconds) && std::fabs(seconds) < 9.2e9, "time out of range");
  // Rounds half away from zero, as std::llround, without the library call: x - trunc(x)
  // is exact for |x| < 2^52 (9.2e18 ns is below 2^63 but the fraction matters only
  // below 2^52, where every double is representable with its fraction).
  const double x = seconds * 1e9;
  auto ns = static_cast<int64_t>(x);  // truncates toward zero
  const double fraction = x - static_cast<double>(ns);
  ns += static_cast<int64_t>(fraction >= 0.5) - static_cast<int64_t>(fraction <= -0.5);
  if (seconds > 0 && ns == 0) return Nanos(1);
  return Nanos(ns);
}

}  // namespace kvsim
