#include "tools/kvprobe/host/timing_plan.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace kvprobe {

int LaunchesPerGraph(double launch_us, int min_launches, int max_launches) {
  if (min_launches < 1 || max_launches < min_launches) {
    throw std::invalid_argument("LaunchesPerGraph: need 1 <= min_launches <= max_launches");
  }
  const double wanted = std::ceil(kMinGraphReplayUs / std::max(launch_us, 0.1));
  return static_cast<int>(
      std::clamp(wanted, static_cast<double>(min_launches), static_cast<double>(max_launches)));
}

int LaunchesCyclingCopies(int wanted, int copies) {
  const int n = std::max(1, copies);
  const int w = std::max(1, wanted);
  return n * ((w + n - 1) / n);
}

int ColdCopies(double input_bytes, double l2_bytes, double l2_multiple, size_t fit, int least,
               int most) {
  if (!(input_bytes > 0)) return least;
  const double wanted = std::ceil(l2_multiple * std::max(0.0, l2_bytes) / input_bytes) + 1;
  const double cap = std::min(static_cast<double>(fit), static_cast<double>(most));
  return static_cast<int>(std::max(static_cast<double>(least), std::min(wanted, cap)));
}

std::vector<double> ShareRoundUs(double round_us, const std::vector<double>& alone_us,
                                 const std::vector<double>& alone_mhz) {
  if (alone_us.empty() || alone_us.size() != alone_mhz.size() || !(round_us > 0)) {
    throw std::invalid_argument("ShareRoundUs: need a positive round time and one clock per GEMM");
  }
  const bool clocks_known =
      std::all_of(alone_mhz.begin(), alone_mhz.end(), [](double mhz) { return mhz > 0; });
  std::vector<double> weights(alone_us.size());
  double total = 0;
  for (size_t i = 0; i < alone_us.size(); ++i) {
    if (!(alone_us[i] > 0)) throw std::invalid_argument("ShareRoundUs: alone times must be > 0");
    weights[i] = alone_us[i] * (clocks_known ? alone_mhz[i] : 1.0);
    total += weights[i];
  }
  for (double& w : weights) w = round_us * w / total;
  return weights;
}

}  // namespace kvprobe
