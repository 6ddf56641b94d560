// Validating the timing models against whole forward passes timed on the GPU: the
// [step] rows of a kvprobe profile (tools/kvprobe/PROFILE_FORMAT.md), each predicted
// by the profiled model (built from the same profile's kernel rows) and by the
// roofline model, as `kvsim validate` prints them.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sim/core/enum_table.h"
#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/timing/cost_terms.h"
#include "sim/timing/execution_time_model.h"
#include "sim/timing/profile.h"

namespace kvsim {

// What a step computes: decodes only, one prefill chunk only, or both.
enum class StepKind { kDecode, kPrefill, kMixed };
// validate.json's row kinds and the groups of the error summary.
inline constexpr auto kStepKinds = MakeEnumTable<StepKind>({{"decode-only", StepKind::kDecode},
                                                            {"prefill-only", StepKind::kPrefill},
                                                            {"mixed", StepKind::kMixed}});
// kStepKinds' name, as a C string (kept for its call sites).
inline const char* StepKindName(StepKind kind) { return kStepKinds.CName(kind); }

// One [step] row: a whole-model forward pass over `decode_seqs` decoding sequences
// (each one new token attending to context_tokens cached tokens plus itself) and one
// prefill chunk of `prefill_tokens` new prompt tokens (nothing cached before it,
// causal among its own tokens; 0: none), timed on one GPU per tensor-parallel rank.
struct StepRow {
  std::string model;  // a model card name, as in [gemm]
  int64_t tensor_parallel = 1;
  AttentionLayout layout = AttentionLayout::kContiguous;
  int64_t block_tokens = 0;  // paged: tokens per block; contiguous: 0
  int64_t decode_seqs = 0;
  int64_t context_tokens = 0;  // cached tokens of each decoding sequence (unused without)
  int64_t prefill_tokens = 0;
  double time_us = 0;  // median GPU time of the forward pass, microseconds (> 0)
  bool graph = false;  // replayed as a CUDA graph
  int line = 0;        // 1-based line in the profile
  // The pass's kernel classes, each timed alone as a graph of all layers (the
  // optional columns gemm_us, attention_us, other_us and allreduce_us, in seconds
  // here); nullopt where the profile lacks them or holds 0 (not measured). The
  // classes' sum differs from time_us by what the pass overlaps or adds.
  std::optional<KernelClassSeconds> measured_classes = std::nullopt;

