// kvprobe command-line parsing.
#include "tools/kvprobe/host/args.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <system_error>

namespace kvprobe {
namespace {

int ParseInt(const std::string& flag, const std::string& text, int min_value) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw ArgsError(flag + ": expected an integer, got '" + text + "'");
  }
  if (value < min_value) {
    throw ArgsError(flag + ": must be >= " + std::to_string(min_value) + ", got " + text);
  }
  return value;
}

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> parts;
  std::string part;
  for (char c : text + ",") {
    if (c == ',') {
      if (!part.empty()) parts.push_back(part);
      part.clear();
    } else {
      part += c;
    }
  }
  return parts;
}

// "vmm, overlap, ...": every section --only accepts, for messages.
std::string ValidSections() {
  std::string valid;
  for (const std::string& a : AllSections()) {
    if (!valid.empty()) valid += ", ";
    valid += a;
  }
  return valid;
}

// Appends the comma-separated sections of --only's `text`; throws on an unknown one or none.
void AddSections(const std::string& text, std::vector<std::string>* sections) {
  for (const std::string& s : SplitCommas(text)) {
    const auto& all = AllSections();
    if (std::find(all.begin(), all.end(), s) == all.end()) {
      std::string message = "--only: unknown section '";
      message += s;
      message += "'; valid: ";
      message += ValidSections();
      throw ArgsError(message);
    }
    sections->push_back(s);
  }
  if (sections->empty()) throw ArgsError("--only: no section named");
}

// The GPU counts (each >= min_count, none twice, at least one) of `flag`'s `text`.
std::vector<int> ParseGpuCounts(const std::string& flag, const std::string& text, int min_count) {
  std::vector<int> counts;
  for (const std::string& n : SplitCommas(text)) {
    const int gpus = ParseInt(flag, n, min_count);
    if (std::find(counts.begin(), counts.end(), gpus) != counts.end()) {
      throw ArgsError(flag + ": " + n + " given twice");
    }
    counts.push_back(gpus);
  }
  if (counts.empty()) throw ArgsError(flag + ": no GPU count given");
  return counts;
}

RankProcess::Task ParseRankTask(const std::string& text) {
  if (text == "allreduce") return RankProcess::Task::kAllreduce;
  if (text == "step") return RankProcess::Task::kStep;
  throw ArgsError("--rank-task: expected allreduce or step, got '" + text + "'");
}

// Throws on flags that contradict; sets o->rank when rank_flags (bit i: i-th rank flag) != 0.
void CheckCombinations(const RankProcess& rank, int rank_flags, ProbeOptions* o) {
  if (!o->merge_allreduce_into.empty() && !o->Runs("allreduce")) {
    throw ArgsError("--merge-allreduce-into: --only leaves out the allreduce section");
  }
  if (!o->step_tp.empty() && !o->Runs("step")) {
    throw ArgsError("--step-tp: --only leaves out the step section");
  }
  if (rank_flags != 0) {
    if (rank_flags != 31) {
      throw ArgsError(
          "--rank-task, --rank, --ranks, --nccl-id and --rank-out go together (kvprobe passes "
          "them to the rank processes it starts)");
    }
    if (rank.rank >= rank.ranks) {
      throw ArgsError("--rank: must be below --ranks (" + std::to_string(rank.ranks) + "), got " +
                      std::to_string(rank.rank));
    }
    o->rank = rank;
  }
}

}  // namespace

std::vector<int> DefaultStepTensorParallel(int devices) {
  std::vector<int> tps = {1};
  for (int n = 2; n <= devices; n *= 2) tps.push_back(n);
  return tps;
}

bool ProbeOptions::Runs(const std::string& section) const {
  return sections.empty() || std::find(sections.begin(), sections.end(), section) != sections.end();
}

ProbeOptions ParseArgs(int argc, const char* const* argv) {
  ProbeOptions o;
  RankProcess rank;
  int rank_flags = 0;  // bit i: the i-th of the five rank flags was given
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw ArgsError(flag + ": missing value");
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") {
      o.help = true;
    } else if (flag == "--out") {
      o.out_dir = value();
    } else if (flag == "--models") {
      o.models_dir = value();
    } else if (flag == "--model") {
      o.models.push_back(value());
    } else if (flag == "--only") {
      AddSections(value(), &o.sections);
    } else if (flag == "--gpu-name") {
      o.gpu_name = value();
      if (o.gpu_name.empty() || FolderName(o.gpu_name) != o.gpu_name) {
        throw ArgsError("--gpu-name: use letters, digits, '.', '_' and '-' only");
      }
    } else if (flag == "--device") {
      o.device = ParseInt(flag, value(), 0);
    } else if (flag == "--vmm-samples") {
      o.vmm_samples = ParseInt(flag, value(), 10);
    } else if (flag == "--quick") {
      o.quick = true;
    } else if (flag == "--force") {
      o.force = true;
    } else if (flag == "--allreduce-gpus") {
      o.allreduce_gpus = ParseGpuCounts(flag, value(), 2);
    } else if (flag == "--step-tp") {
      o.step_tp = ParseGpuCounts(flag, value(), 1);
    } else if (flag == "--merge-allreduce-into") {
      o.merge_allreduce_into = value();
      if (o.merge_allreduce_into.empty()) throw ArgsError("--merge-allreduce-into: empty path");
    } else if (flag == "--rank") {
      rank.rank = ParseInt(flag, value(), 0);
      rank_flags |= 1;
    } else if (flag == "--ranks") {
      rank.ranks = ParseInt(flag, value(), 2);
      rank_flags |= 2;
    } else if (flag == "--nccl-id") {
      rank.nccl_id_hex = value();
      rank_flags |= 4;
    } else if (flag == "--rank-out") {
      rank.out_path = value();
      rank_flags |= 8;
    } else if (flag == "--rank-task") {
      rank.task = ParseRankTask(value());
      rank_flags |= 16;
    } else {
      throw ArgsError("unknown argument '" + flag + "'");
    }
  }
  CheckCombinations(rank, rank_flags, &o);
  return o;
}

