// Seeded random streams. Every consumer owns its own Rng, derived from the scenario
// seed and a stream id, so adding a consumer never shifts another's numbers. The
// distributions are written here (not <random>'s), so results are identical across
// standard libraries.
#pragma once

#include <cstdint>

namespace kvsim {

// Stream ids: one per consumer of randomness in a simulation.
enum class RngStream : uint64_t {
  kArrivals = 1,
  kLengths = 2,
  kRouter = 3,
  kSharedPrefix = 0x7072656669780001,  // which requests get a shared system prompt
};

class Rng {
 public:
  // A stream determined by (seed, stream) alone.
  Rng(uint64_t seed, RngStream stream);

  // Uniform 64 random bits (xoshiro256**).
  uint64_t NextU64();
  // Uniform double in [0, 1) with 53 random bits.
  double Uniform01();
  // Uniform integer in [lo, hi]. REQUIRES: lo <= hi.
  int64_t UniformInt(int64_t lo, int64_t hi);
  // Exponential with the given mean; unbiased (no truncation). REQUIRES: mean > 0.
  double Exponential(double mean);
  // Standard normal (Box-Muller; the spare value is kept).
  double Normal();
  // Gamma with shape k and scale theta (Marsaglia-Tsang). REQUIRES: k > 0, theta > 0.
  double Gamma(double shape, double scale);

 private:
  uint64_t s_[4];
  bool has_spare_normal_ = false;
  double spare_normal_ = 0;
};

}  // namespace kvsim
