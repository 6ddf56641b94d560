// The [step] measurement at tensor parallelism above 1: each rank process times its
// share of every forward pass (per-rank GEMM shapes and heads, NCCL all-reduces in
// the captured graph) and writes its rows; the parent combines the ranks' rows into
// the profile's. A pass ends when its slowest rank does, so each time is the
// slowest rank's.
#pragma once

#include <string>
#include <vector>

namespace kvprobe {

// One [step] row as profile text, one field per column of the schema's kStep
// (sim/timing/profile_schema.h), in its order.
using StepFields = std::vector<std::string>;

// A rank's file: the [step] header line, then one line per row.
// REQUIRES: every row has one field per [step] column.
std::string StepRankCsv(const std::vector<StepFields>& rows);

// The rows of the ranks whose files are `rank_csvs` (rank i's text at index i,
// `names[i]` naming it in errors), combined: the ranks must list the same passes
// (every column but the times and decode_splits equal, in the same order); each time
// column (time_us, gemm_us, attention_us, other_us, allreduce_us) is the largest of
// the ranks', decode_splits is rank 0's. Throws std::runtime_error "NAME:LINE: what"
// for a wrong header, a row with another field count, a time_us that is not a
// positive number or another time column that is not a non-negative one, and
// "NAME: ..." when a rank's passes differ from rank 0's or a file is empty.
std::vector<StepFields> CombineStepRanks(const std::vector<std::string>& rank_csvs,
                                         const std::vector<std::string>& names);

}  // namespace kvprobe
