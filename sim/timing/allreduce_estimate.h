// All-reduce time on a GPU count the profile did not measure, from the counts it did.
//
// A ring all-reduce of S bytes on n GPUs moves 2 (n-1)/n x S bytes over each GPU's
// links (the ring factor r(n); nccl-tests' bus bandwidth is S x r(n) / time), so at
// a fixed message size the time is modelled as a + b x r(n):
//   - n above every measured count: the least-squares line through (r(m), T_m) over
//     the measured counts m, and never below the largest count's time; with one
//     measured count m, T_m x r(n) / r(m) (its bus bandwidth held);
//   - n between two measured counts: the straight line in r between those two;
//   - n below every measured count: T_m x r(n) / r(m) for the smallest count m.
// On 4 x H100 hosts, the line through 2 and 3 GPUs predicted the 4-GPU times within
// 5% from 8 MiB up and within -19% to +19% below, bar one outlier
// (models/profiles/H100-SXM/README.md).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace kvsim {

// 2 (gpus - 1) / gpus. REQUIRES: gpus >= 1.
double RingFactor(int64_t gpus);

// The time of one all-reduce on `gpus` GPUs at one message size, given the times
// (seconds, > 0) measured at that size on other counts, keyed by GPU count (each
// >= 2, `gpus` not among them). REQUIRES: measured_s non-empty, gpus >= 2. Result > 0.
double EstimateAllreduceSeconds(const std::map<int64_t, double>& measured_s, int64_t gpus);

// One sentence saying how the time for `gpus` GPUs is estimated from the measured
// counts `measured_s` holds (its values are not read), for the run's summary.
std::string DescribeAllreduceEstimate(const std::map<int64_t, double>& measured_s, int64_t gpus);

}  // namespace kvsim
