// Fuzz target: kvprobe profiles (ParseProfile, sim/timing/profile.h) and what reads a
// parsed profile: the VMM latencies (VmmLatencyFromProfile), the [step] rows
// (ReadStepRows), the curves of the profiled model (ReadProfileCurves) and the model
// itself timing a few batches (NewProfiledModel) for the bundled model cards the
// profile's [gemm] rows name, and `kvsim validate` (ValidateProfile) on the H100 and
// H200 cards.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "sim/hardware/gpu_spec.h"
#include "sim/hardware/model_spec.h"
#include "sim/timing/execution_time_model.h"
#include "sim/timing/profile.h"
#include "sim/timing/profile_tables.h"
#include "sim/timing/validate.h"
#include "tests/fuzz/fuzz_common.h"

namespace kvsim::fuzz {
namespace {

// The bundled card of `name` (models/llm/NAME.yaml), loaded once; nullopt when there
// is none.
const std::optional<ModelSpec>& BundledModel(const std::string& name) {
  static std::map<std::string, std::optional<ModelSpec>> cache;
  if (auto it = cache.find(name); it != cache.end()) return it->second;
  std::optional<ModelSpec> model;
  const bool plain = !name.empty() && name.size() < 64 && name.front() != '.' &&
                     std::all_of(name.begin(), name.end(), [](unsigned char c) {
                       return std::isalnum(c) || c == '-' || c == '.' || c == '_';
                     });
  const std::string path = SourceDir() + "/models/llm/" + name + ".yaml";
  std::error_code ec;
  if (plain && std::filesystem::is_regular_file(path, ec)) model = LoadModelSpec(path);
  if (cache.size() > 1000) cache.clear();
  return cache.emplace(name, std::move(model)).first->second;
}

const std::vector<GpuSpec>& Gpus() {
  static const std::vector<GpuSpec> gpus = {LoadGpuSpec(SourceDir() + "/models/gpu/H100-SXM.yaml"),
                                            LoadGpuSpec(SourceDir() + "/models/gpu/H200.yaml")};
  return gpus;
}

std::vector<BatchWork> Batches() {
  std::vector<BatchWork> batches;
  for (AttentionLayout layout : {AttentionLayout::kContiguous, AttentionLayout::kPaged}) {
    BatchWork decode;
    decode.num_seqs = decode.decode_tokens = decode.logit_tokens = 8;
    decode.decode_context_tokens = 8 * 1500;
    decode.max_context_tokens = 3000;
    decode.layout = layout;
    decode.block_tokens = layout == AttentionLayout::kPaged ? 16 : 0;
    batches.push_back(decode);
    BatchWork prefill;
    prefill.num_seqs = prefill.prefill_seqs = prefill.logit_tokens = 1;
    prefill.prefill_tokens = 2048;
    prefill.prefill_attention_pairs = 2048.0 * 2049 / 2;
    prefill.max_context_tokens = 2048;
    prefill.layout = layout;
    prefill.block_tokens = decode.block_tokens;
    batches.push_back(prefill);
    BatchWork mixed = decode;
    mixed.num_seqs += 1;
    mixed.prefill_seqs = 1;
    mixed.prefill_tokens = 100000;  // beyond every measured grid
    mixed.prefill_attention_pairs = 1e10;
    mixed.decode_context_tokens = 8 * 1'000'000;
    batches.push_back(mixed);
  }
  return batches;
}

// The bundled GPU cards naming the device the profile was measured on; the first card
// when none does (the profiled model then refuses the profile).
std::vector<const GpuSpec*> GpusOf(const Profile& profile) {
  std::vector<const GpuSpec*> found;
  const auto it = profile.meta().find("gpu_name");
  for (const GpuSpec& gpu : Gpus()) {
    if (it != profile.meta().end() && std::find(gpu.device_names.begin(), gpu.device_names.end(),
                                                it->second) != gpu.device_names.end()) {
      found.push_back(&gpu);
    }
  }
  if (found.empty()) found.push_back(&Gpus().front());
  return found;
}

void ReadModels(const Profile& profile) {
  const ProfileTable* gemm = profile.Find("gemm");
  if (gemm == nullptr || !gemm->HasColumn("model")) return;
  std::set<std::string> names;
  for (size_t r = 0; r < gemm->size() && names.size() < 2; ++r)
    names.insert(gemm->Text(r, "model"));
  static const std::vector<BatchWork> batches = Batches();
  for (const std::string& name : names) {
    const std::optional<ModelSpec>& model = BundledModel(name);
    if (!model) continue;
    for (int64_t tp : {1, 2, 8}) {
      for (const GpuSpec* gpu : GpusOf(profile)) {
        bool curves = false;
        ExpectOnlyInputErrors("ReadProfileCurves", [&] {
          ReadProfileCurves(profile, *model, *gpu, tp);
          curves = true;
        });
        if (!curves) continue;
        for (PagedKernel kernel : {PagedKernel::kProfiled, PagedKernel::kFlashPaged}) {
          ExpectOnlyInputErrors("NewProfiledModel", [&] {
            const CostConfig costs{.paged_kernel = kernel, .paged = true};
            const auto timing =
                NewProfiledModel(profile, *model, *gpu, tp, ProfiledConfig{}, costs);
            for (const BatchWork& work : batches) {
              KVSIM_FUZZ_EXPECT(timing->IterationTime(work) > Nanos(0), "an iteration of no time");
            }
            (void)timing->Caveats();
            (void)timing->Assumptions();
          });
        }
      }
    }
  }
}

ModelSpec LoadBundledModel(const std::string& name) {
  const std::optional<ModelSpec>& model = BundledModel(name);
  if (!model) throw InputError("no bundled model card '" + name + "'");
  return *model;
}

}  // namespace
}  // namespace kvsim::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvsim;
  using namespace kvsim::fuzz;
  if (size > kMaxInputBytes) return 0;
  ExpectOnlyInputErrors("profile", [&] {
    const Profile profile = ParseProfile(AsText(data, size), "fuzz/profile.txt");
    ExpectOnlyInputErrors("VmmLatencyFromProfile", [&] {
      const VmmLatencies vmm = VmmLatencyFromProfile(profile);
      KVSIM_FUZZ_EXPECT(vmm.map >= Nanos(0) && vmm.set_access >= Nanos(0) && vmm.unmap >= Nanos(0),
                        "a negative VMM latency");
    });
    ExpectOnlyInputErrors("ReadStepRows", [&] { ReadStepRows(profile); });
    ReadModels(profile);
    for (const GpuSpec* gpu : GpusOf(profile)) {
      ExpectOnlyInputErrors("ValidateProfile", [&] {
        const Validation v = ValidateProfile(profile, *gpu, LoadBundledModel, ValidateConfig{});
        (void)SummarizeErrors(v);
        (void)FormatValidation(v);
      });
    }
  });
  // The same text as another run's passes (kvsim validate --steps): [meta] alone required.
  ExpectOnlyInputErrors("steps profile", [&] {
    const Profile steps =
        ParseProfile(AsText(data, size), "fuzz/steps.txt", RequiredSections::kMetaOnly);
    ExpectOnlyInputErrors("ReadStepRows (steps)", [&] { ReadStepRows(steps); });
  });
  return 0;
}
