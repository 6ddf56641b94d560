// Simulated time: signed 64-bit nanoseconds since the start of a simulation.
// Doubles (seconds) become ticks only through SecondsToNanos.
#pragma once

#include <chrono>
#include <cstdint>

namespace kvsim {

// A point or span of simulated time, in integer nanoseconds.
using Nanos = std::chrono::duration<int64_t, std::nano>;

// The longest simulated time kvsim accepts, about 31.7 years (int64 nanoseconds hold
// 292): arrivals and iterations past it are input errors (rates, timestamps or costs
// out of range), never overflows.
constexpr double kMaxSimulatedSeconds = 1e9;

// Converts seconds to nanoseconds, rounding to nearest. A positive input never
// becomes 0 ns (it is rounded up to 1 ns), so a positive cost always advances time.
// REQUIRES: seconds is finite and |seconds| < 9.2e9.
Nanos SecondsToNanos(double seconds);

// Nanoseconds to seconds (exact for |t| < 2^53 ns, about 104 days).
inline double ToSeconds(Nanos t) { return static_cast<double>(t.count()) * 1e-9; }

}  // namespace kvsim