std::string Usage() {
  return "usage: kvprobe [--out DIR] [--gpu-name NAME] [--models DIR] [--model NAME]...\n"
         "               [--only SECTION,...] [--device N] [--vmm-samples N] [--quick]\n"
         "               [--force]\n"
         "               [--allreduce-gpus N,...] [--merge-allreduce-into PROFILE]\n"
         "               [--step-tp N,...]\n"
         "Measures the GPU and writes DIR/profile.txt (default DIR: models/profiles/<gpu name>)\n"
         "plus raw CSVs; --gpu-name names only that folder (the profile's gpu_name is the\n"
         "driver's device name). A --quick or --only run refuses to replace an existing\n"
         "DIR/profile.txt unless --force is given. Sections: vmm, overlap, copy, gemm, "
         "small_kernels, attention, step,\n"
         "allreduce, vattention. step times whole-model forward passes of each --model\n"
         "(default Llama-3-8B; dense cards only) at each tensor-parallel degree of --step-tp\n"
         "(default: 1, 2, 4, ... up to the GPUs present; above 1 one process per GPU through\n"
         "NCCL), gemm and small_kernels every --model (default: every card; small_kernels\n"
         "dense cards with head_dim 128).\n"
         "allreduce runs one process per GPU through NCCL (NVLink multicast off) for each GPU\n"
         "count of --allreduce-gpus (default: 2, 4, 8, ... up to the GPUs present, and that\n"
         "count); --merge-allreduce-into also replaces those counts' [allreduce] rows in "
         "PROFILE.\n";
}

std::string OutputDir(const ProbeOptions& o, const std::string& device_name) {
  if (!o.out_dir.empty()) return o.out_dir;
  return "models/profiles/" + (o.gpu_name.empty() ? FolderName(device_name) : o.gpu_name);
}

std::string OutputConflict(const ProbeOptions& o, const std::string& out_dir) {
  namespace fs = std::filesystem;
  const fs::path profile = fs::path(out_dir) / "profile.txt";
  if (!o.merge_allreduce_into.empty()) {
    // The same file by its resolved path (symbolic links and '..' followed), or by
    // identity where both exist (hard links).
    std::error_code ec_a, ec_b, ec_same;
    const fs::path a = fs::weakly_canonical(fs::absolute(o.merge_allreduce_into, ec_a), ec_a);
    const fs::path b = fs::weakly_canonical(fs::absolute(profile, ec_b), ec_b);
    const bool same_path = !ec_a && !ec_b && !a.empty() && a == b;
    if (same_path || fs::equivalent(o.merge_allreduce_into, profile, ec_same)) {
      return "--merge-allreduce-into: " + o.merge_allreduce_into + " is this run's own profile (" +
             profile.string() +
             "), written after the merge, so the merged rows would be lost; write this run "
             "elsewhere with --out DIR";
    }
  }
  const auto& all = AllSections();
  const bool partial =
      std::any_of(all.begin(), all.end(), [&](const std::string& s) { return !o.Runs(s); });
  std::error_code ec;
  if (o.force || (!o.quick && !partial) || !fs::exists(profile, ec)) return "";
  std::string run = o.quick ? "--quick" : "";
  if (partial) {
    std::string sections;
    for (const std::string& s : o.sections) sections += (sections.empty() ? "" : ",") + s;
    run += (run.empty() ? "--only " : " --only ") + sections;
  }
  const std::string what = !partial  ? "a smoke-test profile (mode: quick)"
                           : o.quick ? "a smoke-test profile of those sections alone"
                                     : "a profile of those sections alone";
  return profile.string() + " exists, and this " + run + " run would replace it with " + what +
         "; write elsewhere with --out DIR, or pass --force to replace it";
}

std::string FolderName(const std::string& device_name) {
  std::string out;
  bool gap = false;  // characters to replace seen since the last kept one
  for (char c : device_name) {
    const bool keep =
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    if (!keep) {
      gap = true;
      continue;
    }
    if (gap && !out.empty()) out += '-';
    gap = false;
    out += c;
  }
  return out;
}

}  // namespace kvprobe
