// kvsim validate: the [step] rows of a profile predicted by the profiled and roofline
// models (validate.h).
#include "sim/timing/validate.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "sim/core/check.h"
#include "sim/timing/profile_schema.h"

namespace kvsim {
namespace {

namespace schema = profile_schema;
namespace col = profile_schema::column;
constexpr std::string_view kStep = profile_schema::section::kStep;
constexpr std::string_view kGemm = profile_schema::section::kGemm;

[[noreturn]] void FailAt(const Profile& profile, int line, const std::string& what) {
  throw InputError(fmt::format("{}:{}: {}", profile.path(), line, what));
}

// The integer in `column` of `row`, at least `min`.
int64_t Integer(const Profile& profile, const ProfileTable& t, size_t row, std::string_view column,
                int64_t min, const char* what) {
  const double v = t.Number(row, column);
  if (!(v >= static_cast<double>(min)) || v != std::floor(v) || v > 1e15) {
    FailAt(profile, t.line(row),
           fmt::format("[{}] {} must be {}, got {}", kStep, column, what, t.Text(row, column)));
  }
  return static_cast<int64_t>(v);
}

// The [gemm] models and their tensor_parallel values, "M (tensor_parallel 1, 2), ...".
std::string GemmModels(const ProfileTable& gemm) {
  // Values as written (any finite number): a cast to an integer could overflow.
  std::map<std::string, std::set<double>> have;
  for (size_t r = 0; r < gemm.size(); ++r) {
    have[gemm.Text(r, col::kModel)].insert(gemm.Number(r, col::kTensorParallel));
  }
  std::string out;
  for (const auto& [name, tps] : have) {
    out += fmt::format("{}{} ({} {})", out.empty() ? "" : ", ", name, col::kTensorParallel,
                       fmt::join(tps, ", "));
  }
  return out.empty() ? "none" : out;
}

bool HasGemmRows(const ProfileTable& gemm, const std::string& model, int64_t tp) {
  for (size_t r = 0; r < gemm.size(); ++r) {
    if (gemm.Text(r, col::kModel) == model &&
        gemm.Number(r, col::kTensorParallel) == static_cast<double>(tp)) {
      return true;
    }
  }
  return false;
}

// A row's optional class columns in seconds (the profile's parser has checked them:
// times >= 0); nullopt without them, with a class of 0 (not measured), or at TP > 1
// without allreduce_us.
std::optional<KernelClassSeconds> MeasuredClasses(const ProfileTable& t, size_t r, int64_t tp) {
  for (std::string_view c : {col::kGemmUs, col::kAttentionUs, col::kOtherUs}) {
    if (!t.HasColumn(c) || !(t.Number(r, c) > 0)) return std::nullopt;
  }
  const bool collectives = t.HasColumn(col::kAllreduceUs);
  if (tp > 1 && (!collectives || !(t.Number(r, col::kAllreduceUs) > 0))) return std::nullopt;
  return KernelClassSeconds{
      .gemm_s = t.Number(r, col::kGemmUs) * 1e-6,
      .attention_s = t.Number(r, col::kAttentionUs) * 1e-6,
      .other_s = t.Number(r, col::kOtherUs) * 1e-6,
      .collective_s = collectives && tp > 1 ? t.Number(r, col::kAllreduceUs) * 1e-6 : 0.0};
}

}  // namespace

StepKind StepRow::kind() const {
  if (prefill_tokens == 0) return StepKind::kDecode;
  return decode_seqs == 0 ? StepKind::kPrefill : StepKind::kMixed;
}

std::vector<StepRow> ReadStepRows(const Profile& profile) {
  std::vector<StepRow> rows;
  const ProfileTable* t = profile.Find(kStep);
  if (t == nullptr) return rows;
  // Every column but time_us -> the line of the first row with them.
  std::map<std::tuple<std::string, int64_t, int64_t, int64_t, int64_t, int64_t, bool>, int> seen;
  for (size_t r = 0; r < t->size(); ++r) {
    StepRow row;
    row.line = t->line(r);
    row.model = t->Text(r, col::kModel);
    if (row.model.empty()) {
      FailAt(profile, row.line, fmt::format("[{}] {} is empty", kStep, col::kModel));
    }
    row.tensor_parallel =
        Integer(profile, *t, r, col::kTensorParallel, 1, "a positive integer (GPUs per replica)");
    const std::string& layout_name = t->Text(r, col::kLayout);
    const std::optional<AttentionLayout> layout = kAttentionLayouts.Parse(layout_name);
    if (!layout) {
      FailAt(profile, row.line,
             fmt::format("[{}] {} '{}' is not one of {}", kStep, col::kLayout, layout_name,
                         kAttentionLayouts.NameList()));
    }
    row.layout = *layout;
    if (row.layout == AttentionLayout::kContiguous) {
      if (t->Number(r, col::kBlockTokens) != 0) {
        FailAt(profile, row.line,
               fmt::format("[{}] contiguous rows have {} 0, got {}", kStep, col::kBlockTokens,
                           t->Text(r, col::kBlockTokens)));
      }
    } else {
      row.block_tokens = Integer(profile, *t, r, col::kBlockTokens, 1,
                                 "a positive integer for a paged row (tokens per block)");
    }
    row.decode_seqs = Integer(profile, *t, r, col::kDecodeSeqs, 0, "a non-negative integer");
    row.context_tokens = Integer(profile, *t, r, col::kContextTokens, 0, "a non-negative integer");
    row.prefill_tokens = Integer(profile, *t, r, col::kPrefillTokens, 0, "a non-negative integer");
    if (row.decode_seqs == 0 && row.prefill_tokens == 0) {
      FailAt(profile, row.line,
             fmt::format("[{}] the row computes nothing ({} and {} are both 0)", kStep,
                         col::kDecodeSeqs, col::kPrefillTokens));
    }
    if (row.decode_seqs > 0 && row.context_tokens == 0) {  // a prompt precedes every decode
      FailAt(profile, row.line,
             fmt::format("[{}] decoding sequences need {} > 0, got 0", kStep, col::kContextTokens));
    }
    row.time_us = t->Number(r, col::kTimeUs);
    if (!(row.time_us > 0)) {
      FailAt(profile, row.line,
             fmt::format("[{}] {} must be positive, got {}", kStep, col::kTimeUs,
                         t->Text(r, col::kTimeUs)));
    }
    const double graph = t->Number(r, col::kGraph);
    if (graph != 0 && graph != 1) {
      FailAt(profile, row.line,
             fmt::format("[{}] {} must be 0 or 1, got {}", kStep, col::kGraph,
                         t->Text(r, col::kGraph)));
    }
    row.graph = graph == 1;
    row.measured_classes = MeasuredClasses(*t, r, row.tensor_parallel);
    const auto key = std::tuple(row.model, row.tensor_parallel, row.block_tokens, row.decode_seqs,
                                row.context_tokens, row.prefill_tokens, row.graph);
    // block_tokens 0 is contiguous, so the key tells the layouts apart.
    if (const auto [it, fresh] = seen.emplace(key, row.line); !fresh) {
      FailAt(profile, row.line,
             fmt::format("[{}] repeats the step of line {} (every column but {})", kStep,
                         it->second, col::kTimeUs));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<StepRow> RequireStepRows(const Profile& profile) {
  std::vector<StepRow> rows = ReadStepRows(profile);
  if (rows.empty()) {
    throw InputError(fmt::format("{}: no [{}] rows; measure them with kvprobe --only step",
                                 profile.path(), kStep));
  }
  return rows;
}

BatchWork StepBatchWork(const StepRow& row) {
  BatchWork w;
  const bool prefill = row.prefill_tokens > 0;
  w.num_seqs = row.decode_seqs + (prefill ? 1 : 0);
  w.prefill_seqs = prefill ? 1 : 0;
  w.prefill_tokens = row.prefill_tokens;
  w.decode_tokens = row.decode_seqs;
  w.logit_tokens = w.num_seqs;
  const auto p = static_cast<double>(row.prefill_tokens);
  w.prefill_attention_pairs = p * (p + 1) / 2;
  w.decode_context_tokens = row.decode_seqs * (row.context_tokens + 1);
  w.max_context_tokens =
      std::max(row.decode_seqs > 0 ? row.context_tokens + 1 : int64_t{0}, row.prefill_tokens);
  w.layout = row.layout;
  w.block_tokens = row.block_tokens;
  return w;
}

EngineConfig ValidationEngine() {
  EngineConfig e = EnginePresetDefaults(EngineConfig::Preset::kNone);
  e.kernel_gap_s = EnginePresetDefaults(EngineConfig::Preset::kVllmV1).kernel_gap_s;
  return e;
}

namespace {

// The model card of each model the rows name, each loaded once, at the first row
// naming it; a card that fails to load is an error at that row's line.
std::map<std::string, ModelSpec> LoadModelCards(const Profile& profile,
                                                const std::vector<StepRow>& rows,
                                                const ModelCardLoader& load_model) {
  std::map<std::string, ModelSpec> cards;
  for (const StepRow& row : rows) {
    if (cards.contains(row.model)) continue;
    try {
      cards.emplace(row.model, load_model(row.model));
    } catch (const InputError& e) {
      FailAt(profile, row.line,
             fmt::format("[{}] {} {}: {}", kStep, col::kModel, row.model, e.what()));
    }
  }
  return cards;
}

// Throws InputError for a row no GPU of `gpu`'s card can have measured (validate.h).
void CheckPlausible(const Profile& steps, const StepRow& row, const ModelSpec& model,
                    const GpuSpec& gpu) {
  const double kv_gb = OneLayerKvBytesPerRank(row, model) * 1e-9;
  const double memory_gb = static_cast<double>(gpu.memory_bytes) * 1e-9;
  if (memory_gb > 0 && kv_gb > memory_gb) {
    FailAt(steps, row.line,
           fmt::format("[{}] the K and V of its tokens in one layer of {} take {:.1f} GB on each "
                       "GPU, beyond the {} card's {:.1f} GB: no such GPU ran this pass",
                       kStep, model.name, kv_gb, gpu.name, memory_gb));
  }
  const double bytes = MinWeightBytesPerRank(model, row.tensor_parallel);
  const double least_us = bytes / gpu.hbm_bandwidth_bytes_per_s * 1e6;
  if (gpu.hbm_bandwidth_bytes_per_s > 0 && row.time_us < least_us) {
    FailAt(steps, row.line,
           fmt::format("[{}] {} {} is below {:.1f} us, the least in which the {} card's peak "
                       "bandwidth of {:.0f} GB/s reads the {:.2f} GB of {}'s weights a GPU reads "
                       "at {} {}: physically impossible",
                       kStep, col::kTimeUs, row.time_us, least_us, gpu.name,
                       gpu.hbm_bandwidth_bytes_per_s * 1e-9, bytes * 1e-9, model.name,
                       col::kTensorParallel, row.tensor_parallel));
  }
}

// The two models of one (model, tensor_parallel) group of rows; none for a group
// that cannot be predicted (listed in Validation::skipped).
struct GroupModels {
  std::unique_ptr<ExecutionTimeModel> profiled, roofline;
  size_t skipped = 0;  // index into Validation::skipped + 1; 0: predicted
};

// Why the rows of `row`'s model (card `model`) at its tensor_parallel cannot be
// predicted on `gpu`; empty when they can.
std::string UnpredictableReason(const StepRow& row, const ModelSpec& model,
                                const ProfileTable& gemm, const GpuSpec& gpu) {
  const int64_t tp = row.tensor_parallel;
  if (std::string why = model.HeadSplitProblem(tp); !why.empty()) return why;
  if (!HasGemmRows(gemm, row.model, tp)) {
    return fmt::format(
        "the profile has no [{}] rows for {} at {} {} (it has: {}); measure them with kvprobe "
        "--model {}",
        kGemm, row.model, col::kTensorParallel, tp, GemmModels(gemm), row.model);
  }
  if (tp > 1 && !(gpu.link_bandwidth_bytes_per_s > 0)) {
    return fmt::format(
        "the {} card has no GPU-GPU link bandwidth for the roofline's all-reduce on {} GPUs",
        gpu.name, tp);
  }
  return "";
}

// The models of `row`'s group, built at its first row: the profiled and roofline
// models (the profiled one's caveats added to v.caveats once each), or none, with the
// group added to v.skipped (its lines still to be filled in).
GroupModels BuildGroupModels(const Profile& profile, const ProfileTable& gemm, const GpuSpec& gpu,
                             const ValidateConfig& config, const ModelSpec& model,
                             const StepRow& row, Validation& v) {
  const CostConfig profiled_costs{.engine = config.engine,
                                  .allreduce = {},
                                  .paged_kernel = PagedKernel::kProfiled,
                                  .paged = false};
  const CostConfig roofline_costs{.engine = config.engine,
                                  .allreduce = {},
                                  .paged_kernel = config.roofline_paged_kernel,
                                  .paged = false};
  const int64_t tp = row.tensor_parallel;
  const std::string reason = UnpredictableReason(row, model, gemm, gpu);
  GroupModels m;
  if (reason.empty()) {
    m.profiled = NewProfiledModel(profile, model, gpu, tp, config.profiled, profiled_costs);
    m.roofline = NewRooflineModel(model, gpu, tp, config.roofline, roofline_costs);
    for (std::string& c : m.profiled->Caveats()) {
      if (std::find(v.caveats.begin(), v.caveats.end(), c) == v.caveats.end()) {
        v.caveats.push_back(std::move(c));
      }
    }
  } else {
    v.skipped.push_back({.model = row.model, .tensor_parallel = tp, .lines = {}, .reason = reason});
    m.skipped = v.skipped.size();
  }
  return m;
}

// The row's time predicted by both models of its (predictable) group, in us.
StepPrediction Predict(const StepRow& row, const GroupModels& m) {
  const BatchWork work = StepBatchWork(row);
  const auto us = [](Nanos t) { return static_cast<double>(t.count()) * 1e-3; };
  return {.row = row,
          .profiled_us = us(m.profiled->IterationTime(work)),
          .roofline_us = us(m.roofline->IterationTime(work)),
          .profiled_classes = m.profiled->GpuSecondsByClass(work).value(),
          .roofline_classes = m.roofline->GpuSecondsByClass(work).value()};
}

}  // namespace

Validation ValidateProfile(const Profile& profile, const GpuSpec& gpu,
                           const ModelCardLoader& load_model, const ValidateConfig& config) {
  return ValidateProfile(profile, profile, gpu, load_model, config);
}

Validation ValidateProfile(const Profile& profile, const Profile& steps, const GpuSpec& gpu,
                           const ModelCardLoader& load_model, const ValidateConfig& config) {
  const std::vector<StepRow> rows = RequireStepRows(steps);
  Validation v;
  v.profile_path = profile.path();
  v.steps_path = steps.path();
  v.measured_on = steps.MetaText(std::string(schema::meta::kGpuName));
  const std::string kernels_on = profile.MetaText(std::string(schema::meta::kGpuName));
  if (kernels_on != v.measured_on) {
    throw InputError(fmt::format(
        "{}: its [{}] rows were measured on '{}', but the kernel rows of {} on '{}'; predict "
        "passes from kernel rows of a GPU of the same name",
        steps.path(), kStep, v.measured_on, profile.path(), kernels_on));
  }
  v.gpu_card = gpu.name;
  v.config = config;
  v.roofline_efficiencies = ResolveEfficiencies(config.roofline, gpu, nullptr);
  const std::map<std::string, ModelSpec> cards = LoadModelCards(steps, rows, load_model);

  // The two models of each (model, tensor_parallel), built at its first row.
  std::map<std::pair<std::string, int64_t>, GroupModels> groups;
  const ProfileTable& gemm = profile.Table(kGemm);
  // [small_kernels] rows timed among the GEMMs' stand-ins (a warm_time_us column), or
  // nothing; whether a model and tensor_parallel validated here has such rows.
  const ProfileTable* small = profile.Find(schema::section::kSmallKernels);
  if (small != nullptr && !small->HasColumn(schema::column::kWarmTimeUs)) small = nullptr;
  bool small_as_in_pass = false;
  for (const StepRow& row : rows) {
    const auto key = std::pair(row.model, row.tensor_parallel);
    auto it = groups.find(key);
    if (it == groups.end()) {
      GroupModels m = BuildGroupModels(profile, gemm, gpu, config, cards.at(row.model), row, v);
      it = groups.emplace(key, std::move(m)).first;
      for (size_t r = 0; small != nullptr && r < small->size() && !small_as_in_pass; ++r) {
        small_as_in_pass =
            small->Text(r, col::kModel) == row.model &&
            small->Number(r, col::kTensorParallel) == static_cast<double>(row.tensor_parallel);
      }
    }
    CheckPlausible(steps, row, cards.at(row.model), gpu);  // after the models check the GPU's name
    if (it->second.skipped > 0) {
      v.skipped[it->second.skipped - 1].lines.push_back(row.line);
      continue;
    }
    v.rows.push_back(Predict(row, it->second));
  }
  if (small_as_in_pass) {
    v.caveats.push_back(fmt::format(
        "class 'other': the [small_kernels] rows are timed among stand-ins of the layer's GEMMs, "
        "as a pass runs them, so its prediction holds what interleaving adds (the measured "
        "'pass - classes'); the measured 'other' graph replays those kernels alone, their inputs "
        "in the L2 ({} is that time)",
        schema::column::kWarmTimeUs));
  }
  return v;
}

}  // namespace kvsim
