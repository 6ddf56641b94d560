// kvprobe command line: what to measure and where to write the profile.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace kvprobe {

// A bad command line. what() is a one-line message; the caller prints Usage().
class ArgsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The measurement sections, in the order they run.
inline const std::vector<std::string>& AllSections() {
  static const std::vector<std::string> kSections = {"vmm",  "overlap",       "copy",
                                                     "gemm", "small_kernels", "attention",
                                                     "step", "allreduce",     "vattention"};
  return kSections;
}

// One rank of a multi-GPU measurement (rank_processes.h): kvprobe starts one such
// process per GPU, each a fresh process (a forked CUDA context is unusable) that
// joins the NCCL communicator named by the unique id.
struct RankProcess {
  enum class Task { kAllreduce, kStep };
  Task task = Task::kAllreduce;  // --rank-task allreduce|step
  int rank = 0;                  // --rank R: also the CUDA device it uses
  int ranks = 0;                 // --ranks N (>= 2, > R)
  std::string nccl_id_hex;       // --nccl-id HEX: the parent's ncclUniqueId
  std::string out_path;          // --rank-out FILE: where the rank writes its results
};

struct ProbeOptions {
  std::string out_dir;                    // --out DIR; empty: models/profiles/<gpu name>
  std::string models_dir = "models/llm";  // --models DIR: model cards (gemm, step)
  std::vector<std::string> models;    // --model NAME (repeatable); empty: every card in models_dir
                                      // for gemm, Llama-3-8B alone for step
  std::vector<std::string> sections;  // --only a,b,...; empty: all of AllSections()
  std::string gpu_name;               // --gpu-name NAME: profile folder name (default: device name)
  int device = 0;                     // --device N
  int vmm_samples = 1000;             // --vmm-samples N: calls timed per VMM measurement (>= 10)
  bool quick = false;                 // --quick: small grids and sample counts (smoke test)
  bool force = false;                 // --force: a --quick or --only run may replace an existing
                                      // DIR/profile.txt (OutputConflict)
  std::vector<int> allreduce_gpus;    // --allreduce-gpus 2,4,8: GPU counts (each >= 2);
                                      // empty: DefaultAllreduceGpuCounts(devices present)
  std::string merge_allreduce_into;   // --merge-allreduce-into PROFILE: also merge the
                                      // [allreduce] rows into that profile (allreduce_merge.h)
  std::vector<int> step_tp;         // --step-tp 1,2: tensor-parallel degrees of [step] (each >= 1);
                                    // empty: DefaultStepTensorParallel(devices present)
  std::optional<RankProcess> rank;  // set (all five rank flags) only in a rank process
  bool help = false;                // --help

  bool Runs(const std::string& section) const;
};

// The [step] tensor-parallel degrees measured by default with `devices` GPUs present:
// 1, then the powers of two from 2 up to `devices`.
std::vector<int> DefaultStepTensorParallel(int devices);

// Parses argv (argv[0] is the program). Throws ArgsError on an unknown flag, a
// missing or malformed value, an unknown section name or rank task, some but not all
// of the five rank flags, --merge-allreduce-into without the allreduce section, or
// --step-tp without the step section.
ProbeOptions ParseArgs(int argc, const char* const* argv);

std::string Usage();

// The folder a run writes profile.txt, kvprobe.log and the raw files into: --out, else
// models/profiles/<--gpu-name, else FolderName(device_name)> (relative to the working
// directory).
std::string OutputDir(const ProbeOptions& o, const std::string& device_name);

// Why a run of `o` must not write into `out_dir`, as a one-line message naming the
// path and the option to change; "" when it may. Checked before anything is written
// or measured. Refused:
// - --merge-allreduce-into naming out_dir/profile.txt itself (the run writes its own
//   profile after the merge, so the merged rows would be lost), with or without --force;
// - a --quick or --only run when out_dir/profile.txt exists, unless --force: it would
//   replace that profile with a smoke-test or partial one (kvsim refuses a profile
//   without its required sections).
// A full run (neither --quick nor --only) replaces an existing profile, as calibrating
// again does.
std::string OutputConflict(const ProbeOptions& o, const std::string& out_dir);

// A device name as a folder name: runs of characters other than letters, digits,
// '.', '_' and '-' become one '-' ("NVIDIA H100 80GB HBM3" -> "NVIDIA-H100-80GB-HBM3").
std::string FolderName(const std::string& device_name);

}  // namespace kvprobe