  StepKind kind() const;
};

// The [step] rows of `profile`, in file order; empty when the section is absent or
// has no rows. Throws InputError "path:line: [step] ..." for a layout other than
// contiguous or paged, a contiguous row with block_tokens other than 0, a paged row
// without a positive integer block_tokens, a tensor_parallel that is not a positive
// integer, a decode_seqs, context_tokens or prefill_tokens that is not a
// non-negative integer, a row that computes nothing (decode_seqs and prefill_tokens
// both 0), decoding sequences with context_tokens 0 (a sequence decodes after its
// prompt), a time_us that is not positive, a graph other than 0 or 1, and a row
// repeating an earlier one's every column but time_us.
std::vector<StepRow> ReadStepRows(const Profile& profile);

// As ReadStepRows, and throws InputError "PATH: no [step] rows; measure them with
// kvprobe --only step" when there are none.
std::vector<StepRow> RequireStepRows(const Profile& profile);

// The iteration a step row times, built as the simulator's replica builds it
// (Replica::Describe): num_seqs = decode_seqs + (prefill_tokens > 0);
// decode_context_tokens = decode_seqs x (context_tokens + 1); prefill pairs
// P (P + 1) / 2 for the chunk of P tokens; logit_tokens = num_seqs (one LM-head row
// per sequence); max_context_tokens = max(context_tokens + 1, prefill_tokens), or
// prefill_tokens alone without decodes.
BatchWork StepBatchWork(const StepRow& row);

// The fewest weight bytes one of `tp` ranks reads in any forward pass of `model`: each
// layer's attention projections and the MLPs of the experts_per_token experts a token is
// routed to (a dense model's one MLP), and the LM head for the logits (16-bit, as
// ModelSpec::WeightBytesPerRank counts it), each once and split over the ranks. The input
// embedding is left out: a pass reads only its tokens' rows.
inline double MinWeightBytesPerRank(const ModelSpec& model, int64_t tp) {
  const auto d = [](int64_t n) { return static_cast<double>(n); };
  const double layer_params = d(model.AttentionParamsPerLayer()) +
                              d(model.experts_per_token) * d(model.MlpParamsPerExpert());
  const double layers = d(model.num_layers) * layer_params * d(model.weight_dtype_bytes);
  const double lm_head = d(model.vocab_size) * d(model.hidden_size) * d(model.dtype_bytes);
  return (layers + lm_head) / d(tp);
}

// The bytes of K and V of ONE layer of `model` that each of the row's GPUs holds while it
// computes that layer: decode_seqs x (context_tokens + 1) + prefill_tokens tokens (each
// decoding sequence's context and new token, then the chunk). The least memory any pass of
// the row needs: a full model holds every layer's, kvprobe one layer's reused by all.
inline double OneLayerKvBytesPerRank(const StepRow& row, const ModelSpec& model) {
  const double tokens =
      static_cast<double>(row.decode_seqs) * static_cast<double>(row.context_tokens + 1) +
      static_cast<double>(row.prefill_tokens);
  return 2 * tokens *
         static_cast<double>(model.KvBytesPerTokenPerLayerPerRank(row.tensor_parallel));
}

// The engine terms of a validation: preset none (no CPU time: the step rows time GPU
// work only) with the GPU-side kernel gap of preset vllm_v1.
EngineConfig ValidationEngine();

// How the two models are set up.
struct ValidateConfig {
  // The profiled model: prefill attention as measured (the step rows run kvprobe's
  // own prefill kernel), paged layouts through the profile's own paged kernel rows.
  ProfiledConfig profiled{.prefill_attention = ProfiledConfig::PrefillAttention::kMeasured};
  // The roofline model: every efficiency < 0 comes from the GPU card.
  RooflineConfig roofline;
  PagedKernel roofline_paged_kernel = PagedKernel::kFlashPaged;
  // Both models' engine terms.
  EngineConfig engine = ValidationEngine();
  // A row is within tolerance when its |error| is at most `tolerance` (decode-only and
  // prefill-only passes) or `mixed_tolerance` (mixed batches), as fractions: by default
  // the targets kvsim holds a profile's own passes to (5% and 10%).
  double tolerance = 0.05;
  double mixed_tolerance = 0.10;
  // The tolerance of a row of `kind`.
  double ToleranceOf(StepKind kind) const {
    return kind == StepKind::kMixed ? mixed_tolerance : tolerance;
  }
};

// One row predicted by both models. Errors are signed fractions of the measurement,
// (predicted - measured) / measured: +0.1 = the model predicts 10% longer.
struct StepPrediction {
  StepRow row;
  double profiled_us = 0;
  double roofline_us = 0;
  // Each model's GPU time of the pass by kernel class (the sums are the times above).
  KernelClassSeconds profiled_classes{};
  KernelClassSeconds roofline_classes{};
  double profiled_error() const { return profiled_us / row.time_us - 1; }
  double roofline_error() const { return roofline_us / row.time_us - 1; }
  // Whether each model's |error| is within `config`'s tolerance of this row's kind.
  bool ProfiledWithin(const ValidateConfig& config) const {
    return std::abs(profiled_error()) <= config.ToleranceOf(row.kind());
  }
  bool RooflineWithin(const ValidateConfig& config) const {
    return std::abs(roofline_error()) <= config.ToleranceOf(row.kind());
  }
};

// Rows of one (model, tensor_parallel) that could not be predicted, and why.
struct SkippedSteps {
  std::string model;
  int64_t tensor_parallel = 1;
  std::vector<int> lines;  // the rows' lines in the [step] rows' profile
  std::string reason;
};

struct Validation {
  std::string profile_path;  // the profile whose kernel rows build the profiled model
  std::string steps_path;    // the profile whose [step] rows are predicted (may be the same)
  std::string measured_on;   // the [step] rows' profile's [meta] gpu_name
  std::string gpu_card;      // the GPU card's name
  ValidateConfig config;
  RooflineConfig roofline_efficiencies;  // config.roofline resolved against the card
  std::vector<StepPrediction> rows;      // the predicted rows, in file order
  std::vector<SkippedSteps> skipped;
  std::vector<std::string> caveats;  // the profiled models' caveats, each once
};

// Loads the model card of a [step] row's model name; throws InputError when it
// cannot (the caller's message names the card it looked for).
using ModelCardLoader = std::function<ModelSpec(const std::string& model)>;

// Predicts every [step] row of `profile` on `gpu` with both models. Rows are grouped
// by (model, tensor_parallel); a group whose model has no [gemm] rows at that
// tensor_parallel, or whose tensor_parallel does not split the model's heads, or
// (tensor_parallel > 1) whose card has no link bandwidth, is skipped with the reason.
// Throws InputError as RequireStepRows, "path:line: [step] model M: ..." for a model
// card that cannot be loaded, and as NewProfiledModel for a profile that cannot time a model it has
// [gemm] rows for (e.g. measured on a GPU the card does not name). Throws InputError
// "path:line: [step] ..." for a row no GPU of the card can have measured: one whose
// OneLayerKvBytesPerRank exceeds the card's memory_bytes, or whose time_us is below
// MinWeightBytesPerRank / the card's hbm_bandwidth_bytes_per_s, the least time any pass
// takes to read its weights once. (Contexts and chunks beyond the model card's
// max_context_tokens are accepted: kvprobe's step grid, 8,192-token contexts and chunks up
// to 16,384 tokens, runs them for every card, and their times are real.)
Validation ValidateProfile(const Profile& profile, const GpuSpec& gpu,
                           const ModelCardLoader& load_model, const ValidateConfig& config);

// As above, but the [step] rows of `steps` (another run's passes: another lease or
// another GPU of the same name) predicted from the kernel rows of `kernels`; row
// lines and their errors name `steps`. Throws InputError, naming both files, when the
// two were measured on GPUs of different names ([meta] gpu_name).
Validation ValidateProfile(const Profile& kernels, const Profile& steps, const GpuSpec& gpu,
                           const ModelCardLoader& load_model, const ValidateConfig& config);

// Mean absolute error and worst row of both models over a group of predictions.
struct ErrorSummary {
  // "decode-only", "prefill-only", "mixed", or a model name; with rows of several
  // tensor-parallel degrees, followed by " TP n".
  std::string group;
  size_t rows = 0;
  double profiled_mean_abs = 0;  // mean |error|, fraction
  double roofline_mean_abs = 0;
  size_t profiled_worst = 0;  // index into Validation::rows of the largest |error|
  size_t roofline_worst = 0;
  size_t profiled_within = 0;  // rows within tolerance (ValidateConfig::ToleranceOf)
  size_t roofline_within = 0;
};

// Per kind (in the order decode-only, prefill-only, mixed) and then per model (in
// order of first appearance), the groups that have rows; with rows of several
// tensor-parallel degrees, each group per degree (ascending).
std::vector<ErrorSummary> SummarizeErrors(const Validation& validation);

// Where the profiled model's error comes from, per group of SummarizeErrors, over
// the rows with measured classes: each class's mean signed and mean absolute error
// against that class timed alone (a class measured 0, the collectives at TP 1, is
// left out), and the mean of (time_us - classes' sum) / classes' sum, what the pass
// overlaps (< 0) or adds (> 0) beyond its classes, which a model summing classes lacks.
struct ClassErrorSummary {
  std::string group;
  size_t rows = 0;
  struct Error {
    size_t rows = 0;  // rows where the class was measured
    double mean = 0;  // mean signed error, fraction
    double mean_abs = 0;
  };
  Error gemm{}, attention{}, other{}, collective{};
  double pass_vs_classes = 0;
};
std::vector<ClassErrorSummary> SummarizeClassErrors(const Validation& validation);

// Over every predicted row: how many each model predicts within tolerance.
struct ToleranceCount {
  size_t rows = 0, profiled_within = 0, roofline_within = 0;
};
ToleranceCount CountWithinTolerance(const Validation& validation);

// The table of every row, the summary lines (with each group's rows within tolerance),
// the count within tolerance over all rows, the skipped groups and the caveats.
std::string FormatValidation(const Validation& validation);

}  // namespace kvsim
