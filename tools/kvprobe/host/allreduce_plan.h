// The all-reduce measurement's host-side pieces: which GPU counts and message sizes
// are measured, how the NCCL unique id travels to the rank processes, and how the
// ranks' timings are combined into [allreduce] rows.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace kvprobe {

// GPU counts measured by default on a host with `devices` GPUs: the powers of two
// from 2 up to `devices`, plus `devices` itself when it is not one. Empty below 2.
std::vector<int> DefaultAllreduceGpuCounts(int devices);

// Message sizes in bytes: 64 KiB to 256 MiB, doubling (13 sizes); quick: quadrupling
// (7 sizes). They span a decode iteration of a 70B model (a few tokens x 8192 hidden x
// 2 bytes) to a long prefill chunk.
std::vector<size_t> AllreduceSizes(bool quick);

// All-reduces timed per trial at `bytes`. Every rank derives the same count from the
// size alone: the ranks must issue the same number of collectives.
int AllreduceRepsFor(size_t bytes);

// Lower-case hex of `bytes`, and back. HexDecode returns false (and leaves `out`
// unspecified) unless `hex` is exactly 2 x `size` hex digits.
std::string HexEncode(const void* bytes, size_t size);
bool HexDecode(const std::string& hex, void* out, size_t size);

// nccl-tests' bus bandwidth: algorithm bandwidth x 2 (gpus - 1) / gpus, the traffic
// each GPU's links carry in a ring all-reduce.
double BusBandwidthFactor(int gpus);

// One rank's times at one message size, microseconds (each > 0).
struct RankTime {
  double time_us = 0;      // back-to-back all-reduces, launched from the host
  double in_graph_us = 0;  // one all-reduce between two dependent kernels of a CUDA graph
  // One all-reduce in a CUDA graph after a kernel that touches no memory: its own time
  // with its launch inside a graph, nothing of a neighbour's.
  double alone_in_graph_us = 0;
  bool operator==(const RankTime& o) const {
    return time_us == o.time_us && in_graph_us == o.in_graph_us &&
           alone_in_graph_us == o.alone_in_graph_us;
  }
};

// One rank's timings as its process writes them (the schema's kAllreduceRankFile,
// sim/timing/profile_schema.h): a header of its columns, then one row per message size.
std::string RankTimesCsv(const std::map<size_t, RankTime>& times_by_bytes);

// The per-size times of an all-reduce across the ranks whose files are `rank_csvs`
// (rank i's text at index i, `names[i]` naming it in errors): each the slowest rank's,
// since the collective ends when the last rank leaves it. Throws std::runtime_error
// naming the file and line for a malformed row, or when the ranks disagree on the sizes.
std::map<size_t, RankTime> CombineRankTimes(const std::vector<std::string>& rank_csvs,
                                            const std::vector<std::string>& names);

}  // namespace kvprobe
