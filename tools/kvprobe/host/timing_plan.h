// How kvprobe lays out a timed CUDA graph: how many launches it captures and how many
// copies of a kernel's inputs those launches cycle through, so that each launch reads
// what a forward pass would read from HBM rather than what the previous launch left in
// the L2. Host logic only: the CUDA side captures and times the graphs.
#pragma once

#include <cstddef>
#include <vector>

namespace kvprobe {

// One timed graph replay lasts about this long, so that the few microseconds every replay
// pays at its start and end weigh little on short kernels. (Graphs of 8 layers of small
// kernels, 80 us a replay, and of 128 layers gave the same per-layer time within the
// lease-to-lease spread on an H200: models/profiles/H200/README.md.)
inline constexpr double kMinGraphReplayUs = 1000;

// How many L2 sizes of other copies kvprobe puts between two uses of one copy of a
// kernel's weights or KV (ColdCopies): enough that a copy is gone from the L2 when it is
// read again, as a pass's weights and KV are (models/profiles/H200/README.md).
inline constexpr double kColdCopiesL2Multiple = 4;

// Launches to capture per timed graph for a launch of about `launch_us`: enough that one
// replay lasts about kMinGraphReplayUs, from `min_launches` to `max_launches`. Launch
// times at or below 0.1 us count as 0.1 us. Requires 1 <= min_launches <= max_launches.
int LaunchesPerGraph(double launch_us, int min_launches, int max_launches);

// Launches per timed graph of at least `wanted` that cycle through `copies` copies a whole
// number of times (copies < 1 counts as 1): the next multiple of copies.
int LaunchesCyclingCopies(int wanted, int copies);

// Copies of an input of `input_bytes` that consecutive launches cycle through, so that
// `l2_multiple` L2 sizes of the other copies pass between two uses of one
// (ceil(l2_multiple x l2_bytes / input_bytes) + 1), at least `least` and at most `fit`
// (how many the buffers hold) and `most`; `least` wins over `fit` and `most` (the caller
// provides room for it). A non-positive input size gives `least`.
int ColdCopies(double input_bytes, double l2_bytes, double l2_multiple, size_t fit, int least,
               int most);

// Shares the time of a round of a layer's GEMMs, `round_us` (timed one after the other,
// as a pass runs them, at the clock that mix of loads holds), among its GEMMs by the
// cycles each took when timed alone: alone_us[i] x alone_mhz[i]. A compute-bound
// kernel takes about the same cycles at any SM clock, so each GEMM's share of the
// cycles is its share of the round's time at the round's clock; GEMMs timed alone at a
// lower clock (a single large GEMM replayed back to back settles below the clock of the
// layer's mix) are not charged for it. Where any clock is unknown (<= 0) the shares
// are the alone times'. The shares sum to round_us.
// Throws std::invalid_argument unless both lists have the same size >= 1, every
// alone_us > 0 and round_us > 0.
std::vector<double> ShareRoundUs(double round_us, const std::vector<double>& alone_us,
                                 const std::vector<double>& alone_mhz);

}  // namespace kvprobe
