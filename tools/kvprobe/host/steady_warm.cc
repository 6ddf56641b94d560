// SteadyWarm: see steady_warm.h.
#include "tools/kvprobe/host/steady_warm.h"

#include <algorithm>
#include <cmath>

namespace kvprobe {

SteadyWarm::SteadyWarm(const SteadyWarmLimits& limits, double warmed_us)
    : limits_(limits), warmed_us_(warmed_us) {
  more_ = WantsMore(false);
}

void SteadyWarm::Record(double per_launch_us, int launches) {
  warmed_us_ += per_launch_us * std::max(launches, 0);
  const bool steady = last_per_launch_us_ > 0 && std::abs(per_launch_us - last_per_launch_us_) <=
                                                     limits_.tolerance * per_launch_us;
  last_per_launch_us_ = per_launch_us;
  more_ = WantsMore(steady);
}

bool SteadyWarm::WantsMore(bool steady) const {
  const double min_us = limits_.min_ms * 1000.0;
  if (warmed_us_ < min_us) return true;
  if (limits_.max_ms <= limits_.min_ms) return false;  // no steadiness test
  return !steady && warmed_us_ < limits_.max_ms * 1000.0;
}

}  // namespace kvprobe
