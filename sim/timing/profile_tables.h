// The tables of a kvprobe profile read into curves for one model at one
// tensor-parallel degree: GEMMs by layer, decode and prefill attention by layout,
// and the all-reduce on the replica's GPU count (measured or estimated).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "sim/hardware/model_spec.h"
#include "sim/timing/profile.h"
#include "sim/timing/profile_curves.h"

namespace kvsim {

// All-reduce time against message bytes for the replica's GPU count, and, when it is
// estimated rather than measured, one sentence saying how (empty when measured).
struct AllreduceCurve {
  SizeCurve curve;
  std::string estimate;
  // true: from the rows' alone_in_graph_us or in_graph_us (an all-reduce inside a
  // graph, as in a forward pass); false: from time_us (back to back), the profile
  // having neither column.
  bool in_graph = false;
};

struct ProfileCurves {
  std::map<std::string, SizeCurve> gemm;    // qkv, o, gate_up, down, lm_head
  LayoutCurves<DecodeSurface> decode;       // over batch x KV heads (DecodePoint)
  LayoutCurves<SizeCurve> prefill;          // against causal pairs, scaled to query heads
  std::optional<AllreduceCurve> allreduce;  // tp > 1 and the profile has [allreduce] rows
  // One layer's small kernels (norms, RoPE, KV write, activation) against tokens: the
  // [small_kernels] rows of this model and tensor_parallel, nothing without them.
  std::optional<SizeCurve> small_kernels;
};

// Reads the curves the profiled model needs (execution_time_model.h states the
// rules). Throws InputError "path:line: what" (or "timing.profile PATH: what") for a
// profile that lacks them or holds inconsistent rows.
ProfileCurves ReadProfileCurves(const Profile& profile, const ModelSpec& model,
                                int64_t tensor_parallel);

}  // namespace kvsim
