// Plans split over processes that do not talk to each other (batch-job arrays):
// `kvsim plan PLAN --shard I/N` evaluates every N-th candidate from the I-th and
// writes DIR/shard.json; `kvsim plan merge DIR...` checks that the shards are one
// whole plan, ranks them and verifies the recommended fleet, and writes the outputs
// one process would (sim/planner/planner.h). Also the MPI path's fingerprint.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sim/config/plan_config.h"
#include "sim/planner/planner.h"

namespace kvsim {

// Shard `index` of `count`: the candidates i with i % count == index (strided, so
// that each shard gets some of every GPU and KV manager, and a like share of work).
struct ShardSpec {
  int64_t index = 0;
  int64_t count = 1;
};

// The largest shard count accepted.
inline constexpr int64_t kMaxShards = 100000;

// Parses "I/N" (0 <= I < N <= kMaxShards). Throws InputError "--shard: ..." otherwise.
ShardSpec ParseShard(const std::string& text);

// The indices of `total` candidates that shard `s` evaluates, ascending.
std::vector<size_t> ShardIndices(size_t total, ShardSpec s);

// What identifies a plan's candidate space: a CRC-32 over each scenario as decoded
// (with the plan's overrides), the plan file's text and every evaluation's candidate
// name and scenario, with the evaluation count, e.g. "crc32:1a2b3c4d/24". Shards of different
// plans, or of a plan edited between shards, differ.
std::string PlanFingerprint(const PlanConfig& plan, const PreparedPlan& prepared);

// DIR/shard.json of shard `s`: the format's version, the plan file, the fingerprint,
// the shard, the candidate count, the shard's wall time, and each candidate it
// evaluated with its index (candidates[i] for i of `indices`, CandidateResult JSON
// of candidate_codec.h), one per line.
std::string ShardJson(const PlanConfig& plan, const std::string& fingerprint, ShardSpec s,
                      size_t total, const std::vector<size_t>& indices,
                      const std::vector<CandidateResult>& candidates, double wall_s);

struct LoadedShard {
  std::string dir;
  std::string plan_file;      // absolute, to load
  std::string plan_as_given;  // as the shard's command line named it (plan.json says this)
  std::string fingerprint;
  ShardSpec spec;
  size_t total = 0;
  double wall_s = 0;
  std::vector<std::pair<size_t, CandidateResult>> results;  // (index, result)
};

// Reads DIR/shard.json. Throws InputError naming DIR when it is missing (the shard
// did not finish: killed, failed, or still running), malformed, or of another version.
LoadedShard LoadShard(const std::string& dir);

// Every candidate of `prepared` from `shards`, in candidate order. Throws InputError
// naming the shard directories when they are not one whole plan: another plan
// (fingerprint) or shard count, a shard given twice, a shard missing (each named, as
// "shard 2/3"), a candidate outside its shard or missing.
std::vector<CandidateResult> MergeShards(const std::vector<LoadedShard>& shards,
                                         const PreparedPlan& prepared,
                                         const std::string& fingerprint);

}  // namespace kvsim
