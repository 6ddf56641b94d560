// Merging all-reduce rows into an existing profile: all-reduce is measured on a
// multi-GPU host, the rest of a profile often on a one-GPU one, and kvsim reads one
// file. kvprobe --merge-allreduce-into PROFILE does this after measuring.
#pragma once

#include <string>
#include <vector>

namespace kvprobe {

// One [allreduce] row: gpus, bytes, time_us, algbw_gbps, busbw_gbps as profile text.
using AllreduceRow = std::vector<std::string>;

// `target` (the text of profile `target_name`) with its [allreduce] rows for every
// GPU count in `rows` replaced by `rows`, the other counts' rows kept, and the rows
// ordered by GPU count then bytes. `note` becomes a "# [allreduce] ..." comment line
// above the section, after the comments already there; other sections are kept as
// they are. Without an [allreduce] section, one is appended. The end marker of a
// profile (kvsim::kProfileEndMarker), when it is the target's last line, stays last. Throws
// std::runtime_error naming target_name:line when the target's section has another
// header, a row with another field count, or a non-numeric gpus or bytes field, and
// std::invalid_argument for malformed `rows` (wrong field count, empty).
std::string MergeAllreduceRows(const std::string& target, const std::string& target_name,
                               const std::vector<AllreduceRow>& rows, const std::string& note);

// Checks, before measuring, that rows of `gpu_counts` (each >= 2, at least one) would
// merge into `target` (the text of profile `target_name`): throws what
// MergeAllreduceRows would, e.g. for the target's rows of a count not in `gpu_counts`
// that lack a column of the current [allreduce] header (measure that count again too).
void CheckAllreduceMergeTarget(const std::string& target, const std::string& target_name,
                               const std::vector<int>& gpu_counts);

// The gpu_name of a profile's [meta] section, or "" when it has none.
std::string ProfileGpuName(const std::string& profile_text);

}  // namespace kvprobe
