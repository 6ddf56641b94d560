// Decoding of a plan's `candidates:` section: the lists, and the lists and ranges
// inside each KV-manager and scheduler entry, that span the design space. Internal
// to config/ (LoadPlan's helper); it sees YAML.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/config/map_reader.h"
#include "sim/config/plan_config.h"

namespace kvsim {

// Most values one list or range may give: a range meant as {from: 16, to: 4096,
// times: 2} but written with step: 1 would otherwise ask for thousands of runs.
inline constexpr int64_t kMaxValuesPerDimension = 4096;

// How to read one scalar of a dimension: an integer, or a byte size ("64KiB").
enum class ScalarKind { kInteger, kByteSize };

// The values of dimension `key` of the mapping `m` reads, in the order given:
//   absent         -> {def} (a key written with no value fails)
//   a scalar       -> {v}
//   a list         -> each element (scalars, no duplicates)
//   a range map    -> {from: A, to: B, step: S}: A, A+S, ... <= B
//                     {from: A, to: B, times: F}: A, A*F, A*F^2, ... <= B (F an integer >= 2)
// Every value must lie in [min_value, max_value]. Throws InputError "file:line:
// key.path: what" on a malformed element, a value out of bounds, a range that is
// empty, has both or neither of step and times, or more than kMaxValuesPerDimension
// values.
std::vector<int64_t> DimensionValues(MapReader& m, const std::string& key, int64_t def,
                                     int64_t min_value, int64_t max_value, ScalarKind kind);

// `candidates:` into c.gpus (with c.gpu_where), c.tensor_parallel, c.kv_managers and
// c.schedulers. Each KV-manager entry expands to the product of its block_tokens and
// page_bytes values; each scheduler entry to the product of its chunk_tokens,
// max_num_batched_tokens and max_num_seqs values (in that nesting order, the last
// innermost). Throws InputError on an empty list, an unknown key, and two entries
// that give the same candidate name (naming both).
void DecodeCandidates(MapReader k, const DecodeContext& ctx, PlanConfig& c);

}  // namespace kvsim
