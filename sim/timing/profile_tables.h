// The tables of a kvprobe profile read into curves for one model at one
// tensor-parallel degree: GEMMs by layer, decode and prefill attention by layout,
// and the all-reduce on the replica's GPU count (measured or estimated).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "sim/hardware/gpu_spec.h"
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
// profile that lacks them or holds inconsistent rows, among them:
// - a [gemm] layer, or an attention layout, that the format does not name;
// - an attention row it reads (every decode row, the prefill rows of the query heads it
//   scales from) whose batch, context_tokens or tokens, q_heads, kv_heads or head_dim is
//   not a positive integer (at most 1e9), and a prefill row whose q_heads is not;
// - a row it reads whose time_us implies more than the `gpu` card can do, by more than
//   kPeakMargin: [gemm] (2 m n k FLOPs, bf16: the format has no other dtype) and
//   [prefill_attention] (its causal FLOPs) above bf16_flops_per_s, [decode_attention]
//   (its bf16 K and V bytes) above hbm_bandwidth_bytes_per_s;
// - a row it reads whose rate column (tflops, kv_gbps) disagrees with the rate its
//   time_us implies by more than kRateColumnTolerance.
ProfileCurves ReadProfileCurves(const Profile& profile, const ModelSpec& model, const GpuSpec& gpu,
                                int64_t tensor_parallel);

// How far a measured rate may exceed the card's datasheet peak. The datasheet states
// the peak at the boost clock, and a GPU can run faster: the H100 and H200's 989.4
// TFLOP/s bf16 is 132 SMs x 4,096 FLOP a clock at 1,830 MHz, and kvprobe recorded
// 1,980 MHz on both (8% more); HBM rows reach at most 0.97 of the H200's 4.8 TB/s in the
// committed profiles. 1.25 leaves room for that and a card figure rounded down, while a
// time in other units than microseconds is off by 1000x.
inline constexpr double kPeakMargin = 1.25;

// How far a row's rate column may differ, relatively, from the rate its time_us
// implies. kvprobe writes times with 5 significant digits and rates with 4, so the two
// agree within 0.06% (the committed profiles: 0.051% at most); 1% also allows a rate
// rounded to 3 digits, while a unit slip or a mistyped count (a head_dim of 1 for 128)
// is off by far more.
inline constexpr double kRateColumnTolerance = 0.01;

}  // namespace kvsim
