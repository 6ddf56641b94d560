// SteadyWarm: see steady_warm.h.
#include "tools/kvprobe/host/steady_warm.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace kvprobe {

SteadyWarm::SteadyWarm(const SteadyWarmLimits& limits, double warmed_us)
    : limits_(limits), warmed_us_(warmed_us) {
  more_ = WantsMore(false);
}

void SteadyWarm::Record(double per_launch_us, int launches) {
  if (!(per_launch_us > 0) || launches < 1) {
    throw std::invalid_argument("SteadyWarm: a chunk of " + std::to_string(launches) +
                                " launches at " + std::to_string(per_launch_us) +
                                " us each (needs at least one launch and a positive time)");
  }
  warmed_us_ += per_launch_us * launches;
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
